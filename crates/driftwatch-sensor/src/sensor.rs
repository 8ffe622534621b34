//! The exec sensor: loads `exec.bpf.c`, attaches it to `tp_btf/sched_process_exec`, and
//! hands every decoded record to a callback from a dedicated thread.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::abi::{
    DW_STAT_COUNT, DW_STAT_HELD, DW_STAT_HOST_SKIPPED, DW_STAT_KILLED, DW_STAT_LOST,
    DW_STAT_ORPHANED, DW_STAT_SENT,
};

use crate::exec::ExecRecord;
use crate::host::PIN_DIR;
use crate::load::{SensorError, begin_load, bpf_error};
use crate::maps::CountedMap;

bpf_skeleton!("exec.skel.rs");

#[derive(Clone, Debug)]
pub struct ExecSensorConfig {
    /// Ring buffer size in bytes (a power of two, at least a page).
    pub ring_bytes: u32,
    /// The mount-namespace inode of the host; execs there are skipped in the kernel.
    /// `None` reads it from `/proc/1/ns/mnt`.
    pub host_mnt_ns: Option<u32>,
    /// While records flow, drain the ring buffer this often, the program writing them
    /// without waking the reader; idle, sleep in epoll until the first record
    /// (`bpf/include/dw_ring.h`). Adds at most this much alert latency to records nobody
    /// waits for. Zero: the kernel's default, a wakeup per record the reader has caught up
    /// with (`sensor.drain_interval`).
    pub drain_interval: Duration,
    /// Pin the program's link and the `orphans` map in [`PIN_DIR`] so that the kernel keeps
    /// enforcing after the agent dies (unpinned again on a clean stop).
    pub pin: bool,
    /// File names of interpreters held in prevent-mode namespaces when run with an argument
    /// (the `interpreters` map): the script they name is judged before it runs. Names longer
    /// than [`crate::abi::DW_INTERP_NAME_MAX`]` - 1` bytes cannot be listed and are skipped.
    pub interpreter_names: Vec<String>,
}

impl Default for ExecSensorConfig {
    fn default() -> Self {
        ExecSensorConfig {
            ring_bytes: 8 * 1024 * 1024,
            host_mnt_ns: None,
            drain_interval: crate::ring::DEFAULT_DRAIN_INTERVAL,
            pin: false,
            interpreter_names: Vec::new(),
        }
    }
}

/// Counters the agent reports. Kernel-side counters are summed over CPUs.
#[derive(Debug, Default)]
pub struct SensorStats {
    /// Events the kernel could not put in the ring buffer (full).
    pub lost: AtomicU64,
    /// Events the kernel sent.
    pub sent: AtomicU64,
    /// Host execs filtered out in the kernel.
    pub host_skipped: AtomicU64,
    /// Records user space received.
    pub received: AtomicU64,
    /// Records that did not decode.
    pub malformed: AtomicU64,
    /// New images the kernel sent SIGKILL (enforcement).
    pub killed: AtomicU64,
    /// New images the kernel sent SIGSTOP to be judged (enforcement).
    pub held: AtomicU64,
    /// New images held while no agent was alive (fail closed).
    pub orphaned: AtomicU64,
    /// How records reached user space (timer drains, forced wakeups and why).
    pub ring: crate::ring::RingStats,
}

/// `enforce_config` found different from what the agent wrote
/// ([`EnforceMaps::restore_config`]): (unknown namespaces' flags, fail-closed delay in ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnforceConfigChange {
    pub want: (u32, u64),
    pub found: Option<(u32, u64)>,
}

/// What the exec program enforces in the kernel, per mount namespace (`dw_enforce_flags`):
/// a handle on its `enforce` and `enforce_config` maps, usable from any thread.
#[derive(Clone)]
pub struct EnforceMaps {
    per_ns: Arc<MapHandle>,
    config: Arc<MapHandle>,
    orphans: Arc<MapHandle>,
    /// What was last written to `enforce_config`: (unknown flags, heartbeat, dead after).
    config_value: Arc<Mutex<(u32, u64, u64)>>,
    /// Pids a previous agent's pinned program held while no agent was alive.
    inherited: Arc<Mutex<Vec<u32>>>,
}

