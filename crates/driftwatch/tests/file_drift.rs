//! File and package drift, end to end: a real agent, fanotify on real containers' layers.

use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

fn ready() -> bool {
    require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(DEBIAN),
    ])
}

fn about<'a>(c: &'a TestContainer, tag: &'a str, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| has_tag(a, tag) && field(a, "container.id") == c.short() && field(a, "fd.name") == path
}

#[test]
fn writes_below_etc_name_the_file_the_process_and_the_container() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, DEBIAN);
    let (code, out) = c.sh("echo 'evil:x:0:0::/root:/bin/sh' >> /etc/passwd");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "write to /etc/passwd",
        WAIT,
        about(&c, "file_drift", "/etc/passwd"),
    );
    assert_eq!(a["rule"], "Write below etc", "{a}");
    for tag in ["container", "drift", "file_drift"] {
        assert!(has_tag(&a, tag), "{a}");
    }
    assert_eq!(field(&a, "evt.type"), "openat");
    assert_eq!(field(&a, "proc.name"), "sh", "the acting process: {a}");
    assert!(field(&a, "proc.pid").as_u64().is_some_and(|p| p > 0), "{a}");
    assert_eq!(
        field(&a, "container.image.repository"),
        "driftwatch-test/debian"
    );
}

#[test]
fn creations_deletions_and_mode_changes_of_image_files() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, DEBIAN);
    // The first change below an image directory copies the directory up, and entries made
    // before the new directory's mark are caught up by a scan with no actor: so change
    // /usr/bin once, then check that later changes name their process.
    c.sh("touch /usr/bin/.dw && cp /etc/hostname /usr/share/doc/dpkg/.dw");
    std::thread::sleep(Duration::from_millis(500));
    c.sh("chmod 4755 /usr/bin/id && rm /usr/bin/who && rm /usr/share/doc/dpkg/copyright && mkdir -p /root/.ssh && echo key > /root/.ssh/authorized_keys");
    let a = agent.wait_for("chmod", WAIT, |a| {
        about(&c, "file_drift", "/usr/bin/id")(a) && field(a, "evt.type") == "fchmodat"
    });
    assert_eq!(a["rule"], "Write below binary dir");
    assert_eq!(field(&a, "proc.name"), "chmod");
    let a = agent.wait_for("rm /usr/bin/who", WAIT, |a| {
        about(&c, "file_drift", "/usr/bin/who")(a) && field(a, "evt.type") == "unlinkat"
    });
    assert_eq!(field(&a, "proc.name"), "rm");
    let a = agent.wait_for(
        "image file deleted",
        WAIT,
        about(&c, "file_drift", "/usr/share/doc/dpkg/copyright"),
    );
    assert_eq!(a["rule"], "Delete image file in container");
    let a = agent.wait_for(
        "authorized_keys",
        WAIT,
        about(&c, "file_drift", "/root/.ssh/authorized_keys"),
    );
    assert_eq!(a["rule"], "Adding ssh keys to authorized_keys");
}

#[test]
fn copy_ups_and_scratch_files_are_silent() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, DEBIAN);
    // touch and same-mode chmod copy image files up without changing them; /tmp is excluded.
    c.sh("touch /usr/bin/true /etc/hostname.dw 2>/dev/null; touch /usr/bin/true && chmod 755 /usr/bin/env && echo x > /tmp/scratch && rm /tmp/scratch");
    c.sh("echo done >> /etc/dw-marker");
    agent.wait_for("marker", WAIT, about(&c, "file_drift", "/etc/dw-marker"));
    let alerts = agent.alerts();
    let noisy: Vec<&Value> = alerts
        .iter()
        .filter(|a| field(a, "container.id") == c.short() && has_tag(a, "file_drift"))
        .filter(|a| {
            ["/usr/bin/true", "/usr/bin/env", "/tmp/scratch"]
                .iter()
                .any(|p| field(a, "fd.name") == *p)
        })
        .collect();
    assert!(
        noisy.is_empty(),
        "copy-ups without change must be silent: {noisy:?}"
    );
}

#[test]
fn dpkg_install_is_package_drift_with_name_and_version() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, DEBIAN);
    let (code, out) = c.sh(&dpkg_install_script("dw-test-pkg", "1.2.3"));
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("dpkg -i", WAIT, |a| {
        field(a, "container.id") == c.short() && a["rule"] == "Package drift in container"
    });
    assert!(has_tag(&a, "package_drift"), "{a}");
    let output = a["output"].as_str().unwrap();
    assert!(output.contains("added dw-test-pkg 1.2.3"), "{output}");
    assert_eq!(field(&a, "fd.name"), "/var/lib/dpkg/status");
    // The package manager's own exec is package drift too.
    agent.wait_for("dpkg exec", WAIT, |a| {
        field(a, "container.id") == c.short()
            && has_tag(a, "package_drift")
            && field(a, "proc.name") == "dpkg"
    });
    // Removing it is reported against the previous state.
    c.sh("dpkg -r dw-test-pkg >/dev/null");
    let a = agent.wait_for("dpkg -r", WAIT, |a| {
        field(a, "container.id") == c.short()
            && a["rule"] == "Package drift in container"
            && a["output"]
                .as_str()
                .is_some_and(|o| o.contains("removed dw-test-pkg"))
    });
    assert!(has_tag(&a, "package_drift"));
}

#[test]
fn writes_on_volumes_are_file_drift_too() {
    if !ready() {
        return;
    }
    let vol = tempfile::tempdir().unwrap();
    let bind = format!("{}:/etc/cron.d", vol.path().display());
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&["-v", &bind, DEBIAN, "sleep", "120"]);
    // Wait until the container's layers and volume are watched (the marker is on the root).
    let mut ready = false;
    for _ in 0..50 {
        c.sh("echo . >> /etc/dw-ready");
        if agent.alerts().iter().any(|a| {
            field(a, "container.id") == c.short() && field(a, "fd.name") == "/etc/dw-ready"
        }) {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ready, "container never watched");
    let (code, out) = c.sh("echo '* * * * * root /tmp/x' > /etc/cron.d/evil");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "cron.d volume write",
        WAIT,
        about(&c, "file_drift", "/etc/cron.d/evil"),
    );
    assert_eq!(a["rule"], "Schedule Cron Jobs", "{a}");
    assert_eq!(field(&a, "proc.name"), "sh", "{a}");
    // A host process writing into the same directory is not the container drifting.
    std::fs::write(vol.path().join("from-host"), b"x").unwrap();
    c.sh("echo marker > /etc/cron.d/marker");
    agent.wait_for(
        "marker",
        WAIT,
        about(&c, "file_drift", "/etc/cron.d/marker"),
    );
    assert!(
        !agent
            .alerts()
            .iter()
            .any(|a| field(a, "fd.name") == "/etc/cron.d/from-host"),
        "host write reported"
    );
}
