//! Per-revision request metrics, sharded per worker thread.
//!
//! The router is thread-per-core: each worker records into its own [`RevisionShard`], so
//! the hot path is a handful of relaxed `fetch_add`s on cache lines no other core writes.
//! Readers call [`RevisionMetrics::snapshot`], which sums the shards into a plain
//! [`RevisionSnapshot`].

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

use crate::histogram::{HistogramSnapshot, LatencyHistogram};
use crate::status::StatusClass;

/// Aligns its content to 128 bytes so two shards never share a cache line (128 rather
/// than 64 covers adjacent-line prefetching on x86 and the 128-byte lines of some ARM
/// cores), which would otherwise make independent cores contend on writes.
#[repr(align(128))]
#[derive(Debug, Default)]
struct CachePadded<T>(T);

/// Metrics of one revision, with one shard per worker thread.
pub struct RevisionMetrics {
    /// Never empty.
    shards: Box<[CachePadded<RevisionShard>]>,
}

impl RevisionMetrics {
    /// Metrics with `shards` shards (one per worker); 0 is treated as 1.
    pub fn new(shards: usize) -> Self {
        let shards = (0..shards.max(1)).map(|_| CachePadded::default()).collect();
        Self { shards }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard for worker `worker`. The index is taken modulo the shard count, so a
    /// caller with an out-of-range index (e.g. more workers than expected) still records,
    /// just onto a shard shared with another worker.
    pub fn shard(&self, worker: usize) -> &RevisionShard {
        &self.shards[worker % self.shards.len()].0
    }

    /// Sums all shards into a plain value.
    ///
    /// Shards are read one after another with relaxed loads, so the result is not an
    /// atomic cut across shards; each counter is still exact once recording quiesces.
    pub fn snapshot(&self) -> RevisionSnapshot {
        let mut total = RevisionSnapshot::default();
        for shard in self.shards.iter() {
            total.merge(&shard.0.snapshot());
        }
        total
    }
}

impl fmt::Debug for RevisionMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevisionMetrics")
            .field("shards", &self.shards.len())
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// One worker's share of a revision's metrics. All methods take `&self` and use relaxed
/// atomics: nothing is ordered against anything else, only counted.
#[derive(Debug, Default)]
pub struct RevisionShard {
    /// Completed requests by [`StatusClass::index`].
    requests: [AtomicU64; 5],
    upstream_errors: AtomicU64,
    mirrored: AtomicU64,
    mirror_dropped: AtomicU64,
    /// Started minus finished/abandoned on this shard. A request starts and ends on the
    /// same worker, so this stays non-negative in practice, but only the sum over shards
    /// is meaningful.
    in_flight: AtomicI64,
    latency: LatencyHistogram,
}

impl RevisionShard {
    /// A request was routed to this revision: in-flight goes up until
    /// [`request_finished`](Self::request_finished) or
    /// [`request_abandoned`](Self::request_abandoned).
    #[inline]
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    /// A response with `status` was sent after `latency_us` microseconds: decrements
    /// in-flight, counts the status class and records the latency.
    ///
    /// Codes outside `100..=599` are invalid HTTP (RFC 9110 §15) and can only come from a
    /// misbehaving upstream, so they count as [`StatusClass::ServerError`]: a broken canary
    /// must look broken to the analysis, and every finished request stays counted once.
    #[inline]
    pub fn request_finished(&self, status: u16, latency_us: u64) {
        self.in_flight.fetch_sub(1, Relaxed);
        let class = StatusClass::from_code(status).unwrap_or(StatusClass::ServerError);
        self.requests[class.index()].fetch_add(1, Relaxed);
        self.latency.record_micros(latency_us);
    }

    /// The client went away before any response: decrements in-flight without counting a
    /// status or a latency (there was no outcome to attribute to the revision).
    #[inline]
    pub fn request_abandoned(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// The router could not get a response from an instance of this revision (connect
    /// refused, reset, timeout). Counted apart from status codes so that gateway errors
    /// caused by the revision can be told from 5xx the application itself returned; the
    /// router still answers 502/503/504 and reports that through
    /// [`request_finished`](Self::request_finished) as well.
    #[inline]
    pub fn upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Relaxed);
    }

    /// A shadow copy of a request was sent to this (mirror target) revision.
    #[inline]
    pub fn mirrored(&self) {
        self.mirrored.fetch_add(1, Relaxed);
    }

    /// A shadow copy was dropped because the mirror target was saturated; mirroring is
    /// best-effort and must never slow down live traffic.
    #[inline]
    pub fn mirror_dropped(&self) {
        self.mirror_dropped.fetch_add(1, Relaxed);
    }

