//! One controller per service: a task that owns the service's state, feeds the state machine,
//! persists every new state with its events before acting on it, and makes the world match.
//! Requests for a service go through its controller one at a time, which is what keeps a
//! rollback from racing a forward fix.

pub(crate) mod analysis;
mod checks;
pub(crate) mod instances;
mod judging;
mod routes;
pub(crate) mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ramp_model::ServiceSpec;
use ramp_rollout::{
    AnalysisKind, Command, Desired, Input, Millis, ServiceState, Transition, desired, step,
};
use ramp_runtime::Supervisor;
use ramp_store::{NewEvent, Store, Timestamp};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::agent::Agent;
use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::payload::Payload;
use instances::{
    Instance, Instances, Placement, adopt, free_port, instance_spec, suffix, unrecorded,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_carry_their_stack() {
        let id = instance_id("my-web", 3, 17);
        assert!(id.starts_with("my-web-r3-s17-"), "{id}");
        assert_eq!(stack_of(&id), Some(17));
        assert_eq!(stack_of("garbage"), None);
    }
}
use status::ServiceStatus;

/// What the API asks of a controller.
#[derive(Debug)]
pub(crate) enum Request {
    Apply {
        spec: Box<ServiceSpec>,
        yaml: String,
        payload: Box<Payload>,
        actor: String,
        reply: oneshot::Sender<Result<ApplyOutcome, ServerError>>,
    },
    /// Would this spec be accepted now? (Asked before its executable is stored.)
    CheckApply {
        spec: Box<ServiceSpec>,
        reply: oneshot::Sender<Result<(), ServerError>>,
    },
    Command {
        command: Command,
        actor: String,
        reply: oneshot::Sender<Result<ServiceStatus, ServerError>>,
    },
    Status {
        reply: oneshot::Sender<ServiceStatus>,
    },
    /// The spec's listen address (none before the first apply).
    Listen {
        reply: oneshot::Sender<Option<SocketAddr>>,
    },
    /// Stop every instance and router of the service and forget it.
    Delete {
        actor: String,
        reply: oneshot::Sender<Result<(), ServerError>>,
    },
    /// The control plane is exiting: stop the instances, or leave them serving.
    Shutdown {
        stop_instances: bool,
        reply: oneshot::Sender<()>,
    },
}

/// What an apply did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOutcome {
    /// The service.
    pub service: String,
    /// The revision the spec's template is.
    pub revision: u64,
    /// False when that template was seen before.
    pub new_revision: bool,
    /// What the service looks like now.
    pub status: ServiceStatus,
}

/// Messages from the controller's own background tasks.
#[derive(Debug)]
enum Internal {
    Stopped {
        id: String,
    },
    ChecksFinished {
        rollout: u64,
        passed: bool,
        detail: String,
    },
    /// A provider answered (or failed to) for an analysis measurement.
    Measured {
        rollout: u64,
        kind: AnalysisKind,
        metric: usize,
        outcome: ramp_analysis::run::Outcome,
    },
}

/// A handle to a running controller.
#[derive(Debug, Clone)]
pub(crate) struct ControllerHandle {
    tx: mpsc::Sender<Request>,
}

impl ControllerHandle {
    pub(crate) async fn send(&self, request: Request) -> Result<(), ServerError> {
        self.tx
            .send(request)
            .await
            .map_err(|_| ServerError::Internal("the service's controller has stopped".into()))
    }
}

/// Shared by every controller.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) store: Arc<Store>,
    pub(crate) agent: Arc<Agent>,
}

/// The state a controller owns.
struct Controller {
    name: String,
    ctx: Arc<Context>,
    spec: Option<ServiceSpec>,
    state: ServiceState,
    instances: Instances,
    payloads: BTreeMap<u64, Payload>,
    routes: routes::RouterLinks,
    checks_running: Option<u64>,
    analyses: analysis::Analyses,
    /// The record of a failed analysis whose verdict is being applied, for the incident.
    failed_analysis: Option<serde_json::Value>,
    internal: mpsc::UnboundedSender<Internal>,
}

