//! `dw-bench`: driftwatch's overhead and latency, agent off vs on, measured in one run on
//! this machine. Every figure is a ratio against a baseline taken in the same run, or an
//! absolute the agent measured itself (alert latency, memory, losses).
//!
//! Run as root with dockerd up and the test images built: `scripts/bench`.

mod cost;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use driftwatch_bench::{AgentCgroup, BenchAgent, Container, DEBIAN, docker, median};

/// Creates, writes, renames and deletes `n` small files in `dir`: pure file system work.
pub(crate) const FILE_WORKLOAD: &str = "import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n):
    p = os.path.join(d, 'f%d' % i)
    with open(p, 'w') as f:
        f.write('data %d' % i)
    q = p + '.renamed'
    os.rename(p, q)
    os.chmod(q, 0o600)
    os.remove(q)
";

#[derive(Parser)]
struct Args {
    /// The driftwatch binary to measure (build it with --release).
    #[arg(long, default_value = "target/release/driftwatch")]
    agent: PathBuf,
    /// getppid calls per host-syscall sample.
    #[arg(long, default_value_t = 3_000_000)]
    syscalls: u64,
    /// /bin/true execs per container exec-loop sample.
    #[arg(long, default_value_t = 2000)]
    execs: u64,
    /// Off/on rounds per measurement (medians are reported) [default: 9 for cost, 5 for
    /// the others, 1 with --quick].
    #[arg(long)]
    rounds: Option<usize>,
    /// Drifted execs for the latency measurement.
    #[arg(long, default_value_t = 500)]
    latency_execs: u64,
    /// Containers running while agent memory is measured.
    #[arg(long, default_value_t = 50)]
    containers: usize,
    /// Execs per loop in the storm (4 loops in parallel).
    #[arg(long, default_value_t = 5000)]
    storm_execs: u64,
    /// Files created, written, renamed, re-moded and deleted per file-workload sample.
    #[arg(long, default_value_t = 3000)]
    files: u64,
    /// The container directory the file workload runs in: `/root/work` is watched by the
    /// default rules (below /root), `/var/tmp` is a scratch place no rule but the setuid one
    /// can match.
    #[arg(long, default_value = "/root/work")]
    files_dir: String,
    /// Drifted execs per prevention latency measurement.
    #[arg(long, default_value_t = 300)]
    block_execs: u64,
    /// New-destination connects per cost sample.
    #[arg(long, default_value_t = 5000)]
    conns: u64,
    /// Only run these parts (comma-separated: cost,syscalls,execs,latency,memory,storm,
    /// files,prevent).
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(PARTS))]
    only: Vec<String>,
    /// Tiny sizes and one round: checks that the benchmark runs (CI), measures nothing.
    #[arg(long)]
    quick: bool,
    /// Another driftwatch binary measured in the same cost rounds, alternating with --agent
    /// (e.g. a release build of main before a change).
    #[arg(long, value_name = "PATH")]
    baseline_agent: Option<PathBuf>,
    /// Where the cost report (cost.txt, cost.json) and the agent's flame graphs go.
    #[arg(long, value_name = "DIR", default_value = "target/bench")]
    out: PathBuf,
    /// Write the cost report as JSON here too.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

const PARTS: [&str; 8] = [
    "cost", "syscalls", "execs", "latency", "memory", "storm", "files", "prevent",
];

impl Args {
    /// Rounds of the parts other than cost.
    fn rounds(&self) -> usize {
        self.rounds.unwrap_or(if self.quick { 1 } else { 5 })
    }

    fn cost_run(&self, agent: PathBuf) -> anyhow::Result<cost::CostRun> {
        let mut agents = vec![cost::AgentUnderTest {
            label: "agent",
            bin: agent,
        }];
        if let Some(b) = &self.baseline_agent {
            agents.push(cost::AgentUnderTest {
                label: "baseline",
                bin: b
                    .canonicalize()
                    .with_context(|| format!("{}", b.display()))?,
            });
        }
        let mut sizes = if self.quick {
            cost::CostSizes::quick()
        } else {
            cost::CostSizes {
                rounds: 9,
                execs: self.execs,
                files: self.files,
                syscalls: self.syscalls,
                conns: self.conns,
                latency_execs: self.latency_execs,
                settle: Duration::from_secs(1),
            }
        };
        if let Some(r) = self.rounds {
            sizes.rounds = r.max(1);
        }
        Ok(cost::CostRun {
            sizes,
            agents,
            out: self.out.clone(),
            json: self.json.clone(),
            quick: self.quick,
        })
    }
}

