//! One analysis run, as Argo Rollouts runs an `AnalysisRun`: every metric is measured on its
//! own schedule, its measurements are tallied against its limits, and the metrics' phases
//! roll up into the run's. Pure: the caller takes the measurements and passes the time.
//!
//! # A metric's life
//!
//! - Its first measurement is due `initialDelay` after the run starts; later ones an
//!   `interval` after the previous one was recorded. With neither `interval` nor `count` it
//!   is measured once; with `interval` only, until the run is stopped.
//! - Each measurement is Successful, Failed, Inconclusive (the conditions decide, or a judge
//!   does) or Error (the provider could not answer, or a condition could not be evaluated).
//! - The metric ends Failed once `failed > failureLimit`, Inconclusive once
//!   `inconclusive > inconclusiveLimit`, Error once `consecutiveError > consecutiveErrorLimit`
//!   (a limit of `-1` never trips); Successful once `consecutiveSuccessLimit` successes
//!   follow each other, or once `count` measurements are taken (Inconclusive, or Failed when
//!   failures are unlimited, if a `consecutiveSuccessLimit` was set and never reached).
//! - Errors do not count towards `count`: an errored measurement is retried
//!   [`ERROR_RETRY`] later, whatever the interval, until the consecutive error limit trips.
//!   Any other measurement resets the consecutive error count.
//! - `dryRun` metrics are measured and recorded but never affect the run's phase.
//!
//! # The run's life
//!
//! The run is Running until every metric is completed, then takes its worst metric's phase.
//! When a metric that is not a dry run ends Failed, Error or Inconclusive, the run stops at
//! once: its other metrics end Successful ("terminated"), as in Argo.

mod metric;
mod plan;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::Metric;
use plan::Plan;

/// Milliseconds on the caller's clock.
pub type Millis = u64;

/// How long after an errored measurement the metric is measured again (Argo's fixed retry
/// interval, used whatever the metric's own interval).
pub const ERROR_RETRY: Millis = 10_000;

/// Measurements kept per metric; older ones are dropped (their counts remain).
pub const MEASUREMENT_HISTORY: usize = 20;

/// Where a metric, or a whole run, stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Waiting for the first measurement.
    Pending,
    /// Measuring.
    Running,
    /// Completed without tripping a limit.
    Successful,
    /// Completed undecided: a person should look.
    Inconclusive,
    /// Completed because measurements kept failing to be taken.
    Error,
    /// Completed because too many measurements failed.
    Failed,
}

impl Phase {
    /// How bad the phase is, for rolling metrics up into a run:
    /// Successful < Running < Pending < Inconclusive < Error < Failed.
    pub fn severity(self) -> u8 {
        match self {
            Phase::Successful => 0,
            Phase::Running => 1,
            Phase::Pending => 2,
            Phase::Inconclusive => 3,
            Phase::Error => 4,
            Phase::Failed => 5,
        }
    }

    /// Whether the phase is final.
    pub fn is_completed(self) -> bool {
        !matches!(self, Phase::Pending | Phase::Running)
    }

    /// Completed, and not successfully: such a metric stops its run.
    fn is_bad(self) -> bool {
        self.is_completed() && self != Phase::Successful
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Successful => "Successful",
            Phase::Inconclusive => "Inconclusive",
            Phase::Error => "Error",
            Phase::Failed => "Failed",
        })
    }
}

/// What one measurement said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MeasurementPhase {
    /// The success condition held (or nothing said otherwise).
    Successful,
    /// The failure condition held, or the success condition did not.
    Failed,
    /// Neither condition held.
    Inconclusive,
    /// No verdict: the provider failed, or a condition could not be evaluated.
    Error,
}

impl fmt::Display for MeasurementPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MeasurementPhase::Successful => "Successful",
            MeasurementPhase::Failed => "Failed",
            MeasurementPhase::Inconclusive => "Inconclusive",
            MeasurementPhase::Error => "Error",
        })
    }
}

/// What a provider or judge answered, before the metric's conditions are applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A value for the conditions to decide on. With neither condition the measurement is
    /// Successful; with only a success condition it is Failed when that does not hold; with
    /// only a failure condition it is Successful when that does not hold; with both, Failed
    /// when the failure condition holds, else Successful when the success condition holds,
    /// else Inconclusive.
    Value(serde_json::Value),
    /// A judge decided the measurement's phase itself.
    Judged {
        /// The judge's verdict.
        phase: MeasurementPhase,
        /// What it looked at, for the record.
        value: serde_json::Value,
        /// Why, in words.
        message: String,
    },
    /// The provider could not be reached or gave an unusable answer.
    Error(String),
}

