//! From state to the world it asks for: stack sizes, routes, checks to run.

use ramp_model::{CanaryStep, ServiceSpec, Strategy};

use crate::input::AnalysisKind;
use crate::output::{Desired, Mirror, PinnedRoute, Routes, Split, WantedAnalysis};
use crate::state::{Checks, PauseReason, Phase, Rollout, RolloutKind, ServiceState, Stage};

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
            (RolloutKind::Update, Strategy::BlueGreen(_)) if r.analysis.switched() => {
                Some(per_instance(vec![r.to]))
            }
            (RolloutKind::Undo, _) | (RolloutKind::Update, Strategy::BlueGreen(_)) => {
                r.from.map(|f| per_instance(vec![f]))
            }
            (RolloutKind::Update, Strategy::Canary(canary)) => {
                let mut split: Vec<(u64, u32)> = Vec::new();
                // A fresh baseline gets the canary's share (as far as there is room for it).
                let baseline_weight = match r.baseline {
                    Some(_) if r.weight > 0 => r.weight.min(100 - r.weight),
                    _ => 0,
                };
                if let Some(from) = r.from.filter(|_| r.weight + baseline_weight < 100) {
                    split.push((from, 100 - r.weight - baseline_weight));
                }
                if let Some(baseline) = r.baseline.filter(|_| baseline_weight > 0) {
                    split.push((baseline, baseline_weight));
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
    let analyses = active.map_or_else(Vec::new, |r| wanted_analyses(r, spec));
    Desired {
        stacks,
        main,
        preview,
        run_checks,
        analyses,
    }
}

/// The analyses a rollout needs running now.
fn wanted_analyses(r: &Rollout, spec: &ServiceSpec) -> Vec<WantedAnalysis> {
    if r.kind != RolloutKind::Update {
        return Vec::new();
    }
    let want = |kind| WantedAnalysis {
        rollout: r.id,
        kind,
        canary: r.to,
        baseline: r.baseline.or(r.from),
    };
    let progressing = r.phase == Phase::Progressing;
    let mut wanted = Vec::new();
    match &spec.strategy {
        Strategy::Canary(c) => {
            if progressing && matches!(c.steps.get(r.step), Some(CanaryStep::Analysis(_))) {
                wanted.push(want(AnalysisKind::Step(r.step)));
            }
            // A person is deciding after an inconclusive verdict: nothing runs meanwhile.
            let deciding = matches!(
                r.phase,
                Phase::Paused {
                    reason: PauseReason::Inconclusive { .. }
                }
            );
            if let Some(background) = &c.analysis
                && !r.analysis.background_done
                && !deciding
                && r.step >= background.starting_step
            {
                wanted.push(want(AnalysisKind::Background));
            }
        }
        Strategy::BlueGreen(_) if progressing => {
            let stages = [
                (r.analysis.pre_promotion, AnalysisKind::PrePromotion),
                (r.analysis.post_promotion, AnalysisKind::PostPromotion),
            ];
            for (stage, kind) in stages {
                if stage == Stage::Running {
                    wanted.push(want(kind));
                }
            }
        }
        Strategy::Rolling(_) if progressing => {
            if let Some(n) = r.analysis.batch_pending {
                wanted.push(want(AnalysisKind::Batch(n)));
            }
        }
        Strategy::BlueGreen(_) | Strategy::Rolling(_) | Strategy::Recreate => {}
    }
    wanted
}
