//! File changes in real containers as Falco's events: first the events themselves (recorded
//! with `--record`: kind, `fd.typechar`, flags, mode, link target, owner), then Falco's own
//! upstream file rules loaded unchanged into a real agent, each fired by the change it is
//! about and kept quiet by a similar one it is not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

/// Linux's open flags, as the model carries them.
const O_WRONLY: u64 = 0o1;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;

fn ready() -> bool {
    require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(DEBIAN),
    ])
}

/// The recorded events of container `c`.
fn recorded(path: &Path, c: &TestContainer) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["container"]["id"] == c.id.as_str())
        .collect()
}

/// Waits for the recorded event of `kind` on `file` in `c`; panics with what was recorded.
fn event(path: &Path, c: &TestContainer, kind: &str, file: &str) -> Value {
    let start = Instant::now();
    loop {
        let events = recorded(path, c);
        if let Some(e) = events
            .iter()
            .find(|e| e["kind"] == kind && e["file"]["path"] == file)
        {
            return e.clone();
        }
        if start.elapsed() > WAIT {
            let shown: Vec<String> = events
                .iter()
                .filter(|e| e["file"].is_object())
                .map(|e| format!("{} {}", e["kind"], e["file"]))
                .collect();
            panic!(
                "no {kind} event on {file} within {WAIT:?}; file events recorded:\n{}",
                shown.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a container of `image` and waits until the agent watches its layers: a marker write
/// is recorded. (Falco's own outputs do not all name the container, so the recorded event is
/// what tells, not an alert.)
fn watched_recorded(record: &Path, image: &str) -> TestContainer {
    let c = TestContainer::run(&[image, "sleep", "300"]);
    for _ in 0..50 {
        c.sh("echo . >> /etc/dw-ready");
        if recorded(record, &c)
            .iter()
            .any(|e| e["file"]["path"] == "/etc/dw-ready")
        {
            return c;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the agent never recorded the marker write in {}", c.short());
}

/// Changes the directories the scenarios use once, so that each first change below an image
/// directory (which copies it up, racing the copy's mark) is behind us: later changes name
/// their process.
fn warm_up(c: &TestContainer) {
    let (code, out) = c.sh(
        "touch /root/.dw /usr/bin/.dw /var/log/.dw /etc/cron.d/.dw /usr/local/bin/.dw /opt/.dw",
    );
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(Duration::from_millis(500));
}

#[test]
fn file_changes_are_recorded_as_falcos_events_with_their_arguments() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    let agent = AgentProcess::start(DRIFTWATCH, &["--record", record.to_str().unwrap()]);
    let c = watched_container(&agent, DEBIAN);
    warm_up(&c);
    let (code, out) = c.sh(
        "umask 022 && mkdir /usr/bin/dwdir && ln -s /etc/shadow /root/dwlink && \
         echo hi > /root/dwnew && : > /var/log/dpkg.log && echo more >> /var/log/alternatives.log && \
         chmod 4755 /usr/bin/id && chown 1:2 /etc/issue && rmdir /usr/bin/dwdir && \
         mv /root/dwnew /root/dwmoved && ln /root/dwmoved /root/dwhard && rmdir /srv && \
         cp /usr/bin/true /root/dwsuid && chmod g+s /root/dwsuid",
    );
    assert_eq!(code, 0, "{out}");

    let e = event(&record, &c, "mkdir", "/usr/bin/dwdir");
    assert_eq!(e["file"]["typechar"], "d", "{e}");
    assert_eq!(e["file"]["mode"], 0o755, "{e}");
    assert_eq!(e["process"]["name"], "mkdir", "{e}");
    assert_eq!(e["drift"]["verdict"], "added", "{e}");
    // The acting process with what its exec said of it, as on its exec event.
    let p = &e["process"];
    assert!(p["vpid"].as_u64().is_some_and(|v| v > 0), "{p}");
    assert_eq!(
        p["sid"], p["ancestor_pids"][0],
        "the shell leads the session: {p}"
    );
    assert_eq!(p["sname"], "sh", "{p}");
    assert_eq!(p["pexepath"], "/usr/bin/dash", "{p}");
    assert_eq!(p["pargv"][0], "sh", "{p}");
    assert!(p["cap_effective"].as_u64().is_some_and(|c| c > 0), "{p}");
    assert_eq!(p["group_name"], "root", "{p}");

    let e = event(&record, &c, "symlink", "/root/dwlink");
    assert_eq!(e["file"]["typechar"], "l", "{e}");
    assert_eq!(e["file"]["target"], "/etc/shadow", "{e}");
    assert_eq!(e["process"]["name"], "ln", "{e}");

    let e = event(&record, &c, "creat", "/root/dwnew");
    assert_eq!(e["file"]["typechar"], "f", "{e}");
    assert_eq!(e["file"]["flags"], O_WRONLY | O_CREAT, "{e}");
    assert_eq!(e["file"]["mode"], 0o644, "{e}");
    assert_eq!(e["file"]["write"], true, "{e}");
    assert_eq!(e["process"]["name"], "sh", "{e}");

    // An image log file emptied: written, shorter than the image's: O_TRUNC.
    let e = event(&record, &c, "open", "/var/log/dpkg.log");
    assert_eq!(e["file"]["flags"], O_WRONLY | O_TRUNC, "{e}");
    assert_eq!(e["file"]["write"], true, "{e}");
    // Appended to: longer, no O_TRUNC.
    let e = event(&record, &c, "open", "/var/log/alternatives.log");
    assert_eq!(e["file"]["flags"], O_WRONLY, "{e}");

    let e = event(&record, &c, "chmod", "/usr/bin/id");
    assert_eq!(e["file"]["mode"], 0o4755, "{e}");
    assert_eq!(e["process"]["name"], "chmod", "{e}");

    let e = event(&record, &c, "chown", "/etc/issue");
    assert_eq!(e["file"]["owner"], serde_json::json!([1, 2]), "{e}");
    assert_eq!(e["process"]["name"], "chown", "{e}");

    let e = event(&record, &c, "unlink", "/usr/bin/dwdir");
    assert_eq!(e["file"]["typechar"], "d", "rmdir: {e}");
    assert_eq!(e["process"]["name"], "rmdir", "{e}");

    let e = event(&record, &c, "rename", "/root/dwmoved");
    assert_eq!(e["file"]["old_path"], "/root/dwnew", "{e}");
    assert_eq!(e["process"]["name"], "mv", "{e}");

    // A second name for an existing file: created, but nothing was opened or written.
    let e = event(&record, &c, "creat", "/root/dwhard");
    assert_eq!(e["file"]["write"], false, "{e}");
    assert!(e["file"]["flags"].is_null(), "no open flags: {e}");
    assert!(
        e["drift"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("hard link")),
        "{e}"
    );

    // Set right after the copy was made, often in one notice with its creation: the
    // setgid bit is reported either way.
    let e = event(&record, &c, "chmod", "/root/dwsuid");
    assert_eq!(e["file"]["mode"], 0o2755, "{e}");

    // An image directory removed: its whiteout says what it hid.
    let e = event(&record, &c, "unlink", "/srv");
    assert_eq!(e["file"]["typechar"], "d", "{e}");
    assert_eq!(e["drift"]["detail"], "an image file was removed", "{e}");
}

/// The vendored upstream rule files, as a Falco user has them.
fn upstream(name: &str) -> PathBuf {
    repo_root()
        .join("crates/driftwatch-rules/tests/data/falcosecurity-rules")
        .join(name)
}

/// A user's tuning file, in the form Falco's docs show: a macro replaced by an override.
const TUNING: &str = "\
- macro: user_known_write_below_root_activities
  condition: (fd.name startswith /root/dw-tuned-)
  override:
    condition: replace
";

/// One upstream rule: what fires it in the container, and a similar change it must not
/// flag, with the path each one's alert (or silence) is about.
struct Case {
    rule: &'static str,
    fire: &'static str,
    fired_on: &'static str,
    quiet: &'static str,
    quiet_on: &'static str,
}

const CASES: &[Case] = &[
    Case {
        rule: "Write below etc",
        fire: "echo x > /etc/dw-etc",
        fired_on: "/etc/dw-etc",
        // Listed by the rule's own exceptions.
        quiet: "echo x > /etc/motd",
        quiet_on: "/etc/motd",
    },
    Case {
        rule: "Write below root",
        fire: "echo x > /root/dw-root",
        fired_on: "/root/dw-root",
        // Allowed by the user's tuning file.
        quiet: "echo x > /root/dw-tuned-state",
        quiet_on: "/root/dw-tuned-state",
    },
    Case {
        rule: "Write below binary dir",
        fire: "echo x > /usr/bin/dw-bin",
        fired_on: "/usr/bin/dw-bin",
        quiet: "echo x > /usr/local/bin/dw-local",
        quiet_on: "/usr/local/bin/dw-local",
    },
    Case {
        rule: "Modify binary dirs",
        fire: "rm /usr/bin/who",
        fired_on: "/usr/bin/who",
        quiet: "echo x > /opt/dw-opt && rm /opt/dw-opt",
        quiet_on: "/opt/dw-opt",
    },
    Case {
        rule: "Mkdir binary dirs",
        fire: "mkdir /usr/bin/dw-mkdir",
        fired_on: "/usr/bin/dw-mkdir",
        quiet: "mkdir /opt/dw-mkdir",
        quiet_on: "/opt/dw-mkdir",
    },
    Case {
        rule: "Modify Shell Configuration File",
        fire: "echo 'alias ls=id' | tee -a /root/.bashrc >/dev/null",
        fired_on: "/root/.bashrc",
        // The rule leaves shells' own writes out.
        quiet: "echo 'export DW=1' >> /root/.profile",
        quiet_on: "/root/.profile",
    },
    Case {
        rule: "Schedule Cron Jobs",
        fire: "echo '* * * * * root id' > /etc/cron.d/dw-job",
        fired_on: "/etc/cron.d/dw-job",
        quiet: "echo x > /etc/dw-not-cron",
        quiet_on: "/etc/dw-not-cron",
    },
    Case {
        rule: "Adding ssh keys to authorized_keys",
        fire: "echo 'ssh-ed25519 AAAA dw' >> /root/.ssh/authorized_keys",
        fired_on: "/root/.ssh/authorized_keys",
        quiet: "echo 'host ssh-ed25519 AAAA' >> /root/.ssh/known_hosts",
        quiet_on: "/root/.ssh/known_hosts",
    },
    Case {
        rule: "Set Setuid or Setgid bit",
        fire: "chmod u+s /usr/bin/id",
        fired_on: "/usr/bin/id",
        quiet: "chmod 700 /usr/bin/env",
        quiet_on: "/usr/bin/env",
    },
    Case {
        rule: "Clear Log Activities",
        fire: ": > /var/log/dpkg.log",
        fired_on: "/var/log/dpkg.log",
        quiet: "echo more >> /var/log/alternatives.log",
        quiet_on: "/var/log/alternatives.log",
    },
    Case {
        rule: "Create Symlink Over Sensitive Files",
        fire: "ln -s /etc/shadow /root/dw-shadow",
        fired_on: "/root/dw-shadow",
        quiet: "ln -s /etc/hostname /root/dw-hostname",
        quiet_on: "/root/dw-hostname",
    },
];

/// `rule`'s alert in `c` about `path`, under whichever field the rule's output names it
/// (`fd.name`, `evt.arg.path`, `evt.arg.filename`, `evt.arg.linkpath`).
/// Falco's own outputs do not all print the container: where one does, it must be `c`
/// (the paths are the test's own, made in `c` alone).
fn about<'a>(c: &'a TestContainer, rule: &'a str, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        a["rule"] == rule
            && [Value::Null, Value::from(c.short())].contains(field(a, "container.id"))
            && a["output_fields"].as_object().is_some_and(|fields| {
                fields
                    .iter()
                    .any(|(k, v)| (k == "fd.name" || k.starts_with("evt.arg")) && v == path)
            })
    }
}

#[test]
fn falcos_own_file_rules_fire_on_the_same_changes_in_containers() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tuning = dir.path().join("tuning.yaml");
    std::fs::write(&tuning, TUNING).unwrap();
    // Falco's order: stable, incubating, sandbox, then the user's tuning.
    let files = [
        upstream("falco_rules.yaml"),
        upstream("falco-incubating_rules.yaml"),
        upstream("falco-sandbox_rules.yaml"),
        tuning,
    ];
    let record = dir.path().join("events.jsonl");
    let mut args = vec!["--record", record.to_str().unwrap()];
    for f in &files {
        args.push("--rules");
        args.push(f.to_str().unwrap());
    }
    let agent = AgentProcess::start(DRIFTWATCH, &args);
    let c = watched_recorded(&record, DEBIAN);
    warm_up(&c);
    let (code, out) = c.sh("mkdir -p /root/.ssh");
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(Duration::from_millis(500));
    for case in CASES {
        let (code, out) = c.sh(case.quiet);
        assert_eq!(code, 0, "{}: {}: {out}", case.rule, case.quiet);
        let (code, out) = c.sh(case.fire);
        assert_eq!(code, 0, "{}: {}: {out}", case.rule, case.fire);
        let a = agent.wait_for(case.rule, WAIT, about(&c, case.rule, case.fired_on));
        assert!(
            a["output"].as_str().is_some_and(|o| !o.is_empty()),
            "{}: {a}",
            case.rule
        );
    }
    // Every fire was seen after its quiet twin: a quiet alert would be in by now. Each quiet
    // change was seen (it is an event), and did not match.
    std::thread::sleep(Duration::from_millis(500));
    let alerts = agent.alerts();
    let events = recorded(&record, &c);
    for case in CASES {
        assert!(
            events.iter().any(|e| e["file"]["path"] == case.quiet_on),
            "{}: the quiet change to {} was not seen at all",
            case.rule,
            case.quiet_on
        );
        let noisy: Vec<&Value> = alerts
            .iter()
            .filter(|a| about(&c, case.rule, case.quiet_on)(a))
            .collect();
        assert!(
            noisy.is_empty(),
            "{} flagged {} ({}): {noisy:?}",
            case.rule,
            case.quiet_on,
            case.quiet
        );
    }
}
