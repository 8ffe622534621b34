//! Tamper protection: the agent watches for containers trying to switch it off or blind it.
//!
//! - Signals: every signal generated for the agent is reported with its sender
//!   (`tp_btf/signal_generate`); one from a container (a process whose cgroup is a
//!   container's other than the agent's own: possible with `--pid host`) raises a critical
//!   alert, and a stop request
//!   (SIGTERM, SIGINT, SIGHUP) from a container is ignored ([`TamperGuard::origin_of`]). It
//!   fails closed: a stop request whose sender is unknown (its record late or lost, as a
//!   container flooding the agent with signals can arrange) is ignored too. A host's stop
//!   request is never crowded out by a container's records (they are kept apart); SIGKILL,
//!   which `systemctl stop` sends after its timeout, always ends the agent.
//! - ptrace: the agent makes itself non-dumpable (attaching then needs CAP_SYS_PTRACE in
//!   the initial user namespace) and checks its `TracerPid`; a tracer raises an alert.
//! - Its files: fanotify open permission on the protected paths (binary, config, state
//!   directories): an open by a process of a container is denied and raises an alert.
//! - Integrity: the agent checks that it is still non-dumpable and that its signal program
//!   still reports (a self-signal round trip), alerting when not.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use driftwatch_model::Alert;
use driftwatch_runtime::container_from_cgroup_leaf;
use driftwatch_sensor::{ExecGuard, ExecRequest, SignalRecord, SignalSensor};
use serde_json::json;

use crate::containers::ContainerRegistry;
use crate::emitter::SharedEmitter;

/// What tamper protection covers (`AgentConfig::tamper`).
#[derive(Clone, Debug)]
pub struct TamperGuardConfig {
    pub enabled: bool,
    /// Files and directories (their direct children too) a container may not open.
    pub protect: Vec<PathBuf>,
    /// Files in those directories left unguarded: the alert store's SQLite files. A
    /// permission event carries an fd of the opened file, and closing it would drop the
    /// SQLite locks the agent holds on it (fcntl locks belong to the process, not the fd).
    pub unguarded: Vec<PathBuf>,
    /// Every open of a protected path is answered within this; allowed when the decision
    /// is late (`enforcement.answer_deadline`).
    pub answer_deadline: Duration,
}

impl Default for TamperGuardConfig {
    fn default() -> Self {
        TamperGuardConfig {
            enabled: true,
            protect: Vec::new(),
            unguarded: Vec::new(),
            answer_deadline: crate::deadline::DEFAULT_ANSWER_DEADLINE,
        }
    }
}

/// Counters of tamper protection (in `--stats-json`).
#[derive(Debug, Default)]
pub struct TamperStats {
    /// Signals to the agent from any sender, and from containers.
    pub signals: AtomicU64,
    pub signals_from_containers: AtomicU64,
    /// Stop requests whose sender's record did not arrive in time (ignored: tamper protection
    /// fails closed).
    pub unknown_origins: AtomicU64,
    /// Stop requests (SIGTERM/SIGINT/SIGHUP) from containers the agent ignored.
    pub stops_ignored: AtomicU64,
    /// Opens of protected paths by container processes, denied.
    pub opens_denied: AtomicU64,
    /// Opens of protected paths answered (allowed or denied).
    pub open_requests: AtomicU64,
    /// Times a tracer was found attached to the agent.
    pub traced: AtomicU64,
    /// Integrity checks that failed (each raised a critical alert).
    pub integrity_failures: AtomicU64,
    /// The answers to opens of protected paths and their deadline.
    pub answers: Arc<crate::deadline::DeadlineStats>,
}

/// Who sent a signal the agent received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalOrigin {
    Host,
    Container,
    /// No record arrived in time (tamper protection off or its program not attached).
    Unknown,
}

