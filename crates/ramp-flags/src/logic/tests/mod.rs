//! Unit tests of the JsonLogic engine.

mod custom_ops;
mod operators;
mod properties;
mod testbed;

use super::{FractionalVersion, LogicOptions, Rule};
use serde_json::{Map, Value};

fn context(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test context must be an object, got {other}"),
    }
}

/// Compiles `rule` with default options and evaluates it against `data`.
fn eval(rule: Value, data: Value) -> Value {
    eval_with(rule, data, FractionalVersion::V2)
}

fn eval_with(rule: Value, data: Value, fractional: FractionalVersion) -> Value {
    let options = LogicOptions { fractional };
    let compiled =
        Rule::compile(&rule, &options).unwrap_or_else(|e| panic!("{rule} did not compile: {e}"));
    compiled
        .evaluate(&context(data))
        .unwrap_or_else(|e| panic!("{rule} failed: {e}"))
}
