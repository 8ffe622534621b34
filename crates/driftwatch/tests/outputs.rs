//! Outputs end to end: the real agent with an HTTP output pointed at a receiver on loopback;
//! a binary dropped into a real container and executed reaches the receiver as the same
//! Falco JSON alert the agent writes to its JSON file. A second, dead receiver delays none
//! of it.

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
