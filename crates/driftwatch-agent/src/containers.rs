//! The containers the agent knows: identity from the kernel (cgroup names), layers and
//! mounts from `/proc/<pid>/mountinfo`, names and images from the engines.
//!
//! Entries are filled eagerly from engine events (a container is usually known before its
//! first exec) and on demand when an exec names an unknown one. They outlive the container
//! for a while, so that late events of a container that has exited still name it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use driftwatch_fs::{InContainer, Limit, Root};
use driftwatch_model::{
    ContainerId, ContainerMeta, Engine, Event, EventKind, OverlayLayers, Process,
};
use driftwatch_runtime::{
    ContainerRecord, EngineEvent, EngineSource, MountTable, resolve_layer_paths,
};
use futures_util::StreamExt;

/// What the verdict code needs of a container's filesystems.
#[derive(Clone, Debug, Default)]
pub struct ContainerFs {
    /// Host paths of the root overlay's layers.
    pub layers: Option<OverlayLayers>,
    /// The container's mounts, as its processes see them.
    pub mounts: Option<MountTable>,
    /// The root overlay's superblock (`s_dev`) from `mounts`, found once: every exec is
    /// compared with it, and finding it walks the whole mount table.
    root_dev: Option<u32>,
}

impl ContainerFs {
    pub fn new(layers: Option<OverlayLayers>, mounts: Option<MountTable>) -> ContainerFs {
        let root_dev = mounts
            .as_ref()
            .and_then(MountTable::root_overlay_mount)
            .map(driftwatch_runtime::kernel_dev);
        ContainerFs {
            layers,
            mounts,
            root_dev,
        }
    }

    /// The container's root overlay as the kernel names its superblock (`s_dev`); `None`
    /// when its mounts are unknown or its root is not an overlay.
    pub fn root_dev(&self) -> Option<u32> {
        self.root_dev
    }
}

#[derive(Debug)]
pub struct ContainerEntry {
    pub meta: Arc<ContainerMeta>,
    pub fs: ContainerFs,
    /// uid → user name, from the container's /etc/passwd.
    pub users: HashMap<u32, String>,
    /// gid → group name, from the container's /etc/group.
    pub groups: HashMap<u32, String>,
    /// The ports its config declares (`8080/tcp`: the image's `ExposedPorts` plus
    /// `--expose`), from the engine; empty when the engine did not answer.
    pub exposed_ports: Vec<String>,
    /// A process of the container (its init, or the one that made it known), for reading
    /// per-container /proc state such as its network namespace's sockets.
    pub pid: Option<u32>,
    /// The engine's record it was built from (`None` when no engine answered).
    pub record: Option<Arc<ContainerRecord>>,
    /// When the engine said it was destroyed (kept a while for late events).
    destroyed_at: Option<Instant>,
    /// Whether the engine answered for it; if not, asking again is allowed after a pause.
    from_engine: bool,
    fetched_at: Instant,
}

