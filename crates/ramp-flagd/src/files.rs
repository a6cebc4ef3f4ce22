//! Flag files as sources: loaded at start, watched for edits, each valid edit swapped in whole.
//!
//! Edits are noticed from file-system events on the files' directories ([`events`]), so one is
//! served within milliseconds. An event only says "look again": whether anything changed is
//! decided by comparing `stat` (mtime, size, inode) and a hash of the content with what was last
//! seen, so a touch without an edit is no change. A periodic poll stays as a safety net for
//! filesystems that send no events (NFS, some FUSE mounts) and for symlink layouts the event
//! filter does not follow; when the directories cannot be watched at all (inotify limits),
//! polling alone does the job, every [`FileWatcher::POLL_ONLY_INTERVAL`].
//!
//! A writer that is not atomic (truncate, then write in chunks) shows half-written files, and
//! its first chunk's event finds a file that does not parse. Reporting that as a refused edit
//! would be a false alarm, so failing content is refused only once it has stood unchanged for
//! [`FileWatcher::SETTLE_DELAY`]: the last good flags serve meanwhile, and the completed file is
//! accepted as soon as its last chunk's event arrives. A partial file that happens to be valid
//! (YAML cut at a line end) is served like any valid edit; writing a sibling file and renaming
//! it over the old one rules that out.
//!
//! Rules are compiled with the [`LogicOptions`] the watcher was loaded with, at start and at
//! every reload alike, so an edit never changes how `fractional` buckets.

mod events;

use std::collections::hash_map::DefaultHasher;
use std::ffi::OsString;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ramp_flags::logic::LogicOptions;
use ramp_flags::model::{FlagFile, Format, ModelErrors};

use crate::change::ChangeNotice;
use crate::source::FlagSource;
use events::{DirectoryEvents, Place, Touched};

/// The safety-net poll [`FileWatcher::run`] is usually given: file events carry the edits, and
/// this catches what they miss (filesystems without events) within a second.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Every this many polls a file is re-read even if `stat` shows no change (an in-place edit of
/// the same size within the timestamp granularity). Events catch such edits where they work; when
/// polling alone, at [`FileWatcher::POLL_ONLY_INTERVAL`], this is once a second.
const FULL_READ_EVERY_POLLS: u32 = 5;

/// What one check of a changed file led to: the change published, or why the file was refused.
type Outcome = Result<Arc<ChangeNotice>, LoadError>;

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
    parse(path, &text, &LogicOptions::default())
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|error| LoadError::Read {
        path: path.to_owned(),
        error,
    })
}

fn parse(path: &Path, text: &str, options: &LogicOptions) -> Result<FlagFile, LoadError> {
    let format = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(Format::from_file_name)
        .unwrap_or(Format::Auto);
    FlagFile::parse_with(text, format, options).map_err(|errors| LoadError::Invalid {
        path: path.to_owned(),
        errors,
    })
}

