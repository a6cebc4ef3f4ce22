//! `GET /api/v1/incidents` and `GET /api/v1/incidents/{id}`: the records the control plane
//! keeps of every rolled-back rollout, as JSON or as a Markdown post-mortem draft.

mod markdown;
mod timeline;

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use ramp_store::{IncidentRow, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Shared, event_json};
use crate::error::ServerError;

/// Incidents listed when the request does not say how many.
const DEFAULT_LIMIT: usize = 50;

/// The most incidents one list request returns.
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListQuery {
    service: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/incidents?service=&limit=`: summaries, newest first.
pub(super) async fn list(
    State(inner): Shared,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ServerError> {
    let store = Arc::clone(&inner.ctx.store);
    blocking(move || list_json(&store, &query)).await.map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ShowQuery {
    format: Option<String>,
}

/// `GET /api/v1/incidents/{id}`: the record with its timeline; Markdown with
/// `?format=markdown` or `Accept: text/markdown`.
pub(super) async fn show(
    State(inner): Shared,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
    headers: HeaderMap,
) -> Result<Document, ServerError> {
    let format = Format::choose(query.format.as_deref(), &headers)?;
    let store = Arc::clone(&inner.ctx.store);
    blocking(move || document(&store, &id, format)).await
}

/// Runs store reads off the async workers: a timeline may scan much of a service's log.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServerError::Internal(format!("reading incidents: {e}")))?
}

fn list_json(store: &Store, query: &ListQuery) -> Result<Value, ServerError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let rows = store.incidents(query.service.as_deref(), limit)?;
    let summaries: Vec<Value> = rows.iter().map(summary).collect();
    Ok(json!({ "incidents": summaries }))
}

/// The fields of an incident shown in lists (everything but `data`).
fn summary(row: &IncidentRow) -> Value {
    json!({
        "id": row.id,
        "at": row.at.to_rfc3339(),
        "service": row.service,
        "rollout": row.rollout,
        "revision": row.revision,
        "stableRevision": row.stable_revision,
        "trigger": row.trigger,
        "reason": row.reason,
    })
}

/// How one incident is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Markdown,
}

impl Format {
    /// `?format=` decides; without it, an `Accept` naming `text/markdown` asks for Markdown.
    fn choose(query: Option<&str>, headers: &HeaderMap) -> Result<Format, ServerError> {
        match query.map(str::to_ascii_lowercase).as_deref() {
            Some("json") => Ok(Format::Json),
            Some("markdown" | "md") => Ok(Format::Markdown),
            Some(other) => Err(ServerError::Invalid(format!(
                "format {other:?} is not supported; use json or markdown"
            ))),
            None => {
                let accepts_markdown = headers
                    .get_all(header::ACCEPT)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| v.to_ascii_lowercase().contains("text/markdown"));
                Ok(if accepts_markdown {
                    Format::Markdown
                } else {
                    Format::Json
                })
            }
        }
    }
}

/// One incident, ready to send.
#[derive(Debug)]
pub(super) enum Document {
    Json(Value),
    Markdown(String),
}

impl IntoResponse for Document {
    fn into_response(self) -> Response {
        match self {
            Document::Json(value) => Json(value).into_response(),
            Document::Markdown(text) => (
                [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
                text,
            )
                .into_response(),
        }
    }
}

fn document(store: &Store, id: &str, format: Format) -> Result<Document, ServerError> {
    let id: u64 = id.parse().map_err(|_| {
        ServerError::Invalid(format!(
            "incident id {id:?} is not a number; list incidents with GET /api/v1/incidents"
        ))
    })?;
    let row = store.incident(id)?.ok_or_else(|| {
        ServerError::NotFound(format!(
            "no incident {id}; list incidents with GET /api/v1/incidents"
        ))
    })?;
    let timeline = timeline::load(store, &row)?;
    Ok(match format {
        Format::Markdown => Document::Markdown(markdown::render(&row, &timeline)),
        Format::Json => {
            let mut record = summary(&row);
            record["data"] = row.data.clone();
            record["timeline"] = timeline.events.iter().map(event_json).collect();
            record["timelineTruncated"] = timeline.truncated.into();
            Document::Json(record)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{HeaderMap, HeaderValue, header};
    use axum::response::IntoResponse;
    use ramp_store::{NewEvent, NewIncident, Store, Timestamp};
    use serde_json::{Value, json};

    use super::{Document, Format, ListQuery, document, list_json};
    use crate::error::ServerError;
    use crate::test_support::temp_dir;

    fn incident(service: &str, data: Value) -> NewIncident {
        NewIncident {
            service: service.into(),
            rollout: 3,
            revision: 4,
            stable_revision: Some(3),
            trigger: "analysis".into(),
            reason: "background analysis failed".into(),
            data,
        }
    }

    fn event(service: &str, kind: &str, message: &str) -> NewEvent {
        NewEvent {
            actor: "ramp".into(),
            service: Some(service.into()),
            kind: kind.into(),
            message: message.into(),
            data: Value::Null,
        }
    }

    /// Lets the wall clock move on, so events written next are strictly later.
    fn tick() {
        std::thread::sleep(Duration::from_millis(3));
    }

    fn list(store: &Store, service: Option<&str>, limit: Option<usize>) -> Vec<(u64, String)> {
        let query = ListQuery {
            service: service.map(String::from),
            limit,
        };
        list_json(store, &query).unwrap()["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["id"].as_u64().unwrap(),
                    i["service"].as_str().unwrap().into(),
                )
            })
            .collect()
    }

    fn status(err: ServerError) -> u16 {
        err.into_response().status().as_u16()
    }

    #[test]
    fn list_is_newest_first_and_filtered_by_service() {
        let dir = temp_dir("list");
        let store = Store::open(dir.path()).unwrap();
        for service in ["web", "api", "web"] {
            store.add_incident(&incident(service, json!({}))).unwrap();
        }
        let web = |id: u64| (id, "web".to_string());
        assert_eq!(
            list(&store, None, None),
            [web(3), (2, "api".into()), web(1)]
        );
        assert_eq!(list(&store, Some("web"), None), [web(3), web(1)]);
        assert_eq!(list(&store, Some("web"), Some(1)), [web(3)]);
        assert!(list(&store, Some("ghost"), None).is_empty());

        let answer = list_json(
            &store,
            &ListQuery {
                service: None,
                limit: Some(1),
            },
        )
        .unwrap();
        let first = &answer["incidents"][0];
        let at = first["at"].as_str().unwrap();
        assert!(at.ends_with('Z') && at.contains('T'), "{at}");
        assert_eq!(first["stableRevision"], 3);
        assert_eq!(first["trigger"], "analysis");
        assert!(first.get("data").is_none(), "lists carry no data: {first}");
    }

    #[test]
    fn unknown_id_is_404_and_a_non_numeric_id_400() {
        let dir = temp_dir("errors");
        let store = Store::open(dir.path()).unwrap();
        let err = document(&store, "99", Format::Json).unwrap_err();
        assert!(err.to_string().contains("no incident 99"), "{err}");
        assert_eq!(status(err), 404);
        for bad in ["abc", "-1", "1.5", "", "99999999999999999999999"] {
            let err = document(&store, bad, Format::Json).unwrap_err();
            assert!(err.to_string().contains("is not a number"), "{bad}: {err}");
            assert_eq!(status(err), 400, "{bad}");
        }
    }

    #[test]
    fn format_comes_from_the_query_then_the_accept_header() {
        let mut markdown = HeaderMap::new();
        markdown.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/markdown, application/json;q=0.5"),
        );
        let none = HeaderMap::new();
        assert_eq!(Format::choose(None, &none).unwrap(), Format::Json);
        assert_eq!(Format::choose(None, &markdown).unwrap(), Format::Markdown);
        assert_eq!(
            Format::choose(Some("markdown"), &none).unwrap(),
            Format::Markdown
        );
        assert_eq!(Format::choose(Some("MD"), &none).unwrap(), Format::Markdown);
        assert_eq!(
            Format::choose(Some("json"), &markdown).unwrap(),
            Format::Json
        );
        let err = Format::choose(Some("pdf"), &none).unwrap_err();
        assert!(err.to_string().contains("\"pdf\""), "{err}");
        assert_eq!(status(err), 400);
    }

    /// A store with an analysis incident of `web` between events of its rollout, the next
    /// rollout, and another service; returns the incident's id.
    fn incident_with_history(store: &Store) -> u64 {
        store
            .append_event(&event("web", "RolloutStarted", "rollout 2: earlier"))
            .unwrap();
        tick();
        let started = Timestamp::now();
        store
            .append_event(&event("web", "RolloutStarted", "rollout 3: canary to 4"))
            .unwrap();
        store
            .append_event(&event("api", "Applied", "another service"))
            .unwrap();
        store
            .append_event(&event(
                "web",
                "Aborted",
                "rollout 3 aborted: analysis failed",
            ))
            .unwrap();
        let data = json!({
            "rolloutStarted": started.0,
            "canaryRoute": "r2",
            "analysis": {
                "kind": "background analysis",
                "phase": "failed",
                "message": "errors 5.1% vs 1.0%",
                "metrics": [{"name": "canary-vs-baseline", "phase": "failed", "count": 3, "failed": 1,
                             "measurements": [{"at": started.0, "phase": "failed", "value": 0.051, "message": "errors 5.1% vs 1.0%"}]}]
            }
        });
        let row = store.add_incident(&incident("web", data)).unwrap();
        tick();
        store
            .append_event(&event("web", "InstanceFailed", "v4 instance exited"))
            .unwrap();
        store
            .append_event(&event("web", "RolloutStarted", "rollout 4: next"))
            .unwrap();
        store
            .append_event(&event("web", "Completed", "rollout 4 completed"))
            .unwrap();
        row.id
    }

    #[test]
    fn record_carries_data_and_the_timeline_of_its_rollout() {
        let dir = temp_dir("record");
        let store = Store::open(dir.path()).unwrap();
        let id = incident_with_history(&store);
        let Document::Json(record) = document(&store, &id.to_string(), Format::Json).unwrap()
        else {
            panic!("asked for JSON");
        };
        assert_eq!(record["id"], id);
        assert_eq!(record["data"]["canaryRoute"], "r2");
        let messages: Vec<&str> = record["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert_eq!(
            messages,
            [
                "rollout 3: canary to 4",
                "rollout 3 aborted: analysis failed",
                "v4 instance exited"
            ]
        );
        assert_eq!(record["timeline"][0]["kind"], "RolloutStarted");
        // Entries are shaped like the events of `GET /api/v1/events`.
        assert!(record["timeline"][0]["atMs"].is_i64(), "{record}");
        assert_eq!(record["timelineTruncated"], false);
    }

    #[test]
    fn markdown_has_the_metric_and_the_timeline() {
        let dir = temp_dir("markdown");
        let store = Store::open(dir.path()).unwrap();
        let id = incident_with_history(&store);
        let doc = document(&store, &id.to_string(), Format::Markdown).unwrap();
        let response = doc.into_response();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/markdown; charset=utf-8"
        );
        let Document::Markdown(text) = document(&store, &id.to_string(), Format::Markdown).unwrap()
        else {
            panic!("asked for Markdown");
        };
        assert!(
            text.starts_with(&format!("# Incident {id}: web, rollout 3\n")),
            "{text}"
        );
        assert!(
            text.contains(
                "| canary-vs-baseline | failed | 3 (1 failed) | 0.051 | errors 5.1% vs 1.0% |"
            ),
            "{text}"
        );
        let timeline: Vec<&str> = text.lines().filter(|l| l.contains("| ramp | ")).collect();
        assert_eq!(timeline.len(), 3, "{text}");
        assert!(timeline[0].ends_with("| ramp | RolloutStarted | rollout 3: canary to 4 |"));
        assert!(timeline[1].ends_with("| ramp | Aborted | rollout 3 aborted: analysis failed |"));
        assert!(timeline[2].ends_with("| ramp | InstanceFailed | v4 instance exited |"));
        assert!(!text.contains("rollout 4"), "{text}");
        assert!(!text.contains("another service"), "{text}");
    }
}
