//! The runtime enforcer: places containers in their scope, marks their mounts for fanotify
//! exec permission and answers it (through [`super::decide`]), keeps the kernel's maps, the
//! heartbeat and the orphans of an agent death, and kills what prevent mode must stop.
//!
//! Reads of a container's files here go through `driftwatch_fs` ([`open_in_container`]);
//! the rest read the host's `/proc` records of processes.

#![expect(
    clippy::disallowed_methods,
    reason = "the host's /proc records and the policy file; container files via open_in_container"
)]

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use driftwatch_image::{Judge, content_of};
use driftwatch_model::{
    ContainerId, Content, DriftFinding, DriftKind, DriftSubject, Enforcement, EnforcementAction,
    EnforcementMechanism, EnforcementMode, Event, EventKind, FileFacts, Identity, Process,
    Residence, Verdict,
};
use driftwatch_runtime::MountKind;
use driftwatch_sensor::{EnforceMaps, ExecFlags, ExecGuard, ExecRecord, ExecRequest};
use sha2::Digest;

use crate::containers::{ContainerEntry, ContainerRegistry, RecordObserver};
use crate::emitter::SharedEmitter;
use crate::proctable::ProcTable;

use super::decide::{
    ExecAnswer, NsAtDeadline, Settled, allow_at_deadline, answer_exec, dead_after,
    deny_at_deadline, kill_orphan, mode_flags, settle_drift, unknown_flags,
};
use super::policy::EnforcementPolicy;

/// Counters of enforcement.
#[derive(Debug, Default)]
pub struct EnforceStats {
    /// fanotify exec requests answered.
    pub requests: AtomicU64,
    /// Execs denied by fanotify (EPERM).
    pub denied: AtomicU64,
    /// Denials of the same file by the same process within a second, alerted once.
    pub denials_collapsed: AtomicU64,
    /// Held execs killed before running, and held execs let go.
    pub hold_killed: AtomicU64,
    pub hold_released: AtomicU64,
    /// Drifted execs killed by the agent after they started.
    pub killed_late: AtomicU64,
    /// Prevent mode, but the process could not be stopped.
    pub failed: AtomicU64,
    /// Drift permitted by the allowlist.
    pub allowlisted: AtomicU64,
    /// Processes held while no agent ran, then judged drift and killed.
    pub orphans_killed: AtomicU64,
    /// Containers placed in prevent mode, and mounts marked.
    pub prevent_containers: AtomicU64,
    pub marked_mounts: AtomicU64,
    pub mark_errors: AtomicU64,
    /// Entries of the kernel's enforcement maps found changed by someone else (a privileged
    /// process's bpf()), written back and alerted.
    pub maps_restored: AtomicU64,
    /// Time the decider took per request, in microseconds (the first million).
    pub decision_us: Mutex<Vec<u32>>,
    /// The same time, every decision, in fixed buckets (for `/metrics`).
    pub decision: crate::histogram::Histogram,
    /// The answers and their deadline: what each exec waited, requests answered by default.
    pub answers: Arc<crate::deadline::DeadlineStats>,
}

impl EnforceStats {
    /// The `q`-quantile of the exec permission decision time, in microseconds.
    pub fn decision_quantile_us(&self, q: f64) -> Option<u32> {
        crate::histogram::sample_quantile_us(&self.decision_us, q)
    }
}

/// Where an executed file came from, as prevention judged it from the file handed over.
struct FileVerdict {
    /// Its path in the container (without " (deleted)").
    path: String,
    verdict: Verdict,
    hash: Option<String>,
    image_hash: Option<String>,
    /// What changed besides content: the mode of an image file made executable.
    detail: Option<String>,
}

impl FileVerdict {
    /// The binary-drift finding on this file, with what enforcement did about it.
    fn finding(self, subject: DriftSubject, enforcement: Enforcement) -> DriftFinding {
        DriftFinding {
            provenance: Default::default(),
            kind: DriftKind::Binary,
            subject,
            verdict: self.verdict,
            path: self.path,
            hash: self.hash,
            image_hash: self.image_hash,
            detail: self.detail,
            enforcement: Some(enforcement),
        }
    }
}

/// A mount namespace the enforcer has placed in a scope.
#[derive(Clone, Debug)]
struct Placed {
    id: ContainerId,
    mode: EnforcementMode,
    /// st_dev of the container's root filesystem (its overlay).
    root_dev: u64,
}

