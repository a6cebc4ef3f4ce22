//! The append-only event log.
//!
//! Triggers in the database abort every UPDATE and DELETE on `events`, so no code path — not
//! even a bug or a hand-written statement — can rewrite history.

use rusqlite::types::Type;
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};

use crate::sql::get_u64;
use crate::{StoreError, Timestamp};

/// An event to append: who did what to which service, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEvent {
    /// Who caused it, e.g. "user", "rollout", "runtime".
    pub actor: String,
    /// The service it concerns; `None` for control-plane-wide events.
    pub service: Option<String>,
    /// A machine-readable kind, e.g. "rollout.step".
    pub kind: String,
    /// A human-readable sentence.
    pub message: String,
    /// Details for machines; `Value::Null` when there are none.
    pub data: serde_json::Value,
}

/// An event as recorded: ids increase with every append and are never reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    pub id: u64,
    pub at: Timestamp,
    pub actor: String,
    pub service: Option<String>,
    pub kind: String,
    pub message: String,
    pub data: serde_json::Value,
}

/// Which events to list. The default selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventQuery {
    /// Only events of this service.
    pub service: Option<String>,
    /// Only events with an id greater than this (to follow the log: pass the last id seen).
    pub after_id: Option<u64>,
    /// At most this many events: the oldest ones matching.
    pub limit: Option<usize>,
}

pub(crate) const COLUMNS: &str = "id, at, actor, service, kind, message, data";

pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
    let data: String = row.get(6)?;
    Ok(EventRow {
        id: get_u64(row, 0)?,
        at: Timestamp(row.get(1)?),
        actor: row.get(2)?,
        service: row.get(3)?,
        kind: row.get(4)?,
        message: row.get(5)?,
        data: serde_json::from_str(&data)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(6, Type::Text, Box::new(e)))?,
    })
}

pub(crate) fn append(conn: &Connection, event: &NewEvent) -> Result<EventRow, StoreError> {
    let at = Timestamp::now();
    conn.execute(
        "INSERT INTO events (at, actor, service, kind, message, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            at.0,
            event.actor,
            event.service,
            event.kind,
            event.message,
            serde_json::to_string(&event.data)?,
        ],
    )?;
    Ok(EventRow {
        id: conn.last_insert_rowid().unsigned_abs(), // AUTOINCREMENT ids are >= 1
        at,
        actor: event.actor.clone(),
        service: event.service.clone(),
        kind: event.kind.clone(),
        message: event.message.clone(),
        data: event.data.clone(),
    })
}

