//! The engine-agnostic seam: what any container engine must answer ([`EngineSource`]), the
//! record it answers with, its lifecycle events, and its errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use driftwatch_model::{ContainerId, ContainerMeta, Engine, OverlayLayers};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

/// Everything an engine tells us about one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRecord {
    pub meta: ContainerMeta,
    /// The init process's pid in the engine's (host) pid namespace; `None` when not running.
    pub pid: Option<u32>,
    /// The root filesystem's overlay layers as host paths, when the storage driver is overlay.
    pub layers: Option<OverlayLayers>,
    pub running: bool,
    /// When the container last started, ns since the Unix epoch; `None` if it never started.
    pub started_at_ns: Option<u64>,
    /// `KEY=value`, as configured.
    pub env: Vec<String>,
    /// `80/tcp`, ..., sorted.
    pub exposed_ports: Vec<String>,
    /// Privileges, namespaces, mounts, user, security options, and the image's own config.
    pub runtime_config: crate::RuntimeConfig,
    /// A pod's sandbox (the "pause" container holding the pod's namespaces), as the runtime
    /// itself marks it where no image can (containerd: the CRI plugin's spec annotation). Not
    /// a workload: its settings are the runtime's, not drift.
    pub pod_sandbox: bool,
}

impl ContainerRecord {
    /// A running container known by its metadata and one process only: no layers, start
    /// time, environment or configuration (what an engine's inspect answers at the least).
    pub fn of_process(meta: ContainerMeta, pid: u32) -> ContainerRecord {
        ContainerRecord {
            meta,
            pid: Some(pid),
            layers: None,
            running: true,
            started_at_ns: None,
            env: Vec::new(),
            exposed_ports: Vec::new(),
            runtime_config: crate::RuntimeConfig::default(),
            pod_sandbox: false,
        }
    }

    /// The image's layers' diff ids (`RootFS.Layers`), bottom first; empty when unknown.
    pub fn image_diff_ids(&self) -> &[String] {
        self.runtime_config
            .image
            .as_ref()
            .map(|i| i.diff_ids.as_slice())
            .unwrap_or_default()
    }
}

/// A lifecycle event from an engine, or a notice about the link to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineEvent {
    Created(ContainerId),
    Started(ContainerId),
    Died(ContainerId),
    Destroyed(ContainerId),
    /// The engine cannot be reached (first failure only, not every retry); the stream keeps
    /// retrying with backoff. `reason` is a one-line message.
    Disconnected {
        reason: String,
    },
    /// The engine answers again (its ping succeeded; the resubscription follows on the next
    /// poll, from the last event seen). Events that happened while disconnected are replayed when
    /// the engine still had them (Docker keeps a short in-memory log; a restarted daemon has
    /// none), so a consumer should re-list running containers to be sure.
    Reconnected,
}

/// A container engine as the agent sees it: metadata on demand, and lifecycle events.
///
/// Object-safe (`Box<dyn EngineSource>`): methods return boxed futures and streams. Every
/// call is bounded by the source's timeout, so a hung engine never blocks a caller.
pub trait EngineSource: Send + Sync {
    fn engine(&self) -> Engine;

    /// One container, running or not.
    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerRecord, RuntimeError>>;

    /// Every running container. Containers that vanish between listing and inspecting are
    /// left out.
    fn list_running(&self) -> BoxFuture<'_, Result<Vec<ContainerRecord>, RuntimeError>>;

    /// Lifecycle events, forever: the stream reconnects by itself with backoff and reports
    /// [`EngineEvent::Disconnected`] / [`EngineEvent::Reconnected`]. Subscribe before
    /// listing running containers, so nothing falls between the two.
    fn events(&self) -> BoxStream<'static, EngineEvent>;
}

