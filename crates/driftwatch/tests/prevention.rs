//! Prevention, end to end: a real agent in prevent mode, real BPF programs and fanotify,
//! real containers. Each drift case must fail (EPERM or killed) before its program ran a
//! single instruction, proven by a marker file the program would have created; image
//! binaries and copy-ups must keep working.

use std::path::Path;
use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

// An agent in prevent mode acts on every container of the host, including the other
// tests' ones: the tests of this file run one at a time
// (`common::serial`).

fn blocked_in<'a>(c: &'a TestContainer, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.path") == path
    }
}

fn assert_blocked(a: &Value, verdict: &str, subject: &str, by: &str) {
    assert_eq!(field(a, "drift.verdict"), verdict, "{a}");
    assert_eq!(field(a, "drift.subject"), subject, "{a}");
    assert_eq!(field(a, "drift.enforcement"), "prevent", "{a}");
    assert_eq!(field(a, "drift.action"), "blocked", "{a}");
    assert_eq!(field(a, "drift.blocked_by"), by, "{a}");
    assert!(
        a["output"]
            .as_str()
            .is_some_and(|o| o.contains("action=blocked")),
        "the alert's text says it was blocked: {a}"
    );
    assert_eq!(a["priority"], "Critical", "{a}");
}

/// Runs `script` in the container and asserts it failed and never created `marker`.
fn assert_did_not_run(c: &TestContainer, script: &str, marker: &str, codes: &[i32]) -> String {
    let (code, out) = c.sh(script);
    assert!(
        codes.contains(&code),
        "exit {code}, wanted one of {codes:?}: {out}"
    );
    let (found, _) = c.sh(&format!("test -e {marker}"));
    assert_ne!(found, 0, "{marker} exists: the drifted program ran ({out})");
    out
}

