//! Network drift, end to end: a real agent, the real network BPF program, real containers
//! with `--network none` (loopback only). Undeclared listeners alert from the first second,
//! declared ones never; outbound destinations are learned during the image's window and
//! enforced after it; baselines survive restarts and move between hosts by export/import.

use std::path::Path;
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

fn network_drift<'a>(
    c: &'a TestContainer,
    verdict: &'a str,
    path: &'a str,
) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        has_tag(a, "network_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.verdict") == verdict
            && field(a, "drift.path") == path
    }
}

/// What every network-drift alert carries.
fn assert_network_alert(a: &Value, c: &TestContainer, evt: &str) {
    assert_eq!(a["rule"], "Network drift detected in container", "{a}");
    for tag in ["container", "drift", "network_drift"] {
        assert!(has_tag(a, tag), "tag {tag} missing: {a}");
    }
    assert_eq!(field(a, "evt.type"), evt, "{a}");
    assert_eq!(field(a, "container.id"), c.short(), "{a}");
    assert_eq!(
        field(a, "container.image.repository"),
        "driftwatch-test/busybox",
        "{a}"
    );
    assert_eq!(field(a, "fd.l4proto"), "tcp", "{a}");
    assert!(field(a, "proc.pid").as_u64().is_some_and(|p| p > 0), "{a}");
    assert_eq!(field(a, "proc.name"), "nc", "{a}");
    assert_eq!(field(a, "proc.exepath"), "/bin/busybox", "{a}");
}

/// `nc` connecting to a loopback port of the container; refused or not, the kernel saw the
/// SYN go out, which is what the agent judges.
fn connect(c: &TestContainer, port: u16) {
    let _ = c.sh(&format!("nc -w 1 127.0.0.1 {port} </dev/null"));
}

fn no_alert(agent: &AgentProcess, what: &str, pred: impl Fn(&Value) -> bool) {
    let bad: Vec<String> = agent
        .alerts()
        .iter()
        .filter(|a| pred(a))
        .map(|a| a.to_string())
        .collect();
    assert!(bad.is_empty(), "{what}, yet:\n{}", bad.join("\n"));
}

fn baseline_args<'a>(file: &'a Path, window: &'a str) -> [&'a str; 4] {
    [
        "--baseline-file",
        file.to_str().unwrap(),
        "--learning-window",
        window,
    ]
}

#[test]
fn listener_on_undeclared_port_alerts_from_the_first_second() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baselines.json");
    let agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&file, "5m"));
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    let (code, out) = c.exec(&[
        "sh",
        "-c",
        "nc -l -p 8081 </dev/null >/dev/null & sleep 0.3",
    ]);
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "undeclared listener",
        WAIT,
        network_drift(&c, "undeclared_port", "8081/tcp"),
    );
    assert_network_alert(&a, &c, "listen");
    assert_eq!(field(&a, "drift.subject"), "listener", "{a}");
    assert_eq!(field(&a, "fd.lport"), 8081, "{a}");
    // busybox nc listens on every address, IPv6 dual-stack.
    assert_eq!(field(&a, "fd.name"), "[::]:8081", "{a}");
    assert_eq!(field(&a, "proc.cmdline"), "nc -l -p 8081", "{a}");
    let output = a["output"].as_str().unwrap();
    assert!(output.contains("verdict=undeclared_port"), "{output}");
    assert!(output.contains("lport=8081"), "{output}");
}

#[test]
fn listener_on_declared_port_is_quiet() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baselines.json");
    let agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&file, "5m"));
    let c = TestContainer::run(&["--expose", "8080", BUSYBOX, "sleep", "60"]);
    c.sh("nc -l -p 8080 </dev/null >/dev/null & sleep 0.3");
    // The marker: an undeclared listener after it, in the same container.
    c.sh("nc -l -p 8082 </dev/null >/dev/null & sleep 0.3");
    agent.wait_for(
        "the marker listener",
        WAIT,
        network_drift(&c, "undeclared_port", "8082/tcp"),
    );
    no_alert(&agent, "8080 is declared (--expose)", |a| {
        has_tag(a, "network_drift")
            && field(a, "container.id") == c.short()
            && field(a, "fd.lport") == 8080
    });
}

