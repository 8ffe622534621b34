//! Every client call against the fake API server: the exact requests sent (method, path,
//! content type, body, token) and how each answer (2xx, 401, 404, 409, 429, injected 5xx)
//! comes back.

use std::collections::BTreeMap;

use driftwatch_kube::fake::{FakeApi, RecordedRequest};
use driftwatch_kube::{KubeClient, KubeConfig, KubeError, NameKind};
use serde_json::json;

const POD: &str = "/api/v1/namespaces/shop/pods/web-1";
const POLICIES: &str = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies";
const POLICY: &str =
    "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/driftwatch-isolate-web-1";

fn summary(reqs: &[RecordedRequest]) -> Vec<String> {
    reqs.iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// A ReplicaSet's pod: two siblings share `app: web`.
fn shop() -> (FakeApi, String) {
    let fake = FakeApi::with_token("tok");
    let uid = fake.add_pod("shop", "web-1", &[("app", "web")]);
    fake.add_pod("shop", "web-2", &[("app", "web")]);
    (fake, uid)
}

#[test]
fn isolate_labels_the_pod_then_creates_a_deny_all_policy_for_it_alone() {
    let (fake, uid) = shop();
    let client = fake.client();

    let name = client.isolate_pod("shop", "web-1").unwrap();
    assert_eq!(name, "driftwatch-isolate-web-1");

    let reqs = fake.take_requests();
    assert_eq!(
        summary(&reqs),
        [
            format!("GET {POD}"),
            format!("PATCH {POD}"),
            format!("POST {POLICIES}")
        ]
    );
    for r in &reqs {
        assert_eq!(r.authorization.as_deref(), Some("Bearer tok"));
        assert_eq!(r.query, None);
    }
    let patch = &reqs[1];
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        patch.body,
        Some(json!({"metadata": {"labels": {"driftwatch.io/isolated": uid}}}))
    );
    let create = &reqs[2];
    assert_eq!(create.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        create.body,
        Some(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": "driftwatch-isolate-web-1",
                "namespace": "shop",
                "labels": {"app.kubernetes.io/managed-by": "driftwatch"},
                "annotations": {"driftwatch.io/pod": "web-1"},
            },
            // no `ingress`/`egress` rules: nothing is allowed either way
            "spec": {
                "podSelector": {"matchLabels": {"driftwatch.io/isolated": uid}},
                "policyTypes": ["Ingress", "Egress"],
            },
        }))
    );

    // the selector matches web-1 and not its sibling, which shares every other label
    let web1 = fake.pod("shop", "web-1").unwrap();
    let web2 = fake.pod("shop", "web-2").unwrap();
    assert_eq!(web1["metadata"]["labels"]["driftwatch.io/isolated"], uid);
    assert_eq!(web1["metadata"]["labels"]["app"], "web");
    assert!(
        web2["metadata"]["labels"]
            .get("driftwatch.io/isolated")
            .is_none()
    );
    assert_eq!(fake.network_policies("shop").len(), 1);
}

#[test]
fn isolate_twice_is_success_and_changes_nothing() {
    let (fake, _) = shop();
    let client = fake.client();
    client.isolate_pod("shop", "web-1").unwrap();
    let before = fake
        .network_policy("shop", "driftwatch-isolate-web-1")
        .unwrap();
    fake.take_requests();

    assert_eq!(
        client.isolate_pod("shop", "web-1").unwrap(),
        "driftwatch-isolate-web-1"
    );
    // label already there: no PATCH; 409 AlreadyExists, then the policy is read and kept
    assert_eq!(
        summary(&fake.take_requests()),
        [
            format!("GET {POD}"),
            format!("POST {POLICIES}"),
            format!("GET {POLICY}")
        ]
    );
    assert_eq!(
        fake.network_policy("shop", "driftwatch-isolate-web-1"),
        Some(before)
    );
}

