//! Where a metric's measurements come from: exactly one provider, each with its settings
//! checked and its defaults filled in.

use std::time::Duration;

use ramp_analysis::{
    BuiltinMetric, BuiltinQuery, CommandQuery, ComparedMetric, Direction, MannWhitneySettings,
    Measure, PrometheusQuery, Provider, SequentialSettings, Target, WebQuery,
};
use serde_saphyr::{Location, Spanned};

use super::templates::StandIns;
use super::{CHECK_TIMEOUT, Min, duration, exactly_one, one_of};
use crate::error::Problems;
use crate::service::doc::{
    BuiltinDoc, CommandDoc, ComparedMetricDoc, MannWhitneyDoc, PrometheusDoc, ProviderDoc,
    ScoreThresholdsDoc, SequentialDoc, WebDoc,
};
use crate::syntax::is_token;

/// Default wait for a Prometheus or web answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

impl ProviderDoc {
    pub(super) fn validate(
        &self,
        path: &str,
        at: &Location,
        args: &StandIns,
        p: &mut Problems,
    ) -> Option<Provider> {
        let mut found = Vec::new();
        let mut providers = Vec::new();
        let mut path_of = |kind: &'static str| {
            found.push(kind);
            format!("{path}.{kind}")
        };
        if let Some(doc) = &self.builtin {
            let path = path_of("builtin");
            providers.push(doc.value.validate(&path, p).map(Provider::Builtin));
        }
        if let Some(doc) = &self.prometheus {
            let path = path_of("prometheus");
            providers.push(Some(Provider::Prometheus(
                doc.value.validate(&path, args, p),
            )));
        }
        if let Some(doc) = &self.web {
            let path = path_of("web");
            providers.push(Some(Provider::Web(doc.value.validate(&path, args, p))));
        }
        if let Some(doc) = &self.command {
            let path = path_of("command");
            providers.push(Some(Provider::Command(doc.value.validate(&path, args, p))));
        }
        if let Some(doc) = &self.sequential {
            let path = path_of("sequential");
            let settings = SequentialDoc::validate(doc.value.as_ref(), &path, &doc.referenced, p);
            providers.push(Some(Provider::Sequential(settings)));
        }
        if let Some(doc) = &self.mann_whitney {
            let path = path_of("mannWhitney");
            providers.push(Some(Provider::MannWhitney(doc.value.validate(&path, p))));
        }
        let allowed = [
            "builtin",
            "prometheus",
            "web",
            "command",
            "sequential",
            "mannWhitney",
        ];
        let one = exactly_one(path, at, &allowed, &found, p);
        providers.into_iter().next().flatten().filter(|_| one)
    }
}

/// A number that `ok` accepts (`default` when absent); else a problem saying `rule`.
fn number(
    value: Option<&Spanned<f64>>,
    path: &str,
    default: f64,
    ok: impl Fn(f64) -> bool,
    rule: &str,
    p: &mut Problems,
) -> f64 {
    let Some(value) = value else {
        return default;
    };
    if !ok(value.value) {
        p.push(
            path,
            &value.referenced,
            format!("{} is out of range; {rule}", value.value),
        );
    }
    value.value
}

/// An `http://` URL with a host (`https://` is refused until the providers speak TLS). A URL
/// that starts with a placeholder takes its scheme from an argument, known only where the
/// template is used, so it is checked when the analysis runs.
fn http_url(text: &Spanned<String>, path: &str, args: &StandIns, p: &mut Problems) {
    let Some(filled) = args.fill(text, path, p) else {
        return;
    };
    if text.value.trim_start().starts_with("{{") {
        return;
    }
    if filled.starts_with("https://") {
        p.push(
            path,
            &text.referenced,
            format!(
                "{:?}: https is not supported yet; use an http:// address (a local endpoint or a TLS-terminating proxy)",
                text.value
            ),
        );
        return;
    }
    let rest = filled.strip_prefix("http://");
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    if host.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace)) {
        p.push(
            path,
            &text.referenced,
            format!("{:?} is not an http:// URL with a host", text.value),
        );
    }
}

/// Text that may hold placeholders and must not be empty.
fn required_text(text: &Spanned<String>, path: &str, args: &StandIns, p: &mut Problems) {
    if text.value.trim().is_empty() {
        p.push(path, &text.referenced, "must not be empty");
    } else {
        args.fill(text, path, p);
    }
}

