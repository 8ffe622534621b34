//! Scenarios: a manifest in, the exact findings (rule, path, line:column) out.

use super::*;

const DIGEST: &str = "sha256:4f9c7b2a1e8d3c6b5a4f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b";

fn run(src: &str) -> Report {
    audit_sources([("t.yaml", src.as_bytes())])
}

/// (rule id, path) of every finding.
fn ids(r: &Report) -> Vec<(&'static str, String)> {
    r.findings
        .iter()
        .map(|f| (f.rule.id(), f.location.path.clone()))
        .collect()
}

fn has(r: &Report, rule: Rule) -> bool {
    r.findings.iter().any(|f| f.rule == rule)
}

fn only(r: &Report, rule: Rule) -> &Finding {
    let v: Vec<_> = r.findings.iter().filter(|f| f.rule == rule).collect();
    assert_eq!(v.len(), 1, "{rule:?} in {:#?}", r.findings);
    v[0]
}

/// The seed's immutable Deployment, completed: digest, capabilities dropped, a namespace
/// enforcing restricted.
fn good() -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata:
  name: production
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/audit: restricted
    pod-security.kubernetes.io/warn: restricted
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: immutable-app
  namespace: production
spec:
  template:
    spec:
      containers:
        - name: app
          image: registry.example/app:v1.0@{DIGEST}
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            runAsNonRoot: true
            capabilities:
              drop: [\"ALL\"]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: cache
              mountPath: /var/cache
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 100Mi
        - name: cache
          emptyDir:
            sizeLimit: 50Mi
"
    )
}

/// A Deployment (line 1 `kind:`) whose container `app` (line 8, column 11: `name:`) has the
/// securityContext lines `sc` (each indented under `securityContext:` on line 10).
fn deploy(sc: &[&str]) -> String {
    deploy_with(sc, "", "")
}

fn deploy_with(sc: &[&str], pod_extra: &str, container_extra: &str) -> String {
    let mut s = format!(
        "kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: app
          image: app@{DIGEST}
          securityContext:
"
    );
    for l in sc {
        s.push_str(&format!("            {l}\n"));
    }
    s.push_str(container_extra);
    s.push_str(pod_extra);
    s
}

const SAFE: [&str; 5] = [
    "readOnlyRootFilesystem: true",
    "allowPrivilegeEscalation: false",
    "runAsNonRoot: true",
    "capabilities:",
    "  drop: [ALL]",
];

fn safe_except(skip: &str, add: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = SAFE
        .iter()
        .filter(|l| !l.starts_with(skip) || skip.is_empty())
        .map(|s| s.to_string())
        .collect();
    v.extend(add.iter().map(|s| s.to_string()));
    v
}

fn deploy_v(sc: &[String]) -> String {
    let v: Vec<&str> = sc.iter().map(String::as_str).collect();
    deploy(&v)
}

