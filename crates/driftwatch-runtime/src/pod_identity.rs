//! Which pod a container belongs to, taken only from what the container's creator (the
//! kubelet through the runtime, or whoever ran it) set, never from what its image brought.
//!
//! Why: pod identity steers actions on *other* objects (a pod deleted, evicted, labelled or
//! fenced by a NetworkPolicy by name). Docker merges an image's labels into its containers'
//! labels, and containerd's CRI plugin and `ctr run` do the same, so an image that carries
//! `io.kubernetes.pod.name=payments` and `io.kubernetes.pod.namespace=prod` would otherwise
//! make the agent act on that pod when a plain container of it misbehaves.
//!
//! What is trusted, per engine:
//! - **Docker with cri-dockerd** (a container labelled with its pod sandbox,
//!   `io.kubernetes.sandbox.id`): the sandbox's own labels, and only when the container joined
//!   that sandbox's network namespace (`NetworkMode: container:<sandbox id>`, which the
//!   container's creator sets and no image can) and the sandbox is one
//!   (`io.kubernetes.docker.type=podsandbox`). An image naming a sandbox in its labels gets
//!   no pod identity.
//! - **Docker** otherwise: the `io.kubernetes.*` labels of the container, unless the image's
//!   own config carries one of them with the same value (then the value may be the image's:
//!   the whole identity is dropped). The kubelet's (or `docker run --label`'s) values override
//!   the image's, so a real pod's labels differ from the image's or the image has none. When
//!   the image's labels cannot be read, no pod identity.
//! - **containerd**: the OCI spec annotations the CRI plugin writes for every container and
//!   sandbox it creates (`io.kubernetes.cri.sandbox-name`, `-namespace`, `-uid`,
//!   `io.kubernetes.cri.container-name`): an image cannot set spec annotations. A container
//!   without them was not made by the CRI plugin and is no pod. The pod uid falls back to the
//!   `io.kubernetes.pod.uid` label only in a CRI-made container (containerd before 1.7 writes
//!   no uid annotation; there the kubelet's label overrides an image's). The pod's labels
//!   come from the CRI plugin's `PodSandboxStatus` of the sandbox those annotations name
//!   (`io.kubernetes.cri.sandbox-id`): the runtime's own answer, used only when it names the
//!   same pod.
//! - **CRI-O**: the `PodSandboxStatus` of the sandbox CRI-O's verbose `ContainerStatus` names
//!   (`sandboxID`, the runtime's own field): name, namespace, uid and labels are the
//!   runtime's answer. The container's `io.kubernetes.*` labels are never read for it; a
//!   container whose verbose info does not parse has no pod.
//! - **Docker with cri-dockerd** labels: the sandbox container's labels other than
//!   `io.kubernetes.*` and `annotation.*` (see [`sandbox_pod_labels`]).

use std::collections::BTreeMap;

use driftwatch_model::KubernetesMeta;

/// The labels that make up a pod identity.
pub const POD_LABELS: [&str; 4] = [
    "io.kubernetes.pod.name",
    "io.kubernetes.pod.namespace",
    "io.kubernetes.pod.uid",
    "io.kubernetes.container.name",
];

/// The CRI plugin's spec annotations (containerd).
pub const CRI_SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
pub const CRI_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
pub const CRI_SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
pub const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
/// `sandbox` for a pod's sandbox, `container` for its workloads.
pub const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

/// A pod identity, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodIdentity {
    pub pod: Option<KubernetesMeta>,
    /// Set when pod labels were there but not trusted: why.
    pub distrusted: Option<String>,
}

/// Docker's rule (see the module's doc): `image_labels` is `None` when the image could not be
/// read.
pub fn trusted_pod_identity(
    labels: &BTreeMap<String, String>,
    image_labels: Option<&BTreeMap<String, String>>,
) -> PodIdentity {
    if !labels.contains_key("io.kubernetes.pod.name") {
        return PodIdentity {
            pod: None,
            distrusted: None,
        };
    }
    let Some(image_labels) = image_labels else {
        return PodIdentity {
            pod: None,
            distrusted: Some(
                "the image's labels could not be read, so the pod labels may be the image's".into(),
            ),
        };
    };
    if let Some(key) = POD_LABELS.iter().find(|k| {
        image_labels
            .get(**k)
            .is_some_and(|v| labels.get(**k) == Some(v))
    }) {
        return PodIdentity {
            pod: None,
            distrusted: Some(format!(
                "the image itself carries the label {key}: pod labels of the image are not a pod identity"
            )),
        };
    }
    PodIdentity {
        pod: KubernetesMeta::from_labels(labels),
        distrusted: None,
    }
}

