//! flagd's gRPC surfaces, wire-compatible with flagd's providers.
//!
//! - [`serve_evaluation`] (flagd's port 8013): `flagd.evaluation.v1.Service` (typed resolves,
//!   `ResolveAll`, `EventStream`) and `flagd.evaluation.v2.Service` (typed resolves with optional
//!   value and variant, `EventStream`).
//! - [`serve_sync`] (port 8015): `flagd.sync.v1.FlagSyncService`, whole flag configurations for
//!   in-process evaluation.
//!
//! Both read the selector from the `flagd-selector` metadata (sync also from the request's
//! `selector` field), honour the same optional token as OFREP (`authorization: Bearer T` or
//! `x-api-key: T`), and refuse messages over the configured size. Static context values
//! ([`GrpcOptions::context_values`]) join every evaluation and are the sync context in-process
//! clients receive. Evaluation failures are gRPC statuses as flagd sends them: FLAG_NOT_FOUND is
//! NOT_FOUND, TYPE_MISMATCH and INVALID_CONTEXT are INVALID_ARGUMENT, PARSE_ERROR is DATA_LOSS,
//! GENERAL is UNKNOWN, TARGETING_KEY_MISSING is FAILED_PRECONDITION.
//!
//! Streams end when the client leaves or the server shuts down, so a graceful shutdown never
//! waits on an idle subscriber.

mod auth;
mod convert;
mod evaluation_v1;
mod evaluation_v2;
mod events;
mod resolve;
mod selected;
mod sync;
mod typed;

pub use convert::struct_from_object;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::metrics::EvaluationMetrics;
use crate::ofrep::DEFAULT_MAX_BODY_BYTES;
use crate::source::FlagSource;
use auth::TokenCheck;
use evaluation_v1::EvaluationV1;
use evaluation_v2::EvaluationV2;
use proto::flagd::evaluation::{v1, v2};
use proto::flagd::sync::v1::flag_sync_service_server::FlagSyncServiceServer;
use resolve::Resolver;
use sync::FlagSync;

/// Code generated from `proto/` by the build script.
#[allow(
    unreachable_pub,
    dead_code,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
mod proto {
    include!(concat!(env!("OUT_DIR"), "/server/mod.rs"));
}

/// Clients of these services with their own copies of the messages, generated from the same
/// `proto/`, for tests and tools that call the servers (feature `client`).
#[cfg(feature = "client")]
#[allow(
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod client {
    include!(concat!(env!("OUT_DIR"), "/client/mod.rs"));
}

/// How often an idle `EventStream` sends `keep_alive`, as flagd does.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// How the gRPC servers treat calls.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// The shared token callers must present; `None` serves everyone.
    pub token: Option<String>,
    /// Larger request messages are refused (OUT_OF_RANGE) from their length prefix, before
    /// they are buffered.
    pub max_message_bytes: usize,
    /// Quiet time after which an `EventStream` sends `keep_alive`.
    pub keep_alive: Duration,
    /// Static evaluation context (flagd's `--context-value`): added to every evaluation, where
    /// it wins over the caller's keys, and sent to sync clients as the sync context so
    /// in-process evaluation sees it too.
    pub context_values: Map<String, Value>,
}

impl Default for GrpcOptions {
    fn default() -> Self {
        GrpcOptions {
            token: None,
            max_message_bytes: DEFAULT_MAX_BODY_BYTES,
            keep_alive: KEEP_ALIVE_INTERVAL,
            context_values: Map::new(),
        }
    }
}

/// What every open stream needs: its keep-alive interval, and the shutdown signal that ends it.
#[derive(Debug, Clone)]
struct StreamSettings {
    keep_alive: Duration,
    stop: watch::Receiver<bool>,
}

/// Serves `flagd.evaluation.v1.Service` and `flagd.evaluation.v2.Service` on `listener` until
/// `shutdown` completes; open event streams then end and in-flight calls finish.
pub async fn serve_evaluation(
    listener: TcpListener,
    source: Arc<FlagSource>,
    metrics: Arc<EvaluationMetrics>,
    options: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (streams, shutdown) = stream_shutdown(options.keep_alive, shutdown);
    let resolver = Resolver::new(source, metrics, options.context_values);
    let check = TokenCheck::new(options.token.as_deref());
    let limit = options.max_message_bytes;
    let v1 = v1::service_server::ServiceServer::new(EvaluationV1::new(
        resolver.clone(),
        streams.clone(),
    ))
    .max_decoding_message_size(limit);
    let v2 = v2::service_server::ServiceServer::new(EvaluationV2::new(resolver, streams))
        .max_decoding_message_size(limit);
    let routes = Routes::new(InterceptedService::new(v1, check.clone()))
        .add_service(InterceptedService::new(v2, check));
    serve_routes(listener, routes, false, shutdown).await
}

/// Serves `flagd.sync.v1.FlagSyncService` on `listener` until `shutdown` completes; open sync
/// streams then end and in-flight calls finish.
pub async fn serve_sync(
    listener: TcpListener,
    source: Arc<FlagSource>,
    options: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (streams, shutdown) = stream_shutdown(options.keep_alive, shutdown);
    let sync_context = convert::struct_from_object(&options.context_values);
    let service = FlagSyncServiceServer::new(FlagSync::new(source, sync_context, streams))
        .max_decoding_message_size(options.max_message_bytes);
    let check = TokenCheck::new(options.token.as_deref());
    let routes = Routes::new(InterceptedService::new(service, check));
    serve_routes(listener, routes, false, shutdown).await
}

/// Splits one shutdown future into a signal every stream watches and the future the server
/// waits on; the streams are told first, so the server's drain does not wait on them.
fn stream_shutdown(
    keep_alive: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (StreamSettings, impl Future<Output = ()> + Send + 'static) {
    let (stop_streams, stop) = watch::channel(false);
    let server_shutdown = async move {
        shutdown.await;
        // Streams that already ended dropped their receivers; nobody listening is fine.
        let _ = stop_streams.send(true);
    };
    (StreamSettings { keep_alive, stop }, server_shutdown)
}

/// Serves gRPC `routes` (plus HTTP/1.1 when `accept_http1`, for plain HTTP routes sharing the
/// port) over cleartext HTTP/2 until `shutdown` completes.
pub(crate) async fn serve_routes(
    listener: TcpListener,
    routes: Routes,
    accept_http1: bool,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .accept_http1(accept_http1)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(io::Error::other)
}
