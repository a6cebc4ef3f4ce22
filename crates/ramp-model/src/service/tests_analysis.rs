//! Analysis templates and their uses: parsing, defaults, and every problem with its place.

use std::time::Duration;

use proptest::prelude::{Just, TestCaseError, any, prop_assert, prop_assert_eq, proptest};
use proptest::strategy::Strategy as _;
use ramp_analysis::{
    AnalysisRef, AnalysisTemplate, BuiltinMetric, BuiltinQuery, CommandQuery, ComparedMetric,
    Direction, MannWhitneySettings, Measure, Metric, PrometheusQuery, Provider, SequentialSettings,
    Target, TemplateArg, WebQuery,
};

use super::tests::{problems, secs, syntax};
use super::*;

/// Every provider, most fields set, used by a canary's steps and its background analysis.
const ANALYSIS: &str = r#"apiVersion: ramp/v1
kind: Service
metadata:
  name: web
spec:
  replicas: 2
  listen: 127.0.0.1:8080
  template:
    command: ./web
  analysisTemplates:
    - name: error-rate
      args: [{name: threshold, value: "0.05"}, {name: window}]
      metrics:
        - name: errors
          interval: 5s
          count: 12
          initialDelay: 10s
          successCondition: "result < {{args.threshold}}"
          failureCondition: "result >= 0.1"
          failureLimit: 2
          inconclusiveLimit: 1
          consecutiveErrorLimit: 3
          consecutiveSuccessLimit: 5
          dryRun: true
          provider:
            builtin: {metric: errorRate, target: baseline, window: 30s}
        - name: p99
          provider:
            builtin: {metric: latency, quantile: 0.99}
    - name: external
      args: [{name: host, value: 127.0.0.1}]
      metrics:
        - name: prom
          interval: 10s
          successCondition: "result < 1"
          provider:
            prometheus: {address: "http://{{args.host}}:9090", query: "sum(rate(x[1m]))", timeout: 5s}
        - name: page
          successCondition: "result == 'ok'"
          provider:
            web:
              url: "http://{{args.host}}:9000/x"
              headers: [{key: Authorization, value: "Bearer t"}]
              jsonPath: "$.data.value"
        - name: script
          provider:
            command: {command: ["./check.sh", "{{args.host}}"], timeout: 30s}
    - name: judges
      metrics:
        - name: sequential
          interval: 10s
          provider:
            sequential: {falseAlarmRate: 0.05, errors: true, latency: false, minErrorRatio: 2, minLatencyRatio: 1.2, latencyWarmupRequests: 500}
        - name: kayenta
          interval: 1m
          count: 5
          provider:
            mannWhitney:
              confidence: 0.95
              scoreThresholds: {pass: 80, marginal: 60}
              metrics:
                - {name: errors, measure: errorRate, direction: increase, critical: true, weight: 2, allowedIncrease: 1.1, allowedDecrease: 0.9, removeOutliers: true}
                - {name: latency, measure: latency}
  strategy:
    canary:
      baseline: fresh
      analysis:
        templates: [{templateName: judges}]
        startingStep: 1
      steps:
        - setWeight: 20
        - analysis:
            templates: [{templateName: error-rate}, {templateName: external}]
            args: [{name: window, value: 1m}, {name: host, value: 10.0.0.1}]
        - analysis: {}
        - setWeight: 50
"#;

/// A metric with every field but the name and provider at Argo's default.
pub(super) fn metric(name: &str, provider: Provider) -> Metric {
    Metric::new(name, provider)
}

fn arg(name: &str, value: Option<&str>) -> TemplateArg {
    TemplateArg {
        name: name.into(),
        value: value.map(Into::into),
    }
}

