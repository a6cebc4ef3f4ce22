//! Runs the analyses the rollout machine wants: resolves their templates, feeds the router's
//! per-revision metrics to the judges every tick, takes measurements when they are due
//! (builtin and judges here, Prometheus / web / command in background tasks), and hands each
//! finished run's verdict back to the controller.
//!
//! Runs live in memory: after a control-plane restart a wanted analysis starts afresh.

mod builtin;
mod evidence;
mod resolve;

use std::collections::{BTreeMap, BTreeSet};

use ramp_analysis::run::{MeasurementPhase, Outcome, Phase, Run};
use ramp_analysis::sequential::SequentialJudge;
use ramp_analysis::{Provider, SliceTraffic};
use ramp_metrics::RevisionSnapshot;
use ramp_model::ServiceSpec;
use ramp_rollout::{AnalysisKind, Millis, ServiceState, Verdict, WantedAnalysis};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use self::evidence::{BASELINE, CANARY, Evidence, SIDES};
use super::Internal;

/// Requests each side must have served before a slice goes to the judges: a slice where one
/// side served nothing tells nothing about how the two compare.
const JUDGE_SLICE_REQUESTS: u64 = 10;

/// ... or this long, whichever comes first.
const JUDGE_SLICE_MAX_MS: Millis = 1_000;

/// The analyses of one service that are running.
#[derive(Debug, Default)]
pub(super) struct Analyses {
    active: Vec<Active>,
}

/// A finished analysis: its verdict for the machine, and what it measured for the record.
#[derive(Debug)]
pub(super) struct Finished {
    pub(super) want: WantedAnalysis,
    pub(super) verdict: Verdict,
    pub(super) detail: String,
    /// The analysis as an incident shows it.
    pub(super) record: serde_json::Value,
}

/// A running analysis as the status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisView {
    /// Which analysis (`background analysis`, `step 3`, ...).
    pub kind: String,
    /// Its phase so far.
    pub phase: Phase,
    /// Why.
    pub message: String,
    /// Its metrics: name, phase, measurements taken.
    pub metrics: Vec<(String, Phase, u32)>,
}

#[derive(Debug)]
struct Active {
    want: WantedAnalysis,
    run: Run,
    /// The sequential judge of each metric that uses one, by metric index.
    judges: BTreeMap<usize, SequentialJudge>,
    evidence: Evidence,
    /// When each metric was last measured (a comparison covers the time since).
    measured: BTreeMap<usize, Millis>,
    /// Metrics whose measurement is out with a provider.
    outstanding: BTreeSet<usize>,
    /// Judges whose failure was already recorded.
    failure_recorded: BTreeSet<usize>,
    /// Traffic not yet shown to the judges (canary, baseline): see [`JUDGE_SLICE_REQUESTS`].
    pending: (RevisionSnapshot, RevisionSnapshot),
    /// When `pending` began.
    pending_since: Millis,
    started: Millis,
}

impl Analyses {
    /// True when nothing runs (nothing to feed).
    pub(super) fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// A blue-green pre-promotion analysis runs: it reads the preview router too.
    pub(super) fn reads_preview(&self) -> bool {
        self.active
            .iter()
            .any(|a| a.want.kind == AnalysisKind::PrePromotion)
    }

    /// Starts the wanted analyses that are not running and drops the ones no longer wanted.
    /// An analysis that cannot start (its templates do not resolve) finishes at once, failed.
    pub(super) fn sync(
        &mut self,
        wanted: &[WantedAnalysis],
        spec: &ServiceSpec,
        state: &ServiceState,
        now: Millis,
    ) -> Vec<Finished> {
        self.active.retain(|a| wanted.contains(&a.want));
        let mut failed = Vec::new();
        for want in wanted {
            if self.active.iter().any(|a| &a.want == want) {
                continue;
            }
            match Active::start(*want, spec, state, now) {
                Ok(active) => {
                    tracing::info!(kind = %want.kind, rollout = want.rollout, "analysis started");
                    self.active.push(active);
                }
                Err(why) => failed.push(Finished {
                    want: *want,
                    verdict: Verdict::Failed,
                    detail: format!("cannot start: {why}"),
                    record: json!({ "kind": want.kind.to_string(), "phase": "error", "message": why }),
                }),
            }
        }
        failed
    }

