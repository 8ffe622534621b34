//! Alerts in Falco's exact shape, checked the way Falcosidekick accepts them, and Falco's
//! tuning files on a real agent: the rules crate's alerts and a real `driftwatch run`'s JSON
//! lines must pass Falcosidekick's payload check and Falco's byte layout; a tuning file written
//! for Falco changes what the agent reports in real containers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use driftwatch_model::{Alert, ContainerMeta, Event, Process};
use driftwatch_rules::RuleSet;
use driftwatch_testkit::*;
use serde_json::{Value, json};

const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");
const WAIT: Duration = Duration::from_secs(20);
const PRIORITIES: [&str; 8] = [
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
];

/// Falcosidekick's acceptance of a posted alert, in Rust. Ported from falcosecurity/falcosidekick
/// at commit 8807ab7b0e21d944d3b0b4ba065287db69cc8a72: `types/types.go` (`FalcoPayload`, decoded
/// with `encoding/json` and `UseNumber`, and `FalcoPayload.Check()`), `types/priority.go`
/// (`PriorityType.UnmarshalJSON`) and `handlers.go` (`newFalcoPayload`, which type-asserts
/// `k8s.ns.name` and `k8s.pod.name` to strings when they are not null). On top of what it
/// requires, Falco's own formats: `time` RFC 3339 with nanoseconds in UTC, the priority as
/// Falco spells it, `output_fields` values of the JSON types Falco writes.
fn sidekick_check(line: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let o = v.as_object().ok_or("not an object")?;
    // encoding/json: a key of the struct with another JSON type is a decode error.
    for key in ["output", "rule", "source", "hostname", "uuid"] {
        if let Some(x) = o.get(key)
            && !x.is_string()
            && !x.is_null()
        {
            return Err(format!("{key} is not a string: {x}"));
        }
    }
    if let Some(t) = o.get("tags") {
        let ok = t.is_null() || t.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if !ok {
            return Err(format!("tags is not a list of strings: {t}"));
        }
    }
    let fields = match o.get("output_fields") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(x) => return Err(format!("output_fields is not an object: {x}")),
    };
    // Check(): a known priority, a rule, a time, some output fields.
    let priority = o
        .get("priority")
        .ok_or("no priority")?
        .as_str()
        .ok_or("priority is not a string")?;
    if !PRIORITIES.contains(&priority) {
        return Err(format!("priority {priority:?} is not Falco's spelling"));
    }
    if o.get("rule")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err("no rule".into());
    }
    let time = o.get("time").and_then(Value::as_str).ok_or("no time")?;
    if !is_falco_time(time) {
        return Err(format!(
            "time {time:?} is not RFC 3339 UTC with nanoseconds"
        ));
    }
    let fields = fields.filter(|m| !m.is_empty()).ok_or("no output_fields")?;
    for name in ["k8s.ns.name", "k8s.pod.name"] {
        if let Some(x) = fields.get(name)
            && !x.is_null()
            && !x.is_string()
        {
            return Err(format!("{name} is not a string: {x}"));
        }
    }
    for (k, x) in fields {
        let scalar = |x: &Value| !x.is_object() && !x.is_array();
        let ok = scalar(x) || x.as_array().is_some_and(|a| a.iter().all(scalar));
        if !ok {
            return Err(format!(
                "output_fields.{k} is not a JSON type Falco writes: {x}"
            ));
        }
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, what Falco's `time` is.
fn is_falco_time(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 30
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..29)
        && b[29] == b'Z'
}

/// Falco's layout beyond what Falcosidekick checks: keys in nlohmann's alphabetical order,
/// tags a sorted set, a rule alert's output starting with `HH:MM:SS.nnnnnnnnn: Priority `
/// (the clock of `time`) and `evt.time` among its fields; an internal alert's output bare.
fn assert_falco_layout(line: &str) {
    let v: Value = serde_json::from_str(line).unwrap();
    let keys: Vec<&str> = line_keys(line);
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted, "keys in Falco's order: {line}");
    for k in [
        "hostname",
        "output",
        "output_fields",
        "priority",
        "rule",
        "source",
        "time",
    ] {
        assert!(keys.contains(&k), "{k} missing: {line}");
    }
    let tags: Vec<&str> = v["tags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut set = tags.clone();
    set.sort_unstable();
    set.dedup();
    assert_eq!(tags, set, "tags a sorted set: {line}");
    let time = v["time"].as_str().unwrap();
    let output = v["output"].as_str().unwrap();
    match v["source"].as_str().unwrap() {
        "syscall" => {
            let prefix = format!("{}: {} ", &time[11..29], v["priority"].as_str().unwrap());
            assert!(output.starts_with(&prefix), "{prefix:?}: {line}");
            let ns = v["output_fields"]["evt.time"].as_u64().expect("evt.time");
            assert_eq!(Alert::format_time(ns), time, "{line}");
        }
        "internal" => assert!(!output.starts_with(&time[11..29]), "{line}"),
        other => panic!("source {other:?}: {line}"),
    }
    // What driftwatch writes is exactly what it would write again from the parsed alert.
    let alert: Alert = serde_json::from_str(line).unwrap();
    assert_eq!(alert.to_json_line(), line);
}

