//! `ramp`: progressive delivery in one program.

mod agent_cmd;
mod api_client;
mod commands;
mod demo;
mod demo_app;
mod flags_cmd;
mod load;
mod proxy_cmd;
mod quickstart;
mod server_cmd;

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
    /// The control plane's API (for apply, get, promote, ...).
    #[arg(
        long,
        global = true,
        env = "RAMP_SERVER",
        default_value = "http://127.0.0.1:7070"
    )]
    server: String,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "table")]
    output: commands::Output,
}

#[derive(Debug, Subcommand)]
enum GetWhat {
    /// Every service with its stable revision, readiness, rollout and traffic.
    Services,
    /// One service's rollout: steps, weights, stacks, instances.
    Rollout {
        /// Service name.
        name: String,
        /// Keep refreshing.
        #[arg(long, short = 'w')]
        watch: bool,
    },
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
    /// Run the control plane (state in a data directory, REST API, router agent).
    Server(server_cmd::ServerArgs),
    /// See a canary rollout from start to end: a server, load, an abort and a promotion.
    Quickstart,
    /// Create or update a service from a spec file (`-` reads stdin).
    Apply {
        /// The spec (YAML).
        #[arg(long, short = 'f', value_name = "FILE")]
        file: PathBuf,
    },
    /// Show services or a rollout.
    Get {
        #[command(subcommand)]
        what: GetWhat,
    },
    /// Revision history of a service.
    History {
        /// Service name.
        name: String,
    },
    /// Skip the current pause or step (`--full`: every remaining step).
    Promote {
        /// Service name.
        name: String,
        /// Skip every remaining step.
        #[arg(long)]
        full: bool,
    },
    /// Pause the rollout.
    Pause {
        /// Service name.
        name: String,
    },
    /// Resume a paused rollout.
    Resume {
        /// Service name.
        name: String,
    },
    /// Abort the rollout: all traffic back to the stable revision at once.
    Abort {
        /// Service name.
        name: String,
    },
    /// Start an aborted rollout again.
    Retry {
        /// Service name.
        name: String,
    },
    /// Go back to an earlier revision (default: the one before the stable one).
    Undo {
        /// Service name.
        name: String,
        /// The revision to go back to.
        #[arg(long)]
        to_revision: Option<u64>,
    },
    /// Change the number of instances.
    Scale {
        /// Service name.
        name: String,
        /// Instances.
        replicas: u32,
    },
    /// Replace every instance of the stable revision.
    Restart {
        /// Service name.
        name: String,
    },
    /// Last lines of a service's instance logs.
    Logs {
        /// Service name.
        name: String,
        /// One instance only.
        #[arg(long)]
        instance: Option<String>,
        /// Lines per instance.
        #[arg(long, default_value_t = 100)]
        tail: usize,
        /// Keep printing new lines.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Stop every instance of a service and remove it.
    Delete {
        /// Service name.
        name: String,
    },
    /// The event log (who did what, when, why).
    Events {
        /// Only this service.
        name: Option<String>,
        /// Keep printing new events.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Rolled-back rollouts: list them, or show one with its metrics and timeline
    /// (`-o markdown` for a post-mortem draft).
    Incident {
        /// The incident to show; without it, incidents are listed, newest first.
        id: Option<u64>,
        /// Only incidents of this service.
        #[arg(long, conflicts_with = "id")]
        service: Option<String>,
        /// List at most this many (the newest).
        #[arg(long, default_value_t = 50, conflicts_with = "id")]
        limit: usize,
    },
    /// Run a small HTTP service whose behaviour (version, errors, latency) is set by flags.
    DemoApp(demo_app::DemoAppArgs),
    /// Feature flags: serve flag files to OpenFeature clients.
    Flags {
        #[command(subcommand)]
        command: flags_cmd::FlagsCommand,
    },
    /// Show the router at work: weighted split, sticky users, header routes, draining, metrics.
    Demo {
        /// Requests sent in each phase of the demo.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Refused before anything runs: an `apply` would otherwise happen and then fail to print.
    if cli.output == commands::Output::Markdown && !matches!(cli.command, Command::Incident { .. })
    {
        eprintln!("error: -o markdown is supported by `ramp incident` only");
        return ExitCode::from(2);
    }
    // Walk-throughs print their own story; logs would drown it unless asked for.
    let quiet = matches!(cli.command, Command::Quickstart | Command::Demo { .. });
    init_logging(if quiet { "warn" } else { "info" });
    let runtime = match build_runtime(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let output = cli.output;
        let client = || api_client::ApiClient::new(&cli.server);
        match cli.command {
            Command::Server(args) => server_cmd::run(args).await,
            Command::Quickstart => quickstart::run().await,
            Command::Apply { file } => commands::apply(&client()?, &file, output).await,
            Command::Get {
                what: GetWhat::Services,
            } => commands::get_services(&client()?, output).await,
            Command::Get {
                what: GetWhat::Rollout { name, watch },
            } => commands::get_rollout(&client()?, &name, watch, output).await,
            Command::History { name } => commands::history(&client()?, &name, output).await,
            Command::Promote { name, full } => {
                let action = if full { "promote?full=true" } else { "promote" };
                commands::act(&client()?, &name, action, serde_json::Value::Null, output).await
            }
            Command::Pause { name } => {
                commands::act(&client()?, &name, "pause", serde_json::Value::Null, output).await
            }
            Command::Resume { name } => {
                commands::act(&client()?, &name, "resume", serde_json::Value::Null, output).await
            }
            Command::Abort { name } => {
                commands::act(&client()?, &name, "abort", serde_json::Value::Null, output).await
            }
            Command::Retry { name } => {
                commands::act(&client()?, &name, "retry", serde_json::Value::Null, output).await
            }
            Command::Restart { name } => {
                commands::act(
                    &client()?,
                    &name,
                    "restart",
                    serde_json::Value::Null,
                    output,
                )
                .await
            }
            Command::Undo { name, to_revision } => {
                let body = match to_revision {
                    Some(n) => serde_json::json!({ "toRevision": n }),
                    None => serde_json::Value::Null,
                };
                commands::act(&client()?, &name, "undo", body, output).await
            }
            Command::Scale { name, replicas } => {
                commands::act(
                    &client()?,
                    &name,
                    "scale",
                    serde_json::json!({ "replicas": replicas }),
                    output,
                )
                .await
            }
            Command::Logs {
                name,
                instance,
                tail,
                follow,
            } => commands::logs(&client()?, &name, instance.as_deref(), tail, follow).await,
            Command::Delete { name } => commands::delete(&client()?, &name).await,
            Command::Events { name, follow } => {
                commands::events(&client()?, name.as_deref(), follow, output).await
            }
            Command::Incident { id, service, limit } => {
                commands::incident(&client()?, id, service.as_deref(), limit, output).await
            }
            Command::Proxy { config } => proxy_cmd::run(&config).await,
            Command::RouterAgent { socket } => agent_cmd::run(&socket).await,
            Command::DemoApp(args) => demo_app::run(args).await,
            Command::Demo { requests } => demo::run(requests).await,
            Command::Flags { command } => flags_cmd::run(command).await,
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

/// The runtime a command runs on: two worker threads, except for `flags serve`, whose servers
/// get `--workers` threads (default: tokio's, one per CPU).
fn build_runtime(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    match command {
        Command::Flags {
            command: flags_cmd::FlagsCommand::Serve(args),
        } => {
            if let Some(workers) = args.workers() {
                builder.worker_threads(workers);
            }
        }
        _ => {
            builder.worker_threads(2);
        }
    }
    builder.enable_all().build()
}

fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Parses `IP:PORT` or `localhost:PORT`, and a bare `:PORT` meaning 127.0.0.1.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let localhost;
    let text = match text.strip_prefix(':') {
        Some(port) => {
            localhost = format!("localhost:{port}");
            &localhost
        }
        None => text,
    };
    ramp_model::parse_socket_addr(text)
        .ok_or_else(|| format!("{text:?} is not an address; use IP:PORT, localhost:PORT or :PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers_for(args: &[&str]) -> usize {
        let cli = Cli::try_parse_from(args).expect("valid arguments");
        build_runtime(&cli.command)
            .expect("a runtime")
            .metrics()
            .num_workers()
    }

    #[test]
    fn flags_serve_sizes_its_runtime_and_other_commands_keep_two_workers() {
        let serve = ["ramp", "flags", "serve", "-f", "flags.json"];
        assert_eq!(workers_for(&[&serve[..], &["--workers", "3"]].concat()), 3);
        let tokio_default = std::env::var("TOKIO_WORKER_THREADS")
            .ok()
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        assert_eq!(workers_for(&serve), tokio_default);
        assert_eq!(workers_for(&["ramp", "get", "services"]), 2);
        let zero = Cli::try_parse_from([&serve[..], &["--workers", "0"]].concat())
            .expect_err("zero workers");
        assert!(
            zero.to_string().contains("at least one worker thread"),
            "{zero}"
        );
    }
}
