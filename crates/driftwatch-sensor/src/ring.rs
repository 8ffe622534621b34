//! The ring-buffer plumbing the exec, network and signal sensors share: decode each record,
//! count the ones that do not decode, and the reader's half of the wakeup protocol of
//! `bpf/include/dw_ring.h` (drain on a timer while records flow, sleep in epoll when idle).
//!
//! Why a timer: a record that wakes the reader costs the process that wrote it an irq_work
//! (a self-IPI, a VM exit in a virtual machine), about 18 us per exec. While records flow,
//! the reader drains every `drain_interval` and the programs write with `BPF_RB_NO_WAKEUP`;
//! after [`IDLE_BEFORE_SLEEP`] without a record it tells them (the `.bss` flag
//! `dw_ring_reader`) and blocks in epoll, and the first record wakes it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use libbpf_rs::{AsRawLibbpf, MapCore, RingBuffer, RingBufferBuilder};

use crate::load::{SensorError, bpf_error};

// keep in sync: bpf/include/dw_ring.h (enum dw_ring_reader_state, enum dw_ring_stat,
// DW_RING_NUDGE_TYPE).
const DW_RING_PER_RECORD: u32 = 0;
const DW_RING_DRAINING: u32 = 1;
const DW_RING_ASLEEP: u32 = 2;
const DW_RING_FORCED_URGENT: u32 = 0;
const DW_RING_FORCED_LOSS: u32 = 1;
const DW_RING_FORCED_ASLEEP: u32 = 2;
const DW_RING_FORCED_FILL: u32 = 3;
const DW_RING_NUDGED: u32 = 4;
const DW_RING_NUDGE_TYPE: u32 = 0x6e75_6467;
const DW_RING_NUDGE_LEN: usize = 8;

/// The default `sensor.drain_interval`: a record waits at most this long for the reader
/// while records flow (the exec-to-alert latency goal is p99 <= 2 ms).
pub const DEFAULT_DRAIN_INTERVAL: Duration = Duration::from_millis(1);

/// How long the reader keeps draining on its timer without a record before it sleeps in
/// epoll. Shorter: a slow exec loop pays a forced wakeup per exec again; longer: an idle
/// agent ticks longer after each burst.
pub const IDLE_BEFORE_SLEEP: Duration = Duration::from_millis(4);

/// The reader's longest sleep in epoll: how late it sees its stop flag and runs its
/// periodic work (kernel counters) when no record comes. Records are never delayed by it
/// (the first record after idle forces the wakeup; see `dw_ring.h` for the race).
pub const SLEEP_TIMEOUT: Duration = Duration::from_millis(100);

/// How a ring buffer's records reached user space, and why the kernel woke the reader.
/// The `forced_*` and `nudged` counters are the kernel's (summed over CPUs, read with the
/// sensor's other kernel counters); the others are the reader's.
#[derive(Debug, Default)]
pub struct RingStats {
    /// Records written with a forced wakeup because something waits for them (a held or
    /// killed process, a signal to the agent).
    pub forced_urgent: AtomicU64,
    /// Records that forced a wakeup because an earlier record was lost.
    pub forced_loss: AtomicU64,
    /// Records that woke a reader sleeping in epoll (the first record after idle).
    pub forced_asleep: AtomicU64,
    /// Records that forced a wakeup because the ring was more than 1/8 full.
    pub forced_fill: AtomicU64,
    /// Nudge records: the reader fell asleep while a record was being written.
    pub nudged: AtomicU64,
    /// Records drained while the reader drained on its timer (a forced wakeup may have
    /// ended a wait early).
    pub drained_on_timer: AtomicU64,
    /// Records drained when epoll woke the reader.
    pub drained_on_wakeup: AtomicU64,
    /// Times the reader went to sleep in epoll.
    pub sleeps: AtomicU64,
}

