//! rpm package databases in real containers: `driftwatch diff` and the live agent list the
//! packages a container added to and removed from the image's rpmdb. The image
//! (tests/images/build.sh, driftwatch-test/rpm:1) carries an rpmdb.sqlite that rpm wrote and,
//! beside it, the database after `rpm -i extra` and `rpm -e legacy`, which the container
//! copies over its own (busybox has no rpm to run), and a write-ahead log in which extra's
//! row is committed but not yet checkpointed, as while rpm runs.

use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const RPM_IMAGE: &str = "driftwatch-test/rpm:1";
const DB: &str = "/var/lib/rpm/rpmdb.sqlite";
const INSTALL: &str = "cp /usr/share/dw-rpm/changed.sqlite /var/lib/rpm/rpmdb.sqlite";

#[test]
fn diff_lists_rpm_packages_added_and_removed() {
    if !require(&[
        Requirement::Root("diff reads the container's layers"),
        Requirement::Docker,
        Requirement::Image(RPM_IMAGE),
    ]) {
        return;
    }
    let c = TestContainer::run(&[RPM_IMAGE, "sleep", "120"]);
    let (code, out) = c.sh(INSTALL);
    assert_eq!(code, 0, "{out}");
    let out = run_cli(DRIFTWATCH, &["diff", "--json", &c.id]);
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diff --json is not JSON ({e}); {}", text(&out)));
    let pkgs: Vec<(String, String, String, String, String)> = r["packages"]
        .as_array()
        .expect("packages array")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("-").to_string();
            (
                s("ecosystem"),
                s("change"),
                s("name"),
                s("image_version"),
                s("version"),
            )
        })
        .collect();
    let row = |c: &str, n: &str, iv: &str, v: &str| {
        ("rpm".into(), c.into(), n.into(), iv.into(), v.into())
    };
    assert_eq!(
        pkgs,
        [
            row("added", "extra", "-", "0.5-1"),
            row("removed", "legacy", "0.9-2", "-"),
        ],
        "{r:#}"
    );
    assert!(
        r["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["location"] == DB),
        "{r:#}"
    );
    assert_eq!(r["unparsed_package_dbs"], serde_json::json!([]), "{r:#}");
    // The text report names them too.
    let out = run_cli(DRIFTWATCH, &["diff", &c.id]);
    let t = text(&out);
    assert!(t.contains("extra") && t.contains("legacy"), "{t}");
    assert!(!t.contains("not parsed"), "{t}");
}

#[test]
fn agent_raises_package_drift_for_rpm() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(RPM_IMAGE),
    ]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, RPM_IMAGE);
    let (code, out) = c.sh(INSTALL);
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("rpm database replaced", Duration::from_secs(20), |a| {
        field(a, "container.id") == c.short() && a["rule"] == "Package drift in container"
    });
    assert!(has_tag(&a, "package_drift"), "{a}");
    assert_eq!(field(&a, "fd.name"), DB, "{a}");
    let output = a["output"].as_str().unwrap_or_default();
    assert!(output.contains("rpm: added extra 0.5-1"), "{output}");
    assert!(output.contains("removed legacy 0.9-2"), "{output}");
}

/// While rpm runs, committed rows are in `rpmdb.sqlite-wal`: the agent reads the log with
/// the database when the database is written.
#[test]
fn agent_reads_committed_rows_from_the_wal() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(RPM_IMAGE),
    ]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, RPM_IMAGE);
    let (code, out) = c.sh(&format!(
        "cp /usr/share/dw-rpm/pending.sqlite-wal {DB}-wal && cat {DB} > /tmp/db && cat /tmp/db > {DB}"
    ));
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("rpm WAL", Duration::from_secs(20), |a| {
        field(a, "container.id") == c.short() && a["rule"] == "Package drift in container"
    });
    let output = a["output"].as_str().unwrap_or_default();
    assert!(output.contains("rpm: added extra 0.5-1"), "{output}");
    assert!(!output.contains("legacy"), "{output}");
}
