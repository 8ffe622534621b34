//! Config drift, end to end: a real agent process and real containers. Risky settings alert
//! at container start (`evt.type=container`), once; a hardened container raises none; an
//! exported `LD_PRELOAD` alerts per exec while a variable the image's own ENV sets does not;
//! a bind-mounted secret written from inside the container alerts, naming the file.

use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

/// A config-drift alert of container `c` about `subject` (and `path`, when given).
fn config_drift_in<'a>(
    c: &'a TestContainer,
    subject: &'a str,
    path: Option<&'a str>,
) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        has_tag(a, "config_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.subject") == subject
            && path.is_none_or(|p| field(a, "drift.path") == p)
    }
}

/// Asserts what every config-drift alert carries.
fn assert_config_alert(a: &Value, c: &TestContainer, rule: &str, priority: &str, image: &str) {
    assert_eq!(a["rule"], rule, "{a}");
    assert_eq!(a["priority"], priority, "{a}");
    for tag in ["container", "drift", "config_drift"] {
        assert!(has_tag(a, tag), "tag {tag} missing: {a}");
    }
    assert!(
        a["tags"].as_array().is_some_and(|t| t
            .iter()
            .any(|x| x.as_str().is_some_and(|s| s.starts_with("mitre_")))),
        "{a}"
    );
    assert_eq!(field(a, "container.id"), c.short(), "{a}");
    let (repo, tag) = image.split_once(':').unwrap();
    assert_eq!(field(a, "container.image.repository"), repo, "{a}");
    assert_eq!(field(a, "container.image.tag"), tag, "{a}");
    assert!(
        field(a, "drift.detail")
            .as_str()
            .is_some_and(|d| !d.is_empty() && d != "<NA>"),
        "{a}"
    );
    assert!(
        a["output"].as_str().is_some_and(|o| !o.contains('\n')),
        "{a}"
    );
}

fn config_alerts_of(agent: &AgentProcess, c: &TestContainer) -> Vec<Value> {
    agent
        .alerts()
        .into_iter()
        .filter(|a| has_tag(a, "config_drift") && field(a, "container.id") == c.short())
        .collect()
}

/// `docker create` then `docker start`, tolerating a start the host refuses (a privileged
/// container cannot start where the agent's own capability bounding set lacks some): the
/// engine's Created event already carries the configuration.
fn create_then_try_start(args: &[&str]) -> TestContainer {
    let c = TestContainer::create(args);
    let _ = docker(&["start", &c.id]);
    c
}

/// Busybox with `ENV PYTHONPATH=/app` in the image's own config, built offline with
/// `docker commit --change`.
fn busybox_with_image_pythonpath() -> TestImage {
    let name = format!("driftwatch-test/config-drift-env:{}", std::process::id());
    let base = create_then_try_start(&[BUSYBOX, "true"]);
    let out = docker(&["commit", "--change", "ENV PYTHONPATH=/app", &base.id, &name]);
    assert!(
        out.status.success(),
        "docker commit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    TestImage(name)
}

#[test]
fn risky_settings_alert_at_start() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let cases: [(&[&str], &str, &str, &str, &str); 5] = [
        (
            &["--privileged"],
            "privileged",
            "privileged",
            "Launch Privileged Container",
            "Critical",
        ),
        (
            &["--cap-add", "SYS_ADMIN"],
            "cap_add",
            "CAP_SYS_ADMIN",
            "Launch Excessively Capable Container",
            "Error",
        ),
        (
            &["-v", "/var/run/docker.sock:/var/run/docker.sock"],
            "sensitive_mount",
            "/var/run/docker.sock",
            "Container with host control mounted",
            "Critical",
        ),
        (
            &["--pid", "host"],
            "host_namespace",
            "pid",
            "Container sharing host PID namespace",
            "Critical",
        ),
        (
            &["-e", "EXTRA=1"],
            "env",
            "EXTRA",
            "Container environment differs from image",
            "Notice",
        ),
    ];
    for (args, subject, path, rule, priority) in cases {
        let mut all = args.to_vec();
        all.extend([BUSYBOX, "sleep", "60"]);
        let c = create_then_try_start(&all);
        let a = agent.wait_for(rule, WAIT, config_drift_in(&c, subject, Some(path)));
        assert_config_alert(&a, &c, rule, priority, BUSYBOX);
        assert_eq!(a["source"], "syscall", "{a}");
        assert!(
            field(&a, "proc.cmdline")
                .as_str()
                .is_some_and(|s| s.starts_with("sleep 60")),
            "the init process as configured: {a}"
        );
        if subject == "env" {
            assert_eq!(field(&a, "drift.verdict"), "added", "{a}");
            // Values of ordinary variables are not shown (environments carry credentials).
            let detail = field(&a, "drift.detail").as_str().unwrap();
            assert!(detail.contains("EXTRA=<value not shown>"), "{a}");
        }
        // Once per start: the Created and Started events (and the listing) say it once.
        std::thread::sleep(Duration::from_millis(500));
        let same: Vec<Value> = config_alerts_of(&agent, &c)
            .into_iter()
            .filter(|a| field(a, "drift.subject") == subject && field(a, "drift.path") == path)
            .collect();
        assert_eq!(same.len(), 1, "{same:#?}");
    }
}

