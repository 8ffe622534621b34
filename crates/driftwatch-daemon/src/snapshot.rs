//! [`DaemonSnapshot`]: the agent's [`AgentSnapshot`] with the parts above it (outputs, store,
//! responder, API), taken once; `/metrics` ([`crate::metrics`]) and `--stats-json` (its
//! JSON) both render it, so the two views cannot disagree.

use std::sync::atomic::{AtomicU64, Ordering};

use driftwatch_agent::{Agent, AgentSnapshot};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct DaemonSnapshot {
    #[serde(flatten)]
    pub agent: AgentSnapshot,
    pub uptime_seconds: f64,
    /// This process: open file descriptors, resident memory now and at its peak.
    pub open_fds: usize,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub outputs: Vec<OutputSnapshot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreSnapshot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseSnapshot>,
    /// Manual actions requested through the API, by result.
    pub api_actions: ApiActions,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutputSnapshot {
    pub name: String,
    pub kind: &'static str,
    pub queued: u64,
    pub sent: u64,
    pub dropped: u64,
    pub failed: u64,
    pub retries: u64,
    pub depth: usize,
    pub capacity: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct StoreSnapshot {
    pub written: u64,
    pub dropped: u64,
    pub write_errors: u64,
    pub retention_deleted: u64,
    pub queue_depth: u64,
    pub db_bytes: u64,
    /// Why writes fail, while they do.
    pub degraded: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResponseSnapshot {
    pub queued: u64,
    pub queue_depth: u64,
    pub dropped: u64,
    pub dropped_container_share: u64,
    pub runs: u64,
    pub kill_only: u64,
    pub duplicates: u64,
    pub over_budget: u64,
    pub excepted: u64,
    pub actions_ok: u64,
    pub actions_failed: u64,
    pub actions_skipped: u64,
    pub actions_dry_run: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct ApiActions {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

impl Clone for ApiActions {
    fn clone(&self) -> Self {
        let n = |a: &AtomicU64| AtomicU64::new(a.load(Ordering::Relaxed));
        ApiActions {
            ok: n(&self.ok),
            failed: n(&self.failed),
        }
    }
}

/// The parts of the daemon a snapshot reads besides the agent.
pub struct Parts<'a> {
    pub store: Option<&'a driftwatch_store::Store>,
    pub responder: Option<&'a driftwatch_response::Responder>,
    pub api_actions: &'a ApiActions,
    pub started: std::time::Instant,
}

pub fn outputs(o: &driftwatch_outputs::Outputs) -> Vec<OutputSnapshot> {
    o.stats()
        .into_iter()
        .map(|o| OutputSnapshot {
            kind: o.kind.as_str(),
            name: o.name,
            queued: o.queued,
            sent: o.sent,
            dropped: o.dropped,
            failed: o.failed,
            retries: o.retries,
            depth: o.depth,
            capacity: o.capacity,
        })
        .collect()
}

pub fn store(s: &driftwatch_store::Store) -> StoreSnapshot {
    let s = s.snapshot();
    StoreSnapshot {
        written: s.written,
        dropped: s.dropped,
        write_errors: s.write_errors,
        retention_deleted: s.retention_deleted,
        queue_depth: s.queue_depth as u64,
        db_bytes: s.db_bytes,
        degraded: s.degraded,
    }
}

fn response(r: &driftwatch_response::Responder) -> ResponseSnapshot {
    let s = r.stats();
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    ResponseSnapshot {
        queued: n(&s.queued),
        queue_depth: s.queue_depth(),
        dropped: n(&s.dropped),
        dropped_container_share: n(&s.dropped_container_share),
        runs: n(&s.runs),
        kill_only: n(&s.kill_only),
        duplicates: n(&s.duplicates),
        over_budget: n(&s.over_budget),
        excepted: n(&s.excepted),
        actions_ok: n(&s.ok),
        actions_failed: n(&s.failed),
        actions_skipped: n(&s.skipped),
        actions_dry_run: n(&s.dry_run),
    }
}

/// Peak and current resident memory of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmHWM:"), get("VmRSS:"))
}

impl DaemonSnapshot {
    pub fn take(agent: &Agent, parts: &Parts<'_>) -> DaemonSnapshot {
        let (peak_rss_kib, rss_kib) = memory_kib();
        DaemonSnapshot {
            agent: agent.snapshot(),
            uptime_seconds: parts.started.elapsed().as_secs_f64(),
            open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
            rss_kib,
            peak_rss_kib,
            outputs: outputs(agent.outputs()),
            store: parts.store.map(store),
            response: parts.responder.map(response),
            api_actions: parts.api_actions.clone(),
        }
    }
}
