//! `ramp flags serve`: flag files served to OpenFeature clients over flagd's gRPC protocols and
//! OFREP, reloaded when they change.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use ramp_flagd::grpc::{self, GrpcOptions};
use ramp_flagd::ofrep::{DEFAULT_MAX_BODY_BYTES, OfrepOptions};
use ramp_flagd::{EvaluationMetrics, FileWatcher, FlagSource, WATCH_INTERVAL, management, ofrep};
use ramp_flags::logic::{FractionalVersion, LogicOptions};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Options of `ramp flags serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// A flag file; repeat for several (later files win on duplicate keys).
    #[arg(long = "file", short = 'f', value_name = "PATH", required = true)]
    files: Vec<PathBuf>,
    /// Where flagd's gRPC evaluation services (`flagd.evaluation.v1` and `v2`) listen.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8013", value_parser = crate::parse_listen)]
    grpc_listen: SocketAddr,
    /// Where flagd's gRPC sync service (`flagd.sync.v1`) listens, for in-process providers.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8015", value_parser = crate::parse_listen)]
    sync_listen: SocketAddr,
    /// Where OFREP (`/ofrep/v1/evaluate/flags[/{key}]`) listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8016", value_parser = crate::parse_listen)]
    ofrep_listen: SocketAddr,
    /// Where `/healthz`, `/readyz`, `/metrics` and gRPC health (`grpc.health.v1`) listen.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8014", value_parser = crate::parse_listen)]
    management_listen: SocketAddr,
    /// Require `Authorization: Bearer TOKEN` or `X-API-Key: TOKEN` on OFREP requests and gRPC
    /// calls (evaluation and sync; management stays open).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "RAMP_FLAGS_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Larger OFREP request bodies are answered 413, larger gRPC messages OUT_OF_RANGE.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Static evaluation context as `KEY=VALUE` (repeatable): joins every gRPC and OFREP
    /// evaluation, winning over the caller's keys, and is the sync context in-process providers
    /// receive.
    #[arg(long = "context-value", short = 'X', value_name = "KEY=VALUE", value_parser = parse_context_value)]
    context_values: Vec<(String, String)>,
    /// Worker threads serving requests (default: one per CPU).
    #[arg(long, value_name = "N", value_parser = parse_workers)]
    workers: Option<NonZeroUsize>,
    /// How `fractional` assigns buckets: v2 is flagd's current bucketing, v1 the legacy one, v3
    /// the flagd testbed's CBOR-keyed proposal. Switching re-buckets users.
    #[arg(long, value_name = "VERSION", value_enum, default_value_t = Fractional::V2)]
    fractional: Fractional,
}

/// The `--fractional` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fractional {
    /// Legacy float bucketing.
    V1,
    /// flagd's current integer bucketing over the UTF-8 key.
    V2,
    /// The flagd testbed's proposal: v2 over the key's CBOR encoding, so any JSON value can be
    /// a key.
    V3,
}

impl Fractional {
    fn version(self) -> FractionalVersion {
        match self {
            Fractional::V1 => FractionalVersion::V1,
            Fractional::V2 => FractionalVersion::V2,
            Fractional::V3 => FractionalVersion::V3,
        }
    }
}

impl ServeArgs {
    /// The runtime's worker threads, `None` for tokio's default (one per CPU). Read before the
    /// runtime is built, since a runtime's thread count is fixed.
    pub(crate) fn workers(&self) -> Option<usize> {
        self.workers.map(NonZeroUsize::get)
    }

    /// How the flag files' rules are compiled.
    fn logic_options(&self) -> LogicOptions {
        LogicOptions {
            fractional: self.fractional.version(),
        }
    }
}

fn parse_workers(text: &str) -> Result<NonZeroUsize, String> {
    let count: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of threads"))?;
    NonZeroUsize::new(count).ok_or_else(|| "at least one worker thread is needed".to_owned())
}

fn parse_context_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

async fn bind(addr: SocketAddr, option: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--{option})"))
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.token.as_deref().is_some_and(str::is_empty) {
        anyhow::bail!("--token must not be empty");
    }
    let source = Arc::new(FlagSource::new());
    let mut watcher =
        FileWatcher::load_with(Arc::clone(&source), &args.files, args.logic_options())?;
    // Before serving, so no edit from here on is missed; polling alone if this fails.
    let file_events = watcher.watch_events();
    let metrics = Arc::new(EvaluationMetrics::new());
    let grpc_listener = bind(args.grpc_listen, "grpc-listen").await?;
    let sync_listener = bind(args.sync_listen, "sync-listen").await?;
    let ofrep_listener = bind(args.ofrep_listen, "ofrep-listen").await?;
    let management_listener = bind(args.management_listen, "management-listen").await?;
    tracing::info!(
        grpc = %grpc_listener.local_addr()?,
        sync = %sync_listener.local_addr()?,
        ofrep = %ofrep_listener.local_addr()?,
        management = %management_listener.local_addr()?,
        files = args.files.len(),
        auth = args.token.is_some(),
        fractional = ?args.fractional,
        file_events,
        "serving flags"
    );

    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let context_values: Map<String, Value> = args
        .context_values
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    let grpc_options = GrpcOptions {
        token: args.token.clone(),
        max_message_bytes: args.max_body_bytes,
        context_values: context_values.clone(),
        ..GrpcOptions::default()
    };
    let ofrep_options = OfrepOptions {
        token: args.token,
        max_body_bytes: args.max_body_bytes,
        context_values,
    };
    let evaluation_server = tokio::spawn(grpc::serve_evaluation(
        grpc_listener,
        Arc::clone(&source),
        Arc::clone(&metrics),
        grpc_options.clone(),
        shutdown(),
    ));
    let sync_server = tokio::spawn(grpc::serve_sync(
        sync_listener,
        Arc::clone(&source),
        grpc_options,
        shutdown(),
    ));
    let ofrep_server = tokio::spawn(ofrep::serve(
        ofrep_listener,
        Arc::clone(&source),
        Arc::clone(&metrics),
        ofrep_options,
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
    evaluation_server
        .await?
        .context("the gRPC evaluation server failed")?;
    sync_server.await?.context("the gRPC sync server failed")?;
    ofrep_server.await?.context("the OFREP server failed")?;
    management_server
        .await?
        .context("the management server failed")?;
    watching.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(extra: &[&str]) -> Result<ServeArgs, clap::Error> {
        let base = ["serve", "-f", "flags.json"];
        Serve::try_parse_from(base.iter().chain(extra)).map(|serve| serve.args)
    }

    #[test]
    fn workers_default_to_the_runtime_default_and_zero_is_refused() {
        assert_eq!(parse(&[]).expect("defaults").workers(), None);
        assert_eq!(
            parse(&["--workers", "3"]).expect("three").workers(),
            Some(3)
        );
        let zero = parse(&["--workers", "0"]).expect_err("zero workers");
        assert_eq!(zero.kind(), clap::error::ErrorKind::ValueValidation);
        let message = zero.to_string();
        assert!(message.contains("--workers"), "{message}");
        assert!(message.contains("at least one worker thread"), "{message}");
        let words = parse(&["--workers", "many"]).expect_err("not a number");
        assert!(
            words.to_string().contains("not a number of threads"),
            "{words}"
        );
    }

    #[test]
    fn fractional_defaults_to_v2_and_takes_v1_and_v3() {
        let fractional = |extra: &[&str]| parse(extra).map(|args| args.logic_options().fractional);
        assert_eq!(fractional(&[]).expect("default"), FractionalVersion::V2);
        assert_eq!(
            fractional(&["--fractional", "v1"]).expect("v1"),
            FractionalVersion::V1
        );
        assert_eq!(
            fractional(&["--fractional", "v2"]).expect("v2"),
            FractionalVersion::V2
        );
        assert_eq!(
            fractional(&["--fractional", "v3"]).expect("v3"),
            FractionalVersion::V3
        );
        let unknown = fractional(&["--fractional", "v4"]).expect_err("no v4");
        assert_eq!(unknown.kind(), clap::error::ErrorKind::InvalidValue);
        let message = unknown.to_string();
        assert!(message.contains("--fractional"), "{message}");
        assert!(message.contains("v1, v2, v3"), "{message}");
    }

    #[test]
    fn context_values_are_key_equals_value() {
        assert_eq!(
            parse_context_value("injectedmetadata=set"),
            Ok(("injectedmetadata".to_owned(), "set".to_owned()))
        );
        assert_eq!(
            parse_context_value("query=a=b"),
            Ok(("query".to_owned(), "a=b".to_owned()))
        );
        assert!(parse_context_value("no-separator").is_err());
        assert!(parse_context_value("=value").is_err());
    }
}
