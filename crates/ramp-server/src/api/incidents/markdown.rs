//! An incident as a Markdown document, to paste into a post-mortem or a chat.
//!
//! `data` is written by the control plane and any key may be missing (or hold something
//! unexpected), so every part of it is optional here: what is absent is left out, never
//! guessed, and nothing in it can make rendering fail.

use std::fmt::Write as _;

use ramp_store::{EventRow, IncidentRow, Timestamp};
use serde_json::Value;

use super::timeline::Timeline;

/// Longest table cell, in characters; longer text is cut with an ellipsis.
const MAX_CELL: usize = 200;

/// Measurements shown per metric: the newest ones.
const MAX_MEASUREMENTS: usize = 50;

/// Longest evidence block, in characters.
const MAX_EVIDENCE: usize = 8000;

/// Longest object or array, as compact JSON, written into a value cell.
const MAX_VALUE_CELL: usize = 80;

/// The whole document: title, summary, analysis (metrics, measurements, evidence), timeline.
pub(super) fn render(incident: &IncidentRow, timeline: &Timeline) -> String {
    let mut out = String::new();
    summary(&mut out, incident);
    if let Some(analysis) = incident.data.get("analysis").filter(|a| a.is_object()) {
        analysis_section(&mut out, analysis);
    }
    timeline_section(&mut out, timeline, super::timeline::window_start(incident));
    out
}

fn summary(out: &mut String, incident: &IncidentRow) {
    let data = &incident.data;
    let _ = writeln!(
        out,
        "# Incident {}: {}, rollout {}\n",
        incident.id,
        inline(&incident.service),
        incident.rollout
    );
    let _ = match incident.stable_revision {
        Some(stable) => writeln!(
            out,
            "Revision {} was rolled back to revision {stable}.\n",
            incident.revision
        ),
        None => writeln!(
            out,
            "Revision {} was rolled back; no revision was stable.\n",
            incident.revision
        ),
    };
    let _ = writeln!(out, "- **Time:** {}", incident.at);
    let _ = writeln!(out, "- **Trigger:** {}", inline(&incident.trigger));
    let _ = writeln!(out, "- **Reason:** {}", inline(&incident.reason));
    if let Some(actor) = text(data, "actor") {
        let _ = writeln!(out, "- **Actor:** {}", inline(actor));
    }
    if let Some(started) = data.get("rolloutStarted").and_then(Value::as_i64) {
        let _ = writeln!(out, "- **Rollout started:** {}", Timestamp(started));
    }
    if let Some(ms) = data.get("detectedAfterMs").and_then(Value::as_i64) {
        let _ = writeln!(
            out,
            "- **Detected after:** {} (from the canary's first request to the verdict)",
            duration(ms)
        );
    }
    let routes: Vec<String> = [("canary", "canaryRoute"), ("baseline", "baselineRoute")]
        .into_iter()
        .filter_map(|(label, key)| text(data, key).map(|r| format!("{label} `{}`", inline(r))))
        .collect();
    if !routes.is_empty() {
        let _ = writeln!(out, "- **Routes:** {}", routes.join(", "));
    }
}

fn analysis_section(out: &mut String, analysis: &Value) {
    out.push_str("\n## Analysis\n\n");
    let kind = text(analysis, "kind").unwrap_or("analysis");
    let verdict = match (text(analysis, "phase"), text(analysis, "message")) {
        (Some(phase), Some(message)) => format!("{} — {}", inline(phase), inline(message)),
        (Some(phase), None) => inline(phase),
        (None, Some(message)) => inline(message),
        (None, None) => "no verdict recorded".into(),
    };
    let _ = writeln!(out, "**{}**: {verdict}", inline(kind));
    let metrics: Vec<&Value> = analysis
        .get("metrics")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter(|m| m.is_object()).collect())
        .unwrap_or_default();
    if !metrics.is_empty() {
        metrics_table(out, &metrics);
        measurements(out, &metrics);
    }
    if let Some(evidence) = analysis.get("evidence").filter(|v| !is_empty(v)) {
        evidence_block(out, evidence);
    }
}