/// Starts the controller of a service. `restore` says whether to pick up state, instances and
/// routes left by an earlier control plane.
pub(crate) async fn spawn(
    ctx: Arc<Context>,
    name: String,
    restore: bool,
) -> Result<ControllerHandle, ServerError> {
    let (tx, rx) = mpsc::channel(64);
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    let mut controller = Controller {
        routes: routes::RouterLinks::new(&name),
        name,
        ctx,
        spec: None,
        state: ServiceState::default(),
        instances: Instances::default(),
        payloads: BTreeMap::new(),
        checks_running: None,
        analyses: analysis::Analyses::default(),
        failed_analysis: None,
        internal: internal_tx,
    };
    if restore {
        controller.restore().await?;
    }
    tokio::spawn(controller.run(rx, internal_rx));
    Ok(ControllerHandle { tx })
}

/// `web-r3-s5-k2f9a`: service, revision, stack, and a random suffix. The stack is read back
/// from the id when a restarted control plane adopts the instance.
fn instance_id(service: &str, revision: u64, stack: u64) -> String {
    format!("{service}-r{revision}-s{stack}-{}", suffix())
}

fn stack_of(id: &str) -> Option<u64> {
    let mut parts = id.rsplit('-');
    parts.next()?;
    parts.next()?.strip_prefix('s')?.parse().ok()
}

fn now_ms() -> Millis {
    Timestamp::now().0.max(0) as Millis
}

