//! Processes: spawning an instance in its own process group, identifying it through
//! `/proc/<pid>/stat`, and signalling or stopping its whole group.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::str::FromStr;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::{Instant, sleep};

use crate::procfs::pids;
use crate::{InstanceSpec, ProcessId, RuntimeError, StopOutcome};

/// How often a stopping process group is checked.
const STOP_POLL: Duration = Duration::from_millis(20);
/// How often an adopted process (not our child) is checked for exit.
const ADOPTED_POLL: Duration = Duration::from_millis(100);
/// How long to wait for a group to vanish after `SIGKILL` before giving up on it.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Parses a signal name: `SIGTERM`, `TERM`, `sigterm` or a number such as `15`.
pub fn parse_signal(name: &str) -> Result<Signal, RuntimeError> {
    let unknown = || RuntimeError::UnknownSignal(name.to_owned());
    let trimmed = name.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| unknown());
    }
    let upper = trimmed.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).map_err(|_| unknown())
}

/// The fields of `/proc/<pid>/stat` the runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Field 3: `R`, `S`, `Z`, ...
    pub(crate) state: char,
    /// Field 5: process group.
    pub(crate) pgrp: i64,
    /// Field 22: start time in clock ticks since boot.
    pub(crate) start_time: u64,
}

impl Stat {
    /// Whether the process has exited (zombie or dead, waiting to be reaped).
    pub(crate) fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and
/// may itself hold spaces and parentheses, so fields are counted after the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // `rest` starts at field 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(5 - 3)?.parse().ok()?;
    let start_time = fields.get(22 - 3)?.parse().ok()?;
    Some(Stat {
        state,
        pgrp,
        start_time,
    })
}

/// Reads `/proc/<pid>/stat`.
pub(crate) fn read_stat(pid: u32) -> io::Result<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat"),
        )
    })
}

/// The identity of a running process by pid (its start time read from `/proc`), for taking
/// over a process found by other means.
pub fn process_id(pid: u32) -> io::Result<ProcessId> {
    let stat = read_stat(pid)?;
    if stat.is_dead() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("process {pid} has exited"),
        ));
    }
    Ok(ProcessId {
        pid,
        start_time: stat.start_time,
    })
}

/// Whether the pid is alive and still the same process (same start time); a zombie counts
/// as gone.
pub fn is_same_process(process: ProcessId) -> bool {
    if process.pid == 0 {
        return false;
    }
    match read_stat(process.pid) {
        Ok(stat) => stat.start_time == process.start_time && !stat.is_dead(),
        Err(_) => false,
    }
}

/// Whether the pid now belongs to another process than `process`.
fn is_reused(process: ProcessId) -> bool {
    read_stat(process.pid).is_ok_and(|stat| stat.start_time != process.start_time)
}

fn pgid(process: ProcessId) -> Pid {
    Pid::from_raw(process.pid as i32)
}

/// Whether the process group holds a live (non-zombie) process. Zombies are left out because
/// orphans are reaped by init, which may take a while.
pub(crate) fn group_alive(process: ProcessId) -> bool {
    if process.pid == 0 {
        return false;
    }
    match killpg(pgid(process), None) {
        Err(Errno::ESRCH) => false,
        Ok(()) | Err(_) => group_has_live_member(process.pid).unwrap_or(true),
    }
}

fn group_has_live_member(pgid: u32) -> io::Result<bool> {
    Ok(pids()?.any(|pid| {
        read_stat(pid).is_ok_and(|stat| stat.pgrp == i64::from(pgid) && !stat.is_dead())
    }))
}

/// Sends `SIGKILL` to the process group of `process`, unless its pid now belongs to another
/// process. Also sweeps up what is left of a group whose leader has already exited.
pub(crate) fn kill_group(process: ProcessId) {
    if process.pid == 0 || is_reused(process) {
        return;
    }
    match killpg(pgid(process), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pid = process.pid, "cannot kill process group: {e}"),
    }
}

/// Describes how a child ended: `exited with status 3`, `killed by SIGSEGV`.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    if let Some(number) = status.signal() {
        let name = Signal::try_from(number)
            .map_or_else(|_| format!("signal {number}"), |s| s.as_str().to_owned());
        let core = if status.core_dumped() {
            " (core dumped)"
        } else {
            ""
        };
        return format!("killed by {name}{core}");
    }
    status.to_string()
}

