//! The live flag configuration: one immutable [`FlagStore`] snapshot behind an atomic pointer.
//!
//! Evaluations load the pointer and never lock; an update builds the next snapshot aside and
//! publishes it with one atomic store, so a request sees either the old flags or the new ones,
//! never a mix. Writers (file watchers, later sync clients) serialise on a mutex of their own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, Guard};
use ramp_flags::model::{FlagFile, FlagStore};
use tokio::sync::broadcast;

use crate::change::{ChangeNotice, diff};

/// How many change notices a slow subscriber may fall behind before it misses some (it then
/// learns so from the channel and should re-read the whole configuration).
const CHANGE_BACKLOG: usize = 64;

/// The flags being served, and the stream of changes to them.
#[derive(Debug)]
pub struct FlagSource {
    store: ArcSwap<FlagStore>,
    generation: AtomicU64,
    ready: AtomicBool,
    writer: Mutex<()>,
    changes: broadcast::Sender<Arc<ChangeNotice>>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

impl Default for FlagSource {
    fn default() -> Self {
        Self::new()
    }
}

impl FlagSource {
    /// An empty source, not ready until [`mark_ready`](Self::mark_ready).
    pub fn new() -> FlagSource {
        let (changes, _) = broadcast::channel(CHANGE_BACKLOG);
        FlagSource {
            store: ArcSwap::from_pointee(FlagStore::default()),
            generation: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            writer: Mutex::new(()),
            changes,
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }
    }

    /// The current snapshot; cheap and lock-free. Hold it only for the duration of a request.
    pub fn current(&self) -> Guard<Arc<FlagStore>> {
        self.store.load()
    }

    /// Replaces (or adds, with the highest priority) the flags of source `name` and announces
    /// what changed.
    pub fn put_source(&self, name: &str, file: FlagFile) -> Arc<ChangeNotice> {
        self.update(|store| store.with_source(name, file))
    }

    /// Drops the flags of source `name` and announces what changed.
    pub fn remove_source(&self, name: &str) -> Arc<ChangeNotice> {
        self.update(|store| store.without_source(name))
    }

    /// Change notices from now on, one per accepted update (also when no visible flag changed,
    /// e.g. only metadata did).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeNotice>> {
        self.changes.subscribe()
    }

    /// The number of accepted updates so far (0 before the first load).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Declares the initial configuration complete: `/readyz` answers 200 from now on.
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether the initial configuration is loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Counts a configuration update that was refused (the previous flags kept serving).
    pub fn record_reload_failure(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Accepted updates, the initial loads included.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Refused updates.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    fn update(&self, next: impl FnOnce(&FlagStore) -> FlagStore) -> Arc<ChangeNotice> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let before = self.store.load_full();
        let after = Arc::new(next(&before));
        let flags = diff(&before, &after);
        self.store.store(after);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let notice = Arc::new(ChangeNotice { generation, flags });
        // Nobody listening is not an error: notices are for whoever subscribes.
        let _ = self.changes.send(Arc::clone(&notice));
        notice
    }
}

/// Flag files for the crate's unit tests.
#[cfg(test)]
pub(crate) mod test_files {
    use ramp_flags::model::{FlagFile, Format};

    /// One enabled boolean flag, `f`, serving `value`.
    pub(crate) fn one_flag(value: bool) -> FlagFile {
        parse(&format!(
            r#"{{"flags":{{"f":{{"state":"ENABLED","variants":{{"on":{value}}},"defaultVariant":"on"}}}}}}"#
        ))
    }

    /// Flag set `set` with one enabled boolean flag, `{set}-flag`, serving `value`.
    pub(crate) fn flag_set(set: &str, value: bool) -> FlagFile {
        parse(&format!(
            r#"{{"metadata":{{"flagSetId":"{set}"}},"flags":{{"{set}-flag":{{"state":"ENABLED","variants":{{"on":{value}}},"defaultVariant":"on"}}}}}}"#
        ))
    }

    fn parse(text: &str) -> FlagFile {
        FlagFile::parse(text, Format::Json).expect("valid flag file")
    }
}

#[cfg(test)]
mod tests {
    use super::test_files::one_flag;
    use super::*;
    use crate::change::ChangeKind;
    use ramp_flags::resolve::ValueType;
    use serde_json::{Map, json};

    #[test]
    fn updates_are_visible_to_new_readers_and_announced() {
        let source = FlagSource::new();
        let mut changes = source.subscribe();
        let first = source.put_source("a", one_flag(true));
        assert_eq!(first.generation, 1);
        assert_eq!(first.flags.get("f"), Some(&ChangeKind::Write));
        let held = source.current();
        source.put_source("a", one_flag(false));
        let value = |store: &FlagStore| store.evaluate("f", &Map::new(), ValueType::Any, 0).value;
        assert_eq!(value(&held), Some(json!(true)), "a held snapshot is stable");
        assert_eq!(value(&source.current()), Some(json!(false)));
        assert_eq!(source.generation(), 2);
        assert_eq!(changes.try_recv().expect("first notice").generation, 1);
        let second = changes.try_recv().expect("second notice");
        assert_eq!(second.flags.get("f"), Some(&ChangeKind::Update));
        let removed = source.remove_source("a");
        assert_eq!(removed.flags.get("f"), Some(&ChangeKind::Delete));
        assert_eq!(source.reloads(), 3);
    }

    #[test]
    fn readiness_is_explicit() {
        let source = FlagSource::new();
        source.put_source("a", one_flag(true));
        assert!(!source.is_ready());
        source.mark_ready();
        assert!(source.is_ready());
    }
}
