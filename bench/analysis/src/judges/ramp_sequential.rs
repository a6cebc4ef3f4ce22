//! Ramp's sequential judge at its defaults, given each side's requests per slice (as the
//! control plane hands them over) and checked after every slice; it alarms at the end of the
//! first slice after which it has failed.

use ramp_analysis::sequential::SequentialJudge;
use ramp_analysis::{SequentialSettings, SliceTraffic};

use crate::stream::Request;

/// The judge's state over one run.
#[derive(Debug)]
pub(crate) struct RampJudge {
    judge: SequentialJudge,
    slice_ticks: u32,
    canary: SliceTraffic,
    baseline: SliceTraffic,
}

impl RampJudge {
    /// A default-settings judge fed both sides' traffic every `slice_ticks` ticks.
    pub(crate) fn new(slice_ticks: u32) -> RampJudge {
        RampJudge {
            judge: SequentialJudge::new(SequentialSettings::default()),
            slice_ticks,
            canary: SliceTraffic::default(),
            baseline: SliceTraffic::default(),
        }
    }

    /// Takes tick `tick`'s requests; true when the judge has failed by the tick's end.
    pub(crate) fn observe_tick(&mut self, tick: u32, requests: &[Request]) -> bool {
        for request in requests {
            let side = if request.canary {
                &mut self.canary
            } else {
                &mut self.baseline
            };
            side.record(request.latency_seconds, request.error);
        }
        if !(tick + 1).is_multiple_of(self.slice_ticks) {
            return false;
        }
        self.judge.observe_traffic(&self.canary, &self.baseline);
        self.canary = SliceTraffic::default();
        self.baseline = SliceTraffic::default();
        self.judge.failed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::by_name;
    use crate::stream::Stream;

    fn seconds_until_failure(scenario: &str, seed: u64) -> Option<f64> {
        let mut stream = Stream::new(by_name(scenario).unwrap(), 200.0, 0.1, seed);
        let mut judge = RampJudge::new(10);
        let mut requests = Vec::new();
        (0..5 * 600).find_map(|tick| {
            stream.next_tick(tick, &mut requests);
            judge
                .observe_tick(tick, &requests)
                .then(|| crate::stream::tick_end_seconds(tick))
        })
    }

    #[test]
    fn fails_a_canary_with_five_times_the_errors_within_minutes() {
        let at = seconds_until_failure("errors_1_to_5", 11).expect("never failed");
        assert!(at.fract() == 0.0, "alarms fall on slice ends: {at}");
    }

    #[test]
    fn passes_an_identical_canary() {
        assert_eq!(seconds_until_failure("aa", 11), None);
    }
}
