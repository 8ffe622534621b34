//! Network drift: listeners and outbound connections of container processes, judged against
//! the image's declared ports (`ExposedPorts`) and its learned baseline ([`crate::baseline`]),
//! turned into `listen`/`connect` events and emitted.
//!
//! TCP comes from the kernel (`net.bpf.c`, at the moment of `listen`/`connect`). UDP has no
//! cheap hook, so a scan reads `/proc/<pid>/net/udp{,6}` of one process per container network
//! namespace every few seconds and reports sockets it had not seen: a bound, unconnected socket
//! is a listener, a connected one an outbound flow. It costs nothing to processes outside
//! containers. It misses UDP sockets that live shorter than the scan interval, `sendto` on
//! unconnected sockets (no destination is recorded in the socket), containers sharing the
//! host's network namespace, and it names the process through a /proc walk, which fails when
//! the socket is gone by then (the container's init is named instead). For the first 10 s after
//! start the scan also reports TCP listeners from `/proc/<pid>/net/tcp{,6}` of each namespace
//! it sees first: those opened before the agent ran, which the kernel program could not see (a
//! container started in those seconds may have its listener reported twice; drift is alerted
//! once).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use driftwatch_model::{
    ContainerId, DriftFinding, DriftKind, DriftSubject, Event, EventKind, NetRef, Process, Verdict,
};
use driftwatch_runtime::container_from_cgroup_leaf;
use driftwatch_sensor::{
    L4Proto, NetAction, NetRecord, NetSensor, NetSensorConfig, NetSensorStats, ProcNetSocket,
    boot_to_wall_offset_ns, ns_inode, read_tcp_listeners, read_udp_sockets, socket_owner,
};

use crate::baseline::{
    BaselineError, BaselineStore, Decision, destination_key, listener_key, unix_now,
};
use crate::containers::{ContainerEntry, ContainerRegistry, RecordObserver};
use crate::emitter::SharedEmitter;
use crate::proctable::{ProcInfo, ProcTable};

#[derive(Clone, Debug)]
pub struct NetDriftConfig {
    /// Where baselines persist; `None` keeps them in memory.
    pub baseline_file: Option<PathBuf>,
    /// Persist baselines here instead of `baseline_file` (the alert store).
    pub baseline_backend: Option<std::sync::Arc<dyn crate::baseline::BaselineBackend>>,
    /// How long an image learns after its first container is seen.
    pub learning_window: Duration,
    /// Learn listeners alerted during the learning window (`network.learn_alerted`).
    pub learn_alerted: bool,
    /// How often UDP sockets are scanned and the baseline file is written.
    pub scan_interval: Duration,
}

/// Counters of the network side of the agent.
#[derive(Debug, Default)]
pub struct NetDriftStats {
    /// Listen/connect observations of container processes (TCP records and UDP scan finds).
    pub observed: AtomicU64,
    /// Network records of processes in no container cgroup.
    pub not_container: AtomicU64,
    /// Drift findings emitted.
    pub findings: AtomicU64,
    pub udp_scans: AtomicU64,
    pub baseline_write_errors: AtomicU64,
    /// Findings over a container's budget ([`FINDINGS_PER_MINUTE`]), not alerted.
    pub suppressed: AtomicU64,
}

/// At most this many network-drift findings per container per minute are alerted: a port
/// scan from a container must not turn into a flood of alerts (and of agent CPU and disk).
/// The rest are counted (`suppressed`) and one warning per container and minute says so.
pub const FINDINGS_PER_MINUTE: u32 = 100;

/// One listener or outbound flow of a container process, from either source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub time_ns: u64,
    pub action: NetAction,
    pub proto: L4Proto,
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_ip: IpAddr,
    pub remote_port: u16,
}

