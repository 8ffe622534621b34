//! Every file-drift alert names its process (issue 18): the first change in a directory not
//! yet in the writable layer (its entries found by a scan, the actor inferred and said so),
//! `sed -i`'s temporary file and rename, a package manager's `.dpkg-new` renamed into place,
//! a process that exits at once, a forked child that never exec'd, and two processes racing
//! in one new directory. Real agent, real containers.

use std::path::Path;
use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

/// What `drift.detail` says of an actor found by a scan rather than named by a notice.
const INFERRED: &str = "actor inferred";

fn ready() -> bool {
    require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(DEBIAN),
        Requirement::Image(BUSYBOX),
    ])
}

/// An agent whose file-drift alerts also carry `drift.detail`, `proc.vpid`, `proc.ppid` and
/// `proc.pcmdline` (Falco's `append_output`), with one rule of the test's own: a file
/// written directly below `/` says the agent watches the container, without touching
/// `/etc` or any other image directory (the tests need them not yet in the writable layer).
fn agent(dir: &Path) -> AgentProcess {
    let rules = dir.join("rules.d");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("ready.yaml"),
        "- rule: Actor test container watched\n  desc: the container's root is watched\n  condition: file_changed and container and fd.name = /dw-watched\n  output: watched %container.id\n  priority: NOTICE\n  tags: [actor_test]\n",
    )
    .unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "api:\n  token_file: {}\n  token_for_reads: false\nrules:\n  directory: {}\n  append_output:\n    - match:\n        tags: [file_drift]\n      extra_fields:\n        - drift.detail\n        - proc.vpid\n        - proc.ppid\n        - proc.pcmdline\n",
            dir.join("api.token").display(),
            rules.display()
        ),
    )
    .unwrap();
    let store = dir.join("driftwatch.db");
    let actions = dir.join("actions.jsonl");
    AgentProcess::start(
        DRIFTWATCH,
        &[
            "--config",
            &config.display().to_string(),
            "--store",
            &store.display().to_string(),
            "--actions-log",
            &actions.display().to_string(),
        ],
    )
}

/// A container the agent watches, nothing of its image copied up yet.
fn fresh_container(agent: &AgentProcess, image: &str) -> TestContainer {
    let c = TestContainer::run(&[image, "sleep", "300"]);
    for _ in 0..50 {
        c.sh("echo . >> /dw-watched");
        if agent.alerts().iter().any(|a| {
            a["rule"] == "Actor test container watched" && field(a, "container.id") == c.short()
        }) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the agent never watched container {}", c.short());
}

/// The test's agent (its files in the directory returned) and a fresh container it watches.
fn watching(image: &str) -> (tempfile::TempDir, AgentProcess, TestContainer) {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    let c = fresh_container(&agent, image);
    (dir, agent, c)
}

/// The alert of a rename onto `path`, seen by its notice (not inferred).
fn observed_rename(agent: &AgentProcess, c: &TestContainer, path: &str) -> Value {
    let a = agent.wait_for(&format!("rename onto {path}"), WAIT, |a| {
        about(c, path)(a) && field(a, "evt.type") == "renameat2"
    });
    assert!(!detail(&a).contains(INFERRED), "{a}");
    a
}

fn about<'a>(c: &'a TestContainer, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        has_tag(a, "file_drift")
            && field(a, "container.id") == c.short()
            && field(a, "fd.name") == path
    }
}

fn detail(a: &Value) -> &str {
    field(a, "drift.detail").as_str().unwrap_or_default()
}

/// The parent of a process `docker exec` started, as its exec saw it: runc's init, or the
/// engine's shim it is handed to when runc exits first.
const EXEC_PARENTS: &[&str] = &["runc", "containerd-shim"];

/// The process fields every file-drift alert must fill.
fn assert_actor(a: &Value, name: &str, exepath: &str, cmdline: &str, pnames: &[&str]) {
    assert!(
        field(a, "proc.pid").as_u64().is_some_and(|p| p > 0),
        "pid: {a}"
    );
    assert_eq!(field(a, "proc.name"), name, "proc.name: {a}");
    assert_eq!(field(a, "proc.exepath"), exepath, "proc.exepath: {a}");
    assert_eq!(field(a, "proc.cmdline"), cmdline, "proc.cmdline: {a}");
    assert!(
        pnames.iter().any(|p| field(a, "proc.pname") == *p),
        "proc.pname one of {pnames:?}: {a}"
    );
}

/// The pid (in the container) a script printed as its last line.
fn printed_pid(out: &str) -> u64 {
    out.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid printed: {out:?}"))
}

