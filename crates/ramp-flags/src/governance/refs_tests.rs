use proptest::prelude::*;

use super::*;

/// `(key, line, column)` of each reference in `text`.
fn found(text: &str) -> Vec<(String, usize, usize)> {
    find_references("src/x", text)
        .into_iter()
        .map(|reference| (reference.key, reference.line, reference.column))
        .collect()
}

fn keys(text: &str) -> Vec<String> {
    found(text).into_iter().map(|(key, _, _)| key).collect()
}

/// One call per language the scanner knows; `KEY` is replaced by the flag key.
const CALLS: &[&str] = &[
    // JavaScript / TypeScript
    r#"const on = await client.getBooleanValue("KEY", false);"#,
    r#"const d = client.getStringDetails('KEY', "x", ctx);"#,
    r#"const n = client.getNumberValue(`KEY`, 0);"#,
    r#"const { value } = useBooleanFlagValue("KEY", false);"#,
    r#"const flag = useFlag('KEY', 'fallback');"#,
    // Python
    r#"enabled = client.get_boolean_value("KEY", False)"#,
    r#"details = client.get_string_details(flag_key="KEY", default_value="a")"#,
    r#"v = await client.get_float_value_async('KEY', 0.5)"#,
    // Go
    r#"on, err := client.BooleanValue(ctx, "KEY", false, openfeature.EvaluationContext{})"#,
    r#"d, _ := client.StringValueDetails(context.Background(), "KEY", "a", evalCtx)"#,
    r#"n := client.Int(r.Context(), "KEY", 1, evalCtx)"#,
    // Java / Kotlin
    r#"Boolean on = client.getBooleanValue("KEY", false);"#,
    r#"val d = client.getIntegerDetails("KEY", 3)"#,
    // C#
    r#"var on = await client.GetBooleanValueAsync("KEY", false);"#,
    r#"var d = await client.GetStringDetailsAsync("KEY", "a");"#,
    // Rust
    r#"let on = client.get_bool_value("KEY", None, None).await;"#,
    r#"let s = client.get_struct_details::<Cfg>("KEY", None, None).await;"#,
    // Ruby
    r#"on = client.fetch_boolean_value(flag_key: "KEY", default_value: false)"#,
    r#"n = client.fetch_number_value(default_value: 1, flag_key: 'KEY')"#,
    // PHP
    r#"$on = $client->getBooleanValue('KEY', false);"#,
    // OFREP
    r#"fetch("https://flags.example.com/ofrep/v1/evaluate/flags/KEY", {method: "POST"})"#,
    r#"curl -X POST http://localhost:8016/ofrep/v1/evaluate/flags/KEY -d '{}'"#,
];

#[test]
fn every_language_form_is_found() {
    for call in CALLS {
        let text = call.replace("KEY", "new-checkout");
        let column = call.find("KEY").unwrap() + 1;
        assert_eq!(
            found(&text),
            [("new-checkout".to_owned(), 1, column)],
            "in {text}"
        );
    }
}

#[test]
fn keys_that_are_not_whole_literals_are_skipped() {
    for text in [
        r#"client.getBooleanValue(flagKey, false)"#,
        r#"client.getBooleanValue("prefix-" + suffix, false)"#,
        r#"client.get_string_value("x-%s" % name, "a")"#,
        r#"client.get_string_value("x-{}".format(name), "a")"#,
        r#"client.getBooleanValue(`flag-${team}`, false)"#,
        r#"client.fetch_boolean_value(flag_key: "flag-#{team}", default_value: false)"#,
        r#"$client->getBooleanValue("flag-$team", false);"#,
        r#"client.get_string_value(f"x-{name}", "a")"#,
        r#"client.getBooleanValue("esc\"aped", false)"#,
        r#"fetch(`/ofrep/v1/evaluate/flags/${key}`)"#,
        r#"fetch("/ofrep/v1/evaluate/flags/" + key)"#,
        r#"fetch("/ofrep/v1/evaluate/flags")"#,
        r#"fetch(`/ofrep/v1/evaluate/flags/pre-${key}`)"#,
        r#"client.getBoolean("k", false)"#,
        r#"strings.String("k")"#,
    ] {
        assert!(keys(text).is_empty(), "found {:?} in {text}", keys(text));
    }
}