/// What the baseline is keyed by: the image id, else `repository:tag`; `None` when the
/// engine told nothing about the image (no decision is made then: the declared ports are
/// unknown too).
pub fn image_key(entry: &ContainerEntry) -> Option<(String, String)> {
    let img = &entry.meta.image;
    let name = if img.tag.is_empty() {
        img.repository.clone()
    } else {
        format!("{}:{}", img.repository, img.tag)
    };
    match &img.id {
        Some(id) if !id.is_empty() => Some((id.clone(), name)),
        _ if !img.repository.is_empty() => Some((name.clone(), name)),
        _ => None,
    }
}

/// Loads the baselines `config` names (an unreadable or invalid file is an error): one store
/// for the network side and the exec side's inline code.
pub fn open_baselines(config: &NetDriftConfig) -> Result<Arc<Mutex<BaselineStore>>, BaselineError> {
    let mut store = match &config.baseline_backend {
        Some(b) => BaselineStore::open_backend(Some(b.clone()), config.learning_window)?,
        None => BaselineStore::open(config.baseline_file.clone(), config.learning_window)?,
    };
    store.set_learn_alerted(config.learn_alerted);
    Ok(Arc::new(Mutex::new(store)))
}

/// The decision for one observation: `Some(finding)` when it is drift.
pub fn judge(
    store: &mut BaselineStore,
    key: &str,
    name: &str,
    exposed_ports: &[String],
    obs: &Observation,
    now: u64,
) -> Option<DriftFinding> {
    let proto = obs.proto.as_str();
    let (subject, verdict, item, decision) = match obs.action {
        NetAction::Listen => {
            let item = listener_key(obs.local_port, proto);
            let declared = exposed_ports.contains(&item);
            let d = store.observe_listener(key, name, &item, declared, now);
            (DriftSubject::Listener, Verdict::UndeclaredPort, item, d)
        }
        NetAction::Connect => {
            let item = destination_key(obs.remote_ip, obs.remote_port, proto);
            let d = store.observe_destination(key, name, &item, now);
            (DriftSubject::Outbound, Verdict::NewDestination, item, d)
        }
    };
    let (learned, pending) = match decision {
        Decision::Drift { learned } => (learned, false),
        Decision::Pending => (false, true),
        Decision::Known | Decision::Learned => return None,
    };
    let detail = match (obs.action, learned) {
        (NetAction::Listen, _) if pending => format!(
            "listening on {item}, which the image does not declare (not learned: alerted behaviour waits for `driftwatch baseline approve {name} {item}`)"
        ),
        (NetAction::Listen, true) => format!(
            "listening on {item}, which the image does not declare (learned: the image's learning window is open and network.learn_alerted is on)"
        ),
        (NetAction::Listen, false) => {
            format!("listening on {item}, which neither the image declares nor the baseline allows")
        }
        (NetAction::Connect, _) => {
            format!("connecting to {item}, a destination not in the image's baseline")
        }
    };
    Some(DriftFinding {
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Network,
        subject,
        verdict,
        path: item,
        hash: None,
        image_hash: None,
        detail: Some(detail),
    })
}

/// The network side of the agent: decisions, baselines, and the events they become.
pub struct NetDrift {
    registry: Arc<ContainerRegistry>,
    procs: Arc<Mutex<ProcTable>>,
    emitter: SharedEmitter,
    store: Arc<Mutex<BaselineStore>>,
    /// (container, subject item) already reported as drift: each is alerted once per
    /// container, not on every reconnect.
    reported: Mutex<HashSet<(ContainerId, String)>>,
    /// Per container: the current minute's start and how many findings it alerted.
    budget: Mutex<HashMap<ContainerId, (std::time::Instant, u32)>>,
    /// Pids that waited for an exec record in vain (started before the agent): their later
    /// events do not wait again.
    unrecorded: Mutex<HashSet<u32>>,
    /// The acting process as last described, per pid (see [`DESCRIBED_FOR`]).
    described: Mutex<HashMap<u32, Described>>,
    wall_offset_ns: i128,
    started: std::time::Instant,
    pub stats: NetDriftStats,
}

