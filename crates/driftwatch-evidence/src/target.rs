//! Finding a container by name, id or unique id prefix, and its overlay layers: from the
//! kernel's record of the root mount (`/proc/<pid>/mountinfo`, any engine) when the container
//! runs, else from the engine. Shared by `driftwatch diff`, `driftwatch capture` and the
//! response playbooks' `capture` action.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::counts::Counts;
use anyhow::{anyhow, bail};
use driftwatch_image::{ChangeKind, Diff, DiffError, DiffOptions, DiffStats, Differ, FileDiff};
use driftwatch_model::{ContainerId, ContainerMeta, OverlayLayers};
use driftwatch_runtime::{
    ContainerRecord, DockerConfig, DockerSource, EngineSource, MountTable,
    container_from_proc_cgroup, innermost, resolve_layer_paths,
};

/// Docker's overlay2 home, for layer paths it writes relative to it in mount options.
const DOCKER_OVERLAY_HOME: &str = "/var/lib/docker/overlay2";
/// How long the engine may take to answer one question.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);
/// Progress shows once a walk has taken this long (small containers print nothing).
const PROGRESS_AFTER: Duration = Duration::from_millis(500);

/// A container found by name or id, with the overlay layers its root filesystem is made of.
pub struct Target {
    pub id: ContainerId,
    /// Without Docker's leading `/`; empty when no engine named it.
    pub name: String,
    /// What the engine says, when one answered.
    pub record: Option<ContainerRecord>,
    /// The engine's whole inspect answer (`docker inspect`), when one answered.
    pub raw_inspect: Option<serde_json::Value>,
    /// A live process of the container (its init when the engine said), when it runs.
    pub pid: Option<u32>,
    pub layers: OverlayLayers,
    /// Where the layers came from: `/proc/<pid>/mountinfo` or the engine's record.
    pub layers_from: String,
    /// Why the engine did not answer, when it did not.
    pub engine_problem: Option<String>,
    docker_socket: PathBuf,
}

/// What the engine said about a name or id.
enum EngineLookup {
    Found {
        raw: Box<bollard::models::ContainerInspectResponse>,
        record: Option<Box<ContainerRecord>>,
    },
    NotFound,
    Unavailable(String),
}

