//! The one error type of the store.

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite refused or failed a statement (including a constraint or trigger, such as an
    /// attempt to change the append-only event log).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file system operation on the database directory or the object store failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "creating directory".
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Event data or a rollout state document is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The database was written by a newer Ramp; opening it with this one could corrupt it.
    #[error(
        "database {} has schema version {found}, but this build of Ramp supports only up to \
         version {supported}; use a newer Ramp",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// The `schema_version` in the `meta` table is not a positive integer.
    #[error("database {} has an unreadable schema version {found:?}", path.display())]
    BadSchemaVersion { path: PathBuf, found: String },
    /// SQLite could not be configured as the store requires (e.g. WAL mode is unavailable on
    /// this file system).
    #[error("database {} cannot be used: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    /// A revision, rollout state or instance was written for a service that does not exist.
    #[error("unknown service {0:?}")]
    UnknownService(String),
    /// A digest that is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid object digest {0:?}: expected \"sha256:\" and 64 lowercase hex digits")]
    InvalidDigest(String),
    /// A well-formed digest that is not in the object store.
    #[error("object {0} is not in the object store")]
    ObjectNotFound(String),
    /// A number does not fit the database's signed 64-bit integers.
    #[error("{what} {value} is too large to store")]
    OutOfRange { what: &'static str, value: u64 },
    /// A `Store` method was called from inside [`crate::Store::transaction`] on the same thread;
    /// it would deadlock, so it fails instead. Use the `Tx` handed to the closure.
    #[error("Store method called inside Store::transaction on the same thread; use the Tx")]
    Reentrant,
    /// A flag write named the version it expected, and the flag is at another one (or does not
    /// exist, `found: None`; expecting 0 means "must not exist yet"). Nothing was written.
    #[error(
        "flag {key:?} is at {}, not version {expected}; read it again and retry",
        found.map_or_else(|| "no version (it does not exist)".to_owned(), |v| format!("version {v}"))
    )]
    FlagVersionConflict {
        key: String,
        expected: u64,
        found: Option<u64>,
    },
    /// The caller aborted a [`crate::Store::transaction`] (everything it wrote is rolled back).
    #[error("transaction aborted: {0}")]
    Aborted(String),
}

impl StoreError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }
}
