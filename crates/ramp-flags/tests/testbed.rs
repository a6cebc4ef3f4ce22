//! Conformance: every scenario of the flagd-testbed evaluator features, run against this engine
//! with the testbed's own flag file. The files are read at test time from the shared testbed
//! beside the repository (`../shared/conformance/flagd-testbed/evaluator`).
//!
//! `@fractional-v1` / `@fractional-v3` tags select that bucketing algorithm (v2 otherwise). The
//! test fails if any scenario fails, unless its tag is in [`SKIPPED`] with a reason.

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ramp_flags::logic::{FractionalVersion, LogicOptions};
use ramp_flags::model::{FlagFile, FlagStore, Format};
use ramp_flags::resolve::{Evaluation, ValueType};
use serde_json::{Map, Value};
use support::gherkin::{self, Scenario, Step, StepKind, match_step};

/// Scenarios carrying one of these tags are reported as skipped, with the reason. Only for
/// behaviour the engine deliberately does not implement; empty while everything is supported.
const SKIPPED: &[(&str, &str)] = &[];

fn evaluator_dir() -> PathBuf {
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    repo_root.join("../shared/conformance/flagd-testbed/evaluator")
}

/// The testbed flag file compiled once per fractional version the scenarios ask for.
struct Engines {
    flags_text: String,
    stores: Vec<(FractionalVersion, FlagStore)>,
}

impl Engines {
    fn store(&mut self, version: FractionalVersion) -> Result<&FlagStore, String> {
        if let Some(index) = self.stores.iter().position(|(known, _)| *known == version) {
            return Ok(&self.stores[index].1);
        }
        let options = LogicOptions {
            fractional: version,
        };
        let file = FlagFile::parse_with(&self.flags_text, Format::Json, &options)
            .map_err(|errors| format!("testkit flags rejected: {errors}"))?;
        let store = FlagStore::new(vec![("testkit-flags.json".to_owned(), file)]);
        self.stores.push((version, store));
        Ok(&self.stores.last().expect("just pushed").1)
    }
}

fn fractional_version(tags: &[String]) -> FractionalVersion {
    if tags.iter().any(|tag| tag == "@fractional-v1") {
        FractionalVersion::V1
    } else if tags.iter().any(|tag| tag == "@fractional-v3") {
        FractionalVersion::V3
    } else {
        FractionalVersion::V2
    }
}

/// The OpenFeature type a scenario resolves, and how its literals are read and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Boolean,
    String,
    Integer,
    Float,
    Object,
}

impl FlagKind {
    fn named(name: &str) -> Result<FlagKind, String> {
        match name {
            "Boolean" => Ok(FlagKind::Boolean),
            "String" => Ok(FlagKind::String),
            "Integer" | "Long" => Ok(FlagKind::Integer),
            "Float" | "Double" => Ok(FlagKind::Float),
            "Object" => Ok(FlagKind::Object),
            other => Err(format!("unknown type {other:?}")),
        }
    }

    fn value_type(self) -> ValueType {
        match self {
            FlagKind::Boolean => ValueType::Bool,
            FlagKind::String => ValueType::String,
            FlagKind::Integer => ValueType::Int,
            FlagKind::Float => ValueType::Float,
            FlagKind::Object => ValueType::Object,
        }
    }

    fn parse(self, text: &str) -> Result<Value, String> {
        let parsed = match self {
            FlagKind::String => Some(Value::from(text)),
            FlagKind::Boolean => text.parse::<bool>().ok().map(Value::from),
            FlagKind::Integer => text.parse::<i64>().ok().map(Value::from),
            FlagKind::Float => text.parse::<f64>().ok().map(Value::from),
            FlagKind::Object => serde_json::from_str(text).ok(),
        };
        parsed.ok_or_else(|| format!("{text:?} is not a {self:?}"))
    }

    fn same(self, actual: &Value, expected: &Value) -> bool {
        match self {
            FlagKind::Float => actual.as_f64().is_some() && actual.as_f64() == expected.as_f64(),
            FlagKind::Integer => actual.as_i64().is_some() && actual.as_i64() == expected.as_i64(),
            _ => actual == expected,
        }
    }
}

/// The flag a scenario resolves, as a caller would: key, type and code default.
struct FlagUnderTest {
    key: String,
    kind: FlagKind,
    fallback: Value,
}

