//! `/metrics`: the [`DaemonSnapshot`] in Prometheus text. Every label value comes from a
//! closed enum below (bounded cardinality; output names are the configured outputs), and
//! every value from the snapshot `--stats-json` writes too.

use driftwatch_api::MetricsWriter;

use crate::snapshot::DaemonSnapshot;

/// The label values of one closed set, each with the snapshot value it labels.
trait LabelSet: Copy + 'static {
    const LABEL: &'static str;
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

macro_rules! label_set {
    ($ty:ident, $label:literal { $($variant:ident => $name:literal),+ $(,)? }) => {
        #[derive(Clone, Copy, Debug)]
        enum $ty { $($variant),+ }
        impl LabelSet for $ty {
            const LABEL: &'static str = $label;
            const ALL: &'static [Self] = &[$($ty::$variant),+];
            fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }
    };
}

label_set!(Sensor, "sensor" { Exec => "exec", File => "file", Network => "network" });
label_set!(WatchCap, "cap" { MaxDepth => "max_depth", MaxEntries => "max_entries" });
label_set!(EnforcementOutcome, "outcome" {
    Denied => "denied",
    HeldKilled => "held_killed",
    HeldReleased => "held_released",
    KilledLate => "killed_late",
    Failed => "failed",
    Allowlisted => "allowlisted",
    MapsRestored => "maps_restored",
});
label_set!(RingSensor, "sensor" { Exec => "exec", Network => "network" });
label_set!(RingWakeup, "reason" {
    Urgent => "urgent",
    Loss => "loss",
    Asleep => "asleep",
    Fill => "fill",
    Nudge => "nudge",
});
label_set!(RingDrain, "drain" { Timer => "timer", Wakeup => "wakeup" });
label_set!(Mode, "mode" { Detect => "detect", Prevent => "prevent" });
label_set!(ActionResult, "result" { Ok => "ok", Failed => "failed", Skipped => "skipped", DryRun => "dry_run" });
label_set!(ApiResult, "result" { Ok => "ok", Failed => "failed" });
label_set!(Guard, "guard" { Exec => "exec", Open => "open" });
label_set!(AnswerOutcome, "outcome" {
    Decided => "decided",
    TimeoutAllowed => "timeout_allowed",
    TimeoutDenied => "timeout_denied",
});

/// One sample per member of a label set: its label and its value.
fn by<L: LabelSet, V>(value: impl Fn(L) -> V) -> Vec<([(&'static str, &'static str); 1], V)> {
    L::ALL
        .iter()
        .map(|l| ([(L::LABEL, l.as_str())], value(*l)))
        .collect()
}

/// A counter family over one label set: a value for each of its members.
fn counter_by<L: LabelSet>(
    w: &mut MetricsWriter,
    name: &str,
    help: &str,
    value: impl Fn(L) -> u64,
) {
    let rows = by(value);
    let samples: Vec<(&[(&str, &str)], u64)> = rows.iter().map(|(l, v)| (&l[..], *v)).collect();
    w.counter(name, help, &samples);
}

fn gauge_by<L: LabelSet>(w: &mut MetricsWriter, name: &str, help: &str, value: impl Fn(L) -> f64) {
    let rows = by(value);
    let samples: Vec<(&[(&str, &str)], f64)> = rows.iter().map(|(l, v)| (&l[..], *v)).collect();
    w.gauge(name, help, &samples);
}

fn histogram(
    w: &mut MetricsWriter,
    name: &str,
    help: &str,
    h: &driftwatch_agent::HistogramSnapshot,
) {
    w.histogram(name, help, &h.buckets, false, h.sum, h.count);
}