pub struct Enforcer {
    /// Swapped whole by [`Enforcer::set_policy`] (a reload); readers take a snapshot.
    policy: RwLock<Arc<EnforcementPolicy>>,
    /// The fanotify group: made when some scope first can prevent (at start or a reload).
    guard: OnceLock<Arc<ExecGuard>>,
    /// Every exec permission request is answered within this (`enforcement.answer_deadline`).
    answer_deadline: Duration,
    /// The answer at the deadline denies (policy `on_agent_death: hold` with a prevent scope);
    /// kept apart from the policy's lock so the answering thread never waits for it.
    deny_at_deadline: AtomicBool,
    maps: OnceLock<EnforceMaps>,
    judge: Judge,
    registry: Arc<ContainerRegistry>,
    emitter: SharedEmitter,
    procs: Arc<Mutex<ProcTable>>,
    placed: Mutex<HashMap<u32, Placed>>,
    /// Recent denials by (pid, path): a shell retrying the same file along its PATH, or a
    /// loop, raises one alert per second, not one per attempt.
    recent_denials: Mutex<HashMap<(u32, String), std::time::Instant>>,
    pub stats: EnforceStats,
    stop: Arc<AtomicBool>,
    /// Set (under `placed`) when shutdown lets the kernel hold nothing: the map check stops.
    maps_released: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    beat: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Filesystems no program is executed from (or that cannot be marked usefully).
const UNMARKED_FS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "pstore",
    "configfs",
    "fusectl",
    "binfmt_misc",
];

fn mnt_ns_of(pid: u32) -> Option<u32> {
    std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|m| m.ino() as u32)
}

/// Lets a held process go (SIGCONT) through a pidfd: when its container is known, only if
/// the process provably still is that container's (a held process can only die by SIGKILL,
/// but its pid could then be reused); otherwise to the process the pid names when pinned.
fn resume_held(pid: u32, container: Option<&driftwatch_model::ContainerId>) -> bool {
    let pinned = match container {
        Some(c) => driftwatch_runtime::PinnedProcess::of_container(pid, c),
        None => driftwatch_runtime::PinnedProcess::open(pid),
    };
    pinned
        .and_then(|p| p.signal(libc::SIGCONT))
        .map_err(|e| tracing::debug!("letting held pid {pid} go: {e}"))
        .is_ok()
}

/// SIGKILL through a pidfd, only when the process provably is still in `container` (a pid
/// freed and reused since the exec record is left alone).
fn kill_in_container(pid: u32, container: &driftwatch_model::ContainerId) -> bool {
    driftwatch_runtime::PinnedProcess::of_container(pid, container)
        .and_then(|p| p.signal(libc::SIGKILL))
        .map_err(|e| tracing::debug!("late kill of pid {pid}: {e}"))
        .is_ok()
}

fn sha256_of(mut r: impl Read) -> Option<String> {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Some(hex::encode(h.finalize())),
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return None,
        }
    }
}

impl Enforcer {
    /// Builds the enforcer. The fanotify group exists only if some scope can prevent.
    pub fn new(
        policy: EnforcementPolicy,
        registry: Arc<ContainerRegistry>,
        emitter: SharedEmitter,
        procs: Arc<Mutex<ProcTable>>,
        answer_deadline: Duration,
    ) -> anyhow::Result<Arc<Enforcer>> {
        let guard = OnceLock::new();
        if policy.any_prevent() {
            let _ = guard.set(new_guard()?);
        }
        Ok(Arc::new(Enforcer {
            deny_at_deadline: AtomicBool::new(deny_at_deadline(&policy)),
            policy: RwLock::new(Arc::new(policy)),
            guard,
            answer_deadline,
            maps: OnceLock::new(),
            judge: Judge::new(),
            registry,
            emitter,
            procs,
            placed: Mutex::new(HashMap::new()),
            recent_denials: Mutex::new(HashMap::new()),
            stats: EnforceStats::default(),
            stop: Arc::new(AtomicBool::new(false)),
            maps_released: AtomicBool::new(false),
            thread: Mutex::new(None),
            beat: Mutex::new(None),
        }))
    }

    /// Every exec permission request is answered within this.
    pub fn answer_deadline(&self) -> Duration {
        self.answer_deadline
    }

