//! Attacks on the exec verdict through the paths a container chooses: `chroot`, `pivot_root`
//! and mount namespaces made inside it. Each runs a dropped payload under a path the image
//! has (`/bin/ls`, `/usr/bin/true`), where a verdict by the task's own path would find the
//! image's file; the agent must judge the file the kernel ran, and say `unjudged` where it
//! cannot tell, never nothing.

use serde_json::Value;

use super::*;

const WAIT: Duration = Duration::from_secs(20);

/// What a container needs to make mount namespaces and mounts of its own.
const MOUNT_CAPS: &[&str] = &[
    "--cap-add",
    "SYS_ADMIN",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
];

fn with_caps(caps: &[&str], name: Option<&str>, image: &str) -> TestContainer {
    let mut args: Vec<&str> = caps.to_vec();
    if let Some(n) = name {
        args.extend(["--name", n]);
    }
    args.extend([image, "sleep", "300"]);
    TestContainer::run(&args)
}

fn binary_alert_in<'a>(c: &'a TestContainer, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.path") == path
    }
}

fn any_alert_in<'a>(c: &'a TestContainer, paths: &'a [&'a str]) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.path")
                .as_str()
                .is_some_and(|p| paths.contains(&p))
    }
}

/// The binary-drift alert for `path` in `c`.
fn alert_for(agent: &AgentProcess, c: &TestContainer, path: &str) -> Value {
    agent.wait_for(path, WAIT, binary_alert_in(c, path))
}

fn assert_verdict(a: &Value, rule: &str, verdict: &str, subject: &str) {
    assert_eq!(a["rule"], rule, "{a}");
    assert_eq!(field(a, "drift.verdict"), verdict, "{a}");
    assert_eq!(field(a, "drift.subject"), subject, "{a}");
}

/// One attack in a fresh busybox container (with `caps`): `script` ends by running the
/// payload as `ls -d /`, whose output proves it ran; returns the container and the alert
/// naming `path`.
fn ls_attack(
    agent: &AgentProcess,
    caps: &[&str],
    script: &str,
    path: &str,
) -> (TestContainer, Value) {
    let c = with_caps(caps, None, BUSYBOX);
    let (code, out) = c.sh(script);
    assert_eq!((code, out.trim()), (0, "/"), "{script}");
    let a = agent.wait_for(script, WAIT, binary_alert_in(&c, path));
    (c, a)
}

/// In its own mount namespace, a payload bound over an image binary, run (marker
/// `/tmp/ran-bind`).
const BIND_PAYLOAD: &str = "cp /usr/bin/touch /tmp/payload && \
    unshare -m sh -c 'mount --bind /tmp/payload /usr/bin/true && /usr/bin/true /tmp/ran-bind'";

/// In its own mount namespace, a script bound over an image script, run (marker
/// `/tmp/ran-script`).
const BIND_SCRIPT: &str = "printf '#!/bin/sh\\ntouch /tmp/ran-script\\n' > /tmp/s.sh && \
    chmod +x /tmp/s.sh && \
    unshare -m sh -c 'mount --bind /tmp/s.sh /usr/bin/ldd && /usr/bin/ldd'";

const DROP: &str = "Drop and execute new binary in container";
const UNJUDGED: &str = "Unjudged code executed in container";

/// The attack: a copy of busybox as `/bin/ls` in a chroot. The task's path is
/// `/bin/ls`, the image's; the file is `/tmp/r/bin/ls` of the writable layer.
#[test]
fn chroot_runs_a_dropped_binary_under_an_image_path() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let (_c, a) = ls_attack(
        &agent,
        &[],
        "mkdir -p /tmp/r/bin && cp /bin/busybox /tmp/r/bin/ls && busybox chroot /tmp/r /bin/ls -d /",
        "/tmp/r/bin/ls",
    );
    assert_verdict(&a, DROP, "added", "exe");
    assert_eq!(field(&a, "proc.exepath"), "/tmp/r/bin/ls", "{a}");
    assert_eq!(a["priority"], "Critical", "{a}");
    Aftermath { agent: &agent }.assert_all();
}

