//! The HTTP API over the running daemon: [`AgentApi`] implements the API crate's
//! [`AgentView`] over the real agent (its registry, counters, rules, enforcement), the
//! responder and its actions log, and the evidence crate (diff, capture).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use driftwatch_agent::{Agent, AlertSink};

use crate::sinks::RingSink;
use driftwatch_api::{
    AgentView, AlertRing, ApiError, ComponentHealth, ContainerDetail, ContainerSummary, Health,
    ManualAction, MetricsWriter, ProcessNode, RuleSummary,
};
use driftwatch_model::clock::now_ns;
use driftwatch_model::{Alert, ContainerMeta};
use driftwatch_response::actions::engine::{ContainerEngine, NodeEngines};
use driftwatch_response::actions::kube::KubeApi;
use driftwatch_response::actions::{self, ActionTarget, Env, Step};
use driftwatch_response::record::ContainerRef;
use driftwatch_response::{Action, ActionLog, ActionRecord, AlertFacts, Outcome, Responder};

/// Where `capture` from the API writes bundles (as the playbooks' default).
pub const EVIDENCE_DIR: &str = "/var/lib/driftwatch/evidence";
/// Largest file copied into an API capture bundle.
const CAPTURE_MAX_FILE: u64 = 16 * 1024 * 1024;
/// Processes listed per container at most.
const MAX_PROCESSES: usize = 1000;

/// The running agent as the API sees it.
pub struct AgentApi {
    pub agent: Arc<Agent>,
    pub ring: Arc<AlertRing>,
    pub responder: Option<Arc<Responder>>,
    pub actions_log: PathBuf,
    pub docker_socket: Option<PathBuf>,
    /// containerd, for manual actions on a pod's container (Docker does not know it).
    pub containerd: Option<driftwatch_runtime::ContainerdConfig>,
    pub kube: Option<Arc<dyn KubeApi>>,
    pub alerts_file: Option<PathBuf>,
    pub started: Instant,
    pub store: Option<Arc<driftwatch_store::Store>>,
    /// Manual actions requested through the API, by result.
    pub api_actions: Arc<crate::snapshot::ApiActions>,
}

fn image_of(meta: &ContainerMeta) -> String {
    let i = &meta.image;
    match (i.repository.as_str(), i.tag.as_str()) {
        ("", _) => i.id.clone().unwrap_or_default(),
        (r, "") => r.to_string(),
        (r, t) => format!("{r}:{t}"),
    }
}

fn alive(pid: Option<u32>) -> bool {
    pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
}

/// `pid`'s parent and name from /proc/PID/stat (the name may hold spaces and parentheses).
fn stat(pid: u32) -> Option<(u32, String)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let name = s.get(open + 1..close)?.to_string();
    let ppid = s.get(close + 2..)?.split(' ').nth(1)?.parse().ok()?;
    Some((ppid, name))
}

fn process(pid: u32) -> Option<ProcessNode> {
    let (ppid, name) = stat(pid)?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .take(64)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    Some(ProcessNode {
        pid,
        ppid,
        name,
        exe,
        cmdline,
        verdicts: Vec::new(),
        rules: Vec::new(),
    })
}

impl AgentApi {
    fn summary(&self, meta: &ContainerMeta, pid: Option<u32>) -> ContainerSummary {
        let k8s = meta.k8s.as_ref();
        ContainerSummary {
            id: meta.id.to_string(),
            short_id: meta.id.short().to_string(),
            name: meta.name.clone(),
            image: image_of(meta),
            image_digest: meta.image.digest.clone(),
            engine: meta.engine.as_str().to_string(),
            k8s_namespace: k8s.map(|k| k.namespace.clone()),
            k8s_pod: k8s.map(|k| k.pod_name.clone()),
            enforcement: self.agent.enforcement_mode(meta).as_str().to_string(),
            running: alive(pid),
            drift: Default::default(),
        }
    }

