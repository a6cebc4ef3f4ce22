//! [`Tx`]: the reads and writes of the store, inside one transaction. The `Store` methods are
//! built on these, so each operation's logic exists once.

use std::fmt;

use rusqlite::Transaction;

#[cfg(doc)]
use crate::Store;
use crate::events::{self, EventQuery, EventRow, NewEvent};
use crate::flags::{self, FlagRow, FlagWrite};
use crate::incidents::{self, IncidentRow, NewIncident};
use crate::instances::{self, InstanceRow};
use crate::revisions::{self, RevisionRow};
use crate::services::{self, ServiceRow};
use crate::{StoreError, rollouts};

/// An open transaction of [`Store::transaction`]: the same reads and writes as [`Store`],
/// all committed together or not at all.
pub struct Tx<'a> {
    tx: Transaction<'a>,
}

impl fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl<'a> Tx<'a> {
    pub(crate) fn new(tx: Transaction<'a>) -> Tx<'a> {
        Tx { tx }
    }

    pub(crate) fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit()?)
    }

    /// See [`Store::put_service`].
    pub fn put_service(&self, name: &str, spec_yaml: &str) -> Result<(), StoreError> {
        services::put(&self.tx, name, spec_yaml)
    }

    pub fn service(&self, name: &str) -> Result<Option<ServiceRow>, StoreError> {
        services::get(&self.tx, name)
    }

    pub fn services(&self) -> Result<Vec<ServiceRow>, StoreError> {
        services::list(&self.tx)
    }

    /// See [`Store::delete_service`].
    pub fn delete_service(&self, name: &str) -> Result<bool, StoreError> {
        services::delete(&self.tx, name)
    }

    /// See [`Store::add_revision`].
    pub fn add_revision(
        &self,
        service: &str,
        digest: &str,
        template_json: &str,
    ) -> Result<RevisionRow, StoreError> {
        revisions::add(&self.tx, service, digest, template_json)
    }

    pub fn revision(&self, service: &str, number: u64) -> Result<Option<RevisionRow>, StoreError> {
        revisions::get(&self.tx, service, number)
    }

    pub fn revisions(&self, service: &str) -> Result<Vec<RevisionRow>, StoreError> {
        revisions::list(&self.tx, service)
    }

    /// See [`Store::prune_revisions`].
    pub fn prune_revisions(
        &self,
        service: &str,
        keep: usize,
        protect: &[u64],
    ) -> Result<Vec<u64>, StoreError> {
        revisions::prune(&self.tx, service, keep, protect)
    }

    /// See [`Store::save_state`].
    pub fn save_state(
        &self,
        service: &str,
        state_json: &str,
        event: &NewEvent,
    ) -> Result<EventRow, StoreError> {
        rollouts::save(&self.tx, service, state_json, event)
    }

    pub fn state(&self, service: &str) -> Result<Option<String>, StoreError> {
        rollouts::get(&self.tx, service)
    }

    /// See [`Store::put_instance`].
    pub fn put_instance(&self, row: &InstanceRow) -> Result<(), StoreError> {
        instances::put(&self.tx, row)
    }

    /// See [`Store::remove_instance`].
    pub fn remove_instance(&self, id: &str) -> Result<(), StoreError> {
        instances::remove(&self.tx, id)
    }

    pub fn instances(&self, service: &str) -> Result<Vec<InstanceRow>, StoreError> {
        instances::list(&self.tx, service)
    }

    /// See [`Store::append_event`].
    pub fn append_event(&self, event: &NewEvent) -> Result<EventRow, StoreError> {
        events::append(&self.tx, event)
    }

    pub fn events(&self, query: &EventQuery) -> Result<Vec<EventRow>, StoreError> {
        events::list(&self.tx, query)
    }

    /// See [`Store::add_incident`].
    pub fn add_incident(&self, incident: &NewIncident) -> Result<IncidentRow, StoreError> {
        incidents::add(&self.tx, incident)
    }

    pub fn incident(&self, id: u64) -> Result<Option<IncidentRow>, StoreError> {
        incidents::get(&self.tx, id)
    }

    /// See [`Store::incidents`].
    pub fn incidents(
        &self,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        incidents::list(&self.tx, service, limit)
    }

    pub fn flag(&self, key: &str) -> Result<Option<FlagRow>, StoreError> {
        flags::get(&self.tx, key)
    }

    pub fn flags(&self) -> Result<Vec<FlagRow>, StoreError> {
        flags::list(&self.tx)
    }

    /// See [`Store::put_flag`].
    pub fn put_flag(
        &self,
        key: &str,
        definition: &serde_json::Value,
        expected_version: Option<u64>,
        actor: &str,
    ) -> Result<FlagWrite, StoreError> {
        flags::put(&self.tx, key, definition, expected_version, actor)
    }

    /// See [`Store::delete_flag`].
    pub fn delete_flag(
        &self,
        key: &str,
        expected_version: Option<u64>,
        actor: &str,
    ) -> Result<Option<EventRow>, StoreError> {
        flags::delete(&self.tx, key, expected_version, actor)
    }

    pub fn flag_history(&self, key: &str) -> Result<Vec<EventRow>, StoreError> {
        flags::history(&self.tx, key)
    }

    /// The raw connection, for tests that must try what the API does not allow.
    #[cfg(test)]
    pub(crate) fn connection(&self) -> &rusqlite::Connection {
        &self.tx
    }
}
