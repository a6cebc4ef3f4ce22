//! Turning rounds of measurements into the published figures: medians per evaluator and class,
//! Ramp's speed ratio against each reference evaluator, the results file and a table.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::compare::Mismatches;
use crate::grpc::GrpcResults;
use crate::ofrep::OfrepResults;
use crate::propagation::PropagationResults;
use crate::workload::{FlagClass, PerClass};

/// How many times faster than the JavaScript reference Ramp aims to be on every class.
pub(crate) const GOAL_RATIO_VS_JS: f64 = 3.0;

/// OFREP evaluations per second Ramp's server aims to sustain at the benchmark's concurrency.
pub(crate) const GOAL_OFREP_RPS: f64 = 50_000.0;

/// The p99 latency (milliseconds) it aims to stay under meanwhile.
pub(crate) const GOAL_OFREP_P99_MS: f64 = 2.0;

/// The 99th-percentile time (milliseconds) from a flag-file edit until both an `EventStream`
/// and a `SyncFlags` subscriber have it, which it aims to stay under with no edit missed.
pub(crate) const GOAL_PROPAGATION_P99_MS: f64 = 10.0;

/// One evaluator's measurements over all rounds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EvaluatorSummary {
    pub(crate) evaluator: String,
    pub(crate) version: String,
    pub(crate) runtime: String,
    /// Median evaluations per second per class.
    pub(crate) static_eps: f64,
    pub(crate) rule_eps: f64,
    pub(crate) fractional_eps: f64,
    /// Every round's figures, in round order.
    pub(crate) rounds: Vec<PerClass<f64>>,
}

impl EvaluatorSummary {
    pub(crate) fn new(
        evaluator: String,
        version: String,
        runtime: String,
        rounds: Vec<PerClass<f64>>,
    ) -> EvaluatorSummary {
        let medians = PerClass::from_fn(|class| {
            let values: Vec<f64> = rounds.iter().map(|round| *round.get(class)).collect();
            median(&values).unwrap_or(0.0)
        });
        EvaluatorSummary {
            evaluator,
            version,
            runtime,
            static_eps: medians.static_,
            rule_eps: medians.rule,
            fractional_eps: medians.fractional,
            rounds,
        }
    }

    pub(crate) fn rate(&self, class: FlagClass) -> f64 {
        match class {
            FlagClass::Static => self.static_eps,
            FlagClass::Rule => self.rule_eps,
            FlagClass::Fractional => self.fractional_eps,
        }
    }
}

/// The middle value (mean of the two middle ones for an even count); `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// How many times faster `ours` is than `theirs`; `None` when there is no baseline figure.
pub(crate) fn ratio(ours: f64, theirs: Option<f64>) -> Option<f64> {
    theirs
        .filter(|rate| *rate > 0.0)
        .map(|rate| round_to(ours / rate, 3))
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Everything the results file holds besides the computed ratios.
#[derive(Debug)]
pub(crate) struct Results<'a> {
    pub(crate) params: Value,
    pub(crate) rust: &'a EvaluatorSummary,
    pub(crate) js: Option<&'a EvaluatorSummary>,
    pub(crate) python: Option<&'a EvaluatorSummary>,
    /// Per reference evaluator (`js`, `python`), per comparison name, its mismatches.
    pub(crate) mismatches: Map<String, Value>,
    /// The OFREP load phase, unless it was left out.
    pub(crate) ofrep: Option<&'a OfrepResults>,
    /// The gRPC load phase, unless it was left out.
    pub(crate) grpc: Option<&'a GrpcResults>,
    /// The propagation phase, unless it was left out.
    pub(crate) propagation: Option<&'a PropagationResults>,
    pub(crate) notes: Vec<String>,
}

