//! What driftwatch's BPF programs cost in the kernel, from the kernel's own accounting
//! (`kernel.bpf_stats_enabled`): run time and run count of each program, read with `bpftool
//! -j prog show`, so that a benchmark divides them by the events of its workload.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, bail};

const BPF_STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Turns `kernel.bpf_stats_enabled` on while it lives, and back to what it was on drop
/// (the setting is the whole host's).
pub struct BpfStatsOn {
    previous: String,
}

impl BpfStatsOn {
    pub fn enable() -> anyhow::Result<BpfStatsOn> {
        let previous = std::fs::read_to_string(BPF_STATS_SYSCTL)
            .with_context(|| format!("reading {BPF_STATS_SYSCTL}"))?;
        std::fs::write(BPF_STATS_SYSCTL, "1")
            .with_context(|| format!("writing 1 to {BPF_STATS_SYSCTL}"))?;
        Ok(BpfStatsOn {
            previous: previous.trim().to_string(),
        })
    }
}

impl Drop for BpfStatsOn {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(BPF_STATS_SYSCTL, &self.previous) {
            eprintln!(
                "could not put {BPF_STATS_SYSCTL} back to {}: {e}",
                self.previous
            );
        }
    }
}

/// A program's totals since it was loaded (zero while bpf_stats was off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgRuns {
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

impl ProgRuns {
    /// What ran between `before` and `self`.
    pub fn since(self, before: ProgRuns) -> ProgRuns {
        ProgRuns {
            run_time_ns: self.run_time_ns.saturating_sub(before.run_time_ns),
            run_cnt: self.run_cnt.saturating_sub(before.run_cnt),
        }
    }
}

/// driftwatch's programs (`dw_` names) held by process `pid`, by name, summed when a name
/// is loaded more than once.
pub fn driftwatch_programs(pid: u32) -> anyhow::Result<BTreeMap<String, ProgRuns>> {
    let out = Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .output()
        .context("running bpftool -j prog show (apt-get install bpftool)")?;
    if !out.status.success() {
        bail!(
            "bpftool -j prog show: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing bpftool -j prog show")?;
    Ok(programs_of(&v, pid))
}

/// [`driftwatch_programs`] of bpftool's JSON. A program is `pid`'s when bpftool lists it
/// among the holders (`pids`); a bpftool that cannot tell holders counts every `dw_` one.
pub fn programs_of(v: &serde_json::Value, pid: u32) -> BTreeMap<String, ProgRuns> {
    let mut by_name: BTreeMap<String, ProgRuns> = BTreeMap::new();
    for p in v.as_array().into_iter().flatten() {
        let Some(name) = p["name"].as_str().filter(|n| n.starts_with("dw_")) else {
            continue;
        };
        if let Some(holders) = p["pids"].as_array()
            && !holders
                .iter()
                .any(|h| h["pid"].as_u64() == Some(u64::from(pid)))
        {
            continue;
        }
        let e = by_name.entry(name.to_string()).or_default();
        e.run_time_ns += p["run_time_ns"].as_u64().unwrap_or(0);
        e.run_cnt += p["run_cnt"].as_u64().unwrap_or(0);
    }
    by_name
}

/// What each program ran between two readings (a program only in `after` counts from 0).
pub fn runs_between(
    before: &BTreeMap<String, ProgRuns>,
    after: &BTreeMap<String, ProgRuns>,
) -> BTreeMap<String, ProgRuns> {
    after
        .iter()
        .map(|(name, a)| {
            let b = before.get(name).copied().unwrap_or_default();
            (name.clone(), a.since(b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_agents_dw_programs_are_summed_by_name() {
        let v = serde_json::json!([
            {"id": 1, "name": "dw_sched_process_exec", "run_time_ns": 900, "run_cnt": 3,
             "pids": [{"pid": 42, "comm": "driftwatch"}]},
            {"id": 2, "name": "dw_sched_process_exec", "run_time_ns": 100, "run_cnt": 1,
             "pids": [{"pid": 42, "comm": "driftwatch"}]},
            {"id": 3, "name": "dw_sched_process_exec", "run_time_ns": 5000, "run_cnt": 5,
             "pids": [{"pid": 7, "comm": "driftwatch"}]},
            {"id": 4, "name": "other_prog", "run_time_ns": 1, "run_cnt": 1},
            {"id": 5, "name": "dw_inet_sock_set_state"}
        ]);
        let p = programs_of(&v, 42);
        assert_eq!(
            p["dw_sched_process_exec"],
            ProgRuns {
                run_time_ns: 1000,
                run_cnt: 4
            }
        );
        // No holders listed: counted, without stats: zeros.
        assert_eq!(p["dw_inet_sock_set_state"], ProgRuns::default());
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn runs_between_two_readings_subtract_per_program() {
        let r = |t, c| ProgRuns {
            run_time_ns: t,
            run_cnt: c,
        };
        let before = BTreeMap::from([("dw_a".to_string(), r(100, 1))]);
        let after = BTreeMap::from([("dw_a".to_string(), r(350, 3)), ("dw_b".into(), r(7, 1))]);
        let d = runs_between(&before, &after);
        assert_eq!(d["dw_a"], r(250, 2));
        assert_eq!(d["dw_b"], r(7, 1));
    }
}
