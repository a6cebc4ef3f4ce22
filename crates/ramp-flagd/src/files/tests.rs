//! Loading, polling, and the decisions taken on events and settle checks, driven step by step
//! with explicit times.

use super::*;
use ramp_flags::logic::FractionalVersion::{self, V1, V2, V3};
use ramp_flags::model::Selector;
use ramp_flags::resolve::ValueType;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

fn temp_dir(label: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ramp-flagd-{label}-"))
        .tempdir()
        .expect("create temp dir")
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
    let dir = temp_dir("watch");
    let path = dir.path().join("flags.json");
    std::fs::write(&path, flag_json("red")).unwrap();
    let source = Arc::new(FlagSource::new());
    let mut watcher = FileWatcher::load(Arc::clone(&source), std::slice::from_ref(&path)).unwrap();
    assert!(source.is_ready());
    assert_eq!(served(&source), Some(json!("red")));
    assert!(watcher.poll().is_empty(), "nothing changed yet");

    std::fs::write(&path, flag_json("blue-ish")).unwrap();
    let outcomes = watcher.poll();
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert_eq!(served(&source), Some(json!("blue-ish")));

    let broken =
        r#"{"flags":{"color":{"state":"ENABLED","variants":{"v":"x"},"defaultVariant":"nope"}}}"#;
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
    let dir = temp_dir("same-size");
    let path = dir.path().join("flags.json");
    std::fs::write(&path, flag_json("red")).unwrap();
    let source = Arc::new(FlagSource::new());
    let mut watcher = FileWatcher::load(Arc::clone(&source), std::slice::from_ref(&path)).unwrap();
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

fn touched(path: &Path) -> Trigger {
    Trigger::Touched(Touched {
        paths: vec![path.to_owned()],
        everything: false,
    })
}

fn loaded(dir: &TempDir, value: &str) -> (PathBuf, Arc<FlagSource>, FileWatcher) {
    let path = dir.path().join("flags.json");
    std::fs::write(&path, flag_json(value)).unwrap();
    let source = Arc::new(FlagSource::new());
    let watcher = FileWatcher::load(Arc::clone(&source), std::slice::from_ref(&path)).unwrap();
    (path, source, watcher)
}

const SETTLE: Duration = FileWatcher::SETTLE_DELAY;

#[test]
fn a_half_written_file_waits_for_its_end_instead_of_being_refused() {
    let dir = temp_dir("half");
    let (path, source, mut watcher) = loaded(&dir, "red");
    let full = flag_json("blue");
    let start = Instant::now();
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    assert!(watcher.handle(touched(&path), start).is_empty());
    assert_eq!(watcher.settle_deadline(), Some(start + SETTLE));
    let early = start + SETTLE / 4;
    assert!(watcher.handle(Trigger::Settle, early).is_empty());
    assert!(
        watcher.handle(Trigger::Poll, early).is_empty(),
        "polls leave it to settle"
    );
    assert_eq!(
        served(&source),
        Some(json!("red")),
        "the last good flags serve"
    );

    std::fs::write(&path, &full).unwrap();
    let outcomes = watcher.handle(touched(&path), early);
    assert!(matches!(outcomes.as_slice(), [Ok(_)]), "{outcomes:?}");
    assert_eq!(served(&source), Some(json!("blue")));
    assert_eq!(watcher.settle_deadline(), None);
    assert!(
        watcher
            .handle(Trigger::Settle, start + SETTLE * 2)
            .is_empty()
    );
    assert_eq!(source.reload_failures(), 0);
}

#[test]
fn failing_content_is_refused_once_it_stood_for_the_settle_delay() {
    let dir = temp_dir("settle");
    let (path, source, mut watcher) = loaded(&dir, "red");
    let start = Instant::now();
    std::fs::write(&path, r#"{"flags": {"color": "#).unwrap();
    assert!(watcher.handle(touched(&path), start).is_empty());
    // Still being written at the deadline: the wait starts again from the new content.
    std::fs::write(&path, r#"{"flags": {"color": {"state": "#).unwrap();
    let changed = start + SETTLE;
    assert!(watcher.handle(Trigger::Settle, changed).is_empty());
    assert_eq!(watcher.settle_deadline(), Some(changed + SETTLE));
    assert_eq!(source.reload_failures(), 0);

    let outcomes = watcher.handle(Trigger::Settle, changed + SETTLE);
    assert!(
        matches!(outcomes.as_slice(), [Err(LoadError::Invalid { .. })]),
        "{outcomes:?}"
    );
    assert_eq!(source.reload_failures(), 1);
    assert_eq!(served(&source), Some(json!("red")));
    let later = changed + SETTLE * 3;
    assert!(
        watcher.handle(touched(&path), later).is_empty(),
        "reported once"
    );
    assert!(watcher.handle(Trigger::Poll, later).is_empty());
    assert_eq!(watcher.settle_deadline(), None);
}

#[test]
fn a_file_missing_during_a_replace_is_not_refused() {
    let dir = temp_dir("replace");
    let (path, source, mut watcher) = loaded(&dir, "red");
    let start = Instant::now();
    std::fs::remove_file(&path).unwrap();
    assert!(watcher.handle(touched(&path), start).is_empty());
    std::fs::write(&path, flag_json("green")).unwrap();
    let outcomes = watcher.handle(touched(&path), start + SETTLE / 2);
    assert!(matches!(outcomes.as_slice(), [Ok(_)]), "{outcomes:?}");
    assert_eq!(served(&source), Some(json!("green")));
    assert_eq!(source.reload_failures(), 0);

    std::fs::remove_file(&path).unwrap();
    assert!(watcher.handle(touched(&path), start + SETTLE).is_empty());
    let outcomes = watcher.handle(Trigger::Settle, start + SETTLE * 2);
    assert!(
        matches!(outcomes.as_slice(), [Err(LoadError::Read { .. })]),
        "{outcomes:?}"
    );
    assert_eq!(source.reload_failures(), 1);
}

#[test]
fn events_concern_the_file_its_link_entry_and_directory_only() {
    let dir = temp_dir("link");
    std::fs::create_dir(dir.path().join("..v1")).unwrap();
    std::fs::write(dir.path().join("..v1/flags.json"), flag_json("red")).unwrap();
    std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
    let path = dir.path().join("flags.json");
    std::os::unix::fs::symlink("..data/flags.json", &path).unwrap();
    let other = dir.path().join("other.json");
    std::fs::write(&other, flag_json("blue")).unwrap();
    let source = Arc::new(FlagSource::new());
    let mut watcher =
        FileWatcher::load(Arc::clone(&source), &[path.clone(), other.clone()]).unwrap();
    let linked = &watcher.files[0];
    assert_eq!(
        linked.link_entry.as_deref(),
        Some(std::ffi::OsStr::new("..data"))
    );
    assert!(linked.concerned_by(&path));
    assert!(linked.concerned_by(&dir.path().join("..data")));
    assert!(linked.concerned_by(dir.path()));
    assert!(!linked.concerned_by(&other));
    assert!(!linked.concerned_by(&dir.path().join("..v1")));
    assert_eq!(watcher.directories(), vec![dir.path().to_path_buf()]);

    // The ConfigMap swap: a new version directory, `..data` renamed over to point at it.
    std::fs::create_dir(dir.path().join("..v2")).unwrap();
    std::fs::write(dir.path().join("..v2/flags.json"), flag_json("green")).unwrap();
    std::os::unix::fs::symlink("..v2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    let outcomes = watcher.handle(touched(&dir.path().join("..data")), Instant::now());
    assert!(matches!(outcomes.as_slice(), [Ok(_)]), "{outcomes:?}");
    let linked_only = Selector::parse(&format!("source={}", path.display())).unwrap();
    let store = source.current();
    let value = store
        .select(&linked_only)
        .evaluate("color", &Map::new(), ValueType::Any, 0)
        .value;
    assert_eq!(value, Some(json!("green")));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// However a valid edit is cut into chunks, and whenever the chunks' events are handled
    /// within the settle delay, nothing is refused, nothing broken is served, and the
    /// finished file is.
    #[test]
    fn chunked_writes_are_accepted_whole(
        cuts in proptest::collection::btree_set(1usize..60, 0..5),
        gaps in proptest::collection::vec(0u32..5, 6),
    ) {
        let dir = temp_dir("chunks");
        let (path, source, mut watcher) = loaded(&dir, "red");
        let full = flag_json("a-rather-longer-value");
        let mut ends: Vec<usize> = cuts.into_iter().filter(|cut| *cut < full.len()).collect();
        ends.push(full.len());
        let mut now = Instant::now();
        for (end, gap) in ends.iter().zip(&gaps) {
            std::fs::write(&path, &full[..*end]).unwrap();
            now += SETTLE * *gap / 5;
            watcher.handle(touched(&path), now);
            watcher.handle(Trigger::Settle, now);
            let value = served(&source);
            proptest::prop_assert!(
                value == Some(json!("red")) || value == Some(json!("a-rather-longer-value")),
                "{value:?}"
            );
        }
        proptest::prop_assert_eq!(served(&source), Some(json!("a-rather-longer-value")));
        proptest::prop_assert_eq!(source.reload_failures(), 0);
        proptest::prop_assert_eq!(watcher.settle_deadline(), None);
    }
}

#[test]
fn later_files_win_and_yaml_is_read_by_extension() {
    let dir = temp_dir("order");
    let first = dir.path().join("a.json");
    let second = dir.path().join("b.yaml");
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
    let dir = temp_dir("startup");
    let good = dir.path().join("good.json");
    std::fs::write(&good, flag_json("red")).unwrap();
    let missing = dir.path().join("missing.json");
    let source = Arc::new(FlagSource::new());
    let error = FileWatcher::load(Arc::clone(&source), &[good, missing]).unwrap_err();
    assert!(matches!(error, LoadError::Read { .. }));
    assert!(error.to_string().contains("missing.json"));
    assert_eq!(source.generation(), 0);
    assert!(!source.is_ready());
}

/// The testbed's `fractional-flag`: four suits bucketed by flag key and user name, with
/// `default` as the variant a non-match falls back to (changed to make a real edit).
fn fractional_flag_json(default: &str) -> String {
    json!({ "flags": { "fractional-flag": {
        "state": "ENABLED",
        "variants": { "clubs": "clubs", "diamonds": "diamonds", "hearts": "hearts",
                      "spades": "spades", "wild": "wild" },
        "defaultVariant": default,
        "targeting": { "fractional": [
            { "cat": [{ "var": "$flagd.flagKey" }, { "var": "user.name" }] },
            ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]
        ]}
    }}})
    .to_string()
}

fn suit_for(source: &FlagSource, name: &str) -> Option<Value> {
    let context = json!({ "user": { "name": name } });
    let Value::Object(context) = context else {
        unreachable!("a JSON object literal")
    };
    source
        .current()
        .evaluate("fractional-flag", &context, ValueType::String, 0)
        .value
}

/// A watcher on the fractional flag file: [`FileWatcher::load`] for `None`, else `load_with`.
fn load_fractional(
    dir: &TempDir,
    version: Option<FractionalVersion>,
) -> (PathBuf, Arc<FlagSource>, FileWatcher) {
    let path = dir.path().join("custom-ops.json");
    std::fs::write(&path, fractional_flag_json("wild")).unwrap();
    let source = Arc::new(FlagSource::new());
    let paths = std::slice::from_ref(&path);
    let watcher = match version {
        None => FileWatcher::load(Arc::clone(&source), paths),
        Some(fractional) => {
            FileWatcher::load_with(Arc::clone(&source), paths, LogicOptions { fractional })
        }
    }
    .unwrap();
    (path, source, watcher)
}

#[test]
fn loads_and_reloads_bucket_with_the_watchers_fractional_version() {
    // The testbed's `Fractional operator` examples, per version (as the engine's tests pin).
    let cases = [
        (
            Some(V1),
            [
                ("jack", "spades"),
                ("queen", "clubs"),
                ("ten", "diamonds"),
                ("nine", "hearts"),
                ("3", "diamonds"),
            ],
        ),
        (
            None,
            [
                ("jack", "hearts"),
                ("queen", "spades"),
                ("ten", "clubs"),
                ("nine", "diamonds"),
                ("3", "clubs"),
            ],
        ),
        (
            Some(V3),
            [
                ("jack", "diamonds"),
                ("queen", "diamonds"),
                ("ten", "clubs"),
                ("nine", "clubs"),
                ("3", "spades"),
            ],
        ),
    ];
    for (version, rows) in cases {
        let dir = temp_dir("fractional");
        let (path, source, mut watcher) = load_fractional(&dir, version);
        assert_eq!(watcher.options().fractional, version.unwrap_or(V2));
        for (name, suit) in rows {
            assert_eq!(
                suit_for(&source, name),
                Some(json!(suit)),
                "{version:?} {name}"
            );
        }
        std::fs::write(&path, fractional_flag_json("clubs")).unwrap();
        let outcomes = watcher.poll();
        assert!(matches!(outcomes.as_slice(), [Ok(_)]), "{outcomes:?}");
        for (name, suit) in rows {
            assert_eq!(
                suit_for(&source, name),
                Some(json!(suit)),
                "{version:?} {name} after a reload"
            );
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

    /// Whatever the bucketing key, a reload keeps bucketing it the way the load did, and a
    /// watcher loaded with the default options buckets like one loaded with v2.
    #[test]
    fn reloads_keep_the_version_and_the_default_is_v2(
        names in proptest::collection::vec("[a-zA-Z0-9@.é]{0,12}", 1..8),
        version in proptest::sample::select(vec![V1, V2, V3]),
    ) {
        let dir = temp_dir("fractional-prop");
        let (path, source, mut watcher) = load_fractional(&dir, Some(version));
        let default_dir = temp_dir("fractional-default");
        let (_, default_source, _default_watcher) = load_fractional(&default_dir, None);
        let at_load: Vec<_> = names.iter().map(|name| suit_for(&source, name)).collect();
        std::fs::write(&path, fractional_flag_json("clubs")).unwrap();
        proptest::prop_assert_eq!(watcher.poll().len(), 1);
        let after_reload: Vec<_> = names.iter().map(|name| suit_for(&source, name)).collect();
        proptest::prop_assert_eq!(&at_load, &after_reload);
        if version == V2 {
            let by_default: Vec<_> =
                names.iter().map(|name| suit_for(&default_source, name)).collect();
            proptest::prop_assert_eq!(&at_load, &by_default);
        }
    }
}
