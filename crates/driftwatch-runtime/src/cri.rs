//! A client of the Kubernetes CRI v1 API (the `k8s-cri` bindings) over a runtime's unix
//! socket: containerd's CRI plugin and CRI-O serve it. It answers what the runtime knows of
//! pods and images and no other API of theirs does: a pod's labels and annotations, its host
//! namespaces, its declared container ports, and the verbose (`info`) JSON of containers and
//! images.
//!
//! Every call is bounded by the client's timeout. Pod sandboxes are cached by id: what is
//! read of them (metadata, labels, namespace options, port mappings) is fixed when the kubelet
//! creates the sandbox.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Status};
use driftwatch_model::Engine;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerStatusRequest, ContainerStatusResponse, ImageSpec, ImageStatusRequest,
    ImageStatusResponse, ListContainersRequest, ListPodSandboxRequest, PodSandboxStatusRequest,
    PodSandboxStatusResponse, VersionRequest, VersionResponse,
};
use tokio::sync::Mutex;

use crate::source::{ContainerRecord, RuntimeError, within};

/// Sandboxes remembered at most; past it the cache starts over (a node runs a few hundred).
const SANDBOX_CACHE_MAX: usize = 4096;

/// `runtime.v1.NamespaceMode.NODE`: the pod shares the host's namespace.
const NAMESPACE_NODE: i32 = 2;

/// The kubelet's container annotation listing the container's declared ports
/// (`pkg/kubelet/kuberuntime/labels.go`, `containerPortsLabel`): a JSON array of
/// `v1.ContainerPort`.
pub const CONTAINER_PORTS_ANNOTATION: &str = "io.kubernetes.container.ports";

/// What the runtime says of a pod sandbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodSandbox {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The sandbox's labels as the kubelet handed them to `RunPodSandbox`: the pod's
    /// `metadata.labels` and the kubelet's own `io.kubernetes.pod.*`.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
    /// The pod's declared container ports, `80/tcp`, sorted (from the sandbox config's
    /// `port_mappings` in the verbose info, which containerd gives and CRI-O does not).
    pub ports: Vec<String>,
}

/// A CRI runtime's socket and the channel to it. Cheap to clone; clones share the channel and
/// the sandbox cache.
#[derive(Clone)]
pub struct CriClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    engine: Engine,
    socket: PathBuf,
    timeout: Duration,
    channel: Mutex<Option<Channel>>,
    sandboxes: Mutex<HashMap<String, Arc<PodSandbox>>>,
}

