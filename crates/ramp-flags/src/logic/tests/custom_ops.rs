//! flagd's custom operators beyond the testbed tables: the testbed's hash boundaries, the CBOR
//! encoding v3 hashes,
//! fractional input validation and sem_ver ordering.

use super::{eval, eval_with};
use crate::logic::FractionalVersion::{V1, V3};
use crate::logic::cbor::{encode, to_f16_bits};
use crate::logic::murmur3_x86_32;
use serde_json::{Value, json};

#[test]
fn the_testbed_edge_keys_hash_to_the_boundaries() {
    for (key, hash) in [
        ("ejOoVL", 0),
        ("bY9fO-", 1),
        ("SI7p-", 0x7fff_ffff),
        ("6LvT0", 0x8000_0000),
        ("ceQdGm", 0xffff_ffff),
    ] {
        assert_eq!(murmur3_x86_32(key.as_bytes(), 0), hash, "{key}");
    }
}

#[test]
fn shortest_round_trip_decimals_encode_as_the_float_they_name() {
    // Clients send the shortest decimal that round-trips; read one unit in the last place off,
    // 2^-24 or f32::MAX would no longer fit a half or single float and v3 would hash a double.
    let tiny: Value = serde_json::from_str("5.960464477539063e-08").expect("a number");
    assert_eq!(
        encode(&tiny),
        [0xf9, 0x00, 0x01],
        "2^-24 is the smallest half float"
    );
    let largest: Value = serde_json::from_str("3.4028234663852886e+38").expect("a number");
    assert_eq!(encode(&largest), [0xfa, 0x7f, 0x7f, 0xff, 0xff], "f32::MAX");
}

#[test]
fn cbor_is_deterministic_and_shortest() {
    assert_eq!(encode(&json!("abc")), [0x63, b'a', b'b', b'c']);
    assert_eq!(encode(&json!(0)), [0x00]);
    assert_eq!(encode(&json!(-0.0)), [0x00]);
    assert_eq!(encode(&json!(24)), [0x18, 24]);
    assert_eq!(encode(&json!(1000.0)), [0x19, 0x03, 0xe8]);
    assert_eq!(encode(&json!(-1)), [0x20]);
    assert_eq!(encode(&json!(-500)), [0x39, 0x01, 0xf3]);
    assert_eq!(encode(&json!(1.5)), [0xf9, 0x3e, 0x00]);
    assert_eq!(encode(&json!(100000.5)), [0xfa, 0x47, 0xc3, 0x50, 0x40]);
    assert_eq!(
        encode(&json!(1.1)),
        [0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]
    );
    assert_eq!(encode(&json!(true)), [0xf5]);
    assert_eq!(encode(&json!([1, "a"])), [0x82, 0x01, 0x61, b'a']);
    // Keys sort by encoded bytes: shorter keys first.
    assert_eq!(
        encode(&json!({ "bb": 1, "a": 2 })),
        [0xa2, 0x61, b'a', 0x02, 0x62, b'b', b'b', 0x01]
    );
    assert_eq!(to_f16_bits(5.960_464_477_539_063e-8), Some(0x0001));
    assert_eq!(to_f16_bits(65504.0), Some(0x7bff));
    assert_eq!(to_f16_bits(65520.0), None);
    assert_eq!(to_f16_bits(0.1), None);
}

#[test]
fn v3_hashes_non_string_keys_and_refuses_null() {
    let rule = |key: Value| json!({ "fractional": [key, ["a", 1], ["b", 1], ["c", 1], ["d", 1]] });
    let ctx = json!({ "targetingKey": "t", "$flagd": { "flagKey": "f" } });
    for key in [
        json!(12345),
        json!(true),
        json!({ "id": 7, "org": "o" }),
        json!(2.5),
    ] {
        let result = eval_with(rule(key.clone()), ctx.clone(), V3);
        assert!(result.is_string(), "{key} bucketed to {result}");
    }
    assert_eq!(eval_with(rule(Value::Null), ctx.clone(), V3), Value::Null);
    // Whole floats hash as the integers they equal.
    assert_eq!(
        eval_with(rule(json!(12345.0)), ctx.clone(), V3),
        eval_with(rule(json!(12345)), ctx, V3)
    );
}

