//! The REST API under `/api/v1` (described by `/api/v1/openapi.json`) and `/metrics`.

mod flags;
mod incidents;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ramp_model::ModelError;
use ramp_rollout::Command;
use ramp_store::{EventQuery, EventRow};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::controller::Request;
use crate::controller::status::ServiceStatus;
use crate::error::ServerError;
use crate::server::Inner;

/// The OpenAPI 3 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

type Shared = State<Arc<Inner>>;

pub(crate) fn router(inner: Arc<Inner>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/services", get(list_services).post(apply))
        .route(
            "/api/v1/services/{name}",
            get(get_service).delete(delete_service),
        )
        .route("/api/v1/services/{name}/revisions", get(revisions))
        .route("/api/v1/services/{name}/logs", get(logs))
        .route("/api/v1/services/{name}/promote", post(promote))
        .route("/api/v1/services/{name}/pause", post(pause))
        .route("/api/v1/services/{name}/resume", post(resume))
        .route("/api/v1/services/{name}/abort", post(abort))
        .route("/api/v1/services/{name}/retry", post(retry))
        .route("/api/v1/services/{name}/restart", post(restart))
        .route("/api/v1/services/{name}/undo", post(undo))
        .route("/api/v1/services/{name}/scale", post(scale))
        .route("/api/v1/events", get(events))
        .route("/api/v1/incidents", get(incidents::list))
        .route("/api/v1/incidents/{id}", get(incidents::show))
        .route("/api/v1/flags", get(flags::list))
        .route(
            "/api/v1/flags/{key}",
            get(flags::show).put(flags::put).delete(flags::delete),
        )
        .route("/api/v1/flags/{key}/disable", post(flags::disable))
        .route("/api/v1/flags/{key}/enable", post(flags::enable))
        .route("/api/v1/flags/{key}/history", get(flags::history))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(inner)
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match &self {
            ServerError::Spec(ModelError::Invalid(problems)) => json!({
                "error": "the spec is invalid",
                "problems": problems.iter().map(|p| json!({
                    "path": p.path, "line": p.line, "column": p.column, "message": p.message,
                })).collect::<Vec<_>>(),
            }),
            ServerError::Spec(ModelError::Syntax {
                path,
                line,
                column,
                message,
            }) => json!({
                "error": self.to_string(),
                "problems": [{ "path": path.clone().unwrap_or_default(), "line": line, "column": column, "message": message }],
            }),
            ServerError::InvalidFlag(problems) => json!({
                "error": "the flag definition is invalid",
                "problems": problems.iter().map(|p| json!({
                    "path": p.path, "message": p.message,
                })).collect::<Vec<_>>(),
            }),
            other => json!({ "error": other.to_string() }),
        };
        (status, Json(body)).into_response()
    }
}

/// Who is acting: the `x-ramp-actor` header (the CLI sends the user name), else `api`.
fn actor(headers: &HeaderMap) -> String {
    headers
        .get("x-ramp-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .unwrap_or("api")
        .to_string()
}

async fn not_found() -> ServerError {
    ServerError::NotFound("no such endpoint; see /api/v1/openapi.json".into())
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApplyBody {
    /// The spec, as YAML text.
    spec: String,
    /// Directory relative paths in the spec are resolved against (the CLI sends its cwd).
    base_dir: Option<PathBuf>,
}

/// `POST /api/v1/services`: a JSON `{spec, baseDir}`, or the YAML itself with a YAML content
/// type (paths then resolve against the server's working directory).
async fn apply(
    State(inner): Shared,
    headers: HeaderMap,
    body: String,
) -> Result<Response, ServerError> {
    let is_yaml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("yaml"));
    let (yaml, base_dir) = if is_yaml {
        (body, None)
    } else {
        let parsed: ApplyBody = serde_json::from_str(&body)
            .map_err(|e| ServerError::Invalid(format!("request body: {e}; send {{\"spec\": \"<yaml>\", \"baseDir\": \"/path\"}} or YAML with content-type application/yaml")))?;
        (parsed.spec, parsed.base_dir)
    };
    let base_dir = match base_dir {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => {
            return Err(ServerError::Invalid(format!(
                "baseDir {} must be absolute",
                dir.display()
            )));
        }
        None => std::env::current_dir().map_err(|e| ServerError::Internal(e.to_string()))?,
    };
    let outcome = inner.apply(yaml, base_dir, actor(&headers)).await?;
    let status = if outcome.new_revision {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)).into_response())
}

