//! A yardstick, not a contender: Wald's sequential probability ratio test on the canary's
//! requests, told at every moment both sides' true error rates and latency distributions.
//! A real judge knows neither: it must estimate the baseline from the baseline's own traffic
//! and cannot know how bad a bad canary is. Among tests with the same error rates, Wald's
//! test needs the fewest requests on average, so a real judge can hardly beat this one: its
//! median time shows what a goal asks of a scenario's traffic.

use crate::scenario::{LATENCY_SIGMA, Scenario};
use crate::stream::{Request, TICKS_PER_SECOND};

/// The oracle's state over one run.
#[derive(Debug)]
pub(crate) struct OracleJudge {
    scenario: Scenario,
    /// Wald's bound for at most this many false alarms: alarm at `ln(1 / rate)`.
    log_threshold: f64,
    /// Cumulative log likelihood ratio of "the canary behaves as it truly does" against "it
    /// behaves as the baseline does".
    log_ratio: f64,
}

impl OracleJudge {
    /// An oracle for `scenario` with at most `false_alarm_rate` false alarms.
    pub(crate) fn new(scenario: &Scenario, false_alarm_rate: f64) -> OracleJudge {
        OracleJudge {
            scenario: *scenario,
            log_threshold: -false_alarm_rate.ln(),
            log_ratio: 0.0,
        }
    }

    /// Takes tick `tick`'s requests; true once the evidence reaches the threshold.
    pub(crate) fn observe_tick(&mut self, tick: u32, requests: &[Request]) -> bool {
        let t = f64::from(tick) / f64::from(TICKS_PER_SECOND);
        let (canary_errors, canary_median) = self.scenario.state_at(&self.scenario.canary, t);
        let (errors, median) = self.scenario.state_at(&self.scenario.baseline, t);
        for request in requests.iter().filter(|r| r.canary) {
            self.log_ratio += error_term(request.error, canary_errors, errors)
                + latency_term(request.latency_seconds, canary_median, median);
        }
        self.log_ratio >= self.log_threshold
    }
}

/// Log likelihood ratio of one request's outcome: error rate `p1` against `p0`.
fn error_term(error: bool, p1: f64, p0: f64) -> f64 {
    if p1 == p0 {
        return 0.0;
    }
    if error {
        (p1 / p0).ln()
    } else {
        ((1.0 - p1) / (1.0 - p0)).ln()
    }
}

/// Log likelihood ratio of one latency: log-normal with median `m1` against `m0`, both with
/// the scenarios' spread.
fn latency_term(seconds: f64, m1: f64, m0: f64) -> f64 {
    if m1 == m0 {
        return 0.0;
    }
    let z = seconds.ln();
    let (d1, d0) = (z - m1.ln(), z - m0.ln());
    (d0 * d0 - d1 * d1) / (2.0 * LATENCY_SIGMA * LATENCY_SIGMA)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::by_name;
    use crate::stream::Stream;

    fn seconds_until_alarm(scenario: &str, seed: u64) -> Option<u32> {
        let scenario = by_name(scenario).unwrap();
        let mut stream = Stream::new(scenario, scenario.rate_or(200.0), 0.1, seed);
        let mut judge = OracleJudge::new(scenario, 0.01);
        let mut requests = Vec::new();
        (0..10 * 900).find(|&tick| {
            stream.next_tick(tick, &mut requests);
            judge.observe_tick(tick, &requests)
        })
    }

    #[test]
    fn an_identical_or_drifting_canary_gives_no_evidence_at_all() {
        for scenario in ["aa", "drift", "low_traffic_aa"] {
            assert_eq!(seconds_until_alarm(scenario, 3), None, "{scenario}");
        }
    }

    #[test]
    fn a_bad_canary_is_caught_about_when_the_information_allows() {
        // 1% -> 5% errors at 20 canary requests a second: about 0.04 nats a request, 4.6
        // needed, so some 115 requests or six seconds on average.
        let mut ticks: Vec<u32> = (0..21)
            .map(|seed| seconds_until_alarm("errors_1_to_5", seed).expect("caught"))
            .collect();
        ticks.sort_unstable();
        let median = f64::from(ticks[10]) / 10.0;
        assert!((3.0..9.0).contains(&median), "{median} s: {ticks:?}");
    }

    #[test]
    fn the_terms_are_log_likelihood_ratios() {
        assert!((error_term(true, 0.05, 0.01) - 5f64.ln()).abs() < 1e-12);
        assert!((error_term(false, 0.05, 0.01) - (0.95f64 / 0.99).ln()).abs() < 1e-12);
        // At the canary's median, the ratio of densities is exp((ln 1.5)^2 / (2 sigma^2)).
        let want = 1.5f64.ln().powi(2) / (2.0 * LATENCY_SIGMA * LATENCY_SIGMA);
        assert!((latency_term(0.075, 0.075, 0.050) - want).abs() < 1e-12);
        assert_eq!(latency_term(0.2, 0.05, 0.05), 0.0);
    }
}