/// Replaces `{port}`.
pub(crate) fn with_port(text: &str, port: u16) -> String {
    text.replace("{port}", &port.to_string())
}

/// Starts the instance: own process group, stdin from `/dev/null`, stdout and stderr appended
/// to the log file.
pub(crate) fn spawn(spec: &InstanceSpec) -> Result<Running, RuntimeError> {
    if !spec.working_dir.is_dir() {
        return Err(RuntimeError::WorkingDir {
            path: spec.working_dir.clone(),
            program: spec.program.clone(),
        });
    }
    let log_error = |source| RuntimeError::Log {
        path: spec.log_path.clone(),
        source,
    };
    if let Some(parent) = spec.log_path.parent()
        && !parent.as_os_str().is_empty()
    {
        fs::create_dir_all(parent).map_err(log_error)?;
    }
    let stdout = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)
        .map_err(log_error)?;
    let stderr = stdout.try_clone().map_err(log_error)?;

    let mut command = std::process::Command::new(&spec.program);
    command
        .args(spec.args.iter().map(|a| with_port(a, spec.port)))
        .envs(spec.env.iter().map(|(k, v)| (k, with_port(v, spec.port))))
        .current_dir(&spec.working_dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    if !spec.port_env.is_empty() {
        command.env(&spec.port_env, spec.port.to_string());
    }
    let mut command = tokio::process::Command::from(command);
    // The instance outlives this handle when the supervisor detaches from it.
    command.kill_on_drop(false);
    let mut child = command.spawn().map_err(|source| RuntimeError::Spawn {
        program: spec.program.clone(),
        source,
    })?;
    let Some(pid) = child.id() else {
        return Err(RuntimeError::Spawn {
            program: spec.program.clone(),
            source: io::Error::other("process vanished right after it started"),
        });
    };
    // Not reaped yet, so /proc/<pid> is there even if the program already exited.
    match read_stat(pid) {
        Ok(stat) => {
            let id = ProcessId {
                pid,
                start_time: stat.start_time,
            };
            tracing::info!(instance = %spec.id, pid, port = spec.port, "started");
            Ok(Running::Child { child, id })
        }
        Err(source) => {
            let _ = child.start_kill();
            Err(RuntimeError::ProcStat {
                pid,
                program: spec.program.clone(),
                source,
            })
        }
    }
}

/// A supervised process: our own child, or one adopted from an earlier control plane.
#[derive(Debug)]
pub(crate) enum Running {
    /// Started by this control plane; reaped with `wait`.
    Child {
        /// The child handle.
        child: Child,
        /// Its identity.
        id: ProcessId,
    },
    /// Started by an earlier control plane; watched through `/proc`.
    Adopted(ProcessId),
}

impl Running {
    /// The process's identity.
    pub(crate) fn id(&self) -> ProcessId {
        match self {
            Running::Child { id, .. } | Running::Adopted(id) => *id,
        }
    }

    /// Whether the process has exited (reaping it if it is our child).
    pub(crate) fn try_gone(&mut self) -> bool {
        match self {
            Running::Child { child, id } => match child.try_wait() {
                Ok(Some(_)) => true,
                Ok(None) => false,
                Err(_) => !is_same_process(*id),
            },
            Running::Adopted(id) => !is_same_process(*id),
        }
    }

    /// Waits until the process exits and says how it ended. Cancel-safe.
    pub(crate) async fn wait_exit(&mut self) -> String {
        match self {
            Running::Child { child, id } => match child.wait().await {
                Ok(status) => describe_exit(status),
                Err(e) => {
                    // Should not happen; fall back to watching /proc.
                    tracing::warn!(pid = id.pid, "cannot wait for child: {e}");
                    poll_until_gone(*id).await;
                    "exited (status unknown)".to_owned()
                }
            },
            Running::Adopted(id) => {
                poll_until_gone(*id).await;
                "exited (status unknown)".to_owned()
            }
        }
    }
}

async fn poll_until_gone(id: ProcessId) {
    while is_same_process(id) {
        sleep(ADOPTED_POLL).await;
    }
}

