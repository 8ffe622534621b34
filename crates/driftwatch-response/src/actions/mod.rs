//! The actions, engine-agnostic where the kernel allows: `kill` (pidfd), `freeze`/`unfreeze`
//! (cgroup freezer), `isolate` (nftables in the container's network namespace, plus a
//! NetworkPolicy for pods), `capture` (evidence bundle), `stop`/`evict` (the engine, or the
//! Kubernetes API for pods), `label` (pods) and `notify` (webhook).

pub mod containerd_engine;
pub mod engine;
pub mod freezer;
pub mod isolate;
pub mod kill;
pub mod kube;
pub mod nft_netlink;
pub mod notify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use driftwatch_runtime::PinnedProcess;

use crate::matching::AlertFacts;
use crate::playbook::Action;
use engine::{ContainerEngine, EngineError, ResolvedEngine};
use freezer::Freezer;
use isolate::NetNs;
use kube::KubeApi;

/// How one action went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Done; what was done.
    Ok(String),
    /// Not done, and not an error (the process had exited, not a pod, a limit): why.
    Skipped(String),
    Failed(String),
}

/// What the actions reach the world through.
pub struct Env<'a> {
    pub engine: Option<&'a dyn ContainerEngine>,
    pub kube: Option<&'a dyn KubeApi>,
    pub docker_socket: &'a Path,
    /// The agent's Falco JSON alerts, for the evidence bundle's `alerts.jsonl`.
    pub alerts_file: Option<&'a Path>,
}

/// The alert's container, resolved once per playbook run, on first need.
pub struct ActionTarget<'a> {
    pub facts: &'a AlertFacts,
    resolved: Option<Result<ResolvedEngine, String>>,
}

impl<'a> ActionTarget<'a> {
    pub fn new(facts: &'a AlertFacts) -> ActionTarget<'a> {
        ActionTarget {
            facts,
            resolved: None,
        }
    }

    /// The container from the engine (looked up by id only, its answer checked to be that
    /// id), else from the host's cgroups when it runs.
    pub fn resolve(&mut self, env: &Env<'_>) -> Result<&ResolvedEngine, String> {
        if self.resolved.is_none() {
            let short = &self.facts.container_id;
            let r = if short.is_empty() {
                Err("the alert names no container".to_string())
            } else if !engine::looks_like_id(short) {
                // A named id (containerd's outside Kubernetes): looked up as that exact id
                // (never as a Docker name), else found in the host's cgroups by it.
                match env.engine.map(|e| e.resolve_id(short)) {
                    Some(Ok(r)) if r.id.as_str() == short.as_str() => Ok(r),
                    _ => engine::resolve_from_proc(short)
                        .and_then(|r| {
                            if r.id.as_str() == short.as_str() {
                                Ok(r)
                            } else {
                                Err(EngineError::NotFound(short.clone()))
                            }
                        })
                        .map_err(|e| format!("container {}: {e}", self.facts.container_label())),
                }
            } else {
                let from_engine = env.engine.map(|e| e.resolve_id(short));
                match from_engine {
                    Some(Ok(r)) => Ok(r),
                    // No engine asked knows it: removed, or one of an engine the node runs
                    // but the agent does not ask (CRI-O beside dockerd): its processes, if
                    // any, still say so through their cgroups (which no container can name).
                    Some(Err(EngineError::NotFound(_))) => engine::resolve_from_proc(short)
                        .map_err(|_| {
                            format!(
                                "container {}: no engine of the node knows it and nothing runs in it (removed)",
                                self.facts.container_label()
                            )
                        }),
                    other => engine::resolve_from_proc(short).map_err(|e| {
                        let why = match other {
                            Some(Err(engine_err)) => format!("{e}; {engine_err}"),
                            _ => e.to_string(),
                        };
                        format!("container {}: {why}", self.facts.container_label())
                    }),
                }
            };
            self.resolved = Some(r);
        }
        match self.resolved.as_ref() {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(e.clone()),
            None => unreachable!("set above"),
        }
    }

    /// The container if it was resolved already (no lookup).
    pub fn resolve_cached(&self) -> Option<&ResolvedEngine> {
        match &self.resolved {
            Some(Ok(r)) => Some(r),
            _ => None,
        }
    }

    /// A live process of the container (its init when the engine said), pinned by a pidfd
    /// and proved to be in the container (its cgroup names the container's full id), so that
    /// a freeze or an isolation never lands on a process that reused the pid.
    fn process(&mut self, env: &Env<'_>) -> Result<PinnedProcess, String> {
        let label = self.facts.container_label();
        let r = self.resolve(env)?;
        let pid = r
            .pid
            .ok_or_else(|| format!("container {label} is not running"))?;
        PinnedProcess::of_container(pid, &r.id).map_err(|e| format!("container {label}: {e}"))
    }

    /// `(namespace, pod, uid)` when the alert is about a pod and a Kubernetes API is
    /// configured.
    fn pod<'e>(&self, env: &Env<'e>) -> Option<(&'e dyn KubeApi, &str, &str, &str)> {
        let k = env.kube?;
        self.facts.is_pod().then_some((
            k,
            self.facts.k8s_namespace.as_str(),
            self.facts.k8s_pod.as_str(),
            self.facts.k8s_pod_uid.as_str(),
        ))
    }
}

