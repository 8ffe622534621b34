//! The audit's rules: a closed set, each with a stable id, a severity and the fix to write.

use serde::Serialize;

/// How bad a finding is; `--fail-on` compares against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingSeverity {
    Info,
    Warning,
    Error,
}

impl FindingSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingSeverity::Info => "info",
            FindingSeverity::Warning => "warning",
            FindingSeverity::Error => "error",
        }
    }

    /// SARIF's `level` for it.
    pub fn sarif_level(self) -> &'static str {
        match self {
            FindingSeverity::Info => "note",
            FindingSeverity::Warning => "warning",
            FindingSeverity::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    ReadOnlyRootFilesystem,
    AllowPrivilegeEscalation,
    RunAsNonRoot,
    ImageDigest,
    EmptyDirSizeLimit,
    Privileged,
    CapabilitiesAdded,
    CapabilitiesNotDropped,
    HostPath,
    NamespacePodSecurity,
    NamespaceNotInInput,
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl Rule {
    pub const ALL: [Rule; 11] = [
        Rule::ReadOnlyRootFilesystem,
        Rule::AllowPrivilegeEscalation,
        Rule::RunAsNonRoot,
        Rule::ImageDigest,
        Rule::EmptyDirSizeLimit,
        Rule::Privileged,
        Rule::CapabilitiesAdded,
        Rule::CapabilitiesNotDropped,
        Rule::HostPath,
        Rule::NamespacePodSecurity,
        Rule::NamespaceNotInInput,
    ];

    /// Stable: CI suppressions and SARIF baselines key on it. Never renumber.
    pub fn id(self) -> &'static str {
        match self {
            Rule::ReadOnlyRootFilesystem => "DW-K8S-001",
            Rule::AllowPrivilegeEscalation => "DW-K8S-002",
            Rule::RunAsNonRoot => "DW-K8S-003",
            Rule::ImageDigest => "DW-K8S-004",
            Rule::EmptyDirSizeLimit => "DW-K8S-005",
            Rule::Privileged => "DW-K8S-006",
            Rule::CapabilitiesAdded => "DW-K8S-007",
            Rule::CapabilitiesNotDropped => "DW-K8S-008",
            Rule::HostPath => "DW-K8S-009",
            Rule::NamespacePodSecurity => "DW-K8S-010",
            Rule::NamespaceNotInInput => "DW-K8S-011",
        }
    }

    /// A short name (SARIF `name`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::ReadOnlyRootFilesystem => "ReadOnlyRootFilesystem",
            Rule::AllowPrivilegeEscalation => "AllowPrivilegeEscalation",
            Rule::RunAsNonRoot => "RunAsNonRoot",
            Rule::ImageDigest => "ImageNotPinnedByDigest",
            Rule::EmptyDirSizeLimit => "EmptyDirWithoutSizeLimit",
            Rule::Privileged => "PrivilegedContainer",
            Rule::CapabilitiesAdded => "CapabilitiesAdded",
            Rule::CapabilitiesNotDropped => "CapabilitiesNotDroppedAll",
            Rule::HostPath => "HostPathVolume",
            Rule::NamespacePodSecurity => "NamespaceNotRestricted",
            Rule::NamespaceNotInInput => "NamespaceNotInInput",
        }
    }

    pub fn severity(self) -> FindingSeverity {
        match self {
            Rule::Privileged | Rule::HostPath => FindingSeverity::Error,
            Rule::NamespaceNotInInput => FindingSeverity::Info,
            _ => FindingSeverity::Warning,
        }
    }

    /// One line: what the rule wants.
    pub fn title(self) -> &'static str {
        match self {
            Rule::ReadOnlyRootFilesystem => "containers run with a read-only root filesystem",
            Rule::AllowPrivilegeEscalation => "containers set allowPrivilegeEscalation: false",
            Rule::RunAsNonRoot => "containers (or their pod) set runAsNonRoot: true",
            Rule::ImageDigest => "images are pinned by digest (image@sha256:...)",
            Rule::EmptyDirSizeLimit => "writable emptyDir volumes have a sizeLimit",
            Rule::Privileged => "containers are not privileged",
            Rule::CapabilitiesAdded => {
                "containers add no capabilities (NET_BIND_SERVICE at most, as the restricted Pod Security Standard allows)"
            }
            Rule::CapabilitiesNotDropped => "containers drop ALL capabilities",
            Rule::HostPath => "pods mount no hostPath volumes",
            Rule::NamespacePodSecurity => {
                "namespaces enforce the restricted Pod Security Standard (pod-security.kubernetes.io/enforce: restricted)"
            }
            Rule::NamespaceNotInInput => {
                "the namespaces workloads run in are in the input, so their Pod Security labels can be checked"
            }
        }
    }

    /// Why it matters for drift.
    pub fn why(self) -> &'static str {
        match self {
            Rule::ReadOnlyRootFilesystem => {
                "A writable root filesystem lets a compromised process drop and run new binaries or rewrite the image's files: the drift driftwatch detects at runtime is prevented here."
            }
            Rule::AllowPrivilegeEscalation => {
                "Without it, setuid binaries and file capabilities can give a process more privileges than its parent (no_new_privs is not set)."
            }
            Rule::RunAsNonRoot => {
                "A container running as root owns every file of its image layer and is one kernel bug away from the host."
            }
            Rule::ImageDigest => {
                "A tag can be moved: the image that runs tomorrow may not be the one reviewed today, and drift detection compares against whatever was pulled."
            }
            Rule::EmptyDirSizeLimit => {
                "An unbounded emptyDir is a writable place to stage payloads and can fill the node's disk (or memory, for medium: Memory)."
            }
            Rule::Privileged => {
                "A privileged container has every capability and every device of the host: it can mount the host's disks and load kernel modules."
            }
            Rule::CapabilitiesAdded => {
                "Added capabilities (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, ...) widen what an attacker in the container can do to the node."
            }
            Rule::CapabilitiesNotDropped => {
                "The runtime's default capability set (CHOWN, DAC_OVERRIDE, SETUID, NET_RAW, ...) is more than applications need."
            }
            Rule::HostPath => {
                "A hostPath mount exposes the node's filesystem to the container: code and data written there outlive the pod and escape its image."
            }
            Rule::NamespacePodSecurity => {
                "Without the label the API server admits pods that break these rules, whatever the manifests under review say."
            }
            Rule::NamespaceNotInInput => {
                "The namespace object is managed elsewhere; check its labels with kubectl get namespace -o yaml."
            }
        }
    }

    /// What to write (modelled on a workload that passes every rule).
    pub fn fix(self) -> &'static str {
        match self {
            Rule::ReadOnlyRootFilesystem => {
                "securityContext:\n  readOnlyRootFilesystem: true\n# and mount an emptyDir (with a sizeLimit) where the app must write, e.g. /tmp"
            }
            Rule::AllowPrivilegeEscalation => "securityContext:\n  allowPrivilegeEscalation: false",
            Rule::RunAsNonRoot => {
                "securityContext:\n  runAsNonRoot: true\n  runAsUser: 10001   # if the image's USER is root or a name"
            }
            Rule::ImageDigest => {
                "image: registry.example/app:v1.0@sha256:<64 hex digits>   # crane digest / docker buildx imagetools inspect"
            }
            Rule::EmptyDirSizeLimit => "emptyDir:\n  sizeLimit: 100Mi",
            Rule::Privileged => {
                "securityContext:\n  privileged: false   # or remove it; grant single capabilities instead"
            }
            Rule::CapabilitiesAdded => {
                "securityContext:\n  capabilities:\n    drop: [\"ALL\"]\n    add: [\"NET_BIND_SERVICE\"]   # only if it binds a port below 1024"
            }
            Rule::CapabilitiesNotDropped => {
                "securityContext:\n  capabilities:\n    drop: [\"ALL\"]"
            }
            Rule::HostPath => {
                "volumes:\n  - name: data\n    emptyDir:\n      sizeLimit: 100Mi   # or a PersistentVolumeClaim, a configMap or a secret"
            }
            Rule::NamespacePodSecurity => {
                "metadata:\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/audit: restricted\n    pod-security.kubernetes.io/warn: restricted"
            }
            Rule::NamespaceNotInInput => {
                "kubectl label namespace <name> pod-security.kubernetes.io/enforce=restricted   # or add its Namespace manifest to the input"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_stable() {
        let ids: std::collections::BTreeSet<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), Rule::ALL.len());
        assert_eq!(Rule::ReadOnlyRootFilesystem.id(), "DW-K8S-001");
        assert_eq!(Rule::NamespaceNotInInput.id(), "DW-K8S-011");
        assert_eq!(
            serde_json::to_value(Rule::HostPath).unwrap(),
            serde_json::json!("DW-K8S-009")
        );
    }
}
