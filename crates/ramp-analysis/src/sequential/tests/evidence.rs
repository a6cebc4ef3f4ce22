//! The checks' evidence against the method's formulas, computed independently.

use super::{moments, slice};
use crate::sequential::SequentialJudge;
use crate::sequential::errors::ErrorCheck;
use crate::{SequentialSettings, Tally};

fn errors_only() -> SequentialSettings {
    SequentialSettings {
        latency: false,
        ..SequentialSettings::default()
    }
}

/// The latency check alone, judging from the first request.
fn latency_only() -> SequentialSettings {
    SequentialSettings {
        errors: false,
        latency_warmup_requests: 0,
        ..SequentialSettings::default()
    }
}

#[test]
fn the_error_grid_starts_at_the_smallest_ratio_and_is_capped() {
    let ratios: Vec<f64> = ErrorCheck::new(1.5, 5.0).ratios().collect();
    let expected: Vec<f64> = (0..8).map(|k| 1.5 * 1.5f64.powi(k)).collect();
    for (got, want) in ratios.iter().zip(&expected) {
        assert!((got - want).abs() < 1e-9, "{ratios:?}");
    }
    let capped: Vec<f64> = ErrorCheck::new(50.0, 5.0).ratios().collect();
    assert_eq!(capped[..3], [50.0, 75.0, 100.0]);
    assert!(capped.iter().all(|&r| r <= 100.0));
    let large: Vec<f64> = ErrorCheck::new(500.0, 5.0).ratios().collect();
    assert!(large.iter().all(|&r| r == 500.0), "{large:?}");
}

/// `ln(mean over the grid of prod over slices of LR)`, straight from the binomial model.
fn error_mixture(slices: &[(Tally, Tally)]) -> f64 {
    let average: f64 = (0..8)
        .map(|k| {
            let rho = 1.5 * 1.5f64.powi(k);
            slices
                .iter()
                .filter(|(c, b)| c.requests > 0 && b.requests > 0)
                .map(|(c, b)| {
                    let pi = c.requests as f64 / (c.requests + b.requests) as f64;
                    let pi1 = rho * pi / (rho * pi + 1.0 - pi);
                    (pi1 / pi).powi(c.errors as i32)
                        * ((1.0 - pi1) / (1.0 - pi)).powi(b.errors as i32)
                })
                .product::<f64>()
        })
        .sum::<f64>()
        / 8.0;
    average.ln()
}

#[test]
fn error_evidence_is_the_grid_average_of_binomial_likelihood_ratios() {
    let slices = [
        (
            slice(20, 2, moments(20.0, -3.0, 0.5)),
            slice(180, 1, moments(180.0, -3.0, 0.5)),
        ),
        (
            slice(0, 0, moments(0.0, 0.0, 0.0)),
            slice(180, 3, moments(180.0, -3.0, 0.5)),
        ),
        (
            slice(35, 0, moments(35.0, -3.0, 0.5)),
            slice(165, 4, moments(165.0, -3.0, 0.5)),
        ),
        (
            slice(10, 3, moments(10.0, -3.0, 0.5)),
            slice(190, 0, moments(190.0, -3.0, 0.5)),
        ),
    ];
    let mut judge = SequentialJudge::new(errors_only());
    for (seen, (canary, baseline)) in slices.iter().enumerate() {
        judge.observe(canary, baseline);
        let got = judge.status().errors.unwrap().log_evidence;
        let want = error_mixture(&slices[..=seen]);
        assert!(
            (got - want).abs() < 1e-9,
            "after {} slices: {got} vs {want}",
            seen + 1
        );
    }
    assert!(!judge.failed());
}

/// The mixture of normal likelihood ratios over increases `tau * {1, 2, 4, 8}`, directly.
fn latency_mixture(delta_hat: f64, v: f64, tau: f64) -> f64 {
    [1.0, 2.0, 4.0, 8.0]
        .iter()
        .map(|k| {
            let d = tau * k;
            ((d * delta_hat - d * d / 2.0) / v).exp() / 4.0
        })
        .sum()
}