impl Results<'_> {
    /// The results document (`target/bench-results/flags.json`).
    pub(crate) fn to_json(&self) -> Value {
        let mut document = Map::new();
        document.insert("params".to_owned(), self.params.clone());
        document.insert("rust".to_owned(), json!(self.rust));
        document.insert("js".to_owned(), json!(self.js));
        document.insert("python".to_owned(), json!(self.python));
        for (prefix, baseline) in [("js", self.js), ("py", self.python)] {
            for class in FlagClass::ALL {
                let value = ratio(
                    self.rust.rate(class),
                    baseline.map(|summary| summary.rate(class)),
                );
                document.insert(
                    format!("eval_ratio_vs_{prefix}_{}", class.name()),
                    json!(value),
                );
            }
        }
        let mixed = self.ofrep.map(|ofrep| ofrep.mixed);
        document.insert(
            "ofrep_rps".to_owned(),
            json!(mixed.map(|figures| figures.rps.round())),
        );
        document.insert(
            "ofrep_p99_ms".to_owned(),
            json!(mixed.map(|figures| round_to(figures.p99_ms, 3))),
        );
        document.insert("ofrep".to_owned(), json!(self.ofrep));
        let grpc = self.grpc.map(|grpc| grpc.mixed);
        document.insert(
            "grpc_rps".to_owned(),
            json!(grpc.map(|figures| figures.rps.round())),
        );
        document.insert(
            "grpc_p99_ms".to_owned(),
            json!(grpc.and_then(|figures| figures.latency.p99_ms)),
        );
        document.insert("grpc".to_owned(), json!(self.grpc));
        document.insert(
            "propagation_p99_ms".to_owned(),
            json!(self.propagation.and_then(|figures| figures.p99_ms)),
        );
        document.insert(
            "propagation_p50_ms".to_owned(),
            json!(self.propagation.and_then(|figures| figures.p50_ms)),
        );
        document.insert("propagation".to_owned(), json!(self.propagation));
        document.insert(
            "mismatches".to_owned(),
            Value::Object(self.mismatches.clone()),
        );
        document.insert("notes".to_owned(), json!(self.notes));
        Value::Object(document)
    }

    /// A human-readable table of medians and ratios.
    pub(crate) fn table(&self) -> String {
        let mut lines = vec![format!(
            "{:<11} {:>14} {:>14} {:>14} {:>8} {:>8}  goal {GOAL_RATIO_VS_JS}x js",
            "class", "ramp eval/s", "js eval/s", "python eval/s", "vs js", "vs py"
        )];
        for class in FlagClass::ALL {
            let js = self.js.map(|summary| summary.rate(class));
            let python = self.python.map(|summary| summary.rate(class));
            let vs_js = ratio(self.rust.rate(class), js);
            let vs_py = ratio(self.rust.rate(class), python);
            let goal = match vs_js {
                Some(value) if value >= GOAL_RATIO_VS_JS => "met",
                Some(_) => "MISSED",
                None => "-",
            };
            lines.push(format!(
                "{:<11} {:>14} {:>14} {:>14} {:>8} {:>8}  {goal}",
                class.name(),
                format_rate(Some(self.rust.rate(class))),
                format_rate(js),
                format_rate(python),
                format_ratio(vs_js),
                format_ratio(vs_py),
            ));
        }
        if let Some(ofrep) = self.ofrep {
            lines.push(format!(
                "OFREP over {} connections: {} req/s, p50 {:.2} ms, p99 {:.2} ms  goal {} req/s, \
                 p99 < {} ms: {}",
                ofrep.connections,
                format_rate(Some(ofrep.mixed.rps)),
                ofrep.mixed.p50_ms,
                ofrep.mixed.p99_ms,
                format_rate(Some(GOAL_OFREP_RPS)),
                GOAL_OFREP_P99_MS,
                if ofrep.mixed.rps >= GOAL_OFREP_RPS && ofrep.mixed.p99_ms < GOAL_OFREP_P99_MS {
                    "met"
                } else {
                    "MISSED"
                }
            ));
        }
        if let Some(grpc) = self.grpc {
            lines.push(format!(
                "gRPC over {} channels x {} in flight: {} req/s, p50 {} ms, p99 {} ms",
                grpc.channels,
                grpc.in_flight_per_channel,
                format_rate(Some(grpc.mixed.rps)),
                format_millis(grpc.mixed.latency.p50_ms),
                format_millis(grpc.mixed.latency.p99_ms),
            ));
        }
        if let Some(propagation) = self.propagation {
            let met = propagation.misses() == 0
                && propagation
                    .p99_ms
                    .is_some_and(|p99| p99 < GOAL_PROPAGATION_P99_MS);
            lines.push(format!(
                "propagation over {} edits: p50 {} ms, p99 {} ms (EventStream p99 {} ms, \
                 SyncFlags p99 {} ms), {} missed  goal p99 < {} ms: {}",
                propagation.edits,
                format_millis(propagation.p50_ms),
                format_millis(propagation.p99_ms),
                format_millis(propagation.event_stream.latency.p99_ms),
                format_millis(propagation.sync_flags.latency.p99_ms),
                propagation.misses(),
                GOAL_PROPAGATION_P99_MS,
                if met { "met" } else { "MISSED" }
            ));
        }
        lines.join("\n")
    }
}

