//! The propagation phase: how long a flag-file edit takes to reach subscribers.
//!
//! A temporary flag file is served by a [`FileWatcher`] into a [`FlagSource`], behind Ramp's
//! gRPC evaluation and sync servers (this process, 127.0.0.1, port 0). One `EventStream`
//! (flagd.evaluation.v2) subscriber and one `SyncFlags` subscriber are connected, on a runtime
//! of their own. Then, edit after edit, the file is replaced atomically (a new file renamed
//! over it) with the probe flag's default variant changed; the clock is read just before the
//! rename, and again by each subscriber as its notice arrives. The next edit follows once both
//! have seen the change (or the per-edit timeout passed, a miss) and a short pause.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use ramp_flagd::grpc::client::flagd::evaluation::v2;
use ramp_flagd::grpc::client::flagd::sync::v1 as sync;
use ramp_flagd::{FileWatcher, FlagSource};
use serde::Serialize;
use serde_json::Value;
use tokio::runtime::Runtime;
use tonic::Streaming;

use crate::grpc_client::{self, EvaluationClient};
use crate::grpc_server::GrpcServers;
use crate::probe_flag::{names_probe, probe_file, synced_edit};
use crate::stats::LatencySummary;

/// The phase stops early after this many edits in a row that some subscriber missed: the
/// figures would mean nothing, and each miss costs the whole timeout.
const MAX_MISSES_IN_A_ROW: usize = 5;

/// How long connecting the subscribers and their first messages may take.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How the phase runs.
#[derive(Debug, Clone)]
pub(crate) struct PropagationPlan {
    pub(crate) edits: usize,
    /// Pause after each edit's notices before the next edit.
    pub(crate) spacing: Duration,
    /// An edit not seen by a subscriber within this time is a miss for it.
    pub(crate) timeout: Duration,
    /// The interval handed to [`FileWatcher::run`].
    pub(crate) watch_interval: Duration,
    pub(crate) server_threads: usize,
    /// Where the temporary flag file lives (a directory of its own is made inside).
    pub(crate) work_dir: PathBuf,
}

/// The two kinds of subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscriber {
    EventStream,
    SyncFlags,
}

impl Subscriber {
    const ALL: [Subscriber; 2] = [Subscriber::EventStream, Subscriber::SyncFlags];

    fn index(self) -> usize {
        match self {
            Subscriber::EventStream => 0,
            Subscriber::SyncFlags => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Subscriber::EventStream => "EventStream",
            Subscriber::SyncFlags => "SyncFlags",
        }
    }
}

/// What a subscriber task reports to the editing thread.
#[derive(Debug)]
enum Notice {
    /// `subscriber` saw edit `edit` at `at`.
    Seen {
        subscriber: Subscriber,
        edit: usize,
        at: Instant,
    },
    /// The subscriber's stream ended.
    Closed {
        subscriber: Subscriber,
        reason: String,
    },
}

/// One subscriber's figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct SubscriberFigures {
    /// Edits it did not see within the timeout.
    pub(crate) misses: usize,
    #[serde(flatten)]
    pub(crate) latency: LatencySummary,
}

/// What the phase measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PropagationResults {
    /// Edits made (fewer than planned only when the phase stopped on misses).
    pub(crate) edits: usize,
    pub(crate) spacing_ms: f64,
    pub(crate) timeout_ms: f64,
    pub(crate) watch_interval_ms: f64,
    /// The larger of the two subscribers' medians and 99th percentiles: the published figures.
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    pub(crate) event_stream: SubscriberFigures,
    pub(crate) sync_flags: SubscriberFigures,
}

impl PropagationResults {
    pub(crate) fn misses(&self) -> usize {
        self.event_stream.misses + self.sync_flags.misses
    }
}

