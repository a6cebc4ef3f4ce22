//! Latency histograms: a lock-free recorder ([`LatencyHistogram`]) and its plain-value
//! snapshot ([`HistogramSnapshot`]).
//!
//! Every observation updates two bucket sets, because they answer different questions:
//!
//! * **Fine log-linear buckets** answer quantile queries for the analysis engine. Values
//!   `0..32` µs get one bucket each; above that every power of two is split into 16
//!   equal sub-buckets, so a bucket is at most 1/16 (6.25 %) and at least 1/32 (3.1 %)
//!   of its lower bound wide (~4.4 % on average). Values up to `2^36 - 1` µs (~19 h)
//!   are bucketed; larger values clamp into the last bucket.
//! * **Classic Prometheus buckets** with fixed `le` bounds ([`PROMETHEUS_BOUNDS_SECONDS`]).
//!   They cannot be derived from the fine buckets (the bounds do not fall on fine bucket
//!   edges), and dashboards need exact `le` semantics, so they are counted directly.

use std::fmt;
use std::iter;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// `2^SUB_BITS` sub-buckets per power of two.
const SUB_BITS: u32 = 4;
/// Values below `2^MAX_EXP` µs have their own bucket.
const MAX_EXP: u32 = 36;
/// Largest value with a bucket of its own size; anything larger clamps into [`LAST`].
const MAX_TRACKED_MICROS: u64 = (1 << MAX_EXP) - 1;
/// Number of fine buckets: 32 one-wide buckets for `0..32`, then 16 per power of two for
/// `2^5 ..= 2^35`, i.e. `(36 - 4 + 1) * 16 = 528`.
pub(crate) const FINE_BUCKETS: usize = ((MAX_EXP - SUB_BITS + 1) << SUB_BITS) as usize;
/// Index of the last (clamping) fine bucket.
const LAST: usize = FINE_BUCKETS - 1;

/// Upper bounds (`le`) of the classic Prometheus buckets, in seconds. `+Inf` is implied
/// by the total count.
pub const PROMETHEUS_BOUNDS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Number of finite classic buckets.
const PROM_BUCKETS: usize = 14;

/// [`PROMETHEUS_BOUNDS_SECONDS`] in integer microseconds. Recording compares integers so
/// that an observation exactly on a bound lands in that bucket (`le` = less or equal)
/// without any float rounding doubt.
const PROM_BOUNDS_MICROS: [u64; PROM_BUCKETS] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Fine bucket index of a value in microseconds: branch-light, no loops, no floats.
///
/// For `v >= 32` with most significant bit `msb`, the bucket is identified by the top five
/// bits of `v` (the leading one plus a 4-bit sub-bucket) and the shift `msb - 4`; the
/// index `(shift << 4) + (v >> shift)` is contiguous with the one-wide buckets below 32.
#[inline]
fn bucket_index(us: u64) -> usize {
    let v = us.min(MAX_TRACKED_MICROS);
    // `| 1` keeps leading_zeros below 64 so `msb` is 0 for both 0 and 1.
    let msb = 63 - (v | 1).leading_zeros();
    let shift = msb.saturating_sub(SUB_BITS);
    // shift <= 31 and (v >> shift) < 32, so the result is at most LAST.
    ((u64::from(shift) << SUB_BITS) + (v >> shift)) as usize
}

/// Inclusive `[lower, upper]` bounds in microseconds of fine bucket `index`. The last
/// bucket also holds every clamped value, so its upper bound is `u64::MAX`; indices past
/// the end are treated as the last bucket.
fn bucket_bounds(index: usize) -> (u64, u64) {
    let index = index.min(LAST);
    if index < 2 << SUB_BITS {
        let v = index as u64;
        return (v, v);
    }
    let shift = (index >> SUB_BITS) as u32 - 1;
    let mantissa = index as u64 - (u64::from(shift) << SUB_BITS);
    let lower = mantissa << shift;
    let upper = if index == LAST {
        u64::MAX
    } else {
        ((mantissa + 1) << shift) - 1
    };
    (lower, upper)
}

/// The value a quantile query reports for fine bucket `index`: its inclusive upper bound,
/// so quantiles never under-report; the clamping last bucket reports `2^36 - 1` µs.
fn bucket_value(index: usize) -> u64 {
    bucket_bounds(index).1.min(MAX_TRACKED_MICROS)
}

