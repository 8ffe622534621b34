//! A Microsoft-Defender-for-Containers-style document per alert (`alertType`, `severity`,
//! `description`, `remediationSteps`, ...), for users whose SIEM already reads Defender's.

use driftwatch_model::{Alert, Priority};
use serde_json::{Map, Value, json};

/// What drifted, from the alert's tags (`binary_drift`, ...) or its `drift.kind` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefenderDriftKind {
    Binary,
    File,
    Package,
    Config,
    Network,
    Image,
    /// Another container alert (e.g. a shell in a container).
    Other,
}

impl DefenderDriftKind {
    pub fn of(alert: &Alert) -> DefenderDriftKind {
        for t in &alert.tags {
            let k = match t.as_str() {
                "binary_drift" => DefenderDriftKind::Binary,
                "file_drift" => DefenderDriftKind::File,
                "package_drift" => DefenderDriftKind::Package,
                "config_drift" => DefenderDriftKind::Config,
                "network_drift" => DefenderDriftKind::Network,
                "image_drift" => DefenderDriftKind::Image,
                _ => continue,
            };
            return k;
        }
        match alert
            .output_fields
            .get("drift.kind")
            .and_then(Value::as_str)
        {
            Some("binary") => DefenderDriftKind::Binary,
            Some("file") => DefenderDriftKind::File,
            Some("package") => DefenderDriftKind::Package,
            Some("config") => DefenderDriftKind::Config,
            Some("network") => DefenderDriftKind::Network,
            Some("image") => DefenderDriftKind::Image,
            _ => DefenderDriftKind::Other,
        }
    }

    /// Defender's `K8S.NODE_ImageBinaryDrift` for binaries; the same pattern for the others.
    pub fn alert_type(self) -> &'static str {
        match self {
            DefenderDriftKind::Binary => "K8S.NODE_ImageBinaryDrift",
            DefenderDriftKind::File => "K8S.NODE_ImageFileDrift",
            DefenderDriftKind::Package => "K8S.NODE_ImagePackageDrift",
            DefenderDriftKind::Config => "K8S.NODE_ContainerConfigDrift",
            DefenderDriftKind::Network => "K8S.NODE_ContainerNetworkDrift",
            DefenderDriftKind::Image => "K8S.NODE_ImageIntegrityDrift",
            DefenderDriftKind::Other => "K8S.NODE_ContainerDrift",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            DefenderDriftKind::Binary => {
                "Binary executed that was not part of the original container image"
            }
            DefenderDriftKind::File => {
                "File in the container changed from the original container image"
            }
            DefenderDriftKind::Package => {
                "Packages installed, removed or changed in a running container"
            }
            DefenderDriftKind::Config => {
                "Container runs with a configuration that drifts from a hardened baseline"
            }
            DefenderDriftKind::Network => {
                "Container made a network connection or opened a listener outside its learned baseline"
            }
            DefenderDriftKind::Image => {
                "Container image is not approved or its layers do not match their digests"
            }
            DefenderDriftKind::Other => {
                "Container activity that an immutable workload should not show"
            }
        }
    }

    pub fn remediation_steps(self) -> &'static [&'static str] {
        match self {
            DefenderDriftKind::Binary => &[
                "Investigate the binary origin and purpose",
                "Check if the container was compromised",
                "Rebuild the container from a clean image",
                "Enable readOnlyRootFilesystem",
            ],
            DefenderDriftKind::File => &[
                "Compare the changed file with the image's copy (driftwatch diff)",
                "Check which process wrote it and whether the container was compromised",
                "Redeploy the pod from its image",
                "Enable readOnlyRootFilesystem and mount writable paths as volumes",
            ],
            DefenderDriftKind::Package => &[
                "List the packages that changed and the process that changed them",
                "Check if the container was compromised",
                "Install packages at image build time, never at runtime",
                "Rebuild and redeploy from a clean image",
            ],
            DefenderDriftKind::Config => &[
                "Review the container's securityContext, mounts and host namespaces",
                "Remove privileged mode, host mounts and added capabilities it does not need",
                "Enforce the restrictions with Pod Security admission or a policy engine",
            ],
            DefenderDriftKind::Network => &[
                "Identify the destination or listener and the process behind it",
                "Check if the container was compromised (reverse shell, C2, miner)",
                "Apply a NetworkPolicy that allows only the expected traffic",
                "Isolate the pod if the traffic is not explained",
            ],
            DefenderDriftKind::Image => &[
                "Verify the image's digest and signature against the registry",
                "Deploy only approved images (admission control)",
                "Rebuild the image from a trusted source",
            ],
            DefenderDriftKind::Other => &[
                "Investigate the process and the user behind it",
                "Check if the container was compromised",
                "Redeploy the pod from its image",
            ],
        }
    }
}

/// Defender's four severities from Falco's eight priorities.
pub fn severity(p: Priority) -> &'static str {
    match p {
        Priority::Emergency | Priority::Alert | Priority::Critical => "High",
        Priority::Error | Priority::Warning => "Medium",
        Priority::Notice => "Low",
        Priority::Informational | Priority::Debug => "Informational",
    }
}

fn field<'a>(alert: &'a Alert, name: &str) -> Option<&'a str> {
    alert
        .output_fields
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "<NA>")
}

/// The document for one alert. `hostname` is used when the alert names no host.
pub fn document(alert: &Alert, hostname: &str) -> Value {
    let kind = DefenderDriftKind::of(alert);
    let host = if alert.hostname.is_empty() {
        hostname
    } else {
        &alert.hostname
    };
    let container_id = field(alert, "container.id");
    let container_name = field(alert, "container.name");
    let ns = field(alert, "k8s.ns.name");
    let pod = field(alert, "k8s.pod.name");
    let image = match (
        field(alert, "container.image.repository"),
        field(alert, "container.image.tag"),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (r, _) => r.map(str::to_string),
    };
    let compromised = match (ns, pod) {
        (Some(ns), Some(pod)) => format!("{ns}/{pod}"),
        _ => container_name.or(container_id).unwrap_or(host).to_string(),
    };

    let mut ids = Vec::new();
    if container_id.is_some() || container_name.is_some() {
        ids.push(json!({"type": "Container", "containerId": container_id, "containerName": container_name}));
    }
    if let Some(i) = &image {
        ids.push(json!({"type": "ContainerImage", "image": i, "imageDigest": field(alert, "container.image.digest")}));
    }
    if let Some(pod) = pod {
        ids.push(json!({"type": "KubernetesPod", "namespace": ns, "podName": pod}));
    }
    ids.push(json!({"type": "Host", "hostName": host}));

    let mut props = Map::new();
    props.insert("rule".into(), alert.rule.clone().into());
    props.insert("priority".into(), alert.priority.as_str().into());
    props.insert("source".into(), alert.source.clone().into());
    props.insert("output".into(), alert.output.clone().into());
    props.insert("tags".into(), alert.tags.join(",").into());
    for (k, v) in &alert.output_fields {
        props.insert(k.clone(), v.clone());
    }

    json!({
        "alertType": kind.alert_type(),
        "alertDisplayName": alert.rule,
        "severity": severity(alert.priority),
        "description": kind.description(),
        "remediationSteps": kind.remediation_steps(),
        "timeGenerated": alert.time,
        "compromisedEntity": compromised,
        "resourceIdentifiers": ids,
        "productName": "driftwatch",
        "extendedProperties": props,
    })
}