fn content_hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Tells a read failure apart from other read failures and from any content.
fn read_failure_hash(message: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    "read failure".hash(&mut hasher);
    message.hash(&mut hasher);
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

/// The first entry of a symlink's relative target (`..data` for a Kubernetes ConfigMap's
/// `flags.json -> ..data/flags.json`): replacing that entry changes what the file reads.
fn link_entry(path: &Path) -> Option<OsString> {
    let target = std::fs::read_link(path).ok()?;
    match target
        .components()
        .find(|part| part != &Component::CurDir)?
    {
        Component::Normal(first) => Some(first.to_owned()),
        _ => None,
    }
}

/// Failing content seen right after a change, not refused yet: it may be a write in progress.
#[derive(Debug, Clone, Copy)]
struct Unsettled {
    /// The content's hash, or the read failure's.
    fingerprint: u64,
    since: Instant,
}

/// One watched file and what was last seen of it.
#[derive(Debug)]
struct WatchedFile {
    path: PathBuf,
    /// The source name in the store (the path as given, which `source=<path>` selects).
    name: String,
    /// The file's directory, absolute, as event paths name it.
    directory: PathBuf,
    /// The file's entry in `directory`.
    entry: OsString,
    /// See [`link_entry`]; re-read at every check, since the link itself may be replaced.
    link_entry: Option<OsString>,
    stamp: Option<Stamp>,
    /// Hash of the last content handled, accepted or refused, so one bad edit is reported once.
    content: u64,
    /// The last read failure reported, so a missing file is not reported on every poll.
    read_failure: Option<String>,
    unsettled: Option<Unsettled>,
}

impl WatchedFile {
    fn new(path: &Path, stamp: Option<Stamp>, content: u64) -> WatchedFile {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let entry = absolute.file_name().map(OsString::from).unwrap_or_default();
        let directory = absolute.parent().unwrap_or(&absolute).to_owned();
        WatchedFile {
            path: path.to_owned(),
            name: path.display().to_string(),
            directory,
            entry,
            link_entry: link_entry(path),
            stamp,
            content,
            read_failure: None,
            unsettled: None,
        }
    }

    /// Whether an event on `path` may have changed this file: its own entry, the entry its
    /// symlink goes through, or its directory itself.
    fn concerned_by(&self, path: &Path) -> bool {
        match events::place(path, &self.directory) {
            Place::Directory => true,
            Place::Entry(name) => name == self.entry || self.link_entry.as_deref() == Some(name),
            Place::Elsewhere => false,
        }
    }

    fn touched(&self, touched: &Touched) -> bool {
        touched.everything || touched.paths.iter().any(|path| self.concerned_by(path))
    }

    /// When failing content has stood long enough to be refused.
    fn settles_at(&self) -> Option<Instant> {
        self.unsettled
            .map(|seen| seen.since + FileWatcher::SETTLE_DELAY)
    }
}

/// How a check treats a file that fails to read or validate.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// Refused when first seen.
    AtOnce,
    /// Refused once the same failure has stood for [`FileWatcher::SETTLE_DELAY`]; the check
    /// runs at the given time.
    WhenSettled(Instant),
}

/// Why the watcher looks at its files.
#[derive(Debug)]
enum Trigger {
    /// The periodic poll.
    Poll,
    /// File events named these paths.
    Touched(Touched),
    /// A failing file's settle delay ran out.
    Settle,
}

/// Whether file events are coming.
#[derive(Debug)]
enum Events {
    /// [`FileWatcher::watch_events`] was not called yet.
    NotStarted,
    Listening(DirectoryEvents),
    /// The directories could not be watched, or the watch ended.
    Unavailable,
}

/// Keeps a [`FlagSource`] in step with a list of flag files (later files win on duplicate keys).
#[derive(Debug)]
pub struct FileWatcher {
    source: Arc<FlagSource>,
    /// How every load and reload compiles rules.
    options: LogicOptions,
    files: Vec<WatchedFile>,
    polls: u32,
    events: Events,
}

impl FileWatcher {
    /// How often files are polled when no file events come (the directories cannot be watched):
    /// edits show within a fifth of a second, and a few `stat` calls a second cost nothing.
    pub const POLL_ONLY_INTERVAL: Duration = Duration::from_millis(200);

    /// How long content that fails to read or validate must stay unchanged before it is refused
    /// (logged, counted): long enough for a writer to finish a multi-chunk write, short enough
    /// that a real mistake is reported at once.
    pub const SETTLE_DELAY: Duration = Duration::from_millis(20);

    /// Loads every file into `source` and marks it ready, compiling rules with the default
    /// [`LogicOptions`] (flagd's current `fractional` bucketing). Nothing is loaded unless every
    /// file reads and validates: the first failure is returned.
    pub fn load(source: Arc<FlagSource>, paths: &[PathBuf]) -> Result<FileWatcher, LoadError> {
        Self::load_with(source, paths, LogicOptions::default())
    }

