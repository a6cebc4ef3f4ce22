//! Flag resolution with flagd's outcomes: which variant is served, with which reason, or which
//! error code, for one flag key and one evaluation context.
//!
//! Two shapes of the same outcome: [`Resolution`] borrows everything (key, variant, value,
//! metadata) from the store snapshot, so an in-process caller pays for the evaluation alone;
//! [`Evaluation`] owns its data, for callers that keep results beyond the snapshot.
//!
//! Errors are values in [`Evaluation::error`], never panics: a caller always gets something it
//! can turn into a wire response, and no value means "use your code default".
//!
//! `$flagd.timestamp` comes from a clock the caller passes, read only when a rule reads `$flagd`:
//! static flags and rules that never look at the time never pay for a clock read.

mod resolution;
#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Flag, FlagStore, Flags};

pub use resolution::{Resolution, resolve_flag};

/// The outcome of resolving one flag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The flag key asked for.
    pub key: String,
    /// The served value; `None` when the caller should use its code default.
    pub value: Option<Value>,
    /// The served variant's name.
    pub variant: Option<String>,
    /// Why this value (or no value) was served.
    pub reason: Reason,
    /// Set when `reason` is [`Reason::Error`].
    pub error: Option<(ErrorCode, String)>,
    /// The flag's effective metadata (flag-set metadata overlaid with the flag's own).
    pub metadata: Map<String, Value>,
}

impl Evaluation {
    /// Whether resolution failed.
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }

    /// The error code, if resolution failed.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|(code, _)| *code)
    }
}

/// Why a value was served; spelled as flagd spells it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// No targeting: the default variant.
    Static,
    /// Targeting gave nothing (or there is no default variant): the default applies.
    Default,
    /// Targeting chose the variant.
    TargetingMatch,
    /// The flag is disabled; no value.
    Disabled,
    /// Resolution failed; see the error code.
    Error,
}

impl Reason {
    /// The wire spelling (`TARGETING_MATCH`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::Default => "DEFAULT",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

/// OpenFeature error codes, as flagd reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No visible flag has this key.
    FlagNotFound,
    /// The flag's targeting could not be prepared or evaluated.
    ParseError,
    /// The served variant is not of the type the caller asked for.
    TypeMismatch,
    /// Anything else, e.g. targeting naming a variant the flag does not define.
    General,
    /// The evaluation context is unusable.
    InvalidContext,
    /// The evaluation needs a targeting key the context lacks.
    TargetingKeyMissing,
}

impl ErrorCode {
    /// The wire spelling (`FLAG_NOT_FOUND`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::General => "GENERAL",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        }
    }
}

/// The type the caller resolves (flagd's ResolveBoolean / String / Int / Float / Object), or
/// [`ValueType::Any`] for bulk evaluation, which serves each flag's value as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// A boolean.
    Bool,
    /// A string.
    String,
    /// A 64-bit integer; whole floating-point variants qualify.
    Int,
    /// A floating-point number; integer variants qualify.
    Float,
    /// A JSON object.
    Object,
    /// Whatever the flag holds.
    Any,
}

impl ValueType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ValueType::Bool => "boolean",
            ValueType::String => "string",
            ValueType::Int => "integer",
            ValueType::Float => "float",
            ValueType::Object => "object",
            ValueType::Any => "any value",
        }
    }
}

impl<'a> Flags<'a> {
    /// Resolves `key` for `context`, borrowing the result from the snapshot; `now` gives the
    /// Unix time in seconds for `$flagd.timestamp` and is called only if the rule reads it.
    pub fn resolve<'r>(
        &self,
        key: &'r str,
        context: &Map<String, Value>,
        expected: ValueType,
        now: impl Fn() -> u64,
    ) -> Resolution<'r>
    where
        'a: 'r,
    {
        match self.served(key) {
            Some(served) => resolution::resolve_served(served, context, expected, &now),
            None => Resolution::not_found(key),
        }
    }

    /// Resolves every visible flag as [`ValueType::Any`], ordered by key; failures are included
    /// as error resolutions so callers decide how to report them.
    pub fn resolve_all(
        &self,
        context: &Map<String, Value>,
        now: impl Fn() -> u64,
    ) -> Vec<Resolution<'a>> {
        self.iter_served()
            .map(|served| resolution::resolve_served(served, context, ValueType::Any, &now))
            .collect()
    }

    /// Resolves `key` for `context` into an owned [`Evaluation`]; `now_unix_seconds` becomes
    /// `$flagd.timestamp`.
    pub fn evaluate(
        &self,
        key: &str,
        context: &Map<String, Value>,
        expected: ValueType,
        now_unix_seconds: u64,
    ) -> Evaluation {
        self.resolve(key, context, expected, || now_unix_seconds)
            .into()
    }

    /// Every visible flag as owned [`Evaluation`]s; see [`Flags::resolve_all`].
    pub fn evaluate_all(
        &self,
        context: &Map<String, Value>,
        now_unix_seconds: u64,
    ) -> Vec<Evaluation> {
        self.resolve_all(context, || now_unix_seconds)
            .into_iter()
            .map(Evaluation::from)
            .collect()
    }
}

impl FlagStore {
    /// Resolves `key` among all flags (no selector), borrowing from this snapshot; see
    /// [`Flags::resolve`].
    pub fn resolve<'r>(
        &'r self,
        key: &'r str,
        context: &Map<String, Value>,
        expected: ValueType,
        now: impl Fn() -> u64,
    ) -> Resolution<'r> {
        self.all().resolve(key, context, expected, now)
    }

    /// Resolves `key` among all flags (no selector) into an owned [`Evaluation`].
    pub fn evaluate(
        &self,
        key: &str,
        context: &Map<String, Value>,
        expected: ValueType,
        now_unix_seconds: u64,
    ) -> Evaluation {
        self.all()
            .evaluate(key, context, expected, now_unix_seconds)
    }

    /// Resolves every flag (no selector); see [`Flags::evaluate_all`].
    pub fn evaluate_all(
        &self,
        context: &Map<String, Value>,
        now_unix_seconds: u64,
    ) -> Vec<Evaluation> {
        self.all().evaluate_all(context, now_unix_seconds)
    }
}

/// Resolves one flag into an owned [`Evaluation`] following flagd's steps; see
/// [`resolve_flag`] for the borrowed form.
pub fn evaluate_flag(
    flag: &Flag,
    context: &Map<String, Value>,
    expected: ValueType,
    now_unix_seconds: u64,
) -> Evaluation {
    resolve_flag(flag, context, expected, &|| now_unix_seconds).into()
}
