//! The alert store end to end: the real agent stores a real container's drift alert in a
//! SQLite file, `driftwatch alerts` lists it (across an agent restart) and follows new ones;
//! bad arguments and unusable paths fail with errors that say why.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(30);

/// `driftwatch alerts --db DB ARGS --json`, parsed.
fn stored(db: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["alerts", "--db", db.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = run_cli(DRIFTWATCH, &all);
    assert!(
        out.status.success(),
        "driftwatch {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
        .collect()
}

/// Polls `driftwatch alerts` until an alert matches (the store writes asynchronously).
fn wait_stored(db: &Path, args: &[&str], pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let all = stored(db, args);
        if let Some(a) = all.iter().find(|a| pred(a)) {
            return a.clone();
        }
        assert!(
            start.elapsed() < WAIT,
            "not stored within {WAIT:?}; `driftwatch alerts {args:?}` gave:\n{all:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn drift_in<'a>(c: &'a TestContainer, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| field(a, "container.id") == c.short() && field(a, "drift.path") == path
}

fn unique(what: &str) -> String {
    format!("dw-store-{what}-{}", std::process::id())
}

#[test]
fn drift_alert_is_stored_listed_by_container_and_survives_a_restart() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state/driftwatch.db");
    let db_arg = db.to_str().unwrap();
    let name = unique("restart");
    let mut agent = AgentProcess::start(DRIFTWATCH, &["--store", db_arg]);
    let c = TestContainer::run(&["--name", &name, BUSYBOX, "sleep", "120"]);
    let (code, out) = c.sh("cp /bin/busybox /tmp/ls && /tmp/ls / >/dev/null");
    assert_eq!(code, 0, "{out}");
    let emitted = agent.wait_for("the copied binary", WAIT, drift_in(&c, "/tmp/ls"));

    let listed = wait_stored(&db, &["--container", &name], drift_in(&c, "/tmp/ls"));
    assert_eq!(
        listed, emitted,
        "the stored alert is the emitted Falco JSON"
    );
    // The same alert by id prefix, rule part, tag, priority and time.
    for args in [
        vec!["--container", c.short()],
        vec!["--container", &c.id[..6]],
        vec!["--rule", "binary", "--tag", "binary_drift"],
        vec!["--priority", "critical", "--since", "10m"],
    ] {
        assert!(
            stored(&db, &args).iter().any(drift_in(&c, "/tmp/ls")),
            "not listed with {args:?}"
        );
    }
    // Filters that exclude it.
    for args in [
        vec!["--container", "no-such-container"],
        vec!["--tag", "network_drift", "--container", &name],
        vec!["--until", "1h", "--container", &name],
    ] {
        assert!(
            !stored(&db, &args).iter().any(drift_in(&c, "/tmp/ls")),
            "listed with {args:?}"
        );
    }
    let mode = std::fs::metadata(&db).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // Stopped (hard: no orderly shutdown) and started again: still there, and the store
    // keeps taking new alerts.
    agent.kill_hard();
    drop(agent);
    assert!(stored(&db, &["--container", &name]).contains(&emitted));
    let agent = AgentProcess::start(DRIFTWATCH, &["--store", db_arg]);
    let (code, out) = c.sh("cp /bin/busybox /tmp/cat && /tmp/cat /dev/null");
    assert_eq!(code, 0, "{out}");
    agent.wait_for("the second binary", WAIT, drift_in(&c, "/tmp/cat"));
    wait_stored(&db, &["--container", &name], drift_in(&c, "/tmp/cat"));
    let both = stored(&db, &["--container", &name, "--tag", "binary_drift"]);
    assert!(both.contains(&emitted), "{both:#?}");

    // People get two lines per alert, the newest last.
    let out = run_cli(
        DRIFTWATCH,
        &["alerts", "--db", db_arg, "--container", &name],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 4, "{text}");
    assert!(lines[lines.len() - 2].contains(&name), "{text}");
    assert!(lines[lines.len() - 1].contains("/tmp/cat"), "{text}");
    assert!(text.contains("Critical"), "{text}");
}

#[test]
fn follow_prints_an_alert_raised_after_it_started() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("driftwatch.db");
    let name = unique("follow");
    let agent = AgentProcess::start(DRIFTWATCH, &["--store", db.to_str().unwrap()]);
    let c = TestContainer::run(&["--name", &name, BUSYBOX, "sleep", "120"]);
    let (code, out) = c.sh("cp /bin/busybox /tmp/ls && /tmp/ls / >/dev/null");
    assert_eq!(code, 0, "{out}");
    wait_stored(&db, &["--container", &name], drift_in(&c, "/tmp/ls"));

    let mut follow = Follow(
        Command::new(DRIFTWATCH)
            .args(["alerts", "--follow", "--json", "--tag", "binary_drift"])
            .args(["--container", &name, "--db"])
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = follow.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).expect("--follow prints JSON lines"));
        }
    });
    // The stored alert comes first (it matched when --follow started).
    let first = rx.recv_timeout(WAIT).expect("the existing alert");
    assert!(drift_in(&c, "/tmp/ls")(&first), "{first}");
    let (code, out) = c.sh("cp /bin/busybox /tmp/whoami && /tmp/whoami");
    assert_eq!(code, 0, "{out}");
    let start = Instant::now();
    let new = loop {
        let left = WAIT.saturating_sub(start.elapsed());
        let a = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "--follow printed no alert for /tmp/whoami; agent saw: {:#?}",
                agent.alerts()
            )
        });
        assert!(!drift_in(&c, "/tmp/ls")(&a), "printed twice: {a}");
        if drift_in(&c, "/tmp/whoami")(&a) {
            break a;
        }
    };
    assert_eq!(
        new["rule"], "Drop and execute new binary in container",
        "{new}"
    );
}

