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

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

const DOCKER: &str = "/usr/bin/docker";
const DEBIAN: &str = "driftwatch-test/debian:12";
const CPUACCT: &str = "/sys/fs/cgroup/cpuacct";

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

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(DOCKER)
        .args(args)
        .output()
        .context("running docker")?;
    if !out.status.success() {
        bail!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn read_u64(p: &Path) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    s.trim()
        .parse()
        .with_context(|| format!("parsing {}", p.display()))
}

/// A `--network none` container removed on drop.
struct Container(String);

impl Container {
    fn start() -> anyhow::Result<Container> {
        Ok(Container(docker(&[
            "run",
            "-d",
            "--network",
            "none",
            DEBIAN,
            "sleep",
            "3600",
        ])?))
    }

    fn cpu_ns(&self) -> anyhow::Result<u64> {
        read_u64(
            &Path::new(CPUACCT)
                .join("docker")
                .join(&self.0)
                .join("cpuacct.usage"),
        )
    }

    /// Runs the workload; returns its wall time in seconds as Python measured it.
    fn workload(&self, n: u64, mode: &str) -> anyhow::Result<f64> {
        let out = docker(&[
            "exec",
            &self.0,
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
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER)
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A cpuacct cgroup of the agent's own, removed on drop.
struct AgentCgroup(PathBuf);

impl AgentCgroup {
    fn new() -> anyhow::Result<AgentCgroup> {
        let p = Path::new(CPUACCT).join(format!("dw-net-bench-{}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(AgentCgroup(p))
    }

    fn cpu_ns(&self) -> anyhow::Result<u64> {
        read_u64(&self.0.join("cpuacct.usage"))
    }
}

impl Drop for AgentCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

struct Agent {
    child: Child,
    stats: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(bin: &Path, cg: &AgentCgroup) -> anyhow::Result<Agent> {
        let dir = tempfile::tempdir()?;
        let stats = dir.path().join("stats.json");
        let mut child = Command::new(bin)
            .args(["run", "--no-stdout", "--json-out"])
            .arg(dir.path().join("alerts.json"))
            .arg("--stats-json")
            .arg(&stats)
            // A fresh baseline each time, learning for the whole sample: every destination
            // is judged and recorded (the learning path writes the file, the costlier one).
            .arg("--baseline-file")
            .arg(dir.path().join("baselines.json"))
            .args(["--learning-window", "1h"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        std::fs::write(cg.0.join("cgroup.procs"), child.id().to_string())
            .context("moving the agent to its cgroup")?;
        let stderr = child.stderr.take().context("agent stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("watching every container") {
                    let _ = tx.send(());
                }
                if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("  [agent] {line}");
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            bail!("the agent did not start within 60 s");
        }
        Ok(Agent {
            child,
            stats,
            _dir: dir,
        })
    }

    fn stop(mut self) -> anyhow::Result<serde_json::Value> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait()?;
        let text = std::fs::read_to_string(&self.stats).context("reading the agent's stats")?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

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
        Some(cg) => Some(Agent::start(&args.agent, cg)?),
        None => None,
    };
    let a0 = cg.map(|c| c.cpu_ns()).transpose()?.unwrap_or(0);
    let w0 = c.cpu_ns()?;
    let wall_s = c.workload(args.conns, mode)?;
    let w1 = c.cpu_ns()?;
    // Let the agent finish what the kernel queued before its CPU is read.
    if agent.is_some() {
        std::thread::sleep(Duration::from_millis(300));
    }
    let a1 = cg.map(|c| c.cpu_ns()).transpose()?.unwrap_or(0);
    let stats = agent.map(Agent::stop).transpose()?;
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
    let cg = AgentCgroup::new()?;
    let c = Container::start()?;
    // Warm up: Python's first start reads its modules from disk.
    c.workload(1000, "same")?;
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
        let (cpu_ratio, wall_ratio) = (median(&mut cpu), median(&mut wall));
        println!(
            "{mode:>8}: {} connects, cpu ratio (workload+agent on / workload off) {cpu_ratio:.3}, \
             wall ratio {wall_ratio:.3}; workload cpu off {:.3} s, on {:.3} s, agent {:.3} s; \
             agent saw {} records (kernel deduped {}, lost {}), findings {} alerted, {} over budget",
            args.conns,
            median(&mut off_cpu),
            median(&mut on_cpu),
            median(&mut agent_cpu),
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
