//! Flag files as sources: loaded at start, polled for edits, each valid edit swapped in whole.
//!
//! Polling rather than inotify: editors and config-management tools replace files in ways
//! (rename over, truncate then write, bind mounts) that event APIs report inconsistently, and a
//! `stat` a few times a second is cheap. The content is hashed so a touch without an edit does
//! not count as a change, and re-read now and then in case an edit kept both size and mtime.

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ramp_flags::model::{FlagFile, Format, ModelErrors};

use crate::change::ChangeNotice;
use crate::source::FlagSource;

/// How often [`FileWatcher::run`] is usually asked to poll: edits show within a fifth of a
/// second, and a few `stat` calls a second cost nothing measurable.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(200);

/// Every this many polls a file is re-read even if `stat` shows no change (an in-place edit of
/// the same size within the timestamp granularity); at [`WATCH_INTERVAL`] that is once a second.
const FULL_READ_EVERY_POLLS: u32 = 5;

/// Why a flag file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason (part of the message, so not a separate source).
        error: std::io::Error,
    },
    /// The file does not parse or validate; every problem names its JSON path.
    #[error("{}: {errors}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The problems found.
        errors: ModelErrors,
    },
}

/// Reads and validates one flag file; the syntax follows the extension (`.json`, `.yaml`,
/// `.yml`), or the content when the extension says nothing.
pub fn load_file(path: &Path) -> Result<FlagFile, LoadError> {
    let text = read(path)?;
    parse(path, &text)
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|error| LoadError::Read {
        path: path.to_owned(),
        error,
    })
}

fn parse(path: &Path, text: &str) -> Result<FlagFile, LoadError> {
    let format = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(Format::from_file_name)
        .unwrap_or(Format::Auto);
    FlagFile::parse(text, format).map_err(|errors| LoadError::Invalid {
        path: path.to_owned(),
        errors,
    })
}

fn content_hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// What `stat` says about a file; a difference means "read it again". The inode is part of it
/// because file timestamps are coarse (a few milliseconds): a same-size file renamed over the
/// old one within that window differs only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

/// One watched file and what was last seen of it.
#[derive(Debug)]
struct WatchedFile {
    path: PathBuf,
    /// The source name in the store (the path as given, which `source=<path>` selects).
    name: String,
    stamp: Option<Stamp>,
    /// Hash of the last content handled, accepted or refused, so one bad edit is reported once.
    content: u64,
    /// The last read failure reported, so a missing file is not reported on every poll.
    read_failure: Option<String>,
}

/// Keeps a [`FlagSource`] in step with a list of flag files (later files win on duplicate keys).
#[derive(Debug)]
pub struct FileWatcher {
    source: Arc<FlagSource>,
    files: Vec<WatchedFile>,
    polls: u32,
}

impl FileWatcher {
    /// Loads every file into `source` and marks it ready. Nothing is loaded unless every file
    /// reads and validates: the first failure is returned.
    pub fn load(source: Arc<FlagSource>, paths: &[PathBuf]) -> Result<FileWatcher, LoadError> {
        let mut loaded = Vec::with_capacity(paths.len());
        for path in paths {
            let before = stamp(path);
            let text = read(path)?;
            let file = parse(path, &text)?;
            let watched = WatchedFile {
                path: path.clone(),
                name: path.display().to_string(),
                stamp: before,
                content: content_hash(&text),
                read_failure: None,
            };
            loaded.push((watched, file));
        }
        let mut files = Vec::with_capacity(loaded.len());
        for (watched, file) in loaded {
            let flags = file.len();
            source.put_source(&watched.name, file);
            tracing::info!(file = %watched.path.display(), flags, "flag file loaded");
            files.push(watched);
        }
        source.mark_ready();
        Ok(FileWatcher {
            source,
            files,
            polls: 0,
        })
    }

    /// The source this watcher updates.
    pub fn source(&self) -> &Arc<FlagSource> {
        &self.source
    }

    /// Checks every file once; a changed file that validates replaces its flags, one that does
    /// not is refused (logged, counted) and the previous flags keep serving. Returns what
    /// happened to each file that changed.
    pub fn poll(&mut self) -> Vec<Result<Arc<ChangeNotice>, LoadError>> {
        self.polls = self.polls.wrapping_add(1);
        let full_read = self.polls.is_multiple_of(FULL_READ_EVERY_POLLS);
        let mut outcomes = Vec::new();
        for file in &mut self.files {
            if let Some(outcome) = poll_file(&self.source, file, full_read) {
                outcomes.push(outcome);
            }
        }
        outcomes
    }

    /// Polls every `every` until `shutdown` completes. File reads and parsing run on the
    /// blocking pool so a large file never stalls request handling.
    pub async fn run(mut self, every: Duration, shutdown: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut shutdown => return,
            }
            let polled = tokio::task::spawn_blocking(move || {
                self.poll();
                self
            })
            .await;
            match polled {
                Ok(watcher) => self = watcher,
                Err(error) => {
                    tracing::error!("flag file watcher stopped: {error}");
                    return;
                }
            }
        }
    }
}