/// Ring buffers: records drained on the timer or after a wakeup, and forced wakeups by
/// reason, per sensor (bpf/include/dw_ring.h).
fn ring_metrics(w: &mut MetricsWriter, a: &driftwatch_agent::AgentSnapshot) {
    let ring = |s: RingSensor| match s {
        RingSensor::Exec => Some(&a.exec_ring),
        RingSensor::Network => a.net.as_ref().map(|n| &n.ring),
    };
    let mut rows: Vec<([(&str, &str); 2], u64)> = Vec::new();
    for s in RingSensor::ALL {
        for d in RingDrain::ALL {
            let v = ring(*s).map_or(0, |r| match d {
                RingDrain::Timer => r.drained_on_timer,
                RingDrain::Wakeup => r.drained_on_wakeup,
            });
            rows.push((
                [
                    (RingSensor::LABEL, s.as_str()),
                    (RingDrain::LABEL, d.as_str()),
                ],
                v,
            ));
        }
    }
    let samples: Vec<(&[(&str, &str)], u64)> = rows.iter().map(|(l, v)| (&l[..], *v)).collect();
    w.counter(
        "driftwatch_ring_records_total",
        "Ring-buffer records read by the agent, by sensor and how (timer: drained while records flow, no wakeup; wakeup: the kernel woke the sleeping reader).",
        &samples,
    );
    let mut rows: Vec<([(&str, &str); 2], u64)> = Vec::new();
    for s in RingSensor::ALL {
        for r in RingWakeup::ALL {
            let v = ring(*s).map_or(0, |g| match r {
                RingWakeup::Urgent => g.forced_urgent,
                RingWakeup::Loss => g.forced_loss,
                RingWakeup::Asleep => g.forced_asleep,
                RingWakeup::Fill => g.forced_fill,
                RingWakeup::Nudge => g.nudged,
            });
            rows.push((
                [
                    (RingSensor::LABEL, s.as_str()),
                    (RingWakeup::LABEL, r.as_str()),
                ],
                v,
            ));
        }
    }
    let samples: Vec<(&[(&str, &str)], u64)> = rows.iter().map(|(l, v)| (&l[..], *v)).collect();
    w.counter(
        "driftwatch_ring_forced_wakeups_total",
        "Records the kernel wrote with a forced wakeup of the agent, by sensor and reason (urgent: a held or killed process; loss: after a lost record; asleep: the first record after idle; fill: the ring past 1/8 full; nudge: the agent fell asleep while a record was written).",
        &samples,
    );
}

