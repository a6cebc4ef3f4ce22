//! The Mann-Whitney U test (Wilcoxon rank-sum) with the Hodges-Lehmann estimate of the shift
//! between two samples and a confidence interval on it, by the normal approximation with tie
//! and continuity corrections.
//!
//! Canary judgements compare thousands of latencies, so nothing here is quadratic. Both
//! samples are sorted once. `U` for a shift `d` of the first sample is counted by merging its
//! distinct values, shifted, with the second sample. The estimate and the interval bounds are
//! the shifts where `U` (or its standardized value) crosses a threshold, found by bisection
//! over `d`. Each bisection remembers, for each value of `x`, the part of `y` that can still
//! fall on either side of `x - d` inside the bracket; those parts shrink with the bracket
//! until most are empty, so most halvings touch only a few values.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// Outcome of a two-sided Mann-Whitney test of `x` (the canary) against `y` (the baseline).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MannWhitney {
    /// `U` of `x`: the pairs `(x_i, y_j)` with `x_i > y_j`, ties counting one half.
    pub u: f64,
    /// `U` standardized under "no shift", with tie and continuity corrections.
    pub z: f64,
    /// Two-sided p-value of "no shift" by the normal approximation.
    pub p_value: f64,
    /// Hodges-Lehmann estimate of the shift `x - y`: the median of the pairwise differences.
    pub estimate: f64,
    /// Confidence interval on the shift: the shifts `d` that the test at the requested
    /// confidence does not reject when `x - d` is compared with `y`.
    pub interval: (f64, f64),
}

/// Tests `x` against `y`, with an interval on the shift at `confidence`.
///
/// NaN (and infinite) values are dropped first: they carry no location. `None` when either
/// side is empty afterwards or `confidence` is not in (0, 1).
pub fn mann_whitney(x: &[f64], y: &[f64], confidence: f64) -> Option<MannWhitney> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    // The work grows with the first sample's size, so the smaller one goes first.
    if x.len() <= y.len() {
        Some(test(&SortedSamples::new(x, y)?, confidence))
    } else {
        let samples = SortedSamples::new(y, x)?;
        Some(mirror(test(&samples, confidence), samples.pair_count()))
    }
}

fn test(samples: &SortedSamples, confidence: f64) -> MannWhitney {
    let normal = Normal::standard();
    let half = samples.pair_count() / 2.0;

    let at_zero = samples.rank_sum_at(0.0);
    let z = at_zero.standardized;
    let p_value = (2.0 * normal.sf(z.abs())).clamp(0.0, 1.0);

    // The shifts at which every x - d lies above, resp. below, every y.
    let (lowest, highest) = samples.shift_range();

    // U falls as d grows; the median pairwise difference is where it passes nm/2. When an
    // even number of differences leaves a gap there, the estimate is the gap's middle.
    let (_, first_at_most_half) = samples.split(lowest, highest, |sum| sum.u > half);
    let (last_at_least_half, _) = samples.split(lowest, highest, |sum| sum.u >= half);
    let estimate = first_at_most_half.midpoint(last_at_least_half);

    // The standardized statistic is 0 at the estimate (the continuity correction absorbs the
    // half step there), so each bound is searched on its own side of it.
    let critical = normal.inverse_cdf((1.0 + confidence) / 2.0);
    let (_, lower) = samples.split(lowest, estimate, |sum| sum.standardized > critical);
    let (upper, _) = samples.split(estimate, highest, |sum| sum.standardized >= -critical);

    MannWhitney {
        u: at_zero.u,
        z,
        p_value,
        estimate,
        interval: (lower, upper),
    }
}

/// The test of `x` against `y` from that of `y` against `x`, over `pairs` pairs.
fn mirror(result: MannWhitney, pairs: f64) -> MannWhitney {
    // Subtracting from +0 keeps a zero shift from turning into -0.
    let negate = |value: f64| 0.0 - value;
    MannWhitney {
        u: pairs - result.u,
        z: negate(result.z),
        p_value: result.p_value,
        estimate: negate(result.estimate),
        interval: (negate(result.interval.1), negate(result.interval.0)),
    }
}

