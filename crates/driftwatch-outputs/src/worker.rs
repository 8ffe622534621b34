//! One output's thread: takes alerts off its bounded queue in order, delivers each with
//! retries and exponential backoff, and counts what happened. Stops when its queue is closed
//! and drained, or gives up what is left once the shutdown deadline has passed.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftwatch_model::Alert;

/// Why one delivery attempt failed, and whether another attempt may succeed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub retry: bool,
    /// The receiver's own wish (`Retry-After`), used instead of the backoff.
    pub after: Option<Duration>,
    pub message: String,
}

impl Failure {
    pub fn retry(message: String) -> Failure {
        Failure {
            retry: true,
            after: None,
            message,
        }
    }

    pub fn permanent(message: String) -> Failure {
        Failure {
            retry: false,
            after: None,
            message,
        }
    }
}

/// An output's way of delivering one alert. Runs on the output's own thread only.
pub(crate) trait Deliver: Send {
    fn deliver(&mut self, alert: &Alert) -> Result<(), Failure>;
}

/// An output's counters; they outlive a reconfiguration of the output, so they only grow.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub queued: AtomicU64,
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
    pub retries: AtomicU64,
}

/// What the emitting side and the worker share besides the queue.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub counters: Arc<Counters>,
    /// Alerts in the queue (incremented before a send, decremented at receive).
    pub depth: AtomicUsize,
    /// Set by shutdown: past it, no retry and nothing more is attempted.
    pub deadline: Mutex<Option<Instant>>,
}

impl Shared {
    fn past_deadline(&self) -> bool {
        let d = *self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        d.is_some_and(|d| Instant::now() >= d)
    }

    /// Sleeps `d`, cut short by the shutdown deadline. False when the deadline cut it.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.past_deadline() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// The first backoff; doubled at each retry, capped at [`MAX_BACKOFF`].
    pub base: Duration,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A receiver's `Retry-After` is honoured up to this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << attempt.min(16))
            .min(MAX_BACKOFF)
    }
}

pub(crate) fn run(
    name: &str,
    mut out: Box<dyn Deliver>,
    rx: Receiver<Arc<Alert>>,
    shared: Arc<Shared>,
    policy: RetryPolicy,
) {
    let c = &shared.counters;
    while let Ok(alert) = rx.recv() {
        shared.depth.fetch_sub(1, Ordering::Relaxed);
        if shared.past_deadline() {
            c.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mut attempt = 0;
        loop {
            match out.deliver(&alert) {
                Ok(()) => {
                    c.sent.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(f) if f.retry && attempt < policy.retries => {
                    c.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("output {name}: {} (retrying)", f.message);
                    let wait = f.after.unwrap_or_else(|| policy.backoff(attempt));
                    attempt += 1;
                    if !shared.sleep(wait) {
                        give_up(name, c, &f.message);
                        break;
                    }
                }
                Err(f) => {
                    give_up(name, c, &f.message);
                    break;
                }
            }
        }
    }
}

fn give_up(name: &str, c: &Counters, message: &str) {
    let n = c.failed.fetch_add(1, Ordering::Relaxed) + 1;
    // The first failures, then every power of two: a dead receiver does not flood the log.
    if n <= 3 || n.is_power_of_two() {
        tracing::warn!("output {name}: an alert was not delivered: {message} ({n} so far)");
    }
}
