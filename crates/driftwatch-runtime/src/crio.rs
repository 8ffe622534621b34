//! [`EngineSource`] for CRI-O, through its CRI socket (CRI-O has no other API): a container's
//! verbose `ContainerStatus` (CRI-O's `info` JSON: pid, sandbox id, OCI runtime spec,
//! privileged, as `server/container_status.go` writes it), its pod sandbox's
//! `PodSandboxStatus` (name, namespace, uid, labels), and its image's verbose `ImageStatus`
//! (id, repository digests, and the OCI image config: user, env, exposed ports, diff ids).
//!
//! Events come from `GetContainerEvents` (a stream, CRI-O 1.26+ with `enable_pod_events`); a
//! runtime without (the call unimplemented, or its stream ending at once, CRI-O's default) is
//! polled with `ListContainers` instead, and the differences between two listings are the
//! events.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use containerd_client::tonic::Code;
use driftwatch_model::{ContainerId, ContainerMeta, Engine, ImageRef, KubernetesMeta};
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};
use k8s_cri::v1::{
    ContainerFilter, ContainerStateValue, ContainerStatusResponse, GetEventsRequest,
    ImageStatusResponse, ListContainersRequest,
};

use crate::cri::{CriClient, PodSandbox, annotated_ports};
use crate::oci_runtime::{DefaultCaps, OciSpec};
use crate::runtime_config::ImageConfig;
use crate::source::{ContainerRecord, EngineEvent, EngineSource, RuntimeError};

const ENGINE: Engine = Engine::Crio;
/// `runtime.v1.ContainerState.CONTAINER_RUNNING`.
const STATE_RUNNING: i32 = 1;

/// CRI-O's socket (`crio.conf` `listen`), then its `/run` spelling.
pub const CRIO_SOCKETS: &[&str] = &["/var/run/crio/crio.sock", "/run/crio/crio.sock"];

/// Where and how to reach CRI-O.
#[derive(Clone, Debug)]
pub struct CrioConfig {
    pub socket: PathBuf,
    /// Bound on every call. Default 2 s.
    pub timeout: Duration,
    /// How often `ListContainers` is asked when the runtime streams no events. Default 1 s.
    pub poll_interval: Duration,
    /// Reconnect backoff of the event stream: first delay, doubling up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl CrioConfig {
    /// The first of [`CRIO_SOCKETS`] that exists, if any.
    pub fn find_socket() -> Option<PathBuf> {
        CRIO_SOCKETS.iter().map(PathBuf::from).find(|p| p.exists())
    }
}

impl Default for CrioConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(CRIO_SOCKETS[0]),
            timeout: Duration::from_secs(2),
            poll_interval: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// CRI-O as an [`EngineSource`]. Cheap to clone; clones share the channel and sandbox cache.
#[derive(Clone)]
pub struct CrioSource {
    cri: CriClient,
    cfg: Arc<CrioConfig>,
}

/// CRI-O's verbose container info (`server/container_status.go`, `containerInfo`).
#[derive(Debug, serde::Deserialize)]
struct CrioContainerInfo {
    #[serde(rename = "sandboxID", default)]
    sandbox_id: String,
    #[serde(default)]
    pid: i64,
    #[serde(rename = "runtimeSpec", default)]
    runtime_spec: OciSpec,
    #[serde(default)]
    privileged: bool,
}

/// CRI-O's verbose image info (`server/image_status.go`, `createImageInfo`): the OCI image
/// config (`specs.Image`) under `imageSpec`.
#[derive(Debug, Default, serde::Deserialize)]
struct CrioImageInfo {
    #[serde(rename = "imageSpec", default)]
    image_spec: Option<OciImage>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct OciImage {
    #[serde(default)]
    config: OciImageConfig,
    #[serde(default)]
    rootfs: OciRootfs,
}

#[derive(Debug, Default, serde::Deserialize)]
struct OciImageConfig {
    #[serde(rename = "User", default)]
    user: String,
    #[serde(rename = "Env", default)]
    env: Vec<String>,
    #[serde(rename = "ExposedPorts", default)]
    exposed_ports: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct OciRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

impl CrioSource {
    /// No I/O happens until the first call.
    pub fn new(cfg: CrioConfig) -> Self {
        Self {
            cri: CriClient::new(ENGINE, cfg.socket.clone(), cfg.timeout),
            cfg: Arc::new(cfg),
        }
    }

