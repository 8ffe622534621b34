//! The configuration file, end to end: `driftwatch config validate|show` as a user runs
//! them, and a real agent started with `--config` reloading on SIGHUP: new rules alert on
//! the next drift, an invalid file keeps the old configuration (and says where it is wrong),
//! detect → prevent makes a dropped binary's exec fail, and an exec loop running across
//! several reloads loses no event.

use std::path::Path;
use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

/// Whether the alert's message (its `output` after Falco's `HH:MM:SS.nnnnnnnnn: Priority `)
/// starts with `prefix`.
fn message_starts_with(a: &Value, prefix: &str) -> bool {
    a["output"]
        .as_str()
        .and_then(|o| o.splitn(3, ' ').nth(2))
        .is_some_and(|m| m.starts_with(prefix))
}

// An agent in prevent mode acts on every container of the host, the other tests' too: the
// agent tests of this file run one at a time
// (`common::serial`).

fn driftwatch(args: &[&str]) -> (i32, String, String) {
    let out = run_cli(DRIFTWATCH, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[test]
fn validate_reports_every_problem_with_its_position_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config.yaml");
    write(
        &bad,
        "sensor:\n  ring_mb: 8\nnetwork:\n  learning_window: [5m]\napi:\n  listen: 0.0.0.0:7878\nenforcement:\n  mode: block\n",
    );
    let f = bad.display().to_string();
    let (code, stdout, stderr) = driftwatch(&["config", "validate", &f]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    for want in [
        format!("{f}:2:3: error: unknown key \"ring_mb\" in sensor; did you mean \"ring_mib\"?"),
        format!(
            "{f}:4:20: error: network.learning_window: expected a duration like 90s, 5m, 1h, 30d, found a list"
        ),
        format!("{f}:6:11: error: api.listen: 0.0.0.0:7878 is reachable from other hosts"),
        format!(
            "{f}:8:9: error: enforcement.mode: expected one of detect, prevent, found the string \"block\""
        ),
        format!("{f}: invalid (4 problems)"),
        // The source line and a caret under the column.
        "4 |   learning_window: [5m]\n  |                    ^".to_string(),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    }

    // A file naming a policy that does not exist: the key's position, and the file's error.
    let named = dir.path().join("named.yaml");
    write(&named, "enforcement:\n  policy: missing-policy.yaml\n");
    let (code, _, stderr) = driftwatch(&["config", "validate", &named.display().to_string()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:2:11: enforcement.policy: reading the enforcement policy {}",
            named.display(),
            dir.path().join("missing-policy.yaml").display()
        )),
        "{stderr}"
    );

    // Unreadable: 2.
    let missing = dir.path().join("nope.yaml");
    let (code, _, stderr) = driftwatch(&["config", "validate", &missing.display().to_string()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("No such file"), "{stderr}");

    // Valid: 0; `config show` of it is itself valid and says which keys the file set.
    let good = dir.path().join("good.yaml");
    write(
        &good,
        "sensor:\n  ring_mib: 16\nnetwork:\n  learning_window: 90s\noutputs:\n  http:\n    - url: http://127.0.0.1:2801/\n",
    );
    let g = good.display().to_string();
    let (code, stdout, stderr) = driftwatch(&["config", "validate", &g]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("valid (3 keys set"), "{stdout}");
    let (code, shown, stderr) = driftwatch(&["config", "show", "--config", &g]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        shown.contains(&format!("  ring_mib: 16  # from {g}:2\n")),
        "{shown}"
    );
    assert!(shown.contains("  learning_window: 90s  # from"), "{shown}");
    assert!(
        shown.contains("  docker_socket: /var/run/docker.sock\n"),
        "{shown}"
    );
    let again = dir.path().join("shown.yaml");
    write(&again, &shown);
    let (code, stdout, stderr) = driftwatch(&["config", "validate", &again.display().to_string()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, json, _) = driftwatch(&["config", "show", "--config", &g, "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["config"]["sensor"]["ring_mib"], 16);
    assert_eq!(
        v["config"]["outputs"]["http"][0]["url"],
        "http://127.0.0.1:2801/"
    );
    assert_eq!(v["from_file"]["sensor.ring_mib"], format!("{g}:2:13"));
    let (code, _, stderr) =
        driftwatch(&["config", "show", "--config", &missing.display().to_string()]);
    assert_eq!(code, 2, "{stderr}");

    let (code, reference, _) = driftwatch(&["config", "reference"]);
    assert_eq!(code, 0);
    assert!(
        reference.contains("| `sensor.ring_mib` | integer | `8` | restart |"),
        "{reference}"
    );
    assert!(reference.contains("| `rules.files` | list of paths | `[]` | SIGHUP |"));
}

#[test]
fn run_refuses_an_invalid_or_missing_config() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config.yaml");
    write(&bad, "sensor:\n  ring_mib: 12\n");
    let (code, _, stderr) = driftwatch(&["run", "--config", &bad.display().to_string()]);
    assert_ne!(code, 0);
    // Without root the agent says so first; as root the file's error.
    if is_root() {
        assert!(
            stderr.contains(&format!(
                "{}:2:13: error: sensor.ring_mib: 12 is not a power of two",
                bad.display()
            )),
            "{stderr}"
        );
        let (code, _, stderr) = driftwatch(&[
            "run",
            "--config",
            &dir.path().join("nope.yaml").display().to_string(),
        ]);
        assert_ne!(code, 0);
        assert!(stderr.contains("No such file"), "{stderr}");
    }
}

fn drift_alert<'a>(
    c: &'a TestContainer,
    path: &'a str,
    rule: &'a str,
) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        a["rule"] == rule && field(a, "container.id") == c.short() && field(a, "drift.path") == path
    }
}

const DEFAULT_RULE: &str = "Drop and execute new binary in container";
const RELOADED_RULE: &str = "Reloaded drift rule";

fn reloaded_rule(tag: &str) -> String {
    format!(
        "- rule: {RELOADED_RULE}\n  desc: added by a reload\n  condition: spawned_process and container and drift.kind=binary\n  output: reloaded {tag} drift_path=%drift.path container_id=%container.id\n  priority: WARNING\n  tags: [reload_test]\n"
    )
}

fn reloaded(agent: &AgentProcess, n: usize) {
    agent.wait_for_log("a reload", n, WAIT, |l| {
        l.contains("configuration reloaded from")
    });
}

#[test]
fn sighup_swaps_the_rules_and_an_invalid_file_keeps_the_old_ones() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let rules = dir.path().join("rules.yaml");
    let stats = dir.path().join("stats.json");
    // A rule file with no rule that fires on drift (only a list).
    write(&rules, "- list: reload_test_nothing\n  items: [nothing]\n");
    let config_text = format!(
        "rules:\n  directory: {}\n  files: [rules.yaml]\n",
        dir.path().join("no-rules.d").display()
    );
    write(&config, &config_text);
    let mut agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--config",
            &config.display().to_string(),
            "--stats-json",
            &stats.display().to_string(),
        ],
    );
    let c = TestContainer::run(&[BUSYBOX, "sleep", "120"]);

    // Before: the drift raises the default alert only.
    c.sh("cp /bin/busybox /tmp/true && /tmp/true");
    agent.wait_for(
        "first drift",
        WAIT,
        drift_alert(&c, "/tmp/true", DEFAULT_RULE),
    );
    assert!(
        !agent.alerts().iter().any(|a| a["rule"] == RELOADED_RULE),
        "no reloaded rule yet"
    );

    // A rule file that alerts, then SIGHUP: the next drift alerts with it.
    write(&rules, &reloaded_rule("v1"));
    agent.signal(libc::SIGHUP);
    reloaded(&agent, 1);
    c.sh("cp /bin/busybox /tmp/echo && /tmp/echo hi");
    let a = agent.wait_for(
        "the reloaded rule",
        WAIT,
        drift_alert(&c, "/tmp/echo", RELOADED_RULE),
    );
    assert!(message_starts_with(&a, "reloaded v1 "), "{a}");
    assert_eq!(a["priority"], "Warning", "{a}");

    // An invalid configuration: refused with FILE:LINE:COL, the old rules keep working.
    write(&config, &format!("{config_text}sensor:\n  ring_mb: 8\n"));
    agent.signal(libc::SIGHUP);
    let want = format!(
        "{}:5:3: error: unknown key \"ring_mb\" in sensor; did you mean \"ring_mib\"?",
        config.display()
    );
    agent.wait_for_log("the refused reload's error", 1, WAIT, |l| l.contains(&want));
    agent.wait_for_log("the refusal", 1, WAIT, |l| {
        l.contains("configuration reload refused (1 error): still running on the previous configuration (1 reload failures since start)")
    });
    // An invalid rule file is refused too (the file itself is fine).
    write(&config, &config_text);
    write(
        &rules,
        "- rule: broken\n  condition: proc.nmae = x\n  output: x\n  priority: WARNING\n  desc: x\n",
    );
    agent.signal(libc::SIGHUP);
    agent.wait_for_log("the rule file's error", 1, WAIT, |l| {
        l.contains("reload:") && l.contains("rules.yaml:2:") && l.contains("proc.nmae")
    });
    agent.wait_for_log("the second refusal", 1, WAIT, |l| {
        l.contains("(2 reload failures since start)")
    });
    c.sh("cp /bin/busybox /tmp/cat && /tmp/cat /dev/null");
    let a = agent.wait_for(
        "the old rules after a refused reload",
        WAIT,
        drift_alert(&c, "/tmp/cat", RELOADED_RULE),
    );
    assert!(message_starts_with(&a, "reloaded v1 "), "{a}");

    // Fixed: applied again, with the restart-only key reported.
    write(&rules, &reloaded_rule("v2"));
    write(
        &config,
        &format!("{config_text}sensor:\n  ring_mib: 16\nlogging:\n  level: debug\n"),
    );
    agent.signal(libc::SIGHUP);
    reloaded(&agent, 2);
    agent.wait_for_log("the restart-only key", 1, WAIT, |l| {
        l.contains("sensor.ring_mib changed, takes effect after restart")
    });
    let summary = agent
        .log()
        .into_iter()
        .filter(|l| l.contains("configuration reloaded from"))
        .nth(1)
        .unwrap();
    assert!(
        summary.contains("; after restart: sensor.ring_mib"),
        "{summary}"
    );
    if std::env::var_os("DRIFTWATCH_LOG").is_none() {
        // DRIFTWATCH_LOG, when set, wins over logging.level.
        assert!(summary.contains("logging.level (debug)"), "{summary}");
    }
    c.sh("cp /bin/busybox /tmp/head && /tmp/head -c0 /dev/null");
    let a = agent.wait_for(
        "the v2 rule",
        WAIT,
        drift_alert(&c, "/tmp/head", RELOADED_RULE),
    );
    assert!(message_starts_with(&a, "reloaded v2 "), "{a}");

    agent.stop();
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(s["config"]["reloads"], 2, "{s}");
    assert_eq!(s["config"]["reload_failures"], 2, "{s}");
    assert!(s["config"]["last_reload_unix"].as_u64().unwrap() > 0, "{s}");
}