impl BuiltinDoc {
    fn validate(&self, path: &str, p: &mut Problems) -> Option<BuiltinQuery> {
        // `None` stands for latency, which needs its quantile to be a metric.
        let names = [
            ("errorRate", Some(BuiltinMetric::ErrorRate)),
            ("successRate", Some(BuiltinMetric::SuccessRate)),
            ("requestRate", Some(BuiltinMetric::RequestRate)),
            ("requests", Some(BuiltinMetric::Requests)),
            ("latency", None),
        ];
        let metric = one_of(&self.metric, &format!("{path}.metric"), &names, p);
        let metric = match (metric, &self.quantile) {
            (Some(None), Some(q)) => {
                let in_range = q.value > 0.0 && q.value < 1.0;
                if !in_range {
                    p.push(
                        format!("{path}.quantile"),
                        &q.referenced,
                        format!(
                            "{} is out of range; use above 0 and below 1, e.g. 0.99",
                            q.value
                        ),
                    );
                }
                in_range.then_some(BuiltinMetric::Latency(q.value))
            }
            (Some(None), None) => {
                p.push(
                    format!("{path}.metric"),
                    &self.metric.referenced,
                    "latency needs a quantile, e.g. quantile: 0.99",
                );
                None
            }
            (Some(Some(_)), Some(q)) => {
                p.push(
                    format!("{path}.quantile"),
                    &q.referenced,
                    format!("only latency takes a quantile, not {}", self.metric.value),
                );
                None
            }
            (metric, _) => metric.flatten(),
        };
        let target = match &self.target {
            None => Some(Target::Canary),
            Some(text) => {
                let names = [
                    ("canary", Target::Canary),
                    ("baseline", Target::Baseline),
                    ("stable", Target::Stable),
                ];
                one_of(text, &format!("{path}.target"), &names, p)
            }
        };
        let window = self.window.as_ref().map(|text| {
            let path = format!("{path}.window");
            duration(Some(text), &path, Duration::ZERO, Min::AboveZero, p)
        });
        Some(BuiltinQuery {
            metric: metric?,
            target: target?,
            window,
        })
    }
}

impl PrometheusDoc {
    fn validate(&self, path: &str, args: &StandIns, p: &mut Problems) -> PrometheusQuery {
        http_url(&self.address, &format!("{path}.address"), args, p);
        required_text(&self.query, &format!("{path}.query"), args, p);
        let timeout = duration(
            self.timeout.as_ref(),
            &format!("{path}.timeout"),
            QUERY_TIMEOUT,
            Min::AboveZero,
            p,
        );
        PrometheusQuery {
            address: self.address.value.clone(),
            query: self.query.value.clone(),
            timeout,
        }
    }
}

impl WebDoc {
    fn validate(&self, path: &str, args: &StandIns, p: &mut Problems) -> WebQuery {
        http_url(&self.url, &format!("{path}.url"), args, p);
        let headers = self.headers.as_deref().unwrap_or_default();
        for (i, header) in headers.iter().enumerate() {
            let key = &header.value.key;
            if !is_token(&key.value) {
                p.push(
                    format!("{path}.headers[{i}].key"),
                    &key.referenced,
                    format!("{:?} is not a valid header name", key.value),
                );
            }
            args.fill(
                &header.value.value,
                &format!("{path}.headers[{i}].value"),
                p,
            );
        }
        if let Some(json_path) = &self.json_path {
            let field = format!("{path}.jsonPath");
            if !json_path.value.starts_with('$') {
                p.push(
                    &field,
                    &json_path.referenced,
                    format!(
                        "{:?} must start with $ (the whole answer), e.g. $.data.value",
                        json_path.value
                    ),
                );
            }
            args.fill(json_path, &field, p);
        }
        let timeout = duration(
            self.timeout.as_ref(),
            &format!("{path}.timeout"),
            QUERY_TIMEOUT,
            Min::AboveZero,
            p,
        );
        WebQuery {
            url: self.url.value.clone(),
            headers: (headers.iter())
                .map(|h| (h.value.key.value.clone(), h.value.value.value.clone()))
                .collect(),
            json_path: self.json_path.as_ref().map(|j| j.value.clone()),
            timeout,
        }
    }
}

impl CommandDoc {
    fn validate(&self, path: &str, args: &StandIns, p: &mut Problems) -> CommandQuery {
        let field = format!("{path}.command");
        if (self.command.value.first()).is_none_or(|c| c.value.trim().is_empty()) {
            p.push(
                &field,
                &self.command.referenced,
                "must start with a program to run",
            );
        }
        for (i, arg) in self.command.value.iter().enumerate() {
            args.fill(arg, &format!("{field}[{i}]"), p);
        }
        let timeout = duration(
            self.timeout.as_ref(),
            &format!("{path}.timeout"),
            CHECK_TIMEOUT,
            Min::AboveZero,
            p,
        );
        CommandQuery {
            command: self.command.value.iter().map(|a| a.value.clone()).collect(),
            timeout,
        }
    }
}

