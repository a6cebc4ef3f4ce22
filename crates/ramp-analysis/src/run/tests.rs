//! A fake clock (explicit milliseconds) drives every rule of a run.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::spec::{BuiltinMetric, BuiltinQuery, Provider, Target};

const SECOND: Millis = 1_000;

/// A metric with Argo's defaults, decided by `result < 0.05` (success) and `result > 0.1`
/// (failure), so 0.01 succeeds, 0.5 fails and 0.07 is inconclusive.
fn metric(name: &str) -> Metric {
    Metric {
        success_condition: Some("result < 0.05".to_string()),
        failure_condition: Some("result > 0.1".to_string()),
        ..Metric::new(
            name,
            Provider::Builtin(BuiltinQuery {
                metric: BuiltinMetric::ErrorRate,
                target: Target::Canary,
                window: None,
            }),
        )
    }
}

fn every(seconds: u64, m: Metric) -> Metric {
    Metric {
        interval: Some(Duration::from_secs(seconds)),
        ..m
    }
}

fn start(metrics: Vec<Metric>) -> Run {
    let named = metrics.into_iter().map(|m| ("t".to_string(), m)).collect();
    Run::new(named, 0).expect("valid metrics")
}

/// `S`uccessful, `F`ailed, `I`nconclusive or `E`rror, through the conditions.
fn outcome(letter: char) -> Outcome {
    match letter {
        'S' => Outcome::Value(json!(0.01)),
        'F' => Outcome::Value(json!(0.5)),
        'I' => Outcome::Value(json!(0.07)),
        _ => Outcome::Error("provider unreachable".to_string()),
    }
}

/// Records `letters` for metric 0, each when it is due.
fn play(run: &mut Run, letters: &str) -> Vec<Phase> {
    letters
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|letter| {
            let now = run.next_due().expect("metric still scheduled");
            assert_eq!(run.due(now), vec![0]);
            run.record(0, outcome(letter), now);
            run.metrics[0].phase
        })
        .collect()
}

