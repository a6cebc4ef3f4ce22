//! One slice of traffic, request by request, and its reduction to the tallies the sequential
//! judge compares.
//!
//! Latencies carry rare, huge outliers (a descheduled thread, a GC pause, a retried
//! connection) that a mean of a few canary requests cannot absorb: two of them in a small
//! canary slice look like a slowdown. Before the moments are taken, every log latency of the
//! slice is therefore winsorized: clamped to the pooled median plus or minus
//! [`WINSOR_MADS`] pooled median absolute deviations. The bounds come from both sides
//! together, so they do not depend on which side a latency came from: when the canary is as
//! good as its baseline the clamped latencies are as exchangeable as the raw ones, and the
//! test stays valid. For well-behaved latencies the bounds lie beyond 3.3 standard
//! deviations and change almost nothing.

use ramp_metrics::RevisionSnapshot;

use crate::tally::log_latency;
use crate::{Moments, Tally};

/// Half-width of the winsorizing band, in pooled median absolute deviations of log latency.
pub const WINSOR_MADS: f64 = 5.0;

/// What one side served during one slice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SliceTraffic {
    /// Completed requests.
    pub requests: u64,
    /// Of those, failed ones (5xx).
    pub errors: u64,
    /// Latencies in seconds, each with the number of requests that took it.
    pub latencies: Vec<(f64, u64)>,
}

impl SliceTraffic {
    /// Counts one request.
    pub fn record(&mut self, latency_seconds: f64, error: bool) {
        self.requests += 1;
        self.errors += u64::from(error);
        if latency_seconds.is_finite() {
            self.latencies.push((latency_seconds.max(0.0), 1));
        }
    }

    /// The requests in a router snapshot window (`later.saturating_sub(&earlier)`); each
    /// latency stands at its histogram bucket's midpoint.
    pub fn from_window(window: &RevisionSnapshot) -> SliceTraffic {
        SliceTraffic {
            requests: window.total(),
            errors: window.errors_5xx(),
            latencies: window
                .latency
                .weighted_values()
                .map(|(micros, count)| (micros / 1e6, count))
                .collect(),
        }
    }
}

/// Both sides' tallies, their log latencies winsorized at bounds drawn from the two sides
/// pooled (see the module documentation).
pub fn judged_tallies(canary: &SliceTraffic, baseline: &SliceTraffic) -> (Tally, Tally) {
    let log = |&(seconds, count): &(f64, u64)| (log_latency(seconds), count);
    let mut pooled: Vec<(f64, u64)> = canary
        .latencies
        .iter()
        .chain(&baseline.latencies)
        .map(log)
        .filter(|&(value, count)| value.is_finite() && count > 0)
        .collect();
    let (low, high) = match weighted_median(&mut pooled) {
        Some(median) => {
            let mut deviations: Vec<(f64, u64)> = pooled
                .iter()
                .map(|&(value, count)| ((value - median).abs(), count))
                .collect();
            let spread = weighted_median(&mut deviations).unwrap_or(0.0);
            if spread > 0.0 {
                let band = WINSOR_MADS * spread;
                (median - band, median + band)
            } else {
                // Most latencies are equal: no scale to clamp at.
                (f64::NEG_INFINITY, f64::INFINITY)
            }
        }
        None => (f64::NEG_INFINITY, f64::INFINITY),
    };
    let tally = |side: &SliceTraffic| {
        let mut log_latency = Moments::default();
        for (value, count) in side.latencies.iter().map(log) {
            if value.is_finite() && count > 0 {
                log_latency.add(value.clamp(low, high), count as f64);
            }
        }
        Tally {
            requests: side.requests,
            errors: side.errors.min(side.requests),
            log_latency,
        }
    };
    (tally(canary), tally(baseline))
}