#[test]
fn every_binary_drift_case_is_stopped_before_it_runs() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let _serial = serial();
    let vol = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data", vol.path().display());
    let agent = AgentProcess::start(DRIFTWATCH, &["--enforce", "prevent"]);
    let c = TestContainer::run(&[
        "--tmpfs",
        "/scratch:exec",
        "-v",
        &bind,
        DEBIAN,
        "sleep",
        "120",
    ]);
    // Added to the writable layer: denied by fanotify, the shell gets EPERM (126).
    let out = assert_did_not_run(
        &c,
        "cp /usr/bin/touch /tmp/t && /tmp/t /tmp/ran-added",
        "/tmp/ran-added",
        &[126],
    );
    assert!(out.contains("Operation not permitted"), "{out}");
    let a = agent.wait_for("added", WAIT, blocked_in(&c, "/tmp/t"));
    assert_eq!(a["rule"], "Drop and execute new binary in container");
    assert_blocked(&a, "added", "exe", "fanotify_deny");
    assert!(field(&a, "proc.pid").as_u64().is_some_and(|p| p > 0), "{a}");

    // A script written and made executable.
    assert_did_not_run(
        &c,
        "printf '#!/bin/sh\\ntouch /tmp/ran-script\\n' > /tmp/s.sh && chmod +x /tmp/s.sh && /tmp/s.sh",
        "/tmp/ran-script",
        &[126],
    );
    let a = agent.wait_for("script", WAIT, blocked_in(&c, "/tmp/s.sh"));
    assert_blocked(&a, "added", "script", "fanotify_deny");

    // An image binary modified in place.
    assert_did_not_run(
        &c,
        "cp /usr/bin/touch /usr/bin/yes && /usr/bin/yes /tmp/ran-modified",
        "/tmp/ran-modified",
        &[126],
    );
    let a = agent.wait_for("modified", WAIT, blocked_in(&c, "/usr/bin/yes"));
    assert_blocked(&a, "modified", "exe", "fanotify_deny");

    // Deleted, run through its descriptor.
    assert_did_not_run(
        &c,
        "cp /usr/bin/touch /tmp/gone && exec 3</tmp/gone && rm /tmp/gone && /proc/self/fd/3 /tmp/ran-deleted",
        "/tmp/ran-deleted",
        &[126],
    );
    let a = agent.wait_for("deleted", WAIT, blocked_in(&c, "/tmp/gone"));
    assert_blocked(&a, "deleted", "exe", "fanotify_deny");

    // tmpfs and volume.
    assert_did_not_run(
        &c,
        "cp /usr/bin/touch /scratch/t && /scratch/t /tmp/ran-tmpfs",
        "/tmp/ran-tmpfs",
        &[126],
    );
    let a = agent.wait_for("tmpfs", WAIT, blocked_in(&c, "/scratch/t"));
    assert_blocked(&a, "tmpfs", "exe", "fanotify_deny");
    assert_did_not_run(
        &c,
        "cp /usr/bin/touch /data/t && /data/t /tmp/ran-volume",
        "/tmp/ran-volume",
        &[126],
    );
    let a = agent.wait_for("volume", WAIT, blocked_in(&c, "/data/t"));
    assert_blocked(&a, "volume", "exe", "fanotify_deny");

    // memfd: killed in the kernel at exec (137 = SIGKILL), for execve and execveat.
    for how in ["execve", "execveat"] {
        let exec = if how == "execve" {
            "os.execv(f'/proc/self/fd/{fd}', ['touch', '/tmp/ran-memfd'])"
        } else {
            "os.execve(fd, ['touch', '/tmp/ran-memfd'], {})"
        };
        let py = format!(
            "import os\nfd = os.memfd_create('payload{how}', 0)\nos.write(fd, open('/usr/bin/touch', 'rb').read())\n{exec}"
        );
        let (code, out) = c.exec(&["python3", "-c", &py]);
        assert_eq!(code, 137, "{how}: {out}");
        let (found, _) = c.sh("test -e /tmp/ran-memfd");
        assert_ne!(found, 0, "the memfd program ran ({how})");
        let path = format!("/memfd:payload{how}");
        let a = agent.wait_for(&path, WAIT, blocked_in(&c, &path));
        assert_blocked(&a, "memfd", "exe", "bpf_sigkill");
    }

    // The dynamic loader running a dropped program, and a dropped library preloaded: held
    // at exec, judged, killed before the first instruction.
    assert_did_not_run(
        &c,
        "cp /usr/bin/touch /tmp/t2 && /lib64/ld-linux-x86-64.so.2 /tmp/t2 /tmp/ran-loader",
        "/tmp/ran-loader",
        &[137],
    );
    let a = agent.wait_for("loader", WAIT, blocked_in(&c, "/tmp/t2"));
    assert_blocked(&a, "added", "loader_target", "bpf_hold");
    assert_did_not_run(
        &c,
        "cp /lib/x86_64-linux-gnu/libc.so.6 /tmp/evil.so && LD_PRELOAD=/tmp/evil.so /usr/bin/touch /tmp/ran-preload",
        "/tmp/ran-preload",
        &[137],
    );
    let a = agent.wait_for("preload", WAIT, blocked_in(&c, "/tmp/evil.so"));
    assert_blocked(&a, "added", "preload", "bpf_hold");

    // Image binaries keep working, through the loader and with image libraries preloaded,
    // and so do copy-ups (touch, same-mode chmod).
    let (code, out) = c.sh(
        "ls / >/dev/null && /lib64/ld-linux-x86-64.so.2 /usr/bin/true && \
         LD_PRELOAD=/lib/x86_64-linux-gnu/libc.so.6 /usr/bin/true && \
         touch /usr/bin/env && chmod 755 /usr/bin/env && /usr/bin/env true && \
         python3 -c 'print(1)' >/dev/null && echo fine",
    );
    assert_eq!((code, out.trim()), (0, "fine"));
    // Nothing of that was alerted as binary drift: a marker drift after it is the first.
    c.sh("cp /usr/bin/true /tmp/marker; /tmp/marker");
    agent.wait_for("marker", WAIT, blocked_in(&c, "/tmp/marker"));
    let after: Vec<String> = agent
        .alerts()
        .iter()
        .filter(|a| has_tag(a, "binary_drift") && field(a, "container.id") == c.short())
        .map(|a| field(a, "drift.path").as_str().unwrap_or("").to_string())
        .collect();
    for p in [
        "/usr/bin/true",
        "/usr/bin/env",
        "/usr/bin/ls",
        "/usr/bin/python3.11",
    ] {
        assert!(!after.iter().any(|x| x == p), "{p} alerted: {after:?}");
    }
}

