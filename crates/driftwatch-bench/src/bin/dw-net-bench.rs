//! `dw-net-bench`: the cost of network-drift sensing on a network-heavy loopback workload in a
//! container (`--network none`), agent off vs on, in one run.
//!
//! Workloads (Python in the Debian test image, on 127.0.0.1 inside the container):
//! - `same`: connect + accept + close to one listener, N times (a client reconnecting to its
//!   database): one destination, repeats dropped in the kernel after the first.
//! - `distinct`: connects to N different closed ports (refused), a port scan: every connect is
//!   a new destination, so every one crosses to user space and is judged; past the per-image
//!   learning cap they are drift, alerted up to the per-container budget (the worst case).
//!
//! Each figure is the median over rounds of (workload CPU + agent CPU) with the agent on,
//! over the workload CPU with it off; CPU is read from cpuacct cgroups (the container's, and
//! one made for the agent). Run as root with dockerd up and the test images built:
//! `target/release/dw-net-bench --agent target/release/driftwatch`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use driftwatch_bench::{AgentCgroup, BenchAgent, Container, DEBIAN, docker, median};

#[derive(Parser)]
struct Args {
    /// The driftwatch binary to measure (build it with --release).
    #[arg(long, default_value = "target/release/driftwatch")]
    agent: PathBuf,
    /// Connections per sample.
    #[arg(long, default_value_t = 20_000)]
    conns: u64,
    /// Off/on pairs per workload (medians are reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Write the results as JSON here too.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

const WORKLOAD: &str = r#"
import socket, struct, sys, time
n, mode = int(sys.argv[1]), sys.argv[2]
linger = struct.pack('ii', 1, 0)  # close with RST: no TIME_WAIT pile-up across samples
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 0))
srv.listen(1024)
port = srv.getsockname()[1]
t = time.perf_counter()
for i in range(n):
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    if mode == 'same':
        c.connect(('127.0.0.1', port))
        a, _ = srv.accept()
        a.close()
    else:
        try:
            c.connect(('127.0.0.1', 20000 + i % 40000))
        except OSError:
            pass
    c.close()
print(time.perf_counter() - t)
"#;

/// Runs the workload in `c`; returns its wall time in seconds as Python measured it.
fn workload(c: &Container, n: u64, mode: &str) -> anyhow::Result<f64> {
    let out = docker(&[
        "exec",
        &c.0,
        "python3",
        "-c",
        WORKLOAD,
        &n.to_string(),
        mode,
    ])?;
    out.trim()
        .parse()
        .with_context(|| format!("workload output {out:?}"))
}

/// A fresh baseline each time, learning for the whole sample: every destination is judged
/// and recorded (the learning path writes the file, the costlier one).
const AGENT_ARGS: [&str; 4] = [
    "--baseline-file",
    "{dir}/baselines.json",
    "--learning-window",
    "1h",
];

struct Sample {
    workload_cpu_s: f64,
    agent_cpu_s: f64,
    wall_s: f64,
}

fn sample(
    args: &Args,
    c: &Container,
    mode: &str,
    cg: Option<&AgentCgroup>,
) -> anyhow::Result<(Sample, Option<serde_json::Value>)> {
    let agent = match cg {
        Some(cg) => Some(BenchAgent::start(&args.agent, cg, &AGENT_ARGS)?),
        None => None,
    };
    let a0 = cg.map(|c| c.cpu_ns()).transpose()?.unwrap_or(0);
    let w0 = c.cpu_ns()?;
    let wall_s = workload(c, args.conns, mode)?;
    let w1 = c.cpu_ns()?;
    // Let the agent finish what the kernel queued before its CPU is read.
    if agent.is_some() {
        std::thread::sleep(Duration::from_millis(300));
    }
    let a1 = cg.map(|c| c.cpu_ns()).transpose()?.unwrap_or(0);
    let stats = agent.map(BenchAgent::stop).transpose()?;
    Ok((
        Sample {
            workload_cpu_s: (w1 - w0) as f64 / 1e9,
            agent_cpu_s: (a1 - a0) as f64 / 1e9,
            wall_s,
        },
        stats,
    ))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("dw-net-bench needs root (it starts the agent and reads cgroups)");
    }
    if !args.agent.exists() {
        bail!(
            "{}: no agent binary (cargo build --release -p driftwatch)",
            args.agent.display()
        );
    }
    let cg = AgentCgroup::new_named("dw-net-bench")?;
    let c = Container::start_image(DEBIAN, &[])?;
    // Warm up: Python's first start reads its modules from disk.
    workload(&c, 1000, "same")?;
    let mut results = serde_json::Map::new();
    for mode in ["same", "distinct"] {
        let (mut cpu, mut wall) = (Vec::new(), Vec::new());
        let mut last_stats = None;
        let (mut off_cpu, mut on_cpu, mut agent_cpu) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.rounds {
            let (off, _) = sample(&args, &c, mode, None)?;
            let (on, stats) = sample(&args, &c, mode, Some(&cg))?;
            cpu.push((on.workload_cpu_s + on.agent_cpu_s) / off.workload_cpu_s);
            wall.push(on.wall_s / off.wall_s);
            off_cpu.push(off.workload_cpu_s);
            on_cpu.push(on.workload_cpu_s);
            agent_cpu.push(on.agent_cpu_s);
            last_stats = stats;
        }
        let net = last_stats
            .as_ref()
            .map(|s| s["net"].clone())
            .unwrap_or_default();
        let (cpu_ratio, wall_ratio) = (median(&cpu), median(&wall));
        println!(
            "{mode:>8}: {} connects, cpu ratio (workload+agent on / workload off) {cpu_ratio:.3}, \
             wall ratio {wall_ratio:.3}; workload cpu off {:.3} s, on {:.3} s, agent {:.3} s; \
             agent saw {} records (kernel deduped {}, lost {}), findings {} alerted, {} over budget",
            args.conns,
            median(&off_cpu),
            median(&on_cpu),
            median(&agent_cpu),
            net["kernel_sent"],
            net["kernel_deduped"],
            net["lost"],
            net["findings"],
            net["findings_suppressed"],
        );
        results.insert(
            mode.into(),
            serde_json::json!({
                "connects": args.conns,
                "cpu_ratio": cpu_ratio,
                "wall_ratio": wall_ratio,
                "agent_net_stats": net,
            }),
        );
    }
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::Value::Object(results).to_string())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