/// The label cri-dockerd puts on a pod's containers: the id of its sandbox (pause) container.
pub const SANDBOX_ID_LABEL: &str = "io.kubernetes.sandbox.id";

/// The Docker-with-cri-dockerd rule (see the module's doc): the container's `network_mode`
/// (`HostConfig.NetworkMode`), and the sandbox its label names, when it could be inspected:
/// its full id and labels.
pub fn sandbox_pod_identity(
    labels: &BTreeMap<String, String>,
    network_mode: &str,
    sandbox: Option<(&str, &BTreeMap<String, String>)>,
) -> PodIdentity {
    let none = |why: String| PodIdentity {
        pod: None,
        distrusted: Some(why),
    };
    let Some(named) = labels.get(SANDBOX_ID_LABEL) else {
        return none("no sandbox label".into());
    };
    let Some((sandbox_id, sandbox_labels)) = sandbox else {
        return none(format!("its sandbox {named} could not be inspected"));
    };
    if network_mode != format!("container:{sandbox_id}") {
        return none(format!(
            "it names sandbox {named} but does not share its network namespace (network mode {network_mode:?}): the label may be its image's"
        ));
    }
    if sandbox_labels
        .get("io.kubernetes.docker.type")
        .map(String::as_str)
        != Some("podsandbox")
    {
        return none(format!("container {named} is not a pod sandbox"));
    }
    let mut pod = KubernetesMeta::from_labels(sandbox_labels);
    if let Some(p) = pod.as_mut() {
        p.container_name = labels
            .get("io.kubernetes.container.name")
            .cloned()
            .unwrap_or_default();
        p.labels = sandbox_pod_labels(sandbox_labels);
    }
    PodIdentity {
        pod,
        distrusted: None,
    }
}