impl std::fmt::Debug for EnforceMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnforceMaps")
    }
}

impl EnforceMaps {
    /// Sets the flags of one mount namespace (0: enforce nothing there, and do not treat it
    /// as unknown).
    pub fn set(&self, mnt_ns: u32, flags: u32) -> Result<(), SensorError> {
        self.per_ns
            .update(&mnt_ns.to_ne_bytes(), &flags.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| bpf_error("updating the enforce map", e))
    }

    /// Forgets a mount namespace (its container is gone).
    pub fn remove(&self, mnt_ns: u32) {
        let _ = self.per_ns.delete(&mnt_ns.to_ne_bytes());
    }

    /// The flags of a namespace, if set.
    pub fn get(&self, mnt_ns: u32) -> Option<u32> {
        self.per_ns
            .lookup(&mnt_ns.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| v.get(..4).and_then(|b| b.try_into().ok()))
            .map(u32::from_ne_bytes)
    }

    /// Sets the flags of namespaces not in the map (not judged yet).
    pub fn set_unknown(&self, flags: u32) -> Result<(), SensorError> {
        self.write_config(|c| c.0 = flags)
    }

    /// Fail closed after `dead_after` without a heartbeat (`None`: never).
    pub fn set_dead_after(&self, dead_after: Option<Duration>) -> Result<(), SensorError> {
        let ns = dead_after.map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64);
        self.write_config(|c| {
            c.1 = boot_ns();
            c.2 = ns;
        })
    }

    /// The agent is alive (see [`EnforceMaps::set_dead_after`]).
    pub fn heartbeat(&self) -> Result<(), SensorError> {
        self.write_config(|c| c.1 = boot_ns())
    }

    fn write_config(&self, change: impl FnOnce(&mut (u32, u64, u64))) -> Result<(), SensorError> {
        let mut c = self.config_value.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut c);
        let mut value = [0u8; 24];
        value[..4].copy_from_slice(&c.0.to_ne_bytes());
        value[8..16].copy_from_slice(&c.1.to_ne_bytes());
        value[16..24].copy_from_slice(&c.2.to_ne_bytes());
        self.config
            .update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
            .map_err(|e| bpf_error("updating the enforce_config map", e))
    }

    /// Compares the kernel's `enforce_config` with what the agent last wrote (the unknown
    /// namespaces' flags and the fail-closed delay; the heartbeat field is rewritten every
    /// beat anyway). On a difference, writes the agent's value back and returns
    /// `(written, found)` as (unknown flags, dead-after ns) pairs; `found` is `None` when the
    /// entry could not be read.
    pub fn restore_config(&self) -> Option<EnforceConfigChange> {
        let c = self.config_value.lock().unwrap_or_else(|p| p.into_inner());
        let want = (c.0, c.2);
        let found = self
            .config
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .filter(|v| v.len() >= 24)
            .map(|v| {
                let mut a = [0u8; 4];
                a.copy_from_slice(&v[..4]);
                let mut b = [0u8; 8];
                b.copy_from_slice(&v[16..24]);
                (u32::from_ne_bytes(a), u64::from_ne_bytes(b))
            });
        if found == Some(want) {
            return None;
        }
        let mut value = [0u8; 24];
        value[..4].copy_from_slice(&c.0.to_ne_bytes());
        value[8..16].copy_from_slice(&c.1.to_ne_bytes());
        value[16..24].copy_from_slice(&c.2.to_ne_bytes());
        let _ = self
            .config
            .update(&0u32.to_ne_bytes(), &value, MapFlags::ANY);
        Some(EnforceConfigChange { want, found })
    }

    /// Takes the pids held while no agent was alive: this program's, and on the first call
    /// those a previous agent's pinned program held.
    pub fn take_orphans(&self) -> Vec<u32> {
        let mut pids: Vec<u32> =
            std::mem::take(&mut *self.inherited.lock().unwrap_or_else(|p| p.into_inner()));
        pids.extend(take_orphans_of(self.orphans.as_ref()));
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

impl SensorStats {
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// A running exec sensor. Dropping it detaches the program and stops the thread.
pub struct ExecSensor {
    _thread: SensorThread,
    stats: Arc<SensorStats>,
    enforce: EnforceMaps,
}

/// The thread a sensor reads its ring buffer on; dropping it stops and joins the thread
/// (the BPF programs are detached when the thread drops its skeleton).
pub(crate) struct SensorThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SensorThread {
    /// Checks the host (BTF, the host's mount namespace), spawns `body` on a thread named
    /// `name` and waits until it reports its programs loaded and attached (or why not).
    /// `body` gets the host's mount-namespace inode, the stop flag and the readiness sender.
    pub(crate) fn spawn<B>(
        name: &str,
        host_mnt_ns: Option<u32>,
        body: B,
    ) -> Result<SensorThread, SensorError>
    where
        B: FnOnce(u32, Arc<AtomicBool>, mpsc::Sender<Result<(), SensorError>>) + Send + 'static,
    {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Err(SensorError::NoBtf);
        }
        let host_ns = match host_mnt_ns {
            Some(ns) => ns,
            None => self::host_mnt_ns()?,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || body(host_ns, stop, ready_tx))
                .map_err(SensorError::Spawn)?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(SensorThread {
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(SensorError::ThreadDied),
        }
    }
}

impl Drop for SensorThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn boot_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Removes and returns every pid of an `orphans` map.
fn take_orphans_of(map: &dyn MapCore) -> Vec<u32> {
    let keys: Vec<Vec<u8>> = map.keys().collect();
    keys.iter()
        .filter_map(|k| {
            let _ = map.delete(k);
            k.get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes)
        })
        .collect()
}

/// A previous agent's pinned program: detached once ours runs; the pids it held while no
/// agent was alive are returned (read after the detach, so none is missed).
fn retire_pinned() -> Vec<u32> {
    let dir = std::path::Path::new(PIN_DIR);
    let link_path = dir.join("exec_link");
    let orphans_path = dir.join("orphans");
    if !link_path.exists() {
        return Vec::new();
    }
    let orphans = MapHandle::from_pinned_path(&orphans_path).ok();
    match libbpf_rs::Link::open(&link_path) {
        Ok(mut link) => {
            if let Err(e) = link.unpin() {
                tracing::warn!("unpinning the previous agent's exec program: {e}");
            }
            let _ = link.detach();
            tracing::info!("detached the exec program a previous agent left pinned");
        }
        Err(e) => {
            tracing::warn!("opening the previous agent's pinned program: {e}");
            let _ = std::fs::remove_file(&link_path);
        }
    }
    let pids = orphans
        .as_ref()
        .map(|m| take_orphans_of(m))
        .unwrap_or_default();
    let _ = std::fs::remove_file(&orphans_path);
    pids
}

/// Reads the inode number of the host's mount namespace: init's (`/proc/1/ns/mnt`), or when
/// init cannot be inspected (some sandboxes), the agent's own, which is the host's unless the
/// agent itself runs in a container without the host's PID namespace.
pub fn host_mnt_ns() -> Result<u32, SensorError> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/1/ns/mnt") {
        Ok(md) => Ok(md.ino() as u32),
        Err(e) => {
            tracing::debug!(
                "/proc/1/ns/mnt: {e}; using the agent's own mount namespace as the host's"
            );
            let path = "/proc/self/ns/mnt";
            let md = std::fs::metadata(path)
                .map_err(|source| SensorError::HostNamespace { path, source })?;
            Ok(md.ino() as u32)
        }
    }
}

