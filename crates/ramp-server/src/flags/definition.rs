//! Checks a flag definition sent to the API with the flag engine itself before anything is
//! stored, so the control plane never holds a flag its own OFREP server would refuse.
//!
//! Problems are located by JSON paths into the request body (`$` is the definition), not into
//! the flag file the engine validates behind the scenes.

use ramp_flags::logic::LogicOptions;
use ramp_flags::model::{FlagFile, ModelError, Targeting};
use serde_json::{Map, Value, json};

/// The members a flag definition may have (flagd's flag schema).
pub(crate) const FIELDS: [&str; 5] = [
    "state",
    "variants",
    "defaultVariant",
    "targeting",
    "metadata",
];

/// Where a definition's targeting rule is.
const TARGETING: &str = "$.targeting";

/// The longest flag key accepted.
pub const MAX_KEY_LEN: usize = 200;

/// Whether `key` can name a flag here: 1 to 200 ASCII letters, digits, `-`, `_` and `.`, so it
/// is a URL path segment and a shell word as it is.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Every problem of `definition` as the flag `key` (which must be [`valid_key`]); empty when
/// the engine accepts it and its targeting rule compiles.
pub(crate) fn problems(key: &str, definition: &Value) -> Vec<ModelError> {
    let Some(members) = definition.as_object() else {
        return vec![problem("$", "must be an object (a flag definition)")];
    };
    let mut found = unknown_members(members);
    let document = json!({ "flags": { key: definition } });
    let engine_prefix = format!("$.flags['{key}']");
    let rebase = |text: &str| text.replace(&engine_prefix, "$");
    match FlagFile::from_value(&document, &LogicOptions::default()) {
        Err(errors) => found.extend(errors.0.into_iter().map(|error| ModelError {
            path: rebase(&error.path),
            message: rebase(&error.message),
        })),
        Ok(file) => {
            if let Some(Targeting::Broken(reason)) = file.flag(key).map(|flag| flag.targeting()) {
                // The engine's reason starts with the rule's path, which is the problem's path.
                let reason = rebase(reason);
                let reason = reason
                    .strip_prefix(TARGETING)
                    .map_or(reason.as_str(), |rest| {
                        rest.trim_start_matches(':').trim_start()
                    });
                found.push(problem(TARGETING, reason));
            }
        }
    }
    found
}

fn unknown_members(members: &Map<String, Value>) -> Vec<ModelError> {
    members
        .keys()
        .filter(|name| !FIELDS.contains(&name.as_str()))
        .map(|name| {
            problem(
                &format!("$['{}']", name.replace('\\', "\\\\").replace('\'', "\\'")),
                &format!("is not a member of a flag ({})", FIELDS.join(", ")),
            )
        })
        .collect()
}

fn problem(path: &str, message: &str) -> ModelError {
    ModelError {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::{problems, valid_key};

    fn paths(key: &str, definition: serde_json::Value) -> Vec<String> {
        problems(key, &definition)
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    }

    #[test]
    fn a_valid_definition_has_no_problems() {
        let definition = json!({
            "state": "ENABLED",
            "variants": {"on": true, "off": false},
            "defaultVariant": "off",
            "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "on", null]},
            "metadata": {"owner": "payments"},
        });
        assert!(problems("checkout.v2", &definition).is_empty());
    }

    #[test]
    fn engine_problems_are_located_in_the_request_body() {
        let found = paths(
            "checkout",
            json!({"state": "ON", "variants": {"a": 1, "b": "x"}, "defaultVariant": "c"}),
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("$.state: must be ENABLED or DISABLED")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("$.variants['b']: ")),
            "{found:?}"
        );
        assert!(
            found.iter().all(|p| !p.contains("flags[")),
            "engine paths leaked: {found:?}"
        );
    }

    #[test]
    fn unknown_members_and_non_objects_are_refused() {
        let found = paths(
            "f",
            json!({"state": "ENABLED", "variants": {"on": true}, "defaultvariant": "on"}),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("$['defaultvariant']: is not a member"));
        assert_eq!(
            paths("f", json!([1])),
            ["$: must be an object (a flag definition)"]
        );
    }

    #[test]
    fn a_rule_that_does_not_compile_is_refused_at_targeting() {
        for targeting in [
            json!({"no_such_operator": [1]}),
            json!({"$ref": "shared-rule"}),
        ] {
            let found = problems(
                "f",
                &json!({"state": "ENABLED", "variants": {"on": true}, "targeting": targeting}),
            );
            assert_eq!(found.len(), 1, "{targeting}: {found:?}");
            assert_eq!(found[0].path, "$.targeting");
            assert!(!found[0].message.contains("flags["), "{found:?}");
            assert!(!found[0].message.starts_with('$'), "{found:?}");
        }
    }

    #[test]
    fn keys_are_path_segments() {
        for good in ["a", "new-checkout", "pay_v2.beta", &"k".repeat(200)] {
            assert!(valid_key(good), "{good}");
        }
        for bad in ["", "a/b", "a b", "ä", "it's", &"k".repeat(201)] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    proptest! {
        /// Whatever is sent, validation answers with problems (never a panic), and every
        /// problem points into the request body.
        #[test]
        fn problems_always_point_into_the_body(
            state in prop_oneof![Just(json!("ENABLED")), Just(json!("DISABLED")), Just(json!(3))],
            variant in prop_oneof![Just(json!(true)), Just(json!("x")), Just(json!(null)), Just(json!([1]))],
            default in prop_oneof![Just(json!("v")), Just(json!("w")), Just(json!(null)), Just(json!(1))],
            extra in proptest::option::of("[a-z]{1,6}"),
        ) {
            let mut definition = json!({"state": state, "variants": {"v": variant}, "defaultVariant": default});
            if let Some(name) = extra {
                definition[name] = json!(1);
            }
            for found in problems("key", &definition) {
                prop_assert!(found.path.starts_with('$'), "{found:?}");
                prop_assert!(!found.path.contains("flags"), "{found:?}");
            }
        }
    }
}
