//! Errors of the runtime.

use std::io;
use std::path::PathBuf;

/// Why an instance could not be started or adopted.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The program could not be started (missing, not executable, ...).
    #[error("cannot start `{}`: {source}", program.display())]
    Spawn {
        /// The program that was to run.
        program: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The working directory does not exist or is not a directory.
    #[error("working directory `{}` of `{}` is not a directory", path.display(), program.display())]
    WorkingDir {
        /// The working directory.
        path: PathBuf,
        /// The program that was to run there.
        program: PathBuf,
    },
    /// The log file (or its parent directory) could not be created or opened.
    #[error("cannot open log file `{}`: {source}", path.display())]
    Log {
        /// The log file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The started process could not be identified in `/proc`.
    #[error("cannot read /proc/{pid}/stat of `{}`: {source}", program.display())]
    ProcStat {
        /// The process id.
        pid: u32,
        /// The program that was started.
        program: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The process to adopt is gone, or its pid now belongs to another process.
    #[error("process {pid} (start time {start_time}) is not running")]
    NotRunning {
        /// The process id.
        pid: u32,
        /// Its start time, in clock ticks since boot.
        start_time: u64,
    },
    /// The stop signal is not a known signal name.
    #[error("unknown signal `{0}`")]
    UnknownSignal(String),
    /// Supervision needs a Tokio runtime, and there is none on this thread.
    #[error("no Tokio runtime to supervise `{}` on", program.display())]
    NoRuntime {
        /// The program that was to be supervised.
        program: PathBuf,
    },
}
