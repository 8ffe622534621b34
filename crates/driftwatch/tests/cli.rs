//! The CLI's unhappy paths and the agent's behaviour without (and with a returning) engine.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use driftwatch_testkit::*;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

fn driftwatch() -> Command {
    Command::new(DRIFTWATCH)
}

#[test]
fn doctor_reports_what_the_host_supports() {
    if !require(&[Requirement::Bpf]) {
        return;
    }
    let out = driftwatch().arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "ok   root",
        "ok   BTF",
        "ok   exec tracepoint",
        "ok   overlayfs",
        "binary drift detection: available",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let out = driftwatch()
        .args(["doctor", "--docker-socket", "/nonexistent.sock"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("NO   docker") && text.contains("/nonexistent.sock"),
        "{text}"
    );
}

fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(DRIFTWATCH)
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

#[test]
fn not_root_gets_one_clear_line() {
    if !require(&[Requirement::Bpf]) {
        return; // needs root to become someone else
    }
    let out = as_nobody(&["run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("needs root") && err.contains("driftwatch doctor"),
        "{err}"
    );
    let out = as_nobody(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("NO   root") && text.contains("NOT available"),
        "{text}"
    );
}

#[test]
fn bad_arguments_and_rule_files_are_named() {
    if !require(&[Requirement::Bpf]) {
        return;
    }
    let out = driftwatch()
        .args(["run", "--ring-mib", "3"])
        .output()
        .unwrap();
    // Checked as the file's key is, and told at the flag and its value.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ring-mib 3: sensor.ring_mib: 3 is not a power of two from 1 to 1024"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "- rule: broken\n  desc: d\n  condition: proc.name = x and (\n  output: o\n  priority: WARNING\n").unwrap();
    let out = driftwatch()
        .args(["run", "--rules"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{}:3:", bad.display())),
        "error must name file:line:col: {err}"
    );
    let out = driftwatch()
        .args(["run", "--rules", "/nonexistent/rules.yaml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rules.yaml"));
}

/// Forwards connections from `listen` to dockerd's socket while the returned guard lives.
struct SocketProxy {
    path: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SocketProxy {
    fn start(path: &Path) -> SocketProxy {
        let listener = UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(upstream) = UnixStream::connect("/var/run/docker.sock") else {
                            continue;
                        };
                        let (mut c2, mut u2) =
                            (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                        let (mut c1, mut u1) = (client, upstream);
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut c1, &mut u1);
                            let _ = u1.shutdown(std::net::Shutdown::Write);
                        });
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut u2, &mut c2);
                            let _ = c2.shutdown(std::net::Shutdown::Write);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        SocketProxy {
            path: path.to_path_buf(),
            stop,
        }
    }
}

impl Drop for SocketProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn without_an_engine_drift_is_still_caught_and_names_come_back_with_it() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("engine.sock");
    let sock_arg = sock.display().to_string();
    // The engine is not there when the agent starts.
    let agent = AgentProcess::start(DRIFTWATCH, &["--docker-socket", &sock_arg]);
    let c1 = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    c1.sh("cp /bin/busybox /tmp/early && /tmp/early");
    let a = agent.wait_for("drift without engine", Duration::from_secs(20), |a| {
        field(a, "drift.path") == "/tmp/early"
    });
    assert_eq!(
        field(&a, "container.id"),
        c1.short(),
        "identity comes from the kernel: {a}"
    );
    assert_eq!(a["rule"], "Drop and execute new binary in container");
    assert!(
        field(&a, "container.image.repository")
            .as_str()
            .is_none_or(|r| r.is_empty()),
        "no engine, no image: {a}"
    );
    // The engine comes (back): new containers are named again.
    let _proxy = SocketProxy::start(&sock);
    std::thread::sleep(Duration::from_secs(6));
    let c2 = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    c2.sh("cp /bin/busybox /tmp/late && /tmp/late");
    let a = agent.wait_for(
        "drift after the engine returned",
        Duration::from_secs(20),
        |a| field(a, "drift.path") == "/tmp/late",
    );
    assert_eq!(field(&a, "container.id"), c2.short());
    assert_eq!(
        field(&a, "container.image.repository"),
        "driftwatch-test/busybox",
        "{a}"
    );
}