/// Runs the phase with the flags of `flag_text` (a flag file in JSON) plus the probe flag.
pub(crate) fn run(plan: &PropagationPlan, flag_text: &str) -> Result<PropagationResults, String> {
    let base: Value = serde_json::from_str(flag_text)
        .map_err(|error| format!("the flag file is not JSON: {error}"))?;
    let dir = plan.work_dir.join("propagation");
    fs::create_dir_all(&dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let outcome = run_in(plan, &base, &dir);
    let _ = fs::remove_dir_all(&dir);
    outcome
}

fn run_in(plan: &PropagationPlan, base: &Value, dir: &Path) -> Result<PropagationResults, String> {
    let flag_path = dir.join("flags.json");
    let editor = Editor {
        base,
        edits: plan.edits,
        staging: dir.join("flags.json.next"),
        target: flag_path.clone(),
    };
    editor.replace(0)?;
    let source = Arc::new(FlagSource::new());
    let watcher = FileWatcher::load(Arc::clone(&source), &[flag_path])
        .map_err(|error| format!("the watcher refused the probe file: {error}"))?;
    let servers = GrpcServers::start(&source, plan.server_threads, true)?;
    servers.watch(watcher, plan.watch_interval);

    let current_edit = Arc::new(AtomicUsize::new(0));
    let (sender, notices) = mpsc::channel();
    let subscribers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("propagation-subscribers")
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the subscriber runtime: {error}"))?;
    subscribe(&subscribers, &servers, Arc::clone(&current_edit), &sender)?;
    drop(sender);
    eprintln!(
        "[bench] propagation: {} edits, {} ms apart",
        plan.edits,
        plan.spacing.as_millis()
    );

    let mut latencies: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut misses = [0usize; 2];
    let mut missed_in_a_row = 0;
    let mut made = 0;
    for edit in 1..=plan.edits {
        current_edit.store(edit, Ordering::SeqCst);
        let before = editor.replace(edit)?;
        let seen = await_notices(&notices, edit, before, plan.timeout)?;
        made = edit;
        for subscriber in Subscriber::ALL {
            match seen[subscriber.index()] {
                Some(latency) => latencies[subscriber.index()].push(latency),
                None => misses[subscriber.index()] += 1,
            }
        }
        missed_in_a_row = if seen.iter().all(Option::is_some) {
            0
        } else {
            missed_in_a_row + 1
        };
        if missed_in_a_row == MAX_MISSES_IN_A_ROW {
            eprintln!(
                "[bench] propagation: stopped after {MAX_MISSES_IN_A_ROW} missed edits in a row"
            );
            break;
        }
        std::thread::sleep(plan.spacing);
    }
    subscribers.shutdown_timeout(Duration::from_secs(2));
    drop(servers);

    let [events, syncs] = latencies;
    let figures = |mut samples: Vec<Duration>, misses: usize| SubscriberFigures {
        misses,
        latency: LatencySummary::exact(&mut samples),
    };
    let event_stream = figures(events, misses[0]);
    let sync_flags = figures(syncs, misses[1]);
    let larger = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Ok(PropagationResults {
        edits: made,
        spacing_ms: plan.spacing.as_secs_f64() * 1e3,
        timeout_ms: plan.timeout.as_secs_f64() * 1e3,
        watch_interval_ms: plan.watch_interval.as_secs_f64() * 1e3,
        p50_ms: larger(event_stream.latency.p50_ms, sync_flags.latency.p50_ms),
        p99_ms: larger(event_stream.latency.p99_ms, sync_flags.latency.p99_ms),
        event_stream,
        sync_flags,
    })
}

/// Writes the probe file's versions.
#[derive(Debug)]
struct Editor<'a> {
    base: &'a Value,
    edits: usize,
    /// The new version is written here first, then renamed over `target`.
    staging: PathBuf,
    target: PathBuf,
}

impl Editor<'_> {
    fn write(&self, edit: usize) -> Result<(), String> {
        let text = probe_file(self.base, edit, self.edits)?;
        fs::write(&self.staging, text)
            .map_err(|error| format!("cannot write {}: {error}", self.staging.display()))
    }

    /// Replaces the file with edit `edit`; the time read just before the rename.
    fn replace(&self, edit: usize) -> Result<Instant, String> {
        self.write(edit)?;
        let before = Instant::now();
        fs::rename(&self.staging, &self.target)
            .map_err(|error| format!("cannot replace {}: {error}", self.target.display()))?;
        Ok(before)
    }
}

