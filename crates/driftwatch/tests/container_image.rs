//! The agent's container image, for real: built offline (static binary on `FROM scratch`),
//! run with the flags docs/install.md documents (no --privileged), it detects a dropped binary
//! executed in another container.

use std::time::{Duration, Instant};

use driftwatch_testkit::*;

#[test]
fn the_image_is_static_scratch_and_detects_drift_in_another_container() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) {
        return;
    }
    let image = build_agent_image();
    // Nothing but the binary and its config: no shell to exec into.
    let out = docker(&[
        "image",
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        &image.0,
    ]);
    let layers: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(layers.len(), 2, "binary + config layers only: {layers:?}");

    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    // TestContainer::run gives it `--network none`: the agent needs no network of its own.
    let mut args = agent_image_flags(state.path(), logs.path(), "host");
    args.push(image.0.clone());
    args.extend(agent_run_args(&[]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let agent = TestContainer::run(&args);
    wait_until_watching(&agent);
    let (code, out) = agent.exec(&["sh", "-c", "true"]);
    assert_ne!(code, 0, "the image has a shell: {out}");

    let victim = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    let (code, out) = victim.sh("cp /bin/busybox /tmp/ls && /tmp/ls / >/dev/null");
    assert_eq!(code, 0, "{out}");
    let alerts_file = logs.path().join("alerts.json");
    let start = Instant::now();
    let alert = loop {
        let alerts = read_alerts(&alerts_file);
        if let Some(a) = alerts.iter().find(|a| {
            has_tag(a, "binary_drift")
                && field(a, "container.id") == victim.short()
                && field(a, "drift.path") == "/tmp/ls"
        }) {
            break a.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no alert from the containerized agent; alerts: {alerts:?}\nagent logs: {:?}",
            docker(&["logs", &agent.id])
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(alert["rule"], "Drop and execute new binary in container");
    // Tamper protection in the agent's container judges openers by cgroup: the host (this
    // test) still reads the alerts directory; its files are not refused as a container's.
    assert!(
        std::fs::read_dir(logs.path()).is_ok(),
        "the host cannot list the containerized agent's log directory"
    );
    assert_eq!(field(&alert, "drift.verdict"), "added", "{alert}");
    // Named through the mounted docker socket, not just by id.
    assert_eq!(
        field(&alert, "container.image.repository"),
        "driftwatch-test/busybox",
        "{alert}"
    );
}
