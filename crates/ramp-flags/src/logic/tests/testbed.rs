//! The flagd-testbed evaluator scenarios (`fractional.feature`, `semver.feature`,
//! `string.feature`, `targeting.feature`): their rules from `testkit-flags.json`, evaluated with
//! the scenarios' contexts, must give the scenarios' values (`null` meaning "default variant").

use super::eval_with;
use crate::logic::FractionalVersion::{self, V1, V2, V3};
use serde_json::{Value, json};

/// The context a flagd evaluator builds: the caller's, plus `$flagd.flagKey`.
fn flag_context(flag_key: &str, mut extra: Value) -> Value {
    extra["$flagd"] = json!({ "flagKey": flag_key, "timestamp": 1_700_000_000 });
    extra
}

fn suits_rule(seed: Value) -> Value {
    json!({ "fractional": [
        { "cat": [seed, { "var": "user.name" }] },
        ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]
    ]})
}

fn check(rule: &Value, flag_key: &str, extra: Value, version: FractionalVersion, expected: Value) {
    let got = eval_with(rule.clone(), flag_context(flag_key, extra.clone()), version);
    assert_eq!(got, expected, "{flag_key} {version:?} with {extra}");
}

#[test]
fn fractional_flag_buckets_by_flag_key_and_user_name() {
    let rule = suits_rule(json!({ "var": "$flagd.flagKey" }));
    let cases = [
        (
            V1,
            [
                ("jack", "spades"),
                ("queen", "clubs"),
                ("ten", "diamonds"),
                ("nine", "hearts"),
                ("3", "diamonds"),
            ],
        ),
        (
            V2,
            [
                ("jack", "hearts"),
                ("queen", "spades"),
                ("ten", "clubs"),
                ("nine", "diamonds"),
                ("3", "clubs"),
            ],
        ),
        (
            V3,
            [
                ("jack", "diamonds"),
                ("queen", "diamonds"),
                ("ten", "clubs"),
                ("nine", "clubs"),
                ("3", "spades"),
            ],
        ),
    ];
    for (version, rows) in cases {
        for (name, suit) in rows {
            check(
                &rule,
                "fractional-flag",
                json!({ "user": { "name": name } }),
                version,
                json!(suit),
            );
        }
    }
}

#[test]
fn shared_seed_buckets_ignore_the_flag_key() {
    let rule = suits_rule(json!("shared-seed"));
    let cases = [
        (
            V1,
            [
                ("jack", "hearts"),
                ("queen", "spades"),
                ("ten", "hearts"),
                ("nine", "diamonds"),
            ],
        ),
        (
            V2,
            [
                ("seven", "hearts"),
                ("eight", "diamonds"),
                ("nine", "clubs"),
                ("two", "spades"),
            ],
        ),
        (
            V3,
            [
                ("seven", "hearts"),
                ("eight", "hearts"),
                ("nine", "diamonds"),
                ("two", "diamonds"),
            ],
        ),
    ];
    for flag_key in [
        "fractional-flag-A-shared-seed",
        "fractional-flag-B-shared-seed",
    ] {
        for (version, rows) in &cases {
            for (name, suit) in rows {
                check(
                    &rule,
                    flag_key,
                    json!({ "user": { "name": name } }),
                    *version,
                    json!(suit),
                );
            }
        }
    }
}

#[test]
fn shorthand_buckets_by_flag_key_and_targeting_key() {
    let rule = json!({ "fractional": [["heads"], ["tails", 1]] });
    let cases = [
        (
            V1,
            [("jon@company.com", "heads"), ("jane@company.com", "tails")],
        ),
        (
            V2,
            [("jon@company.com", "heads"), ("jane@company.com", "tails")],
        ),
        (
            V3,
            [("jon@company.com", "tails"), ("jane@company.com", "tails")],
        ),
    ];
    for (version, rows) in cases {
        for (key, side) in rows {
            check(
                &rule,
                "fractional-flag-shorthand",
                json!({ "targetingKey": key }),
                version,
                json!(side),
            );
        }
    }
}

#[test]
fn hash_edge_keys_land_on_the_expected_side_of_a_half_split() {
    let rule = json!({ "fractional": [{ "var": "targetingKey" }, ["lower", 50], ["upper", 50]] });
    for (key, side) in [
        ("ejOoVL", "lower"),
        ("bY9fO-", "lower"),
        ("SI7p-", "lower"),
        ("6LvT0", "upper"),
        ("ceQdGm", "upper"),
    ] {
        check(
            &rule,
            "fractional-hash-edge-flag",
            json!({ "targetingKey": key }),
            V2,
            json!(side),
        );
    }
}

