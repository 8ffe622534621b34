//! Fixed-bucket latency histograms (lock-free counters), exported by `/metrics` as Prometheus
//! histograms. The sample vectors next to them stay for exact quantiles in `--stats-json`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Exact samples kept at most per vector (for quantiles in `--stats-json`).
pub const MAX_SAMPLES: usize = 1_000_000;

/// Keeps one sample (microseconds), up to [`MAX_SAMPLES`].
pub fn record_sample_us(samples: &Mutex<Vec<u32>>, us: u32) {
    if let Ok(mut v) = samples.lock()
        && v.len() < MAX_SAMPLES
    {
        v.push(us);
    }
}

/// The `q`-quantile (0..=1) of the samples, `None` when there are none.
pub fn sample_quantile_us(samples: &Mutex<Vec<u32>>, q: f64) -> Option<u32> {
    let mut v = samples.lock().ok()?.clone();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    v.get(((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize)
        .copied()
}

/// Upper bounds in microseconds: 10 µs to 10 s, about three per decade.
pub const LATENCY_BOUNDS_US: [u64; 19] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Counts of observations per bucket (not cumulative), their sum and count.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe_us(&self, us: u64) {
        if let Some(i) = LATENCY_BOUNDS_US.iter().position(|b| us <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (upper bound in seconds, observations in that bucket alone), the sum in seconds and
    /// the count (observations above the last bound are only in the count).
    pub fn snapshot_seconds(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let buckets = LATENCY_BOUNDS_US
            .iter()
            .zip(&self.buckets)
            .map(|(b, n)| (*b as f64 / 1e6, n.load(Ordering::Relaxed)))
            .collect();
        (
            buckets,
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            self.count.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let h = Histogram::default();
        h.observe_us(7);
        h.observe_us(10);
        h.observe_us(11);
        h.observe_us(20_000_000);
        let (b, sum, count) = h.snapshot_seconds();
        assert_eq!(b[0], (0.00001, 2));
        assert_eq!(b[1].1, 1);
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 3);
        assert_eq!(count, 4);
        assert!((sum - 20.000028).abs() < 1e-9);
    }
}
