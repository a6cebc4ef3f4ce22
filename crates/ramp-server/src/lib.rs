//! Ramp's control plane.
//!
//! [`Server::start`] opens the state store in a data directory, connects to (or starts) the
//! router agent process that hosts every service's router, resumes each service where the
//! last control plane left it — adopting the instances and routes that kept serving — and
//! serves the REST API. Each service has one controller task that feeds the rollout state
//! machine, persists every state before acting on it, and makes instances and routes match.
//! Feature flags managed through the API are stored with their audit trail and served from a
//! [`ramp_flagd::FlagSource`] ([`Server::flag_source`]), over OFREP and flagd's gRPC
//! evaluation and sync protocols when configured.

mod agent;
mod api;
mod config;
mod controller;
mod error;
mod flags;
pub mod measure;
mod payload;
mod server;
mod table;
#[cfg(test)]
mod test_support;

pub use api::OPENAPI;
pub use config::ServerConfig;
pub use controller::ApplyOutcome;
pub use controller::status::{
    AnalysisView, InstanceView, RolloutView, ServiceStatus, StackView, TrafficShare,
};
pub use error::ServerError;
pub use flags::{FLAG_SOURCE_NAME, MAX_KEY_LEN, valid_key};
pub use payload::Payload;
pub use server::Server;
pub use table::{ReadyInstances, build_table};