/// The lower weighted median of `(value, count)` pairs (sorts them); `None` when empty.
fn weighted_median(values: &mut [(f64, u64)]) -> Option<f64> {
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = values
        .iter()
        .fold(0u64, |sum, &(_, count)| sum.saturating_add(count));
    let half = total.div_ceil(2);
    let mut seen = 0u64;
    values.iter().find_map(|&(value, count)| {
        seen = seen.saturating_add(count);
        (seen >= half && total > 0).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(latencies_ms: &[f64]) -> SliceTraffic {
        let mut side = SliceTraffic::default();
        for &ms in latencies_ms {
            side.record(ms / 1e3, false);
        }
        side
    }

    fn log(ms: f64) -> f64 {
        (ms / 1e3 + crate::tally::LATENCY_FLOOR_SECONDS).ln()
    }

    #[test]
    fn an_outlier_is_clamped_at_the_pooled_band_and_counted_once() {
        // Pooled log latencies: median log(10 ms); deviations of 9, 11 ms and the outlier.
        let canary = traffic(&[10.0, 11.0, 5_000.0]);
        let baseline = traffic(&[9.0, 10.0, 10.0, 11.0]);
        let (c, b) = judged_tallies(&canary, &baseline);
        let median = log(10.0);
        let mut deviations = [
            0.0,
            0.0,
            0.0,
            log(11.0) - median,
            log(11.0) - median,
            median - log(9.0),
            log(5_000.0) - median,
        ];
        deviations.sort_by(f64::total_cmp);
        let high = median + WINSOR_MADS * deviations[3];
        assert!(high < log(5_000.0));
        let want = log(10.0) + log(11.0) + high;
        assert!((c.log_latency.sum - want).abs() < 1e-12, "{c:?}");
        assert_eq!(c.log_latency.n, 3.0);
        assert_eq!(c.requests, 3);
        // The baseline's latencies are all inside the band.
        let want = log(9.0) + 2.0 * log(10.0) + log(11.0);
        assert!((b.log_latency.sum - want).abs() < 1e-12, "{b:?}");
    }

    #[test]
    fn the_bounds_do_not_depend_on_which_side_a_latency_came_from() {
        let all = [3.0, 4.0, 4.5, 5.0, 90.0, 4.2, 3.9, 0.01];
        let (c1, b1) = judged_tallies(&traffic(&all[..3]), &traffic(&all[3..]));
        let (c2, b2) = judged_tallies(&traffic(&all[3..]), &traffic(&all[..3]));
        let sum = |t: &Tally| t.log_latency.sum;
        assert!((sum(&c1) + sum(&b1) - sum(&c2) - sum(&b2)).abs() < 1e-12);
        assert!((sum(&c1) - sum(&b2)).abs() < 1e-12);
    }

    #[test]
    fn well_behaved_latencies_are_left_as_they_are() {
        let canary = traffic(&[40.0, 50.0, 60.0, 55.0]);
        let baseline = traffic(&[45.0, 52.0, 48.0, 58.0, 50.0]);
        let (c, b) = judged_tallies(&canary, &baseline);
        let raw: f64 = [40.0, 50.0, 60.0, 55.0].iter().map(|&ms| log(ms)).sum();
        assert!((c.log_latency.sum - raw).abs() < 1e-12);
        assert_eq!(b.log_latency.n, 5.0);
    }

    #[test]
    fn equal_latencies_empty_sides_and_odd_values_pass_through() {
        let (c, b) = judged_tallies(&traffic(&[7.0; 4]), &SliceTraffic::default());
        assert_eq!(c.log_latency.n, 4.0);
        assert!((c.log_latency.mean().unwrap() - log(7.0)).abs() < 1e-12);
        assert_eq!(b, Tally::default());
        let mut odd = traffic(&[f64::NAN, f64::INFINITY, -3.0]);
        odd.errors = 10;
        let (c, _) = judged_tallies(&odd, &SliceTraffic::default());
        assert_eq!((c.requests, c.errors), (3, 3));
        assert_eq!(c.log_latency.n, 1.0, "only the negative latency, as zero");
        assert!((c.log_latency.sum - log(0.0)).abs() < 1e-12, "{c:?}");
    }

    #[test]
    fn recording_counts_every_request_and_keeps_finite_latencies() {
        let mut t = SliceTraffic::default();
        t.record(0.0, false);
        t.record(f64::NAN, true);
        assert_eq!((t.requests, t.errors), (2, 1));
        assert_eq!(t.latencies, [(0.0, 1)]);
    }

    #[test]
    fn a_router_window_becomes_traffic() {
        let mut w = RevisionSnapshot::default();
        w.requests[1] = 9;
        w.requests[4] = 1;
        for _ in 0..10 {
            w.latency.record_micros(2_000);
        }
        let t = SliceTraffic::from_window(&w);
        assert_eq!((t.requests, t.errors), (10, 1));
        assert_eq!(t.latencies.len(), 1);
        let (seconds, count) = t.latencies[0];
        assert_eq!(count, 10);
        assert!((seconds - 0.002).abs() < 0.002 * 0.04, "{seconds}");
    }
}
