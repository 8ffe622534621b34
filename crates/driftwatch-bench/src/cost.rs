//! `dw-bench --only cost`: every figure of issue 19's goal table in one run, each next to
//! the same workload measured with the agent off in that run: the BPF programs' cost
//! (`bpf_stats`), the agent's CPU per event by kind, total CPU off vs on for each loop
//! (alternating rounds, medians and spread), exec-to-alert latency, and a CPU profile of the
//! agent drawn as a flame graph. With `--baseline-agent` another driftwatch binary is
//! measured in the same rounds, so before and after share the machine's noise.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use driftwatch_bench::bpf_stats::{self, BpfStatsOn, ProgRuns};
use driftwatch_bench::flamegraph;
use driftwatch_bench::{AgentCgroup, BenchAgent, Container, DEBIAN, docker, median};
use serde_json::{Value, json};

/// Sizes of one cost run.
pub struct CostSizes {
    pub rounds: usize,
    pub execs: u64,
    pub files: u64,
    pub syscalls: u64,
    pub conns: u64,
    pub latency_execs: u64,
    /// How long the agent is given after a loop to take what the kernel queued.
    pub settle: Duration,
}

impl CostSizes {
    /// `--quick`: tiny sizes, one round (CI checks that the benchmark runs, not its numbers).
    pub fn quick() -> CostSizes {
        CostSizes {
            rounds: 1,
            execs: 20,
            files: 50,
            syscalls: 10_000,
            conns: 50,
            latency_execs: 10,
            settle: Duration::from_millis(300),
        }
    }
}

/// A driftwatch binary under test and its label in the report.
pub struct AgentUnderTest {
    pub label: &'static str,
    pub bin: PathBuf,
}

pub struct CostRun {
    pub sizes: CostSizes,
    pub agents: Vec<AgentUnderTest>,
    /// Where the report, its JSON and the flame graphs go.
    pub out: PathBuf,
    pub json: Option<PathBuf>,
    pub quick: bool,
}

/// Each agent's baselines and alerts in its own temp dir (the alert store too: the bench
/// never writes the host's), learning destinations for the whole run so that every new
/// connect is judged and recorded (the costlier path), no API (not per-event work).
const AGENT_ARGS: [&str; 7] = [
    "--baseline-file",
    "{dir}/baselines.json",
    "--learning-window",
    "1h",
    "--store",
    "{dir}/alerts.db",
    "--no-api",
];

/// The file loop: create, rename, delete, in a directory the default rules exclude.
const VAR_TMP_LOOP: &str = "import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n):
    p = os.path.join(d, 'f%d' % i)
    open(p, 'w').close()
    os.rename(p, p + '.r')
    os.remove(p + '.r')
";

/// Every connect to a port nobody listens on, a new one each time (refused): each is a new
/// destination for the network sensor.
const CONNECT_LOOP: &str = "import socket, struct, sys
n = int(sys.argv[1])
linger = struct.pack('ii', 1, 0)
for i in range(n):
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    try:
        c.connect(('127.0.0.1', 20000 + i % 40000))
    except OSError:
        pass
    c.close()
";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Loop {
    Exec,
    FileVarTmp,
    FileWatched,
    HostSyscalls,
    Connect,
}

const LOOPS: [Loop; 5] = [
    Loop::Exec,
    Loop::FileVarTmp,
    Loop::FileWatched,
    Loop::HostSyscalls,
    Loop::Connect,
];