/// State built up by a scenario's steps.
struct World<'a> {
    store: &'a FlagStore,
    flag: Option<FlagUnderTest>,
    context: Map<String, Value>,
    evaluation: Option<Evaluation>,
}

impl World<'_> {
    fn evaluated(&self) -> Result<(&FlagUnderTest, &Evaluation), String> {
        let flag = self.flag.as_ref().ok_or("no flag was set up")?;
        let evaluation = self
            .evaluation
            .as_ref()
            .ok_or("the flag was not evaluated")?;
        Ok((flag, evaluation))
    }

    fn run(&mut self, step: &Step) -> Result<(), String> {
        let text = step.text.as_str();
        let flag_patterns = [
            "a {word}-flag with key {string} and a fallback value {string}",
            "a {word}-flag with key {string} and a default value {string}",
        ];
        if text == "an evaluator" {
            return Ok(());
        }
        if let Some([kind, key, fallback]) = capture::<3>(&flag_patterns, text) {
            let kind = FlagKind::named(&kind)?;
            let fallback = kind.parse(&fallback)?;
            self.flag = Some(FlagUnderTest {
                key,
                kind,
                fallback,
            });
            return Ok(());
        }
        let typed_key =
            ["a context containing a key {string}, with type {string} and with value {string}"];
        if let Some([key, kind, value]) = capture::<3>(&typed_key, text) {
            let value = FlagKind::named(&kind)?.parse(&value)?;
            self.context.insert(key, value);
            return Ok(());
        }
        if let Some([key]) = capture::<1>(
            &["a context containing a targeting key with value {string}"],
            text,
        ) {
            self.context
                .insert("targetingKey".to_owned(), Value::from(key));
            return Ok(());
        }
        let nested = [
            "a context containing a nested property with outer key {string} and inner key {string}, with value {string}",
        ];
        if let Some([outer, inner, value]) = capture::<3>(&nested, text) {
            let entry = self
                .context
                .entry(outer)
                .or_insert_with(|| Value::Object(Map::new()));
            let object = entry
                .as_object_mut()
                .ok_or("outer context key is not an object")?;
            object.insert(inner, Value::from(value));
            return Ok(());
        }
        if text == "the flag was evaluated with details" {
            let flag = self.flag.as_ref().ok_or("no flag was set up")?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs());
            self.evaluation =
                Some(
                    self.store
                        .evaluate(&flag.key, &self.context, flag.kind.value_type(), now),
                );
            return Ok(());
        }
        self.check(step)
    }

    fn check(&self, step: &Step) -> Result<(), String> {
        let text = step.text.as_str();
        let (flag, evaluation) = self.evaluated()?;
        if let Some([expected]) =
            capture::<1>(&["the resolved details value should be {string}"], text)
        {
            let expected = flag.kind.parse(&expected)?;
            let served = evaluation
                .value
                .clone()
                .unwrap_or_else(|| flag.fallback.clone());
            return expect(
                flag.kind.same(&served, &expected),
                "value",
                &expected,
                &served,
                evaluation,
            );
        }
        if let Some([expected]) = capture::<1>(&["the reason should be {string}"], text) {
            let actual = evaluation.reason.as_str();
            return expect(actual == expected, "reason", &expected, &actual, evaluation);
        }
        if let Some([expected]) = capture::<1>(&["the variant should be {string}"], text) {
            let actual = evaluation.variant.clone().unwrap_or_default();
            return expect(
                actual == expected,
                "variant",
                &expected,
                &actual,
                evaluation,
            );
        }
        if let Some([expected]) = capture::<1>(&["the error-code should be {string}"], text) {
            let actual = evaluation.error_code().map_or("", |code| code.as_str());
            return expect(
                actual == expected,
                "error code",
                &expected,
                &actual,
                evaluation,
            );
        }
        if text == "the resolved metadata is empty" {
            let empty = evaluation.metadata.is_empty();
            return expect(
                empty,
                "metadata",
                &"{}",
                &Value::Object(evaluation.metadata.clone()),
                evaluation,
            );
        }
        if text == "the resolved metadata should contain" {
            return check_metadata(&step.table, evaluation);
        }
        Err(format!("unsupported step: {:?} {text}", step.kind))
    }
}

/// The captures of the first pattern that matches, when it has exactly `N` of them.
fn capture<const N: usize>(patterns: &[&str], text: &str) -> Option<[String; N]> {
    patterns
        .iter()
        .find_map(|pattern| match_step(pattern, text))
        .and_then(|captures| captures.try_into().ok())
}

