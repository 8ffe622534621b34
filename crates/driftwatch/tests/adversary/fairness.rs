//! Deadlines, fairness and baselines: a container that floods the agent (directories,
//! alerts), one that opens a listener while its image learns, and a decision path that is
//! stuck. Each attack ends with the three checks of [`crate::Aftermath`].

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use driftwatch_store::{AlertQuery, AlertReader, AlertSource};
use serde_json::Value;

use crate::{Aftermath, DRIFTWATCH};
use driftwatch_testkit::*;

const WAIT: Duration = Duration::from_secs(30);

/// A name unique to this test run.
fn unique(what: &str) -> String {
    format!("dw-fair-{what}-{}", std::process::id())
}

/// Writes `text` as a configuration file in `dir`, with the agent's state (store, actions
/// log) in `dir` too; returns its path as an argument.
fn config(dir: &Path, text: &str) -> String {
    let p = dir.join("driftwatch.yaml");
    let d = dir.display();
    std::fs::write(
        &p,
        format!(
            "{text}store:\n  path: {d}/driftwatch.db\nresponse:\n  actions_log: {d}/actions.jsonl\n"
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

fn budget_alert<'a>(c: &'a TestContainer, budget: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        a["rule"] == "Driftwatch budget exceeded"
            && field(a, "container.id") == c.short()
            && field(a, "driftwatch.budget") == budget
    }
}

/// Waits for `c`'s "budget exceeded" alert on `budget`, which refused something (`example`
/// a part of the example it names).
fn wait_for_budget_alert(
    agent: &AgentProcess,
    c: &TestContainer,
    budget: &str,
    example: &str,
) -> Value {
    let a = agent.wait_for(
        &format!("the {budget} budget alert of {}", c.short()),
        WAIT,
        budget_alert(c, budget),
    );
    assert!(
        field(&a, "driftwatch.refused")
            .as_u64()
            .is_some_and(|n| n > 0),
        "{a}"
    );
    assert!(
        field(&a, "driftwatch.refused_example")
            .as_str()
            .is_some_and(|e| e.contains(example)),
        "{a}"
    );
    a
}

/// Repeats `write` in the container until the agent reports a file-drift alert on `path` in
/// it (its layers are watched from the moment it is known, a few hundred ms after start).
fn file_drift_seen(agent: &AgentProcess, c: &TestContainer, write: &str, path: &str) -> Value {
    let start = Instant::now();
    loop {
        let (code, out) = c.sh(write);
        assert_eq!(code, 0, "{out}");
        if let Some(a) = agent.alerts().into_iter().find(|a| {
            has_tag(a, "file_drift")
                && field(a, "container.id") == c.short()
                && field(a, "fd.name") == path
        }) {
            return a;
        }
        assert!(
            start.elapsed() < WAIT,
            "no file-drift alert for {path} in {} within {WAIT:?}",
            c.short()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// One container makes 500 directories, five times its share of the watch limit (scaled
/// down to 400 with 25% a container): it gets a "budget exceeded" alert naming it, the
/// budget and a directory left unwatched; a neighbour started afterwards is still watched
/// and its file drift alerted. Before per-container shares, the noisy container took the
/// whole limit and the neighbour's writes went unseen.
#[test]
fn many_directories_spend_only_their_containers_watch_share() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "limits:\n  watched_dirs: 400\n  watched_dirs_container_percent: 25\n",
    );
    let agent = AgentProcess::start(DRIFTWATCH, &["--config", &cfg]);
    let noisy_name = unique("dirs");
    let noisy = TestContainer::run(&["--name", &noisy_name, BUSYBOX, "sleep", "300"]);
    // Watched first (its own file drift is seen), then the flood.
    file_drift_seen(&agent, &noisy, "echo x >> /etc/dw-noisy", "/etc/dw-noisy");
    let (code, out) = noisy.sh(
        "mkdir -p /tmp/flood && cd /tmp/flood && i=0; while [ $i -lt 500 ]; do mkdir d$i; i=$((i+1)); done",
    );
    assert_eq!(code, 0, "{out}");
    let a = wait_for_budget_alert(&agent, &noisy, "file-drift watch", "/tmp/flood/d");
    assert_eq!(field(&a, "container.name"), noisy_name.as_str(), "{a}");
    assert!(
        field(&a, "driftwatch.limit")
            .as_str()
            .is_some_and(|l| l.starts_with("100 of the 400 watched directories")),
        "{a}"
    );
    let output = a["output"].as_str().unwrap();
    assert!(
        output.contains(&format!(
            "Container {noisy_name} is over its file-drift watch budget"
        )),
        "{output}"
    );

    let neighbour = TestContainer::run(&[BUSYBOX, "sleep", "300"]);
    let seen = file_drift_seen(
        &agent,
        &neighbour,
        "echo evil >> /etc/dw-neighbour",
        "/etc/dw-neighbour",
    );
    assert_eq!(seen["rule"], "Write below etc", "{seen}");
    assert!(
        !agent
            .alerts()
            .iter()
            .any(budget_alert(&neighbour, "file-drift watch")),
        "the neighbour was throttled"
    );
    Aftermath { agent: &agent }.assert_all();
}

/// One container runs a dropped binary 2000 times (an alert each) while a neighbour drops
/// one binary: the neighbour's alert reaches the JSON output and the store; the noisy
/// container's alerts are cut to its rate and it gets a "budget exceeded" alert saying how
/// many were dropped.
#[test]
fn an_alert_storm_does_not_crowd_out_a_neighbours_alerts() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("driftwatch.db");
    let cfg = config(
        dir.path(),
        "limits:\n  container_alerts_per_second: 5\n  container_alert_burst: 20\n",
    );
    let agent = AgentProcess::start(DRIFTWATCH, &["--config", &cfg]);
    let noisy_name = unique("storm");
    let noisy = TestContainer::run(&["--name", &noisy_name, BUSYBOX, "sleep", "300"]);
    let execs = 2000;
    let out = docker(&[
        "exec",
        "-d",
        &noisy.id,
        "sh",
        "-c",
        &format!(
            "mkdir -p /tmp/storm && cp /bin/busybox /tmp/storm/true && i=0; while [ $i -lt {execs} ]; do /tmp/storm/true; i=$((i+1)); done; touch /tmp/storm/done"
        ),
    ]);
    assert!(out.status.success(), "{out:?}");
    wait_for_budget_alert(
        &agent,
        &noisy,
        "alert rate",
        "Drop and execute new binary in container",
    );
    // In the middle of the storm, the neighbour's one drift.
    let neighbour = TestContainer::run(&[BUSYBOX, "sleep", "300"]);
    drop_and_run(&neighbour, "neighbour");
    let mine = |a: &Value| {
        a["rule"] == "Drop and execute new binary in container"
            && field(a, "container.id") == neighbour.short()
            && field(a, "drift.path") == "/tmp/neighbour/true"
    };
    agent.wait_for("the neighbour's drift in the JSON output", WAIT, mine);
    let reader = AlertReader::open(&db).unwrap();
    let start = Instant::now();
    loop {
        let stored = reader
            .query_alerts(&AlertQuery {
                container: Some(neighbour.short().to_string()),
                ..Default::default()
            })
            .unwrap();
        if stored.iter().any(|s| {
            s.alert.rule == "Drop and execute new binary in container"
                && s.alert.output_fields["drift.path"] == "/tmp/neighbour/true"
        }) {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the neighbour's drift never reached the store {}",
            db.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The storm ends; far fewer of its alerts got through than it raised.
    let start = Instant::now();
    while noisy.sh("test -e /tmp/storm/done").0 != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the storm never ended"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let through = agent
        .alerts()
        .iter()
        .filter(|a| {
            a["rule"] == "Drop and execute new binary in container"
                && field(a, "container.id") == noisy.short()
        })
        .count();
    assert!(
        through < execs / 2,
        "{through} of the storm's {execs} alerts went through a rate of 5/s"
    );
    Aftermath { agent: &agent }.assert_all();
}

/// `driftwatch baseline show --baseline-file FILE`.
fn show(file: &Path) -> String {
    let (ok, out) = cli(
        DRIFTWATCH,
        &[
            "baseline",
            "show",
            "--baseline-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    out
}

/// Opens a listener on `port` in a new container of the image, then on `marker`, waits for
/// the marker's alert (so that `port`'s, if any, has been judged) and says whether `port`
/// was alerted.
fn alerted_in_a_new_container(agent: &AgentProcess, port: u16, marker: u16) -> bool {
    let c = TestContainer::run(&[BUSYBOX, "sleep", "120"]);
    let (code, out) = c.sh(&format!(
        "nc -l -p {port} </dev/null >/dev/null & sleep 0.3; nc -l -p {marker} </dev/null >/dev/null & sleep 0.3"
    ));
    assert_eq!(code, 0, "{out}");
    agent.wait_for("the marker listener", WAIT, listener(&c, marker));
    agent.alerts().iter().any(listener(&c, port))
}

fn listener(c: &TestContainer, port: u16) -> impl Fn(&Value) -> bool + '_ {
    let path = format!("{port}/tcp");
    move |a| {
        has_tag(a, "network_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.path") == path.as_str()
    }
}

/// A listener opened while the image learns is alerted and not learned: a container of the
/// same image opening it after the window is alerted again; once an operator approves it
/// (`driftwatch baseline approve`) a new container's listener is quiet, and `revoke` makes it
/// drift again. Before, the first alert taught the baseline the attack for good.
#[test]
fn a_listener_in_the_learning_window_is_not_learned_until_approved() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baselines.json");
    let f = file.to_str().unwrap();
    let agent = AgentProcess::start(
        DRIFTWATCH,
        &["--baseline-file", f, "--learning-window", "12s"],
    );
    let first = TestContainer::run(&[BUSYBOX, "sleep", "120"]);
    let (code, out) = first.sh("nc -l -p 4444 </dev/null >/dev/null & sleep 0.3");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("the listener while learning", WAIT, listener(&first, 4444));
    let detail = field(&a, "drift.detail").as_str().unwrap_or_default();
    assert!(
        detail.contains("not learned") && detail.contains("baseline approve"),
        "{a}"
    );
    // Visible as pending, not learned.
    let start = Instant::now();
    loop {
        let text = show(&file);
        if text.contains("pending:      4444/tcp") {
            assert!(text.contains("listeners:    -"), "{text}");
            break;
        }
        assert!(start.elapsed() < WAIT, "never pending:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // After the window: another container of the image is alerted again.
    let start = Instant::now();
    while !show(&file).contains("enforced since") {
        assert!(start.elapsed() < WAIT, "the window never ended");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        alerted_in_a_new_container(&agent, 4444, 4445),
        "the attack's listener was learned: not alerted again after the window"
    );
    // Approved by the operator: quiet (the agent takes the change over within 2 s).
    let edit = |verb: &str| {
        cli(
            DRIFTWATCH,
            &["baseline", verb, BUSYBOX, "4444/tcp", "--baseline-file", f],
        )
    };
    let (ok, out) = edit("approve");
    assert!(ok, "{out}");
    let text = show(&file);
    assert!(
        text.contains("listeners:    4444/tcp") && !text.contains("pending"),
        "{text}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !alerted_in_a_new_container(&agent, 4444, 4446),
        "alerted after approval"
    );
    // Revoked: drift again.
    let (ok, out) = edit("revoke");
    assert!(ok, "{out}");
    let (ok, out) = edit("revoke");
    assert!(
        !ok && out.contains("`4444/tcp` is not in the baseline"),
        "{out}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        alerted_in_a_new_container(&agent, 4444, 4447),
        "not alerted after revoke"
    );
    Aftermath { agent: &agent }.assert_all();
}

/// Runs `script` in `c` on another thread; its (exit code, output), or None when it did not
/// finish within `within` (it hangs on an unanswered permission request).
fn exec_within(c: &TestContainer, script: &str, within: Duration) -> Option<(i32, String)> {
    let (tx, rx) = mpsc::channel();
    let (id, script) = (c.id.clone(), script.to_string());
    std::thread::spawn(move || {
        let out = docker(&["exec", &id, "sh", "-c", &script]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = tx.send((out.status.code().unwrap_or(-1), text));
    });
    rx.recv_timeout(within).ok()
}

fn deadline_alert(guard: &'static str) -> impl Fn(&Value) -> bool {
    move |a| {
        a["rule"] == "Driftwatch permission answer deadline missed"
            && field(a, "driftwatch.guard") == guard
    }
}

/// The decision path stalls for 10 minutes (the test hook `DRIFTWATCH_TEST_DECIDER_STALL_MS`)
/// while a prevent-mode container execs. With the 300 ms answer deadline, its execs do not
/// wait for the decider: `on_agent_death: allow` lets them run, `hold` denies them; both
/// finish, are counted and alerted. Without the deadline they would hang for the stall.
#[test]
fn a_stalled_decider_does_not_hold_execs_past_the_deadline() {
    if !ready() {
        return;
    }
    let _serial = serial();
    for (death, runs) in [("allow", true), ("hold", false)] {
        let dir = tempfile::tempdir().unwrap();
        let name = unique(&format!("stall-{death}"));
        let policy = dir.path().join("policy.yaml");
        std::fs::write(
            &policy,
            format!(
                "default: detect\non_agent_death: {death}\nscopes:\n  - match: {{containers: [\"{name}\"]}}\n    mode: prevent\n"
            ),
        )
        .unwrap();
        let cfg = config(dir.path(), "enforcement:\n  answer_deadline: 300ms\n");
        let agent = AgentProcess::start_via(
            &["env", "DRIFTWATCH_TEST_DECIDER_STALL_MS=600000"],
            DRIFTWATCH,
            &[
                "--config",
                &cfg,
                "--enforcement-policy",
                policy.to_str().unwrap(),
            ],
        );
        agent.wait_for_log("the test hook's warning", 1, WAIT, |l| {
            l.contains("DRIFTWATCH_TEST_DECIDER_STALL_MS=600000: test hook active")
        });
        let c = TestContainer::run(&["--name", &name, BUSYBOX, "sleep", "300"]);
        agent.wait_for_log("the container in prevent mode", 1, WAIT, |l| {
            l.contains(&c.id[..12]) && l.contains("enforcement prevent")
        });
        let result = exec_within(&c, "ls / >/dev/null && echo ran", Duration::from_secs(60))
            .unwrap_or_else(|| {
                panic!("on_agent_death: {death}: the exec hung with the stalled decider")
            });
        if runs {
            assert_eq!(result, (0, "ran\n".to_string()), "on_agent_death: allow");
        } else {
            assert_ne!(
                result.0, 0,
                "on_agent_death: hold denies at the deadline: {result:?}"
            );
            assert_ne!(result.1, "ran\n", "{result:?}");
        }
        let a = agent.wait_for("the deadline alert", WAIT, deadline_alert("exec"));
        let (allowed, denied) = (
            field(&a, "driftwatch.allowed").as_u64().unwrap_or(0),
            field(&a, "driftwatch.denied").as_u64().unwrap_or(0),
        );
        if runs {
            assert!(allowed > 0 && denied == 0, "{a}");
        } else {
            assert!(denied > 0 && allowed == 0, "{a}");
        }
        assert_eq!(field(&a, "driftwatch.deadline_ms"), 300, "{a}");
        Aftermath { agent: &agent }.assert_all();
        drop(c);
    }
}
