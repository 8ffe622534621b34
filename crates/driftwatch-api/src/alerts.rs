//! [`AlertRing`]: the bounded in-memory ring of the last alerts that every agent keeps (also
//! when no store is configured), the [`AlertSource`] the API queries unless given another (a
//! persistent store implements the same trait), and the live broadcast its SSE stream follows.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use driftwatch_model::clock::now_ns;
use driftwatch_model::{
    Alert, AlertQuery, AlertSource, AlertSourceError, Order, Priority, StoredAlert,
};
use tokio::sync::broadcast;

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

/// The alerts of `alerts` (ordered by id) that `q` asks for, in its order: newest first stops
/// at `after_id`, oldest first starts there.
fn select<'r>(
    alerts: &'r VecDeque<(StoredAlert, Arc<str>)>,
    q: &AlertQuery,
) -> Vec<&'r (StoredAlert, Arc<str>)> {
    let after = |a: &StoredAlert| q.after_id.is_none_or(|i| a.id > i);
    match q.order {
        Order::NewestFirst => alerts
            .iter()
            .rev()
            .take_while(|(a, _)| after(a))
            .filter(|(a, _)| q.matches(a))
            .take(q.limit)
            .collect(),
        Order::OldestFirst => alerts
            .iter()
            .skip_while(|(a, _)| !after(a))
            .filter(|(a, _)| q.matches(a))
            .take(q.limit)
            .collect(),
    }
}

/// Never fails: the ring is in memory.
impl AlertSource for AlertRing {
    fn query_alerts(&self, q: &AlertQuery) -> Result<Vec<StoredAlert>, AlertSourceError> {
        Ok(select(&self.lock().alerts, q)
            .into_iter()
            .map(|(a, _)| a.clone())
            .collect())
    }

    fn query_alerts_json(&self, q: &AlertQuery) -> Result<Vec<Arc<str>>, AlertSourceError> {
        Ok(select(&self.lock().alerts, q)
            .into_iter()
            .map(|(_, j)| j.clone())
            .collect())
    }

    fn last_id(&self) -> Result<u64, AlertSourceError> {
        Ok(self.next_id.load(Ordering::Relaxed) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_model::RuleMatch;

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
        let all = ring
            .query_alerts(&AlertQuery {
                limit: 10,
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(all.iter().map(|a| a.id).collect::<Vec<_>>(), [5, 4, 3]);
        // The kept JSON is the alert's serialization.
        let json = ring
            .query_alerts_json(&AlertQuery {
                limit: 10,
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(json.len(), 3);
        assert_eq!(&*json[0], serde_json::to_string(&all[0]).unwrap());
        assert_eq!(ring.last_id().unwrap(), 5);
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
        let q = |f: AlertQuery| {
            ring.query_alerts(&f)
                .unwrap()
                .iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            q(AlertQuery {
                rule: Some("a".into()),
                rule_match: RuleMatch::Exact,
                ..Default::default()
            }),
            [3, 1]
        );
        assert_eq!(
            q(AlertQuery {
                min_priority: Some(Priority::Warning),
                ..Default::default()
            }),
            [3, 1]
        );
        assert_eq!(
            q(AlertQuery {
                tag: Some("file_drift".into()),
                ..Default::default()
            }),
            [2]
        );
        assert_eq!(
            q(AlertQuery {
                container: Some("abcdef".into()),
                ..Default::default()
            }),
            [2, 1]
        );
        assert_eq!(
            q(AlertQuery {
                container: Some("abc".into()),
                ..Default::default()
            }),
            Vec::<u64>::new()
        );
        assert_eq!(
            q(AlertQuery {
                after_id: Some(1),
                ..Default::default()
            }),
            [3, 2]
        );
        assert_eq!(
            q(AlertQuery {
                limit: 1,
                ..Default::default()
            }),
            [3]
        );
        assert_eq!(
            q(AlertQuery {
                since_ns: Some(u64::MAX),
                ..Default::default()
            }),
            Vec::<u64>::new()
        );
        // Oldest first starts after `after_id`; `until_ns` is exclusive.
        assert_eq!(
            q(AlertQuery {
                after_id: Some(1),
                order: Order::OldestFirst,
                ..Default::default()
            }),
            [2, 3]
        );
        assert_eq!(
            q(AlertQuery {
                order: Order::OldestFirst,
                limit: 2,
                ..Default::default()
            }),
            [1, 2]
        );
        assert_eq!(
            q(AlertQuery {
                until_ns: Some(0),
                ..Default::default()
            }),
            Vec::<u64>::new()
        );
    }
}
