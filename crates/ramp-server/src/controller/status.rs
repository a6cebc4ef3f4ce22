//! The status of a service as the API and the CLI show it.

use ramp_model::{CanaryStep, Strategy};
use ramp_rollout::{PauseReason, Phase, RolloutKind};
use ramp_store::Timestamp;
use serde::{Deserialize, Serialize};

use super::Controller;
pub use super::analysis::AnalysisView;

/// A service right now: its rollout, where traffic goes, its stacks and instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Service name.
    pub name: String,
    /// Where its router listens.
    pub listen: Option<String>,
    /// Its strategy.
    pub strategy: String,
    /// Instances of the stable revision.
    pub replicas: u32,
    /// The revision serving when no rollout moves traffic.
    pub stable_revision: Option<u64>,
    /// The current or last rollout.
    pub rollout: Option<RolloutView>,
    /// How the router splits unpinned traffic now.
    pub traffic: Vec<TrafficShare>,
    /// Stacks (sets of instances of one revision).
    pub stacks: Vec<StackView>,
    /// Instances.
    pub instances: Vec<InstanceView>,
    /// Analyses running now.
    #[serde(default)]
    pub analyses: Vec<AnalysisView>,
}

/// One rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutView {
    /// Rollout id.
    pub id: u64,
    /// `initial`, `update`, `undo` or `restart`.
    pub kind: String,
    /// Revision it started from.
    pub from_revision: Option<u64>,
    /// Revision it rolls out.
    pub to_revision: u64,
    /// `Progressing`, `Paused`, `Completed` or `Aborted`.
    pub phase: String,
    /// Why it is paused or aborted.
    pub reason: Option<String>,
    /// Canary: current step (1-based) and number of steps.
    pub step: Option<(usize, usize)>,
    /// Canary: what the current step does.
    pub step_name: Option<String>,
    /// Canary: share of traffic the new revision gets.
    pub weight: u32,
    /// When it started (RFC 3339).
    pub started: String,
    /// When it ended.
    pub finished: Option<String>,
    /// Header routes in force.
    pub header_routes: Vec<String>,
    /// Mirror routes in force.
    pub mirror_routes: Vec<String>,
}

/// A router revision's share of traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficShare {
    /// Router revision name (`r3`).
    pub route: String,
    /// Share of unpinned traffic, percent.
    pub percent: f64,
    /// Ready instances serving it.
    pub instances: usize,
}

/// A stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackView {
    /// Stack id.
    pub id: u64,
    /// Its revision.
    pub revision: u64,
    /// Router revision name.
    pub route: String,
    /// Instances it should have.
    pub desired: u32,
    /// Instances running.
    pub running: u32,
    /// Instances ready.
    pub ready: u32,
    /// Instances draining or stopping.
    pub stopping: u32,
}

/// An instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// Instance id.
    pub id: String,
    /// Its revision.
    pub revision: u64,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `Starting`, `Ready`, `NotReady`, `Restarting`, `Stopping`...
    pub phase: String,
    /// Restarts so far.
    pub restarts: u32,
    /// Process id.
    pub pid: Option<u32>,
    /// How it last exited, if it did.
    pub last_exit: Option<String>,
}