/// Writes every metric of the snapshot.
pub fn render(snap: &DaemonSnapshot, w: &mut MetricsWriter) {
    let a = &snap.agent;
    let files = a.files.as_ref();
    let net = a.net.as_ref();
    let e = &a.enforcement;
    counter_by(
        w,
        "driftwatch_events_total",
        "Events taken in, by sensor (exec: execs in containers; file: file changes; network: connections and listeners).",
        |s| match s {
            Sensor::Exec => a.execs_processed,
            Sensor::File => files.map_or(0, |f| f.events),
            Sensor::Network => net.map_or(0, |n| n.observed),
        },
    );
    counter_by(
        w,
        "driftwatch_events_lost_total",
        "Events lost before the rules, by sensor (ring buffer full, fanotify queue overflow).",
        |s| match s {
            Sensor::Exec => a.lost,
            Sensor::File => files.map_or(0, |f| f.queue_overflows),
            Sensor::Network => net.map_or(0, |n| n.lost),
        },
    );
    counter_by(
        w,
        "driftwatch_file_watch_capped_total",
        "Directories of containers left unwatched by a walk cap (max_depth: nested too deep; max_entries: a scan stopped).",
        |c| match c {
            WatchCap::MaxDepth => files.map_or(0, |f| f.dirs_too_deep),
            WatchCap::MaxEntries => files.map_or(0, |f| f.scans_truncated),
        },
    );
    ring_metrics(w, a);
    w.counter1(
        "driftwatch_malformed_records_total",
        "Kernel records that could not be decoded (counted, skipped).",
        a.malformed,
    );
    w.counter1(
        "driftwatch_alerts_total",
        "Alerts raised since the agent started.",
        a.alerts,
    );
    w.counter1(
        "driftwatch_output_errors_total",
        "Alerts an output failed to write.",
        a.output_errors,
    );
    histogram(
        w,
        "driftwatch_alert_latency_seconds",
        "From the event (exec) in the kernel to its alert written.",
        &a.alert_latency_seconds,
    );
    histogram(
        w,
        "driftwatch_enforcement_decision_seconds",
        "Time the agent took to judge an exec permission request (prevent mode); a late judgement is not the answer (see driftwatch_enforcement_answer_seconds).",
        &e.decision_seconds,
    );
    histogram(
        w,
        "driftwatch_enforcement_answer_seconds",
        "From reading an exec permission request to answering it: what the exec waited (at most enforcement.answer_deadline, plus a wake-up).",
        &e.answers.answer_seconds,
    );
    let mut answers: Vec<([(&str, &str); 2], u64)> = Vec::new();
    for g in Guard::ALL {
        let d = match g {
            Guard::Exec => Some(&e.answers),
            Guard::Open => a.tamper.as_ref().map(|t| &t.open_answers),
        };
        for o in AnswerOutcome::ALL {
            let v = d.map_or(0, |d| match o {
                AnswerOutcome::Decided => d.answered.saturating_sub(d.timeouts),
                AnswerOutcome::TimeoutAllowed => d.timeouts_allowed,
                AnswerOutcome::TimeoutDenied => d.timeouts_denied,
            });
            answers.push((
                [
                    (Guard::LABEL, g.as_str()),
                    (AnswerOutcome::LABEL, o.as_str()),
                ],
                v,
            ));
        }
    }
    let rows: Vec<(&[(&str, &str)], u64)> = answers.iter().map(|(l, v)| (&l[..], *v)).collect();
    w.counter(
        "driftwatch_permission_answers_total",
        "fanotify permission requests answered, by guard (exec: prevent mode; open: protected files) and outcome (decided, or the default at the deadline).",
        &rows,
    );
    w.counter1(
        "driftwatch_alerts_throttled_total",
        "Alerts dropped because their container was over its alert rate (limits.container_alerts_per_second).",
        a.alerts_throttled,
    );
    counter_by(
        w,
        "driftwatch_enforcement_total",
        "What enforcement did, by outcome.",
        |o| match o {
            EnforcementOutcome::Denied => e.denied,
            EnforcementOutcome::HeldKilled => e.held_then_killed,
            EnforcementOutcome::HeldReleased => e.held_then_released,
            EnforcementOutcome::KilledLate => e.killed_after_start,
            EnforcementOutcome::Failed => e.failed,
            EnforcementOutcome::Allowlisted => e.allowlisted,
            EnforcementOutcome::MapsRestored => e.maps_restored,
        },
    );
    w.gauge1(
        "driftwatch_containers_watched",
        "Containers the agent knows and that have not been removed.",
        a.containers_live as f64,
    );
    w.gauge1(
        "driftwatch_containers_known",
        "Containers in the agent's registry, removed ones lingering for late events included (at most 60 s, at most 64).",
        a.containers_known as f64,
    );
    w.gauge1(
        "driftwatch_processes_known",
        "Container processes the agent remembers from their exec: live ones, and those exited in the last 10 s.",
        a.processes_known as f64,
    );
    gauge_by(
        w,
        "driftwatch_containers_by_mode",
        "Known containers by enforcement mode.",
        |m| match m {
            Mode::Detect => a.containers_by_mode.detect as f64,
            Mode::Prevent => a.containers_by_mode.prevent as f64,
        },
    );
    if let Some(r) = &snap.response {
        w.gauge1(
            "driftwatch_response_queue_depth",
            "Alerts waiting for the responder.",
            r.queue_depth as f64,
        );
        w.counter1(
            "driftwatch_response_dropped_total",
            "Alerts dropped without action because the response queue was full (or their container held its share of it).",
            r.dropped,
        );
        w.counter1(
            "driftwatch_response_dropped_container_share_total",
            "Alerts dropped without action because their container held its share of the response queue.",
            r.dropped_container_share,
        );
        w.counter1(
            "driftwatch_response_kill_only_runs_total",
            "Playbook runs of which only the kill steps ran (a duplicate, or the container over its budget of runs).",
            r.kill_only,
        );
        counter_by(
            w,
            "driftwatch_response_actions_total",
            "Playbook actions, by result.",
            |res| match res {
                ActionResult::Ok => r.actions_ok,
                ActionResult::Failed => r.actions_failed,
                ActionResult::Skipped => r.actions_skipped,
                ActionResult::DryRun => r.actions_dry_run,
            },
        );
    }
    let n = |x: &std::sync::atomic::AtomicU64| x.load(std::sync::atomic::Ordering::Relaxed);
    counter_by(
        w,
        "driftwatch_api_actions_total",
        "Manual actions requested through the API, by result.",
        |r| match r {
            ApiResult::Ok => n(&snap.api_actions.ok),
            ApiResult::Failed => n(&snap.api_actions.failed),
        },
    );
    w.gauge1(
        "process_resident_memory_bytes",
        "Resident memory of the agent.",
        snap.rss_kib as f64 * 1024.0,
    );
    // BPF map names are the object's own (`enforce`, `orphans`): a fixed set.
    let maps: Vec<[(&str, &str); 1]> = a.bpf_map_entries.keys().map(|m| [("map", *m)]).collect();
    let per_map = |value: &dyn Fn(&str) -> f64| {
        maps.iter()
            .map(|l| (&l[..], value(l[0].1)))
            .collect::<Vec<_>>()
    };
    w.gauge(
        "driftwatch_bpf_map_entries",
        "Entries of the BPF maps keyed per container, mount namespace or process, counted at the scrape (churn must not grow them).",
        &per_map(&|m| a.bpf_map_entries.get(m).copied().unwrap_or(0) as f64),
    );
    w.gauge(
        "driftwatch_bpf_map_capacity",
        "max_entries of those BPF maps (an LRU map evicts beyond it).",
        &per_map(&|m| f64::from(a.bpf_map_capacity.get(m).copied().unwrap_or(0))),
    );
    w.gauge1(
        "process_open_fds",
        "Open file descriptors of the agent.",
        snap.open_fds as f64,
    );
    w.gauge1(
        "driftwatch_uptime_seconds",
        "Seconds since the agent started.",
        snap.uptime_seconds,
    );
    outputs(snap, w);
    if let Some(s) = &snap.store {
        store(s, w);
    }
}

