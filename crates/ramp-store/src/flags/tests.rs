use serde_json::{Value, json};

use crate::testutil::{event, temp_dir};
use crate::{EventQuery, FlagEventKind, Store, StoreError};

fn flag(state: &str, default_variant: &str) -> Value {
    json!({
        "state": state,
        "variants": {"on": true, "off": false},
        "defaultVariant": default_variant,
    })
}

fn all_events(store: &Store) -> Vec<crate::EventRow> {
    store.events(&EventQuery::default()).unwrap()
}

#[test]
fn create_update_and_no_op_are_versioned_and_audited() {
    let dir = temp_dir("flags-put");
    let store = Store::open(dir.path()).unwrap();
    let created = store
        .put_flag("checkout", &flag("ENABLED", "off"), None, "alice")
        .unwrap();
    assert_eq!(created.kind, Some(FlagEventKind::Created));
    assert_eq!(created.flag.version, 1);
    let event = created.event.unwrap();
    assert_eq!(
        (
            event.kind.as_str(),
            event.actor.as_str(),
            event.service.as_deref()
        ),
        ("flag.created", "alice", None)
    );
    assert_eq!(
        event.data,
        json!({"key": "checkout", "version": 1, "diff": [{"path": "", "to": flag("ENABLED", "off")}]})
    );
    assert_eq!(event.message, "flag checkout created (version 1)");

    let updated = store
        .put_flag("checkout", &flag("ENABLED", "on"), None, "bob")
        .unwrap();
    assert_eq!(updated.kind, Some(FlagEventKind::Updated));
    assert_eq!(updated.flag.version, 2);
    assert_eq!(updated.flag.created_at, created.flag.created_at);
    let event = updated.event.unwrap();
    assert_eq!(
        event.data["diff"],
        json!([{"path": "/defaultVariant", "from": "off", "to": "on"}])
    );
    assert_eq!(
        event.message,
        "flag checkout updated to version 2: /defaultVariant changed"
    );

    // The same definition again: nothing written, nothing recorded.
    let same = store
        .put_flag("checkout", &flag("ENABLED", "on"), None, "carol")
        .unwrap();
    assert_eq!((same.kind, same.event, same.flag.version), (None, None, 2));
    assert_eq!(all_events(&store).len(), 2);
    assert_eq!(store.flag("checkout").unwrap().unwrap(), updated.flag);
}

#[test]
fn a_change_of_the_state_alone_is_recorded_as_disable_or_enable() {
    let dir = temp_dir("flags-state");
    let store = Store::open(dir.path()).unwrap();
    store
        .put_flag("f", &flag("ENABLED", "on"), None, "a")
        .unwrap();
    let off = store
        .put_flag("f", &flag("DISABLED", "on"), None, "a")
        .unwrap();
    assert_eq!(off.kind, Some(FlagEventKind::Disabled));
    assert_eq!(off.event.unwrap().message, "flag f disabled (version 2)");
    let on = store
        .put_flag("f", &flag("ENABLED", "on"), None, "a")
        .unwrap();
    assert_eq!(on.kind, Some(FlagEventKind::Enabled));
    // State and something else: an update.
    let both = store
        .put_flag("f", &flag("DISABLED", "off"), None, "a")
        .unwrap();
    assert_eq!(both.kind, Some(FlagEventKind::Updated));
}

#[test]
fn a_version_conflict_changes_nothing() {
    let dir = temp_dir("flags-conflict");
    let store = Store::open(dir.path()).unwrap();
    store
        .put_flag("f", &flag("ENABLED", "on"), Some(0), "a")
        .unwrap();
    store
        .put_flag("f", &flag("ENABLED", "off"), Some(1), "a")
        .unwrap();
    let before = (store.flag("f").unwrap(), all_events(&store));

    let stale = store
        .put_flag("f", &flag("DISABLED", "off"), Some(1), "b")
        .unwrap_err();
    assert!(
        matches!(
            &stale,
            StoreError::FlagVersionConflict { key, expected: 1, found: Some(2) } if key == "f"
        ),
        "{stale}"
    );
    assert!(stale.to_string().contains("version 2"), "{stale}");
    let exists = store
        .put_flag("f", &flag("DISABLED", "off"), Some(0), "b")
        .unwrap_err();
    assert!(matches!(exists, StoreError::FlagVersionConflict { .. }));
    let stale_delete = store.delete_flag("f", Some(1), "b").unwrap_err();
    assert!(matches!(
        stale_delete,
        StoreError::FlagVersionConflict { .. }
    ));
    assert_eq!((store.flag("f").unwrap(), all_events(&store)), before);

    let missing = store
        .put_flag("g", &flag("ENABLED", "on"), Some(4), "b")
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::FlagVersionConflict { found: None, .. }),
        "{missing}"
    );
    assert_eq!(store.flag("g").unwrap(), None);
}

