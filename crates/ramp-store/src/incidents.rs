//! Incident records: one per rolled-back rollout, for the post-mortem.
//!
//! Like the event log, the table is append-only (triggers abort every UPDATE and DELETE) and
//! outlives the service it describes: deleting a service keeps its incidents.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::sql::{get_opt_u64, get_u64, to_i64};
use crate::{StoreError, Timestamp};

/// An incident to record: which rollout of which service was rolled back, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewIncident {
    pub service: String,
    /// The id of the rollout that was rolled back.
    pub rollout: u64,
    /// The revision that rollout was taking the service to.
    pub revision: u64,
    /// The revision that kept (or took back) the traffic, when there was one.
    pub stable_revision: Option<u64>,
    /// What rolled it back, machine-readable, e.g. "analysis", "crash-loop", "abort".
    pub trigger: String,
    /// A human-readable sentence.
    pub reason: String,
    /// The evidence (metric values, verdicts, routes); opaque to the store.
    pub data: serde_json::Value,
}

/// An incident as recorded: ids increase with every record and are never reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentRow {
    pub id: u64,
    pub at: Timestamp,
    pub service: String,
    pub rollout: u64,
    pub revision: u64,
    pub stable_revision: Option<u64>,
    pub trigger: String,
    pub reason: String,
    pub data: serde_json::Value,
}

const COLUMNS: &str = "id, at, service, rollout, revision, stable_revision, trigger, reason, data";

fn from_row(row: &Row<'_>) -> rusqlite::Result<IncidentRow> {
    let data: String = row.get(8)?;
    Ok(IncidentRow {
        id: get_u64(row, 0)?,
        at: Timestamp(row.get(1)?),
        service: row.get(2)?,
        rollout: get_u64(row, 3)?,
        revision: get_u64(row, 4)?,
        stable_revision: get_opt_u64(row, 5)?,
        trigger: row.get(6)?,
        reason: row.get(7)?,
        data: serde_json::from_str(&data)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(8, Type::Text, Box::new(e)))?,
    })
}

pub(crate) fn add(conn: &Connection, incident: &NewIncident) -> Result<IncidentRow, StoreError> {
    let at = Timestamp::now();
    let stable_revision = incident
        .stable_revision
        .map(|r| to_i64("stable revision", r))
        .transpose()?;
    conn.execute(
        "INSERT INTO incidents
             (at, service, rollout, revision, stable_revision, trigger, reason, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            at.0,
            incident.service,
            to_i64("rollout id", incident.rollout)?,
            to_i64("revision", incident.revision)?,
            stable_revision,
            incident.trigger,
            incident.reason,
            serde_json::to_string(&incident.data)?,
        ],
    )?;
    Ok(IncidentRow {
        id: conn.last_insert_rowid().unsigned_abs(), // AUTOINCREMENT ids are >= 1
        at,
        service: incident.service.clone(),
        rollout: incident.rollout,
        revision: incident.revision,
        stable_revision: incident.stable_revision,
        trigger: incident.trigger.clone(),
        reason: incident.reason.clone(),
        data: incident.data.clone(),
    })
}

pub(crate) fn get(conn: &Connection, id: u64) -> Result<Option<IncidentRow>, StoreError> {
    // An id beyond SQLite's integers cannot have been recorded.
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], from_row).optional()?)
}