/// Per-class mismatches as `{"static": .., "rule": .., "fractional": ..}`.
pub(crate) fn mismatches_json(per_class: &PerClass<Mismatches>) -> Map<String, Value> {
    FlagClass::ALL
        .iter()
        .map(|class| (class.name().to_owned(), json!(per_class.get(*class))))
        .collect()
}

fn format_rate(rate: Option<f64>) -> String {
    match rate {
        Some(rate) if rate >= 1e6 => format!("{:.2} M", rate / 1e6),
        Some(rate) if rate >= 1e3 => format!("{:.1} k", rate / 1e3),
        Some(rate) => format!("{rate:.0}"),
        None => "-".to_owned(),
    }
}

fn format_millis(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.2}"))
}

fn format_ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.2}x"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc_load::GrpcFigures;
    use crate::ofrep_load::LoadFigures;
    use crate::propagation::SubscriberFigures;
    use crate::stats::LatencySummary;
    use proptest::prelude::*;

    fn summary(rounds: Vec<PerClass<f64>>) -> EvaluatorSummary {
        EvaluatorSummary::new("e".into(), "1".into(), "r".into(), rounds)
    }

    fn rates(static_: f64, rule: f64, fractional: f64) -> PerClass<f64> {
        PerClass {
            static_,
            rule,
            fractional,
        }
    }

    #[test]
    fn medians_are_taken_per_class() {
        let result = summary(vec![
            rates(3.0, 10.0, 1.0),
            rates(1.0, 30.0, 2.0),
            rates(2.0, 20.0, 9.0),
        ]);
        assert_eq!(
            (result.static_eps, result.rule_eps, result.fractional_eps),
            (2.0, 20.0, 2.0)
        );
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn results_carry_ratios_and_null_placeholders() {
        let rust = summary(vec![rates(90.0, 60.0, 30.0)]);
        let js = summary(vec![rates(30.0, 20.0, 20.0)]);
        let results = Results {
            params: json!({}),
            rust: &rust,
            js: Some(&js),
            python: None,
            mismatches: Map::new(),
            ofrep: None,
            grpc: None,
            propagation: None,
            notes: vec!["n".into()],
        };
        let document = results.to_json();
        assert_eq!(document["eval_ratio_vs_js_static"], json!(3.0));
        assert_eq!(document["eval_ratio_vs_js_fractional"], json!(1.5));
        assert_eq!(document["eval_ratio_vs_py_rule"], Value::Null);
        assert_eq!(document["ofrep_rps"], Value::Null);
        assert_eq!(document["grpc_rps"], Value::Null);
        assert_eq!(document["js"]["rule_eps"], json!(20.0));
        let table = results.table();
        assert!(table.contains("MISSED"), "{table}");
        assert!(table.contains("met"), "{table}");
    }

    #[test]
    fn ofrep_figures_are_published_with_their_goal() {
        let rust = summary(vec![rates(90.0, 60.0, 30.0)]);
        let figures = |rps, p99_ms| LoadFigures {
            rps,
            p50_ms: 0.5,
            p99_ms,
            max_ms: 4.0,
            requests: 1_000,
            failures: 0,
        };
        let ofrep = |mixed| OfrepResults {
            connections: 64,
            wrk_threads: 2,
            server_threads: 2,
            warmup_secs: 1,
            duration_secs: 5,
            mixed,
            per_class: None,
        };
        let fast = ofrep(figures(61_234.4, 1.23456));
        let results = Results {
            params: json!({}),
            rust: &rust,
            js: None,
            python: None,
            mismatches: Map::new(),
            ofrep: Some(&fast),
            grpc: None,
            propagation: None,
            notes: Vec::new(),
        };
        let document = results.to_json();
        assert_eq!(document["ofrep_rps"], json!(61_234.0));
        assert_eq!(document["ofrep_p99_ms"], json!(1.235));
        assert_eq!(document["ofrep"]["connections"], json!(64));
        assert_eq!(document["propagation_p99_ms"], Value::Null);
        assert!(results.table().lines().last().unwrap().ends_with("met"));
        let slow = ofrep(figures(61_234.4, 2.5));
        let results = Results {
            ofrep: Some(&slow),
            ..results
        };
        assert!(results.table().ends_with("MISSED"));
    }

    fn latency(samples: u64, p50: f64, p99: f64) -> LatencySummary {
        LatencySummary {
            samples,
            p50_ms: Some(p50),
            p99_ms: Some(p99),
            max_ms: Some(p99 * 2.0),
        }
    }

    #[test]
    fn grpc_and_propagation_figures_are_published_with_the_propagation_goal() {
        let rust = summary(vec![rates(90.0, 60.0, 30.0)]);
        let figures = GrpcFigures {
            rps: 42_345.6,
            latency: latency(211_728, 1.1, 2.345),
        };
        let grpc = GrpcResults {
            channels: 4,
            in_flight_per_channel: 16,
            loader_threads: 1,
            server_threads: 1,
            warmup_secs: 1.0,
            duration_secs: 5.0,
            mixed: figures,
            per_class: PerClass::from_fn(|_| figures),
        };
        let subscriber = |p99, misses| SubscriberFigures {
            misses,
            latency: latency(200, 1.0, p99),
        };
        let propagation = PropagationResults {
            edits: 200,
            spacing_ms: 20.0,
            timeout_ms: 2_000.0,
            watch_interval_ms: 200.0,
            p50_ms: Some(1.5),
            p99_ms: Some(4.25),
            event_stream: subscriber(4.25, 0),
            sync_flags: subscriber(3.0, 0),
        };
        let results_with = |propagation| Results {
            params: json!({}),
            rust: &rust,
            js: None,
            python: None,
            mismatches: Map::new(),
            ofrep: None,
            grpc: Some(&grpc),
            propagation: Some(propagation),
            notes: Vec::new(),
        };
        let results = results_with(&propagation);
        let document = results.to_json();
        assert_eq!(document["grpc_rps"], json!(42_346.0));
        assert_eq!(document["grpc_p99_ms"], json!(2.345));
        assert_eq!(
            document["grpc"]["per_class"]["rule"]["samples"],
            json!(211_728)
        );
        assert_eq!(document["propagation_p99_ms"], json!(4.25));
        assert_eq!(document["propagation_p50_ms"], json!(1.5));
        assert_eq!(document["propagation"]["sync_flags"]["p99_ms"], json!(3.0));
        assert_eq!(document["propagation"]["event_stream"]["misses"], json!(0));
        let table = results.table();
        assert!(table.contains("42.3 k req/s"), "{table}");
        assert!(table.ends_with("met"), "{table}");

        let missed_one = PropagationResults {
            sync_flags: subscriber(3.0, 1),
            ..propagation.clone()
        };
        let slow = PropagationResults {
            p99_ms: Some(12.0),
            ..propagation.clone()
        };
        for failing in [&missed_one, &slow] {
            let table = results_with(failing).table();
            assert!(table.ends_with("MISSED"), "{table}");
        }
    }

    proptest! {
        #[test]
        fn median_lies_within_the_values(values in proptest::collection::vec(0.0f64..1e9, 1..20)) {
            let middle = median(&values).unwrap();
            let low = values.iter().copied().fold(f64::INFINITY, f64::min);
            let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(low <= middle && middle <= high);
        }

        #[test]
        fn ratio_is_absent_without_a_positive_baseline(ours in 0.0f64..1e9) {
            prop_assert_eq!(ratio(ours, None), None);
            prop_assert_eq!(ratio(ours, Some(0.0)), None);
        }
    }
}