/// How long after start the scan also reports TCP listeners of newly seen namespaces.
const STARTUP_SWEEP: Duration = Duration::from_secs(10);

/// How long a process's description is reused for its next network events. A client that
/// connects again and again (a port scan, a crawler) is described once, not on every connect:
/// the description reads /proc for what the exec record lacks (the parent's argv, the session
/// and group leaders' names), a few syscalls per event. It is reused only while the exec record
/// and the kernel's facts of the event (parent, uid, gid, comm) are the same: a new exec is
/// described anew; what /proc told of the relatives may be this old.
const DESCRIBED_FOR: Duration = Duration::from_secs(1);

/// At most this many pids are remembered in [`NetDrift::described`].
const DESCRIBED_MAX: usize = 4096;

/// One entry of [`NetDrift::described`].
struct Described {
    at: std::time::Instant,
    container: ContainerId,
    exec: ProcInfo,
    process: Process,
}

impl NetDrift {
    /// Network drift on `store` (from [`open_baselines`], shared with the exec side, which
    /// learns inline code in the same baselines).
    pub fn new(
        store: Arc<Mutex<BaselineStore>>,
        registry: Arc<ContainerRegistry>,
        procs: Arc<Mutex<ProcTable>>,
        emitter: SharedEmitter,
    ) -> NetDrift {
        NetDrift {
            registry,
            procs,
            emitter,
            store,
            reported: Mutex::new(HashSet::new()),
            unrecorded: Mutex::new(HashSet::new()),
            described: Mutex::new(HashMap::new()),
            budget: Mutex::new(HashMap::new()),
            wall_offset_ns: boot_to_wall_offset_ns(),
            started: std::time::Instant::now(),
            stats: NetDriftStats::default(),
        }
    }

    /// The learning window of images first seen from now on (a reload).
    pub fn set_learning_window(&self, window: Duration) {
        self.store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_window(window);
    }

    /// Whether listeners alerted during the learning window are learned (a reload).
    pub fn set_learn_alerted(&self, learn: bool) {
        self.store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_learn_alerted(learn);
    }

