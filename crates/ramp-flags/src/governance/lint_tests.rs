use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::logic::LogicOptions;

fn date(text: &str) -> Date {
    Date::parse(text).unwrap()
}

fn policy() -> LintPolicy {
    LintPolicy::new(date("2025-06-15"))
}

/// A file with one ENABLED on/off flag `f`, default `on`, no targeting, and this metadata.
fn one_flag(metadata: Value) -> FlagFile {
    FlagFile::from_value(
        &json!({"flags": {"f": {
            "state": "ENABLED",
            "variants": {"on": true, "off": false},
            "defaultVariant": "on",
            "metadata": metadata,
        }}}),
        &LogicOptions::default(),
    )
    .unwrap()
}

/// `(rule id, severity, path)` of each finding for flag `f`.
fn lint(metadata: Value, unchanged_since: Option<&str>) -> Vec<(&'static str, Severity, String)> {
    let file = one_flag(metadata);
    let since = unchanged_since.map(date);
    lint_file(&file, &policy(), |_| since)
        .into_iter()
        .map(|finding| {
            assert_eq!(finding.key, "f");
            assert_eq!(finding.severity, finding.rule.severity());
            assert!(finding.message.starts_with(&format!("{}: ", finding.path)));
            (finding.rule.id(), finding.severity, finding.path)
        })
        .collect()
}

fn ids(metadata: Value, unchanged_since: Option<&str>) -> Vec<&'static str> {
    lint(metadata, unchanged_since)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

#[test]
fn a_well_kept_release_flag_is_clean() {
    let metadata = json!({"owner": "team-a", "type": "release", "expires": "2025-07-01"});
    assert!(ids(metadata, Some("2025-06-01")).is_empty());
}

#[test]
fn temporary_flags_need_owner_and_expiry() {
    for kind in ["release", "experiment"] {
        let found = lint(json!({"type": kind}), None);
        assert_eq!(
            found,
            [
                (
                    "missing-owner",
                    Severity::Warning,
                    "$.flags['f'].metadata.owner".to_owned()
                ),
                (
                    "missing-expiry",
                    Severity::Warning,
                    "$.flags['f'].metadata.expires".to_owned()
                ),
            ]
        );
    }
    // Ops, permission and untyped flags may live without them.
    for metadata in [
        json!({"type": "ops"}),
        json!({"type": "permission"}),
        json!({}),
    ] {
        assert!(ids(metadata, None).is_empty());
    }
}

#[test]
fn passed_removal_dates_are_errors() {
    let found = lint(json!({"type": "ops", "expires": "2025-06-14"}), None);
    assert_eq!(
        found,
        [(
            "expired",
            Severity::Error,
            "$.flags['f'].metadata.expires".to_owned()
        )]
    );
    // The removal day itself is still allowed; a date-time counts by its UTC day.
    assert!(ids(json!({"expires": "2025-06-15"}), None).is_empty());
    assert_eq!(
        ids(json!({"expires": "2025-06-15T01:00:00+02:00"}), None),
        ["expired"]
    );
}

#[test]
fn permission_flags_must_not_expire() {
    // Reported as a misuse of the type, not as an expired flag to delete.
    assert_eq!(
        ids(json!({"type": "permission", "expires": "2020-01-01"}), None),
        ["permission-expiry"]
    );
}

#[test]
fn invalid_values_are_errors() {
    let found = lint(
        json!({"owner": "", "type": "Release", "expires": "next week"}),
        None,
    );
    let found: Vec<_> = found
        .into_iter()
        .map(|(id, severity, _)| (id, severity))
        .collect();
    assert_eq!(
        found,
        [
            ("invalid-owner", Severity::Error),
            ("invalid-type", Severity::Error),
            ("invalid-expiry", Severity::Error),
        ]
    );
    assert_eq!(ids(json!({"owner": 7}), None), ["invalid-owner"]);
    assert_eq!(ids(json!({"expires": 20250101}), None), ["invalid-expiry"]);
}

#[test]
fn release_flags_serving_one_variant_long_enough_are_finished() {
    let metadata = json!({"owner": "a", "type": "release", "expires": "2026-01-01"});
    // 30 days unchanged: finished; 29: not yet; unknown: never.
    assert_eq!(
        ids(metadata.clone(), Some("2025-05-16")),
        ["finished-release"]
    );
    assert!(ids(metadata.clone(), Some("2025-05-17")).is_empty());
    assert!(ids(metadata, None).is_empty());
    // Experiments are not releases.
    let experiment = json!({"owner": "a", "type": "experiment", "expires": "2026-01-01"});
    assert!(ids(experiment, Some("2020-01-01")).is_empty());

    let file = one_flag(json!({"owner": "a", "type": "release", "expires": "2026-01-01"}));
    let strict = LintPolicy {
        finished_after_days: 7,
        ..policy()
    };
    let findings = lint_file(&file, &strict, |_| Some(date("2025-06-08")));
    assert_eq!(findings[0].rule, LintRule::FinishedRelease);
    assert_eq!(findings[0].path, "$.flags['f']");
    assert!(
        findings[0].message.contains("variant 'on'"),
        "{}",
        findings[0].message
    );
}

