//! Image drift at container start: the image against the approved list (`run --approved`),
//! and the image's layers on disk against their digests.
//!
//! - **Approval** is judged on the registry's thread when a running container's record
//!   arrives (no I/O: the list was read at start), once per container start: not approved,
//!   unknown, started from a mutable tag. Each is an `evt.type=container` event with
//!   `drift.kind=image`, `drift.subject=image_digest`.
//! - **Layers** are checked on one background thread: each new image once, then every image
//!   seen again every `layer_check_interval`, so detection never waits for a layer read. An
//!   intact layer is remembered with a stat fingerprint, so a scheduled re-check of an
//!   unchanged layer reads no file. A changed file is one event (`drift.subject=image_layer`,
//!   `drift.path` the file, `drift.detail` the layer) on the latest running container of the
//!   image, said once per (layer, file, change). Docker's layers are found in its layerdb
//!   and checked against their tar-split; containerd's are its overlayfs snapshot
//!   directories (asked of containerd for the container) checked against the layer blobs
//!   in its content store.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant};

use driftwatch_model::{ContainerId, DriftFinding, DriftKind, DriftSubject, Engine, Verdict};
use driftwatch_runtime::ContainerdSource;
use driftwatch_verify::assess::{ImageFacts, assess};
use driftwatch_verify::{ApprovedList, LayerCache, ProblemKind, Status};

use crate::containers::{ContainerEntry, RecordObserver};
use crate::emitter::SharedEmitter;

/// How the agent verifies images.
#[derive(Clone, Debug)]
pub struct ImageVerifyConfig {
    /// Alert on containers whose image is not in this list (`None`: no approval check).
    pub approved: Option<ApprovedList>,
    /// Do not alert on containers started from a mutable tag.
    pub allow_mutable: bool,
    /// Check image layers on disk (each new image once, then on the schedule).
    pub layers: bool,
    pub layer_check_interval: Duration,
    /// Docker's data root (`image/overlay2/layerdb`, `overlay2`).
    pub docker_root: PathBuf,
    /// Where the fingerprints of intact layers persist, so that an agent restart does not
    /// re-read every image (`None`: memory only).
    pub cache_file: Option<PathBuf>,
}

/// The default of [`ImageVerifyConfig::cache_file`].
pub const DEFAULT_LAYER_CACHE: &str = "/var/lib/driftwatch/layer-cache.json";

impl Default for ImageVerifyConfig {
    fn default() -> Self {
        ImageVerifyConfig {
            approved: None,
            allow_mutable: false,
            layers: true,
            layer_check_interval: Duration::from_secs(6 * 3600),
            docker_root: PathBuf::from("/var/lib/docker"),
            cache_file: Some(PathBuf::from(DEFAULT_LAYER_CACHE)),
        }
    }
}

#[derive(Debug, Default)]
pub struct ImageVerifyStats {
    pub approval_findings: AtomicU64,
    pub layers_checked: AtomicU64,
    pub layers_cached: AtomicU64,
    pub layer_findings: AtomicU64,
    pub layer_errors: AtomicU64,
}

struct Job {
    image_id: String,
    diff_ids: Vec<String>,
    entry: Arc<ContainerEntry>,
}

pub struct ImageVerifier {
    emitter: SharedEmitter,
    /// The approved list and `allow_mutable`, swapped by [`ImageVerifier::set_approved`].
    approved: RwLock<(Option<Arc<ApprovedList>>, bool)>,
    /// Container → the start (`StartedAt`) its approval was judged for.
    said: Mutex<HashMap<ContainerId, Option<u64>>>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub stats: Arc<ImageVerifyStats>,
    containerd: ContainerdSlot,
}

/// containerd, for the snapshot directories of its containers' layers (set once its source
/// exists), and the runtime its calls run on.
type ContainerdSlot = Arc<Mutex<Option<(ContainerdSource, tokio::runtime::Handle)>>>;

