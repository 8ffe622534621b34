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

/// One alert. Serializes to exactly Falco's JSON alert object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// RFC 3339 with nanoseconds, UTC (`2026-11-28T12:00:00.123456789Z`).
    pub time: String,
    pub rule: String,
    pub priority: Priority,
    /// `syscall` for everything the kernel sensors see, as in Falco.
    pub source: String,
    pub hostname: String,
    /// The rule's output with its `%field` placeholders filled in.
    pub output: String,
    pub tags: Vec<String>,
    pub output_fields: BTreeMap<String, serde_json::Value>,
}

impl Alert {
    /// The current time as Falco's `time` field (alerts the agent raises about itself).
    pub fn format_now() -> String {
        Self::format_time(crate::clock::now_ns())
    }

    /// An alert the agent raises about an attack on itself (no rule): Critical, tagged
    /// `tamper`, now. The tamper watcher, the enforcer and the answer deadline raise it.
    pub fn tamper(
        hostname: &str,
        rule: &str,
        output: String,
        fields: BTreeMap<String, serde_json::Value>,
    ) -> Alert {
        Alert {
            time: Alert::format_now(),
            rule: rule.to_string(),
            priority: Priority::Critical,
            source: "syscall".into(),
            hostname: hostname.to_string(),
            output,
            tags: vec![
                "driftwatch".into(),
                "tamper".into(),
                "mitre_defense_evasion".into(),
            ],
            output_fields: fields,
        }
    }

    /// Formats nanoseconds since the epoch the way Falco's `time` field does.
    pub fn format_time(time_ns: u64) -> String {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_ns))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
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
            time: Alert::format_time(0),
            rule: "r".into(),
            priority: Priority::Critical,
            source: "syscall".into(),
            hostname: "h".into(),
            output: "o".into(),
            tags: vec!["drift".into()],
            output_fields: BTreeMap::from([("proc.pid".into(), serde_json::json!(4242))]),
        };
        assert_eq!(
            a.to_json_line(),
            r#"{"time":"1970-01-01T00:00:00.000000000Z","rule":"r","priority":"Critical","source":"syscall","hostname":"h","output":"o","tags":["drift"],"output_fields":{"proc.pid":4242}}"#
        );
    }
}
