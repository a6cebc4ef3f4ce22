//! Evaluation of the compiled tree. Values are borrowed from the rule or the context wherever
//! possible (`Cow`), so comparing a context property with a literal allocates nothing, and a
//! condition is judged as a plain `bool` without building the JSON value it would produce.
//!
//! Evaluation cannot fail: every operator has an answer (`null` for nonsense input), so the
//! walk returns values directly.

use super::fractional::Fractional;
use super::js::{self, truthy};
use super::node::{Node, Op, Segment, VarPath};
use super::scope::{FLAGD_KEY, FlagScope};
use super::{LogicOptions, collections, fractional, ops};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// What `var` reads: the caller's context, or the item a scoped operator is visiting.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope<'a> {
    Root(Root<'a>),
    Item(&'a Value),
    Reduce {
        current: &'a Value,
        accumulator: &'a Value,
    },
}

/// The data a rule evaluates against: the caller's context, and where `$flagd` comes from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Root<'a> {
    context: &'a Map<String, Value>,
    flagd: Flagd<'a>,
}

/// Where `$flagd` comes from.
#[derive(Debug, Clone, Copy)]
enum Flagd<'a> {
    /// The context itself (whatever it holds under `$flagd`, if anything).
    FromContext,
    /// One flag's evaluation: built only if read.
    Flag(&'a FlagScope<'a>),
}

impl<'a> Root<'a> {
    /// The caller's context as it is.
    pub(super) fn context(context: &'a Map<String, Value>) -> Root<'a> {
        let flagd = Flagd::FromContext;
        Root { context, flagd }
    }

    /// One flag's evaluation.
    pub(super) fn flag(scope: &'a FlagScope<'a>) -> Root<'a> {
        let flagd = Flagd::Flag(scope);
        let context = scope.context();
        Root { context, flagd }
    }

    /// A top-level property.
    pub(super) fn get(self, key: &str) -> Option<&'a Value> {
        if key == FLAGD_KEY {
            match self.flagd {
                Flagd::FromContext => {}
                Flagd::Flag(scope) => return Some(scope.flagd()),
            }
        }
        self.context.get(key)
    }

    /// `$flagd.flagKey`, read without building the `$flagd` object when the flag is known.
    pub(super) fn flag_key(self) -> Option<&'a str> {
        match self.flagd {
            Flagd::Flag(scope) => Some(scope.flag_key()),
            Flagd::FromContext => self
                .get(FLAGD_KEY)
                .and_then(|flagd| flagd.get("flagKey"))
                .and_then(Value::as_str),
        }
    }

    /// The whole data as one object (for `var: ""`; rare, so it may copy).
    fn to_value(self) -> Value {
        let mut map = self.context.clone();
        if let Some(flagd) = self.get(FLAGD_KEY) {
            map.insert(FLAGD_KEY.to_owned(), flagd.clone());
        }
        Value::Object(map)
    }
}

/// Per-evaluation settings that scoped operators do not change.
#[derive(Debug, Clone, Copy)]
pub(super) struct Env<'a> {
    pub(super) root: Root<'a>,
    pub(super) options: LogicOptions,
}

/// Evaluates `node` against `root`; the result borrows from the rule or the data wherever it
/// can.
pub(super) fn evaluate_root<'a>(
    node: &'a Node,
    root: Root<'a>,
    options: LogicOptions,
) -> Cow<'a, Value> {
    let env = Env { root, options };
    eval(node, env, Scope::Root(root))
}