#[test]
fn single_entry_always_wins() {
    let rule = json!({ "fractional": [["single", 1]] });
    check(
        &rule,
        "fractional-single-entry-flag",
        json!({ "targetingKey": "some-targeting-key" }),
        V2,
        json!("single"),
    );
}

#[test]
fn nested_expressions_as_variants_and_weights() {
    let nested_if = json!({ "fractional": [{ "var": "targetingKey" },
        [{ "if": [{ "==": [{ "var": "tier" }, "premium"] }, "premium", "standard"] }, 50], ["standard", 50]] });
    for (key, tier, value) in [
        ("jon@company.com", "premium", "premium"),
        ("jon@company.com", "basic", "standard"),
        ("user1", "premium", "standard"),
        ("user1", "basic", "standard"),
    ] {
        check(
            &nested_if,
            "fractional-nested-if-flag",
            json!({ "targetingKey": key, "tier": tier }),
            V2,
            json!(value),
        );
    }
    let nested_var = json!({ "fractional": [{ "var": "targetingKey" }, [{ "var": "color" }, 50], ["blue", 50]] });
    for (key, color, value) in [
        ("jon@company.com", "red", "red"),
        ("jon@company.com", "", ""),
        ("user1", "red", "blue"),
    ] {
        check(
            &nested_var,
            "fractional-nested-var-flag",
            json!({ "targetingKey": key, "color": color }),
            V2,
            json!(value),
        );
    }
    let nested_weight = json!({ "fractional": [{ "var": "targetingKey" },
        ["red", { "if": [{ "==": [{ "var": "tier" }, "premium"] }, 100, 0] }], ["blue", 10]] });
    for (key, tier, value) in [
        ("jon@company.com", "premium", "red"),
        ("jon@company.com", "basic", "blue"),
        ("user1", "premium", "red"),
        ("user1", "basic", "blue"),
    ] {
        check(
            &nested_weight,
            "fractional-nested-weight-flag",
            json!({ "targetingKey": key, "tier": tier }),
            V2,
            json!(value),
        );
    }
}

#[test]
fn fractional_as_a_condition_yields_booleans() {
    let ctx = json!({ "targetingKey": "some-targeting-key" });
    let always_true =
        json!({ "if": [{ "fractional": [[false, 0], [true, 100]] }, "big", "small"] });
    check(
        &always_true,
        "fractional-as-condition-flag",
        ctx.clone(),
        V2,
        json!("big"),
    );
    let always_false =
        json!({ "if": [{ "fractional": [[false, 100], [true, 0]] }, "big", "small"] });
    check(
        &always_false,
        "fractional-as-condition-false-flag",
        ctx,
        V2,
        json!("small"),
    );
}

#[test]
fn fractional_bad_input_is_null() {
    let no_key = json!({ "fractional": [{ "var": "missing_key" }, ["one", 50], ["two", 50]] });
    check(
        &no_key,
        "fractional-null-bucket-key-flag",
        json!({}),
        V2,
        Value::Null,
    );
    let zero = json!({ "fractional": [{ "var": "targetingKey" }, ["one", 0], ["two", 0]] });
    check(
        &zero,
        "fractional-zero-weights-flag",
        json!({ "targetingKey": "any-user" }),
        V2,
        Value::Null,
    );
    let negative = json!({ "fractional": [{ "var": "targetingKey" }, ["one", -50], ["two", 100]] });
    check(
        &negative,
        "fractional-negative-weight-flag",
        json!({ "targetingKey": "any-user" }),
        V2,
        json!("two"),
    );
}

fn version_rule(op: &str, target: &str) -> Value {
    json!({ "sem_ver": [{ "var": "version" }, op, target] })
}

