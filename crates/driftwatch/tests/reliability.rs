//! Reliability under load and faults (issue 9), end to end: a real agent process, real BPF
//! programs, real dockerd and containers. Sizes are modest so that each test stays short;
//! `DW_RELIABILITY_SCALE=10` multiplies them (the long runs are `dw-soak`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

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

/// A real agent writing `--stats-json` into a temporary directory of its own: the agent,
/// the stats file (read with [`stats`] after a stop), and the directory to keep alive.
fn counted_agent(extra: &[&str]) -> (AgentProcess, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("stats.json");
    let mut args = extra.to_vec();
    args.extend(["--stats-json", stats_path.to_str().unwrap()]);
    (AgentProcess::start(DRIFTWATCH, &args), stats_path, dir)
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
    let (mut agent, stats_path, _dir) = counted_agent(&[]);
    let containers: Vec<TestContainer> = (0..4)
        .map(|_| TestContainer::run(&[BUSYBOX, "sleep", "600"]))
        .collect();
    let per = scaled(1500);
    let pid = agent.pid();
    let rss_start = rss_kib(pid).unwrap_or(0);
    let done = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (done, samples) = (done.clone(), samples.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                samples.lock().unwrap().push(rss_kib(pid).unwrap_or(0));
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
    let (mut agent, stats_path, _dir) = counted_agent(&["--ring-mib", "1"]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "600"]);
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

/// What the churn test watches, read from the agent's own `/metrics` and from /proc.
#[derive(Clone, Debug, Default, PartialEq)]
struct Footprint {
    /// `driftwatch_bpf_map_entries{map=...}`, by map.
    maps: std::collections::BTreeMap<String, u64>,
    /// `driftwatch_containers_known`: the registry, lingering entries included.
    known: u64,
}

/// GET `path` from the agent's API on loopback: the body of a 200 reply.
fn api_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connecting to the agent's API on port {port}: {e}"));
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP reply");
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{path}: {head}"
    );
    body.to_string()
}

/// GET /metrics; every line must be valid exposition text.
fn scrape(port: u16) -> Footprint {
    let body = api_get(port, "/metrics");
    let mut f = Footprint::default();
    for line in body.lines() {
        driftwatch_api::metrics::check_line(line)
            .unwrap_or_else(|e| panic!("invalid /metrics line: {e}"));
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value = || value.parse::<f64>().unwrap() as u64;
        if let Some(map) = series
            .strip_prefix("driftwatch_bpf_map_entries{map=\"")
            .and_then(|m| m.strip_suffix("\"}"))
        {
            f.maps.insert(map.to_string(), value());
        } else if series == "driftwatch_containers_known" {
            f.known = value();
        }
    }
    f
}

