//! Taking the [`AgentSnapshot`]: every counter of the pipeline, the sensors, enforcement
//! and tamper protection, read once. Apart from `stats.rs` so that the counter
//! types stay below the pipeline that reads them (no import cycle).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::deadline::DeadlineStats;
use crate::histogram::Histogram;
use crate::pipeline::Agent;
use crate::stats::{
    AgentSnapshot, AnswerSnapshot, EnforcementSnapshot, FileSnapshot, HistogramSnapshot,
    ModeCounts, NetSnapshot, ReloadSnapshot, RingSnapshot, TamperSnapshot,
};

fn n(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Histogram {
    pub fn snapshot(&self) -> HistogramSnapshot {
        let (buckets, sum, count) = self.snapshot_seconds();
        HistogramSnapshot {
            buckets,
            sum,
            count,
        }
    }
}

impl DeadlineStats {
    pub fn snapshot(&self, deadline: Duration) -> AnswerSnapshot {
        AnswerSnapshot {
            deadline_ms: deadline.as_millis() as u64,
            answered: n(&self.answered),
            timeouts: n(&self.timeouts),
            timeouts_allowed: n(&self.timeouts_allowed),
            timeouts_denied: n(&self.timeouts_denied),
            queue_overflows: n(&self.overflows),
            late_decisions: n(&self.late_decisions),
            timeout_alerts: n(&self.timeout_alerts),
            answer_p50_us: self.answer_quantile_us(0.5),
            answer_p99_us: self.answer_quantile_us(0.99),
            answer_max_us: self.answer_max_us(),
            answer_seconds: self.answer.snapshot(),
        }
    }
}

/// The counters a stop makes final, kept apart from the [`Agent`] so they can be read
/// after it has stopped: the exec sensor reads the kernel's counters every 250 ms while it
/// runs and once more as it stops, after draining its ring buffer. A snapshot taken while
/// the agent runs can show more execs handled than the kernel has yet been read to have
/// sent.
pub struct FinalCounts {
    agent: std::sync::Arc<crate::stats::AgentStats>,
    exec: Option<std::sync::Arc<driftwatch_sensor::SensorStats>>,
}

impl FinalCounts {
    /// Re-reads, into `snap`, the exec counters that the agent's stop made final.
    pub fn apply(&self, snap: &mut AgentSnapshot) {
        let s = &self.agent;
        let k = self.exec.as_deref();
        let kv = |f: fn(&driftwatch_sensor::SensorStats) -> &AtomicU64| k.map_or(0, |k| n(f(k)));
        snap.execs_processed = n(&s.processed);
        snap.not_container = n(&s.not_container);
        snap.alerts = n(&s.alerts);
        snap.alerts_suppressed = n(&s.alerts_suppressed);
        snap.alerts_throttled = n(&s.alerts_throttled);
        snap.loss_alerts = n(&s.loss_alerts);
        snap.output_errors = n(&s.output_errors);
        snap.lost = k.map_or(0, |k| k.lost());
        snap.kernel_sent = kv(|k| &k.sent);
        snap.host_execs_skipped_in_kernel = kv(|k| &k.host_skipped);
        snap.malformed = kv(|k| &k.malformed);
    }
}

impl Agent {
    /// The counters to read again once this agent has stopped ([`FinalCounts::apply`]).
    pub fn final_counts(&self) -> FinalCounts {
        FinalCounts {
            agent: self.stats().clone(),
            exec: self.sensor_stats().cloned(),
        }
    }
}

impl Agent {
    /// Every counter, read now (the BPF maps are walked: call it per scrape or at exit, not
    /// per event).
    pub fn snapshot(&self) -> AgentSnapshot {
        let s = self.stats();
        let k = self.sensor_stats();
        let kv = |f: fn(&driftwatch_sensor::SensorStats) -> &AtomicU64| k.map_or(0, |k| n(f(k)));
        let deadline = self.answer_deadline();
        let e = self.enforce_stats();
        let live = self.registry().live_entries();
        let mut by_mode = ModeCounts::default();
        for c in &live {
            match self.enforcement_mode(&c.meta) {
                driftwatch_model::EnforcementMode::Detect => by_mode.detect += 1,
                driftwatch_model::EnforcementMode::Prevent => by_mode.prevent += 1,
            }
        }
        let maps = self.bpf_map_entries();
        let reloads = self.reload_stats();
        AgentSnapshot {
            execs_processed: n(&s.processed),
            not_container: n(&s.not_container),
            alerts: n(&s.alerts),
            alerts_suppressed: n(&s.alerts_suppressed),
            alerts_throttled: n(&s.alerts_throttled),
            loss_alerts: n(&s.loss_alerts),
            output_errors: n(&s.output_errors),
            lost: self.lost(),
            kernel_sent: kv(|k| &k.sent),
            host_execs_skipped_in_kernel: kv(|k| &k.host_skipped),
            malformed: kv(|k| &k.malformed),
            exec_ring: k.map(|k| RingSnapshot::of(&k.ring)).unwrap_or_default(),
            alert_latency_p50_us: s.latency_quantile_us(0.5),
            alert_latency_p99_us: s.latency_quantile_us(0.99),
            alert_latency_samples: s.alert_latency_us.lock().map(|v| v.len()).unwrap_or(0),
            alert_latency_seconds: s.alert_latency.snapshot(),
            containers_known: self.registry().len(),
            processes_known: self.procs().lock().map_or(0, |p| p.len()),
            containers_live: live.len(),
            containers_by_mode: by_mode,
            engine_disconnects: n(&self.registry().stats.engine_disconnects),
            bpf_map_entries: maps.iter().map(|m| (m.name, m.entries)).collect(),
            bpf_map_capacity: maps.iter().map(|m| (m.name, m.capacity)).collect(),
            files: self.file_stats().map(|f| FileSnapshot {
                notices: n(&f.notices),
                events: n(&f.events),
                dirs_watched: n(&f.dirs_watched),
                dirs_skipped: n(&f.dirs_skipped),
                dirs_skipped_container_share: n(&f.dirs_skipped_container_share),
                budget_alerts: n(&f.budget_alerts),
                dirs_too_deep: n(&f.dirs_too_deep),
                scans_truncated: n(&f.scans_truncated),
                queue_overflows: n(&f.overflows),
                unresolved: n(&f.unresolved),
                dirs_unmarked: n(&f.dirs_unmarked),
                notices_coalesced: n(&f.notices_coalesced),
            }),
            enforcement: EnforcementSnapshot {
                exec_requests: n(&e.requests),
                decision_p50_us: e.decision_quantile_us(0.5),
                decision_p99_us: e.decision_quantile_us(0.99),
                decision_seconds: e.decision.snapshot(),
                denied: n(&e.denied),
                denials_collapsed: n(&e.denials_collapsed),
                held_then_killed: n(&e.hold_killed),
                held_then_released: n(&e.hold_released),
                killed_after_start: n(&e.killed_late),
                failed: n(&e.failed),
                allowlisted: n(&e.allowlisted),
                orphans_killed: n(&e.orphans_killed),
                prevent_containers: n(&e.prevent_containers),
                marked_mounts: n(&e.marked_mounts),
                mark_errors: n(&e.mark_errors),
                maps_restored: n(&e.maps_restored),
                answers: e.answers.snapshot(deadline),
                kernel_killed: kv(|k| &k.killed),
                kernel_held: kv(|k| &k.held),
                kernel_orphaned: kv(|k| &k.orphaned),
            },
            tamper: self.tamper().map(|t| TamperSnapshot {
                signals: n(&t.stats.signals),
                signals_from_containers: n(&t.stats.signals_from_containers),
                stops_ignored: n(&t.stats.stops_ignored),
                stops_of_unknown_origin_ignored: n(&t.stats.unknown_origins),
                open_requests: n(&t.stats.open_requests),
                opens_denied: n(&t.stats.opens_denied),
                traced: n(&t.stats.traced),
                integrity_failures: n(&t.stats.integrity_failures),
                open_answers: t.stats.answers.snapshot(deadline),
            }),
            config: ReloadSnapshot {
                reloads: n(&reloads.reloads),
                reload_failures: n(&reloads.failures),
                last_reload_unix: n(&reloads.last_reload_unix),
                last_reload_failure_unix: n(&reloads.last_failure_unix),
            },
            net: self.net_drift().map(|net| {
                let d = &net.drift.stats;
                let (remembered_findings, budgeted_containers) = net.drift.remembered();
                let k = net.sensor_stats();
                let kv = |f: fn(&driftwatch_sensor::NetSensorStats) -> &AtomicU64| {
                    k.map_or(0, |k| n(f(k)))
                };
                NetSnapshot {
                    observed: n(&d.observed),
                    findings: n(&d.findings),
                    findings_suppressed: n(&d.suppressed),
                    udp_scans: n(&d.udp_scans),
                    kernel_sent: kv(|k| &k.sent),
                    kernel_deduped: kv(|k| &k.deduped),
                    kernel_host_skipped: kv(|k| &k.host_skipped),
                    lost: kv(|k| &k.lost),
                    ring: k.map(|k| RingSnapshot::of(&k.ring)).unwrap_or_default(),
                    remembered_findings,
                    budgeted_containers,
                }
            }),
        }
    }
}