#[test]
fn latency_evidence_is_the_grid_mixture_of_likelihood_ratios() {
    let tau = 1.1f64.ln();
    let sigma = 0.5;
    for difference in [-0.05, 0.0, 0.03, 0.08] {
        let mut judge = SequentialJudge::new(latency_only());
        let mut weight = 0.0;
        for (nc, nb) in [(20.0, 180.0), (12.0, 150.0), (30.0, 90.0)] {
            let canary = moments(nc, -3.0 + difference, sigma);
            let baseline = moments(nb, -3.0, sigma);
            judge.observe(&slice(nc as u64, 0, canary), &slice(nb as u64, 0, baseline));
            weight += 1.0 / (1.0 / nc + 1.0 / nb);
        }
        let status = judge.status().latency.unwrap();
        assert!((status.ratio.unwrap().ln() - difference).abs() < 1e-9);
        let want = latency_mixture(difference, sigma * sigma / weight, tau).ln();
        assert!(
            (status.log_evidence - want).abs() < 1e-6,
            "{difference}: {} vs {want}",
            status.log_evidence
        );
    }
}

#[test]
fn a_negligible_slowdown_is_never_failed_however_long_it_runs() {
    // 3% slower (below half of the 10% worth detecting), exactly, for a million latencies a
    // side: the evidence only shrinks. 15% slower: it fails.
    for (slower, fails) in [(1.03f64, false), (1.15, true)] {
        let mut judge = SequentialJudge::new(latency_only());
        for _ in 0..10_000 {
            judge.observe(
                &slice(100, 0, moments(100.0, -3.0 + slower.ln(), 0.5)),
                &slice(100, 0, moments(100.0, -3.0, 0.5)),
            );
        }
        assert_eq!(
            judge.failed(),
            fails,
            "{slower}: {}",
            judge.status().summary()
        );
    }
}

#[test]
fn latency_is_not_tested_before_the_variance_has_settled() {
    let mut judge = SequentialJudge::new(latency_only());
    // 19 canary latencies, each far slower: too few to test.
    judge.observe(
        &slice(19, 0, moments(19.0, 0.0, 0.5)),
        &slice(500, 0, moments(500.0, -3.0, 0.5)),
    );
    assert_eq!(judge.status().latency.unwrap().log_evidence, 0.0);
    judge.observe(
        &slice(1, 0, moments(1.0, 0.0, 0.5)),
        &slice(1, 0, moments(1.0, -3.0, 0.5)),
    );
    assert!(judge.failed(), "{}", judge.status().summary());
}

#[test]
fn the_canarys_warmup_requests_are_left_out_of_the_latency_check() {
    let settings = SequentialSettings {
        latency_warmup_requests: 100,
        ..latency_only()
    };
    let mut judge = SequentialJudge::new(settings);
    let slow = || slice(30, 0, moments(30.0, 0.0, 0.5));
    let usual = || slice(170, 0, moments(170.0, -3.0, 0.5));
    // Slices holding the first 100 canary requests (0-29, 30-59, 60-89, 90-119) are left out,
    // however slow: 20 times slower here.
    for left in [100, 70, 40, 10] {
        assert_eq!(judge.status().latency.unwrap().warmup_requests_left, left);
        judge.observe(&slow(), &usual());
        assert!(!judge.failed(), "{}", judge.status().summary());
    }
    let status = judge.status().latency.unwrap();
    assert_eq!((status.warmup_requests_left, status.ratio), (0, None));
    assert_eq!(status.log_evidence, 0.0);
    assert_eq!(
        judge.status().canary.requests,
        120,
        "totals count every request"
    );
    // From the next slice on, latencies count.
    judge.observe(&slow(), &usual());
    assert!(judge.failed(), "{}", judge.status().summary());
}

#[test]
fn the_warmup_leaves_the_error_check_alone() {
    let settings = SequentialSettings {
        latency_warmup_requests: u64::MAX,
        ..SequentialSettings::default()
    };
    let mut judge = SequentialJudge::new(settings);
    let mut slices = 0;
    while !judge.failed() && slices < 100 {
        judge.observe(
            &slice(20, 6, moments(20.0, 0.0, 0.5)),
            &slice(180, 1, moments(180.0, -3.0, 0.5)),
        );
        slices += 1;
    }
    let status = judge.status();
    assert_eq!(status.failed, Some(crate::sequential::FailedCheck::Errors));
    assert!(status.latency.unwrap().ratio.is_none());
}
