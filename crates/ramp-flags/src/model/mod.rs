//! Flag files as flagd reads them: JSON or YAML, flags as a map (or an array of flags with a
//! `key`), shared `$evaluators`, flag-set and flag `metadata`.
//!
//! A file is validated as a whole: structural problems (unknown state, mixed variant types, a
//! `defaultVariant` naming no variant, ...) reject it with every problem and its JSON path, so the
//! previous configuration keeps serving. A targeting rule that cannot be prepared (unknown `$ref`,
//! a rule the logic compiler refuses) only breaks its own flag: evaluating it gives PARSE_ERROR,
//! which is what flagd and its conformance testbed expect.
//!
//! [`FlagStore`] combines several named sources into one snapshot and filters it by selector.

mod error;
mod evaluators;
mod store;
mod text;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::logic::{LogicOptions, Rule};

pub(crate) use error::JsonPath;
pub use error::{ModelError, ModelErrors};
pub(crate) use store::ServedFlag;
pub use store::{FlagStore, Flags, Selector, SelectorError};
pub use text::Format;

/// The metadata key that assigns flags to a flag set.
pub const FLAG_SET_ID_KEY: &str = "flagSetId";

/// A validated flag file, its targeting rules compiled.
#[derive(Debug, Clone)]
pub struct FlagFile {
    flags: BTreeMap<String, Arc<Flag>>,
    metadata: Map<String, Value>,
}

impl FlagFile {
    /// Parses and validates a flag file with the default logic options.
    pub fn parse(text: &str, format: Format) -> Result<FlagFile, ModelErrors> {
        Self::parse_with(text, format, &LogicOptions::default())
    }

    /// Parses and validates a flag file, compiling its rules with `options`.
    pub fn parse_with(
        text: &str,
        format: Format,
        options: &LogicOptions,
    ) -> Result<FlagFile, ModelErrors> {
        let document = text::parse_text(text, format)?;
        Self::from_value(&document, options)
    }

    /// Validates an already-parsed document.
    pub fn from_value(document: &Value, options: &LogicOptions) -> Result<FlagFile, ModelErrors> {
        validate::flag_file(document, options)
    }

    /// The flag named `key`.
    pub fn flag(&self, key: &str) -> Option<&Flag> {
        self.flags.get(key).map(Arc::as_ref)
    }

    /// All flags, ordered by key.
    pub fn flags(&self) -> impl Iterator<Item = &Flag> {
        self.flags.values().map(Arc::as_ref)
    }

    /// Number of flags in the file.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether the file defines no flags.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Flag-set metadata (the file's top-level `metadata`).
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// The flag set the file declares (`metadata.flagSetId`), if any.
    pub fn flag_set_id(&self) -> Option<&str> {
        self.metadata.get(FLAG_SET_ID_KEY).and_then(Value::as_str)
    }

    pub(crate) fn shared_flags(&self) -> impl Iterator<Item = &Arc<Flag>> {
        self.flags.values()
    }
}

/// Whether a flag is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagState {
    /// Evaluated normally.
    Enabled,
    /// Resolves with reason DISABLED and no value, so callers use their code default.
    Disabled,
}

impl FlagState {
    /// The spelling used in flag files.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagState::Enabled => "ENABLED",
            FlagState::Disabled => "DISABLED",
        }
    }
}

/// The one type shared by all variants of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VariantType {
    /// `true` / `false`.
    Bool,
    /// Strings.
    String,
    /// Integers or floating-point numbers.
    Number,
    /// JSON objects.
    Object,
}

impl VariantType {
    /// The type of a variant value, if it is one a flag may hold.
    pub fn of(value: &Value) -> Option<VariantType> {
        match value {
            Value::Bool(_) => Some(VariantType::Bool),
            Value::String(_) => Some(VariantType::String),
            Value::Number(_) => Some(VariantType::Number),
            Value::Object(_) => Some(VariantType::Object),
            Value::Null | Value::Array(_) => None,
        }
    }

    /// Human name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            VariantType::Bool => "boolean",
            VariantType::String => "string",
            VariantType::Number => "number",
            VariantType::Object => "object",
        }
    }
}

/// A flag's targeting, prepared once when the file is loaded.
#[derive(Debug, Clone)]
pub enum Targeting {
    /// No rule (`targeting` absent or `{}`): the default variant is served with reason STATIC.
    None,
    /// A compiled rule.
    Rule(Rule),
    /// A rule that could not be prepared; evaluating the flag gives PARSE_ERROR with this message.
    Broken(String),
}

/// One validated flag.
#[derive(Debug, Clone)]
pub struct Flag {
    pub(crate) key: String,
    pub(crate) state: FlagState,
    pub(crate) variants: Map<String, Value>,
    pub(crate) variant_type: VariantType,
    pub(crate) default_variant: Option<String>,
    pub(crate) targeting: Targeting,
    pub(crate) targeting_source: Option<Value>,
    pub(crate) metadata: Map<String, Value>,
}

impl Flag {
    /// The flag key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// ENABLED or DISABLED.
    pub fn state(&self) -> FlagState {
        self.state
    }

    /// Variant name to value.
    pub fn variants(&self) -> &Map<String, Value> {
        &self.variants
    }

    /// The type all variants share.
    pub fn variant_type(&self) -> VariantType {
        self.variant_type
    }

    /// The variant served when targeting gives nothing; `None` means "the caller's code default".
    pub fn default_variant(&self) -> Option<&str> {
        self.default_variant.as_deref()
    }

    /// The prepared targeting.
    pub fn targeting(&self) -> &Targeting {
        &self.targeting
    }

    /// Effective metadata: the flag set's metadata overlaid with the flag's own (flag wins).
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// The flag set this flag belongs to (effective `metadata.flagSetId`), if any.
    pub fn flag_set_id(&self) -> Option<&str> {
        self.metadata.get(FLAG_SET_ID_KEY).and_then(Value::as_str)
    }

    /// The flag in flagd's file shape, with `$evaluators` inlined and the flag set's metadata
    /// merged in: what a sync client needs to evaluate it without the rest of the file.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("state".to_owned(), Value::from(self.state.as_str()));
        object.insert("variants".to_owned(), Value::Object(self.variants.clone()));
        let default_variant = self
            .default_variant
            .clone()
            .map_or(Value::Null, Value::from);
        object.insert("defaultVariant".to_owned(), default_variant);
        if let Some(targeting) = &self.targeting_source {
            object.insert("targeting".to_owned(), targeting.clone());
        }
        if !self.metadata.is_empty() {
            object.insert("metadata".to_owned(), Value::Object(self.metadata.clone()));
        }
        Value::Object(object)
    }
}
