//! Binary drift, end to end: a real agent process, real BPF programs, real containers.
//! Each case drifts in its own container and asserts the alert's rule, tags, verdict,
//! container, image and path; the negative cases assert silence, proven by a later marker.

use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

fn binary_drift_in<'a>(c: &'a TestContainer, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.path") == path
    }
}

/// Asserts what every binary-drift alert carries.
fn assert_binary_alert(
    a: &Value,
    c: &TestContainer,
    rule: &str,
    verdict: &str,
    subject: &str,
    image: &str,
) {
    assert_eq!(a["rule"], rule, "{a}");
    assert_eq!(a["priority"], "Critical", "{a}");
    assert_eq!(a["source"], "syscall", "{a}");
    for tag in ["container", "drift", "binary_drift"] {
        assert!(has_tag(a, tag), "tag {tag} missing: {a}");
    }
    assert_eq!(field(a, "drift.verdict"), verdict, "{a}");
    assert_eq!(field(a, "drift.subject"), subject, "{a}");
    assert_eq!(field(a, "container.id"), c.short(), "{a}");
    let (repo, tag) = image.split_once(':').unwrap();
    assert_eq!(field(a, "container.image.repository"), repo, "{a}");
    assert_eq!(field(a, "container.image.tag"), tag, "{a}");
    let name = field(a, "container.name").as_str().unwrap_or_default();
    assert!(
        !name.is_empty() && name != "<NA>",
        "container.name missing: {a}"
    );
    assert!(
        field(a, "container.image.digest")
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{a}"
    );
    assert!(field(a, "proc.pid").as_u64().is_some_and(|p| p > 0), "{a}");
    assert!(
        a["time"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 30),
        "{a}"
    );
    assert!(
        a["output"].as_str().is_some_and(|o| !o.contains('\n')),
        "{a}"
    );
}

#[test]
fn copied_binary_in_writable_layer_is_added() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    let (code, out) = c.sh("cp /bin/busybox /tmp/ls && /tmp/ls / >/dev/null");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "cp /bin/busybox /tmp/ls",
        WAIT,
        binary_drift_in(&c, "/tmp/ls"),
    );
    assert_binary_alert(
        &a,
        &c,
        "Drop and execute new binary in container",
        "added",
        "exe",
        BUSYBOX,
    );
    assert_eq!(field(&a, "proc.exepath"), "/tmp/ls");
    assert_eq!(field(&a, "proc.name"), "ls");
    assert_eq!(field(&a, "user.name"), "root");
    assert!(
        field(&a, "proc.cmdline")
            .as_str()
            .unwrap()
            .starts_with("ls /"),
        "{a}"
    );
}

#[test]
fn written_and_chmodded_file_is_added() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    let (code, out) = c.sh("cat /bin/busybox > /root/echo && chmod +x /root/echo && /root/echo hi");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "written + chmod +x",
        WAIT,
        binary_drift_in(&c, "/root/echo"),
    );
    assert_binary_alert(
        &a,
        &c,
        "Drop and execute new binary in container",
        "added",
        "exe",
        BUSYBOX,
    );
}

#[test]
fn memfd_exec_through_proc_fd_and_execveat() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    let py = |how: &str| {
        format!(
            "import os\nfd = os.memfd_create('payload{how}', 0)\nos.write(fd, open('/usr/bin/true', 'rb').read())\n{}",
            if how == "execve" {
                "os.execv(f'/proc/self/fd/{fd}', ['payload'])"
            } else {
                "os.execve(fd, ['payload'], {})"
            }
        )
    };
    for how in ["execve", "execveat"] {
        let (code, out) = c.exec(&["python3", "-c", &py(how)]);
        assert_eq!(code, 0, "{how}: {out}");
        let path = format!("/memfd:payload{how}");
        let a = agent.wait_for(&path, WAIT, binary_drift_in(&c, &path));
        assert_binary_alert(
            &a,
            &c,
            "Fileless execution via memfd_create",
            "memfd",
            "exe",
            DEBIAN,
        );
    }
}

