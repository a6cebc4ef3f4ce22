//! The Argo Rollouts judge as users configure it: every `interval`, measure the canary's
//! error rate and p99 latency over the last `interval` (Flagger's convention: the query's
//! range is the interval), and fail at the first measurement over a threshold
//! (`failureLimit: 0`). It never looks at the baseline.
//!
//! The p99 is exact (nearest rank over every request of the window): the best an Argo metric
//! could see; a Prometheus histogram would only interpolate between buckets.

use crate::stream::{Request, TICKS_PER_SECOND};

/// One measurement of the canary over one window; `None` when it served no request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Measurement {
    /// Errors over requests.
    pub(crate) error_rate: Option<f64>,
    /// 99th percentile latency, in seconds.
    pub(crate) p99_seconds: Option<f64>,
}

/// The failure conditions: a measurement fails when either value is strictly above its
/// threshold (i.e. the success condition is `result <= threshold`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Thresholds {
    /// Highest error rate that still passes.
    pub(crate) max_error_rate: f64,
    /// Highest p99 latency, in seconds, that still passes.
    pub(crate) max_p99_seconds: f64,
}

impl Thresholds {
    /// Whether `measurement` fails.
    pub(crate) fn fails(&self, measurement: &Measurement) -> bool {
        measurement
            .error_rate
            .is_some_and(|rate| rate > self.max_error_rate)
            || measurement
                .p99_seconds
                .is_some_and(|p99| p99 > self.max_p99_seconds)
    }

    /// When a run with these `measurements`, taken every `interval_seconds`, first fails.
    pub(crate) fn first_failure(
        &self,
        measurements: &[Measurement],
        interval_seconds: u32,
    ) -> Option<f64> {
        let index = measurements.iter().position(|m| self.fails(m))?;
        Some(f64::from((index as u32 + 1) * interval_seconds))
    }
}

/// Nearest-rank 99th percentile; `None` for no values.
fn p99(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = (values.len() * 99).div_ceil(100);
    let (_, nth, _) = values.select_nth_unstable_by(rank - 1, f64::total_cmp);
    Some(*nth)
}

/// The judge's state over one run.
#[derive(Debug)]
pub(crate) struct ArgoJudge {
    interval_seconds: u32,
    /// `None` while calibrating: measure only, never fail.
    thresholds: Option<Thresholds>,
    requests: u64,
    errors: u64,
    latencies: Vec<f64>,
    measurements: Vec<Measurement>,
}

impl ArgoJudge {
    /// A judge measuring every `interval_seconds`, failing on `thresholds` when given.
    pub(crate) fn new(interval_seconds: u32, thresholds: Option<Thresholds>) -> ArgoJudge {
        ArgoJudge {
            interval_seconds,
            thresholds,
            requests: 0,
            errors: 0,
            latencies: Vec::new(),
            measurements: Vec::new(),
        }
    }

    /// Every measurement taken so far.
    #[cfg(test)]
    pub(crate) fn measurements(&self) -> &[Measurement] {
        &self.measurements
    }

    /// Every measurement taken, giving up the judge.
    pub(crate) fn into_measurements(self) -> Vec<Measurement> {
        self.measurements
    }

    /// Takes tick `tick`'s requests; true when a measurement taken at its end fails.
    pub(crate) fn observe_tick(&mut self, tick: u32, requests: &[Request]) -> bool {
        for request in requests.iter().filter(|r| r.canary) {
            self.requests += 1;
            self.errors += u64::from(request.error);
            self.latencies.push(request.latency_seconds);
        }
        if !(tick + 1).is_multiple_of(self.interval_seconds * TICKS_PER_SECOND) {
            return false;
        }
        let measurement = Measurement {
            error_rate: (self.requests > 0).then(|| self.errors as f64 / self.requests as f64),
            p99_seconds: p99(&mut self.latencies),
        };
        self.measurements.push(measurement);
        self.requests = 0;
        self.errors = 0;
        self.latencies.clear();
        self.thresholds.is_some_and(|t| t.fails(&measurement))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(canary: bool, error: bool, latency_seconds: f64) -> Request {
        Request {
            canary,
            error,
            latency_seconds,
        }
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        let mut values: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(p99(&mut values), Some(198.0));
        assert_eq!(p99(&mut [5.0]), Some(5.0));
        assert_eq!(p99(&mut []), None);
    }

    #[test]
    fn measures_the_canary_only_at_interval_ends() {
        let thresholds = Thresholds {
            max_error_rate: 0.2,
            max_p99_seconds: 1.0,
        };
        let mut judge = ArgoJudge::new(10, Some(thresholds));
        let tick = [
            request(true, true, 0.1),
            request(true, false, 0.1),
            request(true, false, 0.1),
            request(false, true, 9.0),
        ];
        for t in 0..99 {
            assert!(!judge.observe_tick(t, &tick));
        }
        // 99 of 297 canary requests failed: 33% > 20%.
        assert!(judge.observe_tick(99, &tick));
        let m = judge.measurements()[0];
        assert!((m.error_rate.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            m.p99_seconds,
            Some(0.1),
            "the baseline's 9 s must not count"
        );
    }

    #[test]
    fn windows_do_not_overlap_and_empty_windows_do_not_fail() {
        let mut judge = ArgoJudge::new(1, None);
        judge.observe_tick(0, &[request(true, true, 0.5)]);
        for t in 1..10 {
            judge.observe_tick(t, &[]);
        }
        for t in 10..20 {
            judge.observe_tick(t, &[]);
        }
        let ms = judge.measurements();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].error_rate, Some(1.0));
        assert_eq!(ms[1].error_rate, None);
        let t = Thresholds {
            max_error_rate: 0.5,
            max_p99_seconds: 10.0,
        };
        assert!(!t.fails(&ms[1]));
        assert_eq!(t.first_failure(ms, 1), Some(1.0));
        assert_eq!(t.first_failure(&ms[1..], 1), None);
    }
}
