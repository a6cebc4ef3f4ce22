//! One flag resolved without copying: the result points into the flag (its key, the variant's
//! name and value, the metadata merged at load), so resolving allocates nothing unless it fails
//! or a number has to change form (a whole float asked for as an integer, or the reverse).

use std::borrow::Cow;
use std::sync::LazyLock;

use serde_json::{Map, Number, Value};

use super::{ErrorCode, Evaluation, Reason, ValueType};
use crate::logic::FlagScope;
use crate::model::{Flag, FlagState, ServedFlag, Targeting, VariantType};

/// The metadata of a key that names no flag.
static NO_METADATA: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

/// The outcome of resolving one flag, borrowed from the store snapshot (and, for an unknown
/// key, from the key asked for).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution<'a> {
    /// The flag key asked for.
    pub key: &'a str,
    /// The served value; `None` when the caller should use its code default. Borrowed from the
    /// flag unless the requested type changed its form.
    pub value: Option<Cow<'a, Value>>,
    /// The served variant's name.
    pub variant: Option<&'a str>,
    /// Why this value (or no value) was served.
    pub reason: Reason,
    /// Set when `reason` is [`Reason::Error`].
    pub error: Option<(ErrorCode, String)>,
    /// The flag's effective metadata (flag-set metadata overlaid with the flag's own).
    pub metadata: &'a Map<String, Value>,
}

impl<'a> Resolution<'a> {
    /// Whether resolution failed.
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }

    /// The error code, if resolution failed.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|(code, _)| *code)
    }

    /// An owned copy, for keeping beyond the snapshot.
    pub fn to_evaluation(&self) -> Evaluation {
        self.clone().into()
    }

    /// FLAG_NOT_FOUND for `key`.
    pub(crate) fn not_found(key: &'a str) -> Resolution<'a> {
        Resolution::failed(
            key,
            ErrorCode::FlagNotFound,
            format!("flag '{key}' not found"),
            &NO_METADATA,
        )
    }

    fn failed(
        key: &'a str,
        code: ErrorCode,
        message: String,
        metadata: &'a Map<String, Value>,
    ) -> Resolution<'a> {
        Resolution {
            key,
            value: None,
            variant: None,
            reason: Reason::Error,
            error: Some((code, message)),
            metadata,
        }
    }

    fn without_value(key: &'a str, reason: Reason, metadata: &'a Map<String, Value>) -> Self {
        Resolution {
            key,
            value: None,
            variant: None,
            reason,
            error: None,
            metadata,
        }
    }
}

impl From<Resolution<'_>> for Evaluation {
    fn from(resolution: Resolution<'_>) -> Evaluation {
        Evaluation {
            key: resolution.key.to_owned(),
            value: resolution.value.map(Cow::into_owned),
            variant: resolution.variant.map(str::to_owned),
            reason: resolution.reason,
            error: resolution.error,
            metadata: resolution.metadata.clone(),
        }
    }
}

/// A variant chosen before the type check: its name and value, borrowed from the flag.
struct Choice<'a> {
    variant: Option<Variant<'a>>,
    reason: Reason,
}

/// Resolves one flag following flagd's steps: disabled, targeting, default, then the type
/// check. `now` gives the Unix time in seconds for `$flagd.timestamp`; it is called only if
/// the flag's rule reads `$flagd`.
pub fn resolve_flag<'a>(
    flag: &'a Flag,
    context: &Map<String, Value>,
    expected: ValueType,
    now: &dyn Fn() -> u64,
) -> Resolution<'a> {
    resolve_with(flag, flag.variants(), context, expected, now)
}

/// [`resolve_flag`] for a flag of a snapshot, whose variants are prepared for lookup.
pub(crate) fn resolve_served<'a>(
    served: &'a ServedFlag,
    context: &Map<String, Value>,
    expected: ValueType,
    now: &dyn Fn() -> u64,
) -> Resolution<'a> {
    resolve_with(served.flag(), served, context, expected, now)
}

/// A variant: its name and value as the flag holds them.
type Variant<'a> = (&'a str, &'a Value);

/// How resolution finds a flag's variants by name.
trait VariantTable<'a>: Copy {
    fn named(self, name: &str) -> Option<Variant<'a>>;

    /// The default variant, called `name`; a table may know where it is in advance.
    fn default_named(self, name: &str) -> Option<Variant<'a>> {
        self.named(name)
    }
}

impl<'a> VariantTable<'a> for &'a Map<String, Value> {
    fn named(self, name: &str) -> Option<Variant<'a>> {
        let (name, value) = self.get_key_value(name)?;
        Some((name, value))
    }
}

impl<'a> VariantTable<'a> for &'a ServedFlag {
    fn named(self, name: &str) -> Option<Variant<'a>> {
        self.variant(name)
    }

    fn default_named(self, name: &str) -> Option<Variant<'a>> {
        self.default_variant().or_else(|| self.variant(name))
    }
}