#[test]
fn tmpfs_and_volume_executables_are_not_the_image() {
    if !ready() {
        return;
    }
    let vol = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data", vol.path().display());
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[
        "--tmpfs",
        "/scratch:exec",
        "-v",
        &bind,
        BUSYBOX,
        "sleep",
        "60",
    ]);
    let (code, out) = c.sh("cp /bin/busybox /scratch/ls && /scratch/ls / >/dev/null && cp /bin/busybox /data/ls && /data/ls / >/dev/null");
    assert_eq!(code, 0, "{out}");
    let rule = "Execute binary from non-image filesystem in container";
    let a = agent.wait_for("/scratch/ls", WAIT, binary_drift_in(&c, "/scratch/ls"));
    assert_binary_alert(&a, &c, rule, "tmpfs", "exe", BUSYBOX);
    let a = agent.wait_for("/data/ls", WAIT, binary_drift_in(&c, "/data/ls"));
    assert_binary_alert(&a, &c, rule, "volume", "exe", BUSYBOX);
}

#[test]
fn deleted_binary_run_through_its_fd() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    // busybox run as "3" finds no applet and fails: the exec itself happened.
    c.sh("cp /bin/busybox /tmp/gone && exec 3</tmp/gone && rm /tmp/gone && /proc/self/fd/3");
    let a = agent.wait_for("deleted /tmp/gone", WAIT, binary_drift_in(&c, "/tmp/gone"));
    assert_binary_alert(
        &a,
        &c,
        "Execute deleted binary in container",
        "deleted",
        "exe",
        BUSYBOX,
    );
}

#[test]
fn runtime_script_is_the_drift_not_its_interpreter() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    let (code, out) = c.sh("printf '#!/bin/sh\\necho scripted\\n' > /tmp/s.sh && chmod +x /tmp/s.sh && cd /tmp && ./s.sh");
    assert_eq!((code, out.trim()), (0, "scripted"));
    let a = agent.wait_for("/tmp/s.sh", WAIT, binary_drift_in(&c, "/tmp/s.sh"));
    assert_binary_alert(
        &a,
        &c,
        "Run runtime-written script in container",
        "added",
        "script",
        BUSYBOX,
    );
    // The interpreter is the image's busybox: no alert names it as drift.
    assert!(!agent.alerts().iter().any(|x| has_tag(x, "binary_drift")
        && field(x, "container.id") == c.short()
        && field(x, "drift.path") == "/bin/busybox"));
}

#[test]
fn runtime_binary_through_the_dynamic_loader() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    let (code, out) =
        c.sh("cp /usr/bin/echo /tmp/x && /lib64/ld-linux-x86-64.so.2 /tmp/x via-loader");
    assert_eq!((code, out.trim()), (0, "via-loader"));
    let a = agent.wait_for("ld.so /tmp/x", WAIT, binary_drift_in(&c, "/tmp/x"));
    assert_binary_alert(
        &a,
        &c,
        "Run runtime-written binary through the dynamic loader in container",
        "added",
        "loader_target",
        DEBIAN,
    );
}

#[test]
fn runtime_library_in_ld_preload() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    let (code, out) = c.sh(
        "cp /usr/lib/x86_64-linux-gnu/libdl.so.2 /tmp/x.so && LD_PRELOAD=/tmp/x.so /usr/bin/true",
    );
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "LD_PRELOAD=/tmp/x.so",
        WAIT,
        binary_drift_in(&c, "/tmp/x.so"),
    );
    assert_binary_alert(
        &a,
        &c,
        "Preload runtime-written library in container",
        "added",
        "preload",
        DEBIAN,
    );
    assert_eq!(field(&a, "proc.exepath"), "/usr/bin/true");
}

