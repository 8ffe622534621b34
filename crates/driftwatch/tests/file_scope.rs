//! File events only where a rule can match (issue 19): each directory of a container's
//! writable layer is marked for the event kinds the enabled rules can match there, so a loop
//! of scratch files in `/var/tmp` queues no notice at all, while the setuid rule still fires
//! there, a directory moved from `/var/tmp` into `/etc` is reported, and a user rule on
//! `/var/tmp` (loaded at start or by a reload) makes it reported again.

use std::path::Path;
use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

/// Iterations of the scratch loop: each makes, renames and removes one file.
const LOOP: usize = 300;

fn ready() -> bool {
    require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(DEBIAN),
    ])
}

fn about<'a>(c: &'a TestContainer, rule: &'a str, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        a["rule"] == rule && field(a, "container.id") == c.short() && field(a, "fd.name") == path
    }
}

fn scratch_loop(dir: &str) -> String {
    format!(
        "mkdir -p {dir} && i=0; while [ $i -lt {LOOP} ]; do echo x > {dir}/f$i; \
         mv {dir}/f$i {dir}/g$i; rm {dir}/g$i; i=$((i+1)); done"
    )
}

fn stats(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the agent's stats {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn count(s: &Value, name: &str) -> u64 {
    s["files"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no files.{name} in the stats: {s:#}"))
}

const USER_RULE: &str = "Scratch file made (test rule)";

fn user_rule() -> String {
    format!(
        "- rule: {USER_RULE}\n  desc: test\n  condition: evt.type in (creat) and container and fd.name startswith /var/tmp/\n  output: scratch %fd.name\n  priority: NOTICE\n"
    )
}

/// The /var/tmp loop (900 changes) queues no notice: the agent's notice counter grows by what
/// the container's setup makes (its first writes copy /etc and /var/tmp up), far below one
/// notice per change. The same loop in a watched directory is reported.
#[test]
fn a_scratch_loop_in_var_tmp_queues_no_notice() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("stats.json");
    let mut agent =
        AgentProcess::start(DRIFTWATCH, &["--stats-json", stats_path.to_str().unwrap()]);
    let c = watched_container(&agent, DEBIAN);
    // /var and /var/tmp are copied up (and marked) by the first change below them.
    let (code, out) = c.sh("mkdir -p /var/tmp && touch /var/tmp/first && rm /var/tmp/first");
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(Duration::from_millis(500));
    let (code, out) = c.sh(&scratch_loop("/var/tmp"));
    assert_eq!(code, 0, "{out}");
    // A marker after the loop: once it is reported, every notice of the loop was read.
    c.sh("echo . >> /etc/dw-after-loop");
    agent.wait_for(
        "the marker after the loop",
        WAIT,
        about(&c, "Write below etc", "/etc/dw-after-loop"),
    );
    agent.stop();
    let s = stats(&stats_path);
    let notices = count(&s, "notices");
    assert!(
        notices < 40,
        "{notices} notices for a loop of {} changes in /var/tmp: {s:#}",
        3 * LOOP
    );
    assert!(
        !agent.alerts().iter().any(|a| field(a, "fd.name")
            .as_str()
            .is_some_and(|p| p.starts_with("/var/tmp/"))),
        "an alert about /var/tmp"
    );
}

/// The setuid rule matches any path: /tmp and /var/tmp keep mode changes reported, for a file
/// whose creation was not (the mark ignores files' creations there), and for one made and
/// re-moded as /tmp is first copied up (found by the scan of the new directory).
#[test]
fn the_setuid_rule_still_fires_in_tmp_and_var_tmp() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, DEBIAN);
    let (code, out) = c.sh(
        "mkdir -p /var/tmp/sub && cp /bin/true /tmp/t && chmod u+s /tmp/t && \
         touch /var/tmp/s && chmod g+s /var/tmp/s && \
         cp /bin/true /var/tmp/sub/t && chmod 4755 /var/tmp/sub/t",
    );
    assert_eq!(code, 0, "{out}");
    for path in ["/tmp/t", "/var/tmp/s", "/var/tmp/sub/t"] {
        let a = agent.wait_for(path, WAIT, about(&c, "Set Setuid or Setgid bit", path));
        assert_eq!(field(&a, "evt.type"), "fchmodat", "{a}");
        assert!(
            field(&a, "evt.arg[mode]")
                .as_str()
                .is_some_and(|m| m.contains("S_ISUID") || m.contains("S_ISGID")),
            "{a}"
        );
    }
}