    /// A container the agent knows by name, full id or unique id prefix.
    fn find(&self, container: &str) -> Result<Arc<driftwatch_agent::ContainerEntry>, ApiError> {
        let entries = self.agent.registry().live_entries();
        if let Some(e) = entries.iter().find(|e| e.meta.name == container) {
            return Ok(e.clone());
        }
        let c = container.to_ascii_lowercase();
        let found: Vec<_> = entries
            .iter()
            .filter(|e| c.len() >= 4 && e.meta.id.to_string().starts_with(&c))
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ApiError::not_found(format!(
                "container {container}: no running container of that name or id is known to the agent"
            ))),
            many => Err(ApiError::new(
                409,
                format!(
                    "container {container}: the prefix names {} containers; give more of the id",
                    many.len()
                ),
            )),
        }
    }

    fn engine(&self) -> Option<NodeEngines> {
        NodeEngines::connect(self.docker_socket.as_deref(), self.containerd.clone())
    }

    fn record_manual(
        &self,
        meta: &ContainerMeta,
        action: &str,
        start: u64,
        step: Step,
    ) -> ActionRecord {
        let (result, detail, reason) = match step {
            Step::Ok(d) => (Outcome::Ok, Some(d), None),
            Step::Skipped(why) => (Outcome::Skipped, None, Some(why)),
            Step::Failed(e) => (Outcome::Failed, None, Some(e)),
        };
        let end = now_ns();
        let k8s = meta.k8s.as_ref();
        ActionRecord {
            time: Alert::format_time(start),
            end: Alert::format_time(end),
            start_ns: start,
            end_ns: end,
            playbook: None,
            action: action.into(),
            params: serde_json::json!({ "container": meta.id.to_string(), "via": "api" }),
            dry_run: false,
            result,
            reason,
            detail,
            container: ContainerRef {
                id: meta.id.to_string(),
                name: meta.name.clone(),
                image: image_of(meta),
                k8s_namespace: k8s.map(|k| k.namespace.clone()).unwrap_or_default(),
                k8s_pod: k8s.map(|k| k.pod_name.clone()).unwrap_or_default(),
            },
            alert: None,
            alert_received_ns: None,
        }
    }

    fn act_now(&self, container: &str, action: ManualAction) -> Result<ActionRecord, ApiError> {
        let entry = self.find(container)?;
        let meta = &entry.meta;
        let log =
            ActionLog::open(&self.actions_log).map_err(|e| ApiError::internal(e.to_string()))?;
        let engine = self.engine();
        let engine_ref = engine.as_ref().map(|e| e as &dyn ContainerEngine);
        let start = now_ns();
        let record = match action {
            ManualAction::Release => driftwatch_response::release::release(
                &meta.id.to_string(),
                engine_ref,
                self.kube.as_deref(),
                &log,
            )
            .map_err(|e| ApiError::not_found(format!("release of container {container}: {e}")))?,
            ManualAction::Isolate | ManualAction::Capture => {
                let facts = AlertFacts {
                    container_id: meta.id.to_string(),
                    container_name: meta.name.clone(),
                    image_repository: meta.image.repository.clone(),
                    image_tag: meta.image.tag.clone(),
                    k8s_namespace: meta
                        .k8s
                        .as_ref()
                        .map(|k| k.namespace.clone())
                        .unwrap_or_default(),
                    k8s_pod: meta
                        .k8s
                        .as_ref()
                        .map(|k| k.pod_name.clone())
                        .unwrap_or_default(),
                    k8s_pod_uid: meta
                        .k8s
                        .as_ref()
                        .map(|k| k.pod_uid.clone())
                        .unwrap_or_default(),
                    ..AlertFacts::default()
                };
                let socket = self
                    .docker_socket
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
                let env = Env {
                    engine: engine_ref,
                    kube: self.kube.as_deref(),
                    docker_socket: &socket,
                    alerts_file: self.alerts_file.as_deref(),
                };
                let (name, act) = match action {
                    ManualAction::Isolate => ("isolate", Action::Isolate),
                    _ => (
                        "capture",
                        Action::Capture {
                            dir: EVIDENCE_DIR.into(),
                            max_file_size: CAPTURE_MAX_FILE,
                        },
                    ),
                };
                let step = actions::perform(&act, &mut ActionTarget::new(&facts), &env, &Vec::new);
                let record = self.record_manual(meta, name, start, step);
                log.append(&record)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                record
            }
        };
        Ok(record)
    }
}

impl AgentView for AgentApi {
    fn containers(&self) -> Vec<ContainerSummary> {
        self.agent
            .registry()
            .live_entries()
            .iter()
            .map(|e| self.summary(&e.meta, e.pid))
            .collect()
    }

