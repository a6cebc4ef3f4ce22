//! What the machine is told: the world as observed, commands from people, results of checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What is true of one stack's instances right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackStatus {
    /// Instances that exist and are not being stopped.
    pub running: u32,
    /// Of those, instances passing readiness (and in the routing table).
    pub ready: u32,
    /// Instances being drained or stopped (they still count against `maxSurge`).
    pub stopping: u32,
    /// An instance keeps crashing (several restarts in a short while).
    pub crash_looping: bool,
}

impl StackStatus {
    /// Every instance that still exists, stopping ones included.
    pub fn total(&self) -> u32 {
        self.running + self.stopping
    }
}

/// The observed world: every stack's status by stack id (a stack absent here has nothing).
pub type World = BTreeMap<u64, StackStatus>;

/// A person's (or the API's) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "command")]
pub enum Command {
    /// Skip the current pause or step; `full` skips every remaining step.
    Promote {
        /// Go straight to the end.
        full: bool,
    },
    /// Hold the rollout where it is.
    Pause,
    /// Carry on after `Pause`.
    Resume,
    /// Send all traffic back to the stable revision and stop the rollout.
    Abort,
    /// Start an aborted rollout again from its beginning.
    Retry,
    /// Go back to an earlier revision.
    Undo {
        /// The revision to go back to (the caller resolves "previous").
        revision: u64,
    },
    /// Change the number of instances.
    Scale {
        /// New replica count.
        replicas: u32,
    },
    /// Replace every instance of the stable revision.
    Restart,
}

/// One thing that happened, fed to [`crate::step`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "input")]
pub enum Input {
    /// A spec was applied: its template is `revision`, its size `replicas`.
    Apply {
        /// Revision number of the applied template.
        revision: u64,
        /// `spec.replicas`.
        replicas: u32,
    },
    /// Time passed; the world looks like this.
    Observe {
        /// Every stack's status.
        world: World,
    },
    /// A command.
    Command(Command),
    /// Blue-green pre-promotion checks finished.
    ChecksFinished {
        /// Rollout they were run for.
        rollout: u64,
        /// All passed.
        passed: bool,
        /// What they found.
        detail: String,
    },
    /// An analysis finished.
    AnalysisFinished {
        /// Rollout it ran for.
        rollout: u64,
        /// Which of the rollout's analyses.
        kind: AnalysisKind,
        /// The verdict.
        verdict: Verdict,
        /// What it found.
        detail: String,
    },
}

/// An analysis verdict, with Argo's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Go on.
    Successful,
    /// A person decides: the rollout pauses.
    Inconclusive,
    /// Abort.
    Failed,
}

/// Which analysis of a rollout: the moments Argo Rollouts runs analysis at, plus rolling
/// batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "at")]
pub enum AnalysisKind {
    /// A canary `analysis` step (its index); the rollout waits for it.
    Step(usize),
    /// The canary's background analysis, from `startingStep` until the rollout ends.
    Background,
    /// Blue-green, before the switch.
    PrePromotion,
    /// Blue-green, after the switch and before the rollout completes.
    PostPromotion,
    /// Rolling: after a batch is up (the number of new instances), before the next.
    Batch(u32),
}

impl std::fmt::Display for AnalysisKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalysisKind::Step(i) => write!(f, "step {}", i + 1),
            AnalysisKind::Background => f.write_str("background analysis"),
            AnalysisKind::PrePromotion => f.write_str("pre-promotion analysis"),
            AnalysisKind::PostPromotion => f.write_str("post-promotion analysis"),
            AnalysisKind::Batch(n) => write!(f, "batch of {n} instances"),
        }
    }
}
