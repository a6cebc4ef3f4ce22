//! The error check: a mixture of conditional binomial likelihood ratios.
//!
//! Within one slice, if both sides fail equally often, each of the slice's errors is the
//! canary's with probability `pi`, the canary's share of the slice's requests. Conditioning
//! on each slice's requests and errors removes the shared error rate, so incidents, load and
//! traffic shifts that hit both sides alike cancel. If the canary's error rate is `rho` times
//! the baseline's, that probability becomes `rho * pi / (rho * pi + 1 - pi)`. The running
//! product of per-slice likelihood ratios is a test martingale when the rates are equal (a
//! supermartingale when errors are counted per request, whose split is hypergeometric and so
//! less spread than the binomial), and so is an average of such products over a grid of
//! `rho`, which covers effects from the smallest worth detecting up.

use crate::Tally;

/// Number of alternative ratios averaged over.
const GRID_POINTS: usize = 8;
/// Each alternative ratio is this many times the previous one.
const GRID_STEP: f64 = 1.5;
/// No alternative ratio beyond this (or beyond the smallest, when that is larger): far
/// larger ratios add nothing that smaller ones do not already detect within a few errors.
const MAX_GRID_RATIO: f64 = 100.0;

/// An alternative error-rate ratio `rho`, kept in the forms the likelihood ratio needs.
#[derive(Debug, Clone, Copy)]
struct Alternative {
    /// `rho - 1`.
    excess: f64,
    /// `ln rho`.
    ln_ratio: f64,
}

/// Cumulative evidence that the canary fails more often than its baseline.
#[derive(Debug, Clone)]
pub(super) struct ErrorCheck {
    alternatives: [Alternative; GRID_POINTS],
    /// Cumulative log likelihood ratio of each alternative against equal rates.
    log_ratios: [f64; GRID_POINTS],
    log_threshold: f64,
}

impl ErrorCheck {
    /// `min_ratio` must be finite and above one; `log_threshold` is `ln(1 / alpha)`.
    pub(super) fn new(min_ratio: f64, log_threshold: f64) -> Self {
        let cap = MAX_GRID_RATIO.max(min_ratio);
        let mut ratio = min_ratio;
        let alternatives = std::array::from_fn(|_| {
            let alternative = Alternative {
                excess: ratio - 1.0,
                ln_ratio: ratio.ln(),
            };
            ratio = (ratio * GRID_STEP).min(cap);
            alternative
        });
        ErrorCheck {
            alternatives,
            log_ratios: [0.0; GRID_POINTS],
            log_threshold,
        }
    }

    /// Adds one slice's evidence; slices without requests on a side or without errors carry
    /// none.
    pub(super) fn observe(&mut self, canary: &Tally, baseline: &Tally) {
        if canary.requests == 0 || baseline.requests == 0 {
            return;
        }
        let canary_errors = canary.errors as f64;
        let errors = canary_errors + baseline.errors as f64;
        if errors == 0.0 {
            return;
        }
        let canary_requests = canary.requests as f64;
        let share = canary_requests / (canary_requests + baseline.requests as f64);
        // ln(pi1/pi) = ln rho - ln(1 + (rho-1) pi) and ln((1-pi1)/(1-pi)) = -ln(1 + (rho-1) pi).
        // Counts below 2^64 and ratios up to the cap keep every increment finite.
        for (log_ratio, alternative) in self.log_ratios.iter_mut().zip(&self.alternatives) {
            *log_ratio += canary_errors * alternative.ln_ratio
                - errors * (alternative.excess * share).ln_1p();
        }
    }

    /// Log of the equally weighted average of the alternatives' likelihood ratios.
    pub(super) fn log_evidence(&self) -> f64 {
        let max = self
            .log_ratios
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = self.log_ratios.iter().map(|l| (l - max).exp()).sum();
        max + sum.ln() - (GRID_POINTS as f64).ln()
    }

    /// The check fails when its log evidence reaches this.
    pub(super) fn log_threshold(&self) -> f64 {
        self.log_threshold
    }

    #[cfg(test)]
    pub(super) fn ratios(&self) -> impl Iterator<Item = f64> + '_ {
        self.alternatives.iter().map(|a| a.excess + 1.0)
    }
}
