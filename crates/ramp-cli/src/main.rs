//! `ramp`: progressive delivery in one program.

mod agent_cmd;
mod demo;
mod demo_app;
mod load;
mod proxy_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ramp",
    version,
    about = "Progressive delivery: routing, rollouts, analysis and flags in one program"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the router standalone from a YAML file (reloaded on SIGHUP and when the file changes).
    Proxy {
        /// Router configuration (see README: "Router configuration").
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Host routers for the control plane, driven over a Unix socket; they keep serving when
    /// the control plane stops or dies.
    RouterAgent {
        /// The agent's Unix socket (created with mode 0600; a stale one is replaced).
        #[arg(long, value_name = "PATH", env = "RAMP_AGENT_SOCKET")]
        socket: PathBuf,
    },
    /// Run a small HTTP service whose behaviour (version, errors, latency) is set by flags.
    DemoApp(demo_app::DemoAppArgs),
    /// Show the router at work: weighted split, sticky users, header routes, draining, metrics.
    Demo {
        /// Requests sent in each phase of the demo.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Proxy { config } => proxy_cmd::run(&config).await,
            Command::RouterAgent { socket } => agent_cmd::run(&socket).await,
            Command::DemoApp(args) => demo_app::run(args).await,
            Command::Demo { requests } => demo::run(requests).await,
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Parses `host:port`, accepting `localhost` and a bare `:port` (meaning 127.0.0.1).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Some(port) = text
        .strip_prefix(':')
        .or_else(|| text.strip_prefix("localhost:"))
    {
        let port: u16 = port.parse().map_err(|_| format!("{text:?}: bad port"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not an address; use IP:PORT, localhost:PORT or :PORT"))
}
