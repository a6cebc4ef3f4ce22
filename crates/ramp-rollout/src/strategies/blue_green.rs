//! Blue-green: a full preview stack, checked, then all traffic switched at once; the previous
//! stack stays warm for `scaleDownDelay` so going back is a routing change.

use ramp_model::Strategy;

use crate::input::World;
use crate::machine::{Machine, millis};
use crate::state::{Checks, PauseReason, Phase, Stage};

use super::ready;

pub(super) fn advance(m: &mut Machine<'_>, world: &World) {
    let Some((id, from, to, checks, skip)) = m
        .active()
        .map(|r| (r.id, r.from, r.to, r.checks.clone(), r.skip_to_end))
    else {
        return;
    };
    let replicas = m.s.replicas;
    m.set_replicas(to, replicas);
    if let Some(from) = from {
        m.set_replicas(from, replicas);
    }
    if ready(world, to) < replicas {
        return; // the preview stack is still coming up
    }
    if skip {
        switch(m);
        return;
    }
    if m.active().is_some_and(|r| r.analysis.switched()) {
        return; // switched; the post-promotion analysis decides
    }
    if checks == Checks::Pending {
        let has_checks = matches!(&m.spec.strategy, Strategy::BlueGreen(b) if !b.pre_promotion_checks.is_empty());
        if let Some(r) = m.rollout_mut() {
            r.checks = if has_checks {
                Checks::Running
            } else {
                Checks::Passed
            };
        }
        if has_checks {
            m.event(
                "ChecksStarted",
                format!("rollout {id}: preview ready, running pre-promotion checks"),
            );
        } else {
            after_checks(m);
        }
    }
}

/// The preview passed its checks: promote now, later, or when a person says so.
pub(crate) fn after_checks(m: &mut Machine<'_>) {
    let Strategy::BlueGreen(settings) = &m.spec.strategy else {
        return;
    };
    let delay = settings.auto_promotion_delay;
    let has_analysis = settings.pre_promotion_analysis.is_some();
    let now = m.now;
    let Some(r) = m.rollout_mut() else {
        return;
    };
    let id = r.id;
    if r.skip_to_end {
        switch(m);
        return;
    }
    if has_analysis && r.analysis.pre_promotion != Stage::Passed {
        if r.analysis.pre_promotion == Stage::NotStarted {
            r.analysis.pre_promotion = Stage::Running;
            m.event(
                "AnalysisStarted",
                format!("rollout {id}: preview ready, running pre-promotion analysis"),
            );
        }
        return;
    }
    match delay {
        Some(d) if d.is_zero() => switch(m),
        Some(d) => {
            let at = now + millis(d);
            r.phase = Phase::Paused {
                reason: PauseReason::AutoPromotion { at },
            };
            m.event(
                "Paused",
                format!(
                    "rollout {id}: preview ready; promoting automatically in {}s",
                    d.as_secs()
                ),
            );
        }
        None => {
            r.phase = Phase::Paused {
                reason: PauseReason::AwaitingPromotion,
            };
            m.event(
                "Paused",
                format!("rollout {id}: preview ready; waiting for `ramp promote`"),
            );
        }
    }
}

/// All traffic to the preview stack in one table swap. With a post-promotion analysis the
/// rollout completes only once it passes; until then an abort switches straight back to the
/// previous stack, which is still at full size.
fn switch(m: &mut Machine<'_>) {
    let has_analysis =
        matches!(&m.spec.strategy, Strategy::BlueGreen(b) if b.post_promotion_analysis.is_some());
    let Some(r) = m.rollout_mut() else {
        return;
    };
    if !has_analysis || r.analysis.switched() {
        m.complete(true);
        return;
    }
    r.analysis.post_promotion = Stage::Running;
    r.skip_to_end = false;
    let id = r.id;
    m.event(
        "Switched",
        format!("rollout {id}: all traffic to the new stack; running post-promotion analysis"),
    );
}
