//! Packaging, checked for real: the systemd unit passes `systemd-analyze verify` and starts
//! what `scripts/install` installs; the agent speaks systemd's notify protocol; the unit's
//! capability bounding set is enough to detect drift (and taking one away is not).

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use driftwatch_testkit::*;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

fn unit_text() -> String {
    std::fs::read_to_string(repo_root().join("packaging/systemd/driftwatch.service")).unwrap()
}

/// The value of `Key=` in the unit (first occurrence).
fn unit_value(key: &str) -> String {
    unit_text()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .to_string()
}

/// `scripts/install` into a temporary root with the test's binary.
fn install(destdir: &Path) -> std::process::Output {
    Command::new(repo_root().join("scripts/install"))
        .env("DESTDIR", destdir)
        .env("BIN", DRIFTWATCH)
        .env_remove("PREFIX")
        .output()
        .expect("running scripts/install")
}

#[test]
fn install_puts_the_binary_where_the_unit_starts_it() {
    let root = tempfile::tempdir().unwrap();
    let out = install(root.path());
    assert!(out.status.success(), "scripts/install: {out:?}");
    let exec_start = unit_value("ExecStart");
    let bin = exec_start.split_whitespace().next().unwrap();
    assert_eq!(bin, "/usr/local/bin/driftwatch", "{exec_start}");
    let installed = root.path().join(bin.trim_start_matches('/'));
    let v = Command::new(&installed).arg("--version").output().unwrap();
    assert!(
        v.status.success(),
        "{} --version: {v:?}",
        installed.display()
    );
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("driftwatch "));
    // The unit runs the agent with the config the install script puts in place.
    assert!(
        exec_start.contains("run --config /etc/driftwatch/config.yaml"),
        "{exec_start}"
    );
    let config = root.path().join("etc/driftwatch/config.yaml");
    assert!(config.is_file(), "{} missing", config.display());
    let unit = root.path().join("etc/systemd/system/driftwatch.service");
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), unit_text());
    // State is private to root.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(root.path().join("var/lib/driftwatch"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    // The unit's Documentation= pages exist, and the shells' completions.
    for p in [
        "usr/local/share/man/man1/driftwatch.1",
        "usr/local/share/man/man1/driftwatch-run.1",
        "usr/local/share/bash-completion/completions/driftwatch",
        "usr/local/share/zsh/site-functions/_driftwatch",
        "usr/local/share/fish/vendor_completions.d/driftwatch.fish",
    ] {
        assert!(root.path().join(p).is_file(), "{p} not installed");
    }
}

#[test]
fn install_keeps_an_edited_config_and_refuses_bad_input() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("etc/driftwatch/config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "enforcement:\n  mode: prevent\n").unwrap();
    let out = install(root.path());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "enforcement:\n  mode: prevent\n"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("keeping existing"));

    let out = Command::new(repo_root().join("scripts/install"))
        .arg("--bogus")
        .env("DESTDIR", root.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument --bogus"));

    let out = Command::new(repo_root().join("scripts/install"))
        .env("DESTDIR", root.path())
        .env("BIN", "/nonexistent/driftwatch")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no binary at /nonexistent/driftwatch"),
        "{out:?}"
    );
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    // Only where systemd-analyze exists (also in CI: the package is not a test dependency).
    if !optional(Requirement::Tool("systemd-analyze").check()) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let out = install(root.path());
    assert!(out.status.success(), "{out:?}");
    // verify checks that ExecStart is executable: point it at the installed copy (which
    // the test above proves is the path the unit names) and check everything else as is.
    let installed = root.path().join("usr/local/bin/driftwatch");
    let unit = std::fs::read_to_string(root.path().join("etc/systemd/system/driftwatch.service"))
        .unwrap()
        .replace(
            "ExecStart=/usr/local/bin/driftwatch ",
            &format!("ExecStart={} ", installed.display()),
        );
    let path = root.path().join("driftwatch.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 on unknown keys and only prints them: any output is a finding.
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );

    // And it does catch a broken unit (so the check above means something).
    std::fs::write(&path, "[Service]\nExecStart=relative/path\n").unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        !out.status.success() || !out.stderr.is_empty(),
        "a broken unit passed: {out:?}"
    );
}

