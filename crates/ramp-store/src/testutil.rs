//! Helpers for the unit tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::NewEvent;

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "ramp-store-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Objects are read-only files, but removal only needs the directories writable.
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