    /// A TCP record from the kernel.
    pub fn handle_record(&self, rec: NetRecord) {
        let Some(m) = container_from_cgroup_leaf(&rec.cgroup, Some(&rec.cgroup_parent)) else {
            self.stats.not_container.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let entry = self.registry.resolve(&m.id, m.engine, rec.pid);
        let obs = Observation {
            time_ns: (i128::from(rec.boot_ns) + self.wall_offset_ns).max(0) as u64,
            action: rec.action,
            proto: rec.proto,
            pid: rec.pid,
            ppid: rec.ppid,
            uid: rec.uid,
            gid: rec.gid,
            comm: rec.comm,
            local_ip: rec.local_ip,
            local_port: rec.local_port,
            remote_ip: rec.remote_ip,
            remote_port: rec.remote_port,
        };
        self.observe(&entry, obs);
    }

    /// Judges one observation in `entry`'s container and emits its event.
    pub fn observe(&self, entry: &ContainerEntry, obs: Observation) {
        self.stats.observed.fetch_add(1, Ordering::Relaxed);
        let mut drift = image_key(entry).and_then(|(key, name)| {
            let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
            judge(
                &mut store,
                &key,
                &name,
                &entry.exposed_ports,
                &obs,
                unix_now(),
            )
        });
        if let Some(f) = &drift {
            let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
            if reported.len() > 100_000 {
                reported.clear();
            }
            if !reported.insert((entry.meta.id.clone(), f.path.clone())) {
                drift = None;
            }
        }
        if drift.is_some() && !self.within_budget(&entry.meta.id) {
            drift = None;
        }
        if drift.is_some() {
            self.stats.findings.fetch_add(1, Ordering::Relaxed);
        }
        let event = Event {
            num: 0,
            time_ns: obs.time_ns,
            kind: match obs.action {
                NetAction::Listen => EventKind::Listen,
                NetAction::Connect => EventKind::Connect,
            },
            process: self.process(entry, &obs),
            container: Some(entry.meta.clone()),
            file: None,
            net: Some(NetRef {
                l4proto: obs.proto.as_str().into(),
                local_ip: obs.local_ip.to_string(),
                local_port: obs.local_port,
                remote_ip: match obs.action {
                    NetAction::Listen => String::new(),
                    NetAction::Connect => obs.remote_ip.to_string(),
                },
                remote_port: obs.remote_port,
            }),
            drift,
        };
        crate::emitter::emit(&self.emitter, &event);
    }

    /// Counts a finding against the container's budget; false when it is spent.
    fn within_budget(&self, id: &ContainerId) -> bool {
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        if budget.len() > 10_000 {
            budget.retain(|_, (t, _)| t.elapsed() < Duration::from_secs(60));
        }
        let now = std::time::Instant::now();
        let (start, n) = budget.entry(id.clone()).or_insert((now, 0));
        if start.elapsed() >= Duration::from_secs(60) {
            (*start, *n) = (now, 0);
        }
        *n += 1;
        if *n <= FINDINGS_PER_MINUTE {
            return true;
        }
        if *n == FINDINGS_PER_MINUTE + 1 {
            tracing::warn!(
                "container {}: more than {FINDINGS_PER_MINUTE} network drift findings this minute; the rest of the minute's are counted, not alerted",
                id.short()
            );
        }
        self.stats.suppressed.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// The acting process as the exec sensor saw it, else as /proc shows it now.
    fn process(&self, entry: &ContainerEntry, obs: &Observation) -> Process {
        let waited_in_vain = self
            .unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&obs.pid);
        let mut known = if waited_in_vain {
            crate::proctable::lookup_or_wait(&self.procs, obs.pid)
        } else {
            crate::proctable::lookup_or_wait_live_as_of(&self.procs, obs.pid, obs.time_ns)
        };
        if known.is_none() && !waited_in_vain {
            let mut u = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
            if u.len() > 10_000 {
                u.clear();
            }
            u.insert(obs.pid);
        }
        if let Some(k) = &known
            && let Some(p) = self.described_again(entry, obs, k)
        {
            return p;
        }
        let mut from_proc = None;
        if known.is_none() {
            // Still running when asked, but it may exit before /proc is read (`nc` refused at
            // once): then the exec sensor's record, which may not be in yet, is the one left.
            let exe = driftwatch_fs::host::proc_link(obs.pid, "exe");
            let argv = crate::proctable::proc_argv(obs.pid);
            match exe {
                Ok(l) => from_proc = Some((l.to_string_lossy().into_owned(), argv)),
                Err(_) => known = crate::proctable::lookup_or_wait(&self.procs, obs.pid),
            }
        }
        let pexepath = {
            let procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
            procs.exepath(obs.ppid).unwrap_or_default().to_string()
        };
        let mut p = Process {
            pid: obs.pid,
            ppid: obs.ppid,
            uid: obs.uid,
            gid: obs.gid,
            name: obs.comm.clone(),
            pexepath,
            ..Process::default()
        };
        let mut exec = None;
        match known {
            Some(k) => {
                if p.ppid == 0 {
                    p.ppid = k.ppid;
                }
                exec = Some(k.clone());
                crate::proctable::fill_from_exec(&self.procs, &mut p, k);
            }
            None => {
                if let Some((exepath, argv)) = from_proc {
                    p.exepath = exepath;
                    p.argv = argv;
                } else {
                    p.argv = crate::proctable::proc_argv(obs.pid);
                }
            }
        }
        entry.name_process(&mut p);
        if let Some(exec) = exec {
            self.remember_described(entry, exec, &p);
        }
        p
    }

    /// The description of `obs`'s process made less than [`DESCRIBED_FOR`] ago from the same
    /// exec record `k`, in the same container, with the same parent, ids and comm.
    fn described_again(
        &self,
        entry: &ContainerEntry,
        obs: &Observation,
        k: &ProcInfo,
    ) -> Option<Process> {
        let described = self.described.lock().unwrap_or_else(|p| p.into_inner());
        let d = described.get(&obs.pid)?;
        let ppid = if obs.ppid == 0 { k.ppid } else { obs.ppid };
        let same = d.at.elapsed() < DESCRIBED_FOR
            && d.process.ppid == ppid
            && (d.process.uid, d.process.gid) == (obs.uid, obs.gid)
            && d.process.name == obs.comm
            && d.container == entry.meta.id
            && d.exec == *k;
        same.then(|| d.process.clone())
    }

    fn remember_described(&self, entry: &ContainerEntry, exec: ProcInfo, p: &Process) {
        let mut described = self.described.lock().unwrap_or_else(|p| p.into_inner());
        if described.len() >= DESCRIBED_MAX {
            described.retain(|_, d| d.at.elapsed() < DESCRIBED_FOR);
            if described.len() >= DESCRIBED_MAX {
                described.clear();
            }
        }
        described.insert(
            p.pid,
            Described {
                at: std::time::Instant::now(),
                container: entry.meta.id.clone(),
                exec,
                process: p.clone(),
            },
        );
    }

    /// Starts the learning window of every known container's image (the window runs from
    /// when the first container of the image is seen, not from its first connection).
    pub fn touch_images(&self) {
        let now = unix_now();
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        for e in self.registry.live_entries() {
            if let Some((key, name)) = image_key(&e) {
                store.image(&key, &name, now);
            }
        }
    }

    /// Takes over the baseline file if another program changed it, then writes it if it
    /// changed here.
    pub fn flush(&self) {
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = store.sync() {
            self.stats
                .baseline_write_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!("{e}");
        }
    }

    /// One UDP scan over every container network namespace (see the module docs). During the
    /// startup sweep, the TCP listeners of a namespace seen for the first time are reported
    /// too: they may predate the kernel program. (The engine's list of running containers
    /// arrives asynchronously, hence a sweep of some seconds rather than the first scan.)
    pub fn scan_udp(&self, seen: &mut HashMap<u64, HashSet<u64>>) {
        let sweep = self.started.elapsed() < STARTUP_SWEEP;
        self.stats.udp_scans.fetch_add(1, Ordering::Relaxed);
        let host_net = ns_inode(1, "net");
        let mut scanned: HashSet<u64> = HashSet::new();
        for entry in self.registry.live_entries() {
            let Some(pid) = entry.pid else { continue };
            let Some(net_ns) = ns_inode(pid, "net") else {
                continue;
            };
            if Some(net_ns) == host_net || !scanned.insert(net_ns) {
                continue;
            }
            if sweep && !seen.contains_key(&net_ns) {
                for s in read_tcp_listeners(pid).unwrap_or_default() {
                    self.observe_socket(&entry, net_ns, pid, &s, L4Proto::Tcp);
                }
            }
            let Ok(sockets) = read_udp_sockets(pid) else {
                continue;
            };
            let known = seen.entry(net_ns).or_default();
            let now_inodes: HashSet<u64> = sockets.iter().map(|s| s.inode).collect();
            known.retain(|i| now_inodes.contains(i));
            for s in sockets {
                if known.insert(s.inode) {
                    self.observe_socket(&entry, net_ns, pid, &s, L4Proto::Udp);
                }
            }
        }
        seen.retain(|ns, _| scanned.contains(ns));
    }

    /// A socket found in /proc, attributed to the process holding it (else `fallback_pid`).
    fn observe_socket(
        &self,
        entry: &ContainerEntry,
        net_ns: u64,
        fallback_pid: u32,
        s: &ProcNetSocket,
        proto: L4Proto,
    ) {
        let owner = socket_owner(net_ns, s.inode).unwrap_or(fallback_pid);
        let status = driftwatch_fs::host::proc_string(owner, "status").unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let obs = Observation {
            time_ns: driftwatch_model::clock::now_ns(),
            action: if proto == L4Proto::Tcp {
                NetAction::Listen
            } else {
                s.action()
            },
            proto,
            pid: owner,
            ppid: field("PPid:").parse().unwrap_or(0),
            uid: s.uid,
            gid: field("Gid:")
                .split_whitespace()
                .next()
                .and_then(|g| g.parse().ok())
                .unwrap_or(0),
            comm: field("Name:"),
            local_ip: s.local_ip,
            local_port: s.local_port,
            remote_ip: s.remote_ip,
            remote_port: s.remote_port,
        };
        self.observe(entry, obs);
    }
}

/// The running network side: the TCP sensor and the scan/flush thread. Dropping it stops
/// both and writes the baseline.
/// A removed container's findings and budget are forgotten: churn must not grow them (a
/// container id is never reused).
impl RecordObserver for NetDrift {
    fn record_seen(&self, _entry: &Arc<ContainerEntry>) {}

