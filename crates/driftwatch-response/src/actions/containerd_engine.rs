//! containerd as a [`ContainerEngine`]: so that the actions find, stop and remove a pod's
//! container on a Kubernetes node, where Docker does not know it (a CRI container's hex id is
//! "no such container" to dockerd on the same node, which is not "removed").
//!
//! The record (init pid, state, labels, pod identity from the CRI plugin's spec annotations,
//! never the image's labels) is [`ContainerdSource`]'s. An alert's short id is made whole by
//! listing containers whose id starts with it (`id~=^prefix`), in every namespace asked: one
//! match or none, and the answer's id must be the one asked for. A container the CRI plugin
//! made (the spec annotation `io.kubernetes.cri.container-type=container`, which no image can set) is stopped and removed through CRI
//! (`StopContainer`, `RemoveContainer` on the same socket: containerd serves both APIs there),
//! so that the CRI plugin's state stays true and the kubelet then restarts or replaces it by
//! the pod's `restartPolicy`; any other container through its task (SIGTERM, SIGKILL after
//! the timeout) and the containers API.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use containerd_client::services::v1::snapshots::RemoveSnapshotRequest;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::{
    DeleteContainerRequest, DeleteTaskRequest, GetContainerRequest, GetRequest, KillRequest,
    ListContainersRequest, containers_client::ContainersClient, tasks_client::TasksClient,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request, Status};
use driftwatch_model::ContainerId;
use driftwatch_runtime::{
    ContainerdConfig, ContainerdSource, EngineSource, RuntimeError, innermost,
};
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;

use super::engine::{ContainerEngine, EngineError, ResolvedEngine, looks_like_id, same_container};

/// Whether the CRI plugin made `c` as a pod's workload: by the container-type annotation it
/// writes into the OCI spec, which no image can set (containerd merges an image's labels into
/// its containers' labels, so the plugin's `io.cri-containerd.kind` label could be the
/// image's).
fn made_by_cri(c: &containerd_client::services::v1::Container) -> bool {
    c.spec
        .as_ref()
        .and_then(|any| driftwatch_runtime::oci_runtime::OciSpec::parse(&any.value).ok())
        .is_some_and(|spec| {
            spec.annotations
                .get(driftwatch_runtime::pod_identity::CRI_CONTAINER_TYPE)
                .is_some_and(|t| t == "container")
        })
}
/// `containerd.v1.types.Status.RUNNING`.
const TASK_RUNNING: u32 = 2;

/// containerd's API on its socket. Calls block (on a private single-thread runtime), so it
/// belongs on the responder's thread, never the sensors'.
pub struct ContainerdEngine {
    cfg: ContainerdConfig,
    source: ContainerdSource,
    rt: tokio::runtime::Runtime,
}

/// Where a container lives: its namespace and full id, and whether CRI made it.
struct Located {
    namespace: String,
    id: String,
    cri: bool,
    snapshotter: String,
    snapshot_key: String,
}

