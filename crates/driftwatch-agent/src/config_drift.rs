//! Config drift: a container's configuration against its image's, in three places.
//!
//! - **At create/start** ([`posture`]): every engine record the registry takes in (engine
//!   events Created/Started, the listing at start and after a reconnect, on-demand inspects)
//!   is judged: environment added or changed from the image's `Env`, `--privileged`, added
//!   capabilities, host namespaces, sensitive host mounts, writable root filesystem, root
//!   user, seccomp/AppArmor unconfined. Each finding is one `evt.type=container` event, once
//!   per container start: the same finding is not repeated until the container restarts
//!   (a new `StartedAt`). The event's process is the container's init, as configured.
//! - **Per exec** ([`exec_env`]): variables that change what code runs (`LD_PRELOAD`,
//!   `PYTHONPATH`, `NODE_OPTIONS`, ..., `PATH` into a writable place) whose value neither the
//!   image's `Env` nor the container's configured `Env` gives. A value from `docker run -e` was
//!   reported at start and is not repeated on every exec. An exec without a binary-drift
//!   finding carries its first config finding itself; every other config finding is emitted
//!   as a copy of the exec event carrying it, so an exec can raise a binary-drift alert and a
//!   config-drift alert, each once.
//! - **Mounted secrets and config files** ([`mounted_files`]): inotify on writable bind
//!   mounts that look like secrets or configuration; a change is an `evt.type=container`
//!   event naming the file (`fd.name`, `drift.path`) but no process (inotify cannot say).

mod exec_env;
mod mounted_files;
mod posture;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use driftwatch_model::{ContainerId, DriftFinding, DriftSubject, Event, Verdict};
use driftwatch_runtime::ContainerRecord;

use crate::containers::{ContainerEntry, RecordObserver};
use crate::emitter::SharedEmitter;

use exec_env::{EnvBaseline, exec_env_findings};
pub use mounted_files::MountedFileStats;
use mounted_files::MountedFiles;
pub use posture::posture_findings;

/// Counters of config drift.
#[derive(Debug, Default)]
pub struct ConfigDriftStats {
    /// Posture findings emitted (once per container start each).
    pub posture: AtomicU64,
    /// Per-exec environment findings emitted.
    pub exec_env: AtomicU64,
    pub mounted_files: Arc<MountedFileStats>,
}

/// What was already said about one container since it (last) started.
#[derive(Default)]
struct Said {
    started_at_ns: Option<u64>,
    findings: HashSet<(DriftSubject, String)>,
}

/// The config-drift checker: a [`RecordObserver`] of the registry for posture and mounted
/// files, and [`ConfigDrift::exec_findings`] for the exec pipeline.
pub struct ConfigDrift {
    emitter: SharedEmitter,
    said: Mutex<HashMap<ContainerId, Said>>,
    files: Option<MountedFiles>,
    pub stats: Arc<ConfigDriftStats>,
}