/// Why an engine could not answer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RuntimeError {
    #[error("{}: cannot connect to {}: {reason} (is {} running?)", engine.as_str(), socket.display(), daemon(*engine))]
    Connect {
        engine: Engine,
        socket: PathBuf,
        reason: String,
    },
    #[error("{}: {op} timed out after {} ms", engine.as_str(), after.as_millis())]
    Timeout {
        engine: Engine,
        op: &'static str,
        after: Duration,
    },
    #[error("{}: no such container {id}", engine.as_str())]
    NotFound { engine: Engine, id: String },
    #[error("{}: {op} failed{}: {message}", engine.as_str(), status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Api {
        engine: Engine,
        op: &'static str,
        status: Option<u16>,
        message: String,
    },
    #[error("{}: {op}: unexpected answer: {detail}", engine.as_str())]
    Malformed {
        engine: Engine,
        op: &'static str,
        detail: String,
    },
}

impl RuntimeError {
    /// The engine is unreachable or too slow (worth retrying later), as opposed to an answer.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            RuntimeError::Connect { .. } | RuntimeError::Timeout { .. }
        )
    }
}

fn daemon(engine: Engine) -> &'static str {
    match engine {
        Engine::Docker => "dockerd",
        Engine::Podman => "podman's API service",
        Engine::Containerd => "containerd",
        Engine::Crio => "crio",
        Engine::Unknown => "the engine",
    }
}

/// Runs one call to an engine within `timeout`: one that takes longer is a
/// [`RuntimeError::Timeout`] naming `op`, so a hung engine never blocks its caller.
pub(crate) async fn within<T>(
    engine: Engine,
    op: &'static str,
    timeout: Duration,
    call: impl Future<Output = Result<T, RuntimeError>>,
) -> Result<T, RuntimeError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(RuntimeError::Timeout {
                engine,
                op,
                after: timeout,
            })
        })
}

/// Waits until something accepts connections on the unix socket at `path`, polling with a
/// backoff from 20 ms up to 500 ms, for at most `max_wait`. The error names the socket and the
/// last reason (`No such file or directory`, `Connection refused`).
pub async fn wait_for_socket(
    engine: Engine,
    path: &Path,
    max_wait: Duration,
) -> Result<(), RuntimeError> {
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut delay = Duration::from_millis(20);
    loop {
        let reason = match tokio::net::UnixStream::connect(path).await {
            Ok(_) => return Ok(()),
            Err(e) => e.to_string(),
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(RuntimeError::Connect {
                engine,
                socket: path.to_path_buf(),
                reason: format!("{reason}, still after {} ms", max_wait.as_millis()),
            });
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// The last error in a source chain: the OS's reason ("No such file or directory") rather
/// than the transport's wrapper ("transport error"), for one-line messages.
pub fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_and_name_what_failed() {
        let e = RuntimeError::Connect {
            engine: Engine::Docker,
            socket: "/var/run/docker.sock".into(),
            reason: "No such file or directory (os error 2)".into(),
        };
        assert_eq!(
            e.to_string(),
            "docker: cannot connect to /var/run/docker.sock: No such file or directory (os error 2) (is dockerd running?)"
        );
        assert!(e.is_unavailable());
        let e = RuntimeError::Timeout {
            engine: Engine::Docker,
            op: "inspect",
            after: Duration::from_secs(2),
        };
        assert_eq!(e.to_string(), "docker: inspect timed out after 2000 ms");
        let e = RuntimeError::Api {
            engine: Engine::Podman,
            op: "list",
            status: Some(500),
            message: "boom".into(),
        };
        assert_eq!(e.to_string(), "podman: list failed (HTTP 500): boom");
        assert!(!e.is_unavailable());
    }

    #[tokio::test]
    async fn wait_for_socket_gives_up_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        let t = std::time::Instant::now();
        let e = wait_for_socket(Engine::Docker, &path, Duration::from_millis(150))
            .await
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(1));
        let msg = e.to_string();
        assert!(
            msg.contains("none.sock") && msg.contains("No such file"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn wait_for_socket_sees_a_late_listener() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.sock");
        let p = path.clone();
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let l = tokio::net::UnixListener::bind(&p).unwrap();
            let _ = l.accept().await;
        });
        wait_for_socket(Engine::Docker, &path, Duration::from_secs(5))
            .await
            .unwrap();
        server.await.unwrap();
    }
}
