//! What tamper protection's `tp_btf/signal_generate` program costs unrelated work: a
//! process signals itself (SIGUSR1, caught) N times and prints ns per signal. Run it with
//! the agent off, then on, and compare (`scripts`-free: see docs/tamper-protection.md).
//!
//! Usage: dw-signal-bench [SIGNALS] [ROUNDS]  (default 1000000 signals, best of 5 rounds)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

static CAUGHT: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_usr1(_: libc::c_int) {
    CAUGHT.fetch_add(1, Ordering::Relaxed);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    // SAFETY: installing a handler that only touches an atomic.
    unsafe {
        libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t);
    }
    let pid = std::process::id() as i32;
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..n {
            // SAFETY: kill(2) to ourselves with a caught signal.
            unsafe { libc::kill(pid, libc::SIGUSR1) };
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        best = best.min(ns);
    }
    println!(
        "{{\"signals\":{n},\"rounds\":{rounds},\"best_ns_per_signal\":{best:.1},\"caught\":{}}}",
        CAUGHT.load(Ordering::Relaxed)
    );
}
