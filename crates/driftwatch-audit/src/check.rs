//! Kubernetes objects to findings: finds the pod spec of each workload kind, resolves what a
//! container inherits from its pod, and applies every rule. No I/O.

use serde::Serialize;

use crate::rule::{FindingSeverity, Rule};
use crate::yaml::{Node, NodeKind};

/// The object a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Where something is: file, 1-based document number, path within it, line and column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub document: usize,
    /// Helm's `# Source:` comment of the document: the template it was rendered from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub path: String,
    pub line: u64,
    pub column: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: FindingSeverity,
    #[serde(flatten)]
    pub location: Location,
    pub object: ObjectRef,
    /// The container's name (`containers`, `initContainers` or `ephemeralContainers`); none
    /// for pod-level and namespace findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub message: String,
    pub fix: &'static str,
}

/// An object that was not audited (a kind without pods, such as a Service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    #[serde(flatten)]
    pub location: Location,
    pub kind: String,
    pub message: String,
}

/// Input that could not be audited.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputErrorKind {
    #[error("cannot read: {0}")]
    Read(String),
    #[error("file is {size} bytes, more than the {max} bytes a manifest may have")]
    TooLarge { size: u64, max: u64 },
    #[error("binary file (a NUL byte at offset {offset}), not YAML or JSON")]
    Binary { offset: usize },
    #[error("not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("invalid YAML: {0}")]
    Syntax(String),
    #[error("document is {found}, not a Kubernetes object (a mapping)")]
    NotMapping { found: &'static str },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputError {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    #[serde(serialize_with = "display")]
    pub message: InputErrorKind,
}

fn display<S: serde::Serializer>(k: &InputErrorKind, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(k)
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": ")?;
        if let Some(d) = self.document {
            write!(f, "document {d}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// A workload that names its namespace: checked against the Namespace objects of the input.
#[derive(Clone, Debug)]
pub(crate) struct NamespaceUse {
    pub namespace: String,
    pub location: Location,
    pub object: ObjectRef,
}

/// Everything one document yields.
#[derive(Debug, Default)]
pub(crate) struct DocAudit {
    pub findings: Vec<Finding>,
    pub notes: Vec<Note>,
    pub errors: Vec<InputError>,
    pub workloads: usize,
    pub declared_namespaces: Vec<String>,
    pub namespace_uses: Vec<NamespaceUse>,
}

const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

/// The path to the pod spec (`PodSpec`) of each workload kind.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

struct Doc<'a> {
    file: &'a str,
    /// The document's text, for [`Node::text`].
    src: &'a str,
    source: Option<&'a str>,
    document: usize,
    out: DocAudit,
}

/// A container and what it inherits.
struct Container<'a> {
    node: &'a Node,
    path: String,
    name: String,
}

impl<'a> Doc<'a> {
    fn loc(&self, path: String, at: &Node) -> Location {
        Location {
            file: self.file.to_string(),
            document: self.document,
            source: self.source.map(str::to_string),
            path,
            line: at.line,
            column: at.col,
        }
    }

    fn error(&mut self, at: &Node, message: String) {
        self.out.errors.push(InputError {
            file: self.file.to_string(),
            document: Some(self.document),
            line: Some(at.line),
            column: Some(at.col),
            message: InputErrorKind::Invalid(message),
        });
    }

    fn finding(
        &mut self,
        rule: Rule,
        object: &ObjectRef,
        container: Option<&str>,
        path: String,
        at: &Node,
        message: String,
    ) {
        let location = self.loc(path, at);
        self.out.findings.push(Finding {
            rule,
            severity: rule.severity(),
            location,
            object: object.clone(),
            container: container.map(str::to_string),
            message,
            fix: rule.fix(),
        });
    }