/// Classic bucket an observation belongs to, or `None` for the implied `+Inf` bucket.
#[inline]
fn prom_index(us: u64) -> Option<usize> {
    let i = PROM_BOUNDS_MICROS.partition_point(|&bound| bound < us);
    (i < PROM_BUCKETS).then_some(i)
}

/// A lock-free latency histogram, written concurrently with relaxed atomics.
///
/// Each [`record_micros`](Self::record_micros) is three uncontended-in-practice
/// `fetch_add`s (fine bucket, classic bucket when `<= 10 s`, sum). The count is not
/// stored: it is the sum of the fine buckets, which keeps a snapshot's count and its
/// quantiles consistent even when it races with writers.
pub struct LatencyHistogram {
    fine: [AtomicU64; FINE_BUCKETS],
    /// Non-cumulative counts per classic bucket.
    le: [AtomicU64; PROM_BUCKETS],
    /// Sum of observations in µs; wraps at 2^64 µs (~584,000 years of cumulative latency).
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            fine: [const { AtomicU64::new(0) }; FINE_BUCKETS],
            le: [const { AtomicU64::new(0) }; PROM_BUCKETS],
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation in microseconds. Never panics, allocates or uses floats.
    #[inline]
    pub fn record_micros(&self, us: u64) {
        self.fine[bucket_index(us)].fetch_add(1, Relaxed);
        if let Some(i) = prom_index(us) {
            self.le[i].fetch_add(1, Relaxed);
        }
        self.sum_micros.fetch_add(us, Relaxed);
    }

    /// Copies the current counts into a plain value.
    ///
    /// Loads are relaxed, so a snapshot taken while other threads record may include only
    /// some of the updates of an in-progress observation; the count is derived from the
    /// fine buckets so it always agrees with the quantiles.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let fine: Vec<u64> = self.fine.iter().map(|c| c.load(Relaxed)).collect();
        let le = std::array::from_fn(|i| self.le[i].load(Relaxed));
        HistogramSnapshot::from_parts(fine, le, self.sum_micros.load(Relaxed))
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snap = self.snapshot();
        f.debug_struct("LatencyHistogram")
            .field("count", &snap.count())
            .field("sum_micros", &snap.sum_micros())
            .finish_non_exhaustive()
    }
}

/// A point-in-time copy of a latency histogram: plain counts that can be merged (across
/// shards) and subtracted (`snapshot(now) - snapshot(then)` = the window in between).
///
/// All arithmetic saturates, so no input can make it panic.
///
/// Serialized form: `{"sum_micros": u64, "le_counts": [u64; 14], "buckets": [u64, ..]}`
/// where `le_counts` are the non-cumulative classic bucket counts and `buckets` are the fine
/// buckets with trailing zero buckets trimmed (an empty histogram has `[]`). The count is
/// not serialized; it is recomputed from `buckets`. On deserialization, buckets beyond
/// the last one fold into it, the same clamping recording applies.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "SnapshotRepr", into = "SnapshotRepr")]
pub struct HistogramSnapshot {
    /// Invariant: equals the (saturating) sum of `fine`.
    count: u64,
    sum_micros: u64,
    /// Fine bucket counts. Invariant: at most [`FINE_BUCKETS`] long and no trailing zero,
    /// so equal histograms compare equal and empty ones cost nothing.
    fine: Vec<u64>,
    /// Non-cumulative classic bucket counts.
    le: [u64; PROM_BUCKETS],
}

impl HistogramSnapshot {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a snapshot from raw fine buckets, establishing the type's invariants.
    fn from_parts(mut fine: Vec<u64>, le: [u64; PROM_BUCKETS], sum_micros: u64) -> Self {
        if fine.len() > FINE_BUCKETS {
            let overflow = fine
                .drain(FINE_BUCKETS..)
                .fold(0u64, |acc, c| acc.saturating_add(c));
            fine[LAST] = fine[LAST].saturating_add(overflow);
        }
        trim_trailing_zeros(&mut fine);
        let count = fine.iter().fold(0u64, |acc, &c| acc.saturating_add(c));
        Self {
            count,
            sum_micros,
            fine,
            le,
        }
    }