#[test]
fn split_release_flags_are_not_finished() {
    let file = FlagFile::from_value(
        &json!({"flags": {"f": {
            "state": "ENABLED",
            "variants": {"on": true, "off": false},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 50], ["off", 50]]},
            "metadata": {"owner": "a", "type": "release", "expires": "2026-01-01"},
        }}}),
        &LogicOptions::default(),
    )
    .unwrap();
    assert!(lint_file(&file, &policy(), |_| Some(date("2020-01-01"))).is_empty());
}

#[test]
fn inherited_metadata_is_located_in_the_flag_set() {
    let file = FlagFile::from_value(
        &json!({
            "metadata": {"owner": "", "expires": "2025-01-01"},
            "flags": {"it's": {"state": "ENABLED", "variants": {"on": true},
                "defaultVariant": "on", "metadata": {"type": "ops"}}},
        }),
        &LogicOptions::default(),
    )
    .unwrap();
    let paths: Vec<(String, String)> = lint_file(&file, &policy(), |_| None)
        .into_iter()
        .map(|finding| (finding.rule.id().to_owned(), finding.path))
        .collect();
    assert_eq!(
        paths,
        [
            ("invalid-owner".to_owned(), "$.metadata.owner".to_owned()),
            ("expired".to_owned(), "$.metadata.expires".to_owned()),
        ]
    );
    // Linting the flag alone points into its own metadata, with the key escaped.
    let flag = file.flag("it's").unwrap();
    let alone = lint_flag(flag, &policy(), None);
    assert_eq!(alone[0].path, "$.flags['it\\'s'].metadata.owner");
}

#[test]
fn errors_fail_a_run_and_warnings_only_when_strict() {
    let warning = lint_file(&one_flag(json!({"type": "release"})), &policy(), |_| None);
    let error = lint_file(
        &one_flag(json!({"expires": "2000-01-01"})),
        &policy(),
        |_| None,
    );
    assert!(!run_fails(&warning, false));
    assert!(run_fails(&warning, true));
    assert!(run_fails(&error, false));
    assert!(!run_fails(&[], true));
}

#[test]
fn rule_ids_are_stable_kebab_case_and_serialise_as_such() {
    let ids: Vec<&str> = LintRule::ALL.iter().map(|rule| rule.id()).collect();
    assert_eq!(
        ids,
        [
            "invalid-owner",
            "invalid-type",
            "invalid-expiry",
            "expired",
            "missing-owner",
            "missing-expiry",
            "finished-release",
            "permission-expiry",
        ]
    );
    for rule in LintRule::ALL {
        assert_eq!(serde_json::to_value(rule).unwrap(), json!(rule.id()));
    }
    assert_eq!(
        serde_json::to_value(Severity::Error).unwrap(),
        json!("error")
    );
}

proptest! {
    /// Any removal date before today is reported expired with its age; today or later is not.
    #[test]
    fn expiry_is_judged_by_whole_days(offset in -4000i64..4000) {
        let expires = policy().today.plus_days(offset);
        let found = ids(json!({"expires": expires.to_string()}), None);
        if offset < 0 {
            prop_assert_eq!(found, ["expired"]);
            let file = one_flag(json!({"expires": expires.to_string()}));
            let message = &lint_file(&file, &policy(), |_| None)[0].message;
            let days = format!("passed {} day", -offset);
            prop_assert!(message.contains(&days), "{}", message);
        } else {
            prop_assert!(found.is_empty());
        }
    }

    /// The finished threshold is honoured for any number of days.
    #[test]
    fn finished_after_threshold(threshold in 0u32..400, age in 0i64..400) {
        let file = one_flag(json!({"owner": "a", "type": "release", "expires": "2099-01-01"}));
        let policy = LintPolicy { finished_after_days: threshold, ..policy() };
        let since = policy.today.plus_days(-age);
        let findings = lint_file(&file, &policy, |_| Some(since));
        prop_assert_eq!(!findings.is_empty(), age >= i64::from(threshold));
    }
}
