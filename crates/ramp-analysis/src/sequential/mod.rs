//! Ramp's sequential judge: compares a canary with its baseline slice by slice and may be
//! checked after every slice, forever, without inflating its false-alarm rate.
//!
//! Each check (errors, latency) keeps a mixture likelihood ratio that is a nonnegative
//! (super)martingale while the canary is as good as its baseline. By Ville's inequality such
//! a process ever reaches `1 / alpha` with probability at most `alpha`, so a check fails when
//! its log evidence reaches `ln(1 / alpha)`, where the configured false-alarm rate is split
//! evenly between the checks that are on. Both checks compare the sides within each slice,
//! so load, incidents and traffic-share changes that affect both sides alike cancel. Only a
//! worse canary (more errors, slower) is ever failed.

mod errors;
mod latency;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;

use crate::traffic::judged_tallies;
use crate::{SequentialSettings, SliceTraffic, Tally};
use errors::ErrorCheck;
use latency::LatencyCheck;

/// Effect ratios at or below one would test for nothing, or for improvements: such settings
/// are read as this small (1%) worsening instead.
const MIN_EFFECT_RATIO: f64 = 1.01;
/// Effect ratios above this are read as this, keeping every derived quantity finite.
const MAX_EFFECT_RATIO: f64 = 1000.0;
/// False-alarm rates below this (or not a number) are read as this.
const MIN_FALSE_ALARM_RATE: f64 = 1e-12;
/// False-alarm rates above this are read as this: a judge allowed to fail a good canary more
/// often than a coin flip would judge nothing.
const MAX_FALSE_ALARM_RATE: f64 = 0.5;

/// The errors check's share of the false-alarm budget when the latency check is on too.
const ERRORS_SHARE: f64 = 0.75;

/// The always-valid canary judge. Feed it one pair of slices at a time with
/// [`observe`](Self::observe); once it has failed it stays failed, and later slices are
/// ignored so that its status keeps the evidence that failed it.
#[derive(Debug, Clone)]
pub struct SequentialJudge {
    errors: Option<ErrorCheck>,
    latency: Option<LatencyCheck>,
    /// Canary requests whose latencies are left out (see
    /// [`SequentialSettings::latency_warmup_requests`]).
    latency_warmup_requests: u64,
    canary: Tally,
    baseline: Tally,
    failed: Option<FailedCheck>,
}

impl SequentialJudge {
    /// A judge that has seen nothing yet. Out-of-range settings never panic: ratios at or
    /// below one are read as a 1% worsening and the false-alarm rate is kept within
    /// `[1e-12, 0.5]`.
    pub fn new(settings: SequentialSettings) -> Self {
        let rate = clamp_false_alarm_rate(settings.false_alarm_rate);
        // Errors get the larger share of the false-alarm budget when both checks are on: a
        // failing version shows in its errors first, and the latency check, with far more
        // observations per second, needs little of it to be quick.
        let (errors_share, latency_share) = match (settings.errors, settings.latency) {
            (true, true) => (ERRORS_SHARE, 1.0 - ERRORS_SHARE),
            _ => (1.0, 1.0),
        };
        let threshold = |share: f64| -(rate * share).ln();
        SequentialJudge {
            errors: settings.errors.then(|| {
                ErrorCheck::new(
                    clamp_effect_ratio(settings.min_error_ratio),
                    threshold(errors_share),
                )
            }),
            latency: settings.latency.then(|| {
                LatencyCheck::new(
                    clamp_effect_ratio(settings.min_latency_ratio).ln(),
                    threshold(latency_share),
                )
            }),
            latency_warmup_requests: settings.latency_warmup_requests,
            canary: Tally::default(),
            baseline: Tally::default(),
            failed: None,
        }
    }

    /// Takes in one time slice as tallies: what the canary and the baseline served during
    /// it. Slices
    /// without evidence (no requests, no errors, no latencies, non-finite moments) change
    /// nothing but the totals. A slice that holds any of the canary's warm-up requests is
    /// left out of the latency check: whether it is depends on request counts only, so the
    /// test stays valid.
    pub fn observe(&mut self, canary: &Tally, baseline: &Tally) {
        if self.failed.is_some() {
            return;
        }
        let warming_up = self.warmup_requests_left() > 0;
        add_slice(&mut self.canary, canary);
        add_slice(&mut self.baseline, baseline);
        if let Some(check) = &mut self.errors {
            check.observe(canary, baseline);
            if check.log_evidence() >= check.log_threshold() {
                self.failed = Some(FailedCheck::Errors);
                return;
            }
        }
        if let Some(check) = self.latency.as_mut().filter(|_| !warming_up) {
            check.observe(&canary.log_latency, &baseline.log_latency);
            if check.log_evidence() >= check.log_threshold() {
                self.failed = Some(FailedCheck::Latency);
            }
        }
    }

    /// Takes in one time slice request by request: its latencies are winsorized at bounds
    /// drawn from both sides pooled (see [`crate::traffic`]), then judged as by
    /// [`observe`](Self::observe). This is how traffic should reach the judge.
    pub fn observe_traffic(&mut self, canary: &SliceTraffic, baseline: &SliceTraffic) {
        let (canary, baseline) = judged_tallies(canary, baseline);
        self.observe(&canary, &baseline);
    }

    /// Canary requests still to come before latencies are judged.
    fn warmup_requests_left(&self) -> u64 {
        self.latency_warmup_requests
            .saturating_sub(self.canary.requests)
    }