/// Each subscriber's delay for `edit` (renamed at `before`), `None` where it missed.
fn await_notices(
    notices: &mpsc::Receiver<Notice>,
    edit: usize,
    before: Instant,
    timeout: Duration,
) -> Result<[Option<Duration>; 2], String> {
    let deadline = before + timeout;
    let mut seen = [None; 2];
    while seen.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        match notices.recv_timeout(left) {
            Ok(Notice::Seen {
                subscriber,
                edit: noticed,
                at,
            }) if noticed == edit && at >= before => {
                seen[subscriber.index()].get_or_insert(at.saturating_duration_since(before));
            }
            // A late or repeated notice of an earlier edit (an event is attributed to the edit
            // in progress, so one that arrives before the rename cannot be this edit's).
            Ok(Notice::Seen { .. }) => {}
            Ok(Notice::Closed { subscriber, reason }) => {
                return Err(format!(
                    "the {} subscriber's stream ended: {reason}",
                    subscriber.name()
                ));
            }
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => {
                return Err("the subscribers are gone".to_owned());
            }
        }
    }
    Ok(seen)
}

/// Connects both subscribers, waits for their first messages (`provider_ready`, and the
/// configuration holding edit 0), then leaves them reporting to `notices`.
fn subscribe(
    runtime: &Runtime,
    servers: &GrpcServers,
    current_edit: Arc<AtomicUsize>,
    notices: &mpsc::Sender<Notice>,
) -> Result<(), String> {
    let sync_address = servers
        .sync_address()
        .ok_or("the sync server is not running")?;
    let evaluation_address = servers.evaluation_address();
    let (events, configurations) = runtime.block_on(async {
        let opened = async {
            let mut evaluation =
                EvaluationClient::new(grpc_client::connect(evaluation_address).await?);
            let mut events = evaluation
                .event_stream(v2::EventStreamRequest {})
                .await
                .map_err(|status| format!("EventStream refused: {status}"))?
                .into_inner();
            let first = next_message(&mut events).await?;
            if first.r#type != "provider_ready" {
                return Err(format!("EventStream began with {:?}", first.r#type));
            }
            let mut sync = sync::flag_sync_service_client::FlagSyncServiceClient::new(
                grpc_client::connect(sync_address).await?,
            );
            let mut configurations = sync
                .sync_flags(sync::SyncFlagsRequest::default())
                .await
                .map_err(|status| format!("SyncFlags refused: {status}"))?
                .into_inner();
            let first = next_message(&mut configurations).await?;
            if synced_edit(&first.flag_configuration) != Some(0) {
                return Err("SyncFlags did not begin with the probe file".to_owned());
            }
            Ok((events, configurations))
        };
        tokio::time::timeout(SUBSCRIBE_TIMEOUT, opened)
            .await
            .map_err(|_| "the subscribers did not connect in time".to_owned())?
    })?;
    runtime.spawn(follow_events(events, current_edit, notices.clone()));
    runtime.spawn(follow_configurations(configurations, notices.clone()));
    Ok(())
}

async fn next_message<T>(stream: &mut Streaming<T>) -> Result<T, String> {
    match stream.message().await {
        Ok(Some(message)) => Ok(message),
        Ok(None) => Err("the stream ended at once".to_owned()),
        Err(status) => Err(format!("the stream failed: {status}")),
    }
}

/// Reports every `configuration_change` naming the probe flag as a sighting of the edit in
/// progress (events do not say which edit they carry).
async fn follow_events(
    events: Streaming<v2::EventStreamResponse>,
    current_edit: Arc<AtomicUsize>,
    notices: mpsc::Sender<Notice>,
) {
    let edit_seen = move |event: &v2::EventStreamResponse| {
        names_probe(event).then(|| current_edit.load(Ordering::SeqCst))
    };
    follow(events, Subscriber::EventStream, edit_seen, notices).await;
}

/// Reports every configuration holding the probe flag as a sighting of the edit it carries.
async fn follow_configurations(
    configurations: Streaming<sync::SyncFlagsResponse>,
    notices: mpsc::Sender<Notice>,
) {
    let edit_seen =
        |configuration: &sync::SyncFlagsResponse| synced_edit(&configuration.flag_configuration);
    follow(configurations, Subscriber::SyncFlags, edit_seen, notices).await;
}

/// Forwards `subscriber`'s sightings (messages `edit_seen` maps to an edit) until its stream
/// ends or nobody listens.
async fn follow<T>(
    mut stream: Streaming<T>,
    subscriber: Subscriber,
    edit_seen: impl Fn(&T) -> Option<usize>,
    notices: mpsc::Sender<Notice>,
) {
    loop {
        let message = stream.message().await;
        let at = Instant::now();
        let notice = match message {
            Ok(Some(message)) => match edit_seen(&message) {
                Some(edit) => Notice::Seen {
                    subscriber,
                    edit,
                    at,
                },
                None => continue,
            },
            Ok(None) => Notice::Closed {
                subscriber,
                reason: "closed by the server".to_owned(),
            },
            Err(status) => Notice::Closed {
                subscriber,
                reason: status.to_string(),
            },
        };
        let closed = matches!(notice, Notice::Closed { .. });
        if notices.send(notice).is_err() || closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_edit_reaches_both_subscribers() {
        let work_dir =
            std::env::temp_dir().join(format!("ramp-bench-propagation-{}", std::process::id()));
        let plan = PropagationPlan {
            edits: 3,
            spacing: Duration::from_millis(5),
            timeout: Duration::from_secs(2),
            watch_interval: Duration::from_millis(20),
            server_threads: 1,
            work_dir: work_dir.clone(),
        };
        let results = run(&plan, include_str!("../flags.json")).unwrap();
        let _ = fs::remove_dir_all(&work_dir);
        assert_eq!(results.edits, 3);
        assert_eq!(results.misses(), 0, "{results:?}");
        assert_eq!(results.event_stream.latency.samples, 3);
        assert_eq!(results.sync_flags.latency.samples, 3);
        let p99 = |figures: SubscriberFigures| figures.latency.p99_ms.unwrap();
        let slower = p99(results.event_stream).max(p99(results.sync_flags));
        assert_eq!(results.p99_ms, Some(slower));
        assert!(
            !work_dir.join("propagation").exists(),
            "the temporary file is removed"
        );
    }

    #[test]
    fn notices_of_other_edits_are_ignored_and_silence_is_a_miss() {
        let (sender, receiver) = mpsc::channel();
        let before = Instant::now();
        let seen = |subscriber, edit, after_ms| Notice::Seen {
            subscriber,
            edit,
            at: before + Duration::from_millis(after_ms),
        };
        sender.send(seen(Subscriber::SyncFlags, 1, 1)).unwrap();
        sender.send(seen(Subscriber::SyncFlags, 2, 4)).unwrap();
        sender.send(seen(Subscriber::SyncFlags, 2, 9)).unwrap();
        let result = await_notices(&receiver, 2, before, Duration::from_millis(30)).unwrap();
        assert_eq!(result, [None, Some(Duration::from_millis(4))]);

        let too_early = Notice::Seen {
            subscriber: Subscriber::EventStream,
            edit: 3,
            at: before - Duration::from_millis(1),
        };
        sender.send(too_early).unwrap();
        sender.send(seen(Subscriber::EventStream, 3, 2)).unwrap();
        sender.send(seen(Subscriber::SyncFlags, 3, 3)).unwrap();
        let result = await_notices(&receiver, 3, before, Duration::from_secs(5)).unwrap();
        assert_eq!(
            result,
            [
                Some(Duration::from_millis(2)),
                Some(Duration::from_millis(3))
            ]
        );

        sender
            .send(Notice::Closed {
                subscriber: Subscriber::EventStream,
                reason: "bye".to_owned(),
            })
            .unwrap();
        let error = await_notices(&receiver, 4, before, Duration::from_secs(5)).unwrap_err();
        assert!(
            error.contains("EventStream") && error.contains("bye"),
            "{error}"
        );
    }
}