fn resolve_with<'a>(
    flag: &'a Flag,
    variants: impl VariantTable<'a>,
    context: &Map<String, Value>,
    expected: ValueType,
    now: &dyn Fn() -> u64,
) -> Resolution<'a> {
    let key = flag.key();
    let metadata = flag.metadata();
    if flag.state() == FlagState::Disabled {
        return Resolution::without_value(key, Reason::Disabled, metadata);
    }
    let chosen = match flag.targeting() {
        Targeting::None => {
            let reason = if flag.default_variant().is_some() {
                Reason::Static
            } else {
                Reason::Default
            };
            default_choice(flag, variants, reason)
        }
        Targeting::Broken(message) => {
            return Resolution::failed(key, ErrorCode::ParseError, message.clone(), metadata);
        }
        Targeting::Rule(rule) => {
            let scope = FlagScope::new(context, key, now);
            match rule.evaluate_for_flag(&scope) {
                Ok(result) => choose_from_result(flag, variants, &result),
                Err(error) => {
                    let message = format!("targeting of flag '{key}' failed: {error}");
                    return Resolution::failed(key, ErrorCode::ParseError, message, metadata);
                }
            }
        }
    };
    let choice = match chosen {
        Ok(choice) => choice,
        Err(message) => return Resolution::failed(key, ErrorCode::General, message, metadata),
    };
    let Some((variant, raw)) = choice.variant else {
        return Resolution::without_value(key, choice.reason, metadata);
    };
    match coerce(raw, flag.variant_type(), expected) {
        Ok(value) => Resolution {
            key,
            value: Some(value),
            variant: Some(variant),
            reason: choice.reason,
            error: None,
            metadata,
        },
        Err(message) => Resolution::failed(
            key,
            ErrorCode::TypeMismatch,
            format!("flag '{key}': {message}"),
            metadata,
        ),
    }
}

/// The default variant (or none) with `reason`. Validation guarantees the default names a
/// variant; a flag built otherwise gets an error rather than a panic.
fn default_choice<'a>(
    flag: &Flag,
    variants: impl VariantTable<'a>,
    reason: Reason,
) -> Result<Choice<'a>, String> {
    let Some(name) = flag.default_variant() else {
        return Ok(Choice {
            variant: None,
            reason,
        });
    };
    match variants.default_named(name) {
        Some(found) => Ok(Choice {
            variant: Some(found),
            reason,
        }),
        None => Err(format!(
            "the default variant '{name}' of flag '{}' is not one of its variants",
            flag.key()
        )),
    }
}

/// Maps a targeting result to a variant: null means "use the default", a string (or a boolean,
/// read as "true"/"false") must name a variant.
fn choose_from_result<'a>(
    flag: &Flag,
    variants: impl VariantTable<'a>,
    result: &Value,
) -> Result<Choice<'a>, String> {
    let name = match result {
        Value::Null => return default_choice(flag, variants, Reason::Default),
        Value::String(name) => name.as_str(),
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        other => {
            return Err(format!(
                "targeting of flag '{}' returned {other}, which names no variant",
                flag.key()
            ));
        }
    };
    match variants.named(name) {
        Some(found) => Ok(Choice {
            variant: Some(found),
            reason: Reason::TargetingMatch,
        }),
        None => Err(format!(
            "targeting of flag '{}' returned variant '{name}', which the flag does not define",
            flag.key()
        )),
    }
}

/// The variant value as the caller's type: integers from whole floats, floats from integers.
/// Borrowed whenever the value already has the form asked for.
pub(super) fn coerce(
    value: &Value,
    held: VariantType,
    expected: ValueType,
) -> Result<Cow<'_, Value>, String> {
    let mismatch = || {
        format!(
            "variant value {value} is a {}, not a {}",
            held.name(),
            expected.name()
        )
    };
    match (expected, value) {
        (ValueType::Any, _)
        | (ValueType::Bool, Value::Bool(_))
        | (ValueType::String, Value::String(_))
        | (ValueType::Object, Value::Object(_)) => Ok(Cow::Borrowed(value)),
        (ValueType::Int, Value::Number(number)) if number.is_i64() => Ok(Cow::Borrowed(value)),
        (ValueType::Int, Value::Number(number)) => whole_number(number)
            .map(|integer| Cow::Owned(Value::from(integer)))
            .ok_or_else(mismatch),
        (ValueType::Float, Value::Number(number)) if number.is_f64() => Ok(Cow::Borrowed(value)),
        (ValueType::Float, Value::Number(number)) => number
            .as_f64()
            .and_then(Number::from_f64)
            .map(|float| Cow::Owned(Value::Number(float)))
            .ok_or_else(mismatch),
        _ => Err(mismatch()),
    }
}

/// The number as an `i64` when it is a whole number in range.
fn whole_number(number: &Number) -> Option<i64> {
    if let Some(integer) = number.as_i64() {
        return Some(integer);
    }
    let float = number.as_f64()?;
    // -2^63 and 2^63 are exact in f64; an i64 holds [-2^63, 2^63).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let in_range = (-LIMIT..LIMIT).contains(&float);
    (float.fract() == 0.0 && in_range).then_some(float as i64)
}