fn live_containers() -> u64 {
    let out = docker(&["ps", "-q"]);
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

/// Containers of other users of this dockerd (not labelled `driftwatch-test=churn`) removed
/// in the last 70 s: they may still linger in the registry (at most 60 s).
fn others_removed_lately() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = docker(&[
        "events",
        "--since",
        &(now - 70).to_string(),
        "--until",
        &now.to_string(),
        "--filter",
        "type=container",
        "--filter",
        "event=destroy",
        "--format",
        "{{index .Actor.Attributes \"driftwatch-test\"}}",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim() != "churn")
        .count() as u64
}

/// The per-key BPF maps the agent must count (exec.bpf.c; net.bpf.c's dedupe table is a
/// fixed-size array).
const COUNTED_MAPS: [&str; 2] = ["enforce", "orphans"];

/// Each churned container: an exec of the image's program, a dropped binary run (binary and
/// file drift), a file written under /etc, and a TCP listener and a connect on loopback (the
/// network sensor).
const CHURN_SCRIPT: &str = "/bin/true; cp /bin/busybox /tmp/true; /tmp/true; echo churn > /etc/churn; \
     (nc -l -p 8080 >/dev/null 2>&1 &); sleep 0.2; nc 127.0.0.1 8080 </dev/null >/dev/null 2>&1; true";

/// Containers created, exec'd in (so that the exec, file and network sensors all see them)
/// and removed: once the documented linger is over (destroyed containers stay in the registry
/// at most 60 s for late events), the registry and every per-container BPF map are back to their starting counts;
/// open fds and memory do not grow. Counts only: the wait is a bounded poll.
#[test]
fn container_churn_leaves_no_growth() {
    let _serial = serial();
    if !ready() {
        return;
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (mut agent, stats_path, _dir) = counted_agent(&["--api-listen", &listen]);
    let start = scrape(port);
    let live_start = live_containers();
    for m in COUNTED_MAPS {
        assert!(
            start.maps.contains_key(m),
            "map {m} is not counted on /metrics: {start:?}"
        );
    }
    // The peak of every map while the containers run: the counts must see them come.
    let peak = Arc::new(Mutex::new(Footprint::default()));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let f = scrape(port);
                let mut p = peak.lock().unwrap();
                for (m, v) in f.maps {
                    let e = p.maps.entry(m).or_default();
                    *e = (*e).max(v);
                }
                p.known = p.known.max(f.known);
                drop(p);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let churn = |count: u64| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..count.div_ceil(4) {
                        let c = TestContainer::run(&[
                            "--label",
                            "driftwatch-test=churn",
                            BUSYBOX,
                            "sleep",
                            "600",
                        ]);
                        let (rc, out) = c.sh(CHURN_SCRIPT);
                        assert_eq!(rc, 0, "{out}");
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    };
    // Warm up (allocator arenas, engine connections), then measure fds and memory.
    churn(8);
    std::thread::sleep(Duration::from_secs(2));
    let pid = agent.pid();
    let (fds0, rss0) = (open_fds(pid), rss_kib(pid).unwrap_or(0));
    let count = scaled(40);
    churn(count);
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.lock().unwrap().clone();
    eprintln!("churn: at the start {start:?}; peak while churning {peak:?}");
    assert!(
        peak.maps["enforce"] > start.maps["enforce"],
        "the enforce map never held a churned container's namespace: {peak:?}"
    );
    assert!(peak.known > start.known, "{peak:?}");

    // Back to the start, give or take other containers of the host that came or went.
    let slack = 4 + live_containers().abs_diff(live_start);
    let settled = |f: &Footprint| {
        f.known <= start.known + slack + others_removed_lately()
            && COUNTED_MAPS
                .iter()
                .all(|m| f.maps[*m] <= start.maps[*m] + slack)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut end = scrape(port);
    while !settled(&end) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        end = scrape(port);
    }
    let (fds1, rss1) = (open_fds(pid), rss_kib(pid).unwrap_or(0));
    // Every container the agent still counts as live exists: a lost destroy event (Docker
    // delivers some out of time order under parallel churn) would leave one for good.
    let listed: Value = serde_json::from_str(&api_get(port, "/api/v1/containers")).unwrap();
    for c in listed["containers"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        assert!(
            docker(&["inspect", "-f", "{{.Id}}", id]).status.success(),
            "the agent still lists container {id}, which no longer exists: {c}"
        );
    }
    agent.stop();
    let s = stats(&stats_path);
    eprintln!(
        "churn: {} containers; start {start:?}; end {end:?}; fds {fds0} -> {fds1}, RSS {rss0} -> {rss1} KiB; at exit: registry {} ({} live), maps {}",
        count + 8,
        s["containers_known"],
        s["containers_live"],
        s["bpf_map_entries"]
    );
    for m in COUNTED_MAPS {
        assert!(
            end.maps[m] <= start.maps[m] + slack,
            "BPF map {m}: {} entries at the start, {} at the peak, still {} after the churn",
            start.maps[m],
            peak.maps[m],
            end.maps[m]
        );
        assert!(
            s["bpf_map_entries"][m].is_u64(),
            "no bpf_map_entries.{m} in --stats-json: {s:#}"
        );
    }
    let others = others_removed_lately();
    assert!(
        end.known <= start.known + slack + others,
        "registry: {} entries at the start, {} at the peak, {} after the linger ({others} containers of others removed lately)",
        start.known,
        peak.known,
        end.known
    );
    // Network findings are remembered per container (each alerted once), and forgotten
    // with the container: the listeners found here must not stay.
    let net = &s["net"];
    assert!(
        net["findings"].as_u64().unwrap_or(0) >= count,
        "the churned containers' listeners were network findings: {net}"
    );
    assert!(
        net["remembered_findings"].as_u64().unwrap() <= slack + others,
        "network findings of removed containers are still remembered: {net}"
    );
    assert!(
        net["budgeted_containers"].as_u64().unwrap() <= slack + others,
        "alert budgets of removed containers are still kept: {net}"
    );
    // Each churned container exec'd 7 processes, all gone now: the process table holds the
    // live containers' processes only (others' may come and go).
    assert!(
        s["processes_known"].as_u64().unwrap() <= 8 * (slack + others),
        "exited processes are still remembered after {count} containers: {}",
        s["processes_known"]
    );
    assert!(fds1 <= fds0 + 2, "open fds grew from {fds0} to {fds1}");
    assert!(
        rss1 < rss0 + 16 * 1024,
        "RSS grew from {rss0} to {rss1} KiB over {count} containers"
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
    let (mut agent, stats_path, _dir) = counted_agent(&["--dedup-window", "3s"]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "600"]);
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
    let c = TestContainer::run(&[BUSYBOX, "sleep", "600"]);
    let mut first = AgentProcess::start(DRIFTWATCH, &["--config", cfg, "--no-store"]);
    let (rc, out) = c.sh("mkdir -p /tmp/k1 && cp /bin/busybox /tmp/k1/true && /tmp/k1/true");
    assert_ne!(rc, 0, "the dropped binary ran under prevent: {out}");
    first.wait_for("drift before the kill", WAIT, |a| {
        field(a, "drift.path") == "/tmp/k1/true"
    });
    first.kill_hard();

    let mut second = AgentProcess::start(DRIFTWATCH, &["--config", cfg, "--no-store"]);
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
    let mut agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--store",
            db.to_str().unwrap(),
            "--stats-json",
            stats_path.to_str().unwrap(),
        ],
    );
    // Fill what is left.
    let _ = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", mnt.join("fill").display()),
            "bs=64k",
        ])
        .stderr(std::process::Stdio::null())
        .status();
    let c = TestContainer::run(&[BUSYBOX, "sleep", "600"]);
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
    if std::env::var("DW_TEST_DOCKERD_RESTART").as_deref() != Ok("1") && !in_ci() {
        eprintln!("SKIPPED: restarts the host's dockerd; set DW_TEST_DOCKERD_RESTART=1");
        return;
    }
    if !ready() {
        return;
    }
    let (mut agent, stats_path, _dir) = counted_agent(&[]);
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
    let c = TestContainer::run(&["--name", "dw-after-restart", BUSYBOX, "sleep", "600"]);
    let (rc, out) = c.sh("cp /bin/busybox /tmp/true && /tmp/true");
    assert_eq!(rc, 0, "{out}");
    let a = agent.wait_for("drift after the restart", WAIT, |a| {
        field(a, "container.id") == c.short() && has_tag(a, "binary_drift")
    });
    assert_eq!(field(&a, "container.name"), "dw-after-restart", "{a}");
    agent.stop();
    assert!(n(&stats(&stats_path)["engine_disconnects"]) >= 1);
}
