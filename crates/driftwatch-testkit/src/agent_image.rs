//! The agent's own container image for tests that run the agent from inside it: built offline
//! by `scripts/build-image`, and the `docker run` flags that give it what the install docs and
//! the DaemonSet give it (no --privileged).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::docker::{BUSYBOX, TestContainer, TestImage, docker};
use crate::host::repo_root;

/// `scripts/build-image` (which runs scripts/build-static; unoptimized here to keep CI short,
/// `DW_STATIC_PROFILE=release` tests the release binary). The image is removed when dropped.
pub fn build_agent_image() -> TestImage {
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

/// The `docker run` flags of docs/install.md "Container image" (minus -d/--name), with the
/// cgroup namespace `cgroupns` (`host` as documented, `private` as a pod has), the state and
/// log volumes at `state` and `logs`. The capabilities are the DaemonSet's.
///
/// Docker before 23.0 does not know CAP_BPF and CAP_PERFMON ("unknown capability"); there
/// CAP_SYS_ADMIN, which the kernel accepts for both, covers them (docs/install.md says so
/// too), and they are left out.
pub fn agent_image_flags(state: &Path, logs: &Path, cgroupns: &str) -> Vec<String> {
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
    let knows_bpf = !String::from_utf8_lossy(&probe.stderr).contains("unknown capability");
    if !knows_bpf {
        eprintln!(
            "this dockerd does not know CAP_BPF/CAP_PERFMON: running with CAP_SYS_ADMIN for them"
        );
    }
    let mut v: Vec<String> = ["--pid", "host", "--cgroupns", cgroupns, "--cap-drop", "ALL"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for cap in [
        "BPF",
        "PERFMON",
        "SYS_ADMIN",
        "SYS_PTRACE",
        "DAC_READ_SEARCH",
        "KILL",
        "NET_ADMIN",
    ] {
        if knows_bpf || !matches!(cap, "BPF" | "PERFMON") {
            v.push("--cap-add".into());
            v.push(cap.into());
        }
    }
    for m in [
        "/sys/fs/bpf:/sys/fs/bpf".to_string(),
        "/var/run/docker.sock:/var/run/docker.sock".into(),
        "/var/lib/docker:/var/lib/docker:ro,rslave".into(),
        // freeze: the host's cgroupfs, writable (the container's own is read-only and shows
        // only its own cgroup).
        "/sys/fs/cgroup:/host/sys/fs/cgroup".into(),
        format!("{}:/var/lib/driftwatch", state.display()),
        format!("{}:/var/log/driftwatch", logs.display()),
    ] {
        v.push("-v".into());
        v.push(m);
    }
    v
}

/// Waits until the agent in container `agent` says it watches every container (its logs),
/// failing when the container exits or 90 s pass.
pub fn wait_until_watching(agent: &TestContainer) {
    let start = Instant::now();
    loop {
        let out = docker(&["logs", &agent.id]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if text.contains("watching every container") {
            return;
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
}

/// The agent image's command line: `run` with alerts to the log volume's `alerts.json` (not
/// stdout), then `extra`. The image's default CMD reads /etc/driftwatch/config.yaml; tests
/// name the outputs so that they depend on nothing else.
pub fn agent_run_args(extra: &[&str]) -> Vec<String> {
    [
        "run",
        "--no-stdout",
        "--json-out",
        "/var/log/driftwatch/alerts.json",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}
