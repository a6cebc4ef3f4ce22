//! The management endpoints: `/healthz` (the process answers), `/readyz` (the initial flags
//! are loaded, so evaluations are meaningful), `/metrics` (Prometheus text), and the standard
//! gRPC health service `grpc.health.v1.Health` on the same port (HTTP/1.1 and cleartext
//! HTTP/2 side by side), SERVING once the initial flags are loaded.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::grpc::serve_routes;
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

/// How often readiness is checked until the initial flags are loaded.
const READINESS_POLL: Duration = Duration::from_millis(50);

/// Serves the management endpoints and `grpc.health.v1.Health` on `listener` until `shutdown`
/// completes.
pub async fn serve(
    listener: TcpListener,
    source: Arc<FlagSource>,
    metrics: Arc<EvaluationMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    // The reporter starts SERVING; nothing is served meaningfully before the flags are loaded.
    reporter
        .set_service_status(OVERALL_HEALTH, ServingStatus::NotServing)
        .await;
    let routes = Routes::from(router(Arc::clone(&source), metrics)).add_service(health);
    let server = serve_routes(listener, routes, true, shutdown);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        () = report_ready(&source, &reporter) => {}
    }
    server.await
}

/// The gRPC health service name that stands for the whole server.
const OVERALL_HEALTH: &str = "";

/// Waits for the initial flags, then reports the server SERVING.
async fn report_ready(source: &FlagSource, reporter: &HealthReporter) {
    while !source.is_ready() {
        tokio::time::sleep(READINESS_POLL).await;
    }
    reporter
        .set_service_status(OVERALL_HEALTH, ServingStatus::Serving)
        .await;
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