impl Target {
    /// Finds `arg` (a name, an id or a unique id prefix): the engine first, then, for a
    /// running container of any engine, the cgroups of the host's processes.
    pub fn resolve(arg: &str, docker_socket: &Path) -> anyhow::Result<Target> {
        let valid = !arg.is_empty()
            && arg.len() <= 256
            && arg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            bail!("{arg:?} is not a container name or id");
        }
        let lookup = engine_lookup(arg, docker_socket);
        let (id, name, record, raw, engine_problem) = match lookup {
            EngineLookup::Found { raw, record } => {
                let id = raw
                    .id
                    .as_deref()
                    .and_then(|i| ContainerId::new(i).ok())
                    .ok_or_else(|| anyhow!("container {arg}: the engine's answer has no id"))?;
                let name = raw
                    .name
                    .as_deref()
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string();
                let raw = serde_json::to_value(&*raw).ok();
                (id, name, record.map(|r| *r), raw, None)
            }
            other => {
                let problem = match other {
                    EngineLookup::Unavailable(why) => Some(why),
                    _ => None,
                };
                let id = find_running_by_prefix(arg).map_err(|e| match &problem {
                    Some(why) => anyhow!("{e} ({why})"),
                    None => e,
                })?;
                (id, String::new(), None, None, problem)
            }
        };
        let label = label(&id, &name);
        let running_pid = record
            .as_ref()
            .filter(|r| r.running)
            .and_then(|r| r.pid)
            .filter(|p| Path::new(&format!("/proc/{p}")).exists());
        let pid = running_pid.or_else(|| container_pids(&id).into_iter().next());
        let (layers, layers_from) = match pid {
            Some(pid) => match layers_from_proc(pid) {
                Ok(l) => (l, format!("/proc/{pid}/mountinfo")),
                Err(LayersProblem::NotOverlay(fstype)) => bail!(
                    "container {label}: its root filesystem is {fstype}, not overlay: driftwatch \
                     diff needs overlay storage (Docker's overlay2, containerd's overlayfs)"
                ),
                Err(LayersProblem::Unreadable(why)) => {
                    match record.as_ref().and_then(|r| r.layers.clone()) {
                        Some(l) => (l, "the engine's record".to_string()),
                        None => bail!("container {label}: {why}"),
                    }
                }
            },
            None => match record.as_ref().and_then(|r| r.layers.clone()) {
                Some(l) => (l, "the engine's record (not running)".to_string()),
                None => {
                    let driver = raw
                        .as_ref()
                        .and_then(|r| r["GraphDriver"]["Name"].as_str())
                        .unwrap_or("unknown");
                    bail!(
                        "container {label}: storage driver {driver}, not overlay: driftwatch \
                         diff needs overlay storage (Docker's overlay2)"
                    )
                }
            },
        };
        Ok(Target {
            id,
            name,
            record,
            raw_inspect: raw,
            pid,
            layers,
            layers_from,
            engine_problem,
            docker_socket: docker_socket.to_path_buf(),
        })
    }

    /// `name (short id)`, or the short id alone.
    pub fn label(&self) -> String {
        label(&self.id, &self.name)
    }

    pub fn running(&self) -> bool {
        self.pid.is_some()
    }

    pub fn meta(&self) -> Option<&ContainerMeta> {
        self.record.as_ref().map(|r| &r.meta)
    }

    /// Diffs the writable layer against the image's, showing progress on stderr when
    /// `progress` and the walk takes a while. Reads only.
    pub fn diff(&self, options: DiffOptions, progress: bool) -> anyhow::Result<Diff> {
        let start = Instant::now();
        let shown = Mutex::new(None::<Instant>);
        let show = |s: &DiffStats| {
            if start.elapsed() < PROGRESS_AFTER {
                return;
            }
            let mut last = shown.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
                return;
            }
            *last = Some(Instant::now());
            eprint!(
                "\r\x1b[Kdiffing {}: {} entries, {} changes, {} MB hashed",
                self.label(),
                s.entries,
                s.changes,
                s.bytes_hashed >> 20
            );
        };
        let mut differ = Differ::new(&self.layers).options(options);
        if progress {
            differ = differ.progress(&show);
        }
        let result = differ.run();
        if shown.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            eprint!("\r\x1b[K");
        }
        let mut diff = result.map_err(|e| self.diff_error(e))?;
        self.check_still_there()?;
        self.fill_provenance(&mut diff);
        Ok(diff)
    }

    /// Each changed file's image layer and package (`driftwatch diff`, `diff.json`).
    pub fn fill_provenance(&self, diff: &mut Diff) {
        let diff_ids = self
            .record
            .as_ref()
            .map(|r| r.image_diff_ids())
            .unwrap_or_default();
        driftwatch_image::fill_diff_provenance(
            diff,
            &self.layers,
            diff_ids,
            driftwatch_image::LayerOptions::default(),
        );
    }

    /// Like [`Target::diff`] without progress, keeping in memory only the first `keep` changed
    /// paths (by path bytes; unchanged copy-ups are left out) while the walk streams: memory
    /// stays bounded by `keep`, not by what the container made. Also returns the counts of
    /// every path (kept or not) and how many changed paths there were in all.
    pub fn diff_first(
        &self,
        options: DiffOptions,
        keep: usize,
    ) -> anyhow::Result<(Diff, Counts, u64)> {
        use std::collections::BinaryHeap;
        struct ByPath(FileDiff);
        impl PartialEq for ByPath {
            fn eq(&self, o: &Self) -> bool {
                self.0.path.as_bytes() == o.0.path.as_bytes()
            }
        }
        impl Eq for ByPath {}
        impl PartialOrd for ByPath {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for ByPath {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                self.0.path.as_bytes().cmp(o.0.path.as_bytes())
            }
        }
        let kept = Mutex::new((BinaryHeap::<ByPath>::new(), 0u64, Counts::default()));
        let sink = |f: FileDiff| {
            let mut k = kept.lock().unwrap_or_else(|p| p.into_inner());
            k.2.add(&f);
            if f.change == ChangeKind::Unchanged {
                return;
            }
            k.1 += 1;
            k.0.push(ByPath(f));
            if k.0.len() > keep {
                k.0.pop(); // the largest path
            }
        };
        let mut diff = Differ::new(&self.layers)
            .options(options)
            .for_each(&sink)
            .map_err(|e| self.diff_error(e))?;
        self.check_still_there()?;
        let (heap, total, mut counts) = kept.into_inner().unwrap_or_else(|p| p.into_inner());
        diff.files = heap.into_sorted_vec().into_iter().map(|b| b.0).collect();
        self.fill_provenance(&mut diff);
        counts.packages = diff.packages.len() as u64;
        Ok((diff, counts, total))
    }

    fn diff_error(&self, e: DiffError) -> anyhow::Error {
        match e {
            DiffError::LayerVanished { host } => anyhow!(
                "container {}: layer directory {} vanished during the diff (container removed?)",
                self.label(),
                host.display()
            ),
            DiffError::Io(e) => anyhow!("container {}: {e}", self.label()),
        }
    }

    /// A container removed while its layer was read leaves a walk that met empty
    /// directories, not errors: ask again once done. Docker marks a container `removing`
    /// before it deletes the layer, so a removal that began during the walk shows here.
    fn check_still_there(&self) -> anyhow::Result<()> {
        let vanished = || {
            anyhow!(
                "container {}: removed during the diff (layer directory {} is going away); the result would be incomplete",
                self.label(),
                self.layers.upper.display()
            )
        };
        if driftwatch_fs::host::own_metadata(&self.layers.upper).is_err() {
            return Err(vanished());
        }
        if self.raw_inspect.is_none() {
            return Ok(());
        }
        match engine_lookup(self.id.as_str(), &self.docker_socket) {
            EngineLookup::NotFound => Err(vanished()),
            EngineLookup::Found { raw, .. } => {
                use bollard::models::ContainerStateStatusEnum as S;
                match raw.state.and_then(|s| s.status) {
                    Some(S::REMOVING | S::DEAD) => Err(vanished()),
                    _ => Ok(()),
                }
            }
            // The engine went away meanwhile: the layer directory is still there.
            EngineLookup::Unavailable(_) => Ok(()),
        }
    }
}