    /// Feeds the router's counters (by route name) to every running analysis and takes the
    /// measurements that are due; provider measurements report through `report`.
    pub(super) fn tick(
        &mut self,
        now: Millis,
        counters: &BTreeMap<String, RevisionSnapshot>,
        report: &UnboundedSender<Internal>,
    ) {
        for active in &mut self.active {
            active.tick(now, counters, report);
        }
    }

    /// A provider's answer for a measurement that was out.
    pub(super) fn measured(
        &mut self,
        rollout: u64,
        kind: AnalysisKind,
        metric: usize,
        outcome: Outcome,
        now: Millis,
    ) {
        if let Some(a) = self
            .active
            .iter_mut()
            .find(|a| a.want.rollout == rollout && a.want.kind == kind)
            && a.outstanding.remove(&metric)
        {
            a.run.record(metric, outcome, now);
        }
    }

    /// Removes and returns the analyses that reached a verdict.
    pub(super) fn take_finished(&mut self, now: Millis) -> Vec<Finished> {
        let (done, running): (Vec<Active>, Vec<Active>) =
            self.active.drain(..).partition(|a| a.run.is_finished());
        self.active = running;
        done.into_iter().map(|a| a.finish(now)).collect()
    }

    /// What runs now, for the status.
    pub(super) fn views(&self) -> Vec<AnalysisView> {
        self.active
            .iter()
            .map(|a| AnalysisView {
                kind: a.want.kind.to_string(),
                phase: a.run.phase(),
                message: a.run.message(),
                metrics: a
                    .run
                    .metrics
                    .iter()
                    .map(|m| (m.name.clone(), m.phase, m.count))
                    .collect(),
            })
            .collect()
    }
}

impl Active {
    fn start(
        want: WantedAnalysis,
        spec: &ServiceSpec,
        state: &ServiceState,
        now: Millis,
    ) -> Result<Active, String> {
        let metrics = resolve::metrics(spec, want.kind)?;
        let judges = metrics
            .iter()
            .enumerate()
            .filter_map(|(i, (_, m))| match &m.provider {
                Provider::Sequential(settings) => Some((i, SequentialJudge::new(*settings))),
                _ => None,
            })
            .collect();
        let run = Run::new(metrics, now)?;
        let route = |stack: Option<u64>| {
            stack
                .and_then(|id| state.stacks.iter().find(|s| s.id == id))
                .map(|s| s.route_name(&state.stacks))
                .unwrap_or_default()
        };
        let stable = state
            .rollout
            .as_ref()
            .and_then(|r| r.from)
            .or(want.baseline);
        let routes = [
            route(Some(want.canary)),
            route(want.baseline),
            route(stable),
        ];
        Ok(Active {
            want,
            run,
            judges,
            evidence: Evidence::new(routes),
            measured: BTreeMap::new(),
            outstanding: BTreeSet::new(),
            failure_recorded: BTreeSet::new(),
            pending: Default::default(),
            pending_since: now,
            started: now,
        })
    }