    /// Like [`load`](Self::load), compiling rules with `options`; every later reload uses the
    /// same options.
    pub fn load_with(
        source: Arc<FlagSource>,
        paths: &[PathBuf],
        options: LogicOptions,
    ) -> Result<FileWatcher, LoadError> {
        let mut loaded = Vec::with_capacity(paths.len());
        for path in paths {
            let before = stamp(path);
            let text = read(path)?;
            let file = parse(path, &text, &options)?;
            loaded.push((WatchedFile::new(path, before, content_hash(&text)), file));
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
            options,
            files,
            polls: 0,
            events: Events::NotStarted,
        })
    }

    /// The source this watcher updates.
    pub fn source(&self) -> &Arc<FlagSource> {
        &self.source
    }

    /// How this watcher compiles rules.
    pub fn options(&self) -> LogicOptions {
        self.options
    }

    /// Starts listening for file events on the files' directories, then checks every file once
    /// to catch edits made since loading: from its return on, every edit is seen, by an event
    /// that [`run`](Self::run) handles. `run` calls it if it was not called. Returns whether
    /// events are coming: when the directories cannot be watched, a warning is logged and `run`
    /// polls every [`POLL_ONLY_INTERVAL`](Self::POLL_ONLY_INTERVAL) instead.
    pub fn watch_events(&mut self) -> bool {
        if matches!(self.events, Events::NotStarted) {
            self.events = match DirectoryEvents::watch(&self.directories()) {
                Ok(events) => Events::Listening(events),
                Err(error) => {
                    tracing::warn!(
                        "cannot watch the flag files' directories ({error}); polling every {:?} \
                         instead",
                        Self::POLL_ONLY_INTERVAL
                    );
                    Events::Unavailable
                }
            };
            self.check(|_| true, true, Refusal::WhenSettled(Instant::now()));
        }
        matches!(self.events, Events::Listening(_))
    }

    /// Checks every file once; a changed file that validates replaces its flags, one that does
    /// not is refused (logged, counted) and the previous flags keep serving. Returns what
    /// happened to each file that changed.
    pub fn poll(&mut self) -> Vec<Outcome> {
        let full_read = self.count_poll();
        self.check(|_| true, full_read, Refusal::AtOnce)
    }

    /// Checks files on file events, polls every `every` as a safety net (at least every
    /// [`POLL_ONLY_INTERVAL`](Self::POLL_ONLY_INTERVAL) when no events come), and re-checks
    /// failing files when their [`SETTLE_DELAY`](Self::SETTLE_DELAY) runs out, until `shutdown`
    /// completes. File reads and parsing run on the blocking pool so a large file never stalls
    /// request handling.
    pub async fn run(mut self, every: Duration, shutdown: impl Future<Output = ()>) {
        if matches!(self.events, Events::NotStarted) {
            let started = self.on_blocking_pool(|watcher| {
                watcher.watch_events();
            });
            match started.await {
                Some(watcher) => self = watcher,
                None => return,
            }
        }
        let mut events = match std::mem::replace(&mut self.events, Events::Unavailable) {
            Events::Listening(events) => Some(events),
            Events::NotStarted | Events::Unavailable => None,
        };
        let mut tick = poll_timer(every, events.is_some());
        tokio::pin!(shutdown);
        loop {
            let settle_at = self.settle_deadline();
            // `None`: the event source ended.
            let trigger = tokio::select! {
                biased;
                () = &mut shutdown => return,
                batch = next_batch(&mut events) => batch.map(Trigger::Touched),
                () = settle_timer(settle_at) => Some(Trigger::Settle),
                _ = tick.tick() => Some(Trigger::Poll),
            };
            let Some(trigger) = trigger else {
                tracing::warn!(
                    "flag file events stopped; polling every {:?} instead",
                    Self::POLL_ONLY_INTERVAL
                );
                events = None;
                tick = poll_timer(every, false);
                continue;
            };
            if let Trigger::Touched(touched) = &trigger
                && !self.files.iter().any(|file| file.touched(touched))
            {
                // Another entry of a watched directory: nothing to read.
                continue;
            }
            match self
                .on_blocking_pool(move |watcher| {
                    watcher.handle(trigger, Instant::now());
                })
                .await
            {
                Some(watcher) => self = watcher,
                None => return,
            }
        }
    }

    /// Runs `work` on the blocking pool, where reading and parsing files stalls no request;
    /// `None` if it panicked (logged), which ends the watcher.
    async fn on_blocking_pool(
        mut self,
        work: impl FnOnce(&mut FileWatcher) + Send + 'static,
    ) -> Option<FileWatcher> {
        let done = tokio::task::spawn_blocking(move || {
            work(&mut self);
            self
        })
        .await;
        match done {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::error!("flag file watcher stopped: {error}");
                None
            }
        }
    }

    fn handle(&mut self, trigger: Trigger, now: Instant) -> Vec<Outcome> {
        let refusal = Refusal::WhenSettled(now);
        match trigger {
            // Files waiting to settle are left to their settle check.
            Trigger::Poll => {
                let full_read = self.count_poll();
                self.check(|file| file.unsettled.is_none(), full_read, refusal)
            }
            // Read even when `stat` looks the same: the event says something happened, and an
            // in-place edit may keep size and timestamp.
            Trigger::Touched(touched) => self.check(|file| file.touched(&touched), true, refusal),
            Trigger::Settle => self.check(|file| file.unsettled.is_some(), true, refusal),
        }
    }

    /// The earliest time a failing file may be refused, if one is waiting.
    fn settle_deadline(&self) -> Option<Instant> {
        self.files.iter().filter_map(WatchedFile::settles_at).min()
    }

    /// Counts a poll; returns whether this one reads every file whatever `stat` says.
    fn count_poll(&mut self) -> bool {
        self.polls = self.polls.wrapping_add(1);
        self.polls.is_multiple_of(FULL_READ_EVERY_POLLS)
    }

    fn check(
        &mut self,
        selected: impl Fn(&WatchedFile) -> bool,
        read_always: bool,
        refusal: Refusal,
    ) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for file in self.files.iter_mut().filter(|file| selected(file)) {
            if let Some(outcome) =
                check_file(&self.source, &self.options, file, read_always, refusal)
            {
                outcomes.push(outcome);
            }
        }
        outcomes
    }

    /// The files' directories, each once.
    fn directories(&self) -> Vec<PathBuf> {
        let mut directories: Vec<PathBuf> = self
            .files
            .iter()
            .map(|file| file.directory.clone())
            .collect();
        directories.sort();
        directories.dedup();
        directories
    }
}