    fn container(&self, container: &str) -> Result<ContainerDetail, ApiError> {
        let entry = self.find(container)?;
        let mut pids = driftwatch_evidence::container_pids(&entry.meta.id);
        pids.sort_unstable();
        pids.truncate(MAX_PROCESSES);
        let processes: Vec<ProcessNode> = pids.into_iter().filter_map(process).collect();
        let isolated = processes.first().and_then(|p| {
            let pinned =
                driftwatch_runtime::PinnedProcess::of_container(p.pid, &entry.meta.id).ok()?;
            driftwatch_response::actions::isolate::NetNs::for_release(&pinned)
                .and_then(|ns| ns.is_isolated())
                .ok()
        });
        Ok(ContainerDetail {
            summary: self.summary(&entry.meta, processes.first().map(|p| p.pid)),
            labels: entry.meta.labels.clone(),
            processes,
            actions: self.actions(Some(&entry.meta.id.to_string()), 50),
            isolated,
        })
    }

    fn diff(&self, container: &str, limit: usize) -> Result<serde_json::Value, ApiError> {
        let entry = self.find(container)?;
        let socket = self
            .docker_socket
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let id = entry.meta.id.to_string();
        let target = driftwatch_evidence::Target::resolve(&id, &socket)
            .map_err(|e| ApiError::internal(format!("container {container}: {e:#}")))?;
        // Only the first `limit` changed paths are kept while the walk streams: the document
        // is bounded before it is built, whatever the container made.
        let (diff, counts, total) = target
            .diff_first(driftwatch_image::DiffOptions::default(), limit)
            .map_err(|e| ApiError::internal(format!("diff of container {container}: {e:#}")))?;
        let report = driftwatch_evidence::DiffReport::new(&target, &diff, None);
        let mut v = serde_json::to_value(&report)
            .map_err(|e| ApiError::internal(format!("diff of container {container}: {e}")))?;
        v["total_files"] = total.into();
        v["counts"] = serde_json::to_value(&counts)
            .map_err(|e| ApiError::internal(format!("diff of container {container}: {e}")))?;
        // `truncated`: the listing stops at `limit`; `walk_truncated`: the walk itself reached
        // a cap (depth, entries) and the counts are incomplete.
        v["walk_truncated"] = v
            .get("truncated")
            .cloned()
            .unwrap_or_else(|| serde_json::Value::Array(Vec::new()));
        v["truncated"] = (total > diff.files.len() as u64).into();
        Ok(v)
    }

    fn rules(&self) -> Vec<RuleSummary> {
        let emitter = self
            .agent
            .emitter()
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        emitter
            .rules()
            .rules()
            .map(|(_, r)| RuleSummary {
                name: r.name.clone(),
                desc: r.desc.clone(),
                priority: r.priority.as_str().to_string(),
                tags: r.tags.clone(),
                enabled: r.enabled,
                active: r.active,
                inactive_reason: r.inactive_reason.clone(),
                source_file: r.source_file.clone(),
            })
            .collect()
    }

    fn actions(&self, container: Option<&str>, limit: usize) -> Vec<serde_json::Value> {
        let Ok((records, _)) = driftwatch_response::read_records(&self.actions_log) else {
            return Vec::new();
        };
        let about = |r: &ActionRecord, name: &str| {
            let c = name.to_ascii_lowercase();
            r.container.name == name
                || (c.len() >= 4
                    && r.container.id.len() >= 4
                    && (r.container.id.starts_with(&c) || c.starts_with(&r.container.id)))
        };
        records
            .iter()
            .rev()
            .filter(|r| container.is_none_or(|c| about(r, c)))
            .take(limit)
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect()
    }

    fn act(&self, container: &str, action: ManualAction) -> Result<serde_json::Value, ApiError> {
        // The engine client runs a runtime of its own: keep it off the API's threads.
        let r = std::thread::scope(|s| {
            s.spawn(|| self.act_now(container, action))
                .join()
                .unwrap_or_else(|_| Err(ApiError::internal("the action's thread panicked")))
        });
        match &r {
            Ok(rec) if rec.result == Outcome::Ok => &self.api_actions.ok,
            _ => &self.api_actions.failed,
        }
        .fetch_add(1, Ordering::Relaxed);
        let rec = r?;
        serde_json::to_value(&rec).map_err(|e| ApiError::internal(e.to_string()))
    }

    fn metrics(&self, w: &mut MetricsWriter) {
        let snap = crate::snapshot::DaemonSnapshot::take(
            &self.agent,
            &crate::snapshot::Parts {
                store: self.store.as_deref(),
                responder: self.responder.as_deref(),
                api_actions: &self.api_actions,
                started: self.started,
            },
        );
        crate::metrics::render(&snap, w);
    }

