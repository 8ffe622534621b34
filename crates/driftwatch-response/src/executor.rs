//! The responder: alerts in through a bounded queue fair across containers (never blocking
//! detection: a full queue, or a container over its share of it, drops the alert, counted and
//! logged), one thread that validates and runs the playbooks in order, and every action
//! recorded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use driftwatch_model::Alert;

use crate::actions::engine::{ContainerEngine, NodeEngines};
use crate::actions::kube::KubeApi;
use crate::actions::{self, ActionTarget, Env, Step};
use crate::gate::{Gate, GateDecision};
use crate::matching::AlertFacts;
use crate::playbook::{Action, OnFailure, PlaybookSet};
use crate::queue::{FairQueue, Refused};
use driftwatch_model::clock::now_ns;

use crate::record::{ActionLog, ActionRecord, AlertRef, ContainerRef, LogError, Outcome};

/// Alerts waiting for the responder at most; more are dropped.
pub const DEFAULT_QUEUE: usize = 1024;

pub struct ResponderConfig {
    pub playbooks: PlaybookSet,
    pub actions_log: PathBuf,
    /// Docker's API socket; `None`: no engine (stop/evict fail, containers are found by
    /// cgroup).
    pub docker_socket: Option<PathBuf>,
    /// containerd's API (and CRI) socket and namespaces: the node's pods; `None`: Docker only.
    pub containerd: Option<driftwatch_runtime::ContainerdConfig>,
    pub kube: Option<Arc<dyn KubeApi>>,
    /// The agent's Falco JSON alerts file, for evidence bundles.
    pub alerts_file: Option<PathBuf>,
    pub queue: usize,
    /// Gets a copy of every action record (see [`crate::record::ActionMirror`]).
    pub action_mirror: Option<crate::record::ActionMirror>,
}

/// Counters of the responder.
#[derive(Debug, Default)]
pub struct ResponderStats {
    /// Alerts that matched a playbook and were queued.
    pub queued: AtomicU64,
    /// Alerts dropped because the queue was full (or their container held its share of it:
    /// counted in [`Self::dropped_container_share`] too).
    pub dropped: AtomicU64,
    /// Alerts dropped because their container held its share of the queue.
    pub dropped_container_share: AtomicU64,
    /// Playbook runs of which only the `kill` steps ran (a duplicate within the dedupe window,
    /// or the container over its budget of runs).
    pub kill_only: AtomicU64,
    /// Playbook runs refused for the container's budget (their `kill` steps still ran).
    pub over_budget: AtomicU64,
    pub runs: AtomicU64,
    pub duplicates: AtomicU64,
    pub excepted: AtomicU64,
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub skipped: AtomicU64,
    pub dry_run: AtomicU64,
    /// Records that could not be written to the actions log.
    pub record_errors: AtomicU64,
    /// Alerts taken from the queue by the responder's thread.
    pub taken: AtomicU64,
}

impl ResponderStats {
    /// Alerts waiting in the queue now.
    pub fn queue_depth(&self) -> u64 {
        self.queued
            .load(Ordering::Relaxed)
            .saturating_sub(self.taken.load(Ordering::Relaxed))
    }
}

struct Queued {
    alert: Alert,
    facts: AlertFacts,
    received_ns: u64,
}

/// The running responder. [`Responder::submit`] never blocks.
/// The playbooks in force, swapped whole by [`Responder::set_playbooks`].
type SharedPlaybooks = Arc<RwLock<Arc<PlaybookSet>>>;

fn current(p: &SharedPlaybooks) -> Arc<PlaybookSet> {
    p.read().unwrap_or_else(|e| e.into_inner()).clone()
}