/// The periodic poll: every `every` while events come, at least every
/// [`FileWatcher::POLL_ONLY_INTERVAL`] when polling alone. The first tick is one period away:
/// [`FileWatcher::watch_events`] already caught up with edits made since loading.
fn poll_timer(every: Duration, events: bool) -> tokio::time::Interval {
    let every = if events {
        every
    } else {
        every.min(FileWatcher::POLL_ONLY_INTERVAL)
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

async fn next_batch(events: &mut Option<DirectoryEvents>) -> Option<Touched> {
    match events {
        Some(events) => events.next_batch().await,
        None => std::future::pending().await,
    }
}

async fn settle_timer(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Looks at one file: `None` when nothing new is seen (or a failure may still settle).
fn check_file(
    source: &FlagSource,
    options: &LogicOptions,
    file: &mut WatchedFile,
    read_always: bool,
    refusal: Refusal,
) -> Option<Outcome> {
    let now = stamp(&file.path);
    if now == file.stamp && now.is_some() && !read_always {
        return None;
    }
    file.stamp = now;
    file.link_entry = link_entry(&file.path);
    let text = match read(&file.path) {
        Ok(text) => text,
        Err(error) => {
            let message = error.to_string();
            if file.read_failure.as_deref() == Some(message.as_str()) {
                return None;
            }
            return refuse(source, file, error, read_failure_hash(&message), refusal);
        }
    };
    file.read_failure = None;
    let hash = content_hash(&text);
    if hash == file.content {
        file.unsettled = None;
        return None;
    }
    match parse(&file.path, &text, options) {
        Ok(flags) => {
            file.content = hash;
            file.unsettled = None;
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
        Err(error) => refuse(source, file, error, hash, refusal),
    }
}

/// Refuses `file` (logged, counted, returned) unless the failure may be a write in progress.
fn refuse(
    source: &FlagSource,
    file: &mut WatchedFile,
    error: LoadError,
    fingerprint: u64,
    refusal: Refusal,
) -> Option<Outcome> {
    if let Refusal::WhenSettled(now) = refusal {
        match file.unsettled {
            Some(seen) if seen.fingerprint == fingerprint => {
                if now.saturating_duration_since(seen.since) < FileWatcher::SETTLE_DELAY {
                    return None;
                }
            }
            _ => {
                tracing::debug!("flag file not usable yet, re-checking shortly: {error}");
                file.unsettled = Some(Unsettled {
                    fingerprint,
                    since: now,
                });
                return None;
            }
        }
    }
    file.unsettled = None;
    match &error {
        LoadError::Read { .. } => file.read_failure = Some(error.to_string()),
        LoadError::Invalid { .. } => file.content = fingerprint,
    }
    tracing::error!("flag file refused, the previous flags keep serving: {error}");
    source.record_reload_failure();
    Some(Err(error))
}

#[cfg(test)]
mod tests;
