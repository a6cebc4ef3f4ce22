//! A flagd-compatible feature-flag engine, usable in-process: flag files (JSON or YAML) are
//! parsed and validated ([`model`]), every targeting rule is compiled once ([`logic`]) and then
//! evaluated without re-reading JSON ([`resolve`]).
//!
//! Pure: no I/O, no clock (the caller passes the time for `$flagd.timestamp`).

pub mod governance;
pub mod logic;
pub mod model;
pub mod resolve;