#[test]
fn limits_and_counts_decide_the_metric() {
    struct Case {
        what: &'static str,
        metric: Metric,
        letters: &'static str,
        phase: Phase,
        after: usize,
    }
    let case = |what, metric, letters, phase, after| Case {
        what,
        metric,
        letters,
        phase,
        after,
    };
    let m = || metric("m");
    let cases = [
        case("measured once", m(), "S", Phase::Successful, 1),
        case("measured once, failed", m(), "F", Phase::Failed, 1),
        case(
            "measured once, inconclusive",
            m(),
            "I",
            Phase::Inconclusive,
            1,
        ),
        case("an error is retried", m(), "E S", Phase::Successful, 2),
        case(
            "count reached",
            Metric {
                count: Some(3),
                ..every(10, m())
            },
            "S S S",
            Phase::Successful,
            3,
        ),
        case(
            "errors do not count towards count",
            Metric {
                count: Some(2),
                ..every(10, m())
            },
            "S E S",
            Phase::Successful,
            3,
        ),
        case(
            "failureLimit 0 fails at the first failure",
            Metric {
                count: Some(5),
                ..every(10, m())
            },
            "S F",
            Phase::Failed,
            2,
        ),
        case(
            "failureLimit is cumulative",
            Metric {
                count: Some(5),
                failure_limit: 1,
                ..every(10, m())
            },
            "F S F",
            Phase::Failed,
            3,
        ),
        case(
            "failures within the limit",
            Metric {
                count: Some(5),
                failure_limit: 1,
                ..every(10, m())
            },
            "F S S S S",
            Phase::Successful,
            5,
        ),
        case(
            "failureLimit -1 tolerates any number",
            Metric {
                count: Some(3),
                failure_limit: -1,
                ..every(10, m())
            },
            "F F F",
            Phase::Successful,
            3,
        ),
        case(
            "inconclusiveLimit is cumulative",
            Metric {
                count: Some(5),
                inconclusive_limit: 1,
                ..every(10, m())
            },
            "I S I",
            Phase::Inconclusive,
            3,
        ),
        case(
            "inconclusiveLimit -1 tolerates any number",
            Metric {
                count: Some(3),
                inconclusive_limit: -1,
                ..every(10, m())
            },
            "I I I",
            Phase::Successful,
            3,
        ),
        case(
            "default consecutiveErrorLimit is 4",
            every(10, m()),
            "E E E E E",
            Phase::Error,
            5,
        ),
        case(
            "a verdict resets the error streak",
            every(10, m()),
            "E E E E S E E E E",
            Phase::Running,
            usize::MAX,
        ),
        case(
            "consecutiveErrorLimit 0 errs at once",
            Metric {
                consecutive_error_limit: 0,
                ..every(10, m())
            },
            "E",
            Phase::Error,
            1,
        ),
        case(
            "consecutiveErrorLimit -1 retries forever",
            Metric {
                consecutive_error_limit: -1,
                ..every(10, m())
            },
            "E E E E E E E E E E",
            Phase::Running,
            usize::MAX,
        ),
        case(
            "consecutiveSuccessLimit ends early",
            Metric {
                failure_limit: 2,
                consecutive_success_limit: 2,
                ..every(10, m())
            },
            "S F S S",
            Phase::Successful,
            4,
        ),
        case(
            "an error breaks a success streak",
            Metric {
                consecutive_success_limit: 2,
                ..every(10, m())
            },
            "S E S S",
            Phase::Successful,
            4,
        ),
        case(
            "count without the success streak is inconclusive",
            Metric {
                count: Some(4),
                failure_limit: 1,
                consecutive_success_limit: 3,
                ..every(10, m())
            },
            "S F S S",
            Phase::Inconclusive,
            4,
        ),
        case(
            "count without the streak and unlimited failures fails",
            Metric {
                count: Some(4),
                failure_limit: -1,
                consecutive_success_limit: 3,
                ..every(10, m())
            },
            "S F S S",
            Phase::Failed,
            4,
        ),
        case(
            "interval only runs until stopped",
            every(10, m()),
            "S S S S S S S S",
            Phase::Running,
            usize::MAX,
        ),
    ];
    for c in cases {
        let mut run = start(vec![c.metric]);
        let phases = play(&mut run, c.letters);
        for (i, phase) in phases.iter().enumerate() {
            if i + 1 < c.after {
                assert!(!phase.is_completed(), "{}: completed early at {i}", c.what);
            } else {
                assert_eq!(*phase, c.phase, "{}: after measurement {}", c.what, i + 1);
            }
        }
        if c.after <= phases.len() {
            assert!(run.is_finished(), "{}", c.what);
            assert_eq!(run.phase(), c.phase, "{}", c.what);
            assert_eq!(run.next_due(), None, "{}", c.what);
        } else {
            assert_eq!(run.phase(), Phase::Running, "{}", c.what);
        }
    }
}

#[test]
fn counters_follow_each_measurement() {
    let mut run = start(vec![Metric {
        failure_limit: -1,
        inconclusive_limit: -1,
        ..every(10, metric("m"))
    }]);
    play(&mut run, "S S F I E E S");
    let m = &run.metrics[0];
    assert_eq!(
        (m.count, m.successful, m.failed, m.inconclusive, m.error),
        (5, 3, 1, 1, 2)
    );
    assert_eq!((m.consecutive_error, m.consecutive_success), (0, 1));
    let phases: Vec<MeasurementPhase> = m.measurements.iter().map(|x| x.phase).collect();
    use MeasurementPhase::*;
    assert_eq!(
        phases,
        [
            Successful,
            Successful,
            Failed,
            Inconclusive,
            Error,
            Error,
            Successful
        ]
    );
    assert_eq!(m.measurements[4].value, None);
    assert_eq!(m.measurements[2].value, Some(json!(0.5)));
}

#[test]
fn schedule_keeps_initial_delay_interval_and_error_retry() {
    let mut run = start(vec![Metric {
        initial_delay: Duration::from_secs(30),
        ..every(60, metric("m"))
    }]);
    assert_eq!(run.metrics[0].phase, Phase::Pending);
    assert_eq!(run.next_due(), Some(30 * SECOND));
    assert!(run.due(30 * SECOND - 1).is_empty());
    assert_eq!(run.due(30 * SECOND), vec![0]);

    run.record(0, outcome('S'), 31 * SECOND);
    assert_eq!(run.metrics[0].phase, Phase::Running);
    assert_eq!(
        run.next_due(),
        Some(91 * SECOND),
        "an interval after the record"
    );

    run.record(0, outcome('E'), 91 * SECOND);
    assert_eq!(
        run.next_due(),
        Some(91 * SECOND + ERROR_RETRY),
        "errors are retried sooner than the interval"
    );
}

