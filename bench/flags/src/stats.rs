//! Latency percentiles: exact ones over a few hundred samples (nearest rank over a sorted list)
//! and, for load runs with millions of requests, an HDR-style histogram whose memory is fixed
//! however long the run and whose percentiles are within 1/128 of the exact ones.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Sub-buckets per power of two: a recorded value is known to within 1/128 (under 0.8%).
const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// Values are nanoseconds; anything from 2^40 ns (about 18 minutes) up is counted as that.
const MAX_VALUE_BITS: u32 = 40;
const LARGEST_VALUE: u64 = (1 << MAX_VALUE_BITS) - 1;
/// Exact buckets below [`SUB_BUCKETS`], then [`SUB_BUCKETS`] per power of two up to 2^40.
const BUCKETS: usize = (SUB_BUCKETS as usize) * (1 + (MAX_VALUE_BITS - SUB_BUCKET_BITS) as usize);

/// The value at quantile `q` (0..=1) of ascending `sorted` by nearest rank: the smallest sample
/// that at least `q` of all samples do not exceed. `None` when there are no samples.
pub(crate) fn nearest_rank(sorted: &[Duration], q: f64) -> Option<Duration> {
    let rank = rank_of(q, sorted.len() as u64)?;
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// The 1-based nearest rank of quantile `q` among `count` samples.
fn rank_of(q: f64, count: u64) -> Option<u64> {
    if count == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * count as f64).ceil() as u64;
    Some(rank.clamp(1, count))
}

/// Latency counts in logarithmic buckets (HDR-style): fixed memory, mergeable across tasks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
    max_nanos: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max_nanos: 0,
        }
    }
}

