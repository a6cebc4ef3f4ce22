//! What a judge did over a scenario's runs: its false-alarm rate on A/A-like scenarios, its
//! detected fraction and detection-time percentiles on bad ones.

use serde::Serialize;

use crate::scenario::Kind;

/// Nearest-rank `q`-quantile of alarm times where `None` (never alarmed within the horizon)
/// counts as +infinity; `None` when the quantile falls on such a run or there are no runs.
pub(crate) fn percentile(times: &[Option<f64>], q: f64) -> Option<f64> {
    if times.is_empty() {
        return None;
    }
    let mut detected: Vec<f64> = times.iter().flatten().copied().collect();
    detected.sort_by(f64::total_cmp);
    let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
    detected.get(rank - 1).copied()
}

/// One judge on one scenario; inapplicable figures are `None` (null in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// Runs simulated.
    pub(crate) runs: usize,
    /// A/A-like scenarios: fraction of runs with an alarm.
    pub(crate) false_alarm_rate: Option<f64>,
    /// Bad scenarios: fraction of runs with an alarm within the horizon.
    pub(crate) detected: Option<f64>,
    /// Bad scenarios: median time to alarm, in seconds.
    pub(crate) detect_p50_s: Option<f64>,
    /// Bad scenarios: 90th percentile time to alarm, in seconds.
    pub(crate) detect_p90_s: Option<f64>,
}

impl Summary {
    /// Summarizes the alarm times of one judge over a scenario of `kind`.
    pub(crate) fn of(kind: Kind, alarms: &[Option<f64>]) -> Summary {
        let runs = alarms.len();
        let alarmed = alarms.iter().filter(|a| a.is_some()).count();
        let fraction = (runs > 0).then(|| alarmed as f64 / runs as f64);
        match kind {
            Kind::AaLike => Summary {
                runs,
                false_alarm_rate: fraction,
                detected: None,
                detect_p50_s: None,
                detect_p90_s: None,
            },
            Kind::Bad => Summary {
                runs,
                false_alarm_rate: None,
                detected: fraction,
                detect_p50_s: percentile(alarms, 0.5),
                detect_p90_s: percentile(alarms, 0.9),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn undetected_runs_count_as_infinitely_late() {
        let times = [Some(3.0), None, Some(1.0), None, Some(2.0)];
        assert_eq!(percentile(&times, 0.5), Some(3.0));
        assert_eq!(percentile(&times, 0.6), Some(3.0));
        assert_eq!(percentile(&times, 0.61), None);
        assert_eq!(percentile(&times, 0.9), None);
        assert_eq!(percentile(&times, 0.0), Some(1.0));
        assert_eq!(percentile(&[None, None], 0.1), None);
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn summaries_fill_only_what_applies() {
        let aa = Summary::of(Kind::AaLike, &[None, Some(5.0), None, None]);
        assert_eq!(aa.false_alarm_rate, Some(0.25));
        assert_eq!((aa.detected, aa.detect_p50_s), (None, None));
        let bad = Summary::of(Kind::Bad, &[Some(10.0), Some(20.0), None, Some(30.0)]);
        assert_eq!(bad.false_alarm_rate, None);
        assert_eq!(bad.detected, Some(0.75));
        assert_eq!(bad.detect_p50_s, Some(20.0));
        assert_eq!(bad.detect_p90_s, None);
    }

    proptest! {
        #[test]
        fn percentiles_match_a_sort_with_infinity(
            times in prop::collection::vec(prop::option::of(0.0f64..900.0), 1..100),
            q in 0.01f64..1.0,
        ) {
            let mut with_inf: Vec<f64> =
                times.iter().map(|t| t.unwrap_or(f64::INFINITY)).collect();
            with_inf.sort_by(f64::total_cmp);
            let rank = (q * times.len() as f64).ceil() as usize;
            let expected = with_inf[rank.max(1) - 1];
            let got = percentile(&times, q);
            prop_assert_eq!(got.unwrap_or(f64::INFINITY), expected);
        }

        #[test]
        fn percentiles_never_decrease_with_q(
            times in prop::collection::vec(prop::option::of(0.0f64..900.0), 1..50),
        ) {
            let p50 = percentile(&times, 0.5).unwrap_or(f64::INFINITY);
            let p90 = percentile(&times, 0.9).unwrap_or(f64::INFINITY);
            prop_assert!(p50 <= p90);
        }
    }
}