    /// A mapping at `key` of `parent`, if present; a present non-mapping is an error.
    fn optional_map(&mut self, parent: &'a Node, key: &str, path: &str) -> Option<&'a Node> {
        let (k, v) = parent.entry(key)?;
        match v.kind {
            NodeKind::Map(_) => Some(v),
            NodeKind::Null => None,
            _ => {
                self.error(
                    k,
                    format!(
                        "`{}` is {}, expected a mapping",
                        join(path, key),
                        v.type_name()
                    ),
                );
                None
            }
        }
    }

    /// A list at `key` of `parent`, if present; a present non-list is an error.
    fn optional_seq(&mut self, parent: &'a Node, key: &str, path: &str) -> Option<&'a [Node]> {
        let (k, v) = parent.entry(key)?;
        match &v.kind {
            NodeKind::Seq(items) => Some(items),
            NodeKind::Null => None,
            _ => {
                self.error(
                    k,
                    format!(
                        "`{}` is {}, expected a list",
                        join(path, key),
                        v.type_name()
                    ),
                );
                None
            }
        }
    }

    fn object(&mut self, obj: &'a Node, base: &str) {
        let kind = match obj.entry("kind") {
            Some((_, v)) if v.as_str().is_some() => v.as_str().unwrap_or_default().to_string(),
            Some((k, v)) => {
                return self.error(
                    k,
                    format!(
                        "`{}` is {}, expected a string",
                        join(base, "kind"),
                        v.type_name()
                    ),
                );
            }
            None => {
                return self.error(
                    obj,
                    format!(
                        "{}no `kind`: not a Kubernetes object",
                        if base.is_empty() {
                            String::new()
                        } else {
                            format!("`{base}`: ")
                        }
                    ),
                );
            }
        };
        let meta_path = join(base, "metadata");
        let metadata = self.optional_map(obj, "metadata", base);
        let src = self.src;
        let text = |key: &str| {
            metadata
                .and_then(|m| m.get(key))
                .and_then(|n| n.scalar(Some(src)))
        };
        let name = text("name")
            .or_else(|| text("generateName").map(|g| format!("{g}*")))
            .unwrap_or_else(|| "<unnamed>".to_string());
        let namespace = text("namespace");
        let object = ObjectRef {
            kind: kind.clone(),
            name,
            namespace: namespace.clone(),
        };

        if kind == "List" || (kind.ends_with("List") && obj.entry("items").is_some()) {
            let Some(items) = self.optional_seq(obj, "items", base) else {
                return;
            };
            for (i, item) in items.iter().enumerate() {
                let path = join(base, &format!("items[{i}]"));
                if item.is_map() {
                    self.object(item, &path);
                } else {
                    self.error(
                        item,
                        format!("`{path}` is {}, expected an object", item.type_name()),
                    );
                }
            }
            return;
        }
        if kind == "Namespace" {
            return self.namespace(obj, metadata, &meta_path, object);
        }
        let Some(spec_keys) = pod_spec_path(&kind) else {
            let location = self.loc(base.to_string(), obj);
            self.out.notes.push(Note {
                location,
                kind: kind.clone(),
                message: format!("{object}: kind {kind} runs no pods: not audited"),
            });
            return;
        };
        self.out.workloads += 1;
        let mut node = obj;
        let mut path = base.to_string();
        for key in spec_keys {
            let next = join(&path, key);
            match node.entry(key) {
                Some((_, v)) if v.is_map() => node = v,
                Some((k, v)) => {
                    return self.error(
                        k,
                        format!(
                            "{object}: `{next}` is {}, expected a mapping",
                            v.type_name()
                        ),
                    );
                }
                None => {
                    return self.error(
                        node,
                        format!("{object}: `{next}` is missing (the {kind}'s pod spec)"),
                    );
                }
            }
            path = next;
        }
        if let Some(ns) = namespace {
            let at = metadata
                .and_then(|m| m.entry("namespace"))
                .map_or(obj, |(_, v)| v);
            let location = self.loc(join(&meta_path, "namespace"), at);
            self.out.namespace_uses.push(NamespaceUse {
                namespace: ns,
                location,
                object: object.clone(),
            });
        }
        self.pod_spec(&object, node, &path);
    }

    fn namespace(
        &mut self,
        obj: &'a Node,
        metadata: Option<&'a Node>,
        meta_path: &str,
        object: ObjectRef,
    ) {
        let Some(name) = metadata
            .and_then(|m| m.get("name"))
            .and_then(|n| n.scalar(Some(self.src)))
        else {
            return self.error(obj, "Namespace without `metadata.name`".to_string());
        };
        self.out.declared_namespaces.push(name.clone());
        let label_path = format!("{}[\"{ENFORCE_LABEL}\"]", join(meta_path, "labels"));
        let labels = metadata.and_then(|m| self.optional_map(m, "labels", meta_path));
        match labels.and_then(|l| l.entry(ENFORCE_LABEL)) {
            Some((_, v)) if v.scalar(Some(self.src)).as_deref() == Some("restricted") => {}
            Some((k, v)) => self.finding(
                Rule::NamespacePodSecurity,
                &object,
                None,
                label_path,
                k,
                format!(
                    "namespace {name} enforces Pod Security level {} instead of restricted",
                    v.scalar(Some(self.src))
                        .map_or_else(|| v.describe(), |s| format!("{s:?}"))
                ),
            ),
            None => {
                let at = metadata
                    .and_then(|m| m.entry("labels").or_else(|| m.entry("name")))
                    .map_or(obj, |(k, _)| k);
                self.finding(
                    Rule::NamespacePodSecurity,
                    &object,
                    None,
                    label_path,
                    at,
                    format!(
                        "namespace {name} has no {ENFORCE_LABEL} label: the API server admits privileged pods into it"
                    ),
                );
            }
        }
    }

    fn pod_spec(&mut self, object: &ObjectRef, spec: &'a Node, spec_path: &str) {
        let pod_sc = self.optional_map(spec, "securityContext", spec_path);
        let mut containers = Vec::new();
        for field in ["initContainers", "containers", "ephemeralContainers"] {
            let list = self.optional_seq(spec, field, spec_path);
            if field == "containers" && list.is_none_or(<[Node]>::is_empty) {
                let at = spec.entry(field).map_or(spec, |(k, _)| k);
                self.error(
                    at,
                    format!(
                        "{object}: `{}` is missing or empty: a pod needs a container",
                        join(spec_path, field)
                    ),
                );
            }
            for (i, c) in list.unwrap_or_default().iter().enumerate() {
                let path = format!("{}[{i}]", join(spec_path, field));
                if !c.is_map() {
                    self.error(
                        c,
                        format!(
                            "{object}: `{path}` is {}, expected a container",
                            c.type_name()
                        ),
                    );
                    continue;
                }
                let base = c
                    .get("name")
                    .and_then(|n| n.scalar(Some(self.src)))
                    .unwrap_or_else(|| format!("#{i}"));
                let name = match field {
                    "initContainers" => format!("{base} (init)"),
                    "ephemeralContainers" => format!("{base} (ephemeral)"),
                    _ => base,
                };
                containers.push(Container {
                    node: c,
                    path,
                    name,
                });
            }
        }
        let spec_sc_path = join(spec_path, "securityContext");
        for c in &containers {
            self.container(object, c, pod_sc, &spec_sc_path);
        }
        self.volumes(object, spec, spec_path, &containers);
    }

    fn container(
        &mut self,
        object: &ObjectRef,
        c: &Container<'a>,
        pod_sc: Option<&'a Node>,
        pod_sc_path: &str,
    ) {
        let name = Some(c.name.as_str());
        let sc_path = join(&c.path, "securityContext");
        let sc = self.optional_map(c.node, "securityContext", &c.path);
        let entry = |key: &str| sc.and_then(|s| s.entry(key));

        match entry("readOnlyRootFilesystem") {
            Some((_, v)) if v.kind == NodeKind::Bool(true) => {}
            Some((k, v)) => self.finding(
                Rule::ReadOnlyRootFilesystem,
                object,
                name,
                join(&sc_path, "readOnlyRootFilesystem"),
                k,
                format!(
                    "readOnlyRootFilesystem is {}: the container can write to its image's filesystem",
                    v.describe()
                ),
            ),
            None => self.finding(
                Rule::ReadOnlyRootFilesystem,
                object,
                name,
                join(&sc_path, "readOnlyRootFilesystem"),
                c.node,
                "readOnlyRootFilesystem is not set (the default is a writable root filesystem)"
                    .to_string(),
            ),
        }

        match entry("allowPrivilegeEscalation") {
            Some((_, v)) if v.kind == NodeKind::Bool(false) => {}
            Some((k, v)) => self.finding(
                Rule::AllowPrivilegeEscalation,
                object,
                name,
                join(&sc_path, "allowPrivilegeEscalation"),
                k,
                format!(
                    "allowPrivilegeEscalation is {}: setuid binaries can gain privileges",
                    v.describe()
                ),
            ),
            None => self.finding(
                Rule::AllowPrivilegeEscalation,
                object,
                name,
                join(&sc_path, "allowPrivilegeEscalation"),
                c.node,
                "allowPrivilegeEscalation is not set (the default allows it)".to_string(),
            ),
        }

        // runAsNonRoot is the one of these a pod's securityContext sets for its containers;
        // the container's own value wins.
        let pod_entry = pod_sc.and_then(|s| s.entry("runAsNonRoot"));
        match (entry("runAsNonRoot"), pod_entry) {
            (Some((_, v)), _) if v.kind == NodeKind::Bool(true) => {}
            (Some((k, v)), pod) => {
                let overrides = if pod.is_some_and(|(_, p)| p.kind == NodeKind::Bool(true)) {
                    " (overriding the pod's true)"
                } else {
                    ""
                };
                self.finding(
                    Rule::RunAsNonRoot,
                    object,
                    name,
                    join(&sc_path, "runAsNonRoot"),
                    k,
                    format!(
                        "runAsNonRoot is {}{overrides}: the container may run as root",
                        v.describe()
                    ),
                );
            }
            (None, Some((_, p))) if p.kind == NodeKind::Bool(true) => {}
            (None, Some((k, p))) => self.finding(
                Rule::RunAsNonRoot,
                object,
                name,
                join(pod_sc_path, "runAsNonRoot"),
                k,
                format!(
                    "the pod's runAsNonRoot is {} and the container does not override it: it may run as root",
                    p.describe()
                ),
            ),
            (None, None) => self.finding(
                Rule::RunAsNonRoot,
                object,
                name,
                join(&sc_path, "runAsNonRoot"),
                c.node,
                "runAsNonRoot is set neither on the container nor on the pod: it may run as root"
                    .to_string(),
            ),
        }

        if let Some((k, v)) = entry("privileged")
            && v.kind == NodeKind::Bool(true)
        {
            self.finding(
                Rule::Privileged,
                object,
                name,
                join(&sc_path, "privileged"),
                k,
                "the container is privileged: every capability and device of the node".to_string(),
            );
        }

        self.capabilities(object, c, sc, &sc_path);
        self.image(object, c);
    }

    fn capabilities(
        &mut self,
        object: &ObjectRef,
        c: &Container<'a>,
        sc: Option<&'a Node>,
        sc_path: &str,
    ) {
        let name = Some(c.name.as_str());
        let caps_path = join(sc_path, "capabilities");
        let caps_entry = sc.and_then(|s| s.entry("capabilities"));
        let caps = sc.and_then(|s| self.optional_map(s, "capabilities", sc_path));
        let strings = |items: &[Node]| -> Vec<String> {
            items
                .iter()
                .filter_map(Node::as_str)
                .map(str::to_string)
                .collect()
        };

        if let Some(caps) = caps
            && let Some(add) = self.optional_seq(caps, "add", &caps_path)
        {
            let extra: Vec<String> = strings(add)
                .into_iter()
                .filter(|c| {
                    let c = c.to_ascii_uppercase();
                    c != "NET_BIND_SERVICE" && c != "CAP_NET_BIND_SERVICE"
                })
                .collect();
            if !extra.is_empty() {
                let at = caps.entry("add").map_or(caps, |(k, _)| k);
                self.finding(
                    Rule::CapabilitiesAdded,
                    object,
                    name,
                    join(&caps_path, "add"),
                    at,
                    format!("the container adds capabilities {}", extra.join(", ")),
                );
            }
        }

        let drop_entry = caps.and_then(|c| c.entry("drop"));
        let drop = caps.and_then(|cp| self.optional_seq(cp, "drop", &caps_path));
        if drop.is_some_and(|d| strings(d).iter().any(|s| s == "ALL")) {
            return;
        }
        let (at, message) = match (drop_entry, caps_entry) {
            (Some((k, _)), _) => (
                k,
                format!(
                    "capabilities.drop is [{}], without ALL: the runtime's default capabilities stay",
                    drop.map(|d| strings(d).join(", ")).unwrap_or_default()
                ),
            ),
            (None, Some((k, _))) => (
                k,
                "capabilities has no drop: the runtime's default capabilities stay".to_string(),
            ),
            (None, None) => (
                c.node,
                "capabilities are not dropped: the runtime's default capabilities stay".to_string(),
            ),
        };
        self.finding(
            Rule::CapabilitiesNotDropped,
            object,
            name,
            join(&caps_path, "drop"),
            at,
            message,
        );
    }

    fn image(&mut self, object: &ObjectRef, c: &Container<'a>) {
        let path = join(&c.path, "image");
        match c.node.entry("image") {
            None => self.error(
                c.node,
                format!("{object}: container {} has no `image` ({path})", c.name),
            ),
            Some((k, v)) => match v.scalar(Some(self.src)) {
                None => self.error(
                    k,
                    format!("{object}: `{path}` is {}, expected a string", v.type_name()),
                ),
                Some(image) => {
                    if let Some(problem) = digest_problem(&image) {
                        self.finding(
                            Rule::ImageDigest,
                            object,
                            Some(&c.name),
                            path,
                            v,
                            format!("image {image} {problem}"),
                        );
                    }
                }
            },
        }
    }

    fn volumes(
        &mut self,
        object: &ObjectRef,
        spec: &'a Node,
        spec_path: &str,
        containers: &[Container<'a>],
    ) {
        let Some(volumes) = self.optional_seq(spec, "volumes", spec_path) else {
            return;
        };
        for (i, vol) in volumes.iter().enumerate() {
            let path = format!("{}[{i}]", join(spec_path, "volumes"));
            if !vol.is_map() {
                self.error(
                    vol,
                    format!(
                        "{object}: `{path}` is {}, expected a volume",
                        vol.type_name()
                    ),
                );
                continue;
            }
            let src = self.src;
            let vname = vol
                .get("name")
                .and_then(|n| n.scalar(Some(src)))
                .unwrap_or_else(|| "<unnamed>".to_string());
            // (container, mountPath, writable) of every mount of this volume.
            let mounts: Vec<(String, String, bool)> = containers
                .iter()
                .flat_map(|c| {
                    c.node
                        .get("volumeMounts")
                        .and_then(Node::as_seq)
                        .unwrap_or_default()
                        .iter()
                        .filter(|m| {
                            m.get("name").and_then(|n| n.scalar(Some(src))).as_ref() == Some(&vname)
                        })
                        .map(|m| {
                            (
                                c.name.clone(),
                                m.get("mountPath")
                                    .and_then(|n| n.scalar(Some(src)))
                                    .unwrap_or_else(|| "?".to_string()),
                                m.get("readOnly").map(|r| &r.kind) != Some(&NodeKind::Bool(true)),
                            )
                        })
                })
                .collect();
            let describe = |only_writable: bool| {
                mounts
                    .iter()
                    .filter(|m| !only_writable || m.2)
                    .map(|(c, p, _)| format!("{c} at {p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };

            if let Some((k, hp)) = vol.entry("hostPath") {
                let host = hp
                    .get("path")
                    .and_then(|n| n.scalar(Some(src)))
                    .unwrap_or_else(|| "?".to_string());
                let used = if mounts.is_empty() {
                    String::new()
                } else {
                    format!(", mounted by {}", describe(false))
                };
                self.finding(
                    Rule::HostPath,
                    object,
                    None,
                    join(&path, "hostPath"),
                    k,
                    format!("volume {vname} is the node's {host} (hostPath){used}"),
                );
            }

            if let Some((k, ed)) = vol.entry("emptyDir") {
                let limited = ed
                    .get("sizeLimit")
                    .is_some_and(|l| !matches!(l.kind, NodeKind::Null));
                let writers = describe(true);
                if !limited && !writers.is_empty() {
                    let memory = if ed.get("medium").and_then(Node::as_str) == Some("Memory") {
                        " (medium: Memory: it counts against the node's RAM)"
                    } else {
                        ""
                    };
                    self.finding(
                        Rule::EmptyDirSizeLimit,
                        object,
                        None,
                        join(&path, "emptyDir.sizeLimit"),
                        k,
                        format!(
                            "emptyDir volume {vname} has no sizeLimit{memory} and is writable by {writers}"
                        ),
                    );
                }
            }
        }
    }
}

/// Why `image` is not pinned by a well-formed digest, or `None` when it is.
pub fn digest_problem(image: &str) -> Option<&'static str> {
    let Some((_, digest)) = image.rsplit_once('@') else {
        return Some("is not pinned by digest: its tag can be moved to other content");
    };
    let Some((algo, hex)) = digest.split_once(':') else {
        return Some("has a malformed digest (expected @sha256:<64 hex digits>)");
    };
    let want = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Some("has a digest of an unknown algorithm"),
    };
    if hex.len() != want
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Some("has a malformed digest (expected @sha256:<64 lowercase hex digits>)");
    }
    None
}

/// Audits one parsed document.
pub(crate) fn audit_document(
    file: &str,
    document: usize,
    src: &str,
    source: Option<&str>,
    root: &Node,
) -> DocAudit {
    let mut doc = Doc {
        file,
        src,
        source,
        document,
        out: DocAudit::default(),
    };
    if root.is_map() {
        doc.object(root, "");
    } else {
        doc.out.errors.push(InputError {
            file: file.to_string(),
            document: Some(document),
            line: Some(root.line),
            column: Some(root.col),
            message: InputErrorKind::NotMapping {
                found: root.type_name(),
            },
        });
    }
    doc.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let d = "a".repeat(64);
        assert_eq!(digest_problem(&format!("nginx:1.27@sha256:{d}")), None);
        assert_eq!(digest_problem(&format!("r.io:5000/x@sha256:{d}")), None);
        assert!(digest_problem("nginx:1.27").is_some());
        assert!(digest_problem("r.io:5000/nginx").is_some());
        assert!(digest_problem("app:v1.0@sha256:abc123...").is_some());
        assert!(digest_problem(&format!("x@md5:{d}")).is_some());
        assert!(digest_problem(&format!("x@sha256:{}", "A".repeat(64))).is_some());
    }
}