impl CriClient {
    /// No I/O happens until the first call. `engine` names the runtime in errors.
    pub fn new(engine: Engine, socket: PathBuf, timeout: Duration) -> CriClient {
        CriClient {
            inner: Arc::new(ClientInner {
                engine,
                socket,
                timeout,
                channel: Mutex::new(None),
                sandboxes: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.inner.socket
    }

    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    pub(crate) async fn channel(&self) -> Result<Channel, RuntimeError> {
        let mut slot = self.inner.channel.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = containerd_client::connect(&self.inner.socket)
            .await
            .map_err(|e| self.connect_error(crate::source::innermost(&e)))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forgets the channel, so the next call reconnects.
    pub(crate) async fn reset(&self) {
        *self.inner.channel.lock().await = None;
    }

    fn connect_error(&self, reason: String) -> RuntimeError {
        RuntimeError::Connect {
            engine: self.inner.engine,
            socket: self.inner.socket.clone(),
            reason,
        }
    }

    /// A gRPC status as a [`RuntimeError`]; `id` names the container or sandbox asked about,
    /// so NotFound says which.
    pub(crate) fn status_error(
        &self,
        op: &'static str,
        s: &Status,
        id: Option<&str>,
    ) -> RuntimeError {
        let engine = self.inner.engine;
        match s.code() {
            Code::NotFound if id.is_some() => RuntimeError::NotFound {
                engine,
                id: id.unwrap_or_default().to_string(),
            },
            Code::Unavailable => self.connect_error(s.message().to_string()),
            Code::Unknown if s.message().contains("transport") => {
                self.connect_error(s.message().to_string())
            }
            Code::DeadlineExceeded => RuntimeError::Timeout {
                engine,
                op,
                after: self.inner.timeout,
            },
            _ => RuntimeError::Api {
                engine,
                op,
                status: None,
                message: format!("{:?}: {}", s.code(), s.message()),
            },
        }
    }

    /// Runs one call within the timeout; a connection failure drops the channel.
    pub(crate) async fn timed<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, RuntimeError> {
        let r = within(self.inner.engine, op, self.inner.timeout, fut).await;
        if matches!(
            r,
            Err(RuntimeError::Connect { .. } | RuntimeError::Timeout { .. })
        ) {
            self.reset().await;
        }
        r
    }

    pub(crate) fn runtime(&self, ch: Channel) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(ch)
    }

    /// `Version`: the runtime's name and versions.
    pub async fn version(&self) -> Result<VersionResponse, RuntimeError> {
        self.timed("version", async {
            let ch = self.channel().await?;
            let r = self
                .runtime(ch)
                .version(VersionRequest::default())
                .await
                .map_err(|s| self.status_error("version", &s, None))?;
            Ok(r.into_inner())
        })
        .await
    }

    /// `ListPodSandbox`: every sandbox's id.
    pub async fn list_pod_sandbox_ids(&self) -> Result<Vec<String>, RuntimeError> {
        self.timed("list sandboxes", async {
            let ch = self.channel().await?;
            let r = self
                .runtime(ch)
                .list_pod_sandbox(ListPodSandboxRequest::default())
                .await
                .map_err(|s| self.status_error("list sandboxes", &s, None))?;
            Ok(r.into_inner().items.into_iter().map(|s| s.id).collect())
        })
        .await
    }

    /// `ListContainers` with the given filter.
    pub(crate) async fn list_containers(
        &self,
        req: ListContainersRequest,
    ) -> Result<Vec<k8s_cri::v1::Container>, RuntimeError> {
        self.timed("list", async {
            let ch = self.channel().await?;
            let r = self
                .runtime(ch)
                .list_containers(req)
                .await
                .map_err(|s| self.status_error("list", &s, None))?;
            Ok(r.into_inner().containers)
        })
        .await
    }

    /// `ContainerStatus(verbose)`.
    pub(crate) async fn container_status(
        &self,
        id: &str,
    ) -> Result<ContainerStatusResponse, RuntimeError> {
        self.timed("container status", async {
            let ch = self.channel().await?;
            let r = self
                .runtime(ch)
                .container_status(ContainerStatusRequest {
                    container_id: id.to_string(),
                    verbose: true,
                })
                .await
                .map_err(|s| self.status_error("container status", &s, Some(id)))?;
            Ok(r.into_inner())
        })
        .await
    }

    /// `ImageStatus(verbose)`; `None` when the runtime no longer has the image.
    pub(crate) async fn image_status(
        &self,
        image: &str,
    ) -> Result<Option<ImageStatusResponse>, RuntimeError> {
        self.timed("image status", async {
            let ch = self.channel().await?;
            let r = ImageServiceClient::new(ch)
                .image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image: image.to_string(),
                        ..ImageSpec::default()
                    }),
                    verbose: true,
                })
                .await;
            match r {
                Ok(r) => {
                    let r = r.into_inner();
                    Ok(r.image.is_some().then_some(r))
                }
                Err(s) if s.code() == Code::NotFound => Ok(None),
                Err(s) => Err(self.status_error("image status", &s, None)),
            }
        })
        .await
    }

    /// The sandbox `id` (`PodSandboxStatus(verbose)`, cached).
    pub async fn pod_sandbox(&self, id: &str) -> Result<Arc<PodSandbox>, RuntimeError> {
        if let Some(s) = self.inner.sandboxes.lock().await.get(id) {
            return Ok(s.clone());
        }
        let resp = self
            .timed("sandbox status", async {
                let ch = self.channel().await?;
                let r = self
                    .runtime(ch)
                    .pod_sandbox_status(PodSandboxStatusRequest {
                        pod_sandbox_id: id.to_string(),
                        verbose: true,
                    })
                    .await
                    .map_err(|s| self.status_error("sandbox status", &s, Some(id)))?;
                Ok(r.into_inner())
            })
            .await?;
        let sandbox = Arc::new(pod_sandbox_from_status(id, &resp).map_err(|detail| {
            RuntimeError::Malformed {
                engine: self.inner.engine,
                op: "sandbox status",
                detail: format!("sandbox {id}: {detail}"),
            }
        })?);
        let mut cache = self.inner.sandboxes.lock().await;
        if cache.len() >= SANDBOX_CACHE_MAX {
            cache.clear();
        }
        cache.insert(id.to_string(), sandbox.clone());
        Ok(sandbox)
    }

    /// Drops a removed sandbox from the cache.
    pub async fn forget_sandbox(&self, id: &str) {
        self.inner.sandboxes.lock().await.remove(id);
    }
}