/// Halvings of a bracket's value range before halving its floats' ordering instead: value
/// halvings follow where the pairwise differences lie, ordering halvings are sure to reach
/// adjacent floats within 64 more steps (value halvings towards 0 would take about 1,000).
const VALUE_HALVINGS: u32 = 32;

/// Both samples, finite values only, sorted once for every shift to be counted against.
struct SortedSamples {
    /// Distinct values of `x`, ascending, each with how often it occurs.
    x_groups: Vec<(f64, f64)>,
    x_len: f64,
    /// `y`, ascending.
    y: Vec<f64>,
    /// Sum of `t^3 - t` over the groups of `t` equal values within `x` and within `y`: the
    /// part of the variance's tie correction that shifting `x` does not change.
    own_ties: f64,
}

/// `U` of the shifted first sample, and its standardized value.
#[derive(Debug, Clone, Copy)]
struct RankSum {
    u: f64,
    standardized: f64,
}

/// Where the values of `y` stand relative to one `x_i - d`: `y[..below]` are smaller and
/// `y[below..up_to]` equal. Over a bracket of shifts it is the range of `y` that can still
/// change sides: `below` at the bracket's top and `up_to` at its bottom.
#[derive(Debug, Clone, Copy)]
struct Position {
    below: usize,
    up_to: usize,
}

impl SortedSamples {
    /// `None` when either side has no finite value.
    fn new(x: &[f64], y: &[f64]) -> Option<Self> {
        let x = sorted_finite(x);
        let y = sorted_finite(y);
        if x.is_empty() || y.is_empty() {
            return None;
        }
        let x_groups = equal_runs(&x);
        let own_ties = x_groups
            .iter()
            .chain(&equal_runs(&y))
            .map(|&(_, count)| count * count * count - count)
            .sum();
        Some(SortedSamples {
            x_groups,
            x_len: x.len() as f64,
            y,
            own_ties,
        })
    }

    fn pair_count(&self) -> f64 {
        self.x_len * self.y.len() as f64
    }

    /// Shifts `d` beyond which `U(d)` no longer changes: every `x - d` is at least every `y`
    /// below the first, and at most every `y` above the second.
    fn shift_range(&self) -> (f64, f64) {
        let x_min = self.x_groups[0].0;
        let x_max = self.x_groups[self.x_groups.len() - 1].0;
        let (y_min, y_max) = (self.y[0], self.y[self.y.len() - 1]);
        (x_min - y_max, x_max - y_min)
    }

    fn rank_sum_at(&self, d: f64) -> RankSum {
        Bracket::unbounded(self).rank_sum_at(d)
    }

    /// `(U - nm/2 -+ 1/2) / sigma`, with sigma shrunk for ties. Zero when `U` is within half a
    /// step of its mean (which covers the all-tied case where sigma is 0).
    fn standardize(&self, u: f64, tie_term: f64) -> f64 {
        let (n, m) = (self.x_len, self.y.len() as f64);
        let excess = u - n * m / 2.0;
        let corrected = if excess > 0.0 {
            (excess - 0.5).max(0.0)
        } else {
            (excess + 0.5).min(0.0)
        };
        let total = n + m;
        let variance = n * m / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
        if corrected == 0.0 || variance <= 0.0 {
            0.0
        } else {
            corrected / variance.sqrt()
        }
    }

    /// For a `holds` that is true of the rank sums up to some shift in `[lo, hi]` and false
    /// after it: the last shift where it holds and the first where it does not, adjacent
    /// `f64`s. Clamped to `(lo, lo)` when it fails at `lo` and to `(hi, hi)` when it holds at
    /// `hi`.
    fn split(&self, mut lo: f64, mut hi: f64, holds: impl Fn(&RankSum) -> bool) -> (f64, f64) {
        let mut bracket = Bracket::unbounded(self);
        if !holds(&bracket.rank_sum_at(lo)) {
            return (lo, lo);
        }
        bracket.start_at_last();
        if holds(&bracket.rank_sum_at(hi)) {
            return (hi, hi);
        }
        bracket.end_at_last();
        let mut halvings = 0;
        while ordered_key(lo).abs_diff(ordered_key(hi)) > 1 {
            let middle = bisect(lo, hi, halvings < VALUE_HALVINGS);
            halvings += 1;
            if holds(&bracket.rank_sum_at(middle)) {
                lo = middle;
                bracket.start_at_last();
            } else {
                hi = middle;
                bracket.end_at_last();
            }
        }
        (lo, hi)
    }
}

