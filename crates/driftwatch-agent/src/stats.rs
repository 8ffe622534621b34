//! The pipeline's own counters, apart from the code that wires the pipeline (the emitter and
//! the loss watch count into them without importing the pipeline that owns them), and the
//! one snapshot type every view of the agent's counters renders.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use serde::Serialize;

/// Counters of the pipeline; kernel-side ones are in
/// [`SensorStats`](driftwatch_sensor::SensorStats).
#[derive(Debug, Default)]
pub struct AgentStats {
    pub processed: AtomicU64,
    /// Execs in a mount namespace other than the host's but in no container cgroup.
    pub not_container: AtomicU64,
    pub alerts: AtomicU64,
    /// Alerts not sent: a repeat within the deduplication window.
    pub alerts_suppressed: AtomicU64,
    /// Alerts not sent: their container was over its alert rate (`limits.*`).
    pub alerts_throttled: AtomicU64,
    /// "Driftwatch events lost" alerts raised.
    pub loss_alerts: AtomicU64,
    pub output_errors: AtomicU64,
    /// Exec-to-written latency of each alert, in microseconds (the first million).
    pub alert_latency_us: std::sync::Mutex<Vec<u32>>,
    /// The same latency, every alert, in fixed buckets (for `/metrics`).
    pub alert_latency: crate::histogram::Histogram,
}

impl AgentStats {
    /// The `q`-quantile (0..=1) of alert latency in microseconds, if any alert was written.
    pub fn latency_quantile_us(&self, q: f64) -> Option<u32> {
        crate::histogram::sample_quantile_us(&self.alert_latency_us, q)
    }
}

/// One reading of every counter of the running agent, taken at once
/// ([`Agent::snapshot`](crate::Agent::snapshot)); `/metrics` and `--stats-json` both render
/// it, so a counter added here shows in both. Field names are the `--stats-json` keys.
#[derive(Clone, Debug, Serialize)]
pub struct AgentSnapshot {
    pub execs_processed: u64,
    pub not_container: u64,
    pub alerts: u64,
    pub alerts_suppressed: u64,
    pub alerts_throttled: u64,
    pub loss_alerts: u64,
    pub output_errors: u64,
    /// Exec events lost anywhere between the kernel and the rules.
    pub lost: u64,
    pub kernel_sent: u64,
    pub host_execs_skipped_in_kernel: u64,
    pub malformed: u64,
    /// How exec records reached the agent: timer drains and forced wakeups.
    pub exec_ring: RingSnapshot,
    pub alert_latency_p50_us: Option<u32>,
    pub alert_latency_p99_us: Option<u32>,
    pub alert_latency_samples: usize,
    pub alert_latency_seconds: HistogramSnapshot,
    pub containers_known: usize,
    /// Exec'd container processes remembered (live ones, and exits of the last seconds).
    pub processes_known: usize,
    pub containers_live: usize,
    /// Live containers by the enforcement mode of their scope.
    pub containers_by_mode: ModeCounts,
    pub engine_disconnects: u64,
    /// Entries of each BPF map keyed per container, namespace or process, by map name.
    pub bpf_map_entries: BTreeMap<&'static str, u64>,
    /// Those maps' `max_entries`.
    pub bpf_map_capacity: BTreeMap<&'static str, u32>,
    pub files: Option<FileSnapshot>,
    pub enforcement: EnforcementSnapshot,
    pub tamper: Option<TamperSnapshot>,
    pub config: ReloadSnapshot,
    pub net: Option<NetSnapshot>,
}

/// A latency histogram: (upper bound in seconds, observations in that bucket alone), the
/// sum in seconds and the count.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ModeCounts {
    pub detect: u64,
    pub prevent: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileSnapshot {
    pub notices: u64,
    pub events: u64,
    pub dirs_watched: u64,
    pub dirs_skipped: u64,
    pub dirs_skipped_container_share: u64,
    pub budget_alerts: u64,
    pub dirs_too_deep: u64,
    pub scans_truncated: u64,
    pub queue_overflows: u64,
    pub unresolved: u64,
    /// Directories not marked: no enabled rule can match below them.
    pub dirs_unmarked: u64,
    /// Notices dropped for a later one in the same read about the same entry.
    pub notices_coalesced: u64,
}

