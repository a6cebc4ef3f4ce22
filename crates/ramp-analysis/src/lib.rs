//! Ramp's analysis: what a metric is ([`spec`]), how an Argo-style analysis run rolls
//! measurements up into a verdict ([`run`], with CEL [`condition`]s), and the judges that
//! compare a canary with its baseline: Kayenta-style [`mann_whitney`] tests with a
//! [`kayenta`] score, and Ramp's always-valid [`sequential`] test.
//!
//! Pure: no I/O, no clock. Callers pass the time and the measurements.

pub mod condition;
pub mod kayenta;
pub mod mann_whitney;
pub mod run;
pub mod sequential;
pub mod spec;
pub mod tally;
pub mod traffic;

pub use spec::*;
pub use tally::{Moments, Tally};
pub use traffic::SliceTraffic;
