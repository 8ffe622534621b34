//! Outputs end to end: the real agent with an HTTP output pointed at a receiver on loopback;
//! a binary dropped into a real container and executed reaches the receiver as the same
//! Falco JSON alert the agent writes to its JSON file. A second, dead receiver delays none
//! of it. With `outputs.stdout.format: json` (the DaemonSet's), stdout carries the same alert
//! as one JSON line, for `kubectl logs`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

#[test]
fn dropped_binary_alert_is_posted_as_falco_json() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) {
        return;
    }
    let rx = HttpReceiver::start(&[]);
    // Nobody listens here: that output retries and fails on its own thread.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = rx.url("/falco");
    let dead_url = format!("http://{dead}/");
    let stats_dir = tempfile::tempdir().unwrap();
    let stats = stats_dir.path().join("stats.json");
    let agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--http-out",
            &url,
            "--http-out",
            &dead_url,
            "--stats-json",
            stats.to_str().unwrap(),
        ],
    );
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    let (code, out) = c.sh("cp /bin/busybox /tmp/true && /tmp/true");
    assert_eq!(code, 0, "{out}");

    let is_ours = |a: &Value| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.path") == "/tmp/true"
    };
    let start = Instant::now();
    let (req, posted) = loop {
        let found = rx.requests().into_iter().find_map(|r| {
            let v: Value = serde_json::from_str(&r.body)
                .unwrap_or_else(|e| panic!("POST body is not JSON: {e}: {}", r.body));
            is_ours(&v).then_some((r, v))
        });
        if let Some(f) = found {
            break f;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no POST for the dropped binary; received: {:?}",
            rx.requests()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/falco");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(posted["rule"], "Drop and execute new binary in container");
    assert_eq!(posted["priority"], "Critical");
    assert_eq!(posted["source"], "syscall");
    assert_eq!(field(&posted, "drift.verdict"), "added");
    assert_eq!(field(&posted, "proc.exepath"), "/tmp/true");
    assert_eq!(
        field(&posted, "container.image.repository"),
        "driftwatch-test/busybox"
    );
    // Byte for byte the alert of the JSON file output.
    let written = agent.wait_for(
        "the same alert in the JSON file",
        Duration::from_secs(10),
        is_ours,
    );
    assert_eq!(posted, written);

    // At exit the agent reports each output: the live one delivered all it queued, the dead
    // one retried and gave up on all of its own, independently.
    drop(agent);
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let outputs = stats["outputs"].as_array().expect("outputs in the stats");
    let by_name = |name: &str| {
        outputs
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("no output {name} in {outputs:?}"))
    };
    let live = by_name(&format!("http:{url}"));
    assert!(live["queued"].as_u64().unwrap() >= 1, "{live}");
    assert_eq!(live["sent"], live["queued"], "{live}");
    assert_eq!(live["failed"], 0, "{live}");
    let dead = by_name(&format!("http:{dead_url}"));
    assert_eq!(dead["queued"], live["queued"], "{dead}");
    assert_eq!(dead["sent"], 0, "{dead}");
    assert_eq!(dead["failed"], dead["queued"], "{dead}");
    assert!(dead["retries"].as_u64().unwrap() >= 1, "{dead}");
    let json_file = by_name("json_file");
    assert_eq!(json_file["sent"], live["queued"], "{json_file}");
}

/// A `driftwatch run` whose stdout the test reads; killed when dropped.
struct StdoutAgent {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for StdoutAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn stdout_in_json_format_is_one_falco_alert_a_line() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "outputs:\n  stdout:\n    format: json\n    color: always\napi:\n  enabled: false\n  token_file: {}\n",
            dir.path().join("api.token").display()
        ),
    )
    .unwrap();
    let json_out = dir.path().join("alerts.json");
    let mut child = Command::new(DRIFTWATCH)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--json-out")
        .arg(&json_out)
        .arg("--store")
        .arg(dir.path().join("driftwatch.db"))
        .arg("--actions-log")
        .arg(dir.path().join("actions.jsonl"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[agent] {line}");
            if line.contains("watching every container") {
                let _ = ready_tx.send(());
            }
        }
    });
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let agent = StdoutAgent { child, lines };
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the agent did not become ready within 60 s");

    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    let (code, out) = c.sh("cp /bin/busybox /tmp/true && /tmp/true");
    assert_eq!(code, 0, "{out}");
    let start = Instant::now();
    let printed = loop {
        let found = agent.lines.lock().unwrap().iter().find_map(|l| {
            // Every line is a whole JSON object: nothing else is printed on stdout, and
            // `color: always` colours the text format only.
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a stdout line is not JSON ({e}): {l:?}"));
            (has_tag(&v, "binary_drift")
                && field(&v, "container.id") == c.short()
                && field(&v, "drift.path") == "/tmp/true")
                .then_some(v)
        });
        if let Some(v) = found {
            break v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no JSON line for the dropped binary on stdout: {:?}",
            agent.lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(printed["rule"], "Drop and execute new binary in container");
    assert_eq!(printed["priority"], "Critical");
    // The same alert as the JSON file's.
    let start = Instant::now();
    loop {
        let written = read_alerts(&json_out);
        if written.contains(&printed) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the stdout alert is not in the JSON file: {printed}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
