//! `ramp flags refs`: which flag keys source code uses, found in OpenFeature client calls and
//! OFREP URLs, checked against the keys flag files define.
//!
//! Only keys written as string literals are found: a key passed in a variable or built at run
//! time cannot be known without running the code. A literal that is part of a larger expression
//! (`"a" + b`, `"x-%s" % y`) or holds interpolation (`${...}`, `#{...}`, `$name`) is skipped
//! rather than reported as an unknown key. Comments are not told apart from code: a key named
//! in a commented-out call still counts as used.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::Serialize;

/// File extensions of the languages scanned: JavaScript / TypeScript, Python, Go, Java,
/// Kotlin, C#, Rust, Ruby and PHP.
pub const SOURCE_EXTENSIONS: &[&str] = &[
    "js", "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts", "py", "go", "java", "kt", "kts", "cs",
    "rs", "rb", "php",
];

/// Whether `path` names a file in one of the scanned languages (by extension).
pub fn is_source_file(path: &str) -> bool {
    path.rsplit_once('.').is_some_and(|(stem, extension)| {
        !stem.is_empty()
            && !stem.ends_with('/')
            && SOURCE_EXTENSIONS
                .iter()
                .any(|known| extension.eq_ignore_ascii_case(known))
    })
}

/// How a key was referenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferenceKind {
    /// An OpenFeature client call (`getBooleanValue("key", ...)`, `get_string_details(...)`).
    Sdk,
    /// An OFREP URL (`/ofrep/v1/evaluate/flags/key`).
    Ofrep,
}

/// One place in source code that names a flag key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FlagReference {
    /// The source file, as given to the scanner.
    pub path: String,
    /// 1-based line of the key.
    pub line: usize,
    /// 1-based column (in characters) of the key's first character.
    pub column: usize,
    /// The flag key.
    pub key: String,
    /// What kind of use it is.
    pub kind: ReferenceKind,
}

/// Flags and references checked against each other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefsReport {
    /// Every reference found, ordered by path, line and column.
    pub references: Vec<FlagReference>,
    /// Defined flags that no reference names, ordered by key.
    pub unused: Vec<String>,
    /// References to keys no flag file defines, ordered like `references`.
    pub unknown: Vec<FlagReference>,
}

/// A string literal argument: double-, single- or back-quoted, with no escapes or line breaks.
const LITERAL: &str =
    r#"(?:"(?P<double>[^"\\\r\n]+)"|'(?P<single>[^'\\\r\n]+)'|`(?P<back>[^`\\\r\n]+)`)"#;

/// Calls whose first argument (or `flag_key` / `flagKey` keyword argument) is the flag key;
/// Rust's turbofish (`get_struct_value::<T>(...)`) is allowed between name and arguments.
static KEY_FIRST_CALL: LazyLock<Regex> = LazyLock::new(|| {
    let methods = [
        // JavaScript / TypeScript, Java, Kotlin, PHP.
        r"get(?:Boolean|String|Number|Integer|Double|Float|Object)(?:Value|Details)",
        // C#.
        r"Get(?:Boolean|String|Integer|Double|Object)(?:Value|Details)Async",
        // Python (sync and async clients).
        r"get_(?:boolean|string|integer|float|object)_(?:value|details)(?:_async)?",
        // Rust.
        r"get_(?:bool|int|float|string|struct)_(?:value|details)",
        // Ruby.
        r"fetch_(?:boolean|string|number|integer|float|object)_(?:value|details)",
        // React hooks.
        r"use(?:Boolean|String|Number|Object)Flag(?:Value|Details)|useFlag|useSuspenseFlag",
    ]
    .join("|");
    compile(&format!(
        r#"\b(?:{methods})(?:::<[^<>()]*>)?\s*\(\s*(?:[^()"'`]*?\b(?:flag_key|flagKey)\s*[:=]\s*)?{LITERAL}"#
    ))
});

/// Go: the key is the second argument, after a `context.Context`.
static GO_CALL: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?:\b(?:Boolean|String|Int|Float|Object)Value(?:Details)?|\.(?:Boolean|String|Int|Float|Object))\s*\(\s*[\w.]+(?:\(\s*\))?\s*,\s*{LITERAL}"
    ))
});

