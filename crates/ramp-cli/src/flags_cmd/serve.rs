//! `ramp flags serve`: flag files served to OpenFeature clients, reloaded when they change.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use ramp_flagd::ofrep::{DEFAULT_MAX_BODY_BYTES, OfrepOptions};
use ramp_flagd::{EvaluationMetrics, FileWatcher, FlagSource, WATCH_INTERVAL, management, ofrep};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Options of `ramp flags serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// A flag file; repeat for several (later files win on duplicate keys).
    #[arg(long = "file", short = 'f', value_name = "PATH", required = true)]
    files: Vec<PathBuf>,
    /// Where OFREP (`/ofrep/v1/evaluate/flags[/{key}]`) listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8016", value_parser = crate::parse_listen)]
    ofrep_listen: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8014", value_parser = crate::parse_listen)]
    management_listen: SocketAddr,
    /// Require `Authorization: Bearer TOKEN` or `X-API-Key: TOKEN` on OFREP requests.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "RAMP_FLAGS_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Larger OFREP request bodies are answered 413.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.token.as_deref().is_some_and(str::is_empty) {
        anyhow::bail!("--token must not be empty");
    }
    let source = Arc::new(FlagSource::new());
    let watcher = FileWatcher::load(Arc::clone(&source), &args.files)?;
    let metrics = Arc::new(EvaluationMetrics::new());
    let ofrep_listener = TcpListener::bind(args.ofrep_listen)
        .await
        .with_context(|| format!("cannot listen on {} (--ofrep-listen)", args.ofrep_listen))?;
    let management_listener = TcpListener::bind(args.management_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (--management-listen)",
                args.management_listen
            )
        })?;
    tracing::info!(
        ofrep = %ofrep_listener.local_addr()?,
        management = %management_listener.local_addr()?,
        files = args.files.len(),
        auth = args.token.is_some(),
        "serving flags"
    );

    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let options = OfrepOptions {
        token: args.token,
        max_body_bytes: args.max_body_bytes,
    };
    let ofrep_server = tokio::spawn(ofrep::serve(
        ofrep_listener,
        Arc::clone(&source),
        Arc::clone(&metrics),
        options,
        shutdown(),
    ));
    let management_server = tokio::spawn(management::serve(
        management_listener,
        source,
        metrics,
        shutdown(),
    ));
    let watching = tokio::spawn(watcher.run(WATCH_INTERVAL, shutdown()));

    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop.send(true);
    ofrep_server.await?.context("the OFREP server failed")?;
    management_server
        .await?
        .context("the management server failed")?;
    watching.await?;
    Ok(())
}
