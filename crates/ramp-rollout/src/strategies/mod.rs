//! How each kind of rollout moves forward on an observation of the world.

pub(crate) mod blue_green;
pub(crate) mod canary;
mod recreate;
mod rolling;

use ramp_model::{IntOrPercent, Rolling, Strategy};

use crate::input::World;
use crate::machine::Machine;
use crate::state::{PauseReason, Phase, RolloutKind};

/// Batches for `restart` when the service's own strategy has no rolling bounds: one extra
/// instance at a time, never fewer than `replicas` ready.
const RESTART_BOUNDS: Rolling = Rolling {
    max_surge: IntOrPercent::Percent(25),
    max_unavailable: IntOrPercent::Count(0),
    analysis: None,
};

/// Moves the active rollout forward, then records whether it made progress.
pub(crate) fn advance(m: &mut Machine<'_>, world: &World) {
    let Some(r) = m.active() else {
        return;
    };
    let (kind, phase) = (r.kind, r.phase.clone());
    if let Phase::Paused { reason } = phase
        && !end_timed_pause(m, &reason)
    {
        return;
    }
    match (kind, &m.spec.strategy) {
        (RolloutKind::Initial, _) => scale_up_then_switch(m, world, false),
        (RolloutKind::Undo, _) => scale_up_then_switch(m, world, true),
        (RolloutKind::Restart, Strategy::Rolling(bounds)) => rolling::advance(m, world, bounds),
        (RolloutKind::Restart, _) => rolling::advance(m, world, &RESTART_BOUNDS),
        (RolloutKind::Update, Strategy::Recreate) => recreate::advance(m, world),
        (RolloutKind::Update, Strategy::Rolling(bounds)) => rolling::advance(m, world, bounds),
        (RolloutKind::Update, Strategy::BlueGreen(_)) => blue_green::advance(m, world),
        (RolloutKind::Update, Strategy::Canary(_)) => canary::advance(m, world),
    }
    track_progress(m, world);
}

/// Ends a pause whose time has come; true if the rollout may move on now.
fn end_timed_pause(m: &mut Machine<'_>, reason: &PauseReason) -> bool {
    let now = m.now;
    match reason {
        PauseReason::Step { until } if *until <= now => {
            canary::next_step(m);
            true
        }
        PauseReason::AutoPromotion { at } if *at <= now => {
            if let Some(r) = m.rollout_mut() {
                r.phase = Phase::Progressing;
                r.skip_to_end = true;
            }
            true
        }
        _ => false,
    }
}

/// Brings the target to full size, then switches all traffic to it at once.
fn scale_up_then_switch(m: &mut Machine<'_>, world: &World, keep_previous_warm: bool) {
    let Some(to) = m.active().map(|r| r.to) else {
        return;
    };
    let replicas = m.s.replicas;
    m.set_replicas(to, replicas);
    if ready(world, to) >= replicas {
        m.complete(keep_previous_warm);
    }
}

/// Ready instances of a stack.
pub(crate) fn ready(world: &World, stack: u64) -> u32 {
    world.get(&stack).map_or(0, |s| s.ready)
}

/// Instances of a stack that exist, stopping ones included.
pub(crate) fn total(world: &World, stack: u64) -> u32 {
    world.get(&stack).map_or(0, |s| s.total())
}

/// A rollout progresses when the target gains ready instances or the previous stacks shrink;
/// `progressDeadline` counts from the last such change.
fn track_progress(m: &mut Machine<'_>, world: &World) {
    let now = m.now;
    let replicas = m.s.replicas;
    let Some(r) = m.rollout_mut() else {
        return;
    };
    let to_ready = ready(world, r.to);
    let old: u32 = r.from.map_or(0, |f| total(world, f));
    if to_ready == r.seen_ready && old == r.seen_old {
        return;
    }
    r.last_progress = now;
    r.seen_ready = to_ready;
    r.seen_old = old;
    let (id, revision) = (r.id, r.revision);
    let previous = if r.from.is_some() {
        format!(", {old} of the previous revision left")
    } else {
        String::new()
    };
    m.event(
        "Progress",
        format!(
            "rollout {id}: {to_ready}/{replicas} instances of revision {revision} ready{previous}"
        ),
    );
}
