//! Operators that only look at their evaluated arguments: comparisons, arithmetic and string
//! operators, with JavaScript's coercions. Predicates answer a `bool` (or `None` for a `null`
//! answer) so a boolean context never builds a JSON value.

use super::js::{self, less_or_equal, less_than, loose_eq, strict_eq, truthy};
use super::node::Op;
use super::semver;
use serde_json::Value;
use std::borrow::Cow;

/// Whether `op` answers true, false or null, and nothing else.
pub(super) fn is_predicate(op: Op) -> bool {
    matches!(
        op,
        Op::Eq
            | Op::NotEq
            | Op::StrictEq
            | Op::StrictNotEq
            | Op::Lt
            | Op::Le
            | Op::Gt
            | Op::Ge
            | Op::Not
            | Op::NotNot
            | Op::In
            | Op::StartsWith
            | Op::EndsWith
    )
}

/// `min` / `max` over `numbers`: NaN as soon as one is NaN (JavaScript's `Math.min`), else the
/// smallest / largest; infinite when there are none.
pub(super) fn extreme(op: Op, numbers: impl Iterator<Item = f64>) -> f64 {
    let start = if op == Op::Min {
        f64::INFINITY
    } else {
        f64::NEG_INFINITY
    };
    numbers.fold(start, |best, n| {
        if n.is_nan() || best.is_nan() {
            f64::NAN
        } else if op == Op::Min {
            best.min(n)
        } else {
            best.max(n)
        }
    })
}

/// A predicate over its first three evaluated arguments (`argc` is how many the rule gave);
/// `None` is a `null` answer (`starts_with` / `ends_with` on anything but two strings).
pub(super) fn predicate(
    op: Op,
    argc: usize,
    a: Option<&Value>,
    b: Option<&Value>,
    c: Option<&Value>,
) -> Option<bool> {
    let between = |strict: bool| {
        let cmp = |x, y| {
            if strict {
                less_than(x, y) == Some(true)
            } else {
                less_or_equal(x, y)
            }
        };
        cmp(a, b) && (c.is_none() || cmp(b, c))
    };
    Some(match op {
        Op::Eq => loose_eq(a, b),
        Op::NotEq => !loose_eq(a, b),
        Op::StrictEq => strict_eq(a, b),
        Op::StrictNotEq => !strict_eq(a, b),
        Op::Lt => between(true),
        Op::Le => between(false),
        Op::Gt => less_than(b, a) == Some(true),
        Op::Ge => less_or_equal(b, a),
        Op::Not => !a.is_some_and(truthy),
        Op::NotNot => a.is_some_and(truthy),
        Op::In => contains(a, b),
        Op::StartsWith | Op::EndsWith if argc == 2 => match (a, b) {
            (Some(Value::String(text)), Some(Value::String(affix))) => {
                if op == Op::StartsWith {
                    text.starts_with(affix.as_str())
                } else {
                    text.ends_with(affix.as_str())
                }
            }
            _ => return None,
        },
        _ => return None,
    })
}

/// Operators reading at most three evaluated arguments; predicates give their answer as a
/// JSON boolean or `null` (`argc` is how many the rule gave).
pub(super) fn apply_fixed(
    op: Op,
    argc: usize,
    a: Option<&Value>,
    b: Option<&Value>,
    c: Option<&Value>,
) -> Value {
    let number = |n: f64| js::number_value(n);
    match op {
        Op::Sub if argc < 2 => number(-js::to_number(a)),
        Op::Sub => number(js::to_number(a) - js::to_number(b)),
        Op::Div => number(js::to_number(a) / js::to_number(b)),
        Op::Mod => number(js::to_number(a) % js::to_number(b)),
        Op::Substr => Value::String(substr(a, b, c)),
        Op::SemVer if argc == 3 => semver::compare(a, b, c),
        _ => predicate(op, argc, a, b, c).map_or(Value::Null, Value::Bool),
    }
}

/// `in`: substring test when the haystack is a string, strict membership when it is an array.
fn contains(needle: Option<&Value>, haystack: Option<&Value>) -> bool {
    match haystack {
        Some(Value::String(text)) if !text.is_empty() => {
            needle.is_some_and(|needle| text.contains(&*js::to_js_string(needle)))
        }
        Some(Value::Array(items)) => items.iter().any(|item| strict_eq(needle, Some(item))),
        _ => false,
    }
}

/// JavaScript `String(source).substr(start, length)`, where a negative `length` instead drops
/// that many characters from the end. Positions count UTF-16 code units, as in JavaScript.
fn substr(source: Option<&Value>, start: Option<&Value>, length: Option<&Value>) -> String {
    let text = source.map_or(Cow::Borrowed("undefined"), js::to_js_string);
    let units: Vec<u16> = text.encode_utf16().collect();
    let size = units.len() as f64;
    let to_integer = |n: f64| if n.is_nan() { 0.0 } else { n.trunc() };
    let mut from = to_integer(js::to_number(start));
    if from < 0.0 {
        from = (size + from).max(0.0);
    }
    let from = from.min(size);
    let remaining = size - from;
    let take = match length {
        None => remaining,
        Some(length) => match js::to_number(Some(length)) {
            negative if negative < 0.0 => to_integer(remaining + negative).max(0.0),
            length => to_integer(length).min(remaining),
        },
    };
    let (from, take) = (from as usize, take as usize);
    String::from_utf16_lossy(&units[from..from + take])
}
