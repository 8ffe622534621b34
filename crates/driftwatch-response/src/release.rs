//! `driftwatch release CONTAINER`: undoes containment: deletes the isolation table in the
//! container's network namespace, thaws it if frozen, removes a pod's deny-all NetworkPolicy,
//! and records that it did.

use driftwatch_model::Alert;
use driftwatch_runtime::PinnedProcess;

use crate::actions::engine::{self, ContainerEngine, EngineError};
use crate::actions::freezer::Freezer;
use crate::actions::isolate::NetNs;
use crate::actions::kube::KubeApi;
use driftwatch_model::clock::now_ns;

use crate::record::{ActionLog, ActionRecord, ContainerRef, Outcome};

/// Releases `container` (a name, id or unique id prefix; what reads as an id is looked up as
/// an id first, so a container *named* like another's id is not the one released); the
/// record is appended to `log` and returned. An error means the container could not be
/// found.
pub fn release(
    container: &str,
    engine: Option<&dyn ContainerEngine>,
    kube: Option<&dyn KubeApi>,
    log: &ActionLog,
) -> Result<ActionRecord, String> {
    let start = now_ns();
    let lookup = |e: &dyn ContainerEngine| {
        if engine::looks_like_id(container) {
            match e.resolve_id(container) {
                Err(EngineError::NotFound(_)) => e.resolve(container),
                other => other,
            }
        } else {
            e.resolve(container)
        }
    };
    let resolved = match engine.map(lookup) {
        Some(Ok(r)) => r,
        Some(Err(EngineError::NotFound(_))) => {
            return Err(format!("no such container: {container}"));
        }
        Some(Err(e)) => engine::resolve_from_proc(container).map_err(|p| format!("{p} ({e})"))?,
        None => engine::resolve_from_proc(container).map_err(|e| e.to_string())?,
    };
    let label = if resolved.name.is_empty() {
        resolved.id.short().to_string()
    } else {
        format!("{} ({})", resolved.name, resolved.id.short())
    };
    let mut done = Vec::new();
    let mut errors = Vec::new();
    match resolved.pid {
        None => errors.push(format!(
            "container {label} is not running: nothing to release in it"
        )),
        Some(pid) => match PinnedProcess::of_container(pid, &resolved.id) {
            Err(e) => errors.push(format!("container {label}: {e}")),
            Ok(p) => {
                match NetNs::for_release(&p).and_then(|ns| ns.release()) {
                    Ok(true) => {
                        done.push("network isolation removed (nft table deleted)".to_string())
                    }
                    Ok(false) => done.push("network was not isolated".to_string()),
                    Err(e) => errors.push(e),
                }
                match Freezer::of_process(&p) {
                    Ok(f) => match f.is_frozen() {
                        Ok(true) => match f.set(false) {
                            Ok(()) => done.push("thawed".to_string()),
                            Err(e) => errors.push(e),
                        },
                        Ok(false) => done.push("was not frozen".to_string()),
                        Err(e) => errors.push(e),
                    },
                    Err(e) => errors.push(e),
                }
            }
        },
    }
    let k8s = resolved.k8s.clone();
    if let (Some(k), Some(meta)) = (kube, &k8s) {
        match k.release_pod(&meta.namespace, &meta.pod_name) {
            Ok(()) => done.push(format!(
                "NetworkPolicy of pod {}/{} removed",
                meta.namespace, meta.pod_name
            )),
            Err(e) => errors.push(format!(
                "removing the NetworkPolicy of pod {}/{}: {e}",
                meta.namespace, meta.pod_name
            )),
        }
    }
    let end = now_ns();
    let record = ActionRecord {
        time: Alert::format_time(start),
        end: Alert::format_time(end),
        start_ns: start,
        end_ns: end,
        playbook: None,
        action: "release".into(),
        params: serde_json::json!({ "container": container }),
        dry_run: false,
        result: if errors.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
        reason: (!errors.is_empty()).then(|| errors.join("; ")),
        detail: Some(format!("container {label}: {}", done.join(", "))),
        container: ContainerRef {
            id: resolved.id.to_string(),
            name: resolved.name.clone(),
            image: String::new(),
            k8s_namespace: k8s
                .as_ref()
                .map(|k| k.namespace.clone())
                .unwrap_or_default(),
            k8s_pod: k8s.as_ref().map(|k| k.pod_name.clone()).unwrap_or_default(),
        },
        alert: None,
        alert_received_ns: None,
    };
    log.append(&record).map_err(|e| e.to_string())?;
    Ok(record)
}
