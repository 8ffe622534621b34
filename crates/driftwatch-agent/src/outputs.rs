//! Where alerts go: a human line on stdout, Falco JSON lines appended to a file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use driftwatch_model::Alert;

pub trait AlertSink: Send {
    fn emit(&mut self, alert: &Alert) -> io::Result<()>;
    fn name(&self) -> String;
}

/// Replaces control characters so that attacker-chosen names (a file called
/// "x\n12:00:00 Critical fake") cannot forge or garble terminal lines.
fn escape_terminal(s: &str) -> String {
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

/// One line per alert, as Falco prints them: `TIME: Priority output`.
pub struct StdoutSink {
    out: io::Stdout,
}

impl StdoutSink {
    pub fn new() -> Self {
        StdoutSink { out: io::stdout() }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl AlertSink for StdoutSink {
    fn emit(&mut self, alert: &Alert) -> io::Result<()> {
        let mut out = self.out.lock();
        writeln!(
            out,
            "{}: {} {}",
            alert.time,
            alert.priority,
            escape_terminal(&alert.output)
        )?;
        out.flush()
    }

    fn name(&self) -> String {
        "stdout".into()
    }
}

/// Appends one Falco JSON object per line, flushed at once.
pub struct JsonFileSink {
    path: PathBuf,
    file: File,
}

impl JsonFileSink {
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
        Ok(JsonFileSink {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl AlertSink for JsonFileSink {
    fn emit(&mut self, alert: &Alert) -> io::Result<()> {
        let mut line = alert.to_json_line();
        line.push('\n');
        // One write per line so that concurrent readers never see half a line.
        self.file.write_all(line.as_bytes())?;
        self.file.flush()
    }

    fn name(&self) -> String {
        self.path.display().to_string()
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
    fn json_sink_appends_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alerts.json");
        let alert = Alert {
            time: Alert::format_time(0),
            rule: "r".into(),
            priority: driftwatch_model::Priority::Critical,
            source: "syscall".into(),
            hostname: "h".into(),
            output: "x\ny".into(),
            tags: vec![],
            output_fields: Default::default(),
        };
        let mut s = JsonFileSink::open(&p).unwrap();
        s.emit(&alert).unwrap();
        s.emit(&alert).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 2);
        for l in text.lines() {
            let back: Alert = serde_json::from_str(l).unwrap();
            assert_eq!(back, alert);
        }
    }
}