/// OFREP single-flag evaluation URLs; the key ends the path.
static OFREP_URL: LazyLock<Regex> =
    LazyLock::new(|| compile(r"/ofrep/v1/evaluate/flags/(?P<url>[A-Za-z0-9._~\-]+)"));

fn compile(pattern: &str) -> Regex {
    // The patterns are constants of this module; a test compiles each one.
    Regex::new(pattern)
        .unwrap_or_else(|error| panic!("reference pattern does not compile: {error}"))
}

/// Every flag key referenced in `text`, the content of the file at `path`.
pub fn find_references(path: &str, text: &str) -> Vec<FlagReference> {
    let lines = LineIndex::new(text);
    let mut found = BTreeSet::new();
    for pattern in [&*KEY_FIRST_CALL, &*GO_CALL] {
        for captures in pattern.captures_iter(text) {
            if let Some((start, key)) = call_key(text, &captures) {
                found.insert(lines.reference(path, start, key, ReferenceKind::Sdk));
            }
        }
    }
    for captures in OFREP_URL.captures_iter(text) {
        let Some(key) = captures.name("url") else {
            continue;
        };
        if ends_url(text[key.end()..].chars().next()) {
            found.insert(lines.reference(path, key.start(), key.as_str(), ReferenceKind::Ofrep));
        }
    }
    found.into_iter().collect()
}

/// The key of a call match, unless the literal is only part of the argument or interpolates.
fn call_key<'t>(text: &'t str, captures: &Captures<'t>) -> Option<(usize, &'t str)> {
    let key = ["double", "single", "back"]
        .into_iter()
        .find_map(|name| captures.name(name))?;
    let after_literal = key.end() + 1;
    let next = text[after_literal..].trim_start().chars().next();
    let whole_argument = matches!(next, Some(',') | Some(')'));
    let interpolates = key.as_str().contains('$') || key.as_str().contains("#{");
    (whole_argument && !interpolates).then_some((key.start(), key.as_str()))
}

/// Whether the character after an OFREP key ends the URL; anything else (`$`, `{`, `%`, `+`)
/// means the key is built at run time.
fn ends_url(next: Option<char>) -> bool {
    match next {
        None => true,
        Some(c) => c.is_whitespace() || "\"'`?#),;]>".contains(c),
    }
}

/// Byte offsets of line starts, for turning match offsets into line and column.
struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        LineIndex { text, starts }
    }

    fn reference(
        &self,
        path: &str,
        offset: usize,
        key: &str,
        kind: ReferenceKind,
    ) -> FlagReference {
        let line = self.starts.partition_point(|&start| start <= offset);
        let line_start = self.starts[line - 1];
        FlagReference {
            path: path.to_owned(),
            line,
            column: self.text[line_start..offset].chars().count() + 1,
            key: key.to_owned(),
            kind,
        }
    }
}

/// Checks references against the defined keys: which flags no code uses, which references name
/// no flag.
pub fn cross_check<'k>(
    defined: impl IntoIterator<Item = &'k str>,
    mut references: Vec<FlagReference>,
) -> RefsReport {
    references.sort();
    let mut uses: BTreeMap<&str, usize> = defined.into_iter().map(|key| (key, 0)).collect();
    let mut unknown = Vec::new();
    for reference in &references {
        match uses.get_mut(reference.key.as_str()) {
            Some(count) => *count += 1,
            None => unknown.push(reference.clone()),
        }
    }
    let unused = uses
        .into_iter()
        .filter(|(_, count)| *count == 0)
        .map(|(key, _)| key.to_owned())
        .collect();
    RefsReport {
        references,
        unused,
        unknown,
    }
}

/// Scans `(path, text)` sources and checks what they reference against `defined`.
pub fn scan_sources<'k, 's>(
    defined: impl IntoIterator<Item = &'k str>,
    sources: impl IntoIterator<Item = (&'s str, &'s str)>,
) -> RefsReport {
    let references = sources
        .into_iter()
        .flat_map(|(path, text)| find_references(path, text))
        .collect();
    cross_check(defined, references)
}

#[cfg(test)]
#[path = "refs_tests.rs"]
mod tests;
