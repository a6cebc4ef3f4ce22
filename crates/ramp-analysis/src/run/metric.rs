//! A metric's bookkeeping: tallies, history and schedule as measurements come in.

use super::plan::Plan;
use super::{MEASUREMENT_HISTORY, Measurement, MeasurementPhase, MetricRun, Millis, Phase};

impl MetricRun {
    /// A metric that has not been measured yet.
    pub(super) fn new(plan: &Plan, started: Millis) -> MetricRun {
        MetricRun {
            template: plan.template.clone(),
            name: plan.metric.name.clone(),
            phase: Phase::Pending,
            dry_run: plan.metric.dry_run,
            count: 0,
            successful: 0,
            failed: 0,
            inconclusive: 0,
            error: 0,
            consecutive_error: 0,
            consecutive_success: 0,
            measurements: Vec::new(),
            message: None,
            next_at: Some(plan.first_due(started)),
        }
    }

    /// `template/metric`, as messages name the metric.
    pub fn label(&self) -> String {
        format!("{}/{}", self.template, self.name)
    }

    /// The latest measurement, if any.
    pub fn last_measurement(&self) -> Option<&Measurement> {
        self.measurements.last()
    }

    /// Tallies `measurement`, keeps it, and completes the metric or schedules its next
    /// measurement.
    pub(super) fn take(&mut self, plan: &Plan, measurement: Measurement) {
        self.tally(measurement.phase);
        let next_at = measurement
            .at
            .saturating_add(plan.wait_after(measurement.phase));
        self.measurements.push(measurement);
        if self.measurements.len() > MEASUREMENT_HISTORY {
            let excess = self.measurements.len() - MEASUREMENT_HISTORY;
            self.measurements.drain(..excess);
        }
        match plan.assess(self) {
            Some((phase, why)) => self.complete(phase, why),
            None => {
                self.phase = Phase::Running;
                self.next_at = Some(next_at);
            }
        }
    }

    /// Ends the metric in `phase`.
    pub(super) fn complete(&mut self, phase: Phase, why: String) {
        self.phase = phase;
        self.message = Some(why);
        self.next_at = None;
    }

    /// Argo's counters: errors do not count towards `count` and break a success streak; any
    /// verdict ends an error streak.
    fn tally(&mut self, phase: MeasurementPhase) {
        let (tally, streak) = match phase {
            MeasurementPhase::Error => {
                self.error += 1;
                self.consecutive_error += 1;
                self.consecutive_success = 0;
                return;
            }
            MeasurementPhase::Successful => (&mut self.successful, self.consecutive_success + 1),
            MeasurementPhase::Failed => (&mut self.failed, 0),
            MeasurementPhase::Inconclusive => (&mut self.inconclusive, 0),
        };
        *tally += 1;
        self.consecutive_success = streak;
        self.consecutive_error = 0;
        self.count += 1;
    }
}
