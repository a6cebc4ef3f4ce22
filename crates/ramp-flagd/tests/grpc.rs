//! flagd's gRPC surfaces over real sockets with generated clients: typed resolves on v1 and v2
//! with every reason and error status, bulk evaluation, selectors, event streams, flag sync,
//! gRPC health beside the management endpoints, authentication and message limits.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prost_types::value::Kind;
use ramp_flagd::grpc::{GrpcOptions, serve_evaluation, serve_sync};
use ramp_flagd::{EvaluationMetrics, FlagSource, management};
use ramp_flags::model::{FlagFile, Format};
use ramp_flags::resolve::Reason;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status, Streaming};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use ramp_flagd::grpc::client::flagd::evaluation::{v1, v2};
use ramp_flagd::grpc::client::flagd::sync::v1 as sync;
use support::StopSwitch;

const SHOP: &str = r##"{
  "metadata": {"flagSetId": "shop", "version": "7"},
  "$evaluators": {"is_a": {"==": [{"var": "email"}, "a@example.com"]}},
  "flags": {
    "static-bool": {"state": "ENABLED", "variants": {"on": true, "off": false},
                    "defaultVariant": "on", "metadata": {"owner": "team-a"}},
    "color": {"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"},
              "defaultVariant": "red",
              "targeting": {"if": [{"$ref": "is_a"}, "blue", null]}},
    "count": {"state": "ENABLED", "variants": {"one": 1, "ten": 10}, "defaultVariant": "ten",
              "targeting": {"if": [{">=": [{"var": "age"}, 18]}, "one", null]}},
    "ratio": {"state": "ENABLED", "variants": {"half": 0.5}, "defaultVariant": "half"},
    "config": {"state": "ENABLED", "variants": {"small": {"size": 1, "tags": ["x"]}},
               "defaultVariant": "small"},
    "disabled": {"state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"},
    "no-default": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": null},
    "broken-rule": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                    "targeting": {"$ref": "missing"}},
    "bad-variant": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                    "targeting": {"if": [true, "zzz", null]}}
  }
}"##;

const OPS: &str = r#"{
  "metadata": {"flagSetId": "ops"},
  "flags": {"ops-only": {"state": "ENABLED", "variants": {"a": 1.5}, "defaultVariant": "a"}}
}"#;

/// How long a stream may take to deliver an expected message.
const STREAM_LIMIT: Duration = Duration::from_secs(10);

fn flag_file(text: &str) -> FlagFile {
    FlagFile::parse(text, Format::Json).expect("valid flag file")
}

/// The evaluation, sync and management servers over one source, on free local ports.
struct Servers {
    evaluation: SocketAddr,
    sync: SocketAddr,
    management: SocketAddr,
    source: Arc<FlagSource>,
    metrics: Arc<EvaluationMetrics>,
    stop: StopSwitch,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Servers {
    /// Serves SHOP (source `shop`) and OPS (source `ops`), ready.
    async fn start(options: GrpcOptions) -> Servers {
        let servers = Servers::start_unready(options).await;
        servers.source.put_source("shop", flag_file(SHOP));
        servers.source.put_source("ops", flag_file(OPS));
        servers.source.mark_ready();
        servers
    }

    /// Serves an empty source that is not ready yet.
    async fn start_unready(options: GrpcOptions) -> Servers {
        let source = Arc::new(FlagSource::new());
        let metrics = Arc::new(EvaluationMetrics::new());
        let stop = StopSwitch::new();
        let bind = || TcpListener::bind("127.0.0.1:0");
        let (evaluation, sync, management) = (bind().await, bind().await, bind().await);
        let (evaluation, sync, management) = (
            evaluation.expect("bind evaluation"),
            sync.expect("bind sync"),
            management.expect("bind management"),
        );
        let addresses = [&evaluation, &sync, &management]
            .map(|listener| listener.local_addr().expect("local address"));
        let tasks = vec![
            tokio::spawn(serve_evaluation(
                evaluation,
                Arc::clone(&source),
                Arc::clone(&metrics),
                options.clone(),
                stop.shutdown(),
            )),
            tokio::spawn(serve_sync(
                sync,
                Arc::clone(&source),
                options,
                stop.shutdown(),
            )),
            tokio::spawn(management::serve(
                management,
                Arc::clone(&source),
                Arc::clone(&metrics),
                stop.shutdown(),
            )),
        ];
        Servers {
            evaluation: addresses[0],
            sync: addresses[1],
            management: addresses[2],
            source,
            metrics,
            stop,
            tasks,
        }
    }

    async fn v1(&self) -> v1::service_client::ServiceClient<Channel> {
        v1::service_client::ServiceClient::new(channel(self.evaluation).await)
    }

    async fn v2(&self) -> v2::service_client::ServiceClient<Channel> {
        v2::service_client::ServiceClient::new(channel(self.evaluation).await)
    }

    async fn sync(&self) -> sync::flag_sync_service_client::FlagSyncServiceClient<Channel> {
        sync::flag_sync_service_client::FlagSyncServiceClient::new(channel(self.sync).await)
    }

    async fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(channel(self.management).await)
    }

