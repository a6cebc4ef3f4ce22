//! Flag file watching through real file-system events: in-place edits, atomic renames, a
//! Kubernetes ConfigMap's symlink swap, half-written files and broken edits. The safety-net poll
//! is set to 10 s, so every change seen within the limits below came through an event.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ramp_flagd::{ChangeNotice, FileWatcher, FlagSource};
use ramp_flags::model::Selector;
use ramp_flags::resolve::ValueType;
use serde_json::{Map, Value, json};
use support::{temp_dir, write_atomic};
use tokio::sync::{broadcast, watch};

/// Far longer than any test: a change seen sooner than [`SEEN_WITHIN`] came through an event.
const SAFETY_POLL: Duration = Duration::from_secs(10);

/// What "seen through an event" must beat, with room for a loaded machine.
const SEEN_WITHIN: Duration = Duration::from_millis(150);

fn flag_json(value: &str) -> String {
    format!(
        r#"{{"flags":{{"color":{{"state":"ENABLED","variants":{{"v":"{value}"}},"defaultVariant":"v"}}}}}}"#
    )
}

/// A watcher running on `paths` with event watching on, stopped when dropped.
struct Watching {
    source: Arc<FlagSource>,
    changes: broadcast::Receiver<Arc<ChangeNotice>>,
    _stop: watch::Sender<bool>,
}