    /// Whether the canary has been found worse than its baseline.
    pub fn failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Totals and the evidence of each check that is on.
    pub fn status(&self) -> SequentialStatus {
        SequentialStatus {
            failed: self.failed,
            canary: self.canary,
            baseline: self.baseline,
            errors: self.errors.as_ref().map(|check| ErrorEvidence {
                canary_rate: self.canary.error_rate(),
                baseline_rate: self.baseline.error_rate(),
                log_evidence: check.log_evidence(),
                log_threshold: check.log_threshold(),
            }),
            latency: self.latency.as_ref().map(|check| LatencyEvidence {
                ratio: check.ratio(),
                warmup_requests_left: self.warmup_requests_left(),
                log_evidence: check.log_evidence(),
                log_threshold: check.log_threshold(),
            }),
        }
    }
}

/// Where a sequential judgement stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SequentialStatus {
    /// The check that failed first, if any.
    pub failed: Option<FailedCheck>,
    /// What the canary served so far (latencies as judged: winsorized when the traffic came
    /// through [`SequentialJudge::observe_traffic`]).
    pub canary: Tally,
    /// What the baseline served so far, alike.
    pub baseline: Tally,
    /// The error check's evidence; `None` when the check is off.
    pub errors: Option<ErrorEvidence>,
    /// The latency check's evidence; `None` when the check is off.
    pub latency: Option<LatencyEvidence>,
}

/// Which check found the canary worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FailedCheck {
    /// The canary fails more often.
    Errors,
    /// The canary is slower.
    Latency,
}

impl fmt::Display for FailedCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailedCheck::Errors => "errors",
            FailedCheck::Latency => "latency",
        })
    }
}

/// The error check's evidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEvidence {
    /// The canary's error rate so far; `None` before it served a request.
    pub canary_rate: Option<f64>,
    /// The baseline's error rate so far; `None` before it served a request.
    pub baseline_rate: Option<f64>,
    /// Log of the mixture likelihood ratio for "the canary fails more often".
    pub log_evidence: f64,
    /// The check fails when `log_evidence` reaches this.
    pub log_threshold: f64,
}

/// The latency check's evidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyEvidence {
    /// Estimated canary/baseline ratio of typical (geometric-mean) latencies; `None` before
    /// both sides had latencies in the same slice after the warm-up.
    pub ratio: Option<f64>,
    /// Canary requests still to come before latencies are judged.
    pub warmup_requests_left: u64,
    /// Log of the mixture likelihood ratio for "the canary is slower"; zero until enough
    /// latencies were seen to estimate their spread.
    pub log_evidence: f64,
    /// The check fails when `log_evidence` reaches this.
    pub log_threshold: f64,
}

impl SequentialStatus {
    /// One human-readable line, e.g.
    /// `errors 4.9% vs 1.0% (evidence 5.1 of 5.3 needed); latency x1.02 (evidence 0.0 of 5.3 needed)`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(errors) = &self.errors {
            parts.push(format!(
                "errors {} vs {} ({})",
                percent(errors.canary_rate),
                percent(errors.baseline_rate),
                evidence(errors.log_evidence, errors.log_threshold)
            ));
        }
        if let Some(latency) = &self.latency {
            if latency.warmup_requests_left > 0 {
                parts.push(format!(
                    "latency warming up ({} canary requests to go)",
                    latency.warmup_requests_left
                ));
            } else {
                let ratio = latency
                    .ratio
                    .map_or_else(|| "n/a".to_string(), |r| format!("x{r:.2}"));
                parts.push(format!(
                    "latency {ratio} ({})",
                    evidence(latency.log_evidence, latency.log_threshold)
                ));
            }
        }
        let body = if parts.is_empty() {
            "no checks on".to_string()
        } else {
            parts.join("; ")
        };
        match self.failed {
            Some(check) => format!("failed on {check}: {body}"),
            None => body,
        }
    }
}

fn percent(rate: Option<f64>) -> String {
    match rate {
        Some(rate) if rate < 0.01 => format!("{:.2}%", rate * 100.0),
        Some(rate) => format!("{:.1}%", rate * 100.0),
        None => "n/a".to_string(),
    }
}

fn evidence(log_evidence: f64, log_threshold: f64) -> String {
    format!("evidence {log_evidence:.1} of {log_threshold:.1} needed")
}

fn clamp_effect_ratio(ratio: f64) -> f64 {
    if ratio.is_nan() || ratio < MIN_EFFECT_RATIO {
        MIN_EFFECT_RATIO
    } else {
        ratio.min(MAX_EFFECT_RATIO)
    }
}

fn clamp_false_alarm_rate(rate: f64) -> f64 {
    if rate.is_nan() || rate < MIN_FALSE_ALARM_RATE {
        MIN_FALSE_ALARM_RATE
    } else {
        rate.min(MAX_FALSE_ALARM_RATE)
    }
}

/// Adds a slice to running totals without overflowing counts or letting non-finite latency
/// moments poison them (such moments are left out of the totals).
fn add_slice(total: &mut Tally, slice: &Tally) {
    total.requests = total.requests.saturating_add(slice.requests);
    total.errors = total.errors.saturating_add(slice.errors);
    let mut merged = total.log_latency;
    merged.merge(&slice.log_latency);
    let finite = [merged.n, merged.sum, merged.sum_sq]
        .iter()
        .all(|v| v.is_finite());
    if slice.log_latency.n > 0.0 && finite {
        total.log_latency = merged;
    }
}