impl RingStats {
    /// Every forced wakeup, whatever its reason.
    pub fn forced(&self) -> u64 {
        [
            &self.forced_urgent,
            &self.forced_loss,
            &self.forced_asleep,
            &self.forced_fill,
            &self.nudged,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// A ring buffer on `map`: every record is decoded with `decode` and handed to `on_record`;
/// one that does not decode is counted in `malformed` (and logged at debug, naming `kind`).
/// `received` counts every record when given. Nudge records (`dw_ring.h`) are skipped.
pub(crate) fn open<'m, R: 'm, E: std::fmt::Display + 'm>(
    map: &'m dyn MapCore,
    step: &'static str,
    kind: &'static str,
    decode: fn(&[u8]) -> Result<R, E>,
    mut on_record: impl FnMut(R) + 'm,
    counters: Counters<'m>,
) -> Result<RingBuffer<'m>, SensorError> {
    let callback = move |data: &[u8]| {
        if is_nudge(data) {
            return 0;
        }
        if let Some(r) = counters.received {
            r.fetch_add(1, Ordering::Relaxed);
        }
        match decode(data) {
            Ok(r) => on_record(r),
            Err(e) => {
                counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("malformed {kind} record: {e}");
            }
        }
        0
    };
    let mut builder = RingBufferBuilder::new();
    builder.add(map, callback).map_err(|e| bpf_error(step, e))?;
    builder.build().map_err(|e| bpf_error(step, e))
}

fn is_nudge(data: &[u8]) -> bool {
    data.len() == DW_RING_NUDGE_LEN
        && data
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            == Some(DW_RING_NUDGE_TYPE)
}

/// Where [`open`] counts records.
#[derive(Clone, Copy)]
pub(crate) struct Counters<'a> {
    pub received: Option<&'a AtomicU64>,
    pub malformed: &'a AtomicU64,
}

/// The `dw_ring_reader` flag of a program's `.bss`, as the skeleton maps it.
/// `None` (no mmapped `.bss`) leaves the programs at the kernel's default wakeups.
fn reader_flag(bss_field: Option<&mut u32>) -> Option<&AtomicU32> {
    // SAFETY: the pointer comes from a `&mut u32` (valid, aligned: u32 and AtomicU32 have the
    // same size and alignment) whose exclusive borrow the returned reference keeps for its
    // lifetime, so no non-atomic Rust access can happen meanwhile. The BPF program reads and
    // writes the same word from the kernel: shared memory, like any mmapped map.
    bss_field.map(|f| unsafe { AtomicU32::from_ptr(f as *mut u32) })
}

/// A sensor's reader: its ring buffer, the `dw_ring_reader` flag of its program, and how
/// often it drains while records flow (zero: a wakeup per record, the kernel's default).
pub(crate) struct Reader<'a> {
    ring: RingBuffer<'a>,
    flag: Option<&'a AtomicU32>,
    drain_interval: Duration,
    kind: &'static str,
    stats: &'a RingStats,
}

