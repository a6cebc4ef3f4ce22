use std::borrow::Cow;
use std::cell::Cell;

use proptest::prelude::*;
use serde_json::json;

use super::resolution::coerce;
use super::*;
use crate::logic::LogicOptions;
use crate::model::VariantType;
use crate::model::{FlagFile, Selector};
use serde_json::Number;

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

#[test]
fn resolutions_borrow_from_the_snapshot() {
    let flags = store(json!({"f": {
        "state": "ENABLED",
        "variants": {"on": "ON", "off": "OFF"},
        "defaultVariant": "off",
        "targeting": {"if": [{"$ref": "is_admin"}, "on", null]},
        "metadata": {"owner": "web"}
    }}));
    let admin = context(json!({"role": "admin"}));
    let resolution = flags.resolve("f", &admin, ValueType::String, || NOW);
    let flag = flags.all().get("f").unwrap();
    assert_eq!(resolution.variant, Some("on"));
    assert!(matches!(&resolution.value, Some(Cow::Borrowed(value)) if *value == "ON"));
    assert!(std::ptr::eq(resolution.metadata, flag.metadata()));
    assert_eq!(resolution.reason, Reason::TargetingMatch);
    assert_eq!(
        resolution.to_evaluation(),
        flags.evaluate("f", &admin, ValueType::String, NOW)
    );
    let missing = flags.resolve("nope", &admin, ValueType::String, || NOW);
    assert_eq!(missing.error_code(), Some(ErrorCode::FlagNotFound));
    assert_eq!((missing.key, missing.metadata.len()), ("nope", 0));
}

#[test]
fn the_clock_is_read_only_by_rules_that_read_flagd() {
    let flags = store(json!({
        "static": {"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "on"},
        "rule": {"state": "ENABLED", "variants": {"on": 1, "off": 0}, "defaultVariant": "off",
                 "targeting": {"if": [{"$ref": "is_admin"}, "on", null]}},
        "split": {"state": "ENABLED", "variants": {"on": 1, "off": 0}, "defaultVariant": "off",
                  "targeting": {"fractional": [["on", 1], ["off", 1]]}},
        "timed": {"state": "ENABLED", "variants": {"on": 1, "off": 0}, "defaultVariant": "off",
                  "targeting": {"if": [{">": [{"var": "$flagd.timestamp"}, 1000]}, "on", "off"]}}
    }));
    let reads = Cell::new(0);
    let now = || {
        reads.set(reads.get() + 1);
        NOW
    };
    let user = context(json!({"role": "admin", "targetingKey": "u1"}));
    for key in ["static", "rule", "split"] {
        assert!(!flags.resolve(key, &user, ValueType::Int, now).is_error());
    }
    assert_eq!(reads.get(), 0, "no rule read $flagd");
    let timed = flags.resolve("timed", &user, ValueType::Int, now);
    assert_eq!((timed.variant, reads.get()), (Some("on"), 1));
}

#[test]
fn numbers_stay_borrowed_unless_the_type_asked_for_changes_their_form() {
    let flags = store(json!({
        "int": {"state": "ENABLED", "variants": {"a": 7}, "defaultVariant": "a"},
        "whole": {"state": "ENABLED", "variants": {"a": 2.0}, "defaultVariant": "a"}
    }));
    let resolve = |key, expected| flags.resolve(key, &Map::new(), expected, || NOW).value;
    assert!(matches!(
        resolve("int", ValueType::Int),
        Some(Cow::Borrowed(_))
    ));
    assert!(matches!(
        resolve("whole", ValueType::Float),
        Some(Cow::Borrowed(_))
    ));
    assert_eq!(resolve("whole", ValueType::Int), Some(Cow::Owned(json!(2))));
    assert_eq!(
        resolve("int", ValueType::Float),
        Some(Cow::Owned(json!(7.0)))
    );
}

proptest! {
    /// Whole floats resolve as the same integer; fractional ones never do.
    #[test]
    fn integers_resolve_from_whole_floats(whole in -1_000_000_000i64..1_000_000_000, frac in 0.01f64..0.99) {
        let number = Number::from_f64(whole as f64).unwrap();
        let value = Value::Number(number);
        let coerced = coerce(&value, VariantType::Number, ValueType::Int);
        prop_assert_eq!(coerced.map(Cow::into_owned), Ok(json!(whole)));
        let fractional = Value::from(whole as f64 + frac);
        prop_assert!(coerce(&fractional, VariantType::Number, ValueType::Int).is_err());
    }
}
