//! What an instance is and what state it is in.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use ramp_model::{Probe, StopPolicy};

/// Everything needed to run (and re-run) one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    /// Instance name, e.g. `web-3-k2f9` (used in logs).
    pub id: String,
    /// Executable to run (already resolved).
    pub program: PathBuf,
    /// Arguments; `{port}` is replaced by the port at spawn.
    pub args: Vec<String>,
    /// Extra environment (on top of the control plane's); `{port}` is replaced in values.
    pub env: Vec<(String, String)>,
    /// Variable set to the port (skipped when empty).
    pub port_env: String,
    /// Working directory; must exist.
    pub working_dir: PathBuf,
    /// The instance's port.
    pub port: u16,
    /// Where stdout and stderr are appended; parent directories are created as needed.
    pub log_path: PathBuf,
    /// When the instance may receive traffic; `None`: ready once the process is running.
    pub readiness: Option<Probe>,
    /// When the instance must be restarted; `None`: only when it exits.
    pub liveness: Option<Probe>,
    /// How the instance is stopped.
    pub stop: StopPolicy,
}

/// A process, identified so that a reused pid is told apart: the pid and the kernel's start
/// time of the process (field 22 of `/proc/<pid>/stat`, clock ticks since boot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// Process id; also the id of the instance's process group.
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} (start time {})", self.pid, self.start_time)
    }
}

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Running, readiness not yet passed.
    Starting,
    /// Running and passing readiness (or without a readiness probe).
    Ready,
    /// Running, was ready, readiness now failing.
    NotReady,
    /// Exited (or killed by its liveness probe), waiting out the backoff before restarting.
    Restarting,
    /// Being stopped.
    Stopping,
    /// Stopped; the supervisor is done.
    Stopped,
}

impl Phase {
    /// Lowercase name, as shown by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Ready => "ready",
            Phase::NotReady => "not-ready",
            Phase::Restarting => "restarting",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of an instance, published by its supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    /// Current phase.
    pub phase: Phase,
    /// The running process, if any.
    pub process: Option<ProcessId>,
    /// How many times the instance was restarted (exits and liveness failures).
    pub restarts: u32,
    /// How the previous process ended, e.g. `exited with status 3`, `killed by SIGSEGV`,
    /// `liveness probe failed`.
    pub last_exit: Option<String>,
    /// Three or more restarts within the last 60 seconds.
    pub crash_looping: bool,
    /// When `phase` last changed.
    pub since: Instant,
}

/// How [`Supervisor::stop`](crate::Supervisor::stop) or [`stop_process`](crate::stop_process)
/// ended the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopOutcome {
    /// The process group ended within the grace period after the stop signal.
    Exited,
    /// Something in the process group outlived the grace period and was sent `SIGKILL`.
    Killed,
    /// Nothing was running.
    AlreadyGone,
}