fn reference(templates: &[&str], args: &[(&str, &str)]) -> AnalysisRef {
    AnalysisRef {
        templates: templates.iter().map(|t| t.to_string()).collect(),
        args: (args.iter())
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn canary_of(spec: &ServiceSpec) -> &Canary {
    match &spec.strategy {
        Strategy::Canary(c) => c,
        other => panic!("not a canary: {other:?}"),
    }
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn every_provider_parses_into_the_expected_templates() {
    let spec = ServiceSpec::from_yaml(ANALYSIS).unwrap();
    let error_rate = AnalysisTemplate {
        name: "error-rate".into(),
        args: vec![arg("threshold", Some("0.05")), arg("window", None)],
        metrics: vec![
            Metric {
                interval: Some(secs(5)),
                count: Some(12),
                initial_delay: secs(10),
                success_condition: Some("result < {{args.threshold}}".into()),
                failure_condition: Some("result >= 0.1".into()),
                failure_limit: 2,
                inconclusive_limit: 1,
                consecutive_error_limit: 3,
                consecutive_success_limit: 5,
                dry_run: true,
                ..metric(
                    "errors",
                    Provider::Builtin(BuiltinQuery {
                        metric: BuiltinMetric::ErrorRate,
                        target: Target::Baseline,
                        window: Some(secs(30)),
                    }),
                )
            },
            metric(
                "p99",
                Provider::Builtin(BuiltinQuery {
                    metric: BuiltinMetric::Latency(0.99),
                    target: Target::Canary,
                    window: None,
                }),
            ),
        ],
    };
    let external = AnalysisTemplate {
        name: "external".into(),
        args: vec![arg("host", Some("127.0.0.1"))],
        metrics: vec![
            Metric {
                interval: Some(secs(10)),
                success_condition: Some("result < 1".into()),
                ..metric(
                    "prom",
                    Provider::Prometheus(PrometheusQuery {
                        address: "http://{{args.host}}:9090".into(),
                        query: "sum(rate(x[1m]))".into(),
                        timeout: secs(5),
                    }),
                )
            },
            Metric {
                success_condition: Some("result == 'ok'".into()),
                ..metric(
                    "page",
                    Provider::Web(WebQuery {
                        url: "http://{{args.host}}:9000/x".into(),
                        headers: vec![("Authorization".into(), "Bearer t".into())],
                        json_path: Some("$.data.value".into()),
                        timeout: secs(10),
                    }),
                )
            },
            metric(
                "script",
                Provider::Command(CommandQuery {
                    command: vec!["./check.sh".into(), "{{args.host}}".into()],
                    timeout: secs(30),
                }),
            ),
        ],
    };
    let judges = AnalysisTemplate {
        name: "judges".into(),
        args: vec![],
        metrics: vec![
            Metric {
                interval: Some(secs(10)),
                ..metric(
                    "sequential",
                    Provider::Sequential(SequentialSettings {
                        false_alarm_rate: 0.05,
                        errors: true,
                        latency: false,
                        min_error_ratio: 2.0,
                        min_latency_ratio: 1.2,
                        latency_warmup_requests: 500,
                    }),
                )
            },
            Metric {
                interval: Some(secs(60)),
                count: Some(5),
                ..metric(
                    "kayenta",
                    Provider::MannWhitney(MannWhitneySettings {
                        metrics: vec![
                            ComparedMetric {
                                name: "errors".into(),
                                measure: Measure::ErrorRate,
                                direction: Direction::Increase,
                                critical: true,
                                weight: 2.0,
                                allowed_increase: 1.1,
                                allowed_decrease: 0.9,
                                remove_outliers: true,
                            },
                            ComparedMetric {
                                name: "latency".into(),
                                measure: Measure::Latency,
                                direction: Direction::Increase,
                                critical: false,
                                weight: 1.0,
                                allowed_increase: 1.0,
                                allowed_decrease: 1.0,
                                remove_outliers: false,
                            },
                        ],
                        confidence: 0.95,
                        pass_score: 80.0,
                        marginal_score: 60.0,
                    }),
                )
            },
        ],
    };
    assert_eq!(spec.analysis_templates, [error_rate, external, judges]);
    assert_eq!(spec.template("external").map(|t| t.metrics.len()), Some(3));
    assert_eq!(spec.template("missing"), None);

    let canary = canary_of(&spec);
    assert_eq!(canary.baseline, Baseline::Fresh);
    assert_eq!(
        canary.analysis,
        Some(BackgroundAnalysis {
            analysis: reference(&["judges"], &[]),
            starting_step: 1,
        })
    );
    assert_eq!(
        canary.steps,
        [
            CanaryStep::SetWeight(20),
            CanaryStep::Analysis(reference(
                &["error-rate", "external"],
                &[("window", "1m"), ("host", "10.0.0.1")],
            )),
            CanaryStep::Analysis(AnalysisRef::default()),
            CanaryStep::SetWeight(50),
        ]
    );
}

/// A service with one template `t` holding `metric` (indented as a list item of `metrics:`)
/// and a canary of one step.
fn with_metric(metric: &str) -> String {
    format!(
        "apiVersion: ramp/v1
kind: Service
metadata:
  name: web
spec:
  replicas: 1
  listen: 127.0.0.1:8080
  template:
    command: ./web
  analysisTemplates:
    - name: t
      metrics:
        - {metric}
  strategy:
    canary:
      steps:
        - setWeight: 50
"
    )
}

fn only_metric(text: &str) -> Metric {
    let spec = ServiceSpec::from_yaml(text).unwrap();
    spec.analysis_templates[0].metrics[0].clone()
}

#[test]
fn metric_and_provider_defaults_are_argos() {
    let builtin = only_metric(&with_metric(
        "{name: m, provider: {builtin: {metric: errorRate}}}",
    ));
    let expected = metric(
        "m",
        Provider::Builtin(BuiltinQuery {
            metric: BuiltinMetric::ErrorRate,
            target: Target::Canary,
            window: None,
        }),
    );
    assert_eq!(builtin, expected);
    // Argo's defaults, written out so that a change to `Metric::new` cannot hide one here.
    assert_eq!(
        (builtin.interval, builtin.count, builtin.initial_delay),
        (None, None, Duration::ZERO)
    );
    assert_eq!(
        (builtin.success_condition, builtin.failure_condition),
        (None, None)
    );
    assert_eq!(builtin.failure_limit, 0);
    assert_eq!(builtin.inconclusive_limit, 0);
    assert_eq!(builtin.consecutive_error_limit, 4);
    assert_eq!(builtin.consecutive_success_limit, 0);
    assert!(!builtin.dry_run);

    for written in ["sequential: {}", "sequential:"] {
        let text = with_metric(&format!(
            "name: m\n          provider:\n            {written}"
        ));
        assert_eq!(
            only_metric(&text).provider,
            Provider::Sequential(SequentialSettings::default()),
            "{written}"
        );
    }

    let text =
        with_metric("{name: m, provider: {prometheus: {address: \"http://p:9090\", query: up}}}");
    let Provider::Prometheus(query) = only_metric(&text).provider else {
        panic!()
    };
    assert_eq!(query.timeout, secs(10));

    let text = with_metric("{name: m, provider: {web: {url: \"http://w/x\"}}}");
    assert_eq!(
        only_metric(&text).provider,
        Provider::Web(WebQuery {
            url: "http://w/x".into(),
            headers: vec![],
            json_path: None,
            timeout: secs(10),
        })
    );

    let text = with_metric("{name: m, provider: {command: {command: [./c]}}}");
    let Provider::Command(command) = only_metric(&text).provider else {
        panic!()
    };
    assert_eq!(command.timeout, secs(60));

    let text = with_metric(
        "{name: m, provider: {mannWhitney: {metrics: [{name: e, measure: errorRate}]}}}",
    );
    let Provider::MannWhitney(settings) = only_metric(&text).provider else {
        panic!()
    };
    assert_eq!(
        (
            settings.confidence,
            settings.pass_score,
            settings.marginal_score
        ),
        (0.98, 75.0, 50.0)
    );
    let compared = &settings.metrics[0];
    assert_eq!(
        (compared.direction, compared.critical, compared.weight),
        (Direction::Increase, false, 1.0)
    );
    assert_eq!(
        (compared.allowed_increase, compared.allowed_decrease),
        (1.0, 1.0)
    );
    assert!(!compared.remove_outliers);

    // -1 turns a limit off.
    let text = with_metric(
        "{name: m, failureLimit: -1, consecutiveErrorLimit: -1, provider: {builtin: {metric: requests}}}",
    );
    let unlimited = only_metric(&text);
    assert_eq!(
        (unlimited.failure_limit, unlimited.consecutive_error_limit),
        (-1, -1)
    );
}

#[test]
fn a_canary_gets_the_default_background_analysis_unless_it_is_turned_off() {
    let canary = |analysis: &str| {
        let text = with_metric("{name: m, provider: {builtin: {metric: errorRate}}}")
            .replace("    canary:\n", &format!("    canary:\n{analysis}"));
        let spec = ServiceSpec::from_yaml(&text).unwrap();
        canary_of(&spec).clone()
    };
    let absent = canary("");
    assert_eq!(absent.baseline, Baseline::Stable);
    assert_eq!(absent.analysis, Some(BackgroundAnalysis::default()));
    assert_eq!(
        BackgroundAnalysis::default().analysis.templates,
        Vec::<String>::new()
    );
    assert_eq!(canary("      analysis: {enabled: false}\n").analysis, None);
    assert_eq!(
        canary("      analysis: {enabled: true}\n").analysis,
        Some(BackgroundAnalysis::default())
    );
    assert_eq!(
        canary("      analysis: {templates: [{templateName: t}]}\n").analysis,
        Some(BackgroundAnalysis {
            analysis: reference(&["t"], &[]),
            starting_step: 0,
        })
    );
    assert_eq!(
        canary("      baseline: stable\n").baseline,
        Baseline::Stable
    );

    // A step's analysis with nothing in it is Ramp's default judge.
    let text = with_metric("{name: m, provider: {builtin: {metric: errorRate}}}")
        .replace("- setWeight: 50", "- analysis:");
    let spec = ServiceSpec::from_yaml(&text).unwrap();
    assert_eq!(
        canary_of(&spec).steps,
        [CanaryStep::Analysis(AnalysisRef::default())]
    );
}

/// A service whose strategy is `strategy` (indented under `strategy:`), with templates that
/// need an argument (`a`) and that do not (`b`).
fn with_strategy(strategy: &str) -> String {
    format!(
        "apiVersion: ramp/v1
kind: Service
metadata:
  name: web
spec:
  replicas: 4
  listen: 127.0.0.1:8080
  template:
    command: ./web
  analysisTemplates:
    - name: a
      args: [{{name: x}}]
      metrics: [{{name: m, provider: {{command: {{command: [./c, \"{{{{args.x}}}}\"]}}}}}}]
    - name: b
      metrics: [{{name: m, provider: {{builtin: {{metric: errorRate}}}}}}]
  strategy:
{strategy}"
    )
}

#[test]
fn blue_green_and_rolling_take_analysis() {
    let text = with_strategy(
        "    blueGreen:
      prePromotionAnalysis:
        templates: [{templateName: a}]
        args: [{name: x, value: \"1\"}]
      postPromotionAnalysis: {templates: [{templateName: b}]}
",
    );
    let Strategy::BlueGreen(bg) = ServiceSpec::from_yaml(&text).unwrap().strategy else {
        panic!()
    };
    assert_eq!(
        bg.pre_promotion_analysis,
        Some(reference(&["a"], &[("x", "1")]))
    );
    assert_eq!(bg.post_promotion_analysis, Some(reference(&["b"], &[])));

    let text = with_strategy("    blueGreen: {}\n");
    let Strategy::BlueGreen(bg) = ServiceSpec::from_yaml(&text).unwrap().strategy else {
        panic!()
    };
    assert_eq!(
        (bg.pre_promotion_analysis, bg.post_promotion_analysis),
        (None, None)
    );

    let text = with_strategy("    rolling:\n      maxSurge: 1\n      analysis: {}\n");
    let Strategy::Rolling(rolling) = ServiceSpec::from_yaml(&text).unwrap().strategy else {
        panic!()
    };
    assert_eq!(rolling.max_surge, IntOrPercent::Count(1));
    assert_eq!(rolling.analysis, Some(AnalysisRef::default()));
    let text = with_strategy("    rolling: {}\n");
    let Strategy::Rolling(rolling) = ServiceSpec::from_yaml(&text).unwrap().strategy else {
        panic!()
    };
    assert_eq!(rolling.analysis, None);
}

#[test]
fn references_in_every_strategy_are_checked() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "    blueGreen:\n      prePromotionAnalysis: {templates: [{templateName: c}]}\n",
            "spec.strategy.blueGreen.prePromotionAnalysis.templates[0].templateName",
            "prePromotionAnalysis",
            "no analysis template named \"c\"; spec.analysisTemplates declares a and b",
        ),
        (
            "    blueGreen:\n      postPromotionAnalysis: {templates: [{templateName: a}]}\n",
            "spec.strategy.blueGreen.postPromotionAnalysis",
            "postPromotionAnalysis",
            "template \"a\" needs a value for argument \"x\"",
        ),
        (
            "    rolling:\n      analysis:\n        templates: [{templateName: a}]\n",
            "spec.strategy.rolling.analysis",
            "templates: [{templateName: a}]",
            "needs a value for argument \"x\"",
        ),
        (
            "    rolling:\n      analysis: {templates: [{templateName: b}], args: [{name: x, value: \"1\"}]}\n",
            "spec.strategy.rolling.analysis.args[0].name",
            "analysis: {templates: [{templateName: b}]",
            "no template used here declares argument \"x\" (template b)",
        ),
        (
            "    blueGreen:\n      postPromotionAnalysis: {}\n",
            "spec.strategy.blueGreen.postPromotionAnalysis.templates",
            "postPromotionAnalysis",
            "blue-green analyses need templates",
        ),
        (
            "    canary:\n      analysis: {args: [{name: x, value: \"1\"}]}\n      steps: [{setWeight: 5}]\n",
            "spec.strategy.canary.analysis.args[0].name",
            "analysis: {args",
            "default analysis takes no arguments",
        ),
    ];
    for &(strategy, path, line_needle, message) in cases {
        let text = with_strategy(strategy);
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{strategy}: {found:#?}");
        let problem = &found[0];
        assert_eq!(
            (problem.path.as_str(), problem.line),
            (path, line_of(&text, line_needle)),
            "{strategy}"
        );
        assert!(
            problem.message.contains(message),
            "{strategy}: {:?} does not say {message:?}",
            problem.message
        );
    }
}

/// Each case changes `from` in [`ANALYSIS`] to `to`, which must cause exactly one problem at
/// `path`, on the line where `line_needle` first appears, saying `message`.
struct Case {
    from: &'static str,
    to: &'static str,
    path: &'static str,
    line_needle: &'static str,
    message: &'static str,
}

const TEMPLATE_CASES: &[Case] = &[
    Case {
        from: "  strategy:",
        to: "    - name: Bad\n      metrics: [{name: m, provider: {sequential: {}}}]\n  strategy:",
        path: "spec.analysisTemplates[3].name",
        line_needle: "name: Bad",
        message: "not a template name",
    },
    Case {
        from: "  strategy:",
        to: "    - name: judges\n      metrics: [{name: m, provider: {sequential: {}}}]\n  strategy:",
        path: "spec.analysisTemplates[3].name",
        line_needle: "    - name: judges\n      metrics: [",
        message: "template \"judges\" is already declared by analysisTemplates[2]",
    },
    Case {
        from: "  strategy:",
        to: "    - name: empty\n      metrics: []\n  strategy:",
        path: "spec.analysisTemplates[3].metrics",
        line_needle: "metrics: []",
        message: "at least one metric",
    },
    Case {
        from: "{name: window}]",
        to: "{name: window}, {name: window, value: x}]",
        path: "spec.analysisTemplates[0].args[2].name",
        line_needle: "{name: window, value: x}",
        message: "argument \"window\" is already declared by args[1]",
    },
    Case {
        from: "{name: window}]",
        to: "{name: window}, {name: \"a b\", value: x}]",
        path: "spec.analysisTemplates[0].args[2].name",
        line_needle: "a b",
        message: "not an argument name",
    },
    Case {
        from: "- name: p99",
        to: "- name: errors",
        path: "spec.analysisTemplates[0].metrics[1].name",
        line_needle: "        - name: errors\n          provider",
        message: "metric \"errors\" is already declared by metrics[0]",
    },
    Case {
        from: "- name: p99",
        to: "- name: P99",
        path: "spec.analysisTemplates[0].metrics[1].name",
        line_needle: "P99",
        message: "not a metric name",
    },
    Case {
        from: "interval: 5s",
        to: "interval: 0s",
        path: "spec.analysisTemplates[0].metrics[0].interval",
        line_needle: "interval: 0s",
        message: "above 0",
    },
    Case {
        from: "count: 12",
        to: "count: 0",
        path: "spec.analysisTemplates[0].metrics[0].count",
        line_needle: "count: 0",
        message: "at least 1",
    },
    Case {
        from: "          interval: 1m\n          count: 5",
        to: "          count: 5",
        path: "spec.analysisTemplates[2].metrics[1].count",
        line_needle: "count: 5",
        message: "need an interval",
    },
    Case {
        from: "initialDelay: 10s",
        to: "initialDelay: 10",
        path: "spec.analysisTemplates[0].metrics[0].initialDelay",
        line_needle: "initialDelay",
        message: "unit",
    },
    Case {
        from: "failureLimit: 2",
        to: "failureLimit: -2",
        path: "spec.analysisTemplates[0].metrics[0].failureLimit",
        line_needle: "failureLimit",
        message: "-1 (no limit)",
    },
    Case {
        from: "failureLimit: 2",
        to: "failureLimit: 13",
        path: "spec.analysisTemplates[0].metrics[0].failureLimit",
        line_needle: "failureLimit",
        message: "more than count (12)",
    },
    Case {
        from: "inconclusiveLimit: 1",
        to: "inconclusiveLimit: 20",
        path: "spec.analysisTemplates[0].metrics[0].inconclusiveLimit",
        line_needle: "inconclusiveLimit",
        message: "more than count (12)",
    },
    Case {
        from: "consecutiveErrorLimit: 3",
        to: "consecutiveErrorLimit: -5",
        path: "spec.analysisTemplates[0].metrics[0].consecutiveErrorLimit",
        line_needle: "consecutiveErrorLimit",
        message: "-1 (no limit)",
    },
    Case {
        from: "consecutiveSuccessLimit: 5",
        to: "consecutiveSuccessLimit: -1",
        path: "spec.analysisTemplates[0].metrics[0].consecutiveSuccessLimit",
        line_needle: "consecutiveSuccessLimit",
        message: "too small",
    },
    Case {
        from: "{{args.threshold}}",
        to: "{{args.treshold}}",
        path: "spec.analysisTemplates[0].metrics[0].successCondition",
        line_needle: "successCondition",
        message: "treshold",
    },
    Case {
        from: "result >= 0.1",
        to: "result >= (0.1",
        path: "spec.analysisTemplates[0].metrics[0].failureCondition",
        line_needle: "failureCondition",
        message: "is not a valid CEL expression",
    },
    Case {
        from: "        - name: sequential\n",
        to: "        - name: sequential\n          successCondition: \"result\"\n",
        path: "spec.analysisTemplates[2].metrics[0].successCondition",
        line_needle: "successCondition: \"result\"",
        message: "a judge",
    },
];

const PROVIDER_CASES: &[Case] = &[
    Case {
        from: "builtin: {metric: latency, quantile: 0.99}",
        to: "builtin: {metric: latency, quantile: 0.99}\n            sequential: {}",
        path: "spec.analysisTemplates[0].metrics[1].provider",
        line_needle: "metric: latency",
        message: "not builtin and sequential together",
    },
    Case {
        from: "          provider:\n            builtin: {metric: latency, quantile: 0.99}",
        to: "          provider: {}",
        path: "spec.analysisTemplates[0].metrics[1].provider",
        line_needle: "provider: {}",
        message: "exactly one of builtin, prometheus, web, command, sequential or mannWhitney",
    },
    Case {
        from: "metric: errorRate,",
        to: "metric: errorRatio,",
        path: "spec.analysisTemplates[0].metrics[0].provider.builtin.metric",
        line_needle: "errorRatio",
        message: "not one of errorRate, successRate, requestRate, requests or latency",
    },
    Case {
        from: "{metric: latency, quantile: 0.99}",
        to: "{metric: latency}",
        path: "spec.analysisTemplates[0].metrics[1].provider.builtin.metric",
        line_needle: "{metric: latency}",
        message: "latency needs a quantile",
    },
    Case {
        from: "{metric: latency, quantile: 0.99}",
        to: "{metric: latency, quantile: 99}",
        path: "spec.analysisTemplates[0].metrics[1].provider.builtin.quantile",
        line_needle: "quantile: 99",
        message: "below 1",
    },
    Case {
        from: "{metric: latency, quantile: 0.99}",
        to: "{metric: requests, quantile: 0.99}",
        path: "spec.analysisTemplates[0].metrics[1].provider.builtin.quantile",
        line_needle: "quantile: 0.99",
        message: "only latency takes a quantile",
    },
    Case {
        from: "target: baseline",
        to: "target: canaries",
        path: "spec.analysisTemplates[0].metrics[0].provider.builtin.target",
        line_needle: "canaries",
        message: "canary, baseline or stable",
    },
    Case {
        from: "window: 30s",
        to: "window: 0s",
        path: "spec.analysisTemplates[0].metrics[0].provider.builtin.window",
        line_needle: "window: 0s",
        message: "above 0",
    },
    Case {
        from: "address: \"http://{{args.host}}:9090\"",
        to: "address: \"ftp://{{args.host}}\"",
        path: "spec.analysisTemplates[1].metrics[0].provider.prometheus.address",
        line_needle: "ftp://",
        message: "not an http:// URL",
    },
    Case {
        from: "address: \"http://{{args.host}}:9090\"",
        to: "address: \"https://prom.example:9090\"",
        path: "spec.analysisTemplates[1].metrics[0].provider.prometheus.address",
        line_needle: "https://prom",
        message: "https is not supported yet",
    },
    Case {
        from: "address: \"http://{{args.host}}:9090\"",
        to: "address: \"http://{{args.hots}}:9090\"",
        path: "spec.analysisTemplates[1].metrics[0].provider.prometheus.address",
        line_needle: "hots",
        message: "the template declares host",
    },
    Case {
        from: "query: \"sum(rate(x[1m]))\"",
        to: "query: \" \"",
        path: "spec.analysisTemplates[1].metrics[0].provider.prometheus.query",
        line_needle: "prometheus:",
        message: "must not be empty",
    },
    Case {
        from: "timeout: 5s}",
        to: "timeout: 0s}",
        path: "spec.analysisTemplates[1].metrics[0].provider.prometheus.timeout",
        line_needle: "prometheus:",
        message: "above 0",
    },
    Case {
        from: "url: \"http://{{args.host}}:9000/x\"",
        to: "url: \"{{args.host}}:9000/x\"",
        path: "",
        line_needle: "",
        message: "",
    },
    Case {
        from: "url: \"http://{{args.host}}:9000/x\"",
        to: "url: \"http:///x\"",
        path: "spec.analysisTemplates[1].metrics[1].provider.web.url",
        line_needle: "http:///x",
        message: "with a host",
    },
    Case {
        from: "{key: Authorization,",
        to: "{key: \"Auth orization\",",
        path: "spec.analysisTemplates[1].metrics[1].provider.web.headers[0].key",
        line_needle: "headers:",
        message: "not a valid header name",
    },
    Case {
        from: "value: \"Bearer t\"",
        to: "value: \"Bearer {{args.token}}\"",
        path: "spec.analysisTemplates[1].metrics[1].provider.web.headers[0].value",
        line_needle: "headers:",
        message: "token",
    },
    Case {
        from: "jsonPath: \"$.data.value\"",
        to: "jsonPath: \"data.value\"",
        path: "spec.analysisTemplates[1].metrics[1].provider.web.jsonPath",
        line_needle: "jsonPath",
        message: "must start with $",
    },
    Case {
        from: "command: [\"./check.sh\", \"{{args.host}}\"]",
        to: "command: []",
        path: "spec.analysisTemplates[1].metrics[2].provider.command.command",
        line_needle: "command: []",
        message: "program",
    },
    Case {
        from: "command: [\"./check.sh\", \"{{args.host}}\"]",
        to: "command: [\"./check.sh\", \"{{args.port}}\"]",
        path: "spec.analysisTemplates[1].metrics[2].provider.command.command[1]",
        line_needle: "check.sh",
        message: "port",
    },
    Case {
        from: "falseAlarmRate: 0.05",
        to: "falseAlarmRate: 0.6",
        path: "spec.analysisTemplates[2].metrics[0].provider.sequential.falseAlarmRate",
        line_needle: "falseAlarmRate",
        message: "at most 0.5",
    },
    Case {
        from: "minErrorRatio: 2",
        to: "minErrorRatio: 1",
        path: "spec.analysisTemplates[2].metrics[0].provider.sequential.minErrorRatio",
        line_needle: "minErrorRatio",
        message: "above 1",
    },
    Case {
        from: "minLatencyRatio: 1.2",
        to: "minLatencyRatio: 0.5",
        path: "spec.analysisTemplates[2].metrics[0].provider.sequential.minLatencyRatio",
        line_needle: "minLatencyRatio",
        message: "above 1",
    },
    Case {
        from: "errors: true, latency: false",
        to: "errors: false, latency: false",
        path: "spec.analysisTemplates[2].metrics[0].provider.sequential",
        line_needle: "falseAlarmRate",
        message: "compares nothing",
    },
    Case {
        from: "confidence: 0.95",
        to: "confidence: 1",
        path: "spec.analysisTemplates[2].metrics[1].provider.mannWhitney.confidence",
        line_needle: "confidence",
        message: "below 1",
    },
    Case {
        from: "{pass: 80, marginal: 60}",
        to: "{pass: 80, marginal: 90}",
        path: "spec.analysisTemplates[2].metrics[1].provider.mannWhitney.scoreThresholds",
        line_needle: "scoreThresholds",
        message: "marginal (90) must not be above pass (80)",
    },
    Case {
        from: "{pass: 80, marginal: 60}",
        to: "{pass: 180, marginal: 60}",
        path: "spec.analysisTemplates[2].metrics[1].provider.mannWhitney.scoreThresholds.pass",
        line_needle: "scoreThresholds",
        message: "0 to 100",
    },
    Case {
        from: "              metrics:\n                - {name: errors, measure: errorRate, direction: increase, critical: true, weight: 2, allowedIncrease: 1.1, allowedDecrease: 0.9, removeOutliers: true}\n                - {name: latency, measure: latency}",
        to: "              metrics: []",
        path: "spec.analysisTemplates[2].metrics[1].provider.mannWhitney.metrics",
        line_needle: "metrics: []",
        message: "at least one metric",
    },
    Case {
        from: "{name: latency, measure: latency}",
        to: "{name: errors, measure: latency}",
        path: "spec.analysisTemplates[2].metrics[1].provider.mannWhitney.metrics[1].name",
        line_needle: "{name: errors, measure: latency}",
        message: "already compared by metrics[0]",
    },
    Case {
        from: "{name: latency, measure: latency}",
        to: "{name: latency, measure: latencies}",
        path: "spec.analysisTemplates[2].metrics[1].provider.mannWhitney.metrics[1].measure",
        line_needle: "latencies",
        message: "errorRate or latency",
    },
    Case {
        from: "direction: increase",
        to: "direction: up",
        path: "spec.analysisTemplates[2].metrics[1].provider.mannWhitney.metrics[0].direction",
        line_needle: "direction: up",
        message: "increase, decrease or either",
    },
    Case {
        from: "weight: 2,",
        to: "weight: 0,",
        path: "spec.analysisTemplates[2].metrics[1].provider.mannWhitney.metrics[0].weight",
        line_needle: "weight: 0",
        message: "above 0",
    },
    Case {
        from: "allowedIncrease: 1.1",
        to: "allowedIncrease: 0.9",
        path: "spec.analysisTemplates[2].metrics[1].provider.mannWhitney.metrics[0].allowedIncrease",
        line_needle: "allowedIncrease",
        message: "1 or more",
    },
    Case {
        from: "allowedDecrease: 0.9",
        to: "allowedDecrease: 1.1",
        path: "spec.analysisTemplates[2].metrics[1].provider.mannWhitney.metrics[0].allowedDecrease",
        line_needle: "allowedDecrease",
        message: "at most 1",
    },
];

const REFERENCE_CASES: &[Case] = &[
    Case {
        from: "{templateName: external}",
        to: "{templateName: externals}",
        path: "spec.strategy.canary.steps[1].analysis.templates[1].templateName",
        line_needle: "externals",
        message: "no analysis template named \"externals\"; spec.analysisTemplates declares \
                  error-rate, external and judges",
    },
    Case {
        from: "{templateName: external}]",
        to: "{templateName: external}, {templateName: external}]",
        path: "spec.strategy.canary.steps[1].analysis.templates[2].templateName",
        line_needle: "{templateName: external}, {templateName: external}",
        message: "\"external\" is already used by templates[1]",
    },
    Case {
        from: "{templateName: external}",
        to: "{templateName: \"\"}",
        path: "spec.strategy.canary.steps[1].analysis.templates[1].templateName",
        line_needle: "templateName: \"\"",
        message: "must not be empty",
    },
    Case {
        from: "args: [{name: window, value: 1m}, ",
        to: "args: [",
        path: "spec.strategy.canary.steps[1].analysis",
        line_needle: "{templateName: error-rate}, {templateName: external}",
        message: "template \"error-rate\" needs a value for argument \"window\"",
    },
    Case {
        from: "{name: host, value: 10.0.0.1}]",
        to: "{name: host, value: 10.0.0.1}, {name: extra, value: x}]",
        path: "spec.strategy.canary.steps[1].analysis.args[2].name",
        line_needle: "extra",
        message: "no template used here declares argument \"extra\" (templates error-rate and \
                  external)",
    },
    Case {
        from: "{name: host, value: 10.0.0.1}]",
        to: "{name: host, value: 10.0.0.1}, {name: host, value: x}]",
        path: "spec.strategy.canary.steps[1].analysis.args[2].name",
        line_needle: "{name: host, value: x}",
        message: "argument \"host\" is already given by args[1]",
    },
    Case {
        from: "- analysis: {}",
        to: "- analysis: {args: [{name: x, value: \"1\"}]}",
        path: "spec.strategy.canary.steps[2].analysis.args[0].name",
        line_needle: "analysis: {args",
        message: "default analysis takes no arguments",
    },
    Case {
        from: "startingStep: 1",
        to: "startingStep: 4",
        path: "spec.strategy.canary.analysis.startingStep",
        line_needle: "startingStep",
        message: "4 is not a step; use 0 to 3",
    },
    Case {
        from: "startingStep: 1",
        to: "startingStep: -1",
        path: "spec.strategy.canary.analysis.startingStep",
        line_needle: "startingStep",
        message: "use 0 to 3",
    },
    Case {
        from: "startingStep: 1",
        to: "startingStep: 1\n        enabled: false",
        path: "spec.strategy.canary.analysis.enabled",
        line_needle: "enabled",
        message: "templates and startingStep would have no effect",
    },
    Case {
        from: "baseline: fresh",
        to: "baseline: old",
        path: "spec.strategy.canary.baseline",
        line_needle: "baseline: old",
        message: "stable or fresh",
    },
];

fn check_cases(cases: &[Case]) {
    for case in cases {
        assert!(ANALYSIS.contains(case.from), "{}", case.from);
        let text = ANALYSIS.replacen(case.from, case.to, 1);
        if case.path.is_empty() {
            // A change that must be accepted.
            ServiceSpec::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", case.to));
            continue;
        }
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{}: {found:#?}", case.to);
        let problem = &found[0];
        assert_eq!(
            (problem.path.as_str(), problem.line),
            (case.path, line_of(&text, case.line_needle)),
            "{}: {}",
            case.to,
            problem.message
        );
        assert!(
            problem.message.contains(case.message),
            "{}: {:?} does not say {:?}",
            case.to,
            problem.message,
            case.message
        );
    }
}

#[test]
fn template_and_metric_problems_name_their_path_and_line() {
    check_cases(TEMPLATE_CASES);
}

#[test]
fn provider_problems_name_their_path_and_line() {
    check_cases(PROVIDER_CASES);
}

#[test]
fn reference_problems_name_their_path_and_line() {
    check_cases(REFERENCE_CASES);
}

#[test]
fn a_cel_error_carries_the_parsers_message_on_one_line() {
    // The argument's default is filled in before the condition is compiled.
    let text = ANALYSIS.replace(
        "result < {{args.threshold}}",
        "result < {{args.threshold}} <",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    let message = &found[0].message;
    assert_eq!(
        found[0].path,
        "spec.analysisTemplates[0].metrics[0].successCondition"
    );
    assert!(
        message.starts_with("is not a valid CEL expression: "),
        "{message}"
    );
    assert!(message.contains("result < 0.05 <"), "{message}");
    assert!(!message.contains('\n'), "{message}");

    // An argument without a default stands in as 0; an unknown function is refused.
    let text = ANALYSIS.replace("result >= 0.1", "result >= {{args.window}} && nope(result)");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].message.contains("nope"), "{}", found[0].message);
}

#[test]
fn unknown_fields_in_templates_name_their_path_and_line() {
    let text = ANALYSIS.replace("initialDelay: 10s", "initialDelai: 10s");
    let (path, line, message) = syntax(&text);
    assert_eq!(
        path.as_deref(),
        Some("spec.analysisTemplates[0].metrics[0].initialDelai")
    );
    assert_eq!(line, line_of(&text, "initialDelai"));
    assert!(
        message.contains("unknown field `initialDelai`"),
        "{message}"
    );
}

#[test]
fn a_warmup_that_is_not_a_request_count_names_its_line() {
    let text = ANALYSIS.replace("latencyWarmupRequests: 500", "latencyWarmupRequests: -1");
    let (path, line, message) = syntax(&text);
    assert_eq!(
        path.as_deref(),
        Some("spec.analysisTemplates[2].metrics[0].provider.sequential")
    );
    assert_eq!(line, line_of(&text, "latencyWarmupRequests"));
    assert!(message.contains("whole number"), "{message}");
}

/// Templates `a` (argument `x`, required), `b` (argument `y`, with a default) and `c` (none).
const ROUND_TRIP: &str = "apiVersion: ramp/v1
kind: Service
metadata:
  name: web
spec:
  replicas: 1
  listen: 127.0.0.1:8080
  template:
    command: ./web
  analysisTemplates:
    - name: a
      args: [{name: x}]
      metrics: [{name: m, provider: {command: {command: [./c, \"{{args.x}}\"]}}}]
    - name: b
      args: [{name: y, value: \"1\"}]
      metrics: [{name: m, successCondition: \"result < {{args.y}}\", provider: {builtin: {metric: errorRate}}}]
    - name: c
      metrics: [{name: m, provider: {sequential: {}}}]
  strategy:
    canary:
      steps:
        - setWeight: 10
";

/// A reference to some of `a`, `b`, `c` in any order with arguments they declare (always `x`
/// when `a` is used) in any order.
fn any_reference() -> impl proptest::strategy::Strategy<Value = AnalysisRef> {
    let templates = proptest::sample::subsequence(vec!["a", "b", "c"], 0..=3).prop_shuffle();
    let value = "[a-zA-Z0-9 ./:{}-]{0,12}";
    (templates, value, value, any::<bool>(), any::<bool>()).prop_flat_map(
        |(templates, x, y, with_y, y_first)| {
            let mut args = Vec::new();
            if templates.contains(&"a") {
                args.push(("x".to_string(), x));
            }
            if templates.contains(&"b") && with_y {
                args.push(("y".to_string(), y));
            }
            if y_first {
                args.reverse();
            }
            Just(AnalysisRef {
                templates: templates.into_iter().map(String::from).collect(),
                args,
            })
        },
    )
}

/// `r` written as a step's analysis, values double-quoted (JSON strings are YAML strings).
fn step_yaml(r: &AnalysisRef) -> String {
    let templates: Vec<String> = (r.templates.iter())
        .map(|t| format!("{{templateName: {t}}}"))
        .collect();
    let args: Vec<String> = (r.args.iter())
        .map(|(n, v)| {
            format!(
                "{{name: {n}, value: {}}}",
                serde_json::to_string(v).unwrap()
            )
        })
        .collect();
    format!(
        "        - analysis: {{templates: [{}], args: [{}]}}\n",
        templates.join(", "),
        args.join(", ")
    )
}

proptest! {
    #[test]
    fn references_round_trip(r in any_reference(), background in any::<bool>()) {
        let step = step_yaml(&r);
        let text = if background {
            let body = step.trim_start().trim_start_matches("- analysis: ").trim_end();
            ROUND_TRIP.replace("    canary:\n", &format!("    canary:\n      analysis: {body}\n"))
        } else {
            format!("{ROUND_TRIP}{step}")
        };
        let spec = ServiceSpec::from_yaml(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let canary = canary_of(&spec);
        if background {
            prop_assert_eq!(
                canary.analysis.clone(),
                Some(BackgroundAnalysis { analysis: r, starting_step: 0 })
            );
        } else {
            prop_assert_eq!(canary.steps.last(), Some(&CanaryStep::Analysis(r)));
        }
    }

    #[test]
    fn a_missing_required_argument_is_always_reported(
        r in any_reference().prop_filter("uses a", |r| r.templates.contains(&"a".to_string())),
    ) {
        let mut without_x = r.clone();
        without_x.args.retain(|(name, _)| name != "x");
        let text = format!("{ROUND_TRIP}{}", step_yaml(&without_x));
        let found = problems(&text);
        prop_assert_eq!(found.len(), 1);
        prop_assert_eq!(found[0].path.as_str(), "spec.strategy.canary.steps[1].analysis");
        prop_assert!(found[0].message.contains("argument \"x\""), "{}", found[0].message);
    }

    #[test]
    fn any_url_is_accepted_or_refused_at_its_path(url in "\\PC{0,30}") {
        let text = ANALYSIS.replace(
            "\"http://{{args.host}}:9000/x\"",
            &serde_json::to_string(&url).unwrap(),
        );
        if let Err(ModelError::Invalid(found)) = ServiceSpec::from_yaml(&text) {
            for problem in found {
                prop_assert_eq!(
                    problem.path.as_str(),
                    "spec.analysisTemplates[1].metrics[1].provider.web.url"
                );
            }
        }
    }
}

#[test]
fn the_bundled_example_is_valid_and_uses_a_template_and_the_default_judge() {
    let spec = ServiceSpec::from_yaml(include_str!("../../../../examples/web.yaml"))
        .unwrap_or_else(|e| panic!("examples/web.yaml: {e}"));
    assert!(spec.template("error-rate").is_some());
    let Strategy::Canary(canary) = &spec.strategy else {
        panic!("a canary")
    };
    assert!(canary.analysis.is_some(), "the default background analysis");
    assert!(
        canary
            .steps
            .iter()
            .any(|s| matches!(s, CanaryStep::Analysis(r) if r.templates == ["error-rate"]))
    );
}
