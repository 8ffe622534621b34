//! The alert history's vocabulary: an alert as kept ([`StoredAlert`]), a question about the
//! kept alerts ([`AlertQuery`]) and what answers one ([`AlertSource`]). The in-memory ring the
//! API serves and the SQLite store `driftwatch alerts` reads both implement the trait. It lives
//! here, at the bottom of the crate graph, because the API must not pull in SQLite and the
//! store must not depend on an HTTP server: both depend on the model already.

use std::sync::Arc;

use serde::Serialize;

use crate::{Alert, Priority};

/// An alert as kept: an id (increasing in the order alerts were kept, never reused; for
/// `after_id` and live updates), the time it was raised, and the alert as it was emitted.
/// Serialized as the Falco JSON fields with `id` and `time_ns` next to them.
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
    /// hex characters, in either case), as the CLI accepts them. The store's query applies
    /// the same rule in SQL.
    pub fn is_about(&self, container: &str) -> bool {
        let id = self.container_id();
        if id.is_empty() || id == "host" {
            return false;
        }
        if self.field("container.name") == container {
            return true;
        }
        let wanted = container.to_ascii_lowercase();
        wanted.len() >= 4 && (id.starts_with(&wanted) || wanted.starts_with(id))
    }

    pub fn pid(&self) -> Option<u32> {
        let v = self.alert.output_fields.get("proc.pid")?;
        v.as_u64()
            .or_else(|| v.as_str()?.parse().ok())
            .and_then(|p| u32::try_from(p).ok())
    }
}

/// The order of an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// How [`AlertQuery::rule`] names rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RuleMatch {
    /// The rule's name contains it (`driftwatch alerts --rule`).
    #[default]
    Contains,
    /// The rule's name is it (the API's `rule=`).
    Exact,
}

/// Which kept alerts, in which order. Every given condition must hold; at most `limit`.
/// The default is every alert, newest first, at most 100.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertQuery {
    /// Raised at or after this time (ns since the epoch).
    pub since_ns: Option<u64>,
    /// Raised before this time (ns since the epoch).
    pub until_ns: Option<u64>,
    /// A container name, or a prefix of its id.
    pub container: Option<String>,
    /// A rule name, matched as `rule_match` says.
    pub rule: Option<String>,
    pub rule_match: RuleMatch,
    /// Carries this tag.
    pub tag: Option<String>,
    /// This priority or a more severe one.
    pub min_priority: Option<Priority>,
    /// Only alerts with a larger id (live updates, paging forward).
    pub after_id: Option<u64>,
    pub limit: usize,
    pub order: Order,
}

impl Default for AlertQuery {
    fn default() -> Self {
        AlertQuery {
            since_ns: None,
            until_ns: None,
            container: None,
            rule: None,
            rule_match: RuleMatch::default(),
            tag: None,
            min_priority: None,
            after_id: None,
            limit: 100,
            order: Order::default(),
        }
    }
}

impl AlertQuery {
    /// Whether `a` meets every condition (all but `limit` and `order`), as a source that
    /// holds alerts in memory reads them.
    pub fn matches(&self, a: &StoredAlert) -> bool {
        self.since_ns.is_none_or(|t| a.time_ns >= t)
            && self.until_ns.is_none_or(|t| a.time_ns < t)
            && self.after_id.is_none_or(|i| a.id > i)
            && self.rule.as_deref().is_none_or(|r| match self.rule_match {
                RuleMatch::Contains => a.alert.rule.contains(r),
                RuleMatch::Exact => a.alert.rule == r,
            })
            && self
                .tag
                .as_deref()
                .is_none_or(|t| a.alert.tags.iter().any(|x| x == t))
            // Priority orders most severe first.
            && self.min_priority.is_none_or(|p| a.alert.priority <= p)
            && self.container.as_deref().is_none_or(|c| a.is_about(c))
    }
}

/// Why a source could not answer (a database it cannot read, say), worded by the source.
#[derive(Debug)]
pub struct AlertSourceError(Box<dyn std::error::Error + Send + Sync>);

impl AlertSourceError {
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> AlertSourceError {
        AlertSourceError(e.into())
    }
}

impl std::fmt::Display for AlertSourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for AlertSourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What answers alert queries: the agent's in-memory ring, its store, or a reader of a store
/// another process writes. Object-safe: the API serves whichever it is given.
pub trait AlertSource: Send + Sync {
    /// Alerts matching `q`, in `q.order`, at most `q.limit`.
    fn query_alerts(&self, q: &AlertQuery) -> Result<Vec<StoredAlert>, AlertSourceError>;

