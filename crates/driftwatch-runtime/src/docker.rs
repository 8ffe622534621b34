//! [`EngineSource`] for Docker's Engine API over a unix socket (bollard), which podman's
//! compatible API service also serves.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerInspectResponse, EventMessage, EventMessageTypeEnum, HostConfig, ImageInspect,
    MountPoint,
};
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use driftwatch_model::{ContainerId, ContainerMeta, Engine, ImageRef, OverlayLayers};
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};
use tokio::sync::Mutex;

use crate::runtime_config::{ImageConfig, MountSpec, RuntimeConfig};
use crate::source::{ContainerRecord, EngineEvent, EngineSource, RuntimeError};

/// Where and how to reach the engine.
#[derive(Clone, Debug)]
pub struct DockerConfig {
    /// Default `/var/run/docker.sock`; podman's is `/run/podman/podman.sock`.
    pub socket: PathBuf,
    /// Bound on every call (including version negotiation). Default 2 s.
    pub timeout: Duration,
    /// [`Engine::Docker`], or [`Engine::Podman`] when the socket is podman's.
    pub engine: Engine,
    /// Reconnect backoff of the event stream: first delay, doubling up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// How long image digests are cached (they change only when an image is pushed/pulled).
    pub image_cache_ttl: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/var/run/docker.sock"),
            timeout: Duration::from_secs(2),
            engine: Engine::Docker,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            image_cache_ttl: Duration::from_secs(300),
        }
    }
}

/// Docker (or podman) as an [`EngineSource`]. Cheap to clone; clones share the connection
/// state and the image cache.
#[derive(Clone)]
pub struct DockerSource {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: DockerConfig,
    /// A version-negotiated client, dropped on connection errors so the next call
    /// renegotiates (the daemon may have been upgraded while away).
    client: Mutex<Option<Docker>>,
    images: std::sync::Mutex<HashMap<String, (Instant, ImageInfo)>>,
}

/// What a record needs from the image: its repository digests and tags, and its config's
/// environment and user (for config drift).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ImageInfo {
    repo_digests: Vec<String>,
    repo_tags: Vec<String>,
    config: ImageConfig,
    /// The image config's own labels (Docker merges them into its containers' labels).
    labels: BTreeMap<String, String>,
}

const MAX_CACHED_IMAGES: usize = 1024;
/// Inspects in flight at once while listing.
const LIST_CONCURRENCY: usize = 8;

impl DockerSource {
    /// No I/O happens until the first call.
    pub fn new(cfg: DockerConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                client: Mutex::new(None),
                images: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &DockerConfig {
        &self.inner.cfg
    }

    /// Checks the engine answers (`/_ping`), within the timeout.
    pub async fn ping(&self) -> Result<(), RuntimeError> {
        self.inner.ping().await.map(drop)
    }

    /// Pings with backoff until the engine answers or `max_wait` passes.
    pub async fn wait_ready(&self, max_wait: Duration) -> Result<(), RuntimeError> {
        let deadline = Instant::now() + max_wait;
        let mut delay = self.inner.cfg.backoff_initial;
        loop {
            match self.ping().await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() + delay >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(delay).await,
            }
            delay = (delay * 2).min(self.inner.cfg.backoff_max);
        }
    }
}

impl DockerSource {
    /// An image's id and its layers' diff ids (`RootFS.Layers`, bottom first), by name, tag
    /// or id.
    pub async fn image_layers(&self, image: &str) -> Result<(String, Vec<String>), RuntimeError> {
        let inner = &self.inner;
        inner
            .timed("image inspect", async {
                let d = inner.client().await?;
                let img = d
                    .inspect_image(image)
                    .await
                    .map_err(|e| inner.error("image inspect", e, Some(image)))?;
                let id =
                    img.id
                        .filter(|i| !i.is_empty())
                        .ok_or_else(|| RuntimeError::Malformed {
                            engine: inner.engine(),
                            op: "image inspect",
                            detail: format!("{image}: no Id"),
                        })?;
                Ok((id, img.root_fs.and_then(|r| r.layers).unwrap_or_default()))
            })
            .await
    }
}

impl Inner {
    fn engine(&self) -> Engine {
        self.cfg.engine
    }

    /// Runs `fut` under the configured timeout.
    async fn timed<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, RuntimeError> {
        match tokio::time::timeout(self.cfg.timeout, fut).await {
            Ok(r) => {
                if matches!(r, Err(RuntimeError::Connect { .. })) {
                    *self.client.lock().await = None;
                }
                r
            }
            Err(_) => Err(RuntimeError::Timeout {
                engine: self.engine(),
                op,
                after: self.cfg.timeout,
            }),
        }
    }

