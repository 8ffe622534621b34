//! Kubernetes pod actions, end to end through the responder, against `driftwatch-kube`'s
//! in-process fake API server: each test asserts the exact requests (method, path, content
//! type, body) and the records written.

use std::sync::Arc;

use driftwatch_kube::fake::{FakeApi, RecordedRequest};
use driftwatch_kube::isolation_policy_name;
use driftwatch_model::{Alert, Priority};
use driftwatch_response::actions::kube::KubeApi;
use driftwatch_response::{
    ActionRecord, Outcome, PlaybookSet, Responder, ResponderConfig, read_records,
};
use serde_json::{Value, json};

const POD_PATH: &str = "/api/v1/namespaces/shop/pods/web-1";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// A binary-drift alert about pod `shop/<pod>` of uid `uid` (container `<short id>`).
fn pod_alert(pod: &str, uid: &str, short_id: &str) -> Alert {
    Alert {
        time: Alert::format_time(1_795_852_800_000_000_000),
        rule: "Drop and execute new binary in container".into(),
        priority: Priority::Critical,
        source: "syscall".into(),
        hostname: "node-1".into(),
        output: "drift".into(),
        tags: vec!["container".into(), "drift".into(), "binary_drift".into()],
        output_fields: [
            ("container.id", json!(short_id)),
            ("container.name", json!(format!("k8s_app_{pod}"))),
            ("container.image.repository", json!("example.invalid/app")),
            ("container.image.tag", json!("1")),
            ("k8s.ns.name", json!("shop")),
            ("k8s.pod.name", json!(pod)),
            ("k8s.pod.uid", json!(uid)),
            ("proc.pid", json!(999_999_999)),
            ("proc.exepath", json!("/tmp/x")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    }
}

/// Runs `alerts` through a responder with `playbook` and the fake as its Kubernetes API;
/// returns the records once every alert was handled.
fn respond(fake: &FakeApi, playbook: &str, alerts: &[Alert]) -> Vec<ActionRecord> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("actions.jsonl");
    let set = PlaybookSet::parse("pb.yaml", playbook).unwrap_or_else(|e| panic!("{e:?}"));
    let kube: Arc<dyn KubeApi> = Arc::new(fake.client());
    let r = Responder::start(ResponderConfig {
        playbooks: set,
        actions_log: log.clone(),
        docker_socket: None,
        containerd: None,
        kube: Some(kube),
        alerts_file: None,
        queue: 16,
        action_mirror: None,
    })
    .unwrap();
    for a in alerts {
        assert!(r.submit(a), "not queued: {a:?}");
    }
    r.shutdown();
    read_records(&log).unwrap().0
}

fn req(
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<Value>,
) -> (String, String, Option<String>, Option<Value>) {
    (
        method.into(),
        path.into(),
        content_type.map(String::from),
        body,
    )
}

fn seen(fake: &FakeApi) -> Vec<(String, String, Option<String>, Option<Value>)> {
    fake.take_requests()
        .into_iter()
        .map(|r: RecordedRequest| (r.method, r.path, r.content_type, r.body))
        .collect()
}

#[test]
fn isolate_label_and_delete_send_exactly_these_requests() {
    let fake = FakeApi::start();
    let uid = fake.add_pod("shop", "web-1", &[("app", "web")]);
    let records = respond(
        &fake,
        r#"playbooks:
  - name: pods
    match: {namespaces: [shop]}
    actions:
      - isolate
      - {action: label, params: {labels: {driftwatch.io/quarantined: "true", app: null}}}
      - {action: evict, params: {grace_period: 45s}}
"#,
        &[pod_alert("web-1", &uid, "0123456789ab")],
    );
    let policy = isolation_policy_name("web-1");
    assert_eq!(
        seen(&fake),
        [
            req("GET", POD_PATH, None, None),
            req(
                "PATCH",
                POD_PATH,
                Some(MERGE_PATCH),
                Some(json!({"metadata": {"labels": {"driftwatch.io/isolated": uid}}}))
            ),
            req(
                "POST",
                "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies",
                Some("application/json"),
                Some(json!({
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {
                        "name": policy,
                        "namespace": "shop",
                        "labels": {"app.kubernetes.io/managed-by": "driftwatch"},
                        "annotations": {"driftwatch.io/pod": "web-1"},
                    },
                    "spec": {
                        "podSelector": {"matchLabels": {"driftwatch.io/isolated": uid}},
                        "policyTypes": ["Ingress", "Egress"],
                    },
                }))
            ),
            req(
                "PATCH",
                POD_PATH,
                Some(MERGE_PATCH),
                Some(
                    json!({"metadata": {"labels": {"app": null, "driftwatch.io/quarantined": "true"}}})
                )
            ),
            req(
                "DELETE",
                POD_PATH,
                Some("application/json"),
                Some(
                    json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 45,
                           "preconditions": {"uid": uid}})
                )
            ),
        ]
    );
    let r: Vec<(&str, Outcome)> = records
        .iter()
        .map(|r| (r.action.as_str(), r.result))
        .collect();
    // The container itself is not on this host (no such container): the node-local part of
    // isolate fails and says the NetworkPolicy was applied.
    assert_eq!(
        r,
        [
            ("isolate", Outcome::Failed),
            ("label", Outcome::Ok),
            ("evict", Outcome::Ok)
        ]
    );
    let why = records[0].reason.as_deref().unwrap();
    assert!(
        why.contains(&format!("applied: NetworkPolicy shop/{policy}")),
        "{why}"
    );
    assert_eq!(
        records[2].detail.as_deref(),
        Some("pod shop/web-1 deleted (grace period 45s)")
    );
    assert_eq!(records[2].container.k8s_pod, "web-1");
    assert!(fake.pod("shop", "web-1").is_none(), "the pod is deleted");
    assert!(fake.network_policy("shop", &policy).is_some());
}

