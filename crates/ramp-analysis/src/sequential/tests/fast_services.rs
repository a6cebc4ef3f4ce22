//! Sub-millisecond services, request by request through `observe_traffic` (and so through
//! the latency floor and the winsorizing): a canary that is new and gets a tenth of the traffic answers a little
//! later than the busy stable instances, and both see scheduling outliers. That is not a
//! regression; doubling a 2 ms latency is.

use super::sim::Rng;
use crate::sequential::{FailedCheck, SequentialJudge};
use crate::{SequentialSettings, SliceTraffic};

/// One side's latencies in seconds: log-normal around `median`, `outliers` of them delayed
/// by 2 to 10 ms (a descheduled thread), plus `cold` extra for the first `cold_requests`.
struct Latencies {
    median: f64,
    outliers: f64,
    cold: f64,
    cold_requests: u64,
}

impl Latencies {
    fn draw(&self, rng: &mut Rng, served_before: u64) -> f64 {
        let mut latency = self.median * (0.3 * rng.normal()).exp();
        if rng.uniform() < self.outliers {
            latency += 0.002 + 0.008 * rng.uniform();
        }
        if served_before < self.cold_requests {
            latency += self.cold;
        }
        latency
    }
}

/// Runs ten minutes of 200 requests a second, a tenth to the canary, in 0.5 s slices;
/// returns the second and check of the first failure.
fn first_failure(
    seed: u64,
    canary: &Latencies,
    baseline: &Latencies,
) -> Option<(f64, FailedCheck)> {
    let mut rng = Rng::new(seed);
    let mut judge = SequentialJudge::new(SequentialSettings::default());
    let mut served = [0u64; 2];
    for slice in 1..=1_200 {
        let mut traffic = [SliceTraffic::default(), SliceTraffic::default()];
        for _ in 0..100 {
            let side = usize::from(rng.uniform() >= 0.1);
            let model = if side == 0 { canary } else { baseline };
            let latency = model.draw(&mut rng, served[side]);
            traffic[side].record(latency, rng.uniform() < 0.01);
            served[side] += 1;
        }
        judge.observe_traffic(&traffic[0], &traffic[1]);
        if let Some(check) = judge.status().failed {
            return Some((f64::from(slice) / 2.0, check));
        }
    }
    None
}

fn stable(median: f64) -> Latencies {
    Latencies {
        median,
        outliers: 0.02,
        cold: 0.0,
        cold_requests: 0,
    }
}

#[test]
fn a_new_lightly_loaded_canary_of_a_fast_service_is_not_failed() {
    // 0.15 ms later than 0.45 ms, and 1.5 ms later still for its first 60 requests.
    let canary = Latencies {
        median: 0.000_6,
        cold: 0.001_5,
        cold_requests: 60,
        ..stable(0.000_6)
    };
    let failures: Vec<_> = (0..20)
        .filter_map(|seed| first_failure(seed, &canary, &stable(0.000_45)))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn a_fast_service_twice_as_slow_is_failed_soon_after_the_warmup() {
    for seed in 0..20 {
        let failure = first_failure(seed, &stable(0.004), &stable(0.002));
        assert!(
            matches!(failure, Some((seconds, FailedCheck::Latency)) if seconds <= 10.0),
            "seed {seed}: {failure:?}"
        );
    }
}