pub(super) fn eval<'a>(node: &'a Node, env: Env<'a>, scope: Scope<'a>) -> Cow<'a, Value> {
    match node {
        Node::Literal(value) => Cow::Borrowed(value),
        Node::Var { path, default } => eval_var(path, default.as_deref(), env, scope),
        Node::If(args) => match choose_branch(args, env, scope) {
            Some(branch) => eval(branch, env, scope),
            None => Cow::Owned(Value::Null),
        },
        Node::FieldTest(test) => {
            let answer = test.answer(lookup(scope, test.field()));
            Cow::Owned(answer.map_or(Value::Null, Value::Bool))
        }
        Node::Fractional(fractional) => eval_fractional(fractional, env, scope),
        Node::And(args) => eval_short_circuit(args, env, scope, false),
        Node::Or(args) => eval_short_circuit(args, env, scope, true),
        Node::Op { op, args } => eval_op(*op, args, env, scope),
        Node::Array(items) => Cow::Owned(Value::Array(
            items
                .iter()
                .map(|item| eval(item, env, scope).into_owned())
                .collect(),
        )),
        Node::Scoped {
            op,
            source,
            logic,
            initial,
        } => collections::eval_scoped(*op, source, logic, initial.as_deref(), env, scope),
        Node::Missing(args) => collections::eval_missing(args, env, scope),
        Node::MissingSome(args) => collections::eval_missing_some(args, env, scope),
    }
}

/// `truthy(eval(node))`, without building the values a boolean context throws away: `and` /
/// `or` / `if` decide on truthiness alone and predicates answer a plain `bool`. Only the
/// shapes conditions are made of are handled here, so this stays small; the rest is judged by
/// its value.
pub(super) fn eval_truthy<'a>(node: &'a Node, env: Env<'a>, scope: Scope<'a>) -> bool {
    match node {
        Node::FieldTest(test) => test.answer(lookup(scope, test.field())) == Some(true),
        // `and` yields its first falsy operand or its last one (`null` when empty).
        Node::And(args) => !args.is_empty() && args.iter().all(|arg| eval_truthy(arg, env, scope)),
        // `or` yields its first truthy operand or its last one (`null` when empty).
        Node::Or(args) => args.iter().any(|arg| eval_truthy(arg, env, scope)),
        Node::Literal(value) => truthy(value),
        other => truthy_by_value(other, env, scope),
    }
}

#[inline(never)]
fn truthy_by_value<'a>(node: &'a Node, env: Env<'a>, scope: Scope<'a>) -> bool {
    match node {
        Node::If(args) => {
            choose_branch(args, env, scope).is_some_and(|branch| eval_truthy(branch, env, scope))
        }
        Node::Op { op, args } if ops::is_predicate(*op) => {
            eval_predicate(*op, args, env, scope) == Some(true)
        }
        other => truthy(&eval(other, env, scope)),
    }
}

/// `fractional`: with constant buckets only the first argument is evaluated and the chosen
/// variant is borrowed from the rule.
fn eval_fractional<'a>(node: &'a Fractional, env: Env<'a>, scope: Scope<'a>) -> Cow<'a, Value> {
    let version = env.options.fractional;
    if let (true, Some(first)) = (node.is_prepared(), node.args().first()) {
        let first = eval(first, env, scope);
        return node.pick(version, &first, env.root);
    }
    let values = eval_all(node.args(), env, scope);
    Cow::Owned(fractional::evaluate(version, &values, env.root))
}

pub(super) fn eval_all<'a>(
    args: &'a [Node],
    env: Env<'a>,
    scope: Scope<'a>,
) -> Vec<Cow<'a, Value>> {
    args.iter().map(|arg| eval(arg, env, scope)).collect()
}

fn eval_var<'a>(
    path: &'a VarPath,
    default: Option<&'a Node>,
    env: Env<'a>,
    scope: Scope<'a>,
) -> Cow<'a, Value> {
    let found = match path {
        VarPath::Whole => return whole_data(scope),
        VarPath::Static(segments) => lookup(scope, segments),
        VarPath::Dynamic(expression) => {
            let key = eval(expression, env, scope);
            if key.is_null() || key.as_str() == Some("") {
                return whole_data(scope);
            }
            let segments = super::node::split_path(&js::to_js_string(&key));
            lookup(scope, &segments)
        }
    };
    match (found, default) {
        (Some(value), _) => Cow::Borrowed(value),
        (None, Some(default)) => eval(default, env, scope),
        (None, None) => Cow::Owned(Value::Null),
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

/// The value at `segments` in the data `scope` shows.
pub(super) fn lookup<'a>(scope: Scope<'a>, segments: &[Segment]) -> Option<&'a Value> {
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