    /// The policy in force (a snapshot: a reload may replace it).
    pub fn policy(&self) -> Arc<EnforcementPolicy> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the policy (a reload): the fanotify group is made if some scope can now
    /// prevent, the kernel's hold of undecided containers follows the new policy, and every
    /// container already placed is placed again in its new mode (a container switched to
    /// prevent has its mounts marked; one switched to detect is answered "allow"). Returns
    /// how many running containers changed mode.
    pub fn set_policy(self: &Arc<Self>, policy: EnforcementPolicy) -> anyhow::Result<usize> {
        if policy.any_prevent() && self.guard.get().is_none() {
            let _ = self.guard.set(new_guard()?);
            if self.maps.get().is_some() {
                self.start_guard_thread()?;
            }
        }
        self.deny_at_deadline
            .store(deny_at_deadline(&policy), Ordering::Relaxed);
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy.clone());
        if let Some(maps) = self.maps.get() {
            maps.set_unknown(unknown_flags(&policy))?;
            maps.set_dead_after(dead_after(&policy))?;
        }
        let placed: Vec<(u32, Placed)> = self
            .placed
            .lock()
            .map(|m| m.iter().map(|(ns, p)| (*ns, p.clone())).collect())
            .unwrap_or_default();
        let mut changed = 0;
        for (ns, p) in placed {
            let Some(entry) = self.registry.get(&p.id) else {
                continue;
            };
            let mode = policy.mode_for(&entry.meta);
            if mode == p.mode {
                continue;
            }
            changed += 1;
            if mode == EnforcementMode::Prevent {
                if let Some(pid) = entry.pid {
                    self.mark_mounts(&entry, pid);
                }
                self.stats
                    .prevent_containers
                    .fetch_add(1, Ordering::Relaxed);
            }
            // The map and `placed` change together (the map check compares them).
            if let Ok(mut m) = self.placed.lock()
                && let Some(p) = m.get_mut(&ns)
            {
                p.mode = mode;
                if let Some(maps) = self.maps.get() {
                    let _ = maps.set(ns, mode_flags(mode));
                }
            }
            tracing::info!(
                "container {} ({}): enforcement {} -> {}",
                entry.meta.id.short(),
                name_or_unknown(&entry),
                p.mode.as_str(),
                mode.as_str()
            );
        }
        Ok(changed)
    }

    fn start_guard_thread(self: &Arc<Self>) -> anyhow::Result<()> {
        let mut slot = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none()
            && let Some(guard) = self.guard.get()
        {
            let d = Arc::new(ExecDecider {
                enforcer: self.clone(),
                guard: guard.clone(),
            });
            *slot = Some(
                std::thread::Builder::new()
                    .name("dw-exec-guard".into())
                    .spawn(move || d.run())?,
            );
        }
        Ok(())
    }

    /// Connects the kernel side (the exec sensor's maps) and starts answering fanotify.
    pub fn attach(self: &Arc<Self>, maps: EnforceMaps) -> anyhow::Result<()> {
        let policy = self.policy();
        maps.set_unknown(unknown_flags(&policy))?;
        maps.set_dead_after(dead_after(&policy))?;
        let _ = self.maps.set(maps);
        {
            let me = self.clone();
            let t = std::thread::Builder::new()
                .name("dw-enforce-beat".into())
                .spawn(move || me.run_heartbeat())?;
            *self.beat.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
        }
        self.start_guard_thread()
    }

    /// Stops answering (pending and later requests are allowed by the kernel) and lets the
    /// kernel side hold nothing more.
    pub fn shutdown(&self) {
        if let Some(m) = self.maps.get() {
            let placed = self.placed.lock();
            self.maps_released.store(true, Ordering::Relaxed);
            let _ = m.set_unknown(0);
            if let Ok(placed) = placed {
                for ns in placed.keys() {
                    let _ = m.set(*ns, 0);
                }
            }
        }
        if let Some(m) = self.maps.get() {
            // A clean stop is not a death: do not fail closed.
            let _ = m.set_dead_after(None);
        }
        self.stop.store(true, Ordering::Relaxed);
        for slot in [&self.thread, &self.beat] {
            if let Some(t) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = t.join();
            }
        }
    }

    /// Places a container's mount namespace in its scope (once): in prevent mode, marks its
    /// mounts for exec permission and tells the kernel to kill memfd execs and hold
    /// loader/preload execs there.
    pub fn place(&self, entry: &ContainerEntry, pid: u32, mnt_ns: Option<u32>) -> EnforcementMode {
        let Some(ns) = mnt_ns.or_else(|| mnt_ns_of(pid)) else {
            return self.policy().mode_for(&entry.meta);
        };
        if let Some(p) = self.placed.lock().ok().and_then(|m| m.get(&ns).cloned())
            && p.id == entry.meta.id
        {
            return p.mode;
        }
        let mode = self.policy().mode_for(&entry.meta);
        // The container's root overlay, not this process's root: a namespace made inside
        // the container may have pivoted to another filesystem.
        let root_dev = entry
            .fs
            .mounts
            .as_ref()
            .and_then(|m| m.root_overlay_mount())
            .map(|m| libc::makedev(m.major, m.minor))
            .or_else(|| {
                std::fs::metadata(format!("/proc/{pid}/root"))
                    .map(|m| m.dev())
                    .ok()
            })
            .unwrap_or(0);
        if mode == EnforcementMode::Prevent {
            self.mark_mounts(entry, pid);
            self.stats
                .prevent_containers
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut m) = self.placed.lock() {
            // The map and `placed` change together (the map check compares them).
            if let Some(maps) = self.maps.get()
                && let Err(e) = maps.set(ns, mode_flags(mode))
            {
                tracing::warn!("enforcement for container {}: {e}", entry.meta.id.short());
            }
            m.insert(
                ns,
                Placed {
                    id: entry.meta.id.clone(),
                    mode,
                    root_dev,
                },
            );
        }
        tracing::info!(
            "container {} ({}): enforcement {}",
            entry.meta.id.short(),
            name_or_unknown(entry),
            mode.as_str()
        );
        mode
    }

    fn mark_mounts(&self, entry: &ContainerEntry, pid: u32) {
        let Some(guard) = self.guard.get() else {
            return;
        };
        let text = match std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(
                    "container {}: reading its mounts to enforce: {e}",
                    entry.meta.id.short()
                );
                self.stats.mark_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let Ok(mounts) = driftwatch_runtime::parse_mountinfo(&text) else {
            self.stats.mark_errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // Mount points are resolved inside the container's root (a container that renames a
        // mount point's parent and puts a symlink to `/` in its place must not steer a mark
        // onto a host mount), and the object found is marked through its own descriptor.
        let root = match driftwatch_fs::Root::of_process(entry.meta.id.as_str(), pid) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("cannot enforce: {e}");
                self.stats.mark_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        for m in mounts {
            if UNMARKED_FS.contains(&m.fstype.as_str())
                || m.mount_options.split(',').any(|o| o == "noexec")
            {
                continue;
            }
            let point = driftwatch_fs::InContainer::new(m.mount_point.as_os_str());
            let marked = root
                .open_path(&point)
                .map_err(driftwatch_fs::FsError::into_io)
                .and_then(|(fd, _)| {
                    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
                    let path = Path::new(&path);
                    // The root overlay's superblock is the container's alone: mark all of
                    // it, so that mounts of it made inside the container are covered too.
                    if m.fstype == "overlay" && m.mount_point == Path::new("/") {
                        guard.mark_filesystem(path)
                    } else {
                        guard.mark_mount(path)
                    }
                });
            match marked {
                Ok(()) => {
                    self.stats.marked_mounts.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.stats.mark_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "container {}: cannot enforce on {}: {e}",
                        entry.meta.id.short(),
                        m.mount_point.display()
                    );
                }
            }
        }
    }

    fn forget(&self, id: &ContainerId) {
        let gone: Vec<u32> = match self.placed.lock() {
            Ok(mut m) => {
                let ns: Vec<u32> = m
                    .iter()
                    .filter(|(_, p)| &p.id == id)
                    .map(|(ns, _)| *ns)
                    .collect();
                for n in &ns {
                    m.remove(n);
                }
                ns
            }
            Err(_) => Vec::new(),
        };
        if let Some(maps) = self.maps.get() {
            for ns in gone {
                maps.remove(ns);
            }
        }
    }

    fn mode_of_ns(&self, ns: u32) -> Option<EnforcementMode> {
        self.placed.lock().ok()?.get(&ns).map(|p| p.mode)
    }

    /// An exec held in a mount namespace that is no container's: let it go, and do not hold
    /// that namespace again.
    pub fn release_unplaced(&self, rec: &ExecRecord) {
        if !rec.flags.has(ExecFlags::HELD) {
            return;
        }
        if let Some(maps) = self.maps.get() {
            let _ = maps.set(rec.mnt_ns, 0);
        }
        if rec.flags.has(ExecFlags::HELD) {
            resume_held(rec.pid, None);
            self.stats.hold_released.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// After an exec record was judged: applies the allowlist and the container's mode to
    /// its binary-drift finding (killing the process in prevent mode), and lets a held
    /// process go if it is not drift. Runs on the exec sensor's thread.
    pub fn settle(
        &self,
        rec: &ExecRecord,
        entry: &ContainerEntry,
        finding: &mut Option<DriftFinding>,
    ) {
        let held = rec.flags.has(ExecFlags::HELD);
        let policy = self.policy();
        // A placement is this container's only if made for it: namespace inodes are reused.
        let own = self
            .placed
            .lock()
            .ok()
            .and_then(|m| m.get(&rec.mnt_ns).map(|p| p.id == entry.meta.id))
            .unwrap_or(true);
        let mode = match self.mode_of_ns(rec.mnt_ns).filter(|_| own) {
            Some(m) => {
                if held && let Some(maps) = self.maps.get() {
                    // Held as unknown although placed: the kernel's LRU map evicted it.
                    if maps.get(rec.mnt_ns).is_none() {
                        let _ = maps.set(rec.mnt_ns, mode_flags(m));
                    }
                }
                m
            }
            None if held || policy.any_prevent() || !own => {
                self.place(entry, rec.pid, Some(rec.mnt_ns))
            }
            None => policy.mode_for(&entry.meta),
        };
        if let Some(f) = finding.as_ref()
            && f.kind == DriftKind::Binary
            && !policy.allow.is_empty()
        {
            let path = f.path.clone();
            let subject = f.subject;
            let mut hash = || {
                // The process itself if it still runs (what it executes), else the file
                // through the container's root or its writable layer.
                let exe = (subject == DriftSubject::Exe)
                    .then(|| std::fs::File::open(format!("/proc/{}/exe", rec.pid)).ok())
                    .flatten();
                let file = exe.or_else(|| {
                    open_in_container(entry, entry.pid.unwrap_or(rec.pid), &path).ok()
                })?;
                sha256_of(file)
            };
            if policy.permits(&path, &entry.meta, &mut hash) {
                self.stats.allowlisted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("allowlisted drift: {path} in {}", entry.meta.id.short());
                *finding = None;
            }
        }
        let mut killed_by_us = false;
        if let Some(f) = finding.as_mut()
            && f.kind == DriftKind::Binary
        {
            let settled = settle_drift(mode, rec.flags.has(ExecFlags::KILLED), held, || {
                kill_in_container(rec.pid, &entry.meta.id)
            });
            let counter = match settled {
                Settled::HeldThenKilled => Some(&self.stats.hold_killed),
                Settled::KilledLate => Some(&self.stats.killed_late),
                Settled::Failed => Some(&self.stats.failed),
                Settled::Alerted | Settled::KilledByBpf => None,
            };
            if let Some(c) = counter {
                c.fetch_add(1, Ordering::Relaxed);
            }
            killed_by_us = settled.killed_by_agent();
            f.enforcement = Some(settled.enforcement(mode));
        }
        if held && !killed_by_us {
            resume_held(rec.pid, Some(&entry.meta.id));
            self.stats.hold_released.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Places the mount namespace `ns` of `pid` by the container its cgroup names.
    fn place_by_cgroup(&self, pid: u32, ns: u32) -> Option<Placed> {
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let m = driftwatch_runtime::container_from_proc_cgroup(&cgroup)?;
        let entry = self.registry.resolve(&m.id, m.engine, pid);
        self.place(&entry, pid, Some(ns));
        self.placed.lock().ok()?.get(&ns).cloned()
    }

    /// Judges one exec permission request: allow, or deny with the alert's event.
    fn decide(&self, guard: &ExecGuard, req: &ExecRequest) -> (bool, Option<Event>) {
        let Some(ns) = mnt_ns_of(req.pid) else {
            return (true, None);
        };
        let placed = match self.placed.lock().ok().and_then(|m| m.get(&ns).cloned()) {
            // Mount namespace inodes are reused once a namespace is gone, and containers
            // make and drop namespaces at will (`unshare -m`): the placement must be this
            // process's container's, else it is placed again.
            Some(p) if container_of_pid(req.pid).is_none_or(|id| id == p.id) => p,
            // A namespace not placed yet on a marked filesystem: one a container made
            // (`unshare -m`), whose first execs come before its exec records. Placed now,
            // by the process's container, so that it is judged like its container.
            _ => match self.place_by_cgroup(req.pid, ns) {
                Some(p) => p,
                // No container's (a mount the agent forgot): nothing to judge against.
                None => return (true, None),
            },
        };
        if placed.mode != EnforcementMode::Prevent {
            // Not judged at all: a detect-mode container's files are the exec sensor's.
            return (true, None);
        }
        let Some(entry) = self.registry.get(&placed.id) else {
            return (true, None);
        };
        let Ok(md) = nix_fstat(req) else {
            return (true, None);
        };
        let raw = req.path().unwrap_or_default();
        let judged = self.file_verdict(&raw.to_string_lossy(), &md, &placed, &entry);
        let (path, verdict) = (judged.path.clone(), judged.verdict);
        let mut hash_fd = || {
            let f = std::fs::File::open(format!("/proc/self/fd/{}", req.file.as_raw_fd())).ok()?;
            sha256_of(f)
        };
        let answer = answer_exec(
            placed.mode,
            verdict,
            || self.policy().permits(&path, &entry.meta, &mut hash_fd),
            || self.recently_denied(req.pid, &path),
        );
        match answer {
            ExecAnswer::Allow {
                ignore_until_modified,
            } => {
                if ignore_until_modified {
                    let _ = guard.ignore_until_modified(req.file.as_raw_fd());
                }
                return (true, None);
            }
            ExecAnswer::Permitted => {
                self.stats.allowlisted.fetch_add(1, Ordering::Relaxed);
                return (true, None);
            }
            ExecAnswer::Deny { alert } => {
                self.stats.denied.fetch_add(1, Ordering::Relaxed);
                if !alert {
                    self.stats.denials_collapsed.fetch_add(1, Ordering::Relaxed);
                    return (false, None);
                }
            }
        }
        let subject = if starts_with_shebang(req) {
            DriftSubject::Script
        } else {
            DriftSubject::Exe
        };
        let finding = judged.finding(
            subject,
            Enforcement {
                mode: EnforcementMode::Prevent,
                action: EnforcementAction::Blocked,
                by: Some(EnforcementMechanism::FanotifyDeny),
            },
        );
        let process = self.denied_process(req.pid, &path, &entry);
        (false, Some(exec_event(process, &entry, finding)))
    }

    /// Where an executed file came from: its path in the container (without " (deleted)"),
    /// the verdict and the hashes, from the file's metadata and the container's layers.
    fn file_verdict(
        &self,
        raw_path: &str,
        md: &std::fs::Metadata,
        placed: &Placed,
        entry: &ContainerEntry,
    ) -> FileVerdict {
        let path = raw_path
            .strip_suffix(" (deleted)")
            .unwrap_or(raw_path)
            .to_string();
        // The one verdict function over the facts of the file handed over: its device says
        // whether it is the container's overlay, fstat's inode whether the file the path
        // names is that file (the path comes from d_path in the container's mount
        // namespace; a mount or pivot_root made inside could make it name another file).
        let mut facts = FileFacts {
            residence: Residence::Volume,
            unlinked: md.nlink() == 0,
            content: Content::NotCompared,
            identity: Identity::Unchecked,
            existed: true,
            made_executable: false,
        };
        let (mut hash, mut image_hash, mut detail) = (None, None, None);
        if md.dev() == placed.root_dev {
            // fstat does not tell the layer: only the content can.
            facts.residence = Residence::RootOverlay {
                upper: true,
                lower: true,
            };
            let Some(layers) = entry.fs.layers.as_ref() else {
                // No layers to compare with: nothing to judge by (see docs/limits.md).
                return FileVerdict {
                    path,
                    verdict: Verdict::Unknown,
                    hash: None,
                    image_hash: None,
                    detail: None,
                };
            };
            let r = self.judge.judge(layers, &path);
            facts.content = content_of(&r);
            facts.identity = match &r {
                Ok(j) if j.is_inode(md.ino()) => Identity::Verified,
                Ok(_) => Identity::Mismatch,
                Err(e) if e.is_not_found() => Identity::Mismatch,
                Err(e) => {
                    tracing::debug!("judging {path}: {e}");
                    Identity::Unchecked
                }
            };
            if let Ok(j) = r {
                // The kernel is executing this very file (a program, or a script by its
                // shebang): an execute bit the image's file never had is the change.
                if let Some(m) = j.made_executable()
                    && facts.identity == Identity::Verified
                {
                    facts.made_executable = true;
                    detail = Some(m.mode_words());
                }
                hash = j.hash;
                image_hash = j.image_hash;
            }
        } else {
            let kind = entry
                .fs
                .mounts
                .as_ref()
                .and_then(|m| m.find(&path))
                .map(|m| m.kind());
            facts.residence = match kind {
                Some(MountKind::Tmpfs) => Residence::Memory,
                Some(MountKind::Proc) | Some(MountKind::Sys) | Some(MountKind::Dev) => {
                    Residence::KernelPseudo
                }
                _ => Residence::Volume,
            };
        }
        FileVerdict {
            path,
            verdict: driftwatch_model::verdict(&facts),
            hash,
            image_hash,
            detail,
        }
    }

    /// Judges a process the kernel held while no agent was alive (failing closed): killed
    /// if its program is drift in a prevent scope, let go otherwise.
    fn judge_orphan(&self, pid: u32) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name, which ends at the last ')'.
        let stopped = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st == "T");
        if !stopped {
            return;
        }
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let Some(m) = driftwatch_runtime::container_from_proc_cgroup(&cgroup) else {
            resume_held(pid, None);
            return;
        };
        let entry = self.registry.resolve(&m.id, m.engine, pid);
        let ns = mnt_ns_of(pid);
        let mode = self.place(&entry, pid, ns);
        let placed = ns.and_then(|ns| self.placed.lock().ok()?.get(&ns).cloned());
        let exe = format!("/proc/{pid}/exe");
        let (Some(placed), Ok(md), Ok(raw)) =
            (placed, std::fs::metadata(&exe), std::fs::read_link(&exe))
        else {
            resume_held(pid, Some(&m.id));
            return;
        };
        let judged = self.file_verdict(&raw.to_string_lossy(), &md, &placed, &entry);
        let (path, verdict) = (judged.path.clone(), judged.verdict);
        let mut hash_exe = || std::fs::File::open(&exe).ok().and_then(sha256_of);
        if !kill_orphan(mode, verdict, || {
            self.policy().permits(&path, &entry.meta, &mut hash_exe)
        }) {
            resume_held(pid, Some(&m.id));
            self.stats.hold_released.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut process = self.denied_process(pid, &path, &entry);
        process.argv = crate::proctable::proc_argv(pid);
        let killed = kill_in_container(pid, &m.id);
        self.stats.orphans_killed.fetch_add(1, Ordering::Relaxed);
        let held = "held by the kernel while no agent was running (on_agent_death: hold)";
        let mut finding = judged.finding(
            DriftSubject::Exe,
            Enforcement {
                mode: EnforcementMode::Prevent,
                action: if killed {
                    EnforcementAction::Blocked
                } else {
                    EnforcementAction::Failed
                },
                by: killed.then_some(EnforcementMechanism::BpfHold),
            },
        );
        finding.detail = Some(match finding.detail.take() {
            Some(d) => format!("{d}; {held}"),
            None => held.to_string(),
        });
        crate::emitter::emit(&self.emitter, &exec_event(process, &entry, finding));
    }

    /// Every 500 ms: tells the kernel the agent is alive and judges what it held meanwhile.
    fn run_heartbeat(self: Arc<Self>) {
        let Some(maps) = self.maps.get() else { return };
        while !self.stop.load(Ordering::Relaxed) {
            self.check_maps(maps);
            if let Err(e) = maps.heartbeat() {
                tracing::warn!("enforcement heartbeat: {e}");
            }
            for pid in maps.take_orphans() {
                self.judge_orphan(pid);
            }
            for _ in 0..5 {
                if self.stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Map integrity (tamper protection): the kernel's flags of every placed namespace and
    /// its `enforce_config` are compared with what the agent wrote. A difference means
    /// someone else wrote the maps (`bpf()` from a privileged process, e.g. a container with
    /// CAP_SYS_ADMIN deleting its own entry to escape prevention): the agent's values are
    /// written back and a Critical alert names the map, the container and both values.
    /// Runs before every heartbeat (500 ms); one lookup per placed container.
    fn check_maps(&self, maps: &EnforceMaps) {
        let mut changed: Vec<(String, Option<ContainerId>, String, String)> = Vec::new();
        if let Ok(placed) = self.placed.lock() {
            if self.maps_released.load(Ordering::Relaxed) {
                return;
            }
            for (ns, p) in placed.iter() {
                let want = mode_flags(p.mode);
                let found = maps.get(*ns);
                // Missing with no flags wanted: the LRU may evict, and it changes nothing
                // the kernel does for a placed container (settle() puts it back if held).
                if found == Some(want) || (found.is_none() && want == 0) {
                    continue;
                }
                let _ = maps.set(*ns, want);
                changed.push((
                    format!("enforce[mnt_ns={ns}]"),
                    Some(p.id.clone()),
                    format!("{want:#x}"),
                    found.map_or_else(|| "(deleted)".into(), |f| format!("{f:#x}")),
                ));
            }
        }
        if !self.maps_released.load(Ordering::Relaxed)
            && let Some(d) = maps.restore_config()
        {
            let show =
                |(flags, dead): (u32, u64)| format!("unknown={flags:#x} dead_after_ns={dead}");
            changed.push((
                "enforce_config".into(),
                None,
                show(d.want),
                d.found.map_or_else(|| "(unreadable)".into(), show),
            ));
        }
        for (map, id, want, found) in changed {
            self.stats.maps_restored.fetch_add(1, Ordering::Relaxed);
            let mut fields = BTreeMap::new();
            let mut whose = String::new();
            if let Some(id) = id {
                fields.insert("container.id".into(), serde_json::json!(id.short()));
                if let Some(e) = self.registry.get(&id) {
                    fields.insert("container.name".into(), serde_json::json!(e.meta.name));
                    fields.insert(
                        "container.image".into(),
                        serde_json::json!(e.meta.image.display_name()),
                    );
                    whose = format!(" (container {})", e.meta.name);
                }
            }
            fields.insert("driftwatch.map".into(), serde_json::json!(map));
            fields.insert("driftwatch.expected".into(), serde_json::json!(want));
            fields.insert("driftwatch.found".into(), serde_json::json!(found));
            let output = format!(
                "Driftwatch's BPF map {map}{whose} was changed outside the agent (found {found}, wrote {want}); restored"
            );
            tracing::error!("{output}");
            let alert = driftwatch_model::Alert::tamper(
                &crate::emitter::hostname(&self.emitter),
                "Driftwatch BPF map changed outside the agent",
                output,
                fields,
            );
            crate::emitter::emit_alert(&self.emitter, &alert);
        }
    }

    fn recently_denied(&self, pid: u32, path: &str) -> bool {
        let Ok(mut recent) = self.recent_denials.lock() else {
            return false;
        };
        let now = std::time::Instant::now();
        if recent.len() > 4096 {
            recent.retain(|_, t| now.duration_since(*t) < Duration::from_secs(1));
        }
        match recent.get_mut(&(pid, path.to_string())) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(1) => true,
            Some(t) => {
                *t = now;
                false
            }
            None => {
                recent.insert((pid, path.to_string()), now);
                false
            }
        }
    }

    /// The process whose exec was denied, as it would have been: its pid and parent, the
    /// denied file as its program (the exec's arguments are not known: only the file).
    fn denied_process(&self, pid: u32, path: &str, entry: &ContainerEntry) -> Process {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| crate::proctable::status_u32(&status, k);
        let ppid = field("PPid:").unwrap_or(0);
        let uid = field("Uid:").unwrap_or(0);
        let caller = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let (pexepath, mut ancestors) = {
            let procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
            match procs.get(ppid) {
                Some(p) => {
                    let mut a = vec![p.name.clone()];
                    a.extend(p.ancestors.iter().cloned());
                    (p.exepath.clone(), a)
                }
                None => (String::new(), Vec::new()),
            }
        };
        if ancestors.is_empty() {
            let parent = std::fs::read_to_string(format!("/proc/{ppid}/comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or(caller);
            ancestors.push(parent);
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        Process {
            pid,
            ppid,
            uid,
            gid: field("Gid:").unwrap_or(0),
            user_name: entry.user_name(uid),
            name: name.chars().take(15).collect(),
            exepath: path.to_string(),
            argv: vec![path.to_string()],
            cwd: std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            ancestors,
            pexepath,
            exe_upper_layer: false,
            ..Default::default()
        }
    }
}

/// The exec permission requests of prevent-mode containers, served with a deadline
/// ([`crate::deadline`]): judged by [`Enforcer::decide`], answered by default when that is
/// late.
struct ExecDecider {
    enforcer: Arc<Enforcer>,
    guard: Arc<ExecGuard>,
}

impl ExecDecider {
    fn run(self: Arc<Self>) {
        let e = self.enforcer.clone();
        crate::deadline::serve(
            self.clone(),
            "exec",
            e.answer_deadline,
            e.stats.answers.clone(),
            e.stop.clone(),
        );
        // Stopping: no new requests, and the pending ones run (as the kernel would do when
        // the group closes).
        if let Err(err) = self.guard.unmark_all_mounts() {
            tracing::warn!("removing the exec permission marks: {err}");
        }
        let mut reqs = Vec::new();
        let _ = self.guard.read(&mut reqs);
        for r in reqs.drain(..) {
            let _ = self.guard.respond(&r, true);
        }
    }
}

impl crate::deadline::Decide for ExecDecider {
    type FollowUp = Event;

    fn guard(&self) -> &ExecGuard {
        &self.guard
    }

    fn fallback(&self, req: &ExecRequest) -> bool {
        self.enforcer.stats.requests.fetch_add(1, Ordering::Relaxed);
        if !self.enforcer.deny_at_deadline.load(Ordering::Relaxed) {
            return true;
        }
        let ns = match mnt_ns_of(req.pid) {
            None => NsAtDeadline::Unknown,
            Some(ns) => match self.enforcer.placed.try_lock() {
                Ok(m) => NsAtDeadline::Placed(m.get(&ns).map(|p| p.mode)),
                Err(_) => NsAtDeadline::Busy,
            },
        };
        allow_at_deadline(true, ns)
    }

    fn decide(&self, req: &ExecRequest) -> (bool, Option<Event>) {
        let e = &self.enforcer;
        let t0 = std::time::Instant::now();
        let out = e.decide(&self.guard, req);
        let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        e.stats.decision.observe_us(u64::from(us));
        crate::histogram::record_sample_us(&e.stats.decision_us, us);
        out
    }

    fn follow_up(&self, _req: &ExecRequest, event: Event, in_time: bool) {
        // A late denial was not what the kernel was told: the exec ran (or was denied by
        // default); the exec sensor judges and kills what ran in a prevent scope.
        if in_time {
            crate::emitter::emit(&self.enforcer.emitter, &event);
        }
    }

    fn report_timeouts(&self, count: u64, allowed: u64, denied: u64, deadline: Duration) {
        crate::deadline::emit_timeout_alert(
            &self.enforcer.emitter,
            "exec",
            count,
            allowed,
            denied,
            deadline,
        );
    }
}

fn new_guard() -> anyhow::Result<Arc<ExecGuard>> {
    ExecGuard::new().map(Arc::new).map_err(|e| {
        anyhow::anyhow!(
            "prevent mode needs fanotify exec permission events: {e} (root and CONFIG_FANOTIFY_ACCESS_PERMISSIONS are required)"
        )
    })
}

/// The container a process belongs to, by its cgroup.
fn container_of_pid(pid: u32) -> Option<ContainerId> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    driftwatch_runtime::container_from_proc_cgroup(&cgroup).map(|m| m.id)
}

fn nix_fstat(req: &ExecRequest) -> std::io::Result<std::fs::Metadata> {
    std::fs::metadata(format!("/proc/self/fd/{}", req.file.as_raw_fd()))
}

fn starts_with_shebang(req: &ExecRequest) -> bool {
    let mut b = [0u8; 2];
    // SAFETY: pread into a 2-byte stack buffer from a descriptor we own.
    let n = unsafe { libc::pread(req.file.as_raw_fd(), b.as_mut_ptr().cast(), 2, 0) };
    n == 2 && &b == b"#!"
}

/// The exec event an enforcement finding rides on: now, in the container.
fn exec_event(process: Process, entry: &ContainerEntry, finding: DriftFinding) -> Event {
    Event {
        num: 0,
        time_ns: driftwatch_model::clock::now_ns(),
        kind: EventKind::Execve,
        process,
        container: Some(entry.meta.clone()),
        file: None,
        net: None,
        drift: Some(finding),
    }
}

/// A container's name for the log, `?` when it has none.
fn name_or_unknown(entry: &ContainerEntry) -> &str {
    if entry.meta.name.is_empty() {
        "?"
    } else {
        &entry.meta.name
    }
}

/// A container path as the host can open it: through a process's root, else the upper
/// layer.
/// The regular file `path` of the container: through its process's root (symlinks resolved
/// inside it), else in its writable layer (no symlink followed). Devices, FIFOs and the
/// host's files are never opened (see `driftwatch_fs`).
fn open_in_container(
    entry: &ContainerEntry,
    pid: u32,
    path: &str,
) -> Result<std::fs::File, driftwatch_fs::FsError> {
    let label = entry.meta.id.short();
    let p = driftwatch_fs::InContainer::from(path);
    let through = driftwatch_fs::Root::of_process(label, pid).and_then(|r| r.open(&p));
    match (through, &entry.fs.layers) {
        (Ok(f), _) => Ok(f.into_file()),
        (Err(e), Some(l)) if e.is_not_found() => Ok(driftwatch_fs::Root::layer(label, &l.upper)?
            .open(&p)?
            .into_file()),
        (Err(e), _) => Err(e),
    }
}

impl RecordObserver for Enforcer {
    fn record_seen(&self, entry: &Arc<ContainerEntry>) {
        if let Some(pid) = entry.pid
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            self.place(entry, pid, None);
        }
    }

    fn stopped(&self, id: &ContainerId, _destroyed: bool) {
        self.forget(id);
    }
}
