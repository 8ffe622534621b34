//! Alerts in Falco's JSON alert format, so Falcosidekick and Falco Talon consume them as is.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Falco's priorities, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown priority {0:?} (expected one of emergency, alert, critical, error, warning, notice, informational, info, debug)"
)]
pub struct PriorityParseError(pub String);

impl Priority {
    /// As Falco writes it in JSON alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }
}

impl FromStr for Priority {
    type Err = PriorityParseError;
    /// Case-insensitive, as Falco's rule loader accepts them (`WARNING`, `warning`, `info`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "emergency" => Priority::Emergency,
            "alert" => Priority::Alert,
            "critical" => Priority::Critical,
            "error" => Priority::Error,
            "warning" => Priority::Warning,
            "notice" => Priority::Notice,
            "informational" | "info" => Priority::Informational,
            "debug" => Priority::Debug,
            _ => return Err(PriorityParseError(s.to_string())),
        })
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `source` of alerts from rules on kernel events, as in Falco.
pub const SOURCE_SYSCALL: &str = "syscall";
/// The `source` of alerts the agent raises about itself (events lost, tampering, a container
/// over its budget), as Falco's own internal alerts ("Falco internal: syscall event drop").
pub const SOURCE_INTERNAL: &str = "internal";

/// One alert. Serializes to exactly Falco's JSON alert object: Falco builds it with
/// nlohmann::json, whose objects are ordered maps, so the keys come out in alphabetical order
/// (the fields below are declared in that order), and its tags are a `std::set`, so they come
/// out sorted and once each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub hostname: String,
    /// `HH:MM:SS.nnnnnnnnn: Priority ` then the rule's output with its `%field` placeholders
    /// filled in, as Falco writes it. For internal alerts (`source: internal`), the message
    /// alone, as Falco's internal alerts carry it.
    pub output: String,
    pub output_fields: BTreeMap<String, serde_json::Value>,
    pub priority: Priority,
    pub rule: String,
    /// `syscall` for everything the kernel sensors see, `internal` for the agent's own
    /// alerts, as in Falco.
    pub source: String,
    #[serde(serialize_with = "sorted_tags")]
    pub tags: Vec<String>,
    /// RFC 3339 with nanoseconds, UTC (`2026-11-28T12:00:00.123456789Z`).
    pub time: String,
}

fn sorted_tags<S: serde::Serializer>(tags: &[String], s: S) -> Result<S::Ok, S::Error> {
    let set: std::collections::BTreeSet<&String> = tags.iter().collect();
    s.collect_seq(set)
}

impl Alert {
    /// The current time as Falco's `time` field (alerts the agent raises about itself).
    pub fn format_now() -> String {
        Self::format_time(crate::clock::now_ns())
    }

    /// An alert the agent raises about itself, now: `source: internal`, no time prefix in
    /// `output` (Falco's internal alerts have none in JSON; [`Alert::text_line`] adds it).
    pub fn internal(
        hostname: &str,
        rule: &str,
        priority: Priority,
        output: String,
        tags: Vec<String>,
        fields: BTreeMap<String, serde_json::Value>,
    ) -> Alert {
        Alert {
            hostname: hostname.to_string(),
            output,
            output_fields: fields,
            priority,
            rule: rule.to_string(),
            source: SOURCE_INTERNAL.into(),
            tags,
            time: Alert::format_now(),
        }
    }

    /// An alert the agent raises about an attack on itself (no rule): Critical, tagged
    /// `tamper`, now. The tamper watcher, the enforcer and the answer deadline raise it.
    pub fn tamper(
        hostname: &str,
        rule: &str,
        output: String,
        fields: BTreeMap<String, serde_json::Value>,
    ) -> Alert {
        Alert::internal(
            hostname,
            rule,
            Priority::Critical,
            output,
            vec![
                "driftwatch".into(),
                "tamper".into(),
                "mitre_defense_evasion".into(),
            ],
            fields,
        )
    }

    /// Falco's `%evt.time` (its default, `time_format_iso_8601: false`): the time of day with
    /// nanoseconds, `HH:MM:SS.nnnnnnnnn`. Falco prints the host's local time; the agent prints
    /// UTC (what Falco prints in its own container image, which has no time zone set).
    pub fn format_clock(time_ns: u64) -> String {
        let t = Self::datetime(time_ns);
        format!(
            "{:02}:{:02}:{:02}.{:09}",
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond()
        )
    }

    /// What Falco puts before every rule's output: `HH:MM:SS.nnnnnnnnn: Priority `.
    pub fn output_prefix(time_ns: u64, priority: Priority) -> String {
        format!("{}: {priority} ", Self::format_clock(time_ns))
    }

    /// `output` without Falco's `HH:MM:SS.nnnnnnnnn: Priority ` prefix, for views that show the
    /// time and priority in columns of their own (`driftwatch alerts`, the web UI). The prefix is
    /// removed only when it is this alert's own (its `time` and `priority`), so a rule output
    /// that happens to start with a clock is left whole; internal alerts have none.
    pub fn message(&self) -> &str {
        let Some(clock) = self.time.get(11..29) else {
            return &self.output;
        };
        self.output
            .strip_prefix(clock)
            .and_then(|r| r.strip_prefix(": "))
            .and_then(|r| r.strip_prefix(self.priority.as_str()))
            .and_then(|r| r.strip_prefix(' '))
            .unwrap_or(&self.output)
    }