    pub fn config(&self) -> &CrioConfig {
        &self.cfg
    }

    /// Checks CRI-O answers (`Version`), within the timeout.
    pub async fn ping(&self) -> Result<(), RuntimeError> {
        self.cri.version().await.map(|_| ())
    }

    async fn inspect_id(&self, id: &str) -> Result<ContainerRecord, RuntimeError> {
        let resp = self.cri.container_status(id).await?;
        let info = match resp.info.get("info") {
            Some(json) => match serde_json::from_str::<CrioContainerInfo>(json) {
                Ok(i) => Some(i),
                Err(e) => {
                    tracing::warn!(
                        "cri-o: container {id}: verbose info is not CRI-O's JSON ({e}): no pid, pod or runtime config"
                    );
                    None
                }
            },
            None => None,
        };
        // The pod is the sandbox CRI-O itself names, never the container's labels.
        let sandbox = match info.as_ref().map(|i| i.sandbox_id.as_str()) {
            Some(sid) if !sid.is_empty() => match self.cri.pod_sandbox(sid).await {
                Ok(s) => Some(s),
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => {
                    tracing::warn!("cri-o: container {id}: no pod: {e}");
                    None
                }
            },
            _ => None,
        };
        let status_image = resp
            .status
            .as_ref()
            .and_then(|s| s.image.as_ref())
            .map(|i| i.image.clone())
            .filter(|i| !i.is_empty())
            .or_else(|| resp.status.as_ref().map(|s| s.image_ref.clone()))
            .unwrap_or_default();
        let image = if status_image.is_empty() {
            None
        } else {
            match self.cri.image_status(&status_image).await {
                Ok(i) => i,
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => {
                    tracing::warn!("cri-o: container {id}: image {status_image}: {e}");
                    None
                }
            }
        };
        record_from_cri(resp, info, sandbox.as_deref(), image.as_ref())
    }

    async fn list(&self) -> Result<Vec<ContainerRecord>, RuntimeError> {
        let list = self
            .cri
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    state: Some(ContainerStateValue {
                        state: STATE_RUNNING,
                    }),
                    ..ContainerFilter::default()
                }),
            })
            .await?;
        let mut records = Vec::new();
        for c in list {
            match self.inspect_id(&c.id).await {
                Ok(r) if r.running => records.push(r),
                Ok(_) | Err(RuntimeError::NotFound { .. }) => {}
                Err(e @ RuntimeError::Malformed { .. }) => {
                    tracing::warn!("cri-o: {}: {e}", c.id);
                }
                Err(e) => return Err(e),
            }
        }
        records.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
        Ok(records)
    }
}

/// `sha256:<hex>`: CRI-O gives image ids as bare hex.
fn image_id(id: &str) -> Option<String> {
    match id {
        "" => None,
        id if id.contains(':') => Some(id.to_string()),
        id => Some(format!("sha256:{id}")),
    }
}

