//! Whether a flag serves the same variant to every evaluation context, decided from the flag
//! alone (no context, no clock).
//!
//! The analysis over-approximates what a targeting rule can return and only answers "one
//! variant" when every possible result names that variant. Anything it cannot see through
//! (a `var`, a comparison whose outcome it would have to guess, a bucket chosen by the context)
//! counts as "could be anything", so a flag that is not provably single-variant is never
//! reported as such. It relies on rule evaluation itself never failing, which holds for this
//! engine: custom operators answer `null` on bad input.

use serde_json::Value;

use crate::model::{Flag, FlagState, Targeting};

/// Deeper rules are refused by the compiler already; the bound keeps this walk finite even on
/// a source it has not seen compiled.
const MAX_DEPTH: usize = 256;

/// A rule result of `null`: "serve the default variant".
const NULL: &Value = &Value::Null;

/// The variant `flag` serves to everyone, when that can be proven: the flag is ENABLED and
/// either has no targeting (STATIC) and a default variant, or every result its targeting can
/// produce names that same variant. `None` when it is disabled, may serve several variants,
/// may fall back to the caller's code default, or its rule is beyond the analysis.
pub fn single_variant(flag: &Flag) -> Option<&str> {
    if flag.state() != FlagState::Enabled {
        return None;
    }
    let rule = match flag.targeting() {
        Targeting::None => return flag.default_variant(),
        Targeting::Broken(_) => return None,
        Targeting::Rule(_) => flag.targeting_source.as_ref()?,
    };
    let mut results = Vec::new();
    possible_results(rule, 0, &mut results)?;
    let mut served = results
        .into_iter()
        .map(|result| served_variant(flag, result));
    let first = served.next()??;
    served
        .all(|variant| variant == Some(first))
        .then_some(first)
}

/// The variant a rule result selects, as resolution does: `null` means the default variant, a
/// string (or a boolean, read as `"true"` / `"false"`) must name a variant.
fn served_variant<'f>(flag: &'f Flag, result: &Value) -> Option<&'f str> {
    let name = match result {
        Value::Null => return flag.default_variant(),
        Value::String(name) => name.as_str(),
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        _ => return None,
    };
    flag.variants()
        .get_key_value(name)
        .map(|(variant, _)| variant.as_str())
}

/// Adds every value `rule` can evaluate to; `None` when some result cannot be known.
fn possible_results<'r>(rule: &'r Value, depth: usize, out: &mut Vec<&'r Value>) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    match rule {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            out.push(rule);
            Some(())
        }
        Value::Object(map) if map.len() == 1 => {
            let (operator, raw_args) = map.iter().next()?;
            let args = arguments(raw_args);
            match operator.as_str() {
                "if" | "?:" => if_results(args, depth, out),
                // Both return one of their operands (the last one when none decides).
                "and" | "or" => {
                    if args.is_empty() {
                        out.push(NULL);
                    }
                    args.iter()
                        .try_for_each(|arg| possible_results(arg, depth + 1, out))
                }
                "fractional" => fractional_results(args, depth, out),
                _ => None,
            }
        }
        // An array evaluates to an array and any other object is data: neither names a
        // variant, and treating them as unknown says the same.
        _ => None,
    }
}

/// A non-array argument is shorthand for a one-element argument list, as the compiler reads it.
fn arguments(raw: &Value) -> &[Value] {
    match raw {
        Value::Array(items) => items,
        single => std::slice::from_ref(single),
    }
}

/// `[cond, then, cond, then, ..., else?]`: any branch may be taken, whatever the conditions;
/// without an `else` the result may be `null`.
fn if_results<'r>(args: &'r [Value], depth: usize, out: &mut Vec<&'r Value>) -> Option<()> {
    let mut pairs = args.chunks_exact(2);
    for pair in &mut pairs {
        possible_results(&pair[1], depth + 1, out)?;
    }
    match pairs.remainder() {
        [otherwise] => possible_results(otherwise, depth + 1, out),
        _ => {
            out.push(NULL);
            Some(())
        }
    }
}

/// `fractional`: any bucket with a weight that may be positive, and `null` (a missing
/// targeting key, a malformed bucket or a zero total all give `null`).
fn fractional_results<'r>(args: &'r [Value], depth: usize, out: &mut Vec<&'r Value>) -> Option<()> {
    out.push(NULL);
    let buckets = match args.split_first() {
        None => return Some(()),
        // A literal bucketing key (or a dropped `null`): the rest are buckets.
        Some((Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_), rest)) => rest,
        // A literal first bucket.
        Some((Value::Array(_), _)) => args,
        // An expression: a bucketing key only if it can never evaluate to an array, which
        // would be read as a bucket chosen by the context.
        Some((expression, rest)) => {
            let never_array = always_string(expression)
                || possible_results(expression, depth + 1, &mut Vec::new()).is_some();
            if !never_array {
                return None;
            }
            rest
        }
    };
    for bucket in buckets {
        // A computed bucket could be anything the context supplies.
        let Value::Array(pair) = bucket else {
            return None;
        };
        let Some(variant) = pair.first() else {
            continue;
        };
        let never_chosen = pair
            .get(1)
            .and_then(Value::as_f64)
            .is_some_and(|weight| weight <= 0.0);
        // An array or data-object variant makes the whole operator `null`, already counted.
        let not_a_variant = match variant {
            Value::Array(_) => true,
            Value::Object(map) => map.len() != 1,
            _ => false,
        };
        if never_chosen || not_a_variant {
            continue;
        }
        possible_results(variant, depth + 1, out)?;
    }
    Some(())
}

/// Operators whose result is always a string (the usual way to build a bucketing key).
fn always_string(rule: &Value) -> bool {
    rule.as_object().is_some_and(|map| {
        map.len() == 1
            && map
                .keys()
                .all(|operator| matches!(operator.as_str(), "cat" | "substr"))
    })
}

#[cfg(test)]
#[path = "single_variant_tests.rs"]
mod tests;
