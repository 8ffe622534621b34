//! `dw-soak`: the long reliability runs of issue 9, with figures. An exec storm across
//! many containers for a set time at each ring-buffer size (rate, losses, memory sampled),
//! container churn (fds, memory, registry before/after) and a drift burst (alerts after
//! deduplication, execs processed). The short versions are tests/reliability.rs.
//!
//! Run as root with dockerd up and the test images built:
//! `cargo build --release -p driftwatch -p driftwatch-bench && target/release/dw-soak`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use driftwatch_bench::{
    AgentCgroup, BenchAgent, Container, docker, free_port, open_fds, rss_kib, scrape_metrics,
};

#[derive(Parser)]
struct Args {
    /// The driftwatch binary (build it with --release).
    #[arg(long, default_value = "target/release/driftwatch")]
    agent: PathBuf,
    /// Containers exec'ing in parallel in the storm.
    #[arg(long, default_value_t = 8)]
    storm_containers: usize,
    /// How long the storm runs at each ring size, seconds.
    #[arg(long, default_value_t = 60)]
    storm_secs: u64,
    /// Ring buffer sizes to storm with, MiB.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    ring_mib: Vec<u32>,
    /// Containers created, exec'd in and removed.
    #[arg(long, default_value_t = 300)]
    churn: u64,
    /// Containers created, exec'd in and removed at once in the churn.
    #[arg(long, default_value_t = 6)]
    churn_parallel: u64,
    /// Drifted execs in the burst.
    #[arg(long, default_value_t = 10_000)]
    burst: u64,
    /// Only these parts (storm,churn,burst).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Samples the agent's RSS every 500 ms until stopped: (min, max) KiB.
struct RssSampler {
    stop: Arc<AtomicBool>,
    min: Arc<AtomicU64>,
    max: Arc<AtomicU64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (min, max) = (
            Arc::new(AtomicU64::new(u64::MAX)),
            Arc::new(AtomicU64::default()),
        );
        let (s, lo, hi) = (stop.clone(), min.clone(), max.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let r = rss_kib(pid);
                if r > 0 {
                    lo.fetch_min(r, Ordering::Relaxed);
                    hi.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        RssSampler { stop, min, max }
    }

    fn finish(self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        (
            self.min.load(Ordering::Relaxed) as f64 / 1024.0,
            self.max.load(Ordering::Relaxed) as f64 / 1024.0,
        )
    }
}

fn storm(a: &Args, bin: &std::path::Path, cg: &AgentCgroup) -> anyhow::Result<()> {
    let cs: Vec<Container> = (0..a.storm_containers)
        .map(|_| Container::start(&[]))
        .collect::<anyhow::Result<_>>()?;
    for &mib in &a.ring_mib {
        let ring = mib.to_string();
        let agent = BenchAgent::start(bin, cg, &["--ring-mib", &ring])?;
        let rss = RssSampler::start(agent.pid());
        let t = Instant::now();
        // Each loop runs for storm_secs inside its container and prints its exec count.
        let script = format!(
            "end=$(( $(date +%s) + {} )); n=0; while [ $(date +%s) -lt $end ]; do i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done; n=$((n+200)); done; echo $n",
            a.storm_secs
        );
        let loops: Vec<_> = cs
            .iter()
            .map(|c| {
                let (id, script) = (c.0.clone(), script.clone());
                std::thread::spawn(move || docker(&["exec", &id, "sh", "-c", &script]))
            })
            .collect();
        let mut execs = 0u64;
        for l in loops {
            let out = l
                .join()
                .map_err(|_| anyhow::anyhow!("storm thread panicked"))??;
            execs += out.trim().parse::<u64>().unwrap_or(0);
        }
        let secs = t.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs(1));
        let (lo, hi) = rss.finish();
        let alerts = std::fs::read_to_string(agent.alerts_path()).unwrap_or_default();
        let loss_alerts = alerts
            .lines()
            .filter(|l| l.contains("\"Driftwatch events lost\""))
            .count();
        let s = agent.stop()?;
        println!(
            "exec storm, ring {mib:>2} MiB: {} containers, ~{execs} execs of /bin/true in {secs:.0} s = {:.0} execs/s; agent processed {}, lost {}, malformed {}, loss alerts {loss_alerts}; RSS {lo:.1}..{hi:.1} MiB",
            a.storm_containers,
            execs as f64 / secs,
            s["execs_processed"],
            s["lost"],
            s["malformed"],
        );
    }
    Ok(())
}

/// Each churned container: an exec of the image's program, a dropped binary run (binary and
/// file drift), a file written under /etc, a TCP listener and a connect on loopback (the
/// network sensor). Same as the churn test in tests/reliability.rs.
const CHURN_SCRIPT: &str = "/bin/true; cp /bin/busybox /tmp/true; /tmp/true; echo churn > /etc/churn; \
     (nc -l -p 8080 >/dev/null 2>&1 &); sleep 0.2; nc 127.0.0.1 8080 </dev/null >/dev/null 2>&1; true";

/// The agent's footprint as its /metrics tells: per-key BPF map entries and the registry.
#[derive(Clone, Debug, Default)]
struct Footprint {
    maps: std::collections::BTreeMap<String, u64>,
    known: u64,
    fds: u64,
    /// `driftwatch_processes_known`: exec'd container processes remembered.
    procs: u64,
}

impl Footprint {
    fn scrape(port: u16) -> anyhow::Result<Footprint> {
        let mut f = Footprint::default();
        for (series, v) in scrape_metrics(port)? {
            if let Some(m) = series
                .strip_prefix("driftwatch_bpf_map_entries{map=\"")
                .and_then(|m| m.strip_suffix("\"}"))
            {
                f.maps.insert(m.to_string(), v as u64);
            } else if series == "driftwatch_containers_known" {
                f.known = v as u64;
            } else if series == "process_open_fds" {
                f.fds = v as u64;
            } else if series == "driftwatch_processes_known" {
                f.procs = v as u64;
            }
        }
        Ok(f)
    }