/// The top-level keys of a JSON object line, in the order written.
fn line_keys(line: &str) -> Vec<&str> {
    let v: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
    let mut at: Vec<(usize, &str)> = Vec::new();
    for k in v.keys() {
        let needle = format!("\"{k}\":");
        // Top-level keys are the first occurrence of each (output_fields' keys are dotted
        // names or come after `output_fields`).
        if let Some(i) = line.find(&needle) {
            let key = &line[i + 1..i + 1 + k.len()];
            at.push((i, key));
        }
    }
    at.sort_unstable();
    at.into_iter().map(|(_, k)| k).collect()
}

fn container_meta(repository: &str) -> Arc<ContainerMeta> {
    let meta: ContainerMeta = serde_json::from_value(json!({
        "id": "3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607182",
        "engine": "docker",
        "name": "web",
        "image": {"repository": repository, "tag": "1.27", "digest": "sha256:abcd", "id": null},
        "k8s": {
            "namespace": "prod",
            "pod_name": "web-0",
            "pod_uid": "uid-1",
            "container_name": "web",
            "labels": {"app": "web"}
        }
    }))
    .expect("container metadata");
    Arc::new(meta)
}

fn drifted_exec(repository: &str) -> Event {
    let process = Process {
        pid: 4242,
        ppid: 4000,
        name: "xmrig".into(),
        exepath: "/tmp/xmrig".into(),
        argv: vec!["xmrig".into(), "-o".into(), "pool".into()],
        user_name: "root".into(),
        cwd: "/".into(),
        ancestors: vec!["sh".into(), "runc:[2:INIT]".into()],
        exe_upper_layer: true,
        ..Default::default()
    };
    let mut ev: Event = serde_json::from_value(json!({
        "time_ns": 1_795_852_800_123_456_789_u64,
        "kind": "execve",
        "process": serde_json::to_value(&process).unwrap(),
        "drift": {
            "kind": "binary",
            "subject": "exe",
            "verdict": "added",
            "path": "/tmp/xmrig",
            "hash": "b3:1234"
        }
    }))
    .expect("event");
    ev.container = Some(container_meta(repository));
    ev
}

