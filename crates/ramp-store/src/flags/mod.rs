//! Feature flags managed through the control plane: the current definition of each flag
//! (flagd's JSON shape, opaque to the store) with a version that grows on every change.
//!
//! Every change appends its audit event — who, what kind, and a JSON-pointer diff — in the same
//! transaction as the change itself, so the log can never miss or invent one. A write may carry
//! the version its author last saw; if the flag has moved on since, nothing is written
//! ([`StoreError::FlagVersionConflict`]).

mod diff;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::{Value, json};

use crate::events::{self, EventRow, NewEvent};
use crate::sql::{get_u64, to_i64};
use crate::{StoreError, Timestamp};

use diff::{FieldChange, diff};

/// A flag as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagRow {
    pub key: String,
    /// The flag in flagd's JSON shape (`state`, `variants`, `defaultVariant`, `targeting`,
    /// `metadata`), exactly as last written.
    pub definition: Value,
    /// 1 when first created, one more on every change; a flag deleted and created again
    /// continues from its last recorded version, so a version never names two definitions.
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The kinds of audit events flag changes record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagEventKind {
    Created,
    Updated,
    Deleted,
    /// A change of `/state` alone, to `DISABLED`: the kill switch.
    Disabled,
    /// A change of `/state` alone, to `ENABLED`.
    Enabled,
}

impl FlagEventKind {
    /// The event's `kind`, e.g. `flag.disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagEventKind::Created => "flag.created",
            FlagEventKind::Updated => "flag.updated",
            FlagEventKind::Deleted => "flag.deleted",
            FlagEventKind::Disabled => "flag.disabled",
            FlagEventKind::Enabled => "flag.enabled",
        }
    }
}

/// The outcome of [`crate::Store::put_flag`].
#[derive(Debug, Clone, PartialEq)]
pub struct FlagWrite {
    /// The flag as stored now.
    pub flag: FlagRow,
    /// What kind of change it was; `None` when the definition was already the same (then nothing
    /// was written: no new version, no event).
    pub kind: Option<FlagEventKind>,
    /// The audit event recorded with the change.
    pub event: Option<EventRow>,
}

const COLUMNS: &str = "key, definition, version, created_at, updated_at";

/// Selects a flag's audit events; written exactly as the `events_by_flag` index is defined.
const HISTORY_FILTER: &str = "kind GLOB 'flag.*' AND json_extract(data, '$.key') = ?1";

fn from_row(row: &Row<'_>) -> rusqlite::Result<FlagRow> {
    let definition: String = row.get(1)?;
    Ok(FlagRow {
        key: row.get(0)?,
        definition: serde_json::from_str(&definition)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, Type::Text, Box::new(e)))?,
        version: get_u64(row, 2)?,
        created_at: Timestamp(row.get(3)?),
        updated_at: Timestamp(row.get(4)?),
    })
}

pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<FlagRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM flags WHERE key = ?1");
    Ok(conn.query_row(&sql, [key], from_row).optional()?)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<FlagRow>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM flags ORDER BY key"))?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The audit events of `key`, oldest first (they outlive the flag).
