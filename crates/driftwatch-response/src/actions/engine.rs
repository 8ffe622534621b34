//! The container engine seam: find a container from an alert's short id (full id, init pid,
//! pod identity), stop it and remove it. Docker (and podman's compatible API) through bollard;
//! when no engine answers, a running container is still found by its processes' cgroups.
//!
//! Targets are pinned: an alert's id is looked up as an id only (Docker's own lookup tries
//! names before id prefixes, so a container *named* like another's short id would be found
//! instead), and every answer's full id must be the one asked for (equal, or starting with
//! the prefix given). Pod identity comes from [`driftwatch_runtime::trusted_pod_identity`],
//! never from labels the image brought.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use driftwatch_model::{ContainerId, KubernetesMeta};
use driftwatch_runtime::innermost;

/// A container as the actions need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedEngine {
    pub id: ContainerId,
    /// Without Docker's leading `/`; empty when no engine named it.
    pub name: String,
    /// The init process (host pid) when running.
    pub pid: Option<u32>,
    pub running: bool,
    pub labels: BTreeMap<String, String>,
    /// The pod, from the labels the container's creator set (never the image's).
    pub k8s: Option<KubernetesMeta>,
}

/// Whether the answer `found` is the container asked for by the id (or id prefix) `asked`.
pub fn same_container(asked: &str, found: &ContainerId) -> bool {
    let asked = asked.to_ascii_lowercase();
    !asked.is_empty() && found.as_str().starts_with(&asked)
}

/// Whether `s` reads as a container id or id prefix (hex).
pub fn looks_like_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
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
    /// A name, full id or unique id prefix, as an operator typed it.
    fn resolve(&self, container: &str) -> Result<ResolvedEngine, EngineError>;
    /// A full id or unique id prefix (an alert's short id), looked up as an id only; the
    /// answer's id is checked to be the one asked for.
    fn resolve_id(&self, id: &str) -> Result<ResolvedEngine, EngineError>;
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

impl ContainerEngine for DockerEngine {
    fn resolve_id(&self, id: &str) -> Result<ResolvedEngine, EngineError> {
        let wrong = |message: String| EngineError::Call {
            call: "find",
            container: id.to_string(),
            message,
        };
        if !looks_like_id(id) {
            // Docker's ids are hex: a named id (containerd's `ctr run` ones) is another
            // engine's, never looked up here as a name.
            return Err(EngineError::NotFound(id.to_string()));
        }
        let full = if id.len() == 64 {
            id.to_ascii_lowercase()
        } else {
            // The `id` filter matches id prefixes only, never names.
            let filters = std::collections::HashMap::from([("id", vec![id.to_string()])]);
            let opts = bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build();
            let list = self.call(
                "list",
                id,
                Duration::ZERO,
                self.client.list_containers(Some(opts)),
            )?;
            let ids: Vec<String> = list
                .into_iter()
                .filter_map(|c| c.id)
                .filter(|c| ContainerId::new(c).is_ok_and(|c| same_container(id, &c)))
                .collect();
            match ids.as_slice() {
                [one] => one.clone(),
                [] => return Err(EngineError::NotFound(id.to_string())),
                many => {
                    return Err(wrong(format!(
                        "the id prefix matches {} containers",
                        many.len()
                    )));
                }
            }
        };
        let r = self.resolve(&full)?;
        if r.id.as_str() != full || !same_container(id, &r.id) {
            return Err(wrong(format!(
                "the engine answered with container {}, not the one asked for",
                r.id.short()
            )));
        }
        Ok(r)
    }

