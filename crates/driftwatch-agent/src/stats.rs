//! The pipeline's own counters, apart from the code that wires the pipeline: the emitter and
//! the loss watch count into them without importing the pipeline that owns them.

use std::sync::atomic::AtomicU64;

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