fn expect(
    ok: bool,
    what: &str,
    expected: &dyn std::fmt::Debug,
    actual: &dyn std::fmt::Debug,
    evaluation: &Evaluation,
) -> Result<(), String> {
    if ok {
        return Ok(());
    }
    Err(format!(
        "{what}: expected {expected:?}, got {actual:?} (reason {}, error {:?})",
        evaluation.reason.as_str(),
        evaluation.error
    ))
}

/// Checks a `| key | metadata_type | value |` table against the evaluation's metadata.
fn check_metadata(table: &[Vec<String>], evaluation: &Evaluation) -> Result<(), String> {
    let (header, rows) = table.split_first().ok_or("metadata step without a table")?;
    let column = |name: &str| {
        header
            .iter()
            .position(|cell| cell == name)
            .ok_or(format!("metadata table lacks a {name:?} column"))
    };
    let (key_at, type_at, value_at) = (column("key")?, column("metadata_type")?, column("value")?);
    for row in rows {
        let kind = FlagKind::named(&row[type_at])?;
        let expected = kind.parse(&row[value_at])?;
        let actual = evaluation
            .metadata
            .get(&row[key_at])
            .cloned()
            .unwrap_or(Value::Null);
        let what = format!("metadata {:?}", row[key_at]);
        expect(
            kind.same(&actual, &expected),
            &what,
            &expected,
            &actual,
            evaluation,
        )?;
    }
    Ok(())
}

enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

fn run_scenario(scenario: &Scenario, engines: &mut Engines) -> Outcome {
    if let Some((tag, reason)) = SKIPPED
        .iter()
        .find(|(tag, _)| scenario.tags.iter().any(|own| own == tag))
    {
        return Outcome::Skipped(format!("{tag}: {reason}"));
    }
    let store = match engines.store(fractional_version(&scenario.tags)) {
        Ok(store) => store,
        Err(error) => return Outcome::Failed(error),
    };
    let mut world = World {
        store,
        flag: None,
        context: Map::new(),
        evaluation: None,
    };
    for step in &scenario.steps {
        if let Err(error) = world.run(step) {
            let keyword = match step.kind {
                StepKind::Given => "Given",
                StepKind::When => "When",
                StepKind::Then => "Then",
            };
            return Outcome::Failed(format!("{keyword} {}: {error}", step.text));
        }
    }
    Outcome::Passed
}

#[test]
fn flagd_testbed_evaluator_scenarios() {
    let dir = evaluator_dir();
    let flags_path = dir.join("flags/testkit-flags.json");
    let flags_text = std::fs::read_to_string(&flags_path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", flags_path.display()));
    let mut engines = Engines {
        flags_text,
        stores: Vec::new(),
    };
    let mut feature_paths: Vec<PathBuf> = std::fs::read_dir(dir.join("gherkin"))
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.join("gherkin").display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "feature")
        })
        .collect();
    feature_paths.sort();
    assert!(
        !feature_paths.is_empty(),
        "no .feature files in {}",
        dir.display()
    );

    let mut report = String::new();
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    for path in &feature_paths {
        let file_name = path
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("cannot read {file_name}: {error}"));
        let feature =
            gherkin::parse_feature(&text).unwrap_or_else(|error| panic!("{file_name}: {error}"));
        let mut lines = String::new();
        let (mut feature_passed, mut feature_failed, mut feature_skipped) = (0, 0, 0);
        for scenario in &feature.scenarios {
            match run_scenario(scenario, &mut engines) {
                Outcome::Passed => feature_passed += 1,
                Outcome::Failed(reason) => {
                    feature_failed += 1;
                    let _ = writeln!(lines, "    FAILED  {}: {reason}", scenario.name);
                }
                Outcome::Skipped(reason) => {
                    feature_skipped += 1;
                    let _ = writeln!(lines, "    SKIPPED {}: {reason}", scenario.name);
                }
            }
        }
        let _ = writeln!(
            report,
            "{file_name} ({}): {feature_passed} passed, {feature_failed} failed, {feature_skipped} skipped\n{lines}",
            feature.name
        );
        passed += feature_passed;
        failed += feature_failed;
        skipped += feature_skipped;
    }
    println!("{report}total: {passed} passed, {failed} failed, {skipped} skipped");
    assert!(passed > 0, "no scenario ran");
    assert_eq!(failed, 0, "conformance scenarios failed:\n{report}");
}
