//! Validation errors that name the JSON path of the offending value, so an operator can find the
//! mistake in a large flag file without guessing.

use std::fmt;

/// One problem found in a flag file, located by a JSON path such as
/// `$.flags['my-flag'].defaultVariant`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ModelError {
    /// JSON path of the offending value (`$` is the document root).
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl ModelError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in a flag file; a file with any of them is rejected as a whole, so all are
/// reported at once rather than one per edit-and-retry cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModelErrors(pub Vec<ModelError>);

impl ModelErrors {
    /// The individual problems, in document order.
    pub fn errors(&self) -> &[ModelError] {
        &self.0
    }

    pub(crate) fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![ModelError::new(path, message)])
    }
}

impl fmt::Display for ModelErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(
            f,
            "invalid flag file ({count} problem{})",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

/// Builds JSON paths: `.name` for fixed schema fields, `['key']` for user-chosen keys (flag keys
/// often contain `-`), `[n]` for array positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonPath(String);

impl JsonPath {
    pub(crate) fn root() -> Self {
        Self("$".to_owned())
    }

    pub(crate) fn field(&self, name: &str) -> Self {
        Self(format!("{}.{name}", self.0))
    }

    pub(crate) fn key(&self, key: &str) -> Self {
        let escaped = key.replace('\\', "\\\\").replace('\'', "\\'");
        Self(format!("{}['{escaped}']", self.0))
    }

    pub(crate) fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Collects problems while validation carries on, so one pass reports everything.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<ModelError>);

impl Problems {
    pub(crate) fn push(&mut self, path: &JsonPath, message: impl Into<String>) {
        self.0.push(ModelError::new(path.as_str(), message));
    }

    pub(crate) fn into_result<T>(self, value: T) -> Result<T, ModelErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ModelErrors(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_user_keys_and_escape_quotes() {
        let path = JsonPath::root()
            .field("flags")
            .key("it's-a-flag")
            .field("variants")
            .index(2);
        assert_eq!(path.as_str(), "$.flags['it\\'s-a-flag'].variants[2]");
    }

    #[test]
    fn display_lists_every_problem() {
        let errors = ModelErrors(vec![
            ModelError::new("$.flags['a'].state", "is required"),
            ModelError::new("$.flags['b'].variants", "must not be empty"),
        ]);
        let text = errors.to_string();
        assert!(text.starts_with("invalid flag file (2 problems)"));
        assert!(text.contains("$.flags['a'].state: is required"));
        assert!(text.contains("$.flags['b'].variants: must not be empty"));
    }
}
