//! The service spec (`apiVersion: ramp/v1`, `kind: Service`): what runs, how it is checked,
//! and how a new version replaces the old one. Vocabulary follows Argo Rollouts where it fits.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use ramp_analysis::{AnalysisRef, AnalysisTemplate};
use ramp_route::{Condition, Source};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ModelError;

mod doc;
mod validate;

pub use validate::same_socket;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_analysis;

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
    /// Analysis templates the strategy refers to by name (`spec.analysisTemplates`).
    pub analysis_templates: Vec<AnalysisTemplate>,
}

impl ServiceSpec {
    /// The `apiVersion` a service document must have.
    pub const API_VERSION: &str = "ramp/v1";
    /// The `kind` a service document must have.
    pub const KIND: &str = "Service";

    /// Parses and validates a service document.
    ///
    /// A document that is not YAML of the expected shape (syntax, unknown field, wrong type)
    /// is a [`ModelError::Syntax`] naming the field and line where it can be told; a document
    /// with invalid values is a [`ModelError::Invalid`] listing every problem, each with its
    /// field path (`spec.strategy.canary.steps[2].setWeight`), line and column, in the order
    /// they appear in the text.
    ///
    /// ```yaml
    /// apiVersion: ramp/v1
    /// kind: Service
    /// metadata:
    ///   name: web
    /// spec:
    ///   replicas: 3
    ///   listen: 127.0.0.1:8080
    ///   template:
    ///     command: ramp
    ///     args: ["demo-app", "--listen", "127.0.0.1:{port}"]
    ///     readiness:
    ///       httpGet: {path: /healthz}
    ///   strategy:
    ///     canary:
    ///       steps:
    ///         - setWeight: 20
    ///         - pause: {duration: 30s}
    ///         - setWeight: 50
    ///         - pause: {}
    /// ```
    ///
    /// Defaults: `revisionHistoryLimit` 10, `progressDeadline` 10m, `portEnv` `PORT`; probes
    /// `initialDelay` 0s, `period` 1s, `timeout` 1s, `successThreshold` 1, `failureThreshold`
    /// 3; `stop` `SIGTERM` then 30s; rolling `maxSurge` and `maxUnavailable` 25%; blue-green
    /// and canary `scaleDownDelay` 30s; checks `requests` 1, `expectStatus` 200-399, command
    /// `timeout` 60s; an HTTP probe or check `path` `/`.
    ///
    /// Canary routes: each header route name and each mirror route name is set by at most one
    /// step; a later step with the same name and no `match` (header) or no `percentage`
    /// (mirror) removes the route. A match item is `headerName` with an optional
    /// `headerValue`, or `cookieName` with an optional `cookieValue`; the value is one of
    /// `exact`, `prefix` or `regex` (matching the whole value), and left out means present.
    ///
    /// Analysis: metrics default to Argo Rollouts' limits (`failureLimit` 0,
    /// `inconclusiveLimit` 0, `consecutiveErrorLimit` 4), Prometheus and web `timeout` 10s,
    /// command `timeout` 60s. A canary without `analysis` runs Ramp's default judge in the
    /// background from step 0 (`enabled: false` turns it off); a use of templates that names
    /// none means that default judge too. Every template named must be declared, every
    /// argument without a default given, and every argument given declared.
    pub fn from_yaml(text: &str) -> Result<ServiceSpec, ModelError> {
        let doc: doc::ServiceDoc =
            serde_saphyr::from_str(text).map_err(|e| ModelError::from_parser(&e, text))?;
        doc.validate()
    }

    /// The analysis template named `name`. Every name an [`AnalysisRef`] of a validated spec
    /// uses is found here; turning references into runs is the control plane's job.
    pub fn template(&self, name: &str) -> Option<&AnalysisTemplate> {
        self.analysis_templates.iter().find(|t| t.name == name)
    }
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

impl Template {
    /// Lowercase hex SHA-256 of the template's canonical JSON (fields in declaration order,
    /// `env` sorted by name): equal templates have equal digests and any change to the
    /// template changes it, while replicas and strategy do not take part. It names revisions.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("a template always serializes to JSON");
        let mut hex = String::with_capacity(64);
        for byte in Sha256::digest(&json) {
            write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
        }
        hex
    }
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

impl StopPolicy {
    /// The signals an instance may be stopped with, by name.
    pub const SIGNALS: [&str; 7] = [
        "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL",
    ];

