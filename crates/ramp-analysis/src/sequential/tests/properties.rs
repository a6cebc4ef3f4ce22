//! Properties over arbitrary slices: evidence stays finite and failing is final.

use proptest::prelude::*;

use super::moments;
use crate::sequential::SequentialJudge;
use crate::{Moments, SequentialSettings, Tally};

fn any_moments() -> impl Strategy<Value = Moments> {
    prop_oneof![
        3 => (0.0..300.0f64, -8.0..2.0f64, 0.0..2.0f64).prop_map(|(n, mean, sd)| moments(n.floor(), mean, sd)),
        1 => (any::<f64>(), any::<f64>(), any::<f64>()).prop_map(|(n, sum, sum_sq)| Moments { n, sum, sum_sq }),
    ]
}

fn any_count() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0..300u64, 1 => any::<u64>()]
}

fn any_tally() -> impl Strategy<Value = Tally> {
    (any_count(), any_count(), any_moments()).prop_map(|(requests, errors, log_latency)| Tally {
        requests,
        errors: errors.min(requests),
        log_latency,
    })
}

fn any_settings() -> impl Strategy<Value = SequentialSettings> {
    (
        0.0..0.2f64,
        any::<bool>(),
        any::<bool>(),
        0.5..5.0f64,
        0.5..3.0f64,
        prop_oneof![0..500u64, Just(u64::MAX)],
    )
        .prop_map(
            |(false_alarm_rate, errors, latency, min_error_ratio, min_latency_ratio, warmup)| {
                SequentialSettings {
                    false_alarm_rate,
                    errors,
                    latency,
                    min_error_ratio,
                    min_latency_ratio,
                    latency_warmup_requests: warmup,
                }
            },
        )
}

proptest! {
    #[test]
    fn evidence_stays_finite_and_failing_is_final(
        settings in any_settings(),
        slices in prop::collection::vec((any_tally(), any_tally()), 0..80),
    ) {
        let mut judge = SequentialJudge::new(settings);
        let mut at_failure = None;
        for (canary, baseline) in &slices {
            judge.observe(canary, baseline);
            let status = judge.status();
            if let Some(errors) = status.errors {
                prop_assert!(errors.log_evidence.is_finite(), "{errors:?}");
                prop_assert!(errors.canary_rate.is_none_or(f64::is_finite));
            }
            if let Some(latency) = status.latency {
                prop_assert!(latency.log_evidence.is_finite(), "{latency:?}");
                prop_assert!(latency.ratio.is_none_or(|r| r.is_finite() && r >= 0.0), "{latency:?}");
            }
            prop_assert_eq!(judge.failed(), status.failed.is_some());
            match &at_failure {
                Some(failed) => prop_assert_eq!(&status, failed),
                None if judge.failed() => at_failure = Some(status),
                None => {}
            }
        }
    }
}
