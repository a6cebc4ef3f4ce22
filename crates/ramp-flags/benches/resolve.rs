//! How long one in-process resolution takes for the three shapes of flag most files hold: a
//! static flag, a rule over context fields, and a weighted `fractional` split. The owned
//! `evaluate` is measured beside the borrowed `resolve` to show what copying the result costs.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ramp_flags::model::{FlagFile, FlagStore, Format};
use ramp_flags::resolve::ValueType;
use serde_json::{Map, Value, json};

const FLAGS: &str = r#"{
  "flags": {
    "static": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "rule": {
      "state": "ENABLED",
      "variants": {"internal": "i", "eu": "e", "beta": "b", "standard": "s"},
      "defaultVariant": "standard",
      "targeting": {"if": [
        {"and": [{"ends_with": [{"var": "email"}, "@acme.io"]},
                 {"in": [{"var": "plan"}, ["pro", "enterprise"]]}]}, "internal",
        {"in": [{"var": "country"}, ["DE", "FR", "NL", "SE"]]}, "eu",
        {"and": [{"==": [{"var": "country"}, "US"]},
                 {"starts_with": [{"var": "version"}, "3."]}]}, "beta",
        null
      ]}
    },
    "fractional": {
      "state": "ENABLED",
      "variants": {"control": "c", "red": "r", "green": "g", "blue": "b"},
      "defaultVariant": "control",
      "targeting": {"fractional": [["control", 50], ["red", 25], ["green", 15], ["blue", 10]]}
    }
  }
}"#;

const NOW: u64 = 1_700_000_000;

/// Users spread over every branch of the rule.
fn contexts() -> Vec<Map<String, Value>> {
    let domains = ["acme.io", "gmail.com", "example.com"];
    let plans = ["free", "pro", "enterprise"];
    let countries = ["US", "DE", "IN", "FR", "BR"];
    (0..64_usize)
        .map(|i| {
            let user = json!({
                "targetingKey": format!("user-{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                "email": format!("user{i}@{}", domains[i % domains.len()]),
                "plan": plans[i % plans.len()],
                "country": countries[i % countries.len()],
                "version": format!("{}.{}.0", 1 + i % 3, i % 7),
            });
            match user {
                Value::Object(map) => map,
                _ => Map::new(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let file = FlagFile::parse(FLAGS, Format::Json).expect("the benchmark's flags are valid");
    let store = FlagStore::new(vec![("bench".to_owned(), file)]);
    let contexts = contexts();
    for (key, expected) in [
        ("static", ValueType::Bool),
        ("rule", ValueType::String),
        ("fractional", ValueType::String),
    ] {
        let mut next = contexts.iter().cycle();
        c.bench_function(&format!("resolve/{key}"), |b| {
            b.iter(|| {
                let context = next.next().expect("cycle never ends");
                black_box(store.resolve(black_box(key), context, expected, || NOW))
                    .variant
                    .is_some()
            })
        });
        c.bench_function(&format!("evaluate/{key}"), |b| {
            b.iter(|| {
                let context = next.next().expect("cycle never ends");
                black_box(store.evaluate(black_box(key), context, expected, NOW))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