    /// The id of the newest alert kept, 0 when none.
    fn last_id(&self) -> Result<u64, AlertSourceError>;

    /// [`AlertSource::query_alerts`], each alert as its JSON text (what the API sends).
    /// Sources that keep the text (the ring does) override it to skip serializing.
    fn query_alerts_json(&self, q: &AlertQuery) -> Result<Vec<Arc<str>>, AlertSourceError> {
        Ok(self
            .query_alerts(q)?
            .iter()
            .filter_map(|a| serde_json::to_string(a).ok().map(Arc::from))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: u64, time_ns: u64, rule: &str, priority: Priority, tags: &[&str]) -> StoredAlert {
        StoredAlert {
            id,
            time_ns,
            alert: Alert {
                time: Alert::format_time(time_ns),
                rule: rule.into(),
                priority,
                source: "syscall".into(),
                hostname: "h".into(),
                output: "o".into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                output_fields: [
                    (
                        "container.id".to_string(),
                        serde_json::json!("abcdef123456"),
                    ),
                    ("container.name".to_string(), serde_json::json!("web")),
                    ("proc.pid".to_string(), serde_json::json!("42")),
                ]
                .into_iter()
                .collect(),
            },
        }
    }

    #[test]
    fn each_condition_of_a_query() {
        let a = stored(5, 1_000, "Drop and execute", Priority::Warning, &["drift"]);
        let q = |f: fn(&mut AlertQuery)| {
            let mut q = AlertQuery::default();
            f(&mut q);
            q.matches(&a)
        };
        type Narrow = fn(&mut AlertQuery);
        let table: [(&str, Narrow, bool); 21] = [
            ("everything", |_| {}, true),
            ("since equal", |q| q.since_ns = Some(1_000), true),
            ("since later", |q| q.since_ns = Some(1_001), false),
            ("until later", |q| q.until_ns = Some(1_001), true),
            ("until equal", |q| q.until_ns = Some(1_000), false),
            ("after a smaller id", |q| q.after_id = Some(4), true),
            ("after its id", |q| q.after_id = Some(5), false),
            ("rule contains", |q| q.rule = Some("and exec".into()), true),
            (
                "rule exact",
                |q| {
                    q.rule = Some("Drop and execute".into());
                    q.rule_match = RuleMatch::Exact;
                },
                true,
            ),
            (
                "rule exact, a part",
                |q| {
                    q.rule = Some("and exec".into());
                    q.rule_match = RuleMatch::Exact;
                },
                false,
            ),
            ("tag", |q| q.tag = Some("drift".into()), true),
            ("another tag", |q| q.tag = Some("dri".into()), false),
            (
                "as severe",
                |q| q.min_priority = Some(Priority::Warning),
                true,
            ),
            (
                "less severe asked",
                |q| q.min_priority = Some(Priority::Notice),
                true,
            ),
            (
                "more severe asked",
                |q| q.min_priority = Some(Priority::Error),
                false,
            ),
            ("container name", |q| q.container = Some("web".into()), true),
            (
                "container id prefix",
                |q| q.container = Some("abcd".into()),
                true,
            ),
            (
                "too short a prefix",
                |q| q.container = Some("abc".into()),
                false,
            ),
            (
                "an id prefix in capitals",
                |q| q.container = Some("ABCDEF".into()),
                true,
            ),
            (
                "full container id",
                |q| {
                    q.container = Some(format!("abcdef123456{}", "0".repeat(52)));
                },
                true,
            ),
            (
                "another container",
                |q| q.container = Some("db".into()),
                false,
            ),
        ];
        for (what, f, want) in table {
            assert_eq!(q(f), want, "{what}");
        }
    }

    #[test]
    fn fields_of_a_stored_alert() {
        let mut a = stored(1, 0, "r", Priority::Critical, &[]);
        assert_eq!(a.container_id(), "abcdef123456");
        assert_eq!(a.pid(), Some(42));
        a.alert
            .output_fields
            .insert("container.id".into(), serde_json::json!("<NA>"));
        assert_eq!(a.container_id(), "");
        assert!(!a.is_about("web"), "a host event is about no container");
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            (json["id"].as_u64(), json["rule"].as_str()),
            (Some(1), Some("r"))
        );
    }
}
