//! From state to the world it asks for: stack sizes, routes, checks to run.

use ramp_model::{CanaryStep, ServiceSpec, Strategy};

use crate::output::{Desired, Mirror, PinnedRoute, Routes, Split};
use crate::state::{Checks, Phase, RolloutKind, ServiceState};

/// What the world should look like for this state.
pub fn desired(state: &ServiceState, spec: &ServiceSpec) -> Desired {
    let stacks = state
        .stacks
        .iter()
        .map(|s| (s.id, s.revision, s.replicas))
        .collect();
    let active = state.rollout.as_ref().filter(|r| r.phase.is_active());
    let per_instance = |ids: Vec<u64>| Routes {
        split: Split::PerInstance(ids),
        pinned: vec![],
        mirrors: vec![],
        sticky: None,
    };
    let main = match active {
        None => state.stable.map(|s| per_instance(vec![s])),
        Some(r) => match (r.kind, &spec.strategy) {
            (RolloutKind::Initial, _) => Some(per_instance(vec![r.to])),
            (RolloutKind::Undo, _) | (RolloutKind::Update, Strategy::BlueGreen(_)) => {
                r.from.map(|f| per_instance(vec![f]))
            }
            (RolloutKind::Update, Strategy::Canary(canary)) => {
                let mut split: Vec<(u64, u32)> = Vec::new();
                if let Some(from) = r.from.filter(|_| r.weight < 100) {
                    split.push((from, 100 - r.weight));
                }
                if r.weight > 0 {
                    split.push((r.to, r.weight));
                }
                Some(Routes {
                    split: Split::Weighted(split),
                    pinned: r
                        .header_routes
                        .iter()
                        .map(|h| PinnedRoute {
                            conditions: h.conditions.clone(),
                            stack: r.to,
                        })
                        .collect(),
                    mirrors: r
                        .mirror_routes
                        .iter()
                        .map(|m| Mirror {
                            stack: r.to,
                            percentage: m.percentage,
                            conditions: m.conditions.clone(),
                        })
                        .collect(),
                    sticky: canary.stickiness.clone(),
                })
            }
            (RolloutKind::Restart | RolloutKind::Update, _) => {
                Some(per_instance(r.from.into_iter().chain([r.to]).collect()))
            }
        },
    };
    let blue_green = active.filter(|r| {
        r.kind == RolloutKind::Update && matches!(spec.strategy, Strategy::BlueGreen(_))
    });
    let preview = match &spec.strategy {
        Strategy::BlueGreen(b) if b.preview_listen.is_some() => {
            blue_green.map(|r| per_instance(vec![r.to]))
        }
        _ => None,
    };
    let run_checks = blue_green
        .filter(|r| matches!(r.checks, Checks::Running))
        .map(|r| (r.id, r.to));
    let run_analysis = match &spec.strategy {
        Strategy::Canary(c) => active
            .filter(|r| r.kind == RolloutKind::Update && r.phase == Phase::Progressing)
            .filter(|r| matches!(c.steps.get(r.step), Some(CanaryStep::Analysis { .. })))
            .map(|r| (r.id, r.step)),
        _ => None,
    };
    Desired {
        stacks,
        main,
        preview,
        run_checks,
        run_analysis,
    }
}
