//! What the state machine remembers about one service. Serialized to JSON and persisted before
//! anything it implies is acted on, so a restarted control plane carries on from it.

use serde::{Deserialize, Serialize};

use ramp_route::Condition;

use crate::input::AnalysisKind;

/// Milliseconds since the Unix epoch (the caller's clock; tests pass a fake one).
pub type Millis = u64;

/// A set of instances of one revision, managed together (a Kubernetes ReplicaSet). A rollout
/// always moves traffic from one stack to another; `restart` makes a new stack of the same
/// revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stack {
    /// Unique per service, never reused.
    pub id: u64,
    /// The revision its instances run.
    pub revision: u64,
    /// How many instances it should have.
    pub replicas: u32,
}

impl Stack {
    /// The name the router and the metrics use for this stack: `r{revision}`, with `-{id}`
    /// added when a restart made a second stack of the same revision.
    pub fn route_name(&self, stacks: &[Stack]) -> String {
        let first_of_revision = stacks
            .iter()
            .filter(|s| s.revision == self.revision)
            .map(|s| s.id)
            .min();
        if first_of_revision == Some(self.id) {
            format!("r{}", self.revision)
        } else {
            format!("r{}-{}", self.revision, self.id)
        }
    }
}

/// Everything the machine knows about a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    /// Instances the stable stack should have (`spec.replicas`, or `ramp scale`).
    pub replicas: u32,
    /// The stack that serves when no rollout is moving traffic.
    pub stable: Option<u64>,
    /// Every stack that exists or should exist.
    pub stacks: Vec<Stack>,
    /// Stacks kept warm after they stopped serving, each to be scaled down at a time.
    pub retiring: Vec<Retiring>,
    /// The current rollout, or the last one (kept for status until the next one starts).
    pub rollout: Option<Rollout>,
    /// Id for the next stack.
    pub next_stack: u64,
    /// Id for the next rollout.
    pub next_rollout: u64,
}

/// A stack kept warm until `at`, so that going back to it is a routing change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retiring {
    /// The stack.
    pub stack: u64,
    /// When it is scaled down.
    pub at: Millis,
}

/// Why a rollout exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RolloutKind {
    /// The first revision of a service: scale up, no strategy.
    Initial,
    /// A new revision was applied: follows the service's strategy.
    Update,
    /// Back to an earlier revision: a routing change if it is warm, else a fast rollout.
    Undo,
    /// New instances of the same revision, replaced one batch at a time.
    Restart,
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "phase")]
pub enum Phase {
    /// Moving on by itself.
    Progressing,
    /// Waiting: for a duration, or for a person.
    Paused {
        /// Why.
        reason: PauseReason,
    },
    /// Done: the target serves all traffic.
    Completed,
    /// Stopped: the previous stable revision serves all traffic.
    Aborted {
        /// Why.
        reason: String,
    },
}

impl Phase {
    /// Still in progress (progressing or paused): other operations must wait.
    pub fn is_active(&self) -> bool {
        matches!(self, Phase::Progressing | Phase::Paused { .. })
    }
}

/// Why a rollout waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PauseReason {
    /// A canary `pause` step with a duration, until `until`.
    Step {
        /// When the pause ends.
        until: Millis,
    },
    /// A canary `pause` step without a duration: waits for `ramp promote`.
    StepIndefinite,
    /// Someone ran `ramp pause`.
    Manual,
    /// Blue-green preview ready and checked: waits for `ramp promote`.
    AwaitingPromotion,
    /// Blue-green automatic promotion scheduled for `at`.
    AutoPromotion {
        /// When the switch happens.
        at: Millis,
    },
    /// An analysis step could not reach a verdict: a person decides.
    Inconclusive {
        /// What the analysis said.
        detail: String,
        /// Which analysis it was.
        #[serde(default)]
        analysis: Option<AnalysisKind>,
    },
}

/// A header route set by a canary step: matching requests go to the canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderRoute {
    /// Route name.
    pub name: String,
    /// Conditions that must all hold.
    pub conditions: Vec<Condition>,
}

/// A mirror route set by a canary step: a share of matching requests is copied to the canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorRoute {
    /// Route name.
    pub name: String,
    /// Share of matching requests, (0, 100].
    pub percentage: f64,
    /// Conditions that must all hold.
    pub conditions: Vec<Condition>,
}

/// Blue-green pre-promotion checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Checks {
    /// Not started (the preview is not ready yet).
    Pending,
    /// Started; the control plane runs them and reports back.
    Running,
    /// All passed.
    Passed,
}

/// One rollout: from a stable stack to a target stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// Unique per service.
    pub id: u64,
    /// Why it exists.
    pub kind: RolloutKind,
    /// The stable stack when it started (none for the first revision).
    pub from: Option<u64>,
    /// The stack it moves traffic to.
    pub to: u64,
    /// The revision it rolls out (kept here: the stack may be gone after an abort).
    pub revision: u64,
    /// Where it stands.
    pub phase: Phase,
    /// Canary: index of the current step (`steps.len()` once all are done).
    pub step: usize,
    /// When the current step began.
    pub step_started: Millis,
    /// Last time the rollout made progress (for `progressDeadline`).
    pub last_progress: Millis,
    /// Canary: share of unpinned traffic the target gets now.
    pub weight: u32,
    /// Canary: header routes in force.
    pub header_routes: Vec<HeaderRoute>,
    /// Canary: mirror routes in force.
    pub mirror_routes: Vec<MirrorRoute>,
    /// Blue-green: pre-promotion checks.
    pub checks: Checks,
    /// Someone asked to skip what is left (`promote --full`).
    pub skip_to_end: bool,
    /// Target instances seen ready at the last observation (progress is a change here ...).
    pub seen_ready: u32,
    /// ... or here: instances of the previous stacks at the last observation.
    pub seen_old: u32,
    /// When it started.
    pub started: Millis,
    /// When it completed or was aborted.
    pub finished: Option<Millis>,
    /// Canary with `baseline: fresh`: the stack of new instances of the stable revision that
    /// gets the canary's share, so the two are compared under the same conditions.
    #[serde(default)]
    pub baseline: Option<u64>,
    /// Where the analyses outside canary steps stand.
    #[serde(default)]
    pub analysis: AnalysisProgress,
}

/// Analyses of a rollout that are not canary steps, and what became of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisProgress {
    /// The canary's background analysis reached a verdict (or a person overrode it): it is
    /// not started again for this rollout.
    pub background_done: bool,
    /// Blue-green pre-promotion analysis.
    pub pre_promotion: Stage,
    /// Blue-green post-promotion analysis; started when traffic switches to the new stack.
    pub post_promotion: Stage,
    /// Rolling: new instances already judged good by the per-batch analysis.
    pub batch_verified: u32,
    /// Rolling: a batch of this many new instances is being judged.
    pub batch_pending: Option<u32>,
}

impl AnalysisProgress {
    /// Blue-green: traffic has been switched to the new stack ahead of completion; the switch
    /// is what starts the post-promotion analysis, so its stage tells.
    pub fn switched(&self) -> bool {
        self.post_promotion != Stage::NotStarted
    }
}

/// Where a one-off analysis stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// Not started.
    #[default]
    NotStarted,
    /// Running; the control plane reports its verdict.
    Running,
    /// Passed, or a person promoted past it.
    Passed,
}
