//! [`Store`] and its connection handling; every write goes through a [`Tx`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::{self, ThreadId};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::events::{self, EventQuery, EventRow, NewEvent};
use crate::flags::{self, FlagRow, FlagWrite};
use crate::incidents::{self, IncidentRow, NewIncident};
use crate::instances::{self, InstanceRow};
use crate::objects::ObjectStore;
use crate::revisions::{self, RevisionRow};
use crate::services::{self, ServiceRow};
use crate::{StoreError, Tx, rollouts, schema};

/// How long a statement waits for another connection (another process, e.g. the CLI) to
/// release the database before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Ramp's durable state: one SQLite database plus the object store.
///
/// `Store` is `Send + Sync`; share it with an `Arc`. Calls are serialized on one connection,
/// and every write runs in an immediate (write-locked) transaction, so a read-modify-write in
/// [`Store::transaction`] cannot interleave with another writer, in this process or another.
pub struct Store {
    conn: Mutex<Connection>,
    /// The thread currently holding `conn`, so a call from inside [`Store::transaction`] on
    /// the same thread fails with [`StoreError::Reentrant`] instead of deadlocking.
    holder: Mutex<Option<ThreadId>>,
    db_path: PathBuf,
    objects: ObjectStore,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("db_path", &self.db_path)
            .field("objects", &self.objects)
            .finish_non_exhaustive()
    }
}

/// The connection, held by the current thread until dropped.
struct Held<'a> {
    conn: MutexGuard<'a, Connection>,
    holder: &'a Mutex<Option<ThreadId>>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Runs before `conn` is unlocked, so `holder` never names a thread that lacks `conn`.
        *lock(self.holder) = None;
    }
}

