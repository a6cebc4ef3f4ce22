//! One run's request stream, generated lazily tick by tick so that a run never holds more
//! than a tick's requests: Poisson arrivals at the scenario's total rate, each request sent to
//! the canary with probability `canary_weight`, failing with its side's error rate at that
//! instant, and taking a log-normal time around its side's median at that instant.

use crate::rng::Rng;
use crate::scenario::{LATENCY_SIGMA, Scenario};

/// The finest time step of the benchmark: judges see time advance in ticks of 100 ms.
pub(crate) const TICKS_PER_SECOND: u32 = 10;

/// The time at the end of tick `tick`, in seconds.
pub(crate) fn tick_end_seconds(tick: u32) -> f64 {
    f64::from(tick + 1) / f64::from(TICKS_PER_SECOND)
}

/// One completed request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Request {
    /// Served by the canary (else by the baseline).
    pub(crate) canary: bool,
    /// Failed.
    pub(crate) error: bool,
    /// Time taken.
    pub(crate) latency_seconds: f64,
}

/// A run's requests in arrival order.
#[derive(Debug)]
pub(crate) struct Stream {
    scenario: Scenario,
    rng: Rng,
    rate: f64,
    canary_weight: f64,
    next_arrival: f64,
}

impl Stream {
    /// The stream of `scenario` at `rate` requests per second, determined by `seed`.
    pub(crate) fn new(scenario: &Scenario, rate: f64, canary_weight: f64, seed: u64) -> Stream {
        let mut rng = Rng::new(seed);
        let next_arrival = rng.exponential(rate);
        Stream {
            scenario: *scenario,
            rng,
            rate,
            canary_weight,
            next_arrival,
        }
    }

    /// Replaces `out` with the requests of tick `tick` (those arriving before its end).
    pub(crate) fn next_tick(&mut self, tick: u32, out: &mut Vec<Request>) {
        out.clear();
        let tick_end = tick_end_seconds(tick);
        while self.next_arrival < tick_end {
            let t = self.next_arrival;
            out.push(self.request_at(t));
            self.next_arrival += self.rng.exponential(self.rate);
        }
    }

    fn request_at(&mut self, t: f64) -> Request {
        let canary = self.rng.bernoulli(self.canary_weight);
        let side = if canary {
            &self.scenario.canary
        } else {
            &self.scenario.baseline
        };
        let (error_rate, median) = self.scenario.state_at(side, t);
        let error = self.rng.bernoulli(error_rate);
        let latency_seconds = median * (LATENCY_SIGMA * self.rng.normal()).exp();
        Request {
            canary,
            error,
            latency_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::by_name;

    /// Every request of `ticks` ticks.
    fn collect(scenario: &str, rate: f64, ticks: u32, seed: u64) -> Vec<Request> {
        let mut stream = Stream::new(by_name(scenario).unwrap(), rate, 0.1, seed);
        let mut all = Vec::new();
        let mut tick_requests = Vec::new();
        for tick in 0..ticks {
            stream.next_tick(tick, &mut tick_requests);
            all.extend_from_slice(&tick_requests);
        }
        all
    }

    fn median(mut xs: Vec<f64>) -> f64 {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    }

    #[test]
    fn the_same_seed_gives_the_same_requests() {
        let a = collect("errors_1_to_5", 200.0, 600, 42);
        assert_eq!(a, collect("errors_1_to_5", 200.0, 600, 42));
        assert_ne!(a, collect("errors_1_to_5", 200.0, 600, 43));
    }

    #[test]
    fn traffic_split_error_rates_and_medians_match_the_scenario() {
        // 1000 s at 2000 req/s: ~200k canary and ~1.8M baseline requests.
        let requests = collect("errors_1_to_5", 2000.0, 10_000, 1);
        let (canary, baseline): (Vec<Request>, Vec<Request>) =
            requests.iter().partition(|r| r.canary);
        let total = requests.len() as f64;
        assert!(
            (total / 1000.0 - 2000.0).abs() < 20.0,
            "rate {}",
            total / 1000.0
        );
        let weight = canary.len() as f64 / total;
        assert!((weight - 0.1).abs() < 0.002, "weight {weight}");

        let error_rate =
            |side: &[Request]| side.iter().filter(|r| r.error).count() as f64 / side.len() as f64;
        assert!((error_rate(&canary) - 0.05).abs() < 0.002);
        assert!((error_rate(&baseline) - 0.01).abs() < 0.0005);

        for side in [&canary, &baseline] {
            let m = median(side.iter().map(|r| r.latency_seconds).collect());
            assert!((m - 0.050).abs() < 0.001, "median {m}");
        }
        let logs: Vec<f64> = canary.iter().map(|r| r.latency_seconds.ln()).collect();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        let sd = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
        assert!((sd - 0.5).abs() < 0.01, "sigma {sd}");
    }

    #[test]
    fn a_slower_canary_has_the_higher_median() {
        let requests = collect("latency_plus_50", 2000.0, 3000, 5);
        let side_median = |canary: bool| {
            median(
                requests
                    .iter()
                    .filter(|r| r.canary == canary)
                    .map(|r| r.latency_seconds)
                    .collect(),
            )
        };
        assert!((side_median(true) - 0.075).abs() < 0.002);
        assert!((side_median(false) - 0.050).abs() < 0.001);
    }

    #[test]
    fn requests_fall_in_their_tick() {
        let scenario = by_name("aa").unwrap();
        let mut stream = Stream::new(scenario, 200.0, 0.1, 9);
        let mut out = Vec::new();
        let mut total = 0;
        for tick in 0..100 {
            stream.next_tick(tick, &mut out);
            total += out.len();
        }
        // 10 s at 200 req/s; Poisson sd ~ 45.
        assert!((1800..=2200).contains(&total), "{total}");
    }
}