    /// This shard's counters as a plain value.
    pub fn snapshot(&self) -> RevisionSnapshot {
        RevisionSnapshot {
            requests: std::array::from_fn(|i| self.requests[i].load(Relaxed)),
            upstream_errors: self.upstream_errors.load(Relaxed),
            mirrored: self.mirrored.load(Relaxed),
            mirror_dropped: self.mirror_dropped.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}

/// A revision's metrics at one point in time: plain values that can be merged (shards,
/// or several revisions) and subtracted (`snapshot(now).saturating_sub(&then)` = window).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RevisionSnapshot {
    /// Completed requests by status class, indexed by [`StatusClass::index`].
    pub requests: [u64; 5],
    /// Requests for which no upstream response could be obtained.
    pub upstream_errors: u64,
    /// Shadow copies sent.
    pub mirrored: u64,
    /// Shadow copies dropped because the mirror target was saturated.
    pub mirror_dropped: u64,
    /// Requests in flight (a gauge, not a counter).
    pub in_flight: i64,
    /// Latency of completed requests.
    pub latency: HistogramSnapshot,
}

impl RevisionSnapshot {
    /// Completed requests of `class`.
    pub fn requests(&self, class: StatusClass) -> u64 {
        self.requests[class.index()]
    }

    /// All completed requests.
    pub fn total(&self) -> u64 {
        self.requests
            .iter()
            .fold(0u64, |acc, &n| acc.saturating_add(n))
    }

    /// Completed requests answered with a 5xx.
    pub fn errors_5xx(&self) -> u64 {
        self.requests(StatusClass::ServerError)
    }

    /// Fraction of completed requests that were 5xx, `None` when there were none.
    pub fn error_rate(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.errors_5xx() as f64 / total as f64)
    }

    /// Adds `other` to `self`; counters and the in-flight gauge are summed.
    pub fn merge(&mut self, other: &RevisionSnapshot) {
        for (mine, theirs) in self.requests.iter_mut().zip(other.requests) {
            *mine = mine.saturating_add(theirs);
        }
        self.upstream_errors = self.upstream_errors.saturating_add(other.upstream_errors);
        self.mirrored = self.mirrored.saturating_add(other.mirrored);
        self.mirror_dropped = self.mirror_dropped.saturating_add(other.mirror_dropped);
        self.in_flight = self.in_flight.saturating_add(other.in_flight);
        self.latency.merge(&other.latency);
    }

