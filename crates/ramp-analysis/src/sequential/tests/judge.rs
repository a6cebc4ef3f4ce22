//! The judge's bookkeeping: thresholds, latching, totals, summaries and awkward input.

use super::{moments, slice};
use crate::sequential::{FailedCheck, SequentialJudge};
use crate::{Moments, SequentialSettings, Tally};

/// A typical slice of one side: `requests` requests, `errors` errors, 50 ms median latency.
fn typical(requests: u64, errors: u64) -> Tally {
    slice(
        requests,
        errors,
        moments(requests as f64, 0.05f64.ln(), 0.5),
    )
}

fn assert_finite_evidence(judge: &SequentialJudge) {
    let status = judge.status();
    if let Some(errors) = status.errors {
        assert!(
            errors.log_evidence.is_finite() && errors.log_threshold.is_finite(),
            "{errors:?}"
        );
    }
    if let Some(latency) = status.latency {
        assert!(
            latency.log_evidence.is_finite() && latency.log_threshold.is_finite(),
            "{latency:?}"
        );
        assert!(latency.ratio.is_none_or(f64::is_finite), "{latency:?}");
    }
}

#[test]
fn the_false_alarm_rate_is_split_between_the_checks_that_are_on() {
    // Three quarters of 1% to errors, one quarter to latency.
    let both = SequentialJudge::new(SequentialSettings::default()).status();
    assert!((both.errors.unwrap().log_threshold - (1.0f64 / 0.0075).ln()).abs() < 1e-12);
    assert!((both.latency.unwrap().log_threshold - 400f64.ln()).abs() < 1e-12);
    let one = SequentialJudge::new(SequentialSettings {
        latency: false,
        ..Default::default()
    })
    .status();
    assert!((one.errors.unwrap().log_threshold - 100f64.ln()).abs() < 1e-12);
    assert_eq!(one.latency, None);
    // A check that is on alone has the whole budget, whichever it is.
    let latency_only = SequentialJudge::new(SequentialSettings {
        errors: false,
        ..Default::default()
    })
    .status();
    assert!((latency_only.latency.unwrap().log_threshold - 100f64.ln()).abs() < 1e-12);
    assert_eq!(latency_only.errors, None);
}

#[test]
fn a_failed_judge_stays_failed_and_keeps_the_evidence_that_failed_it() {
    let mut judge = SequentialJudge::new(SequentialSettings::default());
    while !judge.failed() {
        judge.observe(&typical(20, 4), &typical(180, 1));
    }
    let at_failure = judge.status();
    assert_eq!(at_failure.failed, Some(FailedCheck::Errors));
    let errors = at_failure.errors.unwrap();
    assert!(errors.log_evidence >= errors.log_threshold);
    for _ in 0..100 {
        judge.observe(&typical(20, 0), &typical(180, 10));
    }
    assert!(judge.failed());
    assert_eq!(judge.status(), at_failure);
}

#[test]
fn totals_add_up_the_slices() {
    let mut judge = SequentialJudge::new(SequentialSettings::default());
    judge.observe(&typical(20, 1), &typical(180, 2));
    judge.observe(&typical(30, 0), &typical(170, 3));
    let status = judge.status();
    assert_eq!((status.canary.requests, status.canary.errors), (50, 1));
    assert_eq!((status.baseline.requests, status.baseline.errors), (350, 5));
    assert_eq!(status.canary.log_latency.n, 50.0);
    assert_eq!(status.errors.unwrap().canary_rate, Some(0.02));
}

#[test]
fn empty_slices_carry_no_evidence() {
    let mut judge = SequentialJudge::new(SequentialSettings::default());
    for _ in 0..1_000 {
        judge.observe(&Tally::default(), &Tally::default());
    }
    let status = judge.status();
    assert_eq!(status.failed, None);
    assert_eq!(status.errors.unwrap().log_evidence, 0.0);
    assert_eq!(status.errors.unwrap().canary_rate, None);
    assert_eq!(status.latency.unwrap().log_evidence, 0.0);
    assert_eq!(status.latency.unwrap().ratio, None);
}

