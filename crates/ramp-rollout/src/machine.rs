//! The transition function: `step(state, spec, input, now) -> (state, events)`.

use std::time::Duration;

use ramp_model::{ServiceSpec, Strategy};

use crate::input::{AnalysisKind, Command, Input, Verdict, World};
use crate::output::{Event, Rejected};
use crate::state::{
    AnalysisProgress, Checks, Millis, PauseReason, Phase, Retiring, Rollout, RolloutKind,
    ServiceState, Stack, Stage,
};
use crate::strategies;

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The new state, to persist before acting on it.
    pub state: ServiceState,
    /// What happened, for the event log.
    pub events: Vec<Event>,
}

/// Advances a service's state by one input. Pure: the same arguments give the same result.
pub fn step(
    state: &ServiceState,
    spec: &ServiceSpec,
    input: &Input,
    now: Millis,
) -> Result<Transition, Rejected> {
    let mut m = Machine {
        s: state.clone(),
        spec,
        now,
        events: Vec::new(),
    };
    match input {
        Input::Apply { revision, replicas } => m.apply(*revision, *replicas)?,
        Input::Observe { world } => m.observe(world),
        Input::Command(command) => m.command(command)?,
        Input::ChecksFinished {
            rollout,
            passed,
            detail,
        } => m.checks_finished(*rollout, *passed, detail),
        Input::AnalysisFinished {
            rollout,
            kind,
            verdict,
            detail,
        } => m.analysis_finished(*rollout, *kind, *verdict, detail),
    }
    Ok(Transition {
        state: m.s,
        events: m.events,
    })
}

/// A step in progress: the state being changed and the events explaining it.
pub(crate) struct Machine<'a> {
    pub(crate) s: ServiceState,
    pub(crate) spec: &'a ServiceSpec,
    pub(crate) now: Millis,
    pub(crate) events: Vec<Event>,
}