pub struct Responder {
    queue: Arc<FairQueue<Queued>>,
    playbooks: SharedPlaybooks,
    stats: Arc<ResponderStats>,
    last_drop_warning: AtomicU64,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Opens the actions log (an error here is the caller's to report) and starts the thread.
    pub fn start(config: ResponderConfig) -> Result<Responder, LogError> {
        let mut log = ActionLog::open(&config.actions_log)?;
        log.set_mirror(config.action_mirror.clone());
        let capacity = config.queue.max(1);
        let queue = Arc::new(FairQueue::new(
            capacity,
            FairQueue::<Queued>::default_share(capacity),
        ));
        let rx = queue.clone();
        let stats = Arc::new(ResponderStats::default());
        let playbooks = Arc::new(RwLock::new(Arc::new(config.playbooks)));
        let worker = Worker {
            playbooks: playbooks.clone(),
            log,
            gate: Gate::new(),
            stats: stats.clone(),
            docker_socket: config.docker_socket,
            containerd: config.containerd,
            kube: config.kube,
            alerts_file: config.alerts_file,
        };
        let thread = std::thread::Builder::new()
            .name("dw-respond".into())
            .spawn(move || worker.run(rx))
            .map_err(|source| LogError {
                path: "(responder thread)".into(),
                source,
            })?;
        Ok(Responder {
            queue,
            playbooks,
            stats,
            last_drop_warning: AtomicU64::new(0),
            thread: Some(thread),
        })
    }

    pub fn stats(&self) -> &Arc<ResponderStats> {
        &self.stats
    }

    /// Replaces the playbooks (a reload). Alerts already queued run with the new ones.
    pub fn set_playbooks(&self, playbooks: PlaybookSet) {
        *self.playbooks.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(playbooks);
    }

    /// How many playbooks are in force.
    pub fn playbook_count(&self) -> usize {
        current(&self.playbooks).playbooks.len()
    }

    /// Queues the alert when a playbook matches it; returns whether it was queued. Never
    /// blocks: with the queue full, or the alert's container holding its share of it (an
    /// eighth), the alert is dropped, counted and logged (at most once per 10 s).
    pub fn submit(&self, alert: &Alert) -> bool {
        let facts = AlertFacts::of(alert);
        if !current(&self.playbooks)
            .playbooks
            .iter()
            .any(|p| p.selector.matches(&facts))
        {
            return false;
        }
        let key = facts.container_id.clone();
        let q = Queued {
            alert: alert.clone(),
            facts,
            received_ns: now_ns(),
        };
        match self.queue.push(&key, q) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err((why, q)) => {
                let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let what = if why == Refused::ContainerShare {
                    self.stats
                        .dropped_container_share
                        .fetch_add(1, Ordering::Relaxed);
                    "the container holds its share of the response queue"
                } else {
                    "response queue full"
                };
                let now = q.received_ns;
                let last = self.last_drop_warning.load(Ordering::Relaxed);
                if now.saturating_sub(last) > 10_000_000_000
                    && self
                        .last_drop_warning
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(
                        "{what}: alert {:?} for container {} dropped without action ({n} dropped since start)",
                        q.alert.rule,
                        q.facts.container_label()
                    );
                }
                false
            }
        }
    }

    /// Stops taking alerts, finishes the queued ones and joins the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.queue.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    playbooks: SharedPlaybooks,
    log: ActionLog,
    gate: Gate,
    stats: Arc<ResponderStats>,
    docker_socket: Option<PathBuf>,
    containerd: Option<driftwatch_runtime::ContainerdConfig>,
    kube: Option<Arc<dyn KubeApi>>,
    alerts_file: Option<PathBuf>,
}

impl Worker {
    fn run(mut self, rx: Arc<FairQueue<Queued>>) {
        let engine = NodeEngines::connect(self.docker_socket.as_deref(), self.containerd.take());
        let socket = self
            .docker_socket
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let kube = self.kube.clone();
        let alerts_file = self.alerts_file.clone();
        while let Some(q) = rx.pop() {
            self.stats.taken.fetch_add(1, Ordering::Relaxed);
            let env = Env {
                engine: engine.as_ref().map(|e| e as &dyn ContainerEngine),
                kube: kube.as_deref(),
                docker_socket: &socket,
                alerts_file: alerts_file.as_deref(),
            };
            self.handle(&q, &env);
        }
    }