#[test]
fn a_side_without_requests_carries_no_evidence() {
    let mut judge = SequentialJudge::new(SequentialSettings::default());
    for _ in 0..1_000 {
        judge.observe(&Tally::default(), &typical(200, 50));
        judge.observe(&typical(200, 50), &Tally::default());
    }
    let status = judge.status();
    assert_eq!(status.failed, None);
    assert_eq!(status.errors.unwrap().log_evidence, 0.0);
    assert_eq!(status.latency.unwrap().ratio, None);
}

#[test]
fn no_errors_ever_is_no_evidence() {
    let mut judge = SequentialJudge::new(SequentialSettings {
        latency: false,
        ..Default::default()
    });
    for _ in 0..1_000 {
        judge.observe(&typical(20, 0), &typical(180, 0));
    }
    assert_eq!(judge.status().errors.unwrap().log_evidence, 0.0);
}

#[test]
fn non_finite_and_negative_moments_are_ignored() {
    let mut judge = SequentialJudge::new(SequentialSettings::default());
    let broken = [
        Moments {
            n: f64::NAN,
            sum: 1.0,
            sum_sq: 1.0,
        },
        Moments {
            n: 10.0,
            sum: f64::INFINITY,
            sum_sq: 1.0,
        },
        Moments {
            n: 10.0,
            sum: -30.0,
            sum_sq: f64::NAN,
        },
        Moments {
            n: -5.0,
            sum: -15.0,
            sum_sq: 45.0,
        },
        Moments {
            n: 0.5,
            sum: -1.5,
            sum_sq: 4.5,
        },
    ];
    for moments in broken {
        judge.observe(&slice(20, 0, moments), &typical(180, 0));
        judge.observe(&typical(180, 0), &slice(20, 0, moments));
        assert_finite_evidence(&judge);
    }
    let status = judge.status();
    assert_eq!(status.latency.unwrap().ratio, None);
    // Totals keep the finite, positive-weight moments only.
    let mut expected = Moments {
        n: 0.5,
        sum: -1.5,
        sum_sq: 4.5,
    };
    for _ in 0..broken.len() {
        expected.merge(&typical(180, 0).log_latency);
    }
    assert_eq!(status.canary.log_latency, expected);
}

#[test]
fn zero_variance_gives_a_ratio_but_no_latency_evidence() {
    let mut judge = SequentialJudge::new(SequentialSettings::default());
    for _ in 0..100 {
        judge.observe(
            &slice(20, 0, moments(20.0, -2.9, 0.0)),
            &slice(180, 0, moments(180.0, -3.0, 0.0)),
        );
    }
    let latency = judge.status().latency.unwrap();
    assert_eq!(latency.log_evidence, 0.0);
    assert!((latency.ratio.unwrap() - 0.1f64.exp()).abs() < 1e-9);
    assert!(!judge.failed());
}

#[test]
fn out_of_range_settings_neither_panic_nor_poison_the_evidence() {
    for value in [
        f64::NAN,
        f64::NEG_INFINITY,
        -1.0,
        0.0,
        1.0,
        1e300,
        f64::INFINITY,
    ] {
        let settings = SequentialSettings {
            false_alarm_rate: value,
            min_error_ratio: value,
            min_latency_ratio: value,
            ..SequentialSettings::default()
        };
        let mut judge = SequentialJudge::new(settings);
        let status = judge.status();
        assert!(status.errors.unwrap().log_threshold > 0.0, "{value}");
        assert!(status.latency.unwrap().log_threshold > 0.0, "{value}");
        for _ in 0..50 {
            judge.observe(&typical(20, 1), &typical(180, 2));
            assert_finite_evidence(&judge);
        }
    }
}

