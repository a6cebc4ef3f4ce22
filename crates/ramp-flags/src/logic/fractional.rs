//! flagd's `fractional` operator: deterministic percentage splits by hashing a bucketing key.
//!
//! The first argument picks the bucketing key; the rest are `[variant, weight?]` buckets, parsed
//! once when the rule is compiled if they are literals. Any malformed input yields `null`, so
//! resolution falls back to the flag's default variant instead of failing.

use super::FractionalVersion;
use super::cbor;
use super::eval::Root;
use super::murmur::{murmur3_x86_32, murmur3_x86_32_of_pieces};
use super::node::Node;
use serde_json::Value;
use std::borrow::Cow;

/// The largest total weight flagd accepts (and so the finest split).
const MAX_TOTAL_WEIGHT: u64 = i32::MAX as u64;

/// A compiled `fractional`: its arguments, and its buckets parsed once when they are constant
/// (the usual case), so an evaluation only evaluates the first argument, hashes and picks.
#[derive(Debug, Clone)]
pub(super) struct Fractional {
    args: Vec<Node>,
    /// Set when every argument after the first is a literal: those arguments as buckets.
    after_first: Option<Split>,
    /// Set when every argument is a literal: all of them as buckets (used when the first
    /// argument is itself a bucket rather than a bucketing key).
    all: Option<Split>,
}

impl Fractional {
    pub(super) fn new(args: Vec<Node>) -> Fractional {
        let parse_literals = |nodes: &[Node]| {
            nodes
                .iter()
                .map(literal)
                .collect::<Option<Vec<_>>>()
                .map(|values| Split::parse(values.into_iter()))
        };
        let after_first = args.get(1..).and_then(parse_literals);
        let all = parse_literals(&args).filter(|_| !args.is_empty());
        Fractional {
            args,
            after_first,
            all,
        }
    }

    /// The arguments as written.
    pub(super) fn args(&self) -> &[Node] {
        &self.args
    }

    /// Whether everything but the first argument is known without evaluating: then
    /// [`Fractional::pick`] applies.
    pub(super) fn is_prepared(&self) -> bool {
        self.after_first.is_some()
    }

    /// The chosen variant given the evaluated first argument, for a prepared `fractional`;
    /// borrowed from the rule unless the first argument is a dynamic bucket.
    pub(super) fn pick<'a>(
        &'a self,
        version: FractionalVersion,
        first: &Value,
        context: Root<'_>,
    ) -> Cow<'a, Value> {
        let null = Cow::Owned(Value::Null);
        let Some((hash, from)) = bucketing(version, first, context) else {
            return null;
        };
        let prepared = match from {
            BucketArgs::AfterFirst => self.after_first.as_ref(),
            BucketArgs::All => self.all.as_ref(),
        };
        if let Some(split) = prepared {
            return split.pick(version, hash).map_or(null, Cow::Borrowed);
        }
        // The first argument was evaluated into a bucket of its own: parse with it in front.
        let rest = self.args.iter().skip(1).filter_map(literal);
        let split = Split::parse(std::iter::once(first).chain(rest));
        Cow::Owned(split.pick(version, hash).cloned().unwrap_or(Value::Null))
    }
}

fn literal(node: &Node) -> Option<&Value> {
    match node {
        Node::Literal(value) => Some(value),
        _ => None,
    }
}