    fn handle(&mut self, q: &Queued, env: &Env<'_>) {
        let playbooks = current(&self.playbooks);
        let mut target = ActionTarget::new(&q.facts);
        for pb in playbooks
            .playbooks
            .iter()
            .filter(|p| p.selector.matches(&q.facts))
        {
            let verdict = self.gate.admit(&playbooks, pb, &q.facts, Instant::now());
            match &verdict {
                GateDecision::Run => {}
                GateDecision::Excepted { by } => {
                    self.stats.excepted.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        "playbook {}: alert {:?} excepted by {by}",
                        pb.name,
                        q.alert.rule
                    );
                    continue;
                }
                GateDecision::Duplicate { ago } => {
                    self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        "playbook {}: duplicate of an alert {ago:?} ago for container {}: only its kill steps run",
                        pb.name,
                        q.facts.container_label()
                    );
                }
                GateDecision::OverBudget { runs } => {
                    self.stats.over_budget.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        "playbook {}: container {} started {runs} runs in the last {:?}: only its kill steps run",
                        pb.name,
                        q.facts.container_label(),
                        crate::gate::CONTAINER_WINDOW
                    );
                }
            }
            let kill_only = verdict.kill_only();
            if kill_only {
                if !pb.actions.iter().any(|s| s.action == Action::Kill) {
                    continue;
                }
                self.stats.kill_only.fetch_add(1, Ordering::Relaxed);
            }
            self.stats.runs.fetch_add(1, Ordering::Relaxed);
            let mut done: Vec<ActionRecord> = Vec::new();
            let mut aborted: Option<String> = None;
            for (i, step) in pb.actions.iter().enumerate() {
                // A duplicate (or over-budget) run kills again and does nothing else, and
                // records only what it did.
                if kill_only && step.action != Action::Kill {
                    continue;
                }
                let start = now_ns();
                let (outcome, reason, detail) = if let Some(why) = &aborted {
                    (Outcome::Skipped, Some(why.clone()), None)
                } else if let Err(why) =
                    self.gate
                        .take(&pb.name, i, step.limit.as_ref(), &q.facts, Instant::now())
                {
                    (Outcome::Skipped, Some(why), None)
                } else if step.dry_run {
                    (
                        Outcome::DryRun,
                        None,
                        Some(actions::describe(
                            &step.action,
                            &q.facts,
                            env.kube.is_some(),
                        )),
                    )
                } else {
                    let body = || notify_body(&q.alert, &pb.name, &done);
                    match actions::perform(&step.action, &mut target, env, &body) {
                        Step::Ok(d) => (Outcome::Ok, None, Some(d)),
                        Step::Skipped(why) => (Outcome::Skipped, Some(why), None),
                        Step::Failed(e) => (Outcome::Failed, Some(e), None),
                    }
                };
                let end = now_ns();
                if outcome == Outcome::Failed
                    && step.on_failure == OnFailure::Abort
                    && aborted.is_none()
                {
                    aborted = Some(format!(
                        "aborted: `{}` (step {}) failed and has on_failure: abort",
                        step.action.name(),
                        i + 1
                    ));
                }
                let counter = match outcome {
                    Outcome::Ok => &self.stats.ok,
                    Outcome::Failed => &self.stats.failed,
                    Outcome::Skipped => &self.stats.skipped,
                    Outcome::DryRun => &self.stats.dry_run,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let mut container = ContainerRef::of(&q.facts);
                if let Some(r) = target.resolve_cached() {
                    container.id = r.id.to_string();
                    if container.name.is_empty() {
                        container.name = r.name.clone();
                    }
                }
                let record = ActionRecord {
                    time: Alert::format_time(start),
                    end: Alert::format_time(end),
                    start_ns: start,
                    end_ns: end,
                    playbook: Some(pb.name.clone()),
                    action: step.action.name().to_string(),
                    params: step.action.params(),
                    dry_run: step.dry_run,
                    result: outcome,
                    reason,
                    detail,
                    container,
                    alert: Some(AlertRef::of(&q.alert, &q.facts)),
                    alert_received_ns: Some(q.received_ns),
                };
                match (&record.result, &record.reason) {
                    (Outcome::Failed, Some(e)) => tracing::warn!(
                        "playbook {}: {} on {} failed: {e}",
                        pb.name,
                        record.action,
                        q.facts.container_label()
                    ),
                    _ => tracing::info!(
                        "playbook {}: {} on {}: {}{}",
                        pb.name,
                        record.action,
                        q.facts.container_label(),
                        record.result.as_str(),
                        record
                            .detail
                            .as_deref()
                            .or(record.reason.as_deref())
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                }
                if let Err(e) = self.log.append(&record) {
                    self.stats.record_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("{e}");
                }
                done.push(record);
            }
        }
    }
}

