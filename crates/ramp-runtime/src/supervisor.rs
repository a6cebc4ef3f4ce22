//! The supervisor: one Tokio task per instance that starts, probes, restarts and stops it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until};

use crate::backoff::{Backoff, RestartHistory};
use crate::probe::{ProbeKind, Streak, probe_loop};
use crate::process::{self, Running, kill_group, terminate};
use crate::{
    InstanceSpec, InstanceState, Phase, ProcessId, RuntimeError, StopOutcome, is_same_process,
    parse_signal,
};

/// What `last_exit` says after a liveness kill.
const LIVENESS_FAILED: &str = "liveness probe failed";

/// Supervises one instance from a Tokio task; see [`launch`](Self::launch) and
/// [`adopt`](Self::adopt).
///
/// Dropping a supervisor without [`stop`](Self::stop) or [`detach`](Self::detach) kills the
/// instance's process group (`SIGKILL`, sent synchronously from `drop`).
#[derive(Debug)]
pub struct Supervisor {
    state: watch::Receiver<InstanceState>,
    commands: Option<mpsc::UnboundedSender<Command>>,
    shared: Arc<Mutex<Shared>>,
    task: Option<JoinHandle<()>>,
}

/// What the handle and the task both see.
#[derive(Debug, Default)]
struct Shared {
    /// The running process, if any.
    process: Option<ProcessId>,
    /// The handle is gone (dropped, stopped or detached): start nothing new.
    released: bool,
    /// The handle was detached: leave the process running.
    detached: bool,
}

#[derive(Debug)]
enum Command {
    Stop(oneshot::Sender<StopOutcome>),
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Supervisor {
    /// Spawns the process and supervises it: probes, restart on exit or on liveness failure
    /// with exponential backoff (0.5s, 1s, 2s, ... capped at 30s, reset after 60s of running),
    /// `crash_looping` after 3 or more restarts within 60s.
    ///
    /// Errors starting the process (program missing or not executable, missing working
    /// directory, log file not writable, unknown stop signal) are returned right away. Must be
    /// called within a Tokio runtime.
    pub fn launch(spec: InstanceSpec) -> Result<Supervisor, RuntimeError> {
        let signal = parse_signal(&spec.stop.signal)?;
        let handle = runtime(&spec)?;
        let running = process::spawn(&spec)?;
        Ok(Self::start(handle, spec, signal, running, 0))
    }

    /// Supervises a process started by an earlier control plane, if `process` is still alive
    /// with the same start time (else [`RuntimeError::NotRunning`]). Readiness is checked
    /// again from `Starting`. It is not our child, so its exit is noticed by polling `/proc`
    /// every 100ms; if it dies it is restarted from `spec` like any crash. `restarts` carries
    /// the earlier count on. Must be called within a Tokio runtime.
    pub fn adopt(
        spec: InstanceSpec,
        process: ProcessId,
        restarts: u32,
    ) -> Result<Supervisor, RuntimeError> {
        let signal = parse_signal(&spec.stop.signal)?;
        let handle = runtime(&spec)?;
        if !is_same_process(process) {
            return Err(RuntimeError::NotRunning {
                pid: process.pid,
                start_time: process.start_time,
            });
        }
        tracing::info!(instance = %spec.id, pid = process.pid, "adopted");
        Ok(Self::start(
            handle,
            spec,
            signal,
            Running::Adopted(process),
            restarts,
        ))
    }

    fn start(
        handle: tokio::runtime::Handle,
        spec: InstanceSpec,
        signal: Signal,
        running: Running,
        restarts: u32,
    ) -> Supervisor {
        let id = running.id();
        let (state_tx, state_rx) = watch::channel(InstanceState {
            phase: Phase::Starting,
            process: Some(id),
            restarts,
            last_exit: None,
            crash_looping: false,
            since: Instant::now(),
        });
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Mutex::new(Shared {
            process: Some(id),
            ..Shared::default()
        }));
        let task = Task {
            spec,
            signal,
            state: state_tx,
            shared: Arc::clone(&shared),
            commands: commands_rx,
            backoff: Backoff::default(),
            history: RestartHistory::default(),
        };
        let task = handle.spawn(task.run(running));
        Supervisor {
            state: state_rx,
            commands: Some(commands_tx),
            shared,
            task: Some(task),
        }
    }

    /// The instance's current state.
    pub fn state(&self) -> InstanceState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every state change.
    pub fn watch(&self) -> watch::Receiver<InstanceState> {
        self.state.clone()
    }

