//! The end of every pipeline: an event is recorded (`--record`), run through the rules, and
//! each alert it raises goes to every sink. Shared by all sensors (exec, file, network, ...).

use std::collections::HashMap;
use std::fs::File;
use std::io::{LineWriter, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftwatch_model::{Alert, Event};
use driftwatch_rules::{RuleIdx, RuleSet};

use driftwatch_outputs::Outputs;

use crate::alert_names::RawNames;
use crate::fairness::{AlertRate, BUDGET_RULE, Limits, budget_alert, container_fields};
use crate::outputs::AlertSink;
use crate::stats::AgentStats;

pub struct Emitter {
    rules: RuleSet,
    /// Counts rule-set swaps, so that what is derived from the rules (the file sensor's
    /// marks) can tell it is stale.
    rules_generation: u64,
    /// The configured outputs: queued without blocking, delivered on their own threads.
    outputs: Option<Arc<Outputs>>,
    sinks: Vec<Box<dyn AlertSink>>,
    record: Option<LineWriter<File>>,
    stats: Arc<AgentStats>,
    hostname: String,
    matches: Vec<RuleIdx>,
    dedup: Dedup,
    /// Alerts per container ([`crate::fairness`]): one container's storm does not push
    /// everyone's alerts out of the outputs' and the store's queues.
    rates: AlertRate,
    /// The last `evt.num` given: every sensor's events pass here, under one lock, so the
    /// numbers are unique and in the order the rules see the events.
    last_num: u64,
    /// Fills `drift.layer`/`drift.package`: for findings before the rules see them (in
    /// [`emit`], outside the lock), for an exec of an image file only once an alert about it
    /// is written.
    provenance: Option<Arc<crate::finding_provenance::ProvenanceFiller>>,
}

/// Alert deduplication: one alert per (rule, container, executable, file) per window; the
/// repeats are counted and the first alert of the next window carries their number
/// (`driftwatch.repeats`). A window of zero turns it off.
#[derive(Default)]
struct Dedup {
    window: Duration,
    /// Key → (window start, alerts suppressed in it).
    seen: HashMap<DedupKey, (Instant, u64)>,
}

#[derive(Hash, PartialEq, Eq)]
struct DedupKey {
    /// The rule's index in the current rule set.
    rule: usize,
    container: String,
    exe: String,
    file: String,
}

/// Keys kept at most; beyond it, expired windows are dropped (and all of them if that is
/// not enough: an alert too many is better than unbounded memory).
const DEDUP_MAX_KEYS: usize = 16_384;

impl Dedup {
    /// `None`: suppress this alert. `Some(n)`: send it, `n` repeats were suppressed in the
    /// key's previous window.
    fn admit(&mut self, key: DedupKey, now: Instant) -> Option<u64> {
        if self.window.is_zero() {
            return Some(0);
        }
        if let Some((start, n)) = self.seen.get_mut(&key) {
            if now.duration_since(*start) < self.window {
                *n += 1;
                return None;
            }
            let repeats = *n;
            *start = now;
            *n = 0;
            return Some(repeats);
        }
        if self.seen.len() >= DEDUP_MAX_KEYS {
            let w = self.window;
            self.seen.retain(|_, (t, _)| now.duration_since(*t) < w);
            if self.seen.len() >= DEDUP_MAX_KEYS {
                self.seen.clear();
            }
        }
        self.seen.insert(key, (now, 0));
        Some(0)
    }
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
            rules_generation: 0,
            outputs,
            sinks,
            record,
            stats,
            hostname,
            matches: Vec::new(),
            dedup: Dedup::default(),
            rates: AlertRate::new(&Limits::default()),
            last_num: 0,
            provenance: None,
        }
    }

    /// Where reported files came from (see [`crate::finding_provenance`]).
    pub fn set_provenance(&mut self, filler: Arc<crate::finding_provenance::ProvenanceFiller>) {
        self.provenance = Some(filler);
    }

    /// The per-container alert rate (`limits.container_alerts_per_second`, `_burst`).
    pub fn set_limits(&mut self, limits: &Limits) {
        self.rates = AlertRate::new(limits);
    }

    /// Sends the "budget exceeded" alerts due now (also called every 2 s by
    /// [`spawn_budget_reporter`], for drops after which nothing else was emitted).
    pub fn report_throttled(&mut self, now: Instant) {
        if self.rates.unlimited() {
            return;
        }
        let (rate, burst) = self.rates.budget();
        for (fields, dropped, rule) in self.rates.due_reports(now) {
            let alert = budget_alert(
                &self.hostname,
                &fields,
                "alert rate",
                format!("{rate} alerts/s, bursts of {burst}"),
                dropped,
                format!("alerts dropped, e.g. \"{rule}\""),
            );
            self.stats.alerts.fetch_add(1, Ordering::Relaxed);
            self.send(&alert);
        }
    }

    /// Deduplicates alerts per (rule, container, executable, file) within `window`
    /// (zero: every alert is sent).
    /// The host name alerts carry.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub fn set_dedup_window(&mut self, window: Duration) {
        self.dedup.window = window;
        self.dedup.seen.clear();
    }

    /// Sends an alert the agent raises about itself (events lost, ...) to every output and
    /// sink, past the rules and deduplication.
    pub fn emit_alert(&mut self, alert: &Alert) {
        let now = Instant::now();
        // About a container (a tamper attempt, ...): counted against its rate, except the
        // budget alerts themselves.
        if alert.rule != BUDGET_RULE
            && let Some(id) = alert
                .output_fields
                .get("container.id")
                .and_then(|v| v.as_str())
                .filter(|id| !id.is_empty())
            && !self.rates.admit(id, &alert.rule, now, || {
                let fields = alert
                    .output_fields
                    .iter()
                    .filter(|(k, _)| k.starts_with("container."))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (alert.rule.clone(), fields)
            })
        {
            self.stats.alerts_throttled.fetch_add(1, Ordering::Relaxed);
            self.report_throttled(now);
            return;
        }
        self.stats.alerts.fetch_add(1, Ordering::Relaxed);
        self.send(alert);
        self.report_throttled(now);
    }

    fn send(&mut self, alert: &Alert) {
        if let Some(o) = &self.outputs {
            o.emit(alert);
        }
        for sink in &mut self.sinks {
            if let Err(e) = sink.emit(alert) {
                self.stats.output_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("writing an alert to {}: {e}", sink.name());
            }
        }
    }

    /// The loaded rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Whether every event is recorded (`--record`): a recording is replayed against other
    /// rules, so the sensors must not leave out what the loaded rules cannot match.
    pub fn records(&self) -> bool {
        self.record.is_some()
    }

    /// How many times the rules were replaced ([`Emitter::set_rules`]).
    pub fn rules_generation(&self) -> u64 {
        self.rules_generation
    }

    pub fn shared(self) -> SharedEmitter {
        Arc::new(Mutex::new(self))
    }

    /// Replaces the rule set (a reload). The caller compiled it first, outside the lock: the
    /// swap happens between two events, so none is evaluated against half a rule set.
    pub fn set_rules(&mut self, rules: RuleSet) {
        self.rules = rules;
        self.rules_generation += 1;
        self.matches.clear();
        // Rule indices change with the rule set.
        self.dedup.seen.clear();
    }

    /// Adds a sink after the others (e.g. response playbooks configured by a reload).
    pub fn add_sink(&mut self, sink: Box<dyn AlertSink>) {
        self.sinks.push(sink);
    }

    /// Records the event, evaluates the rules and writes the alerts. Returns how many fired.
    pub fn emit(&mut self, event: &Event) -> usize {
        self.emit_named(event, None)
    }

    /// [`Emitter::emit`] for an event whose file names are not all UTF-8: its alerts also
    /// carry their bytes (`fd.name_b64`, ...).
    pub fn emit_named(&mut self, event: &Event, names: Option<&RawNames>) -> usize {
        // Numbered here, where events enter the rules (Falco's `evt.num`, from 1); an event
        // that already has a number (replayed by `rules test`) keeps it.
        let numbered;
        let event = if event.num == 0 {
            self.last_num += 1;
            numbered = Event {
                num: self.last_num,
                ..event.clone()
            };
            &numbered
        } else {
            event
        };
        // An exec of an image file has no finding: its layer and package are looked up
        // once, for the alerts it raises.
        let mut image_exec: Option<Option<Event>> = None;
        if let Some(r) = self.record.as_mut()
            && let Ok(line) = serde_json::to_string(event)
        {
            let _ = writeln!(r, "{line}");
        }
        self.rules.matches(event, &mut self.matches);
        let now = Instant::now();
        let matches = std::mem::take(&mut self.matches);
        for &idx in &matches {
            let key = DedupKey {
                rule: idx.index(),
                container: event
                    .container
                    .as_ref()
                    .map(|c| c.id.as_str().to_string())
                    .unwrap_or_default(),
                exe: event.process.exepath.clone(),
                file: event
                    .file
                    .as_ref()
                    .map(|f| f.path.clone())
                    .unwrap_or_default(),
            };
            let Some(repeats) = self.dedup.admit(key, now) else {
                self.stats.alerts_suppressed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if let Some(c) = &event.container
                && !self
                    .rates
                    .admit(c.id.as_str(), &self.rules.rule(idx).name, now, || {
                        (self.rules.rule(idx).name.clone(), container_fields(c))
                    })
            {
                self.stats.alerts_throttled.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let shown = match &self.provenance {
                Some(p) if event.drift.is_none() => image_exec
                    .get_or_insert_with(|| {
                        p.image_exec(event).map(|d| Event {
                            drift: Some(d),
                            ..event.clone()
                        })
                    })
                    .as_ref()
                    .unwrap_or(event),
                _ => event,
            };
            let mut alert = self.rules.alert(idx, shown, &self.hostname);
            if let Some(n) = names {
                n.annotate(&mut alert);
            }
            if !self.dedup.window.is_zero() {
                alert
                    .output_fields
                    .insert("driftwatch.repeats".into(), repeats.into());
            }
            self.stats.alerts.fetch_add(1, Ordering::Relaxed);
            self.send(&alert);
            let latency_us = now_wall_ns().saturating_sub(event.time_ns) / 1000;
            self.stats.alert_latency.observe_us(latency_us);
            crate::histogram::record_sample_us(
                &self.stats.alert_latency_us,
                latency_us.min(u64::from(u32::MAX)) as u32,
            );
        }
        let n = matches.len();
        self.matches = matches;
        self.report_throttled(now);
        n
    }
}

/// Emits through a shared emitter; a poisoned lock (a panic elsewhere) does not stop alerts.
/// A finding's provenance is filled first, outside the lock: building an image's package
/// index or reading a file for its package digest does not hold up other sensors' events.
pub fn emit(shared: &SharedEmitter, event: &Event) -> usize {
    emit_named(shared, event, None)
}

fn lock(shared: &SharedEmitter) -> std::sync::MutexGuard<'_, Emitter> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`Emitter::emit_named`] through a shared emitter, the provenance filled as for [`emit`].
pub fn emit_named(shared: &SharedEmitter, event: &Event, names: Option<&RawNames>) -> usize {
    let filler = lock(shared).provenance.clone();
    let filled;
    let event = match filler {
        Some(p)
            if event
                .drift
                .as_ref()
                .is_some_and(|d| d.provenance.is_empty()) =>
        {
            let mut e = event.clone();
            p.fill(&mut e);
            filled = e;
            &filled
        }
        _ => event,
    };
    lock(shared).emit_named(event, names)
}

/// [`emit`] for an event the caller gives away: its provenance is filled and its number set
/// in place, where [`emit`] copies the event (argv, environment, ancestors) to do either.
pub fn emit_owned(shared: &SharedEmitter, mut event: Event) -> usize {
    let filler = lock(shared).provenance.clone();
    if let Some(p) = filler
        && event
            .drift
            .as_ref()
            .is_some_and(|d| d.provenance.is_empty())
    {
        p.fill(&mut event);
    }
    let mut e = lock(shared);
    if event.num == 0 {
        e.last_num += 1;
        event.num = e.last_num;
    }
    e.emit_named(&event, None)
}

/// Reports throttled containers every 2 s until the emitter is dropped.
pub fn spawn_budget_reporter(emitter: std::sync::Weak<Mutex<Emitter>>) {
    let spawned = std::thread::Builder::new()
        .name("dw-budget-report".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(2));
                let Some(e) = emitter.upgrade() else { return };
                e.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .report_throttled(Instant::now());
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(
            "starting the budget reporter: {e}; throttling is reported with the next alert"
        );
    }
}

