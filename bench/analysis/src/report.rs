//! The benchmark's outputs: the JSON document and the table printed for people, plus the
//! headline comparing ours with the best anchor at a matched false-alarm rate.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::judges::{ANCHORS, LINEUP, ORACLE, OURS};
use crate::scenario::{self, Kind};
use crate::stats::Summary;

/// Judge name -> scenario name -> summary.
pub(crate) type Summaries = BTreeMap<&'static str, BTreeMap<&'static str, Summary>>;

/// Calibrated thresholds of one Argo-style judge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct ThresholdsReport {
    /// Seconds between measurements (and window of each).
    pub(crate) interval_s: u32,
    /// Fails when the canary's error rate over the window is above this.
    pub(crate) max_error_rate: f64,
    /// Fails when the canary's p99 latency over the window is above this.
    pub(crate) max_p99_s: f64,
}

/// How the numbers were produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Params {
    /// Total requests per second (scenarios named `low_traffic*` use 5).
    pub(crate) rate: f64,
    /// Chance that a request goes to the canary.
    pub(crate) canary_weight: f64,
    /// Length of a run; a judge that has not alarmed by then did not detect.
    pub(crate) horizon_s: u32,
    /// Runs per A/A-like scenario.
    pub(crate) aa_runs: u32,
    /// Runs per bad scenario.
    pub(crate) bad_runs: u32,
    /// Seed of every stream.
    pub(crate) seed: u64,
    /// The latency model.
    pub(crate) latency: String,
    /// Per Argo-style judge, the thresholds calibrated on the `aa` runs.
    pub(crate) argo_thresholds: BTreeMap<&'static str, ThresholdsReport>,
    /// Method notes that matter for reading the numbers.
    pub(crate) notes: Vec<&'static str>,
}

/// Ours against the best anchor on one bad scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct HeadlineEntry {
    /// The A/A-like scenario (same traffic) whose false-alarm rate qualifies a judge.
    pub(crate) matched_on: &'static str,
    /// Ours: median time to detect.
    pub(crate) ours_p50_s: Option<f64>,
    /// Ours: false-alarm rate on `matched_on`.
    pub(crate) ours_false_alarm_rate: Option<f64>,
    /// The anchor with the lowest median among those within the budget on `matched_on`.
    pub(crate) best_anchor: Option<&'static str>,
    /// Its median time to detect.
    pub(crate) best_anchor_p50_s: Option<f64>,
    /// `best_anchor_p50_s / ours_p50_s`: above 1, ours detects sooner.
    pub(crate) ratio: Option<f64>,
    /// The best anchor's false-alarm rate under the shared drift (which must not alarm
    /// either); `None` when there is no best anchor.
    pub(crate) best_anchor_drift_false_alarm_rate: Option<f64>,
    /// The goal: ours within the budget on `matched_on`, and detecting in at most a third of
    /// the best anchor's median time (or detecting where the anchor's median is never
    /// reached).
    pub(crate) meets_goal: bool,
    /// The yardstick's median time to detect: a test told both sides' true behaviour.
    pub(crate) oracle_p50_s: Option<f64>,
    /// Whether even the yardstick detects in at most a third of the best anchor's median:
    /// when it does not, the scenario's traffic does not hold the information the goal needs.
    pub(crate) goal_within_information: bool,
}

/// Detection time at a matched false-alarm rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Headline {
    /// The budget a judge must meet on A/A runs to be compared.
    pub(crate) matched_false_alarm_rate: f64,
    /// Per bad scenario.
    pub(crate) per_scenario: BTreeMap<&'static str, HeadlineEntry>,
    /// Bad scenarios where the goal is met, of those with a qualifying anchor.
    pub(crate) scenarios_meeting_goal: usize,
    /// Bad scenarios with a qualifying anchor.
    pub(crate) scenarios_compared: usize,
    /// Per judge, the median time to detect over every run of every bad scenario at the
    /// benchmark's own traffic, runs that never alarm counting as infinitely late (`None`
    /// when the median falls on them).
    pub(crate) pooled_p50_s: BTreeMap<&'static str, Option<f64>>,
}

/// Ours must detect at least this many times sooner than the best anchor.
const GOAL_SPEEDUP: f64 = 3.0;

/// The shared-drift scenario: no judge should alarm on it.
const DRIFT: &str = "drift";