#[test]
fn rules_crate_alerts_pass_falcosidekicks_check_in_falcos_layout() {
    let rs = RuleSet::load_with_defaults(&[]).unwrap().ruleset;
    let alerts = rs.evaluate(&drifted_exec("nginx"), "node-1");
    assert!(!alerts.is_empty());
    for a in &alerts {
        let line = a.to_json_line();
        sidekick_check(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_falco_layout(&line);
    }
    let a = alerts
        .iter()
        .find(|a| a.rule == "Drop and execute new binary in container")
        .unwrap();
    // Byte for byte, the head and tail of Falco's line for this alert.
    let line = a.to_json_line();
    assert!(
        line.starts_with(
            r#"{"hostname":"node-1","output":"08:00:00.123456789: Critical Executable not in the image executed (verdict=added "#
        ),
        "{line}"
    );
    assert!(
        line.ends_with(
            r#""priority":"Critical","rule":"Drop and execute new binary in container","source":"syscall","tags":["T1105","TA0002","binary_drift","container","drift","mitre_execution","mitre_persistence"],"time":"2026-11-28T08:00:00.123456789Z"}"#
        ),
        "{line}"
    );
    // The pod's fields, as Falco's append_output would add them, are strings.
    assert_eq!(a.output_fields["k8s.ns.name"], "prod");
    assert_eq!(a.output_fields["k8s.pod.name"], "web-0");
}

#[test]
fn container_info_expands_as_falcos_and_evt_time_prints_the_clock() {
    let rule = "- rule: r\n  desc: d\n  condition: proc.name = xmrig\n  output: \"ran %proc.name %container.info at %evt.time\"\n  priority: warning\n  tags: [b, a]\n";
    let rs = RuleSet::load(&[driftwatch_rules::Source::new("r.yaml", rule)])
        .unwrap()
        .ruleset;
    let a = rs.evaluate(&drifted_exec("nginx"), "node-1").remove(0);
    assert_eq!(
        a.output,
        "08:00:00.123456789: Warning ran xmrig container_id=3f4a5b6c7d8e container_name=web at 08:00:00.123456789"
    );
    assert_eq!(a.output_fields["container.id"], "3f4a5b6c7d8e");
    assert_eq!(a.output_fields["container.name"], "web");
    assert_eq!(a.output_fields["evt.time"], 1_795_852_800_123_456_789_u64);
    assert!(a.to_json_line().contains(r#""tags":["a","b"]"#));
}

#[test]
fn the_check_rejects_what_falcosidekick_rejects() {
    let good = r#"{"hostname":"h","output":"o","output_fields":{"proc.pid":1},"priority":"Critical","rule":"r","source":"syscall","tags":["a"],"time":"2026-11-28T08:00:00.123456789Z"}"#;
    assert_eq!(sidekick_check(good), Ok(()));
    for (bad, why) in [
        (good.replace("\"Critical\"", "\"Loud\""), "unknown priority"),
        (
            good.replace("\"rule\":\"r\"", "\"rule\":\"\""),
            "empty rule",
        ),
        (good.replace("{\"proc.pid\":1}", "{}"), "no output fields"),
        (
            good.replace("2026-11-28T08:00:00.123456789Z", "2026-11-28 08:00:00"),
            "time format",
        ),
        (good.replace("[\"a\"]", "[1]"), "tags of another type"),
        (
            good.replace("{\"proc.pid\":1}", "{\"k8s.ns.name\":3}"),
            "k8s.ns.name not a string",
        ),
    ] {
        assert!(sidekick_check(&bad).is_err(), "{why}: {bad}");
    }
}

#[test]
fn internal_alerts_pass_the_check_in_falcos_internal_layout() {
    let a = Alert::tamper(
        "node-1",
        "Driftwatch agent tampered with",
        "the agent's BPF programs were detached".into(),
        BTreeMap::from([("driftwatch.pid".to_string(), json!(1))]),
    );
    assert_eq!(a.source, "internal");
    let line = a.to_json_line();
    sidekick_check(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_falco_layout(&line);
}

/// A Falco user's tuning file, unchanged: the forms of Falco's documentation on the rules
/// that carry Falco's names.
const FALCO_TUNING: &str = r#"
- list: known_drop_and_execute_containers
  items: [driftwatch-test/debian]
  override:
    items: append

- macro: user_known_package_manager_in_container
  condition: proc.cmdline="dpkg -l"
  override:
    condition: replace

- rule: Write below etc
  exceptions:
    - name: allowed_etc_writers
      fields: [fd.name]
      comps: [=]
      values:
        - [/etc/dw-tuned]
  override:
    exceptions: append

- rule: Terminal shell in container
  enabled: false
  override:
    enabled: replace
"#;

#[test]
fn a_falco_tuning_file_changes_what_a_real_agent_reports_and_every_line_is_falcos() {
    require!(Bpf, Docker, Image(BUSYBOX), Image(DEBIAN));
    let dir = tempfile::tempdir().unwrap();
    let tuning = dir.path().join("falco-tuning.yaml");
    std::fs::write(&tuning, FALCO_TUNING).unwrap();
    let agent = AgentProcess::start(DRIFTWATCH, &["--rules", tuning.to_str().unwrap()]);
    let busybox = watched_container(&agent, BUSYBOX);
    let debian = watched_container(&agent, DEBIAN);

    // Tuned quiet: a drop-and-execute in the allowed image, the exception's file, a shell
    // started by a shell (the disabled rule), `dpkg -l`.
    let (code, out) = debian.sh(
        "mkdir -p /tmp/tuned && cp /bin/true /tmp/tuned/t && /tmp/tuned/t; \
         echo x > /etc/dw-tuned; sh -c true; dpkg -l >/dev/null",
    );
    assert_eq!(code, 0, "{out}");
    // Still reported: the same in the image that is not allowed, another file below /etc,
    // a package manager doing something else.
    drop_and_run(&busybox, "untuned");
    let (code, out) = debian.sh("echo x > /etc/dw-untuned; dpkg -s dpkg >/dev/null");
    assert_eq!(code, 0, "{out}");
    agent.wait_for("drop and execute in busybox", WAIT, |a| {
        a["rule"] == "Drop and execute new binary in container"
            && field(a, "container.id") == busybox.short()
    });
    agent.wait_for("the untuned /etc write", WAIT, |a| {
        a["rule"] == "Write below etc" && field(a, "fd.name") == "/etc/dw-untuned"
    });
    agent.wait_for("dpkg -s", WAIT, |a| {
        a["rule"] == "Launch Package Management Process in Container"
            && field(a, "proc.cmdline") == "dpkg -s dpkg"
    });
    // The quiet ones ran before these, in the same container or earlier: give the pipeline
    // a moment more, then none of them may be there.
    std::thread::sleep(Duration::from_secs(2));
    let alerts = agent.alerts();
    let quiet: Vec<&Value> = alerts
        .iter()
        .filter(|a| {
            (a["rule"] == "Drop and execute new binary in container"
                && field(a, "container.id") == debian.short())
                || field(a, "fd.name") == "/etc/dw-tuned"
                || field(a, "proc.cmdline") == "dpkg -l"
                || a["rule"] == "Terminal shell in container"
        })
        .collect();
    assert!(quiet.is_empty(), "tuned away, yet reported: {quiet:#?}");

    // Every line the agent wrote is Falco's, as Falcosidekick takes it.
    let text = std::fs::read_to_string(&agent.json_out).unwrap();
    assert!(text.lines().count() >= 3);
    for line in text.lines() {
        sidekick_check(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_falco_layout(line);
    }
}
