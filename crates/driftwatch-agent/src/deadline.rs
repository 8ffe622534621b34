//! Permission answers with a deadline. A process asking fanotify for permission (an exec in a
//! prevent-mode container, an open of a protected path) waits until the agent answers; if
//! the thread that judges is stuck (a blocking read, a slow engine call, a lock), every such
//! process on the node waits with it, and container lifecycles freeze while the node looks
//! healthy. So the fanotify fd is served by a thread that does nothing else: it reads
//! requests, hands them to a decider thread over a bounded queue, and answers each one when
//! the decision comes or, at the deadline, with the policy's default. Whoever answers first
//! claims the request (an atomic flag), so every request is answered exactly once.
//!
//! A third thread reports timeouts (an alert at most every [`TIMEOUT_ALERT_INTERVAL`]): it,
//! not the answering thread, takes the emitter's lock, which may be what is stuck.
//!
//! Test hook: `DRIFTWATCH_TEST_DECIDER_STALL_MS=N` in the agent's environment makes the
//! decider sleep N ms before every decision, to show that answers keep their deadline while
//! the decision path is stalled. Unset (the default) it does nothing; when set the agent
//! logs a warning at start. It slows decisions, never skips one, so it cannot weaken a
//! verdict beyond what a slow host would.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftwatch_sensor::{ExecGuard, ExecRequest};

use crate::emitter::SharedEmitter;
use crate::histogram::Histogram;

/// The environment variable of the test hook (see the module doc).
pub const STALL_ENV: &str = "DRIFTWATCH_TEST_DECIDER_STALL_MS";

/// The default deadline of a permission answer.
pub const DEFAULT_ANSWER_DEADLINE: Duration = Duration::from_secs(1);

/// Requests waiting for the decider at most; beyond, they are answered with the default at
/// once (each holds an open file descriptor).
const DECIDER_QUEUE: usize = 1024;

/// At most one "answered past the deadline" alert per this interval per guard.
pub const TIMEOUT_ALERT_INTERVAL: Duration = Duration::from_secs(10);

/// Counters of one permission-answering thread (`--stats-json`, `/metrics`).
#[derive(Debug, Default)]
pub struct DeadlineStats {
    /// Requests answered (by decision or by default).
    pub answered: AtomicU64,
    /// Answered with the default because no decision came before the deadline.
    pub timeouts: AtomicU64,
    /// Answered with the default at once because the decider's queue was full (counted in
    /// `timeouts` too).
    pub overflows: AtomicU64,
    /// Decisions that came after the request had been answered by default (discarded).
    pub late_decisions: AtomicU64,
    /// Timeouts answered allow, and deny.
    pub timeouts_allowed: AtomicU64,
    pub timeouts_denied: AtomicU64,
    /// "Answered past the deadline" alerts raised.
    pub timeout_alerts: AtomicU64,
    /// Time from reading a request to answering it, every answer.
    pub answer: Histogram,
    /// The same in microseconds (the first million), for exact quantiles.
    pub answer_us: Mutex<Vec<u32>>,
}

impl DeadlineStats {
    /// The `q`-quantile of the answer time in microseconds.
    pub fn answer_quantile_us(&self, q: f64) -> Option<u32> {
        crate::histogram::sample_quantile_us(&self.answer_us, q)
    }

    /// The largest answer time seen, in microseconds.
    pub fn answer_max_us(&self) -> Option<u32> {
        self.answer_us.lock().ok()?.iter().copied().max()
    }
}

/// What a guard's owner supplies: the fd, the default, the judgement and what follows it.
pub trait Decide: Send + Sync + 'static {
    /// What the decider hands over after answering (an alert's event, ...).
    type FollowUp: Send;
    /// The fanotify group.
    fn guard(&self) -> &ExecGuard;
    /// The answer when no decision comes in time. Runs on the answering thread: must not
    /// block (no lock that a stuck decider may hold, no I/O beyond `/proc` lookups).
    fn fallback(&self, req: &ExecRequest) -> bool;
    /// Judges a request: allow, and what to do after the answer.
    fn decide(&self, req: &ExecRequest) -> (bool, Option<Self::FollowUp>);
    /// Runs after a decision was the answer (`in_time`) or came too late (discarded).
    fn follow_up(&self, req: &ExecRequest, f: Self::FollowUp, in_time: bool);
    /// Alerts that `count` requests were answered by default since the last report.
    fn report_timeouts(&self, count: u64, allowed: u64, denied: u64, deadline: Duration);
    /// Upkeep that must not delay answers (re-adding ignore marks, ...), every 2 s on the
    /// reporting thread.
    fn housekeeping(&self) {}
}