    /// Records one observation with the same bucketing as [`LatencyHistogram`]; for
    /// simulations and tests that do not need atomics.
    pub fn record_micros(&mut self, us: u64) {
        let i = bucket_index(us);
        if self.fine.len() <= i {
            self.fine.resize(i + 1, 0);
        }
        self.fine[i] = self.fine[i].saturating_add(1);
        if let Some(j) = prom_index(us) {
            self.le[j] = self.le[j].saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        self.sum_micros = self.sum_micros.saturating_add(us);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// `true` when nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sum of all observations in microseconds.
    pub fn sum_micros(&self) -> u64 {
        self.sum_micros
    }

    /// Mean observation in microseconds, `None` when empty.
    pub fn mean_micros(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_micros as f64 / self.count as f64)
    }

    /// Adds `other`'s observations to `self` (e.g. summing per-core shards).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if self.fine.len() < other.fine.len() {
            self.fine.resize(other.fine.len(), 0);
        }
        for (mine, theirs) in self.fine.iter_mut().zip(&other.fine) {
            *mine = mine.saturating_add(*theirs);
        }
        for (mine, theirs) in self.le.iter_mut().zip(&other.le) {
            *mine = mine.saturating_add(*theirs);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum_micros = self.sum_micros.saturating_add(other.sum_micros);
    }

    /// The observations made after `earlier` was taken: `self - earlier`, saturating at
    /// zero per bucket (so a counter reset yields a partial window instead of garbage).
    pub fn saturating_sub(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let fine = self
            .fine
            .iter()
            .enumerate()
            .map(|(i, &c)| c.saturating_sub(earlier.fine.get(i).copied().unwrap_or(0)))
            .collect();
        let le = std::array::from_fn(|i| self.le[i].saturating_sub(earlier.le[i]));
        let sum = self.sum_micros.saturating_sub(earlier.sum_micros);
        Self::from_parts(fine, le, sum)
    }

    /// The `q`-quantile in microseconds (`q` in `[0, 1]`; 0.99 = p99), or `None` when the
    /// histogram is empty or `q` is outside `[0, 1]` (or NaN).
    ///
    /// The quantile is the observation of rank `ceil(q * count)` (at least 1). The value
    /// returned is the inclusive **upper bound** of the fine bucket holding that rank: it
    /// never under-reports a latency and over-reports by less than one bucket width
    /// (exact below 32 µs, at most 6.25 % above). Observations clamped into the last
    /// bucket (`>= 2^36` µs, ~19 h) report `2^36 - 1`.
    pub fn quantile_micros(&self, q: f64) -> Option<u64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        // Float-to-int `as` saturates; the clamp makes q = 0 mean "the smallest value".
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, &c) in self.fine.iter().enumerate() {
            seen = seen.saturating_add(c);
            if seen >= rank {
                return Some(bucket_value(i));
            }
        }
        // Unreachable while `count` equals the bucket sum; degrade gracefully regardless.
        self.fine.iter().rposition(|&c| c != 0).map(bucket_value)
    }

    /// Non-empty fine buckets as `(midpoint in microseconds, count)`, in increasing order:
    /// the histogram as weighted samples, for tests that need the values themselves (each
    /// value is within half a bucket, at most ~3.1 %, of the observations it stands for).
    pub fn weighted_values(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.fine
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c > 0)
            .map(|(i, &c)| {
                let (lower, upper) = bucket_bounds(i);
                let upper = upper.min(MAX_TRACKED_MICROS);
                ((lower as f64 + upper as f64) / 2.0, c)
            })
    }

    /// Classic Prometheus buckets as `(le in seconds, cumulative count)`, in increasing
    /// `le` order, ending with `(f64::INFINITY, count)`.
    ///
    /// Cumulative counts are capped at `count`, so even a snapshot that raced with
    /// writers yields a valid, non-decreasing series.
    pub fn prometheus_buckets(&self) -> impl Iterator<Item = (f64, u64)> {
        let count = self.count;
        PROMETHEUS_BOUNDS_SECONDS
            .iter()
            .zip(self.le)
            .scan(0u64, move |cumulative, (&le, c)| {
                *cumulative = cumulative.saturating_add(c);
                Some((le, (*cumulative).min(count)))
            })
            .chain(iter::once((f64::INFINITY, count)))
    }
}