#[test]
fn sem_ver_testbed_tables() {
    let ladder = json!({ "if": [version_rule("=", "2.0.0"), "equal",
        { "if": [version_rule(">", "2.0.0"), "greater", { "if": [version_rule("<", "2.0.0"), "lesser", "none"] }] }] });
    for (version, value) in [
        ("2.0.0", "equal"),
        ("2.1.0", "greater"),
        ("1.9.0", "lesser"),
        ("2.0.0-alpha", "lesser"),
        ("2.0.0.0", "none"),
    ] {
        check(
            &ladder,
            "equal-greater-lesser-version-flag",
            json!({ "version": version }),
            V2,
            json!(value),
        );
    }
    let ranges = json!({ "if": [version_rule("~", "3.0.0"), "minor", { "if": [version_rule("^", "3.0.0"), "major", "none"] }] });
    for (version, value) in [("3.0.1", "minor"), ("3.1.0", "major"), ("4.0.0", "none")] {
        check(
            &ranges,
            "major-minor-version-flag",
            json!({ "version": version }),
            V2,
            json!(value),
        );
    }
    let matcher =
        |op: &str, target: &str| json!({ "if": [version_rule(op, target), "match", "no-match"] });
    let tables: [(Value, Vec<(Value, &str)>); 4] = [
        (
            matcher("=", "v1.0.0"),
            vec![
                (json!("1.0.0"), "match"),
                (json!("v1.0.0"), "match"),
                (json!("V1.0.0"), "match"),
                (json!("2.0.0"), "no-match"),
            ],
        ),
        (
            matcher("^", "1"),
            vec![
                (json!("1.5.0"), "match"),
                (json!("1.0.0"), "match"),
                (json!("1.0"), "match"),
                (json!("1"), "match"),
                (json!(1), "match"),
                (json!(1.0), "match"),
                (json!(1.2), "match"),
                (json!("2.0.0"), "no-match"),
            ],
        ),
        (
            matcher(">", "1.1"),
            vec![
                (json!(1.2), "match"),
                (json!(1.1), "no-match"),
                (json!(2), "match"),
                (json!(1), "no-match"),
                (json!("1.2"), "match"),
            ],
        ),
        (
            matcher("=", "1.0.0+build"),
            vec![
                (json!("1.0.0"), "match"),
                (json!("1.0.0+other"), "match"),
                (json!("2.0.0"), "no-match"),
            ],
        ),
    ];
    for (rule, rows) in tables {
        for (version, value) in rows {
            check(
                &rule,
                "semver-flag",
                json!({ "version": version }),
                V2,
                json!(value),
            );
        }
    }
}

#[test]
fn sem_ver_bad_input_is_null() {
    for (rule, version) in [
        (version_rule("=", "1.0.0"), "not-a-version"),
        (version_rule("===", "1.0.0"), "1.0.0"),
        (json!({ "sem_ver": [{ "var": "version" }, "="] }), "1.0.0"),
    ] {
        check(
            &rule,
            "semver-invalid-flag",
            json!({ "version": version }),
            V2,
            Value::Null,
        );
    }
}

#[test]
fn starts_and_ends_with_testbed_tables() {
    let rule = json!({ "if": [{ "starts_with": [{ "var": "id" }, "abc"] }, "prefix",
        { "if": [{ "ends_with": [{ "var": "id" }, "xyz"] }, "postfix", "none"] }] });
    for (id, value) in [
        ("abcdef", "prefix"),
        ("uvwxyz", "postfix"),
        ("abcxyz", "prefix"),
        ("lmnopq", "none"),
        ("3", "none"),
    ] {
        check(
            &rule,
            "starts-ends-flag",
            json!({ "id": id }),
            V2,
            json!(value),
        );
    }
    for rule in [
        json!({ "starts_with": [{ "var": "num" }, "abc"] }),
        json!({ "ends_with": [{ "var": "num" }, "xyz"] }),
        json!({ "starts_with": ["abc"] }),
        json!({ "ends_with": ["xyz"] }),
    ] {
        check(&rule, "string-flag", json!({ "num": 123 }), V2, Value::Null);
    }
}

#[test]
fn targeting_key_and_email_rules() {
    let rule = json!({ "if": [{ "==": [{ "var": "targetingKey" }, "5c3d8535-f81a-4478-a6d3-afaa4d51199e"] }, "hit", null] });
    check(
        &rule,
        "targeting-key-flag",
        json!({ "targetingKey": "5c3d8535-f81a-4478-a6d3-afaa4d51199e" }),
        V2,
        json!("hit"),
    );
    check(
        &rule,
        "targeting-key-flag",
        json!({ "targetingKey": "f20bd32d-703b-48b6-bc8e-79d53c85134a" }),
        V2,
        Value::Null,
    );
    let ballmer =
        json!({ "if": [{ "==": ["ballmer@macrosoft.com", { "var": ["email"] }] }, "hi", "bye"] });
    check(
        &ballmer,
        "some-email-targeted-flag",
        json!({ "email": "ballmer@macrosoft.com" }),
        V2,
        json!("hi"),
    );
    check(
        &ballmer,
        "some-email-targeted-flag",
        json!({ "email": "user@example.com" }),
        V2,
        json!("bye"),
    );
    let undefined_else =
        json!({ "if": [{ "==": ["jobs@orange.com", { "var": ["email"] }] }, "special"] });
    check(
        &undefined_else,
        "no-default-flag",
        json!({}),
        V2,
        Value::Null,
    );
}
