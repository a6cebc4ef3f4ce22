//! Flag resolution with flagd's outcomes: which variant is served, with which reason, or which
//! error code, for one flag key and one evaluation context.
//!
//! Errors are values in [`Evaluation::error`], never panics: a caller always gets something it
//! can turn into a wire response, and no value means "use your code default".

use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::model::{Flag, FlagState, FlagStore, Flags, Targeting, VariantType};

/// The outcome of resolving one flag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The flag key asked for.
    pub key: String,
    /// The served value; `None` when the caller should use its code default.
    pub value: Option<Value>,
    /// The served variant's name.
    pub variant: Option<String>,
    /// Why this value (or no value) was served.
    pub reason: Reason,
    /// Set when `reason` is [`Reason::Error`].
    pub error: Option<(ErrorCode, String)>,
    /// The flag's effective metadata (flag-set metadata overlaid with the flag's own).
    pub metadata: Map<String, Value>,
}

impl Evaluation {
    /// Whether resolution failed.
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }

    /// The error code, if resolution failed.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|(code, _)| *code)
    }

    fn failed(key: &str, code: ErrorCode, message: String, metadata: &Map<String, Value>) -> Self {
        Evaluation {
            key: key.to_owned(),
            value: None,
            variant: None,
            reason: Reason::Error,
            error: Some((code, message)),
            metadata: metadata.clone(),
        }
    }
}

/// Why a value was served; spelled as flagd spells it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// No targeting: the default variant.
    Static,
    /// Targeting gave nothing (or there is no default variant): the default applies.
    Default,
    /// Targeting chose the variant.
    TargetingMatch,
    /// The flag is disabled; no value.
    Disabled,
    /// Resolution failed; see the error code.
    Error,
}

impl Reason {
    /// The wire spelling (`TARGETING_MATCH`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::Default => "DEFAULT",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

/// OpenFeature error codes, as flagd reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No visible flag has this key.
    FlagNotFound,
    /// The flag's targeting could not be prepared or evaluated.
    ParseError,
    /// The served variant is not of the type the caller asked for.
    TypeMismatch,
    /// Anything else, e.g. targeting naming a variant the flag does not define.
    General,
    /// The evaluation context is unusable.
    InvalidContext,
    /// The evaluation needs a targeting key the context lacks.
    TargetingKeyMissing,
}

impl ErrorCode {
    /// The wire spelling (`FLAG_NOT_FOUND`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::General => "GENERAL",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        }
    }
}

/// The type the caller resolves (flagd's ResolveBoolean / String / Int / Float / Object), or
/// [`ValueType::Any`] for bulk evaluation, which serves each flag's value as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// A boolean.
    Bool,
    /// A string.
    String,
    /// A 64-bit integer; whole floating-point variants qualify.
    Int,
    /// A floating-point number; integer variants qualify.
    Float,
    /// A JSON object.
    Object,
    /// Whatever the flag holds.
    Any,
}

impl ValueType {
    fn name(self) -> &'static str {
        match self {
            ValueType::Bool => "boolean",
            ValueType::String => "string",
            ValueType::Int => "integer",
            ValueType::Float => "float",
            ValueType::Object => "object",
            ValueType::Any => "any value",
        }
    }
}

impl Flags<'_> {
    /// Resolves `key` for `context`; `now_unix_seconds` becomes `$flagd.timestamp`.
    pub fn evaluate(
        &self,
        key: &str,
        context: &Map<String, Value>,
        expected: ValueType,
        now_unix_seconds: u64,
    ) -> Evaluation {
        match self.get(key) {
            Some(flag) => evaluate_flag(flag, context, expected, now_unix_seconds),
            None => Evaluation::failed(
                key,
                ErrorCode::FlagNotFound,
                format!("flag '{key}' not found"),
                &Map::new(),
            ),
        }
    }

    /// Resolves every visible flag as [`ValueType::Any`], ordered by key; failures are included
    /// as error evaluations so callers decide how to report them.
    pub fn evaluate_all(
        &self,
        context: &Map<String, Value>,
        now_unix_seconds: u64,
    ) -> Vec<Evaluation> {
        self.iter()
            .map(|flag| evaluate_flag(flag, context, ValueType::Any, now_unix_seconds))
            .collect()
    }
}

impl FlagStore {
    /// Resolves `key` among all flags (no selector).
    pub fn evaluate(
        &self,
        key: &str,
        context: &Map<String, Value>,
        expected: ValueType,
        now_unix_seconds: u64,
    ) -> Evaluation {
        self.all()
            .evaluate(key, context, expected, now_unix_seconds)
    }

