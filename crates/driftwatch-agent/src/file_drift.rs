//! File and package drift, sensed live: every change a container makes to its root
//! filesystem lands in its overlay upper directory, which is watched with fanotify inode marks
//! (see `driftwatch_sensor::fanotify`), with the acting process. Each change is classified
//! against the image's layers:
//!
//! | in the upper dir | event | verdict |
//! | --- | --- | --- |
//! | a new file the image does not have | `creat` (`O_WRONLY\|O_CREAT`) | `added` |
//! | a new directory / symbolic link | `mkdir` / `symlink` (with its target) | `added` |
//! | a whiteout (char device 0/0) | `unlink` of an image file | `deleted` |
//! | an entry removed (created at runtime) | `unlink` | `deleted` |
//! | a copy-up with another mode or owner | `chmod` / `chown` | `modified` |
//! | a file written and closed | `open` (`O_WRONLY`, `O_TRUNC` if it got shorter) | `modified` if the image has it, else `added` |
//! | a rename within the container | `rename` | `modified` |
//!
//! The Falco arguments each event carries are inferred from what the change left behind
//! ([`falco_args`]).
//!
//! A copy-up alone (`touch`) is no event. A change to a package database (dpkg status, apk
//! installed, Python dist-info, npm package.json) is followed, once writes settle, by a
//! package-drift event listing the packages added, removed and changed against the image's
//! own database ([`package_watch`]).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use driftwatch_fs::{AGENT_PACKAGE_DB_CAP, FsError, InContainer, Limit, Resolve, Root};
use driftwatch_image::packages;
use driftwatch_image::{Judge, content_of};
use driftwatch_model::{
    ContainerId, ContainerMeta, Content, DriftFinding, DriftKind, DriftSubject, Event, EventKind,
    FileFacts, FileRef, Identity, Residence, Verdict,
};
use driftwatch_sensor::ForkParents;
use driftwatch_sensor::fanotify::{
    DirEntryRef, DirMarks, DirWatcher, FileNotice, WatchedDirHandle, op, resolve_dir,
};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::alert_names::RawNames;
use crate::containers::ContainerRegistry;
use crate::emitter::SharedEmitter;
use crate::fairness::{Exhausted, Limits, WatchBudget};
use crate::proctable::ProcTable;

mod actor;
mod dir_marks;
mod falco_args;
mod package_hold;
mod package_watch;

/// Counters of the file sensor.
#[derive(Debug, Default)]
pub struct FileStats {
    pub notices: AtomicU64,
    pub events: AtomicU64,
    pub dirs_watched: AtomicU64,
    /// The kernel's queue overflowed: notices were lost.
    pub overflows: AtomicU64,
    /// Directories left unwatched because the mark limit was reached (the global one or
    /// the container's share).
    pub dirs_skipped: AtomicU64,
    /// Of those, the ones refused because their container held its whole share.
    pub dirs_skipped_container_share: AtomicU64,
    /// "Budget exceeded" alerts raised for containers over their share.
    pub budget_alerts: AtomicU64,
    /// Directories deeper than [`MAX_WATCH_DEPTH`] below a container's root, not marked.
    pub dirs_too_deep: AtomicU64,
    /// Scans of a new tree stopped at [`MAX_WATCH_SCAN`] entries.
    pub scans_truncated: AtomicU64,
    pub unresolved: AtomicU64,
    /// Directories left without a mark, their trees not walked: no enabled rule can match
    /// anything below them ([`dir_marks`]).
    pub dirs_unmarked: AtomicU64,
    /// Notices dropped because a later one in the same read says the same of the same entry
    /// (many writes to one file).
    pub notices_coalesced: AtomicU64,
}

#[derive(Clone, Debug)]
pub struct FileDriftConfig {
    /// At most `limits.watched_dirs` directories are marked over all containers, and at
    /// most a share of them per container.
    pub limits: Limits,
    /// Package databases are compared once they have not changed for this long.
    pub package_settle: Duration,
    /// Which process forked each container process (`fork.bpf.c`): names the actor of a
    /// change made by a forked child that never exec'd and is gone. `None`: such a change
    /// is reported with the pid alone.
    pub forks: Option<Arc<ForkParents>>,
}

impl Default for FileDriftConfig {
    fn default() -> Self {
        FileDriftConfig {
            limits: Limits::default(),
            package_settle: Duration::from_millis(700),
            forks: None,
        }
    }
}

/// Directories more than this many levels below a container's root are not watched (the
/// same cap as `driftwatch diff`'s walk).
pub const MAX_WATCH_DEPTH: usize = driftwatch_image::DEFAULT_MAX_DEPTH;

/// One scan of a new directory tree looks at no more than this many entries.
pub const MAX_WATCH_SCAN: u64 = 1_000_000;

/// A path for a log line: escaped, and its middle elided past 200 bytes.
fn shortened(p: &Path) -> String {
    let b = p.as_os_str().as_bytes();
    if b.len() <= 200 {
        return driftwatch_fs::escape(b);
    }
    format!(
        "{}...{} ({} bytes)",
        driftwatch_fs::escape(&b[..120]),
        driftwatch_fs::escape(&b[b.len() - 60..]),
        b.len()
    )
}

/// A stat's modification time.
fn mtime(st: &rustix::fs::Stat) -> SystemTime {
    let secs = u64::try_from(st.st_mtime).unwrap_or(0);
    let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::new(secs, nanos.min(999_999_999))
}

/// Whether the entry `name` of `dir` was born (`statx` birth time) after `t`. The kernel
/// stamps births with its coarse clock, never ahead of the real time, so a birth time after
/// `t` is a birth after `t`; false when the filesystem keeps no birth time.
fn born_after(dir: &OwnedFd, name: &OsStr, t: SystemTime) -> bool {
    let Ok(st) = rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
        rustix::fs::StatxFlags::BTIME,
    ) else {
        return false;
    };
    if st.stx_mask & rustix::fs::StatxFlags::BTIME.bits() == 0 {
        return false;
    }
    let Ok(secs) = u64::try_from(st.stx_btime.tv_sec) else {
        return false;
    };
    let nanos = st.stx_btime.tv_nsec.min(999_999_999);
    SystemTime::UNIX_EPOCH + Duration::new(secs, nanos) > t
}

/// The running file sensor; dropping it stops its thread.
pub struct FileDrift {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<FileStats>,
}

impl Drop for FileDrift {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Watched {
    meta: Arc<ContainerMeta>,
    upper: PathBuf,
    /// The upper dir, open: every lookup in it starts here (no path is resolved again).
    upper_dir: Root,
    lowers: Vec<PathBuf>,
    /// The lower layers that could be opened, top first: opened once, not per lookup.
    lower_roots: Vec<Root>,
    /// Writable volumes and bind mounts: (host directory, mount point relative to the
    /// container's root, an open fd on the host directory's filesystem).
    volumes: Vec<(PathBuf, PathBuf, Root)>,
    /// Last mode/owner reported per path, so a `touch` after a `chmod` is silent.
    attrs: HashMap<PathBuf, (u32, u32, u32)>,
    /// Last size seen per file made or written at runtime, so a write that leaves it
    /// shorter is told apart (`O_TRUNC`).
    sizes: HashMap<PathBuf, u64>,
    /// Package databases: the packages last reported per database path.
    packages: HashMap<PathBuf, Vec<packages::Package>>,
}

impl Watched {
    /// The host path of a path relative to the container's root: on a volume, below its
    /// host directory; otherwise in the upper dir.
    fn host(&self, rel: &Path) -> PathBuf {
        self.volume_of(rel)
            .map_or_else(|| self.upper.join(rel), |(src, inner)| src.join(inner))
    }