/// Lists only the non-empty fine buckets, keyed by their `lower..=upper` µs range, so test
/// failures and logs stay readable.
impl fmt::Debug for HistogramSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct NonEmpty<'a>(&'a [u64]);
        impl fmt::Debug for NonEmpty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                for (i, &c) in self.0.iter().enumerate().filter(|&(_, &c)| c != 0) {
                    let (lo, hi) = bucket_bounds(i);
                    map.entry(&format_args!("{lo}..={hi}"), &c);
                }
                map.finish()
            }
        }
        f.debug_struct("HistogramSnapshot")
            .field("count", &self.count)
            .field("sum_micros", &self.sum_micros)
            .field("fine", &NonEmpty(&self.fine))
            .field("le", &self.le)
            .finish()
    }
}

fn trim_trailing_zeros(buckets: &mut Vec<u64>) {
    let len = buckets.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    buckets.truncate(len);
}

/// Wire form of [`HistogramSnapshot`]; see its docs.
#[derive(Serialize, Deserialize)]
struct SnapshotRepr {
    sum_micros: u64,
    le_counts: [u64; PROM_BUCKETS],
    buckets: Vec<u64>,
}

impl From<SnapshotRepr> for HistogramSnapshot {
    fn from(repr: SnapshotRepr) -> Self {
        Self::from_parts(repr.buckets, repr.le_counts, repr.sum_micros)
    }
}

impl From<HistogramSnapshot> for SnapshotRepr {
    fn from(snap: HistogramSnapshot) -> Self {
        Self {
            sum_micros: snap.sum_micros,
            le_counts: snap.le,
            buckets: snap.fine,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn snapshot_of(values: &[u64]) -> HistogramSnapshot {
        let mut h = HistogramSnapshot::new();
        for &v in values {
            h.record_micros(v);
        }
        h
    }

    /// Rank-`ceil(q*n)` quantile of the raw data, the definition `quantile_micros` uses.
    fn true_quantile(values: &[u64], q: f64) -> u64 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let n = sorted.len() as u64;
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        sorted[(rank - 1) as usize]
    }

    fn width_of_bucket_holding(v: u64) -> u64 {
        let (lo, hi) = bucket_bounds(bucket_index(v));
        (hi - lo).saturating_add(1)
    }

    #[test]
    fn small_values_are_exact_and_buckets_tile_the_range() {
        for v in 0..32 {
            assert_eq!(bucket_index(v), v as usize);
            assert_eq!(bucket_bounds(v as usize), (v, v));
        }
        // Consecutive buckets are contiguous and non-empty: no gaps, no overlaps.
        for i in 0..LAST {
            let (lo, hi) = bucket_bounds(i);
            let (next_lo, _) = bucket_bounds(i + 1);
            assert!(lo <= hi, "bucket {i}");
            assert_eq!(hi + 1, next_lo, "bucket {i}");
        }
        assert_eq!(FINE_BUCKETS, 528);
        assert_eq!(bucket_index(MAX_TRACKED_MICROS), LAST);
        assert_eq!(bucket_index(1 << 36), LAST);
        assert_eq!(bucket_index(u64::MAX), LAST);
        assert_eq!(bucket_bounds(LAST), ((1 << 36) - (1 << 31), u64::MAX));
        assert_eq!(bucket_index((1 << 36) - (1 << 31)), LAST);
        assert_eq!(bucket_index((1 << 36) - (1 << 31) - 1), LAST - 1);
        // 16 sub-buckets per power of two above 32.
        assert_eq!(bucket_index(1024) + 16, bucket_index(2048));
    }

    #[test]
    fn prometheus_bounds_match_micros() {
        assert_eq!(PROMETHEUS_BOUNDS_SECONDS.len(), PROM_BUCKETS);
        for (&s, &us) in PROMETHEUS_BOUNDS_SECONDS.iter().zip(&PROM_BOUNDS_MICROS) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
    }

    proptest! {
        #[test]
        fn value_lies_within_its_bucket(v in 0u64..=(1 << 40)) {
            let (lo, hi) = bucket_bounds(bucket_index(v));
            prop_assert!(lo <= v && v <= hi, "{v} not in [{lo}, {hi}]");
            // Relative width at most 1/16 of the lower bound; the last bucket's nominal
            // upper bound is 2^36 - 1 (its u64::MAX only accounts for clamped values).
            let hi = hi.min(MAX_TRACKED_MICROS);
            if v >= 32 && v <= hi {
                prop_assert!((hi - lo + 1) * 16 <= lo, "bucket [{lo}, {hi}] too wide");
            }
        }

        #[test]
        fn bucket_index_is_monotonic(a in 0u64..=(1 << 40), b in 0u64..=(1 << 40)) {
            let (a, b) = (a.min(b), a.max(b));
            prop_assert!(bucket_index(a) <= bucket_index(b));
        }

        #[test]
        fn quantile_within_one_bucket_width_and_never_under(
            values in prop::collection::vec(0u64..5_000_000, 1..300),
            q in 0.0f64..=1.0,
        ) {
            let h = snapshot_of(&values);
            let truth = true_quantile(&values, q);
            let got = h.quantile_micros(q).expect("non-empty");
            prop_assert!(got >= truth, "q={q}: {got} < {truth}");
            prop_assert!(got - truth < width_of_bucket_holding(truth), "q={q}: {got} vs {truth}");
        }

        #[test]
        fn merge_equals_recording_both_and_sub_undoes_it(
            a in prop::collection::vec(0u64..(1 << 40), 0..200),
            b in prop::collection::vec(0u64..(1 << 40), 0..200),
        ) {
            let (ha, hb) = (snapshot_of(&a), snapshot_of(&b));
            let mut merged = ha.clone();
            merged.merge(&hb);
            let both: Vec<u64> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(&merged, &snapshot_of(&both));
            prop_assert_eq!(merged.saturating_sub(&ha), hb);
        }

        #[test]
        fn prometheus_buckets_count_values_at_or_below_each_bound(
            values in prop::collection::vec(0u64..20_000_000, 0..200),
        ) {
            let h = snapshot_of(&values);
            let buckets: Vec<(f64, u64)> = h.prometheus_buckets().collect();
            prop_assert_eq!(buckets.len(), PROM_BUCKETS + 1);
            for (&(le, cumulative), &bound) in buckets.iter().zip(&PROM_BOUNDS_MICROS) {
                let expected = values.iter().filter(|&&v| v <= bound).count() as u64;
                prop_assert_eq!(cumulative, expected, "le={}", le);
            }
            prop_assert_eq!(buckets[PROM_BUCKETS], (f64::INFINITY, values.len() as u64));
        }
    }

    #[test]
    fn quantiles_of_uniform_data() {
        let values: Vec<u64> = (1..=10_000).collect();
        let h = snapshot_of(&values);
        for (q, truth) in [(0.5, 5_000), (0.9, 9_000), (0.99, 9_900), (0.999, 9_990)] {
            let got = h.quantile_micros(q).expect("non-empty");
            assert!(
                got >= truth && got - truth < width_of_bucket_holding(truth),
                "q={q}: got {got}, want ~{truth}"
            );
        }
        assert_eq!(h.quantile_micros(0.0), Some(1));
        let max = h.quantile_micros(1.0).expect("non-empty");
        assert!((10_000..10_000 + width_of_bucket_holding(10_000)).contains(&max));
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.sum_micros(), 50_005_000);
        assert_eq!(h.mean_micros(), Some(5_000.5));
    }

