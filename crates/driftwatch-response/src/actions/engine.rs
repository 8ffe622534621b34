//! The container engine seam: find a container from an alert's short id (full id, init pid,
//! labels), stop it and remove it. Docker (and podman's compatible API) through bollard; when
//! no engine answers, a running container is still found by its processes' cgroups.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use driftwatch_model::ContainerId;

/// A container as the actions need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub id: ContainerId,
    /// Without Docker's leading `/`; empty when no engine named it.
    pub name: String,
    /// The init process (host pid) when running.
    pub pid: Option<u32>,
    pub running: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("{call} {container}: {message}")]
    Call {
        call: &'static str,
        container: String,
        message: String,
    },
    #[error("container engine at {socket}: {message}")]
    Unavailable { socket: String, message: String },
}

/// What the actions ask of a container engine.
pub trait ContainerEngine: Send + Sync {
    /// A name, full id or unique id prefix (an alert's short id).
    fn resolve(&self, container: &str) -> Result<Resolved, EngineError>;
    /// SIGTERM, then SIGKILL after `timeout`.
    fn stop(&self, id: &ContainerId, timeout: Duration) -> Result<(), EngineError>;
    /// Removes a stopped container (and its anonymous volumes' references).
    fn remove(&self, id: &ContainerId) -> Result<(), EngineError>;
}

/// Docker's API over its unix socket. Calls block (on a private single-thread runtime), so
/// it belongs on the responder's thread, never the sensors'.
pub struct DockerEngine {
    socket: PathBuf,
    client: bollard::Docker,
    rt: tokio::runtime::Runtime,
    timeout: Duration,
}

impl DockerEngine {
    pub fn connect(socket: &Path) -> Result<DockerEngine, EngineError> {
        let unavailable = |message: String| EngineError::Unavailable {
            socket: socket.display().to_string(),
            message,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unavailable(format!("tokio runtime: {e}")))?;
        let timeout = Duration::from_secs(10);
        let client = bollard::Docker::connect_with_unix(
            &socket.to_string_lossy(),
            timeout.as_secs() + 60,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| unavailable(e.to_string()))?;
        Ok(DockerEngine {
            socket: socket.to_path_buf(),
            client,
            rt,
            timeout,
        })
    }

    fn call<T>(
        &self,
        call: &'static str,
        container: &str,
        extra: Duration,
        fut: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, EngineError> {
        let r = self
            .rt
            .block_on(async { tokio::time::timeout(self.timeout + extra, fut).await });
        match r {
            Err(_) => Err(EngineError::Unavailable {
                socket: self.socket.display().to_string(),
                message: format!(
                    "{call} {container}: no answer within {:?}",
                    self.timeout + extra
                ),
            }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            })) => Err(EngineError::NotFound(container.to_string())),
            Ok(Err(e)) => Err(EngineError::Call {
                call,
                container: container.to_string(),
                message: innermost(&e),
            }),
        }
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

impl ContainerEngine for DockerEngine {
    fn resolve(&self, container: &str) -> Result<Resolved, EngineError> {
        let raw = self.call(
            "inspect",
            container,
            Duration::ZERO,
            self.client.inspect_container(container, None),
        )?;
        let id = raw
            .id
            .as_deref()
            .and_then(|i| ContainerId::new(i).ok())
            .ok_or_else(|| EngineError::Call {
                call: "inspect",
                container: container.to_string(),
                message: "the engine's answer has no container id".into(),
            })?;
        let state = raw.state.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let pid = state
            .pid
            .filter(|p| running && *p > 0)
            .and_then(|p| u32::try_from(p).ok());
        Ok(Resolved {
            id,
            name: raw
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            pid,
            running,
            labels: raw
                .config
                .and_then(|c| c.labels)
                .map(|l| l.into_iter().collect())
                .unwrap_or_default(),
        })
    }

    fn stop(&self, id: &ContainerId, timeout: Duration) -> Result<(), EngineError> {
        let t = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let opts = bollard::query_parameters::StopContainerOptions {
            t: Some(t),
            signal: None,
        };
        self.call(
            "stop",
            id.short(),
            timeout,
            self.client.stop_container(id.as_str(), Some(opts)),
        )
    }

    fn remove(&self, id: &ContainerId) -> Result<(), EngineError> {
        let opts = bollard::query_parameters::RemoveContainerOptions {
            v: false,
            force: true,
            link: false,
        };
        self.call(
            "remove",
            id.short(),
            Duration::ZERO,
            self.client.remove_container(id.as_str(), Some(opts)),
        )
    }
}

/// A running container found without an engine: by the cgroups of the host's processes
/// (`/proc/*/cgroup`), its oldest process standing in for the init.
pub fn resolve_from_proc(prefix: &str) -> Result<Resolved, EngineError> {
    let lower = prefix.to_ascii_lowercase();
    let found: Vec<(ContainerId, Vec<u32>)> = driftwatch_evidence::running_containers()
        .into_iter()
        .filter(|(id, _)| id.as_str().starts_with(&lower))
        .collect();
    match found.as_slice() {
        [(id, pids)] => Ok(Resolved {
            id: id.clone(),
            name: String::new(),
            pid: pids.first().copied(),
            running: true,
            labels: BTreeMap::new(),
        }),
        [] => Err(EngineError::NotFound(prefix.to_string())),
        _ => Err(EngineError::Call {
            call: "find",
            container: prefix.to_string(),
            message: "the id prefix matches several running containers".into(),
        }),
    }
}