fn label(id: &ContainerId, name: &str) -> String {
    if name.is_empty() {
        id.short().to_string()
    } else {
        format!("{name} ({})", id.short())
    }
}

fn engine_lookup(arg: &str, socket: &Path) -> EngineLookup {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return EngineLookup::Unavailable(format!("tokio runtime: {e}")),
    };
    rt.block_on(async {
        let socket_s = socket.to_string_lossy();
        let docker = match bollard::Docker::connect_with_unix(
            &socket_s,
            ENGINE_TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        ) {
            Ok(d) => d,
            Err(e) => {
                return EngineLookup::Unavailable(format!(
                    "docker: cannot connect to {}: {e}",
                    socket.display()
                ));
            }
        };
        let inspect = tokio::time::timeout(ENGINE_TIMEOUT, docker.inspect_container(arg, None));
        let raw = match inspect.await {
            Err(_) => {
                return EngineLookup::Unavailable(format!(
                    "docker: no answer at {} within {} s",
                    socket.display(),
                    ENGINE_TIMEOUT.as_secs()
                ));
            }
            Ok(Ok(raw)) => raw,
            Ok(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            })) => return EngineLookup::NotFound,
            Ok(Err(e)) => {
                return EngineLookup::Unavailable(format!(
                    "docker at {}: {}",
                    socket.display(),
                    innermost(&e)
                ));
            }
        };
        let record = match raw.id.as_deref().map(ContainerId::new) {
            Some(Ok(id)) => {
                let source = DockerSource::new(DockerConfig {
                    socket: socket.to_path_buf(),
                    timeout: ENGINE_TIMEOUT,
                    ..DockerConfig::default()
                });
                source.inspect(&id).await.ok().map(Box::new)
            }
            _ => None,
        };
        EngineLookup::Found {
            raw: Box::new(raw),
            record,
        }
    })
}

