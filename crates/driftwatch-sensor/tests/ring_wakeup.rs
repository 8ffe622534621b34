//! The ring buffer's wakeup protocol (`bpf/include/dw_ring.h`, `src/ring.rs`) with the real
//! exec program: an exec after idle wakes the sleeping reader, a burst wakes it through the
//! fill mark before the ring overflows. Needs root and BTF. The host filter is off (a mount
//! namespace that is not the host's is named), so the sensor sees this test's own execs.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use driftwatch_sensor::{ExecSensor, ExecSensorConfig, SensorStats};

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn spawn_true() -> u32 {
    let mut child = std::process::Command::new("/bin/true")
        .env_clear()
        .spawn()
        .expect("running /bin/true");
    let pid = child.id();
    child.wait().expect("waiting for /bin/true");
    pid
}

fn forced_asleep(s: &SensorStats) -> u64 {
    s.ring.forced_asleep.load(Ordering::Relaxed) + s.ring.nudged.load(Ordering::Relaxed)
}

#[test]
fn an_exec_after_idle_wakes_the_sleeping_reader() {
    driftwatch_testkit::require!(Bpf);
    let (tx, rx) = mpsc::channel();
    let sensor = ExecSensor::start(
        ExecSensorConfig {
            host_mnt_ns: Some(1),
            ..ExecSensorConfig::default()
        },
        move |r| {
            let _ = tx.send(r.pid);
        },
    )
    .expect("starting the exec sensor");
    let stats = sensor.stats().clone();
    // Other processes of the host exec too: whenever the reader has slept once and no
    // record came for a while, it is asleep again.
    assert!(
        eventually(Duration::from_secs(10), || stats
            .ring
            .sleeps
            .load(Ordering::Relaxed)
            > 0),
        "the reader never went to sleep in epoll: {:?}",
        stats.ring
    );
    std::thread::sleep(Duration::from_millis(300));
    let before = forced_asleep(&stats);
    while rx.try_recv().is_ok() {}
    let pid = spawn_true();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(p) if p == pid => {
                seen = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(seen, "the exec of pid {pid} was not reported within 5 s");
    // The kernel's counters are read every 250 ms.
    assert!(
        eventually(Duration::from_secs(2), || forced_asleep(&stats) > before),
        "no record woke the sleeping reader (forced_asleep + nudged stayed {before}): {:?}",
        stats.ring
    );
    assert_eq!(stats.lost(), 0);
}

/// A drain interval far longer than the burst: only the fill mark can wake the reader in
/// time. Without it, 300 records in a 64 KiB ring would overflow it.
#[test]
fn a_burst_past_the_fill_mark_wakes_the_reader_and_loses_nothing() {
    driftwatch_testkit::require!(Bpf);
    let (tx, rx) = mpsc::channel();
    let sensor = ExecSensor::start(
        ExecSensorConfig {
            host_mnt_ns: Some(1),
            ring_bytes: 64 * 1024,
            drain_interval: Duration::from_secs(2),
            ..ExecSensorConfig::default()
        },
        move |r| {
            let _ = tx.send(r.pid);
        },
    )
    .expect("starting the exec sensor");
    let stats = sensor.stats().clone();
    let pids: Vec<u32> = (0..300).map(|_| spawn_true()).collect();
    let mut missing: std::collections::HashSet<u32> = pids.iter().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !missing.is_empty() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match rx.recv_timeout(left) {
            Ok(p) => {
                missing.remove(&p);
            }
            Err(_) => break,
        }
    }
    drop(sensor);
    assert!(
        missing.is_empty(),
        "{} of 300 execs not reported (lost: {}): {:?}",
        missing.len(),
        stats.lost(),
        stats.ring
    );
    assert_eq!(stats.lost(), 0, "{:?}", stats.ring);
    assert!(
        stats.ring.forced_fill.load(Ordering::Relaxed) > 0,
        "no record passed the fill mark: {:?}",
        stats.ring
    );
}