/// `echo >> /etc/passwd` in a fresh container: /etc is copied up by the write, marked after
/// the fact, and passwd found by the scan; the alert names the shell, as inferred.
#[test]
fn first_change_below_etc_names_the_shell_as_inferred() {
    if !ready() {
        return;
    }
    let (_dir, agent, c) = watching(DEBIAN);
    let script = "echo 'x:x:0:0::/:/bin/sh' >> /etc/passwd; echo $$";
    let (code, out) = c.sh(script);
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("write to /etc/passwd", WAIT, about(&c, "/etc/passwd"));
    assert_eq!(a["rule"], "Write below etc", "{a}");
    assert_actor(
        &a,
        "sh",
        "/usr/bin/dash",
        &format!("sh -c {script}"),
        EXEC_PARENTS,
    );
    assert_eq!(field(&a, "proc.vpid"), printed_pid(&out), "{a}");
    let output = a["output"].as_str().unwrap();
    assert!(!output.contains("proc_name=<NA>"), "{output}");
    // Found by the scan of the new /etc (the usual case) the alert says so; seen by a notice
    // it does not.
    if detail(&a).contains(INFERRED) {
        assert!(detail(&a).contains("/etc"), "{a}");
    }
}

/// One shell writes a burst of files into /etc, not yet in the writable layer: the first
/// ones are made before the new /etc is watched (the agent reads notices at least 2 ms after
/// they come) and are found by the scan, named as inferred; a file written once /etc is
/// watched is seen by its notice. Every alert names the shell, the only process that writes.
#[test]
fn entries_found_by_the_scan_name_the_directorys_maker_as_inferred() {
    if !ready() {
        return;
    }
    let (_dir, agent, c) = watching(DEBIAN);
    // Builtins only (dash): one process.
    let script = "i=0; while [ $i -lt 150 ]; do echo $i > /etc/f$i; i=$((i+1)); done; sleep 1; echo late > /etc/late; echo $$";
    let (code, out) = c.sh(script);
    assert_eq!(code, 0, "{out}");
    let sh_vpid = printed_pid(&out);
    let first = agent.wait_for("/etc/f0", WAIT, about(&c, "/etc/f0"));
    agent.wait_for("/etc/f149", WAIT, about(&c, "/etc/f149"));
    assert!(detail(&first).contains(INFERRED), "{first}");
    assert!(
        detail(&first).contains("made before /etc was watched"),
        "{first}"
    );
    let alerts: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| {
            has_tag(a, "file_drift")
                && field(a, "container.id") == c.short()
                && field(a, "fd.name")
                    .as_str()
                    .is_some_and(|f| f.starts_with("/etc/f"))
        })
        .collect();
    for a in &alerts {
        assert_actor(
            a,
            "sh",
            "/usr/bin/dash",
            &format!("sh -c {script}"),
            EXEC_PARENTS,
        );
        assert_eq!(field(a, "proc.vpid"), sh_vpid, "{a}");
    }
    // Once /etc is watched, the shell's next write is seen by its notice.
    let late = agent.wait_for("/etc/late", WAIT, about(&c, "/etc/late"));
    assert!(!detail(&late).contains(INFERRED), "{late}");
    assert_actor(
        &late,
        "sh",
        "/usr/bin/dash",
        &format!("sh -c {script}"),
        EXEC_PARENTS,
    );
    assert_eq!(field(&late, "proc.vpid"), sh_vpid, "{late}");
}

/// `sed -i` writes a temporary file next to the config and renames it over it: in a fresh
/// container that is the first change below /etc (found by the scan), later ones are seen.
#[test]
fn sed_in_place_names_sed() {
    if !ready() {
        return;
    }
    let (_dir, agent, c) = watching(DEBIAN);
    let script = "sed -i s/1/9/ /etc/debian_version; true";
    let (code, out) = c.sh(script);
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("sed -i", WAIT, about(&c, "/etc/debian_version"));
    assert_actor(
        &a,
        "sed",
        "/usr/bin/sed",
        "sed -i s/1/9/ /etc/debian_version",
        &["sh"],
    );
    // Again, /etc now watched: the rename is seen, its actor observed.
    std::thread::sleep(Duration::from_millis(500));
    let script = "sed -i s/9/8/ /etc/debian_version; true";
    c.sh(script);
    let a = observed_rename(&agent, &c, "/etc/debian_version");
    assert_actor(
        &a,
        "sed",
        "/usr/bin/sed",
        "sed -i s/9/8/ /etc/debian_version",
        &["sh"],
    );
}

/// A package manager's way: a new file `foo.dpkg-new` renamed over `foo` in /usr/bin (first
/// change below /usr: /usr and /usr/bin are copied up by the write).
#[test]
fn dpkg_new_renamed_into_place_names_both_processes() {
    if !ready() {
        return;
    }
    let (_dir, agent, c) = watching(DEBIAN);
    let script = "echo '#!/bin/sh' > /usr/bin/which.dpkg-new; sleep 1; mv /usr/bin/which.dpkg-new /usr/bin/which; echo $$";
    let (code, out) = c.sh(script);
    assert_eq!(code, 0, "{out}");
    let sh_vpid = printed_pid(&out);
    let a = agent.wait_for("which.dpkg-new", WAIT, about(&c, "/usr/bin/which.dpkg-new"));
    assert_actor(
        &a,
        "sh",
        "/usr/bin/dash",
        &format!("sh -c {script}"),
        EXEC_PARENTS,
    );
    assert_eq!(field(&a, "proc.vpid"), sh_vpid, "{a}");
    let a = observed_rename(&agent, &c, "/usr/bin/which");
    assert_actor(
        &a,
        "mv",
        "/usr/bin/mv",
        "mv /usr/bin/which.dpkg-new /usr/bin/which",
        &["sh"],
    );
}

