//! Container identity and the metadata an alert names: engine, name, image, Kubernetes pod.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A container's full id.
///
/// Almost always 64 lowercase hex characters: Docker, podman, CRI-O, nerdctl and every
/// Kubernetes (CRI) container have such ids ([`ContainerId::new`]). containerd alone lets its
/// clients pick any identifier (`ctr run IMAGE web-1` makes a container whose id is `web-1`):
/// [`ContainerId::named`] takes those. A named id is its own short id, whole (truncating two
/// names to 12 characters could make them collide, and the name is what the user typed); it
/// is scoped to its containerd namespace, which the id does not carry, so the same name in
/// two namespaces is one id here (see docs/limits.md).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a container id (64 hex characters, or a containerd identifier, expected): {0:?}")]
pub struct ContainerIdError(pub String);

impl ContainerId {
    pub fn new(id: &str) -> Result<Self, ContainerIdError> {
        let ok = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Self(id.to_ascii_lowercase()))
        } else {
            Err(ContainerIdError(id.to_string()))
        }
    }

    /// A 64-hex id, or an identifier a containerd client chose: containerd's grammar
    /// `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76 characters. Case is kept for names.
    pub fn named(id: &str) -> Result<Self, ContainerIdError> {
        if let Ok(hex) = Self::new(id) {
            return Ok(hex);
        }
        if is_containerd_identifier(id) {
            Ok(Self(id.to_string()))
        } else {
            Err(ContainerIdError(id.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a 64-hex id (as opposed to a containerd client's chosen name).
    pub fn is_hex(&self) -> bool {
        self.0.len() == 64 && self.0.bytes().all(|b| b.is_ascii_hexdigit())
    }

    /// The 12-character short id, as Falco's `container.id` and `docker ps` print it; a
    /// named id whole.
    pub fn short(&self) -> &str {
        if self.is_hex() {
            &self.0[..12]
        } else {
            &self.0
        }
    }
}

/// containerd's identifier rule (`identifiers.Validate`): alphanumerics separated by single
/// `.`, `_` or `-`, starting and ending with an alphanumeric, 1 to 76 characters.
pub fn is_containerd_identifier(s: &str) -> bool {
    if s.is_empty() || s.len() > 76 {
        return false;
    }
    let mut prev_sep = true;
    for b in s.bytes() {
        let sep = matches!(b, b'.' | b'_' | b'-');
        if sep && prev_sep || !sep && !b.is_ascii_alphanumeric() {
            return false;
        }
        prev_sep = sep;
    }
    !prev_sep
}

impl TryFrom<String> for ContainerId {
    type Error = ContainerIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::named(&s)
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContainerId({})", self.short())
    }
}

/// Which engine runs a container. Identity never depends on it; metadata comes from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Docker,
    Containerd,
    Podman,
    Crio,
    /// Seen in the kernel (cgroup, mounts) but no engine answered for it.
    Unknown,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Containerd => "containerd",
            Engine::Podman => "podman",
            Engine::Crio => "cri-o",
            Engine::Unknown => "unknown",
        }
    }
}

/// The image a container runs, as Falco names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// e.g. `nginx`, `registry.example.com/team/app`.
    pub repository: String,
    /// e.g. `1.27`; empty when the container was started by digest or id.
    pub tag: String,
    /// The repository digest (`sha256:...`) when the engine knows one, else the image id.
    pub digest: Option<String>,
    /// The image id (the config's digest), `sha256:...`.
    pub id: Option<String>,
}

impl ImageRef {
    /// Splits `repo[:tag][@digest]`, taking care of registry ports (`host:5000/app:1`).
    pub fn parse(reference: &str) -> ImageRef {
        let (name, digest) = match reference.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (reference, None),
        };
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name[slash..].rfind(':') {
            Some(i) => (&name[..slash + i], &name[slash + i + 1..]),
            None => (name, ""),
        };
        ImageRef {
            repository: repository.to_string(),
            tag: tag.to_string(),
            digest,
            id: None,
        }
    }

    /// `repository:tag` (or the repository alone when there is no tag), Falco's `container.image`.
    pub fn display_name(&self) -> String {
        if self.tag.is_empty() {
            self.repository.clone()
        } else {
            format!("{}:{}", self.repository, self.tag)
        }
    }
}

