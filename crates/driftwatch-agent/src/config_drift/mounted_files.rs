//! Mounted secrets and config files changed while mounted: inotify watches on the host side
//! of a container's writable bind mounts that look like secrets or configuration
//! (`/run/secrets/*`, `/var/run/secrets/*`, single-file bind mounts, Kubernetes-style `..data`
//! directories). Read-only mounts are not watched: they cannot be changed from inside.
//!
//! inotify costs nothing to anything else (no hook on any syscall path; only the watched
//! inodes queue events), but it does not say **who** changed the file: a change made on the
//! host to a watched file is reported too, and the alert names no process. A file bind-mounted
//! into several containers is reported for each of them.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftwatch_model::{
    ContainerId, ContainerMeta, DriftFinding, DriftKind, DriftSubject, Event, EventKind, FileRef,
    Process, Verdict,
};
use driftwatch_runtime::MountSpec;

use crate::emitter::SharedEmitter;

/// What a mount's host side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostKind {
    File,
    Dir,
    /// Sockets, devices, ...: never watched.
    Other,
}

/// A mount to watch: its host path, where the container sees it, and whether a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub host: PathBuf,
    pub dest: PathBuf,
    pub dir: bool,
}

const SECRET_DIRS: [&str; 2] = ["/run/secrets", "/var/run/secrets"];

/// The mounts worth watching (pure: `stat` tells what a host path is, `None` if missing).
pub(crate) fn watch_candidates(
    mounts: &[MountSpec],
    stat: impl Fn(&Path) -> Option<HostKind>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for m in mounts {
        if !m.rw || !matches!(m.kind.as_str(), "bind" | "volume") {
            continue;
        }
        let kind = stat(&m.source);
        let secret = SECRET_DIRS.iter().any(|d| m.destination.starts_with(d));
        let k8s_projected = kind == Some(HostKind::Dir) && stat(&m.source.join("..data")).is_some();
        let watch = match kind {
            Some(HostKind::File) => true,
            Some(HostKind::Dir) => secret || k8s_projected,
            _ => false,
        };
        if watch {
            out.push(Candidate {
                host: m.source.clone(),
                dest: m.destination.clone(),
                dir: kind == Some(HostKind::Dir),
            });
        }
    }
    out
}

/// What the host side of a mount is. The mount's source is the operator's host path; its
/// `..data` (Kubernetes makes it a symlink) is only stat'ed, never read.
fn host_kind(p: &Path) -> Option<HostKind> {
    let md = driftwatch_fs::host::own_metadata(p).ok()?;
    Some(if md.is_file() {
        HostKind::File
    } else if md.is_dir() {
        HostKind::Dir
    } else {
        HostKind::Other
    })
}

/// A change inotify reported, in our words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub verdict: Verdict,
    pub what: &'static str,
}

/// Maps an inotify mask to a change (pure); `None` for masks we do not report.
pub(crate) fn change_of(mask: u32) -> Option<Change> {
    let c = |verdict, what| Some(Change { verdict, what });
    if mask & libc::IN_MODIFY != 0 {
        c(Verdict::Modified, "written")
    } else if mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0 {
        c(Verdict::Added, "created or moved in (replaced)")
    } else if mask & (libc::IN_DELETE | libc::IN_MOVED_FROM) != 0 {
        c(Verdict::Deleted, "removed or moved away")
    } else if mask & (libc::IN_DELETE_SELF | libc::IN_MOVE_SELF) != 0 {
        c(
            Verdict::Deleted,
            "the mounted file itself was removed or replaced",
        )
    } else if mask & libc::IN_ATTRIB != 0 {
        c(Verdict::Modified, "mode, owner or times changed")
    } else {
        None
    }
}

const FILE_MASK: u32 =
    libc::IN_MODIFY | libc::IN_ATTRIB | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;
const DIR_MASK: u32 = libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF;
/// The same change to the same file is reported once per this window (a large write is many
/// `IN_MODIFY`s).
const DEBOUNCE: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
struct Target {
    id: ContainerId,
    meta: Arc<ContainerMeta>,
    dest: PathBuf,
    host: PathBuf,
    dir: bool,
}