#[test]
fn hardened_container_raises_no_config_drift() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let quiet = TestContainer::run(&["--read-only", "--user", "1000", BUSYBOX, "sleep", "60"]);
    assert_eq!(quiet.exec(&["/bin/true"]).0, 0);
    // A later container's start alert proves the quiet one was judged (engine events are
    // handled in order).
    let marker = TestContainer::run(&[
        "--read-only",
        "--user",
        "1000",
        "-e",
        "MARKER=1",
        BUSYBOX,
        "sleep",
        "60",
    ]);
    agent.wait_for(
        "the marker's env",
        WAIT,
        config_drift_in(&marker, "env", Some("MARKER")),
    );
    let marker_alerts = config_alerts_of(&agent, &marker);
    assert_eq!(marker_alerts.len(), 1, "only MARKER: {marker_alerts:#?}");
    let alerts = config_alerts_of(&agent, &quiet);
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn a_default_container_gets_weak_posture_notices() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[BUSYBOX, "sleep", "60"]);
    let a = agent.wait_for(
        "writable root fs",
        WAIT,
        config_drift_in(&c, "writable_rootfs", Some("/")),
    );
    assert_config_alert(
        &a,
        &c,
        "Container with writable root filesystem",
        "Notice",
        BUSYBOX,
    );
    assert_eq!(field(&a, "drift.verdict"), "image", "{a}");
    let a = agent.wait_for("root user", WAIT, config_drift_in(&c, "root_user", None));
    assert_config_alert(&a, &c, "Container Run as Root User", "Notice", BUSYBOX);
}

#[test]
fn exported_ld_preload_alerts_per_exec() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    let (code, out) = c.sh("LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libdl.so.2 /usr/bin/true");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "LD_PRELOAD exported by a shell",
        WAIT,
        config_drift_in(&c, "env", Some("LD_PRELOAD")),
    );
    assert_config_alert(
        &a,
        &c,
        "LD_PRELOAD set for process in container",
        "Warning",
        DEBIAN,
    );
    assert_eq!(field(&a, "proc.exepath"), "/usr/bin/true", "{a}");
    assert_eq!(field(&a, "drift.verdict"), "added", "{a}");
    assert_eq!(
        field(&a, "proc.env[LD_PRELOAD]"),
        "/usr/lib/x86_64-linux-gnu/libdl.so.2",
        "{a}"
    );
    // The library is the image's: no binary drift for it.
    assert!(
        !agent
            .alerts()
            .iter()
            .any(|x| has_tag(x, "binary_drift") && field(x, "container.id") == c.short()),
        "image library preloaded is not binary drift"
    );
}

