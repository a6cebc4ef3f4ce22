use proptest::prelude::*;
use serde_json::json;

use crate::logic::LogicOptions;
use crate::model::{FlagFile, FlagState, Format, ModelErrors, Targeting, VariantType};

fn load(document: serde_json::Value) -> Result<FlagFile, ModelErrors> {
    FlagFile::from_value(&document, &LogicOptions::default())
}

fn problems(document: serde_json::Value) -> Vec<String> {
    load(document)
        .unwrap_err()
        .errors()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn reads_a_flag_map_with_its_fields() {
    let file = load(json!({
        "flags": {
            "new-ui": {
                "state": "ENABLED",
                "variants": {"on": true, "off": false},
                "defaultVariant": "off",
                "targeting": {}
            },
            "limits": {"state": "DISABLED", "variants": {"low": 1, "high": 2.5}}
        }
    }))
    .unwrap();
    assert_eq!(file.len(), 2);
    let new_ui = file.flag("new-ui").unwrap();
    assert_eq!(new_ui.state(), FlagState::Enabled);
    assert_eq!(new_ui.variant_type(), VariantType::Bool);
    assert_eq!(new_ui.default_variant(), Some("off"));
    assert!(matches!(new_ui.targeting(), Targeting::None));
    let limits = file.flag("limits").unwrap();
    assert_eq!(limits.state(), FlagState::Disabled);
    assert_eq!(limits.variant_type(), VariantType::Number);
    assert_eq!(limits.default_variant(), None);
}

#[test]
fn reads_flags_given_as_an_array_with_keys() {
    let file = load(json!({"flags": [
        {"key": "a", "state": "ENABLED", "variants": {"x": "x"}, "defaultVariant": "x"},
        {"key": "b", "state": "ENABLED", "variants": {"y": "y"}, "defaultVariant": null}
    ]}))
    .unwrap();
    let keys: Vec<&str> = file.flags().map(|flag| flag.key()).collect();
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn array_entries_need_unique_string_keys() {
    let found = problems(json!({"flags": [
        {"state": "ENABLED", "variants": {"x": "x"}},
        {"key": "a", "state": "ENABLED", "variants": {"x": "x"}},
        {"key": "a", "state": "ENABLED", "variants": {"x": "x"}}
    ]}));
    assert_eq!(
        found,
        [
            "$.flags[0].key: is required (a string)",
            "$.flags[2].key: 'a' is defined more than once"
        ]
    );
}

#[test]
fn default_variant_naming_no_variant_is_reported_with_its_path() {
    let found = problems(json!({"flags": {"my-flag": {
        "state": "ENABLED",
        "variants": {"on": true, "off": false},
        "defaultVariant": "maybe"
    }}}));
    assert_eq!(
        found,
        ["$.flags['my-flag'].defaultVariant: names no variant (variants: off, on)"]
    );
}

#[test]
fn reports_every_problem_of_the_file_at_once() {
    let found = problems(json!({
        "flags": {
            "a": {"variants": {"x": 1}},
            "b": {"state": "ON", "variants": {"x": 1, "y": "two"}},
            "c": {"state": "ENABLED", "variants": {}},
            "d": {"state": "ENABLED", "variants": {"x": [1]}, "defaultVariant": 3},
            "e": {"state": "ENABLED", "variants": {"x": 1}, "targeting": "yes"},
            "f": {"state": "ENABLED", "variants": {"x": 1}, "metadata": {"owner": {"team": "a"}}}
        },
        "metadata": {"flagSetId": 7}
    }));
    assert_eq!(
        found,
        [
            "$.metadata['flagSetId']: must be a string",
            "$.flags['a'].state: is required (ENABLED or DISABLED)",
            "$.flags['b'].state: must be ENABLED or DISABLED, not \"ON\"",
            "$.flags['b'].variants['y']: is a string but variant 'x' is a number: all variants must share one type",
            "$.flags['c'].variants: must define at least one variant",
            "$.flags['d'].variants['x']: must be a boolean, string, number or object",
            "$.flags['d'].defaultVariant: must be a string naming a variant, or null",
            "$.flags['e'].targeting: must be an object (a JsonLogic rule)",
            "$.flags['f'].metadata['owner']: must be a string, number or boolean",
        ]
    );
}

#[test]
fn top_level_shape_errors() {
    assert_eq!(
        problems(json!([1, 2])),
        ["$: must be an object with a \"flags\" field"]
    );
    assert_eq!(problems(json!({})), ["$.flags: is required"]);
    assert_eq!(
        problems(json!({"flags": {}, "$evaluators": []})),
        ["$.$evaluators: must be an object of evaluator name to rule"]
    );
}

#[test]
fn refs_are_inlined_before_compiling() {
    let file = load(json!({
        "flags": {"f": {
            "state": "ENABLED",
            "variants": {"hi": "hi", "bye": "bye"},
            "defaultVariant": "bye",
            "targeting": {"if": [{"$ref": "is_admin"}, "hi", null]}
        }},
        "$evaluators": {"is_admin": {"==": [{"var": "role"}, "admin"]}}
    }))
    .unwrap();
    let flag = file.flag("f").unwrap();
    assert!(matches!(flag.targeting(), Targeting::Rule(_)));
    assert_eq!(
        flag.to_json()["targeting"],
        json!({"if": [{"==": [{"var": "role"}, "admin"]}, "hi", null]})
    );
}

#[test]
fn unknown_ref_breaks_only_its_flag() {
    let file = load(json!({"flags": {
        "broken": {
            "state": "ENABLED",
            "variants": {"a": "a"},
            "defaultVariant": "a",
            "targeting": {"if": [{"$ref": "nope"}, "a", null]}
        },
        "fine": {"state": "ENABLED", "variants": {"a": "a"}, "defaultVariant": "a"}
    }}))
    .unwrap();
    let Targeting::Broken(message) = file.flag("broken").unwrap().targeting() else {
        panic!("an unknown $ref must mark the rule as broken");
    };
    assert!(
        message.contains("$.flags['broken'].targeting['if'][0]"),
        "{message}"
    );
    assert!(message.contains("'nope'"), "{message}");
    assert!(matches!(
        file.flag("fine").unwrap().targeting(),
        Targeting::None
    ));
}

#[test]
fn flag_metadata_wins_over_flag_set_metadata() {
    let file = load(json!({
        "flags": {
            "own": {"state": "ENABLED", "variants": {"a": 1}, "metadata": {"team": "web", "tier": 2}},
            "inherits": {"state": "ENABLED", "variants": {"a": 1}}
        },
        "metadata": {"team": "core", "flagSetId": "shop", "version": "3"}
    }))
    .unwrap();
    assert_eq!(file.flag_set_id(), Some("shop"));
    let own = file.flag("own").unwrap().metadata();
    assert_eq!(own["team"], json!("web"));
    assert_eq!(own["tier"], json!(2));
    assert_eq!(own["flagSetId"], json!("shop"));
    let inherited = file.flag("inherits").unwrap();
    assert_eq!(inherited.metadata()["team"], json!("core"));
    assert_eq!(inherited.flag_set_id(), Some("shop"));
    assert_eq!(inherited.to_json()["metadata"]["version"], json!("3"));
}

#[test]
fn yaml_files_parse_like_json() {
    let yaml = "flags:\n  greeting:\n    state: ENABLED\n    variants:\n      hi: hello\n      yo: hey\n    defaultVariant: hi\nmetadata:\n  flagSetId: edge\n";
    let file = FlagFile::parse(yaml, Format::Yaml).unwrap();
    assert_eq!(
        file.flag("greeting").unwrap().variants()["yo"],
        json!("hey")
    );
    assert_eq!(file.flag_set_id(), Some("edge"));
    let detected = FlagFile::parse(yaml, Format::Auto).unwrap();
    assert_eq!(detected.len(), 1);
}

#[test]
fn testbed_flag_files_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/flagd-testbed");
    assert!(
        dir.is_dir(),
        "the flagd testbed is expected beside the repository at {}",
        dir.display()
    );
    let files = [
        "evaluator/flags/testkit-flags.json",
        "flags/testing-flags.json",
        "flags/edge-case-flags.json",
        "flags/evaluator-refs.json",
        "flags/selector-flag-combined-metadata.json",
    ];
    for name in files {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        if let Err(errors) = FlagFile::parse(&text, Format::Auto) {
            panic!("{name}: {errors}");
        }
    }
}

fn variant_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<bool>().prop_map(serde_json::Value::from),
        "[a-z]{0,6}".prop_map(serde_json::Value::from),
        any::<i32>().prop_map(serde_json::Value::from),
        Just(json!({"k": 1})),
    ]
}

proptest! {
    /// A file is accepted exactly when every variant has the first variant's type.
    #[test]
    fn mixed_variant_types_are_always_rejected(
        values in proptest::collection::vec(variant_value(), 1..6)
    ) {
        let variants: serde_json::Map<String, serde_json::Value> = values
            .iter()
            .enumerate()
            .map(|(index, value)| (format!("v{index}"), value.clone()))
            .collect();
        let kinds: std::collections::HashSet<_> =
            values.iter().map(|value| VariantType::of(value).unwrap()).collect();
        let result = load(json!({"flags": {"f": {"state": "ENABLED", "variants": variants}}}));
        prop_assert_eq!(result.is_ok(), kinds.len() == 1);
    }

    /// Any flag key survives the round trip, and problems name it in the path.
    #[test]
    fn problem_paths_name_the_flag_key(key in "[a-zA-Z0-9_.' -]{1,12}") {
        let errors = load(json!({"flags": {key.clone(): {"variants": {"a": 1}}}})).unwrap_err();
        let escaped = key.replace('\'', "\\'");
        prop_assert_eq!(&errors.errors()[0].path, &format!("$.flags['{escaped}'].state"));
    }
}
