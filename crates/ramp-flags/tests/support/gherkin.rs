//! A small Gherkin reader for the conformance features: Feature, Background, Scenario,
//! Scenario Outline with tagged Examples tables, Given/When/Then/And/But steps with data tables.
//! Outlines are expanded into one scenario per example row, so the runner sees plain scenarios.

/// A feature file, outlines expanded and background steps prepended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Feature {
    pub(crate) name: String,
    pub(crate) scenarios: Vec<Scenario>,
}

/// One runnable scenario with every tag that applies to it (feature, scenario and examples).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) tags: Vec<String>,
    pub(crate) steps: Vec<Step>,
}

/// Given sets up, When acts, Then checks; And/But take the kind of the step before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepKind {
    Given,
    When,
    Then,
}

/// A step's text (after its keyword) and its data table rows, if any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub(crate) kind: StepKind,
    pub(crate) text: String,
    pub(crate) table: Vec<Vec<String>>,
}

#[derive(Debug, Default)]
struct Examples {
    name: String,
    tags: Vec<String>,
    rows: Vec<Vec<String>>,
}

#[derive(Debug, Default)]
struct Block {
    name: String,
    tags: Vec<String>,
    steps: Vec<Step>,
    examples: Vec<Examples>,
    outline: bool,
}

/// Where table rows go: the last step, or the examples table being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Steps,
    Examples,
}

/// Parses a feature file; errors name the line.
pub(crate) fn parse_feature(text: &str) -> Result<Feature, String> {
    let mut feature: Option<(String, Vec<String>)> = None;
    let mut background: Vec<Step> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut in_background = false;
    let mut section = Section::Steps;
    let mut pending_tags: Vec<String> = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let fail = |message: &str| format!("line {}: {message}: {line}", number + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('@') {
            let tags = line.split('#').next().unwrap_or_default();
            pending_tags.extend(tags.split_whitespace().map(str::to_owned));
        } else if let Some(name) = line.strip_prefix("Feature:") {
            feature = Some((name.trim().to_owned(), std::mem::take(&mut pending_tags)));
        } else if line.starts_with("Background:") {
            in_background = true;
            section = Section::Steps;
        } else if let Some((name, outline)) = scenario_header(line) {
            in_background = false;
            section = Section::Steps;
            blocks.push(Block {
                name,
                tags: std::mem::take(&mut pending_tags),
                outline,
                ..Block::default()
            });
        } else if let Some(name) = line
            .strip_prefix("Examples:")
            .or_else(|| line.strip_prefix("Scenarios:"))
        {
            let block = blocks
                .last_mut()
                .filter(|block| block.outline)
                .ok_or_else(|| fail("Examples outside a Scenario Outline"))?;
            block.examples.push(Examples {
                name: name.trim().to_owned(),
                tags: std::mem::take(&mut pending_tags),
                rows: Vec::new(),
            });
            section = Section::Examples;
        } else if line.starts_with('|') {
            let row = table_row(line);
            let target = if in_background {
                background.last_mut().map(|step| &mut step.table)
            } else if section == Section::Examples {
                blocks
                    .last_mut()
                    .and_then(|block| block.examples.last_mut())
                    .map(|examples| &mut examples.rows)
            } else {
                blocks
                    .last_mut()
                    .and_then(|block| block.steps.last_mut())
                    .map(|step| &mut step.table)
            };
            target
                .ok_or_else(|| fail("table row without a step"))?
                .push(row);
        } else if let Some((keyword, text)) = line.split_once(' ') {
            let steps = if in_background {
                &mut background
            } else {
                &mut blocks
                    .last_mut()
                    .ok_or_else(|| fail("step outside a scenario"))?
                    .steps
            };
            let kind = match keyword {
                "Given" => StepKind::Given,
                "When" => StepKind::When,
                "Then" => StepKind::Then,
                "And" | "But" | "*" => steps
                    .last()
                    .map(|step| step.kind)
                    .ok_or_else(|| fail("And/But as the first step"))?,
                _ => return Err(fail("unrecognised line")),
            };
            steps.push(Step {
                kind,
                text: text.trim().to_owned(),
                table: Vec::new(),
            });
        } else {
            return Err(fail("unrecognised line"));
        }
    }
    let (name, feature_tags) = feature.ok_or("no Feature: line")?;
    let mut scenarios = Vec::new();
    for block in blocks {
        expand(&block, &feature_tags, &background, &mut scenarios)?;
    }
    Ok(Feature { name, scenarios })
}

/// `Scenario:` / `Example:` (plain) or `Scenario Outline:` / `Scenario Template:` (outline).
fn scenario_header(line: &str) -> Option<(String, bool)> {
    let outlines = ["Scenario Outline:", "Scenario Template:"];
    let plain = ["Scenario:", "Example:"];
    for (prefixes, outline) in [(&outlines, true), (&plain, false)] {
        for prefix in prefixes {
            if let Some(name) = line.strip_prefix(prefix) {
                return Some((name.trim().to_owned(), outline));
            }
        }
    }
    None
}

/// Splits `| a | b\|c |` into cells, honouring Gherkin's `\|`, `\n` and `\\` escapes; other
/// backslashes are kept as written.
fn table_row(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('|') => cell.push('|'),
                Some('n') => cell.push('\n'),
                Some('\\') => cell.push('\\'),
                Some(other) => {
                    cell.push('\\');
                    cell.push(other);
                }
                None => cell.push('\\'),
            },
            '|' => cells.push(std::mem::take(&mut cell).trim().to_owned()),
            other => cell.push(other),
        }
    }
    cells
}

