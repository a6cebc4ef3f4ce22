//! Measurements taken from the router's own metrics: builtin queries, and the samples the
//! Mann-Whitney judge compares.

use std::collections::BTreeMap;

use ramp_analysis::run::{MeasurementPhase, Outcome};
use ramp_analysis::{BuiltinMetric, BuiltinQuery, MannWhitneySettings, Measure, Target, kayenta};
use ramp_metrics::RevisionSnapshot;
use ramp_rollout::Millis;
use serde_json::json;

use super::evidence::{BASELINE, CANARY, Evidence, STABLE};

/// Seconds of traffic behind one error-rate point of the Mann-Whitney judge.
const POINT_SECONDS: u64 = 10;

/// At most this many latency values per side go into one Mann-Whitney test (the histogram is
/// thinned proportionally beyond it).
const MAX_LATENCY_SAMPLES: u64 = 20_000;

/// A builtin query over the evidence so far.
pub(super) fn measure(q: &BuiltinQuery, evidence: &Evidence, now: Millis) -> Outcome {
    let side = match q.target {
        Target::Canary => CANARY,
        Target::Baseline => BASELINE,
        Target::Stable => STABLE,
    };
    let (window, seconds) = evidence.window(side, now, q.window);
    let route = &evidence.routes[side];
    let total = window.total();
    let no_requests = || Outcome::Error(format!("no requests to {route} in the window yet"));
    let value = match q.metric {
        BuiltinMetric::Requests => total as f64,
        BuiltinMetric::RequestRate => total as f64 / seconds,
        BuiltinMetric::ErrorRate => match window.error_rate() {
            Some(rate) => rate,
            None => return no_requests(),
        },
        BuiltinMetric::SuccessRate => match window.error_rate() {
            Some(rate) => 1.0 - rate,
            None => return no_requests(),
        },
        BuiltinMetric::Latency(quantile) => match window.latency.quantile_micros(quantile) {
            Some(us) => us as f64 / 1e6,
            None => return no_requests(),
        },
    };
    Outcome::Value(json!(value))
}

/// The Mann-Whitney judge over the traffic since `since`.
pub(super) fn compare(
    settings: &MannWhitneySettings,
    evidence: &Evidence,
    since: Millis,
) -> Outcome {
    let samples: Vec<(Vec<f64>, Vec<f64>)> = settings
        .metrics
        .iter()
        .map(|m| match m.measure {
            Measure::ErrorRate => (
                error_rates(evidence, CANARY, since),
                error_rates(evidence, BASELINE, since),
            ),
            Measure::Latency => (
                latencies(evidence, CANARY, since),
                latencies(evidence, BASELINE, since),
            ),
        })
        .collect();
    let score = kayenta::judge(settings, &samples);
    let phase = match score.class {
        kayenta::ScoreClass::Pass => MeasurementPhase::Successful,
        kayenta::ScoreClass::Marginal => MeasurementPhase::Inconclusive,
        kayenta::ScoreClass::Fail => MeasurementPhase::Failed,
    };
    let message = format!("score {:.0}: {}", score.score, score.reason);
    Outcome::Judged {
        phase,
        value: serde_json::to_value(&score).unwrap_or(json!(score.score)),
        message,
    }
}

/// Error rates of `POINT_SECONDS` periods that had requests.
fn error_rates(evidence: &Evidence, side: usize, since: Millis) -> Vec<f64> {
    let mut points: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for slice in evidence.slices_since(since) {
        let s = &slice.sides[side];
        let point = points.entry(slice.second / POINT_SECONDS).or_default();
        point.0 += s.total();
        point.1 += s.errors_5xx();
    }
    points
        .values()
        .filter(|(requests, _)| *requests > 0)
        .map(|&(requests, errors)| errors as f64 / requests as f64)
        .collect()
}