impl Loop {
    fn key(self) -> &'static str {
        match self {
            Loop::Exec => "exec",
            Loop::FileVarTmp => "file_var_tmp",
            Loop::FileWatched => "file_watched",
            Loop::HostSyscalls => "host_getppid",
            Loop::Connect => "connect_new",
        }
    }

    /// What one workload event is, for "per event" figures.
    fn event(self) -> &'static str {
        match self {
            Loop::Exec => "exec",
            Loop::FileVarTmp | Loop::FileWatched => "file cycle",
            Loop::HostSyscalls => "syscall",
            Loop::Connect => "connect",
        }
    }

    fn events(self, s: &CostSizes) -> u64 {
        match self {
            Loop::Exec => s.execs,
            Loop::FileVarTmp | Loop::FileWatched => s.files,
            Loop::HostSyscalls => s.syscalls,
            Loop::Connect => s.conns,
        }
    }

    fn describe(self, s: &CostSizes) -> String {
        match self {
            Loop::Exec => format!("{} execs of /bin/true from sh in a container", s.execs),
            Loop::FileVarTmp => format!(
                "{} cycles of create, rename, delete in /var/tmp (excluded by the default rules) in a container",
                s.files
            ),
            Loop::FileWatched => format!(
                "{} cycles of create, write, rename, chmod, delete in /root/work (watched) in a container",
                s.files
            ),
            Loop::HostSyscalls => format!("{} getppid calls on the host", s.syscalls),
            Loop::Connect => format!(
                "{} loopback connects, a new destination each, in a container",
                s.conns
            ),
        }
    }

    /// The agent's own count of this loop's events, from `--stats-json`: execs received,
    /// file notices, network records. `None`: no such kind, or a counter this version lacks.
    fn counted(self, stats: &Value) -> Option<u64> {
        match self {
            Loop::Exec => stats["execs_processed"].as_u64(),
            Loop::FileVarTmp | Loop::FileWatched => stats["files"]["notices"].as_u64(),
            Loop::Connect => stats["net"]["kernel_sent"].as_u64(),
            Loop::HostSyscalls => None,
        }
    }

    fn counted_name(self) -> &'static str {
        match self {
            Loop::Exec => "exec records (execs_processed)",
            Loop::FileVarTmp | Loop::FileWatched => "file notices (files.notices)",
            Loop::Connect => "network records (net.kernel_sent)",
            Loop::HostSyscalls => "none",
        }
    }
}

/// Where the loops run: a busybox container for execs, a Debian one for Python loops.
struct Workloads {
    busybox: Container,
    debian: Container,
}

impl Workloads {
    fn start() -> anyhow::Result<Workloads> {
        Ok(Workloads {
            busybox: Container::start(&[])?,
            debian: Container::start_image(DEBIAN, &[])?,
        })
    }

    /// Runs one loop; returns the workload's CPU in ns (its container's cgroup, or for host
    /// syscalls the calling thread's CPU clock).
    fn run(&self, lp: Loop, s: &CostSizes) -> anyhow::Result<u64> {
        match lp {
            Loop::Exec => {
                let c = &self.busybox;
                let cpu0 = c.cpu_ns()?;
                c.sh(&format!(
                    "i=0; while [ $i -lt {} ]; do /bin/true; i=$((i+1)); done",
                    s.execs
                ))?;
                Ok(c.cpu_ns()? - cpu0)
            }
            Loop::FileVarTmp => {
                self.python(VAR_TMP_LOOP, &["/var/tmp/dw-cost", &s.files.to_string()])
            }
            Loop::FileWatched => {
                self.python(crate::FILE_WORKLOAD, &["/root/work", &s.files.to_string()])
            }
            Loop::Connect => self.python(CONNECT_LOOP, &[&s.conns.to_string()]),
            Loop::HostSyscalls => {
                let t0 = thread_cpu_ns();
                for _ in 0..s.syscalls {
                    // SAFETY: getppid has no preconditions.
                    unsafe { libc::syscall(libc::SYS_getppid) };
                }
                Ok(thread_cpu_ns() - t0)
            }
        }
    }

