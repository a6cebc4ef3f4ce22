//! The compiled form of a rule: JSON is read once into this tree, with `var` paths split and
//! constant sub-trees folded, so evaluation only walks enum variants.

use super::field_test::FieldTest;
use super::fractional::Fractional;
use super::{CompileError, LogicOptions};
use serde_json::{Map, Value};

/// Rules nested deeper than this are refused, so neither compiling nor evaluating can exhaust
/// the stack.
const MAX_DEPTH: usize = 200;

#[derive(Debug, Clone)]
pub(super) enum Node {
    Literal(Value),
    /// An array whose elements are evaluated (JsonLogic maps over arrays).
    Array(Vec<Node>),
    Var {
        path: VarPath,
        default: Option<Box<Node>>,
    },
    If(Vec<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    /// `map`, `filter`, `reduce`, `all`, `none`, `some`: `logic` runs with each item as data.
    Scoped {
        op: ScopedOp,
        source: Box<Node>,
        logic: Box<Node>,
        initial: Option<Box<Node>>,
    },
    Missing(Vec<Node>),
    MissingSome(Vec<Node>),
    Fractional(Box<Fractional>),
    /// A predicate between one field of the data and a literal, compiled into one step.
    FieldTest(Box<FieldTest>),
    /// Operators that only look at their evaluated arguments.
    Op {
        op: Op,
        args: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
pub(super) enum VarPath {
    /// `""`, `null` or no argument: the whole data.
    Whole,
    Static(Vec<Segment>),
    Dynamic(Box<Node>),
}

/// One step of a dotted `var` path; `index` is set when the step can address an array element.
#[derive(Debug, Clone)]
pub(super) struct Segment {
    pub(super) key: String,
    pub(super) index: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScopedOp {
    Map,
    Filter,
    Reduce,
    All,
    None,
    Some,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    StrictEq,
    NotEq,
    StrictNotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Not,
    NotNot,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Min,
    Max,
    Cat,
    Substr,
    In,
    Merge,
    Log,
    SemVer,
    StartsWith,
    EndsWith,
}

impl Op {
    fn from_name(name: &str) -> Option<Op> {
        Some(match name {
            "==" => Op::Eq,
            "===" => Op::StrictEq,
            "!=" => Op::NotEq,
            "!==" => Op::StrictNotEq,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "!" => Op::Not,
            "!!" => Op::NotNot,
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "min" => Op::Min,
            "max" => Op::Max,
            "cat" => Op::Cat,
            "substr" => Op::Substr,
            "in" => Op::In,
            "merge" => Op::Merge,
            "log" => Op::Log,
            "sem_ver" => Op::SemVer,
            "starts_with" => Op::StartsWith,
            "ends_with" => Op::EndsWith,
            _ => return None,
        })
    }
}

impl ScopedOp {
    fn from_name(name: &str) -> Option<ScopedOp> {
        Some(match name {
            "map" => ScopedOp::Map,
            "filter" => ScopedOp::Filter,
            "reduce" => ScopedOp::Reduce,
            "all" => ScopedOp::All,
            "none" => ScopedOp::None,
            "some" => ScopedOp::Some,
            _ => return None,
        })
    }
}

/// Splits a `var` path once: dotted keys, each also usable as an array index when canonical.
pub(super) fn split_path(path: &str) -> Vec<Segment> {
    path.split('.')
        .map(|key| Segment {
            key: key.to_owned(),
            index: canonical_index(key),
        })
        .collect()
}

/// `"0"`, `"12"` address array elements; `"01"`, `"+1"` do not (as JavaScript property keys).
fn canonical_index(key: &str) -> Option<usize> {
    let canonical = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    canonical.then(|| key.parse().ok()).flatten()
}

/// Compiles `rule` found at JSON pointer `path`.
pub(super) fn compile_node(
    rule: &Value,
    path: &str,
    depth: usize,
    options: &LogicOptions,
) -> Result<Node, CompileError> {
    if depth > MAX_DEPTH {
        return Err(CompileError {
            path: path.to_owned(),
            message: format!("rule nests deeper than {MAX_DEPTH} levels"),
        });
    }
    match rule {
        Value::Array(items) => {
            let nodes = items
                .iter()
                .enumerate()
                .map(|(i, item)| compile_node(item, &format!("{path}/{i}"), depth + 1, options))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(fold_array(nodes))
        }
        Value::Object(map) if map.len() == 1 => compile_operation(map, path, depth, options),
        // Objects that are not a single-key operation are plain data, as in JsonLogic.
        other => Ok(Node::Literal(other.clone())),
    }
}

fn fold_array(nodes: Vec<Node>) -> Node {
    if nodes.iter().all(|node| matches!(node, Node::Literal(_))) {
        let values = nodes
            .into_iter()
            .map(|node| match node {
                Node::Literal(value) => value,
                _ => Value::Null,
            })
            .collect();
        Node::Literal(Value::Array(values))
    } else {
        Node::Array(nodes)
    }
}

fn compile_operation(
    map: &Map<String, Value>,
    path: &str,
    depth: usize,
    options: &LogicOptions,
) -> Result<Node, CompileError> {
    let Some((name, raw_args)) = map.iter().next() else {
        return Ok(Node::Literal(Value::Object(map.clone())));
    };
    let op_path = format!("{path}/{}", escape_pointer(name));
    let error = |message: String| CompileError {
        path: op_path.clone(),
        message,
    };
    // A non-array argument is shorthand for a one-element argument list.
    let args: Vec<Node> = match raw_args {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| compile_node(item, &format!("{op_path}/{i}"), depth + 1, options))
            .collect::<Result<_, _>>()?,
        single => vec![compile_node(single, &op_path, depth + 1, options)?],
    };
    let node = match name.as_str() {
        "var" => compile_var(args),
        "if" | "?:" => Node::If(args),
        "and" => Node::And(args),
        "or" => Node::Or(args),
        "missing" => Node::Missing(args),
        "missing_some" => Node::MissingSome(args),
        "fractional" => Node::Fractional(Box::new(Fractional::new(args))),
        other => {
            if let Some(op) = ScopedOp::from_name(other) {
                compile_scoped(op, args).map_err(|message| error(message.into()))?
            } else if let Some(op) = Op::from_name(other) {
                if op == Op::Mul && args.is_empty() {
                    return Err(error("\"*\" needs at least one argument".into()));
                }
                match FieldTest::from_operation(op, &args) {
                    Some(test) => Node::FieldTest(Box::new(test)),
                    None => Node::Op { op, args },
                }
            } else {
                return Err(error(format!("unknown operator \"{other}\"")));
            }
        }
    };
    Ok(fold_constant(node, options))
}

fn compile_var(mut args: Vec<Node>) -> Node {
    let default = (args.len() > 1).then(|| Box::new(args.swap_remove(1)));
    let path = match args.into_iter().next() {
        None | Some(Node::Literal(Value::Null)) => VarPath::Whole,
        Some(Node::Literal(Value::String(text))) if text.is_empty() => VarPath::Whole,
        Some(Node::Literal(literal)) => {
            VarPath::Static(split_path(&super::js::to_js_string(&literal)))
        }
        Some(expression) => VarPath::Dynamic(Box::new(expression)),
    };
    Node::Var { path, default }
}

fn compile_scoped(op: ScopedOp, args: Vec<Node>) -> Result<Node, &'static str> {
    let expected = if op == ScopedOp::Reduce { 2..=3 } else { 2..=2 };
    if !expected.contains(&args.len()) {
        return Err(if op == ScopedOp::Reduce {
            "expects [data, logic] or [data, logic, initial]"
        } else {
            "expects exactly [data, logic]"
        });
    }
    let mut args = args.into_iter();
    let (Some(source), Some(logic)) = (args.next(), args.next()) else {
        return Err("expects exactly [data, logic]");
    };
    Ok(Node::Scoped {
        op,
        source: Box::new(source),
        logic: Box::new(logic),
        initial: args.next().map(Box::new),
    })
}

/// Replaces an operator whose arguments are all literals by its result.
fn fold_constant(node: Node, options: &LogicOptions) -> Node {
    let foldable = match &node {
        Node::Op { args, .. } | Node::If(args) | Node::And(args) | Node::Or(args) => {
            args.iter().all(|arg| matches!(arg, Node::Literal(_)))
        }
        _ => false,
    };
    if !foldable {
        return node;
    }
    let empty = Map::new();
    let root = super::eval::Root::context(&empty);
    Node::Literal(super::eval::evaluate_root(&node, root, *options).into_owned())
}

/// RFC 6901 escaping of one pointer segment.
fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}
