//! dw-pod-bench: what issue 16 asks measured on a Kubernetes node, made by the testkit's
//! kubelet-like `CriNode` (a containerd of our own driven through CRI) with a real
//! `driftwatch run` watching it.
//!
//! 1. Time to the first alert naming the pod: each of `--pods` pods has one container whose
//!    command's first act is to copy a binary and run it. Measured to the moment the agent's
//!    binary-drift alert, carrying `k8s.pod.name` and `k8s.ns.name`, is in its JSON file (a
//!    thread reads the file every 2 ms), from when CRI `StartContainer` returned and from the
//!    container's start as CRI records it (`ContainerStatus.startedAt`); and from that start
//!    to the alert's own time (when the kernel saw the exec). The same for as many `docker
//!    run` containers (from `docker run -d` returning and `.State.StartedAt`) in the same run,
//!    the baseline. Every alert of each pod's container is checked to name the pod.
//! 2. The agent's memory: RSS and PSS (`/proc/PID/smaps_rollup`) idle with no pods, then
//!    with `--memory-pods` pods running (each a container that wrote below /etc once, so the
//!    agent has seen it), side by side.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use driftwatch_bench::{AgentCgroup, BenchAgent};
use driftwatch_testkit::{BUSYBOX, ContainerSpec, CriNode, PodSpec, TestContainer, docker_ok};
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// The driftwatch binary to measure (build it with --release).
    #[arg(long, default_value = "target/release/driftwatch")]
    bin: PathBuf,
    /// Pods (and as many Docker containers) timed to their first alert.
    #[arg(long, default_value_t = 20)]
    pods: usize,
    /// Pods running while the agent's memory is read.
    #[arg(long, default_value_t = 100)]
    memory_pods: usize,
}

/// What a drifting container runs: its first act copies busybox and runs the copy.
const DRIFT_FIRST: &str =
    "mkdir -p /tmp/d && cp /bin/busybox /tmp/d/true && /tmp/d/true; exec sleep 3600";

/// The agent's alerts, each with the moment it was first seen in the file.
#[derive(Clone, Default)]
struct SeenAlerts(Arc<Mutex<Vec<(Value, SystemTime)>>>);