/// The host name alerts carry, through a shared emitter.
pub fn hostname(shared: &SharedEmitter) -> String {
    shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .hostname()
        .to_string()
}

/// [`Emitter::emit_alert`] through a shared emitter.
pub fn emit_alert(shared: &SharedEmitter, alert: &Alert) {
    match shared.lock() {
        Ok(mut e) => e.emit_alert(alert),
        Err(poisoned) => poisoned.into_inner().emit_alert(alert),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(exe: &str) -> DedupKey {
        DedupKey {
            rule: 0,
            container: "c".into(),
            exe: exe.into(),
            file: String::new(),
        }
    }

    #[test]
    fn one_alert_per_window_and_the_next_carries_the_repeats() {
        let mut d = Dedup {
            window: Duration::from_secs(10),
            ..Dedup::default()
        };
        let t0 = Instant::now();
        assert_eq!(d.admit(key("/a"), t0), Some(0));
        for i in 1..=5 {
            assert_eq!(d.admit(key("/a"), t0 + Duration::from_secs(i)), None);
        }
        // Another executable is its own key.
        assert_eq!(d.admit(key("/b"), t0), Some(0));
        assert_eq!(d.admit(key("/a"), t0 + Duration::from_secs(11)), Some(5));
        assert_eq!(d.admit(key("/a"), t0 + Duration::from_secs(22)), Some(0));
    }

    /// `evt.num` counts from 1 in the order events come in, whichever sensor sent them; a
    /// number already given (a replayed recording) is kept.
    #[test]
    #[expect(
        clippy::disallowed_methods,
        reason = "the test reads its own recording"
    )]
    fn events_are_numbered_from_one_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let record = LineWriter::new(File::create(&path).unwrap());
        let mut e = Emitter::new(
            RuleSet::load_with_defaults(&[]).unwrap().ruleset,
            None,
            Vec::new(),
            Some(record),
            Arc::new(AgentStats::default()),
            "h".into(),
        );
        let event = |num| Event {
            num,
            time_ns: 1,
            kind: driftwatch_model::EventKind::Open,
            process: driftwatch_model::Process::default(),
            container: None,
            file: None,
            net: None,
            drift: None,
        };
        for num in [0, 0, 77, 0] {
            e.emit(&event(num));
        }
        drop(e);
        let nums: Vec<u64> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().num)
            .collect();
        assert_eq!(nums, [1, 2, 77, 3]);
    }

    #[test]
    fn a_zero_window_sends_everything() {
        let mut d = Dedup::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(d.admit(key("/a"), t0), Some(0));
        }
        assert!(d.seen.is_empty());
    }
}