impl Watching {
    fn start(paths: &[PathBuf]) -> Watching {
        let source = Arc::new(FlagSource::new());
        let mut watcher = FileWatcher::load(Arc::clone(&source), paths).expect("valid flag files");
        assert!(watcher.watch_events(), "file events are available here");
        let changes = source.subscribe();
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(watcher.run(SAFETY_POLL, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        Watching {
            source,
            changes,
            _stop: stop,
        }
    }

    /// Waits for the next change notice; how long it took since `since`.
    async fn next_change(&mut self, since: Instant) -> Duration {
        tokio::time::timeout(Duration::from_secs(5), self.changes.recv())
            .await
            .expect("a change notice within 5 s")
            .expect("the change stream is open");
        since.elapsed()
    }

    fn served(&self, source_name: Option<&Path>) -> Option<Value> {
        let selector = match source_name {
            Some(path) => Selector::parse(&format!("source={}", path.display())).expect("selector"),
            None => Selector::All,
        };
        self.source
            .current()
            .select(&selector)
            .evaluate("color", &Map::new(), ValueType::Any, 0)
            .value
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_edits_are_seen_through_events_long_before_the_poll() {
    let dir = temp_dir("watch-edit");
    let path = dir.path().join("flags.json");
    std::fs::write(&path, flag_json("v0")).expect("write");
    let mut watching = Watching::start(std::slice::from_ref(&path));

    let mut latencies = Vec::new();
    for edit in 1..=40 {
        let started = Instant::now();
        // Truncates, then writes: the first event may find an empty file, which must settle
        // rather than be refused.
        std::fs::write(&path, flag_json(&format!("v{edit}"))).expect("write");
        let latency = watching.next_change(started).await;
        assert_eq!(watching.served(None), Some(json!(format!("v{edit}"))));
        latencies.push(latency);
    }
    latencies.sort();
    let (p50, p99, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    println!(
        "edit -> change notice over {} edits: p50 {p50:?}, p99 {p99:?}, max {max:?}",
        latencies.len()
    );
    assert!(max < SEEN_WITHIN, "slowest edit took {max:?}");
    assert_eq!(
        watching.source.reload_failures(),
        0,
        "no half-written file was refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_atomic_rename_over_the_file_is_seen() {
    let dir = temp_dir("watch-rename");
    let path = dir.path().join("flags.yaml");
    std::fs::write(
        &path,
        "flags:\n  color: {state: ENABLED, variants: {v: old}, defaultVariant: v}\n",
    )
    .expect("write");
    let mut watching = Watching::start(std::slice::from_ref(&path));

    let started = Instant::now();
    write_atomic(
        &path,
        "flags:\n  color: {state: ENABLED, variants: {v: new}, defaultVariant: v}\n",
    );
    let latency = watching.next_change(started).await;
    assert!(latency < SEEN_WITHIN, "took {latency:?}");
    assert_eq!(watching.served(None), Some(json!("new")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_is_seen() {
    // A mounted ConfigMap: flags.json -> ..data/flags.json, ..data -> ..<version>.
    let dir = temp_dir("watch-configmap");
    let root = dir.path();
    let version = |name: &str, value: &str| {
        std::fs::create_dir(root.join(name)).expect("version dir");
        std::fs::write(root.join(name).join("flags.json"), flag_json(value)).expect("write");
    };
    version("..v1", "first");
    std::os::unix::fs::symlink("..v1", root.join("..data")).expect("..data");
    let path = root.join("flags.json");
    std::os::unix::fs::symlink("..data/flags.json", &path).expect("flags.json");
    // An unrelated file in the same directory, listed first so it does not win the key.
    let other = root.join("other.json");
    std::fs::write(&other, flag_json("unrelated")).expect("write");
    let mut watching = Watching::start(&[other, path.clone()]);
    assert_eq!(watching.served(Some(&path)), Some(json!("first")));

    // The kubelet's swap: a new version, a temporary link renamed over `..data`, the old
    // version removed.
    version("..v2", "second");
    let started = Instant::now();
    std::os::unix::fs::symlink("..v2", root.join("..data_tmp")).expect("..data_tmp");
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
    std::fs::remove_dir_all(root.join("..v1")).expect("remove old version");
    let latency = watching.next_change(started).await;
    assert!(latency < SEEN_WITHIN, "took {latency:?}");
    assert_eq!(watching.served(Some(&path)), Some(json!("second")));
    tokio::time::sleep(FileWatcher::SETTLE_DELAY * 3).await;
    assert_eq!(watching.source.reload_failures(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_file_is_accepted_once_complete_and_never_refused() {
    let dir = temp_dir("watch-chunks");
    let path = dir.path().join("flags.json");
    std::fs::write(&path, flag_json("before")).expect("write");
    let mut watching = Watching::start(std::slice::from_ref(&path));

    let text = flag_json("after");
    let (head, tail) = text.split_at(text.len() / 2);
    let started = Instant::now();
    let mut file = std::fs::File::create(&path).expect("truncate");
    file.write_all(head.as_bytes()).expect("first chunk");
    file.flush().expect("flush");
    // Long enough for the first chunk's event to be handled, well within the settle delay.
    std::thread::sleep(Duration::from_millis(3));
    assert_eq!(
        watching.served(None),
        Some(json!("before")),
        "the half file is not served"
    );
    file.write_all(tail.as_bytes()).expect("second chunk");
    drop(file);

    let latency = watching.next_change(started).await;
    assert!(latency < SEEN_WITHIN, "took {latency:?}");
    assert_eq!(watching.served(None), Some(json!("after")));
    tokio::time::sleep(FileWatcher::SETTLE_DELAY * 3).await;
    assert_eq!(
        watching.source.reload_failures(),
        0,
        "the half file was never refused"
    );
    assert!(
        watching.changes.try_recv().is_err(),
        "one change, the complete file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_is_refused_once_and_the_last_good_flags_keep_serving() {
    let dir = temp_dir("watch-invalid");
    let path = dir.path().join("flags.json");
    std::fs::write(&path, flag_json("good")).expect("write");
    let mut watching = Watching::start(std::slice::from_ref(&path));

    let started = Instant::now();
    write_atomic(
        &path,
        r#"{"flags":{"color":{"state":"ENABLED","variants":{"v":"x"},"defaultVariant":"nope"}}}"#,
    );
    while watching.source.reload_failures() == 0 {
        assert!(
            started.elapsed() < SEEN_WITHIN,
            "the refusal was not reported in time"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let refused_after = started.elapsed();
    assert!(
        refused_after >= FileWatcher::SETTLE_DELAY,
        "refused after {refused_after:?}, before the settle delay"
    );
    assert_eq!(watching.served(None), Some(json!("good")));
    tokio::time::sleep(FileWatcher::SETTLE_DELAY * 3).await;
    assert_eq!(watching.source.reload_failures(), 1, "reported once");

    let fixed = Instant::now();
    write_atomic(&path, &flag_json("fixed"));
    let latency = watching.next_change(fixed).await;
    assert!(latency < SEEN_WITHIN, "took {latency:?}");
    assert_eq!(watching.served(None), Some(json!("fixed")));
}