    /// The negotiated client, connecting first if needed (not timed: callers are).
    async fn client(&self) -> Result<Docker, RuntimeError> {
        let mut slot = self.client.lock().await;
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let socket = self.cfg.socket.to_string_lossy();
        // bollard's own timeout is whole seconds; ours (tokio) is the one that matters.
        let secs = self.cfg.timeout.as_secs().max(1) * 4;
        let d = Docker::connect_with_unix(&socket, secs, bollard::API_DEFAULT_VERSION)
            .map_err(|e| self.error("connect", e, None))?;
        let d = d
            .negotiate_version()
            .await
            .map_err(|e| self.error("version negotiation", e, None))?;
        *slot = Some(d.clone());
        Ok(d)
    }

    async fn ping(&self) -> Result<Docker, RuntimeError> {
        self.timed("ping", async {
            let d = self.client().await?;
            d.ping().await.map_err(|e| self.error("ping", e, None))?;
            Ok(d)
        })
        .await
    }

    fn error(&self, op: &'static str, e: BollardError, id: Option<&str>) -> RuntimeError {
        let engine = self.engine();
        match e {
            BollardError::DockerResponseServerError {
                status_code: 404,
                message,
            } if id.is_some() => {
                tracing::debug!(op, %message, "not found");
                RuntimeError::NotFound {
                    engine,
                    id: id.unwrap_or_default().to_string(),
                }
            }
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => RuntimeError::Api {
                engine,
                op,
                status: Some(status_code),
                message,
            },
            BollardError::RequestTimeoutError => RuntimeError::Timeout {
                engine,
                op,
                after: self.cfg.timeout,
            },
            BollardError::SocketNotFoundError(_) => RuntimeError::Connect {
                engine,
                socket: self.cfg.socket.clone(),
                reason: "No such file or directory".into(),
            },
            BollardError::IOError { .. } | BollardError::HyperLegacyError { .. } => {
                RuntimeError::Connect {
                    engine,
                    socket: self.cfg.socket.clone(),
                    reason: innermost(&e),
                }
            }
            BollardError::JsonDataError { .. } | BollardError::JsonSerdeError { .. } => {
                RuntimeError::Malformed {
                    engine,
                    op,
                    detail: innermost(&e),
                }
            }
            other => RuntimeError::Api {
                engine,
                op,
                status: None,
                message: innermost(&other),
            },
        }
    }

    async fn image_info(
        &self,
        d: &Docker,
        image_id: &str,
    ) -> Result<Option<ImageInfo>, RuntimeError> {
        if let Some((at, info)) = self.images.lock().expect("image cache").get(image_id)
            && at.elapsed() < self.cfg.image_cache_ttl
        {
            return Ok(Some(info.clone()));
        }
        let info = match d.inspect_image(image_id).await {
            Ok(img) => image_info(img),
            // The image was removed (`docker rmi -f`) while containers still use it.
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(self.error("image inspect", e, None)),
        };
        let mut cache = self.images.lock().expect("image cache");
        if cache.len() >= MAX_CACHED_IMAGES {
            cache.clear();
        }
        cache.insert(image_id.to_string(), (Instant::now(), info.clone()));
        Ok(Some(info))
    }

    async fn inspect(&self, id: &str) -> Result<ContainerRecord, RuntimeError> {
        self.timed("inspect", async {
            let d = self.client().await?;
            let c = d
                .inspect_container(id, None)
                .await
                .map_err(|e| self.error("inspect", e, Some(id)))?;
            let image = match c.image.as_deref() {
                Some(image_id) => self.image_info(&d, image_id).await?,
                None => None,
            };
            // cri-dockerd: the pod is its sandbox's (see `pod_identity`).
            let sandbox = match c
                .config
                .as_ref()
                .and_then(|cfg| cfg.labels.as_ref())
                .and_then(|l| l.get(crate::pod_identity::SANDBOX_ID_LABEL))
            {
                Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => d
                    .inspect_container(s, None)
                    .await
                    .ok()
                    .and_then(|sb| Some((sb.id?, sb.config?.labels.unwrap_or_default())))
                    .filter(|(sid, _)| sid == s),
                _ => None,
            };
            let mut r = record_from_inspect(self.engine(), c, image.as_ref())?;
            if id.len() == 64 && r.meta.id.as_str() != id.to_ascii_lowercase() {
                return Err(RuntimeError::Malformed {
                    engine: self.engine(),
                    op: "inspect",
                    detail: format!(
                        "asked for container {id}, the engine answered with {}",
                        r.meta.id
                    ),
                });
            }
            if r.meta
                .labels
                .contains_key(crate::pod_identity::SANDBOX_ID_LABEL)
            {
                let sandbox_labels: Option<(String, BTreeMap<String, String>)> =
                    sandbox.map(|(sid, l)| (sid, l.into_iter().collect()));
                let pod = crate::pod_identity::sandbox_pod_identity(
                    &r.meta.labels,
                    &r.runtime_config.network_mode,
                    sandbox_labels.as_ref().map(|(sid, l)| (sid.as_str(), l)),
                );
                if let Some(why) = &pod.distrusted {
                    tracing::debug!("container {}: no pod identity: {why}", r.meta.id.short());
                }
                r.meta.k8s = pod.pod;
            }
            Ok(r)
        })
        .await
    }