/// A range of shifts being narrowed, with what stays the same across it: for each group of
/// equal `x`, the part of `y` that `x - d` can still fall on either side of. Groups whose part
/// is empty contribute the same to `U` at every shift in the range and are set aside.
struct Bracket<'a> {
    samples: &'a SortedSamples,
    /// Per group of `x`: its open part of `y`.
    open: Vec<Position>,
    /// The groups whose open part is not empty.
    active: Vec<usize>,
    /// `U` from the groups set aside.
    settled_u: f64,
    /// Per active group: where `x - d` fell at the last shift looked at.
    last: Vec<Position>,
}

impl<'a> Bracket<'a> {
    /// Every value of `y` open for every group.
    fn unbounded(samples: &'a SortedSamples) -> Self {
        let all = Position {
            below: 0,
            up_to: samples.y.len(),
        };
        let groups = samples.x_groups.len();
        Bracket {
            samples,
            open: vec![all; groups],
            active: (0..groups).collect(),
            settled_u: 0.0,
            last: vec![all; groups],
        }
    }

    /// `U` of `x - d` against `y` for a `d` inside the bracket, merging the active groups
    /// (ascending) with `y`: a cursor moves up `y` once, skipping to each group's open part
    /// and galloping through it.
    ///
    /// Where a group of `a` equal `x - d` meets `b` equal `y`, their merged group replaces two
    /// in the tie correction, adding `3ab(a + b)` to it. (Distinct `x` that only become equal
    /// by rounding of `x - d` are not merged: a negligible change to the variance.)
    fn rank_sum_at(&mut self, d: f64) -> RankSum {
        let y = &self.samples.y;
        let mut u = self.settled_u;
        let mut tie_term = self.samples.own_ties;
        let mut cursor = 0;
        for &group in &self.active {
            let (x_value, x_tied) = self.samples.x_groups[group];
            let value = x_value - d;
            let open = self.open[group];
            let below = gallop(y, cursor.max(open.below), open.up_to, |w| w < value);
            let up_to = gallop(y, below, open.up_to, |w| w <= value);
            cursor = below;
            self.last[group] = Position { below, up_to };
            let y_tied = (up_to - below) as f64;
            u += x_tied * (below as f64 + 0.5 * y_tied);
            tie_term += 3.0 * x_tied * y_tied * (x_tied + y_tied);
        }
        RankSum {
            u,
            standardized: self.samples.standardize(u, tie_term),
        }
    }

    /// The last shift looked at becomes the bracket's bottom: `y` above `x - d` there stays
    /// above for every larger shift.
    fn start_at_last(&mut self) {
        for &group in &self.active {
            self.open[group].up_to = self.last[group].up_to;
        }
        self.set_aside_settled();
    }

    /// The last shift looked at becomes the bracket's top: `y` below `x - d` there stays
    /// below for every smaller shift.
    fn end_at_last(&mut self) {
        for &group in &self.active {
            self.open[group].below = self.last[group].below;
        }
        self.set_aside_settled();
    }

    fn set_aside_settled(&mut self) {
        let (open, x_groups) = (&self.open, &self.samples.x_groups);
        let mut settled_u = 0.0;
        self.active.retain(|&group| {
            let Position { below, up_to } = open[group];
            if below < up_to {
                return true;
            }
            settled_u += x_groups[group].1 * below as f64;
            false
        });
        self.settled_u += settled_u;
    }
}

fn sorted_finite(values: &[f64]) -> Vec<f64> {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_unstable_by(f64::total_cmp);
    finite
}

/// The distinct values of sorted `values`, each with the length of its run.
fn equal_runs(sorted: &[f64]) -> Vec<(f64, f64)> {
    sorted
        .chunk_by(|a, b| a == b)
        .map(|run| (run[0], run.len() as f64))
        .collect()
}