fn expand(
    block: &Block,
    feature_tags: &[String],
    background: &[Step],
    scenarios: &mut Vec<Scenario>,
) -> Result<(), String> {
    let mut tags = feature_tags.to_vec();
    tags.extend(block.tags.iter().cloned());
    let steps_with_background =
        |steps: Vec<Step>| background.iter().cloned().chain(steps).collect::<Vec<_>>();
    if !block.outline {
        scenarios.push(Scenario {
            name: block.name.clone(),
            tags,
            steps: steps_with_background(block.steps.clone()),
        });
        return Ok(());
    }
    for examples in &block.examples {
        let Some((header, rows)) = examples.rows.split_first() else {
            return Err(format!(
                "outline '{}' has an empty Examples table",
                block.name
            ));
        };
        for (index, row) in rows.iter().enumerate() {
            if row.len() != header.len() {
                return Err(format!(
                    "outline '{}': row {} has {} cells, header {}",
                    block.name,
                    index + 1,
                    row.len(),
                    header.len()
                ));
            }
            let fill = |text: &str| {
                header
                    .iter()
                    .zip(row)
                    .fold(text.to_owned(), |text, (name, value)| {
                        text.replace(&format!("<{name}>"), value)
                    })
            };
            let steps = block
                .steps
                .iter()
                .map(|step| Step {
                    kind: step.kind,
                    text: fill(&step.text),
                    table: step
                        .table
                        .iter()
                        .map(|cells| cells.iter().map(|cell| fill(cell)).collect())
                        .collect(),
                })
                .collect();
            let values: Vec<String> = header
                .iter()
                .zip(row)
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let mut row_tags = tags.clone();
            row_tags.extend(examples.tags.iter().cloned());
            scenarios.push(Scenario {
                name: format!(
                    "{} [{}#{}: {}]",
                    block.name,
                    examples.name,
                    index + 1,
                    values.join(", ")
                ),
                tags: row_tags,
                steps: steps_with_background(steps),
            });
        }
    }
    Ok(())
}

/// Matches `text` against `pattern`, where `{string}` stands for a double-quoted string (with
/// `\"` and `\\` escapes, as Cucumber expressions read it) and `{word}` for unquoted text up to
/// the next literal part; returns the captured values in order.
pub(crate) fn match_step(pattern: &str, text: &str) -> Option<Vec<String>> {
    let mut captures = Vec::new();
    let mut rest = text;
    let mut remaining = pattern;
    while !remaining.is_empty() {
        if let Some(after) = remaining.strip_prefix("{string}") {
            let (value, tail) = quoted(rest)?;
            captures.push(value);
            rest = tail;
            remaining = after;
        } else if let Some(after) = remaining.strip_prefix("{word}") {
            let literal_end = after.find('{').unwrap_or(after.len());
            let literal = &after[..literal_end];
            let end = if literal.is_empty() {
                rest.len()
            } else {
                rest.find(literal)?
            };
            if end == 0 {
                return None;
            }
            captures.push(rest[..end].to_owned());
            rest = &rest[end..];
            remaining = after;
        } else {
            let literal_end = remaining.find('{').unwrap_or(remaining.len()).max(1);
            rest = rest.strip_prefix(&remaining[..literal_end])?;
            remaining = &remaining[literal_end..];
        }
    }
    rest.is_empty().then_some(captures)
}

/// Reads a leading `"..."`, returning its unescaped content and the text after it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[index + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return None,
            },
            other => value.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"@feature-tag
Feature: Sample
  # a comment
  Background:
    Given an evaluator

  Scenario: Plain
    Given a String-flag with key "k" and a fallback value "f"
    Then the resolved metadata should contain
      | key | value |
      | a   | 1\|2  |

  @outline-tag
  Scenario Outline: Outline
    When evaluated "<x>"
    And checked

    @v1
    Examples: first
      | x        |
      | {\"a\": 1} |

    Examples: second
      | x |
      | b |
"#;

    #[test]
    fn expands_outlines_with_tags_and_background() {
        let feature = parse_feature(SAMPLE).unwrap();
        assert_eq!(feature.name, "Sample");
        assert_eq!(feature.scenarios.len(), 3);
        let plain = &feature.scenarios[0];
        assert_eq!(plain.tags, ["@feature-tag"]);
        assert_eq!(plain.steps[0].text, "an evaluator");
        assert_eq!(plain.steps[2].table[1], ["a", "1|2"]);
        let first = &feature.scenarios[1];
        assert_eq!(first.tags, ["@feature-tag", "@outline-tag", "@v1"]);
        assert_eq!(first.steps[1].text, r#"evaluated "{\"a\": 1}""#);
        assert_eq!(first.steps[2].kind, StepKind::When);
        assert_eq!(feature.scenarios[2].tags, ["@feature-tag", "@outline-tag"]);
    }

    #[test]
    fn matches_quoted_and_word_parameters() {
        let pattern = "a {word}-flag with key {string} and a fallback value {string}";
        let captures = match_step(
            pattern,
            r#"a Object-flag with key "o" and a fallback value "{\"a\": 1}""#,
        );
        assert_eq!(captures.unwrap(), ["Object", "o", r#"{"a": 1}"#]);
        assert_eq!(
            match_step(
                "the reason should be {string}",
                r#"the reason should be """#
            )
            .unwrap(),
            [""]
        );
        assert!(match_step("the reason should be {string}", "the reason is \"X\"").is_none());
        assert!(match_step("an evaluator", "an evaluator too").is_none());
    }

    #[test]
    fn rejects_unknown_lines() {
        let error = parse_feature("Feature: x\n  Scenario: y\n    Whenever z\n").unwrap_err();
        assert!(error.starts_with("line 3"), "{error}");
    }
}