pub(crate) fn list(conn: &Connection, query: &EventQuery) -> Result<Vec<EventRow>, StoreError> {
    let after = query
        .after_id
        .map_or(0, |id| i64::try_from(id).unwrap_or(i64::MAX));
    let limit = query
        .limit
        .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)); // -1: none
    let filter = if query.service.is_some() {
        "service = ?3 AND"
    } else {
        "?3 IS NULL AND"
    };
    let sql = format!("SELECT {COLUMNS} FROM events WHERE {filter} id > ?1 ORDER BY id LIMIT ?2");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params![after, limit, query.service], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::testutil::{event, temp_dir};
    use crate::{EventQuery, NewEvent, Store, StoreError};

    fn ids(store: &Store, query: EventQuery) -> Vec<u64> {
        store
            .events(&query)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect()
    }

    #[test]
    fn append_and_read_back() {
        let dir = temp_dir("ev-append");
        let store = Store::open(dir.path()).unwrap();
        let new = NewEvent {
            actor: "user".into(),
            service: None,
            kind: "control-plane.started".into(),
            message: "started".into(),
            data: json!({"pid": 1, "nested": {"list": [1, "two", null]}}),
        };
        let row = store.append_event(&new).unwrap();
        assert_eq!(row.id, 1);
        assert_eq!((row.actor.as_str(), row.service.as_deref()), ("user", None));
        assert_eq!(row.data, new.data);
        assert_eq!(
            store.events(&EventQuery::default()).unwrap(),
            std::slice::from_ref(&row)
        );
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["kind"], "control-plane.started");
        assert!(json["at"].is_i64());
    }

    #[test]
    fn filter_by_service_after_id_and_limit() {
        let dir = temp_dir("ev-filter");
        let store = Store::open(dir.path()).unwrap();
        for i in 0..10 {
            let service = if i % 2 == 0 { "web" } else { "api" };
            store
                .append_event(&event(service, &format!("k{i}")))
                .unwrap();
        }
        store
            .append_event(&NewEvent {
                service: None,
                ..event("x", "global")
            })
            .unwrap();
        let all = EventQuery::default();
        assert_eq!(ids(&store, all.clone()), (1..=11).collect::<Vec<_>>());
        let web = EventQuery {
            service: Some("web".into()),
            ..all.clone()
        };
        assert_eq!(ids(&store, web.clone()), [1, 3, 5, 7, 9]);
        assert_eq!(
            ids(
                &store,
                EventQuery {
                    after_id: Some(8),
                    ..all.clone()
                }
            ),
            [9, 10, 11]
        );
        assert_eq!(
            ids(
                &store,
                EventQuery {
                    limit: Some(3),
                    ..all.clone()
                }
            ),
            [1, 2, 3]
        );
        assert_eq!(
            ids(
                &store,
                EventQuery {
                    limit: Some(0),
                    ..all.clone()
                }
            ),
            Vec::<u64>::new()
        );
        let combined = EventQuery {
            after_id: Some(3),
            limit: Some(2),
            ..web
        };
        assert_eq!(ids(&store, combined), [5, 7]);
        let far = EventQuery {
            after_id: Some(u64::MAX),
            limit: Some(usize::MAX),
            ..all
        };
        assert!(ids(&store, far).is_empty());
        let ghost = EventQuery {
            service: Some("ghost".into()),
            ..EventQuery::default()
        };
        assert!(ids(&store, ghost).is_empty());
    }

    #[test]
    fn query_deserializes_with_defaults() {
        let q: EventQuery = serde_json::from_str(r#"{"afterId": 5}"#).unwrap();
        assert_eq!(
            q,
            EventQuery {
                after_id: Some(5),
                ..EventQuery::default()
            }
        );
    }

    #[test]
    fn events_cannot_be_updated_or_deleted_inside_a_transaction() {
        let dir = temp_dir("ev-append-only");
        let store = Store::open(dir.path()).unwrap();
        store.append_event(&event("web", "a")).unwrap();
        for sql in [
            "UPDATE events SET message = 'rewritten'",
            "DELETE FROM events",
        ] {
            let err = store
                .transaction(|tx| Ok(tx.connection().execute(sql, [])?))
                .unwrap_err();
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        let events = store.events(&EventQuery::default()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].message, "message of a");
    }

    #[test]
    fn events_cannot_be_updated_or_deleted_through_another_connection() {
        let dir = temp_dir("ev-append-only-raw");
        let store = Store::open(dir.path()).unwrap();
        store.append_event(&event("web", "a")).unwrap();
        let raw = rusqlite::Connection::open(store.db_path()).unwrap();
        raw.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        for sql in [
            "UPDATE events SET message = 'rewritten' WHERE id = 1",
            "DELETE FROM events WHERE id = 1",
        ] {
            let err = raw.execute(sql, []).unwrap_err();
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        // Appending through the raw connection is still fine: only history is protected.
        raw.execute(
            "INSERT INTO events (at, actor, kind, message, data) VALUES (0, 'a', 'k', 'm', 'null')",
            [],
        )
        .unwrap();
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 2);
        assert!(matches!(
            store.transaction(|tx| Ok(tx.connection().execute("DELETE FROM events", [])?)),
            Err(StoreError::Sqlite(_))
        ));
    }
}