    fn health(&self) -> Health {
        let mut h = Health::default();
        let mut put = |k: &str, c: ComponentHealth| {
            h.components.insert(k.to_string(), c);
        };
        put(
            "exec_sensor",
            match self.agent.sensor_stats() {
                Some(s) => ComponentHealth::ok(format!(
                    "attached; {} execs sent by the kernel, {} lost",
                    s.sent.load(Ordering::Relaxed),
                    s.lost()
                )),
                None => ComponentHealth::down("not attached"),
            },
        );
        put(
            "file_sensor",
            match self.agent.file_stats() {
                Some(f) => {
                    let deep = f.dirs_too_deep.load(Ordering::Relaxed);
                    let truncated = f.scans_truncated.load(Ordering::Relaxed);
                    let watched = f.dirs_watched.load(Ordering::Relaxed);
                    if deep + truncated > 0 {
                        ComponentHealth::degraded(format!(
                            "{watched} directories watched; {deep} left unwatched below the max_depth cap, {truncated} scans stopped at the entry cap"
                        ))
                    } else {
                        ComponentHealth::ok(format!("{watched} directories watched"))
                    }
                }
                None => ComponentHealth::degraded("fanotify unavailable: file drift is not sensed"),
            },
        );
        put(
            "network_sensor",
            match self.agent.net_drift().map(|n| n.sensor_stats().is_some()) {
                Some(true) => ComponentHealth::ok("attached"),
                _ => ComponentHealth::degraded("TCP sensor not attached: UDP scan only"),
            },
        );
        put(
            "engines",
            match &self.docker_socket {
                None => ComponentHealth::disabled("no engine asked (--no-engine)"),
                Some(s) => match std::os::unix::net::UnixStream::connect(s) {
                    Ok(_) => ComponentHealth::ok(format!("{} reachable", s.display())),
                    Err(e) => ComponentHealth::degraded(format!(
                        "{}: {e}; containers are named by id only",
                        s.display()
                    )),
                },
            },
        );
        put(
            "store",
            match &self.store {
                None => ComponentHealth::disabled(format!(
                    "no alert store: the last {} alerts are kept in memory ({} now)",
                    self.ring.capacity(),
                    self.ring.len()
                )),
                Some(st) => {
                    let s = st.snapshot();
                    match s.degraded {
                        Some(why) => ComponentHealth::degraded(format!(
                            "{}: {why}; alerts still reach the outputs",
                            st.path().display()
                        )),
                        None => ComponentHealth::ok(format!(
                            "{}: {} alerts written, {} queued, {} dropped",
                            st.path().display(),
                            s.written,
                            s.queue_depth,
                            s.dropped
                        )),
                    }
                }
            },
        );
        put(
            "responder",
            match &self.responder {
                Some(r) => {
                    ComponentHealth::ok(format!("{} alerts queued", r.stats().queue_depth()))
                }
                None => ComponentHealth::disabled("no playbook (--playbook)"),
            },
        );
        h
    }
}

/// What the API needs besides the agent, gathered before the agent's config takes the args.
pub struct ApiContext {
    pub ring: Arc<AlertRing>,
    pub responder: Option<Arc<Responder>>,
    pub actions_log: PathBuf,
    pub docker_socket: Option<PathBuf>,
    pub containerd: Option<driftwatch_runtime::ContainerdConfig>,
    pub kube: Option<Arc<dyn KubeApi>>,
    pub alerts_file: Option<PathBuf>,
    /// Manual actions requested through the API (shared with the daemon's snapshot).
    pub api_actions: Arc<crate::snapshot::ApiActions>,
    /// When the daemon started (`driftwatch_uptime_seconds`).
    pub started: Instant,
    /// The alert store, for `/healthz` (the API's alert list is the in-memory ring).
    pub store: Option<Arc<driftwatch_store::Store>>,
}

impl ApiContext {
    /// The alert sink that fills the API's ring.
    pub fn sink(&self) -> Box<dyn AlertSink> {
        Box::new(RingSink(self.ring.clone()))
    }
}

/// The API's settings, checked before the agent starts (a non-loopback address without a
/// token, an unreadable token file: errors before any BPF is loaded).
pub struct ApiPlan {
    listen: std::net::SocketAddr,
    explicit: bool,
    token: String,
    token_file: PathBuf,
    token_for_reads: bool,
    ui: bool,
    metrics_listen: Option<std::net::SocketAddr>,
}

