//! File-system events for the directories that hold flag files (inotify on Linux).
//!
//! Directories are watched rather than the files: editors and `mv`-based writers replace a
//! file's inode, and a Kubernetes ConfigMap swaps a `..data` symlink next to the file, none of
//! which a watch on the old inode would see. Which events concern which file is decided by the
//! [`FileWatcher`](super::FileWatcher); this side only forwards them, batched.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// What a batch of events touched.
#[derive(Debug, Default)]
pub(super) struct Touched {
    /// Paths named by the events (entries of the watched directories, or a directory itself).
    pub(super) paths: Vec<PathBuf>,
    /// Events were lost (the kernel queue overflowed, or the watcher reported an error): any
    /// file may have changed.
    pub(super) everything: bool,
}

impl Touched {
    fn merge(&mut self, other: Touched) {
        self.paths.extend(other.paths);
        self.everything |= other.everything;
    }
}

/// A live watch on some directories; events stop when it is dropped.
#[derive(Debug)]
pub(super) struct DirectoryEvents {
    /// Kept for its side effect: dropping it ends the watch.
    _watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<Touched>,
}

impl DirectoryEvents {
    /// Watches each of `directories` (not recursively). Fails when the kernel refuses, e.g.
    /// at the inotify instance or watch limits.
    pub(super) fn watch(directories: &[PathBuf]) -> notify::Result<DirectoryEvents> {
        let (sender, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            if let Some(touched) = touched_by(event) {
                // The receiver is gone only while the watch is being dropped.
                let _ = sender.send(touched);
            }
        })?;
        for directory in directories {
            watcher.watch(directory, RecursiveMode::NonRecursive)?;
        }
        Ok(DirectoryEvents {
            _watcher: watcher,
            events,
        })
    }

    /// Waits for the next event, then takes every event already queued with it, so a burst
    /// (a write in several chunks, a rename's two halves) is handled once. `None` means the
    /// watcher stopped and no more events will come.
    pub(super) async fn next_batch(&mut self) -> Option<Touched> {
        let mut batch = self.events.recv().await?;
        while let Ok(more) = self.events.try_recv() {
            batch.merge(more);
        }
        Some(batch)
    }
}

/// The paths an event names, or `None` for events that cannot mean a change. Opening a file
/// is ignored: the watcher's own reads would otherwise wake it up again.
fn touched_by(event: notify::Result<notify::Event>) -> Option<Touched> {
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!("flag file watcher: {error}; re-checking every file");
            return Some(Touched {
                paths: Vec::new(),
                everything: true,
            });
        }
    };
    if event.need_rescan() {
        return Some(Touched {
            paths: event.paths,
            everything: true,
        });
    }
    match event.kind {
        EventKind::Access(AccessKind::Open(_) | AccessKind::Close(AccessMode::Read)) => None,
        _ if event.paths.is_empty() => None,
        _ => Some(Touched {
            paths: event.paths,
            everything: false,
        }),
    }
}

/// Where an event's path lies relative to a watched directory.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Place<'a> {
    /// The directory itself (moved or removed).
    Directory,
    /// An entry of the directory, by name.
    Entry(&'a OsStr),
    /// Anywhere else.
    Elsewhere,
}

pub(super) fn place<'a>(path: &'a Path, directory: &Path) -> Place<'a> {
    if path == directory {
        return Place::Directory;
    }
    match path.file_name() {
        Some(name) if path.parent() == Some(directory) => Place::Entry(name),
        _ => Place::Elsewhere,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, Flag, ModifyKind, RenameMode};

    fn event(kind: EventKind, path: &str) -> notify::Result<notify::Event> {
        Ok(notify::Event::new(kind).add_path(PathBuf::from(path)))
    }

    #[test]
    fn reads_by_anyone_are_not_changes() {
        let open = event(EventKind::Access(AccessKind::Open(AccessMode::Any)), "/d/f");
        assert!(touched_by(open).is_none());
        let closed = event(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            "/d/f",
        );
        assert!(touched_by(closed).is_none());
        let written = event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            "/d/f",
        );
        assert_eq!(
            touched_by(written).map(|t| t.paths),
            Some(vec![PathBuf::from("/d/f")])
        );
    }

    #[test]
    fn lost_events_and_errors_mean_everything() {
        let overflow = Ok(notify::Event::new(EventKind::Other).set_flag(Flag::Rescan));
        assert!(touched_by(overflow).is_some_and(|t| t.everything));
        let error = Err(notify::Error::generic("queue broken"));
        assert!(touched_by(error).is_some_and(|t| t.everything));
        let created = event(EventKind::Create(CreateKind::File), "/d/f");
        assert!(touched_by(created).is_some_and(|t| !t.everything));
    }

    #[test]
    fn batches_merge_paths_and_the_everything_flag() {
        let mut batch = Touched {
            paths: vec![PathBuf::from("/d/a")],
            everything: false,
        };
        batch.merge(Touched {
            paths: vec![PathBuf::from("/d/b")],
            everything: true,
        });
        assert_eq!(batch.paths.len(), 2);
        assert!(batch.everything);
    }

    #[test]
    fn paths_are_placed_by_directory_and_entry_name() {
        let dir = Path::new("/etc/flags");
        assert_eq!(
            place(Path::new("/etc/flags/flags.json"), dir),
            Place::Entry(OsStr::new("flags.json"))
        );
        assert_eq!(place(dir, dir), Place::Directory);
        assert_eq!(
            place(Path::new("/etc/other/flags.json"), dir),
            Place::Elsewhere
        );
        assert_eq!(
            place(Path::new("/etc/flags/sub/flags.json"), dir),
            Place::Elsewhere
        );
        let rename = ModifyKind::Name(RenameMode::Both);
        let both = notify::Event::new(EventKind::Modify(rename))
            .add_path(PathBuf::from("/etc/flags/..data_tmp"))
            .add_path(PathBuf::from("/etc/flags/..data"));
        let touched = touched_by(Ok(both)).expect("a rename is a change");
        assert!(
            touched
                .paths
                .iter()
                .any(|path| place(path, dir) == Place::Entry(OsStr::new("..data")))
        );
    }
}
