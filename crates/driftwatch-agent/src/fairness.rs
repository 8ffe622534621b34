//! Per-container budgets, so that one noisy container cannot starve the others: a share of
//! the file-drift watch limit ([`WatchBudget`]) and an alert rate ([`AlertRate`]). A
//! container over its budget gets a "Driftwatch budget exceeded" alert naming it, the budget
//! and what was dropped or left unwatched (at most one per container and budget every
//! [`REPORT_INTERVAL`]); those alerts are not themselves counted against the budget.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use driftwatch_model::{Alert, ContainerId, Priority};
use serde_json::json;

/// The rule name of the budget alerts.
pub const BUDGET_RULE: &str = "Driftwatch budget exceeded";

/// At most one budget alert per container and budget per this interval.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// The per-container limits (`limits.*` in the configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Directories marked for file drift over all containers.
    pub watched_dirs: u64,
    /// The share (percent) of `watched_dirs` one container may hold.
    pub watched_dirs_container_percent: u32,
    /// Alerts per second per container (0: unlimited).
    pub container_alerts_per_second: u32,
    /// Alerts one container may raise at once above the rate.
    pub container_alert_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        let c = driftwatch_config::LimitsConfig::default();
        Limits::from_config(&c)
    }
}

impl Limits {
    pub fn from_config(c: &driftwatch_config::LimitsConfig) -> Limits {
        Limits {
            watched_dirs: c.watched_dirs as u64,
            watched_dirs_container_percent: c.watched_dirs_container_percent.clamp(1, 100),
            container_alerts_per_second: c.container_alerts_per_second,
            container_alert_burst: c.container_alert_burst,
        }
    }

    /// Directories one container may have watched.
    pub fn watched_dirs_per_container(&self) -> u64 {
        (self.watched_dirs * u64::from(self.watched_dirs_container_percent.clamp(1, 100)) / 100)
            .max(1)
    }
}

/// Why a directory was not watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// The container holds its whole share.
    Container,
    /// Every container together hold the global limit.
    Global,
}

/// A container's throttling, as its alert reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub id: ContainerId,
    /// What was refused since the last report (directories, alerts).
    pub refused: u64,
    /// An example of what was refused (a directory's path, an alert's rule).
    pub example: String,
    pub reason: Exhausted,
}

/// The watch limit of file drift, shared fairly: each container may hold at most its share
/// of the global limit. Kept apart from the walk that marks directories, which asks
/// [`WatchBudget::take`] before each mark.
#[derive(Debug)]
pub struct WatchBudget {
    total: u64,
    per_container: u64,
    used_total: u64,
    used: HashMap<ContainerId, u64>,
    /// Directories refused per container since its last report, an example, when reported.
    refused: HashMap<ContainerId, (u64, String, Exhausted, Option<Instant>)>,
}

impl WatchBudget {
    pub fn new(limits: &Limits) -> WatchBudget {
        WatchBudget {
            total: limits.watched_dirs,
            per_container: limits.watched_dirs_per_container(),
            used_total: 0,
            used: HashMap::new(),
            refused: HashMap::new(),
        }
    }

