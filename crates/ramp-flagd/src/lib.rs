//! The flag servers around the pure [`ramp_flags`] engine: where flags come from and how clients
//! reach them.
//!
//! - [`FlagSource`] holds the live [`FlagStore`](ramp_flags::model::FlagStore) behind an atomic
//!   pointer (evaluations never lock) and announces every change to subscribers.
//! - [`FileWatcher`] loads flag files into a source and swaps in each valid edit; an edit that
//!   does not parse or validate is refused and the last good flags keep serving.
//! - [`ofrep`] serves the OpenFeature Remote Evaluation Protocol over HTTP.
//! - [`management`] serves `/healthz`, `/readyz` and `/metrics`.

mod change;
mod files;
pub mod management;
mod metrics;
pub mod ofrep;
mod source;

pub use change::{ChangeKind, ChangeNotice};
pub use files::{FileWatcher, LoadError, WATCH_INTERVAL, load_file};
pub use metrics::EvaluationMetrics;
pub use source::FlagSource;
