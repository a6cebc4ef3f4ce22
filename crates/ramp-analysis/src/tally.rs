//! What one side of a comparison (canary or baseline) served during one time slice: the
//! unit of evidence every comparing judge consumes.

use ramp_metrics::RevisionSnapshot;
use serde::{Deserialize, Serialize};

/// Requests, errors and latency moments of one side over one time slice.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Completed requests.
    pub requests: u64,
    /// Of those, failed ones (5xx).
    pub errors: u64,
    /// Moments of `ln(latency + LATENCY_FLOOR)`, latency in seconds (see
    /// [`LATENCY_FLOOR_SECONDS`]).
    pub log_latency: Moments,
}

/// Count, sum and sum of squares of a sample: enough for a mean and a variance, and
/// mergeable by addition.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Moments {
    /// Number of values (a float: histogram buckets contribute weighted values).
    pub n: f64,
    /// Sum of values.
    pub sum: f64,
    /// Sum of squared values.
    pub sum_sq: f64,
}

impl Moments {
    /// Adds `value` with `weight`.
    pub fn add(&mut self, value: f64, weight: f64) {
        self.n += weight;
        self.sum += value * weight;
        self.sum_sq += value * value * weight;
    }

    /// Adds another sample.
    pub fn merge(&mut self, other: &Moments) {
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    /// The mean, `None` for an empty sample.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0.0).then(|| self.sum / self.n)
    }

    /// The sample variance (n - 1 denominator), `None` below two values.
    pub fn variance(&self) -> Option<f64> {
        (self.n > 1.0).then(|| {
            let mean = self.sum / self.n;
            ((self.sum_sq - self.n * mean * mean) / (self.n - 1.0)).max(0.0)
        })
    }
}

/// Added to every latency before its logarithm is taken. Judges compare latencies as
/// ratios of `latency + floor`, so the smallest slowdown a ratio `r` can stand for is
/// `(r - 1) * floor` (0.5 ms at the default 10%): a sub-millisecond service answering a few
/// hundred microseconds later, as a lightly loaded instance on a busy host does, is not a
/// regression, while a 10% change of a 50 ms latency stays a 9% change. 5 ms is also the
/// smallest bucket of Prometheus' default histogram. The floor keeps the logarithm finite.
pub const LATENCY_FLOOR_SECONDS: f64 = 0.005;

/// What judges average for one latency: `ln(latency + floor)`, negative latencies read as
/// zero.
pub fn log_latency(seconds: f64) -> f64 {
    (seconds.max(0.0) + LATENCY_FLOOR_SECONDS).ln()
}

impl Tally {
    /// The requests in a router snapshot window (`later.saturating_sub(&earlier)`).
    pub fn from_window(window: &RevisionSnapshot) -> Tally {
        let mut log_latency = Moments::default();
        for (micros, count) in window.latency.weighted_values() {
            log_latency.add(self::log_latency(micros / 1e6), count as f64);
        }
        Tally {
            requests: window.total(),
            errors: window.errors_5xx(),
            log_latency,
        }
    }

    /// Adds another slice.
    pub fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.log_latency.merge(&other.log_latency);
    }

    /// Errors over requests, `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_give_mean_and_variance() {
        let mut m = Moments::default();
        for v in [1.0, 2.0, 3.0, 4.0] {
            m.add(v, 1.0);
        }
        assert_eq!(m.mean(), Some(2.5));
        assert!((m.variance().unwrap() - 5.0 / 3.0).abs() < 1e-12);
        assert_eq!(Moments::default().mean(), None);
        let mut one = Moments::default();
        one.add(7.0, 1.0);
        assert_eq!(one.variance(), None);
    }

    #[test]
    fn a_router_window_becomes_a_tally() {
        let mut w = RevisionSnapshot::default();
        w.requests[1] = 98; // 2xx
        w.requests[4] = 2; // 5xx
        for _ in 0..100 {
            w.latency.record_micros(10_000);
        }
        let t = Tally::from_window(&w);
        assert_eq!((t.requests, t.errors), (100, 2));
        assert_eq!(t.log_latency.n, 100.0);
        let mean = t.log_latency.mean().unwrap().exp() - LATENCY_FLOOR_SECONDS;
        assert!((mean - 0.010).abs() / 0.010 < 0.04, "{mean}");
        assert_eq!(t.error_rate(), Some(0.02));
    }
}
