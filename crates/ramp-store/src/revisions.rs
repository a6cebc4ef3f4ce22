//! Revisions: the numbered templates of a service.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::sql::{get_u64, to_i64};
use crate::{StoreError, Timestamp};

/// One revision of a service: the template (as JSON) that instances of it run, identified by
/// its digest. Numbers count 1, 2, 3... per service and are never reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRow {
    pub service: String,
    pub number: u64,
    pub digest: String,
    pub template_json: String,
    pub created_at: Timestamp,
}

const COLUMNS: &str = "service, number, digest, template_json, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<RevisionRow> {
    Ok(RevisionRow {
        service: row.get(0)?,
        number: get_u64(row, 1)?,
        digest: row.get(2)?,
        template_json: row.get(3)?,
        created_at: Timestamp(row.get(4)?),
    })
}

pub(crate) fn add(
    conn: &Connection,
    service: &str,
    digest: &str,
    template_json: &str,
) -> Result<RevisionRow, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM revisions WHERE service = ?1 AND digest = ?2");
    if let Some(existing) = conn
        .query_row(&sql, [service, digest], from_row)
        .optional()?
    {
        return Ok(existing);
    }
    // The counter on the service, not MAX(number), so a pruned number is never handed out
    // again (events and logs name revisions by number).
    let last: i64 = conn
        .query_row(
            "SELECT last_revision FROM services WHERE name = ?1",
            [service],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::UnknownService(service.to_owned()))?;
    let max: i64 = conn.query_row(
        "SELECT COALESCE(MAX(number), 0) FROM revisions WHERE service = ?1",
        [service],
        |r| r.get(0),
    )?;
    let number = last.max(max) + 1;
    let row = RevisionRow {
        service: service.to_owned(),
        number: number.unsigned_abs(), // >= 1
        digest: digest.to_owned(),
        template_json: template_json.to_owned(),
        created_at: Timestamp::now(),
    };
    conn.execute(
        "INSERT INTO revisions (service, number, digest, template_json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![service, number, digest, template_json, row.created_at.0],
    )?;
    conn.execute(
        "UPDATE services SET last_revision = ?2 WHERE name = ?1",
        params![service, number],
    )?;
    Ok(row)
}

pub(crate) fn get(
    conn: &Connection,
    service: &str,
    number: u64,
) -> Result<Option<RevisionRow>, StoreError> {
    let Ok(number) = i64::try_from(number) else {
        return Ok(None);
    };
    let sql = format!("SELECT {COLUMNS} FROM revisions WHERE service = ?1 AND number = ?2");
    Ok(conn
        .query_row(&sql, params![service, number], from_row)
        .optional()?)
}

pub(crate) fn list(conn: &Connection, service: &str) -> Result<Vec<RevisionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM revisions WHERE service = ?1 ORDER BY number");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([service], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn prune(
    conn: &Connection,
    service: &str,
    keep: usize,
    protect: &[u64],
) -> Result<Vec<u64>, StoreError> {
    let numbers = |sql: &str| -> Result<Vec<u64>, StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt
            .query_map([service], |row| get_u64(row, 0))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    };
    let newest_first =
        numbers("SELECT number FROM revisions WHERE service = ?1 ORDER BY number DESC")?;
    // A revision that a recorded instance runs must stay: the instance may be adopted after a
    // restart and must be restartable from its template.
    let running: HashSet<u64> =
        numbers("SELECT DISTINCT revision FROM instances WHERE service = ?1")?
            .into_iter()
            .collect();
    let mut deleted: Vec<u64> = newest_first
        .into_iter()
        .skip(keep)
        .filter(|n| !protect.contains(n) && !running.contains(n))
        .collect();
    deleted.sort_unstable();
    for &number in &deleted {
        conn.execute(
            "DELETE FROM revisions WHERE service = ?1 AND number = ?2",
            params![service, to_i64("revision", number)?],
        )?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use crate::testutil::temp_dir;
    use crate::{InstanceRow, Store, StoreError, Timestamp};

    fn numbers(store: &Store, service: &str) -> Vec<u64> {
        store
            .revisions(service)
            .unwrap()
            .into_iter()
            .map(|r| r.number)
            .collect()
    }

    #[test]
    fn numbered_per_service_and_same_digest_returns_existing() {
        let dir = temp_dir("rev-number");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        store.put_service("api", "").unwrap();
        let a = store
            .add_revision("web", "sha256:a", r#"{"v":"a"}"#)
            .unwrap();
        let b = store
            .add_revision("web", "sha256:b", r#"{"v":"b"}"#)
            .unwrap();
        let api = store
            .add_revision("api", "sha256:a", r#"{"v":"a"}"#)
            .unwrap();
        assert_eq!((a.number, b.number, api.number), (1, 2, 1));
        let again = store
            .add_revision("web", "sha256:a", r#"{"v":"a"}"#)
            .unwrap();
        assert_eq!(again, a);
        assert_eq!(
            store.add_revision("web", "sha256:c", "{}").unwrap().number,
            3
        );
        assert_eq!(numbers(&store, "web"), [1, 2, 3]);
        assert_eq!(store.revision("web", 2).unwrap(), Some(b));
        assert_eq!(store.revision("web", 9).unwrap(), None);
        assert_eq!(store.revision("web", u64::MAX).unwrap(), None);
    }

    #[test]
    fn revision_of_unknown_service_is_refused() {
        let dir = temp_dir("rev-unknown");
        let store = Store::open(dir.path()).unwrap();
        let err = store.add_revision("ghost", "d", "{}").unwrap_err();
        assert!(
            matches!(err, StoreError::UnknownService(ref s) if s == "ghost"),
            "{err}"
        );
    }

    #[test]
    fn prune_keeps_newest_and_protected() {
        let dir = temp_dir("rev-prune");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        for i in 1..=6 {
            store.add_revision("web", &format!("d{i}"), "{}").unwrap();
        }
        assert_eq!(store.prune_revisions("web", 2, &[2]).unwrap(), [1, 3, 4]);
        assert_eq!(numbers(&store, "web"), [2, 5, 6]);
        assert!(store.prune_revisions("web", 2, &[2]).unwrap().is_empty());
        // Pruned numbers are never handed out again, even for a digest seen before.
        assert_eq!(store.add_revision("web", "d1", "{}").unwrap().number, 7);
        assert_eq!(store.prune_revisions("web", 0, &[]).unwrap(), [2, 5, 6, 7]);
        assert_eq!(store.add_revision("web", "d8", "{}").unwrap().number, 8);
    }

    #[test]
    fn prune_keeps_revisions_that_instances_run() {
        let dir = temp_dir("rev-prune-running");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        for i in 1..=4 {
            store.add_revision("web", &format!("d{i}"), "{}").unwrap();
        }
        store
            .put_instance(&InstanceRow {
                id: "web-1".into(),
                service: "web".into(),
                revision: 1,
                port: 9000,
                pid: Some(42),
                pid_start_time: None,
                state: "running".into(),
                restarts: 0,
                started_at: Timestamp(0),
            })
            .unwrap();
        assert_eq!(store.prune_revisions("web", 1, &[]).unwrap(), [2, 3]);
        assert_eq!(numbers(&store, "web"), [1, 4]);
    }
}