/// The alert for requests answered by default: which guard, how many, allowed and denied.
pub(crate) fn emit_timeout_alert(
    emitter: &SharedEmitter,
    guard: &str,
    count: u64,
    allowed: u64,
    denied: u64,
    deadline: Duration,
) {
    let hostname = crate::emitter::hostname(emitter);
    let ms = deadline.as_millis() as u64;
    let mut fields = std::collections::BTreeMap::new();
    fields.insert("driftwatch.guard".into(), serde_json::json!(guard));
    fields.insert("driftwatch.timeouts".into(), serde_json::json!(count));
    fields.insert("driftwatch.allowed".into(), serde_json::json!(allowed));
    fields.insert("driftwatch.denied".into(), serde_json::json!(denied));
    fields.insert("driftwatch.deadline_ms".into(), serde_json::json!(ms));
    let output = format!(
        "Driftwatch answered {count} {guard} permission requests by default at the {ms} ms deadline ({allowed} allowed, {denied} denied): its deciding thread is stuck or slow"
    );
    tracing::error!("{output}");
    let alert = driftwatch_model::Alert::tamper(
        &hostname,
        "Driftwatch permission answer deadline missed",
        output,
        fields,
    );
    crate::emitter::emit_alert(emitter, &alert);
}

/// One request waiting for its answer.
struct Pending {
    req: ExecRequest,
    read_at: Instant,
    fallback: bool,
    answered: AtomicBool,
}

impl Pending {
    /// True for exactly one caller: the one that answers.
    fn claim(&self) -> bool {
        !self.answered.swap(true, Ordering::AcqRel)
    }
}

fn answer(guard: &ExecGuard, stats: &DeadlineStats, p: &Pending, allow: bool) {
    let us = p.read_at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
    stats.answered.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = guard.respond(&p.req, allow) {
        tracing::warn!("answering the permission request of pid {}: {e}", p.req.pid);
    }
    stats.answer.observe_us(u64::from(us));
    crate::histogram::record_sample_us(&stats.answer_us, us);
}

fn timed_out(guard: &ExecGuard, stats: &DeadlineStats, p: &Pending) {
    if p.claim() {
        stats.timeouts.fetch_add(1, Ordering::Relaxed);
        if p.fallback {
            stats.timeouts_allowed.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.timeouts_denied.fetch_add(1, Ordering::Relaxed);
        }
        answer(guard, stats, p, p.fallback);
    }
}

/// The test hook's stall, read once (see the module doc).
fn stall_from_env(name: &str) -> Duration {
    let Some(v) = std::env::var_os(STALL_ENV) else {
        return Duration::ZERO;
    };
    match v.to_str().and_then(|s| s.trim().parse::<u64>().ok()) {
        Some(ms) => {
            tracing::warn!(
                "{STALL_ENV}={ms}: test hook active, every {name} decision waits {ms} ms first"
            );
            Duration::from_millis(ms)
        }
        None => {
            tracing::warn!("{STALL_ENV}={v:?} is not a number of milliseconds: ignored");
            Duration::ZERO
        }
    }
}