/// The `api` section (flags applied), checked before the agent starts: an unreadable
/// token file is an error before any BPF is loaded. `listen_set`: `api.listen` was chosen
/// (file or flag), so a taken port is an error; `reads_set`: `api.token_for_reads` was
/// chosen, else it follows whether a token file is named.
pub fn plan(
    config: &driftwatch_config::ApiConfig,
    listen_set: bool,
    reads_set: bool,
) -> anyhow::Result<Option<ApiPlan>> {
    if !config.enabled {
        return Ok(None);
    }
    let listen: std::net::SocketAddr = config
        .listen
        .parse()
        .map_err(|e| anyhow::anyhow!("api.listen {}: {e}", config.listen))?;
    let metrics_listen =
        if config.metrics_listen.is_empty() {
            None
        } else {
            Some(config.metrics_listen.parse().map_err(|e| {
                anyhow::anyhow!("api.metrics_listen {}: {e}", config.metrics_listen)
            })?)
        };
    let named = config.token_file.as_deref();
    if !listen.ip().is_loopback() && named.is_none() {
        return Err(driftwatch_api::BindError::NeedsToken(listen).into());
    }
    let token_file = named.map_or_else(
        || PathBuf::from(driftwatch_api::token::DEFAULT_TOKEN_FILE),
        std::path::Path::to_path_buf,
    );
    let (token, created) = driftwatch_api::token::load_or_create(&token_file)?;
    if created {
        tracing::info!(
            "API token created in {} (mode 0600): state-changing API requests need it",
            token_file.display()
        );
    }
    Ok(Some(ApiPlan {
        listen,
        explicit: listen_set,
        token,
        token_file,
        // A token file named by the operator meant "the token for everything" before
        // every agent had one: it still does, unless api.token_for_reads says otherwise.
        token_for_reads: if reads_set {
            config.token_for_reads
        } else {
            named.is_some()
        },
        ui: config.ui,
        metrics_listen,
    }))
}

/// Starts the API over the running agent. A taken default port is a warning; an explicit
/// address that cannot be served is an error.
pub fn start(
    plan: Option<ApiPlan>,
    agent: &Arc<Agent>,
    ctx: ApiContext,
) -> anyhow::Result<Option<driftwatch_api::ApiServer>> {
    let Some(ApiPlan {
        listen,
        explicit,
        token,
        token_file,
        token_for_reads,
        ui,
        metrics_listen,
    }) = plan
    else {
        return Ok(None);
    };
    let view = Arc::new(AgentApi {
        agent: agent.clone(),
        ring: ctx.ring.clone(),
        responder: ctx.responder,
        actions_log: ctx.actions_log,
        docker_socket: ctx.docker_socket,
        containerd: ctx.containerd,
        kube: ctx.kube,
        alerts_file: ctx.alerts_file,
        store: ctx.store,
        started: ctx.started,
        api_actions: ctx.api_actions,
    });
    let config = driftwatch_api::ApiServerConfig {
        listen,
        token: Some(token),
        token_for_reads,
        ui,
        metrics_listen,
    };
    match driftwatch_api::ApiServer::start(config, view, ctx.ring.clone(), ctx.ring) {
        Ok(s) => {
            tracing::info!(
                "API, metrics and UI on http://{}/ (bearer token from {} required for {})",
                s.local_addr(),
                token_file.display(),
                if token_for_reads {
                    "every request but /healthz"
                } else {
                    "state-changing requests; reads open on loopback"
                }
            );
            if let Some(m) = s.metrics_addr() {
                tracing::info!("metrics and health alone, without a token, on http://{m}/metrics");
            }
            Ok(Some(s))
        }
        Err(driftwatch_api::BindError::Bind { addr, source })
            if !explicit && source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            tracing::warn!(
                "the API's default address {addr} is taken; running without the API (--api-listen ADDR to choose another)"
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Stops the API, then the agent (the API holds a reference to it until stopped).
pub fn stop(api: Option<driftwatch_api::ApiServer>, agent: Arc<Agent>) {
    if let Some(a) = api {
        a.shutdown();
    }
    match Arc::try_unwrap(agent) {
        Ok(a) => a.shutdown(),
        Err(a) => drop(a),
    }
}
