//! Tamper protection and hostile input, end to end: a real agent, real containers. A
//! container sharing the host's pid namespace signals the agent; a container with the
//! agent's state directory bind-mounted writes there; a container executes files whose
//! names and arguments carry newlines, terminal escapes, invalid UTF-8 and long strings.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn ready() -> bool {
    require(&[
        Requirement::Root,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ])
}

/// The state letter of `/proc/<pid>/stat` (R, S, T, Z, ...), None when gone.
fn proc_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

fn wait_state(pid: u32, want: char) {
    let start = Instant::now();
    while proc_state(pid) != Some(want) {
        assert!(
            start.elapsed() < WAIT,
            "agent pid {pid} not in state {want}: {:?}",
            proc_state(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal_alert<'a>(c: &'a Container, sig: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        a["rule"] == "Signal sent to driftwatch from a container"
            && field(a, "evt.arg.sig") == sig
            && field(a, "container.id") == c.short()
    }
}

#[test]
fn a_container_signalling_the_agent_raises_critical_alerts_and_cannot_stop_it() {
    if !ready() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let baselines = state.path().join("baselines.json");
    let mut agent =
        AgentProcess::start(&["--no-store", "--baseline-file", baselines.to_str().unwrap()]);
    let pid = agent.pid().to_string();
    let c = Container::run(&["--pid", "host", BUSYBOX, "sleep", "300"]);

    // SIGTERM from the container: alerted, ignored.
    let (rc, out) = c.exec(&["kill", "-TERM", &pid]);
    assert_eq!(rc, 0, "kill -TERM from the container: {out}");
    let a = agent.wait_for(
        "SIGTERM from a container",
        WAIT,
        signal_alert(&c, "SIGTERM"),
    );
    assert_eq!(a["priority"], "Critical", "{a}");
    assert!(has_tag(&a, "tamper"), "{a}");
    assert_eq!(field(&a, "proc.name"), "kill", "{a}");
    assert_eq!(field(&a, "evt.arg.target"), agent.pid(), "{a}");
    let name = field(&a, "container.name").as_str().unwrap_or_default();
    assert!(!name.is_empty(), "container.name missing: {a}");
    assert!(
        a["output"]
            .as_str()
            .unwrap()
            .contains(&format!("({})", c.short())),
        "{a}"
    );
    agent.wait_for_log("the ignored SIGTERM", 1, WAIT, |l| {
        l.contains("came from a container: ignored")
    });
    assert!(
        matches!(proc_state(agent.pid()), Some('S' | 'R')),
        "the agent stopped after a container's SIGTERM: {:?}",
        proc_state(agent.pid())
    );

    // SIGHUP from the container: alerted, no reload.
    let (rc, out) = c.exec(&["kill", "-HUP", &pid]);
    assert_eq!(rc, 0, "{out}");
    agent.wait_for("SIGHUP from a container", WAIT, signal_alert(&c, "SIGHUP"));

    // SIGSTOP cannot be caught: the agent is stopped, and reports it once continued.
    let (rc, out) = c.exec(&["kill", "-STOP", &pid]);
    assert_eq!(rc, 0, "{out}");
    wait_state(agent.pid(), 'T');
    agent.signal(libc::SIGCONT);
    agent.wait_for(
        "SIGSTOP from a container",
        WAIT,
        signal_alert(&c, "SIGSTOP"),
    );

    // Detection still works after all that: a drifted exec in another container alerts.
    let d = Container::run(&[BUSYBOX, "sleep", "300"]);
    let (rc, out) = d.sh("cp /bin/busybox /tmp/ls && /tmp/ls / >/dev/null");
    assert_eq!(rc, 0, "{out}");
    agent.wait_for("a drifted exec after the signals", WAIT, |a| {
        has_tag(a, "binary_drift") && field(a, "container.id") == d.short()
    });

    // Signals from the host are not alerted on, and SIGTERM from the host still stops it.
    let before = agent
        .alerts()
        .iter()
        .filter(|a| has_tag(a, "tamper"))
        .count();
    agent.stop();
    assert_eq!(
        proc_state(agent.pid()),
        None,
        "the agent did not stop on the host's SIGTERM"
    );
    let after: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| has_tag(a, "tamper"))
        .collect();
    assert_eq!(after.len(), before, "host signals alerted: {after:?}");
    // A container without --pid host cannot even name the agent's pid.
    assert!(
        agent.log().iter().any(|l| l.contains("stopped:")),
        "no clean stop: {:?}",
        agent.log()
    );
}

#[test]
fn a_container_cannot_write_the_agents_state_directory() {
    if !ready() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("driftwatch.db");
    let baselines = state.path().join("baselines.json");
    let agent = AgentProcess::start(&[
        "--store",
        db.to_str().unwrap(),
        "--baseline-file",
        baselines.to_str().unwrap(),
    ]);
    agent.wait_for_log("the protected paths", 1, WAIT, |l| {
        l.contains("tamper protection: containers may not open")
            && l.contains(state.path().to_str().unwrap())
    });
    let mount = format!("{}:/state", state.path().display());
    let c = Container::run(&["-v", &mount, BUSYBOX, "sleep", "300"]);
    let (rc, out) = c.sh("echo owned > /state/evil.conf");
    assert_ne!(
        rc, 0,
        "the container wrote the agent's state directory: {out}"
    );
    assert!(out.contains("Operation not permitted"), "{out}");
    let a = agent.wait_for("the denied write", WAIT, |a| {
        a["rule"] == "Container opened a file of driftwatch"
            && field(a, "container.id") == c.short()
    });
    assert_eq!(a["priority"], "Critical", "{a}");
    assert_eq!(field(&a, "evt.res"), "EPERM", "{a}");
    assert_eq!(field(&a, "fd.name"), "/state/evil.conf", "{a}");
    // The alert store itself: reading it from the container is denied too.
    let (rc, out) = c.sh("cat /state/driftwatch.db > /dev/null");
    assert_ne!(rc, 0, "the container read the alert store: {out}");
    agent.wait_for("the denied read of the store", WAIT, |a| {
        a["rule"] == "Container opened a file of driftwatch"
            && field(a, "fd.name") == "/state/driftwatch.db"
    });
    // Nothing in the container got through, the host still writes there.
    let evil = state.path().join("evil.conf");
    let content = std::fs::read_to_string(&evil).unwrap_or_default();
    assert!(
        content.is_empty(),
        "the container's bytes landed: {content:?}"
    );
    std::fs::write(state.path().join("host.txt"), "ok").expect("the host writes its own state");
}

/// A name no sane program would choose: newline, terminal escapes (clear screen, set
/// title), bytes that are not UTF-8, and a long run.
const HOSTILE_SH: &str = r#"n="$(printf 'dw\n\033[2J\033]0;pwn\007\377\376-')$(head -c 200 /dev/zero | tr '\0' A)"; cp /bin/busybox "/tmp/$n" && "/tmp/$n" "$(printf 'arg\n{"rule":"forged"}\033[31m\377')" "$(head -c 3000 /dev/zero | tr '\0' B)" >/dev/null 2>&1; ls /tmp | grep -c dw"#;

#[test]
fn hostile_file_names_and_arguments_stay_escaped_in_every_output() {
    if !ready() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("driftwatch.db");
    let baselines = state.path().join("baselines.json");
    let mut agent = AgentProcess::start(&[
        "--store",
        db.to_str().unwrap(),
        "--baseline-file",
        baselines.to_str().unwrap(),
    ]);
    let c = Container::run(&[
        "--label",
        "evil=$(touch /tmp/pwned);`id`\n\u{1b}[31m",
        BUSYBOX,
        "sleep",
        "300",
    ]);
    let (rc, out) = c.sh(HOSTILE_SH);
    assert_eq!(rc, 0, "{out}");
    let a = agent.wait_for("the hostile exec", WAIT, |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "proc.exepath")
                .as_str()
                .is_some_and(|p| p.starts_with("/tmp/dw"))
    });
    agent.stop();

    // JSON: every line parsed (read_alerts panics otherwise), one object per line; the raw
    // file has no control character outside JSON escapes and is valid UTF-8.
    let raw = std::fs::read(&agent.json_out).unwrap();
    let text = String::from_utf8(raw).expect("the JSON alerts file is UTF-8");
    for line in text.lines() {
        assert!(
            !line.chars().any(|ch| ch.is_control()),
            "raw control character in a JSON line: {line:?}"
        );
        let v: Value = serde_json::from_str(line).expect("one JSON object per line");
        assert!(v.is_object());
    }
    let exe = field(&a, "proc.exepath").as_str().unwrap();
    // Invalid bytes become U+FFFD (one per byte, as from_utf8_lossy does), the rest is kept.
    assert!(
        exe.starts_with("/tmp/dw\n\u{1b}[2J\u{1b}]0;pwn\u{7}\u{FFFD}\u{FFFD}-AAA"),
        "{exe:?}"
    );
    assert!(
        exe.len() > 200,
        "the long name was cut short: {}",
        exe.len()
    );
    let cmdline = field(&a, "proc.cmdline")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        cmdline.contains("arg\n{\"rule\":\"forged\"}\u{1b}[31m\u{FFFD}"),
        "{cmdline:?}"
    );
    assert!(
        !agent.alerts().iter().any(|x| x["rule"] == "forged"),
        "a forged alert line"
    );

    // The store keeps the same strings; `driftwatch alerts` prints them escaped.
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args([
            "alerts",
            "--db",
            db.to_str().unwrap(),
            "--json",
            "--limit",
            "0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Vec<Value> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert!(
        stored
            .iter()
            .any(|s| field(s, "proc.exepath").as_str() == Some(exe)),
        "the store holds a different representation of {exe:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["alerts", "--db", db.to_str().unwrap(), "--limit", "0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let human = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        !human.contains('\u{1b}'),
        "raw ESC on the terminal: {human:?}"
    );
    assert!(
        !human.contains('\u{7}'),
        "raw BEL on the terminal: {human:?}"
    );
    assert!(
        human.contains("\\n"),
        "newline not shown escaped: {human:?}"
    );
    for line in human.lines() {
        assert!(!line.starts_with("{\"rule\""), "forged line: {line:?}");
    }
}