    /// The alert as Falco's text output (`json_output: false`) prints it, without the newline:
    /// a rule alert's `output` as is; an internal alert as Falco's `TIME: Priority message
    /// (key=value ...)` with each value JSON-encoded.
    pub fn text_line(&self) -> String {
        if self.source != SOURCE_INTERNAL {
            return self.output.clone();
        }
        // `time` is `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`; the clock is its middle.
        let clock = self.time.get(11..29).unwrap_or(&self.time);
        let fields: Vec<String> = self
            .output_fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{clock}: {} {} ({})",
            self.priority,
            self.output,
            fields.join(" ")
        )
    }

    fn datetime(time_ns: u64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_ns))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    /// Formats nanoseconds since the epoch the way Falco's `time` field does.
    pub fn format_time(time_ns: u64) -> String {
        let t = Self::datetime(time_ns);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond()
        )
    }

    /// One JSON line, as `--json-out` writes it.
    pub fn to_json_line(&self) -> String {
        // Serialization of these plain types cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_parse_case_insensitively() {
        assert_eq!("WARNING".parse(), Ok(Priority::Warning));
        assert_eq!("info".parse(), Ok(Priority::Informational));
        assert!("loud".parse::<Priority>().is_err());
        assert!(Priority::Critical < Priority::Warning);
    }

    #[test]
    fn falco_time_format() {
        assert_eq!(
            Alert::format_time(1_795_852_800_123_456_789),
            "2026-11-28T08:00:00.123456789Z"
        );
    }

    #[test]
    fn json_shape_is_falcos() {
        let a = Alert {
            time: Alert::format_time(1_795_852_800_123_456_789),
            rule: "r".into(),
            priority: Priority::Critical,
            source: SOURCE_SYSCALL.into(),
            hostname: "h".into(),
            output: format!(
                "{}o",
                Alert::output_prefix(1_795_852_800_123_456_789, Priority::Critical)
            ),
            tags: vec!["drift".into(), "container".into(), "drift".into()],
            output_fields: BTreeMap::from([
                ("proc.pid".into(), serde_json::json!(4242)),
                (
                    "evt.time".into(),
                    serde_json::json!(1_795_852_800_123_456_789_u64),
                ),
            ]),
        };
        // Falco's keys in nlohmann's (alphabetical) order, its tags a sorted set.
        assert_eq!(
            a.to_json_line(),
            r#"{"hostname":"h","output":"08:00:00.123456789: Critical o","output_fields":{"evt.time":1795852800123456789,"proc.pid":4242},"priority":"Critical","rule":"r","source":"syscall","tags":["container","drift"],"time":"2026-11-28T08:00:00.123456789Z"}"#
        );
        assert_eq!(a.text_line(), "08:00:00.123456789: Critical o");
        assert_eq!(a.message(), "o");
        let back: Alert = serde_json::from_str(&a.to_json_line()).unwrap();
        assert_eq!(back.rule, "r");
    }

    #[test]
    fn message_strips_only_the_alerts_own_prefix() {
        let t = 1_795_852_800_123_456_789;
        let mut a = Alert::internal(
            "h",
            "r",
            Priority::Warning,
            String::new(),
            vec![],
            BTreeMap::new(),
        );
        a.time = Alert::format_time(t);
        a.source = SOURCE_SYSCALL.into();
        a.output = format!("{}x", Alert::output_prefix(t, Priority::Warning));
        assert_eq!(a.message(), "x");
        // Another time, another priority: the rule's own text, kept whole.
        a.output = format!("{}x", Alert::output_prefix(t + 1, Priority::Warning));
        assert_eq!(a.message(), a.output);
        a.output = format!("{}x", Alert::output_prefix(t, Priority::Critical));
        assert_eq!(a.message(), a.output);
        a.output = "08:00:00.123456789: Warning".into();
        assert_eq!(a.message(), a.output);
    }

    #[test]
    fn internal_alerts_are_falcos_internal_shape() {
        let mut a = Alert::internal(
            "h",
            "Driftwatch events lost",
            Priority::Critical,
            "Driftwatch events lost: 3".into(),
            vec![],
            BTreeMap::from([
                ("driftwatch.lost_new".into(), serde_json::json!(3)),
                ("driftwatch.ring_mib".into(), serde_json::json!(8)),
            ]),
        );
        assert_eq!(a.source, "internal");
        assert_eq!(a.message(), "Driftwatch events lost: 3");
        a.time = Alert::format_time(1_795_852_800_000_000_001);
        assert_eq!(
            a.text_line(),
            "08:00:00.000000001: Critical Driftwatch events lost: 3 (driftwatch.lost_new=3 driftwatch.ring_mib=8)"
        );
    }
}