    /// `symlink_metadata` of `rel`, looked up beneath its upper dir or volume without
    /// following any symlink (a directory the container swapped for one is not followed onto
    /// the host).
    fn lstat(&self, rel: &Path) -> Result<std::fs::Metadata, FsError> {
        let (root, inner) = self.root_of(rel)?;
        root.metadata(&inner)
    }

    /// The target of the symbolic link `rel`, read through the link's own descriptor (opened
    /// beneath its upper dir or volume without following it).
    fn link_target(&self, rel: &Path) -> Option<Vec<u8>> {
        let (root, inner) = self.root_of(rel).ok()?;
        let (fd, _) = root.open_path(&inner).ok()?;
        falco_args::link_target(&fd)
    }

    /// Remembers the size of a file made or written at runtime (bounded, like `attrs`).
    fn note_size(&mut self, rel: &Path, size: u64) {
        if self.sizes.len() > 50_000 {
            self.sizes.clear();
        }
        self.sizes.insert(rel.to_path_buf(), size);
    }

    /// Opens the directory `rel` beneath its upper dir or volume, never following a symlink.
    fn open_dir(&self, rel: &Path) -> Result<OwnedFd, FsError> {
        let (root, inner) = self.root_of(rel)?;
        Ok(root.open_dir(&inner)?.into_fd())
    }

    /// Reads the regular file `rel` (a package database) beneath its upper dir or volume, never
    /// following a symlink, at most [`AGENT_PACKAGE_DB_CAP`] bytes.
    fn read_capped(&self, rel: &Path) -> Result<Vec<u8>, FsError> {
        let (root, inner) = self.root_of(rel)?;
        root.read(&inner, Limit::Whole(AGENT_PACKAGE_DB_CAP))
    }

    /// The upper dir or the volume `rel` is on, as a root (from the descriptor already open:
    /// no path is resolved again), and `rel` inside it.
    fn root_of<'a>(&'a self, rel: &'a Path) -> Result<(&'a Root, InContainer), FsError> {
        let (dir, inner) = self
            .volume_dir_of(rel)
            .map_or((&self.upper_dir, rel), |((_, _, r), inner)| (r, inner));
        Ok((dir, InContainer::new(inner.as_os_str())))
    }

    /// The volume `rel` is on (the deepest mount point above it) and the path inside it.
    fn volume_of<'a>(&'a self, rel: &'a Path) -> Option<(&'a Path, &'a Path)> {
        self.volume_dir_of(rel)
            .map(|((src, _, _), inner)| (src.as_path(), inner))
    }

    /// The volume `rel` is on, with its open directory, and the path inside it.
    fn volume_dir_of<'a>(
        &'a self,
        rel: &'a Path,
    ) -> Option<(&'a (PathBuf, PathBuf, Root), &'a Path)> {
        self.volumes
            .iter()
            .filter_map(|v| {
                rel.strip_prefix(&v.1)
                    .ok()
                    .map(|inner| (v, inner, v.1.components().count()))
            })
            .max_by_key(|(_, _, depth)| *depth)
            .map(|(v, inner, _)| (v, inner))
    }

    /// The path relative to the container's root of a watched host path.
    fn rel_of(&self, host: &Path) -> Option<PathBuf> {
        if let Ok(r) = host.strip_prefix(&self.upper) {
            return Some(r.to_path_buf());
        }
        self.volumes
            .iter()
            .filter_map(|(src, dest, _)| {
                host.strip_prefix(src)
                    .ok()
                    .map(|inner| (dest.join(inner), src.components().count()))
            })
            .max_by_key(|(_, depth)| *depth)
            .map(|(r, _)| r)
    }
}

/// Host directories never watched even when bind-mounted writable: marking them would put
/// the host's own file work on the notification path.
const HOST_DIRS_NOT_WATCHED: [&str; 14] = [
    "/", "/etc", "/usr", "/var", "/var/lib", "/var/run", "/run", "/proc", "/sys", "/dev", "/home",
    "/root", "/boot", "/tmp",
];

struct Sensor {
    registry: Arc<ContainerRegistry>,
    emitter: SharedEmitter,
    procs: Arc<Mutex<ProcTable>>,
    stats: Arc<FileStats>,
    config: FileDriftConfig,
    watcher: DirWatcher,
    containers: HashMap<ContainerId, Watched>,
    dirs: HashMap<WatchedDirHandle, (ContainerId, PathBuf)>,
    /// Directories marked per container (each at most its share of the limit, given back
    /// when the container is destroyed).
    budget: WatchBudget,
    /// Package databases changed and not yet compared: when last changed, and by whom.
    pending_packages: HashMap<(ContainerId, PathBuf), (Instant, u32)>,
    /// Files reported created, so the write that follows the create is not a second alert.
    recent_creates: HashMap<(ContainerId, PathBuf), Instant>,
    /// Package installers' changes waiting for their database ([`package_hold`]).
    held: package_hold::HeldEvents,
    judge: Judge,
    host_mnt_ns: Option<u64>,
    host_pids: HashMap<u32, bool>,
    host_pids_since: Instant,
    started: SystemTime,
    /// Until when the notices of the current read may wait for their processes' exec
    /// records ([`crate::proctable::RECORD_WAIT`] after the first wait).
    actor_deadline: Option<Instant>,
    /// While a new directory's scan reports what it found: the process whose notice made
    /// the directory appear, to which those entries are attributed, saying so.
    inferring: Option<InferredActor>,
    /// What each directory's mark reports, from the rules ([`dir_marks`]).
    plan: dir_marks::MarkPlan,
    /// Every event is recorded (`--record`, replayed later against any rules): every
    /// directory is marked for everything.
    record_all: bool,
    /// While the trees are walked again for new rules: what the walk finds was there before
    /// and is not reported.
    quiet_scan: bool,
    /// The kernel lacks ignore masks that keep directories' events (before Linux 6.0); said
    /// once.
    told_no_ignore: bool,
}

/// The actor of the entries a scan finds below a directory that has just appeared: they
/// were made before the directory's mark, so no notice named their process. The process
/// that made the directory appear (its `mkdir`, or the copy-up its first change caused) is
/// the likeliest, and is named as inferred, never as observed: another process may have
/// written into the directory in the same instant.
#[derive(Clone, Debug)]
struct InferredActor {
    pid: u32,
    /// The directory, as the container names it.
    dir: String,
}

impl InferredActor {
    /// What the alert's `drift.detail` says of the actor.
    fn note(&self) -> String {
        format!(
            "actor inferred: made before {} was watched; pid {} made that directory appear",
            self.dir, self.pid
        )
    }
}