#[test]
fn fractional_validates_buckets() {
    let ctx = json!({ "targetingKey": "user" });
    for rule in [
        json!({ "fractional": ["key", ["a", 1.5]] }),
        json!({ "fractional": ["key", ["a", "10"]] }),
        json!({ "fractional": ["key", "a"] }),
        json!({ "fractional": ["key", []] }),
        json!({ "fractional": ["key", [["nested"], 1]] }),
        json!({ "fractional": ["key", ["a", 2_147_483_648_u64]] }),
        json!({ "fractional": ["key", ["a", 2_147_483_647_u64], ["b", 1]] }),
        json!({ "fractional": ["key"] }),
        json!({ "fractional": [["a", 1]] }),
    ] {
        let data = if rule["fractional"][0] == json!(["a", 1]) {
            json!({ "targetingKey": "" })
        } else {
            ctx.clone()
        };
        assert_eq!(eval(rule.clone(), data), Value::Null, "{rule}");
    }
    assert_eq!(
        eval(
            json!({ "fractional": ["key", ["a", 2_147_483_647_u64]] }),
            ctx.clone()
        ),
        json!("a")
    );
    assert_eq!(
        eval(json!({ "fractional": ["key", [null, 1]] }), ctx.clone()),
        Value::Null
    );
    assert_eq!(
        eval(json!({ "fractional": ["key", [7, 1]] }), ctx.clone()),
        json!(7)
    );
    assert_eq!(
        eval(json!({ "fractional": ["key", ["a", null]] }), ctx.clone()),
        json!("a")
    );
    // A non-string targeting key cannot bucket.
    assert_eq!(
        eval(
            json!({ "fractional": [["a", 1]] }),
            json!({ "targetingKey": 5 })
        ),
        Value::Null
    );
}

#[test]
fn v1_uses_percentages_of_the_signed_hash() {
    // "SI7p-" hashes to i32::MAX: exactly 100%, beyond every bucket's end.
    let rule = json!({ "fractional": [{ "var": "k" }, ["a", 50], ["b", 50]] });
    assert_eq!(
        eval_with(rule.clone(), json!({ "k": "SI7p-" }), V1),
        Value::Null
    );
    // "6LvT0" hashes to i32::MIN: its magnitude is also beyond 100%.
    assert_eq!(
        eval_with(rule.clone(), json!({ "k": "6LvT0" }), V1),
        Value::Null
    );
    assert_eq!(eval_with(rule, json!({ "k": "ejOoVL" }), V1), json!("a"));
}

#[test]
fn sem_ver_ordering_follows_semver_precedence() {
    let cmp = |a: &str, op: &str, b: &str| eval(json!({ "sem_ver": [a, op, b] }), json!({}));
    for (a, op, b) in [
        ("1.0.0-alpha", "<", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "<", "1.0.0-alpha.beta"),
        ("1.0.0-alpha.beta", "<", "1.0.0-beta"),
        ("1.0.0-beta.2", "<", "1.0.0-beta.11"),
        ("1.0.0-rc.1", "<", "1.0.0"),
        ("10.0.0", ">", "9.99.99"),
        ("1.2.3", ">=", "1.2.3"),
        ("1.2.3", "<=", "1.2.3+b"),
        ("1.2.3", "!=", "1.2.4"),
        ("1.2.9", "~", "1.2.0"),
        ("1.9.0", "^", "1.0.0"),
        ("18446744073709551616.0.0", ">", "18446744073709551615.0.0"),
    ] {
        assert_eq!(cmp(a, op, b), json!(true), "{a} {op} {b}");
    }
    for (a, op, b) in [
        ("1.3.0", "~", "1.2.0"),
        ("2.0.0", "^", "1.0.0"),
        ("1.0.0", "<", "1.0.0"),
    ] {
        assert_eq!(cmp(a, op, b), json!(false), "{a} {op} {b}");
    }
    for bad in [
        "01.0.0", "1.0.0-", "1.0-beta", "1..0", "", "v", "1.0.0+", "1.0.0-01", "vv1.0.0",
    ] {
        assert_eq!(cmp(bad, "=", "1.0.0"), Value::Null, "{bad}");
    }
    assert_eq!(
        eval(json!({ "sem_ver": [true, "=", "1.0.0"] }), json!({})),
        Value::Null
    );
}