/// What an action would do, for dry runs.
pub fn describe(action: &Action, facts: &AlertFacts, kube: bool) -> String {
    let c = facts.container_label();
    let pod = if facts.is_pod() {
        format!("pod {}/{}", facts.k8s_namespace, facts.k8s_pod)
    } else {
        String::new()
    };
    match action {
        Action::Kill => match facts.pid {
            Some(p) => format!("would SIGKILL pid {p} ({}) in container {c}", facts.exepath),
            None => format!("would kill nothing: the alert names no process (container {c})"),
        },
        Action::Freeze => format!("would freeze container {c}"),
        Action::Unfreeze => format!("would thaw container {c}"),
        Action::Isolate if kube && facts.is_pod() => format!(
            "would drop all but loopback traffic in container {c}'s network namespace and apply a deny-all NetworkPolicy to {pod}"
        ),
        Action::Isolate => {
            format!("would drop all but loopback traffic in container {c}'s network namespace")
        }
        Action::Capture { dir, .. } => format!("would capture container {c} into {dir}"),
        Action::Stop { timeout } => format!("would stop container {c} (timeout {timeout:?})"),
        Action::Evict {
            grace_period,
            eviction_api,
        } if kube && facts.is_pod() => {
            if *eviction_api {
                format!("would evict {pod} through the eviction API")
            } else {
                format!("would delete {pod} (grace period {grace_period:?})")
            }
        }
        Action::Evict { grace_period, .. } => {
            format!("would stop (timeout {grace_period:?}) and remove container {c}")
        }
        Action::Label { labels } => format!(
            "would label {} with {labels:?}",
            if pod.is_empty() { c } else { pod }
        ),
        Action::Notify { url, .. } => format!("would POST the alert to {url}"),
    }
}

