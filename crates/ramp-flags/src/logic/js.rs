//! The JavaScript coercions JsonLogic inherits from its reference implementation: truthiness,
//! `ToNumber`, `parseFloat`, `ToString`, loose/strict equality and relational comparison, over
//! JSON values (`None` stands for JavaScript's `undefined`, i.e. a missing argument).

use super::small::str_eq;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

/// Integers up to this magnitude are exact in an `f64`, and are emitted as JSON integers.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

/// JsonLogic truthiness: JavaScript's, except that an empty array is falsy too.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(_) => true,
    }
}

/// A JSON number for an arithmetic result: whole values become integers, NaN and infinities
/// (which JSON cannot carry) become `null`.
pub(crate) fn number_value(number: f64) -> Value {
    if !number.is_finite() {
        return Value::Null;
    }
    if number.fract() == 0.0 && number.abs() < MAX_SAFE_INTEGER {
        return Value::from(number as i64);
    }
    serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
}

/// JavaScript `ToNumber`.
pub(crate) fn to_number(value: Option<&Value>) -> f64 {
    match value {
        None => f64::NAN,
        Some(Value::Null) => 0.0,
        Some(Value::Bool(flag)) => f64::from(u8::from(*flag)),
        Some(Value::Number(number)) => number.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(text)) => string_to_number(text),
        Some(array @ Value::Array(_)) => string_to_number(&to_js_string(array)),
        Some(Value::Object(_)) => f64::NAN,
    }
}

/// JavaScript `parseFloat(String(value))`: the longest numeric prefix, else NaN.
pub(crate) fn parse_float(value: Option<&Value>) -> f64 {
    match value {
        Some(Value::Number(number)) => number.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(text)) => parse_float_prefix(text),
        Some(array @ Value::Array(_)) => parse_float_prefix(&to_js_string(array)),
        _ => f64::NAN,
    }
}

fn is_js_whitespace(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

fn string_to_number(text: &str) -> f64 {
    let trimmed = text.trim_matches(is_js_whitespace);
    if trimmed.is_empty() {
        return 0.0;
    }
    if let Some(number) = radix_literal(trimmed) {
        return number;
    }
    match trimmed {
        "Infinity" | "+Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ if decimal_literal_len(trimmed) == trimmed.len() => trimmed.parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// `0x…`, `0o…`, `0b…` literals (unsigned, as JavaScript's `Number("0x1f")`).
fn radix_literal(text: &str) -> Option<f64> {
    let radix = match text.get(..2)? {
        "0x" | "0X" => 16,
        "0o" | "0O" => 8,
        "0b" | "0B" => 2,
        _ => return None,
    };
    let digits = &text[2..];
    if digits.is_empty() {
        return Some(f64::NAN);
    }
    let parsed = digits.chars().try_fold(0.0_f64, |acc, c| {
        c.to_digit(radix)
            .map(|digit| acc * f64::from(radix) + f64::from(digit))
    });
    Some(parsed.unwrap_or(f64::NAN))
}

/// Length of the longest prefix of `text` that is a decimal literal (sign, digits, fraction,
/// exponent); 0 when there is none.
fn decimal_literal_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let digits_from = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut end = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let int_end = digits_from(end);
    let mut has_digits = int_end > end;
    end = int_end;
    if bytes.get(end) == Some(&b'.') {
        let frac_end = digits_from(end + 1);
        has_digits |= frac_end > end + 1;
        end = frac_end;
    }
    if !has_digits {
        return 0;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let exp_start = end + 1 + usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exp_end = digits_from(exp_start);
        if exp_end > exp_start {
            end = exp_end;
        }
    }
    end
}

fn parse_float_prefix(text: &str) -> f64 {
    let trimmed = text.trim_start_matches(is_js_whitespace);
    let unsigned = trimmed.trim_start_matches(['+', '-']);
    if unsigned.starts_with("Infinity") && trimmed.len() - unsigned.len() <= 1 {
        return if trimmed.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    match decimal_literal_len(trimmed) {
        0 => f64::NAN,
        len => trimmed[..len].parse().unwrap_or(f64::NAN),
    }
}

/// JavaScript `String(value)` (arrays join with `,`, `null` elements become empty).
pub(crate) fn to_js_string(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(text) => Cow::Borrowed(text),
        Value::Null => Cow::Borrowed("null"),
        Value::Bool(flag) => Cow::Borrowed(if *flag { "true" } else { "false" }),
        Value::Number(number) => Cow::Owned(number_to_string(number)),
        Value::Array(items) => {
            let mut joined = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    joined.push(',');
                }
                push_join_piece(&mut joined, item);
            }
            Cow::Owned(joined)
        }
        Value::Object(_) => Cow::Borrowed("[object Object]"),
    }
}

