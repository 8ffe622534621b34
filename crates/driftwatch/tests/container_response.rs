//! Response from inside the shipped container image, run as the DaemonSet runs it: the
//! DaemonSet's capabilities (no --privileged), `hostPID`, a read-only root with a `/tmp` of its
//! own, and a cgroup namespace of its own (`--cgroupns private`, as a pod has). A playbook
//! isolates one drifting container (no `nft` in the image: netlink) and freezes another (its
//! cgroup found as the host sees it, not relative to the agent's cgroup namespace); the test
//! checks the effects from the host, then `driftwatch release` run inside the agent's
//! container undoes both.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// The record of `action` on container `c` in the actions log, once there.
fn wait_record(log: &Path, c: &TestContainer, action: &str, agent: &TestContainer) -> Value {
    let start = Instant::now();
    loop {
        let records = read_alerts(log);
        if let Some(r) = records.iter().find(|r| {
            r["action"] == action
                && r["container"]["id"]
                    .as_str()
                    .is_some_and(|i| i.starts_with(c.short()))
        }) {
            return r.clone();
        }
        assert!(
            start.elapsed() < WAIT,
            "no `{action}` record for {} within {WAIT:?}; records: {records:?}\nagent logs: {:?}",
            c.short(),
            docker(&["logs", &agent.id])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn isolate_and_freeze_work_from_the_image_in_a_cgroup_namespace_of_its_own() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) || !require_tools(&["nsenter"])
    {
        return;
    }
    // `ip` has no --version for require_tools: `-V`.
    let ip = Command::new("ip").arg("-V").output();
    assert!(
        ip.is_ok_and(|o| o.status.success()),
        "needs the ip command (iproute2, scripts/deps test installs it)"
    );
    let image = build_agent_image();
    let tag = std::process::id();
    let (iso_name, frz_name) = (format!("dw-cr-iso-{tag}"), format!("dw-cr-frz-{tag}"));
    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let playbooks = tempfile::tempdir().unwrap();
    std::fs::write(
        playbooks.path().join("playbook.yaml"),
        format!(
            "playbooks:
  - name: isolate
    match: {{tags: [binary_drift], containers: [{iso_name}]}}
    actions: [isolate]
  - name: freeze
    match: {{tags: [binary_drift], containers: [{frz_name}]}}
    actions: [freeze]
"
        ),
    )
    .unwrap();
    let mut args = agent_image_flags(state.path(), logs.path(), "private");
    // The DaemonSet's readOnlyRootFilesystem with an emptyDir on /tmp, and its playbooks
    // from a ConfigMap (read-only).
    let pb_mount = format!(
        "{}:/etc/driftwatch/playbooks:ro",
        playbooks.path().display()
    );
    args.extend(
        ["--read-only", "--tmpfs", "/tmp", "-v", &pb_mount]
            .iter()
            .map(|s| s.to_string()),
    );
    args.push(image.0.clone());
    args.extend(agent_run_args(&[
        "--playbook",
        "/etc/driftwatch/playbooks/playbook.yaml",
        "--actions-log",
        "/var/log/driftwatch/actions.jsonl",
    ]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let agent = TestContainer::run(&args);
    wait_until_watching(&agent);
    // The agent really is in a cgroup namespace of its own, as in a pod.
    let ns = |pid: &str| {
        std::fs::metadata(format!("/proc/{pid}/ns/cgroup"))
            .unwrap()
            .ino()
    };
    assert_ne!(
        ns(&agent.pid().to_string()),
        ns("self"),
        "--cgroupns private did not give the agent its own cgroup namespace"
    );
    let log = logs.path().join("actions.jsonl");

    // isolate: the container's traffic is cut, loopback kept.
    let iso = TestContainer::httpd(&iso_name);
    let outside = TestNetns::link_to(&iso, 78);
    let url = "169.254.78.2:8080";
    assert_eq!(
        outside.fetch(url).unwrap().trim(),
        "hello",
        "reachable before"
    );
    drop_and_run(&iso, "x");
    let rec = wait_record(&log, &iso, "isolate", &agent);
    assert_eq!(rec["result"], "ok", "{rec}");
    assert_eq!(rec["playbook"], "isolate", "{rec}");
    assert_eq!(rec["container"]["name"], iso_name.as_str(), "{rec}");
    let e = outside
        .fetch(url)
        .expect_err("the container must be unreachable once isolated");
    assert!(!e.contains("hello"), "{e}");
    assert!(iso.get_inside("127.0.0.1:8080").contains("hello"));

    // freeze: every process of the container stopped by its cgroup's freezer.
    let frz = TestContainer::counter(&frz_name);
    let thaw = Thaw::of(&frz);
    let control = thaw.0.clone();
    let count = || frz.count();
    drop_and_run_detached(&frz, "x");
    let rec = wait_record(&log, &frz, "freeze", &agent);
    assert_eq!(rec["result"], "ok", "{rec}");
    let a = count();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(count(), a, "frozen: the counter must not advance");
    let state_text = std::fs::read_to_string(&control).unwrap();
    assert!(
        matches!(state_text.trim(), "FROZEN" | "1"),
        "{}: {state_text}",
        control.display()
    );

    // release, run inside the agent's container (same namespaces, capabilities, mounts).
    for (name, want) in [
        (&iso_name, "network isolation removed"),
        (&frz_name, "thawed"),
    ] {
        let (code, out) = agent.exec(&[
            "/usr/bin/driftwatch",
            "release",
            name,
            "--actions-log",
            "/var/log/driftwatch/actions.jsonl",
        ]);
        assert_eq!(code, 0, "release {name}: {out}");
        assert!(out.contains(want), "release {name}: {out}");
    }
    assert_eq!(
        outside.fetch(url).unwrap().trim(),
        "hello",
        "reachable after release"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(count() > a, "thawed: the counter resumes");
    let released: Vec<Value> = read_alerts(&log)
        .into_iter()
        .filter(|r| r["action"] == "release")
        .collect();
    assert_eq!(released.len(), 2, "{released:?}");
    assert!(released.iter().all(|r| r["result"] == "ok"), "{released:?}");
}