/// Evaluates `fractional` over its evaluated arguments; `context` supplies `targetingKey` and
/// `$flagd.flagKey` for the implicit bucketing key.
pub(super) fn evaluate(
    version: FractionalVersion,
    args: &[Cow<'_, Value>],
    context: Root<'_>,
) -> Value {
    let Some((first, rest)) = args.split_first() else {
        return Value::Null;
    };
    let Some((hash, from)) = bucketing(version, first, context) else {
        return Value::Null;
    };
    let buckets = match from {
        BucketArgs::AfterFirst => rest,
        BucketArgs::All => args,
    };
    Split::parse(buckets.iter().map(|value| &**value))
        .pick(version, hash)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Which arguments are the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BucketArgs {
    /// The first argument is the bucketing key.
    AfterFirst,
    /// The key is implicit and the first argument is already a bucket.
    All,
}

/// The hash of the bucketing key, and which arguments are buckets; `None` (a `null` result)
/// when there is no usable key.
///
/// v1/v2 hash the UTF-8 of a string first argument, else `flagKey + targetingKey` (a `null`
/// first argument is dropped, any other one is taken as the first bucket). v3 hashes the
/// deterministic CBOR of any non-array first argument (`null` is an error), else of the pair
/// `[flagKey, targetingKey]`.
fn bucketing(
    version: FractionalVersion,
    first: &Value,
    context: Root<'_>,
) -> Option<(u32, BucketArgs)> {
    match version {
        FractionalVersion::V1 | FractionalVersion::V2 => match first {
            Value::String(key) => Some((murmur3_x86_32(key.as_bytes(), 0), BucketArgs::AfterFirst)),
            Value::Null => Some((implicit_hash(context)?, BucketArgs::AfterFirst)),
            _ => Some((implicit_hash(context)?, BucketArgs::All)),
        },
        FractionalVersion::V3 => match first {
            Value::Null => None,
            Value::Array(_) => {
                let (flag_key, targeting_key) = implicit_key(context)?;
                let pair = Value::Array(vec![flag_key.into(), targeting_key.into()]);
                Some((murmur3_x86_32(&cbor::encode(&pair), 0), BucketArgs::All))
            }
            other => Some((
                murmur3_x86_32(&cbor::encode(other), 0),
                BucketArgs::AfterFirst,
            )),
        },
    }
}

/// The hash of `flagKey + targetingKey`, streamed over both without joining them.
fn implicit_hash(context: Root<'_>) -> Option<u32> {
    let (flag_key, targeting_key) = implicit_key(context)?;
    Some(murmur3_x86_32_of_pieces(
        &[flag_key.as_bytes(), targeting_key.as_bytes()],
        0,
    ))
}

/// `($flagd.flagKey, targetingKey)`; `None` when the targeting key is missing, empty or not a
/// string. A missing flag key reads as empty.
fn implicit_key(context: Root<'_>) -> Option<(&str, &str)> {
    let targeting_key = context
        .get("targetingKey")?
        .as_str()
        .filter(|key| !key.is_empty())?;
    let flag_key = context.flag_key().unwrap_or("");
    Some((flag_key, targeting_key))
}

/// Weighted variants: `[variant, weight?]` pairs, weight defaulting to 1, whole, clamped below
/// 0; the total must be positive and at most `i32::MAX`. A malformed list has no buckets, so it
/// picks nothing (`null`).
#[derive(Debug, Clone, PartialEq)]
struct Split {
    buckets: Vec<(Value, u64)>,
    total: u64,
}

impl Split {
    const MALFORMED: Split = Split {
        buckets: Vec::new(),
        total: 0,
    };

    fn parse<'v>(args: impl Iterator<Item = &'v Value>) -> Split {
        Self::try_parse(args).unwrap_or(Split::MALFORMED)
    }

    fn try_parse<'v>(args: impl Iterator<Item = &'v Value>) -> Option<Split> {
        let mut buckets = Vec::with_capacity(args.size_hint().0);
        let mut total: u64 = 0;
        for arg in args {
            let Value::Array(pair) = arg else {
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
            buckets.push((variant.clone(), weight));
        }
        (total > 0).then_some(Split { buckets, total })
    }

    fn pick(&self, version: FractionalVersion, hash: u32) -> Option<&Value> {
        match version {
            FractionalVersion::V1 => self.pick_by_percentage(hash),
            FractionalVersion::V2 | FractionalVersion::V3 => self.pick_by_integer_range(hash),
        }
    }

    /// v2/v3: scales the 32-bit hash into `[0, total)` with integer arithmetic.
    fn pick_by_integer_range(&self, hash: u32) -> Option<&Value> {
        let point = (u64::from(hash) * self.total) >> 32;
        let mut range_end = 0;
        self.buckets.iter().find_map(|(variant, weight)| {
            range_end += weight;
            (point < range_end).then_some(variant)
        })
    }

    /// v1 (legacy): `|hash as i32| / i32::MAX` as a percentage against cumulative percentages.
    fn pick_by_percentage(&self, hash: u32) -> Option<&Value> {
        let signed = f64::from(hash.cast_signed());
        let point = signed.abs() / f64::from(i32::MAX) * 100.0;
        let mut range_end = 0.0;
        self.buckets.iter().find_map(|(variant, weight)| {
            range_end += 100.0 * *weight as f64 / self.total as f64;
            (point < range_end).then_some(variant)
        })
    }
}
