//! Checks a parsed document against flagd's flag-file schema and builds [`FlagFile`]; every
//! problem is collected with its JSON path before the file is rejected.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::{JsonPath, ModelErrors, Problems};
use super::evaluators::substitute_refs;
use super::{FLAG_SET_ID_KEY, Flag, FlagFile, FlagState, Targeting, VariantType};
use crate::logic::{LogicOptions, Rule};

/// Everything a flag needs from the rest of its file.
struct FileContext<'a> {
    evaluators: &'a Map<String, Value>,
    set_metadata: &'a Map<String, Value>,
    options: &'a LogicOptions,
}

pub(super) fn flag_file(document: &Value, options: &LogicOptions) -> Result<FlagFile, ModelErrors> {
    let root = JsonPath::root();
    let Some(top) = document.as_object() else {
        return Err(ModelErrors::single(
            root.as_str(),
            "must be an object with a \"flags\" field",
        ));
    };
    let mut problems = Problems::default();
    let no_evaluators = Map::new();
    let evaluators = match top.get("$evaluators") {
        None | Some(Value::Null) => &no_evaluators,
        Some(Value::Object(evaluators)) => evaluators,
        Some(_) => {
            problems.push(
                &root.field("$evaluators"),
                "must be an object of evaluator name to rule",
            );
            &no_evaluators
        }
    };
    let set_metadata = metadata(top.get("metadata"), &root.field("metadata"), &mut problems);
    let context = FileContext {
        evaluators,
        set_metadata: &set_metadata,
        options,
    };
    let flags = flags(
        top.get("flags"),
        &root.field("flags"),
        &context,
        &mut problems,
    );
    problems.into_result(FlagFile {
        flags,
        metadata: set_metadata,
    })
}

/// `flags` as a map of key to flag, or (as flagd also accepts) an array of flags with `key`.
fn flags(
    value: Option<&Value>,
    path: &JsonPath,
    context: &FileContext<'_>,
    problems: &mut Problems,
) -> BTreeMap<String, Arc<Flag>> {
    let mut flags = BTreeMap::new();
    match value {
        None => problems.push(path, "is required"),
        Some(Value::Object(entries)) => {
            for (key, value) in entries {
                if let Some(flag) = flag(key, value, &path.key(key), context, problems) {
                    flags.insert(key.clone(), Arc::new(flag));
                }
            }
        }
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                let item_path = path.index(index);
                let Some(key) = item.get("key").and_then(Value::as_str) else {
                    problems.push(&item_path.field("key"), "is required (a string)");
                    continue;
                };
                if flags.contains_key(key) {
                    problems.push(
                        &item_path.field("key"),
                        format!("'{key}' is defined more than once"),
                    );
                    continue;
                }
                if let Some(flag) = flag(key, item, &item_path, context, problems) {
                    flags.insert(key.to_owned(), Arc::new(flag));
                }
            }
        }
        Some(_) => problems.push(
            path,
            "must be an object of flag key to flag, or an array of flags with \"key\"",
        ),
    }
    flags
}

fn flag(
    key: &str,
    value: &Value,
    path: &JsonPath,
    context: &FileContext<'_>,
    problems: &mut Problems,
) -> Option<Flag> {
    let Some(object) = value.as_object() else {
        problems.push(path, "must be an object");
        return None;
    };
    let state = state(object.get("state"), &path.field("state"), problems);
    let variants = variants(object.get("variants"), &path.field("variants"), problems);
    let default_variant = default_variant(
        object.get("defaultVariant"),
        variants.as_ref().map(|(variants, _)| variants),
        &path.field("defaultVariant"),
        problems,
    );
    let own_metadata = metadata(object.get("metadata"), &path.field("metadata"), problems);
    let (targeting, targeting_source) = targeting(
        object.get("targeting"),
        &path.field("targeting"),
        context,
        problems,
    );
    let mut metadata = context.set_metadata.clone();
    metadata.extend(own_metadata);
    let (variants, variant_type) = variants?;
    Some(Flag {
        key: key.to_owned(),
        state: state?,
        variants,
        variant_type,
        default_variant: default_variant?,
        targeting: targeting?,
        targeting_source,
        metadata,
    })
}

fn state(value: Option<&Value>, path: &JsonPath, problems: &mut Problems) -> Option<FlagState> {
    match value {
        Some(Value::String(state)) if state == "ENABLED" => Some(FlagState::Enabled),
        Some(Value::String(state)) if state == "DISABLED" => Some(FlagState::Disabled),
        None => {
            problems.push(path, "is required (ENABLED or DISABLED)");
            None
        }
        Some(other) => {
            problems.push(path, format!("must be ENABLED or DISABLED, not {other}"));
            None
        }
    }
}

