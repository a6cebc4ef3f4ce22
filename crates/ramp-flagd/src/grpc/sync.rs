//! `flagd.sync.v1.FlagSyncService`: whole flag configurations for clients that evaluate
//! in-process (flagd's in-process providers, or another flagd).
//!
//! A configuration is flagd's flag-file JSON, `{"flags": {key: flag}}`, holding exactly the
//! flags the selector shows. Each flag stands alone: `$evaluators` references are inlined and
//! the flag set's metadata is merged into the flag's (the flag's own keys win), so a client
//! needs nothing else to evaluate it.

use std::sync::Arc;

use prost_types::Struct;
use ramp_flags::model::{FlagStore, Selector};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::StreamSettings;
use super::proto::flagd::sync::v1::flag_sync_service_server::FlagSyncService;
use super::proto::flagd::sync::v1::{
    FetchAllFlagsRequest, FetchAllFlagsResponse, GetMetadataRequest, GetMetadataResponse,
    SyncFlagsRequest, SyncFlagsResponse,
};
use super::resolve::request_selector;
use super::selected::SelectedView;
use crate::source::FlagSource;

/// Configurations a stream may queue before a slow client holds its sender up; each is the
/// whole selection, so a short queue is plenty.
const SYNC_BUFFER: usize = 4;

/// The sync service.
#[derive(Debug, Clone)]
pub(super) struct FlagSync {
    source: Arc<FlagSource>,
    /// The static context in-process clients add to their evaluations.
    sync_context: Struct,
    streams: StreamSettings,
}

impl FlagSync {
    pub(super) fn new(
        source: Arc<FlagSource>,
        sync_context: Struct,
        streams: StreamSettings,
    ) -> FlagSync {
        FlagSync {
            source,
            sync_context,
            streams,
        }
    }
}

/// The flags `selector` shows in `store`, as one flag-file JSON document.
pub(super) fn configuration_json(store: &FlagStore, selector: &Selector) -> String {
    let flags: Map<String, Value> = store
        .select(selector)
        .iter()
        .map(|flag| (flag.key().to_owned(), flag.to_json()))
        .collect();
    let mut document = Map::new();
    document.insert("flags".to_owned(), Value::Object(flags));
    Value::Object(document).to_string()
}

#[tonic::async_trait]
impl FlagSyncService for FlagSync {
    type SyncFlagsStream = ReceiverStream<Result<SyncFlagsResponse, Status>>;

    async fn sync_flags(
        &self,
        request: Request<SyncFlagsRequest>,
    ) -> Result<Response<Self::SyncFlagsStream>, Status> {
        let selector = request_selector(request.metadata(), &request.get_ref().selector)?;
        let view = SelectedView::new(Arc::clone(&self.source), selector);
        let (sender, receiver) = mpsc::channel(SYNC_BUFFER);
        let sync_context = self.sync_context.clone();
        tokio::spawn(follow(
            view,
            sync_context,
            self.streams.stop.clone(),
            sender,
        ));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn fetch_all_flags(
        &self,
        request: Request<FetchAllFlagsRequest>,
    ) -> Result<Response<FetchAllFlagsResponse>, Status> {
        let selector = request_selector(request.metadata(), &request.get_ref().selector)?;
        let store = self.source.current();
        Ok(Response::new(FetchAllFlagsResponse {
            flag_configuration: configuration_json(&store, &selector),
        }))
    }

    async fn get_metadata(
        &self,
        _request: Request<GetMetadataRequest>,
    ) -> Result<Response<GetMetadataResponse>, Status> {
        // The sync context's predecessor: the same static context.
        Ok(Response::new(GetMetadataResponse {
            metadata: Some(self.sync_context.clone()),
        }))
    }
}

/// Sends the selection now and again after every update that changes it, until the client
/// goes away or `stop` turns true.
async fn follow(
    mut view: SelectedView,
    sync_context: Struct,
    mut stop: watch::Receiver<bool>,
    sender: mpsc::Sender<Result<SyncFlagsResponse, Status>>,
) {
    loop {
        let response = SyncFlagsResponse {
            flag_configuration: configuration_json(view.seen(), view.selector()),
            sync_context: Some(sync_context.clone()),
        };
        if sender.send(Ok(response)).await.is_err() {
            return;
        }
        tokio::select! {
            () = sender.closed() => return,
            _ = stop.wait_for(|stop| *stop) => return,
            changes = view.next_change() => if changes.is_none() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramp_flags::model::{FlagFile, Format};
    use serde_json::json;
    use std::time::Duration;

    /// How long [`follow`] may take to notice a change or a shutdown.
    const NOTICE_LIMIT: Duration = Duration::from_secs(5);

    const SHOP: &str = r#"{
      "metadata": {"flagSetId": "shop", "version": "7"},
      "$evaluators": {"vip": {"==": [{"var": "tier"}, "gold"]}},
      "flags": {
        "banner": {"state": "ENABLED", "variants": {"on": true, "off": false},
                   "defaultVariant": "off", "metadata": {"version": "8"},
                   "targeting": {"if": [{"$ref": "vip"}, "on", null]}}
      }
    }"#;

    #[test]
    fn configurations_inline_evaluators_and_merge_set_metadata() {
        let file = FlagFile::parse(SHOP, Format::Json).expect("valid flag file");
        let store = FlagStore::new(vec![("shop.json".to_owned(), file)]);
        let document: Value =
            serde_json::from_str(&configuration_json(&store, &Selector::All)).unwrap();
        assert_eq!(
            document,
            json!({"flags": {"banner": {
                "state": "ENABLED",
                "variants": {"on": true, "off": false},
                "defaultVariant": "off",
                "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "on", null]},
                "metadata": {"flagSetId": "shop", "version": "8"}
            }}})
        );
        let other = Selector::FlagSet("ops".to_owned());
        assert_eq!(configuration_json(&store, &other), r#"{"flags":{}}"#);
    }

    #[tokio::test]
    async fn follows_changes_and_stops_on_shutdown() {
        let source = Arc::new(FlagSource::new());
        let file = FlagFile::parse(SHOP, Format::Json).expect("valid flag file");
        source.put_source("shop.json", file.clone());
        let view = SelectedView::new(Arc::clone(&source), Selector::All);
        let (stop, stopped) = watch::channel(false);
        let (sender, mut receiver) = mpsc::channel(SYNC_BUFFER);
        let context = Struct::default();
        let task = tokio::spawn(follow(view, context, stopped, sender));
        let first = receiver.recv().await.unwrap().unwrap();
        assert!(first.flag_configuration.contains("banner"));
        source.remove_source("shop.json");
        let second = tokio::time::timeout(NOTICE_LIMIT, receiver.recv())
            .await
            .expect("a configuration after the change")
            .unwrap()
            .unwrap();
        assert_eq!(second.flag_configuration, r#"{"flags":{}}"#);
        stop.send(true).unwrap();
        tokio::time::timeout(NOTICE_LIMIT, task)
            .await
            .expect("the stream ends on shutdown")
            .unwrap();
    }
}
