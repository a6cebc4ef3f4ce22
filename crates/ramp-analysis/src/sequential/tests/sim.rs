//! A seeded traffic simulator: per-slice tallies of two sides with binomial errors and
//! log-normal latencies, drawn as aggregates so that long runs stay fast.

use crate::sequential::{FailedCheck, SequentialJudge};
use crate::{Moments, SequentialSettings, Tally};

/// splitmix64 with Box-Muller normals: small, deterministic and good enough for simulation.
#[derive(Debug, Clone)]
pub(super) struct Rng {
    state: u64,
    spare_normal: Option<f64>,
}

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng {
            state: seed,
            spare_normal: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1).
    pub(super) fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub(super) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let radius = (-2.0 * self.uniform().ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * self.uniform();
        self.spare_normal = Some(radius * angle.sin());
        radius * angle.cos()
    }

    /// Binomial(n, p), exactly, by skipping geometric gaps between successes.
    pub(super) fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if p > 0.5 {
            return n - self.binomial(n, 1.0 - p);
        }
        let ln_miss = (-p).ln_1p();
        let (mut successes, mut position) = (0, 0.0);
        loop {
            position += (self.uniform().ln() / ln_miss).floor() + 1.0;
            if position > n as f64 {
                return successes;
            }
            successes += 1;
        }
    }

    /// Chi-squared with `k` degrees of freedom: exact below 30, else Wilson-Hilferty's
    /// normal approximation of its cube root.
    pub(super) fn chi_squared(&mut self, k: u64) -> f64 {
        if k < 30 {
            return (0..k).map(|_| self.normal().powi(2)).sum();
        }
        let k = k as f64;
        let c = 2.0 / (9.0 * k);
        let cube_root = 1.0 - c + self.normal() * c.sqrt();
        k * cube_root.max(0.0).powi(3)
    }
}

/// What one side serves during a slice.
#[derive(Debug, Clone, Copy)]
pub(super) struct SideModel {
    pub(super) error_rate: f64,
    pub(super) median_seconds: f64,
    /// Standard deviation of log latency.
    pub(super) log_sigma: f64,
}

/// The traffic of one slice.
#[derive(Debug, Clone, Copy)]
pub(super) struct SliceModel {
    pub(super) requests: u64,
    pub(super) canary_share: f64,
    pub(super) canary: SideModel,
    pub(super) baseline: SideModel,
}

impl SliceModel {
    /// 200 requests a second for one-second slices, 10% to the canary, 1% errors and
    /// 50 ms median latency with log-sigma 0.5 on both sides.
    pub(super) fn a_a() -> Self {
        let side = SideModel {
            error_rate: 0.01,
            median_seconds: 0.050,
            log_sigma: 0.5,
        };
        SliceModel {
            requests: 200,
            canary_share: 0.1,
            canary: side,
            baseline: side,
        }
    }

    pub(super) fn draw(&self, rng: &mut Rng) -> (Tally, Tally) {
        let canary_requests = rng.binomial(self.requests, self.canary_share);
        let canary = draw_side(rng, canary_requests, &self.canary);
        let baseline = draw_side(rng, self.requests - canary_requests, &self.baseline);
        (canary, baseline)
    }
}

/// A side's tally from aggregates: errors are binomial, and for normal log latencies the
/// sample mean and the squared deviations are independent normal and scaled chi-squared.
fn draw_side(rng: &mut Rng, requests: u64, model: &SideModel) -> Tally {
    let errors = rng.binomial(requests, model.error_rate);
    let mut log_latency = Moments::default();
    if requests > 0 {
        let n = requests as f64;
        let sigma = model.log_sigma;
        let mean = model.median_seconds.ln() + sigma / n.sqrt() * rng.normal();
        let deviations = sigma * sigma * rng.chi_squared(requests - 1);
        log_latency = Moments {
            n,
            sum: n * mean,
            sum_sq: deviations + n * mean * mean,
        };
    }
    Tally {
        requests,
        errors,
        log_latency,
    }
}

/// Runs a judge over `slices` slices drawn from `model(slice index)`; returns the slice
/// index (from 1) and check of the first failure.
pub(super) fn first_failure(
    settings: SequentialSettings,
    seed: u64,
    slices: usize,
    model: impl Fn(usize) -> SliceModel,
) -> Option<(usize, FailedCheck)> {
    let mut rng = Rng::new(seed);
    let mut judge = SequentialJudge::new(settings);
    for t in 0..slices {
        let (canary, baseline) = model(t).draw(&mut rng);
        judge.observe(&canary, &baseline);
        if let Some(check) = judge.status().failed {
            return Some((t + 1, check));
        }
    }
    None
}

#[test]
fn the_simulator_draws_what_it_is_asked_for() {
    let mut rng = Rng::new(7);
    let draws = 20_000;
    let binomial_mean = (0..draws)
        .map(|_| rng.binomial(200, 0.1) as f64)
        .sum::<f64>()
        / draws as f64;
    assert!((binomial_mean - 20.0).abs() < 0.2, "{binomial_mean}");
    let high_mean = (0..draws)
        .map(|_| rng.binomial(50, 0.9) as f64)
        .sum::<f64>()
        / draws as f64;
    assert!((high_mean - 45.0).abs() < 0.1, "{high_mean}");
    for k in [5, 179] {
        let mean = (0..draws).map(|_| rng.chi_squared(k)).sum::<f64>() / draws as f64;
        assert!(
            (mean - k as f64).abs() < 0.03 * k as f64,
            "chi2({k}) mean {mean}"
        );
    }
    let mut total = Tally::default();
    for _ in 0..2_000 {
        let (canary, baseline) = SliceModel::a_a().draw(&mut rng);
        total.merge(&canary);
        total.merge(&baseline);
    }
    assert!((total.error_rate().unwrap() - 0.01).abs() < 0.001);
    let median = total.log_latency.mean().unwrap().exp();
    assert!((median - 0.050).abs() < 0.001, "{median}");
    let sigma = total.log_latency.variance().unwrap().sqrt();
    assert!((sigma - 0.5).abs() < 0.01, "{sigma}");
}