/// Nanoseconds to add to `bpf_ktime_get_boot_ns()` to get Unix time.
pub fn boot_to_wall_offset_ns() -> i128 {
    fn now(clock: libc::clockid_t) -> i128 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
    }
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_BOOTTIME)
}

impl ExecSensor {
    /// Loads and attaches the exec program, then calls `on_record` for each exec from the
    /// sensor thread until the sensor is dropped. Returns once the program is attached.
    pub fn start<F>(config: ExecSensorConfig, on_record: F) -> Result<ExecSensor, SensorError>
    where
        F: FnMut(ExecRecord) + Send + 'static,
    {
        let stats = Arc::new(SensorStats::default());
        let thread_stats = stats.clone();
        let host = config.host_mnt_ns;
        let maps = Arc::new(OnceLock::new());
        let thread_maps = maps.clone();
        let thread = SensorThread::spawn("dw-exec-sensor", host, move |host_ns, stop, ready| {
            run(
                config,
                host_ns,
                on_record,
                stop,
                thread_stats,
                ready,
                thread_maps,
            )
        })?;
        let enforce = maps.get().cloned().ok_or(SensorError::ThreadDied)?;
        Ok(ExecSensor {
            _thread: thread,
            stats,
            enforce,
        })
    }

    /// The kernel side of enforcement (what to kill or hold at exec, per mount namespace).
    pub fn enforce_maps(&self) -> &EnforceMaps {
        &self.enforce
    }

