//! The `ramp server` under test, its temp directory, and making sure nothing outlives the run.
//!
//! The router agent and the instances run in process groups of their own (on purpose: they keep
//! serving when the control plane dies), so a signal to the server's group does not reach them.
//! Everything they run has the temp directory in its command line (the data directory, the
//! agent's socket, the instances' stored executable), which is how leftovers are found.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ramp_runtime::processes_mentioning;

/// A free port on 127.0.0.1 (free when asked; nothing else here binds ports at random).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Sends `signal` (`TERM`, `KILL`) to `pid` with kill(1): this crate has no libc binding.
fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The temp directory and the server running in it. Dropping it kills whatever is left and
/// removes the directory (unless kept), so an early return or a panic leaks nothing.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) dir: PathBuf,
    pub(crate) ramp: PathBuf,
    server: Option<Child>,
    keep: bool,
    cleaned: bool,
}

/// How the end went.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    /// SIGTERM to exit of the server.
    pub(crate) server_exit: Option<Duration>,
    /// Processes still there after the server exited (killed), with their command lines.
    pub(crate) leftovers: Vec<(u32, String)>,
}

impl Env {
    pub(crate) fn create(ramp: &Path, keep: bool) -> anyhow::Result<Env> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "ramp-bench-rollback.{}.{nanos:09}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        Ok(Env {
            dir,
            ramp: ramp.to_path_buf(),
            server: None,
            keep,
            cleaned: false,
        })
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub(crate) fn server_log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    pub(crate) fn agent_log(&self) -> PathBuf {
        self.data_dir().join("logs").join("router-agent.log")
    }

    /// `ramp server --data-dir <tmp>/data --listen <addr>`, logging to `<tmp>/server.log`.
    pub(crate) fn start_server(&mut self, listen: SocketAddr) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.server_log())?;
        let child = Command::new(&self.ramp)
            .arg("server")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen")
            .arg(listen.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} server", self.ramp.display()))?;
        self.server = Some(child);
        Ok(())
    }

    /// Fails if the server has exited.
    pub(crate) fn check_server(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.server.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.server = None;
            bail!(
                "ramp server exited ({status}); see {}",
                self.server_log().display()
            );
        }
        Ok(())
    }

    /// SIGTERM to the server (it drains and stops every instance and the agent), then
    /// whatever mentions the temp directory is killed, then the directory goes.
    pub(crate) async fn shutdown(&mut self, grace: Duration) -> Shutdown {
        let mut server_exit = None;
        if let Some(mut child) = self.server.take() {
            let started = Instant::now();
            send_signal(child.id(), "TERM");
            while started.elapsed() < grace {
                if let Ok(Some(_)) = child.try_wait() {
                    server_exit = Some(started.elapsed());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if server_exit.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // The agent and the instances exit just after the server answers their last drain:
        // give them a moment before calling them leftovers.
        let needle = self.dir.to_string_lossy().into_owned();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut leftovers = processes_mentioning(&needle);
        while !leftovers.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            leftovers = processes_mentioning(&needle);
        }
        self.cleanup();
        Shutdown {
            server_exit,
            leftovers,
        }
    }

    /// Kills the server and everything mentioning the temp directory, removes the directory.
    /// Idempotent; synchronous so that `Drop` can use it.
    pub(crate) fn cleanup(&mut self) {
        if self.cleaned {
            return;
        }
        self.cleaned = true;
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let needle = self.dir.to_string_lossy().into_owned();
        for _ in 0..3 {
            let left = processes_mentioning(&needle);
            if left.is_empty() {
                break;
            }
            for (pid, _) in &left {
                send_signal(*pid, "KILL");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.keep {
            eprintln!("[bench] kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The last lines of the server's and the agent's logs, for an error report.
    pub(crate) fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for path in [self.server_log(), self.agent_log()] {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let all: Vec<&str> = text.lines().collect();
                out.push_str(&format!("--- last lines of {} ---\n", path.display()));
                for line in &all[all.len().saturating_sub(lines)..] {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.cleanup();
    }
}