impl ContainerEntry {
    /// Is `path` (absolute in the container) one of its mount points or a directory above
    /// one? The runtime makes those in the writable layer as it sets the container up (runc's
    /// init, before the entrypoint runs: `-v x:/data` on an image without `/data`); they stay
    /// while the mounts do, so the container cannot be the one that made them.
    pub fn holds_mount_point(&self, path: &Path) -> bool {
        let configured = self.record.iter().flat_map(|r| {
            r.runtime_config
                .mounts
                .iter()
                .map(|m| m.destination.as_path())
        });
        let live = self
            .fs
            .mounts
            .iter()
            .flat_map(|t| t.mounts().iter().map(|m| m.mount_point.as_path()));
        under_any(configured.chain(live), path)
    }
    /// The `evt.type=container` event a posture finding rides on: the container, and its init
    /// process as configured (pid when running, entrypoint + command, configured user). The
    /// time is when the agent judged it, so alert latency stays meaningful for containers that
    /// were already running when the agent started.
    pub(crate) fn container_event(&self, record: &ContainerRecord) -> Event {
        let entry = self;
        let cfg = &record.runtime_config;
        let user = if cfg.user.is_empty() {
            cfg.image
                .as_ref()
                .map(|i| i.user.clone())
                .unwrap_or_default()
        } else {
            cfg.user.clone()
        };
        let name_part = user.split(':').next().unwrap_or_default();
        let uid = match name_part {
            "" | "root" => Some(0),
            n => n.parse().ok(),
        };
        let user_name = match (name_part, uid) {
            ("", _) | (_, Some(0)) => "root".to_string(),
            (n, Some(u)) => entry
                .users
                .get(&u)
                .cloned()
                .unwrap_or_else(|| n.to_string()),
            (n, None) => n.to_string(),
        };
        let argv = entry.meta.entrypoint.clone();
        let exepath = argv.first().cloned().unwrap_or_default();
        let name: String = exepath
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .chars()
            .take(15)
            .collect();
        Event {
            num: 0,
            time_ns: driftwatch_model::clock::now_ns(),
            kind: EventKind::Container,
            process: Process {
                pid: record.pid.unwrap_or(0),
                uid: uid.unwrap_or(0),
                user_name,
                name,
                exepath,
                argv,
                ..Process::default()
            },
            container: Some(entry.meta.clone()),
            file: None,
            net: None,
            drift: None,
        }
    }

    /// This entry, destroyed at `at`: no process, and no layers (they are gone from disk:
    /// verdicts for late events fall back on the kernel's bits).
    fn as_destroyed(&self, at: Instant) -> ContainerEntry {
        ContainerEntry {
            meta: self.meta.clone(),
            fs: ContainerFs::new(None, self.fs.mounts.clone()),
            users: self.users.clone(),
            groups: self.groups.clone(),
            exposed_ports: self.exposed_ports.clone(),
            pid: None,
            record: self.record.clone(),
            destroyed_at: self.destroyed_at.or(Some(at)),
            from_engine: self.from_engine,
            fetched_at: self.fetched_at,
        }
    }

    /// Whether [`ContainerRegistry::resolve`] returns this entry as it is while it stays
    /// the registry's: known to an engine, its mounts read.
    pub(crate) fn is_settled(&self) -> bool {
        self.from_engine && self.fs.mounts.is_some()
    }

    /// Whether the engine said the container was destroyed.
    pub fn is_destroyed(&self) -> bool {
        self.destroyed_at.is_some()
    }

    pub fn user_name(&self, uid: u32) -> String {
        match self.users.get(&uid) {
            Some(n) => n.clone(),
            None if uid == 0 => "root".into(),
            None => String::new(),
        }
    }

    pub fn group_name(&self, gid: u32) -> String {
        match self.groups.get(&gid) {
            Some(n) => n.clone(),
            None if gid == 0 => "root".into(),
            None => String::new(),
        }
    }

    /// The names of `p`'s ids in this container: `user.name`, `user.loginname` (none for an
    /// unset login uid), `group.name`.
    pub fn name_process(&self, p: &mut Process) {
        p.user_name = self.user_name(p.uid);
        p.group_name = self.group_name(p.gid);
        p.loginname = match p.loginuid {
            Some(u) if u != u32::MAX => self.user_name(u),
            _ => String::new(),
        };
    }
}

/// Told about every engine record the registry takes in (create, start, listing, on-demand
/// inspects) and about containers that stop. Called on the engine thread or the sensor's:
/// keep it short.
pub trait RecordObserver: Send + Sync {
    fn record_seen(&self, entry: &Arc<ContainerEntry>);
    /// The container stopped (`destroyed`: and was removed).
    fn stopped(&self, id: &ContainerId, destroyed: bool);
}

#[derive(Debug, Default)]
pub struct RegistryStats {
    pub inspects: AtomicU64,
    pub inspect_failures: AtomicU64,
    pub engine_disconnects: AtomicU64,
}

