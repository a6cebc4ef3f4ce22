//! The commonest shape of a targeting condition, `{op: [{"var": "path"}, literal]}` (`==`,
//! `in`, `starts_with`, `ends_with`, ...), compiled into one node: evaluating it is one lookup
//! and one comparison, with no argument evaluation in between. Against string literals the
//! comparison is prepared too: `in` over strings becomes a membership test, `==` / `===` and
//! the affix operators compare a string field directly.
//!
//! Answers are those of the general operators: the field reads as `var` reads it (`null` when
//! absent) and the comparison is the operator's own, so the shortcut never changes a result.

use serde_json::Value;

use super::node::{Node, Op, Segment, VarPath};
use super::ops;
use super::small::{bytes_eq, str_eq};

/// `null`, for a field the data does not have (what `var` answers without a default).
static NULL: Value = Value::Null;

/// A predicate comparing one field of the data with a literal.
#[derive(Debug, Clone)]
pub(super) struct FieldTest {
    op: Op,
    field: Vec<Segment>,
    literal: Value,
    comparison: Comparison,
}

/// How a field is compared with a string literal; anything else uses the operator itself.
#[derive(Debug, Clone)]
enum Comparison {
    /// `in` over an array holding strings only: strict equality with one of them, which only a
    /// string field can have.
    OneOf(Vec<String>),
    /// `==` / `===` with a string (`!=` / `!==` when negated): for a string field both are
    /// plain string equality.
    EqualsText { text: String, negated: bool },
    /// `starts_with` / `ends_with` with a string: only a string field has an answer.
    Affix { text: String, at_start: bool },
    /// Whatever the operator answers.
    General,
}

impl Comparison {
    fn of(op: Op, literal: &Value) -> Comparison {
        let text = || literal.as_str().map(str::to_owned);
        let prepared = match op {
            Op::In => match literal {
                Value::Array(items) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .map(Comparison::OneOf),
                _ => None,
            },
            Op::Eq | Op::StrictEq | Op::NotEq | Op::StrictNotEq => {
                let negated = matches!(op, Op::NotEq | Op::StrictNotEq);
                text().map(|text| Comparison::EqualsText { text, negated })
            }
            Op::StartsWith | Op::EndsWith => {
                let at_start = op == Op::StartsWith;
                text().map(|text| Comparison::Affix { text, at_start })
            }
            _ => None,
        };
        prepared.unwrap_or(Comparison::General)
    }
}

impl FieldTest {
    /// The test `op` applies to `args`, when they are a static `var` without a default and a
    /// literal.
    pub(super) fn from_operation(op: Op, args: &[Node]) -> Option<FieldTest> {
        if !ops::is_predicate(op) {
            return None;
        }
        let [
            Node::Var {
                path: VarPath::Static(field),
                default: None,
            },
            Node::Literal(literal),
        ] = args
        else {
            return None;
        };
        Some(FieldTest {
            op,
            field: field.clone(),
            literal: literal.clone(),
            comparison: Comparison::of(op, literal),
        })
    }

    /// The path the field is read from.
    pub(super) fn field(&self) -> &[Segment] {
        &self.field
    }

    /// The answer for the field's value (`None` when absent); `None` is a `null` answer.
    pub(super) fn answer(&self, field: Option<&Value>) -> Option<bool> {
        let subject = field.unwrap_or(&NULL);
        match (&self.comparison, subject) {
            (Comparison::OneOf(options), subject) => {
                let text = subject.as_str();
                Some(text.is_some_and(|text| options.iter().any(|option| str_eq(option, text))))
            }
            (Comparison::EqualsText { text, negated }, Value::String(subject)) => {
                Some(str_eq(subject, text) != *negated)
            }
            (Comparison::Affix { text, at_start }, subject) => {
                let subject = subject.as_str()?.as_bytes();
                let affix = text.as_bytes();
                let part = if *at_start {
                    subject.get(..affix.len())
                } else {
                    let from = subject.len().checked_sub(affix.len());
                    from.and_then(|from| subject.get(from..))
                };
                Some(part.is_some_and(|part| bytes_eq(part, affix)))
            }
            _ => ops::predicate(self.op, 2, Some(subject), Some(&self.literal), None),
        }
    }
}
