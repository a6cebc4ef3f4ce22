//! Health probes: one check ([`probe_once`]) and the periodic loop a supervisor runs.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use ramp_model::{Probe, ProbeAction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval, sleep, timeout};

use crate::process::with_port;

/// Longest status line read from an HTTP probe's answer.
const MAX_STATUS_LINE: usize = 4096;

/// Runs one check of `action` against `127.0.0.1:port`, failing when it takes longer than
/// `timeout`:
///
/// - HTTP: `GET {path}` (HTTP/1.1, `Connection: close`) answered with a status in 200–399;
/// - TCP: a connection is accepted;
/// - exec: the command (with `{port}` replaced in its arguments) exits 0; on timeout it is
///   killed, with its process group.
///
/// The error says why the check failed.
pub async fn probe_once(action: &ProbeAction, port: u16, timeout: Duration) -> Result<(), String> {
    match action {
        ProbeAction::Http { path } => within(timeout, http_check(path, port)).await,
        ProbeAction::Tcp => {
            within(timeout, async {
                TcpStream::connect(("127.0.0.1", port))
                    .await
                    .map(drop)
                    .map_err(|e| format!("connect to 127.0.0.1:{port}: {e}"))
            })
            .await
        }
        ProbeAction::Exec { command } => exec_check(command, port, timeout).await,
    }
}

async fn within(
    limit: Duration,
    check: impl Future<Output = Result<(), String>>,
) -> Result<(), String> {
    timeout(limit, check)
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {limit:?}")))
}

async fn http_check(path: &str, port: u16) -> Result<(), String> {
    let status = http_status(SocketAddr::from(([127, 0, 0, 1], port)), path).await?;
    if (200..=399).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP status {status}"))
    }
}

/// `GET {path}` on a fresh connection to `addr` (HTTP/1.1, `Connection: close`); returns the
/// status code. No timeout of its own: callers bound it. Also used for smoke checks.
pub async fn http_status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let slash = if path.starts_with('/') { "" } else { "/" };
    let host = addr.ip();
    let request =
        format!("GET {slash}{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send request: {e}"))?;
    let mut answer = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !answer.contains(&b'\n') && answer.len() < MAX_STATUS_LINE {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read response: {e}"))?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&answer)
}

/// The status code of an `HTTP/1.x NNN reason` status line.
fn parse_status_line(answer: &[u8]) -> Result<u16, String> {
    if answer.is_empty() {
        return Err("connection closed without a response".to_owned());
    }
    let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(format!("not an HTTP status line: {:?}", truncate(&line)));
    }
    code.parse()
        .map_err(|_| format!("not an HTTP status line: {:?}", truncate(&line)))
}

fn truncate(line: &str) -> String {
    line.chars().take(80).collect()
}

async fn exec_check(command: &[String], port: u16, limit: Duration) -> Result<(), String> {
    let args: Vec<String> = command.iter().map(|a| with_port(a, port)).collect();
    run_command(&args, limit).await
}

/// Runs `args` (program, then its arguments) with stdin, stdout and stderr on `/dev/null`, in
/// its own process group, and succeeds when it exits 0 within `limit`. On timeout the whole
/// process group is killed, so nothing the command started outlives it.
///
/// The error says why the command failed. Used by exec probes and by blue-green check
/// commands.
pub async fn run_command(args: &[String], limit: Duration) -> Result<(), String> {
    let Some((program, rest)) = args.split_first() else {
        return Err("empty command".to_owned());
    };
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    match timeout(limit, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!(
            "`{program}` {}",
            crate::process::describe_exit(status)
        )),
        Ok(Err(e)) => Err(format!("cannot wait for `{program}`: {e}")),
        Err(_) => {
            if let Some(pid) = child.id() {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            let _ = child.kill().await;
            Err(format!("`{program}` timed out after {limit:?}"))
        }
    }
}

/// Which probe a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    Readiness,
    Liveness,
}

/// Runs `probe` until the receiver goes away: after `initial_delay`, one check every
/// `period`, each result sent on `results`.
pub(crate) async fn probe_loop(
    kind: ProbeKind,
    probe: Probe,
    port: u16,
    results: mpsc::Sender<(ProbeKind, Result<(), String>)>,
) {
    sleep(probe.initial_delay).await;
    let mut ticks = interval(probe.period.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result = probe_once(&probe.action, port, probe.timeout).await;
        if results.send((kind, result)).await.is_err() {
            return;
        }
    }
}

/// Consecutive probe results against a threshold.
#[derive(Debug, Default)]
pub(crate) struct Streak {
    successes: u32,
    failures: u32,
}

impl Streak {
    /// Records a result; returns the consecutive count of its kind.
    pub(crate) fn record(&mut self, ok: bool) -> u32 {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            self.successes
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            self.failures
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Ok(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 302\r\n"), Ok(302));
        assert_eq!(
            parse_status_line(b"HTTP/1.1 503 Service Unavailable"),
            Ok(503)
        );
        assert!(parse_status_line(b"").is_err());
        assert!(parse_status_line(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status_line(b"HTTP/1.1 20 OK\r\n").is_err());
        assert!(parse_status_line(b"HTTP/1.1 abc OK\r\n").is_err());
    }

    #[test]
    fn streaks_reset_on_the_other_kind() {
        let mut s = Streak::default();
        assert_eq!(s.record(true), 1);
        assert_eq!(s.record(true), 2);
        assert_eq!(s.record(false), 1);
        assert_eq!(s.record(false), 2);
        assert_eq!(s.record(true), 1);
    }
}
