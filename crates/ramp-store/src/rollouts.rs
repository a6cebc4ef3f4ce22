//! Rollout state: one opaque JSON document per service, saved with the event explaining it.

use rusqlite::{Connection, OptionalExtension, params};

use crate::events::{self, EventRow, NewEvent};
use crate::{StoreError, Timestamp, services};

pub(crate) fn save(
    conn: &Connection,
    service: &str,
    state_json: &str,
    event: &NewEvent,
) -> Result<EventRow, StoreError> {
    services::require(conn, service)?;
    // Checked now rather than when a restarted control plane fails to resume from it.
    serde_json::from_str::<serde::de::IgnoredAny>(state_json)?;
    conn.execute(
        "INSERT INTO rollout_state (service, state_json, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (service) DO UPDATE SET
             state_json = excluded.state_json, updated_at = excluded.updated_at",
        params![service, state_json, Timestamp::now().0],
    )?;
    if event.service.is_some() {
        events::append(conn, event)
    } else {
        events::append(
            conn,
            &NewEvent {
                service: Some(service.to_owned()),
                ..event.clone()
            },
        )
    }
}

pub(crate) fn get(conn: &Connection, service: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT state_json FROM rollout_state WHERE service = ?1",
            [service],
            |r| r.get(0),
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::testutil::{event, temp_dir};
    use crate::{EventQuery, NewEvent, Store, StoreError};

    #[test]
    fn save_writes_state_and_event() {
        let dir = temp_dir("state-save");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        assert_eq!(store.state("web").unwrap(), None);
        let ev = store
            .save_state("web", r#"{"step":1}"#, &event("web", "step"))
            .unwrap();
        assert_eq!(
            store.state("web").unwrap().as_deref(),
            Some(r#"{"step":1}"#)
        );
        assert_eq!(store.events(&EventQuery::default()).unwrap(), [ev]);
        store
            .save_state("web", r#"{"step":2}"#, &event("web", "step"))
            .unwrap();
        assert_eq!(
            store.state("web").unwrap().as_deref(),
            Some(r#"{"step":2}"#)
        );
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 2);

        // An event without a service is filed under the service whose state it explains.
        let anonymous = NewEvent {
            actor: "rollout".into(),
            service: None,
            kind: "step".into(),
            message: "m".into(),
            data: json!(null),
        };
        let ev = store.save_state("web", "{}", &anonymous).unwrap();
        assert_eq!(ev.service.as_deref(), Some("web"));
    }

    #[test]
    fn failing_transaction_writes_neither_state_nor_event() {
        let dir = temp_dir("state-atomic");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        store
            .save_state("web", r#"{"step":1}"#, &event("web", "step"))
            .unwrap();
        let err = store
            .transaction(|tx| {
                tx.save_state("web", r#"{"step":2}"#, &event("web", "step"))?;
                tx.put_service("other", "")?;
                assert_eq!(tx.state("web")?.as_deref(), Some(r#"{"step":2}"#));
                Err::<(), _>(StoreError::Aborted("metrics gate failed".into()))
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Aborted(_)), "{err}");
        assert_eq!(
            store.state("web").unwrap().as_deref(),
            Some(r#"{"step":1}"#)
        );
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 1);
        assert_eq!(store.service("other").unwrap(), None);

        // A failure inside save_state itself (an event that cannot be written: unknown
        // service for the state) leaves nothing behind either.
        assert!(
            store
                .save_state("ghost", "{}", &event("ghost", "x"))
                .is_err()
        );
        assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 1);
    }

    #[test]
    fn panicking_transaction_rolls_back_and_store_stays_usable() {
        let dir = temp_dir("state-panic");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.transaction(|tx| -> Result<(), StoreError> {
                tx.save_state("web", "{}", &event("web", "x"))?;
                panic!("boom");
            })
        }));
        assert!(result.is_err());
        assert_eq!(store.state("web").unwrap(), None);
        store.save_state("web", "{}", &event("web", "x")).unwrap();
        assert_eq!(store.state("web").unwrap().as_deref(), Some("{}"));
    }

    #[test]
    fn invalid_json_state_is_refused() {
        let dir = temp_dir("state-json");
        let store = Store::open(dir.path()).unwrap();
        store.put_service("web", "").unwrap();
        let err = store
            .save_state("web", "{not json", &event("web", "x"))
            .unwrap_err();
        assert!(matches!(err, StoreError::Json(_)), "{err}");
        assert!(store.events(&EventQuery::default()).unwrap().is_empty());
    }
}