#[test]
fn image_env_is_quiet_per_exec_container_env_alerts_once_at_start() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);

    // PYTHONPATH from the image's own ENV: no alert at start, none per exec.
    let image = busybox_with_image_pythonpath();
    let from_image =
        TestContainer::run(&["--read-only", "--user", "1000", &image.0, "sleep", "60"]);
    let (code, out) = from_image.sh("test \"$PYTHONPATH\" = /app && /bin/true");
    assert_eq!(code, 0, "the exec carries the image's PYTHONPATH: {out}");
    // A changed value is drift, and is the marker that the earlier execs were judged.
    let (code, out) = from_image.exec(&["env", "PYTHONPATH=/tmp/mods", "/bin/true"]);
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "PYTHONPATH changed from the image's",
        WAIT,
        config_drift_in(&from_image, "env", Some("PYTHONPATH")),
    );
    assert_eq!(
        a["rule"], "Code search path set for process in container",
        "{a}"
    );
    assert_eq!(field(&a, "drift.verdict"), "modified", "{a}");
    assert!(
        field(&a, "drift.detail")
            .as_str()
            .is_some_and(|d| d.contains("/tmp/mods") && d.contains("\"/app\"")),
        "{a}"
    );
    let all = config_alerts_of(&agent, &from_image);
    assert_eq!(all.len(), 1, "only the changed value: {all:#?}");

    // PYTHONPATH from `docker run -e` (container config, not image config): once at start,
    // not on every exec.
    let from_run = TestContainer::run(&[
        "--read-only",
        "--user",
        "1000",
        "-e",
        "PYTHONPATH=/app",
        BUSYBOX,
        "sleep",
        "60",
    ]);
    let a = agent.wait_for(
        "PYTHONPATH from docker run -e",
        WAIT,
        config_drift_in(&from_run, "env", Some("PYTHONPATH")),
    );
    assert_config_alert(
        &a,
        &from_run,
        "Code-loading variable in container configuration",
        "Warning",
        BUSYBOX,
    );
    assert_eq!(from_run.exec(&["/bin/true"]).0, 0);
    assert_eq!(
        from_run
            .exec(&["env", "LD_LIBRARY_PATH=/tmp", "/bin/true"])
            .0,
        0
    );
    agent.wait_for(
        "marker exec",
        WAIT,
        config_drift_in(&from_run, "env", Some("LD_LIBRARY_PATH")),
    );
    let pythonpath: Vec<Value> = config_alerts_of(&agent, &from_run)
        .into_iter()
        .filter(|a| field(a, "drift.path") == "PYTHONPATH")
        .collect();
    assert_eq!(pythonpath.len(), 1, "{pythonpath:#?}");
}

#[test]
fn mounted_secret_written_from_inside_alerts() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token");
    let ro = dir.path().join("ro.conf");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::write(&ro, "x=1\n").unwrap();
    let c = TestContainer::run(&[
        "-v",
        &format!("{}:/run/secrets/token", secret.display()),
        "-v",
        &format!("{}:/etc/ro.conf:ro", ro.display()),
        BUSYBOX,
        "sleep",
        "60",
    ]);
    // Its start alerts are out: its mounts are watched.
    agent.wait_for("start", WAIT, config_drift_in(&c, "root_user", None));
    let (code, _) = c.sh("echo x >> /etc/ro.conf");
    assert_ne!(code, 0, "a read-only mount cannot be written");
    let (code, out) = c.sh("echo hacked > /run/secrets/token");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "secret written",
        WAIT,
        config_drift_in(&c, "mounted_file", Some("/run/secrets/token")),
    );
    assert_config_alert(
        &a,
        &c,
        "Mounted secret or config file changed in container",
        "Warning",
        BUSYBOX,
    );
    assert_eq!(field(&a, "fd.name"), "/run/secrets/token", "{a}");
    assert_eq!(field(&a, "drift.verdict"), "modified", "{a}");
    assert!(
        field(&a, "drift.detail")
            .as_str()
            .is_some_and(|d| d.contains("writer is not known")),
        "{a}"
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "hacked\n");
}
