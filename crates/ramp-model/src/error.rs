//! Errors that say what is wrong and where.

use std::fmt;

use serde_saphyr::Location;

/// One thing wrong with a document: the field path, its place in the text, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path such as `revisions[1].weight`.
    pub path: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem at a YAML location.
    pub fn at(path: impl Into<String>, location: &Location, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            line: location.line() as usize,
            column: location.column() as usize,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{} (line {}, column {}): {}",
                self.path, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The text is not YAML of the expected shape (syntax, unknown field, wrong type).
    #[error("{message}")]
    Syntax {
        /// 1-based line, 0 when unknown.
        line: usize,
        /// 1-based column, 0 when unknown.
        column: usize,
        /// The parser's message, with a snippet of the text.
        message: String,
    },
    /// The document parsed but some values are invalid; every problem found is listed.
    #[error("{}", list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
    format!("invalid configuration:\n{}", lines.join("\n"))
}

impl From<serde_saphyr::Error> for ModelError {
    fn from(err: serde_saphyr::Error) -> Self {
        let (line, column) = err
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        ModelError::Syntax {
            line,
            column,
            message: err.to_string(),
        }
    }
}

/// Collects problems while a document is validated.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn push(
        &mut self,
        path: impl Into<String>,
        at: &Location,
        message: impl Into<String>,
    ) {
        self.0.push(Problem::at(path, at, message));
    }

    /// `Ok` when nothing was wrong, else every problem found.
    pub(crate) fn into_result(self) -> Result<(), ModelError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ModelError::Invalid(self.0))
        }
    }
}
