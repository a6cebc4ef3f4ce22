//! Analysis templates: names, arguments, and metrics with their schedule, limits and CEL
//! conditions. Arguments are checked where they are written (`{{args.NAME}}` must name one of
//! the template's); whether each is given a value is checked where the template is used.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ramp_analysis::condition::{Condition, substitute};
use ramp_analysis::{AnalysisTemplate, Metric, Provider, TemplateArg};
use serde_saphyr::Spanned;

use super::{Min, duration, int_in, is_service_name};
use crate::error::Problems;
use crate::service::doc::{AnalysisTemplateDoc, MetricDoc, TemplateArgDoc};

/// What an argument without a default stands for while a template is checked on its own: a
/// value that keeps a condition such as `result < {{args.limit}}` well-formed.
const STAND_IN: &str = "0";

/// Values for `{{args.NAME}}` while a template is checked: each argument's default, else
/// [`STAND_IN`].
#[derive(Debug, Default)]
pub(super) struct StandIns(BTreeMap<String, String>);

impl StandIns {
    /// `text` with its placeholders replaced; a placeholder naming no argument is a problem
    /// at `path`.
    pub(super) fn fill(
        &self,
        text: &Spanned<String>,
        path: &str,
        p: &mut Problems,
    ) -> Option<String> {
        substitute(&text.value, &self.0)
            .map_err(|message| {
                let declared: Vec<&str> = self.0.keys().map(String::as_str).collect();
                let known = if declared.is_empty() {
                    "the template declares no arguments".to_string()
                } else {
                    format!("the template declares {}", declared.join(", "))
                };
                p.push(path, &text.referenced, format!("{message}; {known}"));
            })
            .ok()
    }
}

/// Validates `spec.analysisTemplates`.
pub(super) fn templates(
    docs: &[Spanned<AnalysisTemplateDoc>],
    p: &mut Problems,
) -> Vec<AnalysisTemplate> {
    let mut seen = HashMap::new();
    (docs.iter().enumerate())
        .map(|(i, doc)| {
            let path = format!("spec.analysisTemplates[{i}]");
            unique_name(&doc.value.name, &path, "template", i, &mut seen, p);
            doc.value.validate(&path, p)
        })
        .collect()
}

/// A name of `[a-z0-9-]` that no earlier item of its list has; `seen` maps names to items.
fn unique_name(
    name: &Spanned<String>,
    path: &str,
    kind: &str,
    index: usize,
    seen: &mut HashMap<String, usize>,
    p: &mut Problems,
) {
    let field = format!("{path}.name");
    if !is_service_name(&name.value) {
        p.push(
            field,
            &name.referenced,
            format!(
                "{:?} is not a {kind} name; use 1 to 40 of a-z, 0-9 and -, starting with a \
                 letter",
                name.value
            ),
        );
    } else if let Some(first) = seen.get(&name.value) {
        let list = if kind == "template" {
            "analysisTemplates"
        } else {
            "metrics"
        };
        p.push(
            field,
            &name.referenced,
            format!(
                "{kind} {:?} is already declared by {list}[{first}]",
                name.value
            ),
        );
    } else {
        seen.insert(name.value.clone(), index);
    }
}

/// `[A-Za-z_][A-Za-z0-9_-]*`: what may follow `{{args.`.
fn is_arg_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl AnalysisTemplateDoc {
    fn validate(&self, path: &str, p: &mut Problems) -> AnalysisTemplate {
        let args = TemplateArgDoc::validate_all(self.args.as_deref().unwrap_or_default(), path, p);
        let stand_ins = StandIns(
            (args.iter())
                .map(|a| {
                    let value = a.value.clone().unwrap_or_else(|| STAND_IN.to_string());
                    (a.name.clone(), value)
                })
                .collect(),
        );
        if self.metrics.value.is_empty() {
            p.push(
                format!("{path}.metrics"),
                &self.metrics.referenced,
                "needs at least one metric",
            );
        }
        let mut seen = HashMap::new();
        let metrics = (self.metrics.value.iter().enumerate())
            .filter_map(|(i, metric)| {
                let path = format!("{path}.metrics[{i}]");
                unique_name(&metric.value.name, &path, "metric", i, &mut seen, p);
                metric.value.validate(&path, &stand_ins, p)
            })
            .collect();
        AnalysisTemplate {
            name: self.name.value.clone(),
            args,
            metrics,
        }
    }
}

impl TemplateArgDoc {
    fn validate_all(docs: &[Spanned<Self>], path: &str, p: &mut Problems) -> Vec<TemplateArg> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, arg) in docs.iter().enumerate() {
            let name = &arg.value.name;
            let field = format!("{path}.args[{i}].name");
            if !is_arg_name(&name.value) {
                p.push(
                    field,
                    &name.referenced,
                    format!(
                        "{:?} is not an argument name; use letters, digits, _ and -, starting \
                         with a letter or _",
                        name.value
                    ),
                );
            } else if let Some(first) = seen.get(name.value.as_str()) {
                p.push(
                    field,
                    &name.referenced,
                    format!(
                        "argument {:?} is already declared by args[{first}]",
                        name.value
                    ),
                );
            } else {
                seen.insert(&name.value, i);
            }
        }
        (docs.iter())
            .map(|arg| TemplateArg {
                name: arg.value.name.value.clone(),
                value: arg.value.value.as_ref().map(|v| v.value.clone()),
            })
            .collect()
    }
}

