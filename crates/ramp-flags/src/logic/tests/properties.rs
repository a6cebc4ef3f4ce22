//! Property tests: arbitrary rules and contexts never make evaluation panic, and the algebra
//! the operators promise holds for any input.

use crate::logic::{FlagScope, FractionalVersion, LogicOptions, Rule, murmur3_x86_32};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const OPERATORS: &[&str] = &[
    "var",
    "if",
    "?:",
    "and",
    "or",
    "==",
    "===",
    "!=",
    "!==",
    "<",
    "<=",
    ">",
    ">=",
    "!",
    "!!",
    "+",
    "-",
    "*",
    "/",
    "%",
    "min",
    "max",
    "cat",
    "substr",
    "in",
    "merge",
    "map",
    "filter",
    "reduce",
    "all",
    "none",
    "some",
    "missing",
    "missing_some",
    "fractional",
    "sem_ver",
    "starts_with",
    "ends_with",
    "log",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6..1e6_f64).prop_map(Value::from),
        "[a-z0-9.$ -]{0,8}".prop_map(Value::String),
        prop::sample::select(vec![
            "targetingKey",
            "$flagd.flagKey",
            "a.b",
            "1.2.3",
            "",
            "current"
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]{1,2}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn rule() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            3 => (prop::sample::select(OPERATORS), prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(op, args)| json!({ op: args })),
            1 => (prop::sample::select(OPERATORS), inner.clone()).prop_map(|(op, arg)| json!({ op: arg })),
            1 => prop::collection::vec(inner, 0..3).prop_map(Value::Array),
        ]
    })
}

fn context() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::collection::btree_map("[a-c]{1,2}", json_value(), 0..4),
        json_value(),
    )
        .prop_map(|(fields, key)| {
            let mut map: Map<String, Value> = fields.into_iter().collect();
            map.insert("targetingKey".into(), key);
            map.insert("$flagd".into(), json!({ "flagKey": "flag" }));
            map
        })
}

/// The first argument of a `fractional` under test: absent (the key is implicit), a literal, or
/// read from the context.
fn fractional_first() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        "[a-z0-9]{0,8}".prop_map(|key| Some(Value::String(key))),
        Just(Some(json!({ "var": "k" }))),
        Just(Some(json!({ "var": "bucket" }))),
    ]
}

fn version() -> impl Strategy<Value = FractionalVersion> {
    prop::sample::select(vec![
        FractionalVersion::V1,
        FractionalVersion::V2,
        FractionalVersion::V3,
    ])
}

