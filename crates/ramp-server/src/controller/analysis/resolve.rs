//! From a wanted analysis to the metrics it runs: the templates it names with their
//! arguments filled in, or Ramp's default judge.

use std::collections::BTreeMap;
use std::time::Duration;

use ramp_analysis::condition::substitute;
use ramp_analysis::{AnalysisRef, Metric, Provider, SequentialSettings};
use ramp_model::{CanaryStep, ServiceSpec, Strategy};
use ramp_rollout::AnalysisKind;

/// The template name shown for Ramp's default judge.
pub(super) const DEFAULT_TEMPLATE: &str = "default";

/// How often the default judge reports; it watches every tick in between.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Measurements of the default judge at a step (or a blue-green or batch analysis): one at
/// once and three more, so it watches for 30 seconds.
const DEFAULT_COUNT: u32 = 4;

/// The spec's reference for an analysis, if the spec still has it.
fn reference(spec: &ServiceSpec, kind: AnalysisKind) -> Option<&AnalysisRef> {
    match (&spec.strategy, kind) {
        (Strategy::Canary(c), AnalysisKind::Step(i)) => match c.steps.get(i) {
            Some(CanaryStep::Analysis(r)) => Some(r),
            _ => None,
        },
        (Strategy::Canary(c), AnalysisKind::Background) => c.analysis.as_ref().map(|b| &b.analysis),
        (Strategy::BlueGreen(b), AnalysisKind::PrePromotion) => b.pre_promotion_analysis.as_ref(),
        (Strategy::BlueGreen(b), AnalysisKind::PostPromotion) => b.post_promotion_analysis.as_ref(),
        (Strategy::Rolling(r), AnalysisKind::Batch(_)) => r.analysis.as_ref(),
        _ => None,
    }
}

/// The metrics an analysis runs, each with its template's name, arguments substituted.
pub(super) fn metrics(
    spec: &ServiceSpec,
    kind: AnalysisKind,
) -> Result<Vec<(String, Metric)>, String> {
    let r = reference(spec, kind).ok_or_else(|| format!("the spec has no {kind}"))?;
    if r.templates.is_empty() {
        return Ok(vec![(DEFAULT_TEMPLATE.to_string(), default_metric(kind))]);
    }
    let mut metrics = Vec::new();
    for name in &r.templates {
        let template = spec
            .template(name)
            .ok_or_else(|| format!("analysis template {name} is not defined"))?;
        let mut args: BTreeMap<String, String> = template
            .args
            .iter()
            .filter_map(|a| Some((a.name.clone(), a.value.clone()?)))
            .collect();
        for (arg, value) in &r.args {
            if template.args.iter().any(|a| &a.name == arg) {
                args.insert(arg.clone(), value.clone());
            }
        }
        if let Some(missing) = template.args.iter().find(|a| !args.contains_key(&a.name)) {
            return Err(format!(
                "template {name}: argument {} has no value",
                missing.name
            ));
        }
        for metric in &template.metrics {
            let metric = with_args(metric, &args)
                .map_err(|e| format!("template {name}, metric {}: {e}", metric.name))?;
            metrics.push((template.name.clone(), metric));
        }
    }
    Ok(metrics)
}

/// Ramp's default: the sequential judge on errors and latency, canary against baseline. In
/// the background it watches until the rollout ends; elsewhere for 30 seconds.
pub(super) fn default_metric(kind: AnalysisKind) -> Metric {
    Metric {
        name: "canary-vs-baseline".into(),
        interval: Some(DEFAULT_INTERVAL),
        count: (kind != AnalysisKind::Background).then_some(DEFAULT_COUNT),
        initial_delay: Duration::ZERO,
        success_condition: None,
        failure_condition: None,
        failure_limit: 0,
        inconclusive_limit: 0,
        consecutive_error_limit: Metric::DEFAULT_CONSECUTIVE_ERROR_LIMIT,
        consecutive_success_limit: 0,
        dry_run: false,
        provider: Provider::Sequential(SequentialSettings::default()),
    }
}

/// A metric with `{{args.NAME}}` replaced in its conditions and provider settings.
fn with_args(metric: &Metric, args: &BTreeMap<String, String>) -> Result<Metric, String> {
    let sub = |text: &String| substitute(text, args);
    let mut m = metric.clone();
    m.success_condition = m.success_condition.as_ref().map(sub).transpose()?;
    m.failure_condition = m.failure_condition.as_ref().map(sub).transpose()?;
    match &mut m.provider {
        Provider::Prometheus(q) => {
            q.address = sub(&q.address)?;
            q.query = sub(&q.query)?;
        }
        Provider::Web(q) => {
            q.url = sub(&q.url)?;
            for (_, value) in &mut q.headers {
                *value = sub(value)?;
            }
            q.json_path = q.json_path.as_ref().map(sub).transpose()?;
        }
        Provider::Command(q) => {
            for arg in &mut q.command {
                *arg = sub(arg)?;
            }
        }
        Provider::Builtin(_) | Provider::Sequential(_) | Provider::MannWhitney(_) => {}
    }
    Ok(m)
}