/// Kubernetes pod identity, from what the runtime says of the pod (the CRI plugin's spec
/// annotations, the CRI's pod sandbox) or the labels the kubelet sets (`io.kubernetes.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesMeta {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub container_name: String,
    /// The pod's own labels (`metadata.labels`: `app`, `app.kubernetes.io/name`, ...), as the
    /// runtime's pod sandbox carries them; empty when no runtime said (Falco's
    /// `k8s.pod.label[...]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl KubernetesMeta {
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<KubernetesMeta> {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let pod_name = labels.get("io.kubernetes.pod.name")?.clone();
        Some(KubernetesMeta {
            namespace: get("io.kubernetes.pod.namespace"),
            pod_name,
            pod_uid: get("io.kubernetes.pod.uid"),
            container_name: get("io.kubernetes.container.name"),
            labels: BTreeMap::new(),
        })
    }
}

/// What is known about a container when an event names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMeta {
    pub id: ContainerId,
    pub engine: Engine,
    /// Without the leading `/` Docker puts on names.
    pub name: String,
    pub image: ImageRef,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub k8s: Option<KubernetesMeta>,
    /// The container's entrypoint + command, as configured (for `container_entrypoint`).
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// Whether the engine runs it privileged (Falco's `container.privileged`); `None` when
    /// the engine did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Its mounts as the engine reports them (Falco's `container.mount.*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// When the container started, nanoseconds since the epoch (`container.start_ts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ns: Option<u64>,
}

/// One mount of a container, as Falco's `container.mount[...]` prints it:
/// `source:dest:mode:rdwrite:propagation`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// The host path (or volume name) mounted.
    pub source: String,
    /// Where it is mounted inside the container.
    pub dest: String,
    /// The engine's mode string (`z`, `ro`, ...), empty when none.
    #[serde(default)]
    pub mode: String,
    /// Mounted read-write.
    pub rw: bool,
    /// Propagation (`rprivate`, `rshared`, ...), empty when not said.
    #[serde(default)]
    pub propagation: String,
}

impl ContainerMeta {
    /// Metadata for a container only the kernel has told us about.
    pub fn unknown(id: ContainerId) -> ContainerMeta {
        ContainerMeta {
            id,
            engine: Engine::Unknown,
            name: String::new(),
            image: ImageRef::default(),
            labels: BTreeMap::new(),
            k8s: None,
            entrypoint: Vec::new(),
            privileged: None,
            mounts: Vec::new(),
            started_ns: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_id_validates_and_shortens() {
        let id = ContainerId::new(&"AB".repeat(32)).unwrap();
        assert_eq!(id.short(), "abababababab");
        assert!(ContainerId::new("abc").is_err());
        assert!(ContainerId::new(&"g".repeat(64)).is_err());
        assert!(id.is_hex());
    }

    #[test]
    fn named_ids_follow_containerd_grammar() {
        let hex = ContainerId::named(&"AB".repeat(32)).unwrap();
        assert!(hex.is_hex());
        assert_eq!(hex.short(), "abababababab");
        let web = ContainerId::named("web-1").unwrap();
        assert!(!web.is_hex());
        assert_eq!((web.as_str(), web.short()), ("web-1", "web-1"));
        let long = "a-rather-long-container-name";
        assert_eq!(ContainerId::named(long).unwrap().short(), long);
        for bad in ["", "-a", "a-", "a..b", "a/b", "a b", &"x".repeat(77)] {
            assert!(ContainerId::named(bad).is_err(), "{bad:?}");
        }
        assert!(ContainerId::new("web-1").is_err());
        // Serde takes either form, so stored alerts of named containers read back.
        let back: ContainerId = serde_json::from_str("\"web-1\"").unwrap();
        assert_eq!(back, web);
    }

    #[test]
    fn image_reference_parsing() {
        let r = ImageRef::parse("nginx:1.27");
        assert_eq!((r.repository.as_str(), r.tag.as_str()), ("nginx", "1.27"));
        let r = ImageRef::parse("registry.local:5000/team/app");
        assert_eq!(
            (r.repository.as_str(), r.tag.as_str()),
            ("registry.local:5000/team/app", "")
        );
        let r = ImageRef::parse("registry.local:5000/app:2@sha256:abcd");
        assert_eq!(r.repository, "registry.local:5000/app");
        assert_eq!(r.tag, "2");
        assert_eq!(r.digest.as_deref(), Some("sha256:abcd"));
        assert_eq!(r.display_name(), "registry.local:5000/app:2");
    }

    #[test]
    fn kubernetes_from_cri_labels() {
        let mut labels = BTreeMap::new();
        assert_eq!(KubernetesMeta::from_labels(&labels), None);
        labels.insert("io.kubernetes.pod.name".into(), "web-0".into());
        labels.insert("io.kubernetes.pod.namespace".into(), "prod".into());
        let k = KubernetesMeta::from_labels(&labels).unwrap();
        assert_eq!(k.pod_name, "web-0");
        assert_eq!(k.namespace, "prod");
    }
}