    /// The directories one container may hold.
    pub fn per_container(&self) -> u64 {
        self.per_container
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Directories watched now, over all containers.
    pub fn used_total(&self) -> u64 {
        self.used_total
    }

    /// One more directory for `id`: taken, or refused (and remembered for the report, with
    /// `what()` as its example when it is the first refused since the last report).
    pub fn take(
        &mut self,
        id: &ContainerId,
        what: impl FnOnce() -> String,
    ) -> Result<(), Exhausted> {
        let mine = self.used.get(id).copied().unwrap_or(0);
        let refuse = if mine >= self.per_container {
            Some(Exhausted::Container)
        } else if self.used_total >= self.total {
            Some(Exhausted::Global)
        } else {
            None
        };
        if let Some(why) = refuse {
            let r = self
                .refused
                .entry(id.clone())
                .or_insert((0, String::new(), why, None));
            if r.0 == 0 {
                r.1 = what();
                r.2 = why;
            }
            r.0 += 1;
            return Err(why);
        }
        *self.used.entry(id.clone()).or_default() += 1;
        self.used_total += 1;
        Ok(())
    }

    /// One directory taken for `id` was not watched after all (the mark failed).
    pub fn give_back(&mut self, id: &ContainerId) {
        if let Some(n) = self.used.get_mut(id)
            && *n > 0
        {
            *n -= 1;
            self.used_total = self.used_total.saturating_sub(1);
        }
    }

    /// A container is gone: its directories are given back. Returns how many.
    pub fn release(&mut self, id: &ContainerId) -> u64 {
        self.refused.remove(id);
        let n = self.used.remove(id).unwrap_or(0);
        self.used_total = self.used_total.saturating_sub(n);
        n
    }

    /// The containers refused something since their last report, at most one report per
    /// container per [`REPORT_INTERVAL`].
    pub fn due_reports(&mut self, now: Instant) -> Vec<Throttled> {
        let mut out = Vec::new();
        for (id, (n, example, why, last)) in &mut self.refused {
            if *n == 0 || last.is_some_and(|t| now.duration_since(t) < REPORT_INTERVAL) {
                continue;
            }
            out.push(Throttled {
                id: id.clone(),
                refused: *n,
                example: std::mem::take(example),
                reason: *why,
            });
            *n = 0;
            *last = Some(now);
        }
        out
    }
}

/// Alerts per container: a token bucket each (`rate` a second, up to `burst` at once).
#[derive(Debug)]
pub struct AlertRate {
    rate: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
    last_sweep: Option<Instant>,
    /// A drop made some container due a report now (its first, or its first after the
    /// interval): the next sweep does not wait for the second to pass.
    report_now: bool,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Alerts dropped since the last report, the first one's rule, the container's fields.
    dropped: u64,
    example: String,
    fields: BTreeMap<String, serde_json::Value>,
    reported: Option<Instant>,
    /// The rules this container has raised at least once. The first alert of a rule passes
    /// even over the rate: a storm of one kind of alert cannot hide another kind of drift.
    rules_seen: HashSet<String>,
}

/// Rules remembered per container for [`Bucket::rules_seen`]; past it, only the rate admits.
const MAX_RULES_SEEN: usize = 256;

/// Buckets kept at most; idle (full) ones go first when over.
const MAX_BUCKETS: usize = 16_384;

impl AlertRate {
    pub fn new(limits: &Limits) -> AlertRate {
        AlertRate {
            rate: f64::from(limits.container_alerts_per_second),
            burst: f64::from(limits.container_alert_burst.max(1)),
            buckets: HashMap::new(),
            last_sweep: None,
            report_now: false,
        }
    }

    pub fn unlimited(&self) -> bool {
        self.rate <= 0.0
    }

    /// The per-second rate and the burst, for messages.
    pub fn budget(&self) -> (f64, f64) {
        (self.rate, self.burst)
    }

    /// May container `id` send one more alert now? `dropped` describes the alert (its rule,
    /// the container's fields) when it is the first dropped since the last report.
    pub fn admit(
        &mut self,
        id: &str,
        rule: &str,
        now: Instant,
        dropped: impl FnOnce() -> (String, BTreeMap<String, serde_json::Value>),
    ) -> bool {
        if self.unlimited() {
            return true;
        }
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(id) {
            let (rate, burst) = (self.rate, self.burst);
            self.buckets.retain(|_, b| {
                b.dropped > 0 || b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst
            });
            if self.buckets.len() >= MAX_BUCKETS {
                // Every container is busy: forget the bookkeeping rather than grow.
                self.buckets.clear();
            }
        }
        let b = self.buckets.entry(id.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            dropped: 0,
            example: String::new(),
            fields: BTreeMap::new(),
            reported: None,
            rules_seen: HashSet::new(),
        });
        b.tokens =
            (b.tokens + now.duration_since(b.last).as_secs_f64() * self.rate).min(self.burst);
        b.last = now;
        let first_of_rule = !b.rules_seen.contains(rule) && b.rules_seen.len() < MAX_RULES_SEEN;
        if first_of_rule {
            b.rules_seen.insert(rule.to_string());
        }
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return true;
        }
        if first_of_rule {
            return true;
        }
        if b.dropped == 0 {
            (b.example, b.fields) = dropped();
            if b.reported
                .is_none_or(|t| now.duration_since(t) >= REPORT_INTERVAL)
            {
                self.report_now = true;
            }
        }
        b.dropped += 1;
        false
    }

    /// Containers that dropped alerts and are due a report (one per container per
    /// [`REPORT_INTERVAL`]): (the container's fields, alerts dropped since the last report,
    /// the first one's rule). Checked at most once a second, unless a container has just
    /// become due.
    pub fn due_reports(
        &mut self,
        now: Instant,
    ) -> Vec<(BTreeMap<String, serde_json::Value>, u64, String)> {
        if !self.report_now
            && self
                .last_sweep
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return Vec::new();
        }
        self.last_sweep = Some(now);
        self.report_now = false;
        let mut out = Vec::new();
        for b in self.buckets.values_mut() {
            if b.dropped == 0
                || b.reported
                    .is_some_and(|t| now.duration_since(t) < REPORT_INTERVAL)
            {
                continue;
            }
            out.push((
                std::mem::take(&mut b.fields),
                b.dropped,
                std::mem::take(&mut b.example),
            ));
            b.dropped = 0;
            b.reported = Some(now);
        }
        out
    }
}