#[test]
fn sighup_from_detect_to_prevent_blocks_the_next_dropped_binary() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    write(&config, "enforcement:\n  mode: detect\n");
    let agent = AgentProcess::start(DRIFTWATCH, &["--config", &config.display().to_string()]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "120"]);

    // Detect: the dropped binary runs (and is alerted).
    let (code, out) = c.sh("cp /bin/busybox /tmp/touch && /tmp/touch /tmp/ran-detect");
    assert_eq!(code, 0, "{out}");
    assert_eq!(c.sh("test -e /tmp/ran-detect").0, 0, "ran in detect mode");
    let a = agent.wait_for("detect", WAIT, drift_alert(&c, "/tmp/touch", DEFAULT_RULE));
    assert_eq!(field(&a, "drift.enforcement"), "detect", "{a}");

    // Prevent, on SIGHUP: the running container is placed again, the next one is denied.
    write(&config, "enforcement:\n  mode: prevent\n");
    agent.signal(libc::SIGHUP);
    reloaded(&agent, 1);
    agent.wait_for_log("the container's new mode", 1, WAIT, |l| {
        l.contains(&format!("container {}", c.short()))
            && l.contains("enforcement detect -> prevent")
    });
    let (code, out) = c.sh("cp /bin/busybox /tmp/mkdir && /tmp/mkdir /tmp/ran-prevent");
    assert_eq!(code, 126, "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert_ne!(
        c.sh("test -e /tmp/ran-prevent").0,
        0,
        "the dropped binary ran in prevent mode"
    );
    let a = agent.wait_for("prevent", WAIT, drift_alert(&c, "/tmp/mkdir", DEFAULT_RULE));
    assert_eq!(field(&a, "drift.enforcement"), "prevent", "{a}");
    assert_eq!(field(&a, "drift.action"), "blocked", "{a}");
    // Image binaries keep working.
    assert_eq!(c.sh("ls / >/dev/null && echo ok"), (0, "ok\n".to_string()));

    // And back to detect: the drift runs again.
    write(&config, "enforcement:\n  mode: detect\n");
    agent.signal(libc::SIGHUP);
    reloaded(&agent, 2);
    let (code, out) = c.sh("mkdir /tmp/d && cp /bin/busybox /tmp/rmdir && /tmp/rmdir /tmp/d");
    assert_eq!(code, 0, "{out}");
    agent.wait_for(
        "detect again",
        WAIT,
        drift_alert(&c, "/tmp/rmdir", DEFAULT_RULE),
    );
}