#[test]
fn an_overdue_metric_is_due_once() {
    let mut run = start(vec![every(10, metric("m"))]);
    run.record(0, outcome('S'), 0);
    let late = 95 * SECOND;
    assert_eq!(
        run.due(late),
        vec![0],
        "nine missed intervals, one measurement"
    );
    run.record(0, outcome('S'), late);
    assert!(run.due(late).is_empty());
    assert_eq!(run.next_due(), Some(late + 10 * SECOND));
}

#[test]
fn a_judge_may_record_between_intervals() {
    let mut run = start(vec![Metric {
        count: Some(10),
        ..every(60, metric("m"))
    }]);
    run.record(0, outcome('S'), 0);
    run.record(
        0,
        Outcome::Judged {
            phase: MeasurementPhase::Failed,
            value: json!({"ratio": 3.0}),
            message: "canary errors 3x baseline".to_string(),
        },
        12 * SECOND,
    );
    assert_eq!(run.phase(), Phase::Failed);
    let last = run.metrics[0].last_measurement().unwrap();
    assert_eq!(last.at, 12 * SECOND);
    assert_eq!(last.message.as_deref(), Some("canary errors 3x baseline"));
    assert!(run.message().contains("canary errors 3x baseline"));
}

#[test]
fn conditions_decide_values_as_argo_does() {
    let only_success = Metric {
        failure_condition: None,
        ..metric("m")
    };
    let only_failure = Metric {
        success_condition: None,
        ..metric("m")
    };
    let neither = Metric {
        success_condition: None,
        failure_condition: None,
        ..metric("m")
    };
    let both_hold = Metric {
        success_condition: Some("result > 0.0".to_string()),
        failure_condition: Some("result > 0.1".to_string()),
        ..metric("m")
    };
    let cases = [
        (only_success.clone(), 0.01, Phase::Successful),
        (only_success, 0.07, Phase::Failed),
        (only_failure.clone(), 0.07, Phase::Successful),
        (only_failure, 0.5, Phase::Failed),
        (neither.clone(), 0.5, Phase::Successful),
        (metric("m"), 0.07, Phase::Inconclusive),
        (both_hold, 0.5, Phase::Failed),
    ];
    for (m, value, want) in cases {
        let what = format!(
            "{:?}/{:?} on {value}",
            m.success_condition, m.failure_condition
        );
        let mut run = start(vec![m]);
        run.record(0, Outcome::Value(json!(value)), 0);
        assert_eq!(run.phase(), want, "{what}");
    }
}

#[test]
fn a_condition_that_cannot_be_evaluated_is_an_error_measurement() {
    let mut run = start(vec![metric("m")]);
    run.record(0, Outcome::Value(json!("not a number")), 0);
    let m = &run.metrics[0];
    assert_eq!((m.error, m.count, m.phase), (1, 0, Phase::Running));
    let last = m.last_measurement().unwrap();
    assert_eq!(last.phase, MeasurementPhase::Error);
    assert!(last.message.as_deref().unwrap().contains("result < 0.05"));
    assert_eq!(last.value, Some(json!("not a number")));
}

#[test]
fn only_the_latest_measurements_are_kept() {
    let mut run = start(vec![every(10, metric("m"))]);
    play(&mut run, &"S".repeat(MEASUREMENT_HISTORY + 5));
    let m = &run.metrics[0];
    assert_eq!(m.measurements.len(), MEASUREMENT_HISTORY);
    assert_eq!(m.count as usize, MEASUREMENT_HISTORY + 5);
    assert_eq!(
        m.measurements[0].at,
        50 * SECOND,
        "the five oldest were dropped"
    );
}

