//! A metric's spec made ready to run: validated, conditions compiled, and the rules that turn
//! its measurements into a verdict.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ERROR_RETRY, Measurement, MeasurementPhase, MetricRun, Millis, Outcome, Phase};
use crate::condition::Condition;
use crate::spec::Metric;

/// Longest excerpt of a measured value quoted in a message, in characters.
const VALUE_EXCERPT_CHARS: usize = 200;

/// A metric with its template's name and compiled conditions. Stored as the template name
/// and the metric; the conditions are compiled again when read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PlanRecord", into = "PlanRecord")]
pub(super) struct Plan {
    pub(super) template: String,
    pub(super) metric: Metric,
    success: Option<Condition>,
    failure: Option<Condition>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanRecord {
    template: String,
    metric: Metric,
}

impl TryFrom<PlanRecord> for Plan {
    type Error = String;

    fn try_from(record: PlanRecord) -> Result<Plan, String> {
        Plan::new(record.template, record.metric)
    }
}

impl From<Plan> for PlanRecord {
    fn from(plan: Plan) -> PlanRecord {
        PlanRecord {
            template: plan.template,
            metric: plan.metric,
        }
    }
}

impl Plan {
    /// Checks what a run cannot do without (a schedule it can keep, limits it understands)
    /// and compiles the conditions; errors name the template, the metric and the problem.
    pub(super) fn new(template: String, metric: Metric) -> Result<Plan, String> {
        let label = format!("{template}/{}", metric.name);
        let fail = |what: String| Err(format!("metric {label}: {what}"));
        for (name, limit) in [
            ("failureLimit", metric.failure_limit),
            ("inconclusiveLimit", metric.inconclusive_limit),
            ("consecutiveErrorLimit", metric.consecutive_error_limit),
        ] {
            if limit < -1 {
                return fail(format!(
                    "{name} must be -1 (unlimited) or more, not {limit}"
                ));
            }
        }
        if metric.interval == Some(Duration::ZERO) {
            return fail("interval must be longer than 0s".to_string());
        }
        if metric.count.is_some_and(|c| c > 1) && metric.interval.is_none() {
            return fail("interval must be specified when count > 1".to_string());
        }
        let compile = |which: &str, source: &Option<String>| {
            source
                .as_deref()
                .map(Condition::compile)
                .transpose()
                .map_err(|e| format!("metric {label}: {which}: {e}"))
        };
        let success = compile("successCondition", &metric.success_condition)?;
        let failure = compile("failureCondition", &metric.failure_condition)?;
        Ok(Plan {
            template,
            metric,
            success,
            failure,
        })
    }

    /// `template/metric`.
    pub(super) fn label(&self) -> String {
        format!("{}/{}", self.template, self.metric.name)
    }

    /// When the first measurement is due.
    pub(super) fn first_due(&self, started: Millis) -> Millis {
        started.saturating_add(millis(self.metric.initial_delay))
    }

    /// How long after a measurement with `phase` the next one is due: errors are retried
    /// after 10 s as in Argo (sooner when the interval is shorter), anything else is followed
    /// by the next measurement after the interval.
    pub(super) fn wait_after(&self, phase: MeasurementPhase) -> Millis {
        match (phase, self.metric.interval) {
            // A provider error is retried after 10 s, or sooner when the metric is measured
            // more often than that.
            (MeasurementPhase::Error, Some(interval)) => millis(interval).min(ERROR_RETRY),
            (MeasurementPhase::Error, None) | (_, None) => ERROR_RETRY,
            (_, Some(interval)) => millis(interval),
        }
    }

    /// Measurements after which the metric is done: `count`, or one when there is neither
    /// count nor interval; `None` runs until stopped.
    fn effective_count(&self) -> Option<u32> {
        match (self.metric.count, self.metric.interval) {
            (Some(count), _) if count > 0 => Some(count),
            (_, None) => Some(1),
            (_, Some(_)) => None,
        }
    }

    /// Turns what a provider or judge answered into a measurement.
    pub(super) fn judge(&self, outcome: Outcome, at: Millis) -> Measurement {
        let (phase, value, message) = match outcome {
            Outcome::Value(value) => match self.decide(&value) {
                Ok((phase, message)) => (phase, Some(value), message),
                Err(why) => (MeasurementPhase::Error, Some(value), Some(why)),
            },
            Outcome::Judged {
                phase,
                value,
                message,
            } => (phase, Some(value), Some(message)),
            Outcome::Error(why) => (MeasurementPhase::Error, None, Some(why)),
        };
        Measurement {
            at,
            phase,
            value,
            message,
        }
    }

