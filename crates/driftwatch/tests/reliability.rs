//! Reliability under load and faults (issue 9), end to end: a real agent process, real BPF
//! programs, real dockerd and containers. Sizes are modest so that each test stays short;
//! `DW_RELIABILITY_SCALE=10` multiplies them (the long runs are `dw-soak`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const LOSS_RULE: &str = "Driftwatch events lost";

// The tests of this file run one at a time: one restarts dockerd (every container of the
// host goes), the others measure the agent's memory and fds. (`common::serial`)

/// `n` times `DW_RELIABILITY_SCALE` (default 1).
fn scaled(n: u64) -> u64 {
    let k: u64 = std::env::var("DW_RELIABILITY_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    n * k.max(1)
}

fn stats(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the agent's stats {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Every record the kernel sent was either handled or counted as malformed.
fn assert_every_event_counted(s: &Value) {
    assert_eq!(
        n(&s["kernel_sent"]),
        n(&s["execs_processed"]) + n(&s["malformed"]),
        "records sent by the kernel vs handled + malformed: {s:#}"
    );
}

fn exec_loop(n: u64, exe: &str) -> String {
    format!("i=0; while [ $i -lt {n} ]; do {exe}; i=$((i+1)); done")
}

/// Execs from several containers at once: every event handled or counted, none lost with
/// the default ring buffer, memory flat (sampled while it runs).
#[test]
fn exec_storm_loses_nothing_and_memory_stays_flat() {
    let _serial = serial();
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("stats.json");
    let mut agent = AgentProcess::start(&["--stats-json", stats_path.to_str().unwrap()]);
    let containers: Vec<Container> = (0..4)
        .map(|_| Container::run(&[BUSYBOX, "sleep", "600"]))
        .collect();
    let per = scaled(1500);
    let pid = agent.pid();
    let rss_start = rss_kib(pid);
    let done = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (done, samples) = (done.clone(), samples.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                samples.lock().unwrap().push(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let loops: Vec<_> = containers
        .iter()
        .map(|c| {
            let id = c.id.clone();
            let script = exec_loop(per, "/bin/true");
            std::thread::spawn(move || docker(&["exec", &id, "sh", "-c", &script]))
        })
        .collect();
    for l in loops {
        assert!(l.join().unwrap().status.success(), "exec loop failed");
    }
    std::thread::sleep(Duration::from_secs(1));
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = samples.lock().unwrap().iter().copied().max().unwrap_or(0);
    agent.stop();
    let s = stats(&stats_path);
    eprintln!(
        "storm: {} execs, processed {}, lost {}, RSS start {rss_start} KiB, peak {peak} KiB",
        4 * per,
        s["execs_processed"],
        s["lost"]
    );
    assert_eq!(n(&s["lost"]), 0, "events lost at this rate: {s:#}");
    assert_eq!(n(&s["loss_alerts"]), 0, "{s:#}");
    assert!(n(&s["execs_processed"]) >= 4 * per, "{s:#}");
    assert_every_event_counted(&s);
    assert!(
        peak < rss_start + 32 * 1024,
        "agent memory grew from {rss_start} KiB to {peak} KiB during the storm"
    );
    assert!(
        !agent.alerts().iter().any(|a| a["rule"] == LOSS_RULE),
        "a loss alert without a loss"
    );
}

/// The agent stopped (SIGSTOP) while a container execs: its 1 MiB ring buffer overflows.
/// The loss is counted, raised as an alert with the count, and the agent detects the next
/// drift.
#[test]
fn ring_overflow_is_counted_alerted_and_detection_goes_on() {
    let _serial = serial();
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("stats.json");
    let mut agent = AgentProcess::start(&[
        "--ring-mib",
        "1",
        "--stats-json",
        stats_path.to_str().unwrap(),
    ]);
    let c = Container::run(&[BUSYBOX, "sleep", "600"]);
    agent.signal(libc::SIGSTOP);
    // Each record carries argv and environment: a long argument fills the ring sooner.
    let arg = "x".repeat(2000);
    let (rc, out) = c.sh(&exec_loop(scaled(3000), &format!("/bin/true {arg}")));
    agent.signal(libc::SIGCONT);
    assert_eq!(rc, 0, "{out}");
    let a = agent.wait_for("the loss alert", WAIT, |a| a["rule"] == LOSS_RULE);
    assert_eq!(a["priority"], "Critical", "{a}");
    assert!(has_tag(&a, "agent_health"), "{a}");
    let lost = n(field(&a, "driftwatch.exec_lost"));
    assert!(lost > 0, "{a}");
    assert_eq!(field(&a, "driftwatch.ring_mib"), 1, "{a}");
    // Still working: the next drift is detected.
    let (rc, out) =
        c.sh("mkdir -p /tmp/after && cp /bin/busybox /tmp/after/true && /tmp/after/true");
    assert_eq!(rc, 0, "{out}");
    agent.wait_for("drift after the overflow", WAIT, |a| {
        has_tag(a, "binary_drift") && field(a, "drift.path") == "/tmp/after/true"
    });
    agent.stop();
    let s = stats(&stats_path);
    assert!(n(&s["lost"]) >= lost, "{s:#}");
    assert!(n(&s["loss_alerts"]) >= 1, "{s:#}");
    // Rate-limited: one alert for this one overflow (the rest are summed into the next).
    let loss_alerts = agent
        .alerts()
        .into_iter()
        .filter(|a| a["rule"] == LOSS_RULE)
        .count();
    assert!(
        (1..=2).contains(&loss_alerts),
        "{loss_alerts} loss alerts for one overflow"
    );
    assert!(
        agent
            .log()
            .iter()
            .any(|l| l.contains("Driftwatch events lost")),
        "the loss is not in the log"
    );
}

/// Containers created, exec'd in and removed: open fds, memory and the registry do not grow.
#[test]
fn container_churn_leaves_no_growth() {
    let _serial = serial();
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("stats.json");
    let mut agent = AgentProcess::start(&["--stats-json", stats_path.to_str().unwrap()]);
    let churn = |count: u64| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..count.div_ceil(4) {
                        let c = Container::run(&[BUSYBOX, "sleep", "600"]);
                        let (rc, out) = c.sh("/bin/true; cp /bin/busybox /tmp/true; /tmp/true");
                        assert_eq!(rc, 0, "{out}");
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    };
    // Warm up (allocator arenas, engine connections), then measure.
    churn(8);
    std::thread::sleep(Duration::from_secs(2));
    let pid = agent.pid();
    let (fds0, rss0) = (open_fds(pid), rss_kib(pid));
    let count = scaled(40);
    churn(count);
    std::thread::sleep(Duration::from_secs(3));
    let (fds1, rss1) = (open_fds(pid), rss_kib(pid));
    agent.stop();
    let s = stats(&stats_path);
    eprintln!(
        "churn: {count} containers, fds {fds0} -> {fds1}, RSS {rss0} -> {rss1} KiB, registry {} ({} live)",
        s["containers_known"], s["containers_live"]
    );
    assert!(fds1 <= fds0 + 2, "open fds grew from {fds0} to {fds1}");
    assert!(
        rss1 < rss0 + 16 * 1024,
        "RSS grew from {rss0} to {rss1} KiB over {count} containers"
    );
    // Destroyed containers linger a while for late events, at most 64 of them.
    let live_now = docker(&["ps", "-q"]).stdout.split(|b| *b == b'\n').count();
    assert!(
        n(&s["containers_known"]) <= live_now as u64 + 64 + 8,
        "registry holds {} entries: {s:#}",
        s["containers_known"]
    );
    assert_every_event_counted(&s);
}

/// A burst of drifted execs of one binary: one alert per window and rule, the repeats
/// counted in the next alert, and every exec processed.
#[test]
fn drift_burst_is_deduplicated_and_detection_keeps_up() {
    let _serial = serial();
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("stats.json");
    let mut agent = AgentProcess::start(&[
        "--dedup-window",
        "3s",
        "--stats-json",
        stats_path.to_str().unwrap(),
    ]);
    let c = Container::run(&[BUSYBOX, "sleep", "600"]);
    let burst = scaled(2000);
    let (rc, out) = c.sh(&format!(
        "mkdir -p /tmp/b && cp /bin/busybox /tmp/b/true && {}",
        exec_loop(burst, "/tmp/b/true")
    ));
    assert_eq!(rc, 0, "{out}");
    // After the window: one more, whose alert carries the last window's repeats.
    std::thread::sleep(Duration::from_millis(3500));
    let (rc, out) = c.sh("/tmp/b/true");
    assert_eq!(rc, 0, "{out}");
    std::thread::sleep(Duration::from_secs(1));
    agent.stop();
    let s = stats(&stats_path);
    assert_eq!(n(&s["lost"]), 0, "{s:#}");
    assert_every_event_counted(&s);
    assert!(n(&s["execs_processed"]) > burst, "{s:#}");
    let mine: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| {
            field(a, "container.id") == c.short() && field(a, "proc.exepath") == "/tmp/b/true"
        })
        .collect();
    let mut rules: Vec<String> = mine
        .iter()
        .map(|a| a["rule"].as_str().unwrap_or_default().to_string())
        .collect();
    rules.sort();
    rules.dedup();
    assert!(!rules.is_empty(), "no alert for the burst");
    for rule in &rules {
        let of_rule: Vec<&Value> = mine.iter().filter(|a| a["rule"] == rule.as_str()).collect();
        let repeats: u64 = of_rule
            .iter()
            .map(|a| n(field(a, "driftwatch.repeats")))
            .sum();
        eprintln!(
            "burst: {burst}+1 execs, rule {rule}: {} alerts, {repeats} repeats",
            of_rule.len()
        );
        assert_eq!(
            of_rule.len() as u64 + repeats,
            burst + 1,
            "alerts + repeats for {rule}"
        );
        assert!(
            of_rule.len() as u64 * 10 < burst,
            "{rule}: {} alerts",
            of_rule.len()
        );
    }
    assert!(n(&s["alerts_suppressed"]) > 0, "{s:#}");
}

/// SIGKILL, then a restart with the same configuration: prevention is back for a container
/// that was already running, the container is named again, and what was alerted before the
/// kill is not alerted again.
#[test]
fn sigkill_restart_restores_enforcement_without_duplicates() {
    let _serial = serial();
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "enforcement:\n  mode: prevent\nnetwork:\n  baseline_file: {}\n",
            dir.path().join("baselines.json").display()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let c = Container::run(&[BUSYBOX, "sleep", "600"]);
    let mut first = AgentProcess::start(&["--config", cfg, "--no-store"]);
    let (rc, out) = c.sh("mkdir -p /tmp/k1 && cp /bin/busybox /tmp/k1/true && /tmp/k1/true");
    assert_ne!(rc, 0, "the dropped binary ran under prevent: {out}");
    first.wait_for("drift before the kill", WAIT, |a| {
        field(a, "drift.path") == "/tmp/k1/true"
    });
    first.kill_hard();

    let mut second = AgentProcess::start(&["--config", cfg, "--no-store"]);
    std::thread::sleep(Duration::from_secs(2));
    let (rc, out) = c.sh("mkdir -p /tmp/k2 && cp /bin/busybox /tmp/k2/true && /tmp/k2/true");
    assert_ne!(rc, 0, "prevention not back after the restart: {out}");
    let a = second.wait_for("drift after the restart", WAIT, |a| {
        field(a, "drift.path") == "/tmp/k2/true"
    });
    let name = field(&a, "container.name").as_str().unwrap_or_default();
    assert!(!name.is_empty() && name != "<NA>", "not named again: {a}");
    second.stop();
    let dup: Vec<Value> = second
        .alerts()
        .into_iter()
        .filter(|a| field(a, "drift.path") == "/tmp/k1/true")
        .collect();
    assert!(dup.is_empty(), "alerted again after the restart: {dup:?}");
}

/// The alert store on a full file system: alerts still reach the JSON output, and the
/// condition is logged and in the stats.
#[test]
fn full_store_disk_does_not_stop_alerts() {
    let _serial = serial();
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("store");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "dw-full",
            mnt.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "mounting a tmpfs on {}", mnt.display());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let stats_path = dir.path().join("stats.json");
    let db = mnt.join("alerts.db");
    let mut agent = AgentProcess::start(&[
        "--store",
        db.to_str().unwrap(),
        "--stats-json",
        stats_path.to_str().unwrap(),
    ]);
    // Fill what is left.
    let _ = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", mnt.join("fill").display()),
            "bs=64k",
        ])
        .stderr(std::process::Stdio::null())
        .status();
    let c = Container::run(&[BUSYBOX, "sleep", "600"]);
    let count = 150;
    let (rc, out) = c.sh(&format!(
        "for i in $(seq {count}); do mkdir -p /tmp/f$i && cp /bin/busybox /tmp/f$i/true && /tmp/f$i/true; done"
    ));
    assert_eq!(rc, 0, "{out}");
    let last = format!("/tmp/f{count}/true");
    agent.wait_for("the last drift", WAIT, |a| {
        field(a, "drift.path") == last.as_str()
    });
    agent.wait_for_log("the store's condition", 1, WAIT, |l| {
        l.contains("cannot store alerts")
    });
    agent.stop();
    let drift = agent
        .alerts()
        .iter()
        .filter(|a| {
            field(a, "drift.path")
                .as_str()
                .is_some_and(|p| p.starts_with("/tmp/f"))
        })
        .count();
    assert!(
        drift >= count,
        "{drift} of {count} drift alerts in the JSON output"
    );
    let s = stats(&stats_path);
    assert!(n(&s["store"]["write_errors"]) > 0, "{s:#}");
}

