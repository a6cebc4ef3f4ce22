//! The controller's side of analysis: running what the machine wants each tick, reading the
//! routers' counters, handing verdicts back, and the incident a rollback leaves.

use std::collections::BTreeMap;

use ramp_metrics::RevisionSnapshot;
use ramp_model::ServiceSpec;
use ramp_rollout::{Desired, Input, Phase, ServiceState, Verdict};
use ramp_store::NewIncident;

use super::{Controller, analysis, now_ms, routes};

impl Controller {
    /// Runs the analyses `want` asks for: starts and stops them, feeds them this tick's router
    /// counters, and reports verdicts. True when a verdict changed the state.
    pub(super) async fn analyze(&mut self, spec: &ServiceSpec, want: &Desired) -> bool {
        let now = now_ms();
        let mut finished = self.analyses.sync(&want.analyses, spec, &self.state, now);
        if !self.analyses.is_empty() {
            // Without counters (the agent is restarting) the analyses get no slice this tick;
            // builtin measurements then see no traffic and count as provider errors.
            match self.router_counters().await {
                Ok(counters) => self.analyses.tick(now, &counters, &self.internal),
                Err(e) => tracing::debug!(service = %self.name, "no router counters: {e}"),
            }
            finished.extend(self.analyses.take_finished(now));
        }
        self.report_verdicts(spec, finished)
    }

    /// Every revision's cumulative request counters in the service's routers, by route name.
    /// A blue-green preview stack is served by the preview router before the switch, so its
    /// counters are added when a pre-promotion analysis reads them.
    async fn router_counters(&self) -> Result<BTreeMap<String, RevisionSnapshot>, String> {
        let client = self.ctx.agent.client();
        let mut counters = client
            .metrics(&self.name)
            .await
            .map_err(|e| e.to_string())?
            .revisions;
        if self.analyses.reads_preview()
            && let Ok(metrics) = client.metrics(&routes::preview_router(&self.name)).await
        {
            for (route, snapshot) in metrics.revisions {
                counters.entry(route).or_default().merge(&snapshot);
            }
        }
        Ok(counters)
    }

    /// Feeds finished analyses to the machine; true when the state changed.
    pub(super) fn report_verdicts(
        &mut self,
        spec: &ServiceSpec,
        finished: Vec<analysis::Finished>,
    ) -> bool {
        let mut changed = false;
        for f in finished {
            if f.verdict == Verdict::Failed {
                self.failed_analysis = Some(f.record);
            }
            let input = Input::AnalysisFinished {
                rollout: f.want.rollout,
                kind: f.want.kind,
                verdict: f.verdict,
                detail: f.detail,
            };
            match self.advance(spec, &input, "ramp") {
                Ok(c) => changed |= c,
                Err(e) => {
                    tracing::warn!(service = %self.name, "analysis verdict not recorded: {e}")
                }
            }
            self.failed_analysis = None;
        }
        changed
    }

    /// The incident to record when `next` rolls back the rollout that was active: what
    /// triggered it, the revisions, and the failed analysis' measurements when there was one.
    pub(super) fn incident(&self, next: &ServiceState, actor: &str) -> Option<NewIncident> {
        let was_active = self
            .state
            .rollout
            .as_ref()
            .filter(|r| r.phase.is_active())?;
        let r = next.rollout.as_ref().filter(|r| r.id == was_active.id)?;
        let Phase::Aborted { reason } = &r.phase else {
            return None;
        };
        let revision_of = |stack: u64| {
            next.stacks
                .iter()
                .find(|s| s.id == stack)
                .map(|s| s.revision)
        };
        let trigger = if self.failed_analysis.is_some() {
            "analysis"
        } else if actor != "ramp" {
            "manual"
        } else if reason.contains("crash-looping") {
            "crash-loop"
        } else if reason.contains("progressDeadline") {
            "progress-deadline"
        } else if reason.contains("checks") {
            "checks"
        } else {
            "automatic"
        };
        let analysis = self.failed_analysis.clone();
        let detected = analysis
            .as_ref()
            .and_then(|a| a.get("detectedAfterMs").cloned());
        Some(NewIncident {
            service: self.name.clone(),
            rollout: r.id,
            revision: r.revision,
            stable_revision: r.from.and_then(revision_of),
            trigger: trigger.to_string(),
            reason: reason.clone(),
            data: serde_json::json!({
                "rolloutStarted": r.started,
                "actor": actor,
                "canaryRoute": analysis.as_ref().and_then(|a| a.get("canaryRoute").cloned()),
                "baselineRoute": analysis.as_ref().and_then(|a| a.get("baselineRoute").cloned()),
                "detectedAfterMs": detected,
                "analysis": analysis,
            }),
        })
    }
}