#[test]
fn the_seed_manifest_passes_clean() {
    let r = run(&good());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    assert_eq!((r.files, r.documents, r.workloads), (1, 2, 1));
    assert_eq!(r.exit_code(Some(FindingSeverity::Info)), 0);
    let r = run(&deploy(&SAFE));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn read_only_root_filesystem() {
    let r = run(&deploy_v(&safe_except(
        "readOnly",
        &["readOnlyRootFilesystem: false"],
    )));
    let f = only(&r, Rule::ReadOnlyRootFilesystem);
    assert_eq!(
        f.location.path,
        "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem"
    );
    // The offending key: the 5th securityContext line (line 15), column 13.
    assert_eq!((f.location.line, f.location.column), (15, 13));
    assert_eq!(f.container.as_deref(), Some("app"));
    assert_eq!(f.severity, FindingSeverity::Warning);
    assert!(f.message.contains("false"), "{}", f.message);
    assert!(f.fix.contains("readOnlyRootFilesystem: true"));

    // Missing: at the container.
    let r = run(&deploy_v(&safe_except("readOnly", &[])));
    let f = only(&r, Rule::ReadOnlyRootFilesystem);
    assert_eq!((f.location.line, f.location.column), (8, 11));
    assert!(f.message.contains("not set"));

    // A string is not a boolean.
    let r = run(&deploy_v(&safe_except(
        "readOnly",
        &["readOnlyRootFilesystem: \"true\""],
    )));
    assert!(
        only(&r, Rule::ReadOnlyRootFilesystem)
            .message
            .contains("string")
    );
    assert_eq!(r.findings.len(), 1);
}

#[test]
fn allow_privilege_escalation() {
    let r = run(&deploy_v(&safe_except(
        "allowPriv",
        &["allowPrivilegeEscalation: true"],
    )));
    let f = only(&r, Rule::AllowPrivilegeEscalation);
    assert_eq!((f.location.line, f.location.column), (15, 13));
    let r = run(&deploy_v(&safe_except("allowPriv", &[])));
    let f = only(&r, Rule::AllowPrivilegeEscalation);
    assert_eq!((f.location.line, f.location.column), (8, 11));
    assert_eq!(r.findings.len(), 1);
}

#[test]
fn run_as_non_root_is_inherited_from_the_pod_and_overridden_by_the_container() {
    let pod_true = "      securityContext:\n        runAsNonRoot: true\n";
    let pod_false = "      securityContext:\n        runAsNonRoot: false\n";
    let sc = safe_except("runAsNonRoot", &[]);
    let sc: Vec<&str> = sc.iter().map(String::as_str).collect();

    // Pod says true, container silent: satisfied.
    let r = run(&deploy_with(&sc, pod_true, ""));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);

    // Container overrides the pod's true with false.
    let mut over = sc.clone();
    over.push("runAsNonRoot: false");
    let r = run(&deploy_with(&over, pod_true, ""));
    let f = only(&r, Rule::RunAsNonRoot);
    assert!(
        f.message.contains("overriding the pod's true"),
        "{}",
        f.message
    );
    assert_eq!(
        f.location.path,
        "spec.template.spec.containers[0].securityContext.runAsNonRoot"
    );

    // Container true wins over the pod's false.
    let mut yes = sc.clone();
    yes.push("runAsNonRoot: true");
    assert!(run(&deploy_with(&yes, pod_false, "")).findings.is_empty());

    // Pod false, container silent: the finding is at the pod's key.
    let r = run(&deploy_with(&sc, pod_false, ""));
    let f = only(&r, Rule::RunAsNonRoot);
    assert_eq!(
        f.location.path,
        "spec.template.spec.securityContext.runAsNonRoot"
    );
    assert_eq!((f.location.line, f.location.column), (16, 9));

    // Neither: at the container.
    let r = run(&deploy(&sc));
    let f = only(&r, Rule::RunAsNonRoot);
    assert_eq!((f.location.line, f.location.column), (8, 11));
    assert!(f.message.contains("neither"));
}

#[test]
fn images_must_be_pinned_by_digest() {
    let src = deploy(&SAFE).replace(&format!("app@{DIGEST}"), "app:1.2.3");
    let r = run(&src);
    let f = only(&r, Rule::ImageDigest);
    assert_eq!(f.location.path, "spec.template.spec.containers[0].image");
    assert_eq!((f.location.line, f.location.column), (9, 18));
    assert!(f.message.contains("app:1.2.3"));
    // The seed's placeholder digest is not a digest.
    let r = run(&deploy(&SAFE).replace(DIGEST, "sha256:abc123..."));
    assert!(only(&r, Rule::ImageDigest).message.contains("malformed"));
    // A tag and a digest together is pinned.
    let r = run(&deploy(&SAFE).replace("app@", "app:1.2@"));
    assert!(r.findings.is_empty());
}

#[test]
fn privileged_and_capabilities() {
    let r = run(&deploy_v(&safe_except("", &["privileged: true"])));
    let f = only(&r, Rule::Privileged);
    assert_eq!(f.severity, FindingSeverity::Error);
    assert_eq!((f.location.line, f.location.column), (16, 13));
    assert!(
        run(&deploy_v(&safe_except("", &["privileged: false"])))
            .findings
            .is_empty()
    );

    // add: SYS_ADMIN is a finding at `add`; NET_BIND_SERVICE alone is allowed.
    let r = run(&deploy_v(&safe_except(
        "",
        &["  add: [NET_BIND_SERVICE, SYS_ADMIN]"],
    )));
    let f = only(&r, Rule::CapabilitiesAdded);
    assert_eq!(
        f.location.path,
        "spec.template.spec.containers[0].securityContext.capabilities.add"
    );
    assert_eq!((f.location.line, f.location.column), (16, 15));
    assert!(f.message.contains("SYS_ADMIN") && !f.message.contains("NET_BIND"));
    assert!(
        run(&deploy_v(&safe_except("", &["  add: [NET_BIND_SERVICE]"])))
            .findings
            .is_empty()
    );

    // drop without ALL: at `drop`.
    let sc = safe_except("  drop", &["  drop: [NET_RAW]"]);
    let r = run(&deploy_v(&sc));
    let f = only(&r, Rule::CapabilitiesNotDropped);
    assert_eq!((f.location.line, f.location.column), (15, 15));
    assert!(f.message.contains("NET_RAW"));
    // No capabilities at all: at the container.
    let sc = safe_except("capabilities", &[]);
    let sc: Vec<String> = sc.into_iter().filter(|l| !l.contains("drop")).collect();
    let r = run(&deploy_v(&sc));
    let f = only(&r, Rule::CapabilitiesNotDropped);
    assert_eq!((f.location.line, f.location.column), (8, 11));
    // capabilities without drop: at `capabilities`.
    let sc: Vec<String> = safe_except("  drop", &["  add: []"]);
    let r = run(&deploy_v(&sc));
    assert_eq!(only(&r, Rule::CapabilitiesNotDropped).location.line, 14);
}