/// The whole JSON document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Report {
    /// How the numbers were produced.
    pub(crate) params: Params,
    /// Judge -> scenario -> summary.
    pub(crate) judges: Summaries,
    /// Ours against the anchors.
    pub(crate) headline: Headline,
}

fn lookup(summaries: &Summaries, judge: &str, scenario: &str) -> Option<Summary> {
    summaries.get(judge)?.get(scenario).copied()
}

/// Ours against the best anchor, on each bad scenario, among judges whose false-alarm rate
/// at the same traffic is within `budget`.
pub(crate) fn headline(
    summaries: &Summaries,
    budget: f64,
    pooled_p50_s: BTreeMap<&'static str, Option<f64>>,
) -> Headline {
    let mut per_scenario = BTreeMap::new();
    for scenario in scenario::ALL.iter().filter(|s| s.kind == Kind::Bad) {
        let matched_on = scenario::aa_reference(scenario).name;
        let false_alarm_rate =
            |judge: &str| lookup(summaries, judge, matched_on).and_then(|s| s.false_alarm_rate);
        let p50 =
            |judge: &str| lookup(summaries, judge, scenario.name).and_then(|s| s.detect_p50_s);
        let best_anchor = ANCHORS
            .iter()
            .copied()
            .filter(|anchor| false_alarm_rate(anchor).is_some_and(|rate| rate <= budget))
            .min_by(|a, b| {
                let a = p50(a).unwrap_or(f64::INFINITY);
                let b = p50(b).unwrap_or(f64::INFINITY);
                a.total_cmp(&b)
            });
        let ours_p50_s = p50(OURS);
        let best_anchor_p50_s = best_anchor.and_then(p50);
        let ratio = match (best_anchor_p50_s, ours_p50_s) {
            (Some(anchor), Some(ours)) if ours > 0.0 => Some(anchor / ours),
            _ => None,
        };
        let ours_within_budget = false_alarm_rate(OURS).is_some_and(|rate| rate <= budget);
        let faster = match (ours_p50_s, best_anchor_p50_s) {
            (Some(_), None) => true,
            (Some(ours), Some(anchor)) => anchor >= GOAL_SPEEDUP * ours,
            (None, _) => false,
        };
        let drift_rate = |judge: &str| lookup(summaries, judge, DRIFT)?.false_alarm_rate;
        per_scenario.insert(
            scenario.name,
            HeadlineEntry {
                matched_on,
                ours_p50_s,
                ours_false_alarm_rate: false_alarm_rate(OURS),
                best_anchor,
                best_anchor_p50_s,
                ratio,
                best_anchor_drift_false_alarm_rate: best_anchor.and_then(drift_rate),
                meets_goal: best_anchor.is_some() && ours_within_budget && faster,
                oracle_p50_s: p50(ORACLE),
                goal_within_information: match (p50(ORACLE), best_anchor_p50_s) {
                    (Some(oracle), Some(anchor)) => anchor >= GOAL_SPEEDUP * oracle,
                    (Some(_), None) => true,
                    (None, _) => false,
                },
            },
        );
    }
    let compared: Vec<&HeadlineEntry> = per_scenario
        .values()
        .filter(|e| e.best_anchor.is_some())
        .collect();
    Headline {
        matched_false_alarm_rate: budget,
        scenarios_meeting_goal: compared.iter().filter(|e| e.meets_goal).count(),
        scenarios_compared: compared.len(),
        per_scenario,
        pooled_p50_s,
    }
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |s| format!("{s:.0}"))
}

/// One cell: `FA x%` on A/A-like scenarios, `detected% p50/p90` on bad ones.
fn cell(summary: &Summary) -> String {
    if let Some(rate) = summary.false_alarm_rate {
        return format!("FA {:.1}%", rate * 100.0);
    }
    match summary.detected {
        Some(detected) => format!(
            "{:.0}% {}/{}",
            detected * 100.0,
            seconds(summary.detect_p50_s),
            seconds(summary.detect_p90_s)
        ),
        None => "-".to_owned(),
    }
}

