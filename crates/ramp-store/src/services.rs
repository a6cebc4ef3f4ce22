//! Services: the applied spec text of each, the source of truth for what should run.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::{StoreError, Timestamp};

/// A service as applied. `spec_yaml` is the exact text applied; the caller re-parses it on
/// load, so a spec never has to be migrated with the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRow {
    pub name: String,
    pub spec_yaml: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "name, spec_yaml, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ServiceRow> {
    Ok(ServiceRow {
        name: row.get(0)?,
        spec_yaml: row.get(1)?,
        created_at: Timestamp(row.get(2)?),
        updated_at: Timestamp(row.get(3)?),
    })
}

pub(crate) fn put(conn: &Connection, name: &str, spec_yaml: &str) -> Result<(), StoreError> {
    // An upsert, not INSERT OR REPLACE: replacing would delete the row (and with it, through
    // the foreign keys, the service's revisions, rollout state and instances).
    conn.execute(
        "INSERT INTO services (name, spec_yaml, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (name) DO UPDATE SET
             spec_yaml = excluded.spec_yaml, updated_at = excluded.updated_at",
        params![name, spec_yaml, Timestamp::now().0],
    )?;
    Ok(())
}

pub(crate) fn get(conn: &Connection, name: &str) -> Result<Option<ServiceRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM services WHERE name = ?1");
    Ok(conn.query_row(&sql, [name], from_row).optional()?)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<ServiceRow>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM services ORDER BY name"))?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn delete(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    // Explicit, not only through ON DELETE CASCADE, so a connection opened without
    // `foreign_keys` (e.g. the sqlite3 shell) cannot leave orphans behind either way.
    for table in ["instances", "rollout_state", "revisions"] {
        conn.execute(&format!("DELETE FROM {table} WHERE service = ?1"), [name])?;
    }
    Ok(conn.execute("DELETE FROM services WHERE name = ?1", [name])? > 0)
}

/// Fails with [`StoreError::UnknownService`] unless `name` exists.
pub(crate) fn require(conn: &Connection, name: &str) -> Result<(), StoreError> {
    let found = conn
        .query_row("SELECT 1 FROM services WHERE name = ?1", [name], |_| Ok(()))
        .optional()?;
    found.ok_or_else(|| StoreError::UnknownService(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use crate::testutil::{event, temp_dir};
    use crate::{EventQuery, InstanceRow, Store, Timestamp};

    #[test]
    fn put_replaces_spec_and_keeps_created_at() {
        let dir = temp_dir("svc-put");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "image: a").unwrap();
        let first = store.service("web").unwrap().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.put_service("web", "image: b").unwrap();
        let second = store.service("web").unwrap().unwrap();
        assert_eq!(second.spec_yaml, "image: b");
        assert_eq!(second.created_at, first.created_at);
        assert!(second.updated_at > first.updated_at);
        assert_eq!(store.service("nope").unwrap(), None);
    }

    #[test]
    fn services_are_ordered_by_name() {
        let dir = temp_dir("svc-order");
        let store = Store::open(dir.path()).unwrap();
        for name in ["b", "c", "a"] {
            store.put_service(name, "").unwrap();
        }
        let names: Vec<_> = store
            .services()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn replacing_a_spec_keeps_revisions_state_and_instances() {
        let dir = temp_dir("svc-replace");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "v1").unwrap();
        store.add_revision("web", "d1", "{}").unwrap();
        store.save_state("web", "{}", &event("web", "x")).unwrap();
        store.put_instance(&instance("web-1", "web")).unwrap();
        store.put_service("web", "v2").unwrap();
        assert_eq!(store.revisions("web").unwrap().len(), 1);
        assert!(store.state("web").unwrap().is_some());
        assert_eq!(store.instances("web").unwrap().len(), 1);
    }

    #[test]
    fn delete_removes_rows_but_keeps_events() {
        let dir = temp_dir("svc-delete");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        store.put_service("api", "").unwrap();
        store.add_revision("web", "d1", "{}").unwrap();
        store.add_revision("api", "d1", "{}").unwrap();
        store
            .save_state("web", r#"{"phase":"done"}"#, &event("web", "state"))
            .unwrap();
        store.put_instance(&instance("web-1", "web")).unwrap();
        store.put_instance(&instance("api-1", "api")).unwrap();
        store.append_event(&event("web", "applied")).unwrap();

        assert!(store.delete_service("web").unwrap());
        assert!(!store.delete_service("web").unwrap());

        assert_eq!(store.service("web").unwrap(), None);
        assert!(store.revisions("web").unwrap().is_empty());
        assert_eq!(store.state("web").unwrap(), None);
        assert!(store.instances("web").unwrap().is_empty());
        let query = EventQuery {
            service: Some("web".into()),
            ..EventQuery::default()
        };
        assert_eq!(store.events(&query).unwrap().len(), 2);
        // The other service is untouched.
        assert_eq!(store.revisions("api").unwrap().len(), 1);
        assert_eq!(store.instances("api").unwrap().len(), 1);

        // A service created again under the same name starts afresh.
        store.put_service("web", "").unwrap();
        assert_eq!(store.add_revision("web", "d9", "{}").unwrap().number, 1);
    }

    fn instance(id: &str, service: &str) -> InstanceRow {
        InstanceRow {
            id: id.into(),
            service: service.into(),
            revision: 1,
            port: 8000,
            pid: None,
            pid_start_time: None,
            state: "running".into(),
            restarts: 0,
            started_at: Timestamp(0),
        }
    }
}
