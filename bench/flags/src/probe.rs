//! A cost breakdown of one Ramp evaluation, to see where time goes when a class falls short of
//! its goal: each step an evaluation performs is timed on its own over the same contexts.

use std::hint::black_box;
use std::time::Duration;

use ramp_flags::logic::Rule;
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

/// The context an evaluation hands to a rule: the caller's plus `$flagd` facts, built the way
/// the engine builds it (a clone of the caller's map with one entry added).
fn enriched(context: &Map<String, Value>, key: &str, now: u64) -> Map<String, Value> {
    let mut facts = Map::new();
    facts.insert("flagKey".to_owned(), Value::from(key));
    facts.insert("timestamp".to_owned(), Value::from(now));
    let mut copy = context.clone();
    copy.insert("$flagd".to_owned(), Value::Object(facts));
    copy
}

/// Per class: the whole evaluation, then its parts (lookup, clock, context enrichment, the
/// compiled rule alone on a pre-built context).
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
        costs.push(cost(
            format!("{name}: full evaluate"),
            count,
            duration,
            |i| {
                black_box(engine.evaluate(class, &contexts[i]));
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
        costs.push(cost(format!("{name}: add $flagd"), count, duration, |i| {
            black_box(enriched(&contexts[i], key, 1_700_000_000));
        }));
        let prepared: Vec<Map<String, Value>> = contexts
            .iter()
            .map(|context| enriched(context, key, 1_700_000_000))
            .collect();
        costs.push(rule_cost(name, rule, &prepared, duration));
    }
    costs
}

fn rule_cost(
    name: &str,
    rule: &Rule,
    prepared: &[Map<String, Value>],
    duration: Duration,
) -> StepCost {
    cost(
        format!("{name}: rule only"),
        prepared.len(),
        duration,
        |i| {
            black_box(rule.evaluate(&prepared[i]).ok());
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
            "static: full evaluate",
            "rule: rule only",
            "fractional: add $flagd",
        ] {
            assert!(steps.contains(&step), "{steps:?}");
        }
        assert!(!steps.contains(&"static: rule only"));
        assert!(costs.iter().all(|cost| cost.nanos_per_call > 0.0));
        assert!(render(&costs).lines().count() == costs.len());
    }
}