    fn resolve(&self, container: &str) -> Result<ResolvedEngine, EngineError> {
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
        let labels: BTreeMap<String, String> = raw
            .config
            .and_then(|c| c.labels)
            .map(|l| l.into_iter().collect())
            .unwrap_or_default();
        let network_mode = raw
            .host_config
            .and_then(|h| h.network_mode)
            .unwrap_or_default();
        // The image's own labels: a pod identity they carry is the image's claim, not the
        // runtime's. Unknown when the image cannot be inspected: then no pod identity.
        let image_labels = match raw.image.as_deref().filter(|i| !i.is_empty()) {
            Some(image) => self
                .call(
                    "image inspect",
                    container,
                    Duration::ZERO,
                    self.client.inspect_image(image),
                )
                .ok()
                .map(|i| {
                    i.config
                        .and_then(|c| c.labels)
                        .map(|l| l.into_iter().collect::<BTreeMap<_, _>>())
                        .unwrap_or_default()
                }),
            None => None,
        };
        let k8s = match labels.get(driftwatch_runtime::pod_identity::SANDBOX_ID_LABEL) {
            // cri-dockerd: the sandbox's identity, for a container that joined it.
            Some(sandbox) if sandbox.len() == 64 && looks_like_id(sandbox) => {
                let found = self
                    .call(
                        "inspect",
                        sandbox,
                        Duration::ZERO,
                        self.client.inspect_container(sandbox, None),
                    )
                    .ok()
                    .and_then(|sb| {
                        let l: BTreeMap<String, String> = sb
                            .config
                            .and_then(|c| c.labels)
                            .map(|l| l.into_iter().collect())
                            .unwrap_or_default();
                        Some((sb.id?, l))
                    })
                    .filter(|(id, _)| id == sandbox);
                driftwatch_runtime::pod_identity::sandbox_pod_identity(
                    &labels,
                    &network_mode,
                    found.as_ref().map(|(id, l)| (id.as_str(), l)),
                )
                .pod
            }
            _ => driftwatch_runtime::trusted_pod_identity(&labels, image_labels.as_ref()).pod,
        };
        Ok(ResolvedEngine {
            id,
            name: raw
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            pid,
            running,
            labels,
            k8s,
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
pub fn resolve_from_proc(prefix: &str) -> Result<ResolvedEngine, EngineError> {
    let lower = prefix.to_ascii_lowercase();
    let found: Vec<(ContainerId, Vec<u32>)> = driftwatch_evidence::running_containers()
        .into_iter()
        .filter(|(id, _)| id.as_str().starts_with(&lower))
        .collect();
    match found.as_slice() {
        [(id, pids)] => Ok(ResolvedEngine {
            id: id.clone(),
            name: String::new(),
            pid: pids.first().copied(),
            running: true,
            labels: BTreeMap::new(),
            k8s: None,
        }),
        [] => Err(EngineError::NotFound(prefix.to_string())),
        _ => Err(EngineError::Call {
            call: "find",
            container: prefix.to_string(),
            message: "the id prefix matches several running containers".into(),
        }),
    }
}

/// Every engine of the node (Docker, containerd), asked in turn: a container is the first
/// engine's that knows its id. "No such container" (removed) only when none of them knows
/// it: a pod's container is unknown to dockerd on the same node, and that is not its end.
/// Stop and remove go to the engine that resolved the id.
pub struct NodeEngines {
    engines: Vec<Box<dyn ContainerEngine>>,
    /// Which engine answered for each id resolved so far.
    owner: std::sync::Mutex<std::collections::HashMap<ContainerId, usize>>,
}

impl NodeEngines {
    /// Docker at `docker_socket` and containerd as `containerd` says, whichever are given
    /// and can be set up (a failure is logged: that engine's containers cannot be acted on).
    /// When Docker is given, containerd's `moby` namespace is left out, as the agent does:
    /// Docker's containers are Docker's to stop, never behind dockerd's back when it does
    /// not answer. `None` when no engine is left.
    pub fn connect(
        docker_socket: Option<&Path>,
        containerd: Option<driftwatch_runtime::ContainerdConfig>,
    ) -> Option<NodeEngines> {
        let mut engines: Vec<Box<dyn ContainerEngine>> = Vec::new();
        if let Some(s) = docker_socket {
            match DockerEngine::connect(s) {
                Ok(e) => engines.push(Box::new(e)),
                Err(e) => tracing::warn!("{e}; Docker containers cannot be acted on"),
            }
        }
        if let Some(mut c) = containerd {
            if docker_socket.is_some() {
                c.namespaces.retain(|n| n != "moby");
            }
            match super::containerd_engine::ContainerdEngine::new(c) {
                Ok(e) => engines.push(Box::new(e)),
                Err(e) => tracing::warn!("{e}; containerd containers cannot be acted on"),
            }
        }
        NodeEngines::new(engines)
    }

    /// `None` when `engines` is empty.
    pub fn new(engines: Vec<Box<dyn ContainerEngine>>) -> Option<NodeEngines> {
        (!engines.is_empty()).then(|| NodeEngines {
            engines,
            owner: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    fn first_answer(
        &self,
        ask: impl Fn(&dyn ContainerEngine) -> Result<ResolvedEngine, EngineError>,
        asked: &str,
    ) -> Result<ResolvedEngine, EngineError> {
        let mut problems = Vec::new();
        for (i, e) in self.engines.iter().enumerate() {
            match ask(e.as_ref()) {
                Ok(r) => {
                    self.owner
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(r.id.clone(), i);
                    return Ok(r);
                }
                Err(EngineError::NotFound(_)) => {}
                Err(other) => problems.push(other),
            }
        }
        // An engine that could not answer may be the one that has it: not "removed".
        match problems.len() {
            0 => Err(EngineError::NotFound(asked.to_string())),
            1 => Err(problems.remove(0)),
            _ => Err(EngineError::Call {
                call: "find",
                container: asked.to_string(),
                message: problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        }
    }

    fn owner_of(&self, id: &ContainerId) -> Result<&dyn ContainerEngine, EngineError> {
        let known = self
            .owner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied();
        let i = match known {
            Some(i) => i,
            None => {
                self.resolve_id(id.as_str())?;
                self.owner
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(id)
                    .copied()
                    .ok_or_else(|| EngineError::NotFound(id.to_string()))?
            }
        };
        Ok(self.engines[i].as_ref())
    }
}

impl ContainerEngine for NodeEngines {
    fn resolve(&self, container: &str) -> Result<ResolvedEngine, EngineError> {
        self.first_answer(|e| e.resolve(container), container)
    }

    fn resolve_id(&self, id: &str) -> Result<ResolvedEngine, EngineError> {
        self.first_answer(|e| e.resolve_id(id), id)
    }

    fn stop(&self, id: &ContainerId, timeout: Duration) -> Result<(), EngineError> {
        self.owner_of(id)?.stop(id, timeout)
    }

    fn remove(&self, id: &ContainerId) -> Result<(), EngineError> {
        self.owner_of(id)?.remove(id)
    }
}

#[cfg(test)]
mod node_engines_tests {
    use super::*;

    /// An engine that knows a fixed set of containers and records what it was asked to do.
    struct Known {
        ids: Vec<ContainerId>,
        down: bool,
        stopped: std::sync::Mutex<Vec<ContainerId>>,
    }

    impl Known {
        fn with(ids: &[&str]) -> Known {
            Known {
                ids: ids.iter().map(|i| ContainerId::new(i).unwrap()).collect(),
                down: false,
                stopped: std::sync::Mutex::new(Vec::new()),
            }
        }
    }

    impl ContainerEngine for std::sync::Arc<Known> {
        fn resolve(&self, container: &str) -> Result<ResolvedEngine, EngineError> {
            self.resolve_id(container)
        }
        fn resolve_id(&self, id: &str) -> Result<ResolvedEngine, EngineError> {
            if self.down {
                return Err(EngineError::Unavailable {
                    socket: "/x.sock".into(),
                    message: "refused".into(),
                });
            }
            let id = self
                .ids
                .iter()
                .find(|c| same_container(id, c))
                .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
            Ok(ResolvedEngine {
                id: id.clone(),
                name: String::new(),
                pid: None,
                running: true,
                labels: BTreeMap::new(),
                k8s: None,
            })
        }
        fn stop(&self, id: &ContainerId, _: Duration) -> Result<(), EngineError> {
            self.stopped.lock().unwrap().push(id.clone());
            Ok(())
        }
        fn remove(&self, _: &ContainerId) -> Result<(), EngineError> {
            Ok(())
        }
    }

    const DOCKER_ONE: &str = "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000001";
    const POD_ONE: &str = "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000002";

    #[test]
    fn a_pods_container_unknown_to_docker_is_found_in_containerd_and_stopped_there() {
        let docker = std::sync::Arc::new(Known::with(&[DOCKER_ONE]));
        let containerd = std::sync::Arc::new(Known::with(&[POD_ONE]));
        let node =
            NodeEngines::new(vec![Box::new(docker.clone()), Box::new(containerd.clone())]).unwrap();
        let r = node.resolve_id("bbbbbbbbbbbb").unwrap();
        assert_eq!(r.id.as_str(), POD_ONE);
        node.stop(&r.id, Duration::from_secs(1)).unwrap();
        assert_eq!(*containerd.stopped.lock().unwrap(), vec![r.id.clone()]);
        assert!(docker.stopped.lock().unwrap().is_empty());
        let d = node.resolve_id("aaaaaaaaaaaa").unwrap();
        node.stop(&d.id, Duration::from_secs(1)).unwrap();
        assert_eq!(*docker.stopped.lock().unwrap(), vec![d.id]);
    }

    #[test]
    fn removed_only_when_no_engine_knows_it_and_every_engine_answered() {
        let node = NodeEngines::new(vec![
            Box::new(std::sync::Arc::new(Known::with(&[DOCKER_ONE]))),
            Box::new(std::sync::Arc::new(Known::with(&[POD_ONE]))),
        ])
        .unwrap();
        assert!(matches!(
            node.resolve_id("cccccccccccc"),
            Err(EngineError::NotFound(_))
        ));
        let mut down = Known::with(&[POD_ONE]);
        down.down = true;
        let node = NodeEngines::new(vec![
            Box::new(std::sync::Arc::new(Known::with(&[DOCKER_ONE]))),
            Box::new(std::sync::Arc::new(down)),
        ])
        .unwrap();
        assert!(matches!(
            node.resolve_id("bbbbbbbbbbbb"),
            Err(EngineError::Unavailable { .. })
        ));
        assert!(NodeEngines::new(Vec::new()).is_none());
    }
}
