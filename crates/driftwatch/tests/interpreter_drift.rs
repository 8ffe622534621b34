//! Interpreter drift, end to end: a script named to a known interpreter (`sh /tmp/s.sh`,
//! `python3 /tmp/e.py`) is judged as a shebang script is, in detect mode (alerted with
//! `drift.subject=script`) and in prevent mode (held at exec, judged, killed before the
//! script's first line). Inline code, modules and the image's own scripts stay quiet.

use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

const RULE: &str = "Run runtime-written script in container";

fn script_in<'a>(c: &'a TestContainer, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.subject") == "script"
            && field(a, "drift.path") == path
    }
}

fn assert_script_alert(a: &Value, verdict: &str, exepath_prefix: &str) {
    assert_eq!(a["rule"], RULE, "{a}");
    assert_eq!(a["priority"], "Critical", "{a}");
    assert_eq!(field(a, "drift.verdict"), verdict, "{a}");
    assert_eq!(field(a, "drift.subject"), "script", "{a}");
    assert!(
        field(a, "proc.exepath")
            .as_str()
            .is_some_and(|p| p.starts_with(exepath_prefix)),
        "the interpreter is the process: {a}"
    );
}

/// The script paths alerted as script drift in `c` so far.
fn script_paths(agent: &AgentProcess, c: &TestContainer) -> Vec<String> {
    agent
        .alerts()
        .iter()
        .filter(|a| {
            has_tag(a, "binary_drift")
                && field(a, "container.id") == c.short()
                && field(a, "drift.subject") == "script"
        })
        .map(|a| field(a, "drift.path").as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn scripts_named_to_interpreters_are_detected() {
    // A prevent-mode test in this file acts on every container of the host.
    let _serial = serial();
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&["--tmpfs", "/scratch:exec", DEBIAN, "sleep", "120"]);

    // What must stay quiet runs first; a drift after it proves it was judged.
    let (code, out) = c.sh(
        "sh -c 'echo hi' && python3 -c 'print(1)' && echo hi | python3 -m base64 && \
         sh /etc/profile && ln -s /etc/profile /tmp/l.sh && sh /tmp/l.sh && \
         { python3 /tmp/missing.py 2>/dev/null; sh /tmp/missing.sh 2>/dev/null; true; } && echo quiet",
    );
    assert_eq!(
        (code, out.trim().lines().last()),
        (0, Some("quiet")),
        "{out}"
    );

    let (code, out) = c.sh("printf 'echo from-sh\\n' > /tmp/s.sh && sh /tmp/s.sh");
    assert_eq!((code, out.trim()), (0, "from-sh"));
    let a = agent.wait_for("sh /tmp/s.sh", WAIT, script_in(&c, "/tmp/s.sh"));
    assert_script_alert(&a, "added", "/usr/bin/dash");
    assert!(
        a["output"]
            .as_str()
            .is_some_and(|o| o.contains("drift_path=/tmp/s.sh")),
        "{a}"
    );
    let quiet = script_paths(&agent, &c);
    assert_eq!(
        quiet,
        ["/tmp/s.sh"],
        "inline code, a module, image scripts (also through a symlink) and missing scripts are not script drift"
    );

    let (code, out) = c.sh("printf 'print(\"from-py\")\\n' > /tmp/e.py && python3 /tmp/e.py");
    assert_eq!((code, out.trim()), (0, "from-py"));
    let a = agent.wait_for("python3 /tmp/e.py", WAIT, script_in(&c, "/tmp/e.py"));
    assert_script_alert(&a, "added", "/usr/bin/python3");

    // Options before the script, and a relative name with `..` from the working directory.
    let (code, out) = c.sh(
        "printf 'echo opts\\n' > /tmp/o.sh && mkdir -p /tmp/sub && cd /tmp/sub && \
         bash -e -o pipefail ../o.sh && sh ./../../tmp/sub/../o.sh",
    );
    assert_eq!((code, out.trim()), (0, "opts\nopts"));
    let a = agent.wait_for(
        "bash -e -o pipefail ../o.sh",
        WAIT,
        script_in(&c, "/tmp/o.sh"),
    );
    assert_script_alert(&a, "added", "/usr/bin/");

    // On a tmpfs; an image script modified in place; deleted before it runs, handed over
    // as an open descriptor.
    for (script, path, verdict) in [
        (
            "printf 'true\\n' > /scratch/t.sh && sh /scratch/t.sh",
            "/scratch/t.sh",
            "tmpfs",
        ),
        (
            "echo 'true' >> /etc/profile && sh /etc/profile",
            "/etc/profile",
            "modified",
        ),
        (
            "printf 'sleep 3\\n' > /tmp/d.sh && exec 3</tmp/d.sh && rm /tmp/d.sh && sh /dev/fd/3",
            "/tmp/d.sh",
            "deleted",
        ),
    ] {
        let (code, out) = c.sh(script);
        assert_eq!(code, 0, "{script}: {out}");
        let a = agent.wait_for(script, WAIT, script_in(&c, path));
        assert_script_alert(&a, verdict, "/usr/bin/dash");
    }

    // Deleted by itself right after start: the shell still holds it open.
    let (code, _) = c.sh("printf 'rm /tmp/self.sh; sleep 3\\n' > /tmp/self.sh && sh /tmp/self.sh");
    assert_eq!(code, 0);
    let a = agent.wait_for("sh /tmp/self.sh", WAIT, script_in(&c, "/tmp/self.sh"));
    assert!(
        ["added", "deleted"].contains(&field(&a, "drift.verdict").as_str().unwrap_or("")),
        "judged before or after its rm: {a}"
    );
}

#[test]
fn busybox_sh_scripts_are_detected() {
    // A prevent-mode test in this file acts on every container of the host.
    let _serial = serial();
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    let (code, out) =
        c.sh("printf 'echo bb\\n' > /tmp/b.sh && busybox sh /tmp/b.sh && sh /tmp/b.sh");
    assert_eq!((code, out.trim()), (0, "bb\nbb"));
    // Both execs (busybox by its own name, then by the shell's) are judged; the image's
    // /bin/sh is busybox, so both run /bin/busybox.
    agent.wait_for("busybox sh /tmp/b.sh", WAIT, |a| {
        script_in(&c, "/tmp/b.sh")(a)
            && field(a, "proc.cmdline")
                .as_str()
                .is_some_and(|l| l.ends_with(" sh /tmp/b.sh"))
    });
    agent.wait_for("sh /tmp/b.sh", WAIT, |a| {
        script_in(&c, "/tmp/b.sh")(a)
            && !field(a, "proc.cmdline")
                .as_str()
                .is_some_and(|l| l.ends_with(" sh /tmp/b.sh"))
    });
    for a in agent
        .alerts()
        .iter()
        .filter(|a| script_in(&c, "/tmp/b.sh")(a))
    {
        assert_script_alert(a, "added", "/bin/busybox");
    }
}

/// Runs `script` and asserts the interpreter was killed (137) before `marker` was made.
fn assert_killed_before(c: &TestContainer, script: &str, marker: &str) {
    let (code, out) = c.sh(script);
    assert_eq!(code, 137, "{script}: {out}");
    let (found, _) = c.sh(&format!("test -e {marker}"));
    assert_ne!(found, 0, "{marker} exists: the script ran ({out})");
}

fn assert_blocked(a: &Value, verdict: &str) {
    assert_eq!(a["rule"], RULE, "{a}");
    assert_eq!(field(a, "drift.verdict"), verdict, "{a}");
    assert_eq!(field(a, "drift.subject"), "script", "{a}");
    assert_eq!(field(a, "drift.enforcement"), "prevent", "{a}");
    assert_eq!(field(a, "drift.action"), "blocked", "{a}");
    assert_eq!(field(a, "drift.blocked_by"), "bpf_hold", "{a}");
    assert!(
        a["output"]
            .as_str()
            .is_some_and(|o| o.contains("action=blocked")),
        "{a}"
    );
}

#[test]
fn scripts_named_to_interpreters_never_run_in_prevent_mode() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let _serial = serial();
    let agent = AgentProcess::start(DRIFTWATCH, &["--enforce", "prevent"]);
    let c = TestContainer::run(&["--tmpfs", "/scratch:exec", DEBIAN, "sleep", "120"]);

    // Image scripts (also through a symlink), inline code and modules run.
    let (code, out) = c.sh(
        "sh /etc/profile && ln -s /etc/profile /tmp/l.sh && sh /tmp/l.sh && \
         sh -c 'echo hi' && python3 -c 'print(1)' && echo hi | python3 -m base64 >/dev/null && \
         python3 /tmp/missing.py 2>/dev/null; echo fine",
    );
    assert_eq!(
        (code, out.trim().lines().last()),
        (0, Some("fine")),
        "{out}"
    );

    assert_killed_before(
        &c,
        "printf 'touch /tmp/ran-sh\\n' > /tmp/s.sh && sh /tmp/s.sh",
        "/tmp/ran-sh",
    );
    assert_blocked(
        &agent.wait_for("sh", WAIT, script_in(&c, "/tmp/s.sh")),
        "added",
    );
    assert_eq!(
        script_paths(&agent, &c),
        ["/tmp/s.sh"],
        "image scripts, inline code, modules and missing scripts are not script drift"
    );

    assert_killed_before(
        &c,
        "printf 'open(\"/tmp/ran-py\", \"w\")\\n' > /tmp/e.py && python3 -u /tmp/e.py",
        "/tmp/ran-py",
    );
    assert_blocked(
        &agent.wait_for("python3", WAIT, script_in(&c, "/tmp/e.py")),
        "added",
    );

    assert_killed_before(
        &c,
        "printf 'touch /tmp/ran-opts\\n' > /tmp/o.sh && bash -e -o pipefail /tmp/o.sh",
        "/tmp/ran-opts",
    );
    assert_blocked(
        &agent.wait_for("bash", WAIT, script_in(&c, "/tmp/o.sh")),
        "added",
    );

    assert_killed_before(
        &c,
        "printf 'touch /tmp/ran-tmpfs\\n' > /scratch/t.sh && sh /scratch/t.sh",
        "/tmp/ran-tmpfs",
    );
    assert_blocked(
        &agent.wait_for("tmpfs", WAIT, script_in(&c, "/scratch/t.sh")),
        "tmpfs",
    );

    assert_killed_before(
        &c,
        "printf 'touch /tmp/ran-deleted\\n' > /tmp/d.sh && exec 3</tmp/d.sh && rm /tmp/d.sh && sh /dev/fd/3",
        "/tmp/ran-deleted",
    );
    assert_blocked(
        &agent.wait_for("deleted", WAIT, script_in(&c, "/tmp/d.sh")),
        "deleted",
    );

    assert_killed_before(
        &c,
        "printf 'touch /tmp/ran-modified\\n' >> /etc/profile && sh /etc/profile",
        "/tmp/ran-modified",
    );
    assert_blocked(
        &agent.wait_for("modified", WAIT, script_in(&c, "/etc/profile")),
        "modified",
    );
}