#[test]
fn an_exec_loop_across_several_sighups_loses_no_event() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let rules = dir.path().join("rules.yaml");
    let record = dir.path().join("events.jsonl");
    let stats = dir.path().join("stats.json");
    write(&rules, &reloaded_rule("v0"));
    write(&config, "rules:\n  files: [rules.yaml]\n");
    let mut agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--config",
            &config.display().to_string(),
            "--record",
            &record.display().to_string(),
            "--stats-json",
            &stats.display().to_string(),
        ],
    );
    let c = TestContainer::run(&[DEBIAN, "sleep", "300"]);
    // The loop runs until told to stop and says how many execs it made.
    let id = c.id.clone();
    let looper = std::thread::spawn(move || {
        let out = docker(&[
            "exec",
            &id,
            "sh",
            "-c",
            "i=0; while [ ! -e /tmp/stop ]; do /bin/true; i=$((i+1)); done; echo $i",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    let count = || {
        std::fs::read_to_string(&record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["container"]["id"] == c.id.as_str() && e["process"]["name"] == "true")
            .count()
    };
    let wait_count = |n: usize| {
        let start = std::time::Instant::now();
        while count() < n && start.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(count() >= n, "{} execs recorded, waited for {n}", count());
    };
    // Reload while the loop runs (each reload once the loop made progress since the last),
    // each time with a different rule set.
    const HUPS: usize = 5;
    wait_count(100);
    for i in 1..=HUPS {
        let before = count();
        write(&rules, &reloaded_rule(&format!("v{i}")));
        agent.signal(libc::SIGHUP);
        reloaded(&agent, i);
        wait_count(before + 100);
    }
    assert!(!looper.is_finished(), "the loop runs until told to stop");
    c.sh("touch /tmp/stop");
    let execs: usize = looper
        .join()
        .unwrap()
        .trim()
        .parse()
        .expect("the loop's count");
    assert!(execs >= 600, "{execs}");
    // The loop's execs all reached the rules: the recorded events of `true` in the
    // container are exactly the loop's.
    wait_count(execs);
    assert_eq!(count(), execs);
    agent.stop();
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(s["lost"], 0, "{s}");
    assert_eq!(s["config"]["reloads"], HUPS, "{s}");
    assert_eq!(s["config"]["reload_failures"], 0, "{s}");
    assert!(
        s["execs_processed"].as_u64().unwrap() >= execs as u64,
        "{s}"
    );
}

#[test]
fn sighup_starts_and_swaps_the_response_playbooks() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let playbook = dir.path().join("playbook.yaml");
    let actions = dir.path().join("actions.jsonl");
    let base = format!("response:\n  actions_log: {}\n", actions.display());
    write(&config, &base);
    let agent = AgentProcess::start(DRIFTWATCH, &["--config", &config.display().to_string()]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "120"]);
    let records = || -> Vec<(String, String)> {
        read_alerts(&actions)
            .iter()
            .filter(|r| {
                r["container"]["id"]
                    .as_str()
                    .is_some_and(|i| i.starts_with(c.short()))
            })
            .map(|r| {
                (
                    r["action"].as_str().unwrap_or("").to_string(),
                    r["result"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let wait_records = |n: usize| {
        let start = std::time::Instant::now();
        while records().len() < n && start.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(50));
        }
        records()
    };

    // No playbook: the drift is alerted, nothing is done.
    c.sh("cp /bin/busybox /tmp/true && /tmp/true");
    agent.wait_for("drift", WAIT, drift_alert(&c, "/tmp/true", DEFAULT_RULE));
    assert!(records().is_empty(), "{:?}", records());

    // A playbook named by a reload: the responder starts and acts on the next alert.
    let pb = |action: &str| {
        format!(
            "playbooks:\n  - name: rehearse\n    match: {{tags: [binary_drift]}}\n    actions:\n      - {{action: {action}, dry_run: true}}\n"
        )
    };
    write(&playbook, &pb("kill"));
    write(&config, &format!("{base}  playbook: playbook.yaml\n"));
    agent.signal(libc::SIGHUP);
    reloaded(&agent, 1);
    c.sh("cp /bin/busybox /tmp/echo && /tmp/echo x");
    assert_eq!(
        wait_records(1),
        [("kill".to_string(), "dry_run".to_string())]
    );

    // The playbook file changed: the responder's playbooks are swapped.
    write(&playbook, &pb("isolate"));
    agent.signal(libc::SIGHUP);
    reloaded(&agent, 2);
    c.sh("cp /bin/busybox /tmp/cat && /tmp/cat /dev/null");
    assert_eq!(
        wait_records(2),
        [
            ("kill".to_string(), "dry_run".to_string()),
            ("isolate".to_string(), "dry_run".to_string())
        ]
    );

    // A broken playbook is refused; the previous one keeps acting.
    write(
        &playbook,
        "playbooks:\n  - name: x\n    actions: [{action: explode}]\n",
    );
    agent.signal(libc::SIGHUP);
    agent.wait_for_log("the playbook's error", 1, WAIT, |l| {
        l.contains("reload:") && l.contains("response.playbook")
    });
    c.sh("cp /bin/busybox /tmp/head && /tmp/head -c0 /dev/null");
    assert_eq!(
        wait_records(3)[2],
        ("isolate".to_string(), "dry_run".to_string())
    );
}

/// Falco's `append_output` entries in the configuration reach a real agent's alerts: an
/// entry matched by tag appends text and output-only fields, and Falco's suggested output
/// appends the container plugin's fields to a rule that prints no container.
#[test]
fn append_output_from_the_configuration_reaches_the_agents_alerts() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    write(
        &dir.path().join("rules.yaml"),
        "- rule: Sleeper in container\n  desc: a sleep in a container\n  condition: spawned_process and container and proc.name = sleep\n  output: Sleeper %proc.name\n  priority: NOTICE\n  tags: [append_test]\n",
    );
    write(
        &config,
        &format!(
            "rules:\n  directory: {}\n  files: [rules.yaml]\n  append_output:\n    - match:\n        tags: [append_test]\n      extra_output: \"pid=%proc.pid\"\n      extra_fields:\n        - where: \"in %container.name\"\n        - proc.ppid\n    - suggested_output: true\n",
            dir.path().join("no-rules.d").display()
        ),
    );
    let agent = AgentProcess::start(DRIFTWATCH, &["--config", &config.display().to_string()]);
    let name = format!("dw-append-{}", std::process::id());
    let c = TestContainer::run(&["--name", &name, BUSYBOX, "sleep", "120"]);
    c.sh("sleep 0");
    let a = agent.wait_for("the appended alert", WAIT, |a| {
        a["rule"] == "Sleeper in container" && field(a, "container.id") == c.short()
    });
    let pid = field(&a, "proc.pid");
    let output = a["output"].as_str().unwrap();
    assert!(
        message_starts_with(
            &a,
            &format!(
                "Sleeper sleep pid={pid} container_id={} container_name={name} container_image_repository=",
                c.short()
            )
        ),
        "{output}"
    );
    assert!(
        output.ends_with(" k8s_pod_name=<NA> k8s_ns_name=<NA>"),
        "{output}"
    );
    assert_eq!(field(&a, "where"), format!("in {name}").as_str(), "{a}");
    assert!(field(&a, "proc.ppid").is_u64(), "{a}");
    assert!(
        !output.contains("in dw-append"),
        "extra fields stay out of the text: {output}"
    );
}
