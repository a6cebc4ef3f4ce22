//! Helpers for the unit tests.

use crate::NewEvent;

/// A fresh directory under the system temp dir, removed on drop; `tag` names the test in the
/// directory's name, for whoever finds one left behind. (Objects are read-only files, but
/// removal only needs the directories writable.)
pub(crate) fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ramp-store-test-{tag}-"))
        .tempdir()
        .unwrap()
}

/// An event of `service` with kind `kind`.
pub(crate) fn event(service: &str, kind: &str) -> NewEvent {
    NewEvent {
        actor: "test".into(),
        service: Some(service.into()),
        kind: kind.into(),
        message: format!("message of {kind}"),
        data: serde_json::json!({ "kind": kind }),
    }
}
