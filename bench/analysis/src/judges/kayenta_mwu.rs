//! Kayenta's judge at its documented defaults with a 1-minute interval: at each minute's end
//! the last minute of canary is compared with the last minute of baseline by Mann-Whitney
//! tests (98% confidence), and the run fails at the first score at or below marginal (50).
//!
//! Metrics: `errors`, the error rate per 10-second slice (six values per side and minute;
//! critical), and `latency`, every request's latency (direction increase, allowed increase
//! 1.0). Kayenta itself only ever sees time series; handing it per-request latencies is its
//! best case. Only the last minute's samples are kept.

use ramp_analysis::kayenta::{self, ScoreClass};
use ramp_analysis::{ComparedMetric, Direction, MannWhitneySettings, Measure};

use crate::stream::{Request, TICKS_PER_SECOND};

/// Seconds per judged interval.
const INTERVAL_SECONDS: u32 = 60;
/// Seconds per error-rate point.
const ERROR_SLICE_SECONDS: u32 = 10;

/// Kayenta's defaults for the two metrics.
pub(crate) fn default_settings() -> MannWhitneySettings {
    let metric = |name: &str, measure: Measure, critical: bool| ComparedMetric {
        name: name.to_owned(),
        measure,
        direction: Direction::Increase,
        critical,
        weight: 1.0,
        allowed_increase: 1.0,
        allowed_decrease: 1.0,
        remove_outliers: false,
    };
    MannWhitneySettings {
        metrics: vec![
            metric("errors", Measure::ErrorRate, true),
            metric("latency", Measure::Latency, false),
        ],
        confidence: 0.98,
        pass_score: 75.0,
        marginal_score: 50.0,
    }
}

/// Requests and errors of one side within the current 10-second slice.
#[derive(Debug, Default, Clone, Copy)]
struct SliceCount {
    requests: u64,
    errors: u64,
}

impl SliceCount {
    fn rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

/// Index of each metric's samples, in [`default_settings`]' order.
const ERRORS: usize = 0;
const LATENCY: usize = 1;

/// The judge's state over one run.
#[derive(Debug)]
pub(crate) struct KayentaJudge {
    settings: MannWhitneySettings,
    /// Per metric: (canary, baseline) samples of the current minute.
    samples: [(Vec<f64>, Vec<f64>); 2],
    canary_slice: SliceCount,
    baseline_slice: SliceCount,
}

impl KayentaJudge {
    /// A judge with Kayenta's defaults.
    pub(crate) fn new() -> KayentaJudge {
        KayentaJudge {
            settings: default_settings(),
            samples: Default::default(),
            canary_slice: SliceCount::default(),
            baseline_slice: SliceCount::default(),
        }
    }

    /// Takes tick `tick`'s requests; true when the minute ending with it is judged a failure.
    pub(crate) fn observe_tick(&mut self, tick: u32, requests: &[Request]) -> bool {
        for request in requests {
            let (slice, latencies) = if request.canary {
                (&mut self.canary_slice, &mut self.samples[LATENCY].0)
            } else {
                (&mut self.baseline_slice, &mut self.samples[LATENCY].1)
            };
            slice.requests += 1;
            slice.errors += u64::from(request.error);
            latencies.push(request.latency_seconds);
        }
        let ticks_done = tick + 1;
        if ticks_done.is_multiple_of(ERROR_SLICE_SECONDS * TICKS_PER_SECOND) {
            // A slice without requests has no rate: Kayenta drops such (NaN) points.
            let (canary, baseline) = &mut self.samples[ERRORS];
            canary.extend(self.canary_slice.rate());
            baseline.extend(self.baseline_slice.rate());
            self.canary_slice = SliceCount::default();
            self.baseline_slice = SliceCount::default();
        }
        if !ticks_done.is_multiple_of(INTERVAL_SECONDS * TICKS_PER_SECOND) {
            return false;
        }
        let score = kayenta::judge(&self.settings, &self.samples);
        for (canary, baseline) in &mut self.samples {
            canary.clear();
            baseline.clear();
        }
        score.class == ScoreClass::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::by_name;
    use crate::stream::Stream;

    fn minutes_until_failure(scenario: &str, seed: u64) -> Option<u32> {
        let mut stream = Stream::new(by_name(scenario).unwrap(), 200.0, 0.1, seed);
        let mut judge = KayentaJudge::new();
        let mut requests = Vec::new();
        (0..5 * 600).find_map(|tick| {
            stream.next_tick(tick, &mut requests);
            judge
                .observe_tick(tick, &requests)
                .then_some((tick + 1) / 600)
        })
    }

    #[test]
    fn fails_a_much_slower_canary_at_the_first_minute() {
        assert_eq!(minutes_until_failure("latency_plus_50", 3), Some(1));
    }

    #[test]
    fn passes_an_identical_canary() {
        assert_eq!(minutes_until_failure("aa", 3), None);
    }
}