/// A fanotify permission guard's answers (exec in prevent mode; opens of protected files).
#[derive(Clone, Debug, Default, Serialize)]
pub struct AnswerSnapshot {
    pub deadline_ms: u64,
    pub answered: u64,
    pub timeouts: u64,
    pub timeouts_allowed: u64,
    pub timeouts_denied: u64,
    pub queue_overflows: u64,
    pub late_decisions: u64,
    pub timeout_alerts: u64,
    pub answer_p50_us: Option<u32>,
    pub answer_p99_us: Option<u32>,
    pub answer_max_us: Option<u32>,
    pub answer_seconds: HistogramSnapshot,
}

#[derive(Clone, Debug, Serialize)]
pub struct EnforcementSnapshot {
    pub exec_requests: u64,
    pub decision_p50_us: Option<u32>,
    pub decision_p99_us: Option<u32>,
    pub decision_seconds: HistogramSnapshot,
    pub denied: u64,
    pub denials_collapsed: u64,
    pub held_then_killed: u64,
    pub held_then_released: u64,
    pub killed_after_start: u64,
    pub failed: u64,
    pub allowlisted: u64,
    pub orphans_killed: u64,
    pub prevent_containers: u64,
    pub marked_mounts: u64,
    pub mark_errors: u64,
    pub maps_restored: u64,
    pub answers: AnswerSnapshot,
    pub kernel_killed: u64,
    pub kernel_held: u64,
    pub kernel_orphaned: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TamperSnapshot {
    pub signals: u64,
    pub signals_from_containers: u64,
    pub stops_ignored: u64,
    pub stops_of_unknown_origin_ignored: u64,
    pub open_requests: u64,
    pub opens_denied: u64,
    pub traced: u64,
    pub integrity_failures: u64,
    pub open_answers: AnswerSnapshot,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReloadSnapshot {
    pub reloads: u64,
    pub reload_failures: u64,
    pub last_reload_unix: u64,
    pub last_reload_failure_unix: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct NetSnapshot {
    pub observed: u64,
    pub findings: u64,
    pub findings_suppressed: u64,
    pub udp_scans: u64,
    pub kernel_sent: u64,
    pub kernel_deduped: u64,
    pub kernel_host_skipped: u64,
    pub lost: u64,
    /// How network records reached the agent.
    pub ring: RingSnapshot,
    /// Per-container state: back to the live containers' share after removals.
    pub remembered_findings: usize,
    pub budgeted_containers: usize,
}

/// A sensor's ring buffer: records drained on the reader's timer or after a wakeup, and the
/// wakeups the kernel forced, by reason (`driftwatch_sensor::RingStats`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RingSnapshot {
    pub drained_on_timer: u64,
    pub drained_on_wakeup: u64,
    pub sleeps: u64,
    pub forced_urgent: u64,
    pub forced_loss: u64,
    pub forced_asleep: u64,
    pub forced_fill: u64,
    pub nudged: u64,
}

impl RingSnapshot {
    pub fn of(r: &driftwatch_sensor::RingStats) -> RingSnapshot {
        let n = |a: &AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        RingSnapshot {
            drained_on_timer: n(&r.drained_on_timer),
            drained_on_wakeup: n(&r.drained_on_wakeup),
            sleeps: n(&r.sleeps),
            forced_urgent: n(&r.forced_urgent),
            forced_loss: n(&r.forced_loss),
            forced_asleep: n(&r.forced_asleep),
            forced_fill: n(&r.forced_fill),
            nudged: n(&r.nudged),
        }
    }
}