#[test]
fn isolate_replaces_a_stale_or_weakened_policy_of_the_same_name() {
    let (fake, uid) = shop();
    // left from an earlier pod named web-1 (another UID), and edited to allow all ingress
    fake.insert_network_policy(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "driftwatch-isolate-web-1", "namespace": "shop"},
        "spec": {
            "podSelector": {"matchLabels": {"driftwatch.io/isolated": "old-uid"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{}],
        },
    }));
    let rv = fake
        .network_policy("shop", "driftwatch-isolate-web-1")
        .unwrap()["metadata"]["resourceVersion"]
        .clone();
    let client = fake.client();
    client.isolate_pod("shop", "web-1").unwrap();

    let reqs = fake.take_requests();
    assert_eq!(
        summary(&reqs),
        [
            format!("GET {POD}"),
            format!("PATCH {POD}"),
            format!("POST {POLICIES}"),
            format!("GET {POLICY}"),
            format!("PUT {POLICY}"),
        ]
    );
    let put = reqs[4].body.as_ref().unwrap();
    assert_eq!(put["metadata"]["resourceVersion"], rv);
    let policy = fake
        .network_policy("shop", "driftwatch-isolate-web-1")
        .unwrap();
    assert_eq!(
        policy["spec"],
        json!({
            "podSelector": {"matchLabels": {"driftwatch.io/isolated": uid}},
            "policyTypes": ["Ingress", "Egress"],
        })
    );
}

#[test]
fn isolate_long_and_dotted_pod_names_gets_short_distinct_policies() {
    let fake = FakeApi::start();
    let long_a = format!("{}-a", "x".repeat(80));
    let long_b = format!("{}-b", "x".repeat(80));
    for pod in [&long_a, &long_b, "web.v1", "web-v1"] {
        fake.add_pod("shop", pod, &[]);
    }
    let client = fake.client();
    let names: Vec<String> = [&long_a, &long_b, "web.v1", "web-v1"]
        .iter()
        .map(|pod| client.isolate_pod("shop", pod).unwrap())
        .collect();
    let stored: Vec<String> = fake
        .network_policies("shop")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored.len(), 4, "{stored:?}");
    for name in &names {
        assert!(name.len() <= 63 && stored.contains(name), "{name}");
    }
    // the annotation names the pod the shortened name stands for
    let p = fake.network_policy("shop", &names[0]).unwrap();
    assert_eq!(p["metadata"]["annotations"]["driftwatch.io/pod"], long_a);
}

#[test]
fn isolate_refuses_a_host_network_pod_and_changes_nothing() {
    let fake = FakeApi::start();
    fake.insert_pod(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "node-exporter-x", "namespace": "mon", "labels": {}},
        "spec": {"hostNetwork": true, "containers": []},
    }));
    let err = fake
        .client()
        .isolate_pod("mon", "node-exporter-x")
        .unwrap_err();
    assert!(
        matches!(&err, KubeError::HostNetwork { namespace, pod } if namespace == "mon" && pod == "node-exporter-x"),
        "{err}"
    );
    assert_eq!(
        summary(&fake.requests()),
        ["GET /api/v1/namespaces/mon/pods/node-exporter-x"]
    );
    assert!(fake.network_policies("mon").is_empty());
}

#[test]
fn isolate_an_unknown_pod_is_not_found_with_the_api_message() {
    let fake = FakeApi::start();
    let err = fake.client().isolate_pod("shop", "ghost").unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.reason(), Some("NotFound"));
    assert_eq!(
        err.to_string(),
        "GET /api/v1/namespaces/shop/pods/ghost: HTTP 404 NotFound: pods \"ghost\" not found"
    );
    assert!(fake.network_policies("shop").is_empty());
}

#[test]
fn isolate_stops_at_a_failed_label_patch() {
    let (fake, _) = shop();
    fake.fail("PATCH", POD, 1, 403);
    let err = fake.client().isolate_pod("shop", "web-1").unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(
        err.to_string(),
        format!("PATCH {POD}: HTTP 403 Forbidden: injected failure (403)")
    );
    assert!(fake.network_policies("shop").is_empty());
}

