//! The evaluation context every protocol builds from a request.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Lays static context values over a request's context: a configured key replaces the caller's,
/// as flagd merges `--context-value`. One rule for every protocol that takes a context.
pub(crate) fn overlay_context_values(
    context: &mut Map<String, Value>,
    context_values: &Map<String, Value>,
) {
    context.extend(
        context_values
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );
}

/// The Unix time in seconds that rules read as `$flagd.timestamp`; a clock before 1970 reads 0.
pub(crate) fn now_unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