    /// Stops every server and checks that each one ends cleanly, open streams included.
    async fn shut_down(self) {
        self.stop.stop().expect("servers listening");
        for task in self.tasks {
            let result = tokio::time::timeout(STREAM_LIMIT, task)
                .await
                .expect("the server stops in time")
                .expect("the server task completes");
            result.expect("the server ends without error");
        }
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid endpoint")
        .connect()
        .await
        .expect("connect")
}

/// A JSON object as a protobuf `Struct`.
fn to_struct(value: Value) -> prost_types::Struct {
    let Value::Object(object) = value else {
        panic!("not an object: {value}");
    };
    prost_types::Struct {
        fields: object
            .into_iter()
            .map(|(key, value)| (key, to_proto_value(value)))
            .collect(),
    }
}

fn to_proto_value(value: Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(flag) => Kind::BoolValue(flag),
        Value::Number(number) => Kind::NumberValue(number.as_f64().expect("finite")),
        Value::String(text) => Kind::StringValue(text),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_proto_value).collect(),
        }),
        object @ Value::Object(_) => Kind::StructValue(to_struct(object)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A protobuf `Struct` as JSON (numbers as JSON floats, as the wire carries them).
fn to_json(value: &prost_types::Struct) -> Value {
    Value::Object(
        value
            .fields
            .iter()
            .map(|(key, value)| (key.clone(), proto_value_to_json(value)))
            .collect(),
    )
}

fn proto_value_to_json(value: &prost_types::Value) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(flag)) => json!(flag),
        Some(Kind::NumberValue(number)) => json!(number),
        Some(Kind::StringValue(text)) => json!(text),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(proto_value_to_json).collect())
        }
        Some(Kind::StructValue(object)) => to_json(object),
    }
}

