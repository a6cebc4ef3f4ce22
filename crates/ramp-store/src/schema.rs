//! The database schema and its version.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::StoreError;

/// The schema version this build creates and understands. `Store::open` refuses a database
/// with a newer version, since an older Ramp cannot know what the newer one relies on.
pub const SCHEMA_VERSION: i64 = 1;

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

/// Creates the schema in a new database, or checks the version of an existing one.
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
    match found {
        None => {
            tx.execute_batch(V1)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION.to_string()],
            )?;
        }
        Some(text) => {
            let version = text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| StoreError::BadSchemaVersion {
                    path: path.to_owned(),
                    found: text.clone(),
                })?;
            if version > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    path: path.to_owned(),
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            // Migrations from older versions go here once there is more than one version.
        }
    }
    tx.commit()?;
    Ok(())
}
