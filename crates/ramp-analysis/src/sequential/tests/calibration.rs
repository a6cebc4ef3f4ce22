//! False alarms and detection on simulated traffic (1 s slices, 200 requests a second, 10%
//! to the canary, 1% errors, 50 ms median latency).

use std::f64::consts::TAU;

use super::sim::{SliceModel, first_failure};
use crate::SequentialSettings;
use crate::sequential::FailedCheck;

const RUNS: u64 = 300;
const SLICES: usize = 3_000;

/// The configured false-alarm rate is 1%. If the judge's true rate were 1%, more than 2% of
/// 300 runs (i.e. 7 or more) would alarm with probability about 3%; a rate well above 1%
/// would exceed the bound almost surely. The seeds are fixed, so the outcome is reproducible.
const MAX_FALSE_ALARMS: usize = (RUNS as usize) * 2 / 100;

fn false_alarms(model: impl Fn(usize) -> SliceModel + Copy) -> usize {
    (0..RUNS)
        .filter(|&seed| first_failure(SequentialSettings::default(), seed, SLICES, model).is_some())
        .count()
}

#[test]
fn an_a_a_canary_rarely_fails_however_long_it_is_watched() {
    let alarms = false_alarms(|_| SliceModel::a_a());
    assert!(
        alarms <= MAX_FALSE_ALARMS,
        "{alarms} of {RUNS} A/A runs failed"
    );
}

#[test]
fn drift_shared_by_both_sides_cancels() {
    // Errors +-50% over 10 minutes, latency +-30% over 7 minutes, and the canary's share
    // moving between 5% and 15% over 4 minutes.
    let alarms = false_alarms(|t| {
        let wave = |period: f64| (TAU * t as f64 / period).sin();
        let mut model = SliceModel::a_a();
        model.canary_share = 0.1 + 0.05 * wave(240.0);
        for side in [&mut model.canary, &mut model.baseline] {
            side.error_rate *= 1.0 + 0.5 * wave(600.0);
            side.median_seconds *= 1.0 + 0.3 * wave(420.0);
        }
        model
    });
    assert!(
        alarms <= MAX_FALSE_ALARMS,
        "{alarms} of {RUNS} drifting runs failed"
    );
}

/// Over 50 seeds, the slices each took to fail (`None` = never, within `slices`).
fn detections(
    slices: usize,
    model: impl Fn(usize) -> SliceModel + Copy,
) -> Vec<Option<(usize, FailedCheck)>> {
    (1000..1050)
        .map(|seed| first_failure(SequentialSettings::default(), seed, slices, model))
        .collect()
}

fn detected_within(
    found: &[Option<(usize, FailedCheck)>],
    check: FailedCheck,
    slices: usize,
) -> usize {
    found
        .iter()
        .filter(|f| matches!(f, Some((t, c)) if *c == check && *t <= slices))
        .count()
}

#[test]
fn five_times_the_errors_are_caught_within_thirty_seconds() {
    let found = detections(60, |_| {
        let mut model = SliceModel::a_a();
        model.canary.error_rate = 0.05;
        model
    });
    let caught = detected_within(&found, FailedCheck::Errors, 30);
    assert!(caught >= 45, "{caught} of 50 within 30 s: {found:?}");
}

#[test]
fn fifty_percent_slower_is_caught_within_seconds_of_the_warmup() {
    // The default warm-up is the canary's first 100 requests: five seconds at 20 a second.
    let found = detections(20, |_| {
        let mut model = SliceModel::a_a();
        model.canary.median_seconds *= 1.5;
        model
    });
    let caught = detected_within(&found, FailedCheck::Latency, 10);
    assert!(
        caught >= 45,
        "{caught} of 50 within 5 s of the warm-up: {found:?}"
    );
    let too_soon = detected_within(&found, FailedCheck::Latency, 5);
    assert_eq!(too_soon, 0, "judged during the warm-up: {found:?}");
}

#[test]
fn ten_percent_slower_is_caught_within_a_minute() {
    let found = detections(120, |_| {
        let mut model = SliceModel::a_a();
        model.canary.median_seconds *= 1.1;
        model
    });
    let caught = detected_within(&found, FailedCheck::Latency, 60);
    assert!(caught >= 45, "{caught} of 50 within 60 s: {found:?}");
}

#[test]
fn an_improving_canary_never_fails() {
    let found = detections(SLICES, |_| {
        let mut model = SliceModel::a_a();
        model.canary.error_rate = 0.002;
        model.canary.median_seconds *= 0.7;
        model
    });
    assert!(found.iter().all(Option::is_none), "{found:?}");
}