impl ConfigDrift {
    /// Starts the mounted-file watcher too; without inotify, posture and exec checks still run.
    pub fn start(emitter: SharedEmitter) -> Arc<ConfigDrift> {
        let stats = Arc::new(ConfigDriftStats::default());
        let files = match MountedFiles::start(emitter.clone(), stats.mounted_files.clone()) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(
                    "config drift: inotify unavailable ({e}); changes to mounted secrets and config files are not watched"
                );
                None
            }
        };
        Arc::new(ConfigDrift {
            emitter,
            said: Mutex::new(HashMap::new()),
            files,
            stats,
        })
    }

    /// Stops the mounted-file watcher's thread.
    pub fn shutdown(&self) {
        if let Some(f) = &self.files {
            f.shutdown();
        }
    }

    /// The config findings of one exec's environment in this container.
    pub fn exec_findings(&self, env: &[String], entry: &ContainerEntry) -> Vec<DriftFinding> {
        let record = entry.record.as_deref();
        let base = EnvBaseline {
            image: record
                .and_then(|r| r.runtime_config.image.as_ref())
                .map(|i| i.env.as_slice()),
            container: record.map(|r| r.env.as_slice()),
            mounts: entry.fs.mounts.as_ref(),
        };
        let found = exec_env_findings(env, &base);
        self.stats
            .exec_env
            .fetch_add(found.len() as u64, Ordering::Relaxed);
        found
    }

    /// The posture findings of a record not yet said since the container (last) started.
    fn new_posture_findings(&self, record: &ContainerRecord) -> Vec<DriftFinding> {
        if record.pod_sandbox {
            return Vec::new();
        }
        let mut all = posture_findings(&record.runtime_config, &record.env);
        if record.meta.k8s.is_some() {
            // The kubelet's own variables (service links) are the platform's, not drift; so is
            // the `HOSTNAME` the CRI runtime (containerd's CRI plugin, CRI-O) puts first in
            // every pod container's environment, the pod's host name, when the image sets none.
            all.retain(|f| {
                f.subject != DriftSubject::Env
                    || !((f.path == "HOSTNAME" && f.verdict == Verdict::Added)
                        || posture::env_value(&record.env, &f.path)
                            .is_some_and(|v| posture::is_kubelet_injected(&f.path, v)))
            });
        }
        let mut said = self.said.lock().unwrap_or_else(|p| p.into_inner());
        let s = said.entry(record.meta.id.clone()).or_default();
        if let (Some(before), Some(now)) = (s.started_at_ns, record.started_at_ns)
            && before != now
        {
            s.findings.clear(); // restarted: say it again
        }
        s.started_at_ns = record.started_at_ns.or(s.started_at_ns);
        all.into_iter()
            .filter(|f| s.findings.insert((f.subject, f.path.clone())))
            .collect()
    }
}

impl RecordObserver for ConfigDrift {
    fn record_seen(&self, entry: &Arc<ContainerEntry>) {
        let Some(record) = entry.record.as_deref() else {
            return;
        };
        // Watch first: once a start alert is out, changes to its mounted files are seen.
        if let Some(files) = &self.files
            && (record.running || record.started_at_ns.is_none())
        {
            files.watch(&entry.meta, &record.runtime_config.mounts);
        }
        let findings = self.new_posture_findings(record);
        if !findings.is_empty() {
            let base = entry.container_event(record);
            for f in findings {
                self.stats.posture.fetch_add(1, Ordering::Relaxed);
                let mut e = base.clone();
                e.drift = Some(f);
                crate::emitter::emit(&self.emitter, &e);
            }
        }
    }

    fn stopped(&self, id: &ContainerId, destroyed: bool) {
        if let Some(files) = &self.files {
            files.unwatch(id);
        }
        if destroyed && let Ok(mut said) = self.said.lock() {
            said.remove(id);
        }
    }
}

/// Emits an exec event and its config findings: the first config finding rides on the event
/// when it has no drift finding of its own; each other one goes out on a copy of it.
pub fn emit_exec(emitter: &SharedEmitter, mut event: Event, config: Vec<DriftFinding>) {
    let mut rest = config.into_iter().peekable();
    if event.drift.is_none() {
        event.drift = rest.next();
    }
    if rest.peek().is_none() {
        // The common case, nothing more to say: the event is not copied.
        crate::emitter::emit_owned(emitter, event);
        return;
    }
    crate::emitter::emit(emitter, &event);
    for f in rest {
        let mut e = event.clone();
        e.drift = Some(f);
        crate::emitter::emit(emitter, &e);
    }
}

#[cfg(test)]
#[expect(clippy::disallowed_methods, reason = "tests read their own fixtures")]
mod tests {
    use super::*;
    use driftwatch_model::{ContainerMeta, EventKind, Process, Verdict};
    use driftwatch_runtime::{ImageConfig, RuntimeConfig};

