use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::single_variant;
use crate::logic::LogicOptions;
use crate::model::FlagFile;
use crate::resolve::{ValueType, evaluate_flag};

/// A file holding flag `f` with variants `on`/`off` (plus `"true"`/`"false"` when asked).
fn file(state: &str, default_variant: Value, targeting: Value) -> FlagFile {
    FlagFile::from_value(
        &json!({"flags": {"f": {
            "state": state,
            "variants": {"on": "on", "off": "off", "true": "yes", "false": "no"},
            "defaultVariant": default_variant,
            "targeting": targeting,
        }}}),
        &LogicOptions::default(),
    )
    .unwrap()
}

fn single(default_variant: Value, targeting: Value) -> Option<String> {
    let file = file("ENABLED", default_variant, targeting);
    single_variant(file.flag("f").unwrap()).map(str::to_owned)
}

#[test]
fn static_flags_serve_their_default_variant() {
    assert_eq!(single(json!("on"), json!({})), Some("on".into()));
    assert_eq!(single(json!("on"), Value::Null), Some("on".into()));
    // No default variant: everyone gets the code default, which is no variant of the flag.
    assert_eq!(single(Value::Null, json!({})), None);
}

#[test]
fn disabled_flags_serve_no_variant() {
    let file = file("DISABLED", json!("on"), json!({}));
    assert_eq!(single_variant(file.flag("f").unwrap()), None);
}

#[test]
fn if_counts_every_branch_whatever_the_conditions() {
    let cond = json!({"==": [{"var": "email"}, "a@b.c"]});
    assert_eq!(
        single(json!("off"), json!({"if": [cond, "on", "on"]})),
        Some("on".into())
    );
    assert_eq!(
        single(json!("off"), json!({"if": [cond, "on", "off"]})),
        None
    );
    // Without else, the result may be null, which serves the default variant.
    assert_eq!(
        single(json!("on"), json!({"if": [cond, "on"]})),
        Some("on".into())
    );
    assert_eq!(single(json!("off"), json!({"if": [cond, "on"]})), None);
    // Nested ifs and `?:`.
    assert_eq!(
        single(
            json!("off"),
            json!({"?:": [cond, {"if": [cond, "on", "on"]}, "on"]})
        ),
        Some("on".into())
    );
}

#[test]
fn results_must_name_a_variant() {
    // Booleans read as the variants "true"/"false".
    assert_eq!(
        single(json!("on"), json!({"if": [true, true, true]})),
        Some("true".into())
    );
    // A name that is no variant is an error for that context, so not "served".
    assert_eq!(
        single(json!("on"), json!({"if": [true, "missing", "missing"]})),
        None
    );
    assert_eq!(single(json!("on"), json!({"if": [true, 3, 3]})), None);
}

#[test]
fn unknown_results_are_not_single() {
    assert_eq!(single(json!("on"), json!({"var": "variant"})), None);
    assert_eq!(single(json!("on"), json!({"cat": ["o", "n"]})), None);
    assert_eq!(
        single(json!("on"), json!({"or": [{"var": "x"}, "on"]})),
        None
    );
    assert_eq!(
        single(json!("on"), json!({"and": ["on", "on"]})),
        Some("on".into())
    );
}

#[test]
fn fractional_counts_weighted_buckets_and_the_default_for_missing_keys() {
    let all_on = json!({"fractional": [["on", 100], ["off", 0]]});
    assert_eq!(single(json!("on"), all_on.clone()), Some("on".into()));
    // Without a targeting key the result is null, which serves the default variant.
    assert_eq!(single(json!("off"), all_on), None);
    assert_eq!(
        single(
            json!("on"),
            json!({"fractional": [["on", 50], ["off", 50]]})
        ),
        None
    );
    // Negative weights clamp to zero; a missing weight is 1.
    assert_eq!(
        single(json!("on"), json!({"fractional": [["on"], ["off", -5]]})),
        Some("on".into())
    );
    // A string-valued bucketing key is dropped from the buckets.
    let keyed = json!({"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]},
        ["on", 10], ["off", 0]]});
    assert_eq!(single(json!("on"), keyed), Some("on".into()));
    // A first argument that may be an array could be a bucket from the context.
    let var_key = json!({"fractional": [{"var": "email"}, ["on", 10]]});
    assert_eq!(single(json!("on"), var_key), None);
    // A computed variant could be anything.
    let computed = json!({"fractional": [["on", 10], [{"var": "v"}, 1]]});
    assert_eq!(single(json!("on"), computed), None);
}

#[test]
fn broken_rules_are_not_single() {
    let file = FlagFile::from_value(
        &json!({"flags": {"f": {"state": "ENABLED", "variants": {"on": true},
            "defaultVariant": "on", "targeting": {"$ref": "nowhere"}}}}),
        &LogicOptions::default(),
    )
    .unwrap();
    assert_eq!(single_variant(file.flag("f").unwrap()), None);
}

/// Random rules built from the constructs the analysis reads, plus ones it must treat as
/// unknown.
fn rule() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!("on")),
        Just(json!("off")),
        Just(json!("missing")),
        Just(Value::Null),
        Just(json!(true)),
        Just(json!({"var": "v"})),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|args| json!({"if": args})),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|args| json!({"or": args})),
            prop::collection::vec((inner, -1i64..3), 0..4).prop_map(|buckets| {
                let buckets: Vec<Value> = buckets
                    .into_iter()
                    .map(|(variant, weight)| json!([variant, weight]))
                    .collect();
                json!({"fractional": buckets})
            }),
        ]
    })
}

proptest! {
    /// Soundness: whenever the analysis says "one variant", evaluating the flag in any of a
    /// range of contexts serves exactly that variant.
    #[test]
    fn single_variant_holds_for_every_context(
        targeting in rule(),
        default_variant in prop_oneof![Just(json!("on")), Just(json!("off")), Just(Value::Null)],
        contexts in prop::collection::vec(
            (prop::option::of("[a-z]{0,6}"), prop_oneof![
                Just(Value::Null), Just(json!("on")), Just(json!("off")), Just(json!(""))
            ]),
            1..12,
        ),
    ) {
        let file = file("ENABLED", default_variant, json!({"if": [{"var": "c"}, targeting.clone(), targeting]}));
        let flag = file.flag("f").unwrap();
        if let Some(variant) = single_variant(flag) {
            for (targeting_key, v) in contexts {
                for c in [true, false] {
                    let mut context = Map::new();
                    if let Some(key) = &targeting_key {
                        context.insert("targetingKey".into(), json!(key));
                    }
                    context.insert("v".into(), v.clone());
                    context.insert("c".into(), json!(c));
                    let evaluation = evaluate_flag(flag, &context, ValueType::Any, 0);
                    prop_assert_eq!(evaluation.variant.as_deref(), Some(variant), "{:?}", evaluation);
                }
            }
        }
    }
}