fn getppid_loop(n: u64) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn exec_loop_script(n: u64, exe: &str) -> String {
    format!("i=0; while [ $i -lt {n} ]; do {exe}; i=$((i+1)); done")
}

/// (wall seconds, container CPU ns) of one exec loop.
fn exec_loop(c: &Container, n: u64) -> anyhow::Result<(f64, u64)> {
    let cpu0 = c.cpu_ns()?;
    let t = Instant::now();
    c.sh(&exec_loop_script(n, "/bin/true"))?;
    Ok((t.elapsed().as_secs_f64(), c.cpu_ns()? - cpu0))
}

/// (wall seconds, CPU ns) of the file workload run by `argv` (a python3 command line);
/// `cpu` reads the CPU counter of whatever runs it.
fn timed(argv: &[&str], cpu: &dyn Fn() -> anyhow::Result<u64>) -> anyhow::Result<(f64, u64)> {
    let c0 = cpu()?;
    let t = Instant::now();
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .with_context(|| format!("running {argv:?}"))?;
    if !out.status.success() {
        bail!("{argv:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok((t.elapsed().as_secs_f64(), cpu()? - c0))
}

/// Issue 4's file figures: a file-heavy workload in a container and on the host, agent off
/// vs on (total CPU: workload + agent), and file-drift alert latency.
fn file_workloads(a: &Args, bin: &Path, cg: &AgentCgroup) -> anyhow::Result<()> {
    let c = Container::start_image(DEBIAN, &[])?;
    let n = a.files.to_string();
    let script = FILE_WORKLOAD;
    let in_container = [
        "/usr/bin/docker",
        "exec",
        &c.0,
        "python3",
        "-c",
        script,
        &a.files_dir,
        &n,
    ];
    let host_dir = tempfile::tempdir()?;
    let host_path = host_dir.path().join("work").display().to_string();
    let on_host = ["python3", "-c", script, &host_path, &n];
    // Host CPU of the python process is its own: measure it with a cgroup of its own.
    let host_cg = AgentCgroup::new_named("dw-bench-host")?;
    let cont_cpu = || c.cpu_ns();
    let run_host = |argv: &[&str]| -> anyhow::Result<(f64, u64)> {
        let c0 = host_cg.cpu_ns()?;
        let t = Instant::now();
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .spawn()?;
        std::fs::write(host_cg.0.join("cgroup.procs"), child.id().to_string())?;
        let st = child.wait()?;
        if !st.success() {
            bail!("{argv:?} failed");
        }
        Ok((t.elapsed().as_secs_f64(), host_cg.cpu_ns()? - c0))
    };
    timed(&in_container, &cont_cpu)?; // warm up
    let (mut c_off, mut c_on, mut h_off, mut h_on) = (vec![], vec![], vec![], vec![]);
    let (mut c_agent, mut c_work, mut c_notices) = (vec![], vec![], vec![]);
    for _ in 0..a.rounds() {
        c_off.push(timed(&in_container, &cont_cpu)?.1 as f64);
        h_off.push(run_host(&on_host)?.1 as f64);
        let agent = BenchAgent::start(bin, cg, &[])?;
        let a0 = cg.cpu_ns()?;
        let (_, cpu) = timed(&in_container, &cont_cpu)?;
        // Let the agent finish this run's notices before the host run is measured.
        std::thread::sleep(Duration::from_millis(1500));
        let agent_ns = (cg.cpu_ns()? - a0) as f64;
        c_on.push(cpu as f64 + agent_ns);
        c_agent.push(agent_ns);
        c_work.push(cpu as f64);
        let a1 = cg.cpu_ns()?;
        let (_, cpu) = run_host(&on_host)?;
        h_on.push(cpu as f64 + (cg.cpu_ns()? - a1) as f64);
        let s = agent.stop()?;
        c_notices.push(s["files"]["notices"].as_f64().unwrap_or(f64::NAN));
    }
    println!(
        "file loop container: {} files x (create, write, rename, chmod, delete), total CPU off {:.0} ms, on {:.0} ms, ratio x{:.3} (goal <= 1.05)",
        a.files,
        median(&c_off) / 1e6,
        median(&c_on) / 1e6,
        median(&c_on) / median(&c_off)
    );
    println!(
        "                     of which workload {:.0} ms (kernel-side fanotify cost included), agent {:.0} ms",
        median(&c_work) / 1e6,
        median(&c_agent) / 1e6
    );
    let notices = median(&c_notices);
    println!(
        "                     in {}: {notices:.0} file notices per run, agent {:.2} us per file, {:.2} us per notice",
        a.files_dir,
        median(&c_agent) / 1e3 / a.files as f64,
        median(&c_agent) / 1e3 / notices.max(1.0)
    );
    println!(
        "file loop host:      same workload outside containers, total CPU off {:.0} ms, on {:.0} ms, ratio x{:.3} (goal <= 1.01)",
        median(&h_off) / 1e6,
        median(&h_on) / 1e6,
        median(&h_on) / median(&h_off)
    );
    // Latency: files created below /etc, spaced out; the agent measures from the file's
    // ctime (the kernel's time of the change) to the alert written.
    let agent = BenchAgent::start(bin, cg, &[])?;
    std::thread::sleep(Duration::from_millis(500));
    c.sh("i=0; while [ $i -lt 200 ]; do echo x > /etc/dw-lat-$i; sleep 0.02; i=$((i+1)); done")?;
    std::thread::sleep(Duration::from_millis(500));
    let s = agent.stop()?;
    println!(
        "file-drift alert:    {} alerts, p50 {:.2} ms, p99 {:.2} ms (goal p99 <= 50 ms)",
        s["alert_latency_samples"],
        s["alert_latency_p50_us"].as_f64().unwrap_or(f64::NAN) / 1e3,
        s["alert_latency_p99_us"].as_f64().unwrap_or(f64::NAN) / 1e3
    );
    Ok(())
}

/// Times, inside the container, N exec attempts of N distinct dropped binaries: under
/// prevent each fails with EPERM after the agent's decision (fanotify), and N runs of the
/// dynamic loader on dropped binaries, held at exec and killed (BPF hold). Prints JSON.
const BLOCK_PROBE: &str = r#"
import os, subprocess, sys, time
n = int(sys.argv[1])
d = '/tmp/dw-block'
os.makedirs(d, exist_ok=True)
deny, hold, deny_rc, hold_rc = [], [], set(), set()
payload = open('/usr/bin/true', 'rb').read()
for i in range(n):
    p = f'{d}/b{i}'
    with open(p, 'wb') as f:
        f.write(payload)
    os.chmod(p, 0o755)
for i in range(n):
    p = f'{d}/b{i}'
    t = time.perf_counter()
    try:
        rc = subprocess.run([p]).returncode
    except PermissionError:
        rc = 126
    deny.append(time.perf_counter() - t)
    deny_rc.add(rc)
    time.sleep(0.002)
for i in range(n // 3):
    p = f'{d}/b{i}'
    t = time.perf_counter()
    r = subprocess.run(['/lib64/ld-linux-x86-64.so.2', p])
    hold.append(time.perf_counter() - t)
    hold_rc.add(r.returncode)
    time.sleep(0.002)
print('deny', *deny)
print('hold', *hold)
print('deny_rc', *sorted(deny_rc))
print('hold_rc', *sorted(hold_rc))
"#;

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(((v.len().max(1) - 1) as f64 * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Issue 6's figures: the exec loop under prevent (total CPU, agent off vs on), and how long
/// a drifted exec takes to be refused (EPERM) or killed (held, then SIGKILL), against the
/// same spawn of an allowed binary with the agent off.
fn prevent_figures(a: &Args, bin: &Path, cg: &AgentCgroup) -> anyhow::Result<()> {
    let c = Container::start(&[])?;
    exec_loop(&c, a.execs / 4)?; // warm up
    let (mut off_cpu, mut on_cpu, mut agent_per_exec) = (vec![], vec![], vec![]);
    let mut detect_cpu = vec![];
    // Each round: agent off, agent in detect mode, agent in prevent mode (what prevent adds
    // to detection shows in the same run).
    for _ in 0..a.rounds() {
        off_cpu.push(exec_loop(&c, a.execs)?.1 as f64);
        for (mode, out) in [("detect", &mut detect_cpu), ("prevent", &mut on_cpu)] {
            let agent = BenchAgent::start(bin, cg, &["--enforce", mode])?;
            let a0 = cg.cpu_ns()?;
            let (_, cpu) = exec_loop(&c, a.execs)?;
            let agent_ns = (cg.cpu_ns()? - a0) as f64;
            out.push(cpu as f64 + agent_ns);
            if mode == "prevent" {
                agent_per_exec.push(agent_ns / a.execs as f64);
            }
            agent.stop()?;
        }
    }
    println!(
        "exec loop, prevent:  {} execs, total CPU off {:.0} ms, detect {:.0} ms, prevent {:.0} ms: ratio prevent/off x{:.3} (goal <= 1.10), detect/off x{:.3}; agent CPU {:.1} us/exec",
        a.execs,
        median(&off_cpu) / 1e6,
        median(&detect_cpu) / 1e6,
        median(&on_cpu) / 1e6,
        median(&on_cpu) / median(&off_cpu),
        median(&detect_cpu) / median(&off_cpu),
        median(&agent_per_exec) / 1e3
    );
    drop(c);

    let d = Container::start_image(DEBIAN, &[])?;
    let n = a.block_execs.to_string();
    let probe = |label: &str| -> anyhow::Result<serde_json::Value> {
        d.sh("rm -rf /tmp/dw-block")?;
        let out = Command::new("/usr/bin/docker")
            .args(["exec", &d.0, "python3", "-c", BLOCK_PROBE, &n])
            .output()?;
        if !out.status.success() {
            bail!(
                "block probe ({label}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // python3-minimal has no json module: lines of "key value..." instead.
        let mut v = serde_json::Map::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut words = line.split_whitespace();
            if let Some(k) = words.next() {
                let nums: Vec<f64> = words.filter_map(|w| w.parse().ok()).collect();
                v.insert(k.to_string(), serde_json::json!(nums));
            }
        }
        Ok(serde_json::Value::Object(v))
    };
    let base = probe("agent off")?;
    let agent = BenchAgent::start(bin, cg, &["--enforce", "prevent"])?;
    let on = probe("prevent")?;
    let s = agent.stop()?;
    let secs = |v: &serde_json::Value, k: &str| -> Vec<f64> {
        v[k].as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    let (b_deny, o_deny) = (secs(&base, "deny"), secs(&on, "deny"));
    let (b_hold, o_hold) = (secs(&base, "hold"), secs(&on, "hold"));
    println!(
        "exec to EPERM:       {} dropped binaries, spawn-to-refused p50 {:.2} ms, p99 {:.2} ms (exit codes {}); same spawn running, agent off: p50 {:.2} ms, p99 {:.2} ms; denied {}",
        o_deny.len(),
        quantile(&o_deny, 0.5) * 1e3,
        quantile(&o_deny, 0.99) * 1e3,
        on["deny_rc"],
        quantile(&b_deny, 0.5) * 1e3,
        quantile(&b_deny, 0.99) * 1e3,
        s["enforcement"]["denied"]
    );
    println!(
        "                     agent's decision (request read to answered): p50 {} us, p99 {} us",
        s["enforcement"]["decision_p50_us"], s["enforcement"]["decision_p99_us"]
    );
    println!(
        "exec to kill (hold): {} ld.so runs of dropped binaries, spawn-to-killed p50 {:.2} ms, p99 {:.2} ms (exit codes {}); agent off: p50 {:.2} ms, p99 {:.2} ms; held then killed {}",
        o_hold.len(),
        quantile(&o_hold, 0.5) * 1e3,
        quantile(&o_hold, 0.99) * 1e3,
        on["hold_rc"],
        quantile(&b_hold, 0.5) * 1e3,
        quantile(&b_hold, 0.99) * 1e3,
        s["enforcement"]["held_then_killed"]
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("dw-bench needs root (it starts the agent and reads cgroups)");
    }
    let bin = a.agent.canonicalize().with_context(|| {
        format!(
            "{}: build it with cargo build --release -p driftwatch",
            a.agent.display()
        )
    })?;
    let cg = AgentCgroup::new()?;
    println!(
        "driftwatch benchmark, agent {}, {} rounds of off/on (medians)",
        bin.display(),
        a.rounds()
    );

    let want = |part: &str| a.only.is_empty() || a.only.iter().any(|o| o == part);

    if want("cost") {
        cost::run(&a.cost_run(bin.clone())?)?;
    }

    // 1. Unrelated host syscalls.
    if want("syscalls") {
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for _ in 0..a.rounds() {
            off.push(getppid_loop(a.syscalls));
            let agent = BenchAgent::start(&bin, &cg, &[])?;
            on.push(getppid_loop(a.syscalls));
            agent.stop()?;
        }
        let (off_ns, on_ns) = (median(&off), median(&on));
        println!(
            "host getppid:        off {off_ns:.1} ns/call, on {on_ns:.1} ns/call, ratio x{:.3} (goal <= 1.01)",
            on_ns / off_ns
        );
    }
    if want("files") {
        file_workloads(&a, &bin, &cg)?;
    }
    if want("prevent") {
        prevent_figures(&a, &bin, &cg)?;
    }
    if !(want("execs") || want("latency") || want("memory") || want("storm")) {
        return Ok(());
    }

    // 2. Exec loop inside a container: total CPU (workload + agent).
    let c = Container::start(&[])?;
    exec_loop(&c, a.execs / 4)?; // warm up
    let (mut off_cpu, mut on_cpu, mut off_wall, mut on_wall, mut agent_per_exec) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..a.rounds() {
        let (w, cpu) = exec_loop(&c, a.execs)?;
        off_wall.push(w);
        off_cpu.push(cpu as f64);
        let agent = BenchAgent::start(&bin, &cg, &[])?;
        let a0 = cg.cpu_ns()?;
        let (w, cpu) = exec_loop(&c, a.execs)?;
        let agent_ns = (cg.cpu_ns()? - a0) as f64;
        on_wall.push(w);
        on_cpu.push(cpu as f64 + agent_ns);
        agent_per_exec.push(agent_ns / a.execs as f64);
        agent.stop()?;
    }
    let (cpu_off, cpu_on) = (median(&off_cpu), median(&on_cpu));
    println!(
        "container exec loop: {} execs, total CPU off {:.0} ms, on {:.0} ms, ratio x{:.3} (goal <= 1.05); wall x{:.3}; agent CPU {:.1} us/exec",
        a.execs,
        cpu_off / 1e6,
        cpu_on / 1e6,
        cpu_on / cpu_off,
        median(&on_wall) / median(&off_wall),
        median(&agent_per_exec) / 1e3
    );

    // 3. Exec-to-alert latency: drifted execs, spaced out.
    let agent = BenchAgent::start(&bin, &cg, &[])?;
    c.sh("cp /bin/busybox /tmp/true")?;
    c.sh(&format!(
        "i=0; while [ $i -lt {} ]; do /tmp/true; usleep 2000; i=$((i+1)); done",
        a.latency_execs
    ))?;
    std::thread::sleep(Duration::from_millis(500));
    let s = agent.stop()?;
    println!(
        "exec-to-alert:       {} alerts, p50 {:.2} ms, p99 {:.2} ms (goal p99 <= 3 ms; Falco p50 2.4, p99 5.2)",
        s["alert_latency_samples"],
        s["alert_latency_p50_us"].as_f64().unwrap_or(f64::NAN) / 1e3,
        s["alert_latency_p99_us"].as_f64().unwrap_or(f64::NAN) / 1e3
    );
    drop(c);

    // 4. Memory while watching many containers.
    let many: Vec<Container> = (0..a.containers)
        .map(|_| Container::start(&[]))
        .collect::<anyhow::Result<_>>()?;
    let agent = BenchAgent::start(&bin, &cg, &[])?;
    for c in &many {
        c.sh("/bin/true; cp /bin/busybox /tmp/true; /tmp/true")?;
    }
    std::thread::sleep(Duration::from_secs(2));
    let s = agent.stop()?;
    println!(
        "memory:              {} containers known, RSS {:.1} MiB, peak {:.1} MiB (goal <= 48 MiB)",
        s["containers_known"],
        s["rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        s["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0
    );
    drop(many);

    // 5. Exec storm: 4 loops in parallel, in 4 containers.
    let storm: Vec<Container> = (0..4)
        .map(|_| Container::start(&[]))
        .collect::<anyhow::Result<_>>()?;
    let agent = BenchAgent::start(&bin, &cg, &[])?;
    let t = Instant::now();
    let handles: Vec<_> = storm
        .iter()
        .map(|c| {
            let id = c.0.clone();
            let script = exec_loop_script(a.storm_execs, "/bin/true");
            std::thread::spawn(move || docker(&["exec", &id, "sh", "-c", &script]))
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("storm thread panicked"))??;
    }
    let secs = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let s = agent.stop()?;
    println!(
        "exec storm:          {} execs in {secs:.1} s ({:.0}/s), agent processed {}, lost {} (goal 0)",
        4 * a.storm_execs,
        (4 * a.storm_execs) as f64 / secs,
        s["execs_processed"],
        s["lost"]
    );
    Ok(())
}
