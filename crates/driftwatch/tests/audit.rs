//! `driftwatch audit` as CI runs it: the built binary on the fixture manifests in
//! tests/fixtures/k8s, its exit status and its three output formats. No root needed.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/k8s")
        .join(name)
}

fn audit(args: &[&str], paths: &[PathBuf]) -> Output {
    Command::new(DRIFTWATCH)
        .arg("audit")
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_good_manifest_passes_clean() {
    let out = audit(&["--fail-on", "info"], &[fixture("good.yaml")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 files, 3 documents, 1 workloads: 0 errors, 0 warnings, 0 info"),
        "{stdout}"
    );
    assert!(stdout.contains("not audited (no pods): Service (1)"));
}

#[test]
fn the_bad_manifest_fails_with_positioned_findings_and_fixes() {
    let out = audit(&[], &[fixture("bad.yaml")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout);
    for want in [
        "bad.yaml document 1 (shop/templates/deployment.yaml): Deployment shop/web",
        "  container app\n    warning DW-K8S-001 18:13  spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem",
        "  container migrate (init)",
        "error   DW-K8S-006 19:13  spec.template.spec.containers[0].securityContext.privileged",
        "DW-K8S-007 21:15",
        "DW-K8S-004 16:18  spec.template.spec.containers[0].image",
        "DW-K8S-005 29:11  spec.template.spec.volumes[0].emptyDir.sizeLimit",
        "error   DW-K8S-009 31:11  spec.template.spec.volumes[1].hostPath",
        "DW-K8S-010 40:5",
        "namespace shop not in the input: cannot check its Pod Security label",
        "  fix DW-K8S-001:\n      securityContext:\n        readOnlyRootFilesystem: true",
        "2 errors, 13 warnings, 1 info",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    // Only errors fail: the privileged container and the hostPath still do.
    assert_eq!(
        audit(&["--fail-on", "error"], &[fixture("bad.yaml")])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        audit(&["--fail-on", "never"], &[fixture("bad.yaml")])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn json_and_sarif() {
    let out = audit(
        &["--format", "json"],
        &[fixture("bad.yaml"), fixture("good.yaml")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"], 2);
    assert_eq!(v["summary"]["error"], 2);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "DW-K8S-009")
        .unwrap();
    assert_eq!(f["document"], 1);
    assert_eq!(f["line"], 31);
    assert_eq!(f["column"], 11);
    assert_eq!(f["path"], "spec.template.spec.volumes[1].hostPath");
    assert!(f["file"].as_str().unwrap().ends_with("bad.yaml"));
    assert!(f["fix"].as_str().unwrap().contains("emptyDir"));

    let out = audit(&["--format", "sarif"], &[fixture("bad.yaml")]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "driftwatch");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 16);
    for r in results {
        assert!(r["ruleId"].as_str().unwrap().starts_with("DW-K8S-"));
        let region = &r["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().unwrap() > 1);
        assert!(region["startColumn"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn bad_input_exits_2_with_a_positioned_error() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "kind: Pod\nspec:\n  containers: [\n    {name: a\n").unwrap();
    let out = audit(&[], &[broken]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("broken.yaml:"), "{t}");
    assert!(t.contains("document 1: invalid YAML"), "{t}");

    let bin = dir.path().join("bin.yaml");
    std::fs::write(&bin, b"\x7fELF\x00\x00").unwrap();
    let out = audit(&["--format", "json"], &[bin, fixture("good.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("binary file")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("bin.yaml:1:5: binary file"));

    let out = audit(&[], &[dir.path().join("missing.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("missing.yaml: cannot read"));

    // No path at all is a usage error from clap.
    let out = audit(&[], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn directories_and_stdin() {
    let out = audit(&[], &[fixture("")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 files, 5 documents, 2 workloads"));

    use std::io::Write;
    let mut child = Command::new(DRIFTWATCH)
        .args(["audit", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(fixture("good.yaml")).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 errors, 0 warnings"));
}

#[test]
fn help_has_examples() {
    let out = Command::new(DRIFTWATCH)
        .args(["audit", "--help"])
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("helm template my-release ./chart | driftwatch audit -"),
        "{t}"
    );
    assert!(t.contains("--fail-on"));
}
