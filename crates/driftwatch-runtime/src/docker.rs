//! [`EngineSource`] for Docker's Engine API over a unix socket (bollard), which podman's
//! compatible API service also serves.
//!
//! - `client`: the connection (version-negotiated, dropped on connection errors), timeouts,
//!   bollard's errors worded as [`RuntimeError`]s, the image cache, and inspecting.
//! - `replay`: the event subscription, resumed after a reconnect from a little before the
//!   newest event seen, replays recognised and dropped.
//! - `translate`: `docker inspect` (and image inspect) JSON into the model's records (pure).

mod client;
mod replay;
mod translate;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftwatch_model::{ContainerId, Engine};
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};

use crate::source::{ContainerRecord, EngineEvent, EngineSource, RuntimeError};
use client::DockerClient;
use replay::DockerEvents;

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
    inner: Arc<DockerClient>,
}

/// Inspects in flight at once while listing.
const LIST_CONCURRENCY: usize = 8;

impl DockerSource {
    /// No I/O happens until the first call.
    pub fn new(cfg: DockerConfig) -> Self {
        Self {
            inner: Arc::new(DockerClient::new(cfg)),
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

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "d6eac21f4e25f0f95f4638ace9c2d3db386196a24dbf6f437953ea957f0d3142";

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