    fn stopped(&self, id: &ContainerId, destroyed: bool) {
        if !destroyed {
            return;
        }
        self.reported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(c, _)| c != id);
        self.budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

impl NetDrift {
    /// (findings remembered as reported, containers with an alert budget): for tests.
    pub fn remembered(&self) -> (usize, usize) {
        (
            self.reported
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len(),
            self.budget.lock().unwrap_or_else(|p| p.into_inner()).len(),
        )
    }
}

pub struct NetDriftRuntime {
    pub drift: Arc<NetDrift>,
    sensor: Option<NetSensor>,
    stop: Arc<AtomicBool>,
    scanner: Option<JoinHandle<()>>,
}

impl NetDriftRuntime {
    /// Starts the TCP sensor (a failure there is logged: the rest of the agent runs without
    /// it) and the scanner thread, which also writes `store` (see [`open_baselines`]).
    pub fn start(
        config: &NetDriftConfig,
        store: Arc<Mutex<BaselineStore>>,
        registry: Arc<ContainerRegistry>,
        procs: Arc<Mutex<ProcTable>>,
        emitter: SharedEmitter,
    ) -> NetDriftRuntime {
        let drift = Arc::new(NetDrift::new(store, registry, procs, emitter));
        let sensor = {
            let d = drift.clone();
            match NetSensor::start(NetSensorConfig::default(), move |rec| d.handle_record(rec)) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(
                        "network sensor: {e}; TCP listeners and connections are not seen (UDP scan still runs)"
                    );
                    None
                }
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let scanner = {
            let d = drift.clone();
            let stop = stop.clone();
            let interval = config.scan_interval.max(Duration::from_millis(100));
            std::thread::Builder::new()
                .name("dw-net-scan".into())
                .spawn(move || {
                    let mut seen = HashMap::new();
                    while !stop.load(Ordering::Relaxed) {
                        d.touch_images();
                        d.scan_udp(&mut seen);
                        d.flush();
                        let mut slept = Duration::ZERO;
                        while slept < interval && !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(100));
                            slept += Duration::from_millis(100);
                        }
                    }
                })
                .ok()
        };
        NetDriftRuntime {
            drift,
            sensor,
            stop,
            scanner,
        }
    }

