//! The service spec (`apiVersion: ramp/v1`, `kind: Service`): what runs, how it is checked,
//! and how a new version replaces the old one. Vocabulary follows Argo Rollouts where it fits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ramp_route::{Condition, Source};
use serde::{Deserialize, Serialize};

/// A validated service spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// `metadata.name`: `[a-z0-9-]`, 1–40 characters, starting with a letter.
    pub name: String,
    /// Instances of the stable revision.
    pub replicas: u32,
    /// The router's listen address for this service.
    pub listen: SocketAddr,
    /// Old revisions kept for undo (default 10).
    pub revision_history_limit: u32,
    /// A rollout that makes no progress for this long is aborted (default 10m).
    pub progress_deadline: Duration,
    /// What an instance is. A change here makes a new revision.
    pub template: Template,
    /// How a new revision replaces the old one.
    pub strategy: Strategy,
}

/// What an instance runs. Serialized canonically to hash revisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// Program to run: a path, or a name looked up in `PATH`.
    pub command: String,
    /// Arguments; `{port}` is replaced by the instance's port.
    pub args: Vec<String>,
    /// Environment; `{port}` in values is replaced by the instance's port.
    pub env: BTreeMap<String, String>,
    /// Working directory (default: the directory the spec was applied from).
    pub working_dir: Option<String>,
    /// Environment variable that carries the port (default `PORT`).
    pub port_env: String,
    /// Files (relative to the working directory) kept with the revision, so it stays runnable
    /// when they change on disk.
    pub files: Vec<String>,
    /// When an instance may receive traffic.
    pub readiness: Option<Probe>,
    /// When an instance must be restarted.
    pub liveness: Option<Probe>,
    /// How an instance is stopped.
    pub stop: StopPolicy,
}

/// A health probe, with Kubernetes' semantics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// What is checked.
    pub action: ProbeAction,
    /// Wait before the first check (default 0s).
    pub initial_delay: Duration,
    /// Time between checks (default 1s).
    pub period: Duration,
    /// A check slower than this fails (default 1s).
    pub timeout: Duration,
    /// Consecutive successes to count as passing (default 1).
    pub success_threshold: u32,
    /// Consecutive failures to count as failing (default 3).
    pub failure_threshold: u32,
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProbeAction {
    /// `GET http://127.0.0.1:{port}{path}` answers 200–399.
    Http { path: String },
    /// A TCP connection to the instance's port succeeds.
    Tcp,
    /// The command exits 0 (`{port}` is replaced in its arguments).
    Exec { command: Vec<String> },
}

/// How an instance is stopped after the router has drained it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopPolicy {
    /// Signal sent first (default `SIGTERM`), as its name.
    pub signal: String,
    /// Then, after this long, `SIGKILL` (default 30s).
    pub grace_period: Duration,
}

/// A count or a share of `replicas` (Kubernetes' `IntOrString` for surge and unavailability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntOrPercent {
    /// An absolute number of instances.
    Count(u32),
    /// A percentage of `replicas`.
    Percent(u32),
}

impl IntOrPercent {
    /// The number of instances, rounding a percentage up (how `maxSurge` resolves).
    pub fn round_up(self, replicas: u32) -> u32 {
        match self {
            IntOrPercent::Count(n) => n,
            IntOrPercent::Percent(p) => (u64::from(replicas) * u64::from(p)).div_ceil(100) as u32,
        }
    }

    /// The number of instances, rounding a percentage down (how `maxUnavailable` resolves).
    pub fn round_down(self, replicas: u32) -> u32 {
        match self {
            IntOrPercent::Count(n) => n,
            IntOrPercent::Percent(p) => (u64::from(replicas) * u64::from(p) / 100) as u32,
        }
    }
}

/// How a new revision replaces the old one.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Stop every old instance, then start the new ones.
    Recreate,
    /// Replace instances in batches bounded by surge and unavailability.
    Rolling(Rolling),
    /// Bring up a full preview stack, check it, switch all traffic at once.
    BlueGreen(BlueGreen),
    /// Shift traffic in steps, with pauses and checks in between.
    Canary(Canary),
}

/// Rolling update bounds (resolved against `replicas`: surge rounds up, unavailable down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolling {
    /// Instances above `replicas` allowed during the update (default 25%).
    pub max_surge: IntOrPercent,
    /// Instances below `replicas` allowed during the update (default 25%).
    pub max_unavailable: IntOrPercent,
}

/// Blue-green settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BlueGreen {
    /// Listen address that serves the preview stack before promotion.
    pub preview_listen: Option<SocketAddr>,
    /// Checks the preview stack must pass before it is promoted.
    pub pre_promotion_checks: Vec<Check>,
    /// Promote without a person once the checks pass, after this delay; `None` waits for
    /// `ramp promote`.
    pub auto_promotion_delay: Option<Duration>,
    /// How long the previous stack stays up after the switch, so rollback is a routing change
    /// (default 30s).
    pub scale_down_delay: Duration,
}

/// A pre-promotion check.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Smoke requests to the preview stack.
    Http {
        /// Request path.
        path: String,
        /// How many requests, each of which must succeed (default 1).
        requests: u32,
        /// Accepted status codes, inclusive (default 200–399).
        expect_status: (u16, u16),
    },
    /// A command that must exit 0; `{preview}` is replaced by the preview address.
    Command {
        /// Program and arguments.
        command: Vec<String>,
        /// Killed and failed after this long (default 60s).
        timeout: Duration,
    },
}

/// Canary settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    /// Steps, in order.
    pub steps: Vec<CanaryStep>,
    /// Keeps each user on one revision while the weight changes.
    pub stickiness: Option<Source>,
    /// How long the previous revision stays up after promotion (default 30s).
    pub scale_down_delay: Duration,
}

/// One canary step.
#[derive(Debug, Clone, PartialEq)]
pub enum CanaryStep {
    /// Send this percentage (0–100) of unpinned traffic to the canary.
    SetWeight(u32),
    /// Wait this long, or for a person (`ramp promote`) when `None`.
    Pause(Option<Duration>),
    /// Pin requests matching every condition to the canary; no conditions removes the route.
    SetHeaderRoute {
        /// Route name (unique among header routes).
        name: String,
        /// Conditions that must all hold.
        conditions: Vec<Condition>,
    },
    /// Copy a share of matching requests to the canary; no percentage removes the route.
    SetMirrorRoute {
        /// Route name (unique among mirror routes).
        name: String,
        /// Share of matching requests, in (0, 100]; `None` removes the route.
        percentage: Option<f64>,
        /// Conditions that must all hold (none = every request).
        conditions: Vec<Condition>,
    },
    /// Run analysis templates and wait for their verdict.
    Analysis {
        /// Template names.
        templates: Vec<String>,
        /// Template arguments.
        args: BTreeMap<String, String>,
    },
}
