//! A service's instances: started, observed, drained and stopped to match the desired stack
//! sizes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ramp_rollout::{StackStatus, World};
use ramp_runtime::{InstanceSpec, InstanceState, Phase as InstancePhase, ProcessId, Supervisor};
use ramp_store::{InstanceRow, Timestamp};
use tokio::sync::watch;

use crate::payload::Payload;

/// Longest wait before launching again after a launch failed.
const LAUNCH_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// One instance the controller manages.
#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) id: String,
    pub(crate) stack: u64,
    pub(crate) revision: u64,
    pub(crate) port: u16,
    /// `None` once handed to the task that drains and stops it.
    pub(crate) supervisor: Option<Supervisor>,
    pub(crate) state: watch::Receiver<InstanceState>,
    /// Taken out of routing, being drained and stopped.
    pub(crate) stopping: bool,
    pub(crate) started_at: Timestamp,
}

impl Instance {
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub(crate) fn is_ready(&self) -> bool {
        !self.stopping && self.state.borrow().phase == InstancePhase::Ready
    }

    pub(crate) fn row(&self, service: &str) -> InstanceRow {
        let state = self.state.borrow();
        InstanceRow {
            id: self.id.clone(),
            service: service.to_string(),
            revision: self.revision,
            port: self.port,
            pid: state.process.map(|p| p.pid),
            pid_start_time: state.process.map(|p| p.start_time),
            state: if self.stopping {
                "Stopping"
            } else {
                state.phase.as_str()
            }
            .to_string(),
            restarts: state.restarts,
            started_at: self.started_at,
        }
    }
}

/// Launch failures of one stack (a program that cannot start at all).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LaunchFailures {
    pub(crate) count: u32,
    pub(crate) retry_at: Option<Instant>,
}

/// Every instance of a service.
#[derive(Debug, Default)]
pub(crate) struct Instances {
    pub(crate) list: Vec<Instance>,
    pub(crate) failures: BTreeMap<u64, LaunchFailures>,
}

impl Instances {
    /// The world as the state machine sees it.
    pub(crate) fn world(&self) -> World {
        let mut world = World::new();
        for i in &self.list {
            let s: &mut StackStatus = world.entry(i.stack).or_default();
            if i.stopping {
                s.stopping += 1;
                continue;
            }
            s.running += 1;
            let state = i.state.borrow();
            if state.phase == InstancePhase::Ready {
                s.ready += 1;
            }
            s.crash_looping |= state.crash_looping;
        }
        for (stack, f) in &self.failures {
            if f.count >= 3 {
                world.entry(*stack).or_default().crash_looping = true;
            }
        }
        world
    }

    /// Ready instances per stack, for the router.
    pub(crate) fn ready_addrs(&self) -> BTreeMap<u64, Vec<SocketAddr>> {
        let mut ready: BTreeMap<u64, Vec<SocketAddr>> = BTreeMap::new();
        for i in self.list.iter().filter(|i| i.is_ready()) {
            ready.entry(i.stack).or_default().push(i.addr());
        }
        ready
    }

    /// Instances of a stack that are not being stopped.
    pub(crate) fn running_in(&self, stack: u64) -> usize {
        self.list
            .iter()
            .filter(|i| i.stack == stack && !i.stopping)
            .count()
    }

    /// Picks the instances to stop when a stack shrinks: not ready first, then the newest.
    pub(crate) fn pick_to_stop(&self, stack: u64, count: usize) -> Vec<String> {
        let mut candidates: Vec<&Instance> = self
            .list
            .iter()
            .filter(|i| i.stack == stack && !i.stopping)
            .collect();
        candidates.sort_by_key(|i| (i.is_ready(), std::cmp::Reverse(i.started_at.0)));
        candidates
            .into_iter()
            .take(count)
            .map(|i| i.id.clone())
            .collect()
    }

    pub(crate) fn may_launch(&self, stack: u64) -> bool {
        self.failures
            .get(&stack)
            .and_then(|f| f.retry_at)
            .is_none_or(|at| Instant::now() >= at)
    }

    pub(crate) fn launch_failed(&mut self, stack: u64) {
        let f = self.failures.entry(stack).or_default();
        f.count += 1;
        let backoff = Duration::from_millis(500)
            .saturating_mul(1 << f.count.min(8))
            .min(LAUNCH_BACKOFF_MAX);
        f.retry_at = Some(Instant::now() + backoff);
    }

    pub(crate) fn launched(&mut self, stack: u64) {
        self.failures.remove(&stack);
    }
}

/// What the controller needs to start an instance of a revision.
pub(crate) fn instance_spec(
    id: String,
    payload: &Payload,
    program: std::path::PathBuf,
    working_dir: std::path::PathBuf,
    port: u16,
    log_path: std::path::PathBuf,
) -> InstanceSpec {
    let t = &payload.template;
    InstanceSpec {
        id,
        program,
        args: t.args.clone(),
        env: t.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        port_env: t.port_env.clone(),
        working_dir,
        port,
        log_path,
        readiness: t.readiness.clone(),
        liveness: t.liveness.clone(),
        stop: t.stop.clone(),
    }
}

/// A free port on 127.0.0.1 (the kernel picks one; it stays free until the instance binds it,
/// barring a rare race that readiness then catches).
pub(crate) fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// A short random suffix for instance ids.
pub(crate) fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = ramp_route::hash::mix(nanos ^ u64::from(std::process::id()));
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..5)
        .map(|_| {
            let c = alphabet[(x % 36) as usize] as char;
            x /= 36;
            c
        })
        .collect()
}

/// Supervises an instance an earlier control plane started, if it still runs.
pub(crate) fn adopt(spec: InstanceSpec, row: &InstanceRow) -> Option<Supervisor> {
    let process = ProcessId {
        pid: row.pid?,
        start_time: row.pid_start_time?,
    };
    Supervisor::adopt(spec, process, row.restarts).ok()
}