async fn status_of(inner: &Inner, name: &str) -> Result<ServiceStatus, ServerError> {
    let handle = inner.handle(name).await?;
    let (reply, status) = oneshot::channel();
    handle.send(Request::Status { reply }).await?;
    status
        .await
        .map_err(|_| ServerError::Internal("the controller stopped".into()))
}

async fn list_services(State(inner): Shared) -> Result<Json<Value>, ServerError> {
    let names: Vec<String> = inner.controllers.lock().await.keys().cloned().collect();
    let mut services = Vec::new();
    for name in names {
        if let Ok(status) = status_of(&inner, &name).await {
            services.push(status);
        }
    }
    Ok(Json(json!({ "services": services })))
}

async fn get_service(
    State(inner): Shared,
    Path(name): Path<String>,
) -> Result<Json<Value>, ServerError> {
    let status = status_of(&inner, &name).await?;
    let spec = inner.ctx.store.service(&name)?.map(|row| row.spec_yaml);
    Ok(Json(json!({ "status": status, "spec": spec })))
}

async fn delete_service(
    State(inner): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ServerError> {
    let handle = inner.handle(&name).await?;
    let (reply, result) = oneshot::channel();
    handle
        .send(Request::Delete {
            actor: actor(&headers),
            reply,
        })
        .await?;
    result
        .await
        .map_err(|_| ServerError::Internal("the controller stopped".into()))??;
    inner.forget(&name).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn command(
    inner: &Inner,
    name: &str,
    command: Command,
    headers: &HeaderMap,
) -> Result<Json<ServiceStatus>, ServerError> {
    let handle = inner.handle(name).await?;
    let (reply, result) = oneshot::channel();
    handle
        .send(Request::Command {
            command,
            actor: actor(headers),
            reply,
        })
        .await?;
    let status = result
        .await
        .map_err(|_| ServerError::Internal("the controller stopped".into()))??;
    Ok(Json(status))
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PromoteQuery {
    #[serde(default)]
    full: bool,
}

async fn promote(
    State(inner): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<PromoteQuery>,
) -> Result<Json<ServiceStatus>, ServerError> {
    command(&inner, &name, Command::Promote { full: q.full }, &headers).await
}

async fn pause(
    State(inner): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<ServiceStatus>, ServerError> {
    command(&inner, &name, Command::Pause, &headers).await
}

async fn resume(
    State(inner): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<ServiceStatus>, ServerError> {
    command(&inner, &name, Command::Resume, &headers).await
}

async fn abort(
    State(inner): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<ServiceStatus>, ServerError> {
    command(&inner, &name, Command::Abort, &headers).await
}

async fn retry(
    State(inner): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<ServiceStatus>, ServerError> {
    command(&inner, &name, Command::Retry, &headers).await
}

async fn restart(
    State(inner): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<ServiceStatus>, ServerError> {
    command(&inner, &name, Command::Restart, &headers).await
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UndoBody {
    to_revision: Option<u64>,
}

/// `POST .../undo` with `{"toRevision": N}`, or no body for the revision before the stable one.
async fn undo(
    State(inner): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<ServiceStatus>, ServerError> {
    let body: UndoBody = if body.trim().is_empty() {
        UndoBody::default()
    } else {
        serde_json::from_str(&body)
            .map_err(|e| ServerError::Invalid(format!("request body: {e}")))?
    };
    let revision = match body.to_revision {
        Some(n) => n,
        None => previous_revision(&inner, &name).await?,
    };
    command(&inner, &name, Command::Undo { revision }, &headers).await
}

/// The newest stored revision older than the stable one.
async fn previous_revision(inner: &Inner, name: &str) -> Result<u64, ServerError> {
    let stable = status_of(inner, name)
        .await?
        .stable_revision
        .ok_or_else(|| ServerError::Conflict("nothing to undo: no revision is serving".into()))?;
    inner
        .ctx
        .store
        .revisions(name)?
        .iter()
        .map(|r| r.number)
        .filter(|&n| n < stable)
        .max()
        .ok_or_else(|| {
            ServerError::Conflict(format!(
                "nothing to undo: revision {stable} is the oldest kept"
            ))
        })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScaleBody {
    replicas: u32,
}

async fn scale(
    State(inner): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<ServiceStatus>, ServerError> {
    let body: ScaleBody = serde_json::from_str(&body).map_err(|e| {
        ServerError::Invalid(format!("request body: {e}; send {{\"replicas\": N}}"))
    })?;
    if !(1..=100).contains(&body.replicas) {
        return Err(ServerError::Invalid(format!(
            "replicas must be between 1 and 100, got {}",
            body.replicas
        )));
    }
    command(
        &inner,
        &name,
        Command::Scale {
            replicas: body.replicas,
        },
        &headers,
    )
    .await
}

async fn revisions(
    State(inner): Shared,
    Path(name): Path<String>,
) -> Result<Json<Value>, ServerError> {
    let status = status_of(&inner, &name).await?;
    let rows = inner.ctx.store.revisions(&name)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let payload: Option<crate::payload::Payload> =
                serde_json::from_str(&r.template_json).ok();
            json!({
                "number": r.number,
                "digest": r.digest,
                "createdAt": r.created_at.to_rfc3339(),
                "stable": status.stable_revision == Some(r.number),
                "running": status.stacks.iter().any(|s| s.revision == r.number && s.running > 0),
                "template": payload.map(|p| p.template),
            })
        })
        .collect();
    Ok(Json(json!({ "service": name, "revisions": list })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogsQuery {
    instance: Option<String>,
    tail: Option<usize>,
}

/// Last lines of the service's instance logs, each prefixed with its instance id.
async fn logs(
    State(inner): Shared,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ServerError> {
    let status = status_of(&inner, &name).await?;
    let tail = q.tail.unwrap_or(100).min(10_000);
    let dir = inner.ctx.config.log_dir(&name);
    let mut ids: Vec<String> = match &q.instance {
        Some(id) => vec![id.clone()],
        None => status.instances.iter().map(|i| i.id.clone()).collect(),
    };
    ids.sort();
    let mut out = String::new();
    for id in ids {
        if id.contains('/') || id.contains("..") {
            return Err(ServerError::Invalid(format!("bad instance id {id:?}")));
        }
        let path = dir.join(format!("{id}.log"));
        let lines = ramp_runtime::tail_log(&path, tail)
            .map_err(|_| ServerError::NotFound(format!("no log for instance {id} of {name}")))?;
        for line in lines {
            out.push_str(&format!("[{id}] {line}\n"));
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsQuery {
    service: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

async fn events(
    State(inner): Shared,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, ServerError> {
    let rows = inner.ctx.store.events(&EventQuery {
        service: q.service,
        after_id: q.after,
        limit: Some(q.limit.unwrap_or(500).min(10_000)),
    })?;
    let list: Vec<Value> = rows.iter().map(event_json).collect();
    Ok(Json(json!({ "events": list })))
}

/// An event as the API shows it (the event log and incident timelines alike).
fn event_json(e: &EventRow) -> Value {
    json!({
        "id": e.id, "at": e.at.to_rfc3339(), "atMs": e.at.0, "actor": e.actor,
        "service": e.service, "kind": e.kind, "message": e.message, "data": e.data,
    })
}

/// Control-plane metrics (the managed flags' evaluations among them), then the router agent's.
async fn metrics(State(inner): Shared) -> Response {
    let names: Vec<String> = inner.controllers.lock().await.keys().cloned().collect();
    let mut out = String::new();
    let mut w = ramp_metrics::PromWriter::new(&mut out);
    w.family(
        "ramp_services",
        "Services managed by this control plane.",
        ramp_metrics::MetricKind::Gauge,
    );
    w.sample("ramp_services", &[], names.len() as u64);
    w.family(
        "ramp_rollout_phase",
        "1 for the phase each service's current or last rollout is in.",
        ramp_metrics::MetricKind::Gauge,
    );
    for name in &names {
        if let Ok(status) = status_of(&inner, name).await
            && let Some(r) = &status.rollout
        {
            w.sample(
                "ramp_rollout_phase",
                &[("service", name), ("phase", &r.phase)],
                1u64,
            );
        }
    }
    inner
        .flag_metrics
        .write_prometheus(inner.flags.source(), &mut out);
    if let Ok(text) = inner.ctx.agent.client().prometheus().await {
        out.push_str(&text);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;

    /// Every route the router serves is documented, and nothing else is: the document cannot
    /// drift from the code.
    #[test]
    fn openapi_documents_exactly_the_routes_served() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let documented: std::collections::BTreeSet<String> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        let source = include_str!("mod.rs")
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default();
        let served: std::collections::BTreeSet<String> = source
            .split(".route(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
            .map(String::from)
            .collect();
        assert!(served.len() > 10, "routes found in the source: {served:?}");
        assert_eq!(documented, served);
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    op["responses"].is_object(),
                    "{method} {path} has no responses"
                );
            }
        }
    }
}