impl ImageVerifier {
    pub fn start(config: ImageVerifyConfig, emitter: SharedEmitter) -> Arc<ImageVerifier> {
        let stats = Arc::new(ImageVerifyStats::default());
        let containerd = ContainerdSlot::default();
        let (jobs, thread) = if config.layers {
            let (tx, rx) = mpsc::channel();
            let worker = LayerWorker {
                emitter: emitter.clone(),
                stats: stats.clone(),
                docker_root: config.docker_root.clone(),
                interval: config.layer_check_interval,
                images: HashMap::new(),
                cache: load_layer_cache(config.cache_file.as_deref()),
                cache_file: config.cache_file.clone(),
                said: HashSet::new(),
                containerd: containerd.clone(),
            };
            let handle = std::thread::Builder::new()
                .name("dw-layers".into())
                .spawn(move || worker.run(rx));
            match handle {
                Ok(h) => (Some(tx), Some(h)),
                Err(e) => {
                    tracing::warn!(
                        "image layers: cannot start the checker thread ({e}); layers are not checked"
                    );
                    (None, None)
                }
            }
        } else {
            (None, None)
        };
        Arc::new(ImageVerifier {
            emitter,
            approved: RwLock::new((config.approved.map(Arc::new), config.allow_mutable)),
            said: Mutex::new(HashMap::new()),
            jobs: Mutex::new(jobs),
            thread: Mutex::new(thread),
            stats,
            containerd,
        })
    }

    /// Checks containerd containers' layers too, through `source` (its calls run on `rt`).
    pub fn set_containerd(&self, source: ContainerdSource, rt: tokio::runtime::Handle) {
        if let Ok(mut c) = self.containerd.lock() {
            *c = Some((source, rt));
        }
    }

    /// Stops the layer checker (a check in progress finishes its layer first).
    pub fn shutdown(&self) {
        drop(self.jobs.lock().ok().and_then(|mut j| j.take()));
        if let Some(h) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = h.join();
        }
    }

    /// Replaces the approved list (a reload): containers started from now on are judged
    /// against it.
    pub fn set_approved(&self, approved: Option<ApprovedList>, allow_mutable: bool) {
        *self.approved.write().unwrap_or_else(|p| p.into_inner()) =
            (approved.map(Arc::new), allow_mutable);
    }

    /// The approval findings of a record (pure).
    pub fn approval_findings(list: &ApprovedList, facts: &ImageFacts) -> Vec<DriftFinding> {
        let a = assess(facts, list);
        let detail = format!(
            "image id {}, repo digests [{}], approved list {}",
            facts.image_id.as_deref().unwrap_or("unknown"),
            facts.repo_digests.join(", "),
            list.file.display()
        );
        let finding = |verdict, detail: String| DriftFinding {
            provenance: Default::default(),
            kind: DriftKind::Image,
            subject: DriftSubject::ImageDigest,
            verdict,
            path: facts.reference.clone(),
            hash: None,
            image_hash: None,
            detail: Some(detail),
            enforcement: None,
        };
        let mut out = Vec::new();
        match a.status {
            Status::Approved { .. } => {}
            Status::Unapproved => out.push(finding(Verdict::Unapproved, detail.clone())),
            Status::Unknown => out.push(finding(
                Verdict::Unknown,
                format!("the engine gave no image id or digest; {detail}"),
            )),
        }
        if let Some(tag) = a.mutable_tag {
            out.push(finding(
                Verdict::MutableTag,
                format!("started from tag `{tag}`, not a digest; {detail}"),
            ));
        }
        out
    }
}

impl RecordObserver for ImageVerifier {
    fn record_seen(&self, entry: &Arc<ContainerEntry>) {
        let Some(record) = entry.record.as_deref() else {
            return;
        };
        if !record.running {
            return;
        }
        let (approved, allow_mutable) = self
            .approved
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(list) = &approved {
            let first = self
                .said
                .lock()
                .map(|mut s| {
                    s.insert(record.meta.id.clone(), record.started_at_ns)
                        != Some(record.started_at_ns)
                })
                .unwrap_or(false);
            if first {
                let facts = ImageFacts {
                    reference: record.runtime_config.image_reference.clone(),
                    repository: record.meta.image.repository.clone(),
                    image_id: record.meta.image.id.clone(),
                    repo_digests: record
                        .runtime_config
                        .image
                        .as_ref()
                        .map(|i| i.repo_digests.clone())
                        .unwrap_or_default(),
                };
                let base = entry.container_event(record);
                for f in Self::approval_findings(list, &facts)
                    .into_iter()
                    .filter(|f| !(allow_mutable && f.verdict == Verdict::MutableTag))
                {
                    self.stats.approval_findings.fetch_add(1, Ordering::Relaxed);
                    let mut e = base.clone();
                    e.drift = Some(f);
                    crate::emitter::emit(&self.emitter, &e);
                }
            }
        }
        if let (Some(id), Some(img)) = (&record.meta.image.id, &record.runtime_config.image)
            && !img.diff_ids.is_empty()
            && let Ok(jobs) = self.jobs.lock()
            && let Some(tx) = jobs.as_ref()
        {
            let _ = tx.send(Job {
                image_id: id.clone(),
                diff_ids: img.diff_ids.clone(),
                entry: entry.clone(),
            });
        }
    }