fn caps_in_unit() -> Vec<String> {
    unit_value("CapabilityBoundingSet")
        .split_whitespace()
        .map(|c| {
            assert!(c.starts_with("CAP_"), "{c}");
            c.to_string()
        })
        .collect()
}

/// `setpriv` arguments that give a root process exactly `caps` (bounding set, hence
/// permitted and effective after exec), as systemd's CapabilityBoundingSet does.
fn setpriv_with(caps: &[String]) -> Vec<String> {
    let list: Vec<String> = caps
        .iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    vec![
        "setpriv".into(),
        format!("--bounding-set=-all,{}", list.join(",")),
        "--".into(),
    ]
}

#[test]
fn the_units_capabilities_are_enough_to_detect_drift() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) || !require_tools(&["setpriv"])
    {
        return;
    }
    let caps = caps_in_unit();
    let wrapper = setpriv_with(&caps);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let state = tempfile::tempdir().unwrap();
    let baselines = state.path().join("baselines.json");
    let actions = state.path().join("actions.jsonl");
    let agent = AgentProcess::start_via(
        &wrapper,
        DRIFTWATCH,
        &[
            "--baseline-file",
            baselines.to_str().unwrap(),
            "--actions-log",
            actions.to_str().unwrap(),
        ],
    );
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    // Binary drift (BPF exec program + reading the container's files).
    let (code, out) = c.sh("cp /bin/busybox /tmp/ls && /tmp/ls / >/dev/null");
    assert_eq!(code, 0, "{out}");
    agent.wait_for(
        "binary drift under the unit's capabilities",
        Duration::from_secs(30),
        |a| {
            has_tag(a, "binary_drift")
                && field(a, "container.id") == c.short()
                && field(a, "drift.path") == "/tmp/ls"
        },
    );
    // File drift (fanotify filesystem marks need CAP_SYS_ADMIN).
    let mut seen = false;
    for _ in 0..50 {
        c.sh("echo x >> /etc/passwd");
        if agent
            .alerts()
            .iter()
            .any(|a| field(a, "container.id") == c.short() && field(a, "fd.name") == "/etc/passwd")
        {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        seen,
        "no file drift alert under the unit's capabilities: {:?}",
        agent.alerts()
    );
}

#[test]
fn without_cap_bpf_the_agent_says_why_it_cannot_start() {
    if !require(&[Requirement::Bpf]) || !require_tools(&["setpriv"]) {
        return;
    }
    // The bounding set really constrains the agent: drop CAP_BPF and it cannot load.
    let caps: Vec<String> = caps_in_unit()
        .into_iter()
        .filter(|c| c != "CAP_BPF" && c != "CAP_SYS_ADMIN")
        .collect();
    let wrapper = setpriv_with(&caps);
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(&wrapper[0])
        .args(&wrapper[1..])
        .arg(DRIFTWATCH)
        .args(["run", "--no-engine", "--duration", "5", "--baseline-file"])
        .arg(state.path().join("b.json"))
        .arg("--actions-log")
        .arg(state.path().join("a.jsonl"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the agent ran without CAP_BPF: {stderr}"
    );
    assert!(
        stderr.contains("BPF") || stderr.contains("bpf"),
        "the error does not name BPF: {stderr}"
    );
}

#[test]
fn the_agent_notifies_systemd_when_ready_and_when_stopping() {
    if !require(&[Requirement::Bpf]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(90)))
        .unwrap();
    let mut child = Command::new(DRIFTWATCH)
        .args(["run", "--no-stdout", "--no-engine", "--baseline-file"])
        .arg(dir.path().join("b.json"))
        .arg("--actions-log")
        .arg(dir.path().join("a.jsonl"))
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("no READY=1 from the agent");
    assert_eq!(&buf[..n], b"READY=1");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let n = sock.recv(&mut buf).expect("no STOPPING=1 after SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn notify_to_a_missing_socket_does_not_stop_the_agent() {
    if !require(&[Requirement::Bpf]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(DRIFTWATCH)
        .args([
            "run",
            "--no-stdout",
            "--no-engine",
            "--duration",
            "1",
            "--baseline-file",
        ])
        .arg(dir.path().join("b.json"))
        .arg("--actions-log")
        .arg(dir.path().join("a.jsonl"))
        .env("NOTIFY_SOCKET", dir.path().join("nobody-listens.sock"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("sd_notify \"READY=1\""), "{stderr}");
}