pub struct ContainerRegistry {
    entries: RwLock<HashMap<ContainerId, Arc<ContainerEntry>>>,
    sources: Vec<Arc<dyn EngineSource>>,
    runtime: tokio::runtime::Handle,
    pub stats: RegistryStats,
    /// How long a destroyed container's entry is kept.
    linger: Duration,
    observers: RwLock<Vec<Arc<dyn RecordObserver>>>,
    /// Containers the engine said were destroyed, newest last (at most [`MAX_TOMBSTONES`]).
    /// An id is never reused, so a late event or a slow inspect that comes after the destroy
    /// must not bring its entry back as live: nothing would ever remove it again.
    tombstones: Mutex<(HashSet<ContainerId>, VecDeque<ContainerId>)>,
    /// Bumped after every change of `entries`: an entry a
    /// [`ContainerLookup`](crate::container_lookup::ContainerLookup) holds is
    /// still the registry's while the generation it was read at is current.
    generation: AtomicU64,
}

/// Docker's overlay2 home, for layer paths it writes relative to it.
const DOCKER_OVERLAY_HOME: &str = "/var/lib/docker/overlay2";
/// Destroyed containers' entries kept at most (for their late events).
const MAX_LINGERING: usize = 64;
const RETRY_UNKNOWN_AFTER: Duration = Duration::from_secs(5);
/// How often destroyed entries past their linger are dropped when no event comes.
const PRUNE_EVERY: Duration = Duration::from_secs(5);
/// Destroyed ids remembered (about 15 minutes of churn at 4 containers/s).
const MAX_TOMBSTONES: usize = 4096;

/// Drops destroyed entries older than `linger`; beyond [`MAX_LINGERING`] destroyed entries,
/// the oldest go first (churn of hundreds of containers a minute must not grow the registry).
///
/// A container no engine knew (its inspect failed) gets no destroy event: its entry goes
/// once its process is gone and it was not looked up for `linger` (the next event of a
/// container still running asks again).
fn prune_destroyed(m: &mut HashMap<ContainerId, Arc<ContainerEntry>>, linger: Duration) {
    m.retain(|_, e| e.destroyed_at.is_none_or(|t| t.elapsed() < linger));
    m.retain(|_, e| {
        e.from_engine
            || e.fetched_at.elapsed() < linger
            || e.pid
                .is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
    });
    let mut gone: Vec<(Instant, ContainerId)> = m
        .iter()
        .filter_map(|(id, e)| e.destroyed_at.map(|t| (t, id.clone())))
        .collect();
    if gone.len() > MAX_LINGERING {
        gone.sort_unstable_by_key(|(t, _)| *t);
        for (_, id) in &gone[..gone.len() - MAX_LINGERING] {
            m.remove(id);
        }
    }
}

/// id → name from `/etc/passwd` or `/etc/group` text: both have the name first and the
/// numeric id third (`name:x:id:...`).
fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

/// The container's account databases, read for names.
#[derive(Clone, Copy)]
enum NameFile {
    Passwd,
    Group,
}

impl NameFile {
    fn path(self) -> &'static str {
        match self {
            NameFile::Passwd => "/etc/passwd",
            NameFile::Group => "/etc/group",
        }
    }
}

fn read_mounts(pid: u32) -> Option<MountTable> {
    let ns = driftwatch_fs::host::proc_metadata(pid, "ns/mnt")
        .ok()
        .map(|md| md.ino() as u32);
    let text = driftwatch_fs::host::proc_string(pid, "mountinfo").ok()?;
    match MountTable::parse(&text) {
        Ok(t) => Some(t.in_namespace(ns)),
        Err(e) => {
            tracing::warn!("/proc/{pid}/mountinfo: {e}");
            None
        }
    }
}

/// id → name from the container's `/etc/passwd` or `/etc/group`: through its running
/// process's root (its own view, symlinks resolved inside it), else its writable layer, else
/// its image's layers. Anything but a regular file under [`PASSWD_CAP`] is skipped with a
/// warning: a container that makes it `/dev/zero`, a FIFO, a 100 MB file or a link to the
/// host's file gets no names, not a hung or bloated agent.
fn read_names(
    container: &str,
    pid: Option<u32>,
    layers: Option<&OverlayLayers>,
    file: NameFile,
) -> HashMap<u32, String> {
    let path = InContainer::from(file.path());
    let limit = Limit::Whole(PASSWD_CAP);
    let mut roots = Vec::new();
    if let Some(pid) = pid {
        roots.push(Root::of_process(container, pid));
    }
    if let Some(l) = layers {
        roots.push(Root::layer(container, &l.upper));
        roots.extend(l.lowers.iter().map(|d| Root::layer(container, d)));
    }
    for root in roots {
        match root.and_then(|r| r.read(&path, limit)) {
            Ok(bytes) => return parse_passwd(&String::from_utf8_lossy(&bytes)),
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!("{} names: {e}", file.path()),
        }
    }
    HashMap::new()
}

