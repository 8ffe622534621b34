//! Where the API reads alerts: the [`AlertSource`] trait, its filter, and [`AlertRing`], the
//! bounded in-memory ring of the last alerts that every agent keeps (also when no store is
//! configured). A persistent store implements [`AlertSource`] and replaces the ring for
//! queries; live updates still come from the ring.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use driftwatch_model::{Alert, Priority};
use serde::Serialize;
use tokio::sync::broadcast;

/// An alert as the API serves it: a monotonic id (for `after_id` and live updates) and the
/// time the agent raised it, next to the Falco JSON fields.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredAlert {
    pub id: u64,
    /// Wall-clock ns since the epoch at which the agent raised it.
    pub time_ns: u64,
    #[serde(flatten)]
    pub alert: Alert,
}

impl StoredAlert {
    /// A string field of `output_fields` (`<NA>` and missing read as empty).
    pub fn field(&self, name: &str) -> &str {
        match self.alert.output_fields.get(name) {
            Some(serde_json::Value::String(s)) if s != "<NA>" => s,
            _ => "",
        }
    }

    /// The 12-character container id it names, empty for host events.
    pub fn container_id(&self) -> &str {
        self.field("container.id")
    }

    /// Whether the alert is about `container`: its name, or a prefix of its id (at least 4
    /// characters), as the CLI accepts them.
    pub fn is_about(&self, container: &str) -> bool {
        let id = self.container_id();
        if id.is_empty() || id == "host" {
            return false;
        }
        self.field("container.name") == container
            || (container.len() >= 4 && (id.starts_with(container) || container.starts_with(id)))
    }

    pub fn pid(&self) -> Option<u32> {
        let v = self.alert.output_fields.get("proc.pid")?;
        v.as_u64()
            .or_else(|| v.as_str()?.parse().ok())
            .and_then(|p| u32::try_from(p).ok())
    }
}

/// Which alerts a query returns. Every given condition must hold; newest first, at most
/// `limit`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertFilter {
    /// Raised at or after this time (ns since the epoch).
    pub since_ns: Option<u64>,
    /// Container name or id prefix.
    pub container: Option<String>,
    /// Exact rule name.
    pub rule: Option<String>,
    /// Carries this tag.
    pub tag: Option<String>,
    /// At least this severe.
    pub priority: Option<Priority>,
    /// Only alerts with a larger id (live updates, paging forward).
    pub after_id: Option<u64>,
    pub limit: usize,
}

impl AlertFilter {
    pub fn matches(&self, a: &StoredAlert) -> bool {
        self.since_ns.is_none_or(|t| a.time_ns >= t)
            && self.after_id.is_none_or(|i| a.id > i)
            && self.rule.as_deref().is_none_or(|r| a.alert.rule == r)
            && self
                .tag
                .as_deref()
                .is_none_or(|t| a.alert.tags.iter().any(|x| x == t))
            // Priority orders most severe first.
            && self.priority.is_none_or(|p| a.alert.priority <= p)
            && self.container.as_deref().is_none_or(|c| a.is_about(c))
    }
}

/// Where alerts are queried. The ring implements it; so will the persistent store.
pub trait AlertSource: Send + Sync {
    /// Alerts matching `filter`, newest first, at most `filter.limit`.
    fn query_alerts(&self, filter: &AlertFilter) -> Vec<StoredAlert>;
    /// The id of the newest alert, 0 when none.
    fn last_id(&self) -> u64;
    /// [`AlertSource::query_alerts`], each alert as its JSON text (what the API sends).
    /// Sources that keep the text (the ring does) override it to skip serializing.
    fn query_alerts_json(&self, filter: &AlertFilter) -> Vec<Arc<str>> {
        self.query_alerts(filter)
            .iter()
            .filter_map(|a| serde_json::to_string(a).ok().map(Arc::from))
            .collect()
    }
}

/// The last `capacity` alerts, in memory, and a broadcast of each new one for live updates.
/// [`AlertRing::push`] never blocks on readers (a slow SSE client loses its place and
/// resumes from the ring by id).
pub struct AlertRing {
    capacity: usize,
    inner: Mutex<Ring>,
    next_id: AtomicU64,
    live: broadcast::Sender<StoredAlert>,
}

