//! Evaluation of the compiled tree. Values are borrowed from the rule or the context wherever
//! possible (`Cow`), so comparing a context property with a literal allocates nothing.

use super::js::{self, less_or_equal, less_than, loose_eq, strict_eq, truthy};
use super::node::{Node, Op, ScopedOp, Segment, VarPath};
use super::{EvalError, LogicOptions, fractional, semver};
use serde_json::{Map, Value};
use std::borrow::Cow;

type Eval<'a> = Result<Cow<'a, Value>, EvalError>;

/// What `var` reads: the caller's context, or the item a scoped operator is visiting.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    Root(Root<'a>),
    Item(&'a Value),
    Reduce {
        current: &'a Value,
        accumulator: &'a Value,
    },
}

/// The data a rule evaluates against: the caller's context, and `$flagd` (the flag key and the
/// time) kept beside it so the context is never copied to add them. `$flagd` given here wins
/// over one in the context, so callers cannot forge it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Root<'a> {
    context: &'a Map<String, Value>,
    flagd: Option<&'a Value>,
}

/// The key under which `$flagd` is read.
const FLAGD_KEY: &str = "$flagd";

impl<'a> Root<'a> {
    /// A top-level property.
    pub(super) fn get(self, key: &str) -> Option<&'a Value> {
        match self.flagd {
            Some(flagd) if key == FLAGD_KEY => Some(flagd),
            _ => self.context.get(key),
        }
    }

    /// The whole data as one object (for `var: ""`; rare, so it may copy).
    fn to_value(self) -> Value {
        let mut map = self.context.clone();
        if let Some(flagd) = self.flagd {
            map.insert(FLAGD_KEY.to_owned(), flagd.clone());
        }
        Value::Object(map)
    }
}

/// Per-evaluation settings that scoped operators do not change.
#[derive(Debug, Clone, Copy)]
struct Env<'a> {
    root: Root<'a>,
    options: LogicOptions,
}

/// Evaluates `node` with `context` as data and returns an owned result.
pub(super) fn evaluate_root(
    node: &Node,
    context: &Map<String, Value>,
    flagd: Option<&Value>,
    options: LogicOptions,
) -> Result<Value, EvalError> {
    let root = Root { context, flagd };
    let env = Env { root, options };
    eval(node, env, Scope::Root(root)).map(Cow::into_owned)
}

fn eval<'a>(node: &'a Node, env: Env<'a>, scope: Scope<'a>) -> Eval<'a> {
    match node {
        Node::Literal(value) => Ok(Cow::Borrowed(value)),
        Node::Array(items) => items
            .iter()
            .map(|item| eval(item, env, scope).map(Cow::into_owned))
            .collect::<Result<Vec<_>, _>>()
            .map(|values| Cow::Owned(Value::Array(values))),
        Node::Var { path, default } => eval_var(path, default.as_deref(), env, scope),
        Node::If(args) => eval_if(args, env, scope),
        Node::And(args) => eval_short_circuit(args, env, scope, false),
        Node::Or(args) => eval_short_circuit(args, env, scope, true),
        Node::Scoped {
            op,
            source,
            logic,
            initial,
        } => eval_scoped(*op, source, logic, initial.as_deref(), env, scope),
        Node::Missing(args) => {
            let keys = eval_all(args, env, scope)?;
            Ok(Cow::Owned(Value::Array(missing(&keys, scope))))
        }
        Node::MissingSome(args) => eval_missing_some(args, env, scope),
        Node::Fractional(args) => {
            let values = eval_all(args, env, scope)?;
            Ok(Cow::Owned(fractional::evaluate(
                env.options.fractional,
                &values,
                env.root,
            )))
        }
        Node::Op { op, args } => eval_op(*op, args, env, scope),
    }
}

fn eval_all<'a>(
    args: &'a [Node],
    env: Env<'a>,
    scope: Scope<'a>,
) -> Result<Vec<Cow<'a, Value>>, EvalError> {
    args.iter().map(|arg| eval(arg, env, scope)).collect()
}