pub(crate) fn list(
    conn: &Connection,
    service: Option<&str>,
    limit: usize,
) -> Result<Vec<IncidentRow>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let filter = if service.is_some() {
        "service = ?2"
    } else {
        "?2 IS NULL"
    };
    let sql = format!("SELECT {COLUMNS} FROM incidents WHERE {filter} ORDER BY id DESC LIMIT ?1");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params![limit, service], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use crate::testutil::temp_dir;
    use crate::{IncidentRow, NewIncident, Store, StoreError, Timestamp};

    fn incident(service: &str, rollout: u64) -> NewIncident {
        NewIncident {
            service: service.into(),
            rollout,
            revision: rollout + 1,
            stable_revision: Some(rollout),
            trigger: "analysis".into(),
            reason: format!("rollout {rollout} of {service} failed its analysis"),
            data: json!({"canaryRoute": "r2", "analysis": {"metrics": [{"name": "errors"}]}}),
        }
    }

    fn ids(rows: &[IncidentRow]) -> Vec<u64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn add_and_read_back() {
        let dir = temp_dir("inc-add");
        let store = Store::open(dir.path()).unwrap();
        let before = Timestamp::now();
        let new = NewIncident {
            stable_revision: None,
            data: json!({"nested": {"list": [1, "two", null]}, "detectedAfterMs": 8400}),
            ..incident("web", 3)
        };
        let row = store.add_incident(&new).unwrap();
        assert_eq!(row.id, 1);
        assert!(row.at >= before && row.at <= Timestamp::now(), "{row:?}");
        assert_eq!(
            (row.rollout, row.revision, row.stable_revision),
            (3, 4, None)
        );
        assert_eq!(row.data, new.data);
        assert_eq!(store.incident(1).unwrap().as_ref(), Some(&row));
        assert_eq!(store.incident(2).unwrap(), None);
        assert_eq!(store.incident(u64::MAX).unwrap(), None);
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["stableRevision"], serde_json::Value::Null);
        assert_eq!(json["trigger"], "analysis");
        assert!(json["at"].is_i64());
    }

    #[test]
    fn list_is_newest_first_filtered_and_limited() {
        let dir = temp_dir("inc-list");
        let store = Store::open(dir.path()).unwrap();
        for i in 0..6 {
            let service = if i % 2 == 0 { "web" } else { "api" };
            store.add_incident(&incident(service, i)).unwrap();
        }
        assert_eq!(
            ids(&store.incidents(None, 100).unwrap()),
            [6, 5, 4, 3, 2, 1]
        );
        assert_eq!(ids(&store.incidents(Some("web"), 100).unwrap()), [5, 3, 1]);
        assert_eq!(ids(&store.incidents(Some("api"), 2).unwrap()), [6, 4]);
        assert_eq!(ids(&store.incidents(None, 1).unwrap()), [6]);
        assert!(store.incidents(None, 0).unwrap().is_empty());
        assert!(store.incidents(Some("ghost"), 10).unwrap().is_empty());
        assert_eq!(store.incidents(None, usize::MAX).unwrap().len(), 6);
    }

    #[test]
    fn written_in_a_transaction_with_state_or_not_at_all() {
        let dir = temp_dir("inc-tx");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        let row = store
            .transaction(|tx| {
                tx.save_state(
                    "web",
                    r#"{"phase":"aborted"}"#,
                    &crate::testutil::event("web", "x"),
                )?;
                let row = tx.add_incident(&incident("web", 1))?;
                assert_eq!(tx.incident(row.id)?.as_ref(), Some(&row));
                assert_eq!(tx.incidents(Some("web"), 10)?.len(), 1);
                Ok(row)
            })
            .unwrap();
        assert_eq!(store.incident(row.id).unwrap(), Some(row));

        let err = store
            .transaction(|tx| {
                tx.add_incident(&incident("web", 2))?;
                Err::<(), _>(StoreError::Aborted("state could not be saved".into()))
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Aborted(_)), "{err}");
        assert_eq!(ids(&store.incidents(None, 10).unwrap()), [1]);
    }

    #[test]
    fn numbers_beyond_sqlite_integers_are_refused() {
        let dir = temp_dir("inc-range");
        let store = Store::open(dir.path()).unwrap();
        let too_big = NewIncident {
            stable_revision: Some(u64::MAX),
            ..incident("web", 1)
        };
        let err = store.add_incident(&too_big).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::OutOfRange {
                    what: "stable revision",
                    ..
                }
            ),
            "{err}"
        );
        assert!(store.incidents(None, 10).unwrap().is_empty());
    }

    #[test]
    fn incidents_are_append_only_and_outlive_their_service() {
        let dir = temp_dir("inc-append-only");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        store.add_incident(&incident("web", 1)).unwrap();
        for sql in [
            "UPDATE incidents SET reason = 'rewritten'",
            "DELETE FROM incidents",
        ] {
            let err = store
                .transaction(|tx| Ok(tx.connection().execute(sql, [])?))
                .unwrap_err();
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        let raw = rusqlite::Connection::open(store.db_path()).unwrap();
        raw.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let err = raw
            .execute("DELETE FROM incidents WHERE id = 1", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");

        assert!(store.delete_service("web").unwrap());
        let left = store.incidents(Some("web"), 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].reason, "rollout 1 of web failed its analysis");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the order incidents of several services arrive in, a listing is exactly
        /// the matching incidents, newest first, cut at the limit.
        #[test]
        fn listing_matches_a_model(
            services in proptest::collection::vec(0..3usize, 0..20),
            filter in proptest::option::of(0..4usize),
            limit in 0..25usize,
        ) {
            let names = ["web", "api", "db", "ghost"];
            let dir = temp_dir("inc-prop");
            let store = Store::open(dir.path()).unwrap();
            for (i, s) in services.iter().enumerate() {
                store.add_incident(&incident(names[*s], i as u64)).unwrap();
            }
            let want: Vec<u64> = (1..=services.len() as u64)
                .rev()
                .filter(|id| filter.is_none_or(|f| services[*id as usize - 1] == f))
                .take(limit)
                .collect();
            let got = store.incidents(filter.map(|f| names[f]), limit).unwrap();
            prop_assert_eq!(ids(&got), want);
            for row in &got {
                prop_assert_eq!(row.rollout + 1, row.id);
            }
        }
    }
}