    /// Resolves every flag (no selector); see [`Flags::evaluate_all`].
    pub fn evaluate_all(
        &self,
        context: &Map<String, Value>,
        now_unix_seconds: u64,
    ) -> Vec<Evaluation> {
        self.all().evaluate_all(context, now_unix_seconds)
    }
}

/// A variant chosen before the type check.
struct Choice<'a> {
    variant: Option<&'a str>,
    reason: Reason,
}

/// Resolves one flag following flagd's steps: disabled, targeting, default, then the type check.
pub fn evaluate_flag(
    flag: &Flag,
    context: &Map<String, Value>,
    expected: ValueType,
    now_unix_seconds: u64,
) -> Evaluation {
    let key = flag.key();
    let metadata = flag.metadata();
    if flag.state() == FlagState::Disabled {
        return Evaluation {
            key: key.to_owned(),
            value: None,
            variant: None,
            reason: Reason::Disabled,
            error: None,
            metadata: metadata.clone(),
        };
    }
    let choice = match flag.targeting() {
        Targeting::None => Choice {
            variant: flag.default_variant(),
            reason: if flag.default_variant().is_some() {
                Reason::Static
            } else {
                Reason::Default
            },
        },
        Targeting::Broken(message) => {
            return Evaluation::failed(key, ErrorCode::ParseError, message.clone(), metadata);
        }
        Targeting::Rule(rule) => {
            let facts = flagd_facts(key, now_unix_seconds);
            let result = match rule.evaluate_with_flagd(context, &facts) {
                Ok(result) => result,
                Err(error) => {
                    let message = format!("targeting of flag '{key}' failed: {error}");
                    return Evaluation::failed(key, ErrorCode::ParseError, message, metadata);
                }
            };
            match choose_from_result(flag, &result) {
                Ok(choice) => choice,
                Err(message) => {
                    return Evaluation::failed(key, ErrorCode::General, message, metadata);
                }
            }
        }
    };
    let Some(variant) = choice.variant else {
        return Evaluation {
            key: key.to_owned(),
            value: None,
            variant: None,
            reason: choice.reason,
            error: None,
            metadata: metadata.clone(),
        };
    };
    let raw = &flag.variants()[variant];
    match coerce(raw, flag.variant_type(), expected) {
        Ok(value) => Evaluation {
            key: key.to_owned(),
            value: Some(value),
            variant: Some(variant.to_owned()),
            reason: choice.reason,
            error: None,
            metadata: metadata.clone(),
        },
        Err(message) => Evaluation::failed(
            key,
            ErrorCode::TypeMismatch,
            format!("flag '{key}': {message}"),
            metadata,
        ),
    }
}

/// `$flagd` for a rule: the flag key and the time. It is passed beside the caller's context
/// (which is not copied) and wins over any `$flagd` the caller sent, so rules can trust it.
fn flagd_facts(key: &str, now_unix_seconds: u64) -> Value {
    let mut facts = Map::new();
    facts.insert("flagKey".to_owned(), Value::from(key));
    facts.insert("timestamp".to_owned(), Value::from(now_unix_seconds));
    Value::Object(facts)
}

/// Maps a targeting result to a variant: null means "use the default", a string (or a boolean,
/// read as "true"/"false") must name a variant.
fn choose_from_result<'a>(flag: &'a Flag, result: &Value) -> Result<Choice<'a>, String> {
    let name = match result {
        Value::Null => {
            return Ok(Choice {
                variant: flag.default_variant(),
                reason: Reason::Default,
            });
        }
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
    match flag.variants().get_key_value(name) {
        Some((variant, _)) => Ok(Choice {
            variant: Some(variant.as_str()),
            reason: Reason::TargetingMatch,
        }),
        None => Err(format!(
            "targeting of flag '{}' returned variant '{name}', which the flag does not define",
            flag.key()
        )),
    }
}

