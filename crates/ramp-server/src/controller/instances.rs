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

    /// The instance's phase as the API names it (`Starting`, `Ready`, `NotReady`,
    /// `Restarting`, `Stopping`, `Stopped`).
    pub(crate) fn phase_name(&self) -> &'static str {
        if self.stopping {
            return "Stopping";
        }
        match self.state.borrow().phase {
            InstancePhase::Starting => "Starting",
            InstancePhase::Ready => "Ready",
            InstancePhase::NotReady => "NotReady",
            InstancePhase::Restarting => "Restarting",
            InstancePhase::Stopping => "Stopping",
            InstancePhase::Stopped => "Stopped",
        }
    }

    pub(crate) fn row(&self, service: &str) -> InstanceRow {
        let phase = self.phase_name().to_string();
        let state = self.state.borrow();
        InstanceRow {
            id: self.id.clone(),
            service: service.to_string(),
            revision: self.revision,
            port: self.port,
            pid: state.process.map(|p| p.pid),
            pid_start_time: state.process.map(|p| p.start_time),
            state: phase,
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

/// Environment variable naming the instance; also how a restarted control plane finds
/// instances it never got to record.
pub(crate) const INSTANCE_ENV: &str = "RAMP_INSTANCE";
/// Environment variable naming the control plane's data directory.
const DATA_DIR_ENV: &str = "RAMP_DATA_DIR";

/// Where an instance runs, beyond its revision's payload.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    pub(crate) id: String,
    pub(crate) service: String,
    pub(crate) revision: u64,
    pub(crate) program: std::path::PathBuf,
    pub(crate) working_dir: std::path::PathBuf,
    pub(crate) port: u16,
    pub(crate) log_path: std::path::PathBuf,
    /// The control plane's data directory, which scopes the instance to this control plane.
    pub(crate) data_dir: std::path::PathBuf,
}

/// What the runtime needs to start an instance of a revision. The instance also learns its
/// own id, service and revision from `RAMP_INSTANCE`, `RAMP_SERVICE` and `RAMP_REVISION`.
pub(crate) fn instance_spec(payload: &Payload, at: Placement) -> InstanceSpec {
    let t = &payload.template;
    let mut env: Vec<(String, String)> =
        t.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.push((INSTANCE_ENV.into(), at.id.clone()));
    env.push(("RAMP_SERVICE".into(), at.service.clone()));
    env.push(("RAMP_REVISION".into(), at.revision.to_string()));
    env.push((DATA_DIR_ENV.into(), at.data_dir.display().to_string()));
    let (id, program, working_dir, port, log_path) =
        (at.id, at.program, at.working_dir, at.port, at.log_path);
    InstanceSpec {
        id,
        program,
        args: t.args.clone(),
        env,
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

/// Processes whose environment marks them as instances of this service under this data
/// directory but that are not among `known` pids: instances started just before a crash,
/// before they were recorded.
pub(crate) fn unrecorded(service: &str, data_dir: &std::path::Path, known: &[u32]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let instance_var = format!("{INSTANCE_ENV}=");
    let service_var = format!("RAMP_SERVICE={service}");
    let dir_var = format!("{DATA_DIR_ENV}={}", data_dir.display());
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !known.contains(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
                let has = |want: &str| vars.contains(&want.as_bytes());
                let instance = vars.iter().any(|v| v.starts_with(instance_var.as_bytes()));
                instance && has(&service_var) && has(&dir_var)
            })
        })
        .collect()
}