/// A `driftwatch alerts --follow` process, killed when dropped (even when the test fails).
struct Follow(std::process::Child);

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bad_arguments_and_databases_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("driftwatch.db");
    let db_arg = db.to_str().unwrap();
    let out = run_cli(
        DRIFTWATCH,
        &["alerts", "--db", db_arg, "--since", "yesterday"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--since") && err.contains("`yesterday` is neither a duration"),
        "{err}"
    );
    let out = run_cli(
        DRIFTWATCH,
        &["alerts", "--db", db_arg, "--priority", "loud"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown priority"));
    // No database there.
    let out = run_cli(DRIFTWATCH, &["alerts", "--db", db_arg]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(db_arg) && err.contains("no alert database"),
        "{err}"
    );
    // Not a database.
    std::fs::write(&db, "x".repeat(200)).unwrap();
    let out = run_cli(DRIFTWATCH, &["alerts", "--db", db_arg]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(db_arg) && err.contains("not an SQLite database"),
        "{err}"
    );
}

#[test]
fn run_refuses_a_store_path_it_cannot_use() {
    if !require(&[Requirement::Bpf]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "x".repeat(200)).unwrap();
    let out = run_cli(
        DRIFTWATCH,
        &[
            "run",
            "--no-engine",
            "--no-stdout",
            "--duration",
            "1",
            "--store",
            junk.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--store")
            && err.contains("junk.db")
            && err.contains("not an SQLite database"),
        "{err}"
    );
}

#[test]
fn response_actions_are_stored_next_to_the_actions_log() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("driftwatch.db");
    let log = dir.path().join("actions.jsonl");
    let pb = dir.path().join("playbook.yaml");
    let name = unique("actions");
    std::fs::write(
        &pb,
        format!(
            "playbooks:\n  - name: would-kill\n    match: {{tags: [binary_drift], containers: [{name}]}}\n    actions: [{{action: kill, dry_run: true}}]\n"
        ),
    )
    .unwrap();
    let _agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--store",
            db.to_str().unwrap(),
            "--playbook",
            pb.to_str().unwrap(),
            "--actions-log",
            log.to_str().unwrap(),
        ],
    );
    let c = TestContainer::run(&["--name", &name, BUSYBOX, "sleep", "120"]);
    let (code, out) = c.sh("cp /bin/busybox /tmp/ls && /tmp/ls / >/dev/null");
    assert_eq!(code, 0, "{out}");
    let start = Instant::now();
    let stored = loop {
        let reader = driftwatch_store::AlertReader::open(&db).unwrap();
        let actions: Vec<Value> = reader
            .actions()
            .unwrap()
            .iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect();
        if let Some(a) = actions
            .into_iter()
            .find(|a| a["container"]["name"] == name.as_str())
        {
            break a;
        }
        assert!(start.elapsed() < WAIT, "no action stored for {name}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(stored["action"], "kill", "{stored}");
    assert_eq!(stored["result"], "dry_run", "{stored}");
    // The same record as the actions log's (which `driftwatch actions` reads).
    let logged: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(logged.contains(&stored), "{logged:#?}");
}