impl FileDrift {
    pub fn start(
        registry: Arc<ContainerRegistry>,
        emitter: SharedEmitter,
        procs: Arc<Mutex<ProcTable>>,
        config: FileDriftConfig,
    ) -> std::io::Result<FileDrift> {
        let watcher = DirWatcher::new()?;
        let stats = Arc::new(FileStats::default());
        let (plan, record_all) = {
            let e = emitter.lock().unwrap_or_else(|p| p.into_inner());
            let plan = dir_marks::MarkPlan::new(e.rules().file_scope(), e.rules_generation());
            (plan, e.records())
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut sensor = Sensor {
            budget: WatchBudget::new(&config.limits),
            inferring: None,
            registry,
            emitter,
            procs,
            stats: stats.clone(),
            config,
            watcher,
            containers: HashMap::new(),
            dirs: HashMap::new(),
            pending_packages: HashMap::new(),
            recent_creates: HashMap::new(),
            held: package_hold::HeldEvents::default(),
            judge: Judge::new(),
            host_mnt_ns: driftwatch_sensor::host_mnt_ns().ok().map(u64::from),
            host_pids: HashMap::new(),
            host_pids_since: Instant::now(),
            started: SystemTime::now(),
            actor_deadline: None,
            plan,
            record_all,
            quiet_scan: false,
            told_no_ignore: false,
        };
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("dw-file-sensor".into())
                .spawn(move || sensor.run(&stop))?
        };
        Ok(FileDrift {
            stop,
            thread: Some(thread),
            stats,
        })
    }
}

fn container_path(rel: &Path) -> PathBuf {
    Path::new("/").join(rel)
}

fn is_whiteout(md: &std::fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

fn typechar(md: &std::fs::Metadata) -> char {
    let t = md.file_type();
    if t.is_dir() {
        'd'
    } else if t.is_symlink() {
        'l'
    } else if t.is_fifo() {
        'p'
    } else if t.is_socket() {
        'u'
    } else {
        'f'
    }
}

/// The setuid and setgid bits of a mode.
const SETID: u32 = 0o6000;

/// The `fd.typechar` of an image layer's entry (a whiteout names what it hides).
fn stat_typechar(st: &rustix::fs::Stat) -> char {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::Fifo => 'p',
        FileType::Socket => 'u',
        _ => 'f',
    }
}

/// Drops the notices a later one in the same read makes redundant: a write closed (or
/// attributes changed) on an entry by a process, when the same process's same notice on the
/// same entry follows with nothing else about that entry in between (a log written line by
/// line). The entry is read when its notice is handled, so the last notice reports the same
/// change. Returns how many were dropped.
fn coalesce(notices: &mut Vec<FileNotice>) -> usize {
    const REPEATABLE: u64 = op::CLOSE_WRITE | op::ATTRIB;
    if notices.len() < 2 {
        return 0;
    }
    let before = notices.len();
    // Walking backwards: the entries whose latest notice (so far) is a repeatable one, with
    // that notice's mask and pid.
    let mut later: HashMap<&DirEntryRef, (u64, u32)> = HashMap::new();
    let mut keep = vec![true; notices.len()];
    for (i, n) in notices.iter().enumerate().rev() {
        let Some(e) = &n.entry else {
            continue;
        };
        let repeatable =
            n.old.is_none() && n.mask & !(op::ONDIR | op::EVENT_ON_CHILD) & !REPEATABLE == 0;
        if repeatable && later.get(e) == Some(&(n.mask, n.pid)) {
            keep[i] = false;
            continue;
        }
        if repeatable {
            later.insert(e, (n.mask, n.pid));
        } else {
            later.remove(e);
            if let Some(o) = &n.old {
                later.remove(o);
            }
        }
    }
    let mut i = 0;
    notices.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    before - notices.len()
}

/// What the Falco event says beyond its kind and path: `fd.typechar`, `evt.is_open_write`
/// and the arguments ([`falco_args`]).
#[derive(Default)]
struct FileArgs {
    /// `None`: read from the entry as the change left it (`f` when it is gone).
    typechar: Option<char>,
    write: bool,
    flags: u32,
    mode: Option<u32>,
    target: Option<Vec<u8>>,
    owner: Option<(u32, u32)>,
    /// The entry's `lstat`, when the caller has it already: one per event is enough.
    md: Option<std::fs::Metadata>,
}

