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
        if let Some(plain) = plain_message(err, text) {
            message = plain;
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

/// The parser words some errors in Rust's terms (`invalid i64`, `expected string scalar`,
/// `use Option<String>`); say instead what the document needs there, and quote what it has.
fn plain_message(err: &serde_saphyr::Error, text: &str) -> Option<String> {
    use serde_saphyr::Error as E;
    let expected = match err.without_snippet() {
        E::InvalidScalar { ty, .. } => match *ty {
            "floating point" | "f32" | "f64" => "a number",
            "boolean" | "bool" => "true or false",
            ty if ty.starts_with(['i', 'u']) && ty[1..].bytes().all(|b| b.is_ascii_digit()) => {
                "a whole number"
            }
            "isize" | "usize" => "a whole number",
            _ => return None,
        },
        E::Unexpected { expected, .. } => match *expected {
            "string scalar" => "a single value, not a list or mapping",
            "mapping start" => "a mapping (key: value)",
            "sequence start" => "a list",
            _ => return None,
        },
        E::NullIntoString { .. } => return Some("expected a value, found nothing".into()),
        E::DuplicateMappingKey { key: Some(key), .. } => {
            return Some(format!("duplicate key `{key}`"));
        }
        _ => return None,
    };
    let found = err.location().and_then(|at| {
        let span = at.span();
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        text.get(start..start.checked_add(len)?)
    });
    Some(match found {
        // A scalar is worth quoting; a collection's opening bracket or dash is not.
        Some(found)
            if !found.is_empty()
                && found != "-"
                && !found.starts_with(['[', '{'])
                && found.len() <= 60
                && !found.contains('\n') =>
        {
            format!("expected {expected}, found {found:?}")
        }
        _ => format!("expected {expected}"),
    })
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

    /// Orders the problems as they appear in the text (line, then column), so a report reads
    /// top to bottom whatever order the checks ran in.
    pub(crate) fn sort_by_position(&mut self) {
        self.0.sort_by_key(|p| (p.line, p.column));
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