    /// Stops supervising and stops the process: the stop signal to its process group, then
    /// `SIGKILL` to the group after the grace period. Returns how it ended. Never leaves the
    /// process (or its children) running. The router should have been drained first.
    pub async fn stop(mut self) -> StopOutcome {
        let (reply_tx, reply_rx) = oneshot::channel();
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|c| c.send(Command::Stop(reply_tx)).is_ok());
        let outcome = if sent { reply_rx.await.ok() } else { None };
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        match outcome {
            Some(outcome) => outcome,
            None => {
                // The task is gone (it panicked); kill what it left behind.
                let process = lock(&self.shared).process.take();
                match process {
                    Some(process) => {
                        let mut running = Running::Adopted(process);
                        terminate(&mut running, Signal::SIGKILL, Duration::ZERO).await
                    }
                    None => StopOutcome::AlreadyGone,
                }
            }
        }
    }

    /// Stops supervising but leaves the process running (the control plane is shutting down
    /// and the data plane keeps serving). Returns the process to persist for
    /// [`adopt`](Self::adopt), or `None` if it was between restarts.
    pub fn detach(self) -> Option<ProcessId> {
        let mut shared = lock(&self.shared);
        shared.detached = true;
        shared.released = true;
        shared.process
        // Dropping `self` closes the command channel; the task then ends without touching the
        // process.
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let mut shared = lock(&self.shared);
        shared.released = true;
        if !shared.detached
            && let Some(process) = shared.process
        {
            // Best effort, synchronous: the runtime may be shutting down. The task, if it still
            // runs, notices the closed channel and reaps the process.
            kill_group(process);
        }
    }
}

fn runtime(spec: &InstanceSpec) -> Result<tokio::runtime::Handle, RuntimeError> {
    tokio::runtime::Handle::try_current().map_err(|_| RuntimeError::NoRuntime {
        program: spec.program.clone(),
    })
}

/// How a supervised run of the process ended.
enum Ended {
    /// The process exited on its own.
    Exited(String),
    /// Its liveness probe failed.
    LivenessFailed(String),
    /// `stop` was called.
    Stop(oneshot::Sender<StopOutcome>),
    /// The handle was dropped or detached.
    Released,
}

/// The supervising task.
struct Task {
    spec: InstanceSpec,
    signal: Signal,
    state: watch::Sender<InstanceState>,
    shared: Arc<Mutex<Shared>>,
    commands: mpsc::UnboundedReceiver<Command>,
    backoff: Backoff,
    history: RestartHistory,
}

impl Task {
    /// Changes the published state; `since` follows phase changes and `crash_looping` is
    /// recomputed.
    fn update(&self, change: impl FnOnce(&mut InstanceState)) {
        let now = Instant::now();
        let crash_looping = self.history.crash_looping(now);
        self.state.send_if_modified(|state| {
            let before = state.clone();
            change(state);
            state.crash_looping = crash_looping;
            if state.phase != before.phase {
                state.since = now;
                tracing::info!(instance = %self.spec.id, phase = %state.phase, "phase");
            }
            *state != before
        });
    }

    async fn run(mut self, mut running: Running) {
        loop {
            let started = Instant::now();
            let ended = self.supervise(&mut running).await;
            let mut last_exit = match ended {
                Ended::Stop(reply) => {
                    self.update(|s| s.phase = Phase::Stopping);
                    let outcome =
                        terminate(&mut running, self.signal, self.spec.stop.grace_period).await;
                    self.finish();
                    let _ = reply.send(outcome);
                    return;
                }
                Ended::Released => {
                    self.release(running).await;
                    return;
                }
                Ended::Exited(how) => {
                    // Children the process left behind in its group go with it.
                    terminate(&mut running, Signal::SIGKILL, Duration::ZERO).await;
                    how
                }
                Ended::LivenessFailed(why) => {
                    tracing::warn!(instance = %self.spec.id, "liveness probe failed: {why}");
                    terminate(&mut running, Signal::SIGKILL, Duration::ZERO).await;
                    LIVENESS_FAILED.to_owned()
                }
            };
            lock(&self.shared).process = None;
            let mut ran_for = started.elapsed();
            running = loop {
                let delay = self.backoff.next(ran_for);
                self.history.record(Instant::now());
                tracing::info!(
                    instance = %self.spec.id, last_exit, ?delay, "restarting after backoff"
                );
                self.update(|s| {
                    s.phase = Phase::Restarting;
                    s.process = None;
                    s.restarts = s.restarts.saturating_add(1);
                    s.last_exit = Some(last_exit.clone());
                });
                tokio::select! {
                    biased;
                    command = self.commands.recv() => {
                        match command {
                            Some(Command::Stop(reply)) => {
                                self.finish();
                                let _ = reply.send(StopOutcome::AlreadyGone);
                            }
                            None => self.finish(),
                        }
                        return;
                    }
                    () = sleep(delay) => {}
                }
                match self.respawn() {
                    Some(Ok(next)) => break next,
                    Some(Err(e)) => {
                        tracing::warn!(instance = %self.spec.id, "restart failed: {e}");
                        last_exit = format!("failed to restart: {e}");
                        ran_for = Duration::ZERO;
                    }
                    None => {
                        self.finish();
                        return;
                    }
                }
            };
        }
    }