/// One recorded measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// When it was recorded.
    pub at: Millis,
    /// Its verdict.
    pub phase: MeasurementPhase,
    /// The value measured; `None` when there was none (a provider error).
    pub value: Option<serde_json::Value>,
    /// Why it has its phase, when there is more to say than the phase.
    pub message: Option<String>,
}

/// One metric's progress within a run (Argo's `MetricResult`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricRun {
    /// The template the metric comes from.
    pub template: String,
    /// The metric's name.
    pub name: String,
    /// Where it stands.
    pub phase: Phase,
    /// Measured and recorded, but never affects the run's phase.
    pub dry_run: bool,
    /// Measurements that reached a verdict (errors excluded), compared with `count`.
    pub count: u32,
    /// Successful measurements.
    pub successful: u32,
    /// Failed measurements.
    pub failed: u32,
    /// Inconclusive measurements.
    pub inconclusive: u32,
    /// Errored measurements.
    pub error: u32,
    /// Errors since the last measurement that reached a verdict.
    pub consecutive_error: u32,
    /// Successes since the last measurement that was not successful.
    pub consecutive_success: u32,
    /// The latest measurements, oldest first, at most [`MEASUREMENT_HISTORY`].
    pub measurements: Vec<Measurement>,
    /// Why the metric completed, once it has.
    pub message: Option<String>,
    /// When the next measurement is due; `None` once completed.
    pub next_at: Option<Millis>,
}

/// One analysis run (Argo's `AnalysisRun`). Serializes with the metrics' specs, so a run
/// read back from storage resumes where it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RunRecord")]
pub struct Run {
    /// Each metric's progress, in the order the metrics were given.
    pub metrics: Vec<MetricRun>,
    /// When the run started.
    pub started: Millis,
    /// When the run finished, once it has.
    pub finished: Option<Millis>,
    /// The metrics' specs with compiled conditions, parallel to `metrics`.
    plans: Vec<Plan>,
}

