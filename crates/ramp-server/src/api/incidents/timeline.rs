//! The events around an incident: from the start of the rollout that was rolled back up to the
//! next rollout of the service (or now).

use std::collections::VecDeque;

use ramp_store::{EventQuery, EventRow, IncidentRow, Store, StoreError, Timestamp};

/// How far back the timeline reaches when the incident does not say when its rollout began.
const LOOKBACK_MS: i64 = 10 * 60 * 1000;

/// At most this many events are shown. When there are more, the oldest ones up to the incident
/// and the newest ones after it are left out, so the failure itself is always there.
pub(super) const MAX_EVENTS: usize = 2000;

/// Events read from the store per query while scanning a service's log.
const PAGE: usize = 500;

/// The events that tell an incident's story, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Timeline {
    pub(super) events: Vec<EventRow>,
    /// Whether events of the window were left out to stay within [`MAX_EVENTS`].
    pub(super) truncated: bool,
}

/// Where the window begins: when the rollout started (`data.rolloutStarted`, milliseconds since
/// the epoch), or ten minutes before the incident when that is missing or not before it.
pub(super) fn window_start(incident: &IncidentRow) -> Timestamp {
    let fallback = incident.at.0.saturating_sub(LOOKBACK_MS);
    let started = incident.data.get("rolloutStarted").and_then(|v| v.as_i64());
    Timestamp(
        started
            .filter(|&ms| ms <= incident.at.0)
            .unwrap_or(fallback),
    )
}

/// Collects the window from the events of one service, fed in ascending id order.
#[derive(Debug)]
struct Collector {
    from: Timestamp,
    incident_at: Timestamp,
    kept: VecDeque<EventRow>,
    truncated: bool,
    done: bool,
}

impl Collector {
    fn new(incident: &IncidentRow) -> Collector {
        Collector {
            from: window_start(incident),
            incident_at: incident.at,
            kept: VecDeque::new(),
            truncated: false,
            done: false,
        }
    }

    /// Takes the next event; after the next `RolloutStarted` past the incident, takes no more.
    fn offer(&mut self, event: EventRow) {
        if self.done || event.at < self.from {
            return;
        }
        if event.at <= self.incident_at {
            self.kept.push_back(event);
            if self.kept.len() > MAX_EVENTS {
                self.kept.pop_front();
                self.truncated = true;
            }
        } else if event.kind == "RolloutStarted" {
            self.done = true;
        } else if self.kept.len() >= MAX_EVENTS {
            self.truncated = true;
            self.done = true;
        } else {
            self.kept.push_back(event);
        }
    }

    fn finish(self) -> Timeline {
        Timeline {
            events: self.kept.into(),
            truncated: self.truncated,
        }
    }
}

/// The incident's timeline from the event log, read page by page.
pub(super) fn load(store: &Store, incident: &IncidentRow) -> Result<Timeline, StoreError> {
    let mut collector = Collector::new(incident);
    let mut after_id = None;
    loop {
        let page = store.events(&EventQuery {
            service: Some(incident.service.clone()),
            after_id,
            limit: Some(PAGE),
        })?;
        let full = page.len() == PAGE;
        after_id = page.last().map(|e| e.id).or(after_id);
        for event in page {
            collector.offer(event);
        }
        if collector.done || !full {
            return Ok(collector.finish());
        }
    }
}

#[cfg(test)]
mod tests {
    use ramp_store::{EventRow, IncidentRow, Timestamp};
    use serde_json::json;

    use super::{Collector, MAX_EVENTS, Timeline, window_start};

    const MINUTE: i64 = 60_000;
    const AT: i64 = 1_763_800_000_000;

    fn incident(data: serde_json::Value) -> IncidentRow {
        IncidentRow {
            id: 1,
            at: Timestamp(AT),
            service: "web".into(),
            rollout: 2,
            revision: 3,
            stable_revision: Some(2),
            trigger: "analysis".into(),
            reason: "failed".into(),
            data,
        }
    }

    fn event(id: u64, at: i64, kind: &str) -> EventRow {
        EventRow {
            id,
            at: Timestamp(at),
            actor: "ramp".into(),
            service: Some("web".into()),
            kind: kind.into(),
            message: format!("{kind} {id}"),
            data: json!(null),
        }
    }

    fn select(incident: &IncidentRow, events: Vec<EventRow>) -> Timeline {
        let mut collector = Collector::new(incident);
        for e in events {
            collector.offer(e);
        }
        collector.finish()
    }

    fn ids(timeline: &Timeline) -> Vec<u64> {
        timeline.events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn window_starts_at_the_rollout_or_ten_minutes_before() {
        let started = AT - 3 * MINUTE;
        assert_eq!(
            window_start(&incident(json!({ "rolloutStarted": started }))),
            Timestamp(started)
        );
        for data in [
            json!({}),
            json!(null),
            json!({ "rolloutStarted": null }),
            json!({ "rolloutStarted": "yesterday" }),
            json!({ "rolloutStarted": AT + 1 }),
        ] {
            assert_eq!(
                window_start(&incident(data.clone())),
                Timestamp(AT - 10 * MINUTE),
                "{data}"
            );
        }
    }

    #[test]
    fn from_rollout_start_to_the_next_rollout() {
        let incident = incident(json!({ "rolloutStarted": AT - 5 * MINUTE }));
        let events = vec![
            event(1, AT - 20 * MINUTE, "RolloutStarted"), // an earlier rollout
            event(2, AT - 5 * MINUTE, "RolloutStarted"),  // this one
            event(3, AT - MINUTE, "StepCompleted"),
            event(4, AT, "Aborted"), // written with the incident
            event(5, AT + MINUTE, "InstanceFailed"),
            event(6, AT + 2 * MINUTE, "RolloutStarted"), // the next rollout
            event(7, AT + 3 * MINUTE, "Completed"),
        ];
        let timeline = select(&incident, events);
        assert_eq!(ids(&timeline), [2, 3, 4, 5]);
        assert!(!timeline.truncated);
    }

    #[test]
    fn without_a_next_rollout_runs_to_the_end_of_the_log() {
        let incident = incident(json!({}));
        let events = vec![
            event(1, AT - 11 * MINUTE, "Applied"),
            event(2, AT - 9 * MINUTE, "Applied"),
            event(3, AT, "Aborted"),
            event(4, AT + 60 * MINUTE, "Scaled"),
        ];
        assert_eq!(ids(&select(&incident, events)), [2, 3, 4]);
    }

    #[test]
    fn a_long_window_keeps_the_events_next_to_the_incident() {
        let incident = incident(json!({ "rolloutStarted": AT - 60 * MINUTE }));
        let before = MAX_EVENTS as u64 + 10;
        let mut events: Vec<EventRow> = (1..=before)
            .map(|id| event(id, AT - 60 * MINUTE + id as i64, "StateChanged"))
            .collect();
        events.extend((1..=20).map(|i| event(before + i, AT + i as i64, "Scaled")));
        let timeline = select(&incident, events);
        assert!(timeline.truncated);
        assert_eq!(timeline.events.len(), MAX_EVENTS);
        // The last event before the incident is there; the oldest ten and everything after
        // the incident made room for it.
        assert_eq!(timeline.events.last().map(|e| e.id), Some(before));
        assert_eq!(timeline.events.first().map(|e| e.id), Some(11));
    }
}
