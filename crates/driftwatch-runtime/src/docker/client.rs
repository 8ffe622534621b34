//! The connection to Docker's Engine API over its unix socket: a version-negotiated client
//! (dropped on connection errors, so the next call renegotiates), every call bounded by the
//! configured timeout, bollard's errors worded as one-line [`RuntimeError`]s, a cache of image
//! inspections, and inspecting a container into a [`ContainerRecord`].

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::ListContainersOptionsBuilder;
use driftwatch_model::Engine;
use tokio::sync::Mutex;

use super::DockerConfig;
use super::translate::{ImageInfo, image_info, record_from_inspect};
use crate::source::{ContainerRecord, RuntimeError, innermost, within};

/// The engine's connection state and image cache, shared by a source's clones and its event
/// stream.
pub(super) struct DockerClient {
    pub(super) cfg: DockerConfig,
    /// A version-negotiated client, dropped on connection errors so the next call
    /// renegotiates (the daemon may have been upgraded while away).
    pub(super) client: Mutex<Option<Docker>>,
    images: std::sync::Mutex<HashMap<String, (Instant, ImageInfo)>>,
}

const MAX_CACHED_IMAGES: usize = 1024;

impl DockerClient {
    /// No I/O happens until the first call.
    pub(super) fn new(cfg: DockerConfig) -> DockerClient {
        DockerClient {
            cfg,
            client: Mutex::new(None),
            images: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn engine(&self) -> Engine {
        self.cfg.engine
    }

    /// Runs `fut` under the configured timeout.
    pub(super) async fn timed<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, RuntimeError> {
        let r = within(self.engine(), op, self.cfg.timeout, fut).await;
        if matches!(r, Err(RuntimeError::Connect { .. })) {
            *self.client.lock().await = None;
        }
        r
    }

    /// The negotiated client, connecting first if needed (not timed: callers are).
    pub(super) async fn client(&self) -> Result<Docker, RuntimeError> {
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

    pub(super) async fn ping(&self) -> Result<Docker, RuntimeError> {
        self.timed("ping", async {
            let d = self.client().await?;
            d.ping().await.map_err(|e| self.error("ping", e, None))?;
            Ok(d)
        })
        .await
    }

    pub(super) fn error(
        &self,
        op: &'static str,
        e: BollardError,
        id: Option<&str>,
    ) -> RuntimeError {
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

    pub(super) async fn inspect(&self, id: &str) -> Result<ContainerRecord, RuntimeError> {
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

    pub(super) async fn running_ids(&self) -> Result<Vec<String>, RuntimeError> {
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
