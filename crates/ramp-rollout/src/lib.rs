//! The rollout state machine: observations in, desired state and events out.
//!
//! [`step`] takes a service's [`ServiceState`], its spec, one [`Input`] (an apply, an
//! observation of the world, a command, a check result) and the time, and returns the next
//! state and the events that explain it. [`desired`] turns a state into the world it asks
//! for: how many instances each stack should have and where each listener sends traffic.
//! Nothing here does I/O or reads a clock; the control plane persists each state before acting
//! on it, and tests drive the machine with a simulated world and a fake clock.

mod desired;
mod input;
mod machine;
mod output;
mod state;
mod strategies;

pub use desired::desired;
pub use input::{AnalysisKind, Command, Input, StackStatus, Verdict, World};
pub use machine::{Transition, step};
pub use output::{Desired, Event, Mirror, PinnedRoute, Rejected, Routes, Split, WantedAnalysis};
pub use state::{
    AnalysisProgress, Checks, HeaderRoute, Millis, MirrorRoute, PauseReason, Phase, Retiring,
    Rollout, RolloutKind, ServiceState, Stack, Stage,
};
