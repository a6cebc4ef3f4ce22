//! Ramp's data plane: an HTTP/1.1 and h2c reverse proxy that routes every request to a
//! revision by an immutable table swapped atomically.
//!
//! - [`Router::start`] binds a listener and runs one single-threaded runtime per core.
//! - [`Router::swap_table`] / [`Router::apply`] replace the routing table in one atomic store;
//!   readers never lock.
//! - [`Router::drain`] takes an instance out of rotation and reports when it is idle.
//! - [`Router::revision_metrics`] and [`Router::render_prometheus`] expose per-revision request
//!   counts, latency histograms and in-flight gauges; [`Router::figures`] reads all of a
//!   router's metrics as plain values, which [`exposition::render`] writes for one router or
//!   many.
//! - [`agent`] hosts routers in a long-lived process driven over a Unix socket
//!   ([`serve_agent`], [`AgentClient`]), so routing outlives the control plane.
//!
//! Routing decisions themselves live in `ramp-route`; this crate only does I/O around them.

mod admin;
pub mod agent;
mod conn;
pub mod exposition;
mod forward;
mod h2;
mod http1;
mod instances;
mod mirror;
mod pool;
mod record;
mod router;
mod shared;
mod snapshot;
mod worker;

pub use admin::{routes_json, serve_admin};
pub use agent::{AgentClient, AgentError, PutRouter, serve_agent};
pub use instances::DrainOutcome;
pub use router::{
    InstanceStatus, Router, RouterFigures, RouterOptions, ShutdownReport, UnknownInstance,
};
pub use snapshot::ProxySettings;