impl Controller {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Request>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) {
        let mut tick = tokio::time::interval(self.ctx.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                request = rx.recv() => {
                    let Some(request) = request else { return };
                    if self.handle(request).await {
                        return;
                    }
                }
                Some(message) = internal.recv() => self.internal(message).await,
                _ = tick.tick() => self.observe("ramp").await,
            }
        }
    }

    /// Handles one request; true when the controller must end.
    async fn handle(&mut self, request: Request) -> bool {
        match request {
            Request::Apply {
                spec,
                yaml,
                payload,
                actor,
                reply,
            } => {
                let result = self.apply(*spec, yaml, *payload, &actor).await;
                let _ = reply.send(result);
            }
            Request::CheckApply { spec, reply } => {
                let _ = reply.send(self.check_apply(&spec));
            }
            Request::Command {
                command,
                actor,
                reply,
            } => {
                let result = self.command(command, &actor).await;
                let _ = reply.send(result);
            }
            Request::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Request::Listen { reply } => {
                let _ = reply.send(self.spec.as_ref().map(|s| s.listen));
            }
            Request::Delete { actor, reply } => {
                let result = self.delete(&actor).await;
                let done = result.is_ok();
                let _ = reply.send(result);
                return done;
            }
            Request::Shutdown {
                stop_instances,
                reply,
            } => {
                self.shutdown(stop_instances).await;
                let _ = reply.send(());
                return true;
            }
        }
        false
    }

    fn spec(&self) -> Result<&ServiceSpec, ServerError> {
        self.spec
            .as_ref()
            .ok_or_else(|| ServerError::NotFound(format!("service {} has no spec", self.name)))
    }

    /// Runs one input through the machine; persists the new state and its events in one
    /// transaction before anything acts on them.
    fn advance(
        &mut self,
        spec: &ServiceSpec,
        input: &Input,
        actor: &str,
    ) -> Result<bool, ServerError> {
        let Transition { state, events } = step(&self.state, spec, input, now_ms())
            .map_err(|rejected| ServerError::Conflict(rejected.0))?;
        if state == self.state && events.is_empty() {
            return Ok(false);
        }
        let json =
            serde_json::to_string(&state).map_err(|e| ServerError::Internal(e.to_string()))?;
        let name = self.name.clone();
        let mut records: Vec<NewEvent> = events
            .iter()
            .map(|e| NewEvent {
                actor: actor.to_string(),
                service: Some(name.clone()),
                kind: e.kind.clone(),
                message: e.message.clone(),
                data: serde_json::Value::Null,
            })
            .collect();
        if records.is_empty() {
            records.push(NewEvent {
                actor: actor.to_string(),
                service: Some(name.clone()),
                kind: "StateChanged".into(),
                message: "rollout state updated".into(),
                data: serde_json::Value::Null,
            });
        }
        let incident = self.incident(&state, actor);
        self.ctx.store.transaction(|tx| {
            tx.save_state(&name, &json, &records[0])?;
            for record in &records[1..] {
                tx.append_event(record)?;
            }
            if let Some(incident) = &incident {
                tx.add_incident(incident)?;
            }
            Ok(())
        })?;
        for e in &events {
            tracing::info!(service = %self.name, kind = %e.kind, "{}", e.message);
        }
        self.state = state;
        Ok(true)
    }

    /// Refuses an apply that cannot happen now: a changed listen address, or any apply while a
    /// rollout is in progress.
    fn check_apply(&self, spec: &ServiceSpec) -> Result<(), ServerError> {
        if let Some(old) = &self.spec
            && old.listen != spec.listen
        {
            return Err(ServerError::Conflict(format!(
                "spec.listen cannot change from {} to {} while the service exists; delete it and apply again",
                old.listen, spec.listen
            )));
        }
        let probe = Input::Apply {
            revision: 0,
            replicas: spec.replicas,
        };
        step(&self.state, spec, &probe, now_ms())
            .map_err(|rejected| ServerError::Conflict(rejected.0))?;
        Ok(())
    }

    async fn apply(
        &mut self,
        spec: ServiceSpec,
        yaml: String,
        payload: Payload,
        actor: &str,
    ) -> Result<ApplyOutcome, ServerError> {
        // Checked again: another request may have started a rollout since.
        self.check_apply(&spec)?;
        let digest = payload.digest();
        let payload_json =
            serde_json::to_string(&payload).map_err(|e| ServerError::Internal(e.to_string()))?;
        let known = self.ctx.store.revisions(&self.name).unwrap_or_default();
        self.ctx.store.put_service(&self.name, &yaml)?;
        let revision = self
            .ctx
            .store
            .add_revision(&self.name, &digest, &payload_json)?;
        let new_revision = !known.iter().any(|r| r.number == revision.number);
        self.payloads.insert(revision.number, payload);
        self.ctx.store.append_event(&NewEvent {
            actor: actor.to_string(),
            service: Some(self.name.clone()),
            kind: "Applied".into(),
            message: format!(
                "spec applied: revision {}{}",
                revision.number,
                if new_revision { " (new)" } else { "" }
            ),
            data: serde_json::json!({ "revision": revision.number, "digest": digest }),
        })?;
        let input = Input::Apply {
            revision: revision.number,
            replicas: spec.replicas,
        };
        self.advance(&spec, &input, actor)?;
        self.spec = Some(spec);
        self.prune_revisions();
        self.observe(actor).await;
        Ok(ApplyOutcome {
            service: self.name.clone(),
            revision: revision.number,
            new_revision,
            status: self.status(),
        })
    }

    async fn command(
        &mut self,
        command: Command,
        actor: &str,
    ) -> Result<ServiceStatus, ServerError> {
        let spec = self.spec()?.clone();
        if let Command::Undo { revision } = &command
            && self.payload(*revision).is_none()
        {
            return Err(ServerError::NotFound(format!(
                "service {} has no revision {revision} (see `ramp history {}`)",
                self.name, self.name
            )));
        }
        self.advance(&spec, &Input::Command(command), actor)?;
        // Observe at once: an abort or an undo to a warm revision takes effect in this call.
        self.observe(actor).await;
        Ok(self.status())
    }

    async fn internal(&mut self, message: Internal) {
        match message {
            Internal::Stopped { id } => {
                self.instances.list.retain(|i| i.id != id);
                if let Err(e) = self.ctx.store.remove_instance(&id) {
                    tracing::warn!(service = %self.name, instance = %id, "cannot forget instance: {e}");
                }
            }
            Internal::ChecksFinished {
                rollout,
                passed,
                detail,
            } => {
                self.checks_running = None;
                if let Ok(spec) = self.spec().cloned() {
                    let input = Input::ChecksFinished {
                        rollout,
                        passed,
                        detail,
                    };
                    if let Err(e) = self.advance(&spec, &input, "ramp") {
                        tracing::warn!(service = %self.name, "checks result not recorded: {e}");
                    }
                    let want = desired(&self.state, &spec);
                    self.reconcile(&spec, &want).await;
                }
            }
            Internal::Measured {
                rollout,
                kind,
                metric,
                outcome,
            } => {
                let now = now_ms();
                self.analyses.measured(rollout, kind, metric, outcome, now);
                let finished = self.analyses.take_finished(now);
                if let Ok(spec) = self.spec().cloned()
                    && self.report_verdicts(&spec, finished)
                {
                    let want = desired(&self.state, &spec);
                    self.reconcile(&spec, &want).await;
                }
            }
        }
    }

    /// Feeds the world to the machine and makes the world match the result.
    async fn observe(&mut self, actor: &str) {
        let Some(spec) = self.spec.clone() else {
            return;
        };
        let world = self.instances.world();
        if let Err(e) = self.advance(&spec, &Input::Observe { world }, actor) {
            tracing::error!(service = %self.name, "cannot record the new state: {e}");
            return;
        }
        let mut want = desired(&self.state, &spec);
        if self.analyze(&spec, &want).await {
            // A verdict moved the rollout on (or back), which changes what is wanted.
            want = desired(&self.state, &spec);
        }
        self.reconcile(&spec, &want).await;
        self.persist_instances();
    }

    /// Starts and stops instances to match the desired stack sizes (`want`, computed from the
    /// current state and `spec`), pushes routes, runs checks.
    async fn reconcile(&mut self, spec: &ServiceSpec, want: &Desired) {
        let sizes: BTreeMap<u64, (u64, u32)> = want
            .stacks
            .iter()
            .map(|&(id, rev, n)| (id, (rev, n)))
            .collect();
        // Shrink first, so a smaller world is routed before anything new starts.
        let mut to_stop = Vec::new();
        let stacks: BTreeSet<u64> = self.instances.list.iter().map(|i| i.stack).collect();
        for stack in stacks {
            let want_n = sizes.get(&stack).map_or(0, |&(_, n)| n) as usize;
            let have = self.instances.running_in(stack);
            if have > want_n {
                to_stop.extend(self.instances.pick_to_stop(stack, have - want_n));
            }
        }
        for id in &to_stop {
            if let Some(i) = self.instances.list.iter_mut().find(|i| &i.id == id) {
                i.stopping = true;
            }
        }
        // Routes without the instances about to stop go out before they are drained.
        self.routes
            .push(&self.ctx, want, &self.state, &self.instances, spec)
            .await;
        for id in to_stop {
            self.stop_instance(&id, spec);
        }
        for (&stack, &(revision, n)) in &sizes {
            let have = self.instances.running_in(stack);
            for _ in have..n as usize {
                if !self.instances.may_launch(stack) {
                    break;
                }
                self.start_instance(stack, revision);
            }
        }
        if let Some((rollout, stack)) = want.run_checks
            && self.checks_running != Some(rollout)
        {
            self.checks_running = Some(rollout);
            checks::run(self, spec, rollout, stack);
        }
    }

    fn payload(&mut self, revision: u64) -> Option<Payload> {
        if let Some(p) = self.payloads.get(&revision) {
            return Some(p.clone());
        }
        let row = self.ctx.store.revision(&self.name, revision).ok()??;
        let payload: Payload = serde_json::from_str(&row.template_json).ok()?;
        self.payloads.insert(revision, payload.clone());
        Some(payload)
    }

    /// The program and working directory of a revision's instances.
    fn launch_paths(
        &mut self,
        revision: u64,
        payload: &Payload,
    ) -> Result<(PathBuf, PathBuf), String> {
        let objects = self.ctx.store.objects();
        let program = objects.path(&payload.program).map_err(|e| e.to_string())?;
        if payload.files.is_empty() {
            return Ok((program, payload.working_dir.clone()));
        }
        let dir = self.ctx.config.revision_dir(&self.name, revision);
        for (path, digest) in &payload.files {
            let target = dir.join(path);
            if target.exists() {
                continue;
            }
            let source = objects.path(digest).map_err(|e| e.to_string())?;
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::copy(&source, &target).map_err(|e| format!("{}: {e}", target.display()))?;
        }
        Ok((program, dir))
    }

    /// Where an instance runs: its program, directory and port, and its log file.
    fn placement(
        &self,
        id: &str,
        revision: u64,
        program: PathBuf,
        working_dir: PathBuf,
        port: u16,
    ) -> Placement {
        Placement {
            id: id.to_string(),
            service: self.name.clone(),
            revision,
            program,
            working_dir,
            port,
            log_path: self
                .ctx
                .config
                .log_dir(&self.name)
                .join(format!("{id}.log")),
            data_dir: self.ctx.config.data_dir.clone(),
        }
    }

    fn start_instance(&mut self, stack: u64, revision: u64) {
        let Some(payload) = self.payload(revision) else {
            tracing::error!(service = %self.name, revision, "revision missing from the store");
            self.instances.launch_failed(stack);
            return;
        };
        let launched = self
            .launch_paths(revision, &payload)
            .and_then(|(program, working_dir)| {
                let port = free_port().map_err(|e| e.to_string())?;
                let id = instance_id(&self.name, revision, stack);
                let at = self.placement(&id, revision, program, working_dir, port);
                let spec = instance_spec(&payload, at);
                let supervisor = Supervisor::launch(spec).map_err(|e| e.to_string())?;
                Ok((id, port, supervisor))
            });
        match launched {
            Ok((id, port, supervisor)) => {
                self.instances.launched(stack);
                let instance = Instance {
                    state: supervisor.watch(),
                    supervisor: Some(supervisor),
                    id,
                    stack,
                    revision,
                    port,
                    stopping: false,
                    started_at: Timestamp::now(),
                };
                let _ = self.ctx.store.put_instance(&instance.row(&self.name));
                self.instances.list.push(instance);
            }
            Err(why) => {
                self.instances.launch_failed(stack);
                let _ = self.ctx.store.append_event(&NewEvent {
                    actor: "ramp".into(),
                    service: Some(self.name.clone()),
                    kind: "InstanceFailed".into(),
                    message: format!("cannot start an instance of revision {revision}: {why}"),
                    data: serde_json::Value::Null,
                });
                tracing::warn!(service = %self.name, revision, "cannot start an instance: {why}");
            }
        }
    }

    /// Drains an instance through the router, then stops it, in the background.
    fn stop_instance(&mut self, id: &str, spec: &ServiceSpec) {
        let Some(instance) = self.instances.list.iter_mut().find(|i| i.id == id) else {
            return;
        };
        let Some(supervisor) = instance.supervisor.take() else {
            return;
        };
        let addr = instance.addr();
        let _ = self.ctx.store.put_instance(&instance.row(&self.name));
        self.drain_and_stop(id, addr, supervisor, spec.template.stop.grace_period);
    }

    /// The task that has the router drain the instance at `addr` (in-flight requests get at
    /// least a second, at most `grace`), then stops it and reports it stopped.
    fn drain_and_stop(
        &self,
        id: &str,
        addr: SocketAddr,
        supervisor: Supervisor,
        grace: Duration,
    ) -> JoinHandle<()> {
        let agent = Arc::clone(&self.ctx.agent);
        let router = self.name.clone();
        let grace = grace.max(Duration::from_secs(1));
        let done = self.internal.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            // The router stops sending it requests, then finishes the ones in flight.
            let _ = agent.client().drain(&router, addr, grace).await;
            supervisor.stop().await;
            let _ = done.send(Internal::Stopped { id });
        })
    }

    fn persist_instances(&mut self) {
        for instance in &self.instances.list {
            let row = instance.row(&self.name);
            if instance.state.has_changed().unwrap_or(false) {
                let _ = self.ctx.store.put_instance(&row);
            }
        }
        for instance in &mut self.instances.list {
            instance.state.mark_unchanged();
        }
    }

    fn prune_revisions(&mut self) {
        let Some(spec) = &self.spec else { return };
        let protect: Vec<u64> = self.state.stacks.iter().map(|s| s.revision).collect();
        let keep = spec.revision_history_limit as usize + 1;
        if let Ok(pruned) = self.ctx.store.prune_revisions(&self.name, keep, &protect) {
            for n in pruned {
                self.payloads.remove(&n);
            }
        }
    }

    fn status(&self) -> ServiceStatus {
        status::build(self)
    }

    async fn delete(&mut self, actor: &str) -> Result<(), ServerError> {
        if let Some(busy) = self.state.rollout.as_ref().filter(|r| r.phase.is_active()) {
            return Err(ServerError::Conflict(format!(
                "cannot delete {}: rollout {} is in progress; abort it first",
                self.name, busy.id
            )));
        }
        self.stop_everything().await;
        self.ctx.store.delete_service(&self.name)?;
        self.ctx.store.append_event(&NewEvent {
            actor: actor.to_string(),
            service: Some(self.name.clone()),
            kind: "Deleted".into(),
            message: format!("service {} deleted", self.name),
            data: serde_json::Value::Null,
        })?;
        Ok(())
    }

    /// Drains and stops every instance, then removes the service's routers.
    async fn stop_everything(&mut self) {
        let Some(grace) = self.spec.as_ref().map(|s| s.template.stop.grace_period) else {
            return;
        };
        let handed: Vec<(String, SocketAddr, Supervisor)> = self
            .instances
            .list
            .iter_mut()
            .filter_map(|i| Some((i.id.clone(), i.addr(), i.supervisor.take()?)))
            .collect();
        let stopping: Vec<JoinHandle<()>> = handed
            .into_iter()
            .map(|(id, addr, supervisor)| self.drain_and_stop(&id, addr, supervisor, grace))
            .collect();
        for task in stopping {
            let _ = task.await;
        }
        // Forgotten here at once; their `Stopped` reports then find nothing left to forget.
        for instance in &self.instances.list {
            let _ = self.ctx.store.remove_instance(&instance.id);
        }
        self.instances.list.clear();
        self.routes.remove(&self.ctx, grace).await;
    }

    async fn shutdown(&mut self, stop_instances: bool) {
        if stop_instances {
            self.stop_everything().await;
            return;
        }
        // Leave the data plane serving: the next control plane adopts it.
        self.persist_instances();
        for instance in &mut self.instances.list {
            if let Some(supervisor) = instance.supervisor.take() {
                supervisor.detach();
            }
        }
    }

    /// Picks up what an earlier control plane left: spec, state, running instances, routes.
    async fn restore(&mut self) -> Result<(), ServerError> {
        let Some(row) = self.ctx.store.service(&self.name)? else {
            return Err(ServerError::NotFound(format!("no service {}", self.name)));
        };
        let spec = ServiceSpec::from_yaml(&row.spec_yaml)?;
        if let Some(json) = self.ctx.store.state(&self.name)? {
            self.state = serde_json::from_str(&json).map_err(|e| {
                ServerError::Internal(format!("stored state of {}: {e}", self.name))
            })?;
        }
        self.spec = Some(spec);
        self.routes.restore(&self.ctx).await;
        let rows = self.ctx.store.instances(&self.name)?;
        for row in rows {
            let payload = self.payload(row.revision);
            let stack =
                stack_of(&row.id).filter(|id| self.state.stacks.iter().any(|s| s.id == *id));
            let adopted = match (payload, stack) {
                (Some(payload), Some(stack)) => self
                    .launch_paths(row.revision, &payload)
                    .ok()
                    .map(|(program, working_dir)| {
                        let at =
                            self.placement(&row.id, row.revision, program, working_dir, row.port);
                        instance_spec(&payload, at)
                    })
                    .and_then(|spec| adopt(spec, &row))
                    .map(|supervisor| (stack, supervisor)),
                _ => None,
            };
            match adopted {
                Some((stack, supervisor)) => {
                    tracing::info!(service = %self.name, instance = %row.id, "adopted running instance");
                    self.instances.list.push(Instance {
                        state: supervisor.watch(),
                        supervisor: Some(supervisor),
                        id: row.id.clone(),
                        stack,
                        revision: row.revision,
                        port: row.port,
                        stopping: false,
                        started_at: row.started_at,
                    });
                }
                None => {
                    if let (Some(pid), Some(start_time)) = (row.pid, row.pid_start_time) {
                        let process = ramp_runtime::ProcessId { pid, start_time };
                        ramp_runtime::stop_process(process, "SIGTERM", Duration::from_secs(5))
                            .await;
                    }
                    let _ = self.ctx.store.remove_instance(&row.id);
                }
            }
        }
        // Instances started just before a crash, before their row was written, are stopped:
        // the state machine starts what it still wants, and nothing runs unaccounted for.
        let known: Vec<u32> = self
            .instances
            .list
            .iter()
            .filter_map(|i| i.state.borrow().process.map(|p| p.pid))
            .collect();
        for pid in unrecorded(&self.name, &self.ctx.config.data_dir, &known) {
            if let Ok(process) = ramp_runtime::process_id(pid) {
                tracing::warn!(service = %self.name, pid, "stopping an unrecorded instance");
                ramp_runtime::stop_process(process, "SIGTERM", Duration::from_secs(5)).await;
            }
        }
        Ok(())
    }
}