impl LatencyHistogram {
    pub(crate) fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos())
            .unwrap_or(u64::MAX)
            .min(LARGEST_VALUE);
        self.counts[bucket_of(nanos)] += 1;
        self.total += 1;
        self.max_nanos = self.max_nanos.max(nanos);
    }

    /// Adds every count of `other`.
    pub(crate) fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max_nanos = self.max_nanos.max(other.max_nanos);
    }

    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` by nearest rank, reported as the highest value of its bucket
    /// (never above the largest recorded): at least the exact figure and within 1/128 of it.
    pub(crate) fn value_at(&self, q: f64) -> Option<Duration> {
        let rank = rank_of(q, self.total)?;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_nanos(
                    highest_in_bucket(bucket).min(self.max_nanos),
                ));
            }
        }
        None
    }

    pub(crate) fn max(&self) -> Option<Duration> {
        (self.total > 0).then(|| Duration::from_nanos(self.max_nanos))
    }

    /// Median, 99th percentile and maximum in milliseconds.
    pub(crate) fn summary(&self) -> LatencySummary {
        LatencySummary {
            samples: self.total,
            p50_ms: millis(self.value_at(0.5)),
            p99_ms: millis(self.value_at(0.99)),
            max_ms: millis(self.max()),
        }
    }
}

/// The bucket holding `nanos` (at most [`LARGEST_VALUE`]).
fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB_BUCKETS {
        return nanos as usize;
    }
    let magnitude = u64::BITS - 1 - nanos.leading_zeros();
    let shift = magnitude - SUB_BUCKET_BITS;
    let sub_bucket = (nanos >> shift) - SUB_BUCKETS;
    ((shift as u64 + 1) * SUB_BUCKETS + sub_bucket) as usize
}

/// The largest value that falls into `bucket`.
fn highest_in_bucket(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB_BUCKETS {
        return bucket;
    }
    let shift = bucket / SUB_BUCKETS - 1;
    let lowest = (SUB_BUCKETS + bucket % SUB_BUCKETS) << shift;
    lowest + (1 << shift) - 1
}

/// A latency distribution in milliseconds; `None` figures when there were no samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct LatencySummary {
    pub(crate) samples: u64,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    pub(crate) max_ms: Option<f64>,
}

impl LatencySummary {
    /// The exact summary of `samples` (sorted in place).
    pub(crate) fn exact(samples: &mut [Duration]) -> LatencySummary {
        samples.sort_unstable();
        LatencySummary {
            samples: samples.len() as u64,
            p50_ms: millis(nearest_rank(samples, 0.5)),
            p99_ms: millis(nearest_rank(samples, 0.99)),
            max_ms: millis(samples.last().copied()),
        }
    }
}

/// Milliseconds rounded to the microsecond.
fn millis(value: Option<Duration>) -> Option<f64> {
    value.map(|value| (value.as_secs_f64() * 1e6).round() / 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn nearest_rank_picks_a_sample_at_or_above_the_quantile() {
        let sorted = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(nearest_rank(&sorted, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(nearest_rank(&sorted, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(nearest_rank(&sorted, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(nearest_rank(&sorted, 0.0), Some(Duration::from_millis(1)));
        // With fewer than 100 samples the 99th percentile is the largest one.
        let few = ms(&[3, 5, 9]);
        assert_eq!(nearest_rank(&few, 0.99), Some(Duration::from_millis(9)));
        assert_eq!(nearest_rank(&few, 0.5), Some(Duration::from_millis(5)));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }

    #[test]
    fn exact_summary_sorts_and_reports_milliseconds() {
        let mut samples = ms(&[7, 1, 4, 2]);
        samples.push(Duration::from_micros(2_500));
        let summary = LatencySummary::exact(&mut samples);
        assert_eq!(summary.samples, 5);
        assert_eq!(summary.p50_ms, Some(2.5));
        assert_eq!(summary.p99_ms, Some(7.0));
        assert_eq!(summary.max_ms, Some(7.0));
        let empty = LatencySummary::exact(&mut []);
        assert_eq!((empty.samples, empty.p99_ms), (0, None));
    }

    #[test]
    fn small_values_are_exact_and_buckets_tile_the_range() {
        let mut histogram = LatencyHistogram::default();
        for nanos in [5, 5, 90, 127] {
            histogram.record(Duration::from_nanos(nanos));
        }
        assert_eq!(histogram.value_at(0.5), Some(Duration::from_nanos(5)));
        assert_eq!(histogram.value_at(0.99), Some(Duration::from_nanos(127)));
        for bucket in 0..BUCKETS - 1 {
            assert_eq!(
                bucket_of(highest_in_bucket(bucket) + 1),
                bucket + 1,
                "bucket {bucket}"
            );
        }
        assert_eq!(bucket_of(LARGEST_VALUE), BUCKETS - 1);
    }

    #[test]
    fn huge_values_are_clamped_not_lost() {
        let mut histogram = LatencyHistogram::default();
        histogram.record(Duration::from_secs(100_000));
        assert_eq!(histogram.count(), 1);
        assert_eq!(histogram.max(), Some(Duration::from_nanos(LARGEST_VALUE)));
        assert_eq!(LatencyHistogram::default().summary().p50_ms, None);
    }

    proptest! {
        #[test]
        fn histogram_percentiles_are_within_one_128th_of_the_exact_ones(
            nanos in proptest::collection::vec(1u64..5_000_000_000, 1..400),
            q in 0.0f64..=1.0,
        ) {
            let mut histogram = LatencyHistogram::default();
            let mut samples: Vec<Duration> = nanos.iter().map(|&n| Duration::from_nanos(n)).collect();
            for sample in &samples {
                histogram.record(*sample);
            }
            samples.sort_unstable();
            let exact = nearest_rank(&samples, q).unwrap().as_nanos() as u64;
            let approximate = histogram.value_at(q).unwrap().as_nanos() as u64;
            prop_assert!(exact <= approximate, "{exact} > {approximate}");
            prop_assert!(approximate <= exact + exact / 128, "{approximate} far above {exact}");
            prop_assert_eq!(histogram.max(), samples.last().copied());
        }

        #[test]
        fn merged_histograms_equal_one_fed_everything(
            left in proptest::collection::vec(0u64..10_000_000, 0..100),
            right in proptest::collection::vec(0u64..10_000_000, 0..100),
        ) {
            let fill = |values: &[u64]| {
                let mut histogram = LatencyHistogram::default();
                for &nanos in values {
                    histogram.record(Duration::from_nanos(nanos));
                }
                histogram
            };
            let mut merged = fill(&left);
            merged.merge(&fill(&right));
            let all: Vec<u64> = left.iter().chain(&right).copied().collect();
            prop_assert_eq!(merged, fill(&all));
        }
    }
}
