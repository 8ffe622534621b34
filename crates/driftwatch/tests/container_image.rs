//! The agent's container image, for real: built offline (static binary on `FROM scratch`),
//! run with the flags docs/install.md documents (no --privileged), it detects a dropped binary
//! executed in another container.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use driftwatch_testkit::*;

/// scripts/build-image (which runs scripts/build-static; unoptimized here to keep CI short,
/// `DW_STATIC_PROFILE=release` tests the release binary).
/// The image under test, removed when dropped.
fn build_image() -> TestImage {
    let tag = format!("driftwatch-test/agent:{}", std::process::id());
    let profile = std::env::var("DW_STATIC_PROFILE").unwrap_or_else(|_| "static-dev".into());
    let out = Command::new(repo_root().join("scripts/build-image"))
        .arg(&tag)
        .env("DW_STATIC_PROFILE", profile)
        .current_dir(repo_root())
        .output()
        .expect("running scripts/build-image");
    assert!(
        out.status.success(),
        "scripts/build-image: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("built {}", String::from_utf8_lossy(&out.stdout).trim());
    TestImage(tag)
}

/// The `docker run` flags of docs/install.md "Container image", minus -d/--name.
fn agent_flags(state: &Path, logs: &Path) -> Vec<String> {
    let mut v: Vec<String> = [
        "--pid",
        "host",
        "--cgroupns",
        "host",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "BPF",
        "--cap-add",
        "PERFMON",
        "--cap-add",
        "SYS_ADMIN",
        "--cap-add",
        "SYS_PTRACE",
        "--cap-add",
        "DAC_READ_SEARCH",
        "--cap-add",
        "KILL",
        "--cap-add",
        "NET_ADMIN",
        "-v",
        "/sys/fs/bpf:/sys/fs/bpf",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        "/var/lib/docker:/var/lib/docker:ro,rslave",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("-v".into());
    v.push(format!("{}:/var/lib/driftwatch", state.display()));
    v.push("-v".into());
    v.push(format!("{}:/var/log/driftwatch", logs.display()));
    v
}

#[test]
fn the_image_is_static_scratch_and_detects_drift_in_another_container() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) {
        return;
    }
    let image = build_image();
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
    let mut args = agent_flags(state.path(), logs.path());
    args.push(image.0.clone());
    // The image's default CMD reads /etc/driftwatch/config.yaml; the test names its outputs
    // on the command line so it depends on nothing else.
    args.extend(
        [
            "run",
            "--no-stdout",
            "--json-out",
            "/var/log/driftwatch/alerts.json",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    // Docker before 23.0 does not know CAP_BPF and CAP_PERFMON ("unknown capability"); there
    // CAP_SYS_ADMIN, which the kernel accepts for both, covers them (docs/install.md says so too).
    let probe = docker(&[
        "run",
        "--rm",
        "--cap-add",
        "BPF",
        "--network",
        "none",
        BUSYBOX,
        "true",
    ]);
    if String::from_utf8_lossy(&probe.stderr).contains("unknown capability") {
        eprintln!(
            "this dockerd does not know CAP_BPF/CAP_PERFMON: running with CAP_SYS_ADMIN for them"
        );
        let mut kept = Vec::new();
        let mut it = args.into_iter().peekable();
        while let Some(a) = it.next() {
            if a == "--cap-add" && it.peek().is_some_and(|c| c == "BPF" || c == "PERFMON") {
                it.next();
                continue;
            }
            kept.push(a);
        }
        args = kept;
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let agent = TestContainer::run(&args);
    let start = Instant::now();
    loop {
        let out = docker(&["logs", &agent.id]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if text.contains("watching every container") {
            break;
        }
        let running = docker(&["inspect", "-f", "{{.State.Running}}", &agent.id]);
        assert!(
            String::from_utf8_lossy(&running.stdout).trim() == "true",
            "the agent container exited:\n{text}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the agent container was not ready within 90 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
