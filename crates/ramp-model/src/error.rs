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
    #[error("{}", syntax(.path, *.line, *.column, .message))]
    Syntax {
        /// Field path, when it can be told from the text.
        path: Option<String>,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// 1-based column, 0 when unknown.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The document parsed but some values are invalid; every problem found is listed.
    #[error("{}", list(.0))]
    Invalid(Vec<Problem>),
}

fn syntax(path: &Option<String>, line: usize, column: usize, message: &str) -> String {
    let problem = Problem {
        path: path.clone().unwrap_or_else(|| "document".into()),
        line,
        column,
        message: message.to_string(),
    };
    problem.to_string()
}

impl ModelError {
    /// Turns a parser error into one that also names the field, found from the text.
    pub(crate) fn from_parser(err: &serde_saphyr::Error, text: &str) -> Self {
        let (line, column) = err
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        let mut message = err.without_snippet().to_string();
        let suffix = format!(" at line {line}, column {column}");
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
        let missing_field = message.starts_with("missing field");
        let path = crate::locate::path_at(text, line, column, !missing_field);
        ModelError::Syntax {
            path,
            line,
            column,
            message,
        }
    }
}

fn list(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
    format!("invalid configuration:\n{}", lines.join("\n"))
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