/// A directory made in /var/tmp (no rule can match there) and moved to /etc is reported at its
/// destination, and so is what it holds; a file moved the same way too.
#[test]
fn a_directory_moved_from_var_tmp_into_etc_is_reported() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, DEBIAN);
    let (code, out) = c.sh(
        "mkdir -p /var/tmp/d && echo k > /var/tmp/d/f && echo y > /var/tmp/y && sleep 0.3 && \
         mv /var/tmp/d /etc/x && mv /var/tmp/y /etc/y",
    );
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("/etc/x", WAIT, about(&c, "Write below etc", "/etc/x"));
    assert_eq!(field(&a, "evt.type"), "renameat2", "{a}");
    agent.wait_for("/etc/x/f", WAIT, about(&c, "Write below etc", "/etc/x/f"));
    let a = agent.wait_for("/etc/y", WAIT, about(&c, "Write below etc", "/etc/y"));
    assert_eq!(field(&a, "evt.type"), "renameat2", "{a}");
    // Later changes below the moved directory are watched for /etc's rules.
    c.sh("echo z > /etc/x/g");
    agent.wait_for("/etc/x/g", WAIT, about(&c, "Write below etc", "/etc/x/g"));
}

/// A user rule on /var/tmp, loaded from a rules file at start, makes /var/tmp marked for it.
#[test]
fn a_user_rule_on_var_tmp_marks_it_again() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("scratch.yaml");
    std::fs::write(&rules, user_rule()).unwrap();
    let agent = AgentProcess::start(DRIFTWATCH, &["--rules", rules.to_str().unwrap()]);
    let c = watched_container(&agent, DEBIAN);
    let (code, out) = c.sh("mkdir -p /var/tmp && echo x > /var/tmp/kept");
    assert_eq!(code, 0, "{out}");
    agent.wait_for("the user rule", WAIT, about(&c, USER_RULE, "/var/tmp/kept"));
}

/// The same rule added by a reload (SIGHUP): the directories are marked again for it.
#[test]
fn a_reloaded_rule_on_var_tmp_marks_it_again() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, "- list: file_scope_nothing\n  items: [nothing]\n").unwrap();
    std::fs::write(
        &config,
        format!(
            "rules:\n  directory: {}\n  files: [rules.yaml]\n",
            dir.path().join("no-rules.d").display()
        ),
    )
    .unwrap();
    let agent = AgentProcess::start(DRIFTWATCH, &["--config", config.to_str().unwrap()]);
    let c = watched_container(&agent, DEBIAN);
    let (code, out) = c.sh("mkdir -p /var/tmp/sub && echo x > /var/tmp/sub/before");
    assert_eq!(code, 0, "{out}");
    std::fs::write(&rules, user_rule()).unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_for_log("the marks for the new rules", 1, WAIT, |l| {
        l.contains("directories marked again for the new rules")
    });
    // What was there before the reload is not reported; what is made after is.
    c.sh("echo x > /var/tmp/sub/after");
    agent.wait_for(
        "the reloaded rule",
        WAIT,
        about(&c, USER_RULE, "/var/tmp/sub/after"),
    );
    assert!(
        !agent
            .alerts()
            .iter()
            .any(|a| field(a, "fd.name") == "/var/tmp/sub/before"),
        "a file made before the reload was reported"
    );
}