#[test]
fn delete_is_audited_and_a_recreated_flag_continues_its_versions() {
    let dir = temp_dir("flags-delete");
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.delete_flag("f", None, "a").unwrap(), None);
    store
        .put_flag("f", &flag("ENABLED", "on"), None, "a")
        .unwrap();
    store
        .put_flag("other", &flag("ENABLED", "on"), None, "a")
        .unwrap();
    // A service event whose data happens to name the same key is not the flag's history.
    let mut unrelated = event("web", "rollout.step");
    unrelated.data = json!({"key": "f", "version": 99});
    store.append_event(&unrelated).unwrap();

    let deleted = store.delete_flag("f", Some(1), "bob").unwrap().unwrap();
    assert_eq!(deleted.kind, "flag.deleted");
    assert_eq!(deleted.message, "flag f deleted (version 2)");
    assert_eq!(
        deleted.data,
        json!({"key": "f", "version": 2, "diff": [{"path": "", "from": flag("ENABLED", "on")}]})
    );
    assert_eq!(store.flag("f").unwrap(), None);
    assert_eq!(store.flags().unwrap().len(), 1);

    let again = store
        .put_flag("f", &flag("DISABLED", "off"), Some(0), "carol")
        .unwrap();
    assert_eq!(again.kind, Some(FlagEventKind::Created));
    assert_eq!(again.flag.version, 3);

    let history = store.flag_history("f").unwrap();
    let summary: Vec<(&str, &str, &Value)> = history
        .iter()
        .map(|e| (e.kind.as_str(), e.actor.as_str(), &e.data["version"]))
        .collect();
    assert_eq!(
        summary,
        [
            ("flag.created", "a", &json!(1)),
            ("flag.deleted", "bob", &json!(2)),
            ("flag.created", "carol", &json!(3)),
        ]
    );
    assert!(store.flag_history("nothing").unwrap().is_empty());
}

#[test]
fn history_reads_use_the_flag_index() {
    let dir = temp_dir("flags-index");
    let store = Store::open(dir.path()).unwrap();
    let plan: Vec<String> = store
        .transaction(|tx| {
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT id FROM events WHERE {} ORDER BY id",
                super::HISTORY_FILTER
            );
            let mut stmt = tx.connection().prepare(&sql)?;
            let rows = stmt
                .query_map(["f"], |row| row.get::<_, String>(3))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .unwrap();
    assert!(
        plan.iter().any(|step| step.contains("events_by_flag")),
        "{plan:?}"
    );
}

#[test]
fn the_change_and_its_event_are_one_transaction() {
    let dir = temp_dir("flags-atomic");
    let store = Store::open(dir.path()).unwrap();
    // An aborted transaction takes the flag and its event with it.
    let aborted = store.transaction(|tx| {
        let write = tx.put_flag("f", &flag("ENABLED", "on"), None, "a")?;
        assert_eq!(tx.flag_history("f")?.len(), 1);
        assert!(write.event.is_some());
        Err::<(), _>(StoreError::Aborted("changed my mind".into()))
    });
    assert!(aborted.is_err());
    assert_eq!(store.flag("f").unwrap(), None);
    assert!(all_events(&store).is_empty());

    // When the event cannot be written, the flag is not written either.
    let raw = rusqlite::Connection::open(store.db_path()).unwrap();
    raw.execute_batch(
        "CREATE TRIGGER refuse_flag_events BEFORE INSERT ON events WHEN NEW.kind GLOB 'flag.*'
         BEGIN SELECT RAISE(ABORT, 'flag events refused'); END;",
    )
    .unwrap();
    let err = store
        .put_flag("f", &flag("ENABLED", "on"), None, "a")
        .unwrap_err();
    assert!(err.to_string().contains("flag events refused"), "{err}");
    assert_eq!(store.flag("f").unwrap(), None);
    raw.execute_batch("DROP TRIGGER refuse_flag_events")
        .unwrap();
    store
        .put_flag("f", &flag("ENABLED", "on"), None, "a")
        .unwrap();
    raw.execute_batch(
        "CREATE TRIGGER refuse_flag_events BEFORE INSERT ON events WHEN NEW.kind GLOB 'flag.*'
         BEGIN SELECT RAISE(ABORT, 'flag events refused'); END;",
    )
    .unwrap();
    assert!(store.delete_flag("f", None, "a").is_err());
    assert_eq!(store.flag("f").unwrap().unwrap().version, 1);
}

#[test]
fn flag_events_stay_append_only_and_flags_survive_reopening() {
    let dir = temp_dir("flags-durable");
    let store = Store::open(dir.path()).unwrap();
    store
        .put_flag("f", &flag("ENABLED", "on"), None, "a")
        .unwrap();
    store
        .put_flag("f", &flag("DISABLED", "on"), None, "a")
        .unwrap();
    for sql in [
        "UPDATE events SET actor = 'someone else' WHERE kind GLOB 'flag.*'",
        "DELETE FROM events WHERE kind = 'flag.disabled'",
    ] {
        let err = store
            .transaction(|tx| Ok(tx.connection().execute(sql, [])?))
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let stored = store.flag("f").unwrap().unwrap();
    std::mem::forget(store); // no clean close, as after `kill -9`
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.flag("f").unwrap().unwrap(), stored);
    assert_eq!(stored.definition["state"], "DISABLED");
    assert_eq!(store.flag_history("f").unwrap().len(), 2);
}