    /// The canonical name (`SIGTERM`) of a stop signal written as `SIGTERM`, `TERM` or
    /// `term`; `None` when it is not one of [`StopPolicy::SIGNALS`].
    pub fn canonical_signal(name: &str) -> Option<String> {
        let upper = name.trim().to_ascii_uppercase();
        let full = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        Self::SIGNALS.contains(&full.as_str()).then_some(full)
    }
}

impl Default for StopPolicy {
    /// `SIGTERM`, then `SIGKILL` after 30s.
    fn default() -> Self {
        StopPolicy {
            signal: "SIGTERM".into(),
            grace_period: Duration::from_secs(30),
        }
    }
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

impl FromStr for IntOrPercent {
    type Err = String;

    /// `3` is a count, `25%` a percentage (0–100%).
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let invalid = || format!("{text:?} is not a count or a percentage; use e.g. 1 or 25%");
        match text.strip_suffix('%') {
            Some(number) => {
                let percent: u32 = number.trim().parse().map_err(|_| invalid())?;
                if percent > 100 {
                    return Err(format!("{text} is out of range; use 0% to 100%"));
                }
                Ok(IntOrPercent::Percent(percent))
            }
            None => text.parse().map(IntOrPercent::Count).map_err(|_| invalid()),
        }
    }
}

impl fmt::Display for IntOrPercent {
    /// As written in a spec: `3` or `25%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Count(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
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
#[derive(Debug, Clone, PartialEq)]
pub struct Rolling {
    /// Instances above `replicas` allowed during the update (default 25%).
    pub max_surge: IntOrPercent,
    /// Instances below `replicas` allowed during the update (default 25%).
    pub max_unavailable: IntOrPercent,
    /// Run after each batch becomes ready; the next batch waits for its verdict.
    pub analysis: Option<AnalysisRef>,
}

impl Rolling {
    /// `(max surge, max unavailable)` as instance counts for `replicas`, the way Kubernetes
    /// resolves them: surge rounds up, unavailable rounds down.
    pub fn resolve(&self, replicas: u32) -> (u32, u32) {
        (
            self.max_surge.round_up(replicas),
            self.max_unavailable.round_down(replicas),
        )
    }
}

impl Default for Rolling {
    /// 25% surge, 25% unavailable, no analysis.
    fn default() -> Self {
        Rolling {
            max_surge: IntOrPercent::Percent(25),
            max_unavailable: IntOrPercent::Percent(25),
            analysis: None,
        }
    }
}

/// Blue-green settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BlueGreen {
    /// Listen address that serves the preview stack before promotion.
    pub preview_listen: Option<SocketAddr>,
    /// Checks the preview stack must pass before it is promoted.
    pub pre_promotion_checks: Vec<Check>,
    /// Analysis of the preview stack; promotion waits for a successful verdict.
    pub pre_promotion_analysis: Option<AnalysisRef>,
    /// Analysis of the new stack once it takes all traffic; a failure switches back while the
    /// previous stack is still up.
    pub post_promotion_analysis: Option<AnalysisRef>,
    /// Promote without a person once the checks pass, after this delay; `None` waits for
    /// `ramp promote`.
    pub auto_promotion_delay: Option<Duration>,
    /// How long the previous stack stays up after the switch, so rollback is a routing change
    /// (default 30s).
    pub scale_down_delay: Duration,
}

impl Default for BlueGreen {
    /// No preview listener, no checks or analysis, promotion by a person, 30s scale-down
    /// delay.
    fn default() -> Self {
        BlueGreen {
            preview_listen: None,
            pre_promotion_checks: Vec::new(),
            pre_promotion_analysis: None,
            post_promotion_analysis: None,
            auto_promotion_delay: None,
            scale_down_delay: Duration::from_secs(30),
        }
    }
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
    /// What the canary is compared with (default [`Baseline::Stable`]).
    pub baseline: Baseline,
    /// Analysis running in the background from a step to the end of the canary; `None` when
    /// turned off (`enabled: false`). Left out, it is Ramp's default judge from step 0.
    pub analysis: Option<BackgroundAnalysis>,
}

/// What a canary is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Baseline {
    /// The stable revision's own instances (default): nothing extra runs, but they have been
    /// up for longer than the canary and serve most of the traffic.
    #[default]
    Stable,
    /// A baseline stack of the stable revision started with the canary and sized and weighted
    /// like it, so the two differ only in their revision.
    Fresh,
}

/// Analysis over the whole canary, alongside its steps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackgroundAnalysis {
    /// The templates and arguments; no templates means Ramp's default judge.
    pub analysis: AnalysisRef,
    /// Index of the step it starts at (default 0).
    pub starting_step: usize,
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
    /// Run analysis templates (none: Ramp's default judge) and wait for their verdict.
    Analysis(AnalysisRef),
}
