//! The Kubernetes objects this crate reads and the request bodies it sends, as plain data:
//! no I/O, so every body is checked by a unit test before any request is made.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

/// The label an isolated pod carries; its value is the pod's UID, and the isolation
/// NetworkPolicy selects on it, so a policy selects that one pod and not its ReplicaSet
/// siblings (which share every other label).
pub const ISOLATION_LABEL: &str = "driftwatch.io/isolated";
/// The annotation on an isolation NetworkPolicy naming the pod it isolates (the policy's own
/// name may be shortened).
pub const ISOLATED_POD_ANNOTATION: &str = "driftwatch.io/pod";
/// `app.kubernetes.io/managed-by: driftwatch`, on every object this crate creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "driftwatch";

/// The content type of a JSON merge patch (RFC 7386), which every API server accepts.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// The parts of a Pod a response action needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// Who owns the pod (`ReplicaSet`, `StatefulSet`, `DaemonSet`, `Job`, ...): a pod with a
    /// controller comes back after a delete; a bare pod does not.
    pub owners: Vec<OwnerRef>,
    pub node_name: Option<String>,
    /// `spec.hostNetwork`: such a pod shares the node's network, and no NetworkPolicy applies.
    pub host_network: bool,
    /// `status.phase`: `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: Option<String>,
}

/// One of a pod's `metadata.ownerReferences`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
    /// Whether this owner is the pod's managing controller.
    pub controller: bool,
}

impl Pod {
    /// The owner marked `controller: true`, if any.
    pub fn controller(&self) -> Option<&OwnerRef> {
        self.owners.iter().find(|o| o.controller)
    }
}

#[derive(Deserialize)]
struct WirePod {
    metadata: WireMeta,
    #[serde(default)]
    spec: WireSpec,
    #[serde(default)]
    status: WireStatus,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    name: String,
    #[serde(default)]
    namespace: String,
    uid: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    owner_references: Vec<WireOwner>,
}

#[derive(Deserialize)]
struct WireOwner {
    kind: String,
    name: String,
    #[serde(default)]
    controller: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireSpec {
    node_name: Option<String>,
    #[serde(default)]
    host_network: bool,
}

#[derive(Deserialize, Default)]
struct WireStatus {
    phase: Option<String>,
}

/// A Pod from the API's JSON.
pub(crate) fn parse_pod(body: &[u8]) -> Result<Pod, serde_json::Error> {
    let w: WirePod = serde_json::from_slice(body)?;
    Ok(Pod {
        namespace: w.metadata.namespace,
        name: w.metadata.name,
        uid: w.metadata.uid,
        labels: w.metadata.labels,
        owners: w
            .metadata
            .owner_references
            .into_iter()
            .map(|o| OwnerRef {
                kind: o.kind,
                name: o.name,
                controller: o.controller.unwrap_or(false),
            })
            .collect(),
        node_name: w.spec.node_name,
        host_network: w.spec.host_network,
        phase: w.status.phase,
    })
}

/// A deny-all NetworkPolicy for one pod: selects `ISOLATION_LABEL=<uid>`, both policy types,
/// no rules (so no traffic is allowed in or out).
pub(crate) fn isolation_policy(namespace: &str, name: &str, pod: &str, uid: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { MANAGED_BY_LABEL: MANAGED_BY },
            "annotations": { ISOLATED_POD_ANNOTATION: pod },
        },
        "spec": isolation_spec(uid),
    })
}

fn isolation_spec(uid: &str) -> Value {
    json!({
        "podSelector": { "matchLabels": { ISOLATION_LABEL: uid } },
        "policyTypes": ["Ingress", "Egress"],
    })
}

/// Whether an existing NetworkPolicy's `spec` is exactly the deny-all isolation of `uid`: the
/// one selector label, both policy types, and no rule (absent, null or empty).
pub(crate) fn is_isolation_spec(spec: &Value, uid: &str) -> bool {
    let no_rules = |key| match spec.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    let mut types: Vec<&str> = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    types.sort_unstable();
    let selector_ok = spec.get("podSelector").is_some_and(|sel| {
        sel.get("matchLabels") == Some(&json!({ ISOLATION_LABEL: uid }))
            && match sel.get("matchExpressions") {
                None | Some(Value::Null) => true,
                Some(Value::Array(a)) => a.is_empty(),
                Some(_) => false,
            }
    });
    selector_ok && types == ["Egress", "Ingress"] && no_rules("ingress") && no_rules("egress")
}

