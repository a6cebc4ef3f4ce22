//! The subset of JSONPath a web metric needs to pick one value: `$` followed by any chain of
//! `.field`, `['field']` (or `["field"]`) and `[index]`, e.g. `$.data.items[0].value`.
//!
//! For Argo Rollouts compatibility the whole path may be wrapped in braces (`{$.data}`), and
//! a path without `$` starts at the root (`data.value` = `$.data.value`). Filters, wildcards,
//! slices and recursive descent are not supported: a metric's `result` is one value.

use std::fmt;

use serde_json::Value;

/// How many field names an error lists when a field is missing.
const FIELDS_SHOWN: usize = 8;

/// One step down into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// An object's field.
    Field(String),
    /// An array's element, from 0.
    Index(usize),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Field(name) if is_plain(name) => write!(f, ".{name}"),
            Step::Field(name) if !name.contains('\'') => write!(f, "['{name}']"),
            Step::Field(name) => write!(f, "[\"{name}\"]"),
            Step::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// Whether `name` can be written as `.name`.
fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['.', '[', ']', '\'', '"'])
        && !name.chars().any(char::is_whitespace)
}

/// The value `path` points at in `document`. A missing part is an error naming it, where it
/// was looked for, and what was there instead.
pub(crate) fn select<'a>(document: &'a Value, path: &str) -> Result<&'a Value, String> {
    let steps = parse(path)?;
    let mut here = document;
    for (depth, step) in steps.iter().enumerate() {
        let next = match (step, here) {
            (Step::Field(name), Value::Object(fields)) => fields.get(name),
            (Step::Index(index), Value::Array(items)) => items.get(*index),
            _ => None,
        };
        here = next.ok_or_else(|| {
            let at: String = steps[..depth].iter().map(ToString::to_string).collect();
            format!(
                "JSON path `{path}`: `{step}` is missing at `${at}` ({})",
                describe(here)
            )
        })?;
    }
    Ok(here)
}

/// What a value is, for an error message.
fn describe(value: &Value) -> String {
    match value {
        Value::Object(fields) if fields.is_empty() => "an empty object".to_owned(),
        Value::Object(fields) => {
            let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
            let more = names.len().saturating_sub(FIELDS_SHOWN);
            names.truncate(FIELDS_SHOWN);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("an object with fields {}{more}", names.join(", "))
        }
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::String(_) => "a string".to_owned(),
        Value::Number(_) => "a number".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Null => "null".to_owned(),
    }
}

/// The steps of `path`; the error says what is wrong and where.
pub(crate) fn parse(path: &str) -> Result<Vec<Step>, String> {
    let trimmed = path.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(trimmed)
        .trim();
    let bare;
    let mut rest = match inner.strip_prefix('$') {
        Some(rest) => rest,
        None if inner.starts_with(['.', '[']) || inner.is_empty() => inner,
        None => {
            bare = format!(".{inner}");
            bare.as_str()
        }
    };
    let bad = |what: String| format!("bad JSON path `{path}`: {what}");
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            if name.is_empty() {
                return Err(bad("a `.` must be followed by a field name".to_owned()));
            }
            steps.push(Step::Field(name.to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let (step, after) = bracket(after).map_err(bad)?;
            steps.push(step);
            rest = after;
        } else {
            return Err(bad(format!("expected `.` or `[` before `{rest}`")));
        }
    }
    Ok(steps)
}