#[derive(Default)]
struct Ring {
    /// Each alert with its JSON text, serialized once when it came in.
    alerts: VecDeque<(StoredAlert, Arc<str>)>,
    /// (rule, priority) → alerts raised since start: the rule set bounds the cardinality.
    by_rule: BTreeMap<(String, Priority), u64>,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl AlertRing {
    /// Each alert is kept as a struct and as its JSON text (about 6 KB together with the
    /// usual output fields): 2,000 bound the ring near 12 MiB. The store has the history.
    pub const DEFAULT_CAPACITY: usize = 2_000;

    pub fn new(capacity: usize) -> AlertRing {
        let (live, _) = broadcast::channel(1024);
        AlertRing {
            capacity: capacity.max(1),
            inner: Mutex::new(Ring::default()),
            next_id: AtomicU64::new(1),
            live,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes in a new alert; returns its id.
    pub fn push(&self, alert: &Alert) -> u64 {
        let mut ring = self.lock();
        // Ids are taken under the lock so that the ring stays ordered by id.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stored = StoredAlert {
            id,
            time_ns: now_ns(),
            alert: alert.clone(),
        };
        *ring
            .by_rule
            .entry((alert.rule.clone(), alert.priority))
            .or_default() += 1;
        if ring.alerts.len() == self.capacity {
            ring.alerts.pop_front();
        }
        let json: Arc<str> = serde_json::to_string(&stored).unwrap_or_default().into();
        ring.alerts.push_back((stored.clone(), json));
        drop(ring);
        // No receiver is not an error.
        let _ = self.live.send(stored);
        id
    }

    /// New alerts as they come.
    pub fn subscribe(&self) -> broadcast::Receiver<StoredAlert> {
        self.live.subscribe()
    }

    /// Alerts raised since start per (rule, priority), for `/metrics`.
    pub fn counts_by_rule(&self) -> Vec<((String, Priority), u64)> {
        self.lock()
            .by_rule
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lock().alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl AlertSource for AlertRing {
    fn query_alerts(&self, filter: &AlertFilter) -> Vec<StoredAlert> {
        let ring = self.lock();
        ring.alerts
            .iter()
            .rev()
            .map(|(a, _)| a)
            .take_while(|a| filter.after_id.is_none_or(|i| a.id > i))
            .filter(|a| filter.matches(a))
            .take(filter.limit)
            .cloned()
            .collect()
    }

    fn query_alerts_json(&self, filter: &AlertFilter) -> Vec<Arc<str>> {
        let ring = self.lock();
        ring.alerts
            .iter()
            .rev()
            .take_while(|(a, _)| filter.after_id.is_none_or(|i| a.id > i))
            .filter(|(a, _)| filter.matches(a))
            .take(filter.limit)
            .map(|(_, j)| j.clone())
            .collect()
    }

    fn last_id(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(rule: &str, priority: Priority, container: &str, tags: &[&str]) -> Alert {
        let mut fields = BTreeMap::new();
        fields.insert("container.id".into(), serde_json::json!(container));
        fields.insert("container.name".into(), serde_json::json!("web"));
        fields.insert("proc.pid".into(), serde_json::json!(42));
        Alert {
            time: Alert::format_time(0),
            rule: rule.into(),
            priority,
            source: "syscall".into(),
            hostname: "h".into(),
            output: "o".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            output_fields: fields.into_iter().collect(),
        }
    }

    #[test]
    fn the_ring_keeps_the_last_alerts_and_counts_all() {
        let ring = AlertRing::new(3);
        for i in 0..5 {
            ring.push(&alert(
                &format!("r{}", i % 2),
                Priority::Critical,
                "abcdef123456",
                &[],
            ));
        }
        assert_eq!(ring.len(), 3);
        let all = ring.query_alerts(&AlertFilter {
            limit: 10,
            ..AlertFilter::default()
        });
        assert_eq!(all.iter().map(|a| a.id).collect::<Vec<_>>(), [5, 4, 3]);
        // The kept JSON is the alert's serialization.
        let json = ring.query_alerts_json(&AlertFilter {
            limit: 10,
            ..AlertFilter::default()
        });
        assert_eq!(json.len(), 3);
        assert_eq!(&*json[0], serde_json::to_string(&all[0]).unwrap());
        assert_eq!(ring.last_id(), 5);
        let counts = ring.counts_by_rule();
        assert_eq!(counts.iter().map(|c| c.1).sum::<u64>(), 5);
    }

    #[test]
    fn filters_combine() {
        let ring = AlertRing::new(100);
        ring.push(&alert(
            "a",
            Priority::Critical,
            "abcdef123456",
            &["binary_drift"],
        ));
        ring.push(&alert(
            "b",
            Priority::Notice,
            "abcdef123456",
            &["file_drift"],
        ));
        ring.push(&alert(
            "a",
            Priority::Warning,
            "999999999999",
            &["binary_drift"],
        ));
        let q = |f: AlertFilter| {
            let limit = if f.limit == 0 { 10 } else { f.limit };
            ring.query_alerts(&AlertFilter { limit, ..f })
                .iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            q(AlertFilter {
                rule: Some("a".into()),
                ..Default::default()
            }),
            [3, 1]
        );
        assert_eq!(
            q(AlertFilter {
                priority: Some(Priority::Warning),
                ..Default::default()
            }),
            [3, 1]
        );
        assert_eq!(
            q(AlertFilter {
                tag: Some("file_drift".into()),
                ..Default::default()
            }),
            [2]
        );
        assert_eq!(
            q(AlertFilter {
                container: Some("abcdef".into()),
                ..Default::default()
            }),
            [2, 1]
        );
        assert_eq!(
            q(AlertFilter {
                container: Some("abc".into()),
                ..Default::default()
            }),
            Vec::<u64>::new()
        );
        assert_eq!(
            q(AlertFilter {
                after_id: Some(1),
                ..Default::default()
            }),
            [3, 2]
        );
        assert_eq!(
            q(AlertFilter {
                limit: 1,
                ..Default::default()
            }),
            [3]
        );
        assert_eq!(
            q(AlertFilter {
                since_ns: Some(u64::MAX),
                ..Default::default()
            }),
            Vec::<u64>::new()
        );
    }
}
