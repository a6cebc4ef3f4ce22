//! Field paths for parser errors.
//!
//! The YAML parser reports where an error is (line and column) but not which field: a wrong
//! type or an unknown key surfaces before our validation runs. This module recovers the path
//! (`revisions[1].weight`) from the text for block-style YAML, the style configuration files
//! are written in. Where the structure is not plain block style (a multi-line flow collection,
//! a block scalar), it answers `None` rather than guess.

/// One structural token on a line: a sequence dash or a mapping key, at its column (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Dash(usize),
    Key(usize, String),
}

impl Token {
    fn column(&self) -> usize {
        match self {
            Token::Dash(c) | Token::Key(c, _) => *c,
        }
    }
}

/// The path of the field at `line` and `column` (both 1-based) of `text`, if it can be told
/// with certainty. `key_at_column` says whether a key starting exactly at the column is the
/// field itself (an unknown key) or the first key of the mapping the error is about (a
/// missing field).
pub(crate) fn path_at(
    text: &str,
    line: usize,
    column: usize,
    key_at_column: bool,
) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let target = line.checked_sub(1)?;
    if target >= lines.len() || !block_style_up_to(&lines, target) {
        return None;
    }
    let tokens: Vec<Vec<Token>> = lines.iter().map(|l| tokenize(l)).collect();
    let error_column = column.saturating_sub(1);

    // Ancestors, innermost first. Tokens on one line nest left to right (dash, dash, key), and
    // a line's tokens enclose the target when they sit left of everything found below them.
    let mut chain: Vec<(usize, &Token)> = Vec::new();
    let mut limit = error_column;
    for (i, line_tokens) in tokens.iter().enumerate().take(target + 1).rev() {
        let encloses = |t: &&Token| {
            t.column() < limit || (i == target && key_at_column && t.column() == limit)
        };
        let enclosing: Vec<&Token> = line_tokens.iter().filter(encloses).collect();
        let Some(outermost) = enclosing.first() else {
            continue;
        };
        limit = outermost.column();
        chain.extend(enclosing.iter().rev().map(|t| (i, *t)));
        if limit == 0 {
            break;
        }
    }
    if chain.is_empty() {
        return None;
    }
    let mut path = String::new();
    for (line_index, token) in chain.iter().rev() {
        match token {
            Token::Key(_, name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
            }
            Token::Dash(col) => {
                path.push_str(&format!("[{}]", item_index(&tokens, *line_index, *col)));
            }
        }
    }
    Some(path)
}

/// Which item of its sequence the dash at (`line`, `column`) is.
fn item_index(tokens: &[Vec<Token>], line: usize, column: usize) -> usize {
    let mut index = 0;
    for line_tokens in tokens[..line].iter().rev() {
        let Some(first) = line_tokens.first() else {
            continue;
        };
        if first.column() < column {
            break; // left the sequence
        }
        if line_tokens.contains(&Token::Dash(column)) {
            index += 1;
        }
    }
    index
}

/// Structural tokens of one line; comments and values are skipped.
fn tokenize(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let bytes = line.as_bytes();
    let mut at = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    loop {
        let rest = &line[at..];
        if rest.is_empty() || rest.starts_with('#') || rest.starts_with("---") {
            return tokens;
        }
        if rest == "-" || rest.starts_with("- ") {
            tokens.push(Token::Dash(at));
            at += 1 + rest[1..].bytes().take_while(|&b| b == b' ').count();
            continue;
        }
        if let Some(key) = key_of(rest) {
            tokens.push(Token::Key(at, key));
        }
        return tokens;
    }
}

/// The key of `key: value` / `key:` (plain or quoted), if the text starts with one.
fn key_of(text: &str) -> Option<String> {
    let (key, after) = match text.as_bytes().first()? {
        q @ (b'"' | b'\'') => {
            let end = text[1..].find(*q as char)? + 1;
            (text[1..end].to_string(), &text[end + 1..])
        }
        b'{' | b'[' => return None,
        _ => {
            let end = text
                .find(": ")
                .or_else(|| text.strip_suffix(':').map(str::len))?;
            let key = text[..end].trim_end();
            if key.contains(['{', '[', '#']) {
                return None;
            }
            (key.to_string(), &text[end..])
        }
    };
    (after.starts_with(": ") || after == ":").then_some(key)
}

/// False when a flow collection (`[`/`{`) stays open across lines before `target`, or when the
/// target sits inside a block scalar (`|`, `>`): the line structure then says nothing.
fn block_style_up_to(lines: &[&str], target: usize) -> bool {
    let mut depth = 0i32;
    let mut scalar_indent: Option<usize> = None;
    for (i, line) in lines.iter().enumerate().take(target + 1) {
        let indent = line.bytes().take_while(|&b| b == b' ').count();
        if let Some(s) = scalar_indent {
            if line.trim().is_empty() || indent > s {
                if i == target {
                    return false;
                }
                continue;
            }
            scalar_indent = None;
        }
        if depth > 0 {
            return false;
        }
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => depth += 1,
                (None, ']' | '}') => depth -= 1,
                _ => {}
            }
        }
        let value = line.split(" #").next().unwrap_or("").trim_end();
        if value.ends_with(": |")
            || value.ends_with(": >")
            || value.ends_with("- |")
            || value.ends_with(": |-")
            || value.ends_with(": >-")
        {
            scalar_indent = Some(indent);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::path_at;

    const DOC: &str = "\
listen: 127.0.0.1:8080   # comment
timeouts:
  connect: 5
revisions:
  - name: v1
    weight: 95
    instances: [\"127.0.0.1:9001\"]
  - name: v2
    weight: -5
    instances:
      - 127.0.0.1:1
      - bad
rules:
  - revision: v2
    match:
      - header: x
        exactt: \"1\"
";

    #[test]
    fn finds_nested_keys_and_sequence_indices() {
        let at = |line, column| path_at(DOC, line, column, true);
        assert_eq!(at(1, 9).as_deref(), Some("listen"));
        assert_eq!(at(3, 12).as_deref(), Some("timeouts.connect"));
        assert_eq!(at(6, 13).as_deref(), Some("revisions[0].weight"));
        assert_eq!(at(9, 13).as_deref(), Some("revisions[1].weight"));
        assert_eq!(at(8, 11).as_deref(), Some("revisions[1].name"));
        assert_eq!(at(12, 9).as_deref(), Some("revisions[1].instances[1]"));
        assert_eq!(at(7, 17).as_deref(), Some("revisions[0].instances"));
        // An unknown key: the error points at the key itself.
        assert_eq!(at(17, 9).as_deref(), Some("rules[0].match[0].exactt"));
    }

    #[test]
    fn a_missing_field_names_the_mapping() {
        assert_eq!(path_at(DOC, 5, 5, false).as_deref(), Some("revisions[0]"));
        assert_eq!(
            path_at(DOC, 16, 9, false).as_deref(),
            Some("rules[0].match[0]")
        );
    }

    #[test]
    fn refuses_to_guess_inside_flow_or_block_scalars() {
        let flow = "revisions: [\n  {name: a,\n   weight: x}]\n";
        assert_eq!(path_at(flow, 3, 12, true), None);
        let scalar = "note: |\n  a: b\nlisten: x\n";
        assert_eq!(path_at(scalar, 2, 6, true), None);
        assert_eq!(path_at(scalar, 3, 9, true).as_deref(), Some("listen"));
        assert_eq!(path_at("a: 1\n", 9, 1, true), None);
    }
}
