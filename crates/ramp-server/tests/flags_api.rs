//! The control plane's flags through its REST API: every change validated, versioned and
//! audited, served over OFREP and flagd's gRPC protocols as soon as the API call returns,
//! announced to subscribers (event and sync streams too), and kept across a restart. A real
//! `Server` runs with an in-process router agent on its socket.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ramp_flagd::ChangeKind;
use ramp_flagd::grpc::client::flagd::evaluation::v2;
use ramp_flagd::grpc::client::flagd::sync::v1 as sync;
use ramp_proxy::{AgentClient, serve_agent};
use ramp_server::{FLAG_SOURCE_NAME, Server, ServerConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint};

const CHECKOUT: &str = r#"{
    "state": "ENABLED",
    "variants": {"old": "v1", "new": "v2"},
    "defaultVariant": "old",
    "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "new", null]}
}"#;

/// A control plane on a fresh data directory, its router agent running in this process (so no
/// `ramp` binary is needed), the API, flag OFREP, gRPC evaluation and gRPC sync on free ports.
struct Plane {
    server: Option<Server>,
    config: ServerConfig,
    agent_stop: Option<oneshot::Sender<()>>,
    agent: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Plane {
    async fn start(tag: &str) -> Plane {
        Self::start_with(tag, None).await
    }

    /// Same, with flag clients required to present `token`.
    async fn start_with(tag: &str, token: Option<&str>) -> Plane {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ramp-flags-api-{tag}-"))
            .tempdir()
            .unwrap();
        let mut config = ServerConfig::new(dir.path().join("data"));
        config.flags_token = token.map(str::to_owned);
        config.api_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.flags_ofrep_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.flags_grpc_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.flags_sync_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        // Never started: the agent below already answers on the socket.
        config.agent_program = PathBuf::from("/nonexistent/ramp");
        let socket = config.agent_socket();
        std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
        let (agent_stop, stopped) = oneshot::channel::<()>();
        let agent_socket = socket.clone();
        let agent = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            serve_agent(&agent_socket, shutdown).await.unwrap();
        });
        let client = AgentClient::new(socket);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while client.health().await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "agent not up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let server = Server::start(config.clone()).await.unwrap();
        Plane {
            server: Some(server),
            config,
            agent_stop: Some(agent_stop),
            agent,
            _dir: dir,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    /// Stops the control plane (leaving the agent) and starts it again on the same directory.
    async fn restart(&mut self) {
        let server = self.server.take().expect("running");
        server.shutdown(false).await;
        self.server = Some(Server::start(self.config.clone()).await.unwrap());
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(true).await;
        }
        if let Some(stop) = self.agent_stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.agent).await;
    }

    /// `METHOD path` on the API as `actor`; the status and the body (JSON, or a JSON string).
    async fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        request(self.server().api_addr(), method, path, body).await
    }

    async fn api_ok(&self, method: &str, path: &str, body: Option<&str>) -> Value {
        let (status, answer) = self.api(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// `POST /ofrep/v1/evaluate/flags/{key}` with `context`.
    async fn evaluate(&self, key: &str, context: Value) -> (u16, Value) {
        self.evaluate_as(key, context, &[]).await
    }

    /// [`evaluate`](Self::evaluate) with extra request headers (credentials).
    async fn evaluate_as(
        &self,
        key: &str,
        context: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let addr = self.server().flags_ofrep_addr().expect("OFREP configured");
        let body = json!({ "context": context }).to_string();
        let path = format!("/ofrep/v1/evaluate/flags/{key}");
        request_with(addr, "POST", &path, Some(&body), headers).await
    }
}

async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    request_with(addr, method, path, body, &[]).await
}

