//! The flag servers around the pure [`ramp_flags`] engine: where flags come from and how clients
//! reach them, wire-compatible with flagd so its OpenFeature providers work unchanged.
//!
//! - [`FlagSource`] holds the live [`FlagStore`](ramp_flags::model::FlagStore) behind an atomic
//!   pointer (evaluations never lock) and announces every change to subscribers.
//! - [`FileWatcher`] loads flag files into a source and swaps in each valid edit; an edit that
//!   does not parse or validate is refused and the last good flags keep serving.
//! - [`grpc`] serves flagd's gRPC protocols: evaluation v1 and v2 with change event streams
//!   (flagd's port 8013), and flag sync for in-process providers (8015).
//! - [`ofrep`] serves the OpenFeature Remote Evaluation Protocol over HTTP (8016).
//! - [`management`] serves `/healthz`, `/readyz`, `/metrics` and gRPC health on one port (8014).
//!
//! Every server evaluates with the same engine calls, reports the same reasons and metadata, and
//! counts into one [`EvaluationMetrics`].

mod auth;
mod change;
mod context;
mod files;
pub mod grpc;
pub mod management;
mod metrics;
pub mod ofrep;
mod source;

pub use change::{ChangeKind, ChangeNotice};
pub use files::{FileWatcher, LoadError, WATCH_INTERVAL, load_file};
pub use metrics::EvaluationMetrics;
pub use source::FlagSource;