/// The largest `/etc/passwd` or `/etc/group` read for names.
const PASSWD_CAP: u64 = driftwatch_fs::SMALL_FILE_CAP;

impl ContainerRegistry {
    pub fn new(sources: Vec<Arc<dyn EngineSource>>, runtime: tokio::runtime::Handle) -> Self {
        ContainerRegistry {
            entries: RwLock::new(HashMap::new()),
            sources,
            runtime,
            stats: RegistryStats::default(),
            linger: Duration::from_secs(60),
            observers: RwLock::new(Vec::new()),
            tombstones: Mutex::new((HashSet::new(), VecDeque::new())),
            generation: AtomicU64::new(0),
        }
    }

    /// Adds an observer of engine records; add it before [`ContainerRegistry::watch`] runs
    /// to see the containers already running.
    pub fn observe(&self, observer: Arc<dyn RecordObserver>) {
        if let Ok(mut o) = self.observers.write() {
            o.push(observer);
        }
    }

    fn notify_record(&self, entry: &Arc<ContainerEntry>) {
        let observers = self.observers.read().map(|o| o.clone()).unwrap_or_default();
        for o in observers {
            o.record_seen(entry);
        }
    }

    fn notify_stopped(&self, id: &ContainerId, destroyed: bool) {
        let observers = self.observers.read().map(|o| o.clone()).unwrap_or_default();
        for o in observers {
            o.stopped(id, destroyed);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: &ContainerId) -> Option<Arc<ContainerEntry>> {
        self.entries.read().ok()?.get(id).cloned()
    }

    /// Every known container that has not been destroyed.
    pub fn live_entries(&self) -> Vec<Arc<ContainerEntry>> {
        self.entries
            .read()
            .map(|e| {
                e.values()
                    .filter(|c| c.destroyed_at.is_none())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// All known containers' metadata.
    pub fn list(&self) -> Vec<Arc<ContainerMeta>> {
        self.entries
            .read()
            .map(|e| e.values().map(|c| c.meta.clone()).collect())
            .unwrap_or_default()
    }

    /// The entry for a container an event names, asking the engines when it is unknown.
    /// `pid` is a process of the container, used to read its mounts if still alive.
    /// Blocking: call from a non-async thread.
    pub fn resolve(
        &self,
        id: &ContainerId,
        engine_hint: Option<Engine>,
        pid: u32,
    ) -> Arc<ContainerEntry> {
        if let Some(e) = self.get(id) {
            let stale_unknown = !e.from_engine && e.fetched_at.elapsed() > RETRY_UNKNOWN_AFTER;
            if e.fs.mounts.is_some() && !stale_unknown {
                return e;
            }
            if !stale_unknown {
                // Known from the engine, but its mounts were not readable yet: try this pid.
                if let Some(mounts) = read_mounts(pid) {
                    let mut rebuilt = self.build(
                        e.meta.clone(),
                        e.fs.layers.clone(),
                        Some(mounts),
                        Some(pid),
                        e.from_engine,
                    );
                    rebuilt.exposed_ports = e.exposed_ports.clone();
                    rebuilt.record = e.record.clone();
                    return self.insert(id.clone(), Arc::new(rebuilt)).0;
                }
                return e;
            }
        }
        // Destroyed already (a late event after its entry was pruned): the engine has nothing
        // more to say.
        let record = if self.is_tombstoned(id) {
            None
        } else {
            self.inspect_blocking(id, engine_hint)
        };
        let entry = match record {
            Some(r) => Arc::new(self.entry_from_record(r, Some(pid))),
            None => {
                let mut meta = ContainerMeta::unknown(id.clone());
                meta.engine = engine_hint.unwrap_or(Engine::Unknown);
                Arc::new(self.build(Arc::new(meta), None, read_mounts(pid), Some(pid), false))
            }
        };
        let (entry, live) = self.insert(id.clone(), entry);
        if live && entry.from_engine {
            self.notify_record(&entry);
        }
        entry
    }

    fn is_tombstoned(&self, id: &ContainerId) -> bool {
        self.tombstones
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .contains(id)
    }

    fn tombstone(&self, id: &ContainerId) {
        let mut t = self.tombstones.lock().unwrap_or_else(|p| p.into_inner());
        if t.0.insert(id.clone()) {
            t.1.push_back(id.clone());
            while t.1.len() > MAX_TOMBSTONES {
                if let Some(old) = t.1.pop_front() {
                    t.0.remove(&old);
                }
            }
        }
    }

    /// Stores `entry`; a destroyed container's stays destroyed (see `tombstones`). Returns
    /// what was stored, and whether it is live.
    fn insert(&self, id: ContainerId, entry: Arc<ContainerEntry>) -> (Arc<ContainerEntry>, bool) {
        let entry = if entry.destroyed_at.is_none() && self.is_tombstoned(&id) {
            Arc::new(entry.as_destroyed(Instant::now()))
        } else {
            entry
        };
        let live = entry.destroyed_at.is_none();
        if let Ok(mut m) = self.entries.write() {
            m.insert(id, entry.clone());
            self.generation.fetch_add(1, Ordering::Release);
        }
        (entry, live)
    }

    /// Asks the engine the cgroup name implies first, then the others in order.
    fn inspect_blocking(&self, id: &ContainerId, hint: Option<Engine>) -> Option<ContainerRecord> {
        let hinted = self.sources.iter().filter(|s| Some(s.engine()) == hint);
        let others = self.sources.iter().filter(|s| Some(s.engine()) != hint);
        for source in hinted.chain(others) {
            self.stats.inspects.fetch_add(1, Ordering::Relaxed);
            match self.runtime.block_on(source.inspect(id)) {
                Ok(r) => return Some(r),
                Err(e) => {
                    self.stats.inspect_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("inspecting {}: {e}", id.short());
                }
            }
        }
        None
    }

    fn build(
        &self,
        meta: Arc<ContainerMeta>,
        engine_layers: Option<OverlayLayers>,
        mounts: Option<MountTable>,
        pid: Option<u32>,
        from_engine: bool,
    ) -> ContainerEntry {
        // Layers from the kernel's own record of the mount first (engine-agnostic), then
        // from the engine.
        let layers = mounts
            .as_ref()
            .and_then(|m| m.root_overlay())
            .and_then(|l| resolve_layer_paths(&l, Path::new(DOCKER_OVERLAY_HOME)).ok())
            .or(engine_layers);
        let users = read_names(meta.id.short(), pid, layers.as_ref(), NameFile::Passwd);
        let groups = read_names(meta.id.short(), pid, layers.as_ref(), NameFile::Group);
        ContainerEntry {
            meta,
            fs: ContainerFs::new(layers, mounts),
            users,
            groups,
            exposed_ports: Vec::new(),
            pid,
            record: None,
            destroyed_at: None,
            from_engine,
            fetched_at: Instant::now(),
        }
    }

    fn entry_from_record(&self, r: ContainerRecord, pid: Option<u32>) -> ContainerEntry {
        let pid = pid
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .or(r.pid);
        // The engine's init first: the process that made the container known may have
        // entered a chroot or a mount namespace of its own making, whose view is not the
        // container's.
        let mounts = r
            .pid
            .and_then(read_mounts)
            .or_else(|| pid.and_then(read_mounts));
        let mut entry = self.build(
            Arc::new(r.meta.clone()),
            r.layers.clone(),
            mounts,
            pid,
            true,
        );
        entry.exposed_ports = r.exposed_ports.clone();
        entry.record = Some(Arc::new(r));
        entry
    }

    pub(crate) fn refresh_from_engine(&self, record: ContainerRecord) {
        let id = record.meta.id.clone();
        let entry = Arc::new(self.entry_from_record(record, None));
        let (entry, live) = self.insert(id, entry);
        if live {
            self.notify_record(&entry);
        }
    }

    pub(crate) fn mark_destroyed(&self, id: &ContainerId) {
        // Also when the entry is not there yet (an inspect still running): its insert will
        // find the tombstone.
        self.tombstone(id);
        if let Ok(mut m) = self.entries.write() {
            if let Some(e) = m.get(id) {
                let e2 = e.as_destroyed(Instant::now());
                m.insert(id.clone(), Arc::new(e2));
            }
            prune_destroyed(&mut m, self.linger);
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Drops the destroyed entries whose linger is over (run every few seconds by
    /// [`ContainerRegistry::watch`], so that they go when the host is quiet too).
    pub fn prune(&self) {
        if let Ok(mut m) = self.entries.write() {
            let before = m.len();
            prune_destroyed(&mut m, self.linger);
            if m.len() != before {
                self.generation.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// Changes of the entries so far (see [`crate::container_lookup::ContainerLookup`]).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Follows every engine's lifecycle events and keeps entries fresh; lists running
    /// containers at start and after each reconnect. Runs until the runtime shuts down.
    pub async fn watch(self: Arc<Self>) {
        let tasks: Vec<_> = self
            .sources
            .iter()
            .cloned()
            .map(|source| {
                let reg = self.clone();
                tokio::spawn(async move { reg.watch_one(source).await })
            })
            .collect();
        let pruner = {
            let reg = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(PRUNE_EVERY);
                loop {
                    tick.tick().await;
                    reg.prune();
                }
            })
        };
        for t in tasks {
            let _ = t.await;
        }
        pruner.abort();
    }

    async fn list_into(&self, source: &Arc<dyn EngineSource>) {
        match source.list_running().await {
            Ok(records) => {
                let n = records.len();
                let reg = self;
                for r in records {
                    reg.refresh_from_engine(r);
                }
                tracing::info!(
                    "{}: watching {n} running containers",
                    source.engine().as_str()
                );
            }
            Err(e) => tracing::warn!(
                "{e}; containers are still identified from the kernel, without names or images"
            ),
        }
    }

    async fn watch_one(&self, source: Arc<dyn EngineSource>) {
        let mut events = source.events();
        self.list_into(&source).await;
        while let Some(ev) = events.next().await {
            match ev {
                EngineEvent::Created(id) | EngineEvent::Started(id) => {
                    match source.inspect(&id).await {
                        Ok(r) => self.refresh_from_engine(r),
                        Err(e) => tracing::debug!("inspecting new container {}: {e}", id.short()),
                    }
                }
                EngineEvent::Died(id) => self.notify_stopped(&id, false),
                EngineEvent::Destroyed(id) => {
                    self.notify_stopped(&id, true);
                    self.mark_destroyed(&id);
                }
                EngineEvent::Disconnected { reason } => {
                    self.stats
                        .engine_disconnects
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "{}: {reason}; still detecting drift, alerts name containers by id until it is back",
                        source.engine().as_str()
                    );
                }
                EngineEvent::Reconnected => {
                    tracing::info!("{}: reconnected", source.engine().as_str());
                    self.list_into(&source).await;
                }
            }
        }
    }
}

/// Is `path` one of `points` or above one (the root, above everything, is not)?
fn under_any<'a>(mut points: impl Iterator<Item = &'a Path>, path: &Path) -> bool {
    path != Path::new("/") && points.any(|p| p.starts_with(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_and_the_directories_above_them() {
        let points = [
            Path::new("/data/sub"),
            Path::new("/etc/app.conf"),
            Path::new("/"),
        ];
        let held = |p: &str| under_any(points.iter().copied(), Path::new(p));
        assert!(held("/data/sub"));
        assert!(held("/data"));
        assert!(held("/etc/app.conf"));
        assert!(!held("/data/sub/x"), "below a mount point is the mount's");
        assert!(!held("/dat"), "by components, not by prefix");
        assert!(!held("/etc/app.conf.d"));
        assert!(!held("/"));
        assert!(!held("/tmp"));
    }

    #[derive(Default)]
    struct Seen {
        records: AtomicU64,
        stopped: AtomicU64,
    }

    impl RecordObserver for Seen {
        fn record_seen(&self, _entry: &Arc<ContainerEntry>) {
            self.records.fetch_add(1, Ordering::Relaxed);
        }
        fn stopped(&self, _id: &ContainerId, _destroyed: bool) {
            self.stopped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn record(id: &ContainerId) -> ContainerRecord {
        ContainerRecord::of_process(ContainerMeta::unknown(id.clone()), std::process::id())
    }

    /// A registry with no engine to ask, whose destroyed entries linger 50 ms (the runtime
    /// must outlive it).
    fn registry_without_engines() -> (tokio::runtime::Runtime, ContainerRegistry) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut reg = ContainerRegistry::new(Vec::new(), rt.handle().clone());
        reg.linger = Duration::from_millis(50);
        (rt, reg)
    }

    /// The races of churn: the engine's destroy event can come before the entry exists (an
    /// inspect still running), and events can come after the entry was pruned. Neither may
    /// bring the container back as live: no destroy would ever come again, so its entry and
    /// what observers opened for it (a watch on its upper directory) would stay for good.
    #[test]
    fn a_destroyed_container_is_never_brought_back_to_life() {
        let (_rt, reg) = registry_without_engines();
        let seen = Arc::new(Seen::default());
        reg.observe(seen.clone());
        let gone = ContainerId::new(&"a".repeat(64)).unwrap();
        let live = ContainerId::new(&"b".repeat(64)).unwrap();

        // Destroyed before anything knew it; then the slow inspect's record lands, and an
        // exec of it is resolved.
        reg.mark_destroyed(&gone);
        reg.refresh_from_engine(record(&gone));
        let e = reg.resolve(&gone, None, std::process::id());
        assert!(e.destroyed_at.is_some());
        assert!(reg.live_entries().is_empty());
        assert_eq!(
            seen.records.load(Ordering::Relaxed),
            0,
            "observers told of a dead one"
        );
        assert_eq!(reg.len(), 1, "kept a while for late events");

        // A live container still comes in, and is told.
        reg.refresh_from_engine(record(&live));
        assert_eq!(reg.live_entries().len(), 1);
        assert_eq!(seen.records.load(Ordering::Relaxed), 1);

        // Known, then destroyed, then pruned after the linger; a late event after that is
        // still not live, and the engine is not asked again.
        reg.mark_destroyed(&live);
        assert!(reg.live_entries().is_empty());
        std::thread::sleep(Duration::from_millis(60));
        reg.prune();
        assert_eq!(reg.len(), 0);
        let inspects = reg.stats.inspects.load(Ordering::Relaxed);
        let late = reg.resolve(&live, None, std::process::id());
        assert!(late.destroyed_at.is_some());
        assert!(reg.live_entries().is_empty());
        assert_eq!(reg.stats.inspects.load(Ordering::Relaxed), inspects);
    }

    /// A container no engine answered for has no destroy event: it goes once its process
    /// is gone and it was not looked up for the linger.
    #[test]
    fn an_unknown_container_goes_with_its_process() {
        let (_rt, reg) = registry_without_engines();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let id = ContainerId::new(&"c".repeat(64)).unwrap();
        reg.resolve(&id, None, child.id());
        assert_eq!(reg.live_entries().len(), 1);
        std::thread::sleep(Duration::from_millis(60));
        reg.prune();
        assert_eq!(reg.len(), 1, "its process still runs");
        child.kill().unwrap();
        child.wait().unwrap();
        reg.prune();
        assert_eq!(reg.len(), 0);
    }

    #[test]
    fn passwd_parsing_skips_junk() {
        let m = parse_passwd(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/sbin/nologin\nbad\nx:y:notanumber\n",
        );
        assert_eq!(m.get(&0).map(String::as_str), Some("root"));
        assert_eq!(m.get(&65534).map(String::as_str), Some("nobody"));
        assert_eq!(m.len(), 2);
    }
}
