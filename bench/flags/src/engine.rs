//! The Ramp side: a [`FlagStore`] built once, evaluated through the call an in-process user
//! makes (`FlagStore::resolve` with a typed resolution and the system clock), so the measured
//! cost includes everything the reference evaluators also do per call: the flag lookup, `$flagd`
//! for the rule, running the rule, and a result carrying value, variant, reason and metadata
//! (borrowed from the snapshot rather than copied).

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ramp_flags::logic::{FractionalVersion, LogicOptions};
use ramp_flags::model::{FlagFile, FlagStore, Format};
use ramp_flags::resolve::{Resolution, ValueType};
use serde_json::{Map, Value};

use crate::workload::{FlagClass, PerClass};

/// Ramp's engine loaded with the benchmark's flag file.
#[derive(Debug)]
pub(crate) struct RampEngine {
    store: FlagStore,
}

impl RampEngine {
    /// Parses and validates the flag file with the default (v2 fractional) options and checks
    /// that every class's flag is present.
    pub(crate) fn load(flag_file: &str) -> Result<RampEngine, String> {
        Self::load_with(flag_file, &LogicOptions::default())
    }

    /// Same, with `fractional` bucketing over CBOR keys (v3), which is what the Python reference
    /// evaluator implements; used only to explain its fractional results, never timed.
    pub(crate) fn load_cbor_fractional(flag_file: &str) -> Result<RampEngine, String> {
        let options = LogicOptions {
            fractional: FractionalVersion::V3,
        };
        Self::load_with(flag_file, &options)
    }

    fn load_with(flag_file: &str, options: &LogicOptions) -> Result<RampEngine, String> {
        let file = FlagFile::parse_with(flag_file, Format::Json, options)
            .map_err(|errors| format!("flag file rejected: {errors}"))?;
        for class in FlagClass::ALL {
            if file.flag(class.flag_key()).is_none() {
                return Err(format!(
                    "flag file has no '{}' flag (the {} class)",
                    class.flag_key(),
                    class.name()
                ));
            }
        }
        Ok(RampEngine {
            store: FlagStore::new(vec![("bench".to_owned(), file)]),
        })
    }

    /// The snapshot evaluated.
    pub(crate) fn store(&self) -> &FlagStore {
        &self.store
    }

    /// One evaluation of `class`'s flag, exactly as timed. The clock is handed over, not read:
    /// the engine reads it only for a rule that reads `$flagd`.
    pub(crate) fn resolve(&self, class: FlagClass, context: &Map<String, Value>) -> Resolution<'_> {
        self.store.resolve(
            class.flag_key(),
            context,
            value_type(class),
            now_unix_seconds,
        )
    }

    /// The variant served to each context, in order (`None` when no variant is served).
    pub(crate) fn variants(
        &self,
        class: FlagClass,
        contexts: &[Map<String, Value>],
    ) -> Vec<Option<String>> {
        contexts
            .iter()
            .map(|context| self.resolve(class, context).variant.map(str::to_owned))
            .collect()
    }

    /// Evaluations per second of `class` over `contexts`, cycling through them for at least
    /// `duration`.
    pub(crate) fn evaluations_per_second(
        &self,
        class: FlagClass,
        contexts: &[Map<String, Value>],
        duration: Duration,
    ) -> f64 {
        evaluations_per_second(contexts.len(), duration, |index| {
            black_box(self.resolve(class, &contexts[index]));
        })
    }

    /// One timed run per class.
    pub(crate) fn measure(
        &self,
        contexts: &[Map<String, Value>],
        duration: Duration,
    ) -> PerClass<f64> {
        PerClass::from_fn(|class| self.evaluations_per_second(class, contexts, duration))
    }
}

/// The typed resolution each class uses, matching the drivers' `resolveBooleanEvaluation` /
/// `resolveStringEvaluation` calls.
fn value_type(class: FlagClass) -> ValueType {
    match class {
        FlagClass::Static => ValueType::Bool,
        FlagClass::Rule | FlagClass::Fractional => ValueType::String,
    }
}

/// The clock an in-process caller hands to the engine for `$flagd.timestamp` (the reference
/// evaluators read theirs on every evaluation of a targeted flag).
pub(crate) fn now_unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Runs `evaluate_one(index)` over `0..count` repeatedly until `duration` has passed (checking
/// the clock once per pass, so the clock read does not dominate cheap evaluations) and returns
/// calls per second. `count` 0 gives 0.
pub(crate) fn evaluations_per_second(
    count: usize,
    duration: Duration,
    mut evaluate_one: impl FnMut(usize),
) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let start = Instant::now();
    let mut done: u64 = 0;
    loop {
        for index in 0..count {
            evaluate_one(index);
        }
        done += count as u64;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            return done as f64 / elapsed.as_secs_f64();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::generate_contexts;

    const FLAGS: &str = include_str!("../flags.json");

    #[test]
    fn the_committed_flag_file_serves_every_rule_branch() {
        let engine = RampEngine::load(FLAGS).unwrap();
        let contexts = generate_contexts(1_000, 42);
        let variants = engine.variants(FlagClass::Rule, &contexts);
        for expected in ["internal", "eu", "beta", "standard"] {
            assert!(
                variants.iter().any(|v| v.as_deref() == Some(expected)),
                "no context reaches {expected}"
            );
        }
        let statics = engine.variants(FlagClass::Static, &contexts);
        assert!(statics.iter().all(|v| v.as_deref() == Some("on")));
    }

    #[test]
    fn fractional_split_roughly_follows_the_weights() {
        let engine = RampEngine::load(FLAGS).unwrap();
        let contexts = generate_contexts(1_000, 42);
        let variants = engine.variants(FlagClass::Fractional, &contexts);
        let share = |name: &str| {
            variants
                .iter()
                .filter(|v| v.as_deref() == Some(name))
                .count() as f64
                / 1_000.0
        };
        assert!((share("control") - 0.50).abs() < 0.06);
        assert!((share("blue") - 0.10).abs() < 0.04);
    }

    #[test]
    fn a_file_missing_a_class_flag_is_refused() {
        let text = r#"{"flags": {"checkout-v2": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}"#;
        let error = RampEngine::load(text).unwrap_err();
        assert!(error.contains("pricing-page"), "{error}");
    }

    #[test]
    fn rate_counts_whole_passes() {
        let mut calls = 0u64;
        let rate = evaluations_per_second(10, Duration::from_millis(5), |_| calls += 1);
        assert!(rate > 0.0);
        assert_eq!(calls % 10, 0);
        assert_eq!(
            evaluations_per_second(0, Duration::from_millis(5), |_| {}),
            0.0
        );
    }
}
