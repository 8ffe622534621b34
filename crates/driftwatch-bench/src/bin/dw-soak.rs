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
use driftwatch_bench::{Agent, AgentCgroup, Container, docker, open_fds, rss_kib};

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
        let agent = Agent::start(bin, cg, &["--ring-mib", &ring])?;
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

fn churn(a: &Args, bin: &std::path::Path, cg: &AgentCgroup) -> anyhow::Result<()> {
    let agent = Agent::start(bin, cg, &[])?;
    let pid = agent.pid();
    let round = |n: u64| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || -> anyhow::Result<()> {
                    for _ in 0..n.div_ceil(4) {
                        let c = Container::start(&[])?;
                        c.sh("/bin/true; cp /bin/busybox /tmp/true; /tmp/true")?;
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
    round(8)?;
    std::thread::sleep(Duration::from_secs(2));
    let (fds0, rss0) = (open_fds(pid), rss_kib(pid));
    let t = Instant::now();
    round(a.churn)?;
    let secs = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    let (fds1, rss1) = (open_fds(pid), rss_kib(pid));
    let s = agent.stop()?;
    println!(
        "container churn: {} containers created, exec'd in, removed in {secs:.0} s; agent fds {fds0} -> {fds1}, RSS {:.1} -> {:.1} MiB; registry at the end {} entries ({} live; destroyed ones linger <= 60 s, at most 64); fds at exit {}",
        a.churn,
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        s["containers_known"],
        s["containers_live"],
        s["open_fds"],
    );
    Ok(())
}

fn burst(a: &Args, bin: &std::path::Path, cg: &AgentCgroup) -> anyhow::Result<()> {
    let c = Container::start(&[])?;
    c.sh("mkdir -p /tmp/b && cp /bin/busybox /tmp/b/true")?;
    let agent = Agent::start(bin, cg, &["--dedup-window", "10s"])?;
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
