//! `--stats-json`: the daemon's counters at exit as one JSON document (events, losses,
//! alert latency, enforcement, tamper protection, memory; the outputs' and the store's
//! after their final flush).

use std::sync::atomic::Ordering;

use driftwatch_agent::Agent;

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

/// Everything but the outputs and the store, read while the agent still runs.
pub fn before_stop(agent: &Agent) -> serde_json::Value {
    let s = agent.stats();
    let k = agent.sensor_stats().cloned();
    let lost = agent.lost();
    let (peak_kib, rss_kib) = memory_kib();
    let enforcement_json = {
        let e = agent.enforce_stats();
        serde_json::json!({
            "exec_requests": e.requests.load(Ordering::Relaxed),
            "decision_p50_us": e.decision_quantile_us(0.5),
            "decision_p99_us": e.decision_quantile_us(0.99),
            "denied": e.denied.load(Ordering::Relaxed),
            "denials_collapsed": e.denials_collapsed.load(Ordering::Relaxed),
            "held_then_killed": e.hold_killed.load(Ordering::Relaxed),
            "held_then_released": e.hold_released.load(Ordering::Relaxed),
            "killed_after_start": e.killed_late.load(Ordering::Relaxed),
            "failed": e.failed.load(Ordering::Relaxed),
            "allowlisted": e.allowlisted.load(Ordering::Relaxed),
            "orphans_killed": e.orphans_killed.load(Ordering::Relaxed),
            "prevent_containers": e.prevent_containers.load(Ordering::Relaxed),
            "marked_mounts": e.marked_mounts.load(Ordering::Relaxed),
            "mark_errors": e.mark_errors.load(Ordering::Relaxed),
            "maps_restored": e.maps_restored.load(Ordering::Relaxed),
            "answers": e.answers.to_json(agent.answer_deadline()),
            "kernel_killed": k.as_ref().map_or(0, |k| k.killed.load(Ordering::Relaxed)),
            "kernel_held": k.as_ref().map_or(0, |k| k.held.load(Ordering::Relaxed)),
            "kernel_orphaned": k.as_ref().map_or(0, |k| k.orphaned.load(Ordering::Relaxed)),
        })
    };
    serde_json::json!({
        "execs_processed": s.processed.load(Ordering::Relaxed),
        "not_container": s.not_container.load(Ordering::Relaxed),
        "alerts": s.alerts.load(Ordering::Relaxed),
        "alerts_suppressed": s.alerts_suppressed.load(Ordering::Relaxed),
        "alerts_throttled": s.alerts_throttled.load(Ordering::Relaxed),
        "loss_alerts": s.loss_alerts.load(Ordering::Relaxed),
        "output_errors": s.output_errors.load(Ordering::Relaxed),
        "lost": lost,
        "kernel_sent": k.as_ref().map_or(0, |k| k.sent.load(Ordering::Relaxed)),
        "host_execs_skipped_in_kernel": k.as_ref().map_or(0, |k| k.host_skipped.load(Ordering::Relaxed)),
        "malformed": k.as_ref().map_or(0, |k| k.malformed.load(Ordering::Relaxed)),
        "alert_latency_p50_us": s.latency_quantile_us(0.5),
        "alert_latency_p99_us": s.latency_quantile_us(0.99),
        "alert_latency_samples": s.alert_latency_us.lock().map(|v| v.len()).unwrap_or(0),
        "containers_known": agent.registry().len(),
        // Exec'd container processes remembered (live ones, and exits of the last seconds).
        "processes_known": agent.procs().lock().map_or(0, |p| p.len()),
        "containers_live": agent.registry().live_entries().len(),
        "engine_disconnects": agent.registry().stats.engine_disconnects.load(Ordering::Relaxed),
        "open_fds": std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
        "bpf_map_entries": agent
            .bpf_map_entries()
            .iter()
            .map(|m| (m.name.to_string(), serde_json::json!(m.entries)))
            .collect::<serde_json::Map<_, _>>(),
        "files": agent.file_stats().map(|f| serde_json::json!({
            "notices": f.notices.load(Ordering::Relaxed),
            "events": f.events.load(Ordering::Relaxed),
            "dirs_watched": f.dirs_watched.load(Ordering::Relaxed),
            "dirs_skipped": f.dirs_skipped.load(Ordering::Relaxed),
            "dirs_skipped_container_share": f.dirs_skipped_container_share.load(Ordering::Relaxed),
            "budget_alerts": f.budget_alerts.load(Ordering::Relaxed),
            "dirs_too_deep": f.dirs_too_deep.load(Ordering::Relaxed),
            "scans_truncated": f.scans_truncated.load(Ordering::Relaxed),
            "queue_overflows": f.overflows.load(Ordering::Relaxed),
            "unresolved": f.unresolved.load(Ordering::Relaxed),
        })),
        "enforcement": enforcement_json,
        "tamper": agent.tamper().map(|t| {
            let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            serde_json::json!({
                "signals": n(&t.stats.signals),
                "signals_from_containers": n(&t.stats.signals_from_containers),
                "stops_ignored": n(&t.stats.stops_ignored),
                "stops_of_unknown_origin_ignored": n(&t.stats.unknown_origins),
                "open_requests": n(&t.stats.open_requests),
                "opens_denied": n(&t.stats.opens_denied),
                "traced": n(&t.stats.traced),
                "integrity_failures": n(&t.stats.integrity_failures),
                "open_answers": t.stats.answers.to_json(agent.answer_deadline()),
            })
        }),
        "config": agent.reload_stats().to_json(),
        "rss_kib": rss_kib,
        "peak_rss_kib": peak_kib,
        "net": agent.net_drift().map(|n| {
            let d = &n.drift.stats;
            let (remembered_findings, budgeted_containers) = n.drift.remembered();
            let k = n.sensor_stats();
            let kv = |f: fn(&driftwatch_sensor::NetSensorStats) -> &std::sync::atomic::AtomicU64| {
                k.map_or(0, |k| f(k).load(Ordering::Relaxed))
            };
            serde_json::json!({
                "observed": d.observed.load(Ordering::Relaxed),
                "findings": d.findings.load(Ordering::Relaxed),
                "findings_suppressed": d.suppressed.load(Ordering::Relaxed),
                "udp_scans": d.udp_scans.load(Ordering::Relaxed),
                "kernel_sent": kv(|k| &k.sent),
                "kernel_deduped": kv(|k| &k.deduped),
                "recent_swept": kv(|k| &k.swept),
                "kernel_host_skipped": kv(|k| &k.host_skipped),
                "lost": kv(|k| &k.lost),
                // Per-container state: back to the live containers' share after removals.
                "remembered_findings": remembered_findings,
                "budgeted_containers": budgeted_containers,
            })
        }),
    })
}

/// The outputs' final counts (queues flushed) and the store's, after the shutdown.
pub fn after_stop(
    stats_json: &mut serde_json::Value,
    outputs: &driftwatch_outputs::Outputs,
    store: Option<&driftwatch_store::Store>,
) {
    stats_json["outputs"] = outputs
        .stats()
        .iter()
        .map(|o| {
            serde_json::json!({
                "name": o.name,
                "kind": o.kind.as_str(),
                "queued": o.queued,
                "sent": o.sent,
                "dropped": o.dropped,
                "failed": o.failed,
                "retries": o.retries,
            })
        })
        .collect();
    if let Some(s) = store {
        let snap = s.snapshot();
        stats_json["store"] = serde_json::json!({
            "written": snap.written,
            "dropped": snap.dropped,
            "write_errors": snap.write_errors,
            "queue_depth": snap.queue_depth,
            "degraded": snap.degraded,
        });
    }
}