impl SeenAlerts {
    /// Follows `path` on a thread until the process exits.
    fn follow(path: PathBuf) -> SeenAlerts {
        let seen = SeenAlerts::default();
        let out = seen.clone();
        std::thread::spawn(move || {
            let mut offset = 0;
            let mut partial = String::new();
            loop {
                if let Ok(mut f) = std::fs::File::open(&path)
                    && f.seek(SeekFrom::Start(offset)).is_ok()
                {
                    let mut r = BufReader::new(f);
                    let mut line = String::new();
                    while let Ok(n) = r.read_line(&mut line) {
                        if n == 0 {
                            break;
                        }
                        offset += n as u64;
                        if !line.ends_with('\n') {
                            partial.push_str(&line);
                            line.clear();
                            continue;
                        }
                        let whole = std::mem::take(&mut partial) + &line;
                        let now = SystemTime::now();
                        if let Ok(v) = serde_json::from_str::<Value>(&whole) {
                            out.0
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((v, now));
                        }
                        line.clear();
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        seen
    }

    fn snapshot(&self) -> Vec<(Value, SystemTime)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The first alert `pred` accepts, waiting up to `limit`.
    fn wait(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<(Value, SystemTime)> {
        let start = Instant::now();
        loop {
            if let Some(hit) = self.snapshot().into_iter().find(|(a, _)| pred(a)) {
                return Ok(hit);
            }
            if start.elapsed() > limit {
                bail!("{what}: no alert within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn field<'a>(a: &'a Value, name: &str) -> &'a str {
    a["output_fields"][name].as_str().unwrap_or("")
}

fn is_drift_of(a: &Value, short: &str) -> bool {
    field(a, "container.id") == short
        && field(a, "drift.path") == "/tmp/d/true"
        && a["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "binary_drift"))
}

fn ns_of(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

fn rfc3339_ns(s: &str) -> anyhow::Result<i128> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("not an RFC 3339 time: {s:?}"))?;
    Ok(t.unix_timestamp_nanos())
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// `Rss:` and `Pss:` of `/proc/PID/smaps_rollup`, KiB; PSS `None` when unreadable.
fn memory_kib(pid: u32) -> (u64, Option<u64>) {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let get = |key: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    let rss = get("Rss:").unwrap_or_else(|| driftwatch_bench::rss_kib(pid));
    (rss, get("Pss:"))
}

/// One container's times, ms: from the start call's return (CRI `StartContainer`, `docker
/// run -d`) and from the runtime's recorded start, to the alert in the file; and from the
/// recorded start to the exec the alert is about (its kernel time).
struct Latency {
    returned_to_file_ms: f64,
    started_to_file_ms: f64,
    started_to_event_ms: f64,
}

fn report(what: &str, v: &[Latency]) {
    let pick = |f: fn(&Latency) -> f64| v.iter().map(f).collect::<Vec<f64>>();
    let q = |x: &[f64]| {
        format!(
            "p50 {:>6.1} p99 {:>6.1}",
            quantile(x, 0.5),
            quantile(x, 0.99)
        )
    };
    println!(
        "  {what:<24} n={:<3} {} | {} | {}",
        v.len(),
        q(&pick(|l| l.returned_to_file_ms)),
        q(&pick(|l| l.started_to_file_ms)),
        q(&pick(|l| l.started_to_event_ms)),
    );
}

fn pod_latencies(node: &CriNode, seen: &SeenAlerts, n: usize) -> anyhow::Result<Vec<Latency>> {
    let mut out = Vec::new();
    for i in 0..n {
        let name = format!("lat-{i}");
        let pod = node.run_pod(
            PodSpec::new(&name, "bench")
                .label("app", "lat")
                .container(ContainerSpec::busybox("app").command(&["sh", "-c", DRIFT_FIRST])),
        );
        let c = pod.first();
        let (a, written) = seen.wait(&name, Duration::from_secs(30), |a| {
            is_drift_of(a, c.short())
        })?;
        for (k, want) in [("k8s.pod.name", name.as_str()), ("k8s.ns.name", "bench")] {
            if field(&a, k) != want {
                bail!(
                    "pod {name}: the first drift alert has {k}={:?}: {a}",
                    field(&a, k)
                );
            }
        }
        let mine: Vec<Value> = seen
            .snapshot()
            .into_iter()
            .map(|(a, _)| a)
            .filter(|a| field(a, "container.id") == c.short())
            .collect();
        if let Some(bad) = mine.iter().find(|a| field(a, "k8s.pod.name") != name) {
            bail!("pod {name}: an alert without the pod: {bad}");
        }
        let started = i128::from(c.started_at_ns());
        let event = rfc3339_ns(a["time"].as_str().unwrap_or_default())?;
        out.push(Latency {
            returned_to_file_ms: (ns_of(written) - ns_of(c.started)) as f64 / 1e6,
            started_to_file_ms: (ns_of(written) - started) as f64 / 1e6,
            started_to_event_ms: (event - started) as f64 / 1e6,
        });
    }
    Ok(out)
}

fn docker_latencies(seen: &SeenAlerts, n: usize) -> anyhow::Result<Vec<Latency>> {
    let mut out = Vec::new();
    for i in 0..n {
        let c = TestContainer::run(&[BUSYBOX, "sh", "-c", DRIFT_FIRST]);
        let returned = SystemTime::now();
        let short = &c.id[..12];
        let (a, written) = seen.wait(&format!("docker {i}"), Duration::from_secs(30), |a| {
            is_drift_of(a, short)
        })?;
        let started = rfc3339_ns(&docker_ok(&[
            "inspect",
            "-f",
            "{{.State.StartedAt}}",
            &c.id,
        ]))?;
        let event = rfc3339_ns(a["time"].as_str().unwrap_or_default())?;
        out.push(Latency {
            returned_to_file_ms: (ns_of(written) - ns_of(returned)) as f64 / 1e6,
            started_to_file_ms: (ns_of(written) - started) as f64 / 1e6,
            started_to_event_ms: (event - started) as f64 / 1e6,
        });
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.pods == 0 {
        bail!("--pods must be at least 1");
    }
    CriNode::check(&[BUSYBOX]).map_err(anyhow::Error::msg)?;
    let node = CriNode::start(&[BUSYBOX]);
    let cg = AgentCgroup::new_named("dw-pod-bench")?;
    let agent = BenchAgent::start(&args.bin, &cg, &["--containerd-socket", node.socket_arg()])?;
    let seen = SeenAlerts::follow(agent.alerts_path());
    let pid = agent.pid();

    std::thread::sleep(Duration::from_secs(10));
    let idle = memory_kib(pid);

    let t = Instant::now();
    let mut pods = Vec::new();
    for i in 0..args.memory_pods {
        pods.push(
            node.run_pod(PodSpec::new(&format!("mem-{i}"), "bench").container(
                ContainerSpec::busybox("app").command(&[
                    "sh",
                    "-c",
                    "echo x > /etc/dw-mark; exec sleep 3600",
                ]),
            )),
        );
    }
    let made = t.elapsed();
    let ids: BTreeSet<String> = pods.iter().map(|p| p.first().short().to_string()).collect();
    let start = Instant::now();
    loop {
        let alerted: BTreeSet<String> = seen
            .snapshot()
            .iter()
            .map(|(a, _)| field(a, "container.id").to_string())
            .filter(|id| ids.contains(id))
            .collect();
        if alerted.len() == ids.len() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!("the agent reported {} of {} pods", alerted.len(), ids.len());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(10));
    let busy = memory_kib(pid);
    drop(pods);
    let t = Instant::now();
    let pods_lat = pod_latencies(&node, &seen, args.pods)?;
    let docker_lat = docker_latencies(&seen, args.pods)?;
    let timed = t.elapsed();
    agent.stop()?;

    println!(
        "dw-pod-bench: {} pods timed, {} Docker containers, agent memory with 0 and {} pods ({} made in {:.0} s; latency runs {:.0} s)",
        args.pods,
        args.pods,
        args.memory_pods,
        args.memory_pods,
        made.as_secs_f64(),
        timed.as_secs_f64()
    );
    println!("ms to the container's first drift alert (negative: before the start call returned):");
    println!(
        "  {:<30} {:<21} | {:<21} | the runtime's start time",
        "", "start call returned", "the runtime's start time"
    );
    println!(
        "  {:<30} {:<21} | {:<21} | to the exec",
        "", "to alert written", "to alert written"
    );
    report("CRI pod (names the pod)", &pods_lat);
    report("docker run (baseline)", &docker_lat);
    let mib = |k: u64| k as f64 / 1024.0;
    let pss = |p: Option<u64>| p.map_or("unreadable".into(), |k| format!("{:.1} MiB", mib(k)));
    println!("agent memory:");
    println!(
        "  {:<10} {:>12} {:>14}",
        "",
        "0 pods",
        format!("{} pods", args.memory_pods)
    );
    println!(
        "  {:<10} {:>8.1} MiB {:>10.1} MiB   x{:.2}",
        "RSS",
        mib(idle.0),
        mib(busy.0),
        busy.0 as f64 / idle.0.max(1) as f64
    );
    match (idle.1, busy.1) {
        (Some(a), Some(b)) => println!(
            "  {:<10} {:>8.1} MiB {:>10.1} MiB   x{:.2}",
            "PSS",
            mib(a),
            mib(b),
            b as f64 / a.max(1) as f64
        ),
        (a, b) => println!("  {:<10} {:>12} {:>14}", "PSS", pss(a), pss(b)),
    }
    Ok(())
}
