//! Runs a scenario: each run's stream is generated once, tick by tick, and every judge of the
//! line-up sees the same requests. Runs are spread over worker threads; results do not
//! depend on how many, since each run's stream comes from its own seed.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::judges::Judge;
use crate::judges::argo::Measurement;
use crate::rng::derive_seed;
use crate::scenario::Scenario;
use crate::stream::{Stream, TICKS_PER_SECOND, tick_end_seconds};

/// What every scenario shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Simulation {
    /// Total requests per second, unless the scenario sets its own.
    pub(crate) rate: f64,
    /// Chance that a request goes to the canary.
    pub(crate) canary_weight: f64,
    /// Length of a run, in seconds.
    pub(crate) horizon_seconds: u32,
    /// Seed of every stream.
    pub(crate) seed: u64,
    /// Worker threads.
    pub(crate) threads: usize,
}

/// What happened to the judges in one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunOutcome {
    /// Per judge (line-up order): when it alarmed, in seconds; `None` = never.
    pub(crate) alarms: Vec<Option<f64>>,
    /// Per judge: its threshold measurements (empty for judges without any).
    pub(crate) measurements: Vec<Vec<Measurement>>,
}

impl Simulation {
    /// The seed of run `run` of `scenario`.
    fn run_seed(&self, scenario: &Scenario, run: u32) -> u64 {
        derive_seed(&[self.seed, scenario.seed_key(), u64::from(run)])
    }

    /// Runs `judges` over run `run` of `scenario`, stopping early once all have alarmed.
    pub(crate) fn run_once(
        &self,
        scenario: &Scenario,
        run: u32,
        mut judges: Vec<Judge>,
    ) -> RunOutcome {
        let mut stream = Stream::new(
            scenario,
            scenario.rate_or(self.rate),
            self.canary_weight,
            self.run_seed(scenario, run),
        );
        let mut alarms = vec![None; judges.len()];
        let mut requests = Vec::new();
        for tick in 0..self.horizon_seconds * TICKS_PER_SECOND {
            stream.next_tick(tick, &mut requests);
            let mut any_pending = false;
            for (judge, alarm) in judges.iter_mut().zip(&mut alarms) {
                if alarm.is_some() {
                    continue;
                }
                if judge.observe_tick(tick, &requests) {
                    *alarm = Some(tick_end_seconds(tick));
                } else {
                    any_pending = true;
                }
            }
            if !any_pending {
                break;
            }
        }
        RunOutcome {
            alarms,
            measurements: judges.into_iter().map(Judge::into_measurements).collect(),
        }
    }

    /// Runs `runs` runs of `scenario`, each with fresh judges from `make_judges`, in run order.
    pub(crate) fn run_scenario(
        &self,
        scenario: &Scenario,
        runs: u32,
        make_judges: &(dyn Fn() -> Vec<Judge> + Sync),
    ) -> Vec<RunOutcome> {
        let next_run = AtomicU32::new(0);
        let mut indexed: Vec<(u32, RunOutcome)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..self.threads.max(1))
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let run = next_run.fetch_add(1, Ordering::Relaxed);
                            if run >= runs {
                                return done;
                            }
                            done.push((run, self.run_once(scenario, run, make_judges())));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| match worker.join() {
                    Ok(done) => done,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
        indexed.sort_by_key(|(run, _)| *run);
        indexed.into_iter().map(|(_, outcome)| outcome).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judges::argo::Thresholds;
    use crate::judges::{JudgeSpec, Method};
    use crate::scenario::by_name;

    fn simulation(threads: usize) -> Simulation {
        Simulation {
            rate: 200.0,
            canary_weight: 0.1,
            horizon_seconds: 120,
            seed: 3,
            threads,
        }
    }

    fn argo_judges() -> Vec<Judge> {
        let spec = JudgeSpec {
            name: "argo",
            method: Method::Argo {
                interval_seconds: 10,
            },
        };
        let strict = Thresholds {
            max_error_rate: 0.03,
            max_p99_seconds: 10.0,
        };
        // Argo-style judges do not look at the scenario.
        let scenario = by_name("aa").unwrap();
        vec![
            Judge::new(&spec, None, scenario, 0.01),
            Judge::new(&spec, Some(strict), scenario, 0.01),
        ]
    }

    #[test]
    fn results_do_not_depend_on_the_number_of_threads() {
        let scenario = by_name("errors_1_to_5").unwrap();
        let one = simulation(1).run_scenario(scenario, 6, &argo_judges);
        let two = simulation(2).run_scenario(scenario, 6, &argo_judges);
        assert_eq!(one, two);
        assert_eq!(one.len(), 6);
    }

    #[test]
    fn each_judge_sees_the_same_stream_and_runs_differ() {
        let outcomes = simulation(2).run_scenario(by_name("aa").unwrap(), 3, &argo_judges);
        for outcome in &outcomes {
            // The uncalibrated judge measured the whole run; the calibrated one, the same
            // windows until it alarmed.
            assert_eq!(outcome.measurements[0].len(), 12);
            let seen = outcome.measurements[1].len();
            assert_eq!(outcome.measurements[0][..seen], outcome.measurements[1][..]);
            assert_eq!(outcome.alarms[0], None);
        }
        assert_ne!(outcomes[0].measurements[0], outcomes[1].measurements[0]);
    }

    #[test]
    fn a_run_stops_once_every_judge_alarmed() {
        let strict_only = || {
            let mut judges = argo_judges();
            judges.remove(0);
            judges
        };
        let outcome = simulation(1).run_once(by_name("errors_1_to_5").unwrap(), 0, strict_only());
        let at = outcome.alarms[0].expect("5% errors over a 3% threshold");
        assert_eq!(outcome.measurements[0].len() as f64, at / 10.0);
    }
}