/// A chroot into a copy of the image's own directories: every file there is a copy in the
/// writable layer, whatever names it has inside the chroot.
#[test]
fn chroot_into_a_copied_image_dir() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    // /bin/ls is a symlink to /bin/busybox: inside the chroot, to /tmp/c/bin/busybox.
    let (_c, a) = ls_attack(
        &agent,
        &[],
        "mkdir -p /tmp/c && cp -a /bin /tmp/c/ && busybox chroot /tmp/c /bin/ls -d /",
        "/tmp/c/bin/busybox",
    );
    assert_verdict(&a, DROP, "added", "exe");
    Aftermath { agent: &agent }.assert_all();
}

/// A chroot inside a chroot: the inner one's paths are relative to neither the container's
/// root nor the outer chroot's.
#[test]
fn nested_chroots() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let (c, a) = ls_attack(
        &agent,
        &[],
        "mkdir -p /tmp/n/bin /tmp/n/m/bin && cp /bin/busybox /tmp/n/bin/busybox && \
         cp /bin/busybox /tmp/n/m/bin/ls && \
         busybox chroot /tmp/n /bin/busybox chroot /m /bin/ls -d /",
        "/tmp/n/m/bin/ls",
    );
    assert_verdict(&a, DROP, "added", "exe");
    let a = alert_for(&agent, &c, "/tmp/n/bin/busybox");
    assert_verdict(&a, DROP, "added", "exe");
    Aftermath { agent: &agent }.assert_all();
}

/// A mount namespace made inside the container, with a payload bound over an image binary
/// and a script bound over an image script. The kernel's path for the binary is the
/// payload's place in the writable layer; the script is named by a path the agent's view of
/// the container's mounts does not cover, so an image file there proves nothing.
#[test]
fn unshare_and_bind_mounts_over_image_paths() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = with_caps(MOUNT_CAPS, None, DEBIAN);
    let (code, out) = c.sh(BIND_PAYLOAD);
    assert_eq!(code, 0, "{out}");
    let (ran, _) = c.sh("test -e /tmp/ran-bind");
    assert_eq!(ran, 0, "the attack itself must have run");
    let a = alert_for(&agent, &c, "/tmp/payload");
    assert_verdict(&a, DROP, "added", "exe");

    let (code, out) = c.sh(BIND_SCRIPT);
    assert_eq!(code, 0, "{out}");
    let a = alert_for(&agent, &c, "/usr/bin/ldd");
    assert_verdict(&a, UNJUDGED, "unjudged", "script");
    assert_eq!(a["priority"], "Warning", "{a}");
    Aftermath { agent: &agent }.assert_all();
}

/// `pivot_root` into a directory of the writable layer (bind-mounted onto itself): the new
/// root's `/bin/ls` is `/tmp/u/bin/ls` of the overlay.
#[test]
fn pivot_root_into_an_upper_dir() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let (_c, a) = ls_attack(
        &agent,
        MOUNT_CAPS,
        "mkdir -p /tmp/u/bin /tmp/u/old && cp /bin/busybox /tmp/u/bin/ls && \
         busybox unshare -m sh -c 'mount --bind /tmp/u /tmp/u && cd /tmp/u && \
         pivot_root . old && exec /bin/ls -d /'",
        "/tmp/u/bin/ls",
    );
    assert_verdict(&a, DROP, "added", "exe");
    Aftermath { agent: &agent }.assert_all();
}

/// `pivot_root` into a tmpfs mounted inside the container: not the image's filesystem,
/// whatever the path.
#[test]
fn pivot_root_into_a_tmpfs() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let (_c, a) = ls_attack(
        &agent,
        MOUNT_CAPS,
        "mkdir -p /tmp/t && busybox unshare -m sh -c 'mount -t tmpfs none /tmp/t && \
         mkdir -p /tmp/t/bin /tmp/t/old && cp /bin/busybox /tmp/t/bin/ls && cd /tmp/t && \
         pivot_root . old && exec /bin/ls -d /'",
        "/bin/ls",
    );
    assert_verdict(
        &a,
        "Execute binary from non-image filesystem in container",
        "tmpfs",
        "exe",
    );
    Aftermath { agent: &agent }.assert_all();
}

