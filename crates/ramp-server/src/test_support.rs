//! Helpers the crate's unit tests share (the flag service's and the incident API's).

/// A fresh directory under the system temp dir, removed on drop; `tag` names the test in the
/// directory's name, for whoever finds one left behind.
pub(crate) fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ramp-server-test-{tag}-"))
        .tempdir()
        .unwrap()
}