#[derive(Default)]
struct State {
    by_wd: HashMap<i32, Vec<Target>>,
    by_container: HashMap<ContainerId, Vec<i32>>,
    recent: HashMap<(i32, Vec<u8>, Verdict), Instant>,
}

/// Counters of the watcher.
#[derive(Debug, Default)]
pub struct MountedFileStats {
    pub watches: AtomicU64,
    pub watch_errors: AtomicU64,
    pub changes: AtomicU64,
    pub queue_overflows: AtomicU64,
}

struct Shared {
    fd: OwnedFd,
    stop: AtomicBool,
    state: Mutex<State>,
    emitter: SharedEmitter,
    stats: Arc<MountedFileStats>,
}

/// The inotify watcher and its reader thread.
pub(crate) struct MountedFiles {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl MountedFiles {
    pub fn start(emitter: SharedEmitter, stats: Arc<MountedFileStats>) -> std::io::Result<Self> {
        // SAFETY: no pointers; the result is checked.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let shared = Arc::new(Shared {
            fd,
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            emitter,
            stats,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dw-config-files".into())
            .spawn(move || s.run())?;
        Ok(MountedFiles {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Watches a container's candidate mounts, once per container until [`Self::unwatch`].
    pub fn watch(&self, meta: &Arc<ContainerMeta>, mounts: &[MountSpec]) {
        let mut st = self.shared.lock();
        if st.by_container.contains_key(&meta.id) {
            return;
        }
        let mut wds = Vec::new();
        for c in watch_candidates(mounts, host_kind) {
            let Ok(path) = CString::new(c.host.as_os_str().as_bytes()) else {
                continue;
            };
            let mask = if c.dir { DIR_MASK } else { FILE_MASK };
            // SAFETY: path is NUL-terminated and outlives the call; the fd is ours.
            let wd =
                unsafe { libc::inotify_add_watch(self.shared.fd.as_raw_fd(), path.as_ptr(), mask) };
            if wd < 0 {
                self.shared
                    .stats
                    .watch_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "config drift: cannot watch {} (mounted at {} in {}): {}",
                    c.host.display(),
                    c.dest.display(),
                    meta.id.short(),
                    std::io::Error::last_os_error()
                );
                continue;
            }
            self.shared.stats.watches.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                "config drift: watching {} ({} in {})",
                c.host.display(),
                c.dest.display(),
                meta.id.short()
            );
            st.by_wd.entry(wd).or_default().push(Target {
                id: meta.id.clone(),
                meta: meta.clone(),
                dest: c.dest,
                host: c.host,
                dir: c.dir,
            });
            wds.push(wd);
        }
        st.by_container.insert(meta.id.clone(), wds);
    }

    /// Stops watching a container's mounts (it stopped: nothing inside can change them).
    pub fn unwatch(&self, id: &ContainerId) {
        let mut st = self.shared.lock();
        let Some(wds) = st.by_container.remove(id) else {
            return;
        };
        for wd in wds {
            let now_empty = st.by_wd.get_mut(&wd).is_some_and(|targets| {
                targets.retain(|t| &t.id != id);
                targets.is_empty()
            });
            if now_empty {
                st.by_wd.remove(&wd);
                // SAFETY: plain syscall on our fd; an already-removed wd only yields EINVAL.
                unsafe { libc::inotify_rm_watch(self.shared.fd.as_raw_fd(), wd) };
            }
        }
    }

    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for MountedFiles {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) {
        let mut buf = vec![0u8; 64 * 1024];
        while !self.stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 250) };
            if n <= 0 {
                continue;
            }
            // SAFETY: buf is valid for its length.
            let len =
                unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if len <= 0 {
                continue;
            }
            self.handle(&buf[..len as usize]);
        }
    }

    /// Walks a buffer of `struct inotify_event` records.
    fn handle(&self, mut buf: &[u8]) {
        const HDR: usize = std::mem::size_of::<libc::inotify_event>();
        while buf.len() >= HDR {
            let u32_at =
                |o: usize| u32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
            let wd = u32_at(0) as i32;
            let mask = u32_at(4);
            let name_len = u32_at(12) as usize;
            let Some(name) = buf.get(HDR..HDR + name_len) else {
                return;
            };
            let name: Vec<u8> = name.iter().copied().take_while(|b| *b != 0).collect();
            buf = &buf[HDR + name_len..];
            if mask & libc::IN_Q_OVERFLOW != 0 {
                self.stats.queue_overflows.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("config drift: inotify queue overflowed; some changes were lost");
                continue;
            }
            if mask & libc::IN_IGNORED != 0 {
                self.lock().by_wd.remove(&wd);
                continue;
            }
            if let Some(change) = change_of(mask) {
                self.report(wd, &name, mask, change);
            }
        }
    }

    fn report(&self, wd: i32, name: &[u8], mask: u32, change: Change) {
        let targets = {
            let mut st = self.lock();
            let now = Instant::now();
            let key = (wd, name.to_vec(), change.verdict);
            if st
                .recent
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < DEBOUNCE)
            {
                return;
            }
            if st.recent.len() > 4096 {
                st.recent.retain(|_, t| now.duration_since(*t) < DEBOUNCE);
            }
            st.recent.insert(key, now);
            st.by_wd.get(&wd).cloned().unwrap_or_default()
        };
        let name = OsStr::from_bytes(name);
        for t in targets {
            let (path, host) = if t.dir && !name.is_empty() {
                (t.dest.join(name), t.host.join(name))
            } else {
                (t.dest.clone(), t.host.clone())
            };
            self.stats.changes.fetch_add(1, Ordering::Relaxed);
            let event = mounted_file_event(&t.meta, &path, &host, mask, change);
            crate::emitter::emit(&self.emitter, &event);
        }
    }
}