/// The alert telling that a container is throttled: which container, which budget, what
/// was dropped or left unwatched.
pub fn budget_alert(
    hostname: &str,
    container: &BTreeMap<String, serde_json::Value>,
    budget: &str,
    limit: String,
    refused: u64,
    what: String,
) -> Alert {
    let name = container
        .get("container.name")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .or_else(|| container.get("container.id").and_then(|v| v.as_str()))
        .unwrap_or("?")
        .to_string();
    let mut fields = container.clone();
    fields.insert("driftwatch.budget".into(), json!(budget));
    fields.insert("driftwatch.limit".into(), json!(limit));
    fields.insert("driftwatch.refused".into(), json!(refused));
    fields.insert("driftwatch.refused_example".into(), json!(what));
    let output = format!(
        "Container {name} is over its {budget} budget ({limit}): {refused} {what}; it is being throttled, other containers are not"
    );
    Alert::internal(
        hostname,
        BUDGET_RULE,
        Priority::Warning,
        output,
        vec!["driftwatch".into(), "budget".into()],
        fields,
    )
}

/// `container.id`, `container.name`, `container.image` of a container's metadata.
pub fn container_fields(
    meta: &driftwatch_model::ContainerMeta,
) -> BTreeMap<String, serde_json::Value> {
    let mut f = BTreeMap::new();
    f.insert("container.id".into(), json!(meta.id.short()));
    f.insert("container.name".into(), json!(meta.name));
    f.insert("container.image".into(), json!(meta.image.display_name()));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> ContainerId {
        ContainerId::new(&c.to_string().repeat(64)).unwrap()
    }

    fn limits(dirs: u64, percent: u32, rate: u32, burst: u32) -> Limits {
        Limits {
            watched_dirs: dirs,
            watched_dirs_container_percent: percent,
            container_alerts_per_second: rate,
            container_alert_burst: burst,
        }
    }

    #[test]
    fn one_container_cannot_take_more_than_its_share_of_watches() {
        let mut b = WatchBudget::new(&limits(100, 25, 0, 1));
        assert_eq!(b.per_container(), 25);
        for i in 0..25 {
            b.take(&id('a'), || format!("/d{i}")).unwrap();
        }
        assert_eq!(
            b.take(&id('a'), || "/noisy/26".into()),
            Err(Exhausted::Container)
        );
        assert_eq!(
            b.take(&id('a'), || "/noisy/27".into()),
            Err(Exhausted::Container)
        );
        // The neighbour still gets its share.
        for i in 0..25 {
            b.take(&id('b'), || format!("/n{i}")).unwrap();
        }
        assert_eq!(b.used_total(), 50);
        let now = Instant::now();
        let r = b.due_reports(now);
        assert_eq!(
            r,
            vec![Throttled {
                id: id('a'),
                refused: 2,
                example: "/noisy/26".into(),
                reason: Exhausted::Container
            }]
        );
        // Rate-limited: a further refusal is reported only after the interval.
        let _ = b.take(&id('a'), || "/noisy/28".into());
        assert!(b.due_reports(now + Duration::from_secs(1)).is_empty());
        assert_eq!(b.due_reports(now + REPORT_INTERVAL)[0].refused, 1);
        // Given back when the container goes.
        assert_eq!(b.release(&id('a')), 25);
        assert_eq!(b.used_total(), 25);
        b.take(&id('a'), || "/again".into()).unwrap();
    }

    #[test]
    fn the_global_limit_still_holds_with_many_containers() {
        let mut b = WatchBudget::new(&limits(10, 50, 0, 1));
        for i in 0..5 {
            b.take(&id('a'), || format!("{i}")).unwrap();
            b.take(&id('b'), || format!("{i}")).unwrap();
        }
        assert_eq!(b.take(&id('c'), || "/c".into()), Err(Exhausted::Global));
        assert_eq!(b.due_reports(Instant::now())[0].reason, Exhausted::Global);
    }

    #[test]
    fn a_noisy_container_spends_its_own_alert_budget_only() {
        let mut r = AlertRate::new(&limits(1, 1, 10, 5));
        let t0 = Instant::now();
        let what = || {
            let mut f = BTreeMap::new();
            f.insert("container.id".to_string(), json!("noisy"));
            ("Drift".to_string(), f)
        };
        let sent = (0..1000)
            .filter(|_| r.admit("noisy", "rule", t0, what))
            .count();
        assert_eq!(sent, 5, "the burst, then nothing within the same instant");
        assert!(
            r.admit("quiet", "rule", t0, what),
            "a neighbour is not throttled"
        );
        // Refills at the rate.
        let t1 = t0 + Duration::from_millis(500);
        let sent = (0..1000)
            .filter(|_| r.admit("noisy", "rule", t1, what))
            .count();
        assert_eq!(sent, 5);
        let reports = r.due_reports(t1);
        assert_eq!(reports, vec![(what().1, 1990, "Drift".to_string())]);
        assert!(r.due_reports(t1 + Duration::from_secs(2)).is_empty());
        // The first drop is due at once, whatever the last sweep; later ones wait for the
        // interval, then are due at once again.
        let mut r = AlertRate::new(&limits(1, 1, 1, 1));
        assert!(r.due_reports(t0).is_empty());
        assert!(r.admit("a", "rule", t0, what));
        assert!(!r.admit("a", "rule", t0, what));
        assert_eq!(
            r.due_reports(t0).len(),
            1,
            "the first drop is reported at once"
        );
        assert!(!r.admit("a", "rule", t0, what));
        assert!(
            r.due_reports(t0 + Duration::from_secs(1)).is_empty(),
            "within the interval"
        );
        assert_eq!(r.due_reports(t0 + REPORT_INTERVAL)[0].1, 1);
        // Unlimited.
        let mut u = AlertRate::new(&limits(1, 1, 0, 0));
        assert!((0..10_000).all(|_| u.admit("x", "rule", t0, what)));
    }

    #[test]
    fn a_storm_of_one_rule_does_not_hide_another_rules_first_alert() {
        let mut r = AlertRate::new(&limits(1, 1, 1, 2));
        let t0 = Instant::now();
        let what = || ("Drift".to_string(), BTreeMap::new());
        let storm = (0..1000)
            .filter(|_| r.admit("noisy", "Drop and execute", t0, what))
            .count();
        assert_eq!(storm, 2, "the burst only");
        assert!(
            r.admit("noisy", "Write below etc", t0, what),
            "a rule this container never raised passes over the rate"
        );
        assert!(
            !r.admit("noisy", "Write below etc", t0, what),
            "its second alert is rate-limited like the rest"
        );
    }

    #[test]
    fn the_budget_alert_names_the_container_budget_and_what_was_refused() {
        let mut meta = driftwatch_model::ContainerMeta::unknown(id('a'));
        meta.name = "noisy".into();
        let a = budget_alert(
            "h",
            &container_fields(&meta),
            "file-drift watch",
            "25 of 100 directories".into(),
            7,
            "directories not watched, e.g. /tmp/x".into(),
        );
        assert_eq!(a.rule, BUDGET_RULE);
        assert_eq!(a.output_fields["container.name"], json!("noisy"));
        assert_eq!(a.output_fields["driftwatch.refused"], json!(7));
        assert!(
            a.output.starts_with("Container noisy is over its file-drift watch budget (25 of 100 directories): 7 directories not watched, e.g. /tmp/x"),
            "{}",
            a.output
        );
    }
}
