//! What the machine asks for: how many instances each stack should have, where traffic goes,
//! what checks to run, and the events that explain each change.

use serde::{Deserialize, Serialize};

use ramp_route::{Condition, Source};

use crate::input::AnalysisKind;

/// How a set of stacks shares a listener's traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Split {
    /// Every ready instance of these stacks gets an equal share (recreate, rolling, restart).
    PerInstance(Vec<u64>),
    /// Each stack gets this weight, spread over its ready instances (canary, blue-green).
    Weighted(Vec<(u64, u32)>),
}

/// A header route: requests matching every condition go to `stack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinnedRoute {
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Target stack.
    pub stack: u64,
}

/// A mirror: a share of matching requests is copied to `stack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mirror {
    /// Target stack.
    pub stack: u64,
    /// Share, (0, 100].
    pub percentage: f64,
    /// Conditions.
    pub conditions: Vec<Condition>,
}

/// Where one listener sends traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    /// The split of unpinned traffic.
    pub split: Split,
    /// Header routes, first match wins.
    pub pinned: Vec<PinnedRoute>,
    /// Mirrors.
    pub mirrors: Vec<Mirror>,
    /// Sticky key.
    pub sticky: Option<Source>,
}

impl Routes {
    /// All traffic to one stack.
    pub fn only(stack: u64) -> Routes {
        Routes {
            split: Split::Weighted(vec![(stack, 1)]),
            pinned: vec![],
            mirrors: vec![],
            sticky: None,
        }
    }
}

/// What the world should look like now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Desired {
    /// Replicas per stack: `(stack id, revision, replicas)`. Stacks not listed should have no
    /// instances.
    pub stacks: Vec<(u64, u64, u32)>,
    /// The service's main listener.
    pub main: Option<Routes>,
    /// The blue-green preview listener.
    pub preview: Option<Routes>,
    /// Blue-green checks to run against this stack, for this rollout.
    pub run_checks: Option<(u64, u64)>,
    /// Analyses that should be running now. One that is running and no longer listed is
    /// stopped; its verdict no longer matters.
    pub analyses: Vec<WantedAnalysis>,
}

/// An analysis that should run: which one, and which stacks it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WantedAnalysis {
    /// The rollout it belongs to.
    pub rollout: u64,
    /// Which of its analyses.
    pub kind: AnalysisKind,
    /// The stack under judgement.
    pub canary: u64,
    /// What it is compared with: the fresh baseline stack, else the previous stable stack.
    pub baseline: Option<u64>,
}

/// Something that happened, for the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Short machine-readable kind, e.g. `RolloutStarted`, `StepCompleted`, `Aborted`.
    pub kind: String,
    /// One human sentence.
    pub message: String,
}

impl Event {
    pub(crate) fn new(kind: &str, message: impl Into<String>) -> Self {
        Event {
            kind: kind.to_string(),
            message: message.into(),
        }
    }
}

/// A request the machine refuses, with what is in the way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);