pub(crate) fn history(conn: &Connection, key: &str) -> Result<Vec<EventRow>, StoreError> {
    let sql = format!(
        "SELECT {} FROM events WHERE {HISTORY_FILTER} ORDER BY id",
        events::COLUMNS
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([key], events::from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn put(
    conn: &Connection,
    key: &str,
    definition: &Value,
    expected_version: Option<u64>,
    actor: &str,
) -> Result<FlagWrite, StoreError> {
    let current = get(conn, key)?;
    check_version(key, expected_version, current.as_ref())?;
    if let Some(row) = current.as_ref().filter(|row| row.definition == *definition) {
        return Ok(FlagWrite {
            flag: row.clone(),
            kind: None,
            event: None,
        });
    }
    let changes = diff(
        current.as_ref().map(|row| &row.definition),
        Some(definition),
    );
    let version = match &current {
        Some(row) => row.version + 1,
        None => last_recorded_version(conn, key)? + 1,
    };
    let now = Timestamp::now();
    conn.execute(
        "INSERT INTO flags (key, definition, version, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (key) DO UPDATE SET
             definition = excluded.definition, version = excluded.version,
             updated_at = excluded.updated_at",
        params![
            key,
            serde_json::to_string(definition)?,
            to_i64("flag version", version)?,
            now.0
        ],
    )?;
    let kind = match &current {
        None => FlagEventKind::Created,
        Some(_) => classify_update(&changes),
    };
    let event = record(conn, key, kind, version, &changes, actor)?;
    Ok(FlagWrite {
        flag: FlagRow {
            key: key.to_owned(),
            definition: definition.clone(),
            version,
            created_at: current.map_or(now, |row| row.created_at),
            updated_at: now,
        },
        kind: Some(kind),
        event: Some(event),
    })
}

/// Deletes `key`; `None` when there is no such flag.
pub(crate) fn delete(
    conn: &Connection,
    key: &str,
    expected_version: Option<u64>,
    actor: &str,
) -> Result<Option<EventRow>, StoreError> {
    let Some(current) = get(conn, key)? else {
        return Ok(None);
    };
    check_version(key, expected_version, Some(&current))?;
    conn.execute("DELETE FROM flags WHERE key = ?1", [key])?;
    let changes = diff(Some(&current.definition), None);
    let version = current.version + 1;
    record(conn, key, FlagEventKind::Deleted, version, &changes, actor).map(Some)
}

/// An expected version must be the stored one; 0 expects the flag not to exist.
fn check_version(
    key: &str,
    expected: Option<u64>,
    current: Option<&FlagRow>,
) -> Result<(), StoreError> {
    let found = current.map(|row| row.version);
    match expected {
        Some(expected) if found.unwrap_or(0) != expected => Err(StoreError::FlagVersionConflict {
            key: key.to_owned(),
            expected,
            found,
        }),
        _ => Ok(()),
    }
}

/// A change of the state alone is the kill switch (or its release); anything else an update.
fn classify_update(changes: &[FieldChange]) -> FlagEventKind {
    match changes {
        [only] if only.path == "/state" => match only.to.as_ref().and_then(Value::as_str) {
            Some("DISABLED") => FlagEventKind::Disabled,
            Some("ENABLED") => FlagEventKind::Enabled,
            _ => FlagEventKind::Updated,
        },
        _ => FlagEventKind::Updated,
    }
}

/// The highest version any event of `key` recorded (0 if none): where a re-created flag
/// continues.
fn last_recorded_version(conn: &Connection, key: &str) -> Result<u64, StoreError> {
    let sql =
        format!("SELECT MAX(json_extract(data, '$.version')) FROM events WHERE {HISTORY_FILTER}");
    let last: Option<i64> = conn.query_row(&sql, [key], |row| row.get(0))?;
    Ok(last.map_or(0, i64::unsigned_abs))
}

fn record(
    conn: &Connection,
    key: &str,
    kind: FlagEventKind,
    version: u64,
    changes: &[FieldChange],
    actor: &str,
) -> Result<EventRow, StoreError> {
    events::append(
        conn,
        &NewEvent {
            actor: actor.to_owned(),
            service: None,
            kind: kind.as_str().to_owned(),
            message: message(key, kind, version, changes),
            data: json!({ "key": key, "version": version, "diff": changes }),
        },
    )
}

/// The event's sentence, e.g. "flag checkout updated to version 3: /defaultVariant changed".
fn message(key: &str, kind: FlagEventKind, version: u64, changes: &[FieldChange]) -> String {
    const LISTED: usize = 4;
    match kind {
        FlagEventKind::Created => format!("flag {key} created (version {version})"),
        FlagEventKind::Deleted => format!("flag {key} deleted (version {version})"),
        FlagEventKind::Disabled => format!("flag {key} disabled (version {version})"),
        FlagEventKind::Enabled => format!("flag {key} enabled (version {version})"),
        FlagEventKind::Updated => {
            let paths: Vec<&str> = changes
                .iter()
                .take(LISTED)
                .map(|c| c.path.as_str())
                .collect();
            let more = changes.len().saturating_sub(LISTED);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "flag {key} updated to version {version}: {}{more} changed",
                paths.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests;