#[test]
fn writable_empty_dir_without_size_limit() {
    let mounts =
        "          volumeMounts:\n            - name: scratch\n              mountPath: /scratch\n";
    let vols =
        |ed: &str| format!("      volumes:\n        - name: scratch\n          emptyDir: {ed}\n");
    let r = run(&deploy_with(&SAFE, &vols("{}"), mounts));
    let f = only(&r, Rule::EmptyDirSizeLimit);
    assert_eq!(
        f.location.path,
        "spec.template.spec.volumes[0].emptyDir.sizeLimit"
    );
    assert_eq!((f.location.line, f.location.column), (21, 11));
    assert!(f.message.contains("app at /scratch"), "{}", f.message);
    assert_eq!(f.container, None);
    assert!(
        only(
            &run(&deploy_with(&SAFE, &vols("{medium: Memory}"), mounts)),
            Rule::EmptyDirSizeLimit
        )
        .message
        .contains("Memory")
    );
    // `emptyDir:` with nothing is an emptyDir too.
    assert!(has(
        &run(&deploy_with(&SAFE, &vols(""), mounts)),
        Rule::EmptyDirSizeLimit
    ));
    // Bounded, read-only or not mounted: fine.
    assert!(
        run(&deploy_with(&SAFE, &vols("{sizeLimit: 10Mi}"), mounts))
            .findings
            .is_empty()
    );
    let ro = format!("{mounts}              readOnly: true\n");
    assert!(
        run(&deploy_with(&SAFE, &vols("{}"), &ro))
            .findings
            .is_empty()
    );
    assert!(
        run(&deploy_with(&SAFE, &vols("{}"), ""))
            .findings
            .is_empty()
    );
}

#[test]
fn host_path_volumes() {
    let pod = "      volumes:\n        - name: docker\n          hostPath:\n            path: /var/run/docker.sock\n";
    let mounts = "          volumeMounts:\n            - name: docker\n              mountPath: /var/run/docker.sock\n";
    let r = run(&deploy_with(&SAFE, pod, mounts));
    let f = only(&r, Rule::HostPath);
    assert_eq!(f.severity, FindingSeverity::Error);
    assert_eq!(f.location.path, "spec.template.spec.volumes[0].hostPath");
    assert_eq!((f.location.line, f.location.column), (21, 11));
    assert!(f.message.contains("/var/run/docker.sock") && f.message.contains("app at"));
    assert_eq!(r.findings.len(), 1);
}

#[test]
fn namespaces_must_enforce_restricted() {
    let ns = |labels: &str| format!("kind: Namespace\nmetadata:\n  name: prod\n{labels}");
    let r = run(&ns(""));
    let f = only(&r, Rule::NamespacePodSecurity);
    assert_eq!(f.object.to_string(), "Namespace prod");
    assert_eq!(
        f.location.path,
        "metadata.labels[\"pod-security.kubernetes.io/enforce\"]"
    );
    assert_eq!((f.location.line, f.location.column), (3, 3));
    let r = run(&ns(
        "  labels:\n    pod-security.kubernetes.io/enforce: baseline\n",
    ));
    let f = only(&r, Rule::NamespacePodSecurity);
    assert!(f.message.contains("\"baseline\""));
    assert_eq!((f.location.line, f.location.column), (5, 5));
    let r = run(&ns(
        "  labels:\n    pod-security.kubernetes.io/warn: restricted\n",
    ));
    assert_eq!(only(&r, Rule::NamespacePodSecurity).location.line, 4);
    let r = run(&ns(
        "  labels:\n    pod-security.kubernetes.io/enforce: restricted\n",
    ));
    assert!(r.findings.is_empty());
}