/// A container's mounts from CRI's `ContainerStatus` as Falco's `container.mount[...]` shows
/// them: CRI names propagation by kind (`PROPAGATION_PRIVATE`), Linux names used here
/// (`rprivate`, `rslave`, `rshared`, as the CRI API documents them); CRI keeps no mode string.
pub(crate) fn model_mounts(mounts: &[k8s_cri::v1::Mount]) -> Vec<driftwatch_model::Mount> {
    use k8s_cri::v1::MountPropagation;
    mounts
        .iter()
        .map(|m| driftwatch_model::Mount {
            source: m.host_path.clone(),
            dest: m.container_path.clone(),
            mode: String::new(),
            rw: !m.readonly,
            propagation: match MountPropagation::try_from(m.propagation) {
                Ok(MountPropagation::PropagationPrivate) => "rprivate",
                Ok(MountPropagation::PropagationHostToContainer) => "rslave",
                Ok(MountPropagation::PropagationBidirectional) => "rshared",
                Err(_) => "",
            }
            .to_string(),
        })
        .collect()
}

/// The sandbox's config as containerd's verbose info gives it (`pkg/cri/.../sandbox_status.go`,
/// `SandboxInfo.Config`, Go's JSON of `runtime.PodSandboxConfig`: snake_case names, empty
/// fields omitted, enums as numbers).
#[derive(Debug, Default, serde::Deserialize)]
struct SandboxInfo {
    #[serde(default)]
    config: Option<SandboxInfoConfig>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct SandboxInfoConfig {
    #[serde(default)]
    port_mappings: Vec<InfoPortMapping>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct InfoPortMapping {
    #[serde(default)]
    protocol: Option<serde_json::Value>,
    #[serde(default)]
    container_port: i64,
}

/// `runtime.v1.Protocol` as a number (Go's JSON of the enum) or its name.
fn protocol_name(v: Option<&serde_json::Value>) -> Option<&'static str> {
    match v {
        None => Some("tcp"),
        Some(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(0) => Some("tcp"),
            Some(1) => Some("udp"),
            Some(2) => Some("sctp"),
            _ => None,
        },
        Some(serde_json::Value::String(s)) => match s.to_ascii_uppercase().as_str() {
            "" | "TCP" => Some("tcp"),
            "UDP" => Some("udp"),
            "SCTP" => Some("sctp"),
            _ => None,
        },
        Some(_) => None,
    }
}

fn port_key(port: i64, proto: Option<&serde_json::Value>) -> Option<String> {
    let port = u16::try_from(port).ok().filter(|p| *p > 0)?;
    Some(format!("{port}/{}", protocol_name(proto)?))
}

/// Adds a pod sandbox's labels and declared ports to the record of one of its containers,
/// whose pod identity came from elsewhere (the CRI plugin's spec annotations). A sandbox that
/// names another pod is not used: `Err` says which it names.
pub(crate) fn apply_pod_sandbox(r: &mut ContainerRecord, s: &PodSandbox) -> Result<(), String> {
    let Some(pod) = r.meta.k8s.as_mut() else {
        return Ok(());
    };
    if s.name != pod.pod_name || s.namespace != pod.namespace {
        return Err(format!(
            "sandbox {} is pod {}/{}, the container's spec says {}/{}: its labels are not taken",
            s.id, s.namespace, s.name, pod.namespace, pod.pod_name
        ));
    }
    pod.labels = crate::pod_identity::sandbox_pod_labels(&s.labels);
    r.exposed_ports.extend(s.ports.iter().cloned());
    r.exposed_ports.sort();
    r.exposed_ports.dedup();
    host_namespaces_of_sandbox(&mut r.runtime_config, s);
    Ok(())
}

/// The namespaces a pod shares with the host, as its sandbox says: a container joins its
/// sandbox's namespaces by path (containerd's CRI plugin does even for a host-network pod:
/// `/proc/<sandbox pid>/ns/net`), so its own spec cannot tell the host's from a pod's. A
/// host-network pod also has the host's UTS namespace (the kubelet gives it the node's name).
pub(crate) fn host_namespaces_of_sandbox(c: &mut crate::RuntimeConfig, s: &PodSandbox) {
    if s.host_network {
        c.network_mode = "host".into();
        c.uts_mode = "host".into();
    }
    if s.host_pid {
        c.pid_mode = "host".into();
    }
    if s.host_ipc {
        c.ipc_mode = "host".into();
    }
}

/// The sandbox a CRI-made container belongs to, from its OCI spec's annotations (the CRI
/// plugin's `io.kubernetes.cri.sandbox-id`, which no image can set); `None` for other
/// containers and for a spec that does not parse (the record's own parse reports that).
pub fn spec_sandbox_id(spec_json: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Annotated {
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let a: Annotated = serde_json::from_slice(spec_json).ok()?;
    a.annotations
        .get(SPEC_SANDBOX_ID)
        .filter(|s| !s.is_empty())
        .cloned()
}

/// The CRI plugin's spec annotation naming a container's sandbox.
pub const SPEC_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// The sandbox as [`PodSandbox`]; `Err` says what is missing or malformed.
pub fn pod_sandbox_from_status(
    id: &str,
    resp: &PodSandboxStatusResponse,
) -> Result<PodSandbox, String> {
    let status = resp.status.as_ref().ok_or("no status in the answer")?;
    let meta = status
        .metadata
        .as_ref()
        .ok_or("no metadata in the status")?;
    let opts = status
        .linux
        .as_ref()
        .and_then(|l| l.namespaces.as_ref())
        .and_then(|n| n.options.as_ref());
    let ports = match resp.info.get("info") {
        Some(json) => {
            let info: SandboxInfo =
                serde_json::from_str(json).map_err(|e| format!("verbose info: {e}"))?;
            let mut ports: Vec<String> = info
                .config
                .unwrap_or_default()
                .port_mappings
                .iter()
                .filter_map(|m| port_key(m.container_port, m.protocol.as_ref()))
                .collect();
            ports.sort();
            ports.dedup();
            ports
        }
        None => Vec::new(),
    };
    let sorted =
        |m: &HashMap<String, String>| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(PodSandbox {
        id: if status.id.is_empty() {
            id.to_string()
        } else {
            status.id.clone()
        },
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        labels: sorted(&status.labels),
        annotations: sorted(&status.annotations),
        host_network: opts.is_some_and(|o| o.network == NAMESPACE_NODE),
        host_pid: opts.is_some_and(|o| o.pid == NAMESPACE_NODE),
        host_ipc: opts.is_some_and(|o| o.ipc == NAMESPACE_NODE),
        ports,
    })
}

/// `v1.ContainerPort` as the kubelet writes it into [`CONTAINER_PORTS_ANNOTATION`].
#[derive(Debug, serde::Deserialize)]
struct AnnotatedPort {
    #[serde(rename = "containerPort")]
    container_port: i64,
    #[serde(default)]
    protocol: Option<serde_json::Value>,
}

/// The ports a container's kubelet annotation declares (`80/tcp`), sorted; `Err` when the
/// annotation is there but not the kubelet's JSON.
pub fn annotated_ports(annotations: &HashMap<String, String>) -> Result<Vec<String>, String> {
    let Some(json) = annotations.get(CONTAINER_PORTS_ANNOTATION) else {
        return Ok(Vec::new());
    };
    let ports: Vec<AnnotatedPort> = serde_json::from_str(json)
        .map_err(|e| format!("annotation {CONTAINER_PORTS_ANNOTATION}: {e}"))?;
    let mut out: Vec<String> = ports
        .iter()
        .filter_map(|p| port_key(p.container_port, p.protocol.as_ref()))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1::{
        LinuxPodSandboxStatus, Namespace, NamespaceOption, PodSandboxMetadata, PodSandboxStatus,
    };

    fn status(info: Option<&str>) -> PodSandboxStatusResponse {
        PodSandboxStatusResponse {
            status: Some(PodSandboxStatus {
                id: "s1".into(),
                metadata: Some(PodSandboxMetadata {
                    name: "web-0".into(),
                    uid: "u-1".into(),
                    namespace: "shop".into(),
                    attempt: 0,
                }),
                linux: Some(LinuxPodSandboxStatus {
                    namespaces: Some(Namespace {
                        options: Some(NamespaceOption {
                            network: NAMESPACE_NODE,
                            ..NamespaceOption::default()
                        }),
                    }),
                }),
                labels: HashMap::from([("app".to_string(), "web".to_string())]),
                ..PodSandboxStatus::default()
            }),
            info: info
                .map(|i| HashMap::from([("info".to_string(), i.to_string())]))
                .unwrap_or_default(),
            ..PodSandboxStatusResponse::default()
        }
    }

    /// CRI's propagation kinds in Linux's names; read-only from `readonly`.
    #[test]
    fn cri_mounts_as_falco_shows_them() {
        use k8s_cri::v1::{Mount, MountPropagation};
        let m = model_mounts(&[
            Mount {
                container_path: "/data".into(),
                host_path: "/srv/data".into(),
                readonly: true,
                propagation: MountPropagation::PropagationHostToContainer as i32,
                ..Default::default()
            },
            Mount {
                container_path: "/logs".into(),
                host_path: "/var/log/app".into(),
                propagation: 99,
                ..Default::default()
            },
        ]);
        assert_eq!(
            (m[0].source.as_str(), m[0].dest.as_str(), m[0].rw),
            ("/srv/data", "/data", false)
        );
        assert_eq!(m[0].propagation, "rslave");
        assert!(m[1].rw);
        // A kind this API version does not know is not named.
        assert_eq!(m[1].propagation, "");
    }

    #[test]
    fn a_sandbox_with_containerds_verbose_config() {
        // Go's JSON of the config: TCP (0) omitted, UDP as 1.
        let info = r#"{"pid":4242,"config":{"metadata":{"name":"web-0"},
            "port_mappings":[{"container_port":8080},{"protocol":1,"container_port":53},
                             {"container_port":8080,"host_port":80}]}}"#;
        let s = pod_sandbox_from_status("s1", &status(Some(info))).unwrap();
        assert_eq!(
            (s.name.as_str(), s.namespace.as_str(), s.uid.as_str()),
            ("web-0", "shop", "u-1")
        );
        assert_eq!(s.labels["app"], "web");
        assert!(s.host_network && !s.host_pid && !s.host_ipc);
        assert_eq!(s.ports, ["53/udp", "8080/tcp"]);
        // No verbose info (CRI-O): no ports from it, the rest as before.
        assert!(
            pod_sandbox_from_status("s1", &status(None))
                .unwrap()
                .ports
                .is_empty()
        );
        // Garbage info is an error naming it, not a panic.
        let e = pod_sandbox_from_status("s1", &status(Some("{nope"))).unwrap_err();
        assert!(e.contains("verbose info"), "{e}");
        let e = pod_sandbox_from_status("s1", &PodSandboxStatusResponse::default()).unwrap_err();
        assert!(e.contains("no status"), "{e}");
    }

