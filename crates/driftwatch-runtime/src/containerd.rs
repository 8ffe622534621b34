//! [`EngineSource`] for containerd over its own gRPC API (the `containerd-client` bindings),
//! across several namespaces (`k8s.io` for Kubernetes, `moby` for Docker's, `default` for
//! `ctr`).
//!
//! A container is looked up by id in each namespace in turn. Its record takes the image
//! name and the image record's target digest, the labels, the pod (from the CRI plugin's spec annotations: see [`crate::pod_identity`]),
//! the task's pid and status, the OCI spec's args and env and the [`RuntimeConfig`] it
//! amounts to (see [`crate::oci_runtime`]), and the overlay layers from the `Mounts` of the
//! container's snapshot (`lowerdir`/`upperdir` options). The image's config (id, env, user,
//! exposed ports, diff ids) comes from the content store: see [`content_store`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::snapshots::MountsRequest;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::{
    Container, GetContainerRequest, GetRequest, ListContainersRequest, SubscribeRequest,
    containers_client::ContainersClient, tasks_client::TasksClient,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request, Status};
use containerd_client::types::{Envelope, Mount};
use driftwatch_model::{ContainerId, ContainerMeta, Engine, ImageRef, OverlayLayers};
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};
use prost::Message;
use tokio::sync::Mutex;

use crate::cri::CriClient;
use crate::oci_runtime::{DefaultCaps, OciSpec};
use crate::runtime_config::RuntimeConfig;
use crate::source::{ContainerRecord, EngineEvent, EngineSource, RuntimeError, innermost, within};

pub mod content_store;
pub use content_store::{ContainerdImage, SnapshotLayers};

/// Where and how to reach containerd.
#[derive(Clone, Debug)]
pub struct ContainerdConfig {
    pub socket: PathBuf,
    /// Namespaces asked, in order. Default `k8s.io`, `moby`, `default`.
    pub namespaces: Vec<String>,
    /// Bound on every call. Default 2 s.
    pub timeout: Duration,
    /// Reconnect backoff of the event stream: first delay, doubling up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

/// containerd's own socket, then the one dockerd 20.10 starts for its managed containerd.
pub const CONTAINERD_SOCKETS: &[&str] = &[
    "/run/containerd/containerd.sock",
    "/run/docker/containerd/containerd.sock",
];

impl ContainerdConfig {
    /// The first of [`CONTAINERD_SOCKETS`] that exists, if any.
    pub fn find_socket() -> Option<PathBuf> {
        CONTAINERD_SOCKETS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    }
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(CONTAINERD_SOCKETS[0]),
            namespaces: ["k8s.io", "moby", "default"].map(String::from).to_vec(),
            timeout: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// containerd as an [`EngineSource`]. Cheap to clone; clones share the channel.
#[derive(Clone)]
pub struct ContainerdSource {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ContainerdConfig,
    channel: Mutex<Option<Channel>>,
    images: content_store::ImageCache,
    /// The CRI plugin on the same socket: pod labels and declared ports of CRI-made containers.
    cri: CriClient,
}

const ENGINE: Engine = Engine::Containerd;
/// `containerd.v1.types.Status.RUNNING`.
const STATUS_RUNNING: i32 = 2;

impl ContainerdSource {
    /// No I/O happens until the first call.
    pub fn new(cfg: ContainerdConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                cri: CriClient::new(ENGINE, cfg.socket.clone(), cfg.timeout),
                cfg,
                channel: Mutex::new(None),
                images: content_store::ImageCache::default(),
            }),
        }
    }

    pub fn config(&self) -> &ContainerdConfig {
        &self.inner.cfg
    }

    /// Checks containerd answers (lists containers of the first namespace), within the timeout.
    pub async fn ping(&self) -> Result<(), RuntimeError> {
        self.inner.ping().await
    }
}