    fn tick(
        &mut self,
        now: Millis,
        counters: &BTreeMap<String, RevisionSnapshot>,
        report: &UnboundedSender<Internal>,
    ) {
        let current: [RevisionSnapshot; SIDES] = std::array::from_fn(|i| {
            counters
                .get(&self.evidence.routes[i])
                .cloned()
                .unwrap_or_default()
        });
        let deltas = self.evidence.update(now, current);
        self.pending.0.merge(&deltas[CANARY]);
        self.pending.1.merge(&deltas[BASELINE]);
        // Judges see a slice once both sides served enough requests to say something, or a
        // second has passed. The cut depends on request counts and time only, never on
        // errors or latencies, so the test stays valid however often it looks.
        let (canary, baseline) = &self.pending;
        let enough = canary.total().min(baseline.total()) >= JUDGE_SLICE_REQUESTS;
        if enough || now.saturating_sub(self.pending_since) >= JUDGE_SLICE_MAX_MS {
            let (canary, baseline) = std::mem::take(&mut self.pending);
            let canary = SliceTraffic::from_window(&canary);
            let baseline = SliceTraffic::from_window(&baseline);
            self.pending_since = now;
            // A failure is recorded the moment it happens.
            for (&i, judge) in &mut self.judges {
                judge.observe_traffic(&canary, &baseline);
                if judge.failed() && self.failure_recorded.insert(i) {
                    self.run.record(i, sequential_outcome(judge), now);
                }
            }
        }
        for i in self.run.due(now) {
            if self.outstanding.contains(&i) {
                continue;
            }
            let since = self.measured.insert(i, now).unwrap_or(self.started);
            let outcome = match &self.run.metric(i).provider {
                Provider::Sequential(_) => match self.judges.get(&i) {
                    Some(judge) => sequential_outcome(judge),
                    None => Outcome::Error("no judge".into()),
                },
                Provider::MannWhitney(settings) => {
                    builtin::compare(settings, &self.evidence, since)
                }
                Provider::Builtin(q) => builtin::measure(q, &self.evidence, now),
                Provider::Prometheus(_) | Provider::Web(_) | Provider::Command(_) => {
                    self.outstanding.insert(i);
                    spawn_measurement(self.want, i, self.run.metric(i).provider.clone(), report);
                    continue;
                }
            };
            self.run.record(i, outcome, now);
        }
    }

    fn finish(self, now: Millis) -> Finished {
        let phase = self.run.phase();
        let verdict = match phase {
            Phase::Successful => Verdict::Successful,
            Phase::Failed | Phase::Error => Verdict::Failed,
            Phase::Inconclusive | Phase::Running | Phase::Pending => Verdict::Inconclusive,
        };
        let detail = self.run.message();
        let evidence: BTreeMap<String, serde_json::Value> = self
            .judges
            .iter()
            .map(|(&i, judge)| {
                let status = serde_json::to_value(judge.status()).unwrap_or_default();
                (self.run.metrics[i].name.clone(), status)
            })
            .collect();
        let [canary, baseline, _] = self.evidence.totals();
        let record = json!({
            "kind": self.want.kind.to_string(),
            "phase": phase,
            "message": detail,
            "metrics": self.run.metrics,
            "evidence": evidence,
            "canaryRoute": self.evidence.routes[CANARY],
            "baselineRoute": self.evidence.routes[BASELINE],
            "canary": canary,
            "baseline": baseline,
            "startedAt": self.started,
            "detectedAfterMs": self.evidence.first_served.map(|t| now.saturating_sub(t)),
        });
        Finished {
            want: self.want,
            verdict,
            detail,
            record,
        }
    }
}

/// The sequential judge's state as a measurement.
fn sequential_outcome(judge: &SequentialJudge) -> Outcome {
    let status = judge.status();
    let phase = if judge.failed() {
        MeasurementPhase::Failed
    } else {
        MeasurementPhase::Successful
    };
    Outcome::Judged {
        phase,
        message: status.summary(),
        value: serde_json::to_value(&status).unwrap_or_default(),
    }
}

/// Asks a provider in the background; the answer comes back as [`Internal::Measured`].
fn spawn_measurement(
    want: WantedAnalysis,
    metric: usize,
    provider: Provider,
    report: &UnboundedSender<Internal>,
) {
    let report = report.clone();
    tokio::spawn(async move {
        let answer = match &provider {
            Provider::Prometheus(q) => crate::measure::prometheus(q).await,
            Provider::Web(q) => crate::measure::web(q).await,
            Provider::Command(q) => crate::measure::command(q).await,
            _ => Err("not an external provider".to_string()),
        };
        let outcome = match answer {
            Ok(value) => Outcome::Value(value),
            Err(why) => Outcome::Error(why),
        };
        let _ = report.send(Internal::Measured {
            rollout: want.rollout,
            kind: want.kind,
            metric,
            outcome,
        });
    });
}
