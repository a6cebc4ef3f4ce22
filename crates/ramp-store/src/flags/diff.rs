//! What changed between two versions of a flag definition, as JSON-pointer changes, so the
//! audit log says exactly which values moved and what they were before.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

/// One value that differs between two documents.
///
/// `path` is an RFC 6901 JSON pointer (`""` is the whole document, `/targeting/if/1` a value
/// inside it). A missing `from` means the value was added, a missing `to` that it was removed;
/// a JSON `null` on either side is a value like any other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FieldChange {
    pub(crate) path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) from: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) to: Option<Value>,
}

/// The changes that turn `before` into `after` (`None` is "no document"), in path order.
///
/// Objects are compared member by member and arrays of equal length element by element, so a
/// change deep inside a targeting rule is reported where it is; an array that grew or shrank is
/// reported whole, since element positions no longer correspond.
pub(crate) fn diff(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    walk(String::new(), before, after, &mut changes);
    changes
}

fn walk(path: String, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Some(Value::Object(old)), Some(Value::Object(new))) => {
            let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for name in names {
                walk(child(&path, name), old.get(name), new.get(name), out);
            }
        }
        (Some(Value::Array(old)), Some(Value::Array(new))) if old.len() == new.len() => {
            for (index, (old, new)) in old.iter().zip(new).enumerate() {
                walk(child(&path, &index.to_string()), Some(old), Some(new), out);
            }
        }
        (before, after) if before != after => out.push(FieldChange {
            path,
            from: before.cloned(),
            to: after.cloned(),
        }),
        _ => {}
    }
}

/// `path` extended by one reference token, escaped as RFC 6901 says (`~` then `/`).
fn child(path: &str, token: &str) -> String {
    format!("{path}/{}", token.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::{FieldChange, diff};

    /// Applies `changes` to `document`: the inverse of [`diff`], to check it loses nothing.
    fn apply(mut document: Option<Value>, changes: &[FieldChange]) -> Option<Value> {
        for change in changes {
            if change.path.is_empty() {
                document = change.to.clone();
                continue;
            }
            let (parent, last) = change.path.rsplit_once('/').expect("a pointer");
            let last = last.replace("~1", "/").replace("~0", "~");
            let target = document
                .as_mut()
                .and_then(|d| d.pointer_mut(parent))
                .expect("the parent exists");
            match (target, &change.to) {
                (Value::Object(members), Some(value)) => {
                    members.insert(last, value.clone());
                }
                (Value::Object(members), None) => {
                    members.remove(&last);
                }
                (Value::Array(items), Some(value)) => {
                    items[last.parse::<usize>().expect("an index")] = value.clone();
                }
                (other, _) => panic!("cannot apply {change:?} to {other}"),
            }
        }
        document
    }

    #[test]
    fn reports_changed_added_and_removed_values_by_pointer() {
        let before = json!({
            "state": "ENABLED",
            "variants": {"on": true, "off": false},
            "defaultVariant": "on",
            "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "on", "off"]},
        });
        let after = json!({
            "state": "DISABLED",
            "variants": {"on": true, "off": false},
            "defaultVariant": null,
            "targeting": {"if": [{"==": [{"var": "plan"}, "team"]}, "on", "off"]},
            "metadata": {"owner": "a/b~c"},
        });
        let changes = serde_json::to_value(diff(Some(&before), Some(&after))).unwrap();
        assert_eq!(
            changes,
            json!([
                {"path": "/defaultVariant", "from": "on", "to": null},
                {"path": "/metadata", "to": {"owner": "a/b~c"}},
                {"path": "/state", "from": "ENABLED", "to": "DISABLED"},
                {"path": "/targeting/if/0/==/1", "from": "pro", "to": "team"},
            ])
        );
        let removed = diff(Some(&after), Some(&before));
        assert_eq!(removed[1].path, "/metadata");
        assert_eq!(
            (removed[1].from.is_some(), removed[1].to.is_none()),
            (true, true)
        );
    }

    #[test]
    fn whole_documents_and_resized_arrays_are_reported_whole() {
        let flag = json!({"state": "ENABLED", "variants": {"a": [1, 2]}});
        assert_eq!(
            diff(None, Some(&flag)),
            [FieldChange {
                path: String::new(),
                from: None,
                to: Some(flag.clone()),
            }]
        );
        assert_eq!(diff(Some(&flag), None)[0].from, Some(flag.clone()));
        assert!(diff(Some(&flag), Some(&flag)).is_empty());
        assert!(diff(None, None).is_empty());
        let grown = json!({"state": "ENABLED", "variants": {"a": [1, 2, 3]}});
        let changes = diff(Some(&flag), Some(&grown));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "/variants/a");
    }

    #[test]
    fn member_names_are_escaped() {
        let before = json!({"a/b": {"~": 1}});
        let after = json!({"a/b": {"~": 2}});
        assert_eq!(diff(Some(&before), Some(&after))[0].path, "/a~1b/~0");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..3).prop_map(Value::from),
            "[a-c/~]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c/~]{0,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    proptest! {
        /// Replaying the diff on the old document gives the new one, and only values that
        /// really differ are listed.
        #[test]
        fn applying_the_diff_turns_before_into_after(
            before in prop::option::of(json_value()),
            after in prop::option::of(json_value()),
        ) {
            let changes = diff(before.as_ref(), after.as_ref());
            prop_assert_eq!(apply(before.clone(), &changes), after.clone());
            prop_assert_eq!(changes.is_empty(), before == after);
            for change in &changes {
                prop_assert_ne!(&change.from, &change.to);
            }
        }
    }
}
