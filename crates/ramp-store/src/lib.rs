//! Ramp's durable state.
//!
//! Everything the control plane must remember across a `kill -9` lives here: the applied
//! service specs, the numbered revisions of each service, the rollout state machine of each
//! service, the instances that run (so a restarted control plane can adopt them), the feature
//! flags managed through the API, an append-only event log (which is also the flags' audit
//! trail) and the append-only incident records of rolled-back rollouts — all
//! in one SQLite database,
//! `<dir>/ramp.db` — plus a content-addressed [`ObjectStore`] under `<dir>/objects/` that keeps
//! every revision's files runnable after the files on disk change.
//!
//! The rule the rest of Ramp relies on: every state change is persisted before it is acted on,
//! and the event explaining it is written in the same transaction ([`Store::save_state`],
//! [`Store::transaction`]).

mod db;
mod error;
mod events;
mod flags;
mod incidents;
mod instances;
mod objects;
mod revisions;
mod rollouts;
mod schema;
mod services;
mod sql;
mod time;
mod tx;

#[cfg(test)]
mod testutil;

pub use db::Store;
pub use error::StoreError;
pub use events::{EventQuery, EventRow, NewEvent};
pub use flags::{FlagEventKind, FlagRow, FlagWrite};
pub use incidents::{IncidentRow, NewIncident};
pub use instances::InstanceRow;
pub use objects::ObjectStore;
pub use revisions::RevisionRow;
pub use schema::SCHEMA_VERSION;
pub use services::ServiceRow;
pub use time::Timestamp;
pub use tx::Tx;