/// dockerd stopped and started again: the agent reconnects and names containers started
/// after the restart. It stops the host's dockerd (and every container of it): it runs in CI
/// (CI=true, where nothing else uses the engine meanwhile) or with DW_TEST_DOCKERD_RESTART=1.
#[test]
fn dockerd_restart_agent_reconnects() {
    let _serial = serial();
    if std::env::var("DW_TEST_DOCKERD_RESTART").as_deref() != Ok("1")
        && std::env::var("CI").as_deref() != Ok("true")
    {
        eprintln!("SKIPPED: restarts the host's dockerd; set DW_TEST_DOCKERD_RESTART=1");
        return;
    }
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("stats.json");
    let mut agent = AgentProcess::start(&["--stats-json", stats_path.to_str().unwrap()]);
    let pid = std::fs::read_to_string("/var/run/docker.pid").expect("dockerd's pid file");
    let pid: i32 = pid.trim().parse().unwrap();
    // SAFETY: kill(2) on dockerd's pid.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    for _ in 0..200 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.wait_for_log("the disconnect", 1, WAIT, |l| {
        l.contains("still detecting drift")
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/start-dockerd");
    assert!(
        Command::new(root).status().unwrap().success(),
        "restarting dockerd"
    );
    agent.wait_for_log("the reconnect", 1, Duration::from_secs(60), |l| {
        l.contains("reconnected")
    });
    let c = Container::run(&["--name", "dw-after-restart", BUSYBOX, "sleep", "600"]);
    let (rc, out) = c.sh("cp /bin/busybox /tmp/true && /tmp/true");
    assert_eq!(rc, 0, "{out}");
    let a = agent.wait_for("drift after the restart", WAIT, |a| {
        field(a, "container.id") == c.short() && has_tag(a, "binary_drift")
    });
    assert_eq!(field(&a, "container.name"), "dw-after-restart", "{a}");
    agent.stop();
    assert!(n(&stats(&stats_path)["engine_disconnects"]) >= 1);
}