    /// The exec program's per-key maps: `enforce` (per mount namespace: an entry per
    /// container placed, removed when it stops) and `orphans` (per pid, only while no agent
    /// is alive; emptied by the next one).
    pub fn counted_maps(&self) -> Vec<CountedMap> {
        vec![
            CountedMap::new("enforce", self.enforce.per_ns.clone()),
            CountedMap::new("orphans", self.enforce.orphans.clone()),
        ]
    }

    pub fn stats(&self) -> &Arc<SensorStats> {
        &self.stats
    }
}

fn load<'obj>(
    object: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
    config: &ExecSensorConfig,
    host_ns: u32,
) -> Result<skel::ExecSkel<'obj>, SensorError> {
    begin_load();
    let mut open = skel::ExecSkelBuilder::default()
        .open(object)
        .map_err(|e| bpf_error("opening the exec BPF object", e))?;
    if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
        ro.host_mnt_ns = host_ns;
    }
    open.maps
        .events
        .set_max_entries(config.ring_bytes)
        .map_err(|e| bpf_error("sizing the exec ring buffer", e))?;
    let mut skel = open
        .load()
        .map_err(|e| bpf_error("loading tp_btf/sched_process_exec", e))?;
    skel.attach()
        .map_err(|e| bpf_error("attaching tp_btf/sched_process_exec", e))?;
    Ok(skel)
}

/// Fills the exec program's `interpreters` map with the names user space judges scripts of.
fn fill_interpreters(map: &impl MapCore, names: &[String]) -> Result<(), SensorError> {
    use crate::abi::DW_INTERP_NAME_MAX;
    for name in names {
        let b = name.as_bytes();
        if b.is_empty() || b.len() >= DW_INTERP_NAME_MAX || b.contains(&0) {
            tracing::warn!(
                "interpreter {name:?}: not held in prevent mode (names of 1 to {} bytes only); its scripts are still judged after exec",
                DW_INTERP_NAME_MAX - 1
            );
            continue;
        }
        let mut key = [0u8; DW_INTERP_NAME_MAX];
        key[..b.len()].copy_from_slice(b);
        map.update(&key, &[1u8], MapFlags::ANY)
            .map_err(|e| bpf_error("filling the interpreters map", e))?;
    }
    Ok(())
}