#[test]
fn calls_may_span_lines_and_positions_count_characters() {
    let text = "// é\nconst x = client.getBooleanValue(\n    \"wrapped\",\n    false,\n);\nlet é = 'ü'; get_bool_value(\"b\", None)";
    assert_eq!(
        found(text),
        [("wrapped".to_owned(), 3, 6), ("b".to_owned(), 6, 30)]
    );
}

#[test]
fn source_files_are_known_by_extension() {
    for path in [
        "a/b.ts", "main.go", "App.KT", "lib.rs", "x.php", "y.rb", "z.cs", "w.py",
    ] {
        assert!(is_source_file(path), "{path}");
    }
    for path in ["README.md", "flags.json", "Makefile", "a/.rs", "rs"] {
        assert!(!is_source_file(path), "{path}");
    }
}

#[test]
fn cross_check_reports_unused_flags_and_unknown_references() {
    let report = scan_sources(
        ["used", "unused-1", "unused-2"],
        [
            (
                "b.py",
                "get_boolean_value('used', False)\nget_boolean_value('typo', False)",
            ),
            ("a.ts", "getBooleanValue('used', false)"),
        ],
    );
    let places: Vec<String> = report
        .references
        .iter()
        .map(|r| format!("{}:{}:{} {}", r.path, r.line, r.column, r.key))
        .collect();
    assert_eq!(
        places,
        ["a.ts:1:18 used", "b.py:1:20 used", "b.py:2:20 typo"]
    );
    assert_eq!(report.unused, ["unused-1", "unused-2"]);
    assert_eq!(report.unknown.len(), 1);
    assert_eq!(report.unknown[0].key, "typo");
    assert_eq!(report.unknown[0].line, 2);
}

proptest! {
    /// A generated key put into a generated call of any language, after generated lines and
    /// indentation, is found once, at the right line and column, and nothing else is.
    #[test]
    fn a_generated_call_is_found_where_it_is(
        key in "[A-Za-z0-9][A-Za-z0-9_.-]{0,40}",
        call in prop::sample::select(CALLS),
        before in prop::collection::vec("[ a-z0-9=;(){}\"',.+-]{0,40}", 0..20),
        indent in "[ \t]{0,8}",
        after in prop::collection::vec("[ a-z0-9=;(){}\"',.+-]{0,40}", 0..5),
    ) {
        let line = before.len() + 1;
        let column = indent.chars().count() + call.find("KEY").unwrap() + 1;
        let mut text = before.join("\n");
        if !before.is_empty() {
            text.push('\n');
        }
        text.push_str(&indent);
        text.push_str(&call.replace("KEY", &key));
        for extra in &after {
            text.push('\n');
            text.push_str(extra);
        }
        prop_assert_eq!(found(&text), vec![(key, line, column)]);
    }

    /// Every reference is either to a defined key or unknown, and a defined key is unused
    /// exactly when nothing references it.
    #[test]
    fn cross_check_partitions_references(
        defined in prop::collection::btree_set("[a-e]", 0..5),
        referenced in prop::collection::vec("[a-h]", 0..12),
    ) {
        let references: Vec<FlagReference> = referenced
            .iter()
            .enumerate()
            .map(|(i, key)| FlagReference {
                path: "f.go".into(),
                line: i + 1,
                column: 1,
                key: key.clone(),
                kind: ReferenceKind::Sdk,
            })
            .collect();
        let report = cross_check(defined.iter().map(String::as_str), references);
        prop_assert_eq!(report.references.len(), referenced.len());
        for reference in &report.unknown {
            prop_assert!(!defined.contains(&reference.key));
        }
        let known = referenced.iter().filter(|key| defined.contains(*key)).count();
        prop_assert_eq!(known + report.unknown.len(), referenced.len());
        for key in &defined {
            prop_assert_eq!(report.unused.contains(key), !referenced.contains(key));
        }
    }
}
