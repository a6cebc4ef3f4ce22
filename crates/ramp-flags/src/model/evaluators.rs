//! `$evaluators`: named rule fragments shared between flags through `{"$ref": "name"}`.
//!
//! Substitution is one level deep, as in flagd: a `$ref` inside an evaluator is left as it is
//! (and then fails to compile), so shared fragments cannot form cycles.

use serde_json::{Map, Value};

use super::error::JsonPath;

/// The key of a reference object: `{"$ref": "name"}`.
const REF_KEY: &str = "$ref";

/// A reference to an evaluator that the file does not define.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownRef {
    pub(crate) name: String,
    pub(crate) path: JsonPath,
}

/// Returns `rule` with every `{"$ref": "name"}` replaced by `evaluators[name]`, or the first
/// reference naming no evaluator.
pub(crate) fn substitute_refs(
    rule: &Value,
    evaluators: &Map<String, Value>,
    path: &JsonPath,
) -> Result<Value, UnknownRef> {
    match rule {
        Value::Object(object) => {
            if let Some(name) = reference_name(object) {
                return evaluators.get(name).cloned().ok_or_else(|| UnknownRef {
                    name: name.to_owned(),
                    path: path.clone(),
                });
            }
            let mut substituted = Map::with_capacity(object.len());
            for (key, value) in object {
                let inner = substitute_refs(value, evaluators, &path.key(key))?;
                substituted.insert(key.clone(), inner);
            }
            Ok(Value::Object(substituted))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| substitute_refs(item, evaluators, &path.index(index)))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        scalar => Ok(scalar.clone()),
    }
}

/// The evaluator name when `object` is exactly a reference (`$ref` as its only key, naming a
/// string).
fn reference_name(object: &Map<String, Value>) -> Option<&str> {
    if object.len() != 1 {
        return None;
    }
    object.get(REF_KEY)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn evaluators() -> Map<String, Value> {
        json!({
            "is_admin": {"==": [{"var": "role"}, "admin"]},
            "nested": {"$ref": "is_admin"}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn replaces_references_anywhere_in_the_rule() {
        let rule = json!({"if": [{"$ref": "is_admin"}, "on", {"or": [{"$ref": "is_admin"}]}]});
        let substituted = substitute_refs(&rule, &evaluators(), &JsonPath::root()).unwrap();
        assert_eq!(
            substituted,
            json!({"if": [
                {"==": [{"var": "role"}, "admin"]},
                "on",
                {"or": [{"==": [{"var": "role"}, "admin"]}]}
            ]})
        );
    }

    #[test]
    fn does_not_follow_references_inside_evaluators() {
        let rule = json!({"$ref": "nested"});
        let substituted = substitute_refs(&rule, &evaluators(), &JsonPath::root()).unwrap();
        assert_eq!(substituted, json!({"$ref": "is_admin"}));
    }

    #[test]
    fn reports_the_unknown_name_and_where_it_was_used() {
        let rule = json!({"if": [true, {"$ref": "missing"}]});
        let error = substitute_refs(&rule, &evaluators(), &JsonPath::root().field("targeting"))
            .unwrap_err();
        assert_eq!(error.name, "missing");
        assert_eq!(error.path.as_str(), "$.targeting['if'][1]");
    }

    #[test]
    fn objects_with_more_keys_than_ref_are_left_alone() {
        let rule = json!({"$ref": "is_admin", "other": 1});
        let substituted = substitute_refs(&rule, &evaluators(), &JsonPath::root()).unwrap();
        assert_eq!(substituted, rule);
    }
}
