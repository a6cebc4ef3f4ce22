//! Pure routing decisions for Ramp's router.
//!
//! Given an immutable [`RouteTable`] and a view of a request, [`RouteTable::decide`] says which
//! revision serves it and whether a copy is mirrored elsewhere; [`least_loaded`] picks the
//! instance inside the revision. Nothing here does I/O or knows about rollouts: the proxy crate
//! feeds it parsed headers and random words, and tests feed it plain values.

mod balance;
mod decide;
pub mod hash;
mod matcher;
mod split;
mod table;

pub use balance::least_loaded;
pub use decide::{Decision, Reason};
pub use matcher::{Condition, FullMatch, RequestView, Source, ValueMatch, all_hold, find_cookie};
pub use split::{Share, WeightedSplit};
pub use table::{
    MAX_NAME_LEN, MirrorSpec, RevisionSpec, RouteTable, RuleSpec, TableError, TableSpec,
};