    /// The activity since `earlier`: counters are subtracted (saturating at zero), while
    /// `in_flight`, a gauge, is taken from `self` as the current value.
    pub fn saturating_sub(&self, earlier: &RevisionSnapshot) -> RevisionSnapshot {
        RevisionSnapshot {
            requests: std::array::from_fn(|i| self.requests[i].saturating_sub(earlier.requests[i])),
            upstream_errors: self.upstream_errors.saturating_sub(earlier.upstream_errors),
            mirrored: self.mirrored.saturating_sub(earlier.mirrored),
            mirror_dropped: self.mirror_dropped.saturating_sub(earlier.mirror_dropped),
            in_flight: self.in_flight,
            latency: self.latency.saturating_sub(&earlier.latency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_padded_to_their_own_cache_lines() {
        assert_eq!(std::mem::align_of::<CachePadded<RevisionShard>>(), 128);
        let m = RevisionMetrics::new(2);
        let a = m.shard(0) as *const RevisionShard as usize;
        let b = m.shard(1) as *const RevisionShard as usize;
        assert_ne!(a, b);
        assert_eq!(a % 128, 0);
        assert_eq!(b % 128, 0);
    }

    #[test]
    fn snapshot_sums_shards() {
        let m = RevisionMetrics::new(3);
        assert_eq!(m.shard_count(), 3);
        m.shard(0).request_started();
        m.shard(0).request_finished(200, 1_000);
        m.shard(1).request_started();
        m.shard(1).request_finished(204, 2_000);
        m.shard(2).request_started();
        m.shard(2).request_finished(503, 3_000);
        m.shard(2).upstream_error();
        m.shard(1).mirrored();
        m.shard(2).mirrored();
        m.shard(0).mirror_dropped();

        let s = m.snapshot();
        assert_eq!(s.requests(StatusClass::Success), 2);
        assert_eq!(s.requests(StatusClass::ServerError), 1);
        assert_eq!(s.total(), 3);
        assert_eq!(s.errors_5xx(), 1);
        assert_eq!(s.upstream_errors, 1);
        assert_eq!((s.mirrored, s.mirror_dropped), (2, 1));
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.latency.count(), 3);
        assert_eq!(s.latency.sum_micros(), 6_000);
        assert_eq!(s.error_rate(), Some(1.0 / 3.0));
    }

    #[test]
    fn in_flight_follows_start_finish_and_abandon() {
        let m = RevisionMetrics::new(2);
        for worker in [0, 1, 1] {
            m.shard(worker).request_started();
        }
        assert_eq!(m.snapshot().in_flight, 3);
        m.shard(1).request_finished(200, 10);
        assert_eq!(m.snapshot().in_flight, 2);
        m.shard(0).request_abandoned();
        let s = m.snapshot();
        assert_eq!(s.in_flight, 1);
        // Abandoned requests have no status and no latency.
        assert_eq!(s.total(), 1);
        assert_eq!(s.latency.count(), 1);
    }

    #[test]
    fn every_status_class_is_counted() {
        let m = RevisionMetrics::new(1);
        for code in [101, 200, 201, 302, 404, 429, 500, 504] {
            m.shard(0).request_finished(code, 1);
        }
        let s = m.snapshot();
        assert_eq!(s.requests, [1, 2, 1, 2, 2]);
        // Invalid codes are counted as server errors rather than dropped.
        m.shard(0).request_finished(999, 1);
        m.shard(0).request_finished(0, 1);
        assert_eq!(m.snapshot().errors_5xx(), 4);
        assert_eq!(m.snapshot().total(), m.snapshot().latency.count());
    }

    #[test]
    fn out_of_range_shard_index_still_records() {
        let m = RevisionMetrics::new(4);
        m.shard(4).request_finished(200, 5);
        m.shard(usize::MAX).request_finished(200, 5);
        assert_eq!(m.snapshot().total(), 2);
        assert!(std::ptr::eq(m.shard(4), m.shard(0)));

        let zero = RevisionMetrics::new(0);
        assert_eq!(zero.shard_count(), 1);
        zero.shard(7).upstream_error();
        assert_eq!(zero.snapshot().upstream_errors, 1);
    }

    #[test]
    fn concurrent_workers_sum_exactly() {
        const WORKERS: usize = 4;
        const PER_WORKER: u64 = 10_000;
        let m = RevisionMetrics::new(WORKERS);
        std::thread::scope(|s| {
            for w in 0..WORKERS {
                let shard = m.shard(w);
                s.spawn(move || {
                    for i in 0..PER_WORKER {
                        shard.request_started();
                        shard.request_finished(if i % 10 == 0 { 500 } else { 200 }, i);
                    }
                });
            }
        });
        let s = m.snapshot();
        let n = WORKERS as u64 * PER_WORKER;
        assert_eq!(s.total(), n);
        assert_eq!(s.errors_5xx(), n / 10);
        assert_eq!(s.in_flight, 0);
        assert_eq!(
            s.latency.sum_micros(),
            WORKERS as u64 * (PER_WORKER * (PER_WORKER - 1) / 2)
        );
    }

    #[test]
    fn window_difference_and_merge() {
        let m = RevisionMetrics::new(2);
        m.shard(0).request_started();
        m.shard(0).request_finished(200, 100);
        m.shard(0).request_started();
        let then = m.snapshot();

        m.shard(1).request_finished(500, 7_000);
        m.shard(1).upstream_error();
        m.shard(1).mirrored();
        m.shard(1).request_started();
        let now = m.snapshot();

        let window = now.saturating_sub(&then);
        assert_eq!(window.requests, [0, 0, 0, 0, 1]);
        assert_eq!(window.upstream_errors, 1);
        assert_eq!(window.mirrored, 1);
        assert_eq!(window.in_flight, now.in_flight);
        assert_eq!(window.in_flight, 1);
        assert_eq!(window.error_rate(), Some(1.0));
        assert_eq!(window.latency.count(), 1);
        assert_eq!(window.latency.sum_micros(), 7_000);

        // then + window == now, except the gauge which merge sums.
        let mut rebuilt = then.clone();
        rebuilt.merge(&window);
        assert_eq!(rebuilt.requests, now.requests);
        assert_eq!(rebuilt.latency, now.latency);
        assert_eq!(rebuilt.in_flight, then.in_flight + window.in_flight);

        // Subtracting a later snapshot saturates instead of wrapping.
        let backwards = then.saturating_sub(&now);
        assert_eq!(backwards.total(), 0);
        assert!(backwards.latency.is_empty());
    }

    #[test]
    fn error_rate_is_none_without_requests() {
        assert_eq!(RevisionSnapshot::default().error_rate(), None);
        let s = RevisionSnapshot {
            requests: [0, 3, 0, 0, 1],
            ..Default::default()
        };
        assert_eq!(s.error_rate(), Some(0.25));
    }
}