/// What `notify` posts: the Falco alert as is, the playbook, and the actions so far.
fn notify_body(alert: &Alert, playbook: &str, done: &[ActionRecord]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "alert": alert,
        "playbook": playbook,
        "actions": done,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_model::Priority;

    fn alert(container: &str, exe: &str) -> Alert {
        Alert {
            time: Alert::format_time(1_795_852_800_000_000_000),
            rule: "Drop and execute new binary in container".into(),
            priority: Priority::Critical,
            source: "syscall".into(),
            hostname: "node-1".into(),
            output: "drift".into(),
            tags: vec!["binary_drift".into()],
            output_fields: [
                ("container.id", serde_json::json!(container)),
                ("proc.pid", serde_json::json!(999_999_999)),
                ("proc.exepath", serde_json::json!(exe)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }

    fn responder(dir: &std::path::Path, playbook: &str, queue: usize) -> Responder {
        Responder::start(ResponderConfig {
            playbooks: PlaybookSet::parse("pb.yaml", playbook).unwrap(),
            actions_log: dir.join("actions.jsonl"),
            docker_socket: None,
            containerd: None,
            kube: None,
            alerts_file: None,
            queue,
            action_mirror: None,
        })
        .unwrap()
    }

    #[test]
    fn a_duplicate_kills_again_and_does_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let r = responder(
            dir.path(),
            "playbooks:\n  - name: p\n    match: {}\n    dedupe_window: 1h\n    actions:\n      - {action: kill, dry_run: true}\n      - {action: capture, dry_run: true, params: {dir: /nonexistent}}\n",
            16,
        );
        assert!(r.submit(&alert("0123456789ab", "/tmp/x")));
        assert!(r.submit(&alert("0123456789ab", "/tmp/x")));
        let stats = r.stats().clone();
        r.shutdown();
        let (records, _) = crate::read_records(&dir.path().join("actions.jsonl")).unwrap();
        let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["kill", "capture", "kill"]);
        assert_eq!(stats.duplicates.load(Ordering::Relaxed), 1);
        assert_eq!(stats.kill_only.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_flood_from_one_container_leaves_room_and_turns_for_a_neighbour() {
        let dir = tempfile::tempdir().unwrap();
        let r = responder(
            dir.path(),
            "playbooks:\n  - name: p\n    match: {}\n    actions:\n      - {action: capture, dry_run: true, params: {dir: /nonexistent}}\n",
            64,
        );
        // A new executable each time: no dedupe collapses them.
        let mut queued = 0;
        for i in 0..5000 {
            queued += usize::from(r.submit(&alert("aaaaaaaaaaaa", &format!("/tmp/p{i}"))));
        }
        assert!(
            r.submit(&alert("bbbbbbbbbbbb", "/tmp/one")),
            "the neighbour's alert is queued"
        );
        let stats = r.stats().clone();
        r.shutdown();
        assert!(queued < 5000);
        assert!(stats.dropped_container_share.load(Ordering::Relaxed) > 0);
        let (records, _) = crate::read_records(&dir.path().join("actions.jsonl")).unwrap();
        let neighbour: Vec<&ActionRecord> = records
            .iter()
            .filter(|r| r.container.id == "bbbbbbbbbbbb")
            .collect();
        assert_eq!(neighbour.len(), 1, "the neighbour's action ran");
        assert_eq!(neighbour[0].result, Outcome::DryRun);
        // The noisy container ran out of its budget of runs: the rest did nothing.
        let noisy = records.len() - 1;
        assert_eq!(noisy, crate::gate::CONTAINER_RUNS);
        assert!(stats.over_budget.load(Ordering::Relaxed) > 0);
    }
}