fn poll_file(
    source: &FlagSource,
    file: &mut WatchedFile,
    full_read: bool,
) -> Option<Result<Arc<ChangeNotice>, LoadError>> {
    let now = stamp(&file.path);
    if now == file.stamp && now.is_some() && !full_read {
        return None;
    }
    file.stamp = now;
    let text = match read(&file.path) {
        Ok(text) => text,
        Err(error) => {
            let message = error.to_string();
            if file.read_failure.as_deref() == Some(message.as_str()) {
                return None;
            }
            tracing::error!("flag file refused, the previous flags keep serving: {message}");
            source.record_reload_failure();
            file.read_failure = Some(message);
            return Some(Err(error));
        }
    };
    file.read_failure = None;
    let hash = content_hash(&text);
    if hash == file.content {
        return None;
    }
    file.content = hash;
    match parse(&file.path, &text) {
        Ok(flags) => {
            let count = flags.len();
            let notice = source.put_source(&file.name, flags);
            tracing::info!(
                file = %file.path.display(),
                flags = count,
                changed = notice.flags.len(),
                generation = notice.generation,
                "flag file reloaded"
            );
            Some(Ok(notice))
        }
        Err(error) => {
            tracing::error!("flag file refused, the previous flags keep serving: {error}");
            source.record_reload_failure();
            Some(Err(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramp_flags::resolve::ValueType;
    use serde_json::{Map, Value, json};

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> TempDir {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let path = std::env::temp_dir()
                .join(format!("ramp-flagd-{label}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn flag_json(value: &str) -> String {
        format!(
            r#"{{"flags":{{"color":{{"state":"ENABLED","variants":{{"v":"{value}"}},"defaultVariant":"v"}}}}}}"#
        )
    }

    fn served(source: &FlagSource) -> Option<Value> {
        source
            .current()
            .evaluate("color", &Map::new(), ValueType::Any, 0)
            .value
    }

    #[test]
    fn valid_edits_swap_in_and_invalid_ones_keep_the_last_good_flags() {
        let dir = TempDir::new("watch");
        let path = dir.0.join("flags.json");
        std::fs::write(&path, flag_json("red")).unwrap();
        let source = Arc::new(FlagSource::new());
        let mut watcher =
            FileWatcher::load(Arc::clone(&source), std::slice::from_ref(&path)).unwrap();
        assert!(source.is_ready());
        assert_eq!(served(&source), Some(json!("red")));
        assert!(watcher.poll().is_empty(), "nothing changed yet");

        std::fs::write(&path, flag_json("blue-ish")).unwrap();
        let outcomes = watcher.poll();
        assert_eq!(outcomes.len(), 1);
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        assert_eq!(served(&source), Some(json!("blue-ish")));

        let broken = r#"{"flags":{"color":{"state":"ENABLED","variants":{"v":"x"},"defaultVariant":"nope"}}}"#;
        std::fs::write(&path, broken).unwrap();
        let outcomes = watcher.poll();
        let error = outcomes[0].as_ref().unwrap_err().to_string();
        assert!(error.contains("flags.json"), "{error}");
        assert!(error.contains("$.flags['color'].defaultVariant"), "{error}");
        assert_eq!(served(&source), Some(json!("blue-ish")));
        assert_eq!(source.reload_failures(), 1);
        assert!(watcher.poll().is_empty(), "a refused edit is reported once");
    }

    #[test]
    fn same_size_in_place_edits_are_found_by_the_periodic_full_read() {
        let dir = TempDir::new("same-size");
        let path = dir.0.join("flags.json");
        std::fs::write(&path, flag_json("red")).unwrap();
        let source = Arc::new(FlagSource::new());
        let mut watcher =
            FileWatcher::load(Arc::clone(&source), std::slice::from_ref(&path)).unwrap();
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, flag_json("tan")).unwrap();
        // Make the edit invisible to `stat`: same size, same inode, same mtime.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(before)
            .unwrap();
        let seen = (0..FULL_READ_EVERY_POLLS).any(|_| !watcher.poll().is_empty());
        assert!(seen, "the edit was never noticed");
        assert_eq!(served(&source), Some(json!("tan")));
    }

    #[test]
    fn later_files_win_and_yaml_is_read_by_extension() {
        let dir = TempDir::new("order");
        let first = dir.0.join("a.json");
        let second = dir.0.join("b.yaml");
        std::fs::write(&first, flag_json("red")).unwrap();
        std::fs::write(
            &second,
            "flags:\n  color:\n    state: ENABLED\n    variants: {v: green}\n    defaultVariant: v\n",
        )
        .unwrap();
        let source = Arc::new(FlagSource::new());
        FileWatcher::load(Arc::clone(&source), &[first, second]).unwrap();
        assert_eq!(served(&source), Some(json!("green")));
    }

    #[test]
    fn startup_fails_on_any_bad_file_and_loads_nothing() {
        let dir = TempDir::new("startup");
        let good = dir.0.join("good.json");
        std::fs::write(&good, flag_json("red")).unwrap();
        let missing = dir.0.join("missing.json");
        let source = Arc::new(FlagSource::new());
        let error = FileWatcher::load(Arc::clone(&source), &[good, missing]).unwrap_err();
        assert!(matches!(error, LoadError::Read { .. }));
        assert!(error.to_string().contains("missing.json"));
        assert_eq!(source.generation(), 0);
        assert!(!source.is_ready());
    }
}