impl ContainerdEngine {
    /// No I/O happens until the first call.
    pub fn new(cfg: ContainerdConfig) -> Result<ContainerdEngine, EngineError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EngineError::Unavailable {
                socket: cfg.socket.display().to_string(),
                message: format!("tokio runtime: {e}"),
            })?;
        let cfg = ContainerdConfig {
            // An action may wait on a slow shim; the metadata path's 2 s is for the sensors.
            timeout: cfg.timeout.max(Duration::from_secs(10)),
            ..cfg
        };
        Ok(ContainerdEngine {
            source: ContainerdSource::new(cfg.clone()),
            cfg,
            rt,
        })
    }

    pub fn socket(&self) -> &PathBuf {
        &self.cfg.socket
    }

    fn unavailable(&self, message: String) -> EngineError {
        EngineError::Unavailable {
            socket: self.cfg.socket.display().to_string(),
            message,
        }
    }

    fn status(&self, call: &'static str, container: &str, s: &Status) -> EngineError {
        match s.code() {
            Code::NotFound => EngineError::NotFound(container.to_string()),
            Code::Unavailable => self.unavailable(format!("{call} {container}: {}", s.message())),
            _ => EngineError::Call {
                call,
                container: container.to_string(),
                message: format!("{:?}: {}", s.code(), s.message()),
            },
        }
    }

    /// Runs `fut` within `extra` + the configured timeout.
    fn block<T>(
        &self,
        call: &'static str,
        container: &str,
        extra: Duration,
        fut: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        let limit = self.cfg.timeout + extra;
        match self
            .rt
            .block_on(async { tokio::time::timeout(limit, fut).await })
        {
            Ok(r) => r,
            Err(_) => {
                Err(self.unavailable(format!("{call} {container}: no answer within {limit:?}")))
            }
        }
    }

    async fn channel(&self) -> Result<Channel, EngineError> {
        containerd_client::connect(&self.cfg.socket)
            .await
            .map_err(|e| self.unavailable(innermost(&e)))
    }

    /// The one container whose id is `id` or starts with it, across the namespaces asked.
    async fn locate(&self, ch: &Channel, id: &str) -> Result<Located, EngineError> {
        let id = id.to_ascii_lowercase();
        let mut found = Vec::new();
        for ns in &self.cfg.namespaces {
            let containers = if id.len() == 64 {
                let req = with_ns(GetContainerRequest { id: id.clone() }, ns, &id)?;
                match ContainersClient::new(ch.clone()).get(req).await {
                    Ok(r) => r.into_inner().container.into_iter().collect(),
                    Err(s) if s.code() == Code::NotFound => Vec::new(),
                    Err(s) => return Err(self.status("get", &id, &s)),
                }
            } else {
                // `looks_like_id` holds: the prefix is hex, nothing to escape in the regexp.
                let req = with_ns(
                    ListContainersRequest {
                        filters: vec![format!("id~=^{id}")],
                    },
                    ns,
                    &id,
                )?;
                ContainersClient::new(ch.clone())
                    .list(req)
                    .await
                    .map_err(|s| self.status("list", &id, &s))?
                    .into_inner()
                    .containers
            };
            found.extend(
                containers
                    .into_iter()
                    .filter(|c| c.id.starts_with(&id))
                    .map(|c| Located {
                        namespace: ns.clone(),
                        cri: made_by_cri(&c),
                        id: c.id,
                        snapshotter: c.snapshotter,
                        snapshot_key: c.snapshot_key,
                    }),
            );
        }
        match found.len() {
            0 => Err(EngineError::NotFound(id)),
            1 => Ok(found.remove(0)),
            n => Err(EngineError::Call {
                call: "find",
                container: id,
                message: format!("the id prefix matches {n} containers"),
            }),
        }
    }

    async fn task_status(&self, ch: &Channel, at: &Located) -> Result<Option<u32>, EngineError> {
        let req = with_ns(
            GetRequest {
                container_id: at.id.clone(),
                exec_id: String::new(),
            },
            &at.namespace,
            &at.id,
        )?;
        match TasksClient::new(ch.clone()).get(req).await {
            Ok(r) => Ok(r.into_inner().process.map(|p| p.status as u32)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(self.status("task get", &at.id, &s)),
        }
    }

    async fn kill(&self, ch: &Channel, at: &Located, signal: u32) -> Result<(), EngineError> {
        let req = with_ns(
            KillRequest {
                container_id: at.id.clone(),
                exec_id: String::new(),
                signal,
                all: true,
            },
            &at.namespace,
            &at.id,
        )?;
        match TasksClient::new(ch.clone()).kill(req).await {
            Ok(_) => Ok(()),
            // Gone meanwhile: what was asked.
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(self.status("task kill", &at.id, &s)),
        }
    }

    /// SIGTERM to every process of the task, SIGKILL if it still runs after `timeout`.
    async fn stop_task(
        &self,
        ch: &Channel,
        at: &Located,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        self.kill(ch, at, libc::SIGTERM as u32).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.task_status(ch, at).await? != Some(TASK_RUNNING) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.kill(ch, at, libc::SIGKILL as u32).await?;
        for _ in 0..50 {
            if self.task_status(ch, at).await? != Some(TASK_RUNNING) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(EngineError::Call {
            call: "stop",
            container: at.id.clone(),
            message: "the task still runs 5 s after SIGKILL".into(),
        })
    }

    async fn remove_plain(&self, ch: &Channel, at: &Located) -> Result<(), EngineError> {
        let req = with_ns(
            DeleteTaskRequest {
                container_id: at.id.clone(),
            },
            &at.namespace,
            &at.id,
        )?;
        match TasksClient::new(ch.clone()).delete(req).await {
            Ok(_) => {}
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Err(self.status("task delete", &at.id, &s)),
        }
        let req = with_ns(
            DeleteContainerRequest { id: at.id.clone() },
            &at.namespace,
            &at.id,
        )?;
        ContainersClient::new(ch.clone())
            .delete(req)
            .await
            .map_err(|s| self.status("delete", &at.id, &s))?;
        // What `ctr rm` removes too: the container's writable snapshot.
        if !at.snapshotter.is_empty() && !at.snapshot_key.is_empty() {
            let req = with_ns(
                RemoveSnapshotRequest {
                    snapshotter: at.snapshotter.clone(),
                    key: at.snapshot_key.clone(),
                },
                &at.namespace,
                &at.id,
            )?;
            match SnapshotsClient::new(ch.clone()).remove(req).await {
                Ok(_) => {}
                Err(s) if s.code() == Code::NotFound => {}
                Err(s) => return Err(self.status("snapshot remove", &at.id, &s)),
            }
        }
        Ok(())
    }
}

fn with_ns<T>(msg: T, ns: &str, container: &str) -> Result<Request<T>, EngineError> {
    let mut req = Request::new(msg);
    let value = ns.parse().map_err(|_| EngineError::Call {
        call: "namespace",
        container: container.to_string(),
        message: format!("not a valid containerd namespace: {ns:?}"),
    })?;
    req.metadata_mut().insert("containerd-namespace", value);
    Ok(req)
}

impl ContainerEngine for ContainerdEngine {
    fn resolve_id(&self, id: &str) -> Result<ResolvedEngine, EngineError> {
        if !looks_like_id(id) {
            // A named id (`ctr run`'s): whole, never a prefix.
            return self.resolve(id);
        }
        let full = self.block("find", id, Duration::ZERO, async {
            let ch = self.channel().await?;
            Ok(self.locate(&ch, id).await?.id)
        })?;
        let r = self.resolve(&full)?;
        if r.id.as_str() != full || !same_container(id, &r.id) {
            return Err(EngineError::Call {
                call: "find",
                container: id.to_string(),
                message: format!(
                    "the engine answered with container {}, not the one asked for",
                    r.id.short()
                ),
            });
        }
        Ok(r)
    }

    /// An exact id (containerd has no names of its own: `ctr` ids may be words, the CRI
    /// plugin's are hex and its Kubernetes names are labels, not lookups).
    fn resolve(&self, container: &str) -> Result<ResolvedEngine, EngineError> {
        let id = ContainerId::named(container).map_err(|e| EngineError::Call {
            call: "inspect",
            container: container.to_string(),
            message: e.to_string(),
        })?;
        let rec = self.block("inspect", container, Duration::ZERO, async {
            self.source.inspect(&id).await.map_err(|e| match e {
                RuntimeError::NotFound { .. } => EngineError::NotFound(container.to_string()),
                RuntimeError::Connect { reason, .. } => self.unavailable(reason),
                other => EngineError::Call {
                    call: "inspect",
                    container: container.to_string(),
                    message: other.to_string(),
                },
            })
        })?;
        if rec.meta.id != id {
            return Err(EngineError::Call {
                call: "inspect",
                container: container.to_string(),
                message: format!(
                    "the engine answered with container {}, not the one asked for",
                    rec.meta.id.short()
                ),
            });
        }
        let labels: BTreeMap<String, String> = rec.meta.labels.clone();
        Ok(ResolvedEngine {
            id: rec.meta.id,
            name: rec.meta.name,
            pid: rec.pid,
            running: rec.running,
            labels,
            k8s: rec.meta.k8s,
        })
    }

    fn stop(&self, id: &ContainerId, timeout: Duration) -> Result<(), EngineError> {
        self.block(
            "stop",
            id.short(),
            timeout + Duration::from_secs(5),
            async {
                let ch = self.channel().await?;
                let at = self.locate(&ch, id.as_str()).await?;
                if at.cri {
                    let req = cri::StopContainerRequest {
                        container_id: at.id.clone(),
                        timeout: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
                    };
                    RuntimeServiceClient::new(ch)
                        .stop_container(req)
                        .await
                        .map(drop)
                        .map_err(|s| self.status("CRI StopContainer", &at.id, &s))
                } else {
                    self.stop_task(&ch, &at, timeout).await
                }
            },
        )
    }

    fn remove(&self, id: &ContainerId) -> Result<(), EngineError> {
        self.block("remove", id.short(), Duration::from_secs(5), async {
            let ch = self.channel().await?;
            let at = self.locate(&ch, id.as_str()).await?;
            if at.cri {
                let req = cri::RemoveContainerRequest {
                    container_id: at.id.clone(),
                };
                RuntimeServiceClient::new(ch)
                    .remove_container(req)
                    .await
                    .map(drop)
                    .map_err(|s| self.status("CRI RemoveContainer", &at.id, &s))
            } else {
                self.remove_plain(&ch, &at).await
            }
        })
    }
}