/// A changed image binary moved away right after exec, or run from a path deeper than the
/// kernel's walk: the path no longer names the executed file. Reported `unjudged`, never
/// accepted silently. An added file deleted right after exec stays `added` (nothing of the
/// image is at stake).
#[test]
fn files_moved_or_deleted_right_after_exec_are_not_silent() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "300"]);
    // 70 levels: deeper than the walk's 64 steps, so the kernel's path lacks its top.
    let deep = format!("/tmp{}", "/d".repeat(70));
    let (code, out) = c.sh(&format!(
        "mkdir -p {deep} && cp /usr/bin/touch /usr/bin/yes && mv /usr/bin/yes {deep}/yes && \
         {deep}/yes /tmp/ran-deep"
    ));
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("a changed image binary run from deep down", WAIT, |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.path")
                .as_str()
                .is_some_and(|p| p.ends_with("/d/d/yes"))
    });
    assert_verdict(&a, UNJUDGED, "unjudged", "exe");

    // Moved right after exec: judged before the move, it is `modified`; after, `unjudged`.
    let (code, out) = c.sh(
        "cp /usr/bin/sleep /usr/bin/nice && (/usr/bin/nice 1 & mv /usr/bin/nice /tmp/nice; wait)",
    );
    assert_eq!(code, 0, "{out}");
    // Moved while the exec was still under way, the kernel's path is already the new one
    // (`added` there: the image has no file at /tmp/nice).
    let a = agent.wait_for(
        "moved right after exec",
        WAIT,
        any_alert_in(&c, &["/usr/bin/nice", "/tmp/nice"]),
    );
    let verdict = field(&a, "drift.verdict").as_str().unwrap_or_default();
    assert!(matches!(verdict, "modified" | "unjudged" | "added"), "{a}");

    // Added, then removed right after exec.
    let (code, out) = c.sh("cp /usr/bin/sleep /tmp/gone && (/tmp/gone 1 & rm /tmp/gone; wait)");
    assert_eq!(code, 0, "{out}");
    let a = alert_for(&agent, &c, "/tmp/gone");
    // The `rm` can win the race with the exec itself: then the kernel already reports no
    // links left, which is the deleted-binary verdict. Either way it is alerted, not silent.
    if field(&a, "drift.verdict") == "deleted" {
        assert_verdict(&a, "Execute deleted binary in container", "deleted", "exe");
    } else {
        assert_verdict(&a, DROP, "added", "exe");
    }
    Aftermath { agent: &agent }.assert_all();
}

