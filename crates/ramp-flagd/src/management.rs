//! The management endpoints: `/healthz` (the process answers), `/readyz` (the initial flags
//! are loaded, so evaluations are meaningful) and `/metrics` (Prometheus text).

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::EvaluationMetrics;
use crate::source::FlagSource;

#[derive(Debug)]
struct Shared {
    source: Arc<FlagSource>,
    metrics: Arc<EvaluationMetrics>,
}

/// The management routes.
pub fn router(source: Arc<FlagSource>, metrics: Arc<EvaluationMetrics>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::new(Shared { source, metrics }))
}

/// Serves the management endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    source: Arc<FlagSource>,
    metrics: Arc<EvaluationMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(source, metrics))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.source.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "flags not loaded yet").into_response()
    }
}

async fn metrics_text(State(shared): State<Arc<Shared>>) -> Response {
    let mut text = String::new();
    shared.metrics.write_prometheus(&shared.source, &mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