fn metrics_table(out: &mut String, metrics: &[&Value]) {
    out.push_str("\n### Metrics\n\n");
    let rows: Vec<Vec<String>> = metrics
        .iter()
        .map(|m| {
            let last = last_measurement(m);
            let message = text(m, "message").or_else(|| last.and_then(|l| text(l, "message")));
            vec![
                metric_name(m),
                text(m, "phase").unwrap_or("-").to_string(),
                measured(m),
                last.and_then(|l| l.get("value"))
                    .map_or_else(|| "-".into(), value_text),
                message.unwrap_or("-").to_string(),
            ]
        })
        .collect();
    table(
        out,
        &["Metric", "Phase", "Measured", "Last value", "Message"],
        &rows,
    );
}

fn measurements(out: &mut String, metrics: &[&Value]) {
    let with_measurements: Vec<(&Value, &Vec<Value>)> = metrics
        .iter()
        .filter_map(|m| Some((*m, m.get("measurements")?.as_array()?)))
        .filter(|(_, list)| !list.is_empty())
        .collect();
    if with_measurements.is_empty() {
        return;
    }
    out.push_str("\n### Measurements\n");
    for (metric, list) in with_measurements {
        let _ = writeln!(out, "\n#### {}\n", metric_name(metric));
        let skipped = list.len().saturating_sub(MAX_MEASUREMENTS);
        if skipped > 0 {
            let _ = writeln!(
                out,
                "The {skipped} oldest measurements are left out; the newest {MAX_MEASUREMENTS} follow.\n"
            );
        }
        let rows: Vec<Vec<String>> = list[skipped..]
            .iter()
            .map(|m| {
                vec![
                    m.get("at").map_or_else(|| "-".into(), time_text),
                    text(m, "phase").unwrap_or("-").to_string(),
                    m.get("value").map_or_else(|| "-".into(), value_text),
                    text(m, "message").unwrap_or("-").to_string(),
                ]
            })
            .collect();
        table(out, &["Time", "Phase", "Value", "Message"], &rows);
    }
}

fn evidence_block(out: &mut String, evidence: &Value) {
    out.push_str("\n### Evidence\n\n");
    let mut json = serde_json::to_string_pretty(evidence).unwrap_or_default();
    let cut = cut(&json, MAX_EVIDENCE);
    if cut.len() < json.len() {
        json = format!("{cut}\n… (cut at {MAX_EVIDENCE} characters)");
    }
    // A fence longer than any run of backticks inside, so the block cannot end early.
    let longest_run = json.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let _ = writeln!(out, "{fence}json\n{json}\n{fence}");
}

fn timeline_section(out: &mut String, timeline: &Timeline, from: Timestamp) {
    out.push_str("\n## Timeline\n\n");
    if timeline.events.is_empty() {
        out.push_str("No events were recorded for this service around the incident.\n");
        return;
    }
    if timeline.truncated {
        let _ = writeln!(
            out,
            "Only {} events are shown: the oldest before the incident and the newest after it \
             are left out.\n",
            timeline.events.len()
        );
    }
    let rows: Vec<Vec<String>> = timeline
        .events
        .iter()
        .map(|e: &EventRow| {
            vec![
                e.at.to_string(),
                format!("+{}", duration(e.at.0.saturating_sub(from.0))),
                e.actor.clone(),
                e.kind.clone(),
                e.message.clone(),
            ]
        })
        .collect();
    table(
        out,
        &["Time", "Since start", "Actor", "Kind", "Message"],
        &rows,
    );
}

/// A Markdown table; cells are made safe with [`cell`].
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

/// Text for a table cell: one line, `|` escaped, at most [`MAX_CELL`] characters, `-` if empty.
fn cell(text: &str) -> String {
    let one_line = inline(text);
    let short = cut(&one_line, MAX_CELL);
    let short = if short.len() < one_line.len() {
        format!("{short}…")
    } else {
        one_line
    };
    if short.is_empty() {
        "-".into()
    } else {
        short.replace('|', "\\|")
    }
}

