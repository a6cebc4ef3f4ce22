//! Canary: steps that shift a share of traffic, pin or mirror requests, pause and analyse.
//! The stable stack keeps its full size throughout, so an abort is one table swap.

use ramp_model::{Baseline, CanaryStep, Strategy};

use crate::input::World;
use crate::machine::{Machine, millis};
use crate::state::{HeaderRoute, MirrorRoute, PauseReason, Phase};

use super::ready;

/// Instances the canary needs for a weight: `ceil(replicas * weight / 100)`, at least one for
/// any traffic at all.
pub(crate) fn canary_replicas(replicas: u32, weight: u32) -> u32 {
    let n = (u64::from(replicas) * u64::from(weight)).div_ceil(100) as u32;
    if weight > 0 { n.max(1) } else { 0 }
}

pub(super) fn advance(m: &mut Machine<'_>, world: &World) {
    let Strategy::Canary(canary) = &m.spec.strategy else {
        return;
    };
    let steps = canary.steps.clone();
    let replicas = m.s.replicas;
    if let Some(from) = m.active().and_then(|r| r.from) {
        m.set_replicas(from, replicas);
    }
    // Each pass runs one step; instant steps (routes) chain within one observation.
    for _ in 0..=steps.len() + 1 {
        let Some(r) = m.active() else {
            return;
        };
        if r.phase != Phase::Progressing {
            return;
        }
        let (id, to, step) = (r.id, r.to, r.step);
        if r.skip_to_end && step < steps.len() {
            if let Some(r) = m.rollout_mut() {
                r.step = steps.len();
            }
            continue;
        }
        let Some(current) = steps.get(step) else {
            // Every step done: the canary grows to full size, then takes all traffic.
            m.set_replicas(to, replicas);
            if ready(world, to) >= replicas {
                m.complete(true);
            }
            return;
        };
        let label = format!("rollout {id}: step {}/{}", step + 1, steps.len());
        match current {
            CanaryStep::SetWeight(weight) => {
                let needed = canary_replicas(replicas, *weight);
                m.set_replicas(to, needed);
                let baseline = size_fresh_baseline(m, canary.baseline, needed);
                if ready(world, to) < needed || baseline.is_some_and(|b| ready(world, b) < needed) {
                    return; // wait for the instances before sending them traffic
                }
                if let Some(r) = m.rollout_mut() {
                    r.weight = *weight;
                }
                m.event(
                    "WeightChanged",
                    format!("{label}: {weight}% of traffic to the canary"),
                );
                next_step(m);
            }
            CanaryStep::Pause(duration) => {
                let started = m.active().map_or(m.now, |r| r.step_started);
                let reason = match duration {
                    Some(d) if started + millis(*d) <= m.now => {
                        next_step(m);
                        continue;
                    }
                    Some(d) => PauseReason::Step {
                        until: started + millis(*d),
                    },
                    None => PauseReason::StepIndefinite,
                };
                if let Some(r) = m.rollout_mut() {
                    r.phase = Phase::Paused { reason };
                }
                let how = match duration {
                    Some(d) => format!("for {}s", d.as_secs()),
                    None => "until `ramp promote`".to_string(),
                };
                m.event("Paused", format!("{label}: paused {how}"));
                return;
            }
            CanaryStep::SetHeaderRoute { name, conditions } => {
                if let Some(r) = m.rollout_mut() {
                    r.header_routes.retain(|h| &h.name != name);
                    if !conditions.is_empty() {
                        r.header_routes.push(HeaderRoute {
                            name: name.clone(),
                            conditions: conditions.clone(),
                        });
                    }
                }
                let what = if conditions.is_empty() {
                    "removed"
                } else {
                    "set"
                };
                m.event(
                    "RouteChanged",
                    format!("{label}: header route {name} {what}"),
                );
                next_step(m);
            }
            CanaryStep::SetMirrorRoute {
                name,
                percentage,
                conditions,
            } => {
                if let Some(r) = m.rollout_mut() {
                    r.mirror_routes.retain(|h| &h.name != name);
                    if let Some(percentage) = percentage {
                        r.mirror_routes.push(MirrorRoute {
                            name: name.clone(),
                            percentage: *percentage,
                            conditions: conditions.clone(),
                        });
                    }
                }
                let what = match percentage {
                    Some(p) => format!("set to {p}%"),
                    None => "removed".into(),
                };
                m.event(
                    "RouteChanged",
                    format!("{label}: mirror route {name} {what}"),
                );
                next_step(m);
            }
            CanaryStep::Analysis(_) => return, // the control plane runs it and reports
        }
    }
}

/// Moves to the next step.
pub(crate) fn next_step(m: &mut Machine<'_>) {
    let now = m.now;
    if let Some(r) = m.rollout_mut() {
        r.step += 1;
        r.step_started = now;
        r.last_progress = now;
        r.phase = Phase::Progressing;
    }
}

/// With `baseline: fresh`, the stack of new instances of the stable revision that gets the
/// canary's share, created on first use and sized like the canary; `None` otherwise.
fn size_fresh_baseline(m: &mut Machine<'_>, baseline: Baseline, replicas: u32) -> Option<u64> {
    if baseline != Baseline::Fresh {
        return None;
    }
    let r = m.active()?;
    let (id, from, existing) = (r.id, r.from?, r.baseline);
    match existing {
        Some(stack) => {
            m.set_replicas(stack, replicas);
            Some(stack)
        }
        None => {
            let revision = m.revision_of(from);
            let stack = m.new_stack(revision, replicas);
            if let Some(r) = m.rollout_mut() {
                r.baseline = Some(stack);
            }
            m.event(
                "BaselineStarted",
                format!(
                    "rollout {id}: fresh baseline of revision {revision} (stack {stack}) with {replicas} instances"
                ),
            );
            Some(stack)
        }
    }
}
