use std::sync::Arc;

use ramp_flagd::ChangeKind;
use ramp_flags::model::FlagState;
use ramp_flags::resolve::{Evaluation, Reason, ValueType};
use ramp_store::Store;
use serde_json::{Map, Value, json};

use super::{FLAG_SOURCE_NAME, FlagService};
use crate::error::ServerError;
use crate::test_support::temp_dir;

fn service(dir: &tempfile::TempDir) -> (Arc<Store>, FlagService) {
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let service = FlagService::load(Arc::clone(&store)).unwrap();
    (store, service)
}

fn flag(default_variant: &str) -> Value {
    json!({
        "state": "ENABLED",
        "variants": {"old": "v1", "new": "v2"},
        "defaultVariant": default_variant,
    })
}

fn evaluate(service: &FlagService, key: &str) -> Evaluation {
    service
        .source()
        .current()
        .evaluate(key, &Map::new(), ValueType::Any, 0)
}

#[test]
fn every_committed_change_is_served_and_announced_once() {
    let dir = temp_dir("publish");
    let (_store, service) = service(&dir);
    assert!(service.source().is_ready());
    let mut changes = service.source().subscribe();

    let created = service
        .put("checkout", &flag("old"), None, "alice")
        .unwrap();
    assert_eq!(created.flag.version, 1);
    assert_eq!(evaluate(&service, "checkout").value, Some(json!("v1")));
    assert_eq!(
        changes.try_recv().unwrap().flags.get("checkout"),
        Some(&ChangeKind::Write)
    );

    service
        .put("checkout", &flag("new"), Some(1), "alice")
        .unwrap();
    assert_eq!(evaluate(&service, "checkout").value, Some(json!("v2")));
    assert_eq!(
        changes.try_recv().unwrap().flags.get("checkout"),
        Some(&ChangeKind::Update)
    );

    // Writing what is already there publishes nothing.
    let same = service.put("checkout", &flag("new"), None, "bob").unwrap();
    assert!(same.event.is_none());
    assert!(changes.try_recv().is_err());

    let off = service
        .set_state("checkout", FlagState::Disabled, None, "carol")
        .unwrap();
    assert_eq!(off.event.unwrap().kind, "flag.disabled");
    assert_eq!(evaluate(&service, "checkout").reason, Reason::Disabled);
    assert_eq!(changes.try_recv().unwrap().flags.len(), 1);
    let again = service
        .set_state("checkout", FlagState::Disabled, None, "carol")
        .unwrap();
    assert_eq!((again.event, again.flag.version), (None, 3));
    assert!(changes.try_recv().is_err());

    service.delete("checkout", Some(3), "dave").unwrap();
    assert!(evaluate(&service, "checkout").is_error());
    assert_eq!(
        changes.try_recv().unwrap().flags.get("checkout"),
        Some(&ChangeKind::Delete)
    );
    let kinds: Vec<String> = service
        .history("checkout")
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "flag.created",
            "flag.updated",
            "flag.disabled",
            "flag.deleted"
        ]
    );
    // The source holds the control plane's flags under its name.
    assert!(
        service
            .source()
            .current()
            .source(FLAG_SOURCE_NAME)
            .is_some()
    );
}

#[test]
fn refused_writes_change_nothing() {
    let dir = temp_dir("refused");
    let (store, service) = service(&dir);
    service.put("f", &flag("old"), None, "a").unwrap();
    let mut changes = service.source().subscribe();
    let generation = service.source().generation();

    let invalid = service
        .put("f", &json!({"state": "ENABLED", "variants": {}}), None, "a")
        .unwrap_err();
    let ServerError::InvalidFlag(problems) = &invalid else {
        panic!("{invalid}");
    };
    assert_eq!(problems[0].path, "$.variants", "{problems:?}");
    assert_eq!(invalid.status(), 400);
    let conflict = service.put("f", &flag("new"), Some(7), "a").unwrap_err();
    assert_eq!(conflict.status(), 409, "{conflict}");
    let missing = service
        .set_state("nope", FlagState::Disabled, None, "a")
        .unwrap_err();
    assert_eq!(missing.status(), 404, "{missing}");
    assert_eq!(service.delete("nope", None, "a").unwrap_err().status(), 404);
    assert_eq!(
        service
            .put("a/b", &flag("old"), None, "a")
            .unwrap_err()
            .status(),
        400
    );
    assert_eq!(service.history("never").unwrap_err().status(), 404);

    assert_eq!(store.flag("f").unwrap().unwrap().version, 1);
    assert_eq!(store.flag_history("f").unwrap().len(), 1);
    assert_eq!(service.source().generation(), generation);
    assert!(changes.try_recv().is_err());
}

#[test]
fn stored_flags_are_served_after_a_restart_and_a_refused_one_does_not_block_the_rest() {
    let dir = temp_dir("restart");
    {
        let (store, service) = service(&dir);
        service.put("kept", &flag("new"), None, "a").unwrap();
        // Written around the API, as an older engine might have accepted it.
        store
            .put_flag(
                "broken",
                &json!({"state": "MAYBE", "variants": {"x": 1}}),
                None,
                "a",
            )
            .unwrap();
    }
    let (_store, service) = service(&dir);
    assert!(service.source().is_ready());
    assert_eq!(evaluate(&service, "kept").value, Some(json!("v2")));
    assert!(evaluate(&service, "broken").is_error());
    assert_eq!(service.list().unwrap().len(), 2);
}

#[test]
fn concurrent_writers_leave_the_source_serving_the_last_commit() {
    let dir = temp_dir("order");
    let (store, service) = service(&dir);
    let service = Arc::new(service);
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let service = Arc::clone(&service);
            std::thread::spawn(move || {
                for round in 0..15 {
                    let definition = json!({
                        "state": "ENABLED",
                        "variants": {"w": format!("{writer}-{round}")},
                        "defaultVariant": "w",
                    });
                    service.put("f", &definition, None, "race").unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let stored = store.flag("f").unwrap().unwrap();
    assert_eq!(stored.version, 60);
    assert_eq!(
        evaluate(&service, "f").value.as_ref(),
        Some(&stored.definition["variants"]["w"])
    );
}