pub(super) fn build(c: &Controller) -> ServiceStatus {
    let spec = c.spec.as_ref();
    let state = &c.state;
    let world = c.instances.world();
    let stacks = state
        .stacks
        .iter()
        .map(|s| {
            let w = world.get(&s.id).copied().unwrap_or_default();
            StackView {
                id: s.id,
                revision: s.revision,
                route: s.route_name(&state.stacks),
                desired: s.replicas,
                running: w.running,
                ready: w.ready,
                stopping: w.stopping,
            }
        })
        .collect();
    let instances = c
        .instances
        .list
        .iter()
        .map(|i| {
            // Read the phase before holding the state: one borrow of the watch at a time.
            let phase = i.phase_name().to_string();
            let s = i.state.borrow();
            InstanceView {
                id: i.id.clone(),
                revision: i.revision,
                port: i.port,
                phase,
                restarts: s.restarts,
                pid: s.process.map(|p| p.pid),
                last_exit: s.last_exit.clone(),
            }
        })
        .collect();
    let traffic = c.routes.main_table().map_or_else(Vec::new, |table| {
        let total: u64 = table.revisions.iter().map(|r| u64::from(r.weight)).sum();
        table
            .revisions
            .iter()
            .filter(|r| r.weight > 0)
            .map(|r| TrafficShare {
                route: r.name.clone(),
                percent: 100.0 * f64::from(r.weight) / total.max(1) as f64,
                instances: r.instances.len(),
            })
            .collect()
    });
    let steps = match spec.map(|s| &s.strategy) {
        Some(Strategy::Canary(c)) => Some(c.steps.clone()),
        _ => None,
    };
    let rollout = state.rollout.as_ref().map(|r| {
        let (phase, reason) = match &r.phase {
            Phase::Progressing => ("Progressing".to_string(), None),
            Phase::Paused { reason } => ("Paused".to_string(), Some(pause_reason(reason))),
            Phase::Completed => ("Completed".to_string(), None),
            Phase::Aborted { reason } => ("Aborted".to_string(), Some(reason.clone())),
        };
        let canary_steps = steps.as_ref().filter(|_| r.kind == RolloutKind::Update);
        RolloutView {
            id: r.id,
            kind: format!("{:?}", r.kind).to_lowercase(),
            from_revision: r
                .from
                .and_then(|f| state.stacks.iter().find(|s| s.id == f))
                .map(|s| s.revision),
            to_revision: r.revision,
            phase,
            reason,
            step: canary_steps.map(|s| ((r.step + 1).min(s.len()), s.len())),
            step_name: canary_steps.and_then(|s| s.get(r.step)).map(step_name),
            weight: r.weight,
            started: Timestamp(r.started as i64).to_rfc3339(),
            finished: r.finished.map(|f| Timestamp(f as i64).to_rfc3339()),
            header_routes: r.header_routes.iter().map(|h| h.name.clone()).collect(),
            mirror_routes: r.mirror_routes.iter().map(|m| m.name.clone()).collect(),
        }
    });
    ServiceStatus {
        name: c.name.clone(),
        listen: spec.map(|s| s.listen.to_string()),
        strategy: spec.map_or("-", |s| strategy_name(&s.strategy)).to_string(),
        replicas: state.replicas,
        stable_revision: state
            .stable
            .and_then(|s| state.stacks.iter().find(|x| x.id == s))
            .map(|s| s.revision),
        rollout,
        traffic,
        stacks,
        instances,
        analyses: c.analyses.views(),
    }
}

fn strategy_name(s: &Strategy) -> &'static str {
    match s {
        Strategy::Recreate => "recreate",
        Strategy::Rolling(_) => "rolling",
        Strategy::BlueGreen(_) => "blueGreen",
        Strategy::Canary(_) => "canary",
    }
}

fn pause_reason(reason: &PauseReason) -> String {
    match reason {
        PauseReason::Step { until } => {
            format!("pause step until {}", Timestamp(*until as i64).to_rfc3339())
        }
        PauseReason::StepIndefinite => "pause step: waiting for `ramp promote`".into(),
        PauseReason::Manual => "paused by request: `ramp resume` to go on".into(),
        PauseReason::AwaitingPromotion => "preview ready: waiting for `ramp promote`".into(),
        PauseReason::AutoPromotion { at } => format!(
            "promoting automatically at {}",
            Timestamp(*at as i64).to_rfc3339()
        ),
        PauseReason::Inconclusive { detail, .. } => format!("analysis inconclusive: {detail}"),
    }
}

fn step_name(step: &CanaryStep) -> String {
    match step {
        CanaryStep::SetWeight(w) => format!("setWeight {w}"),
        CanaryStep::Pause(Some(d)) => format!("pause {}s", d.as_secs()),
        CanaryStep::Pause(None) => "pause".into(),
        CanaryStep::SetHeaderRoute { name, .. } => format!("setHeaderRoute {name}"),
        CanaryStep::SetMirrorRoute { name, .. } => format!("setMirrorRoute {name}"),
        CanaryStep::Analysis(analysis) => format!("analysis {}", analysis.templates.join(",")),
    }
}
