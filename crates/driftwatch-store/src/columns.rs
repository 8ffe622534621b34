//! What an alert is indexed by: the columns taken out of its Falco fields, next to the whole
//! JSON object that is kept as is.

use driftwatch_model::clock::{now_ns, parse_time_ns};
use driftwatch_model::{Alert, Priority};

/// Priorities as stored: Falco's order, 0 (Emergency) to 7 (Debug); "at least Warning" is
/// `priority <= 4`.
pub(crate) fn priority_code(p: Priority) -> i64 {
    match p {
        Priority::Emergency => 0,
        Priority::Alert => 1,
        Priority::Critical => 2,
        Priority::Error => 3,
        Priority::Warning => 4,
        Priority::Notice => 5,
        Priority::Informational => 6,
        Priority::Debug => 7,
    }
}

/// A time as the columns keep it: SQLite's integers are i64 (ns since the epoch fit until
/// 2262).
pub(crate) fn column_ns(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// One alert ready for the `alerts` table.
pub(crate) struct AlertRow {
    pub time_ns: i64,
    pub rule: String,
    pub priority: i64,
    pub source: String,
    pub hostname: String,
    pub container_id: String,
    pub container_name: String,
    pub image: String,
    pub k8s_ns: String,
    pub k8s_pod: String,
    /// `,a,b,`: a tag matches with `instr(tags, ',a,')`.
    pub tags: String,
    pub output: String,
    pub json: String,
}

fn field(alert: &Alert, name: &str) -> String {
    match alert.output_fields.get(name) {
        Some(serde_json::Value::String(s)) if s != "<NA>" => s.clone(),
        _ => String::new(),
    }
}

impl AlertRow {
    pub fn of(alert: &Alert) -> AlertRow {
        // The full id when the agent knows it, so that any prefix of it matches.
        let mut container_id = field(alert, "container.full_id");
        if container_id.is_empty() {
            container_id = field(alert, "container.id");
        }
        let mut image = field(alert, "container.image");
        if image.is_empty() {
            let repo = field(alert, "container.image.repository");
            let tag = field(alert, "container.image.tag");
            image = match (repo.is_empty(), tag.is_empty()) {
                (true, _) => String::new(),
                (false, true) => repo,
                (false, false) => format!("{repo}:{tag}"),
            };
        }
        let mut tags = String::from(",");
        for t in &alert.tags {
            tags.push_str(t);
            tags.push(',');
        }
        AlertRow {
            time_ns: column_ns(parse_time_ns(&alert.time).unwrap_or_else(now_ns)),
            rule: alert.rule.clone(),
            priority: priority_code(alert.priority),
            source: alert.source.clone(),
            hostname: alert.hostname.clone(),
            container_id,
            container_name: field(alert, "container.name"),
            image,
            k8s_ns: field(alert, "k8s.ns.name"),
            k8s_pod: field(alert, "k8s.pod.name"),
            tags,
            output: alert.output.clone(),
            json: alert.to_json_line(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn na_fields_are_empty() {
        let a = Alert {
            time: Alert::format_time(5),
            rule: "r".into(),
            priority: Priority::Warning,
            source: "syscall".into(),
            hostname: "h".into(),
            output: "o".into(),
            tags: vec!["a".into(), "b".into()],
            output_fields: [
                ("container.id".to_string(), serde_json::json!("abc")),
                ("container.name".to_string(), serde_json::json!("<NA>")),
                (
                    "container.image.repository".to_string(),
                    serde_json::json!("app"),
                ),
                ("container.image.tag".to_string(), serde_json::json!("1")),
            ]
            .into_iter()
            .collect(),
        };
        let r = AlertRow::of(&a);
        assert_eq!(r.container_id, "abc");
        assert_eq!(r.container_name, "");
        assert_eq!(r.image, "app:1");
        assert_eq!(r.tags, ",a,b,");
        assert_eq!(r.time_ns, 5);
        assert_eq!(r.priority, 4);
    }
}