/// `{"metadata":{"labels":{...}}}`: a merge patch that sets (`Some`) or removes (`None`) labels.
pub(crate) fn label_patch(labels: &BTreeMap<String, Option<String>>) -> Value {
    json!({ "metadata": { "labels": labels } })
}

/// `DeleteOptions` for a pod delete; with `uid`, the precondition that the pod is still the
/// one the agent saw (the API server answers 409 Conflict when the name now belongs to
/// another pod, or the uid was never this pod's).
pub(crate) fn delete_options(grace_period_seconds: Option<u32>, uid: Option<&str>) -> Value {
    let mut body = json!({ "kind": "DeleteOptions", "apiVersion": "v1" });
    if let Some(g) = grace_period_seconds {
        body["gracePeriodSeconds"] = json!(g);
    }
    if let Some(uid) = uid {
        body["preconditions"] = json!({ "uid": uid });
    }
    body
}

/// A `policy/v1` Eviction of one pod; with `uid`, the same precondition as a delete.
pub(crate) fn eviction(namespace: &str, pod: &str, uid: Option<&str>) -> Value {
    let mut body = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": { "name": pod, "namespace": namespace },
    });
    if let Some(uid) = uid {
        body["deleteOptions"] = delete_options(None, Some(uid));
    }
    body
}

/// A failed request's `Status` object, as far as errors need it.
#[derive(Deserialize)]
pub(crate) struct Status {
    pub(crate) kind: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_json_to_pod() {
        let body = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-1", "namespace": "shop", "uid": "1f0c-aa",
                "labels": { "app": "web" },
                "ownerReferences": [
                    { "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d", "uid": "u", "controller": true },
                    { "apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "v" },
                ],
            },
            "spec": { "nodeName": "node-a", "hostNetwork": true, "containers": [] },
            "status": { "phase": "Running" },
        });
        let pod = parse_pod(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            pod,
            Pod {
                namespace: "shop".into(),
                name: "web-1".into(),
                uid: "1f0c-aa".into(),
                labels: [("app".to_owned(), "web".to_owned())].into(),
                owners: vec![
                    OwnerRef {
                        kind: "ReplicaSet".into(),
                        name: "web-5d".into(),
                        controller: true
                    },
                    OwnerRef {
                        kind: "ConfigMap".into(),
                        name: "cm".into(),
                        controller: false
                    },
                ],
                node_name: Some("node-a".into()),
                host_network: true,
                phase: Some("Running".into()),
            }
        );
        assert_eq!(pod.controller().unwrap().kind, "ReplicaSet");
        // a pod without uid is not a pod the API server sent
        assert!(parse_pod(br#"{"metadata":{"name":"x"}}"#).is_err());
    }

    #[test]
    fn isolation_spec_matches_only_deny_all_for_that_uid() {
        let policy = isolation_policy("shop", "driftwatch-isolate-web-1", "web-1", "u1");
        let spec = &policy["spec"];
        assert!(is_isolation_spec(spec, "u1"));
        assert!(!is_isolation_spec(spec, "u2"));

        let mut with_rule = spec.clone();
        with_rule["ingress"] = json!([{}]); // `[{}]` allows all ingress
        assert!(!is_isolation_spec(&with_rule, "u1"));
        let mut empty_rules = spec.clone();
        empty_rules["egress"] = json!([]);
        assert!(is_isolation_spec(&empty_rules, "u1"));
        let mut ingress_only = spec.clone();
        ingress_only["policyTypes"] = json!(["Ingress"]);
        assert!(!is_isolation_spec(&ingress_only, "u1"));
        let mut wider = spec.clone();
        wider["podSelector"]["matchLabels"]["app"] = json!("web");
        assert!(!is_isolation_spec(&wider, "u1"));
    }

    #[test]
    fn bodies() {
        let labels = [
            ("a".to_owned(), Some("1".to_owned())),
            ("b".to_owned(), None),
        ]
        .into();
        assert_eq!(
            label_patch(&labels),
            json!({"metadata": {"labels": {"a": "1", "b": null}}})
        );
        assert_eq!(
            delete_options(Some(0), None),
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
        );
        assert_eq!(
            delete_options(None, None),
            json!({"kind": "DeleteOptions", "apiVersion": "v1"})
        );
    }
}