#[test]
fn severity_orders_phases() {
    let mut phases = [
        Phase::Failed,
        Phase::Pending,
        Phase::Error,
        Phase::Successful,
        Phase::Inconclusive,
        Phase::Running,
    ];
    phases.sort_by_key(|p| p.severity());
    assert_eq!(
        phases,
        [
            Phase::Successful,
            Phase::Running,
            Phase::Pending,
            Phase::Inconclusive,
            Phase::Error,
            Phase::Failed
        ]
    );
    let completed: Vec<Phase> = phases.into_iter().filter(|p| p.is_completed()).collect();
    assert_eq!(
        completed,
        [
            Phase::Successful,
            Phase::Inconclusive,
            Phase::Error,
            Phase::Failed
        ]
    );
}

#[test]
fn the_run_waits_for_every_metric_and_stops_on_request() {
    let mut run = start(vec![
        Metric {
            count: Some(2),
            ..every(10, metric("counted"))
        },
        every(10, metric("background")),
        Metric {
            initial_delay: Duration::from_secs(3600),
            ..every(10, metric("late"))
        },
    ]);
    assert_eq!(run.due(0), vec![0, 1]);
    run.record(0, outcome('S'), 0);
    run.record(1, outcome('S'), 0);
    run.record(0, outcome('S'), 10 * SECOND);
    assert_eq!(run.metrics[0].phase, Phase::Successful);
    assert_eq!(run.phase(), Phase::Running);
    assert!(!run.is_finished());
    assert!(
        run.message().starts_with("running: 1 of 3"),
        "{}",
        run.message()
    );

    run.stop(20 * SECOND);
    assert!(run.is_finished());
    assert_eq!(run.finished, Some(20 * SECOND));
    assert_eq!(run.phase(), Phase::Successful);
    assert_eq!(run.metrics[1].phase, Phase::Successful);
    assert_eq!(run.metrics[2].phase, Phase::Successful);
    let late = run.metrics[2].message.as_deref().unwrap();
    assert!(late.contains("before the first measurement"), "{late}");
    assert!(run.due(u64::MAX).is_empty());
    assert!(run.message().contains("t/counted (count (2) reached)"));
}

#[test]
fn a_bad_metric_terminates_the_run() {
    for (letter, phase) in [
        ('F', Phase::Failed),
        ('I', Phase::Inconclusive),
        ('E', Phase::Error),
    ] {
        let mut run = start(vec![
            Metric {
                consecutive_error_limit: 0,
                ..every(10, metric("bad"))
            },
            every(10, metric("good")),
        ]);
        run.record(1, outcome('S'), 0);
        run.record(0, outcome(letter), 0);
        assert_eq!(run.phase(), phase);
        assert!(run.is_finished());
        assert_eq!(run.finished, Some(0));
        assert_eq!(run.metrics[1].phase, Phase::Successful);
        assert!(
            run.metrics[1]
                .message
                .as_deref()
                .unwrap()
                .contains("run terminated: t/bad")
        );
        let before = run.clone();
        run.record(1, outcome('F'), 10 * SECOND);
        assert_eq!(run, before, "records after the end are ignored");
    }
}

#[test]
fn dry_run_metrics_never_affect_the_run() {
    let mut run = start(vec![
        Metric {
            dry_run: true,
            ..every(10, metric("shadow"))
        },
        Metric {
            count: Some(2),
            ..every(10, metric("real"))
        },
    ]);
    run.record(0, outcome('F'), 0);
    run.record(1, outcome('S'), 0);
    assert_eq!(run.metrics[0].phase, Phase::Failed);
    assert_eq!(run.phase(), Phase::Running);
    assert!(!run.is_finished());
    assert_eq!(
        run.dry_run_summary(),
        vec![("t/shadow".to_string(), Phase::Failed)]
    );

    run.record(1, outcome('S'), 10 * SECOND);
    assert_eq!(run.phase(), Phase::Successful);
    assert!(run.is_finished());
}

#[test]
fn a_running_dry_run_metric_keeps_the_run_running_until_stopped() {
    let mut run = start(vec![
        Metric {
            dry_run: true,
            ..every(10, metric("shadow"))
        },
        metric("once"),
    ]);
    run.record(1, outcome('S'), 0);
    assert_eq!(run.phase(), Phase::Running);
    run.stop(5 * SECOND);
    assert_eq!(run.phase(), Phase::Successful);
    assert_eq!(
        run.dry_run_summary(),
        vec![("t/shadow".to_string(), Phase::Successful)]
    );
}