impl MetricDoc {
    fn validate(&self, path: &str, args: &StandIns, p: &mut Problems) -> Option<Metric> {
        let field = |name: &str| format!("{path}.{name}");
        let interval = self.interval.as_ref().map(|text| {
            duration(
                Some(text),
                &field("interval"),
                Duration::ZERO,
                Min::AboveZero,
                p,
            )
        });
        let count = (self.count.as_ref())
            .and_then(|n| int_in(n, &field("count"), 1..=i64::from(u32::MAX), p));
        if let (Some(n), Some(text), None) = (count, &self.count, interval)
            && n > 1
        {
            p.push(
                field("count"),
                &text.referenced,
                format!(
                    "{n} measurements need an interval between them; set interval or use \
                     count 1"
                ),
            );
        }
        let initial_delay = duration(
            self.initial_delay.as_ref(),
            &field("initialDelay"),
            Duration::ZERO,
            Min::Zero,
            p,
        );
        let failure_limit = limit(&self.failure_limit, &field("failureLimit"), 0, count, p);
        let inconclusive_limit = limit(
            &self.inconclusive_limit,
            &field("inconclusiveLimit"),
            0,
            count,
            p,
        );
        let consecutive_error_limit = limit(
            &self.consecutive_error_limit,
            &field("consecutiveErrorLimit"),
            Metric::DEFAULT_CONSECUTIVE_ERROR_LIMIT,
            None,
            p,
        );
        let consecutive_success_limit = match &self.consecutive_success_limit {
            None => 0,
            Some(n) => int_in(
                n,
                &field("consecutiveSuccessLimit"),
                0..=i64::from(u32::MAX),
                p,
            )
            .unwrap_or_default(),
        };

        let provider_path = field("provider");
        let provider =
            (self.provider.value).validate(&provider_path, &self.provider.referenced, args, p);
        let judge = provider.as_ref().is_some_and(Provider::is_judge);
        let success_condition = condition(
            &self.success_condition,
            &field("successCondition"),
            judge,
            args,
            p,
        );
        let failure_condition = condition(
            &self.failure_condition,
            &field("failureCondition"),
            judge,
            args,
            p,
        );
        Some(Metric {
            name: self.name.value.clone(),
            interval,
            count,
            initial_delay,
            success_condition,
            failure_condition,
            failure_limit,
            inconclusive_limit,
            consecutive_error_limit,
            consecutive_success_limit,
            dry_run: self.dry_run.unwrap_or(false),
            provider: provider?,
        })
    }
}

/// A failure, inconclusive or error limit: -1 (no limit) or more. A limit of outcomes that
/// `count` measurements could never exceed is refused, as Argo Rollouts does.
fn limit(
    value: &Option<Spanned<i64>>,
    path: &str,
    default: i32,
    count: Option<u32>,
    p: &mut Problems,
) -> i32 {
    let Some(value) = value else {
        return default;
    };
    let n = match i32::try_from(value.value) {
        Ok(n) if n >= -1 => n,
        _ => {
            p.push(
                path,
                &value.referenced,
                format!(
                    "{} is out of range; use -1 (no limit) or 0 and up",
                    value.value
                ),
            );
            return default;
        }
    };
    if let Some(count) = count
        && i64::from(n) > i64::from(count)
    {
        p.push(
            path,
            &value.referenced,
            format!("{n} is more than count ({count}), so it could never be reached; use at most {count}"),
        );
    }
    n
}

/// A CEL condition over `result`: its placeholders name arguments, and with them filled in it
/// compiles. Judges decide their measurements themselves, so a condition on one is refused.
fn condition(
    text: &Option<Spanned<String>>,
    path: &str,
    judge: bool,
    args: &StandIns,
    p: &mut Problems,
) -> Option<String> {
    let text = text.as_ref()?;
    if judge {
        p.push(
            path,
            &text.referenced,
            "a judge (sequential, mannWhitney) decides each measurement itself; leave the \
             condition out",
        );
    } else if let Some(filled) = args.fill(text, path, p)
        && let Err(message) = Condition::compile(&filled)
    {
        // The parser points at the spot on further lines; its first line says what is wrong.
        let first_line = message.lines().next().unwrap_or_default();
        let reason = first_line.replace("ERROR: <input>:", "at ");
        p.push(
            path,
            &text.referenced,
            format!("is not a valid CEL expression: {reason}"),
        );
    }
    Some(text.value.clone())
}