impl SequentialDoc {
    fn validate(
        doc: Option<&Self>,
        path: &str,
        at: &Location,
        p: &mut Problems,
    ) -> SequentialSettings {
        let default = SequentialSettings::default();
        let Some(doc) = doc else {
            return default;
        };
        let ratio = |value: Option<&Spanned<f64>>, name: &str, default, p: &mut Problems| {
            let rule = "use above 1 (1.5 = 50% worse)";
            number(
                value,
                &format!("{path}.{name}"),
                default,
                |r| r > 1.0,
                rule,
                p,
            )
        };
        let settings = SequentialSettings {
            false_alarm_rate: number(
                doc.false_alarm_rate.as_ref(),
                &format!("{path}.falseAlarmRate"),
                default.false_alarm_rate,
                |r| r > 0.0 && r <= 0.5,
                "use above 0 and at most 0.5, e.g. 0.01",
                p,
            ),
            errors: doc.errors.unwrap_or(default.errors),
            latency: doc.latency.unwrap_or(default.latency),
            min_error_ratio: ratio(
                doc.min_error_ratio.as_ref(),
                "minErrorRatio",
                default.min_error_ratio,
                p,
            ),
            min_latency_ratio: ratio(
                doc.min_latency_ratio.as_ref(),
                "minLatencyRatio",
                default.min_latency_ratio,
                p,
            ),
            latency_warmup_requests: doc
                .latency_warmup_requests
                .unwrap_or(default.latency_warmup_requests),
        };
        if !settings.errors && !settings.latency {
            p.push(
                path,
                at,
                "compares nothing: turn on errors, latency or both",
            );
        }
        settings
    }
}

impl MannWhitneyDoc {
    fn validate(&self, path: &str, p: &mut Problems) -> MannWhitneySettings {
        let confidence = number(
            self.confidence.as_ref(),
            &format!("{path}.confidence"),
            0.98,
            |c| c > 0.0 && c < 1.0,
            "use above 0 and below 1, e.g. 0.98",
            p,
        );
        let (pass_score, marginal_score) = match &self.score_thresholds {
            None => (75.0, 50.0),
            Some(doc) => doc
                .value
                .validate(&format!("{path}.scoreThresholds"), &doc.referenced, p),
        };
        if self.metrics.value.is_empty() {
            p.push(
                format!("{path}.metrics"),
                &self.metrics.referenced,
                "needs at least one metric to compare",
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        let metrics = (self.metrics.value.iter().enumerate())
            .filter_map(|(i, metric)| {
                let path = format!("{path}.metrics[{i}]");
                let name = &metric.value.name;
                if name.value.trim().is_empty() {
                    p.push(
                        format!("{path}.name"),
                        &name.referenced,
                        "must not be empty",
                    );
                } else if let Some(first) = seen.iter().position(|n| *n == name.value) {
                    p.push(
                        format!("{path}.name"),
                        &name.referenced,
                        format!("{:?} is already compared by metrics[{first}]", name.value),
                    );
                }
                seen.push(&name.value);
                metric.value.validate(&path, p)
            })
            .collect();
        MannWhitneySettings {
            metrics,
            confidence,
            pass_score,
            marginal_score,
        }
    }
}

impl ScoreThresholdsDoc {
    /// `(pass, marginal)`, with 0 <= marginal <= pass <= 100.
    fn validate(&self, path: &str, at: &Location, p: &mut Problems) -> (f64, f64) {
        let score = |value: Option<&Spanned<f64>>, name: &str, default, p: &mut Problems| {
            let path = format!("{path}.{name}");
            number(
                value,
                &path,
                default,
                |s| (0.0..=100.0).contains(&s),
                "use 0 to 100",
                p,
            )
        };
        let pass = score(self.pass.as_ref(), "pass", 75.0, p);
        let marginal = score(self.marginal.as_ref(), "marginal", 50.0, p);
        if marginal > pass {
            p.push(
                path,
                at,
                format!("marginal ({marginal}) must not be above pass ({pass})"),
            );
        }
        (pass, marginal)
    }
}

impl ComparedMetricDoc {
    fn validate(&self, path: &str, p: &mut Problems) -> Option<ComparedMetric> {
        let measures = [
            ("errorRate", Measure::ErrorRate),
            ("latency", Measure::Latency),
        ];
        let measure = one_of(&self.measure, &format!("{path}.measure"), &measures, p);
        let direction = match &self.direction {
            None => Some(Direction::Increase),
            Some(text) => {
                let names = [
                    ("increase", Direction::Increase),
                    ("decrease", Direction::Decrease),
                    ("either", Direction::Either),
                ];
                one_of(text, &format!("{path}.direction"), &names, p)
            }
        };
        let weight = number(
            self.weight.as_ref(),
            &format!("{path}.weight"),
            1.0,
            |w| w > 0.0 && w.is_finite(),
            "use above 0",
            p,
        );
        let allowed_increase = number(
            self.allowed_increase.as_ref(),
            &format!("{path}.allowedIncrease"),
            1.0,
            |r| r >= 1.0 && r.is_finite(),
            "use 1 or more (1.1 tolerates 10% above the baseline)",
            p,
        );
        let allowed_decrease = number(
            self.allowed_decrease.as_ref(),
            &format!("{path}.allowedDecrease"),
            1.0,
            |r| r > 0.0 && r <= 1.0,
            "use above 0 and at most 1 (0.9 tolerates 10% below the baseline)",
            p,
        );
        Some(ComparedMetric {
            name: self.name.value.clone(),
            measure: measure?,
            direction: direction?,
            critical: self.critical.unwrap_or(false),
            weight,
            allowed_increase,
            allowed_decrease,
            remove_outliers: self.remove_outliers.unwrap_or(false),
        })
    }
}
