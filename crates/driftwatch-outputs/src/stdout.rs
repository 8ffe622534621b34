//! Alerts on stdout, as Falco prints them: the human line `TIME: Priority output`, or with
//! `format: json` Falco's JSON alert a line (its `json_output`), which `kubectl logs` and log
//! shippers parse.

use std::io::{self, IsTerminal, Write};

use driftwatch_config::{ColorSetting, StdoutFormat};
use driftwatch_model::{Alert, Priority};

use crate::worker::{Deliver, Failure};

/// Replaces control characters so that attacker-chosen names (a file called
/// "x\n12:00:00 Critical fake") cannot forge or garble terminal lines or log records.
pub fn escape_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// ANSI SGR colour of each priority.
fn color_code(p: Priority) -> &'static str {
    match p {
        Priority::Emergency | Priority::Alert | Priority::Critical => "1;31",
        Priority::Error => "31",
        Priority::Warning => "33",
        Priority::Notice => "36",
        Priority::Informational => "32",
        Priority::Debug => "2",
    }
}

/// One line, newline included: Falco's text line ([`Alert::text_line`]: `HH:MM:SS.nnnnnnnnn:
/// Priority output`), the priority coloured when `color`.
pub fn format_line(alert: &Alert, color: bool) -> String {
    let line = escape_terminal(&alert.text_line());
    let plain = format!("{line}\n");
    if !color {
        return plain;
    }
    // The priority follows the `HH:MM:SS.nnnnnnnnn: ` prefix; a line without it (an alert
    // stored before the prefix existed) stays uncoloured.
    let word = alert.priority.as_str();
    match line.split_once(": ") {
        Some((clock, rest)) if rest.starts_with(word) => format!(
            "{clock}: \x1b[{}m{word}\x1b[0m{}\n",
            color_code(alert.priority),
            &rest[word.len()..]
        ),
        _ => plain,
    }
}

/// Whether `setting` colours this process's stdout.
pub fn use_color(setting: ColorSetting) -> bool {
    match setting {
        ColorSetting::Always => true,
        ColorSetting::Never => false,
        ColorSetting::Auto => io::stdout().is_terminal(),
    }
}

/// One alert's stdout line in `format`, newline included. JSON escapes control characters
/// itself, so a forged line is impossible there too; JSON is never coloured.
pub fn stdout_line(alert: &Alert, format: StdoutFormat, color: bool) -> String {
    match format {
        StdoutFormat::Text => format_line(alert, color),
        StdoutFormat::Json => {
            let mut line = alert.to_json_line();
            line.push('\n');
            line
        }
    }
}

pub(crate) struct StdoutOut {
    pub format: StdoutFormat,
    pub color: bool,
}

impl Deliver for StdoutOut {
    fn deliver(&mut self, alert: &Alert) -> Result<(), Failure> {
        let line = stdout_line(alert, self.format, self.color);
        let mut out = io::stdout().lock();
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Failure::retry(format!("writing to stdout: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_lines() {
        assert_eq!(escape_terminal("a\nb\x1b[31m"), "a\\nb\\u{1b}[31m");
    }

    #[test]
    fn line_is_falcos_and_coloured_on_request() {
        let alert = crate::tests::alert("x\ny");
        assert_eq!(
            format_line(&alert, false),
            "12:00:00.123456789: Critical x\\ny\n"
        );
        assert_eq!(
            format_line(&alert, true),
            "12:00:00.123456789: \x1b[1;31mCritical\x1b[0m x\\ny\n"
        );
    }

    #[test]
    fn internal_alerts_print_as_falcos_internal_lines() {
        let mut alert = Alert::internal(
            "h",
            "Driftwatch events lost",
            Priority::Critical,
            "Driftwatch events lost: 3".into(),
            vec![],
            [("driftwatch.lost_new".to_string(), serde_json::json!(3))].into(),
        );
        alert.time = "2026-11-28T12:00:00.000000001Z".into();
        assert_eq!(
            format_line(&alert, false),
            "12:00:00.000000001: Critical Driftwatch events lost: 3 (driftwatch.lost_new=3)\n"
        );
    }

    #[test]
    fn json_lines_are_the_falco_alert_one_per_line_never_coloured() {
        let alert = crate::tests::alert("x\ny");
        let line = stdout_line(&alert, StdoutFormat::Json, true);
        assert_eq!(line, format!("{}\n", alert.to_json_line()));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(!line.contains('\x1b'), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["output"], "12:00:00.123456789: Critical x\ny");
        assert_eq!(v["priority"], "Critical");
        assert_eq!(
            stdout_line(&alert, StdoutFormat::Text, false),
            format_line(&alert, false)
        );
    }
}