/// Request latencies in seconds (bucket midpoints), thinned to at most
/// `MAX_LATENCY_SAMPLES`.
fn latencies(evidence: &Evidence, side: usize, since: Millis) -> Vec<f64> {
    let mut merged = RevisionSnapshot::default();
    for slice in evidence.slices_since(since) {
        merged.merge(&slice.sides[side]);
    }
    let count = merged.latency.count();
    let keep = |n: u64| {
        if count <= MAX_LATENCY_SAMPLES {
            n
        } else {
            (n as f64 * MAX_LATENCY_SAMPLES as f64 / count as f64).round() as u64
        }
    };
    let mut values = Vec::new();
    for (micros, n) in merged.latency.weighted_values() {
        let n = keep(n);
        values.extend(std::iter::repeat_n(micros / 1e6, n as usize));
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn served(requests: u64, errors: u64, micros: u64) -> RevisionSnapshot {
        let mut s = RevisionSnapshot::default();
        s.requests[1] = requests - errors;
        s.requests[4] = errors;
        for _ in 0..requests {
            s.latency.record_micros(micros);
        }
        s
    }

    /// 30 seconds where the canary fails `canary_errors` of 10 requests a second.
    fn evidence(canary_errors: u64) -> Evidence {
        let mut e = Evidence::new(["r2".into(), "r1".into(), "r1".into()]);
        let mut cum: [RevisionSnapshot; 3] = Default::default();
        e.update(0, cum.clone());
        for second in 1..=30u64 {
            cum[0].merge(&served(10, canary_errors, 40_000));
            cum[1].merge(&served(90, 0, 20_000));
            cum[2].merge(&served(90, 0, 20_000));
            e.update(second * 1000, cum.clone());
        }
        e
    }

    fn query(metric: BuiltinMetric, target: Target) -> BuiltinQuery {
        BuiltinQuery {
            metric,
            target,
            window: Some(Duration::from_secs(10)),
        }
    }

    fn value(o: Outcome) -> f64 {
        match o {
            Outcome::Value(v) => v.as_f64().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn builtin_queries_read_the_right_side_and_window() {
        let e = evidence(1);
        let now = 30_000;
        let rate = value(measure(
            &query(BuiltinMetric::ErrorRate, Target::Canary),
            &e,
            now,
        ));
        assert!((rate - 0.1).abs() < 1e-9);
        let rate = value(measure(
            &query(BuiltinMetric::ErrorRate, Target::Baseline),
            &e,
            now,
        ));
        assert_eq!(rate, 0.0);
        let rps = value(measure(
            &query(BuiltinMetric::RequestRate, Target::Stable),
            &e,
            now,
        ));
        assert!((rps - 90.0).abs() < 10.0, "{rps}");
        let p99 = value(measure(
            &query(BuiltinMetric::Latency(0.99), Target::Canary),
            &e,
            now,
        ));
        assert!((0.039..0.043).contains(&p99), "{p99}");
        let ok = value(measure(
            &query(BuiltinMetric::SuccessRate, Target::Canary),
            &e,
            now,
        ));
        assert!((ok - 0.9).abs() < 1e-9);
    }

    #[test]
    fn no_traffic_is_an_error_measurement() {
        let e = Evidence::new(["r2".into(), "r1".into(), "r1".into()]);
        let o = measure(&query(BuiltinMetric::ErrorRate, Target::Canary), &e, 5_000);
        assert!(matches!(o, Outcome::Error(m) if m.contains("r2")));
    }

    #[test]
    fn samples_for_the_comparison_come_per_period_and_per_request() {
        let e = evidence(2);
        let rates = error_rates(&e, CANARY, 0);
        assert!(rates.len() >= 3 && rates.iter().all(|r| (r - 0.2).abs() < 1e-9));
        let lat = latencies(&e, BASELINE, 0);
        assert_eq!(lat.len(), 2700);
        assert!(lat.iter().all(|l| (l - 0.02).abs() < 0.001));
    }
}
