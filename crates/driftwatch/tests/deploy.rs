//! The Kubernetes manifests and the Helm chart, checked with our own `driftwatch audit`: the
//! agent legitimately needs some privileges (host PID, host paths, capabilities, root), and
//! those, and only those, are what the audit reports. The chart is rendered with Helm's own
//! engine (scripts/helm-template: the helm-python-sdk wheel from PyPI, libhelm inside).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use driftwatch_testkit::{repo_root, require_that};

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

/// (rule, object kind, YAML path) of every finding `driftwatch audit` reports for `input`.
fn audit(args: &[&str], stdin: Option<&str>) -> (i32, BTreeSet<(String, String, String)>) {
    let mut child = Command::new(DRIFTWATCH)
        .arg("audit")
        .args(args)
        .args(["--format", "json"])
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "audit output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    let findings = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["object"]["kind"].as_str().unwrap_or_default().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (out.status.code().unwrap_or(-1), findings)
}

fn set(items: &[(&str, &str, &str)]) -> BTreeSet<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

const SC: &str = "spec.template.spec.containers[0].securityContext";

/// What the DaemonSet needs and the audit rightly names (docs/kubernetes.md "DaemonSet" explains each).
fn daemonset_findings() -> Vec<(&'static str, &'static str, String)> {
    let mut v = vec![
        // root: capabilities are granted to uid 0 only
        ("DW-K8S-003", "DaemonSet", format!("{SC}.runAsNonRoot")),
        // BPF, PERFMON, SYS_ADMIN, SYS_PTRACE, DAC_READ_SEARCH, KILL, NET_ADMIN
        ("DW-K8S-007", "DaemonSet", format!("{SC}.capabilities.add")),
        // built locally; pin by digest once pushed (image.digest in the chart)
        (
            "DW-K8S-004",
            "DaemonSet",
            "spec.template.spec.containers[0].image".to_string(),
        ),
    ];
    // bpffs, containerd run dir and content, state, logs
    for i in 1..=5 {
        v.push((
            "DW-K8S-009",
            "DaemonSet",
            format!("spec.template.spec.volumes[{i}].hostPath"),
        ));
    }
    v
}

fn owned(v: Vec<(&'static str, &'static str, String)>) -> BTreeSet<(String, String, String)> {
    v.into_iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c))
        .collect()
}

#[test]
fn the_daemonset_manifest_has_exactly_the_expected_findings() {
    let (code, found) = audit(&["deploy/kubernetes/"], None);
    assert_eq!(code, 1, "findings exit 1");
    let mut want = owned(daemonset_findings());
    // the agent's namespace runs at the privileged Pod Security level
    want.extend(set(&[(
        "DW-K8S-010",
        "Namespace",
        "metadata.labels[\"pod-security.kubernetes.io/enforce\"]",
    )]));
    assert_eq!(found, want);
}

#[test]
fn the_manifest_declares_every_object_the_agent_needs() {
    let text =
        std::fs::read_to_string(repo_root().join("deploy/kubernetes/driftwatch.yaml")).unwrap();
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet"
        ]
    );
    // The ConfigMap's config.yaml names only keys of the configuration schema's sections.
    for section in ["engines:", "outputs:", "enforcement:", "response:", "api:"] {
        assert!(text.contains(&format!("    {section}\n")), "{section}");
    }
    // The probes run the binary the image installs.
    assert_eq!(
        text.matches(r#"command: ["/usr/bin/driftwatch", "health"]"#)
            .count(),
        3
    );
    let containerfile =
        std::fs::read_to_string(repo_root().join("packaging/container/Containerfile")).unwrap();
    assert!(containerfile.contains("COPY driftwatch /usr/bin/driftwatch"));
}

/// `scripts/helm-template ARGS` (Helm's engine); None when it cannot run here.
fn helm_template(args: &[&str]) -> Option<String> {
    let out = Command::new(repo_root().join("scripts/helm-template"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    if !out.status.success() {
        let why = format!(
            "scripts/helm-template {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // In CI, scripts/deps installed it: a failure there is a real failure.
        require_that(Err(why));
        return None;
    }
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn the_helm_chart_lints_renders_and_has_the_same_findings_as_the_manifest() {
    let Some(yaml) = helm_template(&[
        "--lint",
        "drift",
        "deploy/helm/driftwatch",
        "--namespace",
        "security",
    ]) else {
        return;
    };
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
    ] {
        assert!(
            yaml.contains(&format!("\nkind: {kind}\n")),
            "{kind} missing:\n{yaml}"
        );
    }
    assert!(
        !yaml.contains("kind: Namespace"),
        "namespace.create defaults to false"
    );
    let (code, found) = audit(&["-"], Some(&yaml));
    assert_eq!(code, 1);
    let mut want = owned(daemonset_findings());
    // the release namespace is not in the output (info): label it as NOTES.txt says
    want.extend(set(&[("DW-K8S-011", "Namespace", "metadata.namespace")]));
    assert_eq!(found, want, "{yaml}");
}

#[test]
fn helm_values_change_what_the_audit_sees() {
    let values = r#"{"namespace": {"create": true},
        "image": {"repository": "registry.example/driftwatch", "digest": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        "hostPaths": {"docker": true},
        "probes": {"enabled": false},
        "playbook": null}"#;
    let Some(yaml) = helm_template(&[
        "drift",
        "deploy/helm/driftwatch",
        "--namespace",
        "security",
        "--set-json",
        values,
    ]) else {
        return;
    };
    assert!(
        yaml.contains("image: \"registry.example/driftwatch@sha256:0123"),
        "{yaml}"
    );
    assert!(
        !yaml.contains("livenessProbe"),
        "probes.enabled=false: {yaml}"
    );
    assert!(!yaml.contains("playbook.yaml"), "playbook: null: {yaml}");
    let (_, found) = audit(&["-"], Some(&yaml));
    let mut want = owned(daemonset_findings());
    // pinned by digest now
    want.retain(|(rule, _, _)| rule != "DW-K8S-004");
    // the docker socket and data root: two more host paths (volumes 4 and 5; state and
    // logs move to 6 and 7)
    want.extend(set(&[
        (
            "DW-K8S-009",
            "DaemonSet",
            "spec.template.spec.volumes[6].hostPath",
        ),
        (
            "DW-K8S-009",
            "DaemonSet",
            "spec.template.spec.volumes[7].hostPath",
        ),
        (
            "DW-K8S-010",
            "Namespace",
            "metadata.labels[\"pod-security.kubernetes.io/enforce\"]",
        ),
    ]));
    assert_eq!(found, want, "{yaml}");
}
