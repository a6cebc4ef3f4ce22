//! Properties of runs over random metrics and measurement sequences.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::spec::{BuiltinMetric, BuiltinQuery, Provider, Target};

/// What the caller does next.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Records a measurement with this phase for a metric, after waiting this long.
    Record(usize, MeasurementPhase, Millis),
    /// Stops the run.
    Stop,
}

fn measurement_phase() -> impl Strategy<Value = MeasurementPhase> {
    prop_oneof![
        Just(MeasurementPhase::Successful),
        Just(MeasurementPhase::Failed),
        Just(MeasurementPhase::Inconclusive),
        Just(MeasurementPhase::Error),
    ]
}

fn step(metrics: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        30 => (0..metrics, measurement_phase(), 0..30_000u64)
            .prop_map(|(i, p, wait)| Step::Record(i, p, wait)),
        1 => Just(Step::Stop),
    ]
}

fn metric_spec() -> impl Strategy<Value = Metric> {
    (
        (-1i32..4, -1i32..3, -1i32..5, 0u32..4),
        prop::option::of(1u32..8),
        prop::option::of(1u64..60),
        any::<bool>(),
    )
        .prop_map(
            |((failure, inconclusive, errors, successes), count, interval, dry_run)| {
                let interval = interval.map(Duration::from_secs);
                Metric {
                    interval,
                    count: if interval.is_some() { count } else { None },
                    failure_limit: failure,
                    inconclusive_limit: inconclusive,
                    consecutive_error_limit: errors,
                    consecutive_success_limit: successes,
                    dry_run,
                    ..base_metric()
                }
            },
        )
}

fn judged(phase: MeasurementPhase) -> Outcome {
    match phase {
        MeasurementPhase::Error => Outcome::Error("unreachable".to_string()),
        phase => Outcome::Judged {
            phase,
            value: json!(null),
            message: String::new(),
        },
    }
}

fn start(metrics: Vec<Metric>) -> Run {
    let named = metrics
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let name = format!("m{i}");
            ("t".to_string(), Metric { name, ..m })
        })
        .collect();
    Run::new(named, 0).expect("valid metrics")
}

proptest! {
    #[test]
    fn completed_never_runs_again(
        (metrics, steps) in prop::collection::vec(metric_spec(), 1..4).prop_flat_map(|metrics| {
            let n = metrics.len();
            (Just(metrics), prop::collection::vec(step(n), 0..60))
        })
    ) {
        let mut run = start(metrics);
        let mut now = 0;
        for step in steps {
            let before = run.clone();
            match step {
                Step::Record(i, phase, wait) => {
                    now += wait;
                    run.record(i, judged(phase), now);
                }
                Step::Stop => run.stop(now),
            }
            for (old, new) in before.metrics.iter().zip(&run.metrics) {
                if old.phase.is_completed() {
                    prop_assert_eq!(old, new, "a completed metric changed");
                }
            }
            if before.phase().is_completed() && before.is_finished() {
                prop_assert_eq!(&before, &run, "a finished run changed");
            }
            if before.phase().is_bad() {
                prop_assert_eq!(run.phase(), before.phase());
            }
            prop_assert_eq!(run.is_finished(), run.finished.is_some());
            prop_assert_eq!(run.is_finished(), run.next_due().is_none());
            prop_assert!(!run.is_finished() || run.phase().is_completed());
        }
    }

    #[test]
    fn failed_exactly_when_failures_pass_the_limit(
        failure_limit in -1i32..5,
        count in prop::option::of(1u32..30),
        phases in prop::collection::vec(measurement_phase(), 0..40),
    ) {
        let mut run = start(vec![Metric {
            interval: Some(Duration::from_secs(10)),
            count,
            failure_limit,
            inconclusive_limit: -1,
            consecutive_error_limit: -1,
            consecutive_success_limit: 0,
            ..base_metric()
        }]);
        for phase in phases {
            let now = run.next_due().unwrap_or(u64::MAX);
            run.record(0, judged(phase), now);
            let m = &run.metrics[0];
            let over = failure_limit >= 0 && i64::from(m.failed) > i64::from(failure_limit);
            prop_assert_eq!(m.phase == Phase::Failed, over);
            prop_assert_eq!(run.phase() == Phase::Failed, over);
        }
    }
}

/// Argo's defaults, no conditions.
fn base_metric() -> Metric {
    Metric::new(
        "",
        Provider::Builtin(BuiltinQuery {
            metric: BuiltinMetric::ErrorRate,
            target: Target::Canary,
            window: None,
        }),
    )
}