    fn record(started: Option<u64>, privileged: bool) -> ContainerRecord {
        ContainerRecord {
            pod_sandbox: false,
            meta: ContainerMeta::unknown(ContainerId::new(&"cd".repeat(32)).unwrap()),
            pid: None,
            layers: None,
            running: started.is_some(),
            started_at_ns: started,
            env: vec!["EXTRA=1".into()],
            exposed_ports: Vec::new(),
            runtime_config: RuntimeConfig {
                privileged,
                readonly_rootfs: true,
                user: "1000".into(),
                image: Some(ImageConfig::default()),
                ..Default::default()
            },
        }
    }

    fn checker() -> ConfigDrift {
        let emitter = crate::emitter::Emitter::new(
            driftwatch_rules::RuleSet::load_with_defaults(&[])
                .unwrap()
                .ruleset,
            None,
            Vec::new(),
            None,
            Arc::new(crate::stats::AgentStats::default()),
            "h".into(),
        )
        .shared();
        ConfigDrift {
            emitter,
            said: Mutex::new(HashMap::new()),
            files: None,
            stats: Arc::default(),
        }
    }

    fn paths(f: &[DriftFinding]) -> Vec<&str> {
        f.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn posture_is_said_once_per_start() {
        let c = checker();
        // Created (not started), then Started, then a re-list: said once.
        assert_eq!(
            paths(&c.new_posture_findings(&record(None, true))),
            ["EXTRA", "privileged"]
        );
        assert!(c.new_posture_findings(&record(Some(10), true)).is_empty());
        assert!(c.new_posture_findings(&record(Some(10), true)).is_empty());
        // Restarted: said again.
        assert_eq!(c.new_posture_findings(&record(Some(20), true)).len(), 2);
        // Destroyed: forgotten.
        c.stopped(&record(None, false).meta.id, true);
        assert_eq!(c.new_posture_findings(&record(Some(20), false)).len(), 1);
    }

    #[test]
    fn kubelet_service_links_are_not_env_drift_in_pods() {
        let c = checker();
        let mut r = record(Some(1), false);
        r.env = vec!["WEB_PORT=tcp://10.0.0.2:80".into(), "EXTRA=1".into()];
        r.meta
            .labels
            .insert("io.kubernetes.pod.name".into(), "web-0".into());
        r.meta.k8s = driftwatch_model::KubernetesMeta::from_labels(&r.meta.labels);
        assert_eq!(paths(&c.new_posture_findings(&r)), ["EXTRA"]);
    }

    #[test]
    fn exec_config_findings_ride_on_the_event_or_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.json");
        let emitter = crate::emitter::Emitter::new(
            driftwatch_rules::RuleSet::load_with_defaults(&[])
                .unwrap()
                .ruleset,
            None,
            Vec::new(),
            Some(std::io::LineWriter::new(
                std::fs::File::create(&path).unwrap(),
            )),
            Arc::new(crate::stats::AgentStats::default()),
            "h".into(),
        )
        .shared();
        let env = |k: &str| DriftFinding {
            provenance: Default::default(),
            enforcement: None,
            kind: driftwatch_model::DriftKind::Config,
            subject: DriftSubject::Env,
            verdict: Verdict::Added,
            path: k.into(),
            hash: None,
            image_hash: None,
            detail: None,
        };
        let ev = Event {
            num: 0,
            time_ns: 1,
            kind: EventKind::Execve,
            process: Process::default(),
            container: None,
            file: None,
            net: None,
            drift: None,
        };
        emit_exec(
            &emitter,
            ev.clone(),
            vec![env("LD_PRELOAD"), env("PYTHONPATH")],
        );
        emit_exec(&emitter, ev, Vec::new());
        drop(emitter);
        let kinds: Vec<Option<String>> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Event>(l)
                    .unwrap()
                    .drift
                    .map(|d| d.path)
            })
            .collect();
        assert_eq!(
            kinds,
            [Some("LD_PRELOAD".into()), Some("PYTHONPATH".into()), None]
        );
    }
}
