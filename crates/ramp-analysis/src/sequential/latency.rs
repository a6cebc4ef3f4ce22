//! The latency check: a mixture of likelihood ratios on the canary's excess mean log
//! latency, stratified by slice.
//!
//! Each slice with latencies on both sides gives a difference of mean log latencies `d`
//! with weight `h = 1 / (1/n_canary + 1/n_baseline)`, whose variance is `sigma^2 / h`. Only
//! within-slice differences enter, so drift shared by both sides cancels and the canary's
//! traffic share may change from slice to slice. With `D = sum(h * d)` and `H = sum(h)`, the
//! likelihood ratio of an increase `delta` against none is `exp((delta * D - delta^2 * H / 2)
//! / sigma^2)`. The check averages it over a grid of increases starting at the smallest one
//! worth detecting (`tau`) and doubling from there: a martingale under "no slower", and one
//! that tends to zero for true increases below `tau / 2`, so a canary that is slower by a
//! negligible amount is never failed however long it runs. `sigma^2` is the pooled
//! within-slice variance, plugged in once enough latencies were seen for it to have settled.

use crate::Moments;

/// Number of increases in the mixture: `tau` to `8 tau` (10% to 114% slower by default).
const GRID: usize = 4;

/// Pooled degrees of freedom needed before the plug-in variance is trusted.
const MIN_DEGREES_OF_FREEDOM: f64 = 50.0;
/// Latencies each side must have contributed before the check tests anything.
const MIN_SIDE_COUNT: f64 = 20.0;

/// Cumulative evidence that the canary is slower than its baseline.
#[derive(Debug, Clone)]
pub(super) struct LatencyCheck {
    /// Increases in mean log latency the mixture weighs equally: `tau`, `2 tau`, ...
    increases: [f64; GRID],
    log_threshold: f64,
    /// `sum(h)` over slices with latencies on both sides.
    weight: f64,
    /// `sum(h * d)` over the same slices.
    weighted_difference: f64,
    /// Sum over slice-sides of squared deviations from the slice-side mean.
    squared_deviations: f64,
    /// Sum over slice-sides of `n - 1`.
    degrees_of_freedom: f64,
    /// Latencies in the slices that entered `weight`, per side.
    canary_count: f64,
    baseline_count: f64,
}

/// One side's latencies in one slice, when usable.
#[derive(Debug, Clone, Copy)]
struct SliceSide {
    count: f64,
    mean: f64,
    /// Squared deviations from the mean; `None` below two latencies or when not finite.
    squared_deviations: Option<f64>,
}

impl SliceSide {
    fn of(moments: &Moments) -> Option<SliceSide> {
        let Moments { n, sum, sum_sq } = *moments;
        let finite = n.is_finite() && sum.is_finite() && sum_sq.is_finite();
        if !finite || n < 1.0 {
            return None;
        }
        let mean = sum / n;
        let deviations = sum_sq - sum * mean;
        Some(SliceSide {
            count: n,
            mean,
            squared_deviations: (n >= 2.0 && deviations.is_finite()).then(|| deviations.max(0.0)),
        })
        .filter(|side| side.mean.is_finite())
    }
}

impl LatencyCheck {
    /// `tau` (the smallest increase in mean log latency worth detecting) must be finite and
    /// positive; `log_threshold` is `ln(1 / alpha)`.
    pub(super) fn new(tau: f64, log_threshold: f64) -> Self {
        LatencyCheck {
            increases: std::array::from_fn(|k| tau * f64::from(1u32 << k)),
            log_threshold,
            weight: 0.0,
            weighted_difference: 0.0,
            squared_deviations: 0.0,
            degrees_of_freedom: 0.0,
            canary_count: 0.0,
            baseline_count: 0.0,
        }
    }

    /// Adds one slice's moments of log latency. Sides without latencies or with non-finite
    /// moments carry nothing; a side alone still informs the variance.
    pub(super) fn observe(&mut self, canary: &Moments, baseline: &Moments) {
        let canary = SliceSide::of(canary);
        let baseline = SliceSide::of(baseline);
        for side in [canary, baseline].into_iter().flatten() {
            self.add_deviations(side);
        }
        if let (Some(canary), Some(baseline)) = (canary, baseline) {
            let h = 1.0 / (1.0 / canary.count + 1.0 / baseline.count);
            let weight = self.weight + h;
            let weighted_difference = self.weighted_difference + h * (canary.mean - baseline.mean);
            if weight.is_finite() && weighted_difference.is_finite() {
                self.weight = weight;
                self.weighted_difference = weighted_difference;
                self.canary_count += canary.count;
                self.baseline_count += baseline.count;
            }
        }
    }

    fn add_deviations(&mut self, side: SliceSide) {
        let Some(deviations) = side.squared_deviations else {
            return;
        };
        let total = self.squared_deviations + deviations;
        let degrees_of_freedom = self.degrees_of_freedom + (side.count - 1.0);
        if total.is_finite() && degrees_of_freedom.is_finite() {
            self.squared_deviations = total;
            self.degrees_of_freedom = degrees_of_freedom;
        }
    }

    /// `exp(delta_hat)`: the canary/baseline ratio of geometric-mean latencies.
    pub(super) fn ratio(&self) -> Option<f64> {
        (self.weight > 0.0)
            .then(|| (self.weighted_difference / self.weight).exp())
            .filter(|r| r.is_finite())
    }

    /// The pooled variance of log latency, once it has settled.
    fn settled_variance(&self) -> Option<f64> {
        let settled = self.degrees_of_freedom >= MIN_DEGREES_OF_FREEDOM
            && self.canary_count >= MIN_SIDE_COUNT
            && self.baseline_count >= MIN_SIDE_COUNT;
        let variance = self.squared_deviations / self.degrees_of_freedom;
        (settled && variance > 0.0 && variance.is_finite()).then_some(variance)
    }

    /// Log of the mixture likelihood ratio; zero (no evidence) until the variance has
    /// settled.
    pub(super) fn log_evidence(&self) -> f64 {
        let Some(variance) = self.settled_variance() else {
            return 0.0;
        };
        let logs = self.increases.map(|delta| {
            (delta * self.weighted_difference - 0.5 * delta * delta * self.weight) / variance
        });
        let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !top.is_finite() {
            return 0.0;
        }
        let sum: f64 = logs.iter().map(|l| (l - top).exp()).sum();
        let log = top + (sum / GRID as f64).ln();
        log.clamp(-f64::MAX, f64::MAX)
    }

    /// The check fails when its log evidence reaches this.
    pub(super) fn log_threshold(&self) -> f64 {
        self.log_threshold
    }
}