/// Stops a process and its group: `signal` to the group, then, if anything in the group is
/// still alive after `grace`, `SIGKILL` to the group. Waits until the group is gone.
pub(crate) async fn terminate(
    running: &mut Running,
    signal: Signal,
    grace: Duration,
) -> StopOutcome {
    let id = running.id();
    let leader_gone = running.try_gone();
    if leader_gone && (is_reused(id) || !group_alive(id)) {
        return StopOutcome::AlreadyGone;
    }
    match killpg(pgid(id), signal) {
        Ok(()) => {}
        Err(Errno::ESRCH) if leader_gone => return StopOutcome::AlreadyGone,
        Err(e) => tracing::warn!(pid = id.pid, "cannot send {signal} to process group: {e}"),
    }
    if signal != Signal::SIGKILL && signal != Signal::SIGCONT {
        // A stopped process only sees the signal once continued.
        let _ = killpg(pgid(id), Signal::SIGCONT);
    }
    let all_gone = |running: &mut Running| running.try_gone() && !group_alive(id);
    let deadline = Instant::now() + grace;
    loop {
        if all_gone(running) {
            return StopOutcome::Exited;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        sleep(STOP_POLL.min(deadline - now)).await;
    }
    tracing::info!(pid = id.pid, ?grace, "grace period over, sending SIGKILL");
    match killpg(pgid(id), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pid = id.pid, "cannot kill process group: {e}"),
    }
    let give_up = Instant::now() + KILL_WAIT;
    while !all_gone(running) {
        if Instant::now() >= give_up {
            tracing::warn!(pid = id.pid, "process group still alive after SIGKILL");
            break;
        }
        sleep(STOP_POLL).await;
    }
    StopOutcome::Killed
}

/// Stops the process group of a process that is not supervised (e.g. an instance left by an
/// earlier control plane that is no longer wanted): `signal` to the group, then `SIGKILL` to
/// the group after `grace`. A pid that now belongs to another process is left alone
/// ([`StopOutcome::AlreadyGone`]). An unknown signal name falls back to `SIGTERM`.
pub async fn stop_process(process: ProcessId, signal: &str, grace: Duration) -> StopOutcome {
    let signal = parse_signal(signal).unwrap_or_else(|e| {
        tracing::warn!("{e}; using SIGTERM");
        Signal::SIGTERM
    });
    terminate(&mut Running::Adopted(process), signal, grace).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal(" sigint ").unwrap(), Signal::SIGINT);
        assert_eq!(parse_signal("usr1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        let err = parse_signal("SIGNOPE").unwrap_err();
        assert_eq!(err.to_string(), "unknown signal `SIGNOPE`");
        assert!(parse_signal("").is_err());
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let text = "4242 (we (ird) name) S 1 4240 4240 0 -1 4194560 96 0 0 0 0 0 0 0 20 0 1 0 456776 0 0 18446744073709551615\n";
        let stat = parse_stat(text).unwrap();
        assert_eq!(
            stat,
            Stat {
                state: 'S',
                pgrp: 4240,
                start_time: 456776
            }
        );
        assert!(!stat.is_dead());
        assert!(parse_stat("1 (x) Z 0 0").is_none());
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn own_process_is_itself() {
        let stat = read_stat(std::process::id()).unwrap();
        let me = ProcessId {
            pid: std::process::id(),
            start_time: stat.start_time,
        };
        assert!(is_same_process(me));
        assert!(!is_same_process(ProcessId {
            start_time: stat.start_time + 1,
            ..me
        }));
        assert!(!is_same_process(ProcessId {
            pid: 0,
            start_time: 0
        }));
        assert!(!is_same_process(ProcessId {
            pid: u32::MAX,
            start_time: 0
        }));
    }

    #[test]
    fn exit_descriptions() {
        assert_eq!(
            describe_exit(ExitStatus::from_raw(3 << 8)),
            "exited with status 3"
        );
        assert_eq!(describe_exit(ExitStatus::from_raw(11)), "killed by SIGSEGV");
        assert_eq!(
            describe_exit(ExitStatus::from_raw(6 | 0x80)),
            "killed by SIGABRT (core dumped)"
        );
    }

    #[test]
    fn port_placeholder() {
        assert_eq!(
            with_port("--listen=:{port}/{port}", 8080),
            "--listen=:8080/8080"
        );
        assert_eq!(with_port("none", 1), "none");
    }
}