    async fn running_ids(&self) -> Result<Vec<String>, RuntimeError> {
        self.timed("list", async {
            let d = self.client().await?;
            let opts = ListContainersOptionsBuilder::new().all(false).build();
            let list = d
                .list_containers(Some(opts))
                .await
                .map_err(|e| self.error("list", e, None))?;
            Ok(list.into_iter().filter_map(|c| c.id).collect())
        })
        .await
    }
}

impl EngineSource for DockerSource {
    fn engine(&self) -> Engine {
        self.inner.engine()
    }

    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerRecord, RuntimeError>> {
        // A named (containerd) id is no Docker id: Docker would look it up as a container
        // *name* and answer for another container.
        if !id.is_hex() {
            let err = RuntimeError::NotFound {
                engine: self.inner.engine(),
                id: id.to_string(),
            };
            return Box::pin(async move { Err(err) });
        }
        Box::pin(self.inner.inspect(id.as_str()))
    }

    fn list_running(&self) -> BoxFuture<'_, Result<Vec<ContainerRecord>, RuntimeError>> {
        Box::pin(async move {
            let ids = self.inner.running_ids().await?;
            let results: Vec<_> = futures_util::stream::iter(ids)
                .map(|id| async move { self.inner.inspect(&id).await })
                .buffer_unordered(LIST_CONCURRENCY)
                .collect()
                .await;
            let mut records = Vec::with_capacity(results.len());
            for r in results {
                match r {
                    Ok(rec) if rec.running => records.push(rec),
                    Ok(_) | Err(RuntimeError::NotFound { .. }) => {} // exited or removed meanwhile
                    Err(e) => return Err(e),
                }
            }
            records.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
            Ok(records)
        })
    }

    fn events(&self) -> BoxStream<'static, EngineEvent> {
        crate::events::reconnecting(DockerEvents::new(self.inner.clone()))
    }
}

/// Docker's (or Podman's) container events, replayed after a reconnect from a little before
/// the newest one seen.
///
/// Events do not come in `timeNano` order: under parallel churn dockerd publishes some up
/// to a few ms after a later-stamped one (14 of 1,632 in a 400-container churn here).
/// Dropping every event stamped at or before the newest seen, as a replay filter, lost those,
/// destroys among them, and their containers stayed "live" in the agent for good. Replays
/// are recognised by the event itself instead.
struct DockerEvents {
    inner: Arc<Inner>,
    /// The newest `timeNano` seen.
    last_nano: Option<i64>,
    /// (timeNano, container, action) of the last [`SEEN_EVENTS`] events passed on.
    seen: HashSet<(i64, String, String)>,
    order: VecDeque<(i64, String, String)>,
}

/// Events remembered to recognise a replay: more than dockerd keeps for `since` (256).
const SEEN_EVENTS: usize = 4096;
/// A replay starts this long before the newest event seen, for events published late.
const REPLAY_MARGIN_NS: i64 = 2_000_000_000;