/// Locks a mutex, ignoring poisoning: a panic inside a transaction rolls it back as the
/// `rusqlite::Transaction` unwinds, so the connection is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// Opens (creating if needed) `<dir>/ramp.db` and `<dir>/objects/` and applies the schema.
    ///
    /// The database runs in WAL mode with `synchronous=NORMAL`: a committed transaction
    /// survives the process being killed (`kill -9`); only an OS crash or power loss may lose
    /// the last few commits, never corrupt the database. Foreign keys are on, and a statement
    /// waits up to 5 s for a lock held by another process.
    ///
    /// Fails with [`StoreError::SchemaTooNew`] if a newer Ramp wrote the database.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::io("creating directory", dir))?;
        let db_path = dir.join("ramp.db");
        let mut conn = Connection::open(&db_path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unsupported {
                path: db_path,
                reason: format!("WAL journal mode is unavailable (got {mode:?})"),
            });
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        schema::apply(&mut conn, &db_path)?;
        let objects = ObjectStore::open(dir.join("objects"))?;
        Ok(Store {
            conn: Mutex::new(conn),
            holder: Mutex::new(None),
            db_path,
            objects,
        })
    }

    /// The database file, `<dir>/ramp.db`.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The content-addressed object store, `<dir>/objects/`.
    pub fn objects(&self) -> &ObjectStore {
        &self.objects
    }

    fn hold(&self) -> Result<Held<'_>, StoreError> {
        let me = thread::current().id();
        if *lock(&self.holder) == Some(me) {
            return Err(StoreError::Reentrant);
        }
        let conn = lock(&self.conn);
        *lock(&self.holder) = Some(me);
        Ok(Held {
            conn,
            holder: &self.holder,
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let held = self.hold()?;
        f(&held.conn)
    }

    /// Runs `f` in one transaction with exclusive write access, for multi-step updates
    /// (read, decide, write): commits if `f` returns `Ok`, rolls everything back if it returns
    /// `Err` (use [`StoreError::Aborted`] for a reason of your own) or panics.
    ///
    /// Inside `f`, use the [`Tx`]: calling this `Store` from the same thread fails with
    /// [`StoreError::Reentrant`].
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut held = self.hold()?;
        let tx = Tx::new(
            held.conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?,
        );
        let value = f(&tx)?; // dropping `tx` on the error path rolls it back
        tx.commit()?;
        Ok(value)
    }

    // --- services ---

    /// Inserts or replaces a service's applied spec (the source of truth; the caller re-parses
    /// it on load). Keeps `created_at`, sets `updated_at`.
    pub fn put_service(&self, name: &str, spec_yaml: &str) -> Result<(), StoreError> {
        self.transaction(|tx| tx.put_service(name, spec_yaml))
    }

    pub fn service(&self, name: &str) -> Result<Option<ServiceRow>, StoreError> {
        self.read(|c| services::get(c, name))
    }

    /// All services, ordered by name.
    pub fn services(&self) -> Result<Vec<ServiceRow>, StoreError> {
        self.read(services::list)
    }

    /// Removes the service with its revisions, rollout state and instances; its events stay.
    /// Returns whether the service existed.
    pub fn delete_service(&self, name: &str) -> Result<bool, StoreError> {
        self.transaction(|tx| tx.delete_service(name))
    }

    // --- revisions ---

    /// Records a revision of `service`'s template: a digest seen before gets its existing row
    /// back; a new one gets the next number (1, 2, 3... per service, never reused).
    pub fn add_revision(
        &self,
        service: &str,
        digest: &str,
        template_json: &str,
    ) -> Result<RevisionRow, StoreError> {
        self.transaction(|tx| tx.add_revision(service, digest, template_json))
    }

    pub fn revision(&self, service: &str, number: u64) -> Result<Option<RevisionRow>, StoreError> {
        self.read(|c| revisions::get(c, service, number))
    }

    /// A service's revisions, by number.
    pub fn revisions(&self, service: &str) -> Result<Vec<RevisionRow>, StoreError> {
        self.read(|c| revisions::list(c, service))
    }

    /// Deletes the oldest revisions beyond the newest `keep`, never those listed in `protect`
    /// nor any that a recorded instance runs; returns the numbers deleted, ascending.
    pub fn prune_revisions(
        &self,
        service: &str,
        keep: usize,
        protect: &[u64],
    ) -> Result<Vec<u64>, StoreError> {
        self.transaction(|tx| tx.prune_revisions(service, keep, protect))
    }

    // --- rollout state ---

    /// Writes a service's rollout state (an opaque JSON document) and the event explaining the
    /// change in one transaction: either both are durable or neither is. An event without a
    /// service is recorded under `service`.
    pub fn save_state(
        &self,
        service: &str,
        state_json: &str,
        event: &NewEvent,
    ) -> Result<EventRow, StoreError> {
        self.transaction(|tx| tx.save_state(service, state_json, event))
    }

    pub fn state(&self, service: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| rollouts::get(c, service))
    }

    // --- instances ---

    /// Inserts or replaces an instance by id (its service must exist).
    pub fn put_instance(&self, row: &InstanceRow) -> Result<(), StoreError> {
        self.transaction(|tx| tx.put_instance(row))
    }

    /// Forgets an instance; forgetting an unknown id is not an error.
    pub fn remove_instance(&self, id: &str) -> Result<(), StoreError> {
        self.transaction(|tx| tx.remove_instance(id))
    }

    /// A service's instances, by id.
    pub fn instances(&self, service: &str) -> Result<Vec<InstanceRow>, StoreError> {
        self.read(|c| instances::list(c, service))
    }

    // --- events ---

    /// Appends an event to the log (which the database itself keeps append-only).
    pub fn append_event(&self, event: &NewEvent) -> Result<EventRow, StoreError> {
        self.transaction(|tx| tx.append_event(event))
    }

    /// Events matching `query`, by ascending id.
    pub fn events(&self, query: &EventQuery) -> Result<Vec<EventRow>, StoreError> {
        self.read(|c| events::list(c, query))
    }

    // --- flags ---

    pub fn flag(&self, key: &str) -> Result<Option<FlagRow>, StoreError> {
        self.read(|c| flags::get(c, key))
    }

    /// All flags, ordered by key.
    pub fn flags(&self) -> Result<Vec<FlagRow>, StoreError> {
        self.read(flags::list)
    }

    /// Creates or replaces a flag's definition and records the change (`flag.created`,
    /// `flag.updated`, or `flag.disabled` / `flag.enabled` when only `/state` changed) with a
    /// diff, in one transaction. Writing the definition it already has changes nothing and
    /// records nothing. With `expected_version`, fails with [`StoreError::FlagVersionConflict`]
    /// unless the flag is at that version (0: does not exist).
    pub fn put_flag(
        &self,
        key: &str,
        definition: &serde_json::Value,
        expected_version: Option<u64>,
        actor: &str,
    ) -> Result<FlagWrite, StoreError> {
        self.transaction(|tx| tx.put_flag(key, definition, expected_version, actor))
    }

    /// Deletes a flag and records `flag.deleted` in one transaction; `None` if there is no such
    /// flag. `expected_version` as for [`Store::put_flag`].
    pub fn delete_flag(
        &self,
        key: &str,
        expected_version: Option<u64>,
        actor: &str,
    ) -> Result<Option<EventRow>, StoreError> {
        self.transaction(|tx| tx.delete_flag(key, expected_version, actor))
    }

    /// A flag's audit events, oldest first (kept after the flag is deleted).
    pub fn flag_history(&self, key: &str) -> Result<Vec<EventRow>, StoreError> {
        self.read(|c| flags::history(c, key))
    }

    // --- incidents ---

    /// Records an incident (append-only; it outlives its service). To record it together
    /// with the rollout state that rolled back, use [`Tx::add_incident`].
    pub fn add_incident(&self, incident: &NewIncident) -> Result<IncidentRow, StoreError> {
        self.transaction(|tx| tx.add_incident(incident))
    }

    pub fn incident(&self, id: u64) -> Result<Option<IncidentRow>, StoreError> {
        self.read(|c| incidents::get(c, id))
    }

    /// The newest `limit` incidents, of one service or of all, newest first.
    pub fn incidents(
        &self,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        self.read(|c| incidents::list(c, service, limit))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Store;
    use crate::testutil::{event, temp_dir};
    use crate::{EventQuery, SCHEMA_VERSION, StoreError};

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }

    #[test]
    fn open_twice_keeps_data() {
        let dir = temp_dir("db-reopen");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "replicas: 2").unwrap();
        store.add_revision("web", "d1", "{}").unwrap();
        store
            .save_state("web", r#"{"phase":"canary"}"#, &event("web", "step"))
            .unwrap();
        let digest = store.objects().put_bytes(b"binary", true).unwrap();
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.service("web").unwrap().unwrap().spec_yaml,
            "replicas: 2"
        );
        assert_eq!(store.revisions("web").unwrap().len(), 1);
        assert_eq!(
            store.state("web").unwrap().as_deref(),
            Some(r#"{"phase":"canary"}"#)
        );
        assert!(store.objects().contains(&digest));
        // Leak the connection without closing it (no checkpoint, as after `kill -9`): a
        // committed write is still there for the next open.
        store.put_service("api", "").unwrap();
        std::mem::forget(store);

        let store = Store::open(dir.path()).unwrap();
        assert!(store.service("api").unwrap().is_some());
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 1);
        // The event log continues where it was, ids are not reused.
        assert_eq!(store.append_event(&event("web", "again")).unwrap().id, 2);
    }

    #[test]
    fn pragmas_are_applied() {
        let dir = temp_dir("db-pragmas");
        let store = Store::open(dir.path()).unwrap();
        let held = store.hold().unwrap();
        let get = |name: &str| -> String {
            held.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert!(
            get("journal_mode").contains("wal"),
            "{}",
            get("journal_mode")
        );
        assert_eq!(get("synchronous"), "Integer(1)"); // NORMAL
        assert_eq!(get("foreign_keys"), "Integer(1)");
        assert_eq!(get("busy_timeout"), "Integer(5000)");
    }

    #[test]
    fn newer_schema_is_refused_with_both_versions() {
        let dir = temp_dir("db-schema");
        drop(Store::open(dir.path()).unwrap());
        let raw = rusqlite::Connection::open(dir.path().join("ramp.db")).unwrap();
        raw.execute(
            "UPDATE meta SET value = '7' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(raw);
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SchemaTooNew {
                    found: 7,
                    supported: SCHEMA_VERSION,
                    ..
                }
            ),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("version 7") && message.contains(&format!("version {SCHEMA_VERSION}")),
            "{message}"
        );
    }

    #[test]
    fn calling_the_store_inside_a_transaction_fails_instead_of_deadlocking() {
        let dir = temp_dir("db-reentrant");
        let store = Store::open(dir.path()).unwrap();
        let inner = store.transaction(|tx| {
            tx.put_service("web", "")?;
            Ok(store.service("web"))
        });
        assert!(matches!(inner, Ok(Err(StoreError::Reentrant))), "{inner:?}");
        // The outer transaction committed, and the store is usable afterwards.
        assert!(store.service("web").unwrap().is_some());
    }

    #[test]
    fn transaction_returns_value_and_commits_all_writes() {
        let dir = temp_dir("db-tx");
        let store = Store::open(dir.path()).unwrap();
        let number = store
            .transaction(|tx| {
                tx.put_service("web", "")?;
                let rev = tx.add_revision("web", "d1", "{}")?;
                tx.put_service("api", "replicas: 1")?;
                tx.save_state("web", "{}", &event("web", "created"))?;
                Ok(rev.number)
            })
            .unwrap();
        assert_eq!(number, 1);
        assert_eq!(store.revisions("web").unwrap().len(), 1);
        assert_eq!(
            store.service("api").unwrap().unwrap().spec_yaml,
            "replicas: 1"
        );
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 1);
    }

    #[test]
    fn concurrent_use_from_threads_and_connections() {
        let dir = temp_dir("db-threads");
        let store = Arc::new(Store::open(dir.path()).unwrap());
        store.put_service("web", "").unwrap();
        store.put_service("counter", "0").unwrap();
        // A second Store on the same directory, like the CLI next to a running server.
        let other = Arc::new(Store::open(dir.path()).unwrap());
        let per_thread = 100; // enough contention that deferred (upgrading) transactions would fail
        let handles: Vec<_> = [store.clone(), store.clone(), other.clone(), other.clone()]
            .into_iter()
            .enumerate()
            .map(|(t, s)| {
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        s.append_event(&event("web", &format!("t{t}-{i}"))).unwrap();
                        s.add_revision("web", &format!("t{t}-{i}"), "{}").unwrap();
                        // Read-modify-write of a counter (a service's spec text): must not
                        // lose updates.
                        s.transaction(|tx| {
                            let n: u64 = tx.service("counter")?.unwrap().spec_yaml.parse().unwrap();
                            tx.put_service("counter", &(n + 1).to_string())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let total = 4 * per_thread;
        let events = store.events(&EventQuery::default()).unwrap();
        assert_eq!(events.len(), total);
        assert!(events.windows(2).all(|w| w[0].id < w[1].id));
        let numbers: Vec<u64> = other
            .revisions("web")
            .unwrap()
            .iter()
            .map(|r| r.number)
            .collect();
        assert_eq!(numbers, (1..=total as u64).collect::<Vec<_>>());
        assert_eq!(
            store.service("counter").unwrap().unwrap().spec_yaml,
            total.to_string()
        );
    }
}
