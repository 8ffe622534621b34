//! The tamper sensor: every signal generated for the agent's own process, with its sender
//! (`tamper.bpf.c`, `tp_btf/signal_generate`), decoded into [`SignalRecord`]s on a thread.
//! Whether a sender is a container's is decided above (namespaces, cgroup).

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use libbpf_rs::MapCore;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

use crate::abi::{DW_EVENT_SIGNAL, RawSignalEvent, SIGNAL_EVENT_SIZE};
use crate::load::{SensorError, begin_load, bpf_error};
use crate::sensor::SensorThread;

bpf_skeleton!("tamper.skel.rs");

/// One signal generated for the agent, and who sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalRecord {
    pub boot_ns: u64,
    pub sig: u32,
    /// The kernel's `enum trace_signal_ret`: 0 delivered, 1 ignored, 2 already pending, ...
    pub result: i32,
    pub target_tid: u32,
    pub cgroup_id: u64,
    /// The sender (host view).
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub mnt_ns: u32,
    pub pid_ns: u32,
    /// The sender's pid in its own pid namespace.
    pub ns_pid: u32,
    pub comm: String,
    pub cgroup: String,
    pub cgroup_parent: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignalDecodeError {
    #[error("signal record of {0} bytes, expected {SIGNAL_EVENT_SIZE}")]
    Size(usize),
    #[error("unknown record type {0}")]
    UnknownType(u32),
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl SignalRecord {
    /// Decodes one `struct dw_signal_event` from the ring buffer.
    pub fn decode(data: &[u8]) -> Result<SignalRecord, SignalDecodeError> {
        if data.len() != SIGNAL_EVENT_SIZE {
            return Err(SignalDecodeError::Size(data.len()));
        }
        // SAFETY: the length was checked; RawSignalEvent is plain old data (any bit pattern
        // is valid) and read_unaligned copes with the ring buffer's alignment.
        let raw: RawSignalEvent = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
        if raw.r#type != DW_EVENT_SIGNAL {
            return Err(SignalDecodeError::UnknownType(raw.r#type));
        }
        Ok(SignalRecord {
            boot_ns: raw.boot_ns,
            sig: raw.sig,
            result: raw.result,
            target_tid: raw.target_tid,
            cgroup_id: raw.cgroup_id,
            pid: raw.pid,
            tid: raw.tid,
            uid: raw.uid,
            mnt_ns: raw.mnt_ns,
            pid_ns: raw.pid_ns,
            ns_pid: raw.ns_pid,
            comm: cstr(&raw.comm),
            cgroup: cstr(&raw.cgroup),
            cgroup_parent: cstr(&raw.cgroup_parent),
        })
    }
}

/// Counters of the signal sensor.
#[derive(Debug, Default)]
pub struct SignalSensorStats {
    /// Records the kernel sent / could not send (ring buffer full).
    pub sent: AtomicU64,
    pub lost: AtomicU64,
    pub malformed: AtomicU64,
    /// How records reached user space (every signal forces its wakeup).
    pub ring: crate::ring::RingStats,
}

/// The running signal sensor; dropping it drains its ring buffer and detaches.
pub struct SignalSensor {
    _thread: SensorThread,
    stats: Arc<SignalSensorStats>,
}

impl SignalSensor {
    /// Loads and attaches `tp_btf/signal_generate` for signals to `agent_tgid` and calls
    /// `on_record` for each on the sensor's thread.
    pub fn start<F>(agent_tgid: u32, on_record: F) -> Result<SignalSensor, SensorError>
    where
        F: FnMut(SignalRecord) + Send + 'static,
    {
        let stats = Arc::new(SignalSensorStats::default());
        let thread_stats = stats.clone();
        let thread = SensorThread::spawn("dw-tamper", None, move |_host, stop, ready| {
            run(agent_tgid, on_record, stop, thread_stats, ready)
        })?;
        Ok(SignalSensor {
            _thread: thread,
            stats,
        })
    }

    pub fn stats(&self) -> &Arc<SignalSensorStats> {
        &self.stats
    }
}

fn load(
    object: &mut MaybeUninit<libbpf_rs::OpenObject>,
    agent_tgid: u32,
) -> Result<skel::TamperSkel<'_>, SensorError> {
    begin_load();
    let mut open = skel::TamperSkelBuilder::default()
        .open(object)
        .map_err(|e| bpf_error("opening the tamper BPF object", e))?;
    if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
        ro.agent_tgid = agent_tgid;
    }
    let mut skel = open
        .load()
        .map_err(|e| bpf_error("loading tp_btf/signal_generate", e))?;
    skel.attach()
        .map_err(|e| bpf_error("attaching tp_btf/signal_generate", e))?;
    Ok(skel)
}

fn run<F>(
    agent_tgid: u32,
    on_record: F,
    stop: Arc<AtomicBool>,
    stats: Arc<SignalSensorStats>,
    ready: mpsc::Sender<Result<(), SensorError>>,
) where
    F: FnMut(SignalRecord) + Send + 'static,
{
    let mut object = MaybeUninit::uninit();
    let skel = load(&mut object, agent_tgid);
    let mut skel = match skel {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let counters = crate::ring::Counters {
        received: None,
        malformed: &stats.malformed,
    };
    let ring = match crate::ring::open(
        &skel.maps.signal_events,
        "opening the signal ring buffer",
        "signal",
        SignalRecord::decode,
        on_record,
        counters,
    ) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // Every signal record forces its wakeup (dw_ring.h: urgent), so the reader never drains
    // on a timer: it sleeps in epoll between signals.
    let reader = crate::ring::Reader::new(
        ring,
        skel.maps
            .bss_data
            .as_deref_mut()
            .map(|b| &mut b.dw_ring_reader),
        Duration::ZERO,
        "signal",
        &stats.ring,
    );
    let _ = ready.send(Ok(()));
    reader.run(&stop, || {
        read_kernel_stats(&skel.maps.signal_stats, &skel.maps.dw_ring_stats, &stats);
    });
    drop(reader);
    read_kernel_stats(&skel.maps.signal_stats, &skel.maps.dw_ring_stats, &stats);
}

fn read_kernel_stats(map: &dyn MapCore, ring_map: &dyn MapCore, stats: &SignalSensorStats) {
    crate::ring::read_kernel_stats(ring_map, &stats.ring);
    crate::maps::read_percpu_counters(map, &[(0, &stats.sent), (1, &stats.lost)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_foreign_records_are_rejected() {
        assert_eq!(
            SignalRecord::decode(&[0u8; 8]),
            Err(SignalDecodeError::Size(8))
        );
        let raw = vec![0u8; SIGNAL_EVENT_SIZE];
        assert_eq!(
            SignalRecord::decode(&raw),
            Err(SignalDecodeError::UnknownType(0))
        );
        let mut raw = raw;
        raw[..4].copy_from_slice(&DW_EVENT_SIGNAL.to_ne_bytes());
        raw[4..8].copy_from_slice(&15u32.to_ne_bytes());
        let r = SignalRecord::decode(&raw).expect("a signal record");
        assert_eq!((r.sig, r.comm.as_str()), (15, ""));
    }
}
