//! Calibration of the Argo-style thresholds on the A/A runs: a user who tuned thresholds by
//! watching healthy releases would pick the tightest ones that rarely fire. Here "rarely" is
//! the matched false-alarm budget, split evenly between the error-rate and the p99 condition
//! (so that, by the union bound, both together alarm on at most the budget of A/A runs).

use crate::judges::argo::{Measurement, Thresholds};

/// Grid step of the error-rate threshold (0.05 percentage points).
pub(crate) const ERROR_RATE_STEP: f64 = 0.0005;
/// Grid step of the p99 threshold (1 ms).
pub(crate) const P99_STEP_SECONDS: f64 = 0.001;

/// The smallest multiple of `step` that at most `allowed` of `values` exceed.
pub(crate) fn smallest_passing_threshold(values: &[f64], allowed: usize, step: f64) -> f64 {
    let mut descending = values.to_vec();
    descending.sort_by(|a, b| b.total_cmp(a));
    // Every value must be <= the threshold except the `allowed` largest.
    let Some(&must_pass) = descending.get(allowed) else {
        return 0.0;
    };
    let mut k = (must_pass / step).ceil().max(0.0);
    while k > 0.0 && (k - 1.0) * step >= must_pass {
        k -= 1.0;
    }
    while k * step < must_pass {
        k += 1.0;
    }
    k * step
}

/// The largest value of one condition in a run, 0 when it had no measurement.
fn run_maximum(measurements: &[Measurement], pick: fn(&Measurement) -> Option<f64>) -> f64 {
    measurements.iter().filter_map(pick).fold(0.0, f64::max)
}

/// Thresholds under which at most `false_alarm_budget` of `aa_runs` (each a run's
/// measurements) fail.
pub(crate) fn calibrate(aa_runs: &[Vec<Measurement>], false_alarm_budget: f64) -> Thresholds {
    let per_condition = false_alarm_budget / 2.0;
    // The small epsilon keeps e.g. 1000 x 0.005 from flooring to 4.
    let allowed = (aa_runs.len() as f64 * per_condition + 1e-9).floor() as usize;
    let maxima = |pick: fn(&Measurement) -> Option<f64>| -> Vec<f64> {
        aa_runs.iter().map(|run| run_maximum(run, pick)).collect()
    };
    Thresholds {
        max_error_rate: smallest_passing_threshold(
            &maxima(|m| m.error_rate),
            allowed,
            ERROR_RATE_STEP,
        ),
        max_p99_seconds: smallest_passing_threshold(
            &maxima(|m| m.p99_seconds),
            allowed,
            P99_STEP_SECONDS,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judges::argo::ArgoJudge;
    use crate::scenario::AA;
    use crate::stream::Stream;
    use proptest::prelude::*;

    fn exceeding(values: &[f64], threshold: f64) -> usize {
        values.iter().filter(|&&v| v > threshold).count()
    }

    #[test]
    fn picks_the_grid_value_at_or_above_the_cut() {
        let values = [0.0101, 0.0200, 0.0150, 0.0300];
        assert_eq!(smallest_passing_threshold(&values, 1, 0.001), 0.020);
        assert_eq!(smallest_passing_threshold(&values, 0, 0.001), 0.030);
        assert_eq!(smallest_passing_threshold(&values, 4, 0.001), 0.0);
    }

    proptest! {
        #[test]
        fn the_threshold_meets_the_budget_and_is_the_smallest(
            values in prop::collection::vec(0.0f64..0.2, 1..200),
            allowed in 0usize..20,
        ) {
            let step = 0.0005;
            let t = smallest_passing_threshold(&values, allowed, step);
            prop_assert!(exceeding(&values, t) <= allowed);
            if t > 0.0 {
                prop_assert!(exceeding(&values, t - step) > allowed);
            }
        }
    }

    #[test]
    fn calibrated_thresholds_meet_the_budget_on_simulated_aa_runs() {
        // 200 short A/A runs of 5 minutes with the 10 s judge: 30 measurements each.
        let runs: Vec<Vec<Measurement>> = (0..200)
            .map(|run| {
                let mut stream = Stream::new(&AA, 200.0, 0.1, run);
                let mut judge = ArgoJudge::new(10, None);
                let mut requests = Vec::new();
                for tick in 0..3000 {
                    stream.next_tick(tick, &mut requests);
                    judge.observe_tick(tick, &requests);
                }
                judge.measurements().to_vec()
            })
            .collect();
        let budget = 0.02;
        let t = calibrate(&runs, budget);
        let alarmed = runs
            .iter()
            .filter(|run| t.first_failure(run, 10).is_some())
            .count();
        assert!(
            alarmed as f64 <= budget * runs.len() as f64,
            "{alarmed} alarmed"
        );
        // Tightest: one grid step lower, the error-rate condition alone exceeds its share.
        let lower = t.max_error_rate - ERROR_RATE_STEP;
        let rate_alarms = runs
            .iter()
            .filter(|run| run.iter().any(|m| m.error_rate.is_some_and(|r| r > lower)))
            .count();
        assert!(rate_alarms > 2, "{rate_alarms}");
        // Sanity: the error-rate threshold sits well above the true 1%.
        assert!(t.max_error_rate > 0.02 && t.max_error_rate < 0.2, "{t:?}");
        assert!(t.max_p99_seconds > 0.12 && t.max_p99_seconds < 0.4, "{t:?}");
    }
}
