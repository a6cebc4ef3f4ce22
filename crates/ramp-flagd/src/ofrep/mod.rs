//! The OpenFeature Remote Evaluation Protocol (OFREP 0.3.0) over HTTP.
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: 200 with the resolution, 404 `FLAG_NOT_FOUND`, 400
//!   for any other error code (an unusable body is `INVALID_CONTEXT`).
//! - `POST /ofrep/v1/evaluate/flags`: every visible flag, failures inline, the flag set's
//!   metadata, and an `ETag` so a polling client gets 304 while nothing it sees changed.
//! - `Flagd-Selector: flagSetId=<id>` or `source=<name>` narrows the flags a request sees.
//! - With a token configured, requests need `Authorization: Bearer T` or `X-API-Key: T`.
//! - Static context values ([`OfrepOptions::context_values`]) join every request's context.

mod auth;
mod etag;
mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ramp_flags::model::Selector;
use ramp_flags::resolve::{ErrorCode, ValueType};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::net::TcpListener;

use crate::context::now_unix_seconds;
use crate::metrics::EvaluationMetrics;
use crate::source::FlagSource;
use wire::{Bulk, Outcome, RequestFailure};

/// The request header that selects a flag set or source.
pub const SELECTOR_HEADER: &str = "flagd-selector";

/// The default request body limit (64 KiB): contexts are small, and a limit keeps a client from
/// making the server buffer arbitrary amounts.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// How the OFREP server treats requests.
#[derive(Debug, Clone)]
pub struct OfrepOptions {
    /// The shared token clients must present; `None` serves everyone.
    pub token: Option<String>,
    /// Larger request bodies are answered 413.
    pub max_body_bytes: usize,
    /// Static evaluation context (flagd's `--context-value`): added to every request's context,
    /// where it wins over the caller's keys, as on the gRPC services.
    pub context_values: Map<String, Value>,
}

impl Default for OfrepOptions {
    fn default() -> Self {
        OfrepOptions {
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            context_values: Map::new(),
        }
    }
}

#[derive(Debug)]
struct Shared {
    source: Arc<FlagSource>,
    metrics: Arc<EvaluationMetrics>,
    token: Option<String>,
    context_values: Map<String, Value>,
}

type AppState = State<Arc<Shared>>;

/// The OFREP routes, evaluating against whatever `source` holds at each request.
pub fn router(
    source: Arc<FlagSource>,
    metrics: Arc<EvaluationMetrics>,
    options: OfrepOptions,
) -> axum::Router {
    let shared = Arc::new(Shared {
        source,
        metrics,
        token: options.token,
        context_values: options.context_values,
    });
    axum::Router::new()
        .route("/ofrep/v1/evaluate/flags/{key}", post(evaluate_one))
        .route("/ofrep/v1/evaluate/flags", post(evaluate_all))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            authenticate,
        ))
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .with_state(shared)
}

/// Serves OFREP on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    source: Arc<FlagSource>,
    metrics: Arc<EvaluationMetrics>,
    options: OfrepOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(source, metrics, options))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Refuses requests without the configured token before their body is read.
async fn authenticate(State(shared): AppState, request: Request, next: Next) -> Response {
    let (status, details) = match auth::check(request.headers(), shared.token.as_deref()) {
        auth::Verdict::Allowed => return next.run(request).await,
        auth::Verdict::Missing => (
            StatusCode::UNAUTHORIZED,
            "credentials required: send Authorization: Bearer <token> or X-API-Key: <token>",
        ),
        auth::Verdict::Wrong => (StatusCode::FORBIDDEN, "the credentials sent are not valid"),
    };
    let mut response = json_response(
        status,
        &GeneralError {
            error_details: details,
        },
    );
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// OFREP's `generalErrorResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GeneralError<'a> {
    error_details: &'a str,
}

/// What the request asked for, once its body and headers are understood.
struct Query {
    selector: Selector,
    context: Map<String, Value>,
    /// Kept for the bulk response's conditional answer.
    if_none_match: Option<HeaderValue>,
}

/// Why a request was refused before any flag was evaluated.
struct Refusal {
    status: StatusCode,
    code: ErrorCode,
    details: String,
}

