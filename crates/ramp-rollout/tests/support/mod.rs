//! A simulated world for the state machine: instances that take a while to become ready (or
//! never do), that take a while to stop, and a fake clock.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use ramp_model::{
    Baseline, BlueGreen, Canary, CanaryStep, IntOrPercent, Rolling, ServiceSpec, StopPolicy,
    Strategy, Template,
};
use ramp_rollout::{
    Command, Desired, Event, Input, Millis, Rejected, ServiceState, Split, StackStatus, World,
    desired, step,
};

pub(crate) const TICK: Millis = 100;

pub(crate) fn spec(strategy: Strategy, replicas: u32) -> ServiceSpec {
    ServiceSpec {
        name: "web".into(),
        replicas,
        listen: "127.0.0.1:8080".parse().unwrap(),
        revision_history_limit: 10,
        progress_deadline: Duration::from_secs(60),
        template: Template {
            command: "app".into(),
            args: vec![],
            env: BTreeMap::new(),
            working_dir: None,
            port_env: "PORT".into(),
            files: vec![],
            readiness: None,
            liveness: None,
            stop: StopPolicy {
                signal: "SIGTERM".into(),
                grace_period: Duration::from_secs(5),
            },
        },
        strategy,
        analysis_templates: vec![],
    }
}

pub(crate) fn rolling(surge: IntOrPercent, unavailable: IntOrPercent) -> Strategy {
    Strategy::Rolling(Rolling {
        max_surge: surge,
        max_unavailable: unavailable,
        analysis: None,
    })
}

pub(crate) fn canary(steps: Vec<CanaryStep>) -> Strategy {
    Strategy::Canary(Canary {
        steps,
        stickiness: None,
        scale_down_delay: Duration::from_secs(30),
        baseline: Baseline::Stable,
        analysis: None,
    })
}