#[test]
fn drift_is_stopped_from_a_new_containers_first_exec() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let _agent = AgentProcess::start(DRIFTWATCH, &["--enforce", "prevent"]);
    // The container's scope is decided while its first exec is held: nothing slips through
    // in its first milliseconds, and its image entrypoint runs normally.
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "cp /bin/busybox /tmp/x; /tmp/x touch /tmp/ran; echo rc=$?; test -e /tmp/ran && echo RAN; echo done",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("rc=126"), "{text}");
    assert!(!text.contains("RAN"), "{text}");
    assert!(text.contains("done"), "{text}");
}

#[test]
fn scopes_choose_the_mode_and_the_allowlist_permits_known_drift() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // sha256 of the busybox binary of the test image, the "self-updating agent" here.
    let probe = TestContainer::run(&[BUSYBOX, "sleep", "30"]);
    let (_, sum) = probe.sh("sha256sum /bin/busybox");
    let sum = sum.split_whitespace().next().unwrap().to_string();
    drop(probe);
    let suffix = std::process::id();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "default: detect\n\
             scopes:\n  - match: {{containers: [\"dw-prevent-*\"]}}\n    mode: prevent\n\
             allow:\n  - path: /opt/init/*.sh\n    reason: init scripts\n  - sha256: {sum}\n    images: [\"driftwatch-test/busybox:*\"]\n"
        ),
    )
    .unwrap();
    let agent = AgentProcess::start(
        DRIFTWATCH,
        &["--enforcement-policy", policy.to_str().unwrap()],
    );
    let prevent_name = format!("dw-prevent-{suffix}");
    let detect_name = format!("dw-detect-{suffix}");
    let p = TestContainer::run(&["--name", &prevent_name, BUSYBOX, "sleep", "120"]);
    let d = TestContainer::run(&["--name", &detect_name, BUSYBOX, "sleep", "120"]);

    // Allowlisted by sha256 (a copy of busybox) and by path: they run, unalerted.
    let (code, out) = p.sh(
        "mkdir -p /tmp/up && cp /bin/busybox /tmp/up/true && /tmp/up/true && mkdir -p /opt/init && \
         printf '#!/bin/sh\\necho init\\n' > /opt/init/10.sh && chmod +x /opt/init/10.sh && /opt/init/10.sh",
    );
    assert_eq!((code, out.trim()), (0, "init"));
    // Not allowlisted: blocked in the prevent scope...
    let (code, _) = p.sh(
        "printf '#!/bin/sh\\ntouch /tmp/ran\\n' > /tmp/x.sh && chmod +x /tmp/x.sh && /tmp/x.sh",
    );
    assert_eq!(code, 126);
    let a = agent.wait_for("blocked in scope", WAIT, blocked_in(&p, "/tmp/x.sh"));
    assert_blocked(&a, "added", "script", "fanotify_deny");
    // ... and alerted but not stopped in the detect scope.
    let (code, _) = d.sh("printf '#!/bin/sh\\ntouch /tmp/ran\\n' > /tmp/x.sh && chmod +x /tmp/x.sh && /tmp/x.sh && test -e /tmp/ran");
    assert_eq!(code, 0);
    let a = agent.wait_for("alerted in detect scope", WAIT, blocked_in(&d, "/tmp/x.sh"));
    assert_eq!(field(&a, "drift.enforcement"), "detect", "{a}");
    assert_eq!(field(&a, "drift.action"), "alerted", "{a}");
    assert_eq!(field(&a, "drift.blocked_by"), &Value::Null, "{a}");
    // The allowlisted drift raised nothing.
    for a in agent.alerts() {
        let path = field(&a, "drift.path").as_str().unwrap_or("").to_string();
        assert!(
            path != "/tmp/up/true" && path != "/opt/init/10.sh",
            "allowlisted drift alerted: {a}"
        );
    }
}