/// The pod's own labels among a sandbox's: the kubelet adds its `io.kubernetes.*` ones to
/// the pod's (CRI `PodSandboxConfig.labels`), and cri-dockerd also puts the pod's annotations
/// on its sandbox container as `annotation.<key>` (the split Falco's `k8s.pod.labels` makes
/// too).
pub fn sandbox_pod_labels(sandbox_labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    sandbox_labels
        .iter()
        .filter(|(k, _)| !k.starts_with("io.kubernetes.") && !k.starts_with("annotation."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// containerd's rule (see the module's doc), from the container's OCI spec annotations and
/// its labels.
pub fn cri_pod_identity(
    annotations: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> PodIdentity {
    let (Some(name), Some(namespace)) = (
        annotations.get(CRI_SANDBOX_NAME),
        annotations.get(CRI_SANDBOX_NAMESPACE),
    ) else {
        return PodIdentity {
            pod: None,
            distrusted: labels.contains_key("io.kubernetes.pod.name").then(|| {
                "no CRI annotations in its spec: not made by the CRI plugin, so its pod labels (which an image can carry) are not a pod identity".to_string()
            }),
        };
    };
    let get = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
    let pod_uid = annotations
        .get(CRI_SANDBOX_UID)
        .cloned()
        .unwrap_or_else(|| get(labels, "io.kubernetes.pod.uid"));
    let container_name = annotations
        .get(CRI_CONTAINER_NAME)
        .cloned()
        .unwrap_or_else(|| get(labels, "io.kubernetes.container.name"));
    PodIdentity {
        pod: Some(KubernetesMeta {
            namespace: namespace.clone(),
            pod_name: name.clone(),
            pod_uid,
            container_name,
            labels: BTreeMap::new(),
        }),
        distrusted: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const POD: &[(&str, &str)] = &[
        ("io.kubernetes.pod.name", "payments-0"),
        ("io.kubernetes.pod.namespace", "prod"),
        ("io.kubernetes.pod.uid", "u-1"),
    ];

    #[test]
    fn docker_labels_the_creator_set_are_a_pod_identity() {
        let id = trusted_pod_identity(&map(POD), Some(&map(&[("maintainer", "x")])));
        let pod = id.pod.unwrap();
        assert_eq!(
            (
                pod.namespace.as_str(),
                pod.pod_name.as_str(),
                pod.pod_uid.as_str()
            ),
            ("prod", "payments-0", "u-1")
        );
        // The kubelet's values override what the image said.
        let id = trusted_pod_identity(
            &map(POD),
            Some(&map(&[("io.kubernetes.pod.name", "something-else")])),
        );
        assert_eq!(id.pod.unwrap().pod_name, "payments-0");
    }

    #[test]
    fn docker_pod_labels_that_came_with_the_image_are_no_identity() {
        let forged = map(&[("io.kubernetes.pod.namespace", "prod")]);
        let id = trusted_pod_identity(&map(POD), Some(&forged));
        assert_eq!(id.pod, None);
        assert!(
            id.distrusted
                .unwrap()
                .contains("the image itself carries the label io.kubernetes.pod.namespace")
        );
        let id = trusted_pod_identity(&map(POD), None);
        assert_eq!(id.pod, None);
        assert!(id.distrusted.unwrap().contains("could not be read"));
        // No pod labels at all: nothing to distrust.
        assert_eq!(
            trusted_pod_identity(&map(&[("a", "b")]), None),
            PodIdentity {
                pod: None,
                distrusted: None
            }
        );
    }

    #[test]
    fn cri_dockerd_identity_comes_from_the_sandbox_the_container_joined() {
        let sandbox_id = "a".repeat(64);
        let sandbox = map(&[
            ("io.kubernetes.docker.type", "podsandbox"),
            ("io.kubernetes.pod.name", "web-0"),
            ("io.kubernetes.pod.namespace", "shop"),
            ("io.kubernetes.pod.uid", "u-9"),
            ("app.kubernetes.io/name", "web"),
            ("annotation.kubernetes.io/config.seen", "2026-01-01"),
        ]);
        let mut labels = map(POD);
        labels.insert(SANDBOX_ID_LABEL.into(), sandbox_id.clone());
        labels.insert("io.kubernetes.container.name".into(), "app".into());
        let mode = format!("container:{sandbox_id}");
        let pod = sandbox_pod_identity(&labels, &mode, Some((&sandbox_id, &sandbox)))
            .pod
            .unwrap();
        // The sandbox's identity, whatever the container's own labels claim.
        assert_eq!(
            (
                pod.namespace.as_str(),
                pod.pod_name.as_str(),
                pod.pod_uid.as_str(),
                pod.container_name.as_str()
            ),
            ("shop", "web-0", "u-9", "app")
        );
        assert_eq!(pod.labels, map(&[("app.kubernetes.io/name", "web")]));
        // An image naming a real sandbox: a plain container does not share its network.
        let id = sandbox_pod_identity(&labels, "none", Some((&sandbox_id, &sandbox)));
        assert_eq!(id.pod, None);
        assert!(
            id.distrusted
                .unwrap()
                .contains("does not share its network namespace")
        );
        // A "sandbox" that is not one.
        let plain = map(POD);
        let id = sandbox_pod_identity(&labels, &mode, Some((&sandbox_id, &plain)));
        assert_eq!(id.pod, None);
        // Not found.
        assert_eq!(sandbox_pod_identity(&labels, &mode, None).pod, None);
    }

    #[test]
    fn containerd_identity_comes_from_the_cri_annotations_only() {
        let annotations = map(&[
            (CRI_SANDBOX_NAME, "web-0"),
            (CRI_SANDBOX_NAMESPACE, "shop"),
            (CRI_CONTAINER_NAME, "app"),
        ]);
        // Labels (which the image may have brought) claim another pod: the annotations win;
        // the uid comes from the label when containerd wrote no uid annotation.
        let id = cri_pod_identity(&annotations, &map(POD));
        let pod = id.pod.unwrap();
        assert_eq!(
            (
                pod.namespace.as_str(),
                pod.pod_name.as_str(),
                pod.pod_uid.as_str(),
                pod.container_name.as_str()
            ),
            ("shop", "web-0", "u-1", "app")
        );
        let mut with_uid = annotations.clone();
        with_uid.insert(CRI_SANDBOX_UID.into(), "u-2".into());
        assert_eq!(
            cri_pod_identity(&with_uid, &map(POD)).pod.unwrap().pod_uid,
            "u-2"
        );
        // No annotations: labels alone are no pod.
        let id = cri_pod_identity(&BTreeMap::new(), &map(POD));
        assert_eq!(id.pod, None);
        assert!(
            id.distrusted
                .unwrap()
                .contains("not made by the CRI plugin")
        );
    }
}