/// The kernel's records of signals sent to the agent, not yet claimed by the main thread.
/// Host senders are counted per signal apart from the containers' bounded queue, so that a
/// flood of signals from a container (`--pid host`) can never push a host's stop request
/// out.
#[derive(Default)]
struct Pending {
    /// Signals from containers, newest last (at most [`MAX_PENDING`]).
    container: VecDeque<u32>,
    /// Signal number → records from host processes not claimed yet (each at most
    /// [`MAX_PENDING`]).
    host: std::collections::BTreeMap<u32, u32>,
}

/// Records kept at most per queue.
const MAX_PENDING: usize = 64;

impl Pending {
    /// Keeps one record of the kernel's.
    fn record(&mut self, sig: u32, from_container: bool) {
        // Only the newest few matter (the main thread claims its signal within a second);
        // signals nobody claims (SIGCHLD, SIGCONT) must not pile up.
        if from_container {
            self.container.push_back(sig);
            while self.container.len() > MAX_PENDING {
                self.container.pop_front();
            }
        } else if self.host.len() < MAX_PENDING || self.host.contains_key(&sig) {
            let n = self.host.entry(sig).or_default();
            *n = (*n + 1).min(MAX_PENDING as u32);
        }
    }

    /// Takes every record of `sig`: `Host` when a host's is among them, `Container` when
    /// only containers', `None` when there is none yet.
    fn claim(&mut self, sig: u32) -> Option<SignalOrigin> {
        let host = self.host.remove(&sig).is_some();
        let before = self.container.len();
        self.container.retain(|&s| s != sig);
        if host {
            Some(SignalOrigin::Host)
        } else if self.container.len() < before {
            Some(SignalOrigin::Container)
        } else {
            None
        }
    }
}

struct Origins {
    queue: Mutex<Pending>,
    arrived: Condvar,
}

/// The running tamper protection. Dropping it stops its threads.
pub struct TamperGuard {
    pub stats: Arc<TamperStats>,
    origins: Arc<Origins>,
    signals: Option<SignalSensor>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Who counts as a container: a process whose cgroup is a container's (the engine-agnostic
/// cgroup naming the exec sensor uses), other than the agent's own container when the agent
/// itself runs in one (its `driftwatch health` probes run there). Namespaces are not used:
/// host services have their own mount namespaces (systemd's PrivateTmp, logrotate), and
/// `/proc/1/ns` may be unreadable, so a host process can look like a container's.
#[derive(Clone, Debug)]
struct Containers {
    own: Option<driftwatch_model::ContainerId>,
}

impl Containers {
    fn of_agent() -> Self {
        let (leaf, parent) = cgroup_of(std::process::id());
        Containers {
            own: container_from_cgroup_leaf(&leaf, Some(&parent)).map(|m| m.id),
        }
    }

