//! Feature flags managed by the control plane: stored (with their audit trail) in the state
//! store, served from one [`FlagSource`] source named [`FLAG_SOURCE_NAME`] over OFREP and
//! flagd's gRPC evaluation and sync protocols, each when configured ([`FlagServers`]).
//!
//! Every change is validated by the flag engine, committed together with its audit event, and
//! then published to the source before the call returns, so an evaluation made after an API
//! call sees its effect and every subscriber (event streams, sync streams) gets a change
//! notice. Changes are published in the order they were committed.

mod definition;
mod servers;

use std::sync::{Arc, Mutex, PoisonError};

use ramp_flagd::FlagSource;
use ramp_flags::logic::LogicOptions;
use ramp_flags::model::{FlagFile, FlagState};
use ramp_store::{EventRow, FlagRow, FlagWrite, Store, StoreError, Tx};
use serde_json::{Map, Value};

use crate::error::ServerError;

pub(crate) use definition::FIELDS;
pub use definition::{MAX_KEY_LEN, valid_key};
pub(crate) use servers::{FlagListeners, FlagServers};

/// The name of the control plane's flags among a [`FlagSource`]'s sources (what a
/// `Flagd-Selector: source=control-plane` selects).
pub const FLAG_SOURCE_NAME: &str = "control-plane";

/// The control plane's flags: the store is the truth, the source what is served.
#[derive(Debug)]
pub(crate) struct FlagService {
    store: Arc<Store>,
    source: Arc<FlagSource>,
    /// Held from the start of a write until its snapshot is published, so snapshots reach the
    /// source in commit order.
    publishing: Mutex<()>,
}

impl FlagService {
    /// Serves the stored flags from a new source, ready at once. A stored flag the engine now
    /// refuses is left out (and logged) rather than keeping every other flag from serving.
    pub(crate) fn load(store: Arc<Store>) -> Result<FlagService, ServerError> {
        let source = Arc::new(FlagSource::new());
        let file = snapshot(&store.flags()?)?;
        tracing::info!(flags = file.len(), "control-plane flags loaded");
        source.put_source(FLAG_SOURCE_NAME, file);
        source.mark_ready();
        Ok(FlagService {
            store,
            source,
            publishing: Mutex::new(()),
        })
    }

    /// The source the flags are served from.
    pub(crate) fn source(&self) -> &Arc<FlagSource> {
        &self.source
    }

    pub(crate) fn list(&self) -> Result<Vec<FlagRow>, ServerError> {
        Ok(self.store.flags()?)
    }

    pub(crate) fn get(&self, key: &str) -> Result<FlagRow, ServerError> {
        check_key(key)?;
        self.store.flag(key)?.ok_or_else(|| not_found(key))
    }

    /// Creates or replaces `key` with `definition` (see [`Store::put_flag`]).
    pub(crate) fn put(
        &self,
        key: &str,
        definition: &Value,
        expected_version: Option<u64>,
        actor: &str,
    ) -> Result<FlagWrite, ServerError> {
        check_key(key)?;
        validate(key, definition)?;
        self.commit(|tx| put_in(tx, key, definition, expected_version, actor))
    }

    /// Sets the flag's `state`. Already in that state: nothing is written or recorded.
    pub(crate) fn set_state(
        &self,
        key: &str,
        state: FlagState,
        expected_version: Option<u64>,
        actor: &str,
    ) -> Result<FlagWrite, ServerError> {
        check_key(key)?;
        self.commit(|tx| {
            let current = tx.flag(key)?.ok_or_else(|| not_found(key))?;
            let mut definition = current.definition;
            if let Some(members) = definition.as_object_mut() {
                members.insert("state".to_owned(), Value::from(state.as_str()));
            }
            validate(key, &definition)?;
            put_in(tx, key, &definition, expected_version, actor)
        })
    }

    /// Deletes `key`, returning the event that records it.
    pub(crate) fn delete(
        &self,
        key: &str,
        expected_version: Option<u64>,
        actor: &str,
    ) -> Result<EventRow, ServerError> {
        check_key(key)?;
        self.commit(|tx| {
            let event = tx
                .delete_flag(key, expected_version, actor)
                .map_err(store_error)?
                .ok_or_else(|| not_found(key))?;
            Ok((event, true))
        })
    }

