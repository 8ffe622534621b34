//! The seed document's four Falco rules, loaded verbatim on top of the default macros, each
//! firing on the behaviour it describes and staying quiet otherwise.

mod synthetic;

use driftwatch_model::EventKind;
use driftwatch_rules::{RuleSet, Source};
use synthetic::*;

const SEED: &str = include_str!("../../../tests/fixtures/rules/seed_rules.yaml");

fn seed() -> RuleSet {
    let loaded = RuleSet::load_with_defaults(&[Source::new("seed_rules.yaml", SEED)])
        .unwrap_or_else(|ds| {
            panic!(
                "{}",
                ds.iter().map(|d| d.render()).collect::<Vec<_>>().join("\n")
            )
        });
    assert!(
        loaded.warnings.is_empty(),
        "{:?}",
        loaded
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
    );
    loaded.ruleset
}

fn fires(rs: &RuleSet, e: &driftwatch_model::Event, rule: &str) -> bool {
    fired(rs, e).iter().any(|r| r == rule)
}

const DRIFT: &str = "Drift Detected (Container Image Modified Binary)";
const SHELL: &str = "Container Shell Spawned";
const PKG: &str = "Package Manager Execution in Container";
const WRITE: &str = "Container File System Write";

#[test]
fn the_fixture_holds_the_seeds_four_rules() {
    // tests/fixtures/rules/seed_rules.yaml is the specification's four rules, copied
    // verbatim (its header names the source document).
    assert_eq!(SEED.matches("- rule:").count(), 4);
    for rule in [DRIFT, SHELL, PKG, WRITE] {
        assert!(SEED.contains(&format!("- rule: {rule}")), "{rule}");
    }
}

#[test]
fn new_binary_in_upper_layer_fires_drift_detected() {
    let rs = seed();
    let mut e = exec("/tmp/xmrig", &["/tmp/xmrig", "-o", "pool"], "bash");
    e.process.exe_upper_layer = true;
    assert!(fires(&rs, &e, DRIFT));
    let a = rs.alert(rs.find(DRIFT).unwrap(), &e, "node-1");
    assert_eq!(
        a.output,
        "08:00:00.123456789: Warning Drift detected: new binary executed in container (user=root command=xmrig -o pool \
         container=web image=nginx:1.27 exe_path=/tmp/xmrig)"
    );
    // Image binaries, host processes and the runtime's own entrypoint do not fire.
    e.process.exe_upper_layer = false;
    assert!(!fires(&rs, &e, DRIFT));
    e.process.exe_upper_layer = true;
    assert!(!fires(&rs, &on_host(e.clone()), DRIFT));
    e.process.ancestors = vec!["runc:[1:CHILD]".into()];
    assert!(!fires(&rs, &e, DRIFT));
}

#[test]
fn shell_spawned_by_an_application_fires() {
    let rs = seed();
    let e = exec("/bin/bash", &["bash", "-i"], "node");
    assert!(fires(&rs, &e, SHELL));
    let a = rs.alert(rs.find(SHELL).unwrap(), &e, "node-1");
    assert_eq!(
        a.output,
        "08:00:00.123456789: Warning Shell spawned in container (user=root shell=bash container=web image=nginx)"
    );
    assert!(!fires(
        &rs,
        &exec("/usr/bin/python3", &["python3"], "node"),
        SHELL
    ));
    assert!(!fires(
        &rs,
        &exec("/bin/sh", &["sh"], "containerd-shim"),
        SHELL
    ));
    assert!(!fires(
        &rs,
        &on_host(exec("/bin/bash", &["bash"], "sshd")),
        SHELL
    ));
}

#[test]
fn package_managers_fire() {
    let rs = seed();
    for (exe, argv) in [
        ("/usr/bin/apt-get", vec!["apt-get", "install", "-y", "nmap"]),
        ("/sbin/apk", vec!["apk", "add", "curl"]),
        ("/usr/local/bin/pip", vec!["pip", "install", "requests"]),
        ("/usr/bin/npm", vec!["npm", "i", "left-pad"]),
    ] {
        let e = exec(exe, &argv, "bash");
        assert!(fires(&rs, &e, PKG), "{exe}");
    }
    assert!(!fires(
        &rs,
        &exec("/usr/sbin/nginx", &["nginx"], "containerd-shim"),
        PKG
    ));
    assert!(!fires(
        &rs,
        &on_host(exec("/usr/bin/apt-get", &["apt-get"], "bash")),
        PKG
    ));
    let rs_pri = rs.rule(rs.find(PKG).unwrap());
    assert_eq!(rs_pri.priority, driftwatch_model::Priority::Error);
}

#[test]
fn file_writes_outside_tmp_log_proc_fire() {
    let rs = seed();
    let w = |p: &str| file_event(EventKind::Open, p, true, "/usr/sbin/nginx");
    assert!(fires(&rs, &w("/usr/share/nginx/html/index.html"), WRITE));
    assert!(fires(&rs, &w("/etc/passwd"), WRITE));
    for quiet in [
        "/tmp/x",
        "/var/log/nginx/access.log",
        "/proc/self/attr/current",
    ] {
        assert!(!fires(&rs, &w(quiet), WRITE), "{quiet}");
    }
    // Reads, directories, other event types and the host are not writes in a container.
    assert!(!fires(
        &rs,
        &file_event(EventKind::Open, "/etc/passwd", false, "/bin/cat"),
        WRITE
    ));
    let mut dir = w("/srv");
    dir.file.as_mut().unwrap().typechar = 'd';
    assert!(!fires(&rs, &dir, WRITE));
    assert!(!fires(
        &rs,
        &file_event(EventKind::Unlink, "/etc/passwd", false, "/bin/rm"),
        WRITE
    ));
    assert!(!fires(&rs, &on_host(w("/etc/passwd")), WRITE));
}