    #[test]
    fn a_sandbox_adds_labels_and_ports_to_its_own_pods_container_only() {
        use driftwatch_model::{ContainerId, ContainerMeta, KubernetesMeta};
        let sandbox = pod_sandbox_from_status(
            "s1",
            &status(Some(
                r#"{"config":{"port_mappings":[{"container_port":8080}]}}"#,
            )),
        )
        .unwrap();
        let mut meta = ContainerMeta::unknown(ContainerId::named("app-1").unwrap());
        meta.k8s = Some(KubernetesMeta {
            namespace: "shop".into(),
            pod_name: "web-0".into(),
            ..KubernetesMeta::default()
        });
        let mut r = ContainerRecord {
            pod_sandbox: false,
            meta,
            pid: None,
            layers: None,
            running: true,
            started_at_ns: None,
            env: Vec::new(),
            exposed_ports: vec!["80/tcp".into()],
            runtime_config: crate::RuntimeConfig::default(),
        };
        r.runtime_config.network_mode = "container:/proc/4242/ns/net".into();
        let mut other = r.clone();
        apply_pod_sandbox(&mut r, &sandbox).unwrap();
        assert_eq!(r.meta.k8s.as_ref().unwrap().labels["app"], "web");
        assert_eq!(r.exposed_ports, ["80/tcp", "8080/tcp"]);
        // The sandbox is on the host network: so is the container, whatever path its spec
        // joined.
        assert_eq!(r.runtime_config.host_namespaces(), ["network", "uts"]);
        // The annotations name another pod than the sandbox: nothing taken.
        other.meta.k8s.as_mut().unwrap().pod_name = "payments-0".into();
        let e = apply_pod_sandbox(&mut other, &sandbox).unwrap_err();
        assert!(
            e.contains("shop/web-0") && e.contains("shop/payments-0"),
            "{e}"
        );
        assert!(other.meta.k8s.unwrap().labels.is_empty());
        assert!(other.runtime_config.host_namespaces().is_empty());
    }

