//! The Kubernetes manifests and the Helm chart, checked with our own `driftwatch audit` (the
//! agent legitimately needs some privileges: host PID, host paths, capabilities, root; those,
//! and only those, are what the audit reports), against Kubernetes' own OpenAPI schemas of
//! every supported version (scripts/k8s-validate), and by the agent itself: the config file,
//! playbook and rule files the pod would see load. The chart is rendered with Helm's own
//! engine (scripts/helm-template: the helm-python-sdk wheel from PyPI, libhelm inside).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use driftwatch_testkit::{repo_root, require_that};

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

/// Runs `cmd` with `input` on its standard input; its output.
fn piped(cmd: &mut Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// (rule, object kind, YAML path) of every finding `driftwatch audit` reports for `input`.
fn audit(args: &[&str], stdin: Option<&str>) -> (i32, BTreeSet<(String, String, String)>) {
    let out = piped(
        Command::new(DRIFTWATCH)
            .arg("audit")
            .args(args)
            .args(["--format", "json"])
            .current_dir(repo_root()),
        stdin.unwrap_or_default(),
    );
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
    // bpffs, the host's cgroupfs (freeze), containerd run dir and content, state, logs
    for i in 1..=6 {
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
            "Service",
            "DaemonSet"
        ]
    );
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
    helm_template_result(args).map(|r| r.unwrap_or_else(|e| panic!("{e}")))
}

/// The chart rendered with `values` (JSON) into release `drift`, namespace `security`; Err
/// with Helm's message when the chart refuses the values (its `fail`s).
fn render_with(values: &str) -> Option<Result<String, String>> {
    helm_template_result(&[
        "drift",
        "deploy/helm/driftwatch",
        "--namespace",
        "security",
        "--set-json",
        values,
    ])
}

/// [`render_with`] after `helm lint --strict` with the same values passed (panics otherwise;
/// lint reports a template's `fail` only as information, so refusals are tested unlinted).
fn linted_render(values: &str) -> Option<String> {
    helm_template(&[
        "--lint",
        "drift",
        "deploy/helm/driftwatch",
        "--namespace",
        "security",
        "--set-json",
        values,
    ])
}