/// The first index in `start..end` where `before` fails, for a `before` that holds up to some
/// index and fails from there: steps doubling from `start` bracket it, then halving finds
/// it, so the cost grows with the log of the distance from `start`.
fn gallop(sorted: &[f64], start: usize, end: usize, before: impl Fn(f64) -> bool) -> usize {
    let (mut passed, mut step) = (start.min(end), 1);
    while let Some(&probe) = sorted[..end].get(passed + step - 1) {
        if !before(probe) {
            let candidates = &sorted[passed..passed + step - 1];
            return passed + candidates.partition_point(|&v| before(v));
        }
        passed += step;
        step *= 2;
    }
    passed + sorted[passed..end].partition_point(|&v| before(v))
}

/// A float strictly between `lo < hi`, which must not be adjacent: the middle of their values
/// or, when `by_value` is off (or rounding leaves no value strictly between), of their order.
fn bisect(lo: f64, hi: f64, by_value: bool) -> f64 {
    let middle = lo.midpoint(hi);
    if by_value && lo < middle && middle < hi {
        middle
    } else {
        from_ordered_key(ordered_key(lo).midpoint(ordered_key(hi)))
    }
}

/// An integer that orders like the float: negative floats' magnitude bits are reversed.
fn ordered_key(value: f64) -> i64 {
    let bits = value.to_bits() as i64;
    if bits < 0 { bits ^ i64::MAX } else { bits }
}

fn from_ordered_key(key: i64) -> f64 {
    let bits = if key < 0 { key ^ i64::MAX } else { key };
    f64::from_bits(bits as u64)
}

/// Deterministic samples shared by the tests of this crate's judges.
#[cfg(test)]
pub(crate) mod test_samples {
    use statrs::distribution::{ContinuousCDF, Normal};

    /// `count` draws from a normal distribution, reproducible from `seed`.
    pub(crate) fn normal(seed: u64, count: usize, mean: f64, std_dev: f64) -> Vec<f64> {
        let normal = Normal::standard();
        let mut state = seed;
        (0..count)
            .map(|_| {
                let uniform = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
                let open_uniform = uniform.clamp(f64::EPSILON, 1.0 - f64::EPSILON);
                mean + std_dev * normal.inverse_cdf(open_uniform)
            })
            .collect()
    }

    fn splitmix64(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// All pairwise differences `x_i - y_j`, ascending: the brute-force oracle.
    fn pairwise_differences(x: &[f64], y: &[f64]) -> Vec<f64> {
        let mut differences: Vec<f64> = x
            .iter()
            .flat_map(|xv| y.iter().map(move |yv| xv - yv))
            .collect();
        differences.sort_unstable_by(f64::total_cmp);
        differences
    }

    fn median(sorted: &[f64]) -> f64 {
        let middle = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            sorted[middle - 1].midpoint(sorted[middle])
        }
    }

    /// Whether `value` is within one gap of the oracle's `index`th difference, i.e. between
    /// its neighbours (give or take rounding).
    fn within_one_gap(value: f64, differences: &[f64], index: usize) -> bool {
        let below = differences[index.saturating_sub(1)];
        let above = differences[(index + 1).min(differences.len() - 1)];
        let slack = 1e-12 * (1.0 + value.abs());
        below - slack <= value && value <= above + slack
    }

    /// Indices of the differences at the interval's bounds on tie-free data, by counting:
    /// `U(d)` is the number of differences above `d` (plus one half at a difference), and the
    /// test accepts `d` while `|U - nm/2| - 1/2 <= z sigma`. The lower bound is the first
    /// difference where `U` is low enough, the upper one the first where it is too low.
    fn oracle_bound_indices(n: usize, m: usize, confidence: f64) -> (usize, usize) {
        let (nf, mf) = (n as f64, m as f64);
        let sigma = (nf * mf * (nf + mf + 1.0) / 12.0).sqrt();
        let critical = Normal::standard().inverse_cdf((1.0 + confidence) / 2.0);
        let last = n * m - 1;
        let lower = (nf * mf / 2.0 - 1.0 - critical * sigma).ceil().max(0.0) as usize;
        let upper = (nf * mf / 2.0 + critical * sigma).floor() as usize + 1;
        (lower.min(last), upper.min(last))
    }