    fn stopped(&self, id: &ContainerId, destroyed: bool) {
        if destroyed && let Ok(mut s) = self.said.lock() {
            s.remove(id);
        }
    }
}

struct LayerWorker {
    emitter: SharedEmitter,
    stats: Arc<ImageVerifyStats>,
    docker_root: PathBuf,
    interval: Duration,
    /// Image id → diff ids and the latest container seen of it.
    images: HashMap<String, (Vec<String>, Arc<ContainerEntry>)>,
    cache: LayerCache,
    /// (diff id, path, change) already alerted.
    said: HashSet<(String, String, &'static str)>,
    cache_file: Option<PathBuf>,
    containerd: ContainerdSlot,
}

/// A missing or damaged cache only costs a full check.
fn load_layer_cache(path: Option<&std::path::Path>) -> LayerCache {
    let Some(p) = path else {
        return LayerCache::default();
    };
    match driftwatch_fs::host::own_file(p) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            tracing::warn!(
                "{}: ignored ({e}); image layers are checked in full",
                p.display()
            );
            LayerCache::default()
        }),
        Err(_) => LayerCache::default(),
    }
}

impl LayerWorker {
    /// Where the image's layers are: Docker's layerdb, or the containerd container's
    /// snapshot directories and the content store's blobs.
    /// `Ok(None)`: the containerd container it was found through is gone (its snapshot with
    /// it); the image is checked again when another container of it is seen.
    fn locate(
        &self,
        diff_ids: &[String],
        entry: &ContainerEntry,
    ) -> Result<Option<Vec<driftwatch_verify::LayerLocation>>, String> {
        let Some(record) = entry.record.as_deref() else {
            return Err("no record".into());
        };
        if record.meta.engine != Engine::Containerd {
            return driftwatch_verify::locate_layers(&self.docker_root, diff_ids)
                .map(Some)
                .map_err(|e| e.to_string());
        }
        let Some((source, rt)) = self.containerd.lock().ok().and_then(|c| c.clone()) else {
            return Err(format!(
                "container {}: no containerd connection to find its snapshots",
                record.meta.name
            ));
        };
        let s = match rt.block_on(source.snapshot_layers(&record.meta.id)) {
            Ok(s) => s,
            Err(driftwatch_runtime::RuntimeError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        driftwatch_verify::locate_snapshot_layers(&s.diff_ids, &s.blobs, &s.lowers, &s.parent)
            .map(Some)
            .map_err(|e| format!("container {}: {e}", record.meta.name))
    }

    /// Writes the cache (a temporary file renamed over it: never half a file).
    fn save_cache(&self) {
        let Some(p) = &self.cache_file else { return };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = p.with_extension("json.tmp");
            let text = serde_json::to_vec(&self.cache).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, p)
        };
        if let Err(e) = write() {
            tracing::warn!("saving the image layer cache {}: {e}", p.display());
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut next_round = Instant::now() + self.interval;
        loop {
            let wait = next_round.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(job) => {
                    let new = !self.images.contains_key(&job.image_id);
                    self.images
                        .insert(job.image_id.clone(), (job.diff_ids, job.entry));
                    if new {
                        self.check(&job.image_id);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let ids: Vec<String> = self.images.keys().cloned().collect();
                    for id in ids {
                        self.check(&id);
                    }
                    next_round = Instant::now() + self.interval;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn check(&mut self, image_id: &str) {
        let Some((diff_ids, entry)) = self.images.get(image_id).cloned() else {
            return;
        };
        let layers = match self.locate(&diff_ids, &entry) {
            Ok(Some(l)) => l,
            Ok(None) => {
                self.images.remove(image_id);
                return;
            }
            Err(e) => {
                self.stats.layer_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("image layers of {image_id}: {e}");
                return;
            }
        };
        let mut read_in_full = false;
        for layer in &layers {
            let report = match driftwatch_verify::check_layer(layer, &mut self.cache) {
                Ok(r) => r,
                Err(e) => {
                    self.stats.layer_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "image layer {} of {image_id} (container {}): {e}",
                        layer.diff_id,
                        entry
                            .record
                            .as_deref()
                            .map_or("?", |r| r.meta.name.as_str())
                    );
                    continue;
                }
            };
            self.stats.layers_checked.fetch_add(1, Ordering::Relaxed);
            if report.cached {
                self.stats.layers_cached.fetch_add(1, Ordering::Relaxed);
            } else {
                read_in_full = true;
            }
            tracing::debug!(
                "image layer {} of {image_id}: {} files in {:?}{}",
                report.diff_id,
                report.files,
                report.elapsed,
                if report.cached { " (cached)" } else { "" }
            );
            let mut findings = Vec::new();
            for p in &report.problems {
                let verdict = match p.kind {
                    ProblemKind::Modified | ProblemKind::SizeChanged => Verdict::Modified,
                    ProblemKind::Missing => Verdict::Deleted,
                    ProblemKind::Added => Verdict::Added,
                    ProblemKind::Unreadable => Verdict::Unknown,
                };
                let sizes = match (p.expected_size, p.actual_size) {
                    (Some(e), Some(a)) if e != a => format!(", size {e} -> {a}"),
                    _ => String::new(),
                };
                findings.push((
                    format!("/{}", p.path),
                    p.kind.as_str(),
                    verdict,
                    format!(
                        "layer {} ({}) of image {image_id}: file {}{sizes}",
                        report.diff_id,
                        report.dir.display(),
                        p.kind.as_str()
                    ),
                ));
            }
            if findings.is_empty()
                && let Some(d) = report.stream_digest.as_deref()
                && d != report.diff_id
            {
                findings.push((
                    "/".into(),
                    "digest_mismatch",
                    Verdict::Modified,
                    format!(
                        "layer {} ({}) of image {image_id}: rebuilt as {d}",
                        report.diff_id,
                        report.dir.display()
                    ),
                ));
            }
            for (path, change, verdict, detail) in findings {
                if !self
                    .said
                    .insert((report.diff_id.clone(), path.clone(), change))
                {
                    continue;
                }
                let Some(record) = entry.record.as_deref() else {
                    continue;
                };
                let mut e = entry.container_event(record);
                e.drift = Some(DriftFinding {
                    provenance: Default::default(),
                    kind: DriftKind::Image,
                    subject: DriftSubject::ImageLayer,
                    verdict,
                    path,
                    hash: None,
                    image_hash: None,
                    detail: Some(detail),
                    enforcement: None,
                });
                self.stats.layer_findings.fetch_add(1, Ordering::Relaxed);
                crate::emitter::emit(&self.emitter, &e);
            }
        }
        if read_in_full {
            self.save_cache();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn approval_findings_say_what_and_why() {
        let list = ApprovedList::parse(Path::new("a.txt"), ID).unwrap();
        let f = |reference: &str, id: Option<&str>| {
            ImageVerifier::approval_findings(
                &list,
                &ImageFacts {
                    reference: reference.into(),
                    repository: String::new(),
                    image_id: id.map(String::from),
                    repo_digests: Vec::new(),
                },
            )
            .into_iter()
            .map(|f| (f.verdict, f.path))
            .collect::<Vec<_>>()
        };
        assert_eq!(f(&format!("app@{ID}"), Some(ID)), []);
        assert_eq!(
            f("app:1", Some(ID)),
            [(Verdict::MutableTag, "app:1".into())]
        );
        let other = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        assert_eq!(
            f("app", Some(other)),
            [
                (Verdict::Unapproved, "app".into()),
                (Verdict::MutableTag, "app".into())
            ]
        );
        assert_eq!(f(other, None), [(Verdict::Unknown, other.into())]);
    }
}
