//! flagd's `fractional` operator: deterministic percentage splits by hashing a bucketing key.
//!
//! Arguments arrive evaluated. The first one picks the bucketing key; the rest are
//! `[variant, weight?]` buckets. Any malformed input yields `null`, so resolution falls back to
//! the flag's default variant instead of failing.

use super::FractionalVersion;
use super::cbor;
use super::eval::Root;
use super::murmur::murmur3_x86_32;
use serde_json::Value;
use std::borrow::Cow;

/// The largest total weight flagd accepts (and so the finest split).
const MAX_TOTAL_WEIGHT: u64 = i32::MAX as u64;

/// Evaluates `fractional` over its evaluated arguments; `context` supplies `targetingKey` and
/// `$flagd.flagKey` for the implicit bucketing key.
pub(super) fn evaluate(
    version: FractionalVersion,
    args: &[Cow<'_, Value>],
    context: Root<'_>,
) -> Value {
    let Some((key, buckets)) = bucketing_input(version, args, context) else {
        return Value::Null;
    };
    let Some((buckets, total)) = parse_buckets(buckets) else {
        return Value::Null;
    };
    let hash = murmur3_x86_32(&key, 0);
    let chosen = match version {
        FractionalVersion::V1 => pick_by_percentage(hash, &buckets, total),
        FractionalVersion::V2 | FractionalVersion::V3 => {
            pick_by_integer_range(hash, &buckets, total)
        }
    };
    chosen.cloned().unwrap_or(Value::Null)
}

/// The bytes to hash and the bucket arguments.
type BucketingInput<'v> = (Cow<'v, [u8]>, &'v [Cow<'v, Value>]);

/// Splits the arguments into the bytes to hash and the buckets.
///
/// v1/v2 hash the UTF-8 of a string first argument, else `flagKey + targetingKey` (a `null`
/// first argument is dropped, any other one is taken as the first bucket). v3 hashes the
/// deterministic CBOR of any non-array first argument (`null` is an error), else of the pair
/// `[flagKey, targetingKey]`.
fn bucketing_input<'v>(
    version: FractionalVersion,
    args: &'v [Cow<'v, Value>],
    context: Root<'_>,
) -> Option<BucketingInput<'v>> {
    let (first, rest) = args.split_first()?;
    match version {
        FractionalVersion::V1 | FractionalVersion::V2 => match &**first {
            Value::String(key) => Some((Cow::Borrowed(key.as_bytes()), rest)),
            Value::Null => {
                let (flag_key, targeting_key) = implicit_key(context)?;
                Some((
                    Cow::Owned(format!("{flag_key}{targeting_key}").into_bytes()),
                    rest,
                ))
            }
            _ => {
                let (flag_key, targeting_key) = implicit_key(context)?;
                Some((
                    Cow::Owned(format!("{flag_key}{targeting_key}").into_bytes()),
                    args,
                ))
            }
        },
        FractionalVersion::V3 => match &**first {
            Value::Null => None,
            Value::Array(_) => {
                let (flag_key, targeting_key) = implicit_key(context)?;
                let pair = Value::Array(vec![flag_key.into(), targeting_key.into()]);
                Some((Cow::Owned(cbor::encode(&pair)), args))
            }
            other => Some((Cow::Owned(cbor::encode(other)), rest)),
        },
    }
}

/// `($flagd.flagKey, targetingKey)`; `None` when the targeting key is missing, empty or not a
/// string. A missing flag key reads as empty.
fn implicit_key(context: Root<'_>) -> Option<(&str, &str)> {
    let targeting_key = context
        .get("targetingKey")?
        .as_str()
        .filter(|key| !key.is_empty())?;
    let flag_key = context
        .get("$flagd")
        .and_then(|flagd| flagd.get("flagKey"))
        .and_then(Value::as_str)
        .unwrap_or("");
    Some((flag_key, targeting_key))
}

/// `[variant, weight?]` pairs: weight defaults to 1, must be whole, clamps below 0; the total
/// must be positive and at most `i32::MAX`.
fn parse_buckets<'v>(args: &'v [Cow<'v, Value>]) -> Option<(Vec<(&'v Value, u64)>, u64)> {
    let mut buckets = Vec::with_capacity(args.len());
    let mut total: u64 = 0;
    for arg in args {
        let Value::Array(pair) = &**arg else {
            return None;
        };
        let variant = pair
            .first()
            .filter(|v| !matches!(v, Value::Array(_) | Value::Object(_)))?;
        let weight = match pair.get(1) {
            None | Some(Value::Null) => 1,
            Some(Value::Number(number)) => {
                let weight = number.as_f64()?;
                if weight.fract() != 0.0 || weight > MAX_TOTAL_WEIGHT as f64 {
                    return None;
                }
                weight.max(0.0) as u64
            }
            Some(_) => return None,
        };
        total += weight;
        if total > MAX_TOTAL_WEIGHT {
            return None;
        }
        buckets.push((variant, weight));
    }
    (total > 0).then_some((buckets, total))
}

/// v2/v3: scales the 32-bit hash into `[0, total)` with integer arithmetic.
fn pick_by_integer_range<'v>(
    hash: u32,
    buckets: &[(&'v Value, u64)],
    total: u64,
) -> Option<&'v Value> {
    let point = (u64::from(hash) * total) >> 32;
    let mut range_end = 0;
    buckets.iter().find_map(|(variant, weight)| {
        range_end += weight;
        (point < range_end).then_some(*variant)
    })
}

/// v1 (legacy): `|hash as i32| / i32::MAX` as a percentage against cumulative percentages.
fn pick_by_percentage<'v>(
    hash: u32,
    buckets: &[(&'v Value, u64)],
    total: u64,
) -> Option<&'v Value> {
    let signed = f64::from(hash.cast_signed());
    let point = signed.abs() / f64::from(i32::MAX) * 100.0;
    let mut range_end = 0.0;
    buckets.iter().find_map(|(variant, weight)| {
        range_end += 100.0 * *weight as f64 / total as f64;
        (point < range_end).then_some(*variant)
    })
}
