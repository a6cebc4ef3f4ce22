//! The database schema and its version.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::StoreError;

/// The schema version this build creates and understands. `Store::open` refuses a database
/// with a newer version, since an older Ramp cannot know what the newer one relies on.
pub const SCHEMA_VERSION: i64 = 3;

/// Version 1. Revisions, rollout state and instances belong to a service and go with it;
/// events do not (the log outlives what it describes), so `events.service` is no foreign key.
/// `services.last_revision` keeps revision numbers from ever being reused after pruning.
const V1: &str = "
CREATE TABLE services (
    name          TEXT PRIMARY KEY NOT NULL,
    spec_yaml     TEXT NOT NULL,
    last_revision INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE revisions (
    service       TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    number        INTEGER NOT NULL CHECK (number > 0),
    digest        TEXT NOT NULL,
    template_json TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (service, number),
    UNIQUE (service, digest)
) STRICT;

CREATE TABLE rollout_state (
    service    TEXT PRIMARY KEY NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    state_json TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE instances (
    id             TEXT PRIMARY KEY NOT NULL,
    service        TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    revision       INTEGER NOT NULL CHECK (revision >= 0),
    port           INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
    pid            INTEGER CHECK (pid >= 0),
    pid_start_time INTEGER CHECK (pid_start_time >= 0),
    state          TEXT NOT NULL,
    restarts       INTEGER NOT NULL CHECK (restarts >= 0),
    started_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX instances_by_service ON instances (service, id);

CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    service TEXT,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL,
    data    TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_service ON events (service, id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: events cannot be updated');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: events cannot be deleted');
END;
";

/// Version 2: incident records, one per rolled-back rollout. Like events they are append-only
/// and outlive their service (no foreign key), so a post-mortem can still be read after the
/// service is deleted.
const V2: &str = "
CREATE TABLE incidents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    service         TEXT NOT NULL,
    rollout         INTEGER NOT NULL CHECK (rollout >= 0),
    revision        INTEGER NOT NULL CHECK (revision >= 0),
    stable_revision INTEGER CHECK (stable_revision >= 0),
    trigger         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    data            TEXT NOT NULL
) STRICT;
CREATE INDEX incidents_by_service ON incidents (service, id);
CREATE TRIGGER incidents_no_update BEFORE UPDATE ON incidents
BEGIN
    SELECT RAISE(ABORT, 'incidents are append-only: an incident cannot be updated');
END;
CREATE TRIGGER incidents_no_delete BEFORE DELETE ON incidents
BEGIN
    SELECT RAISE(ABORT, 'incidents are append-only: an incident cannot be deleted');
END;
";

/// Version 3: feature flags managed through the API. `definition` is the flag in flagd's JSON
/// shape (opaque to the store); `version` grows with every change. Their audit trail is the
/// event log (`kind` `flag.*`, `data.key` naming the flag), found through a partial index so a
/// flag's history does not scan the whole log; the index's expression and filter must match
/// the history query's exactly for SQLite to use it.
const V3: &str = "
CREATE TABLE flags (
    key        TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX events_by_flag ON events (json_extract(data, '$.key'), id)
    WHERE kind GLOB 'flag.*';
";

/// The script that takes a database from version `n` to `n + 1` is `MIGRATIONS[n]`; a new
/// database runs them all, so a fresh and a migrated database cannot differ.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [V1, V2, V3];

/// Creates the schema in a new database, or checks the version of an existing one and migrates
/// it to [`SCHEMA_VERSION`], all in one transaction (a failed migration changes nothing).
pub(crate) fn apply(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) \
         STRICT;",
    )?;
    let found: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let version = match found {
        None => 0,
        Some(text) => text
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| StoreError::BadSchemaVersion {
                path: path.to_owned(),
                found: text.clone(),
            })?,
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < SCHEMA_VERSION {
        // `version` is within 0..SCHEMA_VERSION here: the migrations still to run.
        for script in MIGRATIONS.iter().skip(version.unsigned_abs() as usize) {
            tx.execute_batch(script)?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [SCHEMA_VERSION.to_string()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{SCHEMA_VERSION, V1, V2};
    use crate::testutil::{event, temp_dir};
    use crate::{EventQuery, NewIncident, Store, StoreError};

    fn stored_version(store: &Store) -> String {
        let raw = Connection::open(store.db_path()).unwrap();
        raw.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// A database exactly as version 1 created it, with a service and an event in it.
    fn create_v1(dir: &std::path::Path) {
        let raw = Connection::open(dir.join("ramp.db")).unwrap();
        raw.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;",
        )
        .unwrap();
        raw.execute_batch(V1).unwrap();
        raw.execute_batch(
            "INSERT INTO meta (key, value) VALUES ('schema_version', '1');
             INSERT INTO services (name, spec_yaml, created_at, updated_at)
                 VALUES ('web', 'replicas: 2', 1, 1);
             INSERT INTO events (at, actor, service, kind, message, data)
                 VALUES (1, 'user', 'web', 'Applied', 'applied', 'null');",
        )
        .unwrap();
    }

    #[test]
    fn new_database_gets_the_current_version() {
        let dir = temp_dir("schema-new");
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(stored_version(&store), SCHEMA_VERSION.to_string());
        drop(store);
        // Opening again migrates nothing (the tables exist; a second run would fail).
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(stored_version(&store), SCHEMA_VERSION.to_string());
    }

    #[test]
    fn version_1_database_is_migrated_and_keeps_its_data() {
        let dir = temp_dir("schema-v1");
        create_v1(dir.path());
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(stored_version(&store), SCHEMA_VERSION.to_string());
        assert_eq!(
            store.service("web").unwrap().unwrap().spec_yaml,
            "replicas: 2"
        );
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 1);
        let row = store
            .add_incident(&NewIncident {
                service: "web".into(),
                rollout: 1,
                revision: 2,
                stable_revision: Some(1),
                trigger: "abort".into(),
                reason: "aborted by user".into(),
                data: serde_json::Value::Null,
            })
            .unwrap();
        assert_eq!(row.id, 1);
        // The migrated table has its append-only triggers, like a fresh one, and the old
        // tables keep theirs.
        for table in ["incidents", "events"] {
            let sql = format!("DELETE FROM {table}");
            let err = store
                .transaction(|tx| Ok(tx.connection().execute(&sql, [])?))
                .unwrap_err();
            assert!(err.to_string().contains("append-only"), "{table}: {err}");
        }
        store.append_event(&event("web", "after")).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.incidents(Some("web"), 10).unwrap(), [row]);
    }

    /// A database exactly as version 2 created it, with a service and an event in it.
    fn create_v2(dir: &std::path::Path) {
        create_v1(dir);
        let raw = Connection::open(dir.join("ramp.db")).unwrap();
        raw.execute_batch(V2).unwrap();
        raw.execute_batch("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
            .unwrap();
    }

    /// Every table, index and trigger, as SQLite records their definitions.
    fn schema_of(store: &Store) -> Vec<(String, String)> {
        let raw = Connection::open(store.db_path()).unwrap();
        let mut stmt = raw
            .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn version_2_database_gains_flags_and_keeps_its_data() {
        let dir = temp_dir("schema-v2");
        create_v2(dir.path());
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(stored_version(&store), "3");
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 1);
        let definition = serde_json::json!({"state": "ENABLED", "variants": {"on": true}});
        let write = store.put_flag("f", &definition, Some(0), "user").unwrap();
        assert_eq!(write.flag.version, 1);
        assert_eq!(store.flag_history("f").unwrap().len(), 1);
        // The old event is still there and the log still refuses rewrites.
        let err = store
            .transaction(|tx| Ok(tx.connection().execute("DELETE FROM events", [])?))
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 2);

        // Migrated step by step or created at once, the schema is the same.
        let fresh_dir = temp_dir("schema-fresh");
        let fresh = Store::open(fresh_dir.path()).unwrap();
        assert_eq!(schema_of(&store), schema_of(&fresh));
    }

    #[test]
    fn unreadable_version_is_refused() {
        let dir = temp_dir("schema-bad");
        drop(Store::open(dir.path()).unwrap());
        let raw = Connection::open(dir.path().join("ramp.db")).unwrap();
        raw.execute(
            "UPDATE meta SET value = 'two' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(raw);
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::BadSchemaVersion { .. }), "{err}");
    }
}