#[test]
fn the_message_names_the_deciding_metric() {
    let mut run = start(vec![
        every(10, metric("fine")),
        Metric {
            failure_condition: None,
            ..every(10, metric("error-rate"))
        },
    ]);
    run.record(0, outcome('S'), 0);
    run.record(1, Outcome::Value(json!(0.5)), 0);
    let message = run.message();
    for part in [
        "t/error-rate Failed",
        "failed (1) > failureLimit (0)",
        "0.5",
        "successCondition `result < 0.05`",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    assert!(!message.contains("t/fine"), "{message}");
}

#[test]
fn invalid_metrics_are_refused_with_a_reason() {
    let named = |m: Metric| vec![("tmpl".to_string(), m)];
    let cases = [
        (
            named(Metric {
                success_condition: Some("result <".to_string()),
                ..metric("m")
            }),
            "tmpl/m: successCondition",
        ),
        (
            named(Metric {
                failure_condition: Some("nope(result)".to_string()),
                ..metric("m")
            }),
            "tmpl/m: failureCondition",
        ),
        (
            named(Metric {
                count: Some(3),
                ..metric("m")
            }),
            "interval must be specified",
        ),
        (
            named(Metric {
                failure_limit: -2,
                ..metric("m")
            }),
            "failureLimit",
        ),
        (named(every(0, metric("m"))), "longer than 0s"),
        (
            vec![
                ("tmpl".to_string(), metric("m")),
                ("tmpl".to_string(), metric("m")),
            ],
            "listed twice",
        ),
        (Vec::new(), "at least one metric"),
    ];
    for (metrics, want) in cases {
        let err = Run::new(metrics, 0).unwrap_err();
        assert!(err.contains(want), "{want:?} missing from {err}");
    }
    let same_name_other_template = vec![
        ("a".to_string(), metric("m")),
        ("b".to_string(), metric("m")),
    ];
    assert!(Run::new(same_name_other_template, 0).is_ok());
}

#[test]
fn a_run_resumes_after_a_round_trip_through_json() {
    let metrics = || {
        vec![
            Metric {
                count: Some(4),
                failure_limit: 1,
                ..every(10, metric("counted"))
            },
            Metric {
                dry_run: true,
                ..every(10, metric("shadow"))
            },
        ]
    };
    let mut run = start(metrics());
    run.record(0, outcome('S'), 0);
    run.record(0, outcome('F'), 10 * SECOND);
    run.record(1, outcome('E'), 0);

    let stored = serde_json::to_string(&run).unwrap();
    let mut resumed: Run = serde_json::from_str(&stored).unwrap();
    assert_eq!(resumed, run);
    assert_eq!(resumed.metric(0), &metrics()[0]);
    assert_eq!(resumed.next_due(), run.next_due());

    for r in [&mut run, &mut resumed] {
        r.record(0, outcome('S'), 20 * SECOND);
        r.record(0, outcome('F'), 30 * SECOND);
    }
    assert_eq!(resumed, run);
    assert_eq!(
        resumed.phase(),
        Phase::Failed,
        "the restored conditions still decide"
    );
}

#[test]
fn a_stored_run_that_does_not_match_its_specs_is_refused() {
    let run = start(vec![metric("m")]);
    let mut stored = serde_json::to_value(&run).unwrap();
    stored["metrics"][0]["name"] = json!("other");
    assert!(serde_json::from_value::<Run>(stored.clone()).is_err());
    stored["plans"] = json!([]);
    assert!(serde_json::from_value::<Run>(stored).is_err());

    let mut stored = serde_json::to_value(&run).unwrap();
    stored["plans"][0]["metric"]["successCondition"] = json!("result <");
    let err = serde_json::from_value::<Run>(stored)
        .unwrap_err()
        .to_string();
    assert!(err.contains("successCondition"), "{err}");
}

#[test]
fn records_for_unknown_metrics_are_ignored() {
    let mut run = start(vec![metric("m")]);
    let before = run.clone();
    run.record(7, outcome('F'), 0);
    assert_eq!(run, before);
}