/// The branch `if` / `?:` takes: the value after the first truthy condition, else the trailing
/// else; `None` (a `null` result) when nothing matches and there is no else.
fn choose_branch<'a>(args: &'a [Node], env: Env<'a>, scope: Scope<'a>) -> Option<&'a Node> {
    let mut pairs = args.chunks_exact(2);
    for pair in &mut pairs {
        if eval_truthy(&pair[0], env, scope) {
            return Some(&pair[1]);
        }
    }
    match pairs.remainder() {
        [otherwise] => Some(otherwise),
        _ => None,
    }
}

/// `and` returns the first falsy operand (`or`: the first truthy one), else the last.
fn eval_short_circuit<'a>(
    args: &'a [Node],
    env: Env<'a>,
    scope: Scope<'a>,
    stop_when: bool,
) -> Cow<'a, Value> {
    let mut last = Cow::Owned(Value::Null);
    for arg in args {
        last = eval(arg, env, scope);
        if truthy(&last) == stop_when {
            break;
        }
    }
    last
}

fn eval_op<'a>(op: Op, args: &'a [Node], env: Env<'a>, scope: Scope<'a>) -> Cow<'a, Value> {
    let values = || args.iter().map(move |arg| eval(arg, env, scope));
    match op {
        Op::Add => {
            let sum = values().fold(0.0, |sum, v| sum + js::parse_float(Some(&v)));
            Cow::Owned(js::number_value(sum))
        }
        Op::Mul if args.len() == 1 => eval(&args[0], env, scope),
        Op::Mul => {
            let product = values().fold(1.0, |product, v| product * js::parse_float(Some(&v)));
            Cow::Owned(js::number_value(product))
        }
        Op::Min | Op::Max => {
            let numbers = values().map(|v| js::to_number(Some(&v)));
            Cow::Owned(js::number_value(ops::extreme(op, numbers)))
        }
        Op::Cat => {
            let mut text = String::new();
            for value in values() {
                js::push_join_piece(&mut text, &value);
            }
            Cow::Owned(Value::String(text))
        }
        Op::Merge => {
            let mut merged = Vec::new();
            for value in values() {
                match value.into_owned() {
                    Value::Array(items) => merged.extend(items),
                    other => merged.push(other),
                }
            }
            Cow::Owned(Value::Array(merged))
        }
        Op::Log => match args.first() {
            Some(first) => eval(first, env, scope),
            None => Cow::Owned(Value::Null),
        },
        _ if ops::is_predicate(op) => {
            let answer = eval_predicate(op, args, env, scope);
            Cow::Owned(answer.map_or(Value::Null, Value::Bool))
        }
        _ => {
            let mut fixed = values();
            let (a, b, c) = (fixed.next(), fixed.next(), fixed.next());
            let value = ops::apply_fixed(op, args.len(), a.as_deref(), b.as_deref(), c.as_deref());
            Cow::Owned(value)
        }
    }
}

/// A predicate over its first arguments (at most three are read, as every predicate takes at
/// most three), evaluated in place: `None` is a `null` answer.
fn eval_predicate<'a>(op: Op, args: &'a [Node], env: Env<'a>, scope: Scope<'a>) -> Option<bool> {
    let argc = args.len();
    let value = |node| eval(node, env, scope);
    match args {
        [] => ops::predicate(op, argc, None, None, None),
        [a] => ops::predicate(op, argc, Some(&value(a)), None, None),
        [a, b] => ops::predicate(op, argc, Some(&value(a)), Some(&value(b)), None),
        [a, b, c, ..] => {
            ops::predicate(op, argc, Some(&value(a)), Some(&value(b)), Some(&value(c)))
        }
    }
}
