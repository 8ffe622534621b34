//! The end of every pipeline: an event is recorded (`--record`), run through the rules, and
//! each alert it raises goes to every sink. Shared by all sensors (exec, file, network, ...).

use std::fs::File;
use std::io::{LineWriter, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use driftwatch_model::Event;
use driftwatch_rules::{RuleIdx, RuleSet};

use driftwatch_outputs::Outputs;

use crate::outputs::AlertSink;
use crate::pipeline::AgentStats;

pub struct Emitter {
    rules: RuleSet,
    /// The configured outputs: queued without blocking, delivered on their own threads.
    outputs: Option<Arc<Outputs>>,
    sinks: Vec<Box<dyn AlertSink>>,
    record: Option<LineWriter<File>>,
    stats: Arc<AgentStats>,
    hostname: String,
    matches: Vec<RuleIdx>,
}

/// Sensors run on their own threads and share one emitter.
pub type SharedEmitter = Arc<Mutex<Emitter>>;

fn now_wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Emitter {
    pub fn new(
        rules: RuleSet,
        outputs: Option<Arc<Outputs>>,
        sinks: Vec<Box<dyn AlertSink>>,
        record: Option<LineWriter<File>>,
        stats: Arc<AgentStats>,
        hostname: String,
    ) -> Emitter {
        Emitter {
            rules,
            outputs,
            sinks,
            record,
            stats,
            hostname,
            matches: Vec::new(),
        }
    }

    pub fn shared(self) -> SharedEmitter {
        Arc::new(Mutex::new(self))
    }

    /// Replaces the rule set (a reload). The caller compiled it first, outside the lock: the
    /// swap happens between two events, so none is evaluated against half a rule set.
    pub fn set_rules(&mut self, rules: RuleSet) {
        self.rules = rules;
        self.matches.clear();
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Adds a sink after the others (e.g. response playbooks configured by a reload).
    pub fn add_sink(&mut self, sink: Box<dyn AlertSink>) {
        self.sinks.push(sink);
    }

    /// Records the event, evaluates the rules and writes the alerts. Returns how many fired.
    pub fn emit(&mut self, event: &Event) -> usize {
        if let Some(r) = self.record.as_mut()
            && let Ok(line) = serde_json::to_string(event)
        {
            let _ = writeln!(r, "{line}");
        }
        self.rules.matches(event, &mut self.matches);
        for &idx in &self.matches {
            let alert = self.rules.alert(idx, event, &self.hostname);
            self.stats.alerts.fetch_add(1, Ordering::Relaxed);
            if let Some(o) = &self.outputs {
                o.emit(&alert);
            }
            for sink in &mut self.sinks {
                if let Err(e) = sink.emit(&alert) {
                    self.stats.output_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("writing an alert to {}: {e}", sink.name());
                }
            }
            let latency_us = now_wall_ns().saturating_sub(event.time_ns) / 1000;
            if let Ok(mut l) = self.stats.alert_latency_us.lock()
                && l.len() < 1_000_000
            {
                l.push(latency_us.min(u64::from(u32::MAX)) as u32);
            }
        }
        self.matches.len()
    }
}

/// Emits through a shared emitter; a poisoned lock (a panic elsewhere) does not stop alerts.
pub fn emit(shared: &SharedEmitter, event: &Event) -> usize {
    match shared.lock() {
        Ok(mut e) => e.emit(event),
        Err(poisoned) => poisoned.into_inner().emit(event),
    }
}

/// Writes an alert the agent raised itself (no rule: tamper protection) to every sink.
pub fn emit_alert(shared: &SharedEmitter, alert: &driftwatch_model::Alert) {
    let mut e = shared.lock().unwrap_or_else(|p| p.into_inner());
    e.stats.alerts.fetch_add(1, Ordering::Relaxed);
    if let Some(o) = &e.outputs {
        o.emit(alert);
    }
    let Emitter { sinks, stats, .. } = &mut *e;
    for sink in sinks.iter_mut() {
        if let Err(err) = sink.emit(alert) {
            stats.output_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("writing an alert to {}: {err}", sink.name());
        }
    }
}
