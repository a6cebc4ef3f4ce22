use std::collections::BTreeMap;
use std::time::Duration;

use ramp_analysis::{
    AnalysisRef, AnalysisTemplate, BuiltinMetric, BuiltinQuery, Metric, Provider, Target,
    TemplateArg,
};
use ramp_route::{Condition, Source, ValueMatch};

use super::*;
use crate::error::Problem;

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn problems(text: &str) -> Vec<Problem> {
    match ServiceSpec::from_yaml(text) {
        Err(ModelError::Invalid(problems)) => problems,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

/// The only problem of `text`, as (path, line).
fn only_problem(text: &str) -> (String, usize, String) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    let p = &found[0];
    (p.path.clone(), p.line, p.message.clone())
}

/// The syntax error of `text`, as (path, line, message).
pub(super) fn syntax(text: &str) -> (Option<String>, usize, String) {
    match ServiceSpec::from_yaml(text) {
        Err(ModelError::Syntax {
            path,
            line,
            message,
            ..
        }) => (path, line, message),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

/// A builtin canary metric with every other field at its default.
fn builtin_metric(name: &str, metric: BuiltinMetric) -> Metric {
    let query = BuiltinQuery {
        metric,
        target: Target::Canary,
        window: None,
    };
    super::tests_analysis::metric(name, Provider::Builtin(query))
}

fn header(name: &str, value: ValueMatch) -> Condition {
    Condition {
        source: Source::header(name),
        value,
    }
}

/// Every canary feature, most fields set.
const FULL_CANARY: &str = r#"apiVersion: ramp/v1
kind: Service
metadata:
  name: web
spec:
  replicas: 3
  listen: 127.0.0.1:8080
  revisionHistoryLimit: 5
  progressDeadline: 5m
  template:
    command: ramp
    args: ["demo-app", "--listen", "127.0.0.1:{port}"]
    env:
      LOG_LEVEL: debug
      APP_VERSION: v2
    workingDir: /srv/web
    portEnv: APP_PORT
    files: [config.json, static/app.js]
    readiness:
      httpGet: {path: /healthz}
      period: 2s
      failureThreshold: 5
    liveness:
      tcpSocket: {}
      initialDelay: 10s
      timeout: 500ms
      successThreshold: 1
    stop:
      signal: INT
      gracePeriod: 1m30s
  strategy:
    canary:
      stickiness: {header: X-User}
      scaleDownDelay: 1m
      steps:
        - setWeight: 20
        - setHeaderRoute:
            name: beta
            match:
              - headerName: X-Canary
                headerValue: {exact: "yes"}
              - cookieName: beta
        - setMirrorRoute:
            name: shadow
            percentage: 35
            match:
              - headerName: x-mirror
                headerValue: {regex: "a|b"}
              - cookieName: session
                cookieValue: {prefix: "s-"}
        - pause: {duration: 30s}
        - analysis:
            templates: [{templateName: error-rate}, {templateName: latency}]
            args:
              - {name: service, value: web}
              - {name: threshold, value: "0.01"}
        - setHeaderRoute:
            name: beta
        - setMirrorRoute:
            name: shadow
        - setWeight: 100
        - pause: {}
  analysisTemplates:
    - name: error-rate
      args: [{name: service}, {name: threshold, value: "0.05"}]
      metrics:
        - name: errors
          interval: 10s
          successCondition: "result < {{args.threshold}}"
          provider:
            builtin: {metric: errorRate}
    - name: latency
      metrics:
        - name: p99
          provider:
            builtin: {metric: latency, quantile: 0.99}
"#;

#[test]
fn full_canary_document_parses_into_the_expected_spec() {
    let expected = ServiceSpec {
        name: "web".into(),
        replicas: 3,
        listen: "127.0.0.1:8080".parse().unwrap(),
        revision_history_limit: 5,
        progress_deadline: secs(300),
        template: Template {
            command: "ramp".into(),
            args: vec![
                "demo-app".into(),
                "--listen".into(),
                "127.0.0.1:{port}".into(),
            ],
            env: BTreeMap::from([
                ("APP_VERSION".into(), "v2".into()),
                ("LOG_LEVEL".into(), "debug".into()),
            ]),
            working_dir: Some("/srv/web".into()),
            port_env: "APP_PORT".into(),
            files: vec!["config.json".into(), "static/app.js".into()],
            readiness: Some(Probe {
                action: ProbeAction::Http {
                    path: "/healthz".into(),
                },
                initial_delay: Duration::ZERO,
                period: secs(2),
                timeout: secs(1),
                success_threshold: 1,
                failure_threshold: 5,
            }),
            liveness: Some(Probe {
                action: ProbeAction::Tcp,
                initial_delay: secs(10),
                period: secs(1),
                timeout: Duration::from_millis(500),
                success_threshold: 1,
                failure_threshold: 3,
            }),
            stop: StopPolicy {
                signal: "SIGINT".into(),
                grace_period: secs(90),
            },
        },
        strategy: Strategy::Canary(Canary {
            steps: vec![
                CanaryStep::SetWeight(20),
                CanaryStep::SetHeaderRoute {
                    name: "beta".into(),
                    conditions: vec![
                        header("X-Canary", ValueMatch::Exact("yes".into())),
                        Condition {
                            source: Source::cookie("beta"),
                            value: ValueMatch::Present,
                        },
                    ],
                },
                CanaryStep::SetMirrorRoute {
                    name: "shadow".into(),
                    percentage: Some(35.0),
                    conditions: vec![
                        header("x-mirror", ValueMatch::regex("a|b").unwrap()),
                        Condition {
                            source: Source::cookie("session"),
                            value: ValueMatch::Prefix("s-".into()),
                        },
                    ],
                },
                CanaryStep::Pause(Some(secs(30))),
                CanaryStep::Analysis(AnalysisRef {
                    templates: vec!["error-rate".into(), "latency".into()],
                    args: vec![
                        ("service".into(), "web".into()),
                        ("threshold".into(), "0.01".into()),
                    ],
                }),
                CanaryStep::SetHeaderRoute {
                    name: "beta".into(),
                    conditions: vec![],
                },
                CanaryStep::SetMirrorRoute {
                    name: "shadow".into(),
                    percentage: None,
                    conditions: vec![],
                },
                CanaryStep::SetWeight(100),
                CanaryStep::Pause(None),
            ],
            stickiness: Some(Source::header("x-user")),
            scale_down_delay: secs(60),
            baseline: Baseline::Stable,
            analysis: Some(BackgroundAnalysis::default()),
        }),
        analysis_templates: vec![
            AnalysisTemplate {
                name: "error-rate".into(),
                args: vec![
                    TemplateArg {
                        name: "service".into(),
                        value: None,
                    },
                    TemplateArg {
                        name: "threshold".into(),
                        value: Some("0.05".into()),
                    },
                ],
                metrics: vec![Metric {
                    interval: Some(secs(10)),
                    success_condition: Some("result < {{args.threshold}}".into()),
                    ..builtin_metric("errors", BuiltinMetric::ErrorRate)
                }],
            },
            AnalysisTemplate {
                name: "latency".into(),
                args: vec![],
                metrics: vec![builtin_metric("p99", BuiltinMetric::Latency(0.99))],
            },
        ],
    };
    let spec = ServiceSpec::from_yaml(FULL_CANARY).unwrap();
    assert_eq!(spec, expected);
    // Header names are matched lowercase.
    let CanaryStep::SetHeaderRoute { conditions, .. } = &spec_steps(&spec)[1] else {
        panic!()
    };
    assert_eq!(conditions[0].source, Source::Header("x-canary".into()));
}

fn spec_steps(spec: &ServiceSpec) -> &[CanaryStep] {
    match &spec.strategy {
        Strategy::Canary(c) => &c.steps,
        other => panic!("not a canary: {other:?}"),
    }
}

const MINIMAL: &str = "\
apiVersion: ramp/v1
kind: Service
metadata:
  name: api
spec:
  replicas: 1
  listen: localhost:7000
  template:
    command: ./api
  strategy:
    recreate: {}
";

#[test]
fn defaults_are_applied() {
    let spec = ServiceSpec::from_yaml(MINIMAL).unwrap();
    let expected = ServiceSpec {
        name: "api".into(),
        replicas: 1,
        listen: "127.0.0.1:7000".parse().unwrap(),
        revision_history_limit: 10,
        progress_deadline: secs(600),
        template: Template {
            command: "./api".into(),
            args: vec![],
            env: BTreeMap::new(),
            working_dir: None,
            port_env: "PORT".into(),
            files: vec![],
            readiness: None,
            liveness: None,
            stop: StopPolicy {
                signal: "SIGTERM".into(),
                grace_period: secs(30),
            },
        },
        strategy: Strategy::Recreate,
        analysis_templates: vec![],
    };
    assert_eq!(spec, expected);

    // Probe and route defaults.
    let text = MINIMAL.replace(
        "    command: ./api\n",
        "    command: ./api\n    readiness:\n      httpGet: {}\n    liveness:\n      exec: {command: [./check, \"{port}\"]}\n    stop: {}\n",
    );
    let template = ServiceSpec::from_yaml(&text).unwrap().template;
    let default_probe = |action| Probe {
        action,
        initial_delay: Duration::ZERO,
        period: secs(1),
        timeout: secs(1),
        success_threshold: 1,
        failure_threshold: 3,
    };
    assert_eq!(
        template.readiness,
        Some(default_probe(ProbeAction::Http { path: "/".into() }))
    );
    assert_eq!(
        template.liveness,
        Some(default_probe(ProbeAction::Exec {
            command: vec!["./check".into(), "{port}".into()]
        }))
    );
    assert_eq!(template.stop, StopPolicy::default());

    // Empty lists and maps may be left empty.
    let text = MINIMAL.replace(
        "    command: ./api\n",
        "    command: ./api\n    args:\n    env:\n    files:\n",
    );
    assert_eq!(ServiceSpec::from_yaml(&text).unwrap(), expected);
}

#[test]
fn empty_choices_may_be_written_as_null() {
    let text = MINIMAL.replace("recreate: {}", "recreate:");
    assert_eq!(
        ServiceSpec::from_yaml(&text).unwrap().strategy,
        Strategy::Recreate
    );
    let text = MINIMAL.replace("recreate: {}", "rolling:");
    assert_eq!(
        ServiceSpec::from_yaml(&text).unwrap().strategy,
        Strategy::Rolling(Rolling::default())
    );
    let text = MINIMAL.replace("recreate: {}", "canary:\n      steps:\n        - pause:\n");
    assert_eq!(
        spec_steps(&ServiceSpec::from_yaml(&text).unwrap()),
        [CanaryStep::Pause(None)]
    );
}

fn rolling(replicas: u32, bounds: &str) -> Result<ServiceSpec, ModelError> {
    let text = MINIMAL
        .replace("replicas: 1", &format!("replicas: {replicas}"))
        .replace("recreate: {}", &format!("rolling: {bounds}"));
    ServiceSpec::from_yaml(&text)
}

fn rolling_of(spec: &ServiceSpec) -> Rolling {
    match &spec.strategy {
        Strategy::Rolling(r) => r.clone(),
        other => panic!("not rolling: {other:?}"),
    }
}

#[test]
fn rolling_takes_numbers_or_percentages_and_rounds_like_kubernetes() {
    let r = rolling_of(&rolling(3, "{}").unwrap());
    assert_eq!(r, Rolling::default());
    assert_eq!(r.max_surge, IntOrPercent::Percent(25));
    // 25% of 3 is 0.75: surge rounds up to 1, unavailable down to 0.
    assert_eq!(r.resolve(3), (1, 0));
    assert_eq!(r.resolve(10), (3, 2));

    let r = rolling_of(&rolling(4, "{maxSurge: 2, maxUnavailable: \"50%\"}").unwrap());
    assert_eq!(r.max_surge, IntOrPercent::Count(2));
    assert_eq!(r.max_unavailable, IntOrPercent::Percent(50));
    assert_eq!(r.resolve(4), (2, 2));

    let r = rolling_of(&rolling(5, "{maxSurge: 0, maxUnavailable: 1}").unwrap());
    assert_eq!(
        (r.max_surge, r.max_unavailable),
        (IntOrPercent::Count(0), IntOrPercent::Count(1))
    );
    let r = rolling_of(&rolling(5, "{maxSurge: 100%, maxUnavailable: 0%}").unwrap());
    assert_eq!(r.resolve(5), (5, 0));
    assert_eq!(
        (r.max_surge.to_string(), IntOrPercent::Count(2).to_string()),
        ("100%".to_string(), "2".to_string())
    );

    for (bad, message) in [
        ("101%", "0% to 100%"),
        ("-1", "not a count"),
        ("1.5", "not a count"),
        ("x%", "not a count"),
    ] {
        let err = rolling(3, &format!("{{maxSurge: {bad}}}")).unwrap_err();
        let ModelError::Invalid(found) = err else {
            panic!("{err:?}")
        };
        assert_eq!(found.len(), 1, "{bad}: {found:?}");
        assert_eq!(found[0].path, "spec.strategy.rolling.maxSurge");
        assert!(found[0].message.contains(message), "{}", found[0].message);
    }
}

#[test]
fn rolling_bounds_that_both_resolve_to_zero_are_refused() {
    // 25% of 3 rounds down to 0 unavailable; with no surge nothing could be replaced.
    let text = MINIMAL
        .replace("replicas: 1", "replicas: 3")
        .replace("recreate: {}", "rolling:\n      maxSurge: 0");
    let (path, line, message) = only_problem(&text);
    assert_eq!((path.as_str(), line), ("spec.strategy.rolling", 12));
    assert!(
        message.contains("maxSurge and maxUnavailable cannot both be 0"),
        "{message}"
    );
    // The same bounds with 4 replicas leave one instance unavailable: fine.
    assert!(rolling(4, "{maxSurge: 0}").is_ok());
    assert!(rolling(3, "{maxSurge: 0%, maxUnavailable: 0}").is_err());
}

const BLUE_GREEN: &str = r#"apiVersion: ramp/v1
kind: Service
metadata:
  name: shop
spec:
  replicas: 2
  listen: 0.0.0.0:9000
  template:
    command: ./shop
  strategy:
    blueGreen:
      previewListen: 127.0.0.1:9001
      prePromotionChecks:
        - http: {path: /, requests: 5, expectStatus: 200}
        - command: {command: ["./smoke.sh", "{preview}"], timeout: 2m}
        - http: {path: /ready, expectStatus: "200-299"}
        - http: {}
      autoPromotion: {enabled: true, delay: 30s}
      scaleDownDelay: 1m
"#;

#[test]
fn blue_green_document_parses() {
    let spec = ServiceSpec::from_yaml(BLUE_GREEN).unwrap();
    assert_eq!(spec.listen, "0.0.0.0:9000".parse().unwrap());
    let expected = BlueGreen {
        preview_listen: Some("127.0.0.1:9001".parse().unwrap()),
        pre_promotion_checks: vec![
            Check::Http {
                path: "/".into(),
                requests: 5,
                expect_status: (200, 200),
            },
            Check::Command {
                command: vec!["./smoke.sh".into(), "{preview}".into()],
                timeout: secs(120),
            },
            Check::Http {
                path: "/ready".into(),
                requests: 1,
                expect_status: (200, 299),
            },
            Check::Http {
                path: "/".into(),
                requests: 1,
                expect_status: (200, 399),
            },
        ],
        pre_promotion_analysis: None,
        post_promotion_analysis: None,
        auto_promotion_delay: Some(secs(30)),
        scale_down_delay: secs(60),
    };
    assert_eq!(spec.strategy, Strategy::BlueGreen(expected));

    // Auto-promotion off (or left out): a person promotes.
    let text = BLUE_GREEN.replace("enabled: true", "enabled: false");
    let Strategy::BlueGreen(bg) = ServiceSpec::from_yaml(&text).unwrap().strategy else {
        panic!()
    };
    assert_eq!(bg.auto_promotion_delay, None);

    let text = MINIMAL.replace("recreate: {}", "blueGreen: {}");
    assert_eq!(
        ServiceSpec::from_yaml(&text).unwrap().strategy,
        Strategy::BlueGreen(BlueGreen::default())
    );
    assert_eq!(BlueGreen::default().scale_down_delay, secs(30));
}

#[test]
fn blue_green_values_are_checked() {
    let cases = [
        (
            "previewListen: 127.0.0.1:9001",
            "previewListen: 127.0.0.1:9000",
            "spec.strategy.blueGreen.previewListen",
            12,
        ),
        (
            "expectStatus: 200}",
            "expectStatus: 700}",
            "spec.strategy.blueGreen.prePromotionChecks[0].http.expectStatus",
            14,
        ),
        (
            "expectStatus: \"200-299\"",
            "expectStatus: \"299-200\"",
            "spec.strategy.blueGreen.prePromotionChecks[2].http.expectStatus",
            16,
        ),
        (
            "requests: 5",
            "requests: 0",
            "spec.strategy.blueGreen.prePromotionChecks[0].http.requests",
            14,
        ),
        (
            "{path: /ready,",
            "{path: ready,",
            "spec.strategy.blueGreen.prePromotionChecks[2].http.path",
            16,
        ),
        (
            "command: [\"./smoke.sh\", \"{preview}\"]",
            "command: []",
            "spec.strategy.blueGreen.prePromotionChecks[1].command.command",
            15,
        ),
        (
            "- http: {}",
            "- {}",
            "spec.strategy.blueGreen.prePromotionChecks[3]",
            17,
        ),
        (
            "delay: 30s",
            "delay: 30",
            "spec.strategy.blueGreen.autoPromotion.delay",
            18,
        ),
    ];
    for (from, to, path, line) in cases {
        let text = BLUE_GREEN.replace(from, to);
        assert_ne!(text, BLUE_GREEN, "{from}");
        let (found_path, found_line, _) = only_problem(&text);
        assert_eq!((found_path.as_str(), found_line), (path, line), "{to}");
    }
    // The same port on every interface conflicts with 0.0.0.0:9000 too, and an exact match
    // says which address it collides with.
    let text = BLUE_GREEN
        .replace("0.0.0.0:9000", "127.0.0.1:9000")
        .replace("127.0.0.1:9001", "127.0.0.1:9000");
    let (path, _, message) = only_problem(&text);
    assert_eq!(path, "spec.strategy.blueGreen.previewListen");
    assert!(
        message.contains("must differ from spec.listen"),
        "{message}"
    );
}

/// A valid canary spec that the cases below break one value at a time.
const BASE: &str = r#"apiVersion: ramp/v1
kind: Service
metadata:
  name: web
spec:
  replicas: 3
  listen: 127.0.0.1:8080
  template:
    command: ramp
    args: ["demo-app"]
    env:
      APP_VERSION: v2
    files: [config.json]
    readiness:
      httpGet: {path: /healthz}
    stop:
      signal: SIGTERM
  strategy:
    canary:
      steps:
        - setWeight: 20
        - setHeaderRoute:
            name: beta
            match:
              - headerName: x-canary
                headerValue: {exact: "yes"}
        - setMirrorRoute:
            name: shadow
            percentage: 35
        - pause: {}
"#;

#[test]
fn base_document_is_valid() {
    let spec = ServiceSpec::from_yaml(BASE).unwrap();
    assert_eq!(spec_steps(&spec).len(), 4);
}

#[test]
fn each_invalid_value_is_a_problem_with_its_path_and_line() {
    let cases: &[(&str, &str, &str, usize, &str)] = &[
        (
            "apiVersion: ramp/v1",
            "apiVersion: v1",
            "apiVersion",
            1,
            "ramp/v1",
        ),
        ("kind: Service", "kind: Rollout", "kind", 2, "Service"),
        ("name: web", "name: Web", "metadata.name", 4, "service name"),
        (
            "name: web",
            "name: 9web",
            "metadata.name",
            4,
            "service name",
        ),
        (
            "name: web",
            "name: a23456789012345678901234567890123456789012",
            "metadata.name",
            4,
            "service name",
        ),
        ("replicas: 3", "replicas: 0", "spec.replicas", 6, "1 to 100"),
        (
            "replicas: 3",
            "replicas: 101",
            "spec.replicas",
            6,
            "1 to 100",
        ),
        (
            "listen: 127.0.0.1:8080",
            "listen: nowhere:80",
            "spec.listen",
            7,
            "not an address",
        ),
        (
            "listen: 127.0.0.1:8080",
            "listen: 127.0.0.1",
            "spec.listen",
            7,
            "not an address",
        ),
        (
            "command: ramp",
            "command: \" \"",
            "spec.template.command",
            9,
            "program",
        ),
        (
            "APP_VERSION: v2",
            "1APP: v2",
            "spec.template.env.1APP",
            12,
            "environment variable",
        ),
        (
            "APP_VERSION: v2",
            "APP-VERSION: v2",
            "spec.template.env.APP-VERSION",
            12,
            "environment variable",
        ),
        (
            "APP_VERSION: v2",
            "PORT: \"1\"",
            "spec.template.env.PORT",
            12,
            "portEnv",
        ),
        (
            "[config.json]",
            "[config.json, \"../x\"]",
            "spec.template.files[1]",
            13,
            "..",
        ),
        (
            "[config.json]",
            "[a/../../x]",
            "spec.template.files[0]",
            13,
            "..",
        ),
        (
            "[config.json]",
            "[/etc/passwd]",
            "spec.template.files[0]",
            13,
            "absolute",
        ),
        (
            "[config.json]",
            "[config.json, ./config.json]",
            "spec.template.files[1]",
            13,
            "already listed",
        ),
        (
            "httpGet: {path: /healthz}",
            "httpGet: {path: /healthz}\n      tcpSocket: {}",
            "spec.template.readiness",
            15,
            "httpGet, tcpSocket or exec, not httpGet and tcpSocket together",
        ),
        (
            "httpGet: {path: /healthz}",
            "period: 1s",
            "spec.template.readiness",
            15,
            "exactly one of httpGet, tcpSocket or exec",
        ),
        (
            "httpGet: {path: /healthz}",
            "httpGet: {path: healthz}",
            "spec.template.readiness.httpGet.path",
            15,
            "start with /",
        ),
        (
            "httpGet: {path: /healthz}",
            "httpGet: {path: /healthz}\n      period: 0s",
            "spec.template.readiness.period",
            16,
            "above 0",
        ),
        (
            "httpGet: {path: /healthz}",
            "httpGet: {path: /healthz}\n      failureThreshold: 0",
            "spec.template.readiness.failureThreshold",
            16,
            "at least 1",
        ),
        (
            "signal: SIGTERM",
            "signal: SIGSTOP",
            "spec.template.stop.signal",
            17,
            "SIGUSR1",
        ),
        (
            "signal: SIGTERM",
            "signal: SIGTERM\n      gracePeriod: soon",
            "spec.template.stop.gracePeriod",
            18,
            "duration",
        ),
        (
            "setWeight: 20",
            "setWeight: 120",
            "spec.strategy.canary.steps[0].setWeight",
            21,
            "0 to 100",
        ),
        (
            "setWeight: 20",
            "setWeight: -1",
            "spec.strategy.canary.steps[0].setWeight",
            21,
            "0 to 100",
        ),
        (
            "- setWeight: 20",
            "- setWeight: 20\n          pause: {}",
            "spec.strategy.canary.steps[0]",
            21,
            "not setWeight and pause together",
        ),
        (
            "- setWeight: 20",
            "- {}",
            "spec.strategy.canary.steps[0]",
            21,
            "exactly one of setWeight, pause, setHeaderRoute, setMirrorRoute or analysis",
        ),
        (
            "headerValue: {exact: \"yes\"}",
            "headerValue: {regex: \"(\"}",
            "spec.strategy.canary.steps[1].setHeaderRoute.match[0].headerValue.regex",
            26,
            "unclosed group",
        ),
        (
            "headerValue: {exact: \"yes\"}",
            "headerValue: {exact: \"yes\", prefix: \"y\"}",
            "spec.strategy.canary.steps[1].setHeaderRoute.match[0].headerValue",
            26,
            "exactly one of exact, prefix or regex",
        ),
        (
            "headerValue: {exact: \"yes\"}",
            "headerValue: {}",
            "spec.strategy.canary.steps[1].setHeaderRoute.match[0].headerValue",
            26,
            "exactly one of exact, prefix or regex",
        ),
        (
            "headerValue: {exact: \"yes\"}",
            "cookieValue: {exact: \"yes\"}",
            "spec.strategy.canary.steps[1].setHeaderRoute.match[0].cookieValue",
            26,
            "cookieName",
        ),
        (
            "- headerName: x-canary",
            "- headerName: \"x canary\"",
            "spec.strategy.canary.steps[1].setHeaderRoute.match[0].headerName",
            25,
            "header name",
        ),
        (
            "- headerName: x-canary",
            "- cookieName: beta\n                headerName: x-canary",
            "spec.strategy.canary.steps[1].setHeaderRoute.match[0]",
            25,
            "exactly one of headerName or cookieName",
        ),
        (
            "percentage: 35",
            "percentage: 0",
            "spec.strategy.canary.steps[2].setMirrorRoute.percentage",
            29,
            "above 0",
        ),
        (
            "percentage: 35",
            "percentage: 100.5",
            "spec.strategy.canary.steps[2].setMirrorRoute.percentage",
            29,
            "at most 100",
        ),
        (
            "- pause: {}",
            "- pause: {duration: 30}",
            "spec.strategy.canary.steps[3].pause.duration",
            30,
            "unit",
        ),
        (
            "- pause: {}",
            "- pause: {duration: 0s}",
            "spec.strategy.canary.steps[3].pause.duration",
            30,
            "above 0",
        ),
        (
            "      steps:",
            "      stickiness: {header: a, cookie: b}\n      steps:",
            "spec.strategy.canary.stickiness",
            20,
            "exactly one of header or cookie",
        ),
        (
            "      steps:",
            "      stickiness: {cookie: \"a b\"}\n      steps:",
            "spec.strategy.canary.stickiness.cookie",
            20,
            "cookie name",
        ),
        (
            "      steps:",
            "      scaleDownDelay: forever\n      steps:",
            "spec.strategy.canary.scaleDownDelay",
            20,
            "duration",
        ),
    ];
    for &(from, to, path, line, message) in cases {
        assert!(BASE.contains(from), "{from}");
        let text = BASE.replacen(from, to, 1);
        let (found_path, found_line, found_message) = only_problem(&text);
        assert_eq!(
            (found_path.as_str(), found_line),
            (path, line),
            "{to}: {found_message}"
        );
        assert!(
            found_message.contains(message),
            "{to}: {found_message:?} does not say {message:?}"
        );
    }
}

#[test]
fn route_names_are_unique_per_kind_and_removal_needs_an_earlier_route() {
    // A second header route named beta while the first is set.
    let text = BASE.replace(
        "        - pause: {}\n",
        "        - setHeaderRoute:\n            name: beta\n            match: [{headerName: x-b}]\n        - pause: {}\n",
    );
    let (path, line, message) = only_problem(&text);
    assert_eq!(
        (path.as_str(), line),
        ("spec.strategy.canary.steps[3].setHeaderRoute.name", 31)
    );
    assert!(message.contains("already set by steps[1]"), "{message}");

    // The same for mirrors.
    let text = BASE.replace(
        "        - pause: {}\n",
        "        - setMirrorRoute: {name: shadow, percentage: 5}\n",
    );
    let (path, line, _) = only_problem(&text);
    assert_eq!(
        (path.as_str(), line),
        ("spec.strategy.canary.steps[3].setMirrorRoute.name", 30)
    );

    // A header route and a mirror route may share a name, and removing a route after setting
    // it is what the same name without match / percentage is for.
    let text = BASE.replace(
        "        - pause: {}\n",
        "        - setMirrorRoute: {name: beta, percentage: 5}\n        - setHeaderRoute: {name: beta}\n        - setMirrorRoute: {name: shadow}\n",
    );
    ServiceSpec::from_yaml(&text).unwrap();

    // Removing a route no step set is a mistake (a typo, most likely).
    let text = BASE.replace(
        "        - pause: {}\n",
        "        - setHeaderRoute: {name: betta, match: []}\n",
    );
    let (path, _, message) = only_problem(&text);
    assert_eq!(path, "spec.strategy.canary.steps[3].setHeaderRoute.name");
    assert!(message.contains("nothing to remove"), "{message}");

    // A mirror match without percentage would silently do nothing.
    let text = BASE.replace(
        "        - pause: {}\n",
        "        - setMirrorRoute:\n            name: shadow\n            match: [{headerName: x}]\n",
    );
    let (path, line, _) = only_problem(&text);
    assert_eq!(
        (path.as_str(), line),
        ("spec.strategy.canary.steps[3].setMirrorRoute.match", 32)
    );
}

#[test]
fn a_canary_needs_steps_but_not_a_weight() {
    let text = MINIMAL.replace("recreate: {}", "canary:\n      steps: []");
    assert_eq!(only_problem(&text).0, "spec.strategy.canary.steps");
    let text = MINIMAL.replace(
        "recreate: {}",
        "canary:\n      steps:\n        - setHeaderRoute:\n            name: beta\n            match: [{cookieName: beta}]\n        - pause: {}",
    );
    let spec = ServiceSpec::from_yaml(&text).unwrap();
    assert!(
        !spec_steps(&spec)
            .iter()
            .any(|s| matches!(s, CanaryStep::SetWeight(_)))
    );
}

#[test]
fn the_strategy_is_exactly_one_key() {
    let text = MINIMAL.replace("recreate: {}", "recreate: {}\n    rolling: {}");
    let (path, line, message) = only_problem(&text);
    assert_eq!((path.as_str(), line), ("spec.strategy", 11));
    assert!(
        message.contains("set exactly one of recreate, rolling, blueGreen or canary"),
        "{message}"
    );
    assert!(
        message.contains("not recreate and rolling together"),
        "{message}"
    );

    let text = MINIMAL
        .replace("recreate: {}", "{}")
        .replace("strategy:\n    {}", "strategy: {}");
    assert_eq!(only_problem(&text).0, "spec.strategy");
}

#[test]
fn signals_are_stored_by_their_full_name() {
    for (written, stored) in [
        ("SIGTERM", "SIGTERM"),
        ("TERM", "SIGTERM"),
        ("hup", "SIGHUP"),
        ("SIGUSR2", "SIGUSR2"),
        ("KILL", "SIGKILL"),
    ] {
        let text = BASE.replace("signal: SIGTERM", &format!("signal: {written}"));
        let spec = ServiceSpec::from_yaml(&text).unwrap();
        assert_eq!(spec.template.stop.signal, stored);
    }
    assert_eq!(StopPolicy::canonical_signal("SIGSEGV"), None);
    assert_eq!(StopPolicy::canonical_signal("9"), None);
}

#[test]
fn unknown_field_deep_in_a_step_names_its_path_and_line() {
    let text = BASE.replace("- pause: {}", "- pause:\n            durration: 30s");
    let (path, line, message) = syntax(&text);
    assert_eq!(
        path.as_deref(),
        Some("spec.strategy.canary.steps[3].pause.durration")
    );
    assert_eq!(line, 31);
    assert!(message.contains("unknown field `durration`"), "{message}");

    let text = BASE.replace("    files:", "    file:");
    let (path, line, _) = syntax(&text);
    assert_eq!((path.as_deref(), line), (Some("spec.template.file"), 13));

    let text = BASE.replace("headerValue: {exact", "headerValue: {exactly");
    let (_, line, message) = syntax(&text);
    assert_eq!(line, 26);
    assert!(message.contains("unknown field `exactly`"), "{message}");
}

#[test]
fn wrong_type_names_the_path_and_line() {
    let text = BASE.replace("replicas: 3", "replicas: many");
    let (path, line, message) = syntax(&text);
    assert_eq!((path.as_deref(), line), (Some("spec.replicas"), 6));
    assert_eq!(message, "expected a whole number, found \"many\"");
    let err = ServiceSpec::from_yaml(&text).unwrap_err().to_string();
    assert_eq!(
        err,
        "spec.replicas (line 6, column 13): expected a whole number, found \"many\""
    );

    let text = BASE.replace("percentage: 35", "percentage: lots");
    let (path, line, _) = syntax(&text);
    assert_eq!(
        (path.as_deref(), line),
        (
            Some("spec.strategy.canary.steps[2].setMirrorRoute.percentage"),
            29
        )
    );

    let text = BASE.replace("args: [\"demo-app\"]", "args: demo-app");
    let (path, line, message) = syntax(&text);
    assert_eq!((path.as_deref(), line), (Some("spec.template.args"), 10));
    assert_eq!(message, "expected a list, found \"demo-app\"");

    let text = BASE.replace("- pause: {}", "- pause: 5s");
    let (path, _, message) = syntax(&text);
    assert_eq!(path.as_deref(), Some("spec.strategy.canary.steps[3].pause"));
    assert_eq!(message, "expected a mapping (key: value), found \"5s\"");

    let text = BASE.replace("APP_VERSION: v2", "APP_VERSION: v2\n      APP_VERSION: v3");
    let (path, line, message) = syntax(&text);
    assert_eq!(
        (path.as_deref(), line),
        (Some("spec.template.env.APP_VERSION"), 13)
    );
    assert_eq!(message, "duplicate key `APP_VERSION`");
}

#[test]
fn a_missing_required_field_names_its_mapping() {
    let text = BASE.replace("metadata:\n  name: web\n", "metadata: {}\n");
    let (path, line, message) = syntax(&text);
    assert_eq!((path.as_deref(), line), (Some("metadata"), 3));
    assert!(message.contains("missing field `name`"), "{message}");

    let text = MINIMAL.replace("  listen: localhost:7000\n", "");
    let (path, _, message) = syntax(&text);
    assert_eq!(path.as_deref(), Some("spec"));
    assert!(message.contains("missing field `listen`"), "{message}");
}

#[test]
fn every_problem_is_reported_in_document_order() {
    // Strategy before template, replicas last: the report still reads top to bottom.
    let text = r#"apiVersion: ramp/v1
kind: Service
metadata:
  name: Web
spec:
  listen: 127.0.0.1:8080
  strategy:
    canary:
      steps:
        - setWeight: 150
        - pause: {duration: 5}
  template:
    command: ramp
    env:
      bad-name: x
    files: ["../secret"]
    liveness:
      tcpSocket: {}
      exec: {command: [true]}
    stop: {signal: SIGBUS}
  progressDeadline: 0s
  replicas: 0
"#;
    let found = problems(text);
    let located: Vec<(&str, usize, usize)> = found
        .iter()
        .map(|p| (p.path.as_str(), p.line, p.column))
        .collect();
    assert_eq!(
        located,
        [
            ("metadata.name", 4, 9),
            ("spec.strategy.canary.steps[0].setWeight", 10, 22),
            ("spec.strategy.canary.steps[1].pause.duration", 11, 29),
            ("spec.template.env.bad-name", 15, 7),
            ("spec.template.files[0]", 16, 13),
            ("spec.template.liveness", 18, 7),
            ("spec.template.stop.signal", 20, 20),
            ("spec.progressDeadline", 21, 21),
            ("spec.replicas", 22, 13),
        ]
    );
    let shown = ModelError::Invalid(found).to_string();
    assert!(
        shown.contains("  - spec.replicas (line 22, column 13): 0 is out of range; use 1 to 100"),
        "{shown}"
    );
}

fn template() -> Template {
    ServiceSpec::from_yaml(FULL_CANARY).unwrap().template
}

#[test]
fn digest_is_pinned_and_depends_on_the_template_only() {
    let digest = template().digest();
    assert_eq!(digest.len(), 64);
    assert!(
        digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    );
    // Pinned: a change here changes every stored revision's name.
    assert_eq!(
        digest,
        "0abd97c58ddaa8f33dcbb1ea5dd958f4af58ffb6640dcedd095863c25411d590"
    );

    // Same template, different replicas, strategy and env order: same digest.
    let other = FULL_CANARY
        .replace("replicas: 3", "replicas: 7")
        .replace("setWeight: 20", "setWeight: 10")
        .replace(
            "      LOG_LEVEL: debug\n      APP_VERSION: v2\n",
            "      APP_VERSION: v2\n      LOG_LEVEL: debug\n",
        );
    assert_eq!(
        ServiceSpec::from_yaml(&other).unwrap().template.digest(),
        digest
    );

    // Any template change changes it.
    let mut changes: Vec<Template> = Vec::new();
    let mut t = template();
    t.args[0] = "demo-app2".into();
    changes.push(t);
    let mut t = template();
    t.env.insert("APP_VERSION".into(), "v3".into());
    changes.push(t);
    let mut t = template();
    t.env.insert("EXTRA".into(), String::new());
    changes.push(t);
    let mut t = template();
    t.readiness.as_mut().unwrap().period = secs(3);
    changes.push(t);
    let mut t = template();
    t.liveness = None;
    changes.push(t);
    let mut t = template();
    t.stop.signal = "SIGTERM".into();
    changes.push(t);
    let mut t = template();
    t.files.pop();
    changes.push(t);
    let mut seen = std::collections::HashSet::from([digest]);
    for changed in changes {
        assert!(seen.insert(changed.digest()), "{changed:?}");
    }
}

#[test]
fn same_socket_counts_every_interface_as_each_address() {
    let at = |text: &str| -> std::net::SocketAddr { text.parse().unwrap() };
    assert!(same_socket(at("127.0.0.1:8080"), at("127.0.0.1:8080")));
    assert!(same_socket(at("0.0.0.0:8080"), at("127.0.0.1:8080")));
    assert!(same_socket(at("127.0.0.1:8080"), at("0.0.0.0:8080")));
    assert!(same_socket(at("[::]:8080"), at("10.0.0.1:8080")));
    assert!(!same_socket(at("127.0.0.1:8080"), at("127.0.0.2:8080")));
    assert!(!same_socket(at("0.0.0.0:8080"), at("0.0.0.0:8081")));
}