impl Sensor {
    fn run(&mut self, stop: &AtomicBool) {
        let mut notices = Vec::new();
        let mut last_sync = Instant::now() - Duration::from_secs(1);
        while !stop.load(Ordering::Relaxed) {
            if last_sync.elapsed() >= Duration::from_millis(200) {
                self.remark_for_new_rules();
                self.sync_containers();
                last_sync = Instant::now();
            }
            match self.watcher.wait(Duration::from_millis(100)) {
                Ok(true) => {
                    // Let the exec sensor (which batches for 0.5 ms) record the processes
                    // these notices name before they are looked up.
                    std::thread::sleep(Duration::from_millis(2));
                    notices.clear();
                    if let Err(e) = self.watcher.read(&mut notices) {
                        tracing::warn!("reading file notices: {e}");
                    }
                    self.actor_deadline = None;
                    let dropped = coalesce(&mut notices);
                    self.stats
                        .notices_coalesced
                        .fetch_add(dropped as u64, Ordering::Relaxed);
                    for n in notices.drain(..) {
                        self.handle(n);
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("waiting for file notices: {e}"),
            }
            self.flush_packages(false);
            self.release_held(None, false);
            self.report_budget();
        }
        self.flush_packages(true);
        self.release_held(None, true);
    }

    /// Starts watching containers the registry has learnt of; forgets those it dropped.
    fn sync_containers(&mut self) {
        // Destroyed containers (kept a while in the registry for late exec events) are
        // forgotten at once: their upper dir's fd, their directories and the budget of
        // watched directories they held (churn must not exhaust `limits.watched_dirs`).
        let ids: HashSet<ContainerId> = self
            .registry
            .live_entries()
            .iter()
            .map(|e| e.meta.id.clone())
            .collect();
        let gone: Vec<ContainerId> = self
            .containers
            .keys()
            .filter(|id| !ids.contains(*id))
            .cloned()
            .collect();
        if !gone.is_empty() {
            for id in &gone {
                self.containers.remove(id);
                self.budget.release(id);
            }
            let live = &self.containers;
            self.dirs.retain(|_, (id, _)| live.contains_key(id));
            self.stats
                .dirs_watched
                .store(self.budget.used_total(), Ordering::Relaxed);
            self.pending_packages
                .retain(|(id, _), _| live.contains_key(id));
            self.recent_creates
                .retain(|(id, _), _| live.contains_key(id));
        }
        for id in ids {
            if self.containers.contains_key(&id) {
                continue;
            }
            let Some(entry) = self.registry.get(&id) else {
                continue;
            };
            // A pod's sandbox runs nothing but its pause process; what lands in its root is
            // the runtime's (resolv.conf, hostname), written as the pod starts.
            if entry.record.as_ref().is_some_and(|r| r.pod_sandbox) {
                continue;
            }
            let Some(layers) = entry.fs.layers.clone() else {
                continue;
            };
            let Ok(upper_dir) = Root::layer(entry.meta.id.short(), &layers.upper) else {
                continue;
            };
            let lower_roots = layers
                .lowers
                .iter()
                .filter_map(|l| Root::layer(entry.meta.id.short(), l).ok())
                .collect();
            let volumes: Vec<(PathBuf, PathBuf, Root)> = entry
                .record
                .as_ref()
                .map(|r| r.runtime_config.mounts.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m.rw && (m.kind == "bind" || m.kind == "volume"))
                .filter(|m| {
                    !HOST_DIRS_NOT_WATCHED
                        .iter()
                        .any(|d| m.source == Path::new(d))
                })
                .filter_map(|m| {
                    // The mount's source is the operator's host path, not the container's.
                    let dir =
                        Root::open_host_dir(entry.meta.id.short(), &m.source, Resolve::Beneath)
                            .ok()?;
                    let dest = m
                        .destination
                        .strip_prefix("/")
                        .map(Path::to_path_buf)
                        .ok()?;
                    Some((m.source, dest, dir))
                })
                .collect();
            let sources: Vec<PathBuf> = volumes.iter().map(|(s, _, _)| s.clone()).collect();
            self.containers.insert(
                id.clone(),
                Watched {
                    meta: entry.meta.clone(),
                    upper: layers.upper.clone(),
                    upper_dir,
                    lowers: layers.lowers.clone(),
                    lower_roots,
                    volumes,
                    attrs: HashMap::new(),
                    sizes: HashMap::new(),
                    packages: HashMap::new(),
                },
            );
            self.watch_tree(&id, &layers.upper, true, 0);
            for src in sources {
                self.watch_tree(&id, &src, true, 0);
            }
        }
    }

    /// Marks `dir` and every directory below it; reports entries made since the agent
    /// started that the marks came too late for.
    /// `pid` made the directory appear (0 when unknown, as on the first scan of a
    /// container): entries found in it were most likely made by the same process, as part
    /// of one copy-up or one `mkdir -p && write`, and are reported with it as an inferred
    /// actor ([`InferredActor`]), said so in `drift.detail`.
    ///
    /// The walk is iterative and goes by open directories, never by path: `dir` is opened
    /// beneath its layer or volume without following a symlink, each subdirectory relative
    /// to its parent's descriptor (`O_NOFOLLOW`), so a directory the container swaps for a
    /// symlink is never followed onto the host. Directories more than [`MAX_WATCH_DEPTH`]
    /// levels below the container's root are not marked, and one call looks at no more than
    /// [`MAX_WATCH_SCAN`] entries; both are counted (`dirs_too_deep`, `scans_truncated`) and
    /// logged with the container and path.
    fn watch_tree(&mut self, id: &ContainerId, dir: &Path, initial: bool, pid: u32) {
        let Some(w) = self.containers.get(id) else {
            return;
        };
        let Some(rel) = w.rel_of(dir) else {
            return;
        };
        let depth = rel.components().count();
        let top = match w.open_dir(&rel) {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                tracing::debug!("file drift: not watched: {e}");
                return;
            }
        };
        let label = w.meta.id.short().to_string();
        let inferred = (!initial && pid != 0).then(|| InferredActor {
            pid,
            dir: container_path(&rel).to_string_lossy().into_owned(),
        });
        let outer = std::mem::replace(&mut self.inferring, inferred);
        self.scan_tree(id, dir, initial, pid, top, depth, &label);
        self.inferring = outer;
    }

    /// The walk of [`Sensor::watch_tree`], from `top` (the open `dir`, `depth` levels below
    /// the container's root).
    #[expect(
        clippy::too_many_arguments,
        reason = "the walk's start, as watch_tree opened it"
    )]
    fn scan_tree(
        &mut self,
        id: &ContainerId,
        dir: &Path,
        initial: bool,
        pid: u32,
        top: Arc<OwnedFd>,
        depth: usize,
        label: &str,
    ) {
        // Directories to mark: (the open parent, the name in it, host path, depth); the root
        // of the walk is already open.
        let mut stack: Vec<(Arc<OwnedFd>, Option<OsString>, PathBuf, usize)> =
            vec![(top, None, dir.to_path_buf(), depth)];
        let mut scanned = 0u64;
        let mut too_deep: Option<PathBuf> = None;
        while let Some((parent, name, d, depth)) = stack.pop() {
            if depth > MAX_WATCH_DEPTH {
                self.stats.dirs_too_deep.fetch_add(1, Ordering::Relaxed);
                too_deep.get_or_insert(d);
                continue;
            }
            let fd = match &name {
                None => parent,
                Some(n) => match rustix::fs::openat(
                    &*parent,
                    n.as_os_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => Arc::new(fd),
                    Err(_) => continue, // gone, or no longer a directory
                },
            };
            let Some(marks) = self.marks_of(id, &d) else {
                // Nothing can match below: no mark, and its tree is not walked.
                self.stats.dirs_unmarked.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if !self.take_watch(id, &d) {
                continue;
            }
            match self.watcher.watch_dir_fd(fd.as_fd(), &d, marks) {
                Ok(true) => {}
                Ok(false) => {
                    if !self.told_no_ignore {
                        self.told_no_ignore = true;
                        tracing::warn!(
                            "file drift: this kernel has no FAN_MARK_IGNORE (Linux 6.0): files made where only directories are followed are reported and dropped by the agent"
                        );
                    }
                }
                Err(e) => {
                    tracing::debug!("{e}");
                    self.give_back_watch(id);
                    continue;
                }
            }
            // Taken once the mark is in place: an entry born later has its own notice.
            let marked = SystemTime::now();
            let Ok(rd) = rustix::fs::Dir::read_from(&*fd) else {
                continue;
            };
            for ent in rd.flatten() {
                let n = ent.file_name().to_bytes();
                if n == b"." || n == b".." {
                    continue;
                }
                scanned += 1;
                if scanned > MAX_WATCH_SCAN {
                    self.stats.scans_truncated.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "file drift: container {label}: scanning {} stopped at the {MAX_WATCH_SCAN} entry cap; directories below are not watched",
                        driftwatch_fs::escape(dir.as_os_str().as_bytes())
                    );
                    return;
                }
                let n = OsStr::from_bytes(n).to_os_string();
                let Ok(st) = rustix::fs::statat(&*fd, n.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                else {
                    continue;
                };
                // Born after the mark: its own notice names its process (and marks it, for a
                // directory); reporting it here too would name the inferred actor twice.
                if !initial && born_after(&fd, &n, marked) {
                    continue;
                }
                let path = d.join(&n);
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    // Made inside a directory just made (`mkdir -p`), before its mark.
                    if !initial
                        && let Some(rel) = self.containers.get(id).and_then(|w| w.rel_of(&path))
                    {
                        self.dir_appeared(id, &rel, pid);
                    }
                    stack.push((fd.clone(), Some(n), path, depth + 1));
                } else if !initial || (!self.quiet_scan && mtime(&st) > self.started) {
                    // Made before its directory was marked: catch up, actor inferred (or
                    // unknown on a container's first scan).
                    let Some(w) = self.containers.get(id) else {
                        continue;
                    };
                    let Some(rel) = w.rel_of(&path) else {
                        continue;
                    };
                    self.caught_up(id, &rel, pid);
                }
            }
        }
        if let Some(p) = too_deep {
            let shown = self
                .containers
                .get(id)
                .and_then(|w| w.rel_of(&p))
                .map(|r| shortened(&container_path(&r)))
                .unwrap_or_default();
            tracing::warn!(
                "file drift: container {label}: directories more than {MAX_WATCH_DEPTH} levels deep are not watched (the max_depth cap), first {shown}"
            );
        }
    }

    /// What the mark of the host directory `dir` of `id` reports ([`dir_marks`]); `None`
    /// when nothing can match below it.
    fn marks_of(&mut self, id: &ContainerId, dir: &Path) -> Option<DirMarks> {
        if self.record_all {
            return Some(DirMarks::ALL);
        }
        let Some(rel) = self.containers.get(id).and_then(|w| w.rel_of(dir)) else {
            return Some(DirMarks::ALL);
        };
        let cdir = container_path(&rel);
        let (children, below) = self.plan.reach(&cdir);
        let package_dir = dir_marks::holds_package_db(&cdir);
        dir_marks::marks_for(children, below, package_dir, || {
            self.image_has_entries(id, &rel)
        })
    }

    /// Whether an image layer has entries in the directory `rel` (whose removal would come
    /// as whiteouts). True when a layer cannot be read.
    fn image_has_entries(&self, id: &ContainerId, rel: &Path) -> bool {
        let Some(w) = self.containers.get(id) else {
            return true;
        };
        if w.volume_of(rel).is_some() {
            return false; // a volume is not the image
        }
        let path = InContainer::new(rel.as_os_str());
        if w.lower_roots.len() != w.lowers.len() {
            return true; // a layer could not be opened
        }
        w.lower_roots.iter().any(|root| {
            if root.stat(&path).is_err() {
                return false; // not in this layer
            }
            let Ok(dir) = root.open_dir(&path) else {
                return true;
            };
            let Ok(rd) = rustix::fs::Dir::read_from(dir.into_fd()) else {
                return true;
            };
            rd.flatten()
                .any(|e| !matches!(e.file_name().to_bytes(), b"." | b".."))
        })
    }

    /// The rules were replaced: every directory is marked again for what the new rules can
    /// match (a directory no rule could reach may be reachable now, and the reverse). Changes
    /// made while the marks are being replaced may be missed; what the walk finds is not
    /// reported.
    fn remark_for_new_rules(&mut self) {
        let (generation, scope) = {
            let e = self.emitter.lock().unwrap_or_else(|p| p.into_inner());
            if e.rules_generation() == self.plan.generation {
                return;
            }
            (e.rules_generation(), e.rules().file_scope())
        };
        self.plan = dir_marks::MarkPlan::new(scope, generation);
        if let Err(e) = self.watcher.unwatch_all() {
            tracing::warn!("file drift: removing the marks for new rules: {e}");
        }
        let ids: Vec<ContainerId> = self.containers.keys().cloned().collect();
        for id in &ids {
            self.budget.release(id);
        }
        self.stats.dirs_watched.store(0, Ordering::Relaxed);
        self.dirs.clear();
        self.quiet_scan = true;
        for id in &ids {
            let Some(w) = self.containers.get(id) else {
                continue;
            };
            let roots: Vec<PathBuf> = std::iter::once(w.upper.clone())
                .chain(w.volumes.iter().map(|(src, _, _)| src.clone()))
                .collect();
            for root in roots {
                self.watch_tree(id, &root, true, 0);
            }
        }
        self.quiet_scan = false;
        tracing::info!(
            "file drift: directories marked again for the new rules ({} marked)",
            self.budget.used_total()
        );
    }

    /// One directory of `id`'s budget (its share of `limits.watched_dirs`); false, counted
    /// and remembered for the container's "budget exceeded" alert, when it is spent.
    fn take_watch(&mut self, id: &ContainerId, dir: &Path) -> bool {
        let containers = &self.containers;
        let what = || {
            containers.get(id).and_then(|w| w.rel_of(dir)).map_or_else(
                || dir.display().to_string(),
                |r| container_path(&r).display().to_string(),
            )
        };
        match self.budget.take(id, what) {
            Ok(()) => {
                self.stats.dirs_watched.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(why) => {
                self.stats.dirs_skipped.fetch_add(1, Ordering::Relaxed);
                if why == Exhausted::Container {
                    self.stats
                        .dirs_skipped_container_share
                        .fetch_add(1, Ordering::Relaxed);
                }
                false
            }
        }
    }

    fn give_back_watch(&mut self, id: &ContainerId) {
        self.budget.give_back(id);
        let _ = self
            .stats
            .dirs_watched
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    /// The "budget exceeded" alerts due: a container whose directories went unwatched
    /// (file drift there is not seen) is told so, at most every few seconds.
    fn report_budget(&mut self) {
        for t in self.budget.due_reports(Instant::now()) {
            let Some(w) = self.containers.get(&t.id) else {
                continue;
            };
            let (limit, why) = match t.reason {
                Exhausted::Container => (
                    format!(
                        "{} of the {} watched directories (limits.watched_dirs_container_percent)",
                        self.budget.per_container(),
                        self.budget.total()
                    ),
                    "its share is spent",
                ),
                Exhausted::Global => (
                    format!(
                        "{} watched directories in all (limits.watched_dirs)",
                        self.budget.total()
                    ),
                    "the node's limit is reached",
                ),
            };
            let alert = crate::fairness::budget_alert(
                &crate::emitter::hostname(&self.emitter),
                &crate::fairness::container_fields(&w.meta),
                "file-drift watch",
                limit,
                t.refused,
                format!(
                    "directories not watched ({why}; file drift below them is not seen), e.g. {}",
                    t.example
                ),
            );
            tracing::warn!("{}", alert.output);
            self.stats.budget_alerts.fetch_add(1, Ordering::Relaxed);
            crate::emitter::emit_alert(&self.emitter, &alert);
        }
    }

    /// An entry found by a scan rather than a notice (its directory was marked after it was
    /// made): a copy-up is judged by content, since its writes were not seen.
    fn caught_up(&mut self, id: &ContainerId, rel: &Path, pid: u32) {
        let before = self.stats.events.load(Ordering::Relaxed);
        self.appeared(id, rel, pid);
        if self.stats.events.load(Ordering::Relaxed) != before {
            // A new file found with setuid or setgid bits got them before its directory was
            // marked (`cp x /tmp/y && chmod u+s /tmp/y` as /tmp is first copied up): that
            // chmod has no notice of its own.
            let setid = self
                .containers
                .get(id)
                .and_then(|w| w.lstat(rel).ok())
                .is_some_and(|md| md.is_file() && md.mode() & SETID != 0);
            if setid {
                self.attrs_changed(id, rel, pid);
            }
            return;
        }
        if !self.in_image(id, rel) {
            return;
        }
        let Some(w) = self.containers.get(id) else {
            return;
        };
        let layers = driftwatch_model::OverlayLayers {
            upper: w.upper.clone(),
            lowers: w.lowers.clone(),
            merged: None,
        };
        if let Ok(j) = self.judge.judge(&layers, container_path(rel))
            && j.verdict == Verdict::Modified
        {
            let args = FileArgs {
                typechar: Some('f'),
                write: true,
                flags: falco_args::written_flags(None, 0),
                ..FileArgs::default()
            };
            let detail = Some("content differs from the image's".into());
            let kind = EventKind::Open;
            self.emit_typed(id, kind, rel, None, pid, Verdict::Modified, detail, args);
        }
    }

    /// A process of the host (its mount namespace is the host's).
    fn is_host_process(&mut self, pid: u32) -> bool {
        let Some(host) = self.host_mnt_ns else {
            return false;
        };
        if pid == 0 {
            return false;
        }
        // Cached briefly: the same few processes make most notices (pids are reused, so
        // the cache is forgotten every few seconds).
        if self.host_pids_since.elapsed() > Duration::from_secs(3) || self.host_pids.len() > 4096 {
            self.host_pids.clear();
            self.host_pids_since = Instant::now();
        }
        *self.host_pids.entry(pid).or_insert_with(|| {
            driftwatch_fs::host::proc_metadata(pid, "ns/mnt").is_ok_and(|m| m.ino() == host)
        })
    }

    /// The container and host path of the directory a notice names.
    fn locate(&mut self, e: &DirEntryRef) -> Option<(ContainerId, PathBuf)> {
        if let Some((id, dir)) = self.dirs.get(&e.dir) {
            return Some((id.clone(), dir.join(e.name_os())));
        }
        // open_by_handle_at needs a descriptor on the handle's filesystem, and names the
        // directory relative to that descriptor's mount: try each watched root with its own
        // descriptor (the upper dirs share one filesystem; volumes may be elsewhere).
        let mut found = None;
        'search: for (id, w) in &self.containers {
            let roots = std::iter::once((w.upper_dir.as_fd().as_raw_fd(), &w.upper)).chain(
                w.volumes
                    .iter()
                    .map(|(src, _, r)| (r.as_fd().as_raw_fd(), src)),
            );
            for (fd, root) in roots {
                if let Ok(p) = resolve_dir(fd, &e.dir)
                    && p.starts_with(root)
                    && let Some(rel) = w.rel_of(&p)
                {
                    found = Some((id.clone(), rel));
                    break 'search;
                }
            }
        }
        let Some((id, rel)) = found else {
            self.stats.unresolved.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if self.dirs.len() > 100_000 {
            self.dirs.clear();
        }
        self.dirs.insert(e.dir.clone(), (id.clone(), rel.clone()));
        Some((id, rel.join(e.name_os())))
    }

    fn handle(&mut self, n: FileNotice) {
        self.stats.notices.fetch_add(1, Ordering::Relaxed);
        if n.has(op::Q_OVERFLOW) {
            self.stats.overflows.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("file notices lost: the kernel's fanotify queue overflowed");
            return;
        }
        let Some(entry) = n.entry.clone() else { return };
        if self.is_host_process(n.pid) {
            // The engine creating or removing the container's layers, or an admin on the
            // host: not the container drifting.
            return;
        }
        let Some((id, rel)) = self.locate(&entry) else {
            return;
        };
        let pid = n.pid;
        let old = if n.has(op::RENAME) {
            n.old
                .as_ref()
                .and_then(|o| self.locate(o))
                .filter(|(oid, _)| *oid == id)
        } else {
            None
        };
        if n.has(op::ONDIR) {
            self.handle_dir(&n, &id, &rel, old);
            return;
        }
        if n.has(op::RENAME) {
            match old {
                Some((_, old_rel)) => self.emit_file(
                    &id,
                    EventKind::Rename,
                    &rel,
                    Some(&old_rel),
                    pid,
                    Verdict::Modified,
                    None,
                ),
                // From outside the upper dir: overlayfs's work dir (copy-up, whiteout).
                None => self.appeared(&id, &rel, pid),
            }
        }
        if n.has(op::CREATE) {
            self.appeared(&id, &rel, pid);
        }
        if n.has(op::DELETE) && !n.has(op::CREATE | op::RENAME) {
            let whiteout = self
                .containers
                .get(&id)
                .and_then(|w| w.lstat(&rel).ok())
                .is_some_and(|md| is_whiteout(&md));
            if !whiteout {
                self.emit_file(
                    &id,
                    EventKind::Unlink,
                    &rel,
                    None,
                    pid,
                    Verdict::Deleted,
                    Some("a file created at runtime was removed".into()),
                );
            }
        }
        // After a creation too: a new file re-moded before its creation's notice was read
        // comes in one notice (`cp x y && chmod u+s y`).
        if n.has(op::ATTRIB) {
            self.attrs_changed(&id, &rel, pid);
        }
        let just_created = self
            .recent_creates
            .remove(&(id.clone(), rel.clone()))
            .is_some_and(|t| t.elapsed() < Duration::from_secs(2));
        // A copy-up for writing arrives as CREATE|CLOSE_WRITE: the write is still reported;
        // a new file's first write is not (its creation was).
        if n.has(op::CLOSE_WRITE)
            && !just_created
            && let Some((verdict, image_size)) = self.written_verdict(&id, &rel)
        {
            self.written(&id, &rel, pid, verdict, image_size);
        }
        self.note_package_db(&id, &rel, pid);
    }

    /// A notice about a directory: made (`mkdir`), renamed, removed (`rmdir`, reported as
    /// `unlink`) or re-moded. A new directory is marked at once; entries found under it are
    /// caught up with the process that made the directory appear as their inferred actor,
    /// said so: a wrong actor given as observed is worse than none.
    fn handle_dir(
        &mut self,
        n: &FileNotice,
        id: &ContainerId,
        rel: &Path,
        old: Option<(ContainerId, PathBuf)>,
    ) {
        let pid = n.pid;
        // A directory moved within the container holds what other processes made before the
        // move: its mover is not their inferred actor.
        let maker = if old.is_some() { 0 } else { pid };
        if n.has(op::RENAME) {
            // The paths of the moved directory and of every directory below it changed.
            self.dirs.clear();
        }
        match old {
            Some((_, old_rel)) => {
                let args = FileArgs {
                    typechar: Some('d'),
                    ..FileArgs::default()
                };
                let kind = EventKind::Rename;
                let old = Some(old_rel.as_path());
                self.emit_typed(id, kind, rel, old, pid, Verdict::Modified, None, args);
            }
            // A rename from outside the upper dir is overlayfs's copy-up of an image
            // directory (from its work dir): `dir_appeared` tells it by the image.
            None if n.has(op::CREATE | op::RENAME) => self.dir_appeared(id, rel, pid),
            None => {}
        }
        if n.has(op::CREATE | op::RENAME) {
            let host = self.containers.get(id).map(|w| w.host(rel));
            if let Some(host) = host {
                self.watch_tree(id, &host, false, maker);
            }
        }
        if n.has(op::DELETE) && !n.has(op::CREATE | op::RENAME) {
            let args = FileArgs {
                typechar: Some('d'),
                ..FileArgs::default()
            };
            let detail = Some("a directory created at runtime was removed".to_string());
            let kind = EventKind::Unlink;
            self.emit_typed(id, kind, rel, None, pid, Verdict::Deleted, detail, args);
        }
        if n.has(op::ATTRIB) && !n.has(op::CREATE) {
            self.attrs_changed(id, rel, pid);
        }
    }

    /// A write closed on `rel` that changed it: `open` for writing, `O_TRUNC` when the
    /// file is shorter than when last seen (or than the image's).
    fn written(
        &mut self,
        id: &ContainerId,
        rel: &Path,
        pid: u32,
        verdict: Verdict,
        image_size: Option<u64>,
    ) {
        let Some(w) = self.containers.get_mut(id) else {
            return;
        };
        let md = w.lstat(rel).ok();
        // Gone by now (renamed or removed right after the write): its size is not known.
        let flags = match &md {
            Some(m) => {
                let before = w.sizes.get(rel).copied().or(image_size);
                w.note_size(rel, m.len());
                falco_args::written_flags(before, m.len())
            }
            None => falco_args::written_flags(None, 0),
        };
        let args = FileArgs {
            typechar: Some('f'),
            write: true,
            flags,
            md,
            ..FileArgs::default()
        };
        self.emit_typed(id, EventKind::Open, rel, None, pid, verdict, None, args);
    }

    /// What a write closed on `rel` amounts to, with the image's size of the file: `None`
    /// when an image file was opened for writing (and so copied up) but its bytes are still
    /// the image's (`touch` opens files `O_WRONLY`). Decided by content, like copy-ups at
    /// exec.
    fn written_verdict(&self, id: &ContainerId, rel: &Path) -> Option<(Verdict, Option<u64>)> {
        let w = self.containers.get(id)?;
        // The one verdict function, as for execs: the write happened in the writable layer
        // (or a volume); only the content tells a copy-up from a change.
        let mut facts = FileFacts {
            residence: Residence::Volume,
            unlinked: false,
            content: Content::NotCompared,
            identity: Identity::ByPath,
            existed: true,
            // A write, not an exec: the mode is the chmod event's.
            made_executable: false,
        };
        let mut image_size = None;
        if w.volume_of(rel).is_none() {
            image_size = self
                .image_layer(id, rel)
                .map(|(_, st)| u64::try_from(st.st_size).unwrap_or(0));
            let lower = image_size.is_some();
            facts.residence = Residence::RootOverlay { upper: true, lower };
            if lower {
                let layers = driftwatch_model::OverlayLayers {
                    upper: w.upper.clone(),
                    lowers: w.lowers.clone(),
                    merged: None,
                };
                facts.content = content_of(&self.judge.judge(&layers, container_path(rel)));
            }
        }
        match driftwatch_model::verdict(&facts) {
            Verdict::Image | Verdict::CopyUp => None,
            v => Some((v, image_size)),
        }
    }

    /// The image's file at `rel`: the top-most lower layer that has it.
    /// The image layer that has `rel` (not as a whiteout), looked up beneath each layer dir
    /// without following symlinks.
    fn image_layer(&self, id: &ContainerId, rel: &Path) -> Option<(&Root, rustix::fs::Stat)> {
        let w = self.containers.get(id)?;
        if w.volume_of(rel).is_some() {
            return None; // a volume is not the image
        }
        let path = InContainer::new(rel.as_os_str());
        w.lower_roots.iter().find_map(|root| {
            let st = root.stat(&path).ok()?;
            let whiteout = rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::CharacterDevice
                && st.st_rdev == 0;
            (!whiteout).then_some((root, st))
        })
    }

    /// The image's (permission bits, uid, gid) of `rel`.
    fn image_attrs(&self, id: &ContainerId, rel: &Path) -> Option<(u32, u32, u32)> {
        self.image_layer(id, rel)
            .map(|(_, st)| (st.st_mode & 0o7777, st.st_uid, st.st_gid))
    }

    fn in_image(&self, id: &ContainerId, rel: &Path) -> bool {
        self.image_layer(id, rel).is_some()
    }

    /// An entry appeared in the upper dir: a new file, a whiteout or a copy-up.
    fn appeared(&mut self, id: &ContainerId, rel: &Path, pid: u32) {
        let Some(w) = self.containers.get(id) else {
            return;
        };
        let Ok(md) = w.lstat(rel) else {
            return;
        };
        if is_whiteout(&md) {
            if let Some((_, st)) = self.image_layer(id, rel) {
                self.emit_typed(
                    id,
                    EventKind::Unlink,
                    rel,
                    None,
                    pid,
                    Verdict::Deleted,
                    Some("an image file was removed".into()),
                    FileArgs {
                        typechar: Some(stat_typechar(&st)),
                        md: Some(md),
                        ..FileArgs::default()
                    },
                );
            }
            return;
        }
        if md.is_dir() {
            self.dir_appeared(id, rel, pid);
            return;
        }
        let now = (md.mode() & 0o7777, md.uid(), md.gid());
        match self.image_attrs(id, rel) {
            Some(before) => {
                // A copy-up: silent unless mode or owner differ from the image's.
                if let Some(w) = self.containers.get_mut(id) {
                    w.attrs.insert(rel.to_path_buf(), before);
                }
                if now != before {
                    self.attrs_changed(id, rel, pid);
                }
            }
            None => {
                if let Some(w) = self.containers.get_mut(id) {
                    if w.attrs.len() > 50_000 {
                        w.attrs.clear();
                    }
                    // Creations do not set setuid/setgid bits (`chmod` does, after): bits
                    // seen already were set before this notice was read, and are still to
                    // be reported.
                    w.attrs
                        .insert(rel.to_path_buf(), (now.0 & !SETID, now.1, now.2));
                    if md.is_file() {
                        w.note_size(rel, md.len());
                    }
                }
                if self.recent_creates.len() > 10_000 {
                    self.recent_creates.clear();
                }
                self.recent_creates
                    .insert((id.clone(), rel.to_path_buf()), Instant::now());
                let (kind, args, detail) = self.created_shape(id, rel, md);
                self.emit_typed(id, kind, rel, None, pid, Verdict::Added, detail, args);
            }
        }
        self.note_package_db(id, rel, pid);
    }

    /// The Falco event a new entry the image does not have becomes, with its arguments:
    /// a symbolic link is `symlink` (its target read, bounded); a regular file is `creat`
    /// opened `O_WRONLY|O_CREAT`, except a second name for an existing file (more than one
    /// link on a new entry: `link`, which Falco does not see as an open), reported as a
    /// creation that wrote nothing.
    fn created_shape(
        &self,
        id: &ContainerId,
        rel: &Path,
        md: std::fs::Metadata,
    ) -> (EventKind, FileArgs, Option<String>) {
        let mode = Some(md.mode() & 0o7777);
        if md.file_type().is_symlink() {
            let target = self.containers.get(id).and_then(|w| w.link_target(rel));
            let args = FileArgs {
                typechar: Some('l'),
                target,
                md: Some(md),
                ..FileArgs::default()
            };
            return (EventKind::Symlink, args, None);
        }
        if md.is_file() && md.nlink() > 1 {
            let detail = format!("a hard link ({} names for one file)", md.nlink());
            let args = FileArgs {
                typechar: Some('f'),
                mode,
                md: Some(md),
                ..FileArgs::default()
            };
            return (EventKind::Creat, args, Some(detail));
        }
        let regular = md.is_file();
        let args = FileArgs {
            typechar: Some(typechar(&md)),
            write: regular,
            flags: if regular {
                falco_args::created_flags()
            } else {
                0
            },
            mode,
            md: Some(md),
            ..FileArgs::default()
        };
        (EventKind::Creat, args, None)
    }

    /// A directory appeared: `mkdir` when the image does not have it (a copy-up of an image
    /// directory is no event).
    fn dir_appeared(&mut self, id: &ContainerId, rel: &Path, pid: u32) {
        let Some(w) = self.containers.get(id) else {
            return;
        };
        let Ok(md) = w.lstat(rel) else {
            return;
        };
        if !md.is_dir() || self.in_image(id, rel) {
            return;
        }
        let now = (md.mode() & 0o7777, md.uid(), md.gid());
        if let Some(w) = self.containers.get_mut(id) {
            if w.attrs.len() > 50_000 {
                w.attrs.clear();
            }
            w.attrs.insert(rel.to_path_buf(), now);
        }
        let args = FileArgs {
            typechar: Some('d'),
            mode: Some(now.0),
            md: Some(md),
            ..FileArgs::default()
        };
        self.emit_typed(
            id,
            EventKind::Mkdir,
            rel,
            None,
            pid,
            Verdict::Added,
            None,
            args,
        );
    }

    fn attrs_changed(&mut self, id: &ContainerId, rel: &Path, pid: u32) {
        let Some(w) = self.containers.get(id) else {
            return;
        };
        let Ok(md) = w.lstat(rel) else {
            return;
        };
        if is_whiteout(&md) {
            return;
        }
        let now = (md.mode() & 0o7777, md.uid(), md.gid());
        // A file whose creation was not reported (made where creations cannot matter, a
        // mark that ignores files' creations): creations do not set setuid or setgid bits,
        // so bits seen now were set since.
        let before = match w.attrs.get(rel) {
            Some(b) => *b,
            None => self
                .image_attrs(id, rel)
                .unwrap_or((now.0 & !SETID, now.1, now.2)),
        };
        if let Some(w) = self.containers.get_mut(id) {
            w.attrs.insert(rel.to_path_buf(), now);
        }
        let tc = typechar(&md);
        if now.0 != before.0 {
            let d = format!("mode {:04o} -> {:04o}", before.0, now.0);
            let args = FileArgs {
                typechar: Some(tc),
                mode: Some(now.0),
                md: Some(md.clone()),
                ..FileArgs::default()
            };
            let kind = EventKind::Chmod;
            self.emit_typed(id, kind, rel, None, pid, Verdict::Modified, Some(d), args);
        }
        if (now.1, now.2) != (before.1, before.2) {
            let d = format!("owner {}:{} -> {}:{}", before.1, before.2, now.1, now.2);
            let args = FileArgs {
                typechar: Some(tc),
                owner: Some((now.1, now.2)),
                md: Some(md),
                ..FileArgs::default()
            };
            let kind = EventKind::Chown;
            self.emit_typed(id, kind, rel, None, pid, Verdict::Modified, Some(d), args);
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "an event's parts, named at each call"
    )]
    fn emit_file(
        &mut self,
        id: &ContainerId,
        kind: EventKind,
        rel: &Path,
        old: Option<&Path>,
        pid: u32,
        verdict: Verdict,
        detail: Option<String>,
    ) {
        self.emit_typed(
            id,
            kind,
            rel,
            old,
            pid,
            verdict,
            detail,
            FileArgs::default(),
        );
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "an event's parts, named at each call"
    )]
    fn emit_typed(
        &mut self,
        id: &ContainerId,
        kind: EventKind,
        rel: &Path,
        old: Option<&Path>,
        pid: u32,
        verdict: Verdict,
        detail: Option<String>,
        args: FileArgs,
    ) {
        let Some(w) = self.containers.get(id) else {
            return;
        };
        // The runtime making the container's mount points is setting it up, not changing it.
        if matches!(kind, EventKind::Mkdir | EventKind::Creat)
            && self
                .registry
                .get(id)
                .is_some_and(|e| e.holds_mount_point(&container_path(rel)))
        {
            return;
        }
        let path = container_path(rel).to_string_lossy().into_owned();
        // A rename's old name, or a symbolic link's target (Falco's `fs.path.source` of both).
        let source = old.map(|o| container_path(o).into_os_string().into_vec());
        let raw_names = RawNames::of(
            container_path(rel).as_os_str().as_bytes(),
            source.as_deref().or(args.target.as_deref()),
        );
        let forks = self.config.forks.as_deref();
        let mut process = actor::process_of(&self.procs, forks, pid, &mut self.actor_deadline);
        if let Some(e) = self.registry.get(id) {
            e.name_process(&mut process);
        }
        let detail = match &self.inferring {
            Some(i) if i.pid == pid && pid != 0 => Some(match detail {
                Some(d) => format!("{d}; {}", i.note()),
                None => i.note(),
            }),
            _ => detail,
        };
        let md = args.md.or_else(|| w.lstat(rel).ok());
        // A removed entry's name may be taken by a whiteout by now: what it was is the
        // caller's to say.
        let typechar = args.typechar.unwrap_or_else(|| match (&md, kind) {
            (Some(md), k) if k != EventKind::Unlink => typechar(md),
            _ => 'f',
        });
        // The kernel's time of the change, where the entry still exists to say it.
        let time_ns = md
            .and_then(|md| {
                u64::try_from(md.ctime())
                    .ok()
                    .map(|s| s * 1_000_000_000 + md.ctime_nsec() as u64)
            })
            .unwrap_or_else(driftwatch_model::clock::now_ns);
        let event = Event {
            num: 0,
            time_ns,
            kind,
            process,
            container: Some(w.meta.clone()),
            file: Some(FileRef {
                flags: args.flags,
                mode: args.mode,
                target: args
                    .target
                    .as_deref()
                    .map(|t| String::from_utf8_lossy(t).into_owned()),
                owner: args.owner,
                path: path.clone(),
                old_path: old.map(|o| container_path(o).to_string_lossy().into_owned()),
                write: args.write,
                typechar,
            }),
            net: None,
            drift: Some(DriftFinding {
                provenance: Default::default(),
                enforcement: None,
                kind: DriftKind::File,
                subject: DriftSubject::File,
                verdict,
                path,
                hash: None,
                image_hash: None,
                detail,
            }),
        };
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        self.emit_or_hold(id, event, raw_names);
    }
}