    fn maps_text(&self) -> String {
        self.maps
            .iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn churn(a: &Args, bin: &std::path::Path, cg: &AgentCgroup) -> anyhow::Result<()> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let agent = BenchAgent::start(bin, cg, &["--api-listen", &listen])?;
    let pid = agent.pid();
    let started = Arc::new(AtomicU64::new(0));
    // Containers whose run or exec failed (another session restarting dockerd, ...): counted
    // and reported, the churn goes on.
    let failed = Arc::new(AtomicU64::new(0));
    let round = |n: u64, progress: bool| -> anyhow::Result<()> {
        let next = Arc::new(AtomicU64::new(0));
        let t = Instant::now();
        let workers: Vec<_> = (0..a.churn_parallel.max(1))
            .map(|_| {
                let (next, started, failed) = (next.clone(), started.clone(), failed.clone());
                std::thread::spawn(move || -> anyhow::Result<()> {
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        let run = Container::start(&["--label", "driftwatch-bench=dw-soak"])
                            .and_then(|c| c.sh(CHURN_SCRIPT));
                        if let Err(e) = run {
                            eprintln!("  churn: one container failed: {e:#}");
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        let done = started.fetch_add(1, Ordering::Relaxed) + 1;
                        if progress && done.is_multiple_of(250) {
                            let alerts = scrape_metrics(port)
                                .ok()
                                .and_then(|m| {
                                    m.into_iter()
                                        .find(|(k, _)| k == "driftwatch_alerts_total")
                                })
                                .map_or(0.0, |(_, v)| v);
                            eprintln!(
                                "  churn: {done} containers in {:.0} s; agent RSS {:.1} MiB, fds {}, alerts so far {alerts}",
                                t.elapsed().as_secs_f64(),
                                rss_kib(pid) as f64 / 1024.0,
                                open_fds(pid)
                            );
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("churn thread panicked"))??;
        }
        Ok(())
    };
    let f0 = Footprint::scrape(port)?;
    round(8, false)?;
    std::thread::sleep(Duration::from_secs(2));
    let (fds0, rss0) = (open_fds(pid), rss_kib(pid));
    let kinds0 = fd_kinds(pid);
    // The peak of each count while containers come and go.
    let peak = Arc::new(std::sync::Mutex::new(Footprint::default()));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(f) = Footprint::scrape(port) {
                    let mut p = peak.lock().unwrap_or_else(|p| p.into_inner());
                    for (m, v) in f.maps {
                        let e = p.maps.entry(m).or_default();
                        *e = (*e).max(v);
                    }
                    p.known = p.known.max(f.known);
                    p.fds = p.fds.max(f.fds);
                    p.procs = p.procs.max(f.procs);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let rss = RssSampler::start(pid);
    let t = Instant::now();
    started.store(0, Ordering::Relaxed);
    round(a.churn, true)?;
    let secs = t.elapsed().as_secs_f64();
    let (fds1, rss1) = (open_fds(pid), rss_kib(pid));
    let f1 = Footprint::scrape(port)?;
    // Destroyed containers linger in the registry at most 60 s; net_recent entries the
    // dedupe window and a 5 s sweep. Wait for that (bounded), then count again.
    let t_settle = Instant::now();
    let mut f2 = Footprint::scrape(port)?;
    while t_settle.elapsed() < Duration::from_secs(90)
        && (f2.known > f0.known
            || f2
                .maps
                .iter()
                .any(|(m, n)| *n > f0.maps.get(m).copied().unwrap_or(0)))
    {
        std::thread::sleep(Duration::from_secs(1));
        f2 = Footprint::scrape(port)?;
    }
    let settle_secs = t_settle.elapsed().as_secs_f64();
    let (fds2, rss2) = (open_fds(pid), rss_kib(pid));
    let kinds2 = fd_kinds(pid);
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    let (_, rss_hi) = rss.finish();
    let peak = peak.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let s = agent.stop()?;
    println!(
        "container churn: {} containers created, exec'd in (exec, dropped binary, file write, TCP listen+connect), removed in {secs:.0} s ({:.1}/s, {} at once); {} failed",
        a.churn,
        a.churn as f64 / secs,
        a.churn_parallel,
        failed.load(Ordering::Relaxed),
    );
    println!(
        "  agent fds (/proc) {fds0} -> {fds1} right after -> {fds2} after {settle_secs:.0} s; RSS {:.1} -> {:.1} -> {:.1} MiB (peak {rss_hi:.1})",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        rss2 as f64 / 1024.0,
    );
    println!(
        "  BPF map entries (/metrics): before [{}], peak [{}], right after [{}], after {settle_secs:.0} s [{}]",
        f0.maps_text(),
        peak.maps_text(),
        f1.maps_text(),
        f2.maps_text()
    );
    println!(
        "  registry (driftwatch_containers_known): before {}, peak {}, right after {}, after {settle_secs:.0} s {}; at exit {} entries ({} live), fds {}, execs processed {}, lost {}",
        f0.known,
        peak.known,
        f1.known,
        f2.known,
        s["containers_known"],
        s["containers_live"],
        s["open_fds"],
        s["execs_processed"],
        s["lost"],
    );
    println!(
        "  processes remembered (driftwatch_processes_known): before {}, peak {}, right after {}, after {settle_secs:.0} s {}",
        f0.procs, peak.procs, f1.procs, f2.procs,
    );
    let mut grown: Vec<String> = kinds2
        .iter()
        .filter_map(|(k, n)| {
            let before = kinds0.get(k).copied().unwrap_or(0);
            (*n != before).then(|| format!("{k} {before} -> {n}"))
        })
        .collect();
    grown.extend(
        kinds0
            .iter()
            .filter(|(k, _)| !kinds2.contains_key(*k))
            .map(|(k, n)| format!("{k} {n} -> 0")),
    );
    println!(
        "  fds that changed, by kind: {}; alerts raised {} (the API keeps the last {} in memory)",
        if grown.is_empty() {
            "none".to_string()
        } else {
            grown.join(", ")
        },
        s["alerts"],
        driftwatch_api::AlertRing::DEFAULT_CAPACITY,
    );
    Ok(())
}

/// The agent's open fds by what they are: `socket`, `anon_inode:[eventfd]`, `/dev/null`,
/// a directory for files, ...
fn fd_kinds(pid: u32) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        let kind = match t.split_once(':') {
            Some(("anon_inode", rest)) => format!("anon_inode:{rest}"),
            Some((k, _)) if !k.starts_with('/') => k.to_string(),
            _ => t
                .rsplit_once('/')
                .map_or(t.to_string(), |(d, _)| format!("{d}/")),
        };
        *out.entry(kind).or_default() += 1;
    }
    out
}

fn burst(a: &Args, bin: &std::path::Path, cg: &AgentCgroup) -> anyhow::Result<()> {
    let c = Container::start(&[])?;
    c.sh("mkdir -p /tmp/b && cp /bin/busybox /tmp/b/true")?;
    let agent = BenchAgent::start(bin, cg, &["--dedup-window", "10s"])?;
    let t = Instant::now();
    c.sh(&format!(
        "i=0; while [ $i -lt {} ]; do /tmp/b/true; i=$((i+1)); done",
        a.burst
    ))?;
    let secs = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let alerts = std::fs::read_to_string(agent.alerts_path()).unwrap_or_default();
    let burst_alerts = alerts.lines().filter(|l| l.contains("/tmp/b/true")).count();
    let s = agent.stop()?;
    println!(
        "drift burst: {} drifted execs in {secs:.2} s ({:.0}/s); agent processed {} execs, lost {}; {burst_alerts} alerts sent, {} suppressed as repeats (window 10 s); alert latency p99 {:.2} ms",
        a.burst,
        a.burst as f64 / secs,
        s["execs_processed"],
        s["lost"],
        s["alerts_suppressed"],
        s["alert_latency_p99_us"].as_f64().unwrap_or(f64::NAN) / 1e3,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("dw-soak needs root (it starts the agent and containers)");
    }
    let bin = a.agent.canonicalize().with_context(|| {
        format!(
            "{}: build it with cargo build --release -p driftwatch",
            a.agent.display()
        )
    })?;
    let cg = AgentCgroup::new_named("dw-soak")?;
    let want = |p: &str| a.only.is_empty() || a.only.iter().any(|o| o == p);
    if want("storm") {
        storm(&a, &bin, &cg)?;
    }
    if want("churn") {
        churn(&a, &bin, &cg)?;
    }
    if want("burst") {
        burst(&a, &bin, &cg)?;
    }
    Ok(())
}