#[test]
fn release_deletes_the_policy_and_the_label_and_is_idempotent() {
    let (fake, _) = shop();
    let client = fake.client();
    client.isolate_pod("shop", "web-1").unwrap();
    fake.take_requests();

    client.release_pod("shop", "web-1").unwrap();
    let reqs = fake.take_requests();
    assert_eq!(
        summary(&reqs),
        [format!("DELETE {POLICY}"), format!("PATCH {POD}")]
    );
    assert_eq!(
        reqs[1].content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        reqs[1].body,
        Some(json!({"metadata": {"labels": {"driftwatch.io/isolated": null}}}))
    );
    assert!(fake.network_policies("shop").is_empty());
    let labels = &fake.pod("shop", "web-1").unwrap()["metadata"]["labels"];
    assert_eq!(*labels, json!({"app": "web"}));

    // policy already gone (404): still success; pod gone too: still success
    client.release_pod("shop", "web-1").unwrap();
    client.release_pod("shop", "never-existed").unwrap();
}

#[test]
fn release_reports_other_failures() {
    let (fake, _) = shop();
    fake.fail("DELETE", POLICY, 1, 500);
    let err = fake.client().release_pod("shop", "web-1").unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(summary(&fake.requests()), [format!("DELETE {POLICY}")]);
}

#[test]
fn delete_sends_delete_options_with_the_grace_period() {
    let (fake, _) = shop();
    let client = fake.client();
    client.delete_pod("shop", "web-1", Some(0), None).unwrap();
    client.delete_pod("shop", "web-2", None, None).unwrap();

    let reqs = fake.requests();
    assert_eq!(reqs[0].method, "DELETE");
    assert_eq!(reqs[0].path, POD);
    assert_eq!(reqs[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        reqs[0].body,
        Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}))
    );
    assert_eq!(
        reqs[1].body,
        Some(json!({"kind": "DeleteOptions", "apiVersion": "v1"}))
    );
    assert!(fake.pod("shop", "web-1").is_none() && fake.pod("shop", "web-2").is_none());

    let err = client
        .delete_pod("shop", "web-1", Some(30), None)
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("DELETE {POD}: HTTP 404"))
    );
}

#[test]
fn a_delete_with_another_pods_uid_is_refused_with_409_as_the_api_server_does() {
    let (fake, uid) = shop();
    let client = fake.client();
    // The name now belongs to another pod (recreated, or claimed by a forged label).
    let err = client
        .delete_pod(
            "shop",
            "web-1",
            Some(0),
            Some("11111111-2222-4333-8444-555555555555"),
        )
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "Precondition failed: UID in precondition: 11111111-2222-4333-8444-555555555555, UID in object meta: {uid}"
        )),
        "{err}"
    );
    assert!(fake.pod("shop", "web-1").is_some(), "the pod must survive");
    assert_eq!(
        fake.requests()[0].body.as_ref().unwrap()["preconditions"],
        json!({"uid": "11111111-2222-4333-8444-555555555555"})
    );
    // The same through the eviction API.
    let err = client
        .evict_pod(
            "shop",
            "web-1",
            Some("11111111-2222-4333-8444-555555555555"),
        )
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    assert!(fake.pod("shop", "web-1").is_some());
    // The pod's own uid: deleted.
    client
        .delete_pod("shop", "web-1", Some(0), Some(&uid))
        .unwrap();
    assert!(fake.pod("shop", "web-1").is_none());
    let uid2 = fake.pod("shop", "web-2").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    client.evict_pod("shop", "web-2", Some(&uid2)).unwrap();
    assert!(fake.pod("shop", "web-2").is_none());
}

#[test]
fn evict_posts_a_policy_v1_eviction() {
    let (fake, _) = shop();
    fake.client().evict_pod("shop", "web-1", None).unwrap();
    let reqs = fake.requests();
    assert_eq!(summary(&reqs), [format!("POST {POD}/eviction")]);
    assert_eq!(reqs[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        reqs[0].body,
        Some(json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "web-1", "namespace": "shop"},
        }))
    );
    assert!(fake.pod("shop", "web-1").is_none());
}