/// The variant value as the caller's type: integers from whole floats, floats from integers.
fn coerce(value: &Value, held: VariantType, expected: ValueType) -> Result<Value, String> {
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
        | (ValueType::Object, Value::Object(_)) => Ok(value.clone()),
        (ValueType::Int, Value::Number(number)) => {
            whole_number(number).map(Value::from).ok_or_else(mismatch)
        }
        (ValueType::Float, Value::Number(number)) => number
            .as_f64()
            .and_then(Number::from_f64)
            .map(Value::Number)
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::logic::LogicOptions;
    use crate::model::{FlagFile, Selector};

    const NOW: u64 = 1_700_000_000;

    fn store(flags: Value) -> FlagStore {
        let document = json!({
            "flags": flags,
            "$evaluators": {"is_admin": {"==": [{"var": "role"}, "admin"]}}
        });
        let file = FlagFile::from_value(&document, &LogicOptions::default()).unwrap();
        FlagStore::new(vec![("main".to_owned(), file)])
    }

    fn context(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn eval(store: &FlagStore, key: &str, ctx: Value, expected: ValueType) -> Evaluation {
        store.evaluate(key, &context(ctx), expected, NOW)
    }

    fn targeted(targeting: Value, default_variant: Value) -> FlagStore {
        store(json!({"f": {
            "state": "ENABLED",
            "variants": {"on": "ON", "off": "OFF", "true": "YES"},
            "defaultVariant": default_variant,
            "targeting": targeting
        }}))
    }

    #[test]
    fn unknown_key_is_flag_not_found() {
        let result = eval(&store(json!({})), "nope", json!({}), ValueType::Bool);
        assert_eq!(result.error_code(), Some(ErrorCode::FlagNotFound));
        assert_eq!(result.reason, Reason::Error);
        assert_eq!(result.value, None);
    }

    #[test]
    fn disabled_flags_serve_no_value() {
        let flags = store(json!({"d": {
            "state": "DISABLED", "variants": {"a": 1}, "defaultVariant": "a",
            "metadata": {"owner": "web"}
        }}));
        let result = eval(&flags, "d", json!({}), ValueType::String);
        assert_eq!(result.reason, Reason::Disabled);
        assert_eq!(
            (result.value, result.variant, result.error),
            (None, None, None)
        );
        assert_eq!(result.metadata["owner"], json!("web"));
    }

    #[test]
    fn no_targeting_serves_the_default_variant_statically() {
        let flags = store(json!({
            "s": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "b"},
            "n": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": null}
        }));
        let result = eval(&flags, "s", json!({}), ValueType::String);
        assert_eq!(result.reason, Reason::Static);
        assert_eq!(result.value, Some(json!("B")));
        assert_eq!(result.variant.as_deref(), Some("b"));
        let result = eval(&flags, "n", json!({}), ValueType::String);
        assert_eq!(result.reason, Reason::Default);
        assert_eq!((result.value, result.variant), (None, None));
    }

    #[test]
    fn targeting_naming_a_variant_is_a_match() {
        let flags = targeted(
            json!({"if": [{"$ref": "is_admin"}, "on", null]}),
            json!("off"),
        );
        let hit = eval(&flags, "f", json!({"role": "admin"}), ValueType::String);
        assert_eq!(hit.reason, Reason::TargetingMatch);
        assert_eq!(hit.value, Some(json!("ON")));
        let miss = eval(&flags, "f", json!({"role": "dev"}), ValueType::String);
        assert_eq!(miss.reason, Reason::Default);
        assert_eq!(miss.variant.as_deref(), Some("off"));
    }

    #[test]
    fn null_result_without_default_variant_serves_no_value() {
        let flags = targeted(
            json!({"if": [{"$ref": "is_admin"}, "on", null]}),
            Value::Null,
        );
        let result = eval(&flags, "f", json!({}), ValueType::String);
        assert_eq!(result.reason, Reason::Default);
        assert_eq!((result.value, result.error), (None, None));
    }

    #[test]
    fn boolean_results_name_the_true_and_false_variants() {
        let flags = targeted(json!({"==": [{"var": "role"}, "admin"]}), json!("off"));
        let result = eval(&flags, "f", json!({"role": "admin"}), ValueType::String);
        assert_eq!(result.variant.as_deref(), Some("true"));
        assert_eq!(result.reason, Reason::TargetingMatch);
        // There is no "false" variant: naming it is an error, not a silent default.
        let result = eval(&flags, "f", json!({"role": "dev"}), ValueType::String);
        assert_eq!(result.error_code(), Some(ErrorCode::General));
    }

    #[test]
    fn results_naming_no_variant_are_general_errors() {
        for rule in [json!({"if": [true, "three", "on"]}), json!({"+": [1, 2]})] {
            let result = eval(
                &targeted(rule, json!("off")),
                "f",
                json!({}),
                ValueType::String,
            );
            assert_eq!(result.error_code(), Some(ErrorCode::General));
            assert_eq!(result.value, None);
        }
    }

    #[test]
    fn unpreparable_rules_are_parse_errors() {
        let unknown_ref = targeted(
            json!({"if": [{"$ref": "missing"}, "on", "off"]}),
            json!("on"),
        );
        let unknown_operator = targeted(json!({"invalid": ["not a rule"]}), json!("on"));
        for flags in [unknown_ref, unknown_operator] {
            let result = eval(&flags, "f", json!({}), ValueType::String);
            assert_eq!(result.error_code(), Some(ErrorCode::ParseError));
            assert_eq!(result.reason, Reason::Error);
        }
    }

    #[test]
    fn rules_see_flag_key_and_timestamp_under_flagd() {
        let rule = json!({"if": [
            {"and": [
                {"==": [{"var": "$flagd.flagKey"}, "f"]},
                {"==": [{"var": "$flagd.timestamp"}, NOW]}
            ]},
            "on", "off"
        ]});
        let flags = targeted(rule, json!("off"));
        // A caller-supplied $flagd cannot spoof the facts.
        let spoofed = json!({"$flagd": {"flagKey": "other", "timestamp": 1}});
        let result = eval(&flags, "f", spoofed, ValueType::String);
        assert_eq!(result.variant.as_deref(), Some("on"));
    }

    #[test]
    fn typed_resolution_checks_and_coerces_numbers() {
        let flags = store(json!({
            "whole": {"state": "ENABLED", "variants": {"a": 2.0}, "defaultVariant": "a"},
            "half": {"state": "ENABLED", "variants": {"a": 2.5}, "defaultVariant": "a"},
            "int": {"state": "ENABLED", "variants": {"a": 7}, "defaultVariant": "a"},
            "text": {"state": "ENABLED", "variants": {"a": "7"}, "defaultVariant": "a"}
        }));
        assert_eq!(
            eval(&flags, "whole", json!({}), ValueType::Int).value,
            Some(json!(2))
        );
        let half = eval(&flags, "half", json!({}), ValueType::Int);
        assert_eq!(half.error_code(), Some(ErrorCode::TypeMismatch));
        assert_eq!(
            eval(&flags, "int", json!({}), ValueType::Float).value,
            Some(json!(7.0))
        );
        let text = eval(&flags, "text", json!({}), ValueType::Int);
        assert_eq!(text.error_code(), Some(ErrorCode::TypeMismatch));
        assert_eq!(text.variant, None);
        assert_eq!(
            eval(&flags, "text", json!({}), ValueType::Any).value,
            Some(json!("7"))
        );
        let object = eval(&flags, "int", json!({}), ValueType::Object);
        assert_eq!(object.error_code(), Some(ErrorCode::TypeMismatch));
    }

    #[test]
    fn evaluate_all_covers_the_selected_flags_including_failures() {
        let file = |id: &str| {
            let document = json!({
                "flags": {
                    format!("{id}-ok"): {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"},
                    format!("{id}-bad"): {"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [true, "zz"]}}
                },
                "metadata": {"flagSetId": id}
            });
            FlagFile::from_value(&document, &LogicOptions::default()).unwrap()
        };
        let flags = FlagStore::new(vec![("x".into(), file("x")), ("y".into(), file("y"))]);
        let selector = Selector::FlagSet("y".into());
        let results = flags.select(&selector).evaluate_all(&Map::new(), NOW);
        let keys: Vec<&str> = results.iter().map(|result| result.key.as_str()).collect();
        assert_eq!(keys, ["y-bad", "y-ok"]);
        assert_eq!(results[0].error_code(), Some(ErrorCode::General));
        assert_eq!(results[1].value, Some(json!(1)));
        assert_eq!(flags.evaluate_all(&Map::new(), NOW).len(), 4);
    }

    #[test]
    fn reasons_and_codes_serialise_like_flagd() {
        assert_eq!(
            serde_json::to_value(Reason::TargetingMatch).unwrap(),
            json!("TARGETING_MATCH")
        );
        assert_eq!(
            serde_json::to_value(ErrorCode::FlagNotFound).unwrap(),
            json!("FLAG_NOT_FOUND")
        );
        for reason in [
            Reason::Static,
            Reason::Default,
            Reason::Disabled,
            Reason::Error,
        ] {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                json!(reason.as_str())
            );
        }
        for code in [
            ErrorCode::ParseError,
            ErrorCode::TypeMismatch,
            ErrorCode::General,
            ErrorCode::InvalidContext,
            ErrorCode::TargetingKeyMissing,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        }
    }

    proptest! {
        /// Whole floats resolve as the same integer; fractional ones never do.
        #[test]
        fn integers_resolve_from_whole_floats(whole in -1_000_000_000i64..1_000_000_000, frac in 0.01f64..0.99) {
            let number = Number::from_f64(whole as f64).unwrap();
            prop_assert_eq!(coerce(&Value::Number(number), VariantType::Number, ValueType::Int), Ok(json!(whole)));
            let fractional = Value::from(whole as f64 + frac);
            prop_assert!(coerce(&fractional, VariantType::Number, ValueType::Int).is_err());
        }
    }
}