impl DockerEvents {
    fn new(inner: Arc<Inner>) -> DockerEvents {
        DockerEvents {
            inner,
            last_nano: None,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// `since` for a resubscription, as Docker's `seconds.nanoseconds`.
    fn since(&self) -> Option<String> {
        let n = self.last_nano?.saturating_sub(REPLAY_MARGIN_NS).max(0);
        Some(format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000))
    }

    /// Whether this event was passed on already (a replay); remembers it if not.
    fn replayed(&mut self, key: (i64, String, String)) -> bool {
        self.last_nano = Some(self.last_nano.map_or(key.0, |l| l.max(key.0)));
        if !self.seen.insert(key.clone()) {
            return true;
        }
        self.order.push_back(key);
        while self.order.len() > SEEN_EVENTS {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        false
    }
}

impl crate::events::EventFeed for DockerEvents {
    type Item = EventMessage;

    fn label(&self) -> &str {
        self.inner.engine().as_str()
    }

    fn backoff(&self) -> (Duration, Duration) {
        (self.inner.cfg.backoff_initial, self.inner.cfg.backoff_max)
    }

    fn subscribe(
        &mut self,
    ) -> BoxFuture<'_, Result<crate::events::Feed<EventMessage>, RuntimeError>> {
        Box::pin(async move {
            let d = self.inner.ping().await?;
            let mut opts = EventsOptionsBuilder::new().filters(&HashMap::from([
                ("type", vec!["container"]),
                ("event", vec!["create", "start", "die", "destroy"]),
            ]));
            if let Some(since) = self.since() {
                opts = opts.since(&since);
            }
            let inner = self.inner.clone();
            Ok(d.events(Some(opts.build()))
                .map(move |r| r.map_err(|e| inner.error("events", e, None).to_string()))
                .boxed())
        })
    }

    fn lost(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            *self.inner.client.lock().await = None;
        })
    }

    fn translate(&mut self, msg: EventMessage) -> Option<EngineEvent> {
        if msg.typ != Some(EventMessageTypeEnum::CONTAINER) {
            return None;
        }
        let actor = msg.actor?.id?;
        let action = msg.action?;
        if let Some(n) = msg.time_nano
            && self.replayed((n, actor.clone(), action.clone()))
        {
            return None;
        }
        let id = ContainerId::new(actor.as_str()).ok()?;
        Some(match action.as_str() {
            "create" => EngineEvent::Created(id),
            "start" => EngineEvent::Started(id),
            "die" => EngineEvent::Died(id),
            "destroy" => EngineEvent::Destroyed(id),
            _ => return None,
        })
    }
}

/// The last error in a source chain: the OS's reason rather than "client error (Connect)".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn image_info(img: ImageInspect) -> ImageInfo {
    let config = img.config.unwrap_or_default();
    let repo_digests = img.repo_digests.unwrap_or_default();
    ImageInfo {
        labels: config
            .labels
            .clone()
            .map(|l| l.into_iter().collect())
            .unwrap_or_default(),
        repo_digests: repo_digests.clone(),
        repo_tags: img.repo_tags.unwrap_or_default(),
        config: ImageConfig {
            env: config.env.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
            repo_digests,
            diff_ids: img.root_fs.and_then(|r| r.layers).unwrap_or_default(),
        },
    }
}

/// Privileges, namespaces, mounts, user and security options from `docker inspect`, with the
/// image's config (pure).
fn runtime_config(
    host: Option<HostConfig>,
    mounts: Option<Vec<MountPoint>>,
    user: Option<String>,
    image: Option<&ImageInfo>,
) -> RuntimeConfig {
    let h = host.unwrap_or_default();
    RuntimeConfig {
        privileged: h.privileged.unwrap_or(false),
        cap_add: h.cap_add.unwrap_or_default(),
        cap_drop: h.cap_drop.unwrap_or_default(),
        network_mode: h.network_mode.unwrap_or_default(),
        pid_mode: h.pid_mode.unwrap_or_default(),
        ipc_mode: h.ipc_mode.unwrap_or_default(),
        uts_mode: h.uts_mode.unwrap_or_default(),
        userns_mode: h.userns_mode.unwrap_or_default(),
        mounts: mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(MountSpec {
                    kind: m.typ.unwrap_or_default(),
                    source: PathBuf::from(m.source.filter(|s| !s.is_empty())?),
                    destination: PathBuf::from(m.destination.filter(|s| !s.is_empty())?),
                    rw: m.rw.unwrap_or(true),
                })
            })
            .collect(),
        readonly_rootfs: h.readonly_rootfs.unwrap_or(false),
        user: user.unwrap_or_default(),
        security_opt: h.security_opt.unwrap_or_default(),
        image: image.map(|i| i.config.clone()),
        image_reference: String::new(),
    }
}