/// The event of one change (pure but for the clock): `evt.type=container`, the file as
/// `fd.name`, no process (inotify does not tell who).
fn mounted_file_event(
    meta: &Arc<ContainerMeta>,
    path: &Path,
    host: &Path,
    mask: u32,
    change: Change,
) -> Event {
    let path = path.to_string_lossy().into_owned();
    Event {
        num: 0,
        time_ns: driftwatch_model::clock::now_ns(),
        kind: EventKind::Container,
        process: Process::default(),
        container: Some(meta.clone()),
        file: Some(FileRef {
            flags: 0,
            mode: None,
            target: None,
            owner: None,
            path: path.clone(),
            old_path: None,
            write: change.verdict == Verdict::Modified,
            typechar: if mask & libc::IN_ISDIR != 0 { 'd' } else { 'f' },
        }),
        net: None,
        drift: Some(DriftFinding {
            provenance: Default::default(),
            enforcement: None,
            kind: DriftKind::Config,
            subject: DriftSubject::MountedFile,
            verdict: change.verdict,
            path,
            hash: None,
            image_hash: None,
            detail: Some(format!(
                "{} (host file {}); the writer is not known: inotify does not say which process",
                change.what,
                host.display()
            )),
        }),
    }
}

#[cfg(test)]
#[expect(clippy::disallowed_methods, reason = "tests read their own fixtures")]
mod tests {
    use super::*;

    fn m(kind: &str, src: &str, dst: &str, rw: bool) -> MountSpec {
        MountSpec {
            kind: kind.into(),
            source: src.into(),
            destination: dst.into(),
            rw,
        }
    }