#[test]
fn evict_blocked_by_a_disruption_budget_is_its_own_error() {
    let (fake, _) = shop();
    let path = format!("{POD}/eviction");
    fake.fail("POST", &path, 1, 429);
    let client = fake.client();
    let err = client.evict_pod("shop", "web-1", None).unwrap_err();
    match &err {
        KubeError::EvictionBlocked { request, message } => {
            assert_eq!(request, &format!("POST {path}"));
            assert_eq!(
                message,
                "Cannot evict pod as it would violate the pod's disruption budget."
            );
        }
        other => panic!("expected EvictionBlocked, got {other:?}"),
    }
    assert_eq!(err.status(), Some(429));
    assert!(fake.pod("shop", "web-1").is_some());

    // the client does not retry; the caller's next try goes through
    client.evict_pod("shop", "web-1", None).unwrap();
    assert_eq!(fake.requests().len(), 2);

    // other failures stay API errors
    fake.fail(
        "POST",
        "/api/v1/namespaces/shop/pods/web-2/eviction",
        1,
        500,
    );
    let err = client.evict_pod("shop", "web-2", None).unwrap_err();
    assert!(matches!(err, KubeError::Api { status: 500, .. }), "{err}");
}

#[test]
fn label_sets_and_removes_with_a_merge_patch() {
    let fake = FakeApi::start();
    fake.add_pod("shop", "web-1", &[("app", "web"), ("tier", "front")]);
    let labels = BTreeMap::from([
        (
            "driftwatch.io/quarantine".to_owned(),
            Some("true".to_owned()),
        ),
        ("tier".to_owned(), None),
    ]);
    let client = fake.client();
    client.label_pod("shop", "web-1", &labels).unwrap();

    let reqs = fake.take_requests();
    assert_eq!(summary(&reqs), [format!("PATCH {POD}")]);
    assert_eq!(
        reqs[0].content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        reqs[0].body,
        Some(json!({"metadata": {"labels": {"driftwatch.io/quarantine": "true", "tier": null}}}))
    );
    assert_eq!(
        fake.pod("shop", "web-1").unwrap()["metadata"]["labels"],
        json!({"app": "web", "driftwatch.io/quarantine": "true"})
    );

    client.label_pod("shop", "web-1", &BTreeMap::new()).unwrap();
    assert!(
        fake.requests().is_empty(),
        "an empty label map sends nothing"
    );
}

#[test]
fn get_pod_reads_uid_labels_and_owners() {
    let fake = FakeApi::start();
    let uid = fake.insert_pod(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-5d-abc", "namespace": "shop", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d",
                                 "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running"},
    }));
    let pod = fake.client().get_pod("shop", "web-5d-abc").unwrap();
    assert_eq!(pod.uid, uid);
    assert_eq!(
        (pod.namespace.as_str(), pod.name.as_str()),
        ("shop", "web-5d-abc")
    );
    assert_eq!(pod.labels, BTreeMap::from([("app".into(), "web".into())]));
    assert_eq!(
        pod.controller().map(|o| o.kind.as_str()),
        Some("ReplicaSet")
    );
    assert_eq!(pod.node_name.as_deref(), Some("n1"));
    assert_eq!(pod.phase.as_deref(), Some("Running"));
    assert!(!pod.host_network);
    let req = &fake.requests()[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.path, "/api/v1/namespaces/shop/pods/web-5d-abc");
    assert_eq!(req.body, None);
}

#[test]
fn a_wrong_or_missing_token_is_401_with_the_api_message() {
    let (fake, _) = shop();
    for token in [Some("wrong".to_owned()), None] {
        let cfg = KubeConfig {
            token: token.clone(),
            ..fake.config()
        };
        let err = KubeClient::new(cfg)
            .unwrap()
            .get_pod("shop", "web-1")
            .unwrap_err();
        assert!(
            matches!(&err, KubeError::Api { status: 401, reason, message, .. }
                if reason == "Unauthorized" && message == "Unauthorized"),
            "{err}"
        );
        let sent = fake.take_requests().remove(0).authorization;
        assert_eq!(sent, token.map(|t| format!("Bearer {t}")));
    }
}