#[test]
fn outbound_destinations_are_learned_then_enforced() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baselines.json");
    let window = Duration::from_secs(8);
    let started = Instant::now();
    let agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&file, "8s"));
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    connect(&c, 9001);
    assert!(
        started.elapsed() < window,
        "the learning connect came after the window; the machine is too slow for this test"
    );
    wait_for_baseline(&file, "127.0.0.1:9001/tcp");
    // The window runs from the image's first sighting (when the agent saw its first
    // container, later than this test's clock under load): wait for the file's own end.
    sleep_past_learning(&file);
    connect(&c, 9001);
    connect(&c, 9002);
    let a = agent.wait_for(
        "a new destination after learning",
        WAIT,
        network_drift(&c, "new_destination", "127.0.0.1:9002/tcp"),
    );
    assert_network_alert(&a, &c, "connect");
    assert_eq!(field(&a, "drift.subject"), "outbound", "{a}");
    assert_eq!(field(&a, "fd.rip"), "127.0.0.1", "{a}");
    assert_eq!(field(&a, "fd.rport"), 9002, "{a}");
    assert!(
        field(&a, "fd.name")
            .as_str()
            .is_some_and(|n| n.starts_with("127.0.0.1:") && n.ends_with("->127.0.0.1:9002")),
        "{a}"
    );
    no_alert(&agent, "9001 was learned during the window", |a| {
        has_tag(a, "network_drift") && field(a, "fd.rport") == 9001
    });
}

#[test]
fn baseline_survives_an_agent_restart() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state/baselines.json");
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    {
        let _agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&file, "3s"));
        connect(&c, 9101);
        wait_for_baseline(&file, "127.0.0.1:9101/tcp");
        std::thread::sleep(Duration::from_secs(3));
    }
    // A new agent with a long window: the image's window is the one on file, already over.
    let agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&file, "5m"));
    connect(&c, 9101);
    connect(&c, 9102);
    agent.wait_for(
        "a destination new after the restart",
        WAIT,
        network_drift(&c, "new_destination", "127.0.0.1:9102/tcp"),
    );
    no_alert(&agent, "9101 is in the baseline on file", |a| {
        has_tag(a, "network_drift") && field(a, "fd.rport") == 9101
    });
}

#[test]
fn exported_baseline_is_enforced_from_the_start_after_import() {
    if !ready() {
        return;
    }
    let staging = tempfile::tempdir().unwrap();
    let staging_file = staging.path().join("baselines.json");
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    {
        // Staging learns with a window that never ends during the test.
        let _agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&staging_file, "1h"));
        connect(&c, 9201);
        wait_for_baseline(&staging_file, "127.0.0.1:9201/tcp");
    }
    let export = staging.path().join("export.json");
    let s = staging_file.to_str().unwrap();
    let (ok, out) = cli(
        DRIFTWATCH,
        &[
            "baseline",
            "export",
            "--baseline-file",
            s,
            "-o",
            export.to_str().unwrap(),
            BUSYBOX,
        ],
    );
    assert!(ok, "{out}");

    let prod = tempfile::tempdir().unwrap();
    let prod_file = prod.path().join("baselines.json");
    let p = prod_file.to_str().unwrap();
    let (ok, out) = cli(
        DRIFTWATCH,
        &[
            "baseline",
            "import",
            "--baseline-file",
            p,
            export.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    let (ok, shown) = cli(DRIFTWATCH, &["baseline", "show", "--baseline-file", p]);
    assert!(ok, "{shown}");
    assert!(shown.contains("driftwatch-test/busybox:1"), "{shown}");
    assert!(shown.contains("enforced since"), "{shown}");
    assert!(shown.contains("127.0.0.1:9201/tcp"), "{shown}");

    // Production: a long window, yet the imported image is enforced at once.
    let agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&prod_file, "1h"));
    connect(&c, 9201);
    connect(&c, 9202);
    agent.wait_for(
        "a destination the imported baseline lacks",
        WAIT,
        network_drift(&c, "new_destination", "127.0.0.1:9202/tcp"),
    );
    no_alert(&agent, "9201 is in the imported baseline", |a| {
        has_tag(a, "network_drift") && field(a, "fd.rport") == 9201
    });
}