    /// True when a process of cgroup `leaf` (under `parent`) is in a container, not the
    /// agent's.
    fn foreign(&self, leaf: &str, parent: &str) -> bool {
        container_from_cgroup_leaf(leaf, Some(parent))
            .is_some_and(|m| self.own.as_ref() != Some(&m.id))
    }
}

fn signal_name(sig: u32) -> String {
    let name = match sig as i32 {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGTRAP => "SIGTRAP",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// Container fields for a process, from its cgroup (`/proc/<pid>/cgroup` or the kernel's
/// record) and the registry.
fn container_fields(
    registry: &ContainerRegistry,
    leaf: &str,
    parent: &str,
    pid: u32,
    fields: &mut BTreeMap<String, serde_json::Value>,
) -> String {
    match container_from_cgroup_leaf(leaf, Some(parent)) {
        Some(m) => {
            let entry = registry.resolve(&m.id, m.engine, pid);
            let meta = &entry.meta;
            fields.insert("container.id".into(), json!(meta.id.short()));
            fields.insert("container.name".into(), json!(meta.name));
            fields.insert("container.image".into(), json!(meta.image.display_name()));
            if meta.name.is_empty() {
                meta.id.short().to_string()
            } else {
                format!("{} ({})", meta.name, meta.id.short())
            }
        }
        None => {
            fields.insert("container.id".into(), json!(""));
            "an unknown container".into()
        }
    }
}

/// The cgroup v2 path's last two components of `pid` (leaf, parent).
fn cgroup_of(pid: u32) -> (String, String) {
    let text = driftwatch_fs::host::proc_string(pid, "cgroup").unwrap_or_default();
    // Prefer the unified hierarchy (`0::/path`), else any line naming a container.
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| text.lines().find_map(|l| l.splitn(3, ':').nth(2)))
        .unwrap_or("");
    let mut parts = path.rsplit('/').filter(|p| !p.is_empty());
    let leaf = parts.next().unwrap_or("").to_string();
    let parent = parts.next().unwrap_or("").to_string();
    (leaf, parent)
}

fn comm_of(pid: u32) -> String {
    driftwatch_fs::host::proc_string(pid, "comm")
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

struct Ctx {
    emitter: SharedEmitter,
    registry: Arc<ContainerRegistry>,
    stats: Arc<TamperStats>,
    hostname: String,
    containers: Containers,
}

impl Ctx {
    fn emit(&self, alert: &Alert) {
        crate::emitter::emit_alert(&self.emitter, alert);
    }

    fn on_signal(&self, r: &SignalRecord) {
        let sig = signal_name(r.sig);
        let mut fields = BTreeMap::new();
        fields.insert("proc.pid".into(), json!(r.pid));
        fields.insert("proc.vpid".into(), json!(r.ns_pid));
        fields.insert("proc.name".into(), json!(r.comm));
        fields.insert("user.uid".into(), json!(r.uid));
        fields.insert("evt.type".into(), json!("kill"));
        fields.insert("evt.arg.sig".into(), json!(sig));
        fields.insert("evt.arg.target".into(), json!(std::process::id()));
        let container = container_fields(
            &self.registry,
            &r.cgroup,
            &r.cgroup_parent,
            r.pid,
            &mut fields,
        );
        let output = format!(
            "Signal sent to driftwatch from a container ({sig} to the agent pid {} by {} pid {} (pid {} in the container) uid {} in container {container})",
            std::process::id(),
            r.comm,
            r.pid,
            r.ns_pid,
            r.uid,
        );
        self.emit(&Alert::tamper(
            &self.hostname,
            "Signal sent to driftwatch from a container",
            output,
            fields,
        ));
    }

    /// Judges one open request on a protected path: a container's process is denied; the
    /// alert is raised after the answer ([`Ctx::open_denied`]).
    fn on_open(&self, req: &ExecRequest) -> (bool, Option<(String, String)>) {
        self.stats.open_requests.fetch_add(1, Ordering::Relaxed);
        let own = req.pid == std::process::id();
        // A process gone before we looked has no cgroup left: allow (it opens nothing now).
        let (leaf, parent) = if own {
            Default::default()
        } else {
            cgroup_of(req.pid)
        };
        let foreign = !own && self.containers.foreign(&leaf, &parent);
        (!foreign, foreign.then_some((leaf, parent)))
    }

    fn open_denied(&self, req: &ExecRequest, leaf: &str, parent: &str) {
        self.stats.opens_denied.fetch_add(1, Ordering::Relaxed);
        let path = req
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let comm = comm_of(req.pid);
        let mut fields = BTreeMap::new();
        fields.insert("proc.pid".into(), json!(req.pid));
        fields.insert("proc.name".into(), json!(comm));
        fields.insert("fd.name".into(), json!(path));
        // The call as the catalogue prints a file open (`%evt.type` of Open and Creat events),
        // whichever of open/openat/openat2 the process used: fanotify does not say.
        fields.insert("evt.type".into(), json!("openat"));
        fields.insert("evt.res".into(), json!("EPERM"));
        let container = container_fields(&self.registry, leaf, parent, req.pid, &mut fields);
        let output = format!(
            "A container opened a file of driftwatch (denied; file={path} by {comm} pid {} in container {container})",
            req.pid
        );
        self.emit(&Alert::tamper(
            &self.hostname,
            "Container opened a file of driftwatch",
            output,
            fields,
        ));
    }

    fn integrity_failure(&self, what: &str, output: String) {
        self.stats
            .integrity_failures
            .fetch_add(1, Ordering::Relaxed);
        let mut fields = BTreeMap::new();
        fields.insert("proc.pid".into(), json!(std::process::id()));
        fields.insert("driftwatch.check".into(), json!(what));
        self.emit(&Alert::tamper(
            &self.hostname,
            "Driftwatch integrity check failed",
            output,
            fields,
        ));
    }
}

/// The open permission requests on protected paths, served with a deadline
/// ([`crate::deadline`]). A late decision allows: a stuck decider must not lock the host's
/// own tools (backups, package managers) out of the agent's files; the late opens are
/// counted and alerted.
struct FileDecider {
    ctx: Arc<Ctx>,
    guard: ExecGuard,
    ignore: Box<dyn Fn(&ExecGuard) + Send + Sync>,
}

impl crate::deadline::Decide for FileDecider {
    type FollowUp = (String, String);

    fn guard(&self) -> &ExecGuard {
        &self.guard
    }

    fn fallback(&self, _req: &ExecRequest) -> bool {
        true
    }

    fn decide(&self, req: &ExecRequest) -> (bool, Option<(String, String)>) {
        self.ctx.on_open(req)
    }

    fn follow_up(&self, req: &ExecRequest, (leaf, parent): (String, String), in_time: bool) {
        if in_time {
            self.ctx.open_denied(req, &leaf, &parent);
        }
    }

    fn report_timeouts(&self, count: u64, allowed: u64, denied: u64, deadline: Duration) {
        crate::deadline::emit_timeout_alert(
            &self.ctx.emitter,
            "open",
            count,
            allowed,
            denied,
            deadline,
        );
    }

    fn housekeeping(&self) {
        (self.ignore)(&self.guard);
    }
}

/// Makes the agent non-dumpable: no core dumps of its memory, and ptrace attach (and
/// /proc/<pid>/mem, environ, fd of other users) need CAP_SYS_PTRACE in the initial user
/// namespace, which a container normally lacks.
pub fn set_non_dumpable() -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) affects only this process.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn is_dumpable() -> bool {
    // SAFETY: prctl(PR_GET_DUMPABLE) reads a flag of this process.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) != 0 }
}

/// The pid tracing the agent (`TracerPid` in /proc/self/status), 0 when none.
fn tracer_pid() -> u32 {
    driftwatch_fs::host::own_file_string(std::path::Path::new("/proc/self/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

impl TamperGuard {
    /// Starts tamper protection. Parts the host does not support are warned about and left
    /// out; the agent runs without them.
    pub fn start(
        config: &TamperGuardConfig,
        emitter: SharedEmitter,
        registry: Arc<ContainerRegistry>,
        hostname: String,
    ) -> TamperGuard {
        let stats = Arc::new(TamperStats::default());
        let origins = Arc::new(Origins {
            queue: Mutex::new(Pending::default()),
            arrived: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut guard = TamperGuard {
            stats: stats.clone(),
            origins: origins.clone(),
            signals: None,
            stop: stop.clone(),
            threads: Vec::new(),
        };
        if !config.enabled {
            return guard;
        }
        if let Err(e) = set_non_dumpable() {
            tracing::warn!("prctl(PR_SET_DUMPABLE, 0): {e}; ptrace of the agent is not hardened");
        }
        let containers = Containers::of_agent();
        let ctx = Arc::new(Ctx {
            emitter,
            registry,
            stats: stats.clone(),
            hostname,
            containers,
        });
        let sctx = ctx.clone();
        match SignalSensor::start(std::process::id(), move |r| {
            sctx.stats.signals.fetch_add(1, Ordering::Relaxed);
            let from_container = sctx.containers.foreign(&r.cgroup, &r.cgroup_parent);
            // The origin first, the alert after: the main thread waiting to know who sent a
            // stop request never waits behind the alerts of a flood.
            origins
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(r.sig, from_container);
            origins.arrived.notify_all();
            if from_container {
                sctx.stats
                    .signals_from_containers
                    .fetch_add(1, Ordering::Relaxed);
                sctx.on_signal(&r);
            }
        }) {
            Ok(s) => guard.signals = Some(s),
            Err(e) => {
                tracing::warn!("{e}; signals sent to the agent from containers are not detected")
            }
        }
        if !config.protect.is_empty() {
            match Self::file_guard(config, ctx.clone(), stop.clone()) {
                Ok(t) => guard.threads.push(t),
                Err(e) => tracing::warn!("{e}; the agent's files are not protected"),
            }
        }
        let wctx = ctx;
        let wstop = stop;
        let has_signals = guard.signals.is_some();
        let wstats = stats;
        if let Ok(t) = std::thread::Builder::new()
            .name("dw-tamper-watch".into())
            .spawn(move || watch(wctx, wstop, has_signals, wstats))
        {
            guard.threads.push(t);
        }
        guard
    }

    fn file_guard(
        config: &TamperGuardConfig,
        ctx: Arc<Ctx>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        let guard = ExecGuard::new()?;
        // Unguarded files first, so no event for them is ever made. Those that do not exist
        // yet (an SQLite journal) are ignored once they do, on the next pass below.
        let unguarded = config.unguarded.clone();
        let ignore = move |guard: &ExecGuard| {
            for p in unguarded.iter().filter(|p| p.exists()) {
                if let Err(e) = guard.ignore_open(p) {
                    tracing::debug!("leaving {} unguarded: {e}", p.display());
                }
            }
        };
        ignore(&guard);
        let mut marked = Vec::new();
        for p in &config.protect {
            match guard.mark_open(p) {
                Ok(()) => marked.push(p.display().to_string()),
                Err(e) => tracing::warn!("protecting {}: {e}", p.display()),
            }
        }
        tracing::info!(
            "tamper protection: containers may not open {}",
            marked.join(", ")
        );
        let d = Arc::new(FileDecider {
            ctx,
            guard,
            ignore: Box::new(ignore),
        });
        let stats = d.ctx.stats.answers.clone();
        let deadline = config.answer_deadline;
        std::thread::Builder::new()
            .name("dw-tamper-files".into())
            .spawn(move || crate::deadline::serve(d, "open", deadline, stats, stop))
    }

    /// Who sent the `sig` the agent just received: waits up to `timeout` for the kernel's
    /// record, then takes every queued record of `sig`. `Container` only when all of them
    /// came from containers (a host's stop request among them wins). `Unknown` when no record
    /// arrived in time (or signals are not watched: see [`Self::watches_signals`]).
    pub fn origin_of(&self, sig: i32, timeout: Duration) -> SignalOrigin {
        if self.signals.is_none() {
            return SignalOrigin::Unknown;
        }
        let sig = sig as u32;
        let deadline = Instant::now() + timeout;
        let mut q = self.origins.queue.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match q.claim(sig) {
                Some(SignalOrigin::Container) => {
                    self.stats.stops_ignored.fetch_add(1, Ordering::Relaxed);
                    return SignalOrigin::Container;
                }
                Some(origin) => return origin,
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.stats.unknown_origins.fetch_add(1, Ordering::Relaxed);
                return SignalOrigin::Unknown;
            }
            q = self
                .origins
                .arrived
                .wait_timeout(q, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Whether the signals sent to the agent are watched (tamper protection on and its
    /// signal program attached). Then a stop request of unknown origin is ignored: failing
    /// closed, since a container that floods the agent with signals can make the kernel's
    /// record of a stop request late or lost.
    pub fn watches_signals(&self) -> bool {
        self.signals.is_some()
    }
}

/// Every second: a tracer attached, the agent dumpable again, the signal program silent
/// (a SIGCONT to itself, harmless, must come back as a record) each raise an alert once.
fn watch(ctx: Arc<Ctx>, stop: Arc<AtomicBool>, has_signals: bool, stats: Arc<TamperStats>) {
    let mut reported_tracer = 0;
    let mut reported_dumpable = false;
    let mut reported_silent = false;
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(250));
        tick += 1;
        if !tick.is_multiple_of(4) {
            continue;
        }
        let tracer = tracer_pid();
        if tracer != 0 && tracer != reported_tracer {
            stats.traced.fetch_add(1, Ordering::Relaxed);
            let comm = comm_of(tracer);
            let (leaf, parent) = cgroup_of(tracer);
            let mut fields = BTreeMap::new();
            fields.insert("proc.pid".into(), json!(tracer));
            fields.insert("proc.name".into(), json!(comm));
            let container = container_fields(&ctx.registry, &leaf, &parent, tracer, &mut fields);
            ctx.emit(&Alert::tamper(
                &ctx.hostname,
                "Driftwatch is being traced",
                format!(
                    "A process is tracing driftwatch (ptrace; tracer={comm} pid {tracer}, container {container})"
                ),
                fields,
            ));
        }
        reported_tracer = tracer;
        if is_dumpable() && !reported_dumpable {
            reported_dumpable = true;
            ctx.integrity_failure(
                "dumpable",
                "Driftwatch integrity check failed (the agent became dumpable again: ptrace hardening is off)".into(),
            );
        }
        // Every 10 s: the signal program still attached and reporting.
        if has_signals && tick.is_multiple_of(40) && !reported_silent {
            let before = stats.signals.load(Ordering::Relaxed);
            // SAFETY: SIGCONT to ourselves: we are running, so it does nothing.
            unsafe { libc::kill(std::process::id() as i32, libc::SIGCONT) };
            let deadline = Instant::now() + Duration::from_secs(2);
            while stats.signals.load(Ordering::Relaxed) == before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if stats.signals.load(Ordering::Relaxed) == before {
                reported_silent = true;
                ctx.integrity_failure(
                    "signal_program",
                    "Driftwatch integrity check failed (its signal program no longer reports: detached or its ring buffer tampered with)".into(),
                );
            }
        }
    }
}

impl Drop for TamperGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        drop(self.signals.take());
    }
}

/// The default protected paths: the agent's own binary, and the directories of the files it
/// uses (that exist). `extra` is added as is.
pub fn default_protected(files: &[&Path], extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = driftwatch_fs::host::proc_link(std::process::id(), "exe") {
        out.push(exe);
    }
    for f in files {
        if let Some(d) = f.parent().filter(|d| !d.as_os_str().is_empty())
            && d.is_dir()
            && d != Path::new("/")
            && d != Path::new("/tmp")
        {
            out.push(d.to_path_buf());
        }
    }
    out.extend(extra.iter().cloned());
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod signal_tests {
    use super::*;

    const TERM: u32 = libc::SIGTERM as u32;

    #[test]
    fn a_container_flood_never_crowds_out_the_hosts_stop_request() {
        let mut p = Pending::default();
        p.record(TERM, false);
        for _ in 0..100_000 {
            p.record(TERM, true);
            p.record(libc::SIGUSR1 as u32, true);
        }
        assert!(p.container.len() <= MAX_PENDING);
        assert_eq!(p.claim(TERM), Some(SignalOrigin::Host));
        // Claimed: nothing of it is left.
        assert_eq!(p.claim(TERM), None);
    }

    #[test]
    fn only_containers_records_make_a_container_origin_and_none_is_unknown() {
        let mut p = Pending::default();
        assert_eq!(p.claim(TERM), None);
        p.record(TERM, true);
        p.record(libc::SIGCHLD as u32, false);
        assert_eq!(p.claim(TERM), Some(SignalOrigin::Container));
        assert_eq!(p.claim(TERM), None);
        // Unclaimed host signals are bounded too.
        for s in 0..1000 {
            p.record(s, false);
            p.record(s, false);
        }
        assert!(p.host.len() <= MAX_PENDING);
        assert_eq!(p.claim(libc::SIGCHLD as u32), Some(SignalOrigin::Host));
    }
}
