//! Attacks through the container's files: what the agent reads of a container (its
//! `/etc/passwd` and `/etc/group` for user and group names, its package databases, its directory tree) made hostile.
//! `docs/container-files.md` says what the agent guarantees against each.

use std::time::Duration;

use crate::{Aftermath, DRIFTWATCH};
use driftwatch_testkit::*;

/// The uid the attacker's dropped binary runs as, so that the agent looks its name up.
const UID: &str = "4242";

const DETECT: Duration = Duration::from_secs(20);

/// A Debian container whose entrypoint makes `/etc/passwd` hostile with `setup` (as root),
/// then runs a dropped binary `/tmp/<dir>/true` as [`UID`] every second (Python's setuid
/// and exec read no passwd file; `setpriv` blocks on a FIFO one). `docker exec` is no use
/// here: runc itself reads the container's `/etc/passwd` to start an exec, and fails. The setup is done
/// before this returns, so an agent started afterwards takes the container in hostile.
fn hostile_passwd(setup: &str, dir: &str) -> TestContainer {
    let drop_privileges =
        format!("import os; os.setgroups([]); os.setgid({UID}); os.setuid({UID})");
    let script = format!(
        "mkdir -p /tmp/{dir} && cp /bin/true /tmp/{dir}/true && chmod 755 /tmp/{dir} /tmp/{dir}/true \
         && {setup} && echo dw-prepared \
         && while :; do python3 -S -c \"{drop_privileges}; os.execv('/tmp/{dir}/true', ['true'])\"; sleep 1; done"
    );
    let c = TestContainer::run(&[DEBIAN, "sh", "-c", &script]);
    for _ in 0..100 {
        if text(&docker(&["logs", &c.id])).contains("dw-prepared") {
            return c;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the setup of {} never finished: {setup}: {}",
        c.short(),
        text(&docker(&["logs", &c.id]))
    );
}

/// The agent's drift alert for the attacker's dropped binary.
fn dropped_exec(agent: &AgentProcess, c: &TestContainer, dir: &str) -> serde_json::Value {
    let want = format!("/tmp/{dir}/true");
    agent.wait_for("the attacker's dropped binary", DETECT, |a| {
        a["rule"] == "Drop and execute new binary in container"
            && field(a, "container.id") == c.short()
            && field(a, "drift.path") == want.as_str()
    })
}

/// The user name the alert gives the attacker's uid (absent when none is known).
fn user_name(a: &serde_json::Value) -> &str {
    field(a, "user.name").as_str().unwrap_or_default()
}

/// The agent's log has a line naming the container and the path, with `what`.
fn logged(agent: &AgentProcess, c: &TestContainer, path: &str, what: &str) {
    let log = agent.log();
    assert!(
        log.iter()
            .any(|l| l.contains(c.short()) && l.contains(path) && l.contains(what)),
        "no log line naming container {} and {path} with {what:?}:\n{}",
        c.short(),
        log.join("\n")
    );
}

#[test]
fn etc_passwd_linked_to_dev_zero_is_refused_not_read() {
    if !ready_with(&[BUSYBOX, DEBIAN]) {
        return;
    }
    // On the old agent: an unbounded read of /dev/zero, gigabytes of RSS in seconds.
    let c = hostile_passwd("ln -sf /dev/zero /etc/passwd", "pwzero");
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let a = dropped_exec(&agent, &c, "pwzero");
    assert_eq!(user_name(&a), "", "{a}");
    logged(&agent, &c, "/etc/passwd", "character device");
    Aftermath { agent: &agent }.assert_all();
}

#[test]
fn etc_passwd_as_a_fifo_does_not_block_the_agent() {
    if !ready_with(&[BUSYBOX, DEBIAN]) {
        return;
    }
    // On the old agent: a read that never returns (no writer), inside container discovery.
    let c = hostile_passwd("rm /etc/passwd && mkfifo /etc/passwd", "pwfifo");
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let a = dropped_exec(&agent, &c, "pwfifo");
    assert_eq!(user_name(&a), "", "{a}");
    logged(&agent, &c, "/etc/passwd", "fifo");
    Aftermath { agent: &agent }.assert_all();
}

#[test]
fn etc_passwd_linked_to_a_host_file_never_reads_the_hosts() {
    if !ready_with(&[BUSYBOX, DEBIAN]) {
        return;
    }
    // A file only the host has, naming the attacker's uid.
    let host = tempfile::Builder::new()
        .prefix("dw-adversary-passwd")
        .tempfile_in("/tmp")
        .unwrap();
    std::fs::write(host.path(), format!("hostuser:x:{UID}:{UID}::/:/bin/sh\n")).unwrap();
    let target = host.path().to_str().unwrap();
    // Absolute (resolved from the host's root through /proc/<pid>/root on the old agent)
    // and relative, climbing out of the container's root with `..`.
    let absolute = hostile_passwd(&format!("ln -sf {target} /etc/passwd"), "pwabs");
    let climbing = hostile_passwd(
        &format!("ln -sf ../../../../../../../../../..{target} /etc/passwd"),
        "pwrel",
    );
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    for (c, dir) in [(&absolute, "pwabs"), (&climbing, "pwrel")] {
        let a = dropped_exec(&agent, c, dir);
        let name = user_name(&a);
        assert_ne!(name, "hostuser", "the host's file was read: {a}");
        assert_eq!(name, "", "{a}");
    }
    Aftermath { agent: &agent }.assert_all();
}

/// Replaces the dpkg database by `how` (a shell snippet) after the agent watches the
/// container; the agent must note the change, refuse to read it, and go on sensing file drift.
fn hostile_package_db(how: &str, refused_as: &str) {
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, DEBIAN);
    let (code, out) = c.sh(how);
    assert_eq!(code, 0, "{out}");
    agent.wait_for("the change to the package database", DETECT, |a| {
        field(a, "container.id") == c.short() && field(a, "fd.name") == "/var/lib/dpkg/status"
    });
    // The package diff runs once writes settle: its refusal is logged.
    let start = std::time::Instant::now();
    while !agent.log().iter().any(|l| {
        l.contains(c.short()) && l.contains("/var/lib/dpkg/status") && l.contains(refused_as)
    }) {
        assert!(
            start.elapsed() < DETECT,
            "the package database was not refused as a {refused_as}:\n{}",
            agent.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The file sensor is not stuck: a later change in the same container is reported.
    c.sh("echo after > /etc/dw-after");
    agent.wait_for("a file change after the attack", DETECT, |a| {
        field(a, "container.id") == c.short() && field(a, "fd.name") == "/etc/dw-after"
    });
    Aftermath { agent: &agent }.assert_all();
}

#[test]
fn a_package_database_linked_to_dev_zero_is_refused() {
    if !ready_with(&[BUSYBOX, DEBIAN]) {
        return;
    }
    hostile_package_db("ln -sf /dev/zero /var/lib/dpkg/status", "symlink");
}

#[test]
fn a_package_database_replaced_by_a_fifo_is_refused() {
    if !ready_with(&[BUSYBOX, DEBIAN]) {
        return;
    }
    hostile_package_db(
        "rm /var/lib/dpkg/status && mkfifo /var/lib/dpkg/status",
        "fifo",
    );
}

#[test]
fn a_3000_level_tree_is_diffed_captured_and_watched_to_the_depth_cap() {
    if !ready_with(&[BUSYBOX, DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, DEBIAN);
    // Relative mkdir and chdir (a shell's `cd` keeps the whole path and stops at PATH_MAX).
    let (code, out) = c.exec(&[
        "python3",
        "-S",
        "-c",
        "import os; os.mkdir('/deep'); os.chdir('/deep'); \
         [(os.mkdir('d'), os.chdir('d')) for _ in range(3000)]; open('f', 'w').write('bottom')",
    ]);
    assert_eq!(code, 0, "{out}");

    // `driftwatch diff`: exits as for drift (1), not a crash, and names the cap.
    let json = run_cli(DRIFTWATCH, &["diff", "--json", &c.id]);
    assert_eq!(json.status.code(), Some(1), "{}", text(&json));
    let r: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(r["truncated"][0]["cap"], "max_depth", "{}", r["truncated"]);
    assert_eq!(r["truncated"][0]["limit"], 512);
    let table = run_cli(DRIFTWATCH, &["diff", &c.id]);
    assert_eq!(table.status.code(), Some(1), "{}", text(&table));
    let said = String::from_utf8_lossy(&table.stdout);
    assert!(
        said.contains("INCOMPLETE: truncated at the max_depth cap (512)"),
        "{said}"
    );

    // `driftwatch capture`: a complete bundle of what is within the cap, with a warning.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("deep.tar.zst");
    let cap = run_cli(
        DRIFTWATCH,
        &["capture", &c.id, "-o", bundle.to_str().unwrap()],
    );
    assert_eq!(cap.status.code(), Some(0), "{}", text(&cap));
    assert!(
        String::from_utf8_lossy(&cap.stderr).contains("truncated at the max_depth cap"),
        "{}",
        text(&cap)
    );
    let verify = run_cli(
        DRIFTWATCH,
        &["capture", "--verify", bundle.to_str().unwrap()],
    );
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));

    // The agent's tree watch stopped at its cap, said so, and still senses changes.
    let start = std::time::Instant::now();
    while !agent
        .log()
        .iter()
        .any(|l| l.contains(c.short()) && l.contains("levels deep are not watched"))
    {
        assert!(
            start.elapsed() < DETECT,
            "the watch's depth cap was not reported:\n{}",
            agent.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.sh("echo after > /etc/dw-after-deep");
    agent.wait_for("a file change after the deep tree", DETECT, |a| {
        field(a, "container.id") == c.short() && field(a, "fd.name") == "/etc/dw-after-deep"
    });
    Aftermath { agent: &agent }.assert_all();
}

/// The attacker's exec as the agent recorded it (`--record FILE`): its process's names.
fn recorded_names(record: &std::path::Path, c: &TestContainer, dir: &str) -> (String, String) {
    let want = format!("/tmp/{dir}/true");
    let start = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(record).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| {
                e["kind"] == "execve"
                    && e["container"]["id"] == c.id.as_str()
                    && e["process"]["exepath"] == want.as_str()
            });
        if let Some(e) = found {
            let name = |f: &str| e["process"][f].as_str().unwrap_or_default().to_string();
            return (name("group_name"), name("user_name"));
        }
        assert!(start.elapsed() < DETECT, "no exec of {want} recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `/etc/group` (read for Falco's `group.name`) made 100 MB (naming the attacker's gid on
/// its first line, so a read of it would show), or a link to the reader's own
/// `/proc/self/environ`: refused, no name, the agent unharmed.
#[test]
fn a_hostile_etc_group_gives_no_name_and_no_harm() {
    if !ready_with(&[BUSYBOX, DEBIAN]) {
        return;
    }
    let huge = hostile_passwd(
        &format!(
            "echo evil:x:{UID}: > /etc/group && truncate -s 100M /etc/group \
             && echo evil:x:{UID}:: > /etc/passwd"
        ),
        "grhuge",
    );
    let linked = hostile_passwd("ln -sf /proc/self/environ /etc/group", "grproc");
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    let agent = AgentProcess::start(DRIFTWATCH, &["--record", &record.display().to_string()]);
    let (group, user) = recorded_names(&record, &huge, "grhuge");
    assert_eq!(group, "", "the 100 MB /etc/group was read");
    // The passwd file beside it is small and read: the names are looked up at all.
    assert_eq!(user, "evil");
    logged(&agent, &huge, "/etc/group", "byte cap");
    let (group, _) = recorded_names(&record, &linked, "grproc");
    assert_eq!(group, "", "a link into the agent's own /proc was followed");
    logged(&agent, &linked, "/etc/group", "symlink");
    Aftermath { agent: &agent }.assert_all();
}