    #[test]
    fn quantile_edge_cases() {
        let empty = HistogramSnapshot::new();
        assert_eq!(empty.quantile_micros(0.5), None);
        assert_eq!(empty.mean_micros(), None);

        let single = snapshot_of(&[1_234]);
        let (lo, hi) = bucket_bounds(bucket_index(1_234));
        assert!(lo <= 1_234 && 1_234 <= hi);
        for q in [0.0, 0.01, 0.5, 1.0] {
            assert_eq!(single.quantile_micros(q), Some(hi));
        }
        for q in [-0.01, 1.01, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(single.quantile_micros(q), None, "q={q}");
        }

        let exact = snapshot_of(&[7, 7, 7, 20]);
        assert_eq!(exact.quantile_micros(0.75), Some(7));
        assert_eq!(exact.quantile_micros(0.76), Some(20));

        // Huge values clamp instead of panicking.
        let huge = snapshot_of(&[u64::MAX, u64::MAX]);
        assert_eq!(huge.count(), 2);
        assert_eq!(huge.sum_micros(), u64::MAX);
        assert_eq!(huge.quantile_micros(0.5), Some(MAX_TRACKED_MICROS));
    }

    #[test]
    fn prometheus_bucket_boundaries_use_le_semantics() {
        let h = snapshot_of(&[1_000]);
        let buckets: Vec<(f64, u64)> = h.prometheus_buckets().collect();
        assert_eq!(buckets[0], (0.0005, 0));
        assert_eq!(buckets[1], (0.001, 1));

        let h = snapshot_of(&[500, 501, 1_000, 1_001, 10_000_000, 10_000_001]);
        let cumulative: Vec<u64> = h.prometheus_buckets().map(|(_, c)| c).collect();
        assert_eq!(cumulative, [1, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 6]);
        assert!(cumulative.windows(2).all(|w| w[0] <= w[1]));
        let les: Vec<f64> = h.prometheus_buckets().map(|(le, _)| le).collect();
        assert_eq!(&les[..PROM_BUCKETS], PROMETHEUS_BOUNDS_SECONDS);
        assert_eq!(les[PROM_BUCKETS], f64::INFINITY);
    }