    #[test]
    fn hand_computed_example() {
        // Differences 1,2,2,3,3,4: U = 6 of 6, median 2.5. sigma = sqrt(6 * 6 / 12).
        let result = mann_whitney(&[3.0, 4.0, 5.0], &[1.0, 2.0], 0.98).unwrap();
        assert_eq!(result.u, 6.0);
        let expected_z = 2.5 / 3f64.sqrt();
        assert!((result.z - expected_z).abs() < 1e-12);
        assert!(
            (result.p_value - 0.148_915).abs() < 1e-5,
            "{}",
            result.p_value
        );
        assert!((result.estimate - 2.5).abs() < 1e-12);
        // Too few values to reject any shift at 98%: the interval is the whole range.
        assert_eq!(result.interval, (1.0, 4.0));
    }

    #[test]
    fn balanced_samples_have_no_evidence() {
        // x > y for (3,2), (5,2), (5,4): U = 3 = nm/2.
        let result = mann_whitney(&[1.0, 3.0, 5.0], &[2.0, 4.0], 0.95).unwrap();
        assert_eq!(result.u, 3.0);
        assert_eq!(result.z, 0.0);
        assert_eq!(result.p_value, 1.0);
    }

    #[test]
    fn single_pair_estimates_its_difference() {
        let result = mann_whitney(&[7.0], &[2.0], 0.9).unwrap();
        assert_eq!(result.estimate, 5.0);
        assert_eq!(result.interval, (5.0, 5.0));
        assert_eq!(result.u, 1.0);
    }

    #[test]
    fn ties_count_one_half() {
        let result = mann_whitney(&[1.0, 2.0], &[2.0, 2.0, 0.0], 0.9).unwrap();
        // 1 > 0; 2 > 0 and ties with two 2s.
        assert_eq!(result.u, 1.0 + 1.0 + 0.5 * 2.0);
    }

    #[test]
    fn matches_the_pairwise_oracle() {
        for (seed, n, m) in [(1, 7, 9), (2, 30, 40), (3, 50, 200), (4, 1, 13), (5, 12, 1)] {
            let x = test_samples::normal(seed, n, 0.3, 1.0);
            let y = test_samples::normal(seed + 100, m, 0.0, 1.0);
            let differences = pairwise_differences(&x, &y);
            let result = mann_whitney(&x, &y, 0.95).unwrap();
            assert!(
                (result.estimate - median(&differences)).abs() < 1e-9,
                "estimate {} vs {} for {n}x{m}",
                result.estimate,
                median(&differences)
            );
            let (lower_index, upper_index) = oracle_bound_indices(n, m, 0.95);
            assert!(
                within_one_gap(result.interval.0, &differences, lower_index),
                "lower {} vs {} for {n}x{m}",
                result.interval.0,
                differences[lower_index]
            );
            assert!(
                within_one_gap(result.interval.1, &differences, upper_index),
                "upper {} vs {} for {n}x{m}",
                result.interval.1,
                differences[upper_index]
            );
        }
    }

    #[test]
    fn shifted_normals_recover_the_shift() {
        let x = test_samples::normal(11, 1_200, 10.5, 2.0);
        let y = test_samples::normal(12, 11_000, 10.0, 2.0);
        let result = mann_whitney(&x, &y, 0.98).unwrap();
        assert!((result.estimate - 0.5).abs() < 0.2, "{}", result.estimate);
        assert!(result.interval.0 < 0.5 && 0.5 < result.interval.1);
        assert!(result.interval.0 > 0.0, "a clear shift excludes 0");
        assert!(result.p_value < 1e-6);
        assert!(result.z > 0.0);
    }

    #[test]
    fn equal_distributions_keep_zero_in_the_interval() {
        let x = test_samples::normal(21, 300, 5.0, 1.0);
        let y = test_samples::normal(22, 500, 5.0, 1.0);
        let result = mann_whitney(&x, &y, 0.98).unwrap();
        assert!(result.interval.0 < 0.0 && 0.0 < result.interval.1);
        assert!(result.p_value > 0.02);
    }

