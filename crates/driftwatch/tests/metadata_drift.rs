//! Verdict `metadata`, end to end: an image file the image did not make executable gets an
//! execute bit in the container (`chmod +x`) and runs. Its bytes are the image's, so content
//! alone would call it a copy-up; the image's mode says it never was a program. Real agent,
//! real containers, in detect mode (reported, it ran) and prevent mode (refused, EPERM).

use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

const RULE: &str = "Execute image file made executable in container";

/// An ELF program the image ships as data (mode 0644): `touch`'s bytes under another name.
const DATA_ELF: &str = "/opt/dw-data.bin";

/// A script the image ships as data (mode 0644), with a shebang.
const DATA_SCRIPT: &str = "/opt/dw-data.sh";

/// Shell commands the image ships as data (mode 0644), without a shebang: made executable and
/// started from a shell, the kernel refuses the format (`ENOEXEC`) and the shell reads it.
const DATA_PLAIN: &str = "/opt/dw-data.txt";

/// The Debian test image plus [`DATA_ELF`], built offline with `docker commit`. The copy is
/// made while building the image: in the tests the file runs with the image's bytes.
fn image_with_a_non_executable_elf() -> TestImage {
    let name = format!("driftwatch-test/metadata-drift:{}", std::process::id());
    let base = TestContainer::run(&[
        DEBIAN,
        "sh",
        "-c",
        &format!(
            "cp /usr/bin/touch {DATA_ELF} && chmod 0644 {DATA_ELF} && \
             printf '#!/bin/sh\\ntouch /tmp/ran-script\\n' > {DATA_SCRIPT} && \
             chmod 0644 {DATA_SCRIPT} && echo 'touch /tmp/ran-plain' > {DATA_PLAIN} && \
             chmod 0644 {DATA_PLAIN}"
        ),
    ]);
    assert_eq!(docker_ok(&["wait", &base.id]), "0", "building the fixture");
    docker_ok(&["commit", &base.id, &name]);
    TestImage(name)
}

fn about<'a>(c: &'a TestContainer, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.path") == path
    }
}

fn assert_metadata(a: &Value, subject: &str) {
    assert_eq!(a["rule"], RULE, "{a}");
    assert_eq!(a["priority"], "Critical", "{a}");
    assert_eq!(field(a, "drift.verdict"), "metadata", "{a}");
    assert_eq!(field(a, "drift.subject"), subject, "{a}");
    assert_eq!(field(a, "drift.detail"), "mode 0644 -> 0755", "{a}");
    // The bytes are the image's: both hashes are there and equal.
    assert!(field(a, "drift.hash").is_string(), "{a}");
    assert_eq!(field(a, "drift.hash"), field(a, "drift.image_hash"), "{a}");
}

/// `chmod 755` of a file the image already made executable, then run: not drift. Then the
/// image's data file made executable and run: reported, in the mode the agent runs in.
fn scenario(agent: &AgentProcess, c: &TestContainer, prevent: bool) {
    let (code, out) = c.sh("chmod 700 /usr/bin/id && chmod 755 /usr/bin/id && /usr/bin/id -u");
    assert_eq!(code, 0, "an image program re-moded still runs: {out}");
    let (code, out) = c.sh(&format!(
        "chmod +x {DATA_ELF} && {DATA_ELF} /tmp/ran-metadata"
    ));
    let (ran, _) = c.sh("test -e /tmp/ran-metadata");
    let a = agent.wait_for("metadata", WAIT, about(c, DATA_ELF));
    assert_metadata(&a, "exe");
    if prevent {
        assert_eq!(code, 126, "refused before it ran: {out}");
        assert!(out.contains("Operation not permitted"), "{out}");
        assert_ne!(ran, 0, "the refused program ran");
        assert_eq!(field(&a, "drift.action"), "blocked", "{a}");
        assert_eq!(field(&a, "drift.blocked_by"), "fanotify_deny", "{a}");
    } else {
        assert_eq!((code, ran), (0, 0), "detect mode lets it run: {out}");
        assert_eq!(field(&a, "drift.action"), "alerted", "{a}");
        assert!(field(&a, "proc.pid").as_u64().is_some_and(|p| p > 0), "{a}");
    }
    // The re-moded image program raised nothing: it ran before the drifted one.
    let noisy: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| has_tag(a, "binary_drift") && field(a, "container.id") == c.short())
        .filter(|a| field(a, "drift.path") == "/usr/bin/id")
        .collect();
    assert!(noisy.is_empty(), "{noisy:?}");
}

#[test]
fn an_image_file_made_executable_and_run_is_reported_in_detect_mode() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    // The prevent-mode test's agent acts on every container of the host: not at once.
    let _serial = serial();
    let image = image_with_a_non_executable_elf();
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, &image.0);
    scenario(&agent, &c, false);
    // A script the image ships as data, made executable and run by its shebang: the
    // script is the drift (its interpreter is the image's).
    let (code, out) = c.sh(&format!("chmod +x {DATA_SCRIPT} && {DATA_SCRIPT}"));
    assert_eq!(code, 0, "detect mode lets it run: {out}");
    let a = agent.wait_for("metadata script", WAIT, about(&c, DATA_SCRIPT));
    assert_metadata(&a, "script");
}

#[test]
fn an_image_file_made_executable_is_refused_in_prevent_mode() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let _serial = serial();
    let image = image_with_a_non_executable_elf();
    let agent = AgentProcess::start(DRIFTWATCH, &["--enforce", "prevent"]);
    let c = watched_container(&agent, &image.0);
    scenario(&agent, &c, true);
    // A script made executable: the kernel opens it for exec (its shebang names the
    // interpreter), and that open is refused.
    let (code, out) = c.sh(&format!("chmod +x {DATA_SCRIPT} && {DATA_SCRIPT}"));
    assert_eq!(code, 126, "{out}");
    let (ran, _) = c.sh("test -e /tmp/ran-script");
    assert_ne!(ran, 0, "the refused script ran");
    let a = agent.wait_for("metadata script", WAIT, about(&c, DATA_SCRIPT));
    assert_metadata(&a, "script");
    assert_eq!(field(&a, "drift.action"), "blocked", "{a}");
    // Without a shebang: the exec's open is refused before the kernel looks at the format,
    // so the shell gets EPERM, not ENOEXEC, and does not fall back to reading it.
    let (code, out) = c.sh(&format!("chmod +x {DATA_PLAIN} && {DATA_PLAIN}"));
    assert_eq!(code, 126, "{out}");
    let (ran, _) = c.sh("test -e /tmp/ran-plain");
    assert_ne!(ran, 0, "the shell ran the refused file's commands");
    let a = agent.wait_for("metadata plain", WAIT, about(&c, DATA_PLAIN));
    assert_metadata(&a, "exe");
}
