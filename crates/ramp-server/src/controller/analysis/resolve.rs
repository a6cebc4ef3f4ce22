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
        interval: Some(DEFAULT_INTERVAL),
        count: (kind != AnalysisKind::Background).then_some(DEFAULT_COUNT),
        ..Metric::new(
            "canary-vs-baseline",
            Provider::Sequential(SequentialSettings::default()),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Step 1 uses `checks` with `host` given and `threshold` left at its default; step 2
    /// uses the default judge.
    const SPEC: &str = r#"apiVersion: ramp/v1
kind: Service
metadata:
  name: web
spec:
  replicas: 2
  listen: 127.0.0.1:8080
  template:
    command: ./web
  analysisTemplates:
    - name: checks
      args: [{name: threshold, value: "0.05"}, {name: host, value: 127.0.0.1}]
      metrics:
        - name: errors
          successCondition: "result < {{args.threshold}}"
          failureCondition: "result >= {{ args.threshold }} * 2.0"
          provider:
            builtin: {metric: errorRate}
        - name: prom
          provider:
            prometheus: {address: "http://{{args.host}}:9090", query: "up{instance='{{args.host}}'}"}
        - name: page
          provider:
            web:
              url: "http://{{args.host}}/x"
              headers: [{key: X-Host, value: "{{args.host}}"}]
              jsonPath: "$.{{args.host}}"
        - name: script
          provider:
            command: {command: ["./check.sh", "{{args.host}}"]}
  strategy:
    canary:
      analysis:
        templates: []
      steps:
        - setWeight: 20
        - analysis:
            templates: [{templateName: checks}]
            args: [{name: host, value: 10.0.0.1}]
        - analysis: {}
"#;

    fn spec() -> ServiceSpec {
        ServiceSpec::from_yaml(SPEC).expect("valid spec")
    }

    #[test]
    fn arguments_fill_conditions_and_every_provider_setting() {
        let metrics = metrics(&spec(), AnalysisKind::Step(1)).unwrap();
        let names: Vec<&str> = metrics
            .iter()
            .map(|(t, m)| {
                assert_eq!(t, "checks");
                m.name.as_str()
            })
            .collect();
        assert_eq!(names, ["errors", "prom", "page", "script"]);
        let errors = &metrics[0].1;
        assert_eq!(errors.success_condition.as_deref(), Some("result < 0.05"));
        assert_eq!(
            errors.failure_condition.as_deref(),
            Some("result >= 0.05 * 2.0")
        );
        let Provider::Prometheus(q) = &metrics[1].1.provider else {
            panic!("prometheus expected");
        };
        assert_eq!(q.address, "http://10.0.0.1:9090");
        assert_eq!(q.query, "up{instance='10.0.0.1'}");
        let Provider::Web(q) = &metrics[2].1.provider else {
            panic!("web expected");
        };
        assert_eq!(q.url, "http://10.0.0.1/x");
        assert_eq!(q.headers, [("X-Host".to_string(), "10.0.0.1".to_string())]);
        assert_eq!(q.json_path.as_deref(), Some("$.10.0.0.1"));
        let Provider::Command(q) = &metrics[3].1.provider else {
            panic!("command expected");
        };
        assert_eq!(q.command, ["./check.sh", "10.0.0.1"]);
    }

    #[test]
    fn without_templates_the_default_judge_runs() {
        let spec = spec();
        let step = metrics(&spec, AnalysisKind::Step(2)).unwrap();
        assert_eq!(
            step,
            [(
                DEFAULT_TEMPLATE.to_string(),
                default_metric(AnalysisKind::Step(2))
            )]
        );
        assert_eq!(step[0].1.count, Some(DEFAULT_COUNT));
        assert!(matches!(step[0].1.provider, Provider::Sequential(_)));
        let background = metrics(&spec, AnalysisKind::Background).unwrap();
        assert_eq!(
            background[0].1.count, None,
            "watches until the rollout ends"
        );
        assert_eq!(background[0].1.interval, Some(DEFAULT_INTERVAL));
    }

    #[test]
    fn an_analysis_the_spec_lacks_is_an_error() {
        let err = metrics(&spec(), AnalysisKind::Step(0)).unwrap_err();
        assert!(err.contains("the spec has no"), "{err}");
    }

    #[test]
    fn a_missing_argument_value_is_an_error() {
        let mut spec = spec();
        spec.analysis_templates[0].args[1].value = None;
        let Strategy::Canary(c) = &mut spec.strategy else {
            panic!("canary expected");
        };
        let Some(CanaryStep::Analysis(r)) = c.steps.get_mut(1) else {
            panic!("analysis step expected");
        };
        r.args.clear();
        let err = metrics(&spec, AnalysisKind::Step(1)).unwrap_err();
        assert_eq!(err, "template checks: argument host has no value");
    }
}