#[test]
fn eviction_api_and_a_per_namespace_limit() {
    let fake = FakeApi::start();
    let uid1 = fake.add_pod("shop", "web-1", &[]);
    let uid2 = fake.add_pod("shop", "web-2", &[]);
    let records = respond(
        &fake,
        r#"playbooks:
  - name: pods
    match: {tags: [binary_drift]}
    actions:
      - {action: evict, params: {eviction_api: true}, limits: {max: 1, per: namespace, window: 1h}}
"#,
        &[
            pod_alert("web-1", &uid1, "0123456789ab"),
            pod_alert("web-2", &uid2, "ba9876543210"),
        ],
    );
    assert_eq!(
        seen(&fake),
        [req(
            "POST",
            "/api/v1/namespaces/shop/pods/web-1/eviction",
            Some("application/json"),
            Some(
                json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1", "namespace": "shop"},
                       "deleteOptions": {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid1}}})
            )
        )]
    );
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].result, Outcome::Ok);
    assert_eq!(records[1].result, Outcome::Skipped);
    assert_eq!(
        records[1].reason.as_deref(),
        Some("limit reached: already 1 in the last 1h for namespace shop (limits: max 1)")
    );
    assert!(
        fake.pod("shop", "web-2").is_some(),
        "the second pod was spared"
    );
}

#[test]
fn a_pod_recreated_under_the_name_or_an_alert_without_uid_is_not_deleted() {
    let fake = FakeApi::start();
    let uid = fake.add_pod("shop", "web-1", &[]);
    let playbook =
        "playbooks:\n  - {name: pods, match: {}, dedupe_window: 0s, actions: [{action: evict}]}\n";
    // The alert saw another pod of that name (since deleted and recreated, or a forged one).
    let records = respond(
        &fake,
        playbook,
        &[pod_alert(
            "web-1",
            "00000000-0000-4000-8000-00000000dead",
            "0123456789ab",
        )],
    );
    assert_eq!(records[0].result, Outcome::Failed);
    let why = records[0].reason.as_deref().unwrap();
    assert!(
        why.starts_with("deleting pod shop/web-1 (uid 00000000-0000-4000-8000-00000000dead): ")
            && why.contains("409")
            && why.contains("Precondition failed"),
        "{why}"
    );
    // No uid in the alert: no request at all.
    fake.take_requests();
    let records = respond(&fake, playbook, &[pod_alert("web-1", "", "0123456789ab")]);
    assert_eq!(records[0].result, Outcome::Failed);
    assert!(
        records[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("the alert carries no pod uid"),
        "{records:?}"
    );
    assert!(seen(&fake).is_empty());
    let pod = fake.pod("shop", "web-1").expect("the pod survives");
    assert_eq!(pod["metadata"]["uid"], uid);
}

#[test]
fn api_errors_are_recorded_as_failures() {
    let fake = FakeApi::start();
    // No such pod: the API answers 404.
    let records = respond(
        &fake,
        "playbooks:\n  - {name: pods, match: {}, actions: [{action: label, params: {labels: {a: b}}}]}\n",
        &[pod_alert("web-1", "u-1", "0123456789ab")],
    );
    assert_eq!(records[0].result, Outcome::Failed);
    let why = records[0].reason.as_deref().unwrap();
    assert!(
        why.starts_with("labelling pod shop/web-1: ") && why.contains("404"),
        "{why}"
    );
}

#[test]
fn release_through_the_trait_deletes_the_policy_and_the_label() {
    let fake = FakeApi::start();
    fake.add_pod("shop", "web-1", &[]);
    let client = fake.client();
    let api: &dyn KubeApi = &client;
    let name = api.isolate_pod("shop", "web-1").unwrap();
    fake.take_requests();
    api.release_pod("shop", "web-1").unwrap();
    assert_eq!(
        seen(&fake),
        [
            req(
                "DELETE",
                &format!("/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/{name}"),
                None,
                None
            ),
            req(
                "PATCH",
                POD_PATH,
                Some(MERGE_PATCH),
                Some(json!({"metadata": {"labels": {"driftwatch.io/isolated": null}}}))
            ),
        ]
    );
    assert!(fake.network_policy("shop", &name).is_none());
}