/// Performs one action. `notify_body` is what `notify` posts (built by the caller, who knows
/// the actions taken so far).
pub fn perform(
    action: &Action,
    target: &mut ActionTarget<'_>,
    env: &Env<'_>,
    notify_body: &dyn Fn() -> Vec<u8>,
) -> Step {
    let r = match action {
        Action::Kill => do_kill(target),
        Action::Freeze => target.process(env).and_then(|p| freeze(&p, true)),
        Action::Unfreeze => target.process(env).and_then(|p| freeze(&p, false)),
        Action::Isolate => return do_isolate(target, env),
        Action::Capture { dir, max_file_size } => do_capture(target, env, dir, *max_file_size),
        Action::Stop { timeout } => do_stop(target, env, *timeout, false),
        Action::Evict {
            grace_period,
            eviction_api,
        } => {
            if let Some((k, ns, pod, uid)) = target.pod(env) {
                if uid.is_empty() {
                    Err(format!(
                        "pod {ns}/{pod}: the alert carries no pod uid, and by name alone another pod could be hit: not evicted"
                    ))
                } else if *eviction_api {
                    k.evict_pod(ns, pod, uid)
                        .map(|()| format!("pod {ns}/{pod} evicted through the eviction API"))
                        .map_err(|e| format!("evicting pod {ns}/{pod} (uid {uid}): {e}"))
                } else {
                    k.delete_pod(ns, pod, uid, *grace_period)
                        .map(|()| {
                            format!(
                                "pod {ns}/{pod} deleted (grace period {}s)",
                                grace_period.as_secs()
                            )
                        })
                        .map_err(|e| format!("deleting pod {ns}/{pod} (uid {uid}): {e}"))
                }
            } else {
                do_stop(target, env, *grace_period, true)
            }
        }
        Action::Label { labels } => match target.pod(env) {
            Some((k, ns, pod, _)) => k
                .label_pod(ns, pod, labels)
                .map(|()| format!("pod {ns}/{pod} labelled {labels:?}"))
                .map_err(|e| format!("labelling pod {ns}/{pod}: {e}")),
            None if target.facts.is_pod() => {
                return Step::Skipped(
                    "no Kubernetes API configured (--kubeconfig / in-cluster)".into(),
                );
            }
            None => {
                return Step::Skipped(format!(
                    "container {} is not a Kubernetes pod: nothing to label",
                    target.facts.container_label()
                ));
            }
        },
        Action::Notify { url, timeout } => notify::post(url, &notify_body(), *timeout)
            .map(|status| format!("POST {url}: {status}")),
    };
    match r {
        Ok(detail) => Step::Ok(detail),
        Err(e) => Step::Failed(e),
    }
}

fn do_kill(target: &mut ActionTarget<'_>) -> Result<String, String> {
    let f = target.facts;
    let Some(pid) = f.pid else {
        return Err("the alert names no process (proc.pid)".into());
    };
    if f.container_id.is_empty() {
        return Err("the alert names no container".into());
    }
    match kill::kill(
        &f.container_id,
        pid,
        &f.exepath,
        driftwatch_model::clock::parse_time_ns(&f.time),
    ) {
        Step::Ok(d) => Ok(d),
        Step::Skipped(why) => Ok(format!("nothing killed: {why}")),
        Step::Failed(e) => Err(e),
    }
}

fn freeze(p: &PinnedProcess, frozen: bool) -> Result<String, String> {
    let f = Freezer::of_process(p)?;
    f.set(frozen)?;
    Ok(format!(
        "{} {}",
        if frozen { "frozen:" } else { "thawed:" },
        f.dir().display()
    ))
}

fn do_isolate(target: &mut ActionTarget<'_>, env: &Env<'_>) -> Step {
    let local = target.process(env).and_then(|p| {
        let ns = NetNs::of_process(&p)?;
        ns.isolate()?;
        Ok(format!(
            "nft table inet {} in the network namespace of pid {}",
            isolate::TABLE,
            p.pid()
        ))
    });
    let pod = target.pod(env).map(|(k, ns, pod, _)| {
        k.isolate_pod(ns, pod)
            .map(|name| format!("NetworkPolicy {ns}/{name} (deny all) selects pod {pod}"))
            .map_err(|e| format!("NetworkPolicy for pod {ns}/{pod}: {e}"))
    });
    let note = (target.facts.is_pod() && env.kube.is_none())
        .then_some("; no Kubernetes API configured: no NetworkPolicy");
    match (local, pod) {
        (Ok(l), None) => Step::Ok(format!("{l}{}", note.unwrap_or_default())),
        (Ok(l), Some(Ok(p))) => Step::Ok(format!("{l}; {p}")),
        (Ok(l), Some(Err(e))) => Step::Failed(format!("{e} (applied: {l})")),
        (Err(e), Some(Ok(p))) => Step::Failed(format!("{e} (applied: {p})")),
        (Err(e), Some(Err(k))) => Step::Failed(format!("{e}; {k}")),
        (Err(e), None) => Step::Failed(e),
    }
}