/// The table printed for people: a row per scenario, a column per judge.
pub(crate) fn table(summaries: &Summaries) -> String {
    const SCENARIO_WIDTH: usize = 16;
    let widths: Vec<usize> = LINEUP.iter().map(|j| j.name.len().max(14)).collect();
    let mut out = String::new();
    let _ = write!(out, "{:<SCENARIO_WIDTH$}", "scenario");
    for (judge, width) in LINEUP.iter().zip(&widths) {
        let _ = write!(out, "  {:>width$}", judge.name);
    }
    out.push('\n');
    for scenario in &scenario::ALL {
        let _ = write!(out, "{:<SCENARIO_WIDTH$}", scenario.name);
        for (judge, width) in LINEUP.iter().zip(&widths) {
            let text = lookup(summaries, judge.name, scenario.name)
                .map_or_else(|| "-".to_owned(), |s| cell(&s));
            let _ = write!(out, "  {text:>width$}");
        }
        out.push('\n');
    }
    out.push_str(
        "FA = false-alarm rate over the runs; otherwise detected fraction and p50/p90 seconds \
         to detect (- = not reached within the horizon)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aa(rate: f64) -> Summary {
        Summary {
            runs: 1000,
            false_alarm_rate: Some(rate),
            detected: None,
            detect_p50_s: None,
            detect_p90_s: None,
        }
    }

    fn bad(p50: f64) -> Summary {
        Summary::of(Kind::Bad, &[Some(p50), Some(p50)])
    }

    fn summaries(entries: &[(&'static str, &'static str, Summary)]) -> Summaries {
        let mut out = Summaries::new();
        for &(judge, scenario, summary) in entries {
            out.entry(judge).or_default().insert(scenario, summary);
        }
        out
    }

    #[test]
    fn the_best_anchor_must_meet_the_budget() {
        let s = summaries(&[
            (OURS, "aa", aa(0.004)),
            (OURS, "errors_1_to_5", bad(10.0)),
            ("argo_threshold", "aa", aa(0.01)),
            ("argo_threshold", "errors_1_to_5", bad(60.0)),
            ("kayenta_mwu", "aa", aa(0.03)),
            ("kayenta_mwu", "errors_1_to_5", bad(30.0)),
        ]);
        let h = headline(&s, 0.01, BTreeMap::new());
        let entry = &h.per_scenario["errors_1_to_5"];
        assert_eq!(entry.matched_on, "aa");
        assert_eq!(entry.best_anchor, Some("argo_threshold"));
        assert_eq!(entry.best_anchor_p50_s, Some(60.0));
        assert_eq!(entry.ratio, Some(6.0));
        assert_eq!(entry.ours_false_alarm_rate, Some(0.004));
        assert!(entry.meets_goal, "6x sooner within the budget");
        assert_eq!(h.scenarios_meeting_goal, 1);
    }

    #[test]
    fn the_goal_needs_three_times_sooner_and_ours_within_the_budget() {
        let goal = |ours_p50: f64, ours_fa: f64| {
            let s = summaries(&[
                (OURS, "aa", aa(ours_fa)),
                (OURS, "errors_1_to_2", bad(ours_p50)),
                ("argo_threshold", "aa", aa(0.01)),
                ("argo_threshold", "errors_1_to_2", bad(120.0)),
            ]);
            headline(&s, 0.01, BTreeMap::new()).per_scenario["errors_1_to_2"].meets_goal
        };
        assert!(goal(40.0, 0.004));
        assert!(!goal(41.0, 0.004), "only 2.9x sooner");
        assert!(!goal(10.0, 0.02), "ours over the false-alarm budget");
    }

    #[test]
    fn without_a_qualifying_anchor_there_is_no_ratio() {
        let s = summaries(&[
            (OURS, "low_traffic_aa", aa(0.0)),
            (OURS, "low_traffic", bad(100.0)),
            ("argo_threshold", "aa", aa(0.0)),
            ("argo_threshold", "low_traffic_aa", aa(0.5)),
            ("argo_threshold", "low_traffic", bad(60.0)),
        ]);
        let entry = &headline(&s, 0.01, BTreeMap::new()).per_scenario["low_traffic"];
        assert_eq!(entry.matched_on, "low_traffic_aa");
        assert_eq!(entry.best_anchor, None);
        assert_eq!(entry.ratio, None);
    }

    #[test]
    fn the_table_shows_rates_and_times() {
        let s = summaries(&[
            (OURS, "aa", aa(0.004)),
            (
                OURS,
                "errors_1_to_5",
                Summary::of(Kind::Bad, &[Some(9.0), Some(14.0), None]),
            ),
        ]);
        let text = table(&s);
        assert!(text.contains("FA 0.4%"), "{text}");
        assert!(text.contains("67% 14/-"), "{text}");
    }
}
