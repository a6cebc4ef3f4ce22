//! `/api/v1/flags...`: the feature flags the control plane manages.
//!
//! Writes answer once the change is committed with its audit event and served, so an OFREP
//! evaluation that follows sees it. Every write takes an optional `expectedVersion` (query
//! parameter; for `PUT` also a body member): when the flag is at another version, nothing
//! changes and the answer is 409. `disable` / `enable` of a flag already in that state answer
//! 200 with `changed: false` and record nothing, so a kill switch can be pulled twice safely.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ramp_flags::model::FlagState;
use ramp_store::{FlagEventKind, FlagRow, FlagWrite};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Shared, actor, event_json};
use crate::error::ServerError;
use crate::flags::{FIELDS, FlagService};

/// The body member that carries the expected version next to a definition's members.
const EXPECTED_VERSION: &str = "expectedVersion";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VersionQuery {
    expected_version: Option<u64>,
}

/// `GET /api/v1/flags`: every flag, by key.
pub(super) async fn list(State(inner): Shared) -> Result<Json<Value>, ServerError> {
    let rows = blocking(&inner.flags, |flags| flags.list()).await?;
    let list: Vec<Value> = rows.iter().map(flag_json).collect();
    Ok(Json(json!({ "flags": list })))
}

/// `GET /api/v1/flags/{key}`.
pub(super) async fn show(
    State(inner): Shared,
    Path(key): Path<String>,
) -> Result<Json<Value>, ServerError> {
    let row = blocking(&inner.flags, move |flags| flags.get(&key)).await?;
    Ok(Json(flag_json(&row)))
}

/// `PUT /api/v1/flags/{key}`: the body is the flag definition (flagd's JSON shape); 201 when
/// the flag was created, 200 otherwise.
pub(super) async fn put(
    State(inner): Shared,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(query): Query<VersionQuery>,
    body: String,
) -> Result<Response, ServerError> {
    let (definition, expected_version) = definition_body(&body, query.expected_version)?;
    let actor = actor(&headers);
    let write = blocking(&inner.flags, move |flags| {
        flags.put(&key, &definition, expected_version, &actor)
    })
    .await?;
    let status = if write.kind == Some(FlagEventKind::Created) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(write_json(&write))).into_response())
}

/// `DELETE /api/v1/flags/{key}`: 204; the flag's history stays readable.
pub(super) async fn delete(
    State(inner): Shared,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Result<StatusCode, ServerError> {
    let actor = actor(&headers);
    blocking(&inner.flags, move |flags| {
        flags.delete(&key, query.expected_version, &actor)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/flags/{key}/disable`: the kill switch.
pub(super) async fn disable(
    state: Shared,
    headers: HeaderMap,
    key: Path<String>,
    query: Query<VersionQuery>,
) -> Result<Json<Value>, ServerError> {
    set_state(state, &headers, key, query, FlagState::Disabled).await
}

/// `POST /api/v1/flags/{key}/enable`.
pub(super) async fn enable(
    state: Shared,
    headers: HeaderMap,
    key: Path<String>,
    query: Query<VersionQuery>,
) -> Result<Json<Value>, ServerError> {
    set_state(state, &headers, key, query, FlagState::Enabled).await
}

async fn set_state(
    State(inner): Shared,
    headers: &HeaderMap,
    Path(key): Path<String>,
    Query(query): Query<VersionQuery>,
    state: FlagState,
) -> Result<Json<Value>, ServerError> {
    let actor = actor(headers);
    let write = blocking(&inner.flags, move |flags| {
        flags.set_state(&key, state, query.expected_version, &actor)
    })
    .await?;
    Ok(Json(write_json(&write)))
}

/// `GET /api/v1/flags/{key}/history`: the flag's audit events, oldest first.
pub(super) async fn history(
    State(inner): Shared,
    Path(key): Path<String>,
) -> Result<Json<Value>, ServerError> {
    let (key, events) = blocking(&inner.flags, move |flags| {
        flags.history(&key).map(|events| (key, events))
    })
    .await?;
    let list: Vec<Value> = events.iter().map(event_json).collect();
    Ok(Json(json!({ "key": key, "events": list })))
}

/// The definition in a `PUT` body, with the `expectedVersion` member (if any) taken out and
/// reconciled with the query parameter.
fn definition_body(
    body: &str,
    from_query: Option<u64>,
) -> Result<(Value, Option<u64>), ServerError> {
    let mut definition: Value = serde_json::from_str(body).map_err(|e| {
        ServerError::Invalid(format!(
            "request body: {e}; send the flag as JSON ({})",
            FIELDS.join(", ")
        ))
    })?;
    let from_body = match definition
        .as_object_mut()
        .and_then(|members| members.remove(EXPECTED_VERSION))
    {
        None => None,
        Some(value) => Some(value.as_u64().ok_or_else(|| {
            ServerError::Invalid(format!(
                "$.{EXPECTED_VERSION}: must be a non-negative integer, not {value}"
            ))
        })?),
    };
    match (from_body, from_query) {
        (Some(body), Some(query)) if body != query => Err(ServerError::Invalid(format!(
            "{EXPECTED_VERSION} is {body} in the body but {query} in the query; send one"
        ))),
        (body, query) => Ok((definition, body.or(query))),
    }
}

/// A flag as the API shows it.
fn flag_json(row: &FlagRow) -> Value {
    json!({
        "key": row.key,
        "version": row.version,
        "createdAt": row.created_at.to_rfc3339(),
        "updatedAt": row.updated_at.to_rfc3339(),
        "definition": row.definition,
    })
}

/// The answer to a write: the flag now, whether it changed, and the event recording it.
fn write_json(write: &FlagWrite) -> Value {
    json!({
        "flag": flag_json(&write.flag),
        "changed": write.event.is_some(),
        "event": write.event.as_ref().map(event_json),
    })
}

/// Runs store work off the async workers.
async fn blocking<T: Send + 'static>(
    flags: &Arc<FlagService>,
    work: impl FnOnce(&FlagService) -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    let flags = Arc::clone(flags);
    tokio::task::spawn_blocking(move || work(&flags))
        .await
        .map_err(|e| ServerError::Internal(format!("flag operation: {e}")))?
}