/// Appends `value` as `Array.prototype.join` renders an element (`null` is empty).
pub(crate) fn push_join_piece(out: &mut String, value: &Value) {
    if !value.is_null() {
        out.push_str(&to_js_string(value));
    }
}

fn number_to_string(number: &serde_json::Number) -> String {
    if number.is_i64() || number.is_u64() {
        number.to_string()
    } else {
        js_number_string(number.as_f64().unwrap_or(f64::NAN))
    }
}

/// JavaScript `Number.prototype.toString()` (shortest round-trip digits, exponent outside
/// 1e-7..1e21).
pub(crate) fn js_number_string(number: f64) -> String {
    if number.is_nan() {
        return "NaN".into();
    }
    if number.is_infinite() {
        return if number > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .into();
    }
    if number == 0.0 {
        return "0".into();
    }
    let scientific = format!("{:e}", number.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let sign = if n - 1 < 0 { '-' } else { '+' };
        format!("{first}{fraction}e{sign}{}", (n - 1).abs())
    };
    if number < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

/// JavaScript `==`.
pub(crate) fn loose_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    let is_nullish = |v: Option<&Value>| v.is_none_or(Value::is_null);
    match (a, b) {
        (Some(a), Some(b)) if !a.is_null() && !b.is_null() => loose_eq_present(a, b),
        _ => is_nullish(a) && is_nullish(b),
    }
}

fn loose_eq_present(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => str_eq(x, y),
        (Value::Bool(x), Value::Bool(y)) => x == y,
        // Distinct composite values are never identical in JavaScript.
        (Value::Array(_) | Value::Object(_), Value::Array(_) | Value::Object(_)) => false,
        (Value::String(text), composite @ (Value::Array(_) | Value::Object(_)))
        | (composite @ (Value::Array(_) | Value::Object(_)), Value::String(text)) => {
            *text == *to_js_string(composite)
        }
        _ => to_number(Some(a)) == to_number(Some(b)),
    }
}

/// JavaScript `===`.
pub(crate) fn strict_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Value::Null), Some(Value::Null)) => true,
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x == y,
        (Some(Value::String(x)), Some(Value::String(y))) => str_eq(x, y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        _ => false,
    }
}

enum Primitive<'a> {
    Text(Cow<'a, str>),
    Number(f64),
}

fn to_primitive(value: Option<&Value>) -> Primitive<'_> {
    match value {
        Some(Value::String(text)) => Primitive::Text(Cow::Borrowed(text)),
        Some(composite @ (Value::Array(_) | Value::Object(_))) => {
            Primitive::Text(to_js_string(composite))
        }
        other => Primitive::Number(to_number(other)),
    }
}

/// JavaScript's abstract relational comparison `a < b`; `None` when either side is NaN.
pub(crate) fn less_than(a: Option<&Value>, b: Option<&Value>) -> Option<bool> {
    match (to_primitive(a), to_primitive(b)) {
        (Primitive::Text(x), Primitive::Text(y)) => {
            Some(x.encode_utf16().cmp(y.encode_utf16()) == Ordering::Less)
        }
        (x, y) => {
            let as_number = |p: Primitive<'_>| match p {
                Primitive::Number(n) => n,
                Primitive::Text(text) => string_to_number(&text),
            };
            as_number(x)
                .partial_cmp(&as_number(y))
                .map(|o| o == Ordering::Less)
        }
    }
}

/// JavaScript `a <= b` (false when either side is NaN).
pub(crate) fn less_or_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    less_than(b, a) == Some(false)
}