    /// Starts the process again, unless the handle is gone (`None`).
    fn respawn(&self) -> Option<Result<Running, RuntimeError>> {
        // Holding the lock while spawning: a concurrent `detach` or drop sees either no
        // process and no restart to come, or the new process.
        let mut shared = lock(&self.shared);
        if shared.released {
            return None;
        }
        let spawned = process::spawn(&self.spec);
        if let Ok(running) = &spawned {
            shared.process = Some(running.id());
        }
        Some(spawned)
    }

    /// Publishes the end of supervision.
    fn finish(&self) {
        lock(&self.shared).process = None;
        self.update(|s| {
            s.phase = Phase::Stopped;
            s.process = None;
        });
    }

    /// The handle is gone: leave the process running if it was detached, else kill it.
    async fn release(&self, mut running: Running) {
        if lock(&self.shared).detached {
            tracing::info!(instance = %self.spec.id, pid = running.id().pid, "detached");
            // Dropping our `Child` leaves the process running; Tokio reaps it if it exits while
            // this process still runs.
            return;
        }
        terminate(&mut running, Signal::SIGKILL, Duration::ZERO).await;
        self.finish();
    }

    /// Watches the running process until it exits, fails liveness, or a command arrives.
    async fn supervise(&mut self, running: &mut Running) -> Ended {
        let id = running.id();
        let port = self.spec.port;
        let (results_tx, mut results) = mpsc::channel(4);
        let _readiness = self.spec.readiness.clone().map(|probe| {
            AbortOnDrop(tokio::spawn(probe_loop(
                ProbeKind::Readiness,
                probe,
                port,
                results_tx.clone(),
            )))
        });
        let _liveness = self.spec.liveness.clone().map(|probe| {
            AbortOnDrop(tokio::spawn(probe_loop(
                ProbeKind::Liveness,
                probe,
                port,
                results_tx.clone(),
            )))
        });
        drop(results_tx);

        let gated = self.spec.readiness.is_some();
        self.update(|s| {
            s.phase = if gated { Phase::Starting } else { Phase::Ready };
            s.process = Some(id);
        });
        let mut readiness = Streak::default();
        let mut liveness = Streak::default();
        let mut ever_ready = false;
        loop {
            let crash_loop_ends = self.history.crash_loop_ends(Instant::now());
            tokio::select! {
                biased;
                command = self.commands.recv() => {
                    return match command {
                        Some(Command::Stop(reply)) => Ended::Stop(reply),
                        None => Ended::Released,
                    };
                }
                how = running.wait_exit() => {
                    tracing::info!(instance = %self.spec.id, pid = id.pid, "{how}");
                    return Ended::Exited(how);
                }
                Some((kind, result)) = results.recv() => {
                    let ok = result.is_ok();
                    if let Err(why) = &result {
                        tracing::debug!(instance = %self.spec.id, ?kind, "probe failed: {why}");
                    }
                    match kind {
                        ProbeKind::Readiness => {
                            let Some(probe) = &self.spec.readiness else { continue };
                            let count = readiness.record(ok);
                            if ok && count >= probe.success_threshold {
                                ever_ready = true;
                                self.update(|s| s.phase = Phase::Ready);
                            } else if !ok && count >= probe.failure_threshold && ever_ready {
                                self.update(|s| s.phase = Phase::NotReady);
                            }
                        }
                        ProbeKind::Liveness => {
                            let Some(probe) = &self.spec.liveness else { continue };
                            let count = liveness.record(ok);
                            if let Err(why) = result
                                && count >= probe.failure_threshold
                            {
                                return Ended::LivenessFailed(why);
                            }
                        }
                    }
                }
                () = sleep_until(crash_loop_ends.unwrap_or_else(Instant::now).into()),
                    if crash_loop_ends.is_some() =>
                {
                    // Recomputes `crash_looping`.
                    self.update(|_| {});
                }
            }
        }
    }
}

/// Aborts a task when dropped (probe loops end with the run they probe).
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