    fn python(&self, script: &str, args: &[&str]) -> anyhow::Result<u64> {
        let c = &self.debian;
        let cpu0 = c.cpu_ns()?;
        let mut a = vec!["exec", c.0.as_str(), "python3", "-c", script];
        a.extend_from_slice(args);
        docker(&a)?;
        Ok(c.cpu_ns()? - cpu0)
    }
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One loop with one agent on.
struct OnSample {
    workload_ns: u64,
    agent_ns: u64,
    counted: Option<u64>,
    bpf: BTreeMap<String, ProgRuns>,
}

fn on_sample(
    w: &Workloads,
    lp: Loop,
    s: &CostSizes,
    agent: &AgentUnderTest,
    cg: &AgentCgroup,
) -> anyhow::Result<OnSample> {
    let a = BenchAgent::start(&agent.bin, cg, &AGENT_ARGS)?;
    std::thread::sleep(s.settle);
    let bpf0 = bpf_stats::driftwatch_programs(a.pid())?;
    let a0 = cg.cpu_ns()?;
    let workload_ns = w.run(lp, s)?;
    // Host syscalls queue nothing for the agent to take: no settle time, whose idle agent CPU
    // would weigh on a short loop.
    if lp != Loop::HostSyscalls {
        std::thread::sleep(s.settle);
    }
    let agent_ns = cg.cpu_ns()? - a0;
    let bpf1 = bpf_stats::driftwatch_programs(a.pid())?;
    let stats = a.stop()?;
    // Stats are written at exit only: nothing counted runs in the containers while the agent
    // starts, so the run's count is the loop's.
    let counted = lp.counted(&stats);
    Ok(OnSample {
        workload_ns,
        agent_ns,
        counted,
        bpf: bpf_stats::runs_between(&bpf0, &bpf1),
    })
}

/// The samples of one loop over all rounds.
#[derive(Default)]
struct LoopSamples {
    off_ns: Vec<f64>,
    on: BTreeMap<&'static str, Vec<OnSample>>,
}

pub fn run(r: &CostRun) -> anyhow::Result<Value> {
    std::fs::create_dir_all(&r.out).with_context(|| format!("creating {}", r.out.display()))?;
    let s = &r.sizes;
    let cg = AgentCgroup::new_named("dw-bench-cost")?;
    let stats_guard = BpfStatsOn::enable()?;
    let w = Workloads::start()?;
    // Warm up: page cache, Python's modules, the image's binaries.
    for lp in LOOPS {
        w.run(lp, &small(s))?;
    }
    let mut samples: BTreeMap<Loop, LoopSamples> = BTreeMap::new();
    for round in 0..s.rounds {
        eprintln!("cost: round {}/{}", round + 1, s.rounds);
        for lp in LOOPS {
            let e = samples.entry(lp).or_default();
            e.off_ns.push(w.run(lp, s)? as f64);
            // Each round starts with a different agent: neither always follows the off run.
            for i in 0..r.agents.len() {
                let agent = &r.agents[(i + round) % r.agents.len()];
                let sample = on_sample(&w, lp, s, agent, &cg)?;
                e.on.entry(agent.label).or_default().push(sample);
            }
        }
    }
    let mut latency = serde_json::Map::new();
    for agent in &r.agents {
        latency.insert(agent.label.into(), exec_to_alert(&w, s, agent, &cg)?);
    }
    drop(stats_guard);
    let mut profile = serde_json::Map::new();
    for agent in &r.agents {
        profile.insert(
            agent.label.into(),
            agent_profile(&w, s, agent, &cg, &r.out)?,
        );
    }
    let loops: Vec<Value> = LOOPS
        .iter()
        .map(|&lp| loop_report(lp, s, &samples[&lp], &r.agents))
        .collect();
    let report = json!({
        "benchmark": "cost",
        "quick": r.quick,
        "rounds": s.rounds,
        "agents": r.agents.iter().map(|a| json!({"label": a.label, "path": a.bin.display().to_string()})).collect::<Vec<_>>(),
        "loops": loops,
        "exec_to_alert": latency,
        "profile": profile,
    });
    let text = render_text(&report);
    print!("{text}");
    std::fs::write(r.out.join("cost.txt"), &text)?;
    let json_text = serde_json::to_string_pretty(&report)?;
    std::fs::write(r.out.join("cost.json"), &json_text)?;
    if let Some(p) = &r.json {
        std::fs::write(p, &json_text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(report)
}

/// The warm-up's sizes: a tenth of the run's.
fn small(s: &CostSizes) -> CostSizes {
    CostSizes {
        rounds: 1,
        execs: (s.execs / 10).max(1),
        files: (s.files / 10).max(1),
        syscalls: (s.syscalls / 10).max(1),
        conns: (s.conns / 10).max(1),
        latency_execs: s.latency_execs,
        settle: s.settle,
    }
}

/// Median, min and max of a sample (`null`s when it is empty or not finite).
fn spread(v: &[f64]) -> Value {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return json!({"median": null, "min": null, "max": null});
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!({"median": median(&v), "min": min, "max": max})
}

fn num(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

fn loop_report(lp: Loop, s: &CostSizes, ls: &LoopSamples, agents: &[AgentUnderTest]) -> Value {
    let events = lp.events(s) as f64;
    let off_per_event = median(&ls.off_ns) / events;
    let mut by_agent = serde_json::Map::new();
    for agent in agents {
        let on = &ls.on[agent.label];
        // Round i's on sample against round i's off sample.
        let ratios: Vec<f64> = on
            .iter()
            .zip(&ls.off_ns)
            .map(|(o, &off)| (o.workload_ns + o.agent_ns) as f64 / off)
            .collect();
        let total_on: Vec<f64> = on
            .iter()
            .map(|o| (o.workload_ns + o.agent_ns) as f64)
            .collect();
        let workload_on: Vec<f64> = on.iter().map(|o| o.workload_ns as f64).collect();
        let agent_ns: Vec<f64> = on.iter().map(|o| o.agent_ns as f64).collect();
        let counted: Vec<Option<u64>> = on.iter().map(|o| o.counted).collect();
        let per_counted: Vec<f64> = on
            .iter()
            .filter_map(|o| {
                o.counted
                    .filter(|&n| n > 0)
                    .map(|n| o.agent_ns as f64 / n as f64)
            })
            .collect();
        let agent_per_counted = if per_counted.is_empty() {
            None
        } else {
            Some(median(&per_counted))
        };
        let agent_per_event = median(&agent_ns) / events;
        let mut programs = serde_json::Map::new();
        let names: std::collections::BTreeSet<&String> =
            on.iter().flat_map(|o| o.bpf.keys()).collect();
        for name in names {
            let runs: Vec<ProgRuns> = on
                .iter()
                .map(|o| o.bpf.get(name).copied().unwrap_or_default())
                .collect();
            let ns_per_run: Vec<f64> = runs
                .iter()
                .filter(|r| r.run_cnt > 0)
                .map(|r| r.run_time_ns as f64 / r.run_cnt as f64)
                .collect();
            let runs_per_event = median(
                &runs
                    .iter()
                    .map(|r| r.run_cnt as f64 / events)
                    .collect::<Vec<_>>(),
            );
            let ns_per_event = median(
                &runs
                    .iter()
                    .map(|r| r.run_time_ns as f64 / events)
                    .collect::<Vec<_>>(),
            );
            programs.insert(
                name.clone(),
                json!({
                    "ns_per_run": if ns_per_run.is_empty() { Value::Null } else { num(median(&ns_per_run)) },
                    "runs_per_event": num(runs_per_event),
                    "ns_per_event": num(ns_per_event),
                    "share_of_workload": num(ns_per_event / off_per_event),
                }),
            );
        }
        let counted_median = {
            let c: Vec<u64> = counted.iter().flatten().copied().collect();
            if c.len() == counted.len() && !c.is_empty() {
                json!(median(&c))
            } else {
                Value::Null
            }
        };
        by_agent.insert(
            agent.label.into(),
            json!({
                "total_cpu_ns": spread(&total_on),
                "total_ratio": spread(&ratios),
                "workload_cpu_ns": spread(&workload_on),
                "workload_ratio": num(median(&workload_on) / median(&ls.off_ns)),
                "agent_cpu_ns": spread(&agent_ns),
                "agent_ns_per_event": num(agent_per_event),
                "agent_share_of_workload": num(agent_per_event / off_per_event),
                "agent_events_counted": counted_median,
                "agent_ns_per_counted_event": agent_per_counted.map_or(Value::Null, num),
                "bpf": programs,
            }),
        );
    }
    json!({
        "loop": lp.key(),
        "what": lp.describe(s),
        "event": lp.event(),
        "events": lp.events(s),
        "counted_as": lp.counted_name(),
        "off": {
            "workload_cpu_ns": spread(&ls.off_ns),
            "workload_ns_per_event": num(off_per_event),
        },
        "on": by_agent,
    })
}

/// Drifted execs (a copy of busybox run from /tmp), spaced out: the agent measures each
/// alert from the kernel's exec timestamp to the alert written.
fn exec_to_alert(
    w: &Workloads,
    s: &CostSizes,
    agent: &AgentUnderTest,
    cg: &AgentCgroup,
) -> anyhow::Result<Value> {
    let a = BenchAgent::start(&agent.bin, cg, &AGENT_ARGS)?;
    std::thread::sleep(s.settle);
    w.busybox.sh("cp /bin/busybox /tmp/dw-cost-true")?;
    w.busybox.sh(&format!(
        "i=0; while [ $i -lt {} ]; do /tmp/dw-cost-true true; usleep 2000; i=$((i+1)); done",
        s.latency_execs
    ))?;
    std::thread::sleep(s.settle);
    let st = a.stop()?;
    Ok(json!({
        "drifted_execs": s.latency_execs,
        "samples": st["alert_latency_samples"].as_u64(),
        "p50_us": st["alert_latency_p50_us"].as_u64(),
        "p99_us": st["alert_latency_p99_us"].as_u64(),
    }))
}

/// `perf record -F 999 -g` on the agent during the exec and file loops, folded, drawn
/// (`flame-LABEL.svg`) and summed by function (`top-LABEL.txt`) in `out`.
fn agent_profile(
    w: &Workloads,
    s: &CostSizes,
    agent: &AgentUnderTest,
    cg: &AgentCgroup,
    out: &Path,
) -> anyhow::Result<Value> {
    let perf_ok = Command::new("perf")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !perf_ok {
        return Ok(json!({"skipped": "no perf command (apt-get install linux-perf)"}));
    }
    let label = agent.label;
    let data = out.join(format!("perf-{label}.data"));
    // perf keeps an earlier file as .old: none of either is left behind.
    let old_data = out.join(format!("perf-{label}.data.old"));
    let _ = std::fs::remove_file(&data);
    let a = BenchAgent::start(&agent.bin, cg, &AGENT_ARGS)?;
    let a_pid = a.pid();
    std::thread::sleep(s.settle);
    let mut perf = Command::new("perf")
        .args(["record", "-F", "999", "-g", "-o"])
        .arg(&data)
        .args(["-p", &a_pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting perf record")?;
    // perf attaches asynchronously; give it a moment before the loops.
    std::thread::sleep(Duration::from_millis(500));
    let loops = [Loop::Exec, Loop::FileWatched, Loop::FileVarTmp]
        .into_iter()
        .try_for_each(|lp| w.run(lp, s).map(|_| ()));
    std::thread::sleep(s.settle);
    // SAFETY: signalling our own child; perf writes its data and exits on SIGINT.
    unsafe { libc::kill(perf.id() as i32, libc::SIGINT) };
    let status = perf.wait()?;
    a.stop()?;
    loops?;
    // perf record ends on SIGINT by re-raising it once its data is written.
    let stopped_by_us =
        std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGINT);
    if !(status.success() || stopped_by_us) || !data.exists() {
        bail!("perf record -p {} failed: {status}", a_pid);
    }
    let script = Command::new("perf")
        .args(["script", "--no-inline", "-i"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()
        .context("running perf script")?;
    if !script.status.success() {
        bail!("perf script -i {}: {}", data.display(), script.status);
    }
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_file(&old_data);
    let folded = flamegraph::fold_perf_script(&String::from_utf8_lossy(&script.stdout));
    let samples: u64 = folded.values().sum();
    let folded_path = out.join(format!("{label}.folded"));
    let svg_path = out.join(format!("flame-{label}.svg"));
    let top_path = out.join(format!("top-{label}.txt"));
    let mut folded_text = String::new();
    for (stack, n) in &folded {
        let _ = writeln!(folded_text, "{stack} {n}");
    }
    std::fs::write(&folded_path, folded_text)?;
    let title = format!(
        "{} ({label}): CPU during the exec and file loops, perf -F 999",
        agent.bin.display()
    );
    std::fs::write(&svg_path, flamegraph::render_svg(&folded, &title))?;
    let top = flamegraph::top_functions(&folded, 25);
    std::fs::write(&top_path, flamegraph::top_functions_text(&folded, 40))?;
    Ok(json!({
        "samples": samples,
        "svg": svg_path.display().to_string(),
        "folded": folded_path.display().to_string(),
        "top_text": top_path.display().to_string(),
        "top": top.iter().map(|f| json!({
            "function": f.name,
            "self_share": f.self_samples as f64 / samples.max(1) as f64,
            "total_share": f.total_samples as f64 / samples.max(1) as f64,
        })).collect::<Vec<_>>(),
    }))
}

/// `n/a` for a figure the measured version does not count.
fn fmt(v: &Value, scale: f64, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "n/a".into(), |x| format!("{:.*}", digits, x * scale))
}

/// The report as text: per loop, the agent-off figures, then one line per agent.
pub fn render_text(r: &Value) -> String {
    let mut t = String::new();
    let labels: Vec<&str> = r["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["label"].as_str())
        .collect();
    let _ = writeln!(
        t,
        "cost benchmark: {} round(s), agent off then each agent on, alternating; medians [min-max] of per-round ratios; CPU from cgroups",
        r["rounds"]
    );
    for a in r["agents"].as_array().into_iter().flatten() {
        let _ = writeln!(
            t,
            "  {}: {}",
            a["label"].as_str().unwrap_or("?"),
            a["path"].as_str().unwrap_or("?")
        );
    }
    for l in r["loops"].as_array().into_iter().flatten() {
        let ev = l["event"].as_str().unwrap_or("event");
        let _ = writeln!(
            t,
            "\n{} ({}): workload off {} us per {ev}, {} ms in all",
            l["loop"].as_str().unwrap_or("?"),
            l["what"].as_str().unwrap_or(""),
            fmt(&l["off"]["workload_ns_per_event"], 1e-3, 3),
            fmt(&l["off"]["workload_cpu_ns"]["median"], 1e-6, 1),
        );
        for label in &labels {
            let o = &l["on"][label];
            let _ = writeln!(
                t,
                "  {label:<9} total x{} [{}-{}] ({} ms; workload x{}); agent {} us per {ev} ({}% of the workload), {} us per counted event ({} {})",
                fmt(&o["total_ratio"]["median"], 1.0, 3),
                fmt(&o["total_ratio"]["min"], 1.0, 3),
                fmt(&o["total_ratio"]["max"], 1.0, 3),
                fmt(&o["total_cpu_ns"]["median"], 1e-6, 1),
                fmt(&o["workload_ratio"], 1.0, 3),
                fmt(&o["agent_ns_per_event"], 1e-3, 2),
                fmt(&o["agent_share_of_workload"], 100.0, 2),
                fmt(&o["agent_ns_per_counted_event"], 1e-3, 2),
                fmt(&o["agent_events_counted"], 1.0, 0),
                l["counted_as"].as_str().unwrap_or(""),
            );
            for (name, p) in o["bpf"].as_object().into_iter().flatten() {
                if p["runs_per_event"].as_f64().unwrap_or(0.0) == 0.0 {
                    continue;
                }
                let _ = writeln!(
                    t,
                    "            BPF {name}: {} ns per run, {} runs per {ev}, {}% of the workload",
                    fmt(&p["ns_per_run"], 1.0, 0),
                    fmt(&p["runs_per_event"], 1.0, 3),
                    fmt(&p["share_of_workload"], 100.0, 3),
                );
            }
        }
    }
    let _ = writeln!(
        t,
        "\nexec-to-alert latency (from the kernel's exec timestamp, measured by the agent):"
    );
    for label in &labels {
        let l = &r["exec_to_alert"][label];
        let _ = writeln!(
            t,
            "  {label:<9} {} alerts of {} drifted execs, p50 {} ms, p99 {} ms",
            fmt(&l["samples"], 1.0, 0),
            l["drifted_execs"],
            fmt(&l["p50_us"], 1e-3, 3),
            fmt(&l["p99_us"], 1e-3, 3),
        );
    }
    let _ = writeln!(
        t,
        "\nagent CPU profile (perf record -F 999 -g, exec and file loops):"
    );
    for label in &labels {
        let p = &r["profile"][label];
        if let Some(why) = p["skipped"].as_str() {
            let _ = writeln!(t, "  {label:<9} skipped: {why}");
            continue;
        }
        let _ = writeln!(
            t,
            "  {label:<9} {} samples, flame graph {}, functions {}",
            p["samples"],
            p["svg"].as_str().unwrap_or("?"),
            p["top_text"].as_str().unwrap_or("?")
        );
        for f in p["top"].as_array().into_iter().flatten().take(8) {
            let _ = writeln!(
                t,
                "            {:>6}% self {:>6}% total  {}",
                fmt(&f["self_share"], 100.0, 2),
                fmt(&f["total_share"], 100.0, 2),
                f["function"].as_str().unwrap_or("?")
            );
        }
    }
    t
}