#[test]
fn huge_counts_saturate_instead_of_overflowing() {
    let mut judge = SequentialJudge::new(SequentialSettings::default());
    let huge = slice(u64::MAX, u64::MAX, moments(1e300, -3.0, 0.5));
    judge.observe(&huge, &huge);
    judge.observe(&huge, &typical(10, 1));
    assert_eq!(judge.status().canary.requests, u64::MAX);
    assert_finite_evidence(&judge);
}

#[test]
fn latency_differences_beyond_float_range_are_ignored() {
    let mut judge = SequentialJudge::new(SequentialSettings {
        latency_warmup_requests: 0,
        ..Default::default()
    });
    judge.observe(&typical(20, 0), &typical(180, 0));
    let high = slice(
        1,
        0,
        Moments {
            n: 1.0,
            sum: 1.5e308,
            sum_sq: 0.0,
        },
    );
    let low = slice(
        1,
        0,
        Moments {
            n: 1.0,
            sum: -1.5e308,
            sum_sq: 0.0,
        },
    );
    judge.observe(&high, &low);
    judge.observe(&low, &high);
    assert_finite_evidence(&judge);
    assert!((judge.status().latency.unwrap().ratio.unwrap() - 1.0).abs() < 0.2);
}

#[test]
fn with_both_checks_off_nothing_fails() {
    let mut judge = SequentialJudge::new(SequentialSettings {
        errors: false,
        latency: false,
        ..Default::default()
    });
    for _ in 0..100 {
        judge.observe(&slice(20, 20, moments(20.0, 1.0, 0.5)), &typical(180, 0));
    }
    let status = judge.status();
    assert!(!judge.failed());
    assert_eq!((status.errors, status.latency), (None, None));
    assert_eq!(status.summary(), "no checks on");
}

#[test]
fn the_summary_reads_as_one_line() {
    let mut judge = SequentialJudge::new(SequentialSettings::default());
    assert_eq!(
        judge.status().summary(),
        "errors n/a vs n/a (evidence 0.0 of 4.9 needed); \
         latency warming up (100 canary requests to go)"
    );
    // The first 100 canary requests are the latency check's warm-up.
    judge.observe(&typical(50, 0), &typical(500, 5));
    judge.observe(&typical(50, 1), &typical(500, 5));
    assert!(
        judge
            .status()
            .summary()
            .ends_with("; latency n/a (evidence 0.0 of 6.0 needed)"),
        "{}",
        judge.status().summary()
    );
    judge.observe(&typical(100, 5), &typical(1_000, 10));
    let summary = judge.status().summary();
    assert!(
        summary.starts_with("errors 3.0% vs 1.0% (evidence "),
        "{summary}"
    );
    assert!(
        summary.contains(" of 4.9 needed); latency x1.00 (evidence "),
        "{summary}"
    );
    while !judge.failed() {
        judge.observe(&slice(20, 0, moments(20.0, 0.0, 0.5)), &typical(180, 0));
    }
    let summary = judge.status().summary();
    assert!(
        summary.starts_with("failed on latency: errors "),
        "{summary}"
    );
    assert!(!summary.contains('\n'));
}

#[test]
fn the_status_serializes_in_camel_case() {
    let mut judge = SequentialJudge::new(SequentialSettings {
        latency: false,
        ..Default::default()
    });
    while !judge.failed() {
        judge.observe(&typical(20, 5), &typical(180, 0));
    }
    let json = serde_json::to_value(judge.status()).unwrap();
    assert_eq!(json["failed"], "errors");
    assert_eq!(json["errors"]["canaryRate"], 0.25);
    assert!(
        json["errors"]["logEvidence"].as_f64().unwrap()
            >= json["errors"]["logThreshold"].as_f64().unwrap()
    );
    assert!(json["latency"].is_null());
    assert_eq!(
        json["canary"]["logLatency"]["n"],
        judge.status().canary.log_latency.n
    );
}
