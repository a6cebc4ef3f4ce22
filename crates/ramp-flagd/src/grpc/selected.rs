//! One stream's view of the flags: what its selector shows, and what changed in it since the
//! stream last looked. Source change notices only say "something changed"; each stream diffs
//! its own view, so a client hears about the flags it can see and nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use ramp_flags::model::{FlagStore, Selector};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::change::{ChangeKind, ChangeNotice, diff_views};
use crate::source::FlagSource;

/// The flags a selector shows, followed across updates.
#[derive(Debug)]
pub(super) struct SelectedView {
    source: Arc<FlagSource>,
    selector: Selector,
    seen: Arc<FlagStore>,
    notices: broadcast::Receiver<Arc<ChangeNotice>>,
}

impl SelectedView {
    /// Starts following `selector`; the current flags count as seen.
    pub(super) fn new(source: Arc<FlagSource>, selector: Selector) -> SelectedView {
        // Subscribe before taking the snapshot, so no update falls between the two.
        let notices = source.subscribe();
        let seen = Arc::clone(&source.current());
        SelectedView {
            source,
            selector,
            seen,
            notices,
        }
    }

    /// The snapshot last seen.
    pub(super) fn seen(&self) -> &FlagStore {
        &self.seen
    }

    /// The selector followed.
    pub(super) fn selector(&self) -> &Selector {
        &self.selector
    }

    /// Waits for the next update that changes a visible flag and returns what changed since
    /// the last call; `None` once the source is gone. A stream that fell behind the notices
    /// loses nothing: it diffs against the newest snapshot. Cancel-safe: the only wait is for a
    /// notice, and the view is updated only after one arrived.
    pub(super) async fn next_change(&mut self) -> Option<BTreeMap<String, ChangeKind>> {
        loop {
            match self.notices.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
            let now = Arc::clone(&self.source.current());
            let changes = diff_views(self.seen.select(&self.selector), now.select(&self.selector));
            self.seen = now;
            if !changes.is_empty() {
                return Some(changes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::test_files::flag_set;

    #[tokio::test]
    async fn reports_only_changes_the_selector_shows() {
        let source = Arc::new(FlagSource::new());
        source.put_source("a", flag_set("a", true));
        let mut view = SelectedView::new(Arc::clone(&source), Selector::FlagSet("b".into()));
        source.put_source("a", flag_set("a", false));
        source.put_source("b", flag_set("b", true));
        let changes = view.next_change().await.expect("a visible change");
        assert_eq!(
            changes,
            BTreeMap::from([("b-flag".to_owned(), ChangeKind::Write)])
        );
        assert!(view.seen().select(view.selector()).get("b-flag").is_some());
        source.remove_source("b");
        let changes = view.next_change().await.expect("a visible change");
        assert_eq!(changes.get("b-flag"), Some(&ChangeKind::Delete));
    }
}