fn run<F>(
    config: ExecSensorConfig,
    host_ns: u32,
    on_record: F,
    stop: Arc<AtomicBool>,
    stats: Arc<SensorStats>,
    ready: mpsc::Sender<Result<(), SensorError>>,
    maps: Arc<OnceLock<EnforceMaps>>,
) where
    F: FnMut(ExecRecord) + Send + 'static,
{
    let mut object = MaybeUninit::uninit();
    let mut skel = match load(&mut object, &config, host_ns) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let handles = MapHandle::try_from(&skel.maps.enforce).and_then(|per_ns| {
        Ok((
            per_ns,
            MapHandle::try_from(&skel.maps.enforce_config)?,
            MapHandle::try_from(&skel.maps.orphans)?,
        ))
    });
    let (per_ns, config_map, mut orphans) = match handles {
        Ok(h) => h,
        Err(e) => {
            let _ = ready.send(Err(bpf_error("opening the enforce maps", e)));
            return;
        }
    };
    if let Err(e) = fill_interpreters(&skel.maps.interpreters, &config.interpreter_names) {
        let _ = ready.send(Err(e));
        return;
    }
    // Ours runs: retire a previous agent's pinned program, then pin ours if failing closed.
    let inherited = retire_pinned();
    let mut pinned_link = None;
    if config.pin {
        let dir = std::path::Path::new(PIN_DIR);
        let pinned = crate::host::ensure_bpffs(std::path::Path::new(crate::host::BPFFS))
            .map(|found| {
                if found == crate::host::Bpffs::Mounted {
                    tracing::info!(
                        "mounted a BPF filesystem at {} (none was)",
                        crate::host::BPFFS
                    );
                    let ns = |p: &str| std::fs::read_link(p).ok();
                    if ns("/proc/self/ns/mnt") != ns("/proc/1/ns/mnt") {
                        tracing::warn!(
                            "the BPF filesystem was mounted in the agent's own mount namespace (a container?): the pinned exec program does not outlive it, so on_agent_death: hold fails open when this namespace goes; mount bpffs on the host (`mount -t bpf bpf /sys/fs/bpf`)"
                        );
                    }
                }
            })
            .and_then(|()| {
                std::fs::create_dir_all(dir).map_err(|e| format!("creating {PIN_DIR}: {e}"))
            })
            .and_then(|()| {
                orphans
                    .pin(dir.join("orphans"))
                    .map_err(|e| format!("pinning the orphans map: {e}"))
            })
            .and_then(|()| match skel.links.dw_sched_process_exec.take() {
                Some(mut link) => match link.pin(dir.join("exec_link")) {
                    Ok(()) => {
                        pinned_link = Some(link);
                        Ok(())
                    }
                    Err(e) => {
                        skel.links.dw_sched_process_exec = Some(link);
                        Err(format!("pinning the exec program's link: {e}"))
                    }
                },
                None => Err("the exec program has no link to pin".into()),
            });
        if let Err(e) = pinned {
            let _ = ready.send(Err(SensorError::Pin(e)));
            return;
        }
    }
    let _ = maps.set(EnforceMaps {
        per_ns: Arc::new(per_ns),
        config: Arc::new(config_map),
        orphans: Arc::new(orphans),
        config_value: Arc::new(Mutex::new((0, 0, 0))),
        inherited: Arc::new(Mutex::new(inherited)),
    });
    let counters = crate::ring::Counters {
        received: Some(&stats.received),
        malformed: &stats.malformed,
    };
    let ring = match crate::ring::open(
        &skel.maps.events,
        "opening the exec ring buffer",
        "exec",
        ExecRecord::decode,
        on_record,
        counters,
    ) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let reader = crate::ring::Reader::new(
        ring,
        skel.maps
            .bss_data
            .as_deref_mut()
            .map(|b| &mut b.dw_ring_reader),
        config.drain_interval,
        "exec",
        &stats.ring,
    );
    let _ = ready.send(Ok(()));
    let mut last_stats = Instant::now() - Duration::from_secs(1);
    reader.run(&stop, || {
        if last_stats.elapsed() >= Duration::from_millis(250) {
            read_kernel_stats(&skel.maps.stats, &skel.maps.dw_ring_stats, &stats);
            last_stats = Instant::now();
        }
    });
    drop(reader);
    read_kernel_stats(&skel.maps.stats, &skel.maps.dw_ring_stats, &stats);
    // A clean stop: the program goes with the agent (failing closed is for deaths).
    if let Some(mut link) = pinned_link {
        let _ = link.unpin();
        let _ = std::fs::remove_file(std::path::Path::new(PIN_DIR).join("orphans"));
    }
}

fn read_kernel_stats(map: &dyn MapCore, ring_map: &dyn MapCore, stats: &SensorStats) {
    crate::ring::read_kernel_stats(ring_map, &stats.ring);
    let slots = [
        (DW_STAT_LOST, &stats.lost),
        (DW_STAT_SENT, &stats.sent),
        (DW_STAT_HOST_SKIPPED, &stats.host_skipped),
        (DW_STAT_KILLED, &stats.killed),
        (DW_STAT_HELD, &stats.held),
        (DW_STAT_ORPHANED, &stats.orphaned),
    ];
    debug_assert!(slots.iter().all(|(k, _)| *k < DW_STAT_COUNT));
    crate::maps::read_percpu_counters(map, &slots);
}