/// Builds a record from what CRI-O answered. Pure, so it tests without CRI-O.
fn record_from_cri(
    resp: ContainerStatusResponse,
    info: Option<CrioContainerInfo>,
    sandbox: Option<&PodSandbox>,
    image: Option<&ImageStatusResponse>,
) -> Result<ContainerRecord, RuntimeError> {
    let malformed = |detail: String| RuntimeError::Malformed {
        engine: ENGINE,
        op: "container status",
        detail,
    };
    let status = resp
        .status
        .ok_or_else(|| malformed("no status in the answer".into()))?;
    let id = ContainerId::new(&status.id).map_err(|e| malformed(e.to_string()))?;
    let container_name = status
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let labels: BTreeMap<String, String> = status.labels.clone().into_iter().collect();
    let spec_image = status
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .unwrap_or_default();
    let img = image.and_then(|i| i.image.as_ref());
    let mut image_ref = ImageRef::parse(if spec_image.is_empty() {
        img.and_then(|i| i.repo_tags.first())
            .map_or("", String::as_str)
    } else {
        &spec_image
    });
    if image_ref.digest.is_none() {
        image_ref.digest = status
            .image_ref
            .split_once('@')
            .map(|(_, d)| d.to_string())
            .or_else(|| {
                img.and_then(|i| i.repo_digests.first())
                    .and_then(|d| d.split_once('@'))
                    .map(|(_, d)| d.to_string())
            });
    }
    image_ref.id = img
        .and_then(|i| image_id(&i.id))
        .or_else(|| image_id(&status.image_id));
    let image_info: Option<OciImage> = image.and_then(|i| {
        let json = i.info.get("info")?;
        match serde_json::from_str::<CrioImageInfo>(json) {
            Ok(v) => v.image_spec,
            Err(e) => {
                tracing::warn!("cri-o: container {id}: image info is not CRI-O's JSON: {e}");
                None
            }
        }
    });
    let running = status.state == STATE_RUNNING;
    let mut exposed_ports: Vec<String> = image_info
        .as_ref()
        .map(|i| {
            i.config
                .exposed_ports
                .keys()
                .map(|k| k.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    if let Some(s) = sandbox {
        exposed_ports.extend(s.ports.iter().cloned());
    }
    match annotated_ports(&status.annotations) {
        Ok(p) => exposed_ports.extend(p),
        Err(e) => tracing::warn!("cri-o: container {id}: {e}"),
    }
    exposed_ports.sort();
    exposed_ports.dedup();
    let (spec, privileged, pid) = match info {
        Some(i) => (Some(i.runtime_spec), Some(i.privileged), i.pid),
        None => (None, None, 0),
    };
    let mut runtime_config = spec
        .as_ref()
        .map(|s| s.runtime_config(DefaultCaps::Crio, privileged))
        .unwrap_or_default();
    if let Some(s) = sandbox.filter(|_| spec.is_some()) {
        crate::cri::host_namespaces_of_sandbox(&mut runtime_config, s);
    }
    runtime_config.image = img.map(|i| ImageConfig {
        env: image_info
            .as_ref()
            .map(|c| c.config.env.clone())
            .unwrap_or_default(),
        user: image_info
            .as_ref()
            .map(|c| c.config.user.clone())
            .unwrap_or_default(),
        repo_digests: i.repo_digests.clone(),
        diff_ids: image_info
            .as_ref()
            .map(|c| c.rootfs.diff_ids.clone())
            .unwrap_or_default(),
    });
    runtime_config.image_reference = status
        .image
        .as_ref()
        .map(|i| i.user_specified_image.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or(spec_image);
    let k8s = sandbox.map(|s| KubernetesMeta {
        namespace: s.namespace.clone(),
        pod_name: s.name.clone(),
        pod_uid: s.uid.clone(),
        container_name: container_name.clone(),
        labels: crate::pod_identity::sandbox_pod_labels(&s.labels),
    });
    let started_ns = u64::try_from(status.started_at).ok().filter(|t| *t > 0);
    let (entrypoint, env) = spec
        .map(|s| (s.process.args, s.process.env))
        .unwrap_or_default();
    Ok(ContainerRecord {
        pod_sandbox: false,
        meta: ContainerMeta {
            // CRI-O's verbose info says it; without the info, not known.
            privileged,
            mounts: crate::cri::model_mounts(&status.mounts),
            started_ns,
            name: if container_name.is_empty() {
                id.as_str().to_string()
            } else {
                container_name
            },
            id,
            engine: ENGINE,
            image: image_ref,
            labels,
            k8s,
            entrypoint,
        },
        pid: u32::try_from(pid).ok().filter(|p| *p > 0 && running),
        layers: None,
        running,
        started_at_ns: started_ns,
        env,
        exposed_ports,
        runtime_config,
    })
}

impl EngineSource for CrioSource {
    fn engine(&self) -> Engine {
        ENGINE
    }

    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerRecord, RuntimeError>> {
        Box::pin(self.inspect_id(id.as_str()))
    }

    fn list_running(&self) -> BoxFuture<'_, Result<Vec<ContainerRecord>, RuntimeError>> {
        Box::pin(self.list())
    }

    fn events(&self) -> BoxStream<'static, EngineEvent> {
        crate::events::reconnecting(CrioEvents { src: self.clone() })
    }
}

/// CRI-O's container events, streamed or polled.
struct CrioEvents {
    src: CrioSource,
}

/// `runtime.v1.ContainerEventType` as an [`EngineEvent`].
fn translate(event_type: i32, id: &str) -> Option<EngineEvent> {
    let id = ContainerId::new(id).ok()?;
    Some(match event_type {
        0 => EngineEvent::Created(id),
        1 => EngineEvent::Started(id),
        2 => EngineEvent::Died(id),
        3 => EngineEvent::Destroyed(id),
        _ => return None,
    })
}

/// The events between two listings (id → state): new containers are created (and started
/// when running), running ones that stopped died, missing ones were destroyed.
fn diff_listings(before: &HashMap<String, i32>, now: &HashMap<String, i32>) -> Vec<EngineEvent> {
    let mut out = Vec::new();
    let mut ids: Vec<&String> = before.keys().chain(now.keys()).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        let Ok(cid) = ContainerId::new(id) else {
            continue;
        };
        match (before.get(id), now.get(id)) {
            (None, Some(s)) => {
                out.push(EngineEvent::Created(cid.clone()));
                if *s == STATE_RUNNING {
                    out.push(EngineEvent::Started(cid));
                }
            }
            (Some(a), Some(b)) if a != b && *b == STATE_RUNNING => {
                out.push(EngineEvent::Started(cid));
            }
            (Some(a), Some(b)) if a != b && *a == STATE_RUNNING => {
                out.push(EngineEvent::Died(cid));
            }
            (Some(a), None) => {
                if *a == STATE_RUNNING {
                    out.push(EngineEvent::Died(cid.clone()));
                }
                out.push(EngineEvent::Destroyed(cid));
            }
            _ => {}
        }
    }
    out
}

/// `ListContainers` every `interval`, as events.
fn polled(src: CrioSource, interval: Duration) -> crate::events::Feed<EngineEvent> {
    let listing = move |src: CrioSource| async move {
        src.cri
            .list_containers(ListContainersRequest::default())
            .await
            .map(|l| {
                l.into_iter()
                    .map(|c| (c.id, c.state))
                    .collect::<HashMap<_, _>>()
            })
            .map_err(|e| e.to_string())
    };
    futures_util::stream::unfold(
        (src, None::<HashMap<String, i32>>),
        move |(src, before)| async move {
            if before.is_some() {
                tokio::time::sleep(interval).await;
            }
            match listing(src.clone()).await {
                Ok(now) => {
                    let events = before
                        .as_ref()
                        .map(|b| diff_listings(b, &now))
                        .unwrap_or_default();
                    Some((Ok(events), (src, Some(now))))
                }
                // One error item ends this subscription; the reconnecting stream resubscribes.
                Err(e) => Some((Err(e), (src, None))),
            }
        },
    )
    .flat_map(|r: Result<Vec<EngineEvent>, String>| match r {
        Ok(evs) => futures_util::stream::iter(evs.into_iter().map(Ok)).boxed(),
        Err(e) => futures_util::stream::iter([Err(e)]).boxed(),
    })
    .boxed()
}

/// The runtime's event stream, or polling when it ends without a single event: CRI-O
/// without `enable_pod_events` (its default) answers `GetContainerEvents` with a stream that
/// ends at once (`server/container_events.go` returns nil), which would otherwise end and
/// resubscribe forever. A stream that ends after events ends the subscription (the
/// reconnecting stream resubscribes).
fn streamed_or_polled(
    events: containerd_client::tonic::Streaming<k8s_cri::v1::ContainerEventResponse>,
    src: CrioSource,
    interval: Duration,
) -> crate::events::Feed<EngineEvent> {
    let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw = seen.clone();
    let streamed = events.filter_map(move |r| {
        saw.store(true, std::sync::atomic::Ordering::Relaxed);
        async move {
            match r {
                Ok(e) => translate(e.container_event_type, &e.container_id).map(Ok),
                Err(s) => Some(Err(format!(
                    "cri-o: events: {:?}: {}",
                    s.code(),
                    s.message()
                ))),
            }
        }
    });
    let fallback = futures_util::stream::once(async move {
        if seen.load(std::sync::atomic::Ordering::Relaxed) {
            futures_util::stream::empty().boxed()
        } else {
            tracing::info!(
                "cri-o sends no container events (enable_pod_events is off); polling ListContainers"
            );
            polled(src, interval)
        }
    })
    .flatten();
    streamed.chain(fallback).boxed()
}

impl crate::events::EventFeed for CrioEvents {
    type Item = EngineEvent;

    fn label(&self) -> &str {
        "cri-o"
    }

    fn backoff(&self) -> (Duration, Duration) {
        (self.src.cfg.backoff_initial, self.src.cfg.backoff_max)
    }

    fn subscribe(
        &mut self,
    ) -> BoxFuture<'_, Result<crate::events::Feed<EngineEvent>, RuntimeError>> {
        Box::pin(async move {
            // Connecting is bounded; the stream call is not awaited here (grpc-go sends the
            // response headers with the first event): it is the stream's first step.
            let ch = self
                .src
                .cri
                .timed("connect", self.src.cri.channel())
                .await?;
            // The channel answers, so the first listing is the baseline the polling diffs
            // against, as the stream's start is for the runtime's own events.
            let src = self.src.clone();
            let interval = self.src.cfg.poll_interval;
            let client = self.src.cri.clone();
            let call = async move {
                client
                    .runtime(ch)
                    .get_container_events(GetEventsRequest::default())
                    .await
            };
            Ok(futures_util::stream::once(call)
                .flat_map(move |r| match r {
                    Ok(resp) => streamed_or_polled(resp.into_inner(), src.clone(), interval),
                    // CRI-O before 1.26 has no such call.
                    Err(s) if s.code() == Code::Unimplemented => {
                        tracing::info!("cri-o streams no container events; polling ListContainers");
                        polled(src.clone(), interval)
                    }
                    Err(s) => {
                        let reason = format!("cri-o: events: {:?}: {}", s.code(), s.message());
                        futures_util::stream::iter([Err(reason)]).boxed()
                    }
                })
                .boxed())
        })
    }

    fn translate(&mut self, ev: EngineEvent) -> Option<EngineEvent> {
        Some(ev)
    }

    fn lost(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.src.cri.reset().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn listings_differ_by_events() {
        let before = HashMap::from([
            (id('a'), STATE_RUNNING),
            (id('b'), STATE_RUNNING),
            (id('c'), 0),
        ]);
        let now = HashMap::from([
            (id('a'), STATE_RUNNING),
            (id('b'), 2),
            (id('c'), STATE_RUNNING),
            (id('d'), STATE_RUNNING),
        ]);
        let cid = |c| ContainerId::new(&id(c)).unwrap();
        assert_eq!(
            diff_listings(&before, &now),
            [
                EngineEvent::Died(cid('b')),
                EngineEvent::Started(cid('c')),
                EngineEvent::Created(cid('d')),
                EngineEvent::Started(cid('d')),
            ]
        );
        assert_eq!(
            diff_listings(&now, &HashMap::new()),
            [
                EngineEvent::Died(cid('a')),
                EngineEvent::Destroyed(cid('a')),
                EngineEvent::Destroyed(cid('b')),
                EngineEvent::Died(cid('c')),
                EngineEvent::Destroyed(cid('c')),
                EngineEvent::Died(cid('d')),
                EngineEvent::Destroyed(cid('d')),
            ]
        );
        assert_eq!(translate(1, &id('a')), Some(EngineEvent::Started(cid('a'))));
        assert_eq!(translate(9, &id('a')), None);
        assert_eq!(translate(0, "not-an-id"), None);
    }

    #[test]
    fn image_ids_get_their_algorithm() {
        assert_eq!(image_id("abc").as_deref(), Some("sha256:abc"));
        assert_eq!(image_id("sha256:abc").as_deref(), Some("sha256:abc"));
        assert_eq!(image_id(""), None);
    }
}