#[test]
fn a_token_file_is_read_for_every_request() {
    let (fake, _) = shop();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "old\n").unwrap();
    let client = KubeClient::new(KubeConfig {
        token: None,
        token_file: Some(file.clone()),
        ..fake.config()
    })
    .unwrap();
    assert_eq!(
        client.get_pod("shop", "web-1").unwrap_err().status(),
        Some(401)
    );
    std::fs::write(&file, "tok\n").unwrap(); // rotated, as the kubelet does
    client.get_pod("shop", "web-1").unwrap();
    let sent: Vec<_> = fake
        .requests()
        .into_iter()
        .map(|r| r.authorization.unwrap())
        .collect();
    assert_eq!(sent, ["Bearer old", "Bearer tok"]);

    std::fs::remove_file(&file).unwrap();
    let err = client.get_pod("shop", "web-1").unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("reading the bearer token {}: ", file.display())),
        "{err}"
    );
}

#[test]
fn injected_failures_last_exactly_n_requests_and_the_client_does_not_retry() {
    let (fake, _) = shop();
    fake.fail("GET", POD, 2, 503);
    let client = fake.client();
    for _ in 0..2 {
        let err = client.get_pod("shop", "web-1").unwrap_err();
        assert_eq!(err.status(), Some(503));
        assert_eq!(err.reason(), Some("ServiceUnavailable"));
    }
    client.get_pod("shop", "web-1").unwrap();
    assert_eq!(fake.requests().len(), 3);
}

#[test]
fn invalid_names_are_refused_before_any_request() {
    let (fake, _) = shop();
    let client = fake.client();
    let long = "a".repeat(300);
    for (ns, pod, kind) in [
        ("shop", "../x", NameKind::Pod),
        ("shop", "a?b", NameKind::Pod),
        ("shop", "Web-1", NameKind::Pod),
        ("shop", long.as_str(), NameKind::Pod),
        ("shop", "a/../../b", NameKind::Pod),
        ("shop", "web-1%2f..", NameKind::Pod),
        ("shop", "", NameKind::Pod),
        ("../kube-system", "web-1", NameKind::Namespace),
        ("Shop", "web-1", NameKind::Namespace),
        ("shop?watch=1", "web-1", NameKind::Namespace),
    ] {
        let calls: [(&str, Result<(), KubeError>); 6] = [
            ("get", client.get_pod(ns, pod).map(drop)),
            ("isolate", client.isolate_pod(ns, pod).map(drop)),
            ("release", client.release_pod(ns, pod)),
            ("delete", client.delete_pod(ns, pod, Some(0), None)),
            ("evict", client.evict_pod(ns, pod, None)),
            (
                "label",
                client.label_pod(ns, pod, &BTreeMap::from([("a".into(), None)])),
            ),
        ];
        for (call, result) in calls {
            match result {
                Err(KubeError::InvalidName(e)) => assert_eq!(e.kind, kind, "{call} {ns}/{pod}"),
                other => panic!("{call} {ns:?}/{pod:?}: expected InvalidName, got {other:?}"),
            }
        }
    }
    assert!(
        fake.requests().is_empty(),
        "{:?}",
        summary(&fake.requests())
    );
}

#[test]
fn a_server_that_is_not_listening_is_a_transport_error_naming_the_request() {
    let url = {
        let fake = FakeApi::start();
        fake.url()
    }; // dropped: the port is closed
    let client = KubeClient::new(KubeConfig::new(url)).unwrap();
    let err = client
        .delete_pod("shop", "web-1", Some(0), None)
        .unwrap_err();
    assert!(matches!(err, KubeError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!("DELETE {POD}: ")),
        "{err}"
    );
    assert_eq!(err.status(), None);
}