fn with_ns<T>(msg: T, ns: &str) -> Result<Request<T>, RuntimeError> {
    let mut req = Request::new(msg);
    let value = ns.parse().map_err(|_| RuntimeError::Malformed {
        engine: ENGINE,
        op: "namespace",
        detail: format!("not a valid namespace: {ns:?}"),
    })?;
    req.metadata_mut().insert("containerd-namespace", value);
    Ok(req)
}

impl Inner {
    async fn timed<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, RuntimeError> {
        let r = within(ENGINE, op, self.cfg.timeout, fut).await;
        if matches!(r, Err(RuntimeError::Connect { .. })) {
            *self.channel.lock().await = None;
        }
        r
    }

    async fn channel(&self) -> Result<Channel, RuntimeError> {
        let mut slot = self.channel.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = containerd_client::connect(&self.cfg.socket)
            .await
            .map_err(|e| self.connect_error(&e))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    fn connect_error(&self, e: &(dyn std::error::Error + 'static)) -> RuntimeError {
        RuntimeError::Connect {
            engine: ENGINE,
            socket: self.cfg.socket.clone(),
            reason: innermost(e),
        }
    }

    fn status_error(&self, op: &'static str, s: Status, id: Option<&str>) -> RuntimeError {
        match s.code() {
            Code::NotFound if id.is_some() => RuntimeError::NotFound {
                engine: ENGINE,
                id: id.unwrap_or_default().to_string(),
            },
            Code::Unavailable | Code::Unknown if s.message().contains("transport") => {
                self.connect_error(&s)
            }
            Code::Unavailable => RuntimeError::Connect {
                engine: ENGINE,
                socket: self.cfg.socket.clone(),
                reason: s.message().to_string(),
            },
            Code::DeadlineExceeded => RuntimeError::Timeout {
                engine: ENGINE,
                op,
                after: self.cfg.timeout,
            },
            _ => RuntimeError::Api {
                engine: ENGINE,
                op,
                status: None,
                message: format!("{:?}: {}", s.code(), s.message()),
            },
        }
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.timed("ping", async {
            let ch = self.channel().await?;
            let ns = self
                .cfg
                .namespaces
                .first()
                .map_or("default", String::as_str);
            let req = with_ns(
                ListContainersRequest {
                    filters: vec!["id==driftwatch-ping".into()],
                },
                ns,
            )?;
            ContainersClient::new(ch)
                .list(req)
                .await
                .map_err(|s| self.status_error("ping", s, None))?;
            Ok(())
        })
        .await
    }

    /// The container in the first namespace that has it.
    async fn find(&self, ch: &Channel, id: &str) -> Result<(String, Container), RuntimeError> {
        for ns in &self.cfg.namespaces {
            let req = with_ns(GetContainerRequest { id: id.into() }, ns)?;
            match ContainersClient::new(ch.clone()).get(req).await {
                Ok(r) => {
                    let c = r
                        .into_inner()
                        .container
                        .ok_or_else(|| RuntimeError::Malformed {
                            engine: ENGINE,
                            op: "inspect",
                            detail: "get answered without a container".into(),
                        })?;
                    return Ok((ns.clone(), c));
                }
                Err(s) if s.code() == Code::NotFound => continue,
                Err(s) => return Err(self.status_error("inspect", s, Some(id))),
            }
        }
        Err(RuntimeError::NotFound {
            engine: ENGINE,
            id: id.to_string(),
        })
    }

    async fn record(
        &self,
        ch: &Channel,
        ns: &str,
        c: Container,
    ) -> Result<ContainerRecord, RuntimeError> {
        let id = c.id.clone();
        // The image record's target (the manifest or index digest); absent if removed.
        let target = self.image_target(ch, ns, &c.image).await?;
        let digest = target.as_ref().map(|t| t.digest.clone());
        let image = match &target {
            Some(t) => self
                .image_of(ch, ns, t)
                .await
                .inspect_err(|e| tracing::warn!("containerd: {ns}/{id}: image config: {e}"))
                .ok(),
            None => None,
        };
        let reference = c.image.clone();
        let task = with_ns(
            GetRequest {
                container_id: id.clone(),
                exec_id: String::new(),
            },
            ns,
        )?;
        let process = match TasksClient::new(ch.clone()).get(task).await {
            Ok(r) => r.into_inner().process,
            Err(s) if s.code() == Code::NotFound => None, // no task: created, not started
            Err(s) => return Err(self.status_error("task get", s, Some(&id))),
        };
        let mounts = if c.snapshot_key.is_empty() || c.snapshotter.is_empty() {
            Vec::new()
        } else {
            let req = with_ns(
                MountsRequest {
                    snapshotter: c.snapshotter.clone(),
                    key: c.snapshot_key.clone(),
                },
                ns,
            )?;
            match SnapshotsClient::new(ch.clone()).mounts(req).await {
                Ok(r) => r.into_inner().mounts,
                Err(s) if s.code() == Code::NotFound => Vec::new(),
                Err(s) => return Err(self.status_error("snapshot mounts", s, Some(&id))),
            }
        };
        let sandbox = c
            .spec
            .as_ref()
            .and_then(|a| crate::cri::spec_sandbox_id(&a.value));
        let mut r = record_from_parts(c, digest, process.map(|p| (p.pid, p.status)), &mounts)?;
        content_store::apply(&mut r, &reference, image.as_deref());
        // After the image's: its exposed ports are replaced there, the pod's added here.
        if let Some(sandbox) = sandbox {
            self.add_pod_sandbox(&mut r, &sandbox).await;
        }
        Ok(r)
    }

    /// The pod's labels and declared ports, from the CRI plugin's sandbox (see
    /// [`crate::cri::apply_pod_sandbox`]); a CRI failure leaves the record as the containerd
    /// API gave it.
    async fn add_pod_sandbox(&self, r: &mut ContainerRecord, sandbox_id: &str) {
        if r.meta.k8s.is_none() {
            return;
        }
        match self.cri.pod_sandbox(sandbox_id).await {
            Ok(s) => {
                if let Err(why) = crate::cri::apply_pod_sandbox(r, &s) {
                    tracing::warn!("containerd: {}: {why}", r.meta.id);
                }
            }
            Err(e) => tracing::debug!("containerd: {}: no pod labels: {e}", r.meta.id),
        }
    }

    async fn inspect(&self, id: &str) -> Result<ContainerRecord, RuntimeError> {
        self.timed("inspect", async {
            let ch = self.channel().await?;
            let (ns, c) = self.find(&ch, id).await?;
            self.record(&ch, &ns, c).await
        })
        .await
    }

    async fn list_running(&self) -> Result<Vec<ContainerRecord>, RuntimeError> {
        let ch = self.timed("list", self.channel()).await?;
        let mut records = Vec::new();
        for ns in &self.cfg.namespaces {
            let req = with_ns(ListContainersRequest::default(), ns)?;
            let list = self
                .timed("list", async {
                    ContainersClient::new(ch.clone())
                        .list(req)
                        .await
                        .map_err(|s| self.status_error("list", s, None))
                })
                .await?
                .into_inner()
                .containers;
            for c in list {
                let id = c.id.clone();
                match self.timed("inspect", self.record(&ch, ns, c)).await {
                    Ok(r) if r.running => records.push(r),
                    Ok(_) | Err(RuntimeError::NotFound { .. }) => {}
                    // A record that cannot be read is left out, not the whole listing.
                    Err(e @ RuntimeError::Malformed { .. }) => {
                        tracing::warn!("containerd: {ns}/{id}: {e}");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        records.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
        Ok(records)
    }
}

/// Builds a record from what the API answered. Pure, so it tests without containerd.
fn record_from_parts(
    c: Container,
    image_digest: Option<String>,
    task: Option<(u32, i32)>,
    snapshot_mounts: &[Mount],
) -> Result<ContainerRecord, RuntimeError> {
    let malformed = |detail: String| RuntimeError::Malformed {
        engine: ENGINE,
        op: "inspect",
        detail,
    };
    let id = ContainerId::named(&c.id).map_err(|e| malformed(e.to_string()))?;
    let labels: BTreeMap<String, String> = c.labels.into_iter().collect();
    let spec: OciSpec = match c.spec.as_ref() {
        Some(any) if !any.value.is_empty() => {
            OciSpec::parse(&any.value).map_err(|e| malformed(format!("OCI spec: {e}")))?
        }
        _ => OciSpec::default(),
    };
    let mut image = ImageRef::parse(&c.image);
    if image.digest.is_none() {
        image.digest = image_digest;
    }
    // The CRI plugin names containers by id and keeps the Kubernetes name in a label.
    let name = labels
        .get("io.kubernetes.container.name")
        .filter(|_| !id.is_hex() || labels.contains_key("io.kubernetes.pod.name"))
        .cloned()
        .unwrap_or_else(|| c.id.clone());
    let running = task.is_some_and(|(_, status)| status == STATUS_RUNNING);
    // No spec (a container record without one) says nothing: not "every namespace shared".
    let has_spec = c.spec.as_ref().is_some_and(|any| !any.value.is_empty());
    let runtime_config = if has_spec {
        spec.runtime_config(DefaultCaps::Containerd, None)
    } else {
        RuntimeConfig::default()
    };
    // Privileged as the spec shows it (see `OciSpec::runtime_config`: containerd keeps no
    // flag of its own); without a spec, not known.
    let privileged = has_spec.then_some(runtime_config.privileged);
    let mounts = spec.model_mounts();
    let pod = crate::pod_identity::cri_pod_identity(&spec.annotations, &labels);
    let pod_sandbox = spec
        .annotations
        .get(crate::pod_identity::CRI_CONTAINER_TYPE)
        .is_some_and(|t| t == "sandbox");
    if let Some(why) = &pod.distrusted {
        tracing::debug!("container {id}: no pod identity: {why}");
    }
    Ok(ContainerRecord {
        pod_sandbox,
        meta: ContainerMeta {
            privileged,
            mounts,
            // containerd's records say when a container was created, not when its task
            // started.
            started_ns: None,
            k8s: pod.pod,
            id,
            engine: ENGINE,
            name,
            image,
            labels,
            entrypoint: spec.process.args.clone(),
        },
        pid: task.map(|(pid, _)| pid).filter(|p| *p > 0 && running),
        layers: layers_from_mounts(snapshot_mounts),
        running,
        started_at_ns: None,
        env: spec.process.env,
        exposed_ports: Vec::new(),
        runtime_config,
    })
}

/// Overlay layers from a snapshot's mounts: `lowerdir=a:b` (top first) and `upperdir=`.
/// A view or single-layer bind mount has no upper dir: `None`.
fn layers_from_mounts(mounts: &[Mount]) -> Option<OverlayLayers> {
    let m = mounts.iter().find(|m| m.r#type == "overlay")?;
    let mut upper = None;
    let mut lowers = Vec::new();
    for opt in &m.options {
        if let Some(v) = opt.strip_prefix("upperdir=") {
            upper = Some(PathBuf::from(v));
        } else if let Some(v) = opt.strip_prefix("lowerdir=") {
            lowers.extend(v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
        }
    }
    Some(OverlayLayers {
        upper: upper?,
        lowers,
        merged: None,
    })
}

impl EngineSource for ContainerdSource {
    fn engine(&self) -> Engine {
        ENGINE
    }

    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerRecord, RuntimeError>> {
        Box::pin(self.inner.inspect(id.as_str()))
    }

    fn list_running(&self) -> BoxFuture<'_, Result<Vec<ContainerRecord>, RuntimeError>> {
        Box::pin(self.inner.list_running())
    }

    fn events(&self) -> BoxStream<'static, EngineEvent> {
        crate::events::reconnecting(ContainerdEvents {
            inner: self.inner.clone(),
        })
    }
}

/// containerd's container and task events of our namespaces.
struct ContainerdEvents {
    inner: Arc<Inner>,
}

/// The topics subscribed to (containerd's filter syntax, ORed).
const TOPICS: &[&str] = &[
    "topic==\"/containers/create\"",
    "topic==\"/tasks/start\"",
    "topic==\"/tasks/exit\"",
    "topic==\"/containers/delete\"",
];

impl crate::events::EventFeed for ContainerdEvents {
    type Item = Envelope;

    fn label(&self) -> &str {
        "containerd"
    }

    fn backoff(&self) -> (Duration, Duration) {
        (self.inner.cfg.backoff_initial, self.inner.cfg.backoff_max)
    }

    fn subscribe(&mut self) -> BoxFuture<'_, Result<crate::events::Feed<Envelope>, RuntimeError>> {
        Box::pin(async move {
            // Connecting is bounded; the Subscribe call itself is not awaited here: containerd
            // (grpc-go) sends the response headers with the first event, so awaiting it would
            // time out on a quiet host. It runs as the stream's first step instead, and its
            // failure is the stream's first (and last) item.
            let ch = self.inner.timed("connect", self.inner.channel()).await?;
            let req = SubscribeRequest {
                filters: TOPICS.iter().map(|s| s.to_string()).collect(),
            };
            let inner = self.inner.clone();
            let call = async move { EventsClient::new(ch).subscribe(req).await };
            Ok(futures_util::stream::once(call)
                .flat_map(move |r| {
                    let inner = inner.clone();
                    match r {
                        Ok(resp) => resp
                            .into_inner()
                            .map(move |r| {
                                r.map_err(|s| inner.status_error("events", s, None).to_string())
                            })
                            .boxed(),
                        Err(s) => {
                            let reason = inner.status_error("subscribe", s, None).to_string();
                            futures_util::stream::once(async move { Err(reason) }).boxed()
                        }
                    }
                })
                .boxed())
        })
    }

    fn translate(&mut self, env: Envelope) -> Option<EngineEvent> {
        translate(&env, &self.inner.cfg.namespaces)
    }

    fn lost(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            *self.inner.channel.lock().await = None;
        })
    }
}

/// An event of one of our namespaces as an [`EngineEvent`]; others (and undecodable ones)
/// are skipped. containerd keeps no event log: nothing is replayed after a reconnect.
fn translate(env: &Envelope, namespaces: &[String]) -> Option<EngineEvent> {
    use containerd_client::events::{ContainerCreate, ContainerDelete, TaskExit, TaskStart};
    if !namespaces.contains(&env.namespace) {
        return None;
    }
    let bytes = env.event.as_ref()?.value.as_slice();
    let named = |s: &str| ContainerId::named(s).ok();
    Some(match env.topic.as_str() {
        "/containers/create" => {
            EngineEvent::Created(named(&ContainerCreate::decode(bytes).ok()?.id)?)
        }
        "/tasks/start" => {
            EngineEvent::Started(named(&TaskStart::decode(bytes).ok()?.container_id)?)
        }
        "/tasks/exit" => {
            let e = TaskExit::decode(bytes).ok()?;
            // An exec'd process exiting is not the container dying.
            if e.id != e.container_id {
                return None;
            }
            EngineEvent::Died(named(&e.container_id)?)
        }
        "/containers/delete" => {
            EngineEvent::Destroyed(named(&ContainerDelete::decode(bytes).ok()?.id)?)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_client::events::{ContainerCreate, TaskExit};
    use std::collections::HashMap;

    const SNAP: &str = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots";

    fn container(id: &str, labels: &[(&str, &str)], spec: Option<&str>) -> Container {
        Container {
            id: id.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
            image: "docker.io/driftwatch-test/busybox:1".into(),
            spec: spec.map(|s| prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: s.as_bytes().to_vec(),
            }),
            snapshotter: "overlayfs".into(),
            snapshot_key: id.into(),
            ..Container::default()
        }
    }

    fn overlay() -> Mount {
        Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                format!("workdir={SNAP}/3/work"),
                format!("upperdir={SNAP}/3/fs"),
                format!("lowerdir={SNAP}/2/fs:{SNAP}/1/fs"),
            ],
            ..Mount::default()
        }
    }

    #[test]
    fn record_of_a_ctr_container_with_cri_labels() {
        let c = container(
            "web-0",
            &[
                ("io.kubernetes.pod.namespace", "shop"),
                ("io.kubernetes.pod.name", "web-0"),
                ("io.kubernetes.pod.uid", "u-1"),
            ],
            Some(
                r#"{"ociVersion":"1.0.2","process":{"args":["sleep","300"],"env":["PATH=/bin"]},
                   "annotations":{"io.kubernetes.cri.sandbox-name":"web-0",
                                  "io.kubernetes.cri.sandbox-namespace":"shop"}}"#,
            ),
        );
        let forged = Container {
            spec: None,
            ..c.clone()
        };
        let r = record_from_parts(c, Some("sha256:99f7".into()), Some((4242, 2)), &[overlay()])
            .unwrap();
        assert_eq!(r.meta.id.as_str(), "web-0");
        assert_eq!(r.meta.engine, Engine::Containerd);
        assert_eq!(r.meta.name, "web-0");
        assert_eq!(r.meta.image.repository, "docker.io/driftwatch-test/busybox");
        assert_eq!(r.meta.image.tag, "1");
        assert_eq!(r.meta.image.digest.as_deref(), Some("sha256:99f7"));
        let k = r.meta.k8s.unwrap();
        assert_eq!(
            (
                k.namespace.as_str(),
                k.pod_name.as_str(),
                k.pod_uid.as_str()
            ),
            ("shop", "web-0", "u-1")
        );
        assert_eq!(r.meta.entrypoint, ["sleep", "300"]);
        assert_eq!(r.env, ["PATH=/bin"]);
        assert!(!r.pod_sandbox);
        // A sandbox is one by the CRI plugin's spec annotation, never by a label (which
        // `ctr run` or the CRI plugin may have taken from the image).
        let sandbox = container(
            "0123abcd",
            &[("io.cri-containerd.kind", "sandbox")],
            Some(r#"{"annotations":{"io.kubernetes.cri.container-type":"sandbox"}}"#),
        );
        let labelled = container(
            "0123abce",
            &[("io.cri-containerd.kind", "sandbox")],
            Some("{}"),
        );
        assert!(
            record_from_parts(sandbox, None, None, &[])
                .unwrap()
                .pod_sandbox
        );
        assert!(
            !record_from_parts(labelled, None, None, &[])
                .unwrap()
                .pod_sandbox
        );
        // The same labels without the CRI plugin's annotations (an image's labels merged by
        // `ctr run`, or by the CRI plugin into a non-pod container) are no pod.
        let f = record_from_parts(forged, None, Some((4243, 2)), &[overlay()]).unwrap();
        assert_eq!(f.meta.k8s, None);
        assert_eq!(f.meta.labels["io.kubernetes.pod.name"], "web-0");
        assert!(r.running);
        assert_eq!(r.pid, Some(4242));
        let l = r.layers.unwrap();
        assert_eq!(l.upper, PathBuf::from(format!("{SNAP}/3/fs")));
        assert_eq!(
            l.lowers,
            [format!("{SNAP}/2/fs"), format!("{SNAP}/1/fs")].map(PathBuf::from)
        );
    }

    /// `container.privileged` as the spec shows it, unknown without a spec; the mounts the
    /// creator asked for.
    #[test]
    fn privileged_and_mounts_from_the_spec() {
        let fixture = |name: &str| {
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/oci")
                    .join(name),
            )
            .unwrap()
        };
        let privileged = fixture("containerd-1.6-cri-hostnetwork-agent.json");
        let plain = fixture("containerd-1.6-cri-hostnetwork-app.json");
        let r = record_from_parts(container("a", &[], Some(&privileged)), None, None, &[]);
        assert_eq!(r.unwrap().meta.privileged, Some(true));
        let r = record_from_parts(container("b", &[], Some(&plain)), None, None, &[]).unwrap();
        assert_eq!(r.meta.privileged, Some(false));
        assert_eq!(r.meta.mounts.len(), 1);
        assert_eq!(r.meta.mounts[0].dest, "/host/data");
        assert!(!r.meta.mounts[0].rw);
        let r = record_from_parts(container("c", &[], None), None, None, &[]).unwrap();
        assert_eq!(r.meta.privileged, None);
    }

    #[test]
    fn stopped_or_taskless_containers_have_no_pid() {
        let r = record_from_parts(container("a", &[], None), None, Some((77, 3)), &[]).unwrap();
        assert!(!r.running);
        assert_eq!(r.pid, None);
        assert_eq!(r.layers, None);
        let r = record_from_parts(container("a", &[], None), None, None, &[]).unwrap();
        assert!(!r.running && r.pid.is_none() && r.meta.image.digest.is_none());
    }

    #[test]
    fn a_lying_engine_gets_a_clear_error_not_a_panic() {
        let e =
            record_from_parts(container("a", &[], Some("{not json")), None, None, &[]).unwrap_err();
        assert!(matches!(e, RuntimeError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains("OCI spec"), "{e}");
        let e = record_from_parts(container("bad/id", &[], None), None, None, &[]).unwrap_err();
        assert!(e.to_string().contains("bad/id"), "{e}");
        // Bind-mount snapshots (no upperdir) give no layers.
        let bind = Mount {
            r#type: "bind".into(),
            ..Mount::default()
        };
        assert_eq!(layers_from_mounts(&[bind]), None);
    }

    fn envelope(ns: &str, topic: &str, msg: &impl Message) -> Envelope {
        Envelope {
            namespace: ns.into(),
            topic: topic.into(),
            event: Some(prost_types::Any {
                type_url: String::new(),
                value: msg.encode_to_vec(),
            }),
            ..Envelope::default()
        }
    }

    #[test]
    fn events_of_our_namespaces_only() {
        let ns = ["default".to_string()];
        let create = ContainerCreate {
            id: "web-1".into(),
            ..ContainerCreate::default()
        };
        assert_eq!(
            translate(&envelope("default", "/containers/create", &create), &ns),
            Some(EngineEvent::Created(ContainerId::named("web-1").unwrap()))
        );
        assert_eq!(
            translate(&envelope("other", "/containers/create", &create), &ns),
            None
        );
        let exit = |id: &str| TaskExit {
            container_id: "web-1".into(),
            id: id.into(),
            ..TaskExit::default()
        };
        assert_eq!(
            translate(&envelope("default", "/tasks/exit", &exit("web-1")), &ns),
            Some(EngineEvent::Died(ContainerId::named("web-1").unwrap()))
        );
        assert_eq!(
            translate(&envelope("default", "/tasks/exit", &exit("x")), &ns),
            None
        );
        // Garbage bytes are skipped, not a panic.
        let mut bad = envelope("default", "/tasks/start", &create);
        bad.event.as_mut().unwrap().value = vec![0xff, 0xff, 0xff];
        assert_eq!(translate(&bad, &ns), None);
    }

    #[tokio::test]
    async fn missing_socket_is_a_clear_one_line_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = ContainerdSource::new(ContainerdConfig {
            socket: dir.path().join("none.sock"),
            ..ContainerdConfig::default()
        });
        let e = src.ping().await.unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("none.sock") && msg.contains("containerd"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }

    #[tokio::test]
    async fn an_engine_that_never_answers_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mute.sock");
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let src = ContainerdSource::new(ContainerdConfig {
            socket: path,
            timeout: Duration::from_millis(300),
            ..ContainerdConfig::default()
        });
        let t = std::time::Instant::now();
        let e = src
            .inspect(&ContainerId::named("x").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(e, RuntimeError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
        hold.abort();
    }
}
