//! A cost breakdown of one Ramp evaluation, to see where time goes when a class falls short of
//! its goal: each step an evaluation performs is timed on its own over the same contexts.

use std::hint::black_box;
use std::time::Duration;

use ramp_flags::logic::{FlagScope, Rule};
use ramp_flags::model::Targeting;
use serde_json::{Map, Value};

use crate::engine::{RampEngine, evaluations_per_second, now_unix_seconds};
use crate::workload::FlagClass;

/// One measured step and its cost.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepCost {
    pub(crate) step: String,
    pub(crate) nanos_per_call: f64,
}

fn cost(step: String, count: usize, duration: Duration, run: impl FnMut(usize)) -> StepCost {
    let rate = evaluations_per_second(count, duration, run);
    StepCost {
        step,
        nanos_per_call: if rate > 0.0 { 1e9 / rate } else { 0.0 },
    }
}

/// Per class: the timed call (a borrowed resolution), the same call made into an owned
/// evaluation, and its parts (the flag lookup, the compiled rule alone).
pub(crate) fn breakdown(
    engine: &RampEngine,
    contexts: &[Map<String, Value>],
    duration: Duration,
) -> Vec<StepCost> {
    let count = contexts.len();
    let mut costs = vec![cost("clock read".to_owned(), count, duration, |_| {
        black_box(now_unix_seconds());
    })];
    for class in FlagClass::ALL {
        let key = class.flag_key();
        let name = class.name();
        costs.push(cost(format!("{name}: resolve"), count, duration, |i| {
            black_box(engine.resolve(class, &contexts[i]));
        }));
        costs.push(cost(
            format!("{name}: owned evaluation"),
            count,
            duration,
            |i| {
                black_box(engine.resolve(class, &contexts[i]).to_evaluation());
            },
        ));
        costs.push(cost(
            format!("{name}: flag lookup"),
            count,
            duration,
            |_| {
                black_box(engine.store().all().get(key));
            },
        ));
        let Some(flag) = engine.store().all().get(key) else {
            continue;
        };
        let Targeting::Rule(rule) = flag.targeting() else {
            continue;
        };
        costs.push(rule_cost(name, key, rule, contexts, duration));
    }
    costs
}

fn rule_cost(
    name: &str,
    key: &str,
    rule: &Rule,
    contexts: &[Map<String, Value>],
    duration: Duration,
) -> StepCost {
    cost(
        format!("{name}: rule only"),
        contexts.len(),
        duration,
        |i| {
            let scope = FlagScope::new(&contexts[i], key, &now_unix_seconds);
            black_box(rule.evaluate_for_flag(&scope).ok());
        },
    )
}

/// The breakdown as aligned lines.
pub(crate) fn render(costs: &[StepCost]) -> String {
    costs
        .iter()
        .map(|cost| format!("{:<28} {:>9.1} ns", cost.step, cost.nanos_per_call))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::generate_contexts;

    #[test]
    fn breakdown_covers_every_class_and_the_rules() {
        let engine = RampEngine::load(include_str!("../flags.json")).unwrap();
        let contexts = generate_contexts(20, 1);
        let costs = breakdown(&engine, &contexts, Duration::from_millis(1));
        let steps: Vec<&str> = costs.iter().map(|cost| cost.step.as_str()).collect();
        for step in [
            "static: resolve",
            "rule: rule only",
            "fractional: owned evaluation",
        ] {
            assert!(steps.contains(&step), "{steps:?}");
        }
        assert!(!steps.contains(&"static: rule only"));
        assert!(costs.iter().all(|cost| cost.nanos_per_call > 0.0));
        assert!(render(&costs).lines().count() == costs.len());
    }
}
