//! What the router saw of the revisions under analysis: per-second slices of their request
//! metrics (for windows) and totals since the analysis started.

use std::collections::VecDeque;
use std::time::Duration;

use ramp_analysis::Tally;
use ramp_metrics::RevisionSnapshot;
use ramp_rollout::Millis;

/// The sides an analysis reads: the canary, what it is compared with, and the stable stack
/// (the same as the baseline unless the baseline is fresh).
pub(super) const SIDES: usize = 3;
pub(super) const CANARY: usize = 0;
pub(super) const BASELINE: usize = 1;
pub(super) const STABLE: usize = 2;

/// Slices older than this are dropped; a builtin `window` longer than this reads this much.
pub(super) const KEEP: Duration = Duration::from_secs(600);

/// One second of traffic per side.
#[derive(Debug, Clone)]
pub(super) struct Slice {
    /// Seconds since the epoch.
    pub(super) second: u64,
    pub(super) sides: [RevisionSnapshot; SIDES],
}

#[derive(Debug)]
pub(super) struct Evidence {
    /// Router route names of the sides.
    pub(super) routes: [String; SIDES],
    /// The cumulative counters at the last update; `None` before the first.
    last: Option<[RevisionSnapshot; SIDES]>,
    slices: VecDeque<Slice>,
    totals: [RevisionSnapshot; SIDES],
    /// When the canary was first seen serving during this analysis.
    pub(super) first_served: Option<Millis>,
}

impl Evidence {
    pub(super) fn new(routes: [String; SIDES]) -> Evidence {
        Evidence {
            routes,
            last: None,
            slices: VecDeque::new(),
            totals: Default::default(),
            first_served: None,
        }
    }

    /// Takes the router's cumulative counters for each side; returns what each side served
    /// since the previous update. The first update only sets the starting point: traffic
    /// from before the analysis does not count.
    pub(super) fn update(
        &mut self,
        now: Millis,
        counters: [RevisionSnapshot; SIDES],
    ) -> [RevisionSnapshot; SIDES] {
        let deltas: [RevisionSnapshot; SIDES] = match &self.last {
            // A revision that left and rejoined the table restarts its counters; saturating
            // subtraction then yields an empty slice instead of garbage.
            Some(last) => std::array::from_fn(|i| counters[i].saturating_sub(&last[i])),
            None => Default::default(),
        };
        self.last = Some(counters);
        if self.first_served.is_none() && deltas[CANARY].total() > 0 {
            self.first_served = Some(now);
        }
        let second = now / 1000;
        if self.slices.back().is_none_or(|s| s.second != second) {
            self.slices.push_back(Slice {
                second,
                sides: Default::default(),
            });
        }
        let slice = self.slices.back_mut().expect("pushed above");
        for ((side, total), delta) in slice.sides.iter_mut().zip(&mut self.totals).zip(&deltas) {
            side.merge(delta);
            total.merge(delta);
        }
        let oldest = second.saturating_sub(KEEP.as_secs());
        while self.slices.front().is_some_and(|s| s.second < oldest) {
            self.slices.pop_front();
        }
        deltas
    }

    /// One side's traffic over the last `window` (or since the analysis started), and the
    /// seconds that covers.
    pub(super) fn window(
        &self,
        side: usize,
        now: Millis,
        window: Option<Duration>,
    ) -> (RevisionSnapshot, f64) {
        let Some(window) = window else {
            let seconds = self
                .slices
                .front()
                .map_or(0.0, |s| (now as f64 / 1000.0 - s.second as f64).max(1.0));
            return (self.totals[side].clone(), seconds);
        };
        let from = (now / 1000).saturating_sub(window.as_secs().max(1));
        let mut merged = RevisionSnapshot::default();
        for slice in self.slices.iter().filter(|s| s.second >= from) {
            merged.merge(&slice.sides[side]);
        }
        let first = self.slices.front().map_or(from, |s| s.second.max(from));
        let seconds = (now as f64 / 1000.0 - first as f64).clamp(1.0, window.as_secs_f64());
        (merged, seconds)
    }

    /// Slices from `since` on.
    pub(super) fn slices_since(&self, since: Millis) -> impl Iterator<Item = &Slice> {
        let from = since / 1000;
        self.slices.iter().filter(move |s| s.second >= from)
    }

    /// Totals since the analysis started, as tallies.
    pub(super) fn totals(&self) -> [Tally; SIDES] {
        std::array::from_fn(|i| Tally::from_window(&self.totals[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(requests: u64, errors: u64) -> RevisionSnapshot {
        let mut s = RevisionSnapshot::default();
        s.requests[1] = requests - errors;
        s.requests[4] = errors;
        for _ in 0..requests {
            s.latency.record_micros(20_000);
        }
        s
    }

    #[test]
    fn the_first_update_is_a_starting_point_and_later_ones_are_deltas() {
        let mut e = Evidence::new(["r2".into(), "r1".into(), "r1".into()]);
        let d = e.update(1_000, [served(50, 5), served(500, 5), served(500, 5)]);
        assert_eq!(
            d[CANARY].total(),
            0,
            "traffic before the analysis does not count"
        );
        let d = e.update(1_500, [served(60, 6), served(600, 6), served(600, 6)]);
        assert_eq!((d[CANARY].total(), d[CANARY].errors_5xx()), (10, 1));
        assert_eq!(e.first_served, Some(1_500));
        let totals = e.totals();
        assert_eq!(
            (totals[BASELINE].requests, totals[BASELINE].errors),
            (100, 1)
        );
    }

    #[test]
    fn windows_cover_recent_seconds_only() {
        let mut e = Evidence::new(["a".into(), "b".into(), "b".into()]);
        let mut cum = [served(0, 0), served(0, 0), served(0, 0)];
        e.update(0, cum.clone());
        for second in 1..=20u64 {
            for side in cum.iter_mut() {
                side.merge(&served(10, 1));
            }
            e.update(second * 1000, cum.clone());
        }
        let (w, secs) = e.window(CANARY, 20_000, Some(Duration::from_secs(5)));
        assert_eq!(w.total(), 60, "seconds 15..=20");
        assert_eq!(secs, 5.0);
        let (all, _) = e.window(CANARY, 20_000, None);
        assert_eq!(all.total(), 200);
        assert_eq!(e.slices_since(18_000).count(), 3);
    }

    #[test]
    fn a_counter_reset_gives_an_empty_slice() {
        let mut e = Evidence::new(["a".into(), "b".into(), "b".into()]);
        e.update(0, [served(100, 0), served(100, 0), served(100, 0)]);
        let d = e.update(1000, [served(3, 0), served(200, 0), served(200, 0)]);
        assert_eq!(d[CANARY].total(), 0);
        assert_eq!(d[BASELINE].total(), 100);
    }
}
