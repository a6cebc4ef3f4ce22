//! Per-revision request metrics for the Ramp router.
//!
//! The router is thread-per-core, so metrics are recorded on the worker's own shard
//! ([`RevisionMetrics::shard`]) with relaxed atomics: recording never contends between
//! cores, never locks and never allocates. Readers (the Prometheus endpoint, the analysis
//! engine) take snapshots that sum the shards. Snapshots are plain values that can be
//! merged and subtracted, so the metrics of a time window are
//! `snapshot(now).saturating_sub(&snapshot(then))`.
//!
//! * [`LatencyHistogram`] / [`HistogramSnapshot`]: latency with fine log-linear buckets for
//!   quantiles plus the classic Prometheus buckets.
//! * [`RevisionMetrics`] / [`RevisionShard`] / [`RevisionSnapshot`]: request outcomes by
//!   [`StatusClass`], upstream errors, mirroring, in-flight requests and latency.
//! * [`PromWriter`]: text exposition format 0.0.4 (escaping, number formatting, histogram
//!   series). The router's families are defined by its renderer, in `ramp-proxy`.
//!
//! The crate is pure: no I/O and no runtime.

mod histogram;
mod prometheus;
mod revision;
mod status;

pub use histogram::{HistogramSnapshot, LatencyHistogram, PROMETHEUS_BOUNDS_SECONDS};
pub use prometheus::{MetricKind, PromWriter, SampleValue};
pub use revision::{RevisionMetrics, RevisionShard, RevisionSnapshot};
pub use status::StatusClass;
