//! What an analysis is made of, as validated plain values: templates with arguments, metrics
//! with Argo Rollouts' limits, and where each metric's measurements come from. The YAML
//! documents are parsed and located by `ramp-model`; this crate only runs them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A named, reusable set of metrics (Argo's `AnalysisTemplate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplate {
    /// Unique among a service's templates.
    pub name: String,
    /// Arguments, referenced as `{{args.NAME}}` in conditions and provider settings.
    pub args: Vec<TemplateArg>,
    /// Metrics, each measured on its own schedule.
    pub metrics: Vec<Metric>,
}

/// A template argument; one without a value must be given one where the template is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateArg {
    /// Name.
    pub name: String,
    /// Default value.
    pub value: Option<String>,
}

/// One metric: how often it is measured, what counts as success, and how many bad
/// measurements are tolerated. Field meanings and defaults are Argo Rollouts'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Unique within its template.
    pub name: String,
    /// Time between measurements. With neither `interval` nor `count` the metric is measured
    /// once; with `interval` only, until the analysis is stopped.
    pub interval: Option<Duration>,
    /// Number of measurements after which the metric is done.
    pub count: Option<u32>,
    /// Wait before the first measurement (default 0s).
    pub initial_delay: Duration,
    /// CEL over `result`: a measurement is successful when it holds.
    pub success_condition: Option<String>,
    /// CEL over `result`: a measurement has failed when it holds.
    pub failure_condition: Option<String>,
    /// Failed measurements tolerated, in total (default 0); `-1` tolerates any number.
    pub failure_limit: i32,
    /// Inconclusive measurements tolerated, in total (default 0); `-1` tolerates any number.
    pub inconclusive_limit: i32,
    /// Consecutive provider errors tolerated (default 4); `-1` tolerates any number.
    pub consecutive_error_limit: i32,
    /// Consecutive successful measurements that end the metric early as successful (0 = off).
    pub consecutive_success_limit: u32,
    /// Measured and recorded, but never fails the analysis.
    pub dry_run: bool,
    /// Where measurements come from.
    pub provider: Provider,
}

impl Metric {
    /// Argo's default for `consecutiveErrorLimit`.
    pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i32 = 4;

    /// A metric with Argo's defaults: measured once, no conditions, no failures or
    /// inconclusive results tolerated, four consecutive errors tolerated.
    pub fn new(name: impl Into<String>, provider: Provider) -> Metric {
        Metric {
            name: name.into(),
            interval: None,
            count: None,
            initial_delay: Duration::ZERO,
            success_condition: None,
            failure_condition: None,
            failure_limit: 0,
            inconclusive_limit: 0,
            consecutive_error_limit: Metric::DEFAULT_CONSECUTIVE_ERROR_LIMIT,
            consecutive_success_limit: 0,
            dry_run: false,
            provider,
        }
    }
}

/// Where a metric's measurements come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Provider {
    /// The router's own per-revision request metrics.
    Builtin(BuiltinQuery),
    /// A PromQL instant query over Prometheus' HTTP API; `result` is the sample value when the
    /// answer is one sample, else the list of values.
    Prometheus(PrometheusQuery),
    /// An HTTP GET whose JSON answer (or the part `jsonPath` picks) is `result`.
    Web(WebQuery),
    /// A command: `result` is the number (or `true` / `false`) it prints on its last line of
    /// stdout, or `true` when it prints none; a non-zero exit is a provider error.
    Command(CommandQuery),
    /// Canary against baseline with an always-valid sequential test (Ramp's judge).
    Sequential(SequentialSettings),
    /// Canary against baseline with Mann-Whitney tests and a weighted score (Kayenta's judge).
    MannWhitney(MannWhitneySettings),
}

impl Provider {
    /// Judges compare canary and baseline and decide a measurement's phase themselves;
    /// other providers return a value that the conditions decide on.
    pub fn is_judge(&self) -> bool {
        matches!(self, Provider::Sequential(_) | Provider::MannWhitney(_))
    }
}

/// Which revision a builtin query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    /// The revision being rolled out (default).
    Canary,
    /// What the canary is compared with: the fresh baseline stack when there is one, else the
    /// stable revision.
    Baseline,
    /// The stable revision's own stack.
    Stable,
}