#[cfg(test)]
#[expect(clippy::disallowed_methods, reason = "tests stat their own fixtures")]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    /// The scan skips what its notice will report: an entry born after a time is told by its
    /// birth time.
    #[test]
    fn births_are_told_apart_from_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let before = SystemTime::now() - Duration::from_secs(5);
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let after = SystemTime::now() + Duration::from_secs(5);
        let fd: OwnedFd = std::fs::File::open(dir.path()).unwrap().into();
        let name = OsStr::new("f");
        let keeps_births =
            rustix::fs::statx(&fd, name, AtFlags::empty(), rustix::fs::StatxFlags::BTIME)
                .is_ok_and(|st| st.stx_mask & rustix::fs::StatxFlags::BTIME.bits() != 0);
        assert_eq!(born_after(&fd, name, before), keeps_births);
        assert!(!born_after(&fd, name, after));
        assert!(!born_after(&fd, OsStr::new("missing"), before));
    }

    fn notice(mask: u64, pid: u32, name: &[u8]) -> FileNotice {
        FileNotice {
            mask,
            pid,
            entry: Some(DirEntryRef {
                dir: WatchedDirHandle {
                    handle_type: 1,
                    bytes: b"D".to_vec(),
                },
                name: name.to_vec(),
            }),
            old: None,
        }
    }

    /// Many writes to one log in one read are one notice; a write by another process, a
    /// different notice in between, and other entries are kept.
    #[test]
    fn repeated_writes_to_one_file_are_coalesced() {
        let w = op::CLOSE_WRITE;
        let mut ns = vec![
            notice(w, 1, b"log"),
            notice(w, 1, b"log"),
            notice(w, 2, b"log"),
            notice(w, 1, b"log"),
            notice(w, 1, b"other"),
            notice(op::DELETE, 1, b"log"),
            notice(w, 1, b"log"),
            notice(w, 1, b"log"),
        ];
        assert_eq!(coalesce(&mut ns), 2);
        let kept: Vec<(u64, u32, &[u8])> = ns
            .iter()
            .map(|n| (n.mask, n.pid, n.entry.as_ref().unwrap().name.as_slice()))
            .collect();
        assert_eq!(
            kept,
            [
                (w, 1, &b"log"[..]),
                (w, 2, b"log"),
                (w, 1, b"log"),
                (w, 1, b"other"),
                (op::DELETE, 1, b"log"),
                (w, 1, b"log"),
            ]
        );
    }

    #[test]
    fn whiteouts_are_char_devices_zero_zero() {
        let md = std::fs::symlink_metadata("/dev/null").unwrap();
        assert!(!is_whiteout(&md), "/dev/null is 1:3");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wh");
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: mknod with a valid path (needs root; skipped otherwise).
        if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) } == 0 {
            assert!(is_whiteout(&std::fs::symlink_metadata(&p).unwrap()));
        }
    }
}