    #[test]
    fn secrets_files_and_projected_dirs_are_watched_read_only_ones_not() {
        let stat = |p: &Path| match p.to_str().unwrap() {
            "/srv/token" | "/srv/ro.conf" | "/srv/app.conf" => Some(HostKind::File),
            "/srv/secrets" | "/srv/data" | "/srv/cm" | "/srv/cm/..data" => Some(HostKind::Dir),
            "/var/run/docker.sock" => Some(HostKind::Other),
            _ => None,
        };
        let mounts = [
            m("bind", "/srv/token", "/run/secrets/token", true),
            m("bind", "/srv/ro.conf", "/etc/ro.conf", false),
            m("bind", "/srv/app.conf", "/etc/app.conf", true),
            m("bind", "/srv/secrets", "/var/run/secrets/app", true),
            m("bind", "/srv/data", "/data", true),
            m("bind", "/srv/cm", "/etc/config", true),
            m("bind", "/var/run/docker.sock", "/var/run/docker.sock", true),
            m("tmpfs", "/srv/token", "/run/secrets/t2", true),
            m("bind", "/srv/missing", "/run/secrets/gone", true),
        ];
        let got: Vec<(String, bool)> = watch_candidates(&mounts, stat)
            .into_iter()
            .map(|c| (c.dest.display().to_string(), c.dir))
            .collect();
        assert_eq!(
            got,
            [
                ("/run/secrets/token".to_string(), false),
                ("/etc/app.conf".to_string(), false),
                ("/var/run/secrets/app".to_string(), true),
                ("/etc/config".to_string(), true),
            ]
        );
    }

    #[test]
    fn inotify_masks_to_changes() {
        assert_eq!(
            change_of(libc::IN_MODIFY).unwrap().verdict,
            Verdict::Modified
        );
        assert_eq!(
            change_of(libc::IN_MOVED_TO).unwrap().verdict,
            Verdict::Added
        );
        assert_eq!(
            change_of(libc::IN_DELETE).unwrap().verdict,
            Verdict::Deleted
        );
        assert_eq!(
            change_of(libc::IN_DELETE_SELF).unwrap().verdict,
            Verdict::Deleted
        );
        assert_eq!(
            change_of(libc::IN_ATTRIB).unwrap().verdict,
            Verdict::Modified
        );
        assert_eq!(change_of(libc::IN_OPEN), None);
    }

    /// A real inotify watch on a temp file: a write is reported once (debounced), naming the
    /// path inside the container; after unwatch, nothing.
    #[test]
    fn a_write_to_a_watched_file_is_reported_once() {
        use crate::emitter::Emitter;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("token");
        std::fs::write(&secret, "s3cret").unwrap();
        let record = dir.path().join("events.json");
        let emitter = Emitter::new(
            driftwatch_rules::RuleSet::load_with_defaults(&[])
                .unwrap()
                .ruleset,
            None,
            Vec::new(),
            Some(std::io::LineWriter::new(
                std::fs::File::create(&record).unwrap(),
            )),
            Arc::new(crate::stats::AgentStats::default()),
            "h".into(),
        )
        .shared();
        let stats = Arc::new(MountedFileStats::default());
        let w = MountedFiles::start(emitter, stats.clone()).unwrap();
        let id = ContainerId::new(&"ab".repeat(32)).unwrap();
        let meta = Arc::new(ContainerMeta::unknown(id.clone()));
        w.watch(
            &meta,
            &[m(
                "bind",
                secret.to_str().unwrap(),
                "/run/secrets/token",
                true,
            )],
        );
        assert_eq!(stats.watches.load(Ordering::Relaxed), 1);
        std::fs::write(&secret, "changed").unwrap();
        std::fs::write(&secret, "changed again").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.changes.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        w.unwatch(&id);
        std::fs::write(&secret, "after").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        w.shutdown();
        let text = std::fs::read_to_string(&record).unwrap();
        let events: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 1, "{text}");
        let d = events[0].drift.as_ref().unwrap();
        assert_eq!(
            (d.kind, d.subject, d.verdict, d.path.as_str()),
            (
                DriftKind::Config,
                DriftSubject::MountedFile,
                Verdict::Modified,
                "/run/secrets/token"
            )
        );
        assert_eq!(events[0].kind, EventKind::Container);
        assert_eq!(events[0].file.as_ref().unwrap().path, "/run/secrets/token");
        assert!(d.detail.as_deref().unwrap().contains("writer is not known"));
    }
}
