//! `ramp proxy --config FILE`: the router on its own, reconfigured from a file.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use ramp_model::ProxyConfig;
use ramp_proxy::{ProxySettings, Router, RouterOptions, serve_admin};
use tokio::signal::unix::{SignalKind, signal};

/// How often the file is checked for changes (editors replace files in ways inotify misses;
/// reading a small file twice a second is cheap and always right).
const WATCH_EVERY: Duration = Duration::from_millis(500);

pub(crate) async fn run(path: &Path) -> anyhow::Result<()> {
    let text = read(path)?;
    let config =
        ProxyConfig::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let options = RouterOptions {
        listen: config.listen,
        workers: config.workers.unwrap_or(0),
        pin_workers: config.pin_workers,
    };
    let router = Router::start(options, config.table.clone(), settings(&config))
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %router.local_addr(), revisions = config.table.revisions().len(), "router started");

    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(admin) = config.admin {
        let listener = tokio::net::TcpListener::bind(admin)
            .await
            .with_context(|| format!("cannot listen on admin address {admin}"))?;
        tracing::info!(%admin, "admin endpoints: /metrics /healthz /routes");
        tokio::spawn(serve_admin(listener, router.clone(), async {
            let _ = admin_stopped.await;
        }));
    }

    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    let mut current_text = text;
    let mut current = config;
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            _ = hangup.recv() => true,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        let Ok(text) = read(path) else {
            if forced {
                tracing::error!(file = %path.display(), "cannot read the configuration; keeping the current table");
            }
            continue;
        };
        if text == current_text && !forced {
            continue;
        }
        match reload(&router, &current, &text) {
            Ok(next) => {
                tracing::info!(file = %path.display(), "configuration reloaded");
                current = next;
            }
            Err(e) => {
                tracing::error!(file = %path.display(), "reload refused, the current table keeps serving: {e:#}")
            }
        }
        current_text = text;
    }

    let grace = current.timeouts.shutdown_grace;
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutting down: finishing in-flight requests"
    );
    let report = router.shutdown(grace).await;
    let _ = admin_stop.send(());
    if report.connections_cut > 0 {
        tracing::warn!(
            connections = report.connections_cut,
            "grace period over; connections cut"
        );
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Validates a new file and swaps it in; what cannot change without a restart is refused.
fn reload(router: &Router, current: &ProxyConfig, text: &str) -> anyhow::Result<ProxyConfig> {
    let next = ProxyConfig::from_yaml(text)?;
    for (field, changed) in [
        ("listen", next.listen != current.listen),
        ("workers", next.workers != current.workers),
        ("admin", next.admin != current.admin),
        ("pinWorkers", next.pin_workers != current.pin_workers),
    ] {
        if changed {
            bail!("{field} cannot change while running; restart the router to change it");
        }
    }
    router.apply(next.table.clone(), settings(&next));
    Ok(next)
}

fn settings(config: &ProxyConfig) -> ProxySettings {
    ProxySettings {
        revision_header: config.revision_header.clone(),
        timeouts: config.timeouts,
        ..ProxySettings::default()
    }
}