/// A builtin measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BuiltinMetric {
    /// 5xx responses and upstream failures over requests, in [0, 1].
    ErrorRate,
    /// 1 - error rate.
    SuccessRate,
    /// Requests per second.
    RequestRate,
    /// Requests answered.
    Requests,
    /// A latency quantile in seconds; the quantile is in (0, 1).
    Latency(f64),
}

/// A query of the router's request metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuiltinQuery {
    /// What is measured.
    pub metric: BuiltinMetric,
    /// Whose requests.
    pub target: Target,
    /// Over the last `window`; `None` = since the analysis started.
    pub window: Option<Duration>,
}

/// A Prometheus query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusQuery {
    /// Base URL, e.g. `http://127.0.0.1:9090`.
    pub address: String,
    /// PromQL.
    pub query: String,
    /// Gives up after this long (default 10s).
    pub timeout: Duration,
}

/// A web query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebQuery {
    /// `http://` URL.
    pub url: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// A path into the JSON answer: `$.a.b[0].c`; `None` = the whole answer.
    pub json_path: Option<String>,
    /// Gives up after this long (default 10s).
    pub timeout: Duration,
}

/// A command query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandQuery {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Killed and counted as an error after this long (default 60s).
    pub timeout: Duration,
}

/// Settings of the sequential judge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequentialSettings {
    /// Chance of failing a canary that is as good as its baseline, over the whole analysis
    /// however often it looks (default 0.01). With both checks on, errors get three quarters
    /// of it and latency one quarter.
    pub false_alarm_rate: f64,
    /// Compare error rates (default on).
    pub errors: bool,
    /// Compare latency (default on).
    pub latency: bool,
    /// Smallest canary/baseline error-rate ratio worth detecting (default 1.5): the test's
    /// evidence is tuned for ratios from here up.
    pub min_error_ratio: f64,
    /// Smallest latency increase worth detecting, as a ratio of typical latencies (default
    /// 1.1 = 10% slower).
    pub min_latency_ratio: f64,
    /// The canary's first requests whose latencies are not judged (default 100): a new
    /// instance answers its first requests slower (connections, caches, lazily loaded code)
    /// than one that has been serving. Its errors are judged from the first request.
    pub latency_warmup_requests: u64,
}

impl Default for SequentialSettings {
    fn default() -> Self {
        SequentialSettings {
            false_alarm_rate: 0.01,
            errors: true,
            latency: true,
            min_error_ratio: 1.5,
            min_latency_ratio: 1.1,
            latency_warmup_requests: 100,
        }
    }
}

/// Settings of the Mann-Whitney (Kayenta-style) judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MannWhitneySettings {
    /// The metrics compared and scored.
    pub metrics: Vec<ComparedMetric>,
    /// Confidence of the interval on the difference (default 0.98).
    pub confidence: f64,
    /// A score at or above this passes (default 75).
    pub pass_score: f64,
    /// A score at or below this fails; between the two is marginal, i.e. inconclusive
    /// (default 50).
    pub marginal_score: f64,
}

/// One metric the Mann-Whitney judge compares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComparedMetric {
    /// Name shown in verdicts.
    pub name: String,
    /// What is compared.
    pub measure: Measure,
    /// Which change is bad.
    pub direction: Direction,
    /// A failure of this metric fails the whole judgement.
    pub critical: bool,
    /// Weight in the score (default 1).
    pub weight: f64,
    /// Increases up to this ratio of the baseline are tolerated (default 1.0).
    pub allowed_increase: f64,
    /// Decreases down to this ratio of the baseline are tolerated (default 1.0).
    pub allowed_decrease: f64,
    /// Remove outliers beyond 3 IQR before testing (default off).
    pub remove_outliers: bool,
}

/// What a compared metric looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Measure {
    /// Error rate per time slice.
    ErrorRate,
    /// Latency of each request.
    Latency,
}

/// Which way a metric must not move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Higher is worse (errors, latency).
    Increase,
    /// Lower is worse (throughput, success rate).
    Decrease,
    /// Any significant change is bad.
    Either,
}

/// Where templates are used: names, argument values, and (for background analysis) the
/// step it starts at.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRef {
    /// Template names; empty means Ramp's default analysis (the sequential judge on errors and
    /// latency, canary against baseline).
    pub templates: Vec<String>,
    /// Argument values by name.
    pub args: Vec<(String, String)>,
}