    #[test]
    fn identical_constant_samples_are_all_ties() {
        let result = mann_whitney(&[3.0; 20], &[3.0; 30], 0.98).unwrap();
        assert_eq!(result.estimate, 0.0);
        assert_eq!(result.z, 0.0);
        assert_eq!(result.p_value, 1.0);
        assert_eq!(result.u, 300.0);
        assert!(!result.interval.0.is_nan() && !result.interval.1.is_nan());
        assert!(result.interval.0 <= 0.0 && 0.0 <= result.interval.1);
    }

    #[test]
    fn empty_or_unusable_input_gives_none() {
        assert_eq!(mann_whitney(&[], &[1.0], 0.95), None);
        assert_eq!(mann_whitney(&[1.0], &[], 0.95), None);
        assert_eq!(mann_whitney(&[f64::NAN, f64::NAN], &[1.0], 0.95), None);
        assert_eq!(mann_whitney(&[1.0], &[f64::NAN], 0.95), None);
        assert_eq!(mann_whitney(&[1.0], &[2.0], 0.0), None);
        assert_eq!(mann_whitney(&[1.0], &[2.0], 1.0), None);
        assert_eq!(mann_whitney(&[1.0], &[2.0], f64::NAN), None);
    }

    #[test]
    fn nans_are_ignored() {
        let clean = mann_whitney(&[1.0, 4.0, 6.0], &[2.0, 3.0], 0.9).unwrap();
        let noisy = mann_whitney(&[f64::NAN, 1.0, 4.0, 6.0], &[2.0, f64::NAN, 3.0], 0.9).unwrap();
        assert_eq!(clean, noisy);
    }

    #[test]
    fn extreme_values_do_not_break_the_search() {
        let x = [f64::MAX, -f64::MAX, 0.0];
        let y = [f64::MAX, 0.0, f64::MIN_POSITIVE];
        let result = mann_whitney(&x, &y, 0.98).unwrap();
        assert!((0.0..=1.0).contains(&result.p_value));
        assert!(mann_whitney(&y, &x, 0.98).is_some());
    }

    #[test]
    fn ordered_keys_follow_float_order() {
        let values = [
            f64::MIN,
            -1.5,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            1e-300,
            2.0,
            f64::MAX,
        ];
        for pair in values.windows(2) {
            assert!(ordered_key(pair[0]) < ordered_key(pair[1]), "{pair:?}");
        }
        for value in values {
            assert_eq!(
                from_ordered_key(ordered_key(value)).to_bits(),
                value.to_bits()
            );
        }
    }

    fn sample() -> impl Strategy<Value = Vec<f64>> {
        // Multiples of 1/8: exact arithmetic, and plenty of ties.
        prop::collection::vec((-800i32..800).prop_map(|v| f64::from(v) / 8.0), 1..40)
    }

    /// `U` and its standardized value at shift `d`, pair by pair and group by group.
    fn brute_force(x: &[f64], y: &[f64], d: f64) -> (f64, f64) {
        let mut u = 0.0;
        for xv in x {
            for yv in y {
                if xv - d > *yv {
                    u += 1.0;
                } else if xv - d == *yv {
                    u += 0.5;
                }
            }
        }
        let mut merged: Vec<f64> = x.iter().map(|v| v - d).chain(y.iter().copied()).collect();
        merged.sort_unstable_by(f64::total_cmp);
        let ties: f64 = merged
            .chunk_by(|a, b| a == b)
            .map(|run| (run.len() as f64).powi(3) - run.len() as f64)
            .sum();
        let (n, m) = (x.len() as f64, y.len() as f64);
        let variance = n * m / 12.0 * ((n + m + 1.0) - ties / ((n + m) * (n + m - 1.0)));
        let excess = u - n * m / 2.0;
        let corrected = excess.signum() * (excess.abs() - 0.5).max(0.0);
        let z = if corrected == 0.0 {
            0.0
        } else {
            corrected / variance.sqrt()
        };
        (u, z)
    }