async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header("x-ramp-actor", "alice");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 20 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_audited_served_at_once_and_announced() {
    let plane = Plane::start("lifecycle").await;
    let mut notices = plane.server().flag_source().subscribe();

    let (status, created) = plane
        .api("PUT", "/api/v1/flags/checkout", Some(CHECKOUT))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["changed"], true);
    assert_eq!(created["flag"]["version"], 1);
    assert_eq!(created["event"]["kind"], "flag.created");
    assert_eq!(created["event"]["actor"], "alice");
    assert_eq!(created["event"]["service"], Value::Null);
    let (_, served) = plane.evaluate("checkout", json!({"plan": "pro"})).await;
    assert_eq!(
        (&served["value"], &served["reason"]),
        (&json!("v2"), &json!("TARGETING_MATCH"))
    );
    let notice = notices.try_recv().expect("a notice per change");
    assert_eq!(notice.flags.get("checkout"), Some(&ChangeKind::Write));

    // A new default, guarded by the version just read.
    let edited = CHECKOUT.replace(r#""defaultVariant": "old""#, r#""defaultVariant": "new""#);
    let (status, updated) = plane
        .api(
            "PUT",
            "/api/v1/flags/checkout?expectedVersion=1",
            Some(&edited),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["event"]["kind"], "flag.updated");
    assert_eq!(
        updated["event"]["data"],
        json!({"key": "checkout", "version": 2,
               "diff": [{"path": "/defaultVariant", "from": "old", "to": "new"}]})
    );
    assert_eq!(plane.evaluate("checkout", json!({})).await.1["value"], "v2");
    assert_eq!(
        notices.try_recv().unwrap().flags.get("checkout"),
        Some(&ChangeKind::Update)
    );

    // The same definition again changes nothing.
    let (status, same) = plane
        .api("PUT", "/api/v1/flags/checkout", Some(&edited))
        .await;
    assert_eq!(
        (status, &same["changed"], &same["event"]),
        (200, &json!(false), &Value::Null)
    );
    assert!(notices.try_recv().is_err());

    // The kill switch, pulled twice: one change, one event.
    let off = plane
        .api_ok("POST", "/api/v1/flags/checkout/disable", None)
        .await;
    assert_eq!(
        (&off["changed"], &off["event"]["kind"]),
        (&json!(true), &json!("flag.disabled"))
    );
    let (status, disabled) = plane.evaluate("checkout", json!({"plan": "pro"})).await;
    assert_eq!(status, 200);
    assert_eq!(disabled["reason"], "DISABLED");
    assert!(disabled.get("value").is_none(), "{disabled}");
    let again = plane
        .api_ok("POST", "/api/v1/flags/checkout/disable", None)
        .await;
    assert_eq!(
        (&again["changed"], &again["flag"]["version"]),
        (&json!(false), &json!(3))
    );
    assert_eq!(notices.try_recv().unwrap().flags.len(), 1);
    assert!(notices.try_recv().is_err());

    let on = plane
        .api_ok("POST", "/api/v1/flags/checkout/enable", None)
        .await;
    assert_eq!(
        on["event"]["data"]["diff"],
        json!([{"path": "/state", "from": "DISABLED", "to": "ENABLED"}])
    );
    assert_eq!(plane.evaluate("checkout", json!({})).await.1["value"], "v2");

    let listed = plane.api_ok("GET", "/api/v1/flags", None).await;
    assert_eq!(listed["flags"][0]["key"], "checkout");
    assert_eq!(listed["flags"][0]["version"], 4);
    assert_eq!(listed["flags"][0]["definition"]["state"], "ENABLED");

    let metrics = plane.api("GET", "/metrics", None).await.1;
    let metrics = metrics.as_str().expect("text");
    assert!(
        metrics.contains(r#"ramp_flags_evaluations_total{flag="checkout",reason="DISABLED"} 1"#),
        "{metrics}"
    );

    let (status, _) = plane.api("DELETE", "/api/v1/flags/checkout", None).await;
    assert_eq!(status, 204);
    assert_eq!(
        plane.api("GET", "/api/v1/flags/checkout", None).await.0,
        404
    );
    let (status, gone) = plane.evaluate("checkout", json!({})).await;
    assert_eq!(
        (status, &gone["errorCode"]),
        (404, &json!("FLAG_NOT_FOUND"))
    );
    let drained: Vec<ChangeKind> = std::iter::from_fn(|| notices.try_recv().ok())
        .filter_map(|n| n.flags.get("checkout").copied())
        .collect();
    assert_eq!(drained, [ChangeKind::Update, ChangeKind::Delete]);

    let history = plane
        .api_ok("GET", "/api/v1/flags/checkout/history", None)
        .await;
    let summary: Vec<(String, String, u64)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["data"]["version"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("flag.created", 1),
        ("flag.updated", 2),
        ("flag.disabled", 3),
        ("flag.enabled", 4),
        ("flag.deleted", 5),
    ]
    .map(|(kind, version)| (kind.to_owned(), "alice".to_owned(), version));
    assert_eq!(summary, expected);
    // The same events are in the control plane's event log.
    let log = plane.api_ok("GET", "/api/v1/events", None).await;
    let flag_events = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("flag."))
        .count();
    assert_eq!(flag_events, 5);
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_change_nothing() {
    let plane = Plane::start("refused").await;
    let generation = plane.server().flag_source().generation();

    let (status, invalid) = plane
        .api(
            "PUT",
            "/api/v1/flags/checkout",
            Some(
                r#"{"state": "ON", "variants": {"a": true}, "defaultVariant": "b", "owner": "x"}"#,
            ),
        )
        .await;
    assert_eq!(status, 400, "{invalid}");
    assert_eq!(invalid["error"], "the flag definition is invalid");
    let paths: Vec<&str> = invalid["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    for path in ["$.state", "$.defaultVariant", "$['owner']"] {
        assert!(paths.contains(&path), "{path} missing from {invalid}");
    }
    let (status, not_json) = plane
        .api("PUT", "/api/v1/flags/checkout", Some("{\"state\": "))
        .await;
    assert_eq!(status, 400, "{not_json}");
    assert!(
        not_json["error"].as_str().unwrap().contains("request body"),
        "{not_json}"
    );
    let (status, bad_key) = plane
        .api("PUT", "/api/v1/flags/not%20a%20key", Some(CHECKOUT))
        .await;
    assert_eq!(status, 400, "{bad_key}");
    assert!(
        bad_key["error"]
            .as_str()
            .unwrap()
            .contains(r#""not a key" is not a flag key"#),
        "{bad_key}"
    );
    assert_eq!(
        plane.api("GET", "/api/v1/flags/checkout", None).await.0,
        404
    );
    assert_eq!(
        plane
            .api("GET", "/api/v1/flags/checkout/history", None)
            .await
            .0,
        404
    );
    assert_eq!(
        plane
            .api("POST", "/api/v1/flags/checkout/disable", None)
            .await
            .0,
        404
    );
    assert_eq!(
        plane.api("DELETE", "/api/v1/flags/checkout", None).await.0,
        404
    );
    assert_eq!(
        plane.api_ok("GET", "/api/v1/flags", None).await,
        json!({"flags": []})
    );
    assert_eq!(plane.server().flag_source().generation(), generation);

    // Versions: 0 means "must not exist"; a stale version is a conflict and changes nothing.
    plane
        .api_ok(
            "PUT",
            "/api/v1/flags/checkout?expectedVersion=0",
            Some(CHECKOUT),
        )
        .await;
    let (status, exists) = plane
        .api(
            "PUT",
            "/api/v1/flags/checkout?expectedVersion=0",
            Some(CHECKOUT),
        )
        .await;
    assert_eq!(status, 409, "{exists}");
    let with_version = CHECKOUT.replacen('{', r#"{"expectedVersion": 5,"#, 1);
    let (status, stale) = plane
        .api("PUT", "/api/v1/flags/checkout", Some(&with_version))
        .await;
    assert_eq!(status, 409, "{stale}");
    assert!(
        stale["error"].as_str().unwrap().contains("version 1"),
        "{stale}"
    );
    let (status, both) = plane
        .api(
            "PUT",
            "/api/v1/flags/checkout?expectedVersion=1",
            Some(&with_version),
        )
        .await;
    assert_eq!(status, 400, "{both}");
    assert_eq!(
        plane
            .api(
                "POST",
                "/api/v1/flags/checkout/disable?expectedVersion=9",
                None
            )
            .await
            .0,
        409
    );
    assert_eq!(
        plane
            .api("DELETE", "/api/v1/flags/checkout?expectedVersion=2", None)
            .await
            .0,
        409
    );
    let flag = plane.api_ok("GET", "/api/v1/flags/checkout", None).await;
    assert_eq!(
        (&flag["version"], &flag["definition"]["state"]),
        (&json!(1), &json!("ENABLED"))
    );
    let history = plane
        .api_ok("GET", "/api/v1/flags/checkout/history", None)
        .await;
    assert_eq!(history["events"].as_array().unwrap().len(), 1);
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_survive_a_restart() {
    let mut plane = Plane::start("restart").await;
    plane
        .api_ok("PUT", "/api/v1/flags/checkout", Some(CHECKOUT))
        .await;
    plane
        .api_ok("POST", "/api/v1/flags/checkout/disable", None)
        .await;
    plane.restart().await;

    let source = plane.server().flag_source();
    assert!(source.is_ready());
    assert!(source.current().source(FLAG_SOURCE_NAME).is_some());
    let (status, served) = plane.evaluate("checkout", json!({})).await;
    assert_eq!((status, &served["reason"]), (200, &json!("DISABLED")));
    let flag = plane.api_ok("GET", "/api/v1/flags/checkout", None).await;
    assert_eq!(flag["version"], 2);
    plane
        .api_ok("POST", "/api/v1/flags/checkout/enable", None)
        .await;
    assert_eq!(plane.evaluate("checkout", json!({})).await.1["value"], "v1");
    let history = plane
        .api_ok("GET", "/api/v1/flags/checkout/history", None)
        .await;
    assert_eq!(history["events"].as_array().unwrap().len(), 3);
    plane.stop().await;
}

/// How long a gRPC stream may take to deliver an expected message.
const STREAM_LIMIT: Duration = Duration::from_secs(10);

async fn grpc_channel(addr: Option<SocketAddr>) -> Channel {
    let addr = addr.expect("gRPC configured");
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid endpoint")
        .connect()
        .await
        .expect("connect")
}

/// The next message of a stream, within [`STREAM_LIMIT`].
async fn next<T>(stream: &mut Streaming<T>) -> T {
    tokio::time::timeout(STREAM_LIMIT, stream.message())
        .await
        .expect("a message in time")
        .expect("a healthy stream")
        .expect("the stream is still open")
}

/// Whether the stream ends (cleanly or with an error) within [`STREAM_LIMIT`].
async fn ends<T>(stream: &mut Streaming<T>) -> bool {
    matches!(
        tokio::time::timeout(STREAM_LIMIT, stream.message()).await,
        Ok(Ok(None) | Err(_))
    )
}

/// An evaluation context of string attributes.
fn context(pairs: &[(&str, &str)]) -> prost_types::Struct {
    let string = |text: &str| prost_types::Value {
        kind: Some(prost_types::value::Kind::StringValue(text.to_owned())),
    };
    prost_types::Struct {
        fields: pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), string(value)))
            .collect(),
    }
}

/// The flags object of a sync payload.
fn synced_flags(response: &sync::SyncFlagsResponse) -> serde_json::Map<String, Value> {
    let document: Value =
        serde_json::from_str(&response.flag_configuration).expect("JSON configuration");
    document["flags"]
        .as_object()
        .expect("a flags object")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_changes_reach_grpc_evaluation_event_streams_and_sync() {
    let plane = Plane::start("grpc").await;
    plane
        .api_ok("PUT", "/api/v1/flags/checkout", Some(CHECKOUT))
        .await;

    let mut evaluation = v2::service_client::ServiceClient::new(
        grpc_channel(plane.server().flags_grpc_addr()).await,
    );
    let resolve = |plan: &str| v2::ResolveStringRequest {
        flag_key: "checkout".to_owned(),
        context: Some(context(&[("plan", plan)])),
    };
    let matched = evaluation
        .resolve_string(resolve("pro"))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(
        (
            matched.value.as_deref(),
            matched.variant.as_deref(),
            matched.reason.as_str()
        ),
        (Some("v2"), Some("new"), "TARGETING_MATCH")
    );
    let metrics = plane.api("GET", "/metrics", None).await.1;
    assert!(
        metrics.as_str().expect("text").contains(
            r#"ramp_flags_evaluations_total{flag="checkout",reason="TARGETING_MATCH"} 1"#
        ),
        "gRPC evaluations are counted with the OFREP ones: {metrics}"
    );

    let mut events = evaluation
        .event_stream(v2::EventStreamRequest {})
        .await
        .expect("stream opens")
        .into_inner();
    assert_eq!(next(&mut events).await.r#type, "provider_ready");
    let mut synced = sync::flag_sync_service_client::FlagSyncServiceClient::new(
        grpc_channel(plane.server().flags_sync_addr()).await,
    )
    .sync_flags(sync::SyncFlagsRequest::default())
    .await
    .expect("stream opens")
    .into_inner();
    let first = synced_flags(&next(&mut synced).await);
    assert_eq!(first.keys().collect::<Vec<_>>(), ["checkout"]);
    assert_eq!(first["checkout"]["defaultVariant"], "old");

    // A PUT: sync subscribers get the new configuration, event subscribers the changed key.
    let edited = CHECKOUT.replace(r#""defaultVariant": "old""#, r#""defaultVariant": "new""#);
    plane
        .api_ok("PUT", "/api/v1/flags/checkout", Some(&edited))
        .await;
    let after_put = synced_flags(&next(&mut synced).await);
    assert_eq!(after_put["checkout"]["defaultVariant"], "new");
    let update = next(&mut events).await;
    assert_eq!(update.r#type, "configuration_change");

    // The kill switch: a change naming the flag, and evaluations say DISABLED from then on.
    plane
        .api_ok("POST", "/api/v1/flags/checkout/disable", None)
        .await;
    let change = next(&mut events).await;
    assert_eq!(change.r#type, "configuration_change");
    let data = change.data.expect("change data");
    let flags = match data
        .fields
        .get("flags")
        .and_then(|flags| flags.kind.as_ref())
    {
        Some(prost_types::value::Kind::StructValue(flags)) => flags.clone(),
        other => panic!("no flags in the change: {other:?}"),
    };
    assert_eq!(
        flags.fields.keys().collect::<Vec<_>>(),
        ["checkout"],
        "the change names the disabled flag"
    );
    let after_disable = synced_flags(&next(&mut synced).await);
    assert_eq!(after_disable["checkout"]["state"], "DISABLED");
    let disabled = evaluation
        .resolve_string(resolve("pro"))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(
        (disabled.value, disabled.reason.as_str()),
        (None, "DISABLED")
    );

    // Open streams end with the server rather than holding its shutdown.
    plane.stop().await;
    assert!(ends(&mut events).await, "the event stream ends");
    assert!(ends(&mut synced).await, "the sync stream ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_clients_must_present_the_configured_token() {
    let plane = Plane::start_with("token", Some("s3cret")).await;
    plane
        .api_ok("PUT", "/api/v1/flags/checkout", Some(CHECKOUT))
        .await;
    let pro = json!({"plan": "pro"});

    let (status, _) = plane.evaluate("checkout", pro.clone()).await;
    assert_eq!(status, 401, "OFREP without credentials");
    let wrong = plane
        .evaluate_as("checkout", pro.clone(), &[("x-api-key", "guess")])
        .await;
    assert_eq!(wrong.0, 403, "OFREP with the wrong key: {}", wrong.1);
    let (status, answer) = plane
        .evaluate_as("checkout", pro, &[("authorization", "Bearer s3cret")])
        .await;
    assert_eq!((status, &answer["value"]), (200, &json!("v2")), "{answer}");

    let mut evaluation = v2::service_client::ServiceClient::new(
        grpc_channel(plane.server().flags_grpc_addr()).await,
    );
    let request = || v2::ResolveStringRequest {
        flag_key: "checkout".to_owned(),
        context: Some(context(&[("plan", "pro")])),
    };
    let refused = evaluation
        .resolve_string(request())
        .await
        .expect_err("gRPC without credentials is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut authorised = tonic::Request::new(request());
    authorised
        .metadata_mut()
        .insert("x-api-key", "s3cret".parse().expect("ascii"));
    let answer = evaluation
        .resolve_string(authorised)
        .await
        .expect("resolves with the token")
        .into_inner();
    assert_eq!(answer.value.as_deref(), Some("v2"));
    plane.stop().await;
}