/// Builds the record from `docker inspect` output and the image's digests (pure).
fn record_from_inspect(
    engine: Engine,
    c: ContainerInspectResponse,
    image: Option<&ImageInfo>,
) -> Result<ContainerRecord, RuntimeError> {
    let malformed = |detail: String| RuntimeError::Malformed {
        engine,
        op: "inspect",
        detail,
    };
    let raw_id = c.id.ok_or_else(|| malformed("no Id".into()))?;
    let id = ContainerId::new(&raw_id).map_err(|e| malformed(e.to_string()))?;
    let config = c.config.unwrap_or_default();
    let state = c.state.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();

    let image_id = c.image.filter(|s| !s.is_empty());
    let mut image_ref = image_reference(
        config.image.as_deref().unwrap_or(""),
        image_id.as_deref(),
        image,
    );
    image_ref.id = image_id.clone();
    if image_ref.digest.is_none() {
        image_ref.digest = image
            .and_then(|i| repo_digest(&i.repo_digests, &image_ref.repository))
            .or(image_id);
    }

    let entrypoint = c
        .path
        .filter(|p| !p.is_empty())
        .into_iter()
        .chain(c.args.unwrap_or_default())
        .collect();
    let mut exposed_ports = config.exposed_ports.unwrap_or_default();
    exposed_ports.sort();
    let mut runtime_config = runtime_config(c.host_config, c.mounts, config.user, image);
    runtime_config.image_reference = config.image.clone().unwrap_or_default();

    let pod = crate::pod_identity::trusted_pod_identity(&labels, image.map(|i| &i.labels));
    if let Some(why) = &pod.distrusted {
        tracing::debug!("container {}: no pod identity: {why}", id.short());
    }
    Ok(ContainerRecord {
        meta: ContainerMeta {
            k8s: pod.pod,
            id,
            engine,
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: image_ref,
            labels,
            entrypoint,
        },
        pid: state
            .pid
            .filter(|p| *p > 0)
            .and_then(|p| u32::try_from(p).ok()),
        layers: c.graph_driver.and_then(|g| {
            matches!(g.name.as_str(), "overlay2" | "overlay" | "fuse-overlayfs")
                .then(|| layers_from_graph_driver(&g.data))
                .flatten()
        }),
        running: state.running.unwrap_or(false),
        started_at_ns: state.started_at.as_deref().and_then(parse_rfc3339_ns),
        env: config.env.unwrap_or_default(),
        exposed_ports,
        runtime_config,
    })
}

/// Repository and tag from `Config.Image`. A container started by image id (`sha256:...` or
/// a hex prefix) has no name there: take the image's first tag, if it has one.
fn image_reference(
    configured: &str,
    image_id: Option<&str>,
    image: Option<&ImageInfo>,
) -> ImageRef {
    let bare = configured.strip_prefix("sha256:").unwrap_or(configured);
    let by_id = !bare.is_empty()
        && bare.len() >= 12
        && bare.bytes().all(|b| b.is_ascii_hexdigit())
        && image_id.is_some_and(|i| i.trim_start_matches("sha256:").starts_with(bare));
    if configured.is_empty() || by_id || configured.starts_with("sha256:") {
        return image
            .and_then(|i| i.repo_tags.first())
            .map(|t| ImageRef::parse(t))
            .unwrap_or_default();
    }
    ImageRef::parse(configured)
}

/// The `sha256:...` of the RepoDigests entry for `repository`, else of the first entry.
fn repo_digest(repo_digests: &[String], repository: &str) -> Option<String> {
    let split = |s: &String| {
        s.split_once('@')
            .map(|(r, d)| (r.to_string(), d.to_string()))
    };
    repo_digests
        .iter()
        .filter_map(split)
        .find(|(r, _)| r == repository)
        .or_else(|| repo_digests.first().and_then(split))
        .map(|(_, d)| d)
}

