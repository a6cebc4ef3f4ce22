//! The router agent: a separate process that hosts every service's router, so routing goes on
//! while the control plane restarts or dies. The control plane finds it on its socket, starts
//! it when it is not there, and pushes tables to it.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ramp_proxy::agent::{PutResult, RouterList};
use ramp_proxy::{AgentClient, AgentError, PutRouter};

use crate::config::ServerConfig;
use crate::error::ServerError;

/// How long a freshly started agent has to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The control plane's link to the agent.
#[derive(Debug)]
pub(crate) struct Agent {
    config: Arc<ServerConfig>,
    client: AgentClient,
    /// Serializes restarts of a dead agent.
    starting: tokio::sync::Mutex<()>,
}

impl Agent {
    /// Connects to the agent on the data directory's socket, starting one if none answers.
    pub(crate) async fn connect_or_start(config: Arc<ServerConfig>) -> Result<Agent, ServerError> {
        let agent = Agent {
            client: AgentClient::new(config.agent_socket()),
            config,
            starting: tokio::sync::Mutex::new(()),
        };
        agent.ensure_running().await?;
        Ok(agent)
    }

    pub(crate) fn client(&self) -> &AgentClient {
        &self.client
    }

    /// Makes sure an agent answers, starting one if needed. Returns true if one was started
    /// (its routers are then empty and every table must be pushed again).
    pub(crate) async fn ensure_running(&self) -> Result<bool, ServerError> {
        let _one_at_a_time = self.starting.lock().await;
        if self.client.health().await.is_ok() {
            return Ok(false);
        }
        self.spawn()?;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if self.client.health().await.is_ok() {
                tracing::info!(socket = %self.config.agent_socket().display(), "router agent started");
                return Ok(true);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ServerError::Agent(format!(
                    "started {} router-agent but it did not answer on {} within {}s; see {}",
                    self.config.agent_program.display(),
                    self.config.agent_socket().display(),
                    START_TIMEOUT.as_secs(),
                    self.log_path().display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.config.data_dir.join("logs").join("router-agent.log")
    }

    /// Starts the agent in its own process group, logging to a file, so that it outlives us.
    fn spawn(&self) -> Result<(), ServerError> {
        let socket = self.config.agent_socket();
        let log_path = self.log_path();
        let prepare = || -> std::io::Result<std::fs::File> {
            if let Some(dir) = socket.parent() {
                std::fs::create_dir_all(dir)?;
            }
            if let Some(dir) = log_path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
        };
        let log = prepare().map_err(|e| {
            ServerError::Agent(format!("cannot prepare {}: {e}", log_path.display()))
        })?;
        let err_log = log.try_clone().map_err(|e| {
            ServerError::Agent(format!("cannot prepare {}: {e}", log_path.display()))
        })?;
        let mut child = Command::new(&self.config.agent_program)
            .arg("router-agent")
            .arg("--socket")
            .arg(&socket)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| {
                ServerError::Agent(format!(
                    "cannot start {} router-agent: {e}",
                    self.config.agent_program.display()
                ))
            })?;
        // Reap it when it exits, so it never lingers as a zombie while we run.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(())
    }

    /// Pushes a router configuration, starting the agent again once if it is gone.
    pub(crate) async fn put(&self, name: &str, put: &PutRouter) -> Result<PutResult, ServerError> {
        match self.client.put_router(name, put).await {
            Err(e) if e.is_unreachable() => {
                self.ensure_running().await?;
                self.client.put_router(name, put).await.map_err(agent_error)
            }
            other => other.map_err(agent_error),
        }
    }

    pub(crate) async fn routers(&self) -> Result<RouterList, ServerError> {
        self.client.routers().await.map_err(agent_error)
    }
}

pub(crate) fn agent_error(e: AgentError) -> ServerError {
    ServerError::Agent(e.to_string())
}