#[test]
fn namespaces_not_in_the_input_are_reported_once_as_info() {
    let w = |name: &str, ns: &str| {
        deploy(&SAFE).replace(
            "  name: web\n",
            &format!("  name: {name}\n  namespace: {ns}\n"),
        )
    };
    let src = format!(
        "{}---\n{}---\n{}",
        w("a", "shop"),
        w("b", "shop"),
        w("c", "prod")
    );
    let ns = "kind: Namespace\nmetadata:\n  name: prod\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n";
    // The namespace declared in another file counts.
    let r = audit_sources([("w.yaml", src.as_bytes()), ("ns.yaml", ns.as_bytes())]);
    let f = only(&r, Rule::NamespaceNotInInput);
    assert_eq!(f.severity, FindingSeverity::Info);
    assert!(
        f.message
            .starts_with("namespace shop not in the input: cannot check its Pod Security label")
    );
    assert_eq!(f.location.document, 1);
    assert_eq!(f.location.path, "metadata.namespace");
    assert_eq!((f.location.line, f.location.column), (4, 14));
    assert_eq!(r.exit_code(Some(FindingSeverity::Warning)), 0);
    assert_eq!(r.exit_code(Some(FindingSeverity::Info)), 1);
}

/// Every workload kind, with where its pod spec is; initContainers and ephemeralContainers
/// are audited as containers.
#[test]
fn every_workload_kind() {
    let container = "- name: c\n  image: x:1\n".to_string();
    let indent = |s: &str, n: usize| {
        s.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect::<String>()
    };
    let pod_spec = |n: usize| {
        format!(
            "{}{}{}{}{}{}",
            " ".repeat(n),
            "containers:\n",
            indent(&container, n + 2),
            format_args!("{}initContainers:\n", " ".repeat(n)),
            indent(&container.replace("name: c", "name: i"), n + 2),
            format_args!(
                "{}ephemeralContainers:\n{}",
                " ".repeat(n),
                indent(&container.replace("name: c", "name: e"), n + 2)
            ),
        )
    };
    let cases = [
        ("Pod", "spec:\n".to_string() + &pod_spec(2), "spec"),
        (
            "Deployment",
            "spec:\n  template:\n    spec:\n".to_string() + &pod_spec(6),
            "spec.template.spec",
        ),
        (
            "StatefulSet",
            "spec:\n  template:\n    spec:\n".to_string() + &pod_spec(6),
            "spec.template.spec",
        ),
        (
            "DaemonSet",
            "spec:\n  template:\n    spec:\n".to_string() + &pod_spec(6),
            "spec.template.spec",
        ),
        (
            "ReplicaSet",
            "spec:\n  template:\n    spec:\n".to_string() + &pod_spec(6),
            "spec.template.spec",
        ),
        (
            "Job",
            "spec:\n  template:\n    spec:\n".to_string() + &pod_spec(6),
            "spec.template.spec",
        ),
        (
            "ReplicationController",
            "spec:\n  template:\n    spec:\n".to_string() + &pod_spec(6),
            "spec.template.spec",
        ),
        (
            "CronJob",
            "spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n".to_string()
                + &pod_spec(10),
            "spec.jobTemplate.spec.template.spec",
        ),
    ];
    for (kind, body, spec) in cases {
        let src = format!("kind: {kind}\nmetadata:\n  name: w\n{body}");
        let r = run(&src);
        assert!(r.errors.is_empty(), "{kind}: {:?}", r.errors);
        assert_eq!(r.workloads, 1);
        for field in ["containers", "initContainers", "ephemeralContainers"] {
            let want = format!("{spec}.{field}[0].securityContext.readOnlyRootFilesystem");
            assert!(
                ids(&r).contains(&("DW-K8S-001", want.clone())),
                "{kind}: no {want} in {:#?}",
                ids(&r)
            );
            assert!(ids(&r).contains(&("DW-K8S-004", format!("{spec}.{field}[0].image"))));
        }
        // 001, 002, 003, 004 and 008 for each of the 3 containers.
        assert_eq!(r.findings.len(), 15, "{kind}: {:#?}", ids(&r));
        let names: BTreeSet<_> = r
            .findings
            .iter()
            .filter_map(|f| f.container.clone())
            .collect();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["c", "e (ephemeral)", "i (init)"]
        );
        assert!(r.findings.iter().all(|f| f.object.kind == kind));
    }
}