impl<'a> Reader<'a> {
    /// The reader of `ring`, whose program's `.bss` field `dw_ring_reader` is `flag` (as
    /// the skeleton maps it; `None`: the kernel's default wakeups).
    pub(crate) fn new(
        ring: RingBuffer<'a>,
        flag: Option<&'a mut u32>,
        drain_interval: Duration,
        kind: &'static str,
        stats: &'a RingStats,
    ) -> Reader<'a> {
        Reader {
            ring,
            flag: reader_flag(flag),
            drain_interval,
            kind,
            stats,
        }
    }

    /// Reads records until `stop`, calling `periodic` after every drain or wakeup (at least
    /// every [`SLEEP_TIMEOUT`]), then drains what is left.
    pub(crate) fn run(&self, stop: &std::sync::atomic::AtomicBool, mut periodic: impl FnMut()) {
        match self.flag {
            Some(flag) if !self.drain_interval.is_zero() => {
                self.run_timed(flag, stop, &mut periodic)
            }
            _ => {
                if let Some(flag) = self.flag {
                    flag.store(DW_RING_PER_RECORD, Ordering::SeqCst);
                }
                while !stop.load(Ordering::Relaxed) {
                    let n = self.poll(SLEEP_TIMEOUT);
                    add(&self.stats.drained_on_wakeup, n);
                    periodic();
                }
            }
        }
        add(&self.stats.drained_on_timer, self.consume());
    }

    fn run_timed(
        &self,
        flag: &AtomicU32,
        stop: &std::sync::atomic::AtomicBool,
        periodic: &mut impl FnMut(),
    ) {
        flag.store(DW_RING_DRAINING, Ordering::SeqCst);
        let mut last_record = Instant::now();
        let mut asleep = false;
        while !stop.load(Ordering::Relaxed) {
            if asleep {
                let n = self.poll(SLEEP_TIMEOUT);
                if n != 0 || flag.load(Ordering::SeqCst) != DW_RING_ASLEEP {
                    // Woken by a record (the program cleared the flag), or interrupted.
                    add(&self.stats.drained_on_wakeup, n);
                    flag.store(DW_RING_DRAINING, Ordering::SeqCst);
                    asleep = false;
                    last_record = Instant::now();
                }
                periodic();
                continue;
            }
            let n = self.consume();
            if n > 0 {
                add(&self.stats.drained_on_timer, n);
                last_record = Instant::now();
            }
            periodic();
            if last_record.elapsed() < IDLE_BEFORE_SLEEP {
                self.wait(self.drain_interval);
                continue;
            }
            // Going to sleep: say so, then drain once more and look for a record reserved
            // but not committed yet. A program that read the flag before our store either
            // committed before our drain (drained here) or reads it again after its commit
            // and nudges us (dw_ring.h).
            flag.store(DW_RING_ASLEEP, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let n = self.consume();
            if n > 0 || self.in_flight() {
                add(&self.stats.drained_on_timer, n);
                flag.store(DW_RING_DRAINING, Ordering::SeqCst);
                last_record = Instant::now();
                self.wait(self.drain_interval);
                continue;
            }
            self.stats.sleeps.fetch_add(1, Ordering::Relaxed);
            asleep = true;
        }
    }

    /// Waits `timeout` (finer than epoll_wait's milliseconds), or less if a record forces a
    /// wakeup meanwhile: a held process is judged at once even while the reader drains on
    /// its timer. Records written without a wakeup do not end the wait.
    fn wait(&self, timeout: Duration) {
        let mut fd = libc::pollfd {
            fd: self.ring.epoll_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: one pollfd and one timespec we own, no signal mask; an epoll fd is
        // readable when one of its rings has data the kernel woke it for.
        let r = unsafe { libc::ppoll(&mut fd, 1, &ts, std::ptr::null()) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                tracing::warn!("waiting on the {} ring buffer: {e}", self.kind);
                std::thread::sleep(timeout);
            }
        }
    }

    /// Records consumed (nudges included), 0 on an error (logged).
    fn consume(&self) -> u64 {
        let n = self.ring.consume_raw();
        if n < 0 {
            tracing::warn!(
                "draining the {} ring buffer: {}",
                self.kind,
                std::io::Error::from_raw_os_error(-n)
            );
        }
        u64::try_from(n).unwrap_or(0)
    }

    /// One wait of up to `timeout`, then a drain; an interrupted wait is not an error,
    /// others are logged. Returns the records consumed.
    fn poll(&self, timeout: Duration) -> u64 {
        let n = self.ring.poll_raw(timeout);
        if n < 0 && -n != libc::EINTR {
            tracing::warn!(
                "polling the {} ring buffer: {}",
                self.kind,
                std::io::Error::from_raw_os_error(-n)
            );
        }
        u64::try_from(n).unwrap_or(0)
    }

    /// Whether the ring holds bytes past what the reader consumed: after a drain, a record
    /// reserved by a program and not committed yet.
    fn in_flight(&self) -> bool {
        let rb = self.ring.as_libbpf_object().as_ptr();
        // SAFETY: `rb` is the live ring_buffer this reader owns, with exactly one ring
        // (index 0, added by `open`); ring__avail_data_size only reads its positions.
        unsafe {
            let ring = libbpf_rs::libbpf_sys::ring_buffer__ring(rb, 0);
            !ring.is_null() && libbpf_rs::libbpf_sys::ring__avail_data_size(ring) > 0
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Reads the program's `dw_ring_stats` (per CPU, summed) into `stats`.
pub(crate) fn read_kernel_stats(map: &dyn MapCore, stats: &RingStats) {
    crate::maps::read_percpu_counters(
        map,
        &[
            (DW_RING_FORCED_URGENT, &stats.forced_urgent),
            (DW_RING_FORCED_LOSS, &stats.forced_loss),
            (DW_RING_FORCED_ASLEEP, &stats.forced_asleep),
            (DW_RING_FORCED_FILL, &stats.forced_fill),
            (DW_RING_NUDGED, &stats.nudged),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nudge_is_eight_bytes_of_its_type_and_nothing_else_is() {
        let mut nudge = [0u8; 8];
        nudge[..4].copy_from_slice(&DW_RING_NUDGE_TYPE.to_ne_bytes());
        assert!(is_nudge(&nudge));
        assert!(!is_nudge(&nudge[..4]));
        let mut longer = nudge.to_vec();
        longer.extend_from_slice(&[0; 8]);
        assert!(!is_nudge(&longer));
        assert!(!is_nudge(&[1, 0, 0, 0, 0, 0, 0, 0]));
    }
}
