//! Operators over arrays and over the data's shape: `map`, `filter`, `reduce`, `all`, `none`,
//! `some` (which run a rule once per item) and `missing` / `missing_some`.

use super::eval::{Env, Scope, eval, eval_all, eval_truthy, lookup};
use super::js::{self, less_or_equal};
use super::node::{Node, ScopedOp};
use serde_json::Value;
use std::borrow::Cow;

/// `map`, `filter`, `reduce`, `all`, `none`, `some`: `logic` runs with each item of `source`
/// as data.
pub(super) fn eval_scoped<'a>(
    op: ScopedOp,
    source: &'a Node,
    logic: &'a Node,
    initial: Option<&'a Node>,
    env: Env<'a>,
    scope: Scope<'a>,
) -> Cow<'a, Value> {
    let data = eval(source, env, scope);
    let test = |item: &Value| eval_truthy(logic, env, Scope::Item(item));
    let items: &[Value] = match (&*data, op) {
        (Value::Array(items), _) => items,
        (_, ScopedOp::Reduce) => {
            return match initial {
                Some(initial) => Cow::Owned(eval(initial, env, scope).into_owned()),
                None => Cow::Owned(Value::Null),
            };
        }
        (Value::String(text), ScopedOp::All) if !text.is_empty() => {
            // JavaScript indexes strings by character, so `all` visits each one.
            let every = text.chars().all(|c| test(&Value::String(c.to_string())));
            return Cow::Owned(Value::Bool(every));
        }
        _ => &[],
    };
    let result = match op {
        ScopedOp::Map => Value::Array(
            items
                .iter()
                .map(|item| eval(logic, env, Scope::Item(item)).into_owned())
                .collect(),
        ),
        ScopedOp::Filter => Value::Array(items.iter().filter(|item| test(item)).cloned().collect()),
        ScopedOp::All => Value::Bool(!items.is_empty() && items.iter().all(test)),
        ScopedOp::None => Value::Bool(!items.iter().any(test)),
        ScopedOp::Some => Value::Bool(items.iter().any(test)),
        ScopedOp::Reduce => {
            let mut accumulator = match initial {
                Some(initial) => eval(initial, env, scope).into_owned(),
                None => Value::Null,
            };
            for current in items {
                let reduce_scope = Scope::Reduce {
                    current,
                    accumulator: &accumulator,
                };
                accumulator = eval(logic, env, reduce_scope).into_owned();
            }
            accumulator
        }
    };
    Cow::Owned(result)
}

/// `missing`: the keys (from the first argument if it is an array, else all arguments) whose
/// value is absent, `null` or `""`.
pub(super) fn eval_missing<'a>(args: &'a [Node], env: Env<'a>, scope: Scope<'a>) -> Cow<'a, Value> {
    let args = eval_all(args, env, scope);
    let absent = match args.first().map(|first| &**first) {
        Some(Value::Array(keys)) => missing_keys(keys.iter(), scope),
        _ => missing_keys(args.iter().map(|arg| &**arg), scope),
    };
    Cow::Owned(Value::Array(absent))
}

fn missing_keys<'k>(keys: impl Iterator<Item = &'k Value>, scope: Scope<'_>) -> Vec<Value> {
    keys.filter(|key| {
        let found = match &**key {
            Value::Null => None,
            Value::String(text) if text.is_empty() => None,
            other => lookup(scope, &super::node::split_path(&js::to_js_string(other))),
        };
        found.is_none_or(|value| value.is_null() || value.as_str() == Some(""))
    })
    .cloned()
    .collect()
}

/// `missing_some`: `[]` when at least `need` of the options are present, else the missing ones.
pub(super) fn eval_missing_some<'a>(
    args: &'a [Node],
    env: Env<'a>,
    scope: Scope<'a>,
) -> Cow<'a, Value> {
    let values = eval_all(args, env, scope);
    let need = values.first().map(|v| &**v);
    let (absent, option_count) = match values.get(1).map(|v| &**v) {
        Some(Value::Array(options)) => (missing_keys(options.iter(), scope), Some(options.len())),
        other => (missing_keys(other.into_iter(), scope), None),
    };
    let present = option_count.map(|count| Value::from(count - absent.len()));
    let enough = present.is_some_and(|present| less_or_equal(need, Some(&present)));
    Cow::Owned(Value::Array(if enough { Vec::new() } else { absent }))
}