fn variants(
    value: Option<&Value>,
    path: &JsonPath,
    problems: &mut Problems,
) -> Option<(Map<String, Value>, VariantType)> {
    let variants = match value {
        None => {
            problems.push(path, "is required");
            return None;
        }
        Some(Value::Object(variants)) => variants,
        Some(_) => {
            problems.push(path, "must be an object of variant name to value");
            return None;
        }
    };
    let mut shared: Option<(&str, VariantType)> = None;
    let mut valid = true;
    for (name, value) in variants {
        let Some(kind) = VariantType::of(value) else {
            problems.push(
                &path.key(name),
                "must be a boolean, string, number or object",
            );
            valid = false;
            continue;
        };
        match shared {
            None => shared = Some((name, kind)),
            Some((first, first_kind)) if first_kind != kind => {
                problems.push(
                    &path.key(name),
                    format!(
                        "is a {} but variant '{first}' is a {}: all variants must share one type",
                        kind.name(),
                        first_kind.name()
                    ),
                );
                valid = false;
            }
            Some(_) => {}
        }
    }
    let Some((_, kind)) = shared else {
        if valid {
            problems.push(path, "must define at least one variant");
        }
        return None;
    };
    valid.then(|| (variants.clone(), kind))
}

/// `Some(None)` when absent or null (the caller's code default is used), `None` when invalid.
fn default_variant(
    value: Option<&Value>,
    variants: Option<&Map<String, Value>>,
    path: &JsonPath,
    problems: &mut Problems,
) -> Option<Option<String>> {
    match value {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(name)) => match variants {
            Some(variants) if !variants.contains_key(name) => {
                let mut names: Vec<&str> = variants.keys().map(String::as_str).collect();
                names.sort_unstable();
                problems.push(
                    path,
                    format!("names no variant (variants: {})", names.join(", ")),
                );
                None
            }
            _ => Some(Some(name.clone())),
        },
        Some(_) => {
            problems.push(path, "must be a string naming a variant, or null");
            None
        }
    }
}

/// Flag-set or flag metadata: a flat object of strings, numbers and booleans.
fn metadata(value: Option<&Value>, path: &JsonPath, problems: &mut Problems) -> Map<String, Value> {
    let entries = match value {
        None | Some(Value::Null) => return Map::new(),
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            problems.push(path, "must be an object");
            return Map::new();
        }
    };
    let mut metadata = Map::new();
    for (key, value) in entries {
        let valid = match value {
            Value::String(_) => true,
            Value::Number(_) | Value::Bool(_) => key != FLAG_SET_ID_KEY,
            _ => false,
        };
        if valid {
            metadata.insert(key.clone(), value.clone());
        } else if key == FLAG_SET_ID_KEY {
            problems.push(&path.key(key), "must be a string");
        } else {
            problems.push(&path.key(key), "must be a string, number or boolean");
        }
    }
    metadata
}

/// The prepared targeting and its source with references inlined. `None` (with a problem
/// recorded) only for a structurally wrong `targeting`; rules that fail to prepare break the flag,
/// not the file.
fn targeting(
    value: Option<&Value>,
    path: &JsonPath,
    context: &FileContext<'_>,
    problems: &mut Problems,
) -> (Option<Targeting>, Option<Value>) {
    let rule = match value {
        None | Some(Value::Null) => return (Some(Targeting::None), None),
        Some(Value::Object(rule)) if rule.is_empty() => {
            return (Some(Targeting::None), value.cloned());
        }
        Some(rule @ Value::Object(_)) => rule,
        Some(_) => {
            problems.push(path, "must be an object (a JsonLogic rule)");
            return (None, None);
        }
    };
    let inlined = match substitute_refs(rule, context.evaluators, path) {
        Ok(inlined) => inlined,
        Err(unknown) => {
            let message = format!(
                "{}: references evaluator '{}', which $evaluators does not define",
                unknown.path, unknown.name
            );
            return (Some(Targeting::Broken(message)), Some(rule.clone()));
        }
    };
    let targeting = match Rule::compile(&inlined, context.options) {
        Ok(compiled) => Targeting::Rule(compiled),
        Err(error) => {
            let pointer = if error.path.is_empty() {
                "/"
            } else {
                &error.path
            };
            Targeting::Broken(format!(
                "{path} (at {pointer}): rule does not compile: {}",
                error.message
            ))
        }
    };
    (Some(targeting), Some(inlined))
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
