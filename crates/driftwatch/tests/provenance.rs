//! Provenance, end to end: a real agent and real Debian containers. An exec of an image file
//! names the layer it came from and its package; a modified packaged file names its package
//! and says it no longer matches the package's own digest; a file `dpkg -i` installed names
//! that package; a dropped payload names none.

use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

/// An agent in prevent mode acts on every container of the host: this file's tests run one
/// at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The image's diff ids, bottom first, as the engine records them.
fn diff_ids(image: &str) -> Vec<String> {
    let out = docker_ok(&[
        "image",
        "inspect",
        image,
        "--format",
        "{{json .RootFS.Layers}}",
    ]);
    serde_json::from_str(&out).expect("RootFS.Layers is a JSON list")
}

/// A shell script for [`DEBIAN`] that builds a package `name` at `version` holding one
/// executable, `/usr/local/bin/NAME` (a copy of `true`), and installs it with `dpkg -i`.
fn install_tool(name: &str, version: &str) -> String {
    format!(
        "mkdir -p /tmp/pkg/DEBIAN /tmp/pkg/usr/local/bin && cp /usr/bin/true /tmp/pkg/usr/local/bin/{name} \
         && printf 'Package: {name}\\nVersion: {version}\\nArchitecture: all\\nMaintainer: t <t@t>\\nDescription: t\\n' > /tmp/pkg/DEBIAN/control \
         && dpkg-deb --build /tmp/pkg /tmp/dw.deb >/dev/null && dpkg -i /tmp/dw.deb >/dev/null"
    )
}

fn drift_in<'a>(c: &'a TestContainer, path: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.path") == path
    }
}

#[test]
fn an_image_exec_names_its_layer_and_package() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("python.yaml");
    std::fs::write(
        &rules,
        "- rule: Python started in a container\n  desc: any python3 exec\n  condition: \
evt.type=execve and container.id != host and proc.name startswith python3\n  output: \
python %proc.exepath (layer=%drift.layer package=%drift.package \
version=%drift.package_version ecosystem=%drift.package_ecosystem verdict=%drift.verdict)\n  \
priority: NOTICE\n",
    )
    .unwrap();
    let agent = AgentProcess::start(DRIFTWATCH, &["--rules", rules.to_str().unwrap()]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    let (code, out) = c.exec(&["python3", "-c", "pass"]);
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("python3 -c pass", WAIT, |a| {
        a["rule"] == "Python started in a container" && field(a, "container.id") == c.short()
    });
    assert_eq!(field(&a, "proc.exepath"), "/usr/bin/python3.11", "{a}");
    assert_eq!(field(&a, "drift.package"), "python3.11-minimal", "{a}");
    assert_eq!(field(&a, "drift.package_ecosystem"), "dpkg", "{a}");
    assert!(
        field(&a, "drift.package_version")
            .as_str()
            .is_some_and(|v| v.starts_with("3.11")),
        "{a}"
    );
    assert_eq!(field(&a, "drift.verdict"), "image", "{a}");
    let layer = field(&a, "drift.layer").as_str().unwrap_or_default();
    assert!(
        diff_ids(DEBIAN).iter().any(|d| d == layer),
        "drift.layer {layer} is one of the image's diff ids: {a}"
    );
}

#[test]
fn a_modified_packaged_binary_names_its_package_and_mismatch() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let _serial = serial();
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    // Bytes after the ELF's segments change the file, not what it does.
    let (code, out) = c.sh("echo >> /usr/bin/true && /usr/bin/true");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("echo >> /usr/bin/true", WAIT, drift_in(&c, "/usr/bin/true"));
    assert_eq!(field(&a, "drift.verdict"), "modified", "{a}");
    assert_eq!(field(&a, "drift.package"), "coreutils", "{a}");
    assert_eq!(field(&a, "drift.package_digest"), "mismatch", "{a}");
    let layer = field(&a, "drift.layer").as_str().unwrap_or_default();
    assert!(diff_ids(DEBIAN).iter().any(|d| d == layer), "{a}");
    let output = a["output"].as_str().unwrap_or_default();
    assert!(
        output.contains("package=coreutils ") && output.contains("package_digest=mismatch"),
        "{a}"
    );

    // A dropped copy is nobody's: no package, no layer.
    let (code, out) = c.sh("cp /usr/bin/true /tmp/payload && /tmp/payload");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "cp /usr/bin/true /tmp/payload",
        WAIT,
        drift_in(&c, "/tmp/payload"),
    );
    assert_eq!(field(&a, "drift.verdict"), "added", "{a}");
    assert_eq!(field(&a, "drift.package"), &Value::Null, "{a}");
    assert_eq!(field(&a, "drift.layer"), &Value::Null, "{a}");
}