    /// Argo's rules for a value: a failure condition that holds wins; a success condition
    /// that holds succeeds; a lone condition decides both ways; two conditions that both do
    /// not hold are inconclusive; no condition at all succeeds.
    fn decide(
        &self,
        value: &serde_json::Value,
    ) -> Result<(MeasurementPhase, Option<String>), String> {
        let holds = |c: &Option<Condition>| c.as_ref().map(|c| c.evaluate(value)).transpose();
        let success = holds(&self.success)?;
        let failure = holds(&self.failure)?;
        let said = |which: &str, c: &Option<Condition>, verb: &str| {
            let source = c.as_ref().map_or("", Condition::source);
            Some(format!("{which} `{source}` {verb}"))
        };
        Ok(match (success, failure) {
            (_, Some(true)) => (
                MeasurementPhase::Failed,
                said("failureCondition", &self.failure, "held"),
            ),
            (Some(false), None) => (
                MeasurementPhase::Failed,
                said("successCondition", &self.success, "did not hold"),
            ),
            (Some(false), Some(false)) => (
                MeasurementPhase::Inconclusive,
                Some("neither successCondition nor failureCondition held".to_string()),
            ),
            (Some(true), _) | (None, Some(false)) | (None, None) => {
                (MeasurementPhase::Successful, None)
            }
        })
    }

    /// Whether the metric's tallies complete it, and why. Limits are checked first (a later
    /// one wins, as in Argo), then `consecutiveSuccessLimit`, then `count`.
    pub(super) fn assess(&self, run: &MetricRun) -> Option<(Phase, String)> {
        let m = &self.metric;
        let mut tripped = None;
        let limits = [
            (
                Phase::Failed,
                "failed",
                run.failed,
                "failureLimit",
                m.failure_limit,
            ),
            (
                Phase::Inconclusive,
                "inconclusive",
                run.inconclusive,
                "inconclusiveLimit",
                m.inconclusive_limit,
            ),
            (
                Phase::Error,
                "consecutiveErrors",
                run.consecutive_error,
                "consecutiveErrorLimit",
                m.consecutive_error_limit,
            ),
        ];
        for (phase, tally_name, tally, limit_name, limit) in limits {
            if exceeds(tally, limit) {
                let why = format!("{tally_name} ({tally}) > {limit_name} ({limit})");
                tripped = Some((phase, why));
            }
        }
        if tripped.is_some() {
            return tripped;
        }
        let success_limit = m.consecutive_success_limit;
        if success_limit > 0 && run.consecutive_success >= success_limit {
            let why = format!("consecutiveSuccessLimit ({success_limit}) reached");
            return Some((Phase::Successful, why));
        }
        let count = self.effective_count()?;
        if run.count < count {
            return None;
        }
        Some(match (success_limit > 0, m.failure_limit >= 0) {
            (true, true) => (
                Phase::Inconclusive,
                format!(
                    "count ({count}) reached without {success_limit} consecutive successes \
                     and within failureLimit ({})",
                    m.failure_limit
                ),
            ),
            (true, false) => (
                Phase::Failed,
                format!("count ({count}) reached without {success_limit} consecutive successes"),
            ),
            (false, _) => (Phase::Successful, format!("count ({count}) reached")),
        })
    }

    /// Why `run` completed as it did, with its last measurement and conditions.
    pub(super) fn explain(&self, run: &MetricRun) -> String {
        let mut text = format!("{} {}", self.label(), run.phase);
        if let Some(why) = &run.message {
            text.push_str(&format!(": {why}"));
        }
        if let Some(last) = run.measurements.last() {
            text.push_str(&format!("; last measurement {}", last.phase));
            // A short value (a number, a short list) is shown; a judge's large value is
            // left to its message, which says what it holds in words.
            if let Some(value) = &last.value {
                let text_value = value.to_string();
                if text_value.chars().count() <= SHOWN_VALUE_CHARS || last.message.is_none() {
                    text.push_str(&format!(" with {}", excerpt(&text_value)));
                }
            }
            if let Some(why) = &last.message {
                text.push_str(&format!(" ({why})"));
            }
        }
        for (name, condition) in [
            ("successCondition", &self.success),
            ("failureCondition", &self.failure),
        ] {
            if let Some(c) = condition {
                text.push_str(&format!("; {name} `{}`", c.source()));
            }
        }
        text
    }
}

/// A limit of -1 never trips; any other trips when the tally goes past it.
fn exceeds(tally: u32, limit: i32) -> bool {
    u32::try_from(limit).is_ok_and(|limit| tally > limit)
}

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// Values longer than this are left out of a message that has words for them.
const SHOWN_VALUE_CHARS: usize = 60;

/// At most [`VALUE_EXCERPT_CHARS`] characters of `text`, marked when cut.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(VALUE_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