impl Machine<'_> {
    pub(crate) fn event(&mut self, kind: &str, message: impl Into<String>) {
        self.events.push(Event::new(kind, message));
    }

    pub(crate) fn stack(&self, id: u64) -> Option<&Stack> {
        self.s.stacks.iter().find(|s| s.id == id)
    }

    pub(crate) fn revision_of(&self, stack: u64) -> u64 {
        self.stack(stack).map_or(0, |s| s.revision)
    }

    /// Sets a stack's desired size; a change is an event.
    pub(crate) fn set_replicas(&mut self, id: u64, replicas: u32) {
        let Some(stack) = self.s.stacks.iter_mut().find(|s| s.id == id) else {
            return;
        };
        if stack.replicas == replicas {
            return;
        }
        let (revision, before) = (stack.revision, stack.replicas);
        stack.replicas = replicas;
        let verb = if replicas > before { "up" } else { "down" };
        self.event(
            "Scaled",
            format!("revision {revision} (stack {id}) scaled {verb} to {replicas}"),
        );
    }

    pub(crate) fn replicas_of(&self, id: u64) -> u32 {
        self.stack(id).map_or(0, |s| s.replicas)
    }

    pub(crate) fn new_stack(&mut self, revision: u64, replicas: u32) -> u64 {
        let id = self.s.next_stack;
        self.s.next_stack += 1;
        self.s.stacks.push(Stack {
            id,
            revision,
            replicas,
        });
        id
    }

    /// A stack for `revision`: a warm one if there is one (taken out of retirement), else new.
    fn stack_for(&mut self, revision: u64) -> u64 {
        let warm = self
            .s
            .stacks
            .iter()
            .filter(|s| s.revision == revision && Some(s.id) != self.s.stable)
            .max_by_key(|s| s.replicas)
            .map(|s| s.id);
        match warm {
            Some(id) => {
                self.s.retiring.retain(|r| r.stack != id);
                id
            }
            None => self.new_stack(revision, 0),
        }
    }

    pub(crate) fn active(&self) -> Option<&Rollout> {
        self.s.rollout.as_ref().filter(|r| r.phase.is_active())
    }

    pub(crate) fn rollout_mut(&mut self) -> Option<&mut Rollout> {
        self.s.rollout.as_mut().filter(|r| r.phase.is_active())
    }

    fn describe_active(&self) -> Option<String> {
        let r = self.active()?;
        let what = match r.kind {
            RolloutKind::Initial => "the first deployment".to_string(),
            RolloutKind::Update => format!("rollout {} to revision {}", r.id, r.revision),
            RolloutKind::Undo => format!("undo {} to revision {}", r.id, r.revision),
            RolloutKind::Restart => format!("restart {}", r.id),
        };
        let state = match &r.phase {
            Phase::Paused { .. } => "paused",
            _ => "in progress",
        };
        Some(format!("{what} is {state}"))
    }

    fn refuse_while_active(&self, what: &str) -> Result<(), Rejected> {
        match self.describe_active() {
            Some(busy) => Err(Rejected(format!(
                "cannot {what}: {busy}; promote, abort or wait for it first"
            ))),
            None => Ok(()),
        }
    }

    fn start(&mut self, kind: RolloutKind, to: u64) {
        let id = self.s.next_rollout;
        self.s.next_rollout += 1;
        self.s.retiring.retain(|r| r.stack != to);
        let from = self.s.stable.filter(|&s| s != to);
        self.s.rollout = Some(Rollout {
            id,
            kind,
            from,
            to,
            revision: self.revision_of(to),
            phase: Phase::Progressing,
            step: 0,
            step_started: self.now,
            last_progress: self.now,
            weight: 0,
            header_routes: vec![],
            mirror_routes: vec![],
            checks: Checks::Pending,
            skip_to_end: false,
            seen_ready: 0,
            seen_old: 0,
            started: self.now,
            finished: None,
            baseline: None,
            analysis: AnalysisProgress::default(),
        });
        let to_revision = self.revision_of(to);
        let message = match (kind, from.map(|f| self.revision_of(f))) {
            (RolloutKind::Initial, _) => format!("deploying revision {to_revision}"),
            (RolloutKind::Restart, _) => {
                format!("restarting every instance of revision {to_revision}")
            }
            (RolloutKind::Undo, Some(f)) => format!("undo: revision {f} -> revision {to_revision}"),
            (_, Some(f)) => format!(
                "revision {f} -> revision {to_revision} ({})",
                strategy_name(&self.spec.strategy)
            ),
            (_, None) => format!("deploying revision {to_revision}"),
        };
        self.event("RolloutStarted", format!("rollout {id}: {message}"));
    }

    fn apply(&mut self, revision: u64, replicas: u32) -> Result<(), Rejected> {
        self.refuse_while_active("apply a new spec")?;
        let stable_revision = self.s.stable.map(|s| self.revision_of(s));
        self.s.replicas = replicas;
        match (self.s.stable, stable_revision) {
            // Same template: only the size may change (an event if it does).
            (Some(stable), Some(current)) if current == revision => {
                self.set_replicas(stable, replicas);
            }
            (None, _) => {
                let to = self.stack_for(revision);
                self.start(RolloutKind::Initial, to);
            }
            _ => {
                let to = self.stack_for(revision);
                self.start(RolloutKind::Update, to);
            }
        }
        Ok(())
    }

    fn command(&mut self, command: &Command) -> Result<(), Rejected> {
        match command {
            Command::Promote { full } => self.promote(*full),
            Command::Pause => self.pause(),
            Command::Resume => self.resume(),
            Command::Abort => {
                if self.active().is_none() {
                    return Err(Rejected(
                        "nothing to abort: no rollout is in progress".into(),
                    ));
                }
                self.abort("aborted by request".into());
                Ok(())
            }
            Command::Retry => self.retry(),
            Command::Undo { revision } => self.undo(*revision),
            Command::Scale { replicas } => {
                self.refuse_while_active("scale")?;
                let Some(stable) = self.s.stable else {
                    return Err(Rejected("nothing to scale: no revision is serving".into()));
                };
                self.s.replicas = *replicas;
                self.set_replicas(stable, *replicas);
                Ok(())
            }
            Command::Restart => {
                self.refuse_while_active("restart")?;
                let Some(stable) = self.s.stable else {
                    return Err(Rejected(
                        "nothing to restart: no revision is serving".into(),
                    ));
                };
                let revision = self.revision_of(stable);
                let to = self.new_stack(revision, 0);
                self.start(RolloutKind::Restart, to);
                Ok(())
            }
        }
    }

    fn promote(&mut self, full: bool) -> Result<(), Rejected> {
        let Some(r) = self.active() else {
            return Err(Rejected(
                "nothing to promote: no rollout is in progress".into(),
            ));
        };
        let (id, kind, step) = (r.id, r.kind, r.step);
        let promotable = kind == RolloutKind::Update
            && matches!(
                self.spec.strategy,
                Strategy::Canary(_) | Strategy::BlueGreen(_)
            );
        if !promotable {
            return Err(Rejected(format!(
                "rollout {id} has no steps to promote ({})",
                match kind {
                    RolloutKind::Update => strategy_name(&self.spec.strategy),
                    RolloutKind::Initial => "first deployment",
                    RolloutKind::Undo => "undo",
                    RolloutKind::Restart => "restart",
                }
            )));
        }
        let now = self.now;
        let Some(r) = self.rollout_mut() else {
            return Ok(());
        };
        let overridden = match &r.phase {
            Phase::Paused {
                reason:
                    PauseReason::Inconclusive {
                        analysis: Some(kind),
                        ..
                    },
            } => Some(*kind),
            _ => None,
        };
        r.phase = Phase::Progressing;
        r.last_progress = now;
        if let Some(kind) = overridden.filter(|_| !full) {
            // A person decides what the analysis could not: as if it had passed.
            self.event(
                "Promoted",
                format!("rollout {id}: promoted past the inconclusive {kind}"),
            );
            self.analysis_passed(kind);
            return Ok(());
        }
        if full {
            r.skip_to_end = true;
            self.event(
                "Promoted",
                format!("rollout {id}: promoted fully, skipping remaining steps"),
            );
        } else {
            match &self.spec.strategy {
                Strategy::Canary(_) => {
                    strategies::canary::next_step(self);
                    self.event(
                        "Promoted",
                        format!("rollout {id}: step {} skipped by promote", step + 1),
                    );
                }
                _ => {
                    if let Some(r) = self.rollout_mut() {
                        r.skip_to_end = true;
                    }
                    self.event("Promoted", format!("rollout {id}: promotion requested"));
                }
            }
        }
        Ok(())
    }

    fn pause(&mut self) -> Result<(), Rejected> {
        let Some(r) = self.rollout_mut() else {
            return Err(Rejected(
                "nothing to pause: no rollout is in progress".into(),
            ));
        };
        if r.phase != Phase::Progressing {
            return Err(Rejected(format!("rollout {} is already paused", r.id)));
        }
        r.phase = Phase::Paused {
            reason: PauseReason::Manual,
        };
        let id = r.id;
        self.event("Paused", format!("rollout {id} paused by request"));
        Ok(())
    }

    fn resume(&mut self) -> Result<(), Rejected> {
        let now = self.now;
        let Some(r) = self.rollout_mut() else {
            return Err(Rejected(
                "nothing to resume: no rollout is in progress".into(),
            ));
        };
        match &r.phase {
            Phase::Paused {
                reason: PauseReason::Manual,
            } => {
                r.phase = Phase::Progressing;
                r.last_progress = now;
                let id = r.id;
                self.event("Resumed", format!("rollout {id} resumed"));
                Ok(())
            }
            Phase::Paused { .. } => Err(Rejected(format!(
                "rollout {} waits at a step for a decision; use promote to go on or abort to stop",
                r.id
            ))),
            _ => Err(Rejected(format!("rollout {} is not paused", r.id))),
        }
    }

    fn retry(&mut self) -> Result<(), Rejected> {
        self.refuse_while_active("retry")?;
        let Some(last) = self.s.rollout.clone() else {
            return Err(Rejected("nothing to retry: no rollout has run".into()));
        };
        if !matches!(last.phase, Phase::Aborted { .. }) {
            return Err(Rejected(format!(
                "nothing to retry: rollout {} was not aborted",
                last.id
            )));
        }
        let to = self.stack_for(last.revision);
        let kind = if self.s.stable.is_none() {
            RolloutKind::Initial
        } else {
            last.kind
        };
        self.start(kind, to);
        Ok(())
    }

    fn undo(&mut self, revision: u64) -> Result<(), Rejected> {
        self.refuse_while_active("undo")?;
        let Some(stable) = self.s.stable else {
            return Err(Rejected("nothing to undo: no revision is serving".into()));
        };
        if self.revision_of(stable) == revision {
            return Err(Rejected(format!("revision {revision} is already serving")));
        }
        let to = self.stack_for(revision);
        self.start(RolloutKind::Undo, to);
        Ok(())
    }

    fn checks_finished(&mut self, rollout: u64, passed: bool, detail: &str) {
        let Some(r) = self.rollout_mut().filter(|r| r.id == rollout) else {
            return; // a late report for a rollout that is over
        };
        if !matches!(r.checks, Checks::Running) {
            return;
        }
        if passed {
            r.checks = Checks::Passed;
            self.event(
                "ChecksPassed",
                format!("rollout {rollout}: pre-promotion checks passed: {detail}"),
            );
            strategies::blue_green::after_checks(self);
        } else {
            self.event(
                "ChecksFailed",
                format!("rollout {rollout}: pre-promotion checks failed: {detail}"),
            );
            self.abort(format!("pre-promotion checks failed: {detail}"));
        }
    }

    fn analysis_finished(
        &mut self,
        rollout: u64,
        kind: AnalysisKind,
        verdict: Verdict,
        detail: &str,
    ) {
        let Some(r) = self.active().filter(|r| r.id == rollout) else {
            return; // a late verdict for a rollout that is over
        };
        // Only the analysis that is still wanted may decide.
        let current = match kind {
            AnalysisKind::Step(step) => r.step == step && r.phase == Phase::Progressing,
            AnalysisKind::Background => !r.analysis.background_done,
            AnalysisKind::PrePromotion => r.analysis.pre_promotion == Stage::Running,
            AnalysisKind::PostPromotion => r.analysis.post_promotion == Stage::Running,
            AnalysisKind::Batch(n) => r.analysis.batch_pending == Some(n),
        };
        if !current {
            return;
        }
        match verdict {
            Verdict::Successful => {
                self.event(
                    "AnalysisSuccessful",
                    format!("rollout {rollout}: {kind} passed: {detail}"),
                );
                self.analysis_passed(kind);
            }
            Verdict::Inconclusive => {
                if let Some(r) = self.rollout_mut() {
                    r.phase = Phase::Paused {
                        reason: PauseReason::Inconclusive {
                            detail: detail.to_string(),
                            analysis: Some(kind),
                        },
                    };
                }
                self.event(
                    "AnalysisInconclusive",
                    format!(
                        "rollout {rollout}: {kind} is inconclusive, waiting for a person: {detail}"
                    ),
                );
            }
            Verdict::Failed => {
                self.event(
                    "AnalysisFailed",
                    format!("rollout {rollout}: {kind} failed: {detail}"),
                );
                self.abort(format!("{kind} failed: {detail}"));
            }
        }
    }

    /// An analysis passed, or a person promoted past an inconclusive one: the rollout goes on.
    fn analysis_passed(&mut self, kind: AnalysisKind) {
        let Some(r) = self.rollout_mut() else {
            return;
        };
        match kind {
            AnalysisKind::Step(_) => strategies::canary::next_step(self),
            AnalysisKind::Background => r.analysis.background_done = true,
            AnalysisKind::PrePromotion => {
                r.analysis.pre_promotion = Stage::Passed;
                strategies::blue_green::after_checks(self);
            }
            AnalysisKind::PostPromotion => {
                r.analysis.post_promotion = Stage::Passed;
                self.complete(true);
            }
            AnalysisKind::Batch(n) => {
                r.analysis.batch_verified = n;
                r.analysis.batch_pending = None;
            }
        }
    }

    /// Stops the active rollout: traffic back to the stable stack at once, the target kept warm
    /// for a while and then scaled down.
    pub(crate) fn abort(&mut self, reason: String) {
        let now = self.now;
        let delay = scale_down_delay(self.spec);
        let replicas = self.s.replicas;
        let Some(r) = self.rollout_mut() else {
            return;
        };
        r.phase = Phase::Aborted {
            reason: reason.clone(),
        };
        r.finished = Some(now);
        r.weight = 0;
        r.header_routes.clear();
        r.mirror_routes.clear();
        let (id, from, to, baseline) = (r.id, r.from, r.to, r.baseline);
        if let Some(from) = from {
            self.set_replicas(from, replicas);
        }
        if let Some(baseline) = baseline {
            self.set_replicas(baseline, 0);
        }
        if from != Some(to) {
            self.retire(to, now + millis(delay));
        }
        self.event(
            "Aborted",
            format!("rollout {id} aborted: {reason}; traffic back to the stable revision"),
        );
    }

    /// The target now serves everything: it becomes stable, the previous stable stack retires.
    pub(crate) fn complete(&mut self, keep_previous_warm: bool) {
        let now = self.now;
        let delay = if keep_previous_warm {
            scale_down_delay(self.spec)
        } else {
            Duration::ZERO
        };
        let Some(r) = self.rollout_mut() else {
            return;
        };
        r.phase = Phase::Completed;
        r.finished = Some(now);
        r.weight = 100;
        r.header_routes.clear();
        r.mirror_routes.clear();
        let (id, from, to, baseline) = (r.id, r.from, r.to, r.baseline);
        if let Some(baseline) = baseline {
            self.set_replicas(baseline, 0);
        }
        self.s.stable = Some(to);
        if let Some(from) = from {
            self.retire(from, now + millis(delay));
        }
        let revision = self.revision_of(to);
        self.event(
            "Completed",
            format!("rollout {id} completed: revision {revision} serves all traffic"),
        );
    }

    pub(crate) fn retire(&mut self, stack: u64, at: Millis) {
        self.s.retiring.retain(|r| r.stack != stack);
        self.s.retiring.push(Retiring { stack, at });
    }

    fn observe(&mut self, world: &World) {
        self.retire_due(world);
        if let Some(r) = self.active() {
            let deadline = self.spec.progress_deadline.as_millis() as u64;
            let stalled = r.phase == Phase::Progressing
                && self.now.saturating_sub(r.last_progress) > deadline;
            let to_crashing = world.get(&r.to).is_some_and(|s| s.crash_looping);
            if to_crashing && r.kind != RolloutKind::Initial {
                let revision = r.revision;
                self.abort(format!(
                    "instances of revision {revision} are crash-looping"
                ));
                return;
            }
            if stalled {
                let secs = self.spec.progress_deadline.as_secs();
                self.abort(format!("no progress for {secs}s (progressDeadline)"));
                return;
            }
            strategies::advance(self, world);
        } else if let Some(stable) = self.s.stable {
            // Outside rollouts the stable stack keeps its size.
            let replicas = self.s.replicas;
            self.set_replicas(stable, replicas);
        }
    }

    /// Scales down retired stacks whose time has come, and forgets empty ones.
    fn retire_due(&mut self, world: &World) {
        let now = self.now;
        let due: Vec<u64> = self
            .s
            .retiring
            .iter()
            .filter(|r| r.at <= now)
            .map(|r| r.stack)
            .collect();
        for id in due {
            if self.replicas_of(id) > 0 {
                self.set_replicas(id, 0);
                let revision = self.revision_of(id);
                self.event(
                    "ScaledDown",
                    format!("revision {revision} (stack {id}) scaled down"),
                );
            }
        }
        let in_use: Vec<u64> = self
            .s
            .rollout
            .iter()
            .filter(|r| r.phase.is_active())
            .flat_map(|r| [Some(r.to), r.from])
            .chain([self.s.stable])
            .flatten()
            .collect();
        let gone = |s: &Stack| {
            s.replicas == 0 && !in_use.contains(&s.id) && strategies::total(world, s.id) == 0
        };
        let removed: Vec<u64> = self
            .s
            .stacks
            .iter()
            .filter(|s| gone(s))
            .map(|s| s.id)
            .collect();
        self.s.stacks.retain(|s| !removed.contains(&s.id));
        self.s.retiring.retain(|r| !removed.contains(&r.stack));
    }
}

fn strategy_name(strategy: &Strategy) -> &'static str {
    match strategy {
        Strategy::Recreate => "recreate",
        Strategy::Rolling(_) => "rolling update",
        Strategy::BlueGreen(_) => "blue-green",
        Strategy::Canary(_) => "canary",
    }
}

/// How long a stack that stopped serving stays warm.
pub(crate) fn scale_down_delay(spec: &ServiceSpec) -> Duration {
    match &spec.strategy {
        Strategy::BlueGreen(b) => b.scale_down_delay,
        Strategy::Canary(c) => c.scale_down_delay,
        Strategy::Recreate | Strategy::Rolling(_) => Duration::from_secs(30),
    }
}

pub(crate) fn millis(d: Duration) -> Millis {
    d.as_millis() as Millis
}
