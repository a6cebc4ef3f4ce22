//! The router agent end to end: a real agent on a temporary Unix socket, driven by its client,
//! with real HTTP traffic through the routers it hosts to in-process backends on 127.0.0.1.

mod support;

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ramp_proxy::DrainOutcome;
use ramp_proxy::agent::{
    AgentClient, AgentError, PutRouter, RouterMetrics, SettingsSpec, serve_agent,
};
use ramp_route::{Condition, RevisionSpec, RuleSpec, Source, TableSpec, ValueMatch};
use support::{Backend, Client, REVISION_HEADER, Tally, fire, no_headers, rev, tally};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Longest any agent operation in these tests may take.
const WAIT: Duration = Duration::from_secs(5);

/// An agent serving on a socket in a fresh temporary directory.
struct Agent {
    dir: PathBuf,
    socket: PathBuf,
    client: AgentClient,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Agent {
    async fn start() -> Agent {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ramp-agent-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let socket = dir.join("agent.sock");
        let (stop, task) = spawn_agent(&socket);
        let client = AgentClient::new(&socket);
        let deadline = Instant::now() + WAIT;
        while let Err(e) = client.health().await {
            assert!(Instant::now() < deadline, "the agent never answered: {e}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Agent {
            dir,
            socket,
            client,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Waits for `serve_agent` to return (after a shutdown request or the stop signal).
    async fn finished(&mut self) -> io::Result<()> {
        let task = self.task.take().expect("still running");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("serve_agent returns")
            .expect("serve_agent does not panic")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `serve_agent` on `socket` until the returned sender fires (or is dropped).
fn spawn_agent(socket: &Path) -> (oneshot::Sender<()>, JoinHandle<io::Result<()>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let socket = socket.to_path_buf();
    let task = tokio::spawn(async move {
        serve_agent(&socket, async {
            let _ = stopped.await;
        })
        .await
    });
    (stop, task)
}

fn table(revisions: Vec<RevisionSpec>) -> TableSpec {
    TableSpec {
        revisions,
        ..TableSpec::default()
    }
}

/// A router on a free port of 127.0.0.1, one worker, naming the revision in a header.
fn put(generation: u64, table: TableSpec) -> PutRouter {
    PutRouter {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        pin_workers: false,
        generation,
        table,
        settings: SettingsSpec {
            revision_header: Some(REVISION_HEADER.into()),
            ..SettingsSpec::default()
        },
    }
}

/// `n` requests over two connections; all must succeed.
async fn traffic(addr: std::net::SocketAddr, n: u64) -> Tally {
    let t = tally(&fire(addr, 2, n, no_headers).await);
    assert_eq!(t.ok, n, "{:?}", t.errors);
    t
}

fn api_status(result: Result<impl std::fmt::Debug, AgentError>) -> (u16, String) {
    match result {
        Err(AgentError::Api { status, message }) => (status, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// One raw HTTP/1.1 exchange on the agent's socket: status and body.
async fn raw(socket: &Path, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await.expect("connect");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: agent\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        response
    };
    let response = tokio::time::timeout(WAIT, exchange).await.expect("answer");
    let text = String::from_utf8(response).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let status = head[9..12].parse().expect("status");
    (status, serde_json::from_str(body).expect("JSON body"))
}

/// Polls the router's metrics until `done` holds.
async fn metrics_until(
    client: &AgentClient,
    name: &str,
    done: impl Fn(&RouterMetrics) -> bool,
) -> RouterMetrics {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = client.metrics(name).await.expect("metrics");
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "metrics never settled: {m:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn total(m: &RouterMetrics, revision: &str) -> u64 {
    m.revisions.get(revision).map_or(0, |s| s.total())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_the_table_swaps_on_update_and_ignores_stale_generations() {
    let agent = Agent::start().await;
    let c = &agent.client;
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let only = |w1: u32, w2: u32| table(vec![rev("v1", w1, &[v1.addr]), rev("v2", w2, &[v2.addr])]);

    let created = c.put_router("web", &put(1, only(100, 0))).await.unwrap();
    assert!(created.created && created.applied);
    assert_eq!(created.generation, 1);
    let addr = created.local_addr;
    assert_ne!(addr.port(), 0);
    let t = traffic(addr, 40).await;
    assert_eq!((t.revision("v1"), t.backend("v1")), (40, 40));

    // A newer table: every new request follows it.
    let updated = c.put_router("web", &put(2, only(0, 100))).await.unwrap();
    assert!(updated.applied && !updated.created);
    assert_eq!((updated.generation, updated.local_addr), (2, addr));
    let t = traffic(addr, 40).await;
    assert_eq!((t.revision("v2"), t.backend("v2")), (40, 40));

    // A late message from before: ignored, the newer generation is reported.
    let stale = c.put_router("web", &put(1, only(100, 0))).await.unwrap();
    assert!(!stale.applied);
    assert_eq!((stale.generation, stale.local_addr), (2, addr));
    assert_eq!(traffic(addr, 40).await.revision("v2"), 40);

    let list = c.routers().await.unwrap();
    let web = &list.routers["web"];
    assert_eq!(list.routers.len(), 1);
    assert_eq!((web.generation, web.local_addr), (2, addr));
    assert_eq!(web.listen, "127.0.0.1:0".parse().unwrap());
    let state = c.router("web").await.unwrap();
    assert_eq!(state.table, only(0, 100));
    assert_eq!(
        state.settings.revision_header.as_deref(),
        Some(REVISION_HEADER)
    );
    assert_eq!(c.health().await.unwrap().routers, 1);

    // The same generation again is applied (a resend after a lost answer).
    let again = c.put_router("web", &put(2, only(100, 0))).await.unwrap();
    assert!(again.applied);
    assert_eq!(traffic(addr, 20).await.revision("v1"), 20);

    // Naming the actual address is the same listen; another address or worker count is not.
    let mut same = put(3, only(100, 0));
    same.listen = addr;
    assert!(c.put_router("web", &same).await.unwrap().applied);
    let mut moved = put(4, only(100, 0));
    moved.listen = "127.0.0.2:0".parse().unwrap();
    let (status, message) = api_status(c.put_router("web", &moved).await);
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("listens on 127.0.0.1:0"), "{message}");
    let mut more_workers = put(4, only(100, 0));
    more_workers.workers = 2;
    assert_eq!(api_status(c.put_router("web", &more_workers).await).0, 409);
    assert_eq!(c.router("web").await.unwrap().generation, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_table_is_refused_and_the_old_one_keeps_serving() {
    let agent = Agent::start().await;
    let c = &agent.client;
    let v1 = Backend::start("v1").await;
    let good = table(vec![rev("v1", 1, &[v1.addr])]);
    let addr = c
        .put_router("web", &put(1, good.clone()))
        .await
        .unwrap()
        .local_addr;

    let mut bad = good.clone();
    bad.rules.push(RuleSpec {
        conditions: vec![Condition {
            source: Source::header("x-canary"),
            value: ValueMatch::Present,
        }],
        revision: "nope".into(),
    });
    let (status, message) = api_status(c.put_router("web", &put(2, bad)).await);
    assert_eq!(status, 400);
    assert!(message.contains("unknown revision \"nope\""), "{message}");
    assert_eq!(c.router("web").await.unwrap().generation, 1);
    assert_eq!(c.router("web").await.unwrap().table, good);
    assert_eq!(traffic(addr, 20).await.revision("v1"), 20);

    // A table that is not even well-formed: the error names the culprit.
    let body = serde_json::json!({
        "listen": "127.0.0.1:0",
        "workers": 1,
        "generation": 3,
        "table": {
            "revisions": [{"name": "v1", "weight": 1, "instances": [v1.addr.to_string()]}],
            "rules": [{"conditions": [{"header": "x", "value": {"regex": "(oops"}}], "revision": "v1"}],
        },
    });
    let (status, answer) = raw(&agent.socket, "PUT", "/v1/routers/web", &body.to_string()).await;
    assert_eq!(status, 400);
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("invalid regex \"(oops\""), "{error}");
    assert_eq!(c.router("web").await.unwrap().generation, 1);

    // No router is created from a bad table either.
    let (status, _) = api_status(c.put_router("api", &put(1, TableSpec::default())).await);
    assert_eq!(status, 400);
    assert!(!c.routers().await.unwrap().routers.contains_key("api"));
    assert_eq!(api_status(c.router("api").await).0, 404);

    // The JSON API as a plain HTTP client sees it.
    let (status, health) = raw(&agent.socket, "GET", "/v1/health", "").await;
    assert_eq!(status, 200);
    assert_eq!(health["pid"], std::process::id());
    assert_eq!(health["routers"], 1);
    let (status, list) = raw(&agent.socket, "GET", "/v1/routers", "").await;
    assert_eq!(status, 200);
    assert_eq!(list["routers"]["web"]["localAddr"], addr.to_string());
    assert_eq!(list["routers"]["web"]["generation"], 1);
    let (status, answer) = raw(&agent.socket, "GET", "/v1/nothing", "").await;
    assert_eq!(status, 404);
    assert!(answer["error"].as_str().unwrap().contains("/v1/nothing"));
    let (status, answer) = raw(&agent.socket, "PUT", "/v1/routers/web", "{not json").await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid body")
    );
    assert_eq!(
        raw(&agent.socket, "GET", "/v1/routers/a%20b", "").await.0,
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routers_are_independent_and_delete_stops_the_listener() {
    let agent = Agent::start().await;
    let c = &agent.client;
    let web_backend = Backend::start("web-v1").await;
    let api_backend = Backend::start("api-v1").await;
    let web = c
        .put_router(
            "web",
            &put(1, table(vec![rev("v1", 1, &[web_backend.addr])])),
        )
        .await
        .unwrap()
        .local_addr;
    let api = c
        .put_router(
            "api",
            &put(1, table(vec![rev("v1", 1, &[api_backend.addr])])),
        )
        .await
        .unwrap()
        .local_addr;
    assert_ne!(web, api);
    assert_eq!(traffic(web, 20).await.backend("web-v1"), 20);
    assert_eq!(traffic(api, 20).await.backend("api-v1"), 20);

    // Changing one leaves the other alone.
    let web_v2 = Backend::start("web-v2").await;
    c.put_router("web", &put(2, table(vec![rev("v2", 1, &[web_v2.addr])])))
        .await
        .unwrap();
    assert_eq!(traffic(web, 20).await.backend("web-v2"), 20);
    assert_eq!(traffic(api, 20).await.backend("api-v1"), 20);
    assert_eq!(c.router("api").await.unwrap().generation, 1);

    let deleted = c
        .delete_router("web", Some(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(deleted.connections_cut, 0);
    let refused = tokio::net::TcpStream::connect(web).await;
    assert!(refused.is_err(), "the deleted router still accepts");
    assert!(Client::connect(web).await.is_err());
    assert_eq!(traffic(api, 20).await.backend("api-v1"), 20);
    let names: Vec<String> = c.routers().await.unwrap().routers.into_keys().collect();
    assert_eq!(names, ["api"]);
    assert_eq!(api_status(c.delete_router("web", None).await).0, 404);
    assert_eq!(api_status(c.metrics("web").await).0, 404);

    // The name can be used again, on a new listener.
    let again = c
        .put_router(
            "web",
            &put(1, table(vec![rev("v1", 1, &[web_backend.addr])])),
        )
        .await
        .unwrap();
    assert!(again.created);
    assert_eq!(traffic(again.local_addr, 10).await.backend("web-v1"), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_in_flight_requests_and_undrain_restores() {
    let agent = Agent::start().await;
    let c = &agent.client;
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let addr = c
        .put_router("web", &put(1, table(vec![rev("v1", 1, &[a.addr, b.addr])])))
        .await
        .unwrap()
        .local_addr;

    let outcome = c.drain("web", a.addr, WAIT).await.unwrap();
    assert_eq!(outcome, DrainOutcome::Drained);
    assert_eq!(traffic(addr, 20).await.backend("b"), 20);
    let m = c.metrics("web").await.unwrap();
    let draining: HashMap<_, _> = m.instances.iter().map(|i| (i.addr, i.draining)).collect();
    assert_eq!(draining, HashMap::from([(a.addr, true), (b.addr, false)]));

    c.undrain("web", a.addr).await.unwrap();
    assert_eq!(
        c.drain("web", b.addr, WAIT).await.unwrap(),
        DrainOutcome::Drained
    );
    assert_eq!(traffic(addr, 20).await.backend("a"), 20);

    // A request still running when the deadline passes is reported, and is not cut.
    let slow = tokio::spawn(async move {
        let mut client = Client::connect(addr).await?;
        client.get("/slow/700", &[]).await
    });
    metrics_until(c, "web", |m| m.instances.iter().any(|i| i.in_flight == 1)).await;
    let outcome = c
        .drain("web", a.addr, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(outcome, DrainOutcome::DeadlineExceeded { in_flight: 1 });
    let reply = slow.await.unwrap().expect("the slow request finishes");
    assert_eq!((reply.status, reply.backend()), (200, Some("a")));

    let unknown = "127.0.0.1:1".parse().unwrap();
    let (status, message) = api_status(c.drain("web", unknown, WAIT).await);
    assert_eq!(status, 404);
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert_eq!(api_status(c.undrain("web", unknown).await).0, 404);
    assert_eq!(api_status(c.drain("nope", a.addr, WAIT).await).0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_per_revision_and_prometheus_labels_services() {
    let agent = Agent::start().await;
    let c = &agent.client;
    let stable = Backend::start("stable").await;
    let canary = Backend::start("canary").await;
    let other = Backend::start("other").await;
    let web = c
        .put_router(
            "web",
            &put(
                1,
                table(vec![
                    rev("stable", 1, &[stable.addr]),
                    rev("canary", 1, &[canary.addr]),
                ]),
            ),
        )
        .await
        .unwrap()
        .local_addr;
    let api = c
        .put_router("api", &put(1, table(vec![rev("stable", 1, &[other.addr])])))
        .await
        .unwrap()
        .local_addr;
    let t = traffic(web, 100).await;
    traffic(api, 30).await;

    let m = metrics_until(c, "web", |m| total(m, "stable") + total(m, "canary") == 100).await;
    assert_eq!(total(&m, "stable"), t.revision("stable"));
    assert_eq!(total(&m, "canary"), t.revision("canary"));
    assert!(total(&m, "stable") > 0 && total(&m, "canary") > 0);
    assert_eq!(m.revisions["stable"].latency.count(), t.revision("stable"));
    let revisions: Vec<&str> = m.instances.iter().map(|i| i.revision.as_str()).collect();
    assert_eq!(revisions, ["stable", "canary"]);
    let m = metrics_until(c, "api", |m| total(m, "stable") == 30).await;
    assert_eq!(m.revisions.len(), 1);

    let text = c.prometheus().await.unwrap();
    for needle in [
        format!(
            "ramp_router_requests_total{{service=\"web\",revision=\"stable\",code=\"2xx\"}} {}\n",
            t.revision("stable")
        ),
        format!(
            "ramp_router_requests_total{{service=\"web\",revision=\"canary\",code=\"2xx\"}} {}\n",
            t.revision("canary")
        ),
        "ramp_router_requests_total{service=\"api\",revision=\"stable\",code=\"2xx\"} 30\n".into(),
        "ramp_router_request_duration_seconds_count{service=\"api\",revision=\"stable\"} 30\n"
            .into(),
        format!(
            "ramp_router_instance_in_flight{{service=\"web\",revision=\"canary\",instance=\"{}\"}} 0\n",
            canary.addr
        ),
    ] {
        assert!(text.contains(&needle), "{needle} missing from:\n{text}");
    }
    assert_eq!(
        text.matches("# TYPE ramp_router_requests_total counter\n")
            .count(),
        1
    );
    let connections: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ramp_router_connections_total{service=\"api\"} "))
        .expect("router-wide counters are labelled too")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&connections), "{connections}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.contains("{service=\""), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_per_socket_and_stale_sockets_are_replaced() {
    let agent = Agent::start().await;
    let mode = std::fs::metadata(&agent.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let second = tokio::time::timeout(
        WAIT,
        serve_agent(&agent.socket, std::future::pending::<()>()),
    )
    .await
    .expect("the second agent gives up at once");
    let err = second.expect_err("a second agent on the same socket");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    assert!(
        err.to_string().contains(&std::process::id().to_string()),
        "{err}"
    );
    agent
        .client
        .health()
        .await
        .expect("the first agent still answers");

    // A socket left behind by an agent that died: nothing answers, so it is replaced.
    let stale = agent.dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let client = AgentClient::new(&stale);
    assert!(client.health().await.unwrap_err().is_unreachable());
    let (stop, task) = spawn_agent(&stale);
    let deadline = Instant::now() + WAIT;
    while client.health().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the agent never took the stale socket"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!stale.exists(), "the socket is removed on exit");

    // Something that is not a socket is never replaced.
    let file = agent.dir.join("file");
    std::fs::write(&file, "keep me").unwrap();
    let err = serve_agent(&file, async {}).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_agent_is_unreachable() {
    let dir = std::env::temp_dir().join(format!("ramp-agent-missing-{}", std::process::id()));
    let client = AgentClient::new(dir.join("nobody.sock"));
    let err = client.health().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("nobody.sock"), "{err}");
    let table = table(vec![rev("v1", 1, &["127.0.0.1:9".parse().unwrap()])]);
    let err = client.put_router("web", &put(1, table)).await.unwrap_err();
    assert!(matches!(err, AgentError::Unreachable { .. }), "{err:?}");
    assert!(client.shutdown().await.unwrap_err().is_unreachable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_address_in_use_is_a_conflict() {
    let agent = Agent::start().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut request = put(
        1,
        table(vec![rev("v1", 1, &["127.0.0.1:9".parse().unwrap()])]),
    );
    request.listen = taken.local_addr().unwrap();
    let (status, message) = api_status(agent.client.put_router("web", &request).await);
    assert_eq!(status, 409);
    assert!(
        message.contains(&taken.local_addr().unwrap().to_string()),
        "{message}"
    );
    assert!(message.to_lowercase().contains("in use"), "{message}");
    assert!(agent.client.routers().await.unwrap().routers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_router_and_ends_the_server() {
    let mut agent = Agent::start().await;
    let v1 = Backend::start("v1").await;
    let mut request = put(1, table(vec![rev("v1", 1, &[v1.addr])]));
    request.settings.timeouts.shutdown_grace = Duration::from_secs(2);
    let addr = agent
        .client
        .put_router("web", &request)
        .await
        .unwrap()
        .local_addr;
    assert_eq!(traffic(addr, 10).await.backend("v1"), 10);

    let answer = agent.client.shutdown().await.unwrap();
    assert_eq!(answer.routers, 1);
    agent.finished().await.expect("a clean exit");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(!agent.socket.exists(), "the socket is removed");
    assert!(agent.client.health().await.unwrap_err().is_unreachable());
}