proptest! {
    #[test]
    fn evaluation_never_panics(rule in rule(), context in context(), fractional in version()) {
        if let Ok(compiled) = Rule::compile(&rule, &LogicOptions { fractional }) {
            let _ = compiled.evaluate(&context);
        }
    }

    #[test]
    fn arbitrary_json_as_a_rule_never_panics(rule in json_value(), context in context()) {
        if let Ok(compiled) = Rule::compile(&rule, &LogicOptions::default()) {
            let _ = compiled.evaluate(&context);
        }
    }

    #[test]
    fn not_not_agrees_with_if(value in json_value()) {
        let data: Map<String, Value> = [("v".to_owned(), value)].into_iter().collect();
        let bang = Rule::compile(&json!({ "!!": [{ "var": "v" }] }), &LogicOptions::default()).unwrap();
        let branch = Rule::compile(&json!({ "if": [{ "var": "v" }, true, false] }), &LogicOptions::default()).unwrap();
        prop_assert_eq!(bang.evaluate(&data).unwrap(), branch.evaluate(&data).unwrap());
    }

    #[test]
    fn fractional_picks_a_listed_variant_with_positive_weight(
        key in "[a-zA-Z0-9@.]{1,20}",
        weights in prop::collection::vec(0_u32..1000, 1..6),
        fractional in version(),
    ) {
        let buckets: Vec<Value> = weights.iter().enumerate().map(|(i, w)| json!([format!("v{i}"), w])).collect();
        let mut args = vec![json!(key)];
        args.extend(buckets);
        let rule = Rule::compile(&json!({ "fractional": args }), &LogicOptions { fractional }).unwrap();
        let result = rule.evaluate(&Map::new()).unwrap();
        let total: u32 = weights.iter().sum();
        if total == 0 {
            prop_assert_eq!(result, Value::Null);
        } else if let Some(name) = result.as_str() {
            let index: usize = name[1..].parse().unwrap();
            prop_assert!(weights[index] > 0, "picked zero-weight {}", name);
        } else {
            // Only v1's legacy arithmetic can fall off the end (|i32::MIN| > i32::MAX).
            prop_assert_eq!(fractional, FractionalVersion::V1);
        }
    }

    #[test]
    fn v2_buckets_are_monotonic_in_the_hash(key in "[a-z]{1,12}", split in 1_u32..100) {
        let rule = Rule::compile(&json!({ "fractional": [key.clone(), ["low", split], ["high", 100 - split]] }), &LogicOptions::default()).unwrap();
        let hash = u64::from(murmur3_x86_32(key.as_bytes(), 0));
        let expected = if (hash * 100) >> 32 < u64::from(split) { "low" } else { "high" };
        prop_assert_eq!(rule.evaluate(&Map::new()).unwrap(), json!(expected));
    }

    #[test]
    fn addition_matches_f64_for_numbers(a in -1e9..1e9_f64, b in -1e9..1e9_f64) {
        let rule = Rule::compile(&json!({ "+": [{ "var": "a" }, { "var": "b" }] }), &LogicOptions::default()).unwrap();
        let data: Map<String, Value> = [("a".to_owned(), json!(a)), ("b".to_owned(), json!(b))].into_iter().collect();
        let sum = rule.evaluate(&data).unwrap().as_f64().unwrap();
        prop_assert_eq!(sum, a + b);
    }

    /// Buckets parsed at compile time choose exactly what buckets evaluated at run time choose,
    /// whatever the first argument is, and `$flagd` facts given beside the context act like a
    /// `$flagd` inside it.
    #[test]
    fn prepared_fractional_agrees_with_evaluated_buckets(
        first in fractional_first(),
        weights in prop::collection::vec(0_u32..100, 1..5),
        key in prop_oneof![
            "[a-z0-9]{0,8}".prop_map(Value::String),
            any::<i32>().prop_map(Value::from),
        ],
        targeting_key in "[a-zA-Z0-9-]{0,12}",
        fractional in version(),
    ) {
        let buckets: Vec<Value> =
            weights.iter().enumerate().map(|(i, w)| json!([format!("v{i}"), w])).collect();
        // Behind an `if` on the context, the same buckets are only known when evaluated.
        let hidden: Vec<Value> =
            buckets.iter().map(|bucket| json!({ "if": [{ "var": "on" }, bucket, null] })).collect();
        let with_first = |rest: Vec<Value>| first.iter().cloned().chain(rest).collect::<Vec<_>>();
        let options = LogicOptions { fractional };
        let prepared = Rule::compile(&json!({ "fractional": with_first(buckets) }), &options).unwrap();
        let evaluated = Rule::compile(&json!({ "fractional": with_first(hidden) }), &options).unwrap();
        let mut data: Map<String, Value> = [
            ("on".to_owned(), json!(true)),
            ("k".to_owned(), key),
            ("bucket".to_owned(), json!(["v9", 3])),
            ("targetingKey".to_owned(), json!(targeting_key)),
        ]
        .into_iter()
        .collect();
        let now = || 1_700_000_000;
        let scope = FlagScope::new(&data, "flag", &now);
        let with_facts = prepared.evaluate_for_flag(&scope).unwrap().into_owned();
        data.insert("$flagd".to_owned(), json!({ "flagKey": "flag" }));
        let expected = evaluated.evaluate(&data).unwrap();
        prop_assert_eq!(prepared.evaluate(&data).unwrap(), expected.clone());
        prop_assert_eq!(with_facts, expected);
    }

    /// A condition on one field compiled into a single step answers what the general operator
    /// answers (reached through a `var` with a `null` default, which is never compiled that
    /// way), in value and in boolean position, whatever the field and the literal hold.
    #[test]
    fn field_tests_answer_like_the_general_operators(
        op in prop::sample::select(vec![
            "==", "===", "!=", "!==", "<", "<=", ">", ">=", "in", "starts_with", "ends_with", "!", "!!",
        ]),
        field in prop_oneof![
            Just(None),
            "[a-c]{0,2}".prop_map(|text| Some(Value::String(text))),
            json_value().prop_map(Some),
        ],
        literal in prop_oneof![
            scalar(),
            "[a-c]{0,2}".prop_map(Value::String),
            prop::collection::vec(scalar(), 0..4).prop_map(Value::Array),
            prop::collection::vec("[a-c]{0,2}".prop_map(Value::String), 0..4).prop_map(Value::Array),
        ],
    ) {
        let options = LogicOptions::default();
        let compile = |rule: Value| Rule::compile(&rule, &options).unwrap();
        let compiled = compile(json!({ op: [{ "var": "x" }, literal.clone()] }));
        let general = compile(json!({ op: [{ "var": ["x", null] }, literal.clone()] }));
        let branch = |condition: Value| compile(json!({ "if": [condition, "yes", "no"] }));
        let compiled_if = branch(json!({ op: [{ "var": "x" }, literal.clone()] }));
        let general_if = branch(json!({ op: [{ "var": ["x", null] }, literal] }));
        let data: Map<String, Value> = field.map(|value| ("x".to_owned(), value)).into_iter().collect();
        prop_assert_eq!(compiled.evaluate(&data).unwrap(), general.evaluate(&data).unwrap());
        prop_assert_eq!(compiled_if.evaluate(&data).unwrap(), general_if.evaluate(&data).unwrap());
    }
}
