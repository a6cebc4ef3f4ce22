//! `ramp router-agent --socket PATH`: the long-lived process that hosts the routers in server
//! mode, so that routing survives the control plane being killed.

use std::path::Path;

use anyhow::Context;
use ramp_proxy::serve_agent;
use tokio::signal::unix::{SignalKind, signal};

pub(crate) async fn run(socket: &Path) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    // A hang-up (the terminal or session that started the agent going away) must not take the
    // routers down with it.
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let stop = async move {
        loop {
            tokio::select! {
                _ = terminate.recv() => {
                    tracing::info!("SIGTERM: shutting the routers down");
                    break;
                }
                _ = interrupt.recv() => {
                    tracing::info!("SIGINT: shutting the routers down");
                    break;
                }
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP ignored; the router agent keeps running");
                }
            }
        }
    };
    serve_agent(socket, stop)
        .await
        .with_context(|| format!("router agent on {}", socket.display()))
}