/// The step inside `[…]` and what follows the `]`; `text` starts just after the `[`.
fn bracket(text: &str) -> Result<(Step, &str), String> {
    if let Some(quote) = text.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let quoted = &text[1..];
        let end = quoted
            .find(quote)
            .ok_or_else(|| format!("unclosed quote in `[{text}`"))?;
        let after = quoted[end + 1..]
            .strip_prefix(']')
            .ok_or_else(|| format!("expected `]` after the quoted name in `[{text}`"))?;
        return Ok((Step::Field(quoted[..end].to_owned()), after));
    }
    let end = text
        .find(']')
        .ok_or_else(|| format!("unclosed `[` in `[{text}`"))?;
    let index = &text[..end];
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`[{index}]` is neither an index (0, 1, …) nor a quoted field name"
        ));
    }
    let index = index
        .parse()
        .map_err(|_| format!("index `{index}` is too large"))?;
    Ok((Step::Index(index), &text[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "status": "ok",
            "data": {
                "items": [{"value": "0.25"}, {"value": 7}],
                "odd.key": {"x y": true},
            }
        })
    }

    #[test]
    fn picks_values() {
        let doc = doc();
        let pick = |path: &str| select(&doc, path).cloned();
        assert_eq!(pick("$"), Ok(doc.clone()));
        assert_eq!(pick(""), Ok(doc.clone()));
        assert_eq!(pick("$.status"), Ok(json!("ok")));
        assert_eq!(pick("$.data.items[0].value"), Ok(json!("0.25")));
        assert_eq!(pick("$['data'][\"items\"][1]['value']"), Ok(json!(7)));
        assert_eq!(pick("$.data['odd.key']['x y']"), Ok(json!(true)));
        assert_eq!(pick("{$.data.items[1].value}"), Ok(json!(7)));
        assert_eq!(pick("data.items[1]"), Ok(json!({"value": 7})));
        assert_eq!(pick("[\"status\"]"), Ok(json!("ok")));
    }

    #[test]
    fn names_the_missing_part() {
        let doc = doc();
        let miss = |path: &str| select(&doc, path).unwrap_err();
        assert_eq!(
            miss("$.data.items[2].value"),
            "JSON path `$.data.items[2].value`: `[2]` is missing at `$.data.items` \
             (an array of 2 items)"
        );
        assert_eq!(
            miss("$.data.count"),
            "JSON path `$.data.count`: `.count` is missing at `$.data` \
             (an object with fields items, odd.key)"
        );
        assert_eq!(
            miss("$.status.code"),
            "JSON path `$.status.code`: `.code` is missing at `$.status` (a string)"
        );
        assert!(miss("$.data[0]").contains("`[0]` is missing at `$.data`"));
        assert!(miss("$['data']['odd.key'].z").contains("at `$.data['odd.key']`"));
    }

    #[test]
    fn rejects_what_it_does_not_support() {
        for bad in [
            "$..value", "$.a.", "$[*]", "$[-1]", "$[1:2]", "$['a'", "$['a'x]", "$[0", "$x", "$ .a",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with(&format!("bad JSON path `{bad}`")), "{err}");
        }
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_map(Step::Field),
            "[a-z .\\[\\]\"-]{1,6}".prop_map(Step::Field),
            (0usize..5).prop_map(Step::Index),
        ]
    }

    /// A document in which `steps` lead to `leaf`.
    fn build(steps: &[Step], leaf: Value) -> Value {
        match steps.split_first() {
            None => leaf,
            Some((Step::Field(name), rest)) => json!({ name.clone(): build(rest, leaf) }),
            Some((Step::Index(index), rest)) => {
                let mut items = vec![Value::Null; *index];
                items.push(build(rest, leaf));
                Value::Array(items)
            }
        }
    }

    proptest! {
        #[test]
        fn rendered_paths_parse_back_and_find_their_value(
            steps in proptest::collection::vec(step(), 0..6),
            leaf in any::<i64>(),
        ) {
            let path: String = std::iter::once("$".to_owned())
                .chain(steps.iter().map(ToString::to_string))
                .collect();
            prop_assert_eq!(parse(&path).unwrap(), steps.clone());
            let doc = build(&steps, json!(leaf));
            prop_assert_eq!(select(&doc, &path).unwrap(), &json!(leaf));
        }

        #[test]
        fn parsing_never_panics(path in any::<String>()) {
            let _ = parse(&path);
        }
    }
}