/// Text on one line (line breaks become spaces), trimmed.
fn inline(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` characters of `text`.
fn cut(text: &str, max: usize) -> &str {
    text.char_indices()
        .nth(max)
        .map_or(text, |(end, _)| &text[..end])
}

/// A string field of a JSON object; `None` when missing or not a string.
fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// "name", or "template/name" for a metric of a template other than the default one.
fn metric_name(metric: &Value) -> String {
    let name = text(metric, "name").unwrap_or("(unnamed)");
    match text(metric, "template") {
        Some(template) if template != "default" => inline(&format!("{template}/{name}")),
        _ => inline(name),
    }
}

/// "3" or "3 (1 failed)", from the metric's counters.
fn measured(metric: &Value) -> String {
    let count = metric.get("count").and_then(Value::as_u64);
    let failed = metric
        .get("failed")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0);
    match (count, failed) {
        (Some(count), Some(failed)) => format!("{count} ({failed} failed)"),
        (Some(count), None) => count.to_string(),
        (None, Some(failed)) => format!("{failed} failed"),
        (None, None) => "-".into(),
    }
}

fn last_measurement(metric: &Value) -> Option<&Value> {
    metric.get("measurements")?.as_array()?.last()
}

/// A measured value as text: strings and numbers as they are, short objects and arrays as
/// compact JSON, longer ones as a pointer to the Evidence section.
fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        // A judge's value is a large object; its message says what it holds, and the
        // Evidence section shows it whole.
        Value::Object(_) | Value::Array(_) => {
            let text = value.to_string();
            if text.chars().count() > MAX_VALUE_CELL {
                "(see Evidence)".into()
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

/// A time given in milliseconds since the epoch as RFC 3339; anything else as it is.
fn time_text(value: &Value) -> String {
    value
        .as_i64()
        .map_or_else(|| value_text(value), |ms| Timestamp(ms).to_string())
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(list) => list.is_empty(),
        _ => false,
    }
}

/// A duration for people: "850 ms", "8.4 s", "2 min 5 s", "3 h 20 min".
fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{} h {} min", ms / 3_600_000, ms / 60_000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use ramp_store::{EventRow, IncidentRow, Timestamp};
    use serde_json::{Value, json};

    use super::{MAX_CELL, MAX_MEASUREMENTS, MAX_VALUE_CELL, cell, duration, render, value_text};
    use crate::api::incidents::timeline::Timeline;

    const AT: i64 = 1_763_800_010_000;

    fn full_data() -> Value {
        json!({
            "rolloutStarted": 1_763_800_000_000_i64,
            "actor": "ramp",
            "canaryRoute": "r2",
            "baselineRoute": "r1",
            "detectedAfterMs": 8400,
            "analysis": {
                "kind": "background analysis",
                "phase": "failed",
                "message": "metric canary-vs-baseline: errors 5.1% vs 1.0%",
                "metrics": [{
                    "template": "default",
                    "name": "canary-vs-baseline",
                    "phase": "failed",
                    "count": 3,
                    "failed": 1,
                    "measurements": [
                        {"at": 1_763_800_005_000_i64, "phase": "successful", "value": 0.01, "message": "errors 1.0% vs 1.0%"},
                        {"at": 1_763_800_008_000_i64, "phase": "failed", "value": {"canary": 0.051, "baseline": 0.01}, "message": "errors 5.1% vs 1.0%"}
                    ]
                }, {
                    "template": "latency",
                    "name": "p99",
                    "phase": "successful",
                    "count": 2,
                    "measurements": []
                }],
                "evidence": {"canary-vs-baseline": {"decision": "fail", "llr": 3.2}}
            }
        })
    }

    fn incident(data: Value) -> IncidentRow {
        IncidentRow {
            id: 7,
            at: Timestamp(AT),
            service: "web".into(),
            rollout: 3,
            revision: 4,
            stable_revision: Some(3),
            trigger: "analysis".into(),
            reason: "background analysis failed: errors 5.1% vs 1.0%".into(),
            data,
        }
    }

    fn timeline() -> Timeline {
        let event = |id: u64, at: i64, actor: &str, kind: &str, message: &str| EventRow {
            id,
            at: Timestamp(at),
            actor: actor.into(),
            service: Some("web".into()),
            kind: kind.into(),
            message: message.into(),
            data: Value::Null,
        };
        Timeline {
            events: vec![
                event(
                    1,
                    1_763_800_000_000,
                    "user",
                    "RolloutStarted",
                    "rollout 3: canary to revision 4",
                ),
                event(
                    2,
                    AT,
                    "ramp",
                    "Aborted",
                    "rollout 3 aborted: analysis failed",
                ),
            ],
            truncated: false,
        }
    }

    #[test]
    fn full_record_has_summary_metrics_measurements_evidence_and_timeline() {
        let doc = render(&incident(full_data()), &timeline());
        let expected_lines = [
            "# Incident 7: web, rollout 3",
            "Revision 4 was rolled back to revision 3.",
            "- **Time:** 2025-11-22T08:26:50.000Z",
            "- **Trigger:** analysis",
            "- **Reason:** background analysis failed: errors 5.1% vs 1.0%",
            "- **Rollout started:** 2025-11-22T08:26:40.000Z",
            "- **Detected after:** 8.4 s (from the canary's first request to the verdict)",
            "- **Routes:** canary `r2`, baseline `r1`",
            "**background analysis**: failed — metric canary-vs-baseline: errors 5.1% vs 1.0%",
            "| Metric | Phase | Measured | Last value | Message |",
            "| canary-vs-baseline | failed | 3 (1 failed) | {\"baseline\":0.01,\"canary\":0.051} | errors 5.1% vs 1.0% |",
            "| latency/p99 | successful | 2 | - | - |",
            "#### canary-vs-baseline",
            "| 2025-11-22T08:26:45.000Z | successful | 0.01 | errors 1.0% vs 1.0% |",
            "| 2025-11-22T08:26:48.000Z | failed | {\"baseline\":0.01,\"canary\":0.051} | errors 5.1% vs 1.0% |",
            "    \"llr\": 3.2",
            "| Time | Since start | Actor | Kind | Message |",
            "| 2025-11-22T08:26:40.000Z | +0 ms | user | RolloutStarted | rollout 3: canary to revision 4 |",
            "| 2025-11-22T08:26:50.000Z | +10.0 s | ramp | Aborted | rollout 3 aborted: analysis failed |",
        ];
        for line in expected_lines {
            assert!(
                doc.lines().any(|l| l == line),
                "missing line {line:?} in:\n{doc}"
            );
        }
        // A metric without measurements gets no measurement table.
        assert!(!doc.contains("#### latency/p99"), "{doc}");
        // Sections in reading order.
        let at = |s: &str| doc.find(s).unwrap_or_else(|| panic!("{s} missing"));
        assert!(at("## Analysis") < at("### Metrics"));
        assert!(at("### Metrics") < at("### Measurements"));
        assert!(at("### Measurements") < at("### Evidence"));
        assert!(at("### Evidence") < at("## Timeline"));
    }

    #[test]
    fn missing_data_leaves_sections_out() {
        for data in [json!(null), json!({}), json!([1, 2]), json!("text")] {
            let mut row = incident(data.clone());
            row.stable_revision = None;
            let doc = render(&row, &Timeline::default());
            assert!(doc.starts_with("# Incident 7: web, rollout 3\n"), "{doc}");
            assert!(doc.contains("no revision was stable"), "{doc}");
            assert!(doc.contains("- **Reason:** background analysis failed"));
            assert!(!doc.contains("## Analysis"), "{data}: {doc}");
            assert!(!doc.contains("Routes"), "{data}: {doc}");
            assert!(doc.contains("No events were recorded"), "{doc}");
        }
    }

    /// Every key of the record, removed or replaced by a value of another type, still renders:
    /// the title and the rest of the record stay, and nothing panics.
    #[test]
    fn any_key_may_be_missing_or_of_another_type() {
        let replacements = [
            None,
            Some(json!(null)),
            Some(json!("x")),
            Some(json!(-1)),
            Some(json!(1.5e300)),
            Some(json!([null, {"a": 1}])),
            Some(json!({"unexpected": true})),
        ];
        let mut paths = Vec::new();
        collect_paths(&full_data(), &mut Vec::new(), &mut paths);
        assert!(paths.len() > 20, "{paths:?}");
        for path in &paths {
            for replacement in &replacements {
                let mut data = full_data();
                replace(&mut data, path, replacement.clone());
                let doc = render(&incident(data), &timeline());
                assert!(
                    doc.starts_with("# Incident 7: web, rollout 3\n"),
                    "{path:?}"
                );
                assert!(doc.contains("| ramp | Aborted |"), "{path:?}: {doc}");
            }
        }
    }

    /// Paths (keys and indices) of every value inside `value`.
    fn collect_paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let children: Vec<(String, &Value)> = match value {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => Vec::new(),
        };
        for (key, child) in children {
            prefix.push(key);
            out.push(prefix.clone());
            collect_paths(child, prefix, out);
            prefix.pop();
        }
    }

    /// Replaces (or with `None` removes) the value at `path`.
    fn replace(root: &mut Value, path: &[String], with: Option<Value>) {
        let (last, parents) = path.split_last().expect("non-empty path");
        let mut node = root;
        for key in parents {
            node = match node {
                Value::Object(map) => map.get_mut(key).expect("key"),
                Value::Array(list) => &mut list[key.parse::<usize>().expect("index")],
                _ => unreachable!("paths come from the same document"),
            };
        }
        match (node, with) {
            (Value::Object(map), Some(v)) => {
                map.insert(last.clone(), v);
            }
            (Value::Object(map), None) => {
                map.remove(last);
            }
            (Value::Array(list), Some(v)) => list[last.parse::<usize>().expect("index")] = v,
            (Value::Array(list), None) => {
                list.remove(last.parse::<usize>().expect("index"));
            }
            _ => unreachable!("paths come from the same document"),
        }
    }

    #[test]
    fn cells_stay_on_one_line_and_inside_their_column() {
        assert_eq!(cell("a | b\nc\r\n  d"), "a \\| b c d");
        assert_eq!(cell(""), "-");
        assert_eq!(cell("\n"), "-");
        let long = "é".repeat(MAX_CELL + 10);
        let short = cell(&long);
        assert_eq!(short.chars().count(), MAX_CELL + 1);
        assert!(short.ends_with('…'));

        let mut data = full_data();
        data["analysis"]["metrics"][0]["measurements"][1]["message"] =
            json!("line one\nline | two");
        let doc = render(&incident(data), &timeline());
        assert!(
            doc.contains("| line one line \\| two |"),
            "message not escaped: {doc}"
        );
    }

    #[test]
    fn large_measured_objects_point_to_the_evidence() {
        assert_eq!(value_text(&json!(null)), "-");
        assert_eq!(value_text(&json!("ok")), "ok");
        assert_eq!(value_text(&json!(0.5)), "0.5");
        assert_eq!(value_text(&json!({"a": [1, 2]})), r#"{"a":[1,2]}"#);
        let fits = json!(["x".repeat(MAX_VALUE_CELL - 4)]);
        assert_eq!(value_text(&fits).chars().count(), MAX_VALUE_CELL);
        let judge = json!({"errors": {"logEvidence": 1.5, "note": "x".repeat(MAX_VALUE_CELL)}});
        assert_eq!(value_text(&judge), "(see Evidence)");

        let mut data = full_data();
        data["analysis"]["metrics"][0]["measurements"][1]["value"] = judge;
        let doc = render(&incident(data), &timeline());
        assert!(doc.contains("| (see Evidence) |"), "{doc}");
        assert!(!doc.contains("logEvidence"), "{doc}");
    }

    #[test]
    fn many_measurements_show_the_newest() {
        let mut data = full_data();
        let list: Vec<Value> = (0..MAX_MEASUREMENTS as i64 + 5)
            .map(|i| json!({"at": AT + i, "phase": "successful", "value": i}))
            .collect();
        data["analysis"]["metrics"][0]["measurements"] = Value::Array(list);
        let doc = render(&incident(data), &timeline());
        assert!(
            doc.contains("The 5 oldest measurements are left out"),
            "{doc}"
        );
        assert!(!doc.contains("| successful | 4 |"), "{doc}");
        assert!(doc.contains("| successful | 5 |"), "{doc}");
        assert!(
            doc.contains(&format!("| successful | {} |", MAX_MEASUREMENTS + 4)),
            "{doc}"
        );
    }

    #[test]
    fn evidence_with_backticks_cannot_close_its_block() {
        let mut data = full_data();
        data["analysis"]["evidence"] = json!({"note": "``` not the end"});
        let doc = render(&incident(data), &timeline());
        assert!(doc.contains("````json\n"), "{doc}");
        assert!(doc.contains("\n````\n"), "{doc}");
    }

    /// Text with what can break Markdown: pipes, line breaks, backticks, backslashes.
    fn tricky_text() -> BoxedStrategy<Value> {
        prop_oneof![
            3 => r"[a-z |`*#\\\n\r-]{0,12}".prop_map(Value::from),
            1 => any::<String>().prop_map(Value::from),
        ]
        .boxed()
    }

    /// Any JSON at all.
    fn any_json() -> BoxedStrategy<Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON numbers are finite", |f| f.is_finite())
                .prop_map(Value::from),
            tricky_text(),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
        .boxed()
    }

    /// A field's value: mostly text or a plausible number, sometimes anything.
    fn field() -> BoxedStrategy<Value> {
        prop_oneof![
            4 => tricky_text(),
            2 => (0..2_000_000_000_000_i64).prop_map(Value::from),
            1 => any_json(),
        ]
        .boxed()
    }

    /// An object with each of `keys` present (from `value`) or missing.
    fn object_of(
        keys: &'static [&'static str],
        value: BoxedStrategy<Value>,
    ) -> BoxedStrategy<Value> {
        proptest::collection::vec(proptest::option::weighted(0.8, value), keys.len())
            .prop_map(move |values| {
                let present = keys.iter().zip(values);
                Value::Object(
                    present
                        .filter_map(|(key, v)| Some(((*key).to_string(), v?)))
                        .collect(),
                )
            })
            .boxed()
    }

    /// With probability 0.8 `map[key] = value` (`map` being an object), else nothing.
    fn with(
        map: BoxedStrategy<Value>,
        key: &'static str,
        value: BoxedStrategy<Value>,
    ) -> BoxedStrategy<Value> {
        (map, proptest::option::weighted(0.8, value))
            .prop_map(move |(mut map, value)| {
                if let (Value::Object(fields), Some(value)) = (&mut map, value) {
                    fields.insert(key.to_string(), value);
                }
                map
            })
            .boxed()
    }

    /// `data` shaped like what the control plane writes, with any key missing and any value
    /// possibly of another type.
    fn incident_data() -> BoxedStrategy<Value> {
        let measurement = object_of(&["at", "phase", "value", "message"], field());
        let metric = with(
            object_of(
                &["template", "name", "phase", "count", "failed", "message"],
                field(),
            ),
            "measurements",
            proptest::collection::vec(measurement, 0..4)
                .prop_map(Value::Array)
                .boxed(),
        );
        let analysis = with(
            with(
                object_of(&["kind", "phase", "message"], field()),
                "metrics",
                proptest::collection::vec(metric, 0..4)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
            "evidence",
            any_json(),
        );
        let data = object_of(
            &[
                "rolloutStarted",
                "canaryRoute",
                "baselineRoute",
                "detectedAfterMs",
                "actor",
            ],
            field(),
        );
        prop_oneof![
            8 => with(data, "analysis", analysis),
            1 => any_json(),
        ]
        .boxed()
    }

    /// Pipes that end a cell: not escaped with a backslash.
    fn cell_borders(line: &str) -> usize {
        let bytes = line.as_bytes();
        (0..bytes.len())
            .filter(|&i| bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\'))
            .count()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever `data` holds, the document renders, keeps its title and summary, and
        /// every table row has exactly the columns of its header.
        #[test]
        fn any_data_renders_into_well_formed_tables(
            data in incident_data(),
            reason in any::<String>(),
        ) {
            let mut row = incident(data);
            row.reason = reason;
            let doc = render(&row, &timeline());
            prop_assert!(doc.starts_with("# Incident 7: web, rollout 3\n"));
            prop_assert!(doc.contains("\n- **Reason:**"));
            prop_assert!(doc.contains("| ramp | Aborted |"));
            let mut header_borders = None;
            for line in doc.lines() {
                if !line.starts_with('|') {
                    header_borders = None;
                    continue;
                }
                let borders = cell_borders(line);
                match header_borders {
                    None => header_borders = Some(borders),
                    Some(expected) => prop_assert_eq!(borders, expected, "{}", line),
                }
            }
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(-5), "0 ms");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(8_400), "8.4 s");
        assert_eq!(duration(125_000), "2 min 5 s");
        assert_eq!(duration(12_000_000), "3 h 20 min");
    }
}