fn eval_var<'a>(
    path: &'a VarPath,
    default: Option<&'a Node>,
    env: Env<'a>,
    scope: Scope<'a>,
) -> Eval<'a> {
    let found = match path {
        VarPath::Whole => return Ok(whole_data(scope)),
        VarPath::Static(segments) => lookup(scope, segments),
        VarPath::Dynamic(expression) => {
            let key = eval(expression, env, scope)?;
            if key.is_null() || key.as_str() == Some("") {
                return Ok(whole_data(scope));
            }
            let segments = super::node::split_path(&js::to_js_string(&key));
            lookup(scope, &segments)
        }
    };
    match (found, default) {
        (Some(value), _) => Ok(Cow::Borrowed(value)),
        (None, Some(default)) => eval(default, env, scope),
        (None, None) => Ok(Cow::Owned(Value::Null)),
    }
}

fn whole_data(scope: Scope<'_>) -> Cow<'_, Value> {
    match scope {
        Scope::Root(root) => Cow::Owned(root.to_value()),
        Scope::Item(value) => Cow::Borrowed(value),
        Scope::Reduce {
            current,
            accumulator,
        } => {
            let mut map = Map::new();
            map.insert("current".into(), current.clone());
            map.insert("accumulator".into(), accumulator.clone());
            Cow::Owned(Value::Object(map))
        }
    }
}

fn lookup<'a>(scope: Scope<'a>, segments: &[Segment]) -> Option<&'a Value> {
    let (first, rest) = segments.split_first()?;
    let start = match scope {
        Scope::Root(root) => root.get(&first.key)?,
        Scope::Item(value) => child(value, first)?,
        Scope::Reduce {
            current,
            accumulator,
        } => match first.key.as_str() {
            "current" => current,
            "accumulator" => accumulator,
            _ => return None,
        },
    };
    rest.iter().try_fold(start, child)
}

fn child<'a>(value: &'a Value, segment: &Segment) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(&segment.key),
        Value::Array(items) => items.get(segment.index?),
        _ => None,
    }
}

/// `if` / `?:`: condition-value pairs, then an optional else; no match and no else is `null`.
fn eval_if<'a>(args: &'a [Node], env: Env<'a>, scope: Scope<'a>) -> Eval<'a> {
    let mut pairs = args.chunks_exact(2);
    for pair in &mut pairs {
        if truthy(eval(&pair[0], env, scope)?.as_ref()) {
            return eval(&pair[1], env, scope);
        }
    }
    match pairs.remainder() {
        [otherwise] => eval(otherwise, env, scope),
        _ => Ok(Cow::Owned(Value::Null)),
    }
}

/// `and` returns the first falsy operand (`or`: the first truthy one), else the last.
fn eval_short_circuit<'a>(
    args: &'a [Node],
    env: Env<'a>,
    scope: Scope<'a>,
    stop_when: bool,
) -> Eval<'a> {
    let mut last = Cow::Owned(Value::Null);
    for arg in args {
        last = eval(arg, env, scope)?;
        if truthy(&last) == stop_when {
            break;
        }
    }
    Ok(last)
}

fn eval_scoped<'a>(
    op: ScopedOp,
    source: &'a Node,
    logic: &'a Node,
    initial: Option<&'a Node>,
    env: Env<'a>,
    scope: Scope<'a>,
) -> Eval<'a> {
    let data = eval(source, env, scope)?;
    let test = |item: &Value| -> Result<bool, EvalError> {
        Ok(truthy(eval(logic, env, Scope::Item(item))?.as_ref()))
    };
    let items: &[Value] = match (&*data, op) {
        (Value::Array(items), _) => items,
        (_, ScopedOp::Reduce) => {
            return match initial {
                Some(initial) => eval(initial, env, scope).map(|v| Cow::Owned(v.into_owned())),
                None => Ok(Cow::Owned(Value::Null)),
            };
        }
        (Value::String(text), ScopedOp::All) if !text.is_empty() => {
            // JavaScript indexes strings by character, so `all` visits each one.
            for c in text.chars() {
                if !test(&Value::String(c.to_string()))? {
                    return Ok(Cow::Owned(Value::Bool(false)));
                }
            }
            return Ok(Cow::Owned(Value::Bool(true)));
        }
        _ => &[],
    };
    let result = match op {
        ScopedOp::Map => Value::Array(
            items
                .iter()
                .map(|item| eval(logic, env, Scope::Item(item)).map(Cow::into_owned))
                .collect::<Result<_, _>>()?,
        ),
        ScopedOp::Filter => {
            let mut kept = Vec::new();
            for item in items {
                if test(item)? {
                    kept.push(item.clone());
                }
            }
            Value::Array(kept)
        }
        ScopedOp::All => Value::Bool(!items.is_empty() && all(items, &test)?),
        ScopedOp::None => Value::Bool(!any(items, &test)?),
        ScopedOp::Some => Value::Bool(any(items, &test)?),
        ScopedOp::Reduce => {
            let mut accumulator = match initial {
                Some(initial) => eval(initial, env, scope)?.into_owned(),
                None => Value::Null,
            };
            for current in items {
                let reduce_scope = Scope::Reduce {
                    current,
                    accumulator: &accumulator,
                };
                accumulator = eval(logic, env, reduce_scope)?.into_owned();
            }
            accumulator
        }
    };
    Ok(Cow::Owned(result))
}