/// `scripts/helm-template ARGS`: Ok(manifests), Err(Helm's message) when the template fails;
/// None when the tool cannot run here.
fn helm_template_result(args: &[&str]) -> Option<Result<String, String>> {
    if !require_that(helm_tools()) {
        return None;
    }
    let out = Command::new(repo_root().join("scripts/helm-template"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    if out.status.success() {
        Some(Ok(String::from_utf8(out.stdout).unwrap()))
    } else {
        Some(Err(format!(
            "scripts/helm-template {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// The renderer's and validator's venv, installed (in CI, scripts/deps did it).
fn helm_tools() -> Result<(), String> {
    let out = Command::new(repo_root().join("scripts/helm-template"))
        .arg("--install")
        .output()
        .map_err(|e| format!("scripts/helm-template --install: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "scripts/helm-template --install (helm-python-sdk, kubernetes-validate from PyPI): {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
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
    // the docker socket and data root: two more host paths (volumes 5 and 6; state and
    // logs move to 7 and 8)
    want.extend(set(&[
        (
            "DW-K8S-009",
            "DaemonSet",
            "spec.template.spec.volumes[7].hostPath",
        ),
        (
            "DW-K8S-009",
            "DaemonSet",
            "spec.template.spec.volumes[8].hostPath",
        ),
        (
            "DW-K8S-010",
            "Namespace",
            "metadata.labels[\"pod-security.kubernetes.io/enforce\"]",
        ),
    ]));
    assert_eq!(found, want, "{yaml}");
}

/// `scripts/k8s-validate --json -` over `yaml`: Ok(the objects) when every object is valid
/// against the OpenAPI schemas of every supported Kubernetes version, Err(the validator's
/// errors) when one is not; None when the validator cannot run here.
fn k8s_validate(yaml: &str) -> Option<Result<Vec<Value>, String>> {
    if !require_that(helm_tools()) {
        return None;
    }
    let out = piped(
        Command::new(repo_root().join("scripts/k8s-validate")).args(["--json", "-"]),
        yaml,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Some(Ok(serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("k8s-validate --json: {e}: {stderr}")))),
        Some(1) => Some(Err(stderr)),
        _ => panic!("scripts/k8s-validate could not run: {stderr}"),
    }
}

/// The chart linted and rendered with `values` (JSON), every object valid (panics
/// otherwise); None when the tools cannot run here.
fn valid_release(values: &str) -> Option<Vec<Value>> {
    let yaml = linted_render(values)?;
    valid_objects(&format!("the chart with {values}"), &yaml)
}

/// The objects of `yaml`, each valid for every supported Kubernetes version (panics with the
/// validator's errors otherwise).
fn valid_objects(what: &str, yaml: &str) -> Option<Vec<Value>> {
    k8s_validate(yaml).map(|r| r.unwrap_or_else(|e| panic!("{what} is invalid:\n{e}\n{yaml}")))
}

fn the<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let mut of_kind = objects.iter().filter(|o| o["kind"] == kind);
    let one = of_kind.next().unwrap_or_else(|| panic!("no {kind}"));
    assert!(of_kind.next().is_none(), "more than one {kind}");
    one
}

/// The objects' kinds, sorted (Helm orders them by template file).
fn kinds(objects: &[Value]) -> Vec<&str> {
    let mut kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    kinds
}

/// The DaemonSet's volume `name`.
fn volume<'a>(ds: &'a Value, name: &str) -> &'a Value {
    ds["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
}

fn agent(ds: &Value) -> &Value {
    &ds["spec"]["template"]["spec"]["containers"][0]
}

/// Runs the binary under test with `args`; (exit code, stdout and stderr).
fn driftwatch(args: &[&str]) -> (i32, String) {
    let out = Command::new(DRIFTWATCH).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Lays the DaemonSet's config volume out in `dir` as the kubelet would at /etc/driftwatch
/// (each item's ConfigMap key at its path) and checks it with the agent's own loaders:
/// `config validate` reads config.yaml and the playbook and rule files it names, with
/// /etc/driftwatch read as `dir`. Returns config.yaml's text.
fn check_config_volume(objects: &[Value], dir: &Path) -> String {
    let ds = the(objects, "DaemonSet");
    let config = &volume(ds, "config")["configMap"];
    let map = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == config["name"])
        .unwrap_or_else(|| panic!("no ConfigMap {}", config["name"]));
    let data = map["data"].as_object().unwrap();
    let etc = dir.display().to_string();
    let items: Vec<(String, String)> = match config["items"].as_array() {
        Some(items) => items
            .iter()
            .map(|i| {
                (
                    i["key"].as_str().unwrap().to_string(),
                    i["path"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
        None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
    };
    for (key, path) in &items {
        let text = data
            .get(key)
            .unwrap_or_else(|| panic!("the volume names key {key}, the ConfigMap has none"))
            .as_str()
            .unwrap()
            .replace("/etc/driftwatch/", &format!("{etc}/"));
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
    }
    let config_file = dir.join("config.yaml");
    let mut text = std::fs::read_to_string(&config_file).unwrap();
    assert!(!text.contains("\nrules:"), "{text}");
    // rules.directory's default, /etc/driftwatch/rules.d, read in `dir` like the rest.
    text.push_str(&format!("rules:\n  directory: {etc}/rules.d\n"));
    std::fs::write(&config_file, &text).unwrap();
    let (code, out) = driftwatch(&["config", "validate", config_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{text}");
    text
}

#[test]
fn the_manifest_is_valid_for_every_supported_kubernetes_version_and_its_config_loads() {
    let text =
        std::fs::read_to_string(repo_root().join("deploy/kubernetes/driftwatch.yaml")).unwrap();
    let Some(objects) = valid_objects("deploy/kubernetes/driftwatch.yaml", &text) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = check_config_volume(&objects, dir.path());
    // kubectl logs: Falco JSON lines; the API on loopback, metrics alone on the pod IP.
    assert!(config.contains("    format: json\n"), "{config}");
    assert!(config.contains("  listen: 127.0.0.1:7878\n"), "{config}");
    assert!(
        config.contains("  metrics_listen: 0.0.0.0:9879\n"),
        "{config}"
    );
    let ds = the(&objects, "DaemonSet");
    assert_metrics_port(&objects, ds, 9879);
    assert_eq!(
        agent(ds)["securityContext"]["seLinuxOptions"],
        serde_json::json!({"type": "spc_t"})
    );
}

/// The Service (when `service`) reaches the container's `metrics` port, which is the port
/// the config's metrics listener binds.
fn assert_metrics_port(objects: &[Value], ds: &Value, port: u64) {
    let ports = agent(ds)["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1, "only the metrics port: {ports:?}");
    assert_eq!(ports[0]["name"], "metrics");
    assert_eq!(ports[0]["containerPort"], port);
    let svc = the(objects, "Service");
    assert_eq!(svc["spec"]["clusterIP"], "None");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(svc["spec"]["ports"][0]["port"], port);
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "the Service selects the agent pods by {k}");
    }
}

#[test]
fn the_validator_fails_on_an_invalid_manifest() {
    let text =
        std::fs::read_to_string(repo_root().join("deploy/kubernetes/driftwatch.yaml")).unwrap();
    // An unknown field (a typo) and a wrong type, each in a different object.
    let broken = text
        .replacen("      hostPID: true\n", "      hostPid: true\n", 1)
        .replacen("      port: 9879\n", "      port: \"9879\"\n", 1);
    assert_ne!(broken, text);
    let Some(result) = k8s_validate(&broken) else {
        return;
    };
    let errors = result.expect_err("the broken manifest must not validate");
    for want in [
        "DaemonSet driftwatch: Kubernetes 1.30: spec.template.spec: Additional properties are not allowed ('hostPid' was unexpected)",
        "DaemonSet driftwatch: Kubernetes 1.37:",
        "Service driftwatch-metrics: Kubernetes 1.30: spec.ports.0.port: '9879' is not of type 'integer'",
    ] {
        assert!(errors.contains(want), "{want}\n{errors}");
    }
    // A kind Kubernetes does not have is an error too (only CRDs named as such are let by).
    let Some(result) = k8s_validate("apiVersion: apps/v1\nkind: DaemonSett\nmetadata: {name: x}\n")
    else {
        return;
    };
    let errors = result.expect_err("an unknown kind must not validate");
    assert!(errors.contains("has no apps/v1 DaemonSett"), "{errors}");
    // OpenShift's SecurityContextConstraints: a typo'd field (so a required one is missing) and
    // a strategy admission does not know.
    let Some(Ok(yaml)) = render_with(r#"{"openshift": {"scc": {"create": true}}}"#) else {
        return;
    };
    let broken = yaml
        .replacen("allowHostPID: true\n", "allowHostPid: true\n", 1)
        .replacen(
            "runAsUser:\n  type: RunAsAny\n",
            "runAsUser:\n  type: Any\n",
            1,
        );
    assert_ne!(broken, yaml);
    let Some(result) = k8s_validate(&broken) else {
        return;
    };
    let errors = result.expect_err("the broken SecurityContextConstraints must not validate");
    for want in [
        "SecurityContextConstraints drift-driftwatch: OpenShift security.openshift.io/v1: (object): Additional properties are not allowed ('allowHostPid' was unexpected)",
        "SecurityContextConstraints drift-driftwatch: OpenShift security.openshift.io/v1: (object): 'allowHostPID' is a required property",
        "SecurityContextConstraints drift-driftwatch: OpenShift security.openshift.io/v1: runAsUser.type: 'Any' is not one of",
    ] {
        assert!(errors.contains(want), "{want}\n{errors}");
    }
    // The prometheus-operator's kinds: a typo'd field, then a malformed interval.
    let Some(Ok(yaml)) = render_with(r#"{"metrics": {"podMonitor": {"enabled": true}}}"#) else {
        return;
    };
    assert!(yaml.contains("      interval: 30s\n"), "{yaml}");
    for (broken, want) in [
        (
            "      interval: 30s\n      honorLabel: true\n",
            "PodMonitor drift-driftwatch: prometheus-operator monitoring.coreos.com/v1: spec.podMetricsEndpoints.0.honorLabel: unknown field",
        ),
        (
            "      interval: 30 seconds\n",
            "PodMonitor drift-driftwatch: prometheus-operator monitoring.coreos.com/v1: spec.podMetricsEndpoints.0.interval: String should match pattern",
        ),
    ] {
        let Some(result) = k8s_validate(&yaml.replace("      interval: 30s\n", broken)) else {
            return;
        };
        let errors = result.expect_err(broken);
        assert!(errors.contains(want), "{want}\n{errors}");
    }
}

#[test]
fn the_chart_with_default_values_is_valid_and_its_config_loads() {
    let Some(objects) = valid_release("{}") else {
        return;
    };
    assert_eq!(
        kinds(&objects),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet",
            "Service",
            "ServiceAccount"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let config = check_config_volume(&objects, dir.path());
    assert!(config.contains("    format: json\n"), "{config}");
    assert!(config.contains("  listen: 127.0.0.1:7878\n"), "{config}");
    assert!(
        config.contains("  metrics_listen: 0.0.0.0:9879\n"),
        "{config}"
    );
    assert!(
        config.contains("  containerd_socket: /run/containerd/containerd.sock\n"),
        "{config}"
    );
    assert!(
        !config.contains("http:"),
        "no Falcosidekick by default: {config}"
    );
    let ds = the(&objects, "DaemonSet");
    assert_metrics_port(&objects, ds, 9879);
    let annotations = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"], "9879");
    assert_eq!(
        agent(ds)["securityContext"]["seLinuxOptions"],
        serde_json::json!({"type": "spc_t"})
    );
    assert_eq!(
        volume(ds, "runtime-run")["hostPath"]["path"],
        "/run/containerd"
    );
    assert_eq!(
        volume(ds, "runtime-content")["hostPath"]["path"],
        "/var/lib/containerd"
    );
}

/// Every value this change added, changed from its default, in one release.
const CHANGED: &str = r#"{"namespace": {"create": true},
    "runtime": {"type": "openshift"},
    "seLinuxOptions": {"type": "spc_t", "level": "s0"},
    "metrics": {"port": 9100, "serviceMonitor": {"enabled": true, "interval": "15s", "labels": {"release": "prom"}}},
    "falcosidekick": {"url": "http://falcosidekick.falco.svc:2801/", "headers": {"Authorization": "Bearer x"}},
    "customRules": {
      "50-local.yaml": "- list: shell_binaries\n  items: [fish]\n  override:\n    items: append\n",
      "60-quiet.yml": "- rule: Terminal shell in container\n  enabled: false\n  override:\n    enabled: replace\n"
    },
    "hostPaths": {"docker": true},
    "openshift": {"scc": {"create": true}},
    "probes": {"enabled": false}}"#;

#[test]
fn the_chart_with_changed_values_is_valid_and_its_config_and_rules_load() {
    let Some(yaml) = linted_render(CHANGED) else {
        return;
    };
    let Some(objects) = valid_objects("the chart with changed values", &yaml) else {
        return;
    };
    assert_eq!(
        kinds(&objects),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet",
            "Namespace",
            "SecurityContextConstraints",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ]
    );
    assert_scc_admits_the_agent(&objects);
    let dir = tempfile::tempdir().unwrap();
    let config = check_config_volume(&objects, dir.path());
    // The rules files are where the agent's rules directory is, and load.
    for name in ["50-local.yaml", "60-quiet.yml"] {
        let file = dir.path().join("rules.d").join(name);
        let (code, out) = driftwatch(&[
            "rules",
            "validate",
            "--no-rules-dir",
            file.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{name}: {out}");
    }
    // One receiver (`config validate` above checked its keys), Falco's JSON, the headers.
    assert!(
        config.contains(
            "  http:\n  - format: falco\n    headers:\n      Authorization: Bearer x\n    url: http://falcosidekick.falco.svc:2801/\n"
        ),
        "{config}"
    );
    assert!(
        config.contains("  metrics_listen: 0.0.0.0:9100\n"),
        "{config}"
    );
    // CRI-O: its CRI socket, no containerd socket.
    assert!(
        config.contains("  crio_socket: /run/crio/crio.sock\n"),
        "{config}"
    );
    assert!(!config.contains("containerd_socket"), "{config}");
    let ds = the(&objects, "DaemonSet");
    assert_metrics_port(&objects, ds, 9100);
    assert_eq!(
        agent(ds)["securityContext"]["seLinuxOptions"],
        serde_json::json!({"type": "spc_t", "level": "s0"})
    );
    assert_eq!(volume(ds, "runtime-run")["hostPath"]["path"], "/run/crio");
    assert_eq!(
        volume(ds, "runtime-content")["hostPath"]["path"],
        "/var/lib/containers/storage"
    );
    let monitor = the(&objects, "ServiceMonitor");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["interval"], "15s");
    let svc = the(&objects, "Service");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "the monitor selects the Service by {k}"
        );
    }
    // Our audit sees the same privileges, with CRI-O's paths.
    let (_, found) = audit(&["-"], Some(&yaml));
    assert!(
        found.contains(&(
            "DW-K8S-010".to_string(),
            "Namespace".to_string(),
            "metadata.labels[\"pod-security.kubernetes.io/enforce\"]".to_string()
        )),
        "{found:?}"
    );
}

/// OpenShift's admission, for what the agent's pod asks: the chart's SecurityContextConstraints
/// allows each thing the DaemonSet's pod spec requests, forces nothing the agent cannot live
/// with, and the service account may `use` it.
fn assert_scc_admits_the_agent(objects: &[Value]) {
    let scc = the(objects, "SecurityContextConstraints");
    let ds = the(objects, "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    let sc = &agent(ds)["securityContext"];
    let strings = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    for (pod_field, scc_field) in [
        ("hostPID", "allowHostPID"),
        ("hostNetwork", "allowHostNetwork"),
        ("hostIPC", "allowHostIPC"),
    ] {
        if pod[pod_field] == true {
            assert_eq!(scc[scc_field], true, "{pod_field} needs {scc_field}");
        } else {
            assert_eq!(
                scc[scc_field], false,
                "{scc_field}: the pod asks for no {pod_field}"
            );
        }
    }
    assert_eq!(sc["privileged"], false);
    assert_eq!(scc["allowPrivilegedContainer"], false);
    // Exactly the added capabilities, none added by default, none forced away.
    assert_eq!(
        strings(&sc["capabilities"]["add"]),
        strings(&scc["allowedCapabilities"])
    );
    assert!(strings(&scc["defaultAddCapabilities"]).is_empty());
    assert!(strings(&scc["requiredDropCapabilities"]).is_empty());
    // Every volume type the pod mounts, and no other (the token is a projected volume).
    let mut used: BTreeSet<String> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let kinds: Vec<&String> = v
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "name")
                .collect();
            assert_eq!(kinds.len(), 1, "{v}");
            kinds[0].clone()
        })
        .collect();
    used.insert("projected".to_string());
    assert_eq!(used, strings(&scc["volumes"]));
    assert_eq!(scc["allowHostDirVolumePlugin"], used.contains("hostPath"));
    // The SELinux type the pod asks for is the one the SCC assigns.
    assert_eq!(scc["seLinuxContext"]["type"], "MustRunAs");
    assert_eq!(
        scc["seLinuxContext"]["seLinuxOptions"],
        sc["seLinuxOptions"]
    );
    assert_eq!(
        scc["runAsUser"]["type"], "RunAsAny",
        "the agent runs as uid 0"
    );
    assert_eq!(sc["runAsUser"], 0);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(
        strings(&scc["seccompProfiles"]),
        set_of(&["runtime/default"])
    );
    if scc["readOnlyRootFilesystem"] == true {
        assert_eq!(sc["readOnlyRootFilesystem"], true);
    }
    if scc["allowPrivilegeEscalation"] == false {
        assert_eq!(sc["allowPrivilegeEscalation"], false);
    }
    // `use`, granted by name to the ClusterRole bound to the pods' service account.
    let role = the(objects, "ClusterRole");
    assert!(
        role["rules"].as_array().unwrap().iter().any(|r| {
            strings(&r["apiGroups"]) == set_of(&["security.openshift.io"])
                && strings(&r["resources"]) == set_of(&["securitycontextconstraints"])
                && strings(&r["resourceNames"])
                    == strings(&Value::from(vec![scc["metadata"]["name"].clone()]))
                && strings(&r["verbs"]) == set_of(&["use"])
        }),
        "{role}"
    );
    let binding = the(objects, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"][0]["name"], pod["serviceAccountName"],
        "{binding}"
    );
}

fn set_of(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_runtime_mounts_and_asks_its_own_paths() {
    for (runtime, socket, run, content) in [
        (
            "containerd",
            "/run/containerd/containerd.sock",
            "/run/containerd",
            "/var/lib/containerd",
        ),
        (
            "k3s",
            "/run/k3s/containerd/containerd.sock",
            "/run/k3s/containerd",
            "/var/lib/rancher/k3s/agent/containerd",
        ),
        (
            "rke2",
            "/run/k3s/containerd/containerd.sock",
            "/run/k3s/containerd",
            "/var/lib/rancher/rke2/agent/containerd",
        ),
        (
            "crio",
            "/run/crio/crio.sock",
            "/run/crio",
            "/var/lib/containers/storage",
        ),
        (
            "openshift",
            "/run/crio/crio.sock",
            "/run/crio",
            "/var/lib/containers/storage",
        ),
    ] {
        let values = format!(
            r#"{{"runtime": {{"type": "{runtime}"}}, "metrics": {{"podMonitor": {{"enabled": true}}}}}}"#
        );
        let Some(objects) = valid_release(&values) else {
            return;
        };
        let ds = the(&objects, "DaemonSet");
        assert_eq!(
            volume(ds, "runtime-run")["hostPath"]["path"],
            run,
            "{runtime}"
        );
        assert_eq!(
            volume(ds, "runtime-content")["hostPath"]["path"],
            content,
            "{runtime}"
        );
        let mounts = agent(ds)["volumeMounts"].as_array().unwrap();
        for (name, path) in [("runtime-run", run), ("runtime-content", content)] {
            let m = mounts.iter().find(|m| m["name"] == name).unwrap();
            assert_eq!(m["mountPath"], path, "{runtime}: mounted at its host path");
            assert_eq!(m["mountPropagation"], "HostToContainer", "{runtime}");
        }
        let config = the(&objects, "ConfigMap")["data"]["config.yaml"]
            .as_str()
            .unwrap();
        let (key, other) = if socket.ends_with("crio.sock") {
            ("crio_socket", "containerd_socket")
        } else {
            ("containerd_socket", "crio_socket")
        };
        assert!(
            socket.starts_with(run),
            "{runtime}: the socket is in the mounted dir"
        );
        assert!(
            config.contains(&format!("  {key}: {socket}\n")),
            "{runtime}: {config}"
        );
        assert!(!config.contains(other), "{runtime}: {config}");
        let monitor = the(&objects, "PodMonitor");
        assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    }
}

#[test]
fn the_chart_refuses_values_that_cannot_work() {
    for (values, why) in [
        (
            r#"{"runtime": {"type": "docker"}}"#,
            r#"runtime.type "docker" is not one of runtime.runtimes: containerd, crio, k3s, openshift, rke2"#,
        ),
        (
            r#"{"customRules": {"../escape.yaml": "[]"}}"#,
            r#"customRules: "../escape.yaml" is not a file name ending in .yaml or .yml"#,
        ),
        (
            r#"{"customRules": {"local.txt": "[]"}}"#,
            r#"customRules: "local.txt" is not a file name"#,
        ),
        (
            r#"{"metrics": {"serviceMonitor": {"enabled": true}, "podMonitor": {"enabled": true}}}"#,
            "metrics.serviceMonitor and metrics.podMonitor are both enabled",
        ),
        (
            r#"{"metrics": {"enabled": false, "serviceMonitor": {"enabled": true}}}"#,
            "metrics.serviceMonitor needs metrics.enabled",
        ),
        (
            r#"{"config": {"api": {"enabled": false}}}"#,
            "metrics.enabled needs the API server (config.api.enabled is false)",
        ),
        (
            r#"{"openshift": {"scc": {"create": true}}, "rbac": {"create": false}}"#,
            "openshift.scc.create needs rbac.create",
        ),
    ] {
        let Some(result) = render_with(values) else {
            return;
        };
        let err = result.expect_err(values);
        assert!(err.contains(why), "{values}: {err}");
    }
}

#[test]
fn without_metrics_nothing_listens_on_the_pod_ip() {
    let Some(objects) = valid_release(
        r#"{"metrics": {"enabled": false}, "config": {"api": {"enabled": false}}, "probes": {"enabled": false}}"#,
    ) else {
        return;
    };
    assert!(!kinds(&objects).contains(&"Service"));
    let ds = the(&objects, "DaemonSet");
    assert!(agent(ds).get("ports").is_none());
    let config = the(&objects, "ConfigMap")["data"]["config.yaml"]
        .as_str()
        .unwrap();
    assert!(!config.contains("metrics_listen"), "{config}");
}