#[test]
fn when_the_agent_dies_enforcement_fails_open() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let mut agent = AgentProcess::start(DRIFTWATCH, &["--enforce", "prevent"]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "120"]);
    c.sh("mkdir /tmp/d && cp /bin/busybox /tmp/d/true");
    // Wait until the container is placed: its drift is denied.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (code, _) = c.sh("/tmp/d/true");
        if code == 126 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never blocked");
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGKILL: the kernel answers allow for the fanotify group that closed, and the BPF
    // programs detach with the agent: nothing hangs, drift runs again (documented).
    agent.kill_hard();
    let (code, out) = c.sh("/tmp/d/true && cp /bin/busybox /tmp/d/echo && /tmp/d/echo ran");
    assert_eq!((code, out.trim()), (0, "ran"));
}

#[test]
fn on_agent_death_hold_fails_closed_until_the_next_agent_judges() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("hold.yaml");
    std::fs::write(&policy, "default: prevent\non_agent_death: hold\n").unwrap();
    let policy = policy.to_str().unwrap().to_string();
    let c = TestContainer::run(&[BUSYBOX, "sleep", "120"]);
    c.sh("mkdir /tmp/d && cp /bin/busybox /tmp/d/sleep");
    let mut agent = AgentProcess::start(DRIFTWATCH, &["--enforcement-policy", &policy]);
    assert!(Path::new("/sys/fs/bpf/driftwatch/exec_link").exists());
    agent.kill_hard();
    // After the heartbeat's 3 s: drift is held (stopped before its first instruction),
    // image binaries still run.
    std::thread::sleep(Duration::from_millis(3500));
    let out = docker(&["exec", "-d", &c.id, "/tmp/d/sleep", "77"]);
    assert!(out.status.success());
    let (code, _) = c.sh("ls / >/dev/null");
    assert_eq!(code, 0, "an image binary must run while the agent is dead");
    let held = || {
        let ps = std::process::Command::new("ps")
            .args(["-eo", "stat=,args="])
            .output()
            .unwrap();
        String::from_utf8_lossy(&ps.stdout)
            .lines()
            .find(|l| l.contains("/tmp/d/sleep 77"))
            .map(|l| l.trim().to_string())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let state = loop {
        if let Some(l) = held() {
            break l;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the drifted process never showed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(state.starts_with('T'), "not held: {state}");
    // The next agent detaches the old program, judges the held process and kills it.
    let agent = AgentProcess::start(DRIFTWATCH, &["--enforcement-policy", &policy]);
    let a = agent.wait_for("orphan judged", WAIT, blocked_in(&c, "/tmp/d/sleep"));
    assert_blocked(&a, "added", "exe", "bpf_hold");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while held().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the held process still exists"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(agent);
    // A clean stop leaves nothing pinned: the kernel enforces nothing without an agent.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while Path::new("/sys/fs/bpf/driftwatch/exec_link").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "still pinned after a clean stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_bad_policy_is_refused_with_file_line_and_column() {
    if !require(&[Requirement::Bpf]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.yaml");
    std::fs::write(
        &policy,
        "default: prevent\nscopes:\n  - mode: prevent\n    imagez: [x]\n",
    )
    .unwrap();
    let out = std::process::Command::new(DRIFTWATCH)
        .args(["run", "--duration", "1", "--enforcement-policy"])
        .arg(&policy)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:4:5: error: unknown key `imagez` in scopes[0] (expected one of: match, mode)",
            policy.display()
        )),
        "{err}"
    );
    let out = std::process::Command::new(DRIFTWATCH)
        .args(["run", "--duration", "1", "--enforce", "block"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`detect` or `prevent`"));
}