#[test]
fn baseline_commands_report_bad_files_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"version\": 1, \"images\": {\"x\": {\"listeners\": [\"http\"]}}}",
    )
    .unwrap();
    let (ok, out) = cli(
        DRIFTWATCH,
        &[
            "baseline",
            "import",
            "--baseline-file",
            dir.path().join("b.json").to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(
        out.contains(&format!("baseline file {}", bad.display())),
        "{out}"
    );
    assert!(out.contains("listener `http`"), "{out}");
    let (ok, out) = cli(
        DRIFTWATCH,
        &[
            "baseline",
            "reset",
            "--baseline-file",
            bad.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(out.contains("--all"), "{out}");
}

#[test]
fn udp_listener_is_found_by_the_scan() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(DEBIAN),
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baselines.json");
    let agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&file, "5m"));
    let c = TestContainer::run(&["--expose", "5353/udp", DEBIAN, "sleep", "60"]);
    let script = "import socket, time\n\
        for port in (5353, 5354):\n\
        \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        \x20   s.bind(('127.0.0.1', port))\n\
        \x20   globals()['s%d' % port] = s\n\
        time.sleep(30)\n";
    let (code, out) = c.exec(&[
        "sh",
        "-c",
        &format!("python3 -c \"{script}\" >/dev/null 2>&1 &"),
    ]);
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "an undeclared UDP listener",
        WAIT,
        network_drift(&c, "undeclared_port", "5354/udp"),
    );
    assert_eq!(field(&a, "fd.l4proto"), "udp", "{a}");
    assert_eq!(field(&a, "fd.name"), "127.0.0.1:5354", "{a}");
    assert_eq!(field(&a, "proc.name"), "python3", "{a}");
    no_alert(&agent, "5353/udp is declared", |a| {
        has_tag(a, "network_drift")
            && field(a, "container.id") == c.short()
            && field(a, "fd.lport") == 5353
    });
}

#[test]
fn running_agent_takes_over_an_imported_baseline() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baselines.json");
    let f = file.to_str().unwrap();
    let agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&file, "1h"));
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    connect(&c, 9301);
    wait_for_baseline(&file, "127.0.0.1:9301/tcp");
    // Learning for an hour; importing the image's own baseline ends that at once.
    let export = dir.path().join("export.json");
    let (ok, out) = cli(
        DRIFTWATCH,
        &[
            "baseline",
            "export",
            "--baseline-file",
            f,
            "-o",
            export.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = cli(
        DRIFTWATCH,
        &[
            "baseline",
            "import",
            "--baseline-file",
            f,
            export.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    // The agent looks at the file every 2 s.
    std::thread::sleep(Duration::from_secs(3));
    connect(&c, 9301);
    connect(&c, 9302);
    agent.wait_for(
        "a new destination once the import is taken over",
        WAIT,
        network_drift(&c, "new_destination", "127.0.0.1:9302/tcp"),
    );
    no_alert(&agent, "9301 was learned", |a| {
        has_tag(a, "network_drift") && field(a, "fd.rport") == 9301
    });
}

#[test]
fn listener_opened_before_the_agent_started_is_reported() {
    if !ready() {
        return;
    }
    let c = TestContainer::run(&[
        BUSYBOX,
        "sh",
        "-c",
        "nc -l -p 8083 </dev/null >/dev/null; sleep 60",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baselines.json");
    let agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&file, "5m"));
    let a = agent.wait_for(
        "a listener that predates the agent",
        WAIT,
        network_drift(&c, "undeclared_port", "8083/tcp"),
    );
    assert_eq!(field(&a, "evt.type"), "listen", "{a}");
    assert_eq!(field(&a, "proc.name"), "nc", "{a}");
    assert_eq!(field(&a, "fd.lport"), 8083, "{a}");
}

#[test]
fn ipv6_loopback_destination_is_judged() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baselines.json");
    // A zero window: enforced from the first connection.
    let agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&file, "0s"));
    let c = TestContainer::run(&[
        "--sysctl",
        "net.ipv6.conf.all.disable_ipv6=0",
        BUSYBOX,
        "sleep",
        "60",
    ]);
    let _ = c.sh("nc -w 1 ::1 9401 </dev/null");
    let a = agent.wait_for(
        "an IPv6 destination",
        WAIT,
        network_drift(&c, "new_destination", "[::1]:9401/tcp"),
    );
    assert_eq!(field(&a, "fd.rip"), "::1", "{a}");
    assert_eq!(field(&a, "fd.rport"), 9401, "{a}");
    assert!(
        field(&a, "fd.name")
            .as_str()
            .is_some_and(|n| n.ends_with("->[::1]:9401")),
        "{a}"
    );
}