/// A process that exits at once (`sh -c 'echo x > /etc/y'`) is named by its exec record.
#[test]
fn a_process_that_exits_at_once_is_named() {
    if !ready() {
        return;
    }
    let (_dir, agent, c) = watching(BUSYBOX);
    // /etc into the writable layer and watched first: the next change is seen by a notice.
    c.sh("touch /etc/.seed");
    agent.wait_for("seed", WAIT, about(&c, "/etc/.seed"));
    std::thread::sleep(Duration::from_millis(500));
    let script = "echo $$; echo x > /etc/y";
    let (code, out) = c.exec(&["sh", "-c", script]);
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("echo x > /etc/y", WAIT, about(&c, "/etc/y"));
    assert_actor(
        &a,
        "sh",
        "/bin/busybox",
        &format!("sh -c {script}"),
        EXEC_PARENTS,
    );
    let vpid: u64 = out.lines().next().unwrap().trim().parse().unwrap();
    assert_eq!(field(&a, "proc.vpid"), vpid, "{a}");
    assert!(!detail(&a).contains(INFERRED), "{a}");
}

/// A forked child that never exec'd (a busybox subshell) and exited is named after the shell
/// it was forked from: its executable and argv, the shell as its parent, its own pids.
#[test]
fn a_forked_child_that_never_execd_is_named_after_its_parent() {
    if !ready() {
        return;
    }
    let (_dir, agent, c) = watching(BUSYBOX);
    // The subshell writes its own pid (in the container) into the file it makes; d1 is
    // watched by then (the sleep), so the write is seen by a notice naming the subshell.
    let script = "mkdir /etc/d1; sleep 1; ( read -r p rest < /proc/self/stat; echo $p > /etc/d1/f ); echo $$";
    let (code, out) = c.sh(script);
    assert_eq!(code, 0, "{out}");
    let sh_vpid = printed_pid(&out);
    let a = agent.wait_for("the subshell's write", WAIT, about(&c, "/etc/d1/f"));
    assert_actor(
        &a,
        "sh",
        "/bin/busybox",
        &format!("sh -c {script}"),
        &["sh"],
    );
    assert!(!detail(&a).contains(INFERRED), "{a}");
    assert_eq!(
        field(&a, "proc.pcmdline"),
        format!("sh -c {script}").as_str(),
        "{a}"
    );
    let (_, child) = c.sh("cat /etc/d1/f");
    let child_vpid: u64 = child.trim().parse().unwrap();
    assert_ne!(child_vpid, sh_vpid);
    assert_eq!(
        field(&a, "proc.vpid"),
        child_vpid,
        "the child's own pid: {a}"
    );
    // Its parent is the shell: the pid of the shell's own alert (mkdir made d1 in the
    // shell or in a child of it; the shell's pid is the subshell's parent either way).
    let ppid = field(&a, "proc.ppid").as_u64().unwrap();
    assert_ne!(ppid, field(&a, "proc.pid").as_u64().unwrap(), "{a}");
    assert!(ppid > 0, "{a}");
}

/// Two processes racing in one new directory: each alert either names the writer it
/// observed, right, or says its actor was inferred; never a wrong process as observed.
#[test]
fn racing_writers_in_a_new_directory_are_never_misnamed_as_observed() {
    if !ready() {
        return;
    }
    let (_dir, agent, first) = watching(BUSYBOX);
    let mut first = Some(first);
    for round in 0..3 {
        let c = first
            .take()
            .unwrap_or_else(|| fresh_container(&agent, BUSYBOX));
        let script = "( read -r p r < /proc/self/stat; echo $p > /etc/ra ) & ( read -r p r < /proc/self/stat; echo $p > /etc/rb ) & wait";
        let (code, out) = c.sh(script);
        assert_eq!(code, 0, "{out}");
        for f in ["/etc/ra", "/etc/rb"] {
            let a = agent.wait_for(f, WAIT, about(&c, f));
            let (_, writer) = c.sh(&format!("cat {f}"));
            let writer: u64 = writer.trim().parse().unwrap();
            assert_eq!(field(&a, "proc.name"), "sh", "round {round}: {a}");
            assert_eq!(
                field(&a, "proc.cmdline"),
                format!("sh -c {script}").as_str(),
                "round {round}: {a}"
            );
            if !detail(&a).contains(INFERRED) {
                assert_eq!(
                    field(&a, "proc.vpid"),
                    writer,
                    "round {round}: observed, so the writer itself: {a}"
                );
            }
        }
    }
}