/// Every running container on this host by its cgroup, with its processes' pids (sorted,
/// so the first is the oldest still-running pid, usually the init).
pub fn running_containers() -> BTreeMap<ContainerId, Vec<u32>> {
    let mut out: BTreeMap<ContainerId, Vec<u32>> = BTreeMap::new();
    let Ok(pids) = driftwatch_fs::host::proc_pids() else {
        return out;
    };
    for pid in pids {
        // A process that exits while we look is simply not listed.
        let Ok(text) = driftwatch_fs::host::proc_string(pid, "cgroup") else {
            continue;
        };
        if let Some(m) = container_from_proc_cgroup(&text) {
            out.entry(m.id).or_default().push(pid);
        }
    }
    for pids in out.values_mut() {
        pids.sort_unstable();
    }
    out
}

/// The pids of a running container's processes (empty when it does not run).
pub fn container_pids(id: &ContainerId) -> Vec<u32> {
    running_containers().remove(id).unwrap_or_default()
}

fn find_running_by_prefix(prefix: &str) -> anyhow::Result<ContainerId> {
    let lower = prefix.to_ascii_lowercase();
    let matches: Vec<ContainerId> = running_containers()
        .into_keys()
        .filter(|id| id.as_str().starts_with(&lower))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no such container: {prefix}"),
        many => bail!(
            "container id prefix {prefix} is ambiguous: {}",
            many.iter()
                .map(|i| i.short().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

enum LayersProblem {
    NotOverlay(String),
    Unreadable(String),
}

/// The root overlay's layers from the kernel's mount table of a container process.
fn layers_from_proc(pid: u32) -> Result<OverlayLayers, LayersProblem> {
    let path = format!("/proc/{pid}/mountinfo");
    let text = driftwatch_fs::host::proc_string(pid, "mountinfo")
        .map_err(|e| LayersProblem::Unreadable(format!("{path}: {e}")))?;
    let table =
        MountTable::parse(&text).map_err(|e| LayersProblem::Unreadable(format!("{path}: {e}")))?;
    match table.root_overlay() {
        Some(l) => resolve_layer_paths(&l, Path::new(DOCKER_OVERLAY_HOME))
            .map_err(|e| LayersProblem::Unreadable(format!("layer directory {e}"))),
        None => {
            let fstype = table
                .find("/")
                .map(|m| {
                    if m.fstype == "overlay" {
                        "a read-only overlay".to_string()
                    } else {
                        m.fstype.clone()
                    }
                })
                .unwrap_or_else(|| "not in its mount table".to_string());
            Err(LayersProblem::NotOverlay(fstype))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target over layer directories made in a tempdir (no engine, not running).
    fn target_over(dir: &Path) -> Target {
        let upper = dir.join("upper");
        let lower = dir.join("lower");
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&lower).unwrap();
        Target {
            id: ContainerId::new(&"ab".repeat(32)).unwrap(),
            name: "c".into(),
            record: None,
            raw_inspect: None,
            pid: None,
            layers: OverlayLayers {
                upper,
                lowers: vec![lower],
                merged: None,
            },
            layers_from: "test".into(),
            engine_problem: None,
            docker_socket: PathBuf::new(),
        }
    }

    #[test]
    fn diff_first_keeps_only_the_first_paths_and_counts_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let t = target_over(dir.path());
        for i in 0..50 {
            std::fs::write(t.layers.upper.join(format!("f{i:02}")), b"x").unwrap();
        }
        let (diff, counts, total) = t.diff_first(DiffOptions::default(), 3).unwrap();
        let kept: Vec<String> = diff.files.iter().map(|f| f.path.to_string()).collect();
        assert_eq!(kept, ["/f00", "/f01", "/f02"]);
        assert_eq!((total, counts.added), (50, 50));
    }
}
