//! Restart backoff and crash-loop detection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// First restart delay.
const INITIAL: Duration = Duration::from_millis(500);
/// Longest restart delay.
const MAX: Duration = Duration::from_secs(30);
/// A process that ran this long resets the backoff.
const RESET_AFTER: Duration = Duration::from_secs(60);
/// Window in which restarts count towards a crash loop.
const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// Restarts within the window that make a crash loop.
const CRASH_RESTARTS: usize = 3;

/// Exponential restart delays: 0.5s, 1s, 2s, ... capped at 30s, reset by 60s of running.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The delay before the next restart of a process that ran for `ran_for`.
    pub(crate) fn next(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= RESET_AFTER {
            self.attempt = 0;
        }
        let delay = INITIAL
            .checked_mul(1u32.checked_shl(self.attempt).unwrap_or(u32::MAX))
            .map_or(MAX, |d| d.min(MAX));
        self.attempt = self.attempt.saturating_add(1);
        delay
    }
}

/// Recent restart times, to tell a crash loop.
#[derive(Debug, Default)]
pub(crate) struct RestartHistory {
    times: VecDeque<Instant>,
}

impl RestartHistory {
    /// Records a restart at `now`.
    pub(crate) fn record(&mut self, now: Instant) {
        self.times.push_back(now);
        self.forget_before(now);
    }

    fn forget_before(&mut self, now: Instant) {
        while self
            .times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= CRASH_WINDOW)
        {
            self.times.pop_front();
        }
        while self.times.len() > CRASH_RESTARTS {
            self.times.pop_front();
        }
    }

    /// Whether enough restarts happened within the window before `now`.
    pub(crate) fn crash_looping(&self, now: Instant) -> bool {
        self.times
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < CRASH_WINDOW)
            .count()
            >= CRASH_RESTARTS
    }

    /// When [`crash_looping`](Self::crash_looping) turns false again, if it is true at `now`.
    pub(crate) fn crash_loop_ends(&self, now: Instant) -> Option<Instant> {
        if !self.crash_looping(now) {
            return None;
        }
        // The oldest of the last `CRASH_RESTARTS` restarts leaving the window ends the loop.
        let oldest = self.times.get(self.times.len() - CRASH_RESTARTS)?;
        Some(*oldest + CRASH_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let mut b = Backoff::default();
        let got: Vec<_> = (0..10).map(|_| b.next(ms(10))).collect();
        let want: Vec<_> = [
            500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000,
        ]
        .into_iter()
        .map(ms)
        .collect();
        assert_eq!(got, want);
        for _ in 0..100 {
            assert_eq!(b.next(ms(10)), MAX);
        }
    }

    #[test]
    fn a_long_run_resets_the_delay() {
        let mut b = Backoff::default();
        b.next(ms(1));
        b.next(ms(1));
        assert_eq!(b.next(ms(1)), ms(2000));
        assert_eq!(b.next(Duration::from_secs(61)), ms(500));
        assert_eq!(b.next(ms(1)), ms(1000));
    }

    #[test]
    fn three_restarts_within_a_minute_are_a_crash_loop() {
        let t0 = Instant::now();
        let mut h = RestartHistory::default();
        h.record(t0);
        h.record(t0 + ms(500));
        assert!(!h.crash_looping(t0 + ms(600)));
        assert_eq!(h.crash_loop_ends(t0 + ms(600)), None);
        h.record(t0 + ms(1500));
        assert!(h.crash_looping(t0 + ms(1600)));
        assert_eq!(h.crash_loop_ends(t0 + ms(1600)), Some(t0 + CRASH_WINDOW));
        assert!(!h.crash_looping(t0 + CRASH_WINDOW));
        h.record(t0 + ms(2000));
        assert_eq!(
            h.crash_loop_ends(t0 + ms(2000)),
            Some(t0 + ms(500) + CRASH_WINDOW)
        );
    }

    #[test]
    fn spread_out_restarts_are_not_a_crash_loop() {
        let t0 = Instant::now();
        let mut h = RestartHistory::default();
        for i in 0..10 {
            let now = t0 + Duration::from_secs(31 * i);
            h.record(now);
            assert!(!h.crash_looping(now), "restart {i}");
        }
    }
}