/// The outputs' queues and deliveries.
fn outputs(snap: &DaemonSnapshot, w: &mut MetricsWriter) {
    let labels: Vec<[(&str, &str); 2]> = snap
        .outputs
        .iter()
        .map(|o| [("output", o.name.as_str()), ("kind", o.kind)])
        .collect();
    type Field = fn(&crate::snapshot::OutputSnapshot) -> u64;
    let counters: [(&str, &str, Field); 5] = [
        (
            "driftwatch_output_queued_total",
            "Alerts accepted into an output's queue.",
            |o| o.queued,
        ),
        (
            "driftwatch_output_sent_total",
            "Alerts an output delivered.",
            |o| o.sent,
        ),
        (
            "driftwatch_output_dropped_total",
            "Alerts dropped because an output's queue was full.",
            |o| o.dropped,
        ),
        (
            "driftwatch_output_failed_total",
            "Alerts an output gave up on after its retries.",
            |o| o.failed,
        ),
        (
            "driftwatch_output_retries_total",
            "Delivery attempts after a failed one.",
            |o| o.retries,
        ),
    ];
    for (name, help, f) in counters {
        let rows: Vec<(&[(&str, &str)], u64)> = labels
            .iter()
            .zip(&snap.outputs)
            .map(|(l, o)| (&l[..], f(o)))
            .collect();
        w.counter(name, help, &rows);
    }
    let gauge = |f: fn(&crate::snapshot::OutputSnapshot) -> usize| {
        labels
            .iter()
            .zip(&snap.outputs)
            .map(|(l, o)| (&l[..], f(o) as f64))
            .collect::<Vec<_>>()
    };
    w.gauge(
        "driftwatch_output_queue_depth",
        "Alerts waiting in an output's queue.",
        &gauge(|o| o.depth),
    );
    w.gauge(
        "driftwatch_output_queue_capacity",
        "The size of an output's queue.",
        &gauge(|o| o.capacity),
    );
}

/// The alert store's writer.
fn store(s: &crate::snapshot::StoreSnapshot, w: &mut MetricsWriter) {
    w.counter1(
        "driftwatch_store_written_total",
        "Alerts written to the store.",
        s.written,
    );
    w.counter1(
        "driftwatch_store_dropped_total",
        "Alerts not stored because the store's queue was full.",
        s.dropped,
    );
    w.counter1(
        "driftwatch_store_write_errors_total",
        "Failed writes (disk full, I/O errors).",
        s.write_errors,
    );
    w.counter1(
        "driftwatch_store_retention_deleted_total",
        "Alerts deleted by the retention limits.",
        s.retention_deleted,
    );
    w.gauge1(
        "driftwatch_store_queue_depth",
        "Alerts waiting to be written.",
        s.queue_depth as f64,
    );
    w.gauge1(
        "driftwatch_store_bytes",
        "Size of the store's database file.",
        s.db_bytes as f64,
    );
    w.gauge1(
        "driftwatch_store_degraded",
        "1 while writes fail.",
        if s.degraded.is_some() { 1.0 } else { 0.0 },
    );
}