/// Serves the guard's fanotify fd on the calling thread until `stop`: every request is
/// answered within `deadline` (plus the time of one `poll` wake-up). Starts the decider and
/// the reporter; returns once stopped, after answering what is still pending with allow (as
/// the kernel does when the group closes).
pub fn serve<D: Decide>(
    d: Arc<D>,
    name: &str,
    deadline: Duration,
    stats: Arc<DeadlineStats>,
    stop: Arc<AtomicBool>,
) {
    let stall = stall_from_env(name);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Pending>>(DECIDER_QUEUE);
    let decider = {
        let d = d.clone();
        let stats = stats.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name(format!("dw-{name}-decide"))
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let p = match rx.recv_timeout(Duration::from_millis(100)) {
                        Ok(p) => p,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    // Answered by default already: judging it now helps nobody (the exec
                    // sensor still judges what ran).
                    if p.answered.load(Ordering::Acquire) {
                        stats.late_decisions.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if !stall.is_zero() {
                        std::thread::sleep(stall);
                    }
                    let (allow, follow) = d.decide(&p.req);
                    let in_time = p.claim();
                    if in_time {
                        answer(d.guard(), &stats, &p, allow);
                    } else {
                        stats.late_decisions.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(f) = follow {
                        d.follow_up(&p.req, f, in_time);
                    }
                }
            })
    };
    let decider = match decider {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!("starting the {name} decider: {e}; every request gets the default");
            None
        }
    };
    let reporter = {
        let d = d.clone();
        let stats = stats.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name(format!("dw-{name}-late"))
            .spawn(move || report_loop(&*d, &stats, &stop, deadline))
            .ok()
    };
    answer_loop(&*d, &tx, decider.is_some(), deadline, &stats, &stop);
    drop(tx);
    // The decider ends within its next wake-up unless it is stuck; then it is left behind
    // (the process is stopping) rather than holding up shutdown.
    for t in [decider, reporter].into_iter().flatten() {
        let until = Instant::now() + Duration::from_secs(2);
        while !t.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
}

fn answer_loop<D: Decide>(
    d: &D,
    tx: &SyncSender<Arc<Pending>>,
    has_decider: bool,
    deadline: Duration,
    stats: &DeadlineStats,
    stop: &AtomicBool,
) {
    let guard = d.guard();
    let mut open: VecDeque<Arc<Pending>> = VecDeque::new();
    let mut reqs = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Requests arrive in deadline order: the oldest are at the front.
        let now = Instant::now();
        while let Some(p) = open.front() {
            if p.answered.load(Ordering::Acquire) {
                open.pop_front();
            } else if now >= p.read_at + deadline {
                timed_out(guard, stats, p);
                open.pop_front();
            } else {
                break;
            }
        }
        let wait = open
            .front()
            .map_or(Duration::from_millis(100), |p| {
                (p.read_at + deadline).saturating_duration_since(now)
            })
            .min(Duration::from_millis(100));
        match guard.wait(wait) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!("waiting for permission requests: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        reqs.clear();
        if let Err(e) = guard.read(&mut reqs) {
            tracing::warn!("reading permission requests: {e}");
        }
        for req in reqs.drain(..) {
            let read_at = Instant::now();
            let fallback = d.fallback(&req);
            let p = Arc::new(Pending {
                req,
                read_at,
                fallback,
                answered: AtomicBool::new(false),
            });
            let sent = has_decider
                && match tx.try_send(p.clone()) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
                };
            if sent {
                open.push_back(p);
            } else {
                stats.overflows.fetch_add(1, Ordering::Relaxed);
                timed_out(guard, stats, &p);
            }
        }
    }
    // Stopping: what is still open runs (the kernel would allow it when the group closes).
    for p in open.drain(..) {
        if p.claim() {
            answer(guard, stats, &p, true);
        }
    }
}

