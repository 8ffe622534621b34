//! The record of every action taken (or skipped, or dry-run): one JSON object per line,
//! appended to a file only root reads (`/var/lib/driftwatch/actions.jsonl`, mode 0600), and read
//! back by `driftwatch actions`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use driftwatch_model::Alert;
use serde::{Deserialize, Serialize};

use crate::matching::AlertFacts;

pub const DEFAULT_ACTIONS_LOG: &str = "/var/lib/driftwatch/actions.jsonl";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    Skipped,
    /// `dry_run: true`: recorded what it would do, did nothing.
    DryRun,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::DryRun => "dry_run",
        }
    }
}

/// The alert an action answered, as recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRef {
    pub rule: String,
    pub time: String,
    pub priority: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exepath: String,
}

/// The container an action was about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRef {
    /// The short id from the alert, or the full id once resolved.
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub k8s_namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub k8s_pod: String,
}

impl ContainerRef {
    pub fn of(f: &AlertFacts) -> ContainerRef {
        ContainerRef {
            id: f.container_id.clone(),
            name: f.container_name.clone(),
            image: f.image(),
            k8s_namespace: f.k8s_namespace.clone(),
            k8s_pod: f.k8s_pod.clone(),
        }
    }
}

/// One action: what, for which alert and container, with which result, when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// When the action started (RFC 3339, UTC, ns).
    pub time: String,
    pub end: String,
    /// Wall-clock ns since the epoch at start and end, for arithmetic.
    pub start_ns: u64,
    pub end_ns: u64,
    /// The playbook that ran it (`None` for `driftwatch release`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    pub action: String,
    pub params: serde_json::Value,
    pub dry_run: bool,
    pub result: Outcome,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was done (or would be, in a dry run), e.g. the bundle's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub container: ContainerRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertRef>,
    /// When the responder took the alert from the agent (ns since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_received_ns: Option<u64>,
}

impl AlertRef {
    pub fn of(alert: &Alert, f: &AlertFacts) -> AlertRef {
        AlertRef {
            rule: alert.rule.clone(),
            time: alert.time.clone(),
            priority: alert.priority.to_string(),
            pid: f.pid,
            exepath: f.exepath.clone(),
        }
    }
}

/// Also receives each record appended to the log (the agent's alert store keeps a copy);
/// it reports its own failures.
pub type ActionMirror = std::sync::Arc<dyn Fn(&ActionRecord) + Send + Sync>;

/// Appends records, one whole line per write.
pub struct ActionLog {
    path: PathBuf,
    file: Mutex<File>,
    mirror: Option<ActionMirror>,
}

#[derive(Debug, thiserror::Error)]
#[error("actions log {path}: {source}")]
pub struct LogError {
    pub path: String,
    pub source: io::Error,
}

impl ActionLog {
    /// Opens (creating with mode 0600, and its directory with 0700) for appending. A file
    /// that exists with looser permissions is tightened to 0600.
    pub fn open(path: &Path) -> Result<ActionLog, LogError> {
        let err = |source| LogError {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(err)?;
        let perms = file.metadata().map_err(err)?.permissions();
        if perms.mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(err)?;
        }
        Ok(ActionLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            mirror: None,
        })
    }

    /// Hands every later record to `mirror` too, after the log has it.
    pub fn set_mirror(&mut self, mirror: Option<ActionMirror>) {
        self.mirror = mirror;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, record: &ActionRecord) -> Result<(), LogError> {
        let mut line = serde_json::to_string(record).unwrap_or_default();
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let written = f
            .write_all(line.as_bytes())
            .and_then(|()| f.flush())
            .map_err(|source| LogError {
                path: self.path.display().to_string(),
                source,
            });
        drop(f);
        if let Some(m) = &self.mirror {
            m(record);
        }
        written
    }
}

/// Every record of a log, in order; lines that do not parse are counted, not fatal (a line
/// being written, or a record of a newer format).
pub fn read_records(path: &Path) -> Result<(Vec<ActionRecord>, usize), LogError> {
    let f = File::open(path).map_err(|source| LogError {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    let mut bad = 0;
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|source| LogError {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(r) => out.push(r),
            Err(_) => bad += 1,
        }
    }
    Ok((out, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str) -> ActionRecord {
        ActionRecord {
            time: Alert::format_time(1),
            end: Alert::format_time(2),
            start_ns: 1,
            end_ns: 2,
            playbook: Some("p".into()),
            action: action.into(),
            params: serde_json::json!({}),
            dry_run: false,
            result: Outcome::Ok,
            reason: None,
            detail: None,
            container: ContainerRef {
                id: "0123456789ab".into(),
                ..ContainerRef::default()
            },
            alert: None,
            alert_received_ns: None,
        }
    }

    #[test]
    fn log_is_private_and_appends_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/actions.jsonl");
        let log = ActionLog::open(&p).unwrap();
        log.append(&record("kill")).unwrap();
        log.append(&record("isolate")).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(p.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{half")
            .unwrap();
        let (recs, bad) = read_records(&p).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(bad, 1);
        assert_eq!(recs[1], record("isolate"));
    }

    #[test]
    fn loose_permissions_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("actions.jsonl");
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        ActionLog::open(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