#[test]
fn kubectl_list_output() {
    let src = format!(
        "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: shop
    labels:
      pod-security.kubernetes.io/enforce: restricted
- apiVersion: v1
  kind: Service
  metadata:
    name: web
- apiVersion: v1
  kind: Pod
  metadata:
    name: web-1
    namespace: shop
  spec:
    containers:
    - name: app
      image: app@{DIGEST}
metadata:
  resourceVersion: \"\"
"
    );
    let r = run(&src);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.workloads, 1);
    assert_eq!(r.notes.len(), 1);
    assert_eq!(r.notes[0].location.path, "items[1]");
    assert!(r.notes[0].message.contains("Service web"));
    let f = only(&r, Rule::ReadOnlyRootFilesystem);
    assert_eq!(
        f.location.path,
        "items[2].spec.containers[0].securityContext.readOnlyRootFilesystem"
    );
    assert_eq!((f.location.line, f.location.column), (21, 7));
    assert_eq!(f.object.to_string(), "Pod shop/web-1");
    // The namespace is declared in the List: no DW-K8S-011.
    assert!(!has(&r, Rule::NamespaceNotInInput));
    // Typed lists (`DeploymentList`) are lists too.
    let typed = src.replace("kind: List", "kind: PodList");
    assert_eq!(run(&typed).workloads, 1);
}

#[test]
fn helm_output_with_source_comments_and_empty_documents() {
    let src = format!(
        "---
# Source: shop/templates/sa.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: shop
---
# Source: shop/templates/empty.yaml
---
# Source: shop/templates/deploy.yaml
{}",
        deploy(&["readOnlyRootFilesystem: false"])
    );
    let r = run(&src);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.documents, 3);
    assert_eq!(r.notes[0].location.document, 1);
    let f = only(&r, Rule::ReadOnlyRootFilesystem);
    assert_eq!(f.location.document, 3);
    assert_eq!(
        f.location.source.as_deref(),
        Some("shop/templates/deploy.yaml")
    );
    assert!(
        report::table(&r)
            .contains("t.yaml document 3 (shop/templates/deploy.yaml): Deployment web\n")
    );
    // The Deployment starts on line 11; its readOnlyRootFilesystem is its line 11.
    assert_eq!((f.location.line, f.location.column), (21, 13));
}

#[test]
fn json_is_yaml() {
    let src = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "p"}},
 "spec": {{"containers": [{{"name": "app", "image": "app@{DIGEST}",
   "securityContext": {{"readOnlyRootFilesystem": false}}}}]}}}}"#
    );
    let r = audit_sources([("pod.json", src.as_bytes())]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let f = only(&r, Rule::ReadOnlyRootFilesystem);
    assert_eq!((f.location.line, f.location.column), (3, 24));
}

#[test]
fn invalid_yaml_is_a_positioned_error_and_other_documents_are_still_audited() {
    let src = format!("{}---\nkind: Pod\nspec: [1, 2\nfoo: bar\n", deploy(&SAFE));
    let r = run(&src);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    let e = &r.errors[0];
    assert_eq!(e.document, Some(2));
    assert!(e.line.unwrap() >= 16, "{e}");
    assert!(e.to_string().starts_with("t.yaml:"), "{e}");
    assert!(matches!(e.message, InputErrorKind::Syntax(_)));
    assert_eq!(r.workloads, 1);
    assert_eq!(r.exit_code(Some(FindingSeverity::Warning)), 2);
}

#[test]
fn documents_that_are_not_mappings_are_errors() {
    let r = run("- a\n- b\n---\njust a string\n---\n42\n");
    assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
    assert_eq!(
        r.errors[0].to_string(),
        "t.yaml:1:1: document 1: document is a list, not a Kubernetes object (a mapping)"
    );
    assert_eq!(r.errors[1].line, Some(4));
    assert_eq!(r.errors[2].document, Some(3));
}