/// Overlay layers from `GraphDriver.Data`. Docker's `LowerDir` starts with the container's
/// `-init` layer (the placeholders for `/etc/hosts` & co.), then the image's layers, top-most
/// first; its paths contain no `:` (Docker never escapes them).
fn layers_from_graph_driver(data: &HashMap<String, String>) -> Option<OverlayLayers> {
    let upper = data.get("UpperDir").filter(|s| !s.is_empty())?;
    Some(OverlayLayers {
        upper: PathBuf::from(upper),
        lowers: data
            .get("LowerDir")
            .map(|l| {
                l.split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default(),
        merged: data
            .get("MergedDir")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    })
}

/// `2026-11-28T13:27:26.287380783Z` → ns since the epoch; Docker's "never" (`0001-01-01...`)
/// and anything unparsable → `None`.
fn parse_rfc3339_ns(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos())
        .ok()
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "d6eac21f4e25f0f95f4638ace9c2d3db386196a24dbf6f437953ea957f0d3142";

    /// Trimmed `docker inspect` output (Engine API 1.41, dockerd 20.10) of a container made with
    /// CRI labels, as the kubelet's dockershim would.
    fn inspect_json() -> serde_json::Value {
        serde_json::json!({
            "Id": ID,
            "Created": "2026-11-28T13:27:25.956158165Z",
            "Path": "sleep",
            "Args": ["600"],
            "State": {"Status": "running", "Running": true, "Pid": 13759, "ExitCode": 0,
                      "StartedAt": "2026-11-28T13:27:26.287380783Z",
                      "FinishedAt": "0001-01-01T00:00:00Z"},
            "Image": "sha256:134445d2e83d3385aa5ae2562ac9f3fe4b90e13169aeceddf86a30241eca8327",
            "Name": "/web",
            "Driver": "overlay2",
            "GraphDriver": {"Name": "overlay2", "Data": {
                "LowerDir": "/var/lib/docker/overlay2/3d6f-init/diff:/var/lib/docker/overlay2/f609/diff",
                "MergedDir": "/var/lib/docker/overlay2/3d6f/merged",
                "UpperDir": "/var/lib/docker/overlay2/3d6f/diff",
                "WorkDir": "/var/lib/docker/overlay2/3d6f/work"}},
            "Config": {"Image": "driftwatch-test/busybox:1",
                       "Env": ["PATH=/bin", "A=b"],
                       "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                       "Cmd": ["sleep", "600"],
                       "Labels": {"io.kubernetes.pod.name": "web-0",
                                  "io.kubernetes.pod.namespace": "prod",
                                  "io.kubernetes.pod.uid": "u-1",
                                  "io.kubernetes.container.name": "app"}}
        })
    }

    fn parse(v: serde_json::Value) -> ContainerInspectResponse {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn record_from_docker_inspect() {
        let image = ImageInfo {
            repo_digests: vec![
                "other/repo@sha256:1111".into(),
                "driftwatch-test/busybox@sha256:2222".into(),
            ],
            repo_tags: vec!["driftwatch-test/busybox:1".into()],
            ..ImageInfo::default()
        };
        let r = record_from_inspect(Engine::Docker, parse(inspect_json()), Some(&image)).unwrap();
        assert_eq!(r.meta.id.as_str(), ID);
        assert_eq!(r.meta.engine, Engine::Docker);
        assert_eq!(r.meta.name, "web");
        assert_eq!(r.meta.image.repository, "driftwatch-test/busybox");
        assert_eq!(r.meta.image.tag, "1");
        assert_eq!(r.meta.image.digest.as_deref(), Some("sha256:2222"));
        assert_eq!(
            r.meta.image.id.as_deref(),
            Some("sha256:134445d2e83d3385aa5ae2562ac9f3fe4b90e13169aeceddf86a30241eca8327")
        );
        assert_eq!(r.meta.entrypoint, vec!["sleep", "600"]);
        let k8s = r.meta.k8s.as_ref().unwrap();
        assert_eq!(
            (k8s.namespace.as_str(), k8s.pod_name.as_str()),
            ("prod", "web-0")
        );
        assert_eq!(
            (k8s.pod_uid.as_str(), k8s.container_name.as_str()),
            ("u-1", "app")
        );
        assert_eq!(r.pid, Some(13759));
        assert!(r.running);
        assert_eq!(r.started_at_ns, Some(1_795_872_446_287_380_783));
        assert_eq!(r.env, vec!["PATH=/bin", "A=b"]);
        assert_eq!(r.exposed_ports, vec!["53/udp", "8080/tcp"]);
        let l = r.layers.unwrap();
        assert_eq!(l.upper, PathBuf::from("/var/lib/docker/overlay2/3d6f/diff"));
        assert_eq!(l.lowers.len(), 2);
        assert_eq!(
            l.merged,
            Some(PathBuf::from("/var/lib/docker/overlay2/3d6f/merged"))
        );
    }

    #[test]
    fn pod_labels_brought_by_the_image_are_no_pod_identity() {
        // `docker build` with `LABEL io.kubernetes.pod.name=web-0 ...`, then a plain
        // `docker run`: the container's labels are the image's.
        let mut image = ImageInfo::default();
        for k in ["io.kubernetes.pod.name", "io.kubernetes.pod.namespace"] {
            let v = inspect_json()["Config"]["Labels"][k]
                .as_str()
                .unwrap()
                .to_string();
            image.labels.insert(k.into(), v);
        }
        let r = record_from_inspect(Engine::Docker, parse(inspect_json()), Some(&image)).unwrap();
        assert_eq!(r.meta.k8s, None);
        // The labels stay visible as labels.
        assert_eq!(r.meta.labels["io.kubernetes.pod.name"], "web-0");
        // Without the image's labels there is no telling: no pod identity either.
        let r = record_from_inspect(Engine::Docker, parse(inspect_json()), None).unwrap();
        assert_eq!(r.meta.k8s, None);
    }

    #[test]
    fn runtime_config_from_docker_inspect() {
        // As dockerd 20.10 answers for `docker run --cap-add SYS_ADMIN --pid host --user 0
        // -v /var/run/docker.sock:/var/run/docker.sock -v /srv/cfg:/etc/app:ro
        // --security-opt seccomp=unconfined`.
        let mut v = inspect_json();
        v["HostConfig"] = serde_json::json!({
            "Binds": ["/var/run/docker.sock:/var/run/docker.sock", "/srv/cfg:/etc/app:ro"],
            "NetworkMode": "none", "CapAdd": ["CAP_SYS_ADMIN"], "CapDrop": null,
            "IpcMode": "private", "PidMode": "host", "Privileged": false,
            "ReadonlyRootfs": false, "SecurityOpt": ["seccomp=unconfined"],
            "UTSMode": "", "UsernsMode": ""});
        v["Mounts"] = serde_json::json!([
            {"Type": "bind", "Source": "/var/run/docker.sock",
             "Destination": "/var/run/docker.sock", "Mode": "", "RW": true,
             "Propagation": "rprivate"},
            {"Type": "bind", "Source": "/srv/cfg", "Destination": "/etc/app", "Mode": "ro",
             "RW": false, "Propagation": "rprivate"}]);
        v["Config"]["User"] = "0".into();
        let image = ImageInfo {
            config: ImageConfig {
                env: vec!["PATH=/bin".into()],
                user: "app".into(),
                ..ImageConfig::default()
            },
            ..ImageInfo::default()
        };
        let r = record_from_inspect(Engine::Docker, parse(v), Some(&image)).unwrap();
        let c = &r.runtime_config;
        assert!(!c.privileged && !c.readonly_rootfs);
        assert_eq!(c.added_capabilities(), ["CAP_SYS_ADMIN"]);
        assert_eq!(c.host_namespaces(), ["pid"]);
        assert_eq!(c.user, "0");
        assert_eq!(c.security_opt("seccomp"), Some("unconfined"));
        assert_eq!(c.mounts.len(), 2);
        assert_eq!(c.mounts[0].source, PathBuf::from("/var/run/docker.sock"));
        assert_eq!(c.mounts[0].kind, "bind");
        assert!(c.mounts[0].rw && !c.mounts[1].rw);
        assert_eq!(c.image.as_ref(), Some(&image.config));
        // No HostConfig, no image: engine defaults, image unknown.
        let v = inspect_json();
        let configured = v["Config"]["Image"].as_str().unwrap().to_string();
        let r = record_from_inspect(Engine::Docker, parse(v), None).unwrap();
        assert_eq!(
            r.runtime_config,
            RuntimeConfig {
                image_reference: configured,
                ..RuntimeConfig::default()
            }
        );
    }

    #[test]
    fn offline_image_digest_falls_back_to_image_id() {
        let image = ImageInfo {
            repo_digests: vec![],
            repo_tags: vec!["driftwatch-test/busybox:1".into()],
            ..ImageInfo::default()
        };
        let r = record_from_inspect(Engine::Docker, parse(inspect_json()), Some(&image)).unwrap();
        assert_eq!(r.meta.image.digest, r.meta.image.id);
        // Image gone (rmi -f): same fallback.
        let r = record_from_inspect(Engine::Docker, parse(inspect_json()), None).unwrap();
        assert_eq!(r.meta.image.digest, r.meta.image.id);
    }

    #[test]
    fn exited_and_never_started_containers() {
        let mut v = inspect_json();
        v["State"] = serde_json::json!({"Status": "exited", "Running": false, "Pid": 0,
            "ExitCode": 3, "StartedAt": "0001-01-01T00:00:00Z"});
        v["Labels"] = serde_json::Value::Null;
        let r = record_from_inspect(Engine::Docker, parse(v), None).unwrap();
        assert_eq!(r.pid, None);
        assert!(!r.running);
        assert_eq!(r.started_at_ns, None);
    }

    #[test]
    fn started_by_digest_or_by_id() {
        let info = ImageInfo {
            repo_digests: vec!["app@sha256:9999".into()],
            repo_tags: vec!["app:2".into()],
            ..ImageInfo::default()
        };
        let id = "sha256:134445d2e83d3385aa5ae2562ac9f3fe4b90e13169aeceddf86a30241eca8327";
        let by = |configured: &str| image_reference(configured, Some(id), Some(&info));
        let r = by("registry:5000/app@sha256:abcd");
        assert_eq!(
            (r.repository.as_str(), r.tag.as_str()),
            ("registry:5000/app", "")
        );
        assert_eq!(r.digest.as_deref(), Some("sha256:abcd"));
        assert_eq!(by("134445d2e83d").display_name(), "app:2");
        assert_eq!(by(id).display_name(), "app:2");
        assert_eq!(by("").display_name(), "app:2");
        // A hex-looking name that is not this image's id is a repository name.
        assert_eq!(by("deadbeefcafe").repository, "deadbeefcafe");
        assert_eq!(image_reference(id, Some(id), None), ImageRef::default());
    }

    #[test]
    fn malformed_inspect_is_an_error_not_a_panic() {
        let mut v = inspect_json();
        v["Id"] = "short".into();
        let e = record_from_inspect(Engine::Docker, parse(v), None).unwrap_err();
        assert!(matches!(e, RuntimeError::Malformed { .. }), "{e}");
        let e =
            record_from_inspect(Engine::Docker, parse(serde_json::json!({})), None).unwrap_err();
        assert!(e.to_string().contains("no Id"), "{e}");
        // Non-overlay storage: no layers.
        let mut v = inspect_json();
        v["GraphDriver"] = serde_json::json!({"Name": "vfs", "Data": {}});
        assert_eq!(
            record_from_inspect(Engine::Docker, parse(v), None)
                .unwrap()
                .layers,
            None
        );
    }

    #[test]
    fn rfc3339() {
        assert_eq!(
            parse_rfc3339_ns("1970-01-01T00:00:01.5Z"),
            Some(1_500_000_000)
        );
        assert_eq!(parse_rfc3339_ns("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ns("garbage"), None);
    }

    use crate::events::EventFeed;

    fn event(nano: i64, action: &str, id: &str) -> EventMessage {
        EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                id: Some(id.into()),
                attributes: None,
            }),
            time_nano: Some(nano),
            ..Default::default()
        }
    }

    /// The order dockerd really delivered in a parallel churn here: a destroy stamped
    /// 0.08 ms before the start of another container, delivered after it. Both are passed
    /// on; after a reconnect, the replay (from 2 s before the newest) passes on only what
    /// was not seen.
    #[test]
    fn events_out_of_time_order_are_kept_and_replays_are_dropped() {
        let src = DockerSource::new(DockerConfig::default());
        let mut feed = DockerEvents::new(src.inner.clone());
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let t = 1_795_918_836_669_916_702_i64;
        let id = |x: &str| ContainerId::new(x).unwrap();
        assert_eq!(
            feed.translate(event(t, "start", &b)),
            Some(EngineEvent::Started(id(&b)))
        );
        assert_eq!(
            feed.translate(event(t - 78_592, "destroy", &a)),
            Some(EngineEvent::Destroyed(id(&a)))
        );
        // Same time, another container: not a replay either.
        assert_eq!(
            feed.translate(event(t, "die", &c)),
            Some(EngineEvent::Died(id(&c)))
        );
        assert_eq!(feed.since().as_deref(), Some("1795918834.669916702"));
        // The replay after a reconnect: all three again, then one new.
        for (n, act, who) in [
            (t, "start", &b),
            (t - 78_592, "destroy", &a),
            (t, "die", &c),
        ] {
            assert_eq!(feed.translate(event(n, act, who)), None, "{act} replayed");
        }
        assert_eq!(
            feed.translate(event(t + 5, "destroy", &b)),
            Some(EngineEvent::Destroyed(id(&b)))
        );
        // Bounded: the oldest are forgotten first.
        for i in 0..(SEEN_EVENTS as i64 + 10) {
            feed.translate(event(t + 10 + i, "create", &c));
        }
        assert!(feed.seen.len() <= SEEN_EVENTS);
        assert_eq!(feed.seen.len(), feed.order.len());
    }

    #[tokio::test]
    async fn missing_socket_is_a_clear_one_line_error() {
        let src = DockerSource::new(DockerConfig {
            socket: "/nonexistent/docker.sock".into(),
            ..DockerConfig::default()
        });
        let e = src.ping().await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "docker: cannot connect to /nonexistent/docker.sock: No such file or directory (is dockerd running?)"
        );
        let id = ContainerId::new(ID).unwrap();
        assert!(src.inspect(&id).await.unwrap_err().is_unavailable());
    }
}
