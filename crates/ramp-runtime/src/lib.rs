//! Where revisions run: each instance of a revision is a local child process on its own port,
//! supervised by a [`Supervisor`].
//!
//! A supervisor starts the process (in its own process group, with stdout and stderr appended
//! straight to a per-instance log file), gates it on its readiness probe, restarts it with
//! exponential backoff when it exits or fails its liveness probe, and stops it with its stop
//! signal, escalating to `SIGKILL` for the whole process group after the grace period.
//!
//! Instances outlive the control plane: nothing flows through the control plane's pipes, so a
//! `kill -9` of the control plane leaves them serving. The caller persists each instance's
//! [`ProcessId`] (pid and kernel start time) and, once restarted, takes the instance back with
//! [`Supervisor::adopt`], which first checks with [`is_same_process`] that the pid was not
//! reused.

mod backoff;
mod error;
mod logs;
mod probe;
mod process;
mod procfs;
mod spec;
mod supervisor;

pub use error::RuntimeError;
pub use logs::tail_log;
pub use probe::{http_status, probe_once, run_command};
pub use process::{is_same_process, parse_signal, process_id, stop_process};
pub use procfs::{pids, processes_mentioning};
pub use spec::{InstanceSpec, InstanceState, Phase, ProcessId, StopOutcome};
pub use supervisor::Supervisor;