#[test]
fn missing_and_mistyped_fields_are_positioned_errors() {
    let r = run("metadata:\n  name: x\n");
    assert!(
        r.errors[0].to_string().contains("no `kind`"),
        "{}",
        r.errors[0]
    );
    let r = run("kind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: 2\n");
    assert_eq!(
        r.errors[0].to_string(),
        "t.yaml:5:3: document 1: Deployment x: `spec.template` is missing (the Deployment's pod spec)"
    );
    let r = run("kind: Pod\nmetadata:\n  name: x\nspec:\n  containers: nope\n");
    assert!(r.errors.iter().any(|e| {
        e.to_string()
            .contains("`spec.containers` is a string, expected a list")
    }));
    assert_eq!(r.errors[0].line, Some(5));
    let r = run("kind: Pod\nspec:\n  containers:\n  - name: a\n");
    assert!(
        r.errors[0].to_string().contains("has no `image`"),
        "{:?}",
        r.errors
    );
    let r = run("kind: Pod\nspec:\n  containers:\n  - 7\n");
    assert!(r.errors[0].to_string().contains("expected a container"));
    let r = run(
        "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: x@sha256:1\n    securityContext: yes\n",
    );
    assert!(
        r.errors[0]
            .to_string()
            .contains("securityContext` is a boolean"),
        "{:?}",
        r.errors
    );
    let r = run("kind: [Pod]\n");
    assert!(r.errors[0].to_string().contains("`kind` is a list"));
    let r = run("kind: List\nitems:\n- 3\n");
    assert!(r.errors[0].to_string().contains("`items[0]` is an integer"));
    let r = run("kind: Pod\na: 1\na: 2\n");
    assert!(matches!(r.errors[0].message, InputErrorKind::Syntax(_)));
}

#[test]
fn unknown_kinds_are_notes_not_errors() {
    let r = run("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n");
    assert!(r.errors.is_empty() && r.findings.is_empty());
    assert_eq!(r.notes[0].kind, "Widget");
    assert_eq!(r.exit_code(Some(FindingSeverity::Info)), 0);
}

#[test]
fn deeply_nested_garbage_binary_and_non_utf8() {
    let r = run(&format!("kind: Pod\nspec: {}", "[".repeat(200_000)));
    assert_eq!(r.errors.len(), 1);
    assert!(matches!(r.errors[0].message, InputErrorKind::Syntax(_)));
    let deep: String = (0..500).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    assert_eq!(run(&deep).errors.len(), 1);

    let bin = b"\x7fELF\x02\x01\x01\x00\x00\x00garbage";
    let r = audit_sources([("ls", &bin[..])]);
    assert_eq!(
        r.errors[0].to_string(),
        "ls:1:8: binary file (a NUL byte at offset 7), not YAML or JSON"
    );
    let r = audit_sources([("l1.yaml", &b"kind: Pod\nname: caf\xe9\n"[..])]);
    assert_eq!(r.errors[0].line, Some(2));
    assert!(r.errors[0].to_string().contains("not UTF-8"));
}

#[test]
fn ten_megabyte_manifests() {
    // Many documents...
    let one = deploy(&["readOnlyRootFilesystem: false"]);
    let n = 10 * 1024 * 1024 / one.len() + 1;
    let mut big = String::with_capacity(n * (one.len() + 4));
    for _ in 0..n {
        big.push_str(&one);
        big.push_str("---\n");
    }
    assert!(big.len() > 10 * 1024 * 1024);
    let r = run(&big);
    assert!(r.errors.is_empty());
    assert_eq!(r.workloads, n);
    assert_eq!(r.findings.len(), n * 4);
    let last = r.findings.last().unwrap();
    assert_eq!(last.location.document, n);

    // ... and one List document of the same size (kubectl get -A -o yaml).
    let item: String = one.lines().map(|l| format!("  {l}\n")).collect::<String>();
    let item = item.replacen("  kind", "- kind", 1);
    let mut list = String::from("kind: List\nitems:\n");
    for _ in 0..n {
        list.push_str(&item);
    }
    let r = run(&list);
    assert!(r.errors.is_empty(), "{:?}", r.errors.first());
    assert_eq!(r.workloads, n);

    // Over the cap: refused before parsing.
    let huge = vec![b'#'; MAX_FILE_BYTES as usize + 1];
    let r = audit_sources([("huge.yaml", &huge[..])]);
    assert!(matches!(
        r.errors[0].message,
        InputErrorKind::TooLarge { .. }
    ));
}