/// `dpkg -i` of a package built in the container: its executable is new to the image, and
/// the alert says which package installed it.
#[test]
fn a_file_installed_by_dpkg_names_the_package() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let _serial = serial();
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    let (code, out) = c.sh(&format!(
        "{} && /usr/local/bin/dwtool",
        install_tool("dwtool", "1.2-3")
    ));
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for(
        "dpkg -i dwtool; dwtool",
        WAIT,
        drift_in(&c, "/usr/local/bin/dwtool"),
    );
    assert_eq!(field(&a, "drift.verdict"), "added", "{a}");
    assert_eq!(field(&a, "drift.package"), "dwtool", "{a}");
    assert_eq!(field(&a, "drift.package_version"), "1.2-3", "{a}");
    assert_eq!(field(&a, "drift.package_digest"), "match", "{a}");
    assert_eq!(field(&a, "drift.layer"), &Value::Null, "{a}");
}

/// `driftwatch diff` (JSON and table) and the evidence bundle name each changed file's
/// package and layer: a modified packaged binary against its package's digest, a file a
/// `dpkg -i` installed with its package, a dropped file with none.
#[test]
fn diff_and_evidence_name_packages_and_layers() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let _serial = serial();
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    let (code, out) = c.sh(&format!(
        "echo >> /usr/bin/true && cp /usr/bin/ls /tmp/dropped && {}",
        dpkg_install_script("dwhello", "0.1-1")
    ));
    assert_eq!(code, 0, "{out}");
    let out = run_cli(DRIFTWATCH, &["diff", "--json", &c.id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("diff --json is JSON");
    let file = |p: &str| {
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .unwrap_or_else(|| panic!("{p} not in the diff: {v}"))
            .clone()
    };
    let t = file("/usr/bin/true");
    assert_eq!(t["change"], "modified", "{t}");
    assert_eq!(t["package"], "coreutils", "{t}");
    assert_eq!(t["package_ecosystem"], "dpkg", "{t}");
    assert_eq!(t["package_digest"], "mismatch", "{t}");
    let ids = diff_ids(DEBIAN);
    assert!(ids.iter().any(|d| t["layer"] == d.as_str()), "{t} {ids:?}");
    let hi = file("/usr/share/dwtest/hi");
    assert_eq!(
        (
            &hi["change"],
            &hi["package"],
            &hi["package_version"],
            &hi["package_digest"]
        ),
        (
            &"added".into(),
            &"dwhello".into(),
            &"0.1-1".into(),
            &"match".into()
        ),
        "{hi}"
    );
    assert_eq!(hi["layer"], Value::Null, "{hi}");
    let d = file("/tmp/dropped");
    assert_eq!(
        (&d["package"], &d["layer"]),
        (&Value::Null, &Value::Null),
        "{d}"
    );

    let out = run_cli(DRIFTWATCH, &["diff", &c.id]);
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("/usr/bin/true"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("package coreutils ") && row.contains("modified against the package"),
        "{row}"
    );
    assert!(row.contains("layer "), "{row}");

    // The evidence bundle's files.json carries them too.
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b.tar.zst");
    let out = run_cli(
        DRIFTWATCH,
        &[
            "capture",
            &c.id,
            "-o",
            b.to_str().unwrap(),
            "--alerts",
            "/dev/null",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    if !require_tools(&["tar", "zstd"]) {
        return;
    }
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let o = std::process::Command::new("tar")
        .arg("--zstd")
        .arg("-xf")
        .arg(&b)
        .arg("-C")
        .arg(&x)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let files: Value =
        serde_json::from_slice(&std::fs::read(x.join("files.json")).unwrap()).unwrap();
    let t = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/usr/bin/true")
        .unwrap_or_else(|| panic!("{files}"));
    assert_eq!(
        (&t["package"], &t["package_digest"]),
        (&"coreutils".into(), &"mismatch".into()),
        "{t}"
    );
    let diff: Value = serde_json::from_slice(&std::fs::read(x.join("diff.json")).unwrap()).unwrap();
    assert!(
        diff["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "/usr/share/dwtest/hi" && f["package"] == "dwhello"),
        "{diff}"
    );
}

/// Files `dpkg -i` writes are reported once dpkg's database lists them, naming the package;
/// the same kind of file copied in by `cp` names none.
#[test]
fn files_a_package_manager_writes_name_the_package() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let _serial = serial();
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    // Seen by the file sensor first: the container is watched before the install.
    let (code, out) = c.sh("cp /usr/bin/true /usr/local/bin/dropped");
    assert_eq!(code, 0, "{out}");
    let dropped = agent.wait_for("cp to /usr/local/bin", WAIT, |a| {
        a["rule"] == "Write below binary dir"
            && field(a, "container.id") == c.short()
            && field(a, "fd.name") == "/usr/local/bin/dropped"
    });
    assert_eq!(field(&dropped, "drift.package"), &Value::Null, "{dropped}");
    let (code, out) = c.sh(&install_tool("dwinst", "2.0-1"));
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("dpkg -i dwinst", WAIT, |a| {
        a["rule"] == "Write below binary dir"
            && field(a, "container.id") == c.short()
            && field(a, "fd.name") == "/usr/local/bin/dwinst"
    });
    assert_eq!(field(&a, "proc.name"), "dpkg", "{a}");
    assert_eq!(field(&a, "drift.package"), "dwinst", "{a}");
    assert_eq!(field(&a, "drift.package_version"), "2.0-1", "{a}");
    assert!(
        a["output"]
            .as_str()
            .unwrap_or_default()
            .contains("package=dwinst "),
        "{a}"
    );
}

/// In prevent mode the modified packaged binary is blocked, and the alert still says whose
/// file it was and that it no longer matches the package.
#[test]
fn a_blocked_exec_names_its_package() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let _serial = serial();
    let agent = AgentProcess::start(DRIFTWATCH, &["--enforce", "prevent"]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "60"]);
    let (code, out) = c.sh("echo >> /usr/bin/true && /usr/bin/true");
    assert_ne!(code, 0, "the modified binary was stopped: {out}");
    let a = agent.wait_for("blocked /usr/bin/true", WAIT, drift_in(&c, "/usr/bin/true"));
    assert_eq!(field(&a, "drift.action"), "blocked", "{a}");
    assert_eq!(field(&a, "drift.verdict"), "modified", "{a}");
    assert_eq!(field(&a, "drift.package"), "coreutils", "{a}");
    assert_eq!(field(&a, "drift.package_digest"), "mismatch", "{a}");
    assert!(
        diff_ids(DEBIAN)
            .iter()
            .any(|d| field(&a, "drift.layer") == d.as_str()),
        "{a}"
    );
}

/// rpm's own digests: in the rpm test image (whose rpmdb lists files it does not ship), a
/// file written with the bytes rpm recorded matches its package, other bytes do not; in the
/// alert and in `driftwatch diff`.
#[test]
fn rpm_owned_files_are_compared_with_rpms_digests() {
    const RPM_IMAGE: &str = "driftwatch-test/rpm:1";
    if !ready_with(&[RPM_IMAGE]) {
        return;
    }
    let _serial = serial();
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[RPM_IMAGE, "sleep", "60"]);
    let (code, out) = c.sh(
        "mkdir -p /usr/bin && printf 'hello /usr/bin/hello\\n' > /usr/bin/hello && echo evil > /usr/bin/tool",
    );
    assert_eq!(code, 0, "{out}");
    let written = |path: &'static str| {
        let c = &c;
        move |a: &Value| {
            a["rule"] == "Write below binary dir"
                && field(a, "container.id") == c.short()
                && field(a, "fd.name") == path
        }
    };
    let a = agent.wait_for("/usr/bin/hello written", WAIT, written("/usr/bin/hello"));
    assert_eq!(field(&a, "drift.package"), "hello", "{a}");
    assert_eq!(field(&a, "drift.package_version"), "1.0-1", "{a}");
    assert_eq!(field(&a, "drift.package_digest"), "match", "{a}");
    let a = agent.wait_for("/usr/bin/tool written", WAIT, written("/usr/bin/tool"));
    assert_eq!(field(&a, "drift.package"), "tool", "{a}");
    assert_eq!(field(&a, "drift.package_digest"), "mismatch", "{a}");

    let out = run_cli(DRIFTWATCH, &["diff", "--json", &c.id]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("diff --json is JSON");
    let tool = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/usr/bin/tool")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        (
            &tool["package"],
            &tool["package_ecosystem"],
            &tool["package_digest"]
        ),
        (&"tool".into(), &"rpm".into(), &"mismatch".into()),
        "{tool}"
    );
}