fn all(
    items: &[Value],
    test: &dyn Fn(&Value) -> Result<bool, EvalError>,
) -> Result<bool, EvalError> {
    for item in items {
        if !test(item)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn any(
    items: &[Value],
    test: &dyn Fn(&Value) -> Result<bool, EvalError>,
) -> Result<bool, EvalError> {
    for item in items {
        if test(item)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `missing`: the keys (from the first argument if it is an array, else all arguments) whose
/// value is absent, `null` or `""`.
fn missing(args: &[Cow<'_, Value>], scope: Scope<'_>) -> Vec<Value> {
    let keys: &[Value] = match args.first().map(|first| &**first) {
        Some(Value::Array(keys)) => keys,
        _ => return missing_keys(args.iter().map(|arg| &**arg), scope),
    };
    missing_keys(keys.iter(), scope)
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
fn eval_missing_some<'a>(args: &'a [Node], env: Env<'a>, scope: Scope<'a>) -> Eval<'a> {
    let values = eval_all(args, env, scope)?;
    let need = values.first().map(|v| &**v);
    let (absent, option_count) = match values.get(1).map(|v| &**v) {
        Some(Value::Array(options)) => (missing_keys(options.iter(), scope), Some(options.len())),
        other => (missing_keys(other.into_iter(), scope), None),
    };
    let present = option_count.map(|count| Value::from(count - absent.len()));
    let enough = present.is_some_and(|present| less_or_equal(need, Some(&present)));
    Ok(Cow::Owned(Value::Array(if enough {
        Vec::new()
    } else {
        absent
    })))
}

fn eval_op<'a>(op: Op, args: &'a [Node], env: Env<'a>, scope: Scope<'a>) -> Eval<'a> {
    let variadic = |fold: &mut dyn FnMut(Cow<'a, Value>)| -> Result<(), EvalError> {
        for arg in args {
            fold(eval(arg, env, scope)?);
        }
        Ok(())
    };
    match op {
        Op::Add => {
            let mut sum = 0.0;
            variadic(&mut |v| sum += js::parse_float(Some(&v)))?;
            Ok(Cow::Owned(js::number_value(sum)))
        }
        Op::Mul if args.len() == 1 => eval(&args[0], env, scope),
        Op::Mul => {
            let mut product = 1.0;
            variadic(&mut |v| product *= js::parse_float(Some(&v)))?;
            Ok(Cow::Owned(js::number_value(product)))
        }
        Op::Min | Op::Max => {
            let mut best = if op == Op::Min {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            };
            variadic(&mut |v| {
                let n = js::to_number(Some(&v));
                best = if n.is_nan() || best.is_nan() {
                    f64::NAN
                } else if op == Op::Min {
                    best.min(n)
                } else {
                    best.max(n)
                };
            })?;
            Ok(Cow::Owned(js::number_value(best)))
        }
        Op::Cat => {
            let mut text = String::new();
            variadic(&mut |v| js::push_join_piece(&mut text, &v))?;
            Ok(Cow::Owned(Value::String(text)))
        }
        Op::Merge => {
            let mut merged = Vec::new();
            variadic(&mut |v| match v.into_owned() {
                Value::Array(items) => merged.extend(items),
                other => merged.push(other),
            })?;
            Ok(Cow::Owned(Value::Array(merged)))
        }
        Op::Log => match args.first() {
            Some(first) => eval(first, env, scope),
            None => Ok(Cow::Owned(Value::Null)),
        },
        _ => {
            let mut fixed: [Option<Cow<'a, Value>>; 3] = [None, None, None];
            for (slot, arg) in fixed.iter_mut().zip(args) {
                *slot = Some(eval(arg, env, scope)?);
            }
            let [a, b, c] = fixed.each_ref().map(Option::as_deref);
            Ok(Cow::Owned(apply_fixed(op, args.len(), a, b, c)))
        }
    }
}

/// Operators reading at most three evaluated arguments (`argc` is how many the rule gave).
fn apply_fixed(
    op: Op,
    argc: usize,
    a: Option<&Value>,
    b: Option<&Value>,
    c: Option<&Value>,
) -> Value {
    let between = |strict: bool| {
        let cmp = |x, y| {
            if strict {
                less_than(x, y) == Some(true)
            } else {
                less_or_equal(x, y)
            }
        };
        cmp(a, b) && (c.is_none() || cmp(b, c))
    };
    let number = |n: f64| js::number_value(n);
    match op {
        Op::Eq => Value::Bool(loose_eq(a, b)),
        Op::NotEq => Value::Bool(!loose_eq(a, b)),
        Op::StrictEq => Value::Bool(strict_eq(a, b)),
        Op::StrictNotEq => Value::Bool(!strict_eq(a, b)),
        Op::Lt => Value::Bool(between(true)),
        Op::Le => Value::Bool(between(false)),
        Op::Gt => Value::Bool(less_than(b, a) == Some(true)),
        Op::Ge => Value::Bool(less_or_equal(b, a)),
        Op::Not => Value::Bool(!a.is_some_and(truthy)),
        Op::NotNot => Value::Bool(a.is_some_and(truthy)),
        Op::Sub if argc < 2 => number(-js::to_number(a)),
        Op::Sub => number(js::to_number(a) - js::to_number(b)),
        Op::Div => number(js::to_number(a) / js::to_number(b)),
        Op::Mod => number(js::to_number(a) % js::to_number(b)),
        Op::Substr => Value::String(substr(a, b, c)),
        Op::In => Value::Bool(contains(a, b)),
        Op::SemVer if argc == 3 => semver::compare(a, b, c),
        Op::StartsWith | Op::EndsWith if argc == 2 => match (a, b) {
            (Some(Value::String(text)), Some(Value::String(affix))) => {
                Value::Bool(if op == Op::StartsWith {
                    text.starts_with(affix.as_str())
                } else {
                    text.ends_with(affix.as_str())
                })
            }
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// `in`: substring test when the haystack is a string, strict membership when it is an array.
fn contains(needle: Option<&Value>, haystack: Option<&Value>) -> bool {
    match haystack {
        Some(Value::String(text)) if !text.is_empty() => {
            needle.is_some_and(|needle| text.contains(&*js::to_js_string(needle)))
        }
        Some(Value::Array(items)) => items.iter().any(|item| strict_eq(needle, Some(item))),
        _ => false,
    }
}

/// JavaScript `String(source).substr(start, length)`, where a negative `length` instead drops
/// that many characters from the end. Positions count UTF-16 code units, as in JavaScript.
fn substr(source: Option<&Value>, start: Option<&Value>, length: Option<&Value>) -> String {
    let text = source.map_or(Cow::Borrowed("undefined"), js::to_js_string);
    let units: Vec<u16> = text.encode_utf16().collect();
    let size = units.len() as f64;
    let to_integer = |n: f64| if n.is_nan() { 0.0 } else { n.trunc() };
    let mut from = to_integer(js::to_number(start));
    if from < 0.0 {
        from = (size + from).max(0.0);
    }
    let from = from.min(size);
    let remaining = size - from;
    let take = match length {
        None => remaining,
        Some(length) => match js::to_number(Some(length)) {
            negative if negative < 0.0 => to_integer(remaining + negative).max(0.0),
            length => to_integer(length).min(remaining),
        },
    };
    let (from, take) = (from as usize, take as usize);
    String::from_utf16_lossy(&units[from..from + take])
}
