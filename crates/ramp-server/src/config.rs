//! How the control plane is set up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Control-plane settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where state, logs, objects and sockets live.
    pub data_dir: PathBuf,
    /// Where the REST API listens.
    pub api_listen: SocketAddr,
    /// The program started as the router agent (`<program> router-agent --socket PATH`);
    /// normally the `ramp` binary itself.
    pub agent_program: PathBuf,
    /// How often each service's world is observed.
    pub tick: Duration,
    /// Router worker threads per service (0 = one per CPU).
    pub router_workers: usize,
    /// Where OFREP serves the control plane's flags; `None` (the default) serves no OFREP, so
    /// the control plane never takes a port a `ramp flags serve` on the same host may use.
    pub flags_ofrep_listen: Option<SocketAddr>,
    /// Where flagd's gRPC evaluation services (`flagd.evaluation.v1` and `v2`, with change
    /// event streams) serve the control plane's flags; `None` (the default) serves none.
    pub flags_grpc_listen: Option<SocketAddr>,
    /// Where flagd's gRPC sync service (`flagd.sync.v1`) streams the control plane's flags to
    /// in-process providers; `None` (the default) serves none.
    pub flags_sync_listen: Option<SocketAddr>,
    /// The token flag clients must present on OFREP and gRPC (`Authorization: Bearer` or
    /// `X-API-Key`); `None` (the default) serves everyone who can reach the listeners.
    pub flags_token: Option<String>,
}

impl ServerConfig {
    /// Defaults for a data directory: API on 127.0.0.1:7070, the running binary as agent.
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            data_dir,
            api_listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            agent_program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ramp")),
            tick: Duration::from_millis(100),
            router_workers: 2,
            flags_ofrep_listen: None,
            flags_grpc_listen: None,
            flags_sync_listen: None,
            flags_token: None,
        }
    }

    /// The router agent's control socket.
    pub fn agent_socket(&self) -> PathBuf {
        self.data_dir.join("run").join("router.sock")
    }

    /// Per-instance log files of a service.
    pub fn log_dir(&self, service: &str) -> PathBuf {
        self.data_dir.join("logs").join(service)
    }

    /// Where a revision's declared files are laid out for its instances.
    pub fn revision_dir(&self, service: &str, revision: u64) -> PathBuf {
        self.data_dir
            .join("revisions")
            .join(service)
            .join(revision.to_string())
    }
}
