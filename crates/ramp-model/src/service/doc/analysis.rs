//! Analysis as written: templates with their metrics and providers, and the places a
//! strategy refers to templates. Names of kinds (`errorRate`, `canary`, `increase`) are read as
//! text so the validation can say which names are allowed.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Present, present};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct AnalysisTemplateDoc {
    pub(in crate::service) name: Spanned<String>,
    pub(in crate::service) args: Option<Vec<Spanned<TemplateArgDoc>>>,
    pub(in crate::service) metrics: Spanned<Vec<Spanned<MetricDoc>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct TemplateArgDoc {
    pub(in crate::service) name: Spanned<String>,
    pub(in crate::service) value: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct MetricDoc {
    pub(in crate::service) name: Spanned<String>,
    pub(in crate::service) interval: Option<Spanned<String>>,
    pub(in crate::service) count: Option<Spanned<i64>>,
    pub(in crate::service) initial_delay: Option<Spanned<String>>,
    pub(in crate::service) success_condition: Option<Spanned<String>>,
    pub(in crate::service) failure_condition: Option<Spanned<String>>,
    pub(in crate::service) failure_limit: Option<Spanned<i64>>,
    pub(in crate::service) inconclusive_limit: Option<Spanned<i64>>,
    pub(in crate::service) consecutive_error_limit: Option<Spanned<i64>>,
    pub(in crate::service) consecutive_success_limit: Option<Spanned<i64>>,
    pub(in crate::service) dry_run: Option<bool>,
    pub(in crate::service) provider: Spanned<ProviderDoc>,
}

/// Exactly one key, checked by the validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct ProviderDoc {
    pub(in crate::service) builtin: Option<Spanned<BuiltinDoc>>,
    pub(in crate::service) prometheus: Option<Spanned<PrometheusDoc>>,
    pub(in crate::service) web: Option<Spanned<WebDoc>>,
    pub(in crate::service) command: Option<Spanned<CommandDoc>>,
    #[serde(default, deserialize_with = "present")]
    pub(in crate::service) sequential: Present<SequentialDoc>,
    pub(in crate::service) mann_whitney: Option<Spanned<MannWhitneyDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct BuiltinDoc {
    pub(in crate::service) metric: Spanned<String>,
    pub(in crate::service) quantile: Option<Spanned<f64>>,
    pub(in crate::service) target: Option<Spanned<String>>,
    pub(in crate::service) window: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct PrometheusDoc {
    pub(in crate::service) address: Spanned<String>,
    pub(in crate::service) query: Spanned<String>,
    pub(in crate::service) timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct WebDoc {
    pub(in crate::service) url: Spanned<String>,
    pub(in crate::service) headers: Option<Vec<Spanned<HeaderDoc>>>,
    pub(in crate::service) json_path: Option<Spanned<String>>,
    pub(in crate::service) timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct HeaderDoc {
    pub(in crate::service) key: Spanned<String>,
    pub(in crate::service) value: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct CommandDoc {
    pub(in crate::service) command: Spanned<Vec<Spanned<String>>>,
    pub(in crate::service) timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct SequentialDoc {
    pub(in crate::service) false_alarm_rate: Option<Spanned<f64>>,
    pub(in crate::service) errors: Option<bool>,
    pub(in crate::service) latency: Option<bool>,
    pub(in crate::service) min_error_ratio: Option<Spanned<f64>>,
    pub(in crate::service) min_latency_ratio: Option<Spanned<f64>>,
    pub(in crate::service) latency_warmup_requests: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct MannWhitneyDoc {
    pub(in crate::service) confidence: Option<Spanned<f64>>,
    pub(in crate::service) score_thresholds: Option<Spanned<ScoreThresholdsDoc>>,
    pub(in crate::service) metrics: Spanned<Vec<Spanned<ComparedMetricDoc>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct ScoreThresholdsDoc {
    pub(in crate::service) pass: Option<Spanned<f64>>,
    pub(in crate::service) marginal: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct ComparedMetricDoc {
    pub(in crate::service) name: Spanned<String>,
    pub(in crate::service) measure: Spanned<String>,
    pub(in crate::service) direction: Option<Spanned<String>>,
    pub(in crate::service) critical: Option<bool>,
    pub(in crate::service) weight: Option<Spanned<f64>>,
    pub(in crate::service) allowed_increase: Option<Spanned<f64>>,
    pub(in crate::service) allowed_decrease: Option<Spanned<f64>>,
    pub(in crate::service) remove_outliers: Option<bool>,
}

/// Where a strategy uses templates: a step, a blue-green promotion, a rolling batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct AnalysisRefDoc {
    pub(in crate::service) templates: Option<Vec<Spanned<TemplateRefDoc>>>,
    pub(in crate::service) args: Option<Vec<Spanned<ArgDoc>>>,
}

/// A canary's background analysis: a reference plus where it starts and whether it runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct BackgroundAnalysisDoc {
    pub(in crate::service) templates: Option<Vec<Spanned<TemplateRefDoc>>>,
    pub(in crate::service) args: Option<Vec<Spanned<ArgDoc>>>,
    pub(in crate::service) starting_step: Option<Spanned<i64>>,
    pub(in crate::service) enabled: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct TemplateRefDoc {
    pub(in crate::service) template_name: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(in crate::service) struct ArgDoc {
    pub(in crate::service) name: Spanned<String>,
    pub(in crate::service) value: Spanned<String>,
}