    pub fn sensor_stats(&self) -> Option<&Arc<NetSensorStats>> {
        self.sensor.as_ref().map(|s| s.stats())
    }
}

impl Drop for NetDriftRuntime {
    fn drop(&mut self) {
        drop(self.sensor.take());
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.scanner.take() {
            let _ = t.join();
        }
        self.drift.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(action: NetAction, proto: L4Proto, port: u16) -> Observation {
        Observation {
            time_ns: 1,
            action,
            proto,
            pid: 10,
            ppid: 1,
            uid: 0,
            gid: 0,
            comm: "nc".into(),
            local_ip: "127.0.0.1".parse().unwrap(),
            local_port: if action == NetAction::Listen {
                port
            } else {
                40000
            },
            remote_ip: if action == NetAction::Listen {
                "0.0.0.0".parse().unwrap()
            } else {
                "127.0.0.1".parse().unwrap()
            },
            remote_port: if action == NetAction::Listen { 0 } else { port },
        }
    }

    #[test]
    fn declared_ports_never_drift_and_undeclared_do_from_the_start() {
        let mut s = BaselineStore::open(None, Duration::from_secs(300)).unwrap();
        let exposed = vec!["8080/tcp".to_string(), "53/udp".to_string()];
        let j =
            |s: &mut BaselineStore, o: &Observation| judge(s, "sha256:1", "app:1", &exposed, o, 10);
        assert_eq!(j(&mut s, &obs(NetAction::Listen, L4Proto::Tcp, 8080)), None);
        assert_eq!(j(&mut s, &obs(NetAction::Listen, L4Proto::Udp, 53)), None);
        // 8080/udp is not 8080/tcp.
        let f = j(&mut s, &obs(NetAction::Listen, L4Proto::Udp, 8080)).unwrap();
        assert_eq!(
            (f.kind, f.subject, f.verdict, f.path.as_str()),
            (
                DriftKind::Network,
                DriftSubject::Listener,
                Verdict::UndeclaredPort,
                "8080/udp"
            )
        );
        assert!(
            f.detail
                .unwrap()
                .contains("baseline approve app:1 8080/udp")
        );
    }

    /// The attack in the learning window is not learned: alerted while learning, again
    /// after, quiet once approved; `learn_alerted` restores learning.
    #[test]
    fn an_alerted_listener_is_pending_until_approved() {
        let mut s = BaselineStore::open(None, Duration::from_secs(60)).unwrap();
        let o = obs(NetAction::Listen, L4Proto::Tcp, 4444);
        let j = |s: &mut BaselineStore, now| judge(s, "k", "app:1", &[], &o, now);
        assert!(j(&mut s, 10).is_some(), "alerted while learning");
        assert!(j(&mut s, 1000).is_some(), "alerted again after the window");
        let img = s.data().images["k"].clone();
        assert!(img.listeners.is_empty(), "{img:?}");
        assert_eq!(img.pending_listeners, ["4444/tcp".to_string()].into());
        // `driftwatch baseline approve` writes the file; the agent takes it over.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines.json");
        let mut file = s.data().clone();
        let img = file.images.get_mut("k").unwrap();
        assert_eq!(img.approve(&["4444/tcp".into()]), Ok(1));
        file.save(&path).unwrap();
        let mut s = BaselineStore::open(Some(path), Duration::from_secs(60)).unwrap();
        assert_eq!(j(&mut s, 2000), None, "quiet once approved");

        let mut old = BaselineStore::open(None, Duration::from_secs(60)).unwrap();
        old.set_learn_alerted(true);
        assert!(
            j(&mut old, 10)
                .unwrap()
                .detail
                .unwrap()
                .contains("(learned")
        );
        assert_eq!(j(&mut old, 1000), None);
    }

    #[test]
    fn outbound_is_learned_then_enforced() {
        let mut s = BaselineStore::open(None, Duration::from_secs(60)).unwrap();
        let o = obs(NetAction::Connect, L4Proto::Tcp, 9000);
        assert_eq!(judge(&mut s, "k", "app:1", &[], &o, 100), None);
        assert_eq!(judge(&mut s, "k", "app:1", &[], &o, 1000), None);
        let f = judge(
            &mut s,
            "k",
            "app:1",
            &[],
            &obs(NetAction::Connect, L4Proto::Tcp, 9001),
            1000,
        )
        .unwrap();
        assert_eq!(f.subject, DriftSubject::Outbound);
        assert_eq!(f.verdict, Verdict::NewDestination);
        assert_eq!(f.path, "127.0.0.1:9001/tcp");
    }
}