#[test]
fn json_shape() {
    let src = deploy(&["readOnlyRootFilesystem: false"])
        .replace("  name: web\n", "  name: web\n  namespace: shop\n");
    let r = audit_sources([("d.yaml", src.as_bytes()), ("bad.yaml", b"[")]);
    let v = report::json(&r);
    assert_eq!(v["version"], 1);
    for key in [
        "files",
        "documents",
        "workloads",
        "findings",
        "errors",
        "notes",
        "summary",
    ] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    let f = &v["findings"][0];
    for key in [
        "rule",
        "severity",
        "file",
        "document",
        "path",
        "line",
        "column",
        "object",
        "container",
        "message",
        "fix",
    ] {
        assert!(f.get(key).is_some(), "{key} in {f}");
    }
    assert_eq!(f["rule"], "DW-K8S-001");
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["object"]["namespace"], "shop");
    assert_eq!(v["summary"]["info"], 1);
    assert_eq!(v["summary"]["input_errors"], 1);
    assert_eq!(v["errors"][0]["file"], "bad.yaml");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid YAML")
    );
}

#[test]
fn sarif_shape() {
    let src = deploy(&["readOnlyRootFilesystem: false"]).replace(&format!("app@{DIGEST}"), "app:1");
    let r = audit_sources([("k8s/d.yaml", src.as_bytes()), ("bad.yaml", b"kind: [")]);
    let v = report::sarif(&r);
    // The fields SARIF 2.1.0 requires, and those code scanning reads.
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "driftwatch");
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules.len(), Rule::ALL.len());
    for rule in rules {
        assert!(rule["id"].as_str().unwrap().starts_with("DW-K8S-"));
        assert!(rule["shortDescription"]["text"].is_string());
        assert!(rule["help"]["text"].is_string());
        assert!(
            ["error", "warning", "note"]
                .contains(&rule["defaultConfiguration"]["level"].as_str().unwrap())
        );
    }
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), r.findings.len());
    for res in results {
        let id = res["ruleId"].as_str().unwrap();
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], id);
        assert!(res["message"]["text"].as_str().unwrap().contains("Fix:"));
        assert!(["error", "warning", "note"].contains(&res["level"].as_str().unwrap()));
        let loc = &res["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "k8s/d.yaml");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(loc["region"]["startColumn"].as_u64().unwrap() >= 1);
        assert!(res["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].is_string());
    }
    let ro = results
        .iter()
        .find(|r| r["ruleId"] == "DW-K8S-001")
        .unwrap();
    assert_eq!(
        ro["locations"][0]["physicalLocation"]["region"]["startLine"],
        11
    );
    assert_eq!(
        ro["locations"][0]["physicalLocation"]["region"]["startColumn"],
        13
    );
    let inv = &runs[0]["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let n = &inv["toolExecutionNotifications"][0];
    assert_eq!(n["level"], "error");
    assert_eq!(
        n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "bad.yaml"
    );
    // It is JSON all the way down (no NaN, no maps with non-string keys).
    let text = serde_json::to_string(&v).unwrap();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, v);
}

#[test]
fn table_groups_by_workload_and_container() {
    let src = format!(
        "{}---\n{}",
        deploy(&["readOnlyRootFilesystem: false"]),
        "kind: Namespace\nmetadata:\n  name: n\n"
    );
    let t = report::table(&run(&src));
    assert!(t.contains("t.yaml document 1: Deployment web\n  container app\n    warning DW-K8S-001 11:13  spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem\n"), "{t}");
    assert!(
        t.contains(
            "  fix DW-K8S-001:\n      securityContext:\n        readOnlyRootFilesystem: true\n"
        ),
        "{t}"
    );
    assert!(
        t.contains("t.yaml document 2: Namespace n\n  warning DW-K8S-010 15:3"),
        "{t}"
    );
    assert!(
        t.ends_with("1 files, 2 documents, 1 workloads: 0 errors, 5 warnings, 0 info\n"),
        "{t}"
    );
}

#[test]
fn exit_codes_follow_fail_on() {
    let r = run(&deploy_v(&safe_except("", &["privileged: true"])));
    assert_eq!(r.exit_code(Some(FindingSeverity::Error)), 1);
    let r = run(&deploy_v(&safe_except("readOnly", &[])));
    assert_eq!(r.exit_code(Some(FindingSeverity::Warning)), 1);
    assert_eq!(r.exit_code(Some(FindingSeverity::Error)), 0);
    assert_eq!(r.exit_code(None), 0);
}