    #[test]
    fn a_sandbox_status_recorded_from_containerd() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cri/containerd-1.6-sandbox-status-hostnetwork.json");
        let resp: PodSandboxStatusResponse =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let id = resp.status.as_ref().unwrap().id.clone();
        let s = pod_sandbox_from_status(&id, &resp).unwrap();
        assert_eq!(
            (s.name.as_str(), s.namespace.as_str(), s.uid.as_str()),
            ("web-0", "shop", "u-123")
        );
        assert_eq!(s.labels["app"], "web");
        assert!(s.host_network && !s.host_pid && !s.host_ipc);
        assert_eq!(s.ports, ["53/udp", "8080/tcp"]);
    }

    #[test]
    fn the_kubelets_port_annotation() {
        let a = HashMap::from([(
            CONTAINER_PORTS_ANNOTATION.to_string(),
            r#"[{"name":"http","containerPort":80,"protocol":"TCP"},{"containerPort":53,"protocol":"UDP"},{"containerPort":0}]"#.to_string(),
        )]);
        assert_eq!(annotated_ports(&a).unwrap(), ["53/udp", "80/tcp"]);
        assert!(annotated_ports(&HashMap::new()).unwrap().is_empty());
        let bad = HashMap::from([(CONTAINER_PORTS_ANNOTATION.to_string(), "80".to_string())]);
        assert!(
            annotated_ports(&bad)
                .unwrap_err()
                .contains(CONTAINER_PORTS_ANNOTATION)
        );
    }
}
