//! Evaluation counters by flag and reason, recorded without locks on the request path.
//!
//! The per-flag counters live in a map behind an atomic pointer; the map only grows (a
//! Prometheus counter must not vanish when a flag is deleted), so recording is a lookup and an
//! atomic add. A key seen for the first time copies the map once, under a writer-only mutex.
//! Keys that name no flag are counted together: a client sending random keys must not grow the
//! label set without bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use ramp_flags::resolve::{ErrorCode, Reason};
use ramp_metrics::{MetricKind, PromWriter};

use crate::source::FlagSource;

const REASONS: [Reason; 5] = [
    Reason::Static,
    Reason::Default,
    Reason::TargetingMatch,
    Reason::Disabled,
    Reason::Error,
];

fn reason_index(reason: Reason) -> usize {
    match reason {
        Reason::Static => 0,
        Reason::Default => 1,
        Reason::TargetingMatch => 2,
        Reason::Disabled => 3,
        Reason::Error => 4,
    }
}

/// One flag's evaluation counts, one slot per reason.
#[derive(Debug, Default)]
struct ReasonCounters([AtomicU64; REASONS.len()]);

/// Evaluation counters shared by every flag server of a process.
#[derive(Debug, Default)]
pub struct EvaluationMetrics {
    by_flag: ArcSwap<HashMap<String, Arc<ReasonCounters>>>,
    grow: Mutex<()>,
    unknown_flag: AtomicU64,
}

impl EvaluationMetrics {
    /// Empty counters.
    pub fn new() -> EvaluationMetrics {
        EvaluationMetrics::default()
    }

    /// Counts one evaluation of an existing flag; callers go through
    /// [`record_outcome`](Self::record_outcome), which keeps unknown keys out of the table.
    fn record(&self, key: &str, reason: Reason) {
        let slot = reason_index(reason);
        if let Some(counters) = self.by_flag.load().get(key) {
            counters.0[slot].fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.counters_for_new_key(key).0[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request for a key that names no flag.
    fn record_unknown_flag(&self) {
        self.unknown_flag.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one evaluation by its outcome: an unknown key is counted apart, so a client
    /// asking for random keys cannot grow the per-flag table.
    pub fn record_outcome(&self, key: &str, reason: Reason, error: Option<ErrorCode>) {
        if error == Some(ErrorCode::FlagNotFound) {
            self.record_unknown_flag();
        } else {
            self.record(key, reason);
        }
    }

    /// Evaluations of `key` with `reason` so far.
    pub fn count(&self, key: &str, reason: Reason) -> u64 {
        self.by_flag.load().get(key).map_or(0, |counters| {
            counters.0[reason_index(reason)].load(Ordering::Relaxed)
        })
    }

    /// Requests for keys that name no flag so far.
    pub fn unknown_flag_count(&self) -> u64 {
        self.unknown_flag.load(Ordering::Relaxed)
    }

    fn counters_for_new_key(&self, key: &str) -> Arc<ReasonCounters> {
        let _grow = self.grow.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.by_flag.load();
        if let Some(counters) = current.get(key) {
            return Arc::clone(counters);
        }
        let mut next = HashMap::clone(&current);
        let counters = Arc::new(ReasonCounters::default());
        next.insert(key.to_owned(), Arc::clone(&counters));
        self.by_flag.store(Arc::new(next));
        counters
    }

    /// Appends the evaluation and configuration metrics in Prometheus text format.
    pub fn write_prometheus(&self, source: &FlagSource, out: &mut String) {
        let mut writer = PromWriter::new(out);
        writer.family(
            "ramp_flags_evaluations_total",
            "Flag evaluations served, by flag and reason.",
            MetricKind::Counter,
        );
        let by_flag = self.by_flag.load();
        let mut keys: Vec<&String> = by_flag.keys().collect();
        keys.sort();
        for key in keys {
            let counters = &by_flag[key];
            for reason in REASONS {
                let count = counters.0[reason_index(reason)].load(Ordering::Relaxed);
                if count > 0 {
                    writer.sample(
                        "ramp_flags_evaluations_total",
                        &[("flag", key), ("reason", reason.as_str())],
                        count,
                    );
                }
            }
        }
        let families: [(&str, &str, MetricKind, u64); 4] = [
            (
                "ramp_flags_unknown_flag_evaluations_total",
                "Evaluation requests for keys that name no flag.",
                MetricKind::Counter,
                self.unknown_flag_count(),
            ),
            (
                "ramp_flags_config_reloads_total",
                "Flag configurations accepted, the initial loads included.",
                MetricKind::Counter,
                source.reloads(),
            ),
            (
                "ramp_flags_config_reload_failures_total",
                "Flag configurations refused; the previous flags kept serving.",
                MetricKind::Counter,
                source.reload_failures(),
            ),
            (
                "ramp_flags_config_generation",
                "Number of configuration updates applied since start.",
                MetricKind::Gauge,
                source.generation(),
            ),
        ];
        for (name, help, kind, value) in families {
            writer.family(name, help, kind);
            writer.sample(name, &[], value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_flag_and_reason_and_writes_them() {
        let metrics = EvaluationMetrics::new();
        metrics.record("a", Reason::Static);
        metrics.record("a", Reason::Static);
        metrics.record("a", Reason::Disabled);
        metrics.record("b", Reason::TargetingMatch);
        metrics.record_outcome("nope", Reason::Error, Some(ErrorCode::FlagNotFound));
        metrics.record_outcome("b", Reason::Error, Some(ErrorCode::ParseError));
        assert_eq!(metrics.count("a", Reason::Static), 2);
        assert_eq!(metrics.count("b", Reason::Error), 1);
        assert_eq!(
            metrics.count("nope", Reason::Error),
            0,
            "unknown keys stay out"
        );
        assert_eq!(metrics.count("b", Reason::Static), 0);
        let source = FlagSource::new();
        source.record_reload_failure();
        let mut text = String::new();
        metrics.write_prometheus(&source, &mut text);
        assert!(text.contains("ramp_flags_evaluations_total{flag=\"a\",reason=\"STATIC\"} 2\n"));
        assert!(text.contains("ramp_flags_evaluations_total{flag=\"a\",reason=\"DISABLED\"} 1\n"));
        assert!(
            text.contains(
                "ramp_flags_evaluations_total{flag=\"b\",reason=\"TARGETING_MATCH\"} 1\n"
            )
        );
        assert!(text.contains("ramp_flags_unknown_flag_evaluations_total 1\n"));
        assert!(!text.contains("flag=\"nope\""), "{text}");
        assert!(text.contains("ramp_flags_config_reload_failures_total 1\n"));
    }

    #[test]
    fn concurrent_first_records_of_a_key_are_not_lost() {
        let metrics = Arc::new(EvaluationMetrics::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let metrics = Arc::clone(&metrics);
                std::thread::spawn(move || {
                    for i in 0..500 {
                        metrics.record(&format!("k{}", i % 50), Reason::Static);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let total: u64 = (0..50)
            .map(|i| metrics.count(&format!("k{i}"), Reason::Static))
            .sum();
        assert_eq!(total, 2000);
    }
}