impl Run {
    /// Starts a run of `metrics`, each with the name of its template, arguments already
    /// substituted. Conditions are compiled here; an invalid metric is an error naming its
    /// template, the metric and what is wrong.
    pub fn new(metrics: Vec<(String, Metric)>, now: Millis) -> Result<Run, String> {
        if metrics.is_empty() {
            return Err("an analysis needs at least one metric".to_string());
        }
        let plans = metrics
            .into_iter()
            .map(|(template, metric)| Plan::new(template, metric))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, plan) in plans.iter().enumerate() {
            if plans[..i].iter().any(|p| p.label() == plan.label()) {
                return Err(format!("metric {} is listed twice", plan.label()));
            }
        }
        Ok(Run {
            metrics: plans.iter().map(|p| MetricRun::new(p, now)).collect(),
            started: now,
            finished: None,
            plans,
        })
    }

    /// The spec of metric `i`.
    ///
    /// # Panics
    /// When `i` is not below `self.metrics.len()`, like slice indexing.
    pub fn metric(&self, i: usize) -> &Metric {
        &self.plans[i].metric
    }

    /// The metrics whose next measurement is due at `now`, each once however many intervals
    /// went by. A metric stays due until a measurement is recorded for it, so a caller that
    /// measures in the background must not ask again for one it is still measuring.
    pub fn due(&self, now: Millis) -> Vec<usize> {
        if self.is_finished() {
            return Vec::new();
        }
        self.metrics
            .iter()
            .enumerate()
            .filter(|(_, m)| m.next_at.is_some_and(|at| at <= now))
            .map(|(i, _)| i)
            .collect()
    }

    /// When the earliest next measurement is due; `None` once the run is finished.
    pub fn next_due(&self) -> Option<Millis> {
        if self.is_finished() {
            return None;
        }
        self.metrics.iter().filter_map(|m| m.next_at).min()
    }

    /// Records a measurement of metric `metric` taken at `now`. It may come before the
    /// metric is due (a judge that sees a failure between intervals reports at once); the
    /// next measurement is then due an interval later. Ignored once the metric or the run is
    /// completed, or when there is no such metric.
    pub fn record(&mut self, metric: usize, outcome: Outcome, now: Millis) {
        if self.is_finished() {
            return;
        }
        let (Some(run), Some(plan)) = (self.metrics.get_mut(metric), self.plans.get(metric)) else {
            return;
        };
        if run.phase.is_completed() {
            return;
        }
        run.take(plan, plan.judge(outcome, now));
        if run.phase.is_bad() && !run.dry_run {
            let reason = format!("run terminated: {} {}", run.label(), run.phase);
            self.terminate(&reason);
        }
        if self.metrics.iter().all(|m| m.phase.is_completed()) {
            self.finished = Some(now);
        }
    }

    /// The run's phase: the worst phase of its metrics that are not dry runs once all
    /// metrics completed, or as soon as one of them completed Failed, Error or Inconclusive;
    /// Running before that.
    pub fn phase(&self) -> Phase {
        let worst = self
            .metrics
            .iter()
            .filter(|m| !m.dry_run && m.phase.is_completed())
            .map(|m| m.phase)
            .max_by_key(|p| p.severity());
        match worst {
            Some(phase) if phase.is_bad() => phase,
            _ if self.metrics.iter().any(|m| !m.phase.is_completed()) => Phase::Running,
            _ => Phase::Successful,
        }
    }

    /// Whether the run has finished: every metric completed, because each did, because one
    /// that is not a dry run completed Failed, Error or Inconclusive, or because the run
    /// was stopped.
    pub fn is_finished(&self) -> bool {
        self.metrics.iter().all(|m| m.phase.is_completed())
    }

    /// Ends the run (a background analysis or an analysis step is over): metrics still
    /// measuring end Successful, as no limit has tripped for them.
    pub fn stop(&mut self, now: Millis) {
        if self.is_finished() {
            return;
        }
        self.terminate("analysis stopped");
        self.finished = Some(now);
    }

    /// Why the run is in its phase: the deciding metric, its last measurement and its
    /// conditions.
    pub fn message(&self) -> String {
        let phase = self.phase();
        let counted = || self.metrics.iter().filter(|m| !m.dry_run);
        match phase {
            Phase::Running | Phase::Pending => {
                let done = self.metrics.iter().filter(|m| m.phase.is_completed());
                format!(
                    "running: {} of {} metrics completed",
                    done.count(),
                    self.metrics.len()
                )
            }
            Phase::Successful => {
                let each: Vec<String> = counted()
                    .map(|m| {
                        let why = m.message.as_deref().unwrap_or("completed");
                        format!("{} ({why})", m.label())
                    })
                    .collect();
                if each.is_empty() {
                    "successful: only dry-run metrics".to_string()
                } else {
                    format!("successful: {}", each.join("; "))
                }
            }
            Phase::Inconclusive | Phase::Error | Phase::Failed => self
                .metrics
                .iter()
                .zip(&self.plans)
                .find(|(m, _)| !m.dry_run && m.phase == phase)
                .map(|(m, plan)| plan.explain(m))
                .unwrap_or_else(|| phase.to_string()),
        }
    }

    /// The dry-run metrics' phases, by `template/metric` (they never affect [`Run::phase`]).
    pub fn dry_run_summary(&self) -> Vec<(String, Phase)> {
        self.metrics
            .iter()
            .filter(|m| m.dry_run)
            .map(|m| (m.label(), m.phase))
            .collect()
    }

    /// Ends every metric still measuring as Successful, saying why.
    fn terminate(&mut self, reason: &str) {
        for run in self.metrics.iter_mut().filter(|m| !m.phase.is_completed()) {
            let why = if run.measurements.is_empty() {
                format!("{reason} before the first measurement")
            } else {
                reason.to_string()
            };
            run.complete(Phase::Successful, why);
        }
    }
}

/// A run as stored; checked before it becomes a [`Run`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunRecord {
    metrics: Vec<MetricRun>,
    started: Millis,
    finished: Option<Millis>,
    plans: Vec<Plan>,
}

impl TryFrom<RunRecord> for Run {
    type Error = String;

    fn try_from(record: RunRecord) -> Result<Run, String> {
        let matching = record.metrics.len() == record.plans.len()
            && record.plans.iter().zip(&record.metrics).all(|(p, m)| {
                p.template == m.template && p.metric.name == m.name && p.metric.dry_run == m.dry_run
            });
        if record.metrics.is_empty() || !matching {
            return Err("stored run's metrics do not match its specs".to_string());
        }
        Ok(Run {
            metrics: record.metrics,
            started: record.started,
            finished: record.finished,
            plans: record.plans,
        })
    }
}