fn with_metadata<T>(message: T, pairs: &[(&'static str, &str)]) -> Request<T> {
    let mut request = Request::new(message);
    for (key, value) in pairs {
        let value = value.parse().expect("ascii metadata");
        request.metadata_mut().insert(*key, value);
    }
    request
}

fn v2_bool(key: &str) -> v2::ResolveBooleanRequest {
    v2::ResolveBooleanRequest {
        flag_key: key.to_owned(),
        context: None,
    }
}

fn v2_string(key: &str, context: Value) -> v2::ResolveStringRequest {
    v2::ResolveStringRequest {
        flag_key: key.to_owned(),
        context: Some(to_struct(context)),
    }
}

fn v2_int(key: &str, context: Value) -> v2::ResolveIntRequest {
    v2::ResolveIntRequest {
        flag_key: key.to_owned(),
        context: Some(to_struct(context)),
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, Status>) -> Code {
    result.expect_err("the call fails").code()
}

/// The next message of a stream, within [`STREAM_LIMIT`].
async fn next<T>(stream: &mut Streaming<T>) -> T {
    tokio::time::timeout(STREAM_LIMIT, stream.message())
        .await
        .expect("a message in time")
        .expect("a healthy stream")
        .expect("the stream is still open")
}

#[tokio::test]
async fn v2_typed_resolves_serve_value_variant_reason_and_metadata() {
    let servers = Servers::start(GrpcOptions::default()).await;
    let mut client = servers.v2().await;

    let boolean = client
        .resolve_boolean(v2_bool("static-bool"))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(boolean.value, Some(true));
    assert_eq!(boolean.variant.as_deref(), Some("on"));
    assert_eq!(boolean.reason, "STATIC");
    assert_eq!(
        to_json(boolean.metadata.as_ref().expect("metadata")),
        json!({"flagSetId": "shop", "version": "7", "owner": "team-a"})
    );

    let matched = client
        .resolve_string(v2_string("color", json!({"email": "a@example.com"})))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(
        (matched.value.as_deref(), matched.variant.as_deref()),
        (Some("#00f"), Some("blue"))
    );
    assert_eq!(matched.reason, "TARGETING_MATCH");
    let fallback = client
        .resolve_string(v2_string("color", json!({"email": "z@example.com"})))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(
        (fallback.value.as_deref(), fallback.reason.as_str()),
        (Some("#f00"), "DEFAULT")
    );

    // A number in the context arrives as a double and still compares as the integer it was.
    let adult = client
        .resolve_int(v2_int("count", json!({"age": 30})))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(
        (adult.value, adult.variant.as_deref(), adult.reason.as_str()),
        (Some(1), Some("one"), "TARGETING_MATCH")
    );
    let minor = client
        .resolve_int(v2_int("count", json!({"age": 12})))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(minor.value, Some(10));

    let ratio = client
        .resolve_float(v2::ResolveFloatRequest {
            flag_key: "ratio".to_owned(),
            context: None,
        })
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(ratio.value, Some(0.5));
    // Integer variants resolve as floats too.
    let count_as_float = client
        .resolve_float(v2::ResolveFloatRequest {
            flag_key: "count".to_owned(),
            context: None,
        })
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(count_as_float.value, Some(10.0));

    let config = client
        .resolve_object(v2::ResolveObjectRequest {
            flag_key: "config".to_owned(),
            context: None,
        })
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(
        to_json(config.value.as_ref().expect("a value")),
        json!({"size": 1.0, "tags": ["x"]})
    );
    assert_eq!(config.variant.as_deref(), Some("small"));
    servers.shut_down().await;
}

#[tokio::test]
async fn v2_omits_value_and_variant_for_disabled_flags_and_code_defaults() {
    let servers = Servers::start(GrpcOptions::default()).await;
    let mut client = servers.v2().await;
    let disabled = client
        .resolve_boolean(v2_bool("disabled"))
        .await
        .expect("a disabled flag is a success")
        .into_inner();
    assert_eq!(disabled.reason, "DISABLED");
    assert_eq!((disabled.value, disabled.variant), (None, None));
    assert_eq!(
        to_json(&disabled.metadata.expect("metadata"))["flagSetId"],
        json!("shop")
    );

    let code_default = client
        .resolve_string(v2_string("no-default", json!({})))
        .await
        .expect("no default variant is a success")
        .into_inner();
    assert_eq!(code_default.reason, "DEFAULT");
    assert_eq!((code_default.value, code_default.variant), (None, None));
    servers.shut_down().await;
}

#[tokio::test]
async fn errors_are_the_statuses_flagd_sends() {
    let servers = Servers::start(GrpcOptions::default()).await;
    let mut v2 = servers.v2().await;
    let mut v1 = servers.v1().await;

    assert_eq!(
        code(v2.resolve_boolean(v2_bool("nope")).await),
        Code::NotFound
    );
    // A string flag resolved as an integer.
    assert_eq!(
        code(v2.resolve_int(v2_int("color", json!({}))).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(v2.resolve_boolean(v2_bool("broken-rule")).await),
        Code::DataLoss
    );
    assert_eq!(
        code(v2.resolve_boolean(v2_bool("bad-variant")).await),
        Code::Unknown
    );
    let v1_mismatch = v1
        .resolve_boolean(v1::ResolveBooleanRequest {
            flag_key: "color".to_owned(),
            context: None,
        })
        .await;
    assert_eq!(code(v1_mismatch), Code::InvalidArgument);
    let v1_missing = v1
        .resolve_string(v1::ResolveStringRequest {
            flag_key: "nope".to_owned(),
            context: None,
        })
        .await;
    assert_eq!(code(v1_missing), Code::NotFound);

    // Every evaluation was counted, failures included; unknown keys apart.
    assert_eq!(servers.metrics.count("broken-rule", Reason::Error), 1);
    assert_eq!(servers.metrics.count("color", Reason::Error), 2);
    assert_eq!(servers.metrics.unknown_flag_count(), 2);
    servers.shut_down().await;
}

#[tokio::test]
async fn v1_resolves_with_zero_values_where_v2_sends_none() {
    let servers = Servers::start(GrpcOptions::default()).await;
    let mut client = servers.v1().await;
    let boolean = client
        .resolve_boolean(v1::ResolveBooleanRequest {
            flag_key: "static-bool".to_owned(),
            context: None,
        })
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(
        (
            boolean.value,
            boolean.variant.as_str(),
            boolean.reason.as_str()
        ),
        (true, "on", "STATIC")
    );
    assert_eq!(
        to_json(&boolean.metadata.expect("metadata"))["owner"],
        json!("team-a")
    );

    let string = client
        .resolve_string(v1::ResolveStringRequest {
            flag_key: "color".to_owned(),
            context: Some(to_struct(json!({"email": "a@example.com"}))),
        })
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(
        (string.value.as_str(), string.reason.as_str()),
        ("#00f", "TARGETING_MATCH")
    );
    let int = client
        .resolve_int(v1::ResolveIntRequest {
            flag_key: "count".to_owned(),
            context: None,
        })
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!((int.value, int.variant.as_str()), (10, "ten"));
    let float = client
        .resolve_float(v1::ResolveFloatRequest {
            flag_key: "ratio".to_owned(),
            context: None,
        })
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(float.value, 0.5);
    let object = client
        .resolve_object(v1::ResolveObjectRequest {
            flag_key: "config".to_owned(),
            context: None,
        })
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(to_json(&object.value.expect("a value"))["size"], json!(1.0));

    let disabled = client
        .resolve_boolean(v1::ResolveBooleanRequest {
            flag_key: "disabled".to_owned(),
            context: None,
        })
        .await
        .expect("a disabled flag is a success")
        .into_inner();
    assert_eq!(
        (
            disabled.value,
            disabled.variant.as_str(),
            disabled.reason.as_str()
        ),
        (false, "", "DISABLED")
    );

    // v1 cannot say "no value": a flag without a default variant sends the caller to its own.
    let code_default = client
        .resolve_string(v1::ResolveStringRequest {
            flag_key: "no-default".to_owned(),
            context: None,
        })
        .await;
    assert_eq!(code(code_default), Code::NotFound);
    servers.shut_down().await;
}

#[tokio::test]
async fn resolve_all_returns_every_selected_flag_with_set_metadata() {
    let servers = Servers::start(GrpcOptions::default()).await;
    let mut client = servers.v1().await;
    let all = client
        .resolve_all(v1::ResolveAllRequest {
            context: Some(to_struct(json!({"email": "a@example.com"}))),
        })
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(all.flags.len(), 10, "{:?}", all.flags.keys());
    use v1::any_flag::Value as Any;
    let flag = |key: &str| {
        all.flags
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    assert_eq!(flag("static-bool").value, Some(Any::BoolValue(true)));
    assert_eq!(
        to_json(flag("static-bool").metadata.as_ref().expect("metadata"))["owner"],
        json!("team-a")
    );
    assert_eq!(
        flag("color").value,
        Some(Any::StringValue("#00f".to_owned()))
    );
    assert_eq!(flag("color").reason, "TARGETING_MATCH");
    assert_eq!(flag("count").value, Some(Any::DoubleValue(10.0)));
    assert_eq!(flag("ops-only").value, Some(Any::DoubleValue(1.5)));
    let Some(Any::ObjectValue(config)) = &flag("config").value else {
        panic!("config is not an object: {:?}", flag("config"));
    };
    assert_eq!(to_json(config)["tags"], json!(["x"]));
    assert_eq!(
        (flag("disabled").reason.as_str(), &flag("disabled").value),
        ("DISABLED", &None)
    );
    assert_eq!(
        (
            flag("broken-rule").reason.as_str(),
            &flag("broken-rule").value
        ),
        ("ERROR", &None)
    );
    assert_eq!(flag("no-default").reason, "DEFAULT");

    let ops = client
        .resolve_all(with_metadata(
            v1::ResolveAllRequest { context: None },
            &[("flagd-selector", "flagSetId=ops")],
        ))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(ops.flags.keys().collect::<Vec<_>>(), ["ops-only"]);
    assert_eq!(
        to_json(&ops.metadata.expect("set metadata")),
        json!({"flagSetId": "ops"})
    );
    assert_eq!(servers.metrics.count("ops-only", Reason::Static), 2);
    servers.shut_down().await;
}

#[tokio::test]
async fn the_selector_header_narrows_single_evaluations() {
    let servers = Servers::start(GrpcOptions::default()).await;
    let mut client = servers.v2().await;
    let ops_only = [("flagd-selector", "flagSetId=ops")];
    let hidden = client
        .resolve_boolean(with_metadata(v2_bool("static-bool"), &ops_only))
        .await;
    assert_eq!(code(hidden), Code::NotFound);
    let visible = client
        .resolve_float(with_metadata(
            v2::ResolveFloatRequest {
                flag_key: "ops-only".to_owned(),
                context: None,
            },
            &[("flagd-selector", "source=ops")],
        ))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(visible.value, Some(1.5));
    let unparsable = client
        .resolve_boolean(with_metadata(
            v2_bool("static-bool"),
            &[("flagd-selector", "team=web")],
        ))
        .await;
    assert_eq!(code(unparsable), Code::InvalidArgument);
    servers.shut_down().await;
}

const SHOP_EDITED: &str = r##"{
  "metadata": {"flagSetId": "shop", "version": "7"},
  "flags": {
    "static-bool": {"state": "ENABLED", "variants": {"on": true, "off": false},
                    "defaultVariant": "on", "metadata": {"owner": "team-a"}},
    "color": {"state": "ENABLED", "variants": {"red": "#f00"}, "defaultVariant": "red"},
    "fresh": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}
  }
}"##;

fn change_data(event: &v2::EventStreamResponse) -> Value {
    assert_eq!(event.r#type, "configuration_change");
    to_json(event.data.as_ref().expect("change data"))
}

#[tokio::test]
async fn event_streams_announce_ready_then_each_visible_change() {
    let servers = Servers::start(GrpcOptions::default()).await;
    let mut client = servers.v2().await;
    let mut events = client
        .event_stream(v2::EventStreamRequest {})
        .await
        .expect("stream opens")
        .into_inner();
    assert_eq!(next(&mut events).await.r#type, "provider_ready");

    servers.source.put_source("shop", flag_file(SHOP_EDITED));
    let change = change_data(&next(&mut events).await);
    assert_eq!(change["flags"]["fresh"], json!({"type": "write"}));
    assert_eq!(change["flags"]["color"], json!({"type": "update"}));
    assert_eq!(change["flags"]["count"], json!({"type": "delete"}));
    assert!(
        change["flags"].get("static-bool").is_none(),
        "unchanged flags are not listed: {change}"
    );

    // The v1 stream behaves the same, and a selector hides other sets' changes.
    let mut v1 = servers.v1().await;
    let mut ops_events = v1
        .event_stream(with_metadata(
            v1::EventStreamRequest {},
            &[("flagd-selector", "flagSetId=ops")],
        ))
        .await
        .expect("stream opens")
        .into_inner();
    assert_eq!(next(&mut ops_events).await.r#type, "provider_ready");
    servers.source.put_source("shop", flag_file(SHOP));
    servers.source.remove_source("ops");
    let ops_change = next(&mut ops_events).await;
    assert_eq!(ops_change.r#type, "configuration_change");
    assert_eq!(
        to_json(ops_change.data.as_ref().expect("change data")),
        json!({"flags": {"ops-only": {"type": "delete"}}}),
        "the shop change before it is not this stream's business"
    );
    servers.shut_down().await;
}

#[tokio::test]
async fn idle_event_streams_send_keep_alive() {
    let options = GrpcOptions {
        keep_alive: Duration::from_millis(50),
        ..GrpcOptions::default()
    };
    let servers = Servers::start(options).await;
    let mut client = servers.v1().await;
    let mut events = client
        .event_stream(v1::EventStreamRequest {})
        .await
        .expect("stream opens")
        .into_inner();
    assert_eq!(next(&mut events).await.r#type, "provider_ready");
    let quiet = next(&mut events).await;
    assert_eq!((quiet.r#type.as_str(), quiet.data), ("keep_alive", None));
    servers.shut_down().await;
}

fn flag_keys(configuration: &str) -> Vec<String> {
    let document: Value = serde_json::from_str(configuration).expect("JSON configuration");
    let flags = document["flags"].as_object().expect("a flags object");
    flags.keys().cloned().collect()
}

#[tokio::test]
async fn sync_streams_the_selected_configuration_and_every_change_to_it() {
    let servers = Servers::start(GrpcOptions::default()).await;
    let mut client = servers.sync().await;
    let mut everything = client
        .sync_flags(sync::SyncFlagsRequest {
            provider_id: "test".to_owned(),
            selector: String::new(),
        })
        .await
        .expect("stream opens")
        .into_inner();
    let first = next(&mut everything).await;
    assert_eq!(first.sync_context, Some(prost_types::Struct::default()));
    let document: Value = serde_json::from_str(&first.flag_configuration).unwrap();
    assert_eq!(document["flags"].as_object().unwrap().len(), 10);
    assert_eq!(
        document["flags"]["color"]["targeting"],
        json!({"if": [{"==": [{"var": "email"}, "a@example.com"]}, "blue", null]}),
        "evaluators are inlined"
    );
    assert_eq!(
        document["flags"]["static-bool"]["metadata"],
        json!({"flagSetId": "shop", "version": "7", "owner": "team-a"})
    );

    // The deprecated field selects too; the header would win over it.
    let mut ops = client
        .sync_flags(sync::SyncFlagsRequest {
            provider_id: String::new(),
            selector: "flagSetId=ops".to_owned(),
        })
        .await
        .expect("stream opens")
        .into_inner();
    let ops_first = next(&mut ops).await;
    assert_eq!(flag_keys(&ops_first.flag_configuration), ["ops-only"]);

    servers.source.put_source("shop", flag_file(SHOP_EDITED));
    let edited = next(&mut everything).await;
    assert_eq!(
        flag_keys(&edited.flag_configuration),
        ["color", "fresh", "ops-only", "static-bool"]
    );
    let ops_edit = r#"{"metadata": {"flagSetId": "ops"}, "flags": {
        "ops-only": {"state": "DISABLED", "variants": {"a": 1.5}, "defaultVariant": "a"}}}"#;
    servers.source.put_source("ops", flag_file(ops_edit));
    // The shop edit did not touch the ops selection, so the next ops message is the ops edit.
    let ops_second = next(&mut ops).await;
    let document: Value = serde_json::from_str(&ops_second.flag_configuration).unwrap();
    assert_eq!(document["flags"]["ops-only"]["state"], json!("DISABLED"));

    let header_wins = client
        .sync_flags(with_metadata(
            sync::SyncFlagsRequest {
                provider_id: String::new(),
                selector: "flagSetId=ops".to_owned(),
            },
            &[("flagd-selector", "source=shop")],
        ))
        .await
        .expect("stream opens")
        .into_inner();
    let mut header_wins = header_wins;
    let shop_only = next(&mut header_wins).await;
    assert_eq!(
        flag_keys(&shop_only.flag_configuration),
        ["color", "fresh", "static-bool"]
    );
    // Open sync streams end with the server.
    servers.shut_down().await;
}

#[tokio::test]
async fn fetch_all_flags_and_get_metadata_answer_once() {
    let servers = Servers::start(GrpcOptions::default()).await;
    let mut client = servers.sync().await;
    let all = client
        .fetch_all_flags(sync::FetchAllFlagsRequest::default())
        .await
        .expect("fetches")
        .into_inner();
    assert_eq!(flag_keys(&all.flag_configuration).len(), 10);
    let ops = client
        .fetch_all_flags(with_metadata(
            sync::FetchAllFlagsRequest::default(),
            &[("flagd-selector", "flagSetId=ops")],
        ))
        .await
        .expect("fetches")
        .into_inner();
    assert_eq!(flag_keys(&ops.flag_configuration), ["ops-only"]);
    let invalid = client
        .fetch_all_flags(sync::FetchAllFlagsRequest {
            provider_id: String::new(),
            selector: "team=web".to_owned(),
        })
        .await;
    assert_eq!(code(invalid), Code::InvalidArgument);
    // Deprecated in the protocol, still served for older clients.
    #[allow(deprecated)]
    let metadata = client
        .get_metadata(sync::GetMetadataRequest {})
        .await
        .expect("answers")
        .into_inner();
    assert_eq!(metadata.metadata, Some(prost_types::Struct::default()));
    servers.shut_down().await;
}

async fn health_status(client: &mut HealthClient<Channel>) -> i32 {
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status
}

#[tokio::test]
async fn grpc_health_and_http_management_share_one_port() {
    let servers = Servers::start_unready(GrpcOptions::default()).await;
    let mut health = servers.health().await;
    assert_eq!(
        health_status(&mut health).await,
        ServingStatus::NotServing as i32
    );
    let not_ready = support::request(servers.management, "GET", "/readyz", &[], b"").await;
    assert_eq!(not_ready.status, 503);

    servers.source.put_source("shop", flag_file(SHOP));
    servers.source.mark_ready();
    let deadline = tokio::time::Instant::now() + STREAM_LIMIT;
    while health_status(&mut health).await != ServingStatus::Serving as i32 {
        assert!(tokio::time::Instant::now() < deadline, "never SERVING");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let healthz = support::request(servers.management, "GET", "/healthz", &[], b"").await;
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok"));
    let metrics = support::request(servers.management, "GET", "/metrics", &[], b"").await;
    assert!(
        metrics.body.contains("ramp_flags_config_generation 1\n"),
        "{}",
        metrics.body
    );
    servers.shut_down().await;
}

#[tokio::test]
async fn a_configured_token_guards_evaluation_and_sync() {
    let options = GrpcOptions {
        token: Some("s3cret".to_owned()),
        ..GrpcOptions::default()
    };
    let servers = Servers::start(options).await;
    let mut v2 = servers.v2().await;
    assert_eq!(
        code(v2.resolve_boolean(v2_bool("static-bool")).await),
        Code::Unauthenticated
    );
    let wrong = with_metadata(v2_bool("static-bool"), &[("authorization", "Bearer guess")]);
    assert_eq!(
        code(v2.resolve_boolean(wrong).await),
        Code::PermissionDenied
    );
    let bearer = with_metadata(
        v2_bool("static-bool"),
        &[("authorization", "Bearer s3cret")],
    );
    let allowed = v2.resolve_boolean(bearer).await.expect("allowed");
    assert_eq!(allowed.into_inner().value, Some(true));
    let api_key = with_metadata(v2_bool("static-bool"), &[("x-api-key", "s3cret")]);
    v2.resolve_boolean(api_key).await.expect("allowed");

    let mut sync = servers.sync().await;
    let anonymous = sync
        .fetch_all_flags(sync::FetchAllFlagsRequest::default())
        .await;
    assert_eq!(code(anonymous), Code::Unauthenticated);
    let keyed = with_metadata(
        sync::FetchAllFlagsRequest::default(),
        &[("x-api-key", "s3cret")],
    );
    sync.fetch_all_flags(keyed).await.expect("allowed");
    // Refused calls evaluated nothing.
    assert_eq!(servers.metrics.count("static-bool", Reason::Static), 2);
    servers.shut_down().await;
}

#[tokio::test]
async fn static_context_values_join_evaluations_and_are_the_sync_context() {
    let context_values = json!({"email": "a@example.com", "region": "eu"});
    let options = GrpcOptions {
        context_values: context_values.as_object().cloned().expect("an object"),
        ..GrpcOptions::default()
    };
    let servers = Servers::start(options).await;
    let mut v2 = servers.v2().await;
    // The server's value wins over the caller's.
    let color = v2
        .resolve_string(v2_string("color", json!({"email": "z@example.com"})))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(
        (color.value.as_deref(), color.reason.as_str()),
        (Some("#00f"), "TARGETING_MATCH")
    );

    let mut sync = servers.sync().await;
    let mut stream = sync
        .sync_flags(sync::SyncFlagsRequest::default())
        .await
        .expect("stream opens")
        .into_inner();
    let first = next(&mut stream).await;
    assert_eq!(
        to_json(&first.sync_context.expect("a sync context")),
        context_values
    );
    // Deprecated in the protocol, still served for older clients.
    #[allow(deprecated)]
    let metadata = sync
        .get_metadata(sync::GetMetadataRequest {})
        .await
        .expect("answers")
        .into_inner();
    assert_eq!(
        to_json(&metadata.metadata.expect("metadata")),
        context_values
    );
    servers.shut_down().await;
}

#[tokio::test]
async fn messages_over_the_limit_are_refused() {
    let options = GrpcOptions {
        max_message_bytes: 1024,
        ..GrpcOptions::default()
    };
    let servers = Servers::start(options).await;
    let mut client = servers.v2().await;
    let large = v2_string("color", json!({"email": "x".repeat(4096)}));
    assert_eq!(code(client.resolve_string(large).await), Code::OutOfRange);
    let small = v2_string("color", json!({"email": "a@example.com"}));
    client
        .resolve_string(small)
        .await
        .expect("within the limit");
    servers.shut_down().await;
}
