//! What the server reads the agent through, and the JSON shapes it answers with. The binary
//! implements [`AgentView`] over the running agent, its responder and the evidence crate;
//! the server never touches the agent directly.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::metrics::MetricsWriter;

/// An error answered as `{"error": message}` with `status`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, message)
    }
}

impl From<driftwatch_model::AlertSourceError> for ApiError {
    fn from(e: driftwatch_model::AlertSourceError) -> ApiError {
        ApiError::internal(format!("reading the alerts: {e}"))
    }
}

/// A container the agent knows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ContainerSummary {
    /// The full id.
    pub id: String,
    pub short_id: String,
    pub name: String,
    /// `repository:tag`, or the repository alone.
    pub image: String,
    pub image_digest: Option<String>,
    /// `docker`, `containerd`, `podman`, `cri-o`, `unknown`.
    pub engine: String,
    pub k8s_namespace: Option<String>,
    pub k8s_pod: Option<String>,
    /// `detect` or `prevent`.
    pub enforcement: String,
    pub running: bool,
    /// Filled by the server from the alerts: counts by drift kind, verdict and priority.
    pub drift: DriftStatus,
}

/// A container's drift, from the alerts about it (the newest ones the source keeps).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DriftStatus {
    pub alerts: u64,
    /// `drift.kind` → count (`binary`, `file`, `package`, `config`, `network`, `image`).
    pub by_kind: BTreeMap<String, u64>,
    /// `drift.verdict` → count (`added`, `modified`, `memfd`, ...).
    pub by_verdict: BTreeMap<String, u64>,
    pub by_priority: BTreeMap<String, u64>,
    pub last_alert: Option<LastAlert>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LastAlert {
    pub id: u64,
    pub time: String,
    pub rule: String,
    pub priority: String,
}

/// A process of a running container, from `/proc`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProcessNode {
    /// Host pid.
    pub pid: u32,
    pub ppid: u32,
    pub name: String,
    /// The executable as the container sees it: the real name, plus `exe_b64` when it is not
    /// UTF-8 (docs/outputs.md, "Names in JSON").
    #[serde(flatten, serialize_with = "exe_name")]
    pub exe: PathBuf,
    pub cmdline: Vec<String>,
    /// Filled by the server: the drift verdicts of the alerts about this pid.
    pub verdicts: Vec<String>,
    /// Filled by the server: the rules of the alerts about this pid.
    pub rules: Vec<String>,
}

fn exe_name<S: serde::Serializer>(exe: &PathBuf, s: S) -> Result<S::Ok, S::Error> {
    driftwatch_model::name::serialize_flat("exe", exe, s)
}

/// One container, with its processes and the actions taken on it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ContainerDetail {
    #[serde(flatten)]
    pub summary: ContainerSummary,
    pub labels: BTreeMap<String, String>,
    pub processes: Vec<ProcessNode>,
    /// Action records (as the actions log stores them), newest first.
    pub actions: Vec<serde_json::Value>,
    /// Whether the container's network is cut by `isolate` now.
    pub isolated: Option<bool>,
}

/// A loaded rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleSummary {
    pub name: String,
    pub desc: String,
    pub priority: String,
    pub tags: Vec<String>,
    pub enabled: bool,
    /// Whether the rule can ever be true on driftwatch's events (`rules list` says the same).
    pub active: bool,
    /// Why an inactive rule can never be true ("needs ptrace events, ..."); null when active.
    pub inactive_reason: Option<String>,
    pub source_file: String,
}

/// Manual response actions the API offers on a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualAction {
    /// Cut the container's network (loopback stays).
    Isolate,
    /// Undo isolation and freezing.
    Release,
    /// Write an evidence bundle.
    Capture,
}

impl ManualAction {
    pub fn parse(s: &str) -> Option<ManualAction> {
        match s {
            "isolate" => Some(ManualAction::Isolate),
            "release" => Some(ManualAction::Release),
            "capture" => Some(ManualAction::Capture),
            _ => None,
        }
    }
}

/// One component's state in `/healthz`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComponentHealth {
    /// `ok`, `degraded`, `down` or `disabled`.
    pub status: String,
    pub detail: String,
}

impl ComponentHealth {
    pub fn ok(detail: impl Into<String>) -> Self {
        ComponentHealth {
            status: "ok".into(),
            detail: detail.into(),
        }
    }

    pub fn down(detail: impl Into<String>) -> Self {
        ComponentHealth {
            status: "down".into(),
            detail: detail.into(),
        }
    }

    pub fn degraded(detail: impl Into<String>) -> Self {
        ComponentHealth {
            status: "degraded".into(),
            detail: detail.into(),
        }
    }

    pub fn disabled(detail: impl Into<String>) -> Self {
        ComponentHealth {
            status: "disabled".into(),
            detail: detail.into(),
        }
    }
}

/// `/healthz`: 200 when no component is down, else 503.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Health {
    pub components: BTreeMap<String, ComponentHealth>,
}

impl Health {
    pub fn healthy(&self) -> bool {
        self.components.values().all(|c| c.status != "down")
    }
}

/// The running agent as the server sees it. Calls may block (reading /proc, diffing layers,
/// talking nf_tables netlink): the server calls them off its async threads.
pub trait AgentView: Send + Sync + 'static {
    /// Every known container (`drift` left default: the server fills it).
    fn containers(&self) -> Vec<ContainerSummary>;
    /// One container by name, id or unique id prefix; an error names it.
    fn container(&self, container: &str) -> Result<ContainerDetail, ApiError>;
    /// Its filesystem diff against its image: a summary and at most `limit` entries.
    fn diff(&self, container: &str, limit: usize) -> Result<serde_json::Value, ApiError>;
    fn rules(&self) -> Vec<RuleSummary>;
    /// Action records, newest first, optionally about one container.
    fn actions(&self, container: Option<&str>, limit: usize) -> Vec<serde_json::Value>;
    /// Performs a manual action; the record written to the actions log on success or
    /// failure of the action itself, an error when it could not be attempted.
    fn act(&self, container: &str, action: ManualAction) -> Result<serde_json::Value, ApiError>;
    /// Appends the agent's metrics.
    fn metrics(&self, out: &mut MetricsWriter);
    fn health(&self) -> Health;
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn a_process_exe_is_exact_with_its_bytes_beside_one_that_is_not_utf8() {
        let node = |exe: &[u8]| ProcessNode {
            pid: 7,
            exe: PathBuf::from(OsStr::from_bytes(exe)),
            ..ProcessNode::default()
        };
        let v = serde_json::to_value(node(b"/tmp/\x1b[2J\xfe")).unwrap();
        assert_eq!(v["exe"], "/tmp/\u{1b}[2J\u{FFFD}");
        assert_eq!(v["exe_b64"], "L3RtcC8bWzJK/g==");
        assert_eq!(v["pid"], 7);
        let v = serde_json::to_value(node(b"/bin/sh")).unwrap();
        assert_eq!(v["exe"], "/bin/sh");
        assert!(v.get("exe_b64").is_none(), "{v}");
    }
}