/// The same attacks in a prevent-mode container: refused before they run. A scope puts only
/// the attacker in prevent mode, so the bystander of the aftermath checks is detected as
/// usual.
#[test]
fn prevention_refuses_chroot_bind_and_pivot_root_payloads() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "default: detect\n\
         scopes:\n  - match: {containers: [\"dw-chroot-prevent-*\"]}\n    mode: prevent\n",
    )
    .unwrap();
    let agent = AgentProcess::start(
        DRIFTWATCH,
        &["--enforcement-policy", policy.to_str().unwrap()],
    );
    let suffix = std::process::id();
    let debian_name = format!("dw-chroot-prevent-d{suffix}");
    let busybox_name = format!("dw-chroot-prevent-b{suffix}");
    let d = with_caps(MOUNT_CAPS, Some(&debian_name), DEBIAN);
    let b = with_caps(MOUNT_CAPS, Some(&busybox_name), BUSYBOX);

    // Runs `script`, which must fail, and checks that `marker` was never made.
    let refused = |c: &TestContainer, script: &str, marker: &str| {
        let (code, out) = c.sh(script);
        assert_ne!(code, 0, "{script}: {out}");
        let (found, _) = c.sh(&format!("test -e {marker}"));
        assert_ne!(found, 0, "{marker} exists: the payload ran ({out})");
    };
    let blocked_as_one_of = |a: &Value, verdicts: &[&str], subject: &str| {
        let v = field(a, "drift.verdict").as_str().unwrap_or_default();
        assert!(verdicts.contains(&v), "{a}");
        assert_eq!(field(a, "drift.subject"), subject, "{a}");
        assert_eq!(field(a, "drift.enforcement"), "prevent", "{a}");
        assert_eq!(field(a, "drift.action"), "blocked", "{a}");
    };
    let blocked = |a: &Value, verdict: &str, subject: &str| {
        assert_eq!(field(a, "drift.verdict"), verdict, "{a}");
        assert_eq!(field(a, "drift.subject"), subject, "{a}");
        assert_eq!(field(a, "drift.enforcement"), "prevent", "{a}");
        assert_eq!(field(a, "drift.action"), "blocked", "{a}");
    };

    // chroot: the exec is refused by fanotify, whose path is the container's, not the
    // chroot's.
    refused(
        &b,
        "mkdir -p /tmp/r/bin && cp /bin/busybox /tmp/r/bin/touch && \
         busybox chroot /tmp/r /bin/touch /ran-chroot",
        "/tmp/r/ran-chroot",
    );
    let a = alert_for(&agent, &b, "/tmp/r/bin/touch");
    blocked(&a, "added", "exe");

    // A payload bound over an image binary in a new mount namespace: fanotify's path is the
    // image's /usr/bin/true, but the file is not.
    refused(&d, BIND_PAYLOAD, "/tmp/ran-bind");
    // fanotify names the file by the bind mount (the image's path, judged `unjudged`: it is
    // not the image's inode) or by its place in the layer (`added`); refused either way.
    let a = agent.wait_for(
        "bind over /usr/bin/true",
        WAIT,
        any_alert_in(&d, &["/usr/bin/true", "/tmp/payload"]),
    );
    blocked_as_one_of(&a, &["unjudged", "added"], "exe");

    // A script bound over an image script.
    refused(&d, BIND_SCRIPT, "/tmp/ran-script");
    let a = agent.wait_for(
        "script bound over ldd",
        WAIT,
        any_alert_in(&d, &["/usr/bin/ldd", "/tmp/s.sh"]),
    );
    blocked_as_one_of(&a, &["unjudged", "added"], "script");

    // pivot_root into a writable-layer directory: the new root's /bin/ls.
    refused(
        &b,
        "mkdir -p /tmp/u/bin /tmp/u/old && cp /bin/busybox /tmp/u/bin/touch && \
         busybox unshare -m sh -c 'mount --bind /tmp/u /tmp/u && cd /tmp/u && \
         pivot_root . old && exec /bin/touch /old/tmp/ran-pivot'",
        "/tmp/ran-pivot",
    );
    let a = alert_for(&agent, &b, "/bin/touch");
    blocked(&a, "unjudged", "exe");

    // pivot_root into a tmpfs mounted inside, after the container was marked: fanotify is
    // not asked about it; the kernel holds the exec, the agent kills it before it runs.
    let (code, out) = b.sh(
        "mkdir -p /tmp/t && busybox unshare -m sh -c 'mount -t tmpfs none /tmp/t && \
         mkdir -p /tmp/t/bin /tmp/t/old && cp /bin/busybox /tmp/t/bin/touch && cd /tmp/t && \
         pivot_root . old && exec /bin/touch /old/tmp/ran-tmpfs'",
    );
    assert_eq!(code, 137, "killed before it ran: {out}");
    let (found, _) = b.sh("test -e /tmp/ran-tmpfs");
    assert_ne!(found, 0, "the tmpfs payload ran ({out})");
    let a = agent.wait_for("pivot_root into a tmpfs", WAIT, |a| {
        binary_alert_in(&b, "/bin/touch")(a) && field(a, "drift.verdict") == "tmpfs"
    });
    blocked(&a, "tmpfs", "exe");
    assert_eq!(field(&a, "drift.blocked_by"), "bpf_hold", "{a}");

    // The image's own programs still run in a chroot (here, of the image's root).
    let (code, out) = d.sh("chroot / /usr/bin/true && echo fine");
    let (code2, out2) = b.sh("busybox chroot / /bin/true && echo fine");
    assert_eq!((code2, out2.trim()), (0, "fine"));
    assert_eq!((code, out.trim()), (0, "fine"));
    Aftermath { agent: &agent }.assert_all();
}
