//! `ramp server`: the control plane, embedded (SQLite state in a data directory).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use ramp_server::{Server, ServerConfig};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerArgs {
    /// Where state, logs and stored executables live.
    #[arg(long, default_value = "ramp-data", env = "RAMP_DATA_DIR")]
    data_dir: PathBuf,
    /// Where the REST API listens.
    #[arg(long, default_value = "127.0.0.1:7070", value_parser = crate::parse_listen)]
    listen: SocketAddr,
    /// Serve the flags managed through the API (`ramp flags apply`, `disable`, ...) over OFREP
    /// here, e.g. 127.0.0.1:8016; off unless given.
    #[arg(long, value_name = "ADDR", value_parser = crate::parse_listen)]
    flags_ofrep_listen: Option<SocketAddr>,
    /// Serve the same flags over flagd's gRPC evaluation services (`flagd.evaluation.v1` and
    /// `v2`, with change event streams) here, e.g. 127.0.0.1:8013; off unless given.
    #[arg(long, value_name = "ADDR", value_parser = crate::parse_listen)]
    flags_grpc_listen: Option<SocketAddr>,
    /// Stream the same flags to in-process providers over flagd's gRPC sync service
    /// (`flagd.sync.v1`) here, e.g. 127.0.0.1:8015; off unless given.
    #[arg(long, value_name = "ADDR", value_parser = crate::parse_listen)]
    flags_sync_listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer TOKEN` or `X-API-Key: TOKEN` from flag clients on the
    /// OFREP and gRPC listeners above.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "RAMP_FLAGS_TOKEN",
        hide_env_values = true
    )]
    flags_token: Option<String>,
    /// On exit, leave instances and routers serving for the next `ramp server` to adopt
    /// (for upgrades); by default they are drained and stopped.
    #[arg(long)]
    keep_data_plane: bool,
}

pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let data_dir = std::path::absolute(&args.data_dir)
        .with_context(|| format!("bad --data-dir {}", args.data_dir.display()))?;
    let mut config = ServerConfig::new(data_dir);
    config.api_listen = args.listen;
    config.flags_ofrep_listen = args.flags_ofrep_listen;
    config.flags_grpc_listen = args.flags_grpc_listen;
    config.flags_sync_listen = args.flags_sync_listen;
    if args.flags_token.as_deref().is_some_and(str::is_empty) {
        anyhow::bail!("--flags-token must not be empty");
    }
    config.flags_token = args.flags_token;
    let server = Server::start(config).await?;
    println!(
        "ramp server: API on http://{} (try: ramp get services)",
        server.api_addr()
    );
    if let Some(addr) = server.flags_ofrep_addr() {
        println!("ramp server: flags over OFREP on http://{addr}/ofrep/v1/evaluate/flags");
    }
    if let Some(addr) = server.flags_grpc_addr() {
        println!("ramp server: flags over gRPC (flagd.evaluation v1, v2) on {addr}");
    }
    if let Some(addr) = server.flags_sync_addr() {
        println!("ramp server: flags over gRPC sync (flagd.sync.v1) on {addr}");
    }
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    if args.keep_data_plane {
        tracing::info!("stopping the control plane; instances and routers keep serving");
    } else {
        tracing::info!("stopping: draining and stopping every instance");
    }
    server.shutdown(!args.keep_data_plane).await;
    Ok(())
}