fn report_loop<D: Decide>(d: &D, stats: &DeadlineStats, stop: &AtomicBool, deadline: Duration) {
    let mut reported = (0u64, 0u64);
    let mut last: Option<Instant> = None;
    let mut ticks = 0u32;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(10) {
            d.housekeeping();
        }
        let now = (
            stats.timeouts_allowed.load(Ordering::Relaxed),
            stats.timeouts_denied.load(Ordering::Relaxed),
        );
        if now == reported || last.is_some_and(|t| t.elapsed() < TIMEOUT_ALERT_INTERVAL) {
            continue;
        }
        let (allowed, denied) = (now.0 - reported.0, now.1 - reported.1);
        reported = now;
        last = Some(Instant::now());
        stats.timeout_alerts.fetch_add(1, Ordering::Relaxed);
        d.report_timeouts(allowed + denied, allowed, denied, deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::process::Command;

    /// Denies everything, after sleeping `stall` (a stuck decision path).
    struct Slow {
        guard: ExecGuard,
        stall: Duration,
        fallback: bool,
        reports: Mutex<Vec<(u64, u64, u64)>>,
        late: AtomicU64,
    }

    impl Decide for Slow {
        type FollowUp = ();
        fn guard(&self) -> &ExecGuard {
            &self.guard
        }
        fn fallback(&self, _: &ExecRequest) -> bool {
            self.fallback
        }
        fn decide(&self, _: &ExecRequest) -> (bool, Option<()>) {
            std::thread::sleep(self.stall);
            (false, Some(()))
        }
        fn follow_up(&self, _: &ExecRequest, _: (), in_time: bool) {
            if !in_time {
                self.late.fetch_add(1, Ordering::Relaxed);
            }
        }
        fn report_timeouts(&self, count: u64, allowed: u64, denied: u64, _: Duration) {
            self.reports.lock().unwrap().push((count, allowed, denied));
        }
    }

    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    /// A real fanotify group on a tmpfs: with a decider that takes 3 s, execs finish within
    /// the 200 ms deadline with the fallback (allow runs the program, deny gives EPERM), the
    /// timeouts are counted and reported; with a fast decider its answer (deny) is used.
    #[test]
    fn a_stalled_decider_does_not_hold_execs_past_the_deadline() {
        driftwatch_testkit::require!(Root("fanotify permission events"));
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("m");
        std::fs::create_dir(&mnt).unwrap();
        assert!(
            Command::new("mount")
                .args(["-t", "tmpfs", "dwdeadline", mnt.to_str().unwrap()])
                .status()
                .unwrap()
                .success()
        );
        let _u = Unmount(mnt.clone());
        let prog = mnt.join("prog");
        std::fs::copy("/bin/true", &prog).unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();

        for (stall, fallback, expect_ok, expect_timeouts) in [
            (Duration::from_secs(3), true, true, true),
            (Duration::from_secs(3), false, false, true),
            (Duration::ZERO, true, false, false),
        ] {
            let guard = ExecGuard::new().unwrap();
            guard.mark_mount(&mnt).unwrap();
            let d = Arc::new(Slow {
                guard,
                stall,
                fallback,
                reports: Mutex::new(Vec::new()),
                late: AtomicU64::new(0),
            });
            let stats = Arc::new(DeadlineStats::default());
            let stop = Arc::new(AtomicBool::new(false));
            let server = {
                let (d, stats, stop) = (d.clone(), stats.clone(), stop.clone());
                std::thread::spawn(move || {
                    serve(d, "test", Duration::from_millis(200), stats, stop)
                })
            };
            for _ in 0..3 {
                let r = Command::new(&prog).status();
                match (&r, expect_ok) {
                    (Ok(s), true) => assert!(s.success(), "{s}"),
                    (Err(e), false) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
                    _ => panic!("stall {stall:?} fallback {fallback}: exec of {prog:?} gave {r:?}"),
                }
            }
            let timeouts = stats.timeouts.load(Ordering::Relaxed);
            if expect_timeouts {
                // The first request waits in the decider; the others queue behind it.
                assert_eq!(timeouts, 3, "stall {stall:?}");
                let until = Instant::now() + Duration::from_secs(5);
                while d.reports.lock().unwrap().is_empty() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let reports = d.reports.lock().unwrap().clone();
                assert_eq!(reports.len(), 1, "one report per interval: {reports:?}");
                let (n, a, dn) = reports[0];
                assert!(n >= 1 && a + dn == n, "{reports:?}");
                assert_eq!(if fallback { dn } else { a }, 0, "{reports:?}");
            } else {
                assert_eq!(timeouts, 0);
                assert!(d.reports.lock().unwrap().is_empty());
            }
            assert_eq!(stats.answered.load(Ordering::Relaxed), 3);
            stop.store(true, Ordering::Relaxed);
            server.join().unwrap();
            // A decider still asleep holds the group (and its mark) open: wait it out, so
            // the next round's execs are not asked of a group nobody reads.
            let until = Instant::now() + Duration::from_secs(10);
            while Arc::strong_count(&d) > 1 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(Arc::strong_count(&d), 1, "the decider thread did not end");
        }
    }
}