/// An image binary overwritten in place is modified, also after it ran: what the agent
/// remembers between execs (the container of a cgroup, the hash of a file by inode and
/// times) never hides a change. The image's binary run in a loop, copied up unchanged and
/// run again, then overwritten in place (the same inode) and run once more: only the last
/// exec is drift.
#[test]
fn image_binary_modified_in_place_is_modified() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    let (code, out) = c.sh(
        "for i in 1 2 3 4 5; do /usr/bin/true; done; touch /usr/bin/true && /usr/bin/true && /usr/bin/true && stat -c %i /usr/bin/true",
    );
    assert_eq!(code, 0, "{out}");
    let copied_up = out.trim().to_string();
    let (code, out) =
        c.sh("cp /usr/bin/echo /usr/bin/true && stat -c %i /usr/bin/true && /usr/bin/true again");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().next(),
        Some(copied_up.as_str()),
        "overwritten in place: the same inode"
    );
    let a = agent.wait_for(
        "/usr/bin/true overwritten after it ran",
        WAIT,
        binary_drift_in(&c, "/usr/bin/true"),
    );
    assert_binary_alert(
        &a,
        &c,
        "Drop and execute new binary in container",
        "modified",
        "exe",
        DEBIAN,
    );
    assert_eq!(field(&a, "proc.cmdline"), "true again", "{a}");
    let drift: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| has_tag(a, "binary_drift") && field(a, "container.id") == c.short())
        .collect();
    assert_eq!(drift.len(), 1, "only the exec after the change: {drift:?}");
}

#[test]
fn image_binaries_and_copy_ups_are_not_drift() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    // The entrypoint and docker exec of image binaries.
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    assert_eq!(c.exec(&["ls", "/"]).0, 0);
    assert_eq!(c.exec(&["/usr/bin/id"]).0, 0);
    // Copied up without a content change: touch, chmod 755 (the overlay says "upper").
    let (code, out) = c.sh("touch /usr/bin/true && /usr/bin/true && chmod 755 /usr/bin/id && /usr/bin/id >/dev/null && chmod 700 /usr/bin/env && /usr/bin/env >/dev/null");
    assert_eq!(code, 0, "{out}");
    // A marker drift after them: once its alert is out, every earlier exec was judged.
    c.sh("cp /usr/bin/echo /tmp/marker && /tmp/marker done");
    agent.wait_for("marker", WAIT, binary_drift_in(&c, "/tmp/marker"));
    let alerts = agent.alerts();
    let drift: Vec<&Value> = alerts
        .iter()
        .filter(|a| has_tag(a, "binary_drift") && field(a, "container.id") == c.short())
        .collect();
    let paths: Vec<&str> = drift
        .iter()
        .filter_map(|a| field(a, "drift.path").as_str())
        .collect();
    assert_eq!(
        paths,
        ["/tmp/marker"],
        "only the marker may be drift: {drift:?}"
    );
}

#[test]
fn short_lived_container_is_named_even_after_it_exited() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    // Drift in the container's first milliseconds, then exit.
    let c = TestContainer::run(&[
        BUSYBOX,
        "sh",
        "-c",
        "cp /bin/busybox /tmp/quick && /tmp/quick",
    ]);
    docker(&["wait", &c.id]);
    let a = agent.wait_for(
        "drift right at start",
        WAIT,
        binary_drift_in(&c, "/tmp/quick"),
    );
    assert_binary_alert(
        &a,
        &c,
        "Drop and execute new binary in container",
        "added",
        "exe",
        BUSYBOX,
    );
}

#[test]
fn host_processes_are_not_binary_drift() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("hostbin");
    std::fs::copy("/bin/true", &x).unwrap();
    assert!(std::process::Command::new(&x).status().unwrap().success());
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    c.sh("cp /bin/busybox /tmp/marker2 && /tmp/marker2");
    agent.wait_for("marker", WAIT, binary_drift_in(&c, "/tmp/marker2"));
    let host = x.display().to_string();
    assert!(
        !agent
            .alerts()
            .iter()
            .any(|a| field(a, "proc.exepath") == host.as_str()),
        "a host exec alerted"
    );
}