impl Refusal {
    fn bad_request(code: ErrorCode, details: String) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            code,
            details,
        }
    }

    /// The response: the single-flag shape with `key`, the bulk shape without.
    fn respond(&self, key: Option<&str>) -> Response {
        json_response(
            self.status,
            &RequestFailure::new(key, self.code, &self.details),
        )
    }
}

/// Reads the selector header and the body's context, with the static `context_values` laid over
/// it. The request is taken whole so its headers are read in place rather than copied into an
/// extractor's map.
async fn read_query(
    request: Request,
    context_values: &Map<String, Value>,
) -> Result<Query, Refusal> {
    let selector = match request.headers().get(SELECTOR_HEADER) {
        None => Ok(Selector::All),
        Some(value) => value
            .to_str()
            .map_err(|_| "the Flagd-Selector header is not text".to_owned())
            .and_then(|text| Selector::parse(text).map_err(|error| error.to_string()))
            .map_err(|details| Refusal::bad_request(ErrorCode::General, details)),
    };
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
    // An oversized or unreadable body is reported before a bad selector.
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Refusal {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: ErrorCode::General,
                    details: "the request body exceeds the size limit".to_owned(),
                }
            } else {
                Refusal::bad_request(ErrorCode::InvalidContext, rejection.body_text())
            }
        })?;
    let selector = selector?;
    let mut context = wire::parse_context(&body)
        .map_err(|details| Refusal::bad_request(ErrorCode::InvalidContext, details))?;
    crate::context::overlay_context_values(&mut context, context_values);
    Ok(Query {
        selector,
        context,
        if_none_match,
    })
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
async fn evaluate_one(
    State(shared): AppState,
    Path(key): Path<String>,
    request: Request,
) -> Response {
    let query = match read_query(request, &shared.context_values).await {
        Ok(query) => query,
        Err(refusal) => return refusal.respond(Some(&key)),
    };
    let store = shared.source.current();
    // Borrowed from the snapshot and written straight into the response body: nothing of the
    // flag is copied. The clock is read only if the flag's rule reads `$flagd`.
    let resolution = store.select(&query.selector).resolve(
        &key,
        &query.context,
        ValueType::Any,
        now_unix_seconds,
    );
    shared
        .metrics
        .record_outcome(resolution.key, resolution.reason, resolution.error_code());
    let status = match resolution.error_code() {
        None => StatusCode::OK,
        Some(ErrorCode::FlagNotFound) => StatusCode::NOT_FOUND,
        Some(_) => StatusCode::BAD_REQUEST,
    };
    json_response(status, &Outcome::of(&resolution))
}

/// `POST /ofrep/v1/evaluate/flags`.
async fn evaluate_all(State(shared): AppState, request: Request) -> Response {
    let query = match read_query(request, &shared.context_values).await {
        Ok(query) => query,
        Err(refusal) => return refusal.respond(None),
    };
    let store = shared.source.current();
    let flags = store.select(&query.selector);
    let resolutions = flags.resolve_all(&query.context, now_unix_seconds);
    for resolution in &resolutions {
        shared
            .metrics
            .record_outcome(resolution.key, resolution.reason, resolution.error_code());
    }
    let bulk = Bulk {
        flags: resolutions.iter().map(Outcome::of).collect(),
        metadata: flags.metadata(),
    };
    let body = match to_json(&bulk) {
        Ok(body) => body,
        Err(error) => return serialisation_failed(&error),
    };
    let tag = etag::of_body(&body);
    let unchanged = query
        .if_none_match
        .as_ref()
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| etag::none_match_hits(value, &tag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        json_bytes(StatusCode::OK, body)
    };
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match to_json(body) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(error) => serialisation_failed(&error),
    }
}

/// Room for a typical single-flag response, so writing one never grows the buffer.
const RESPONSE_CAPACITY: usize = 256;

fn to_json(body: &impl Serialize) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(RESPONSE_CAPACITY);
    serde_json::to_writer(&mut bytes, body)?;
    Ok(bytes)
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Only reachable if a flag value cannot be written as JSON, which validated files rule out.
fn serialisation_failed(error: &serde_json::Error) -> Response {
    tracing::error!("cannot serialise an OFREP response: {error}");
    let details = format!("cannot serialise the response: {error}");
    let body = serde_json::to_vec(&GeneralError {
        error_details: &details,
    })
    .unwrap_or_default();
    json_bytes(StatusCode::INTERNAL_SERVER_ERROR, body)
}