    /// The audit events of `key`, oldest first; also after it was deleted.
    pub(crate) fn history(&self, key: &str) -> Result<Vec<EventRow>, ServerError> {
        check_key(key)?;
        let events = self.store.flag_history(key)?;
        if events.is_empty() {
            return Err(ServerError::NotFound(format!(
                "no flag named {key:?} has ever existed"
            )));
        }
        Ok(events)
    }

    /// Runs `change` in one store transaction; when it reports a change, the flags as they are
    /// after it are compiled in the same transaction and published once it commits. A refusal
    /// from `change` rolls the transaction back and is returned as it is.
    fn commit<T>(
        &self,
        change: impl FnOnce(&Tx<'_>) -> Result<(T, bool), ServerError>,
    ) -> Result<T, ServerError> {
        let _publishing = self
            .publishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut refusal = None;
        let committed = self.store.transaction(|tx| {
            let (value, changed) = change(tx).map_err(|error| refuse(&mut refusal, error))?;
            let next = if changed {
                let file = snapshot(&tx.flags()?).map_err(|error| refuse(&mut refusal, error))?;
                Some(file)
            } else {
                None
            };
            Ok((value, next))
        });
        match committed {
            Ok((value, next)) => {
                if let Some(file) = next {
                    self.source.put_source(FLAG_SOURCE_NAME, file);
                }
                Ok(value)
            }
            Err(error) => Err(refusal.unwrap_or_else(|| store_error(error))),
        }
    }
}

/// Writes `definition` in `tx`; the flags are republished only when the write changed them.
fn put_in(
    tx: &Tx<'_>,
    key: &str,
    definition: &Value,
    expected_version: Option<u64>,
    actor: &str,
) -> Result<(FlagWrite, bool), ServerError> {
    let write = tx
        .put_flag(key, definition, expected_version, actor)
        .map_err(store_error)?;
    let changed = write.event.is_some();
    Ok((write, changed))
}

/// Keeps `error` to return once the transaction it aborts has rolled back.
fn refuse(refusal: &mut Option<ServerError>, error: ServerError) -> StoreError {
    let reason = error.to_string();
    *refusal = Some(error);
    StoreError::Aborted(reason)
}

/// The flags of `rows` compiled into one flag file. Each was validated when it was written; if
/// the engine refuses some now (it became stricter), those are left out and logged.
fn snapshot(rows: &[FlagRow]) -> Result<FlagFile, ServerError> {
    if let Ok(file) = compile(rows.iter()) {
        return Ok(file);
    }
    let servable = rows.iter().filter(|row| {
        let found = definition::problems(&row.key, &row.definition);
        for problem in &found {
            tracing::error!(flag = %row.key, "stored flag not served: {}: {}", problem.path, problem.message);
        }
        found.is_empty()
    });
    compile(servable).map_err(|errors| ServerError::Internal(errors.to_string()))
}

fn compile<'a>(
    rows: impl Iterator<Item = &'a FlagRow>,
) -> Result<FlagFile, ramp_flags::model::ModelErrors> {
    let flags: Map<String, Value> = rows
        .map(|row| (row.key.clone(), row.definition.clone()))
        .collect();
    let mut document = Map::new();
    document.insert("flags".to_owned(), Value::Object(flags));
    FlagFile::from_value(&Value::Object(document), &LogicOptions::default())
}

fn validate(key: &str, definition: &Value) -> Result<(), ServerError> {
    let problems = definition::problems(key, definition);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ServerError::InvalidFlag(problems))
    }
}

fn check_key(key: &str) -> Result<(), ServerError> {
    if definition::valid_key(key) {
        Ok(())
    } else {
        Err(ServerError::Invalid(format!(
            "{key:?} is not a flag key: use 1 to 200 ASCII letters, digits, '-', '_' and '.'"
        )))
    }
}

fn not_found(key: &str) -> ServerError {
    ServerError::NotFound(format!("no flag named {key:?}"))
}

/// A version conflict is the caller's to resolve (409); anything else is the store's failure.
fn store_error(error: StoreError) -> ServerError {
    match error {
        StoreError::FlagVersionConflict { .. } => ServerError::Conflict(error.to_string()),
        other => ServerError::Store(other),
    }
}

#[cfg(test)]
mod tests;
