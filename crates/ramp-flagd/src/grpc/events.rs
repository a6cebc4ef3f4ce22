//! flagd's `EventStream`: `provider_ready` on connect, `configuration_change` naming each
//! visible flag that was written, updated or deleted, and `keep_alive` after a quiet interval
//! so proxies do not drop an idle stream and clients notice a dead one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prost_types::Struct;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::StreamSettings;
use super::convert::struct_from_object;
use super::resolve::request_selector;
use super::selected::SelectedView;
use crate::change::ChangeKind;
use crate::source::FlagSource;

/// Events a stream may queue before a slow client holds its sender up.
const EVENT_BUFFER: usize = 16;

/// One event, independent of the protocol version that carries it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Event {
    /// `provider_ready`, `configuration_change` or `keep_alive`.
    pub(super) kind: &'static str,
    /// The event's payload, where it has one.
    pub(super) data: Option<Struct>,
}

impl Event {
    fn provider_ready() -> Event {
        Event {
            kind: "provider_ready",
            data: Some(Struct::default()),
        }
    }

    fn keep_alive() -> Event {
        Event {
            kind: "keep_alive",
            data: None,
        }
    }

    /// `{"flags": {key: {"type": "write" | "update" | "delete"}}}`.
    fn configuration_change(changes: &BTreeMap<String, ChangeKind>) -> Event {
        let flags: Map<String, Value> = changes
            .iter()
            .map(|(key, kind)| (key.clone(), json!({ "type": kind.as_str() })))
            .collect();
        let mut data = Map::new();
        data.insert("flags".to_owned(), Value::Object(flags));
        Event {
            kind: "configuration_change",
            data: Some(struct_from_object(&data)),
        }
    }
}

/// Starts the `EventStream` of one call: the flags its `flagd-selector` metadata shows in
/// `source`. The stream ends when the client goes away or the server shuts down.
pub(super) fn open_for_call<M>(
    metadata: &MetadataMap,
    source: &Arc<FlagSource>,
    streams: &StreamSettings,
) -> Result<ReceiverStream<Result<M, Status>>, Status>
where
    M: From<Event> + Send + 'static,
{
    let selector = request_selector(metadata, "")?;
    let view = SelectedView::new(Arc::clone(source), selector);
    Ok(open(view, streams.keep_alive, streams.stop.clone()))
}

/// Starts the events of `view` for one client; the stream ends when the client goes away or
/// `stop` turns true (server shutdown).
fn open<M>(
    view: SelectedView,
    keep_alive: Duration,
    stop: watch::Receiver<bool>,
) -> ReceiverStream<Result<M, Status>>
where
    M: From<Event> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(EVENT_BUFFER);
    tokio::spawn(run(view, keep_alive, stop, sender));
    ReceiverStream::new(receiver)
}

async fn run<M>(
    mut view: SelectedView,
    keep_alive: Duration,
    mut stop: watch::Receiver<bool>,
    sender: mpsc::Sender<Result<M, Status>>,
) where
    M: From<Event> + Send + 'static,
{
    let mut next = Event::provider_ready();
    loop {
        if sender.send(Ok(M::from(next))).await.is_err() {
            return;
        }
        next = tokio::select! {
            () = sender.closed() => return,
            _ = stop.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(keep_alive) => Event::keep_alive(),
            changes = view.next_change() => match changes {
                Some(changes) => Event::configuration_change(&changes),
                None => return,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::test_files::one_flag;
    use ramp_flags::model::Selector;
    use tokio_stream::StreamExt;

    #[test]
    fn configuration_changes_name_each_flag_and_kind() {
        let changes = BTreeMap::from([
            ("a".to_owned(), ChangeKind::Write),
            ("b".to_owned(), ChangeKind::Delete),
        ]);
        let event = Event::configuration_change(&changes);
        let data = super::super::convert::object_from_struct(event.data);
        assert_eq!(
            Value::Object(data),
            json!({"flags": {"a": {"type": "write"}, "b": {"type": "delete"}}})
        );
    }

    #[tokio::test]
    async fn ready_then_keep_alive_then_changes_until_stopped() {
        let source = Arc::new(FlagSource::new());
        source.put_source("s", one_flag(true));
        let (stop, stopped) = watch::channel(false);
        let view = SelectedView::new(Arc::clone(&source), Selector::All);
        let mut events = open::<Event>(view, Duration::from_millis(20), stopped);
        let kind = |event: Option<Result<Event, Status>>| event.expect("an event").unwrap().kind;
        assert_eq!(kind(events.next().await), "provider_ready");
        assert_eq!(kind(events.next().await), "keep_alive");
        source.put_source("s", one_flag(false));
        let change = loop {
            let event = events.next().await.expect("an event").unwrap();
            if event.kind != "keep_alive" {
                break event;
            }
        };
        assert_eq!(change.kind, "configuration_change");
        stop.send(true).unwrap();
        while let Some(event) = events.next().await {
            assert_eq!(
                event.unwrap().kind,
                "keep_alive",
                "only keep-alives may be in flight"
            );
        }
    }
}