/// `driftwatch baseline show --db DB --json`, parsed.
fn stored_baselines(db: &str) -> Value {
    let (ok, out) = cli(DRIFTWATCH, &["baseline", "show", "--db", db, "--json"]);
    assert!(ok, "{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn baselines_live_in_the_store_and_a_reset_there_is_taken_over() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("driftwatch.db");
    let d = db.to_str().unwrap();
    // No baseline file named: with the store on, baselines are kept in its database.
    let agent = AgentProcess::start(DRIFTWATCH, &["--store", d, "--learning-window", "1h"]);
    // The agent took in this host's baseline file (if any) once; forget it all, through the
    // store, so that the test image learns from now on.
    let (ok, out) = cli(DRIFTWATCH, &["baseline", "reset", "--all", "--db", d]);
    assert!(ok, "{out}");
    std::thread::sleep(Duration::from_secs(3));
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    connect(&c, 9401);
    let start = Instant::now();
    while !stored_baselines(d)
        .to_string()
        .contains("127.0.0.1:9401/tcp")
    {
        assert!(start.elapsed() < WAIT, "the store never listed 9401");
        std::thread::sleep(Duration::from_millis(200));
    }
    // An image learning for an hour, and no JSON file anywhere in the state dir.
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| e
            .unwrap()
            .path()
            .extension()
            .is_none_or(|x| x != "json")),
        "a baseline file was written next to the store"
    );
    // Reset through the store: the running agent forgets 9401 and the image learns again
    // (from the reset on, for the learning window).
    let (ok, out) = cli(DRIFTWATCH, &["baseline", "reset", "--all", "--db", d]);
    assert!(ok, "{out}");
    assert!(out.contains("(alert store)"), "{out}");
    std::thread::sleep(Duration::from_secs(3));
    connect(&c, 9402);
    let start = Instant::now();
    loop {
        let b = stored_baselines(d).to_string();
        if b.contains("127.0.0.1:9402/tcp") {
            assert!(!b.contains("9401"), "the reset was not taken over: {b}");
            break;
        }
        assert!(start.elapsed() < WAIT, "the store never listed 9402: {b}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(agent);
    // Still there for the next agent.
    assert!(
        stored_baselines(d)
            .to_string()
            .contains("127.0.0.1:9402/tcp")
    );
}

/// A process's description is reused for its next connects (the agent caches it per pid for
/// a second), but never across an exec: the same pid connecting, exec'ing another command line
/// and connecting again at once is named by its new command line in the second alert, and
/// by the old one in the first.
#[test]
fn a_process_that_execs_between_connects_is_described_anew() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baselines.json");
    let agent = AgentProcess::start(DRIFTWATCH, &baseline_args(&file, "0s"));
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    // The second connect waits half a second, well within the cache's second: its exec
    // record is in by then (the exec and network sensors are separate rings), so only a
    // description reused across the exec would name it by the first command line.
    let second =
        "import socket, time; time.sleep(0.5); socket.socket().connect_ex(('127.0.0.1', 9502))";
    let first = format!(
        "import os, socket\n\
         for _ in range(3): socket.socket().connect_ex(('127.0.0.1', 9501))\n\
         os.execv('/usr/bin/python3', ['python3', '-c', {second:?}, 'again'])"
    );
    let (code, out) = c.exec(&["python3", "-c", &first, "first"]);
    assert_eq!(code, 0, "{out}");
    let a1 = agent.wait_for(
        "the first destination",
        WAIT,
        network_drift(&c, "new_destination", "127.0.0.1:9501/tcp"),
    );
    let a2 = agent.wait_for(
        "the second destination",
        WAIT,
        network_drift(&c, "new_destination", "127.0.0.1:9502/tcp"),
    );
    assert_eq!(field(&a1, "proc.pid"), field(&a2, "proc.pid"), "{a1}\n{a2}");
    let cmdline = |a: &Value| field(a, "proc.cmdline").as_str().unwrap_or("").to_string();
    assert!(cmdline(&a1).ends_with("first"), "{a1}");
    assert!(cmdline(&a2).ends_with("again"), "{a2}");
}
