//! Instances: what runs where, so a restarted control plane can adopt running processes.

use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};

use crate::sql::{get_opt_u64, get_u64, to_i64};
use crate::{StoreError, Timestamp, services};

/// One instance of a service's revision.
///
/// `pid` and `pid_start_time` together identify the process: a pid alone may have been reused
/// by an unrelated process after a reboot or a long downtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRow {
    pub id: String,
    pub service: String,
    pub revision: u64,
    pub port: u16,
    pub pid: Option<u32>,
    pub pid_start_time: Option<u64>,
    pub state: String,
    pub restarts: u32,
    pub started_at: Timestamp,
}

const COLUMNS: &str =
    "id, service, revision, port, pid, pid_start_time, state, restarts, started_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<InstanceRow> {
    Ok(InstanceRow {
        id: row.get(0)?,
        service: row.get(1)?,
        revision: get_u64(row, 2)?,
        port: row.get(3)?,
        pid: row.get(4)?,
        pid_start_time: get_opt_u64(row, 5)?,
        state: row.get(6)?,
        restarts: row.get(7)?,
        started_at: Timestamp(row.get(8)?),
    })
}

pub(crate) fn put(conn: &Connection, row: &InstanceRow) -> Result<(), StoreError> {
    services::require(conn, &row.service)?;
    let pid_start_time = row
        .pid_start_time
        .map(|t| to_i64("pid start time", t))
        .transpose()?;
    conn.execute(
        &format!(
            "INSERT INTO instances ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET
                 service = excluded.service, revision = excluded.revision,
                 port = excluded.port, pid = excluded.pid,
                 pid_start_time = excluded.pid_start_time, state = excluded.state,
                 restarts = excluded.restarts, started_at = excluded.started_at"
        ),
        params![
            row.id,
            row.service,
            to_i64("revision", row.revision)?,
            row.port,
            row.pid,
            pid_start_time,
            row.state,
            row.restarts,
            row.started_at.0,
        ],
    )?;
    Ok(())
}

pub(crate) fn remove(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM instances WHERE id = ?1", [id])?;
    Ok(())
}

/// The instances of one service, by id.
pub(crate) fn list(conn: &Connection, service: &str) -> Result<Vec<InstanceRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM instances WHERE service = ?1 ORDER BY id");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([service], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::InstanceRow;
    use crate::testutil::temp_dir;
    use crate::{Store, StoreError, Timestamp};

    fn row(id: &str, service: &str) -> InstanceRow {
        InstanceRow {
            id: id.into(),
            service: service.into(),
            revision: 3,
            port: 65_535,
            pid: Some(u32::MAX),
            pid_start_time: Some(i64::MAX as u64),
            state: "running".into(),
            restarts: u32::MAX,
            started_at: Timestamp(1_795_304_892_123),
        }
    }

    #[test]
    fn round_trip_including_none_pid() {
        let dir = temp_dir("inst-roundtrip");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        store.put_service("api", "").unwrap();
        let full = row("web-b", "web");
        let bare = InstanceRow {
            pid: None,
            pid_start_time: None,
            state: "starting".into(),
            ..row("web-a", "web")
        };
        let other = row("api-1", "api");
        for r in [&full, &bare, &other] {
            store.put_instance(r).unwrap();
        }
        assert_eq!(
            store.instances("web").unwrap(),
            [bare.clone(), full.clone()]
        );
        assert_eq!(store.instances("api").unwrap(), [other]);

        // Replace by id.
        let restarted = InstanceRow {
            pid: Some(7),
            restarts: 1,
            ..bare.clone()
        };
        store.put_instance(&restarted).unwrap();
        assert_eq!(store.instances("web").unwrap(), [restarted, full.clone()]);

        store.remove_instance("web-a").unwrap();
        store.remove_instance("web-a").unwrap(); // already gone: not an error
        assert_eq!(store.instances("web").unwrap(), [full]);
        assert!(store.instances("nope").unwrap().is_empty());
    }

    #[test]
    fn refuses_unknown_service_and_oversized_numbers() {
        let dir = temp_dir("inst-refuse");
        let store = Store::open(dir.path()).unwrap();
        let err = store.put_instance(&row("x", "ghost")).unwrap_err();
        assert!(matches!(err, StoreError::UnknownService(_)), "{err}");
        store.put_service("web", "").unwrap();
        let huge = InstanceRow {
            pid_start_time: Some(u64::MAX),
            ..row("x", "web")
        };
        let err = store.put_instance(&huge).unwrap_err();
        assert!(matches!(err, StoreError::OutOfRange { .. }), "{err}");
        assert!(store.instances("ghost").unwrap().is_empty());
        assert!(store.instances("web").unwrap().is_empty());
    }

    #[test]
    fn serializes_camel_case() {
        let json = serde_json::to_value(row("web-1", "web")).unwrap();
        assert_eq!(json["pidStartTime"], serde_json::json!(i64::MAX));
        assert_eq!(json["startedAt"], serde_json::json!(1_795_304_892_123_i64));
        let back: InstanceRow = serde_json::from_value(json).unwrap();
        assert_eq!(back, row("web-1", "web"));
    }
}
