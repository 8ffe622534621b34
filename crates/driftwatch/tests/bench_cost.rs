//! The cost benchmark keeps working: `dw-bench --only cost --quick` against the agent built
//! for these tests, twice in the same rounds (as `--baseline-agent` compares two builds),
//! and its JSON report checked for every figure of issue 19's goal table: each is there and
//! a number (or n/a where the agent counted nothing of that kind), never what it is.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftwatch_testkit::*;
use serde_json::Value;

const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const LOOPS: [&str; 5] = [
    "exec",
    "file_var_tmp",
    "file_watched",
    "host_getppid",
    "connect_new",
];

/// dw-bench of the same build: `cargo test --workspace` builds it next to driftwatch (its
/// crate has integration tests of its own).
fn dw_bench() -> PathBuf {
    Path::new(DRIFTWATCH).with_file_name("dw-bench")
}

fn number(r: &Value, v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v} in {r:#}"))
}

#[test]
fn the_cost_benchmark_reports_every_figure_of_the_goal_table() {
    require!(
        Bpf,
        Docker,
        Image(BUSYBOX),
        Image(DEBIAN),
        Tool("bpftool"),
        File(
            "/sys/fs/cgroup/cpuacct",
            "a cgroup v1 cpuacct hierarchy, as the bench's hosts mount"
        )
    );
    let bench = dw_bench();
    if !require_that(if bench.exists() {
        Ok(())
    } else {
        Err(format!(
            "needs {} (cargo build -p driftwatch-bench)",
            bench.display()
        ))
    }) {
        return;
    }
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let out = Command::new(&bench)
        .args(["--only", "cost", "--quick", "--agent", DRIFTWATCH])
        .args(["--baseline-agent", DRIFTWATCH, "--out"])
        .arg(dir.path())
        .arg("--json")
        .arg(&json_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dw-bench failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let same: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cost.json")).unwrap())
            .unwrap();
    assert_eq!(
        r, same,
        "--json and the report next to the flame graphs differ"
    );
    assert_eq!(r["benchmark"], "cost");
    assert_eq!(r["quick"], true);
    assert_eq!(r["rounds"], 1);
    let labels: Vec<&str> = r["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["agent", "baseline"], "{r:#}");

    let loops = r["loops"].as_array().unwrap();
    let names: Vec<&str> = loops.iter().map(|l| l["loop"].as_str().unwrap()).collect();
    assert_eq!(names, LOOPS);
    for l in loops {
        let name = l["loop"].as_str().unwrap();
        let events = number(&r, &l["events"], "events");
        assert!(events > 0.0, "{name}: {l:#}");
        let off = number(&r, &l["off"]["workload_ns_per_event"], "off per event");
        assert!(off > 0.0, "{name}: the workload took no CPU: {l:#}");
        for label in &labels {
            let o = &l["on"][label];
            for f in [
                "total_ratio",
                "total_cpu_ns",
                "workload_cpu_ns",
                "agent_cpu_ns",
            ] {
                for stat in ["median", "min", "max"] {
                    number(&r, &o[f][stat], &format!("{name}.{label}.{f}.{stat}"));
                }
            }
            for f in [
                "workload_ratio",
                "agent_ns_per_event",
                "agent_share_of_workload",
            ] {
                number(&r, &o[f], &format!("{name}.{label}.{f}"));
            }
            // Per counted event: n/a only where the agent counted none of the loop's kind.
            let counted = &o["agent_events_counted"];
            let per_counted = &o["agent_ns_per_counted_event"];
            if name == "host_getppid" {
                assert!(counted.is_null() && per_counted.is_null(), "{o:#}");
            } else {
                let n = number(&r, counted, &format!("{name}.{label} counted"));
                assert_eq!(per_counted.is_null(), n == 0.0, "{name}.{label}: {o:#}");
                if name == "exec" || name == "connect_new" {
                    assert!(n > 0.0, "{name}.{label}: the agent counted none: {o:#}");
                }
            }
            let bpf = o["bpf"].as_object().unwrap();
            assert!(
                bpf.keys().all(|k| k.starts_with("dw_")),
                "{name}.{label}: {o:#}"
            );
            for (prog, p) in bpf {
                for f in ["runs_per_event", "ns_per_event", "share_of_workload"] {
                    number(&r, &p[f], &format!("{name}.{label}.{prog}.{f}"));
                }
                if number(&r, &p["runs_per_event"], "runs") > 0.0 {
                    number(&r, &p["ns_per_run"], &format!("{name}.{label}.{prog}"));
                }
            }
            if name == "exec" {
                let exec = &bpf["dw_sched_process_exec"];
                assert!(
                    number(&r, &exec["runs_per_event"], "exec runs per exec") >= 1.0,
                    "the exec program ran for every exec: {exec:#}"
                );
                number(&r, &exec["ns_per_run"], "exec program ns per run");
            }
        }
    }
    for label in &labels {
        let lat = &r["exec_to_alert"][label];
        assert!(
            number(&r, &lat["samples"], "latency samples") >= 1.0,
            "{lat:#}"
        );
        for q in ["p50_us", "p99_us"] {
            number(&r, &lat[q], &format!("{label} exec-to-alert {q}"));
        }
        let p = &r["profile"][label];
        if optional(Requirement::Tool("perf").check()) {
            assert!(number(&r, &p["samples"], "profile samples") >= 0.0);
            let svg = std::fs::read_to_string(p["svg"].as_str().unwrap()).unwrap();
            assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
            assert!(Path::new(p["top_text"].as_str().unwrap()).exists(), "{p:#}");
            assert!(Path::new(p["folded"].as_str().unwrap()).exists(), "{p:#}");
        } else {
            assert!(p["skipped"].as_str().is_some(), "{p:#}");
        }
    }
    for line in [
        "exec (",
        "file_var_tmp (",
        "connect_new (",
        "exec-to-alert latency",
        "agent CPU profile",
        "BPF dw_sched_process_exec",
    ] {
        assert!(
            text.contains(line),
            "{line:?} missing from the report:\n{text}"
        );
    }
}