pub(crate) fn blue_green(checks: bool, auto: Option<Duration>) -> Strategy {
    Strategy::BlueGreen(BlueGreen {
        preview_listen: Some("127.0.0.1:8081".parse().unwrap()),
        pre_promotion_analysis: None,
        post_promotion_analysis: None,
        pre_promotion_checks: if checks {
            vec![ramp_model::Check::Http {
                path: "/".into(),
                requests: 1,
                expect_status: (200, 399),
            }]
        } else {
            vec![]
        },
        auto_promotion_delay: auto,
        scale_down_delay: Duration::from_secs(30),
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub(crate) stack: u64,
    pub(crate) revision: u64,
    pub(crate) age: Millis,
    /// Time left until a stopping instance is gone; `None` while it runs.
    pub(crate) stopping: Option<Millis>,
}

/// Counts seen after one reconcile, for invariants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) now: Millis,
    pub(crate) total: u32,
    pub(crate) ready: u32,
}

pub(crate) struct Sim {
    pub(crate) spec: ServiceSpec,
    pub(crate) state: ServiceState,
    pub(crate) now: Millis,
    pub(crate) instances: Vec<Instance>,
    /// How long an instance of a revision takes to become ready; `None`: it crash-loops.
    pub(crate) ready_after: BTreeMap<u64, Option<Millis>>,
    pub(crate) stop_after: Millis,
    pub(crate) events: Vec<Event>,
    pub(crate) samples: Vec<Sample>,
}

impl Sim {
    pub(crate) fn new(spec: ServiceSpec) -> Sim {
        Sim {
            spec,
            state: ServiceState::default(),
            now: 1_000_000,
            instances: vec![],
            ready_after: BTreeMap::new(),
            stop_after: 300,
            events: vec![],
            samples: vec![],
        }
    }

    fn is_ready(&self, i: &Instance) -> bool {
        i.stopping.is_none()
            && self
                .ready_after
                .get(&i.revision)
                .copied()
                .unwrap_or(Some(500))
                .is_some_and(|after| i.age >= after)
    }

    pub(crate) fn world(&self) -> World {
        let mut world = World::new();
        for i in &self.instances {
            let s: &mut StackStatus = world.entry(i.stack).or_default();
            if i.stopping.is_some() {
                s.stopping += 1;
            } else {
                s.running += 1;
                if self.is_ready(i) {
                    s.ready += 1;
                }
                if self.ready_after.get(&i.revision) == Some(&None) && i.age > 1_000 {
                    s.crash_looping = true;
                }
            }
        }
        world
    }

    pub(crate) fn input(&mut self, input: Input) -> Result<(), Rejected> {
        let t = step(&self.state, &self.spec, &input, self.now)?;
        self.state = t.state;
        self.events.extend(t.events);
        Ok(())
    }

    pub(crate) fn apply(&mut self, revision: u64) -> Result<(), Rejected> {
        let replicas = self.spec.replicas;
        self.input(Input::Apply { revision, replicas })?;
        self.observe();
        Ok(())
    }

    pub(crate) fn command(&mut self, command: Command) -> Result<(), Rejected> {
        self.input(Input::Command(command))?;
        self.observe();
        Ok(())
    }

    /// One observation and the reconcile that follows it (what the control plane does).
    pub(crate) fn observe(&mut self) {
        let world = self.world();
        self.input(Input::Observe { world })
            .expect("observing is never refused");
        self.reconcile();
    }

    pub(crate) fn desired(&self) -> Desired {
        desired(&self.state, &self.spec)
    }

    /// Makes instance counts match the desired stack sizes: starts missing instances and stops
    /// extra ones, not-ready ones first.
    fn reconcile(&mut self) {
        let desired = self.desired();
        let wanted: BTreeMap<u64, (u64, u32)> = desired
            .stacks
            .iter()
            .map(|&(id, rev, n)| (id, (rev, n)))
            .collect();
        let stacks: Vec<u64> = self
            .instances
            .iter()
            .map(|i| i.stack)
            .chain(wanted.keys().copied())
            .collect();
        for stack in stacks {
            let (revision, want) = wanted.get(&stack).copied().unwrap_or((0, 0));
            let running: Vec<usize> = (0..self.instances.len())
                .filter(|&k| {
                    self.instances[k].stack == stack && self.instances[k].stopping.is_none()
                })
                .collect();
            let have = running.len() as u32;
            if have < want {
                for _ in have..want {
                    self.instances.push(Instance {
                        stack,
                        revision,
                        age: 0,
                        stopping: None,
                    });
                }
            } else if have > want {
                let mut order = running.clone();
                order.sort_by_key(|&k| self.is_ready(&self.instances[k]));
                for &k in order.iter().take((have - want) as usize) {
                    self.instances[k].stopping = Some(self.stop_after);
                }
            }
        }
        let world = self.world();
        self.samples.push(Sample {
            now: self.now,
            total: world.values().map(|s| s.total()).sum(),
            ready: world.values().map(|s| s.ready).sum(),
        });
    }

    /// Time passes by one tick; instances age and stopping ones finish.
    pub(crate) fn tick(&mut self) {
        self.now += TICK;
        for i in &mut self.instances {
            match i.stopping.as_mut() {
                Some(left) => *left = left.saturating_sub(TICK),
                None => i.age += TICK,
            }
        }
        self.instances.retain(|i| i.stopping != Some(0));
        // A crash-looping instance restarts: its age starts over.
        for i in &mut self.instances {
            if self.ready_after.get(&i.revision) == Some(&None) && i.age > 2_000 {
                i.age = 1_100;
            }
        }
        self.observe();
    }

    /// Ticks until `done` holds, at most `max` of simulated time.
    pub(crate) fn run_until(&mut self, max: Millis, done: impl Fn(&Sim) -> bool) -> bool {
        let deadline = self.now + max;
        while self.now < deadline {
            if done(self) {
                return true;
            }
            self.tick();
        }
        done(self)
    }

    pub(crate) fn phase(&self) -> String {
        self.state
            .rollout
            .as_ref()
            .map_or("none".into(), |r| format!("{:?}", r.phase))
    }

    pub(crate) fn completed(&self) -> bool {
        matches!(
            self.state.rollout.as_ref().map(|r| &r.phase),
            Some(ramp_rollout::Phase::Completed)
        )
    }

    pub(crate) fn stable_revision(&self) -> Option<u64> {
        let stable = self.state.stable?;
        self.state
            .stacks
            .iter()
            .find(|s| s.id == stable)
            .map(|s| s.revision)
    }

    /// Revision → share of unpinned traffic (0–100) on the main listener, given who is ready.
    pub(crate) fn traffic(&self) -> BTreeMap<u64, f64> {
        let Some(main) = self.desired().main else {
            return BTreeMap::new();
        };
        let world = self.world();
        let revision = |stack: u64| {
            self.state
                .stacks
                .iter()
                .find(|s| s.id == stack)
                .map_or(0, |s| s.revision)
        };
        let weights: Vec<(u64, f64)> = match main.split {
            Split::PerInstance(stacks) => stacks
                .iter()
                .map(|&s| (s, f64::from(world.get(&s).map_or(0, |w| w.ready))))
                .collect(),
            Split::Weighted(w) => w
                .iter()
                .filter(|&&(s, _)| world.get(&s).is_some_and(|w| w.ready > 0))
                .map(|&(s, w)| (s, f64::from(w)))
                .collect(),
        };
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        let mut shares = BTreeMap::new();
        for (s, w) in weights {
            if total > 0.0 {
                *shares.entry(revision(s)).or_insert(0.0) += 100.0 * w / total;
            }
        }
        shares
    }

    pub(crate) fn event_kinds(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.kind.as_str()).collect()
    }
}
