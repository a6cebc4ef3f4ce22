//! JsonLogic targeting rules, compiled once and evaluated many times, with flagd's custom
//! operators (`fractional`, `sem_ver`, `starts_with`, `ends_with`).
//!
//! Semantics follow the reference JsonLogic implementation (JavaScript truthiness, loose and
//! strict equality, string/number coercions) so rules behave as they do in flagd. Compiling
//! rejects what can never work (unknown operators, malformed arities); evaluating never panics,
//! and the custom operators answer `null` on bad input so the flag's default variant applies.

mod cbor;
mod collections;
mod eval;
mod field_test;
mod fractional;
mod js;
mod murmur;
mod node;
mod ops;
mod scope;
mod semver;
pub(crate) mod small;
#[cfg(test)]
mod tests;

pub use murmur::murmur3_x86_32;
pub use scope::FlagScope;

use std::borrow::Cow;

use serde_json::{Map, Value};

use eval::Root;

/// A targeting rule compiled once: evaluating it never re-parses or re-serialises JSON.
#[derive(Debug, Clone)]
pub struct Rule {
    root: node::Node,
    options: LogicOptions,
}

impl Rule {
    /// Compiles JsonLogic. Unknown operators and malformed arities are refused with a message
    /// naming the operator and its JSON-pointer location (e.g. `/if/1/fractional`).
    pub fn compile(rule: &Value, options: &LogicOptions) -> Result<Rule, CompileError> {
        Ok(Rule {
            root: node::compile_node(rule, "", 0, options)?,
            options: *options,
        })
    }

    /// Evaluates against a context object (the caller adds `$flagd` {flagKey, timestamp} and
    /// `targetingKey` to it when present).
    pub fn evaluate(&self, context: &Map<String, Value>) -> Result<Value, EvalError> {
        let root = Root::context(context);
        Ok(eval::evaluate_root(&self.root, root, self.options).into_owned())
    }

    /// Evaluates for one flag: the context and `$flagd` come from `scope` (which builds
    /// `$flagd` only if the rule reads it) and the result borrows from the rule or the context
    /// wherever it can, so a rule that answers with a literal variant name allocates nothing.
    pub fn evaluate_for_flag<'a>(
        &'a self,
        scope: &'a FlagScope<'a>,
    ) -> Result<Cow<'a, Value>, EvalError> {
        Ok(eval::evaluate_root(
            &self.root,
            Root::flag(scope),
            self.options,
        ))
    }
}

/// Evaluation switches that change results, fixed when a rule is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogicOptions {
    /// Which `fractional` bucketing algorithm to use.
    pub fractional: FractionalVersion,
}

/// The `fractional` bucketing algorithm. Each one assigns users to different buckets, so
/// switching re-buckets everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FractionalVersion {
    /// Legacy float bucketing: `|hash as i32| / i32::MAX * 100` against cumulative percentages.
    V1,
    /// Integer bucketing `(hash * total) >> 32` over the UTF-8 key, as flagd and today's SDKs.
    #[default]
    V2,
    /// v2 bucketing over the deterministic CBOR encoding of the key, which lets non-string
    /// values (numbers, booleans, objects) be bucketing keys.
    V3,
}

/// A rule that cannot be compiled, with where in the rule the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CompileError {
    /// JSON pointer to the offending operator (`/if/1/fractional`).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

/// A rule that failed while being evaluated. Every operator currently has an answer for any
/// input (`null` for nonsense), so evaluation does not fail today; the `Result` lets an operator
/// report a failure without changing the evaluation API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);
