//! Lost events raise an alert: the kernel's ring-buffer losses and undecodable records of
//! every sensor are watched, and a rise becomes a "Driftwatch events lost" alert through the
//! same outputs as drift (rate-limited: the count accumulates between two alerts).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use driftwatch_model::{Alert, Priority};
use driftwatch_sensor::{NetSensorStats, SensorStats};

use crate::emitter::SharedEmitter;
use crate::stats::AgentStats;

pub const LOSS_RULE: &str = "Driftwatch events lost";
/// How often the counters are read.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// At most one loss alert per this long (the losses in between are summed in the next).
pub const LOSS_ALERT_MIN_INTERVAL: Duration = Duration::from_secs(30);

/// The counters watched, totals since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossCounts {
    pub exec_lost: u64,
    pub exec_malformed: u64,
    pub net_lost: u64,
    pub net_malformed: u64,
}

impl LossCounts {
    fn total(self) -> u64 {
        self.exec_lost + self.exec_malformed + self.net_lost + self.net_malformed
    }
}

/// The alert for losses between `reported` and `now` (totals since start).
pub fn loss_alert(now: LossCounts, reported: LossCounts, hostname: &str, ring_mib: u32) -> Alert {
    let new = now.total() - reported.total();
    let mut f: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    f.insert("driftwatch.lost_new".into(), new.into());
    f.insert("driftwatch.exec_lost".into(), now.exec_lost.into());
    f.insert(
        "driftwatch.exec_malformed".into(),
        now.exec_malformed.into(),
    );
    f.insert("driftwatch.net_lost".into(), now.net_lost.into());
    f.insert("driftwatch.net_malformed".into(), now.net_malformed.into());
    f.insert("driftwatch.ring_mib".into(), ring_mib.into());
    Alert::internal(
        hostname,
        LOSS_RULE,
        Priority::Critical,
        format!(
            "Driftwatch events lost: {new} kernel events not seen since the last report \
             (in all: exec {} lost, {} malformed; network {} lost, {} malformed); drift in \
             that time may have gone undetected (ring buffer {ring_mib} MiB: raise \
             sensor.ring_mib)",
            now.exec_lost, now.exec_malformed, now.net_lost, now.net_malformed
        ),
        vec!["driftwatch".into(), "agent_health".into()],
        f,
    )
}

/// The watching thread; stops when dropped.
pub struct LossWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl LossWatch {
    pub fn start(
        exec: Option<Arc<SensorStats>>,
        net: Option<Arc<NetSensorStats>>,
        emitter: SharedEmitter,
        stats: Arc<AgentStats>,
        hostname: String,
        ring_mib: u32,
    ) -> LossWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let read = move || LossCounts {
            exec_lost: exec.as_ref().map_or(0, |s| load(&s.lost)),
            exec_malformed: exec.as_ref().map_or(0, |s| load(&s.malformed)),
            net_lost: net.as_ref().map_or(0, |s| load(&s.lost)),
            net_malformed: net.as_ref().map_or(0, |s| load(&s.malformed)),
        };
        let thread = std::thread::Builder::new()
            .name("dw-loss".into())
            .spawn(move || {
                let mut reported = LossCounts::default();
                let mut last: Option<Instant> = None;
                let check = |reported: &mut LossCounts, last: &mut Option<Instant>, force: bool| {
                    let now = read();
                    if now.total() <= reported.total() {
                        return;
                    }
                    if !force && last.is_some_and(|t| t.elapsed() < LOSS_ALERT_MIN_INTERVAL) {
                        return;
                    }
                    let alert = loss_alert(now, *reported, &hostname, ring_mib);
                    tracing::warn!("{}", alert.output);
                    stats.loss_alerts.fetch_add(1, Ordering::Relaxed);
                    crate::emitter::emit_alert(&emitter, &alert);
                    *reported = now;
                    *last = Some(Instant::now());
                };
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(CHECK_EVERY);
                    check(&mut reported, &mut last, false);
                }
                // Stopping: what was lost since the last alert is still reported.
                check(&mut reported, &mut last, true);
            })
            .ok();
        LossWatch { stop, thread }
    }

    /// Stops the thread, reporting the losses not yet alerted.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LossWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_counts_what_is_new_and_the_totals() {
        let reported = LossCounts {
            exec_lost: 10,
            ..LossCounts::default()
        };
        let now = LossCounts {
            exec_lost: 25,
            exec_malformed: 1,
            net_lost: 2,
            net_malformed: 0,
        };
        let a = loss_alert(now, reported, "h", 1);
        assert_eq!(a.rule, LOSS_RULE);
        assert_eq!(a.priority, Priority::Critical);
        assert_eq!(a.source, "internal", "Falco's source of its own alerts");
        assert_eq!(a.output_fields["driftwatch.lost_new"], 18);
        assert_eq!(a.output_fields["driftwatch.exec_lost"], 25);
        assert_eq!(a.output_fields["driftwatch.ring_mib"], 1);
        assert!(
            a.output.starts_with("Driftwatch events lost: 18 "),
            "{}",
            a.output
        );
    }
}