    #[test]
    fn saturating_sub_never_underflows() {
        let small = snapshot_of(&[10]);
        let big = snapshot_of(&[10, 20, 3_000]);
        let diff = small.saturating_sub(&big);
        assert_eq!(diff, HistogramSnapshot::new());
        assert!(diff.is_empty());
        let window = big.saturating_sub(&small);
        assert_eq!(window, snapshot_of(&[20, 3_000]));
    }

    #[test]
    fn concurrent_recording_is_exact() {
        const THREADS: u64 = 8;
        const PER_THREAD: u64 = 20_000;
        let h = LatencyHistogram::new();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let h = &h;
                s.spawn(move || {
                    for i in 0..PER_THREAD {
                        h.record_micros(t * 1_000 + i % 4_000);
                    }
                });
            }
        });
        let snap = h.snapshot();
        let expected_sum: u64 = (0..THREADS)
            .flat_map(|t| (0..PER_THREAD).map(move |i| t * 1_000 + i % 4_000))
            .sum();
        assert_eq!(snap.count(), THREADS * PER_THREAD);
        assert_eq!(snap.sum_micros(), expected_sum);
        let (_, total) = snap.prometheus_buckets().last().expect("+Inf bucket");
        assert_eq!(total, THREADS * PER_THREAD);

        // Same bucketing as the plain snapshot.
        let mut plain = HistogramSnapshot::new();
        for t in 0..THREADS {
            for i in 0..PER_THREAD {
                plain.record_micros(t * 1_000 + i % 4_000);
            }
        }
        assert_eq!(snap, plain);
    }

    #[test]
    fn atomic_and_plain_recording_agree_on_edge_values() {
        let values = [
            0,
            1,
            31,
            32,
            33,
            500,
            1_000,
            10_000_000,
            1 << 36,
            u64::MAX / 2,
        ];
        let h = LatencyHistogram::new();
        values.iter().for_each(|&v| h.record_micros(v));
        assert_eq!(h.snapshot(), snapshot_of(&values));
    }

    #[test]
    fn debug_lists_non_empty_buckets_by_range() {
        let text = format!("{:?}", snapshot_of(&[5, 40, 41]));
        assert!(text.contains("count: 3"), "{text}");
        assert!(text.contains("fine: {5..=5: 1, 40..=41: 2}"), "{text}");
    }

    #[test]
    fn wire_form_trims_and_restores() {
        let h = snapshot_of(&[3, 40]);
        let repr = SnapshotRepr::from(h.clone());
        assert_eq!(repr.buckets.len(), bucket_index(40) + 1);
        assert_eq!(HistogramSnapshot::from(repr), h);

        assert!(
            SnapshotRepr::from(HistogramSnapshot::new())
                .buckets
                .is_empty()
        );

        // Trailing zeros are dropped and the count recomputed.
        let mut le_counts = [0; PROM_BUCKETS];
        le_counts[0] = 1;
        let padded = SnapshotRepr {
            sum_micros: 3,
            le_counts,
            buckets: vec![0, 0, 0, 1, 0, 0],
        };
        assert_eq!(HistogramSnapshot::from(padded), snapshot_of(&[3]));

        // Buckets past the end fold into the last one instead of being lost.
        let mut long = vec![0; FINE_BUCKETS + 3];
        long[LAST] = 1;
        long[FINE_BUCKETS + 2] = 2;
        let snap = HistogramSnapshot::from(SnapshotRepr {
            sum_micros: 0,
            le_counts: [0; PROM_BUCKETS],
            buckets: long,
        });
        assert_eq!(snap.count(), 3);
        assert_eq!(snap.fine.len(), FINE_BUCKETS);
        assert_eq!(snap.fine[LAST], 3);
    }
}