    /// The interval by brute force: the statistic only changes at pairwise differences, so
    /// it is tried at each and between each two; a bound is the difference at (or just past)
    /// which the statistic first enters, resp. last stays in, the acceptance region.
    fn brute_force_interval(x: &[f64], y: &[f64], confidence: f64) -> (f64, f64) {
        let mut differences = pairwise_differences(x, y);
        differences.dedup();
        let critical = Normal::standard().inverse_cdf((1.0 + confidence) / 2.0);
        let z = |d: f64| brute_force(x, y, d).1;
        let accepted_from = |d: f64| z(d) <= critical;
        let lower = differences
            .iter()
            .enumerate()
            .find(|&(i, &d)| {
                let next = differences.get(i + 1).copied().unwrap_or(d + 1.0);
                accepted_from(d) || accepted_from(d.midpoint(next))
            })
            .map_or(differences[differences.len() - 1], |(_, &d)| d);
        let still_accepted = |d: f64| z(d) >= -critical;
        let upper = differences
            .iter()
            .enumerate()
            .rev()
            .find(|&(i, &d)| {
                let previous = if i == 0 { d - 1.0 } else { differences[i - 1] };
                still_accepted(d) || still_accepted(previous.midpoint(d))
            })
            .map_or(differences[0], |(_, &d)| d);
        (lower, upper)
    }

    proptest! {
        #[test]
        fn shift_equivariant_and_consistent(
            x in sample(),
            y in sample(),
            shift in (-400i32..400).prop_map(|v| f64::from(v) / 4.0),
        ) {
            let base = mann_whitney(&x, &y, 0.95).unwrap();
            let shifted_x: Vec<f64> = x.iter().map(|v| v + shift).collect();
            let shifted = mann_whitney(&shifted_x, &y, 0.95).unwrap();
            prop_assert!((shifted.estimate - (base.estimate + shift)).abs() < 1e-9);
            prop_assert!((shifted.interval.0 - (base.interval.0 + shift)).abs() < 1e-9);
            prop_assert!((shifted.interval.1 - (base.interval.1 + shift)).abs() < 1e-9);
            for result in [base, shifted] {
                prop_assert!(result.interval.0 <= result.estimate);
                prop_assert!(result.estimate <= result.interval.1);
                prop_assert!((0.0..=1.0).contains(&result.p_value));
                prop_assert!(result.z.is_finite());
            }
        }

        #[test]
        fn estimate_is_the_median_difference(x in sample(), y in sample()) {
            let result = mann_whitney(&x, &y, 0.9).unwrap();
            let expected = median(&pairwise_differences(&x, &y));
            prop_assert!((result.estimate - expected).abs() < 1e-9,
                "{} vs {}", result.estimate, expected);
        }

        #[test]
        fn rank_sums_match_brute_force(
            x in sample(),
            y in sample(),
            d in (-1600i32..1600).prop_map(|v| f64::from(v) / 16.0),
        ) {
            let samples = SortedSamples::new(&x, &y).unwrap();
            let fast = samples.rank_sum_at(d);
            let (u, z) = brute_force(&x, &y, d);
            prop_assert_eq!(fast.u, u);
            prop_assert!((fast.standardized - z).abs() < 1e-9, "{} vs {}", fast.standardized, z);
        }

        #[test]
        fn swapping_sides_mirrors_the_result(x in sample(), y in sample()) {
            let forward = mann_whitney(&x, &y, 0.95).unwrap();
            let backward = mann_whitney(&y, &x, 0.95).unwrap();
            prop_assert!((forward.estimate + backward.estimate).abs() < 1e-9);
            prop_assert!((forward.interval.0 + backward.interval.1).abs() < 1e-9);
            prop_assert!((forward.interval.1 + backward.interval.0).abs() < 1e-9);
            prop_assert!((forward.z + backward.z).abs() < 1e-9);
            prop_assert!((forward.p_value - backward.p_value).abs() < 1e-9);
            let pairs = (x.len() * y.len()) as f64;
            prop_assert!((forward.u + backward.u - pairs).abs() < 1e-9);
        }
    }

    proptest! {
        // The brute force is cubic: fewer cases.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn interval_matches_brute_force(x in sample(), y in sample()) {
            let result = mann_whitney(&x, &y, 0.9).unwrap();
            let (lower, upper) = brute_force_interval(&x, &y, 0.9);
            prop_assert!((result.interval.0 - lower).abs() < 1e-9,
                "lower {} vs {}", result.interval.0, lower);
            prop_assert!((result.interval.1 - upper).abs() < 1e-9,
                "upper {} vs {}", result.interval.1, upper);
        }
    }
}