/// Stops (and for `remove`, removes) through the engine, thawing a frozen container first
/// (a frozen task cannot act on SIGTERM, and cgroup v1 holds SIGKILL until thawed).
fn do_stop(
    target: &mut ActionTarget<'_>,
    env: &Env<'_>,
    timeout: Duration,
    remove: bool,
) -> Result<String, String> {
    let Some(engine) = env.engine else {
        return Err("no container engine configured (--no-engine): cannot stop containers".into());
    };
    let r = target.resolve(env)?.clone();
    let mut notes = Vec::new();
    if let Some(pid) = r.pid
        && let Ok(p) = PinnedProcess::of_container(pid, &r.id)
        && let Ok(f) = Freezer::of_process(&p)
        && f.is_frozen().unwrap_or(false)
    {
        f.set(false)?;
        notes.push("thawed first".to_string());
    }
    let label = target.facts.container_label();
    if r.running {
        engine.stop(&r.id, timeout).map_err(|e| e.to_string())?;
        notes.push(format!("stopped (timeout {}s)", timeout.as_secs()));
    } else {
        notes.push("was not running".into());
    }
    if remove {
        engine.remove(&r.id).map_err(|e| e.to_string())?;
        notes.push("removed".into());
    }
    Ok(format!("container {label}: {}", notes.join(", ")))
}

fn do_capture(
    target: &mut ActionTarget<'_>,
    env: &Env<'_>,
    dir: &str,
    max_file_size: u64,
) -> Result<String, String> {
    let r = target.resolve(env)?.clone();
    let dir = PathBuf::from(dir);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let stamp = driftwatch_model::clock::now_ns();
    let out = dir.join(bundle_file_name(&r.name, r.id.short(), stamp));
    let opts = driftwatch_evidence::CaptureOptions {
        docker_socket: env.docker_socket.to_path_buf(),
        max_file_size,
        alerts: env.alerts_file.map(Path::to_path_buf),
        max_alerts: 10_000,
        force: false,
        progress: false,
        max_entries: driftwatch_evidence::AGENT_CAPTURE_MAX_ENTRIES,
    };
    let s =
        driftwatch_evidence::capture(r.id.as_str(), &out, &opts).map_err(|e| format!("{e:#}"))?;
    Ok(format!(
        "{}: {} entries, {} drifted files stored, {} processes, {} sockets, {} alerts, sha256 {}",
        out.display(),
        s.entries,
        s.stored,
        s.processes,
        s.sockets,
        s.alerts,
        s.sha256
    ))
}

/// The evidence bundle's file name for a container: its name (attacker-influenced: pod and
/// label-derived names) reduced to `[A-Za-z0-9._-]`, so it can never leave the evidence
/// directory, hide as a dot file, or carry control characters.
fn bundle_file_name(name: &str, short_id: &str, stamp: u64) -> String {
    let name = if name.is_empty() { short_id } else { name };
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if safe.starts_with('.') {
        safe.replace_range(..1, "_");
    }
    format!("{safe}-{short_id}-{stamp}.tar.zst")
}

#[cfg(test)]
mod tests {
    use super::bundle_file_name;

    #[test]
    fn hostile_container_names_stay_one_file_in_the_evidence_directory() {
        for name in [
            "../../etc/cron.d/x",
            "..",
            ".hidden",
            "a/b\nc\u{1b}[31m",
            "\u{202e}gpj.exe",
            &"x".repeat(5000),
        ] {
            let f = bundle_file_name(name, "0123456789ab", 7);
            assert!(!f.contains('/') && !f.starts_with('.'), "{name:?} -> {f}");
            assert!(f.chars().all(|c| c.is_ascii_graphic()), "{name:?} -> {f}");
            assert!(
                f.ends_with("-0123456789ab-7.tar.zst") && f.len() < 200,
                "{f}"
            );
        }
        assert_eq!(
            bundle_file_name("", "0123456789ab", 7),
            "0123456789ab-0123456789ab-7.tar.zst"
        );
        assert_eq!(
            bundle_file_name("web-1", "0123456789ab", 7),
            "web-1-0123456789ab-7.tar.zst"
        );
    }
}
