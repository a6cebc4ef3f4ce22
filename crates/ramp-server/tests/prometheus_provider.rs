//! The Prometheus provider against a real Prometheus server (Debian package `prometheus`)
//! scraping a real Ramp router: requests sent through the router must come back, exactly,
//! as the answers to PromQL queries about `ramp_router_requests_total`.

use std::convert::Infallible;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use ramp_analysis::PrometheusQuery;
use ramp_proxy::{ProxySettings, Router, RouterOptions, serve_admin};
use ramp_route::{RevisionSpec, RouteTable, TableSpec};
use ramp_runtime::{http_status, tail_log};
use ramp_server::measure::prometheus;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Where the Debian package installs Prometheus.
const PROMETHEUS: &str = "/usr/bin/prometheus";
/// Requests sent through the router, of which [`FAILING`] are answered 500.
const REQUESTS: u64 = 40;
const FAILING: u64 = 10;
/// Longest wait for Prometheus to start and scrape the router.
const SCRAPE_WAIT: Duration = Duration::from_secs(30);
/// Longest any single request of the test may take.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_answers_match_the_traffic_the_router_served() {
    assert!(
        Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} is missing: run scripts/test, which installs the Debian package \
         `prometheus` this test needs"
    );
    let backend = start_backend().await;
    let router = start_router(backend);
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    let admin_addr = admin.local_addr().expect("admin address");
    tokio::spawn(serve_admin(admin, router.clone(), std::future::pending()));

    for i in 0..REQUESTS {
        let (path, expected) = if i < FAILING {
            ("/fail", 500)
        } else {
            ("/", 200)
        };
        assert_eq!(get_status(router.local_addr(), path).await, expected);
    }

    let mut server = PrometheusServer::start(admin_addr);
    let total = query(&server, r#"sum(ramp_router_requests_total{job="ramp"})"#);
    server.wait_for(&total, &json!(REQUESTS as f64)).await;

    let error_ratio = query(
        &server,
        r#"sum(ramp_router_requests_total{code="5xx"}) / sum(ramp_router_requests_total)"#,
    );
    let expected_ratio = FAILING as f64 / REQUESTS as f64;
    assert_eq!(prometheus(&error_ratio).await, Ok(json!(expected_ratio)));

    let by_class = query(
        &server,
        r#"ramp_router_requests_total{revision="stable",code=~"2xx|5xx"}"#,
    );
    let Ok(Value::Array(values)) = prometheus(&by_class).await else {
        panic!("two samples should come back as an array");
    };
    let mut counts: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
    counts.sort_by(f64::total_cmp);
    assert_eq!(counts, [FAILING as f64, (REQUESTS - FAILING) as f64]);

    let nothing = query(&server, r#"ramp_router_requests_total{revision="absent"}"#);
    assert_eq!(prometheus(&nothing).await, Ok(json!([])));

    // No 1xx answers: 0/0 is NaN in PromQL, `null` as a result.
    let undefined = query(
        &server,
        r#"sum(ramp_router_requests_total{code="1xx"}) / sum(ramp_router_requests_total{code="1xx"})"#,
    );
    assert_eq!(prometheus(&undefined).await, Ok(Value::Null));

    let broken = query(&server, "sum(ramp_router_requests_total");
    let err = prometheus(&broken).await.unwrap_err();
    assert!(
        err.starts_with("Prometheus query failed (bad_data):"),
        "{err}"
    );

    drop(server);
    router.shutdown(Duration::from_secs(1)).await;
}

fn query(server: &PrometheusServer, promql: &str) -> PrometheusQuery {
    PrometheusQuery {
        address: format!("http://{}", server.addr),
        query: promql.to_owned(),
        timeout: OP_TIMEOUT,
    }
}

/// A backend answering 500 on `/fail` and 200 elsewhere.
async fn start_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("backend address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let status = if req.uri().path() == "/fail" {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    let mut response = Response::new(Full::new(Bytes::from_static(b"backend\n")));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A router sending everything to one revision, `stable`, served by `backend`.
fn start_router(backend: SocketAddr) -> Router {
    let spec = TableSpec {
        revisions: vec![RevisionSpec {
            name: "stable".into(),
            weight: 1,
            instances: vec![backend],
        }],
        ..TableSpec::default()
    };
    let options = RouterOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        workers: 1,
        pin_workers: false,
    };
    let table = RouteTable::new(spec).expect("valid table");
    Router::start(options, table, ProxySettings::default()).expect("router starts")
}

/// `GET path` through `addr` on a fresh connection; the status code.
async fn get_status(addr: SocketAddr, path: &str) -> u16 {
    tokio::time::timeout(OP_TIMEOUT, http_status(addr, path))
        .await
        .expect("the router answers in time")
        .expect("the router answers with a status line")
}

/// A Prometheus process scraping one target every second, with its configuration, data and
/// log in a directory of its own. Dropping it kills the process and removes the directory,
/// also when the test panics.
#[derive(Debug)]
struct PrometheusServer {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl PrometheusServer {
    fn start(target: SocketAddr) -> PrometheusServer {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "ramp-prometheus-test-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).expect("create the Prometheus directory");
        let config = dir.join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: ramp\n    static_configs:\n\
                 \x20     - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let addr = free_addr();
        let log = File::create(dir.join("prometheus.log")).expect("create the log");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PROMETHEUS}: {e}"));
        PrometheusServer { child, dir, addr }
    }

    /// Polls `q` until it returns `expected`; panics with the last answer and the end of
    /// Prometheus' log after [`SCRAPE_WAIT`], or as soon as Prometheus exits.
    async fn wait_for(&mut self, q: &PrometheusQuery, expected: &Value) {
        let deadline = Instant::now() + SCRAPE_WAIT;
        loop {
            let answer = prometheus(q).await;
            if answer.as_ref() == Ok(expected) {
                return;
            }
            let state = match self.child.try_wait() {
                Ok(Some(status)) => format!("exited: {status}"),
                _ if Instant::now() > deadline => "still running".to_owned(),
                _ => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            };
            panic!(
                "`{}` never returned {expected} (last answer: {answer:?}; Prometheus {state}); \
                 end of its log:\n{}",
                q.query,
                self.log_tail()
            );
        }
    }

    fn log_tail(&self) -> String {
        tail_log(&self.dir.join("prometheus.log"), 20)
            .unwrap_or_default()
            .join("\n")
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A 127.0.0.1 address that was free a moment ago.
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}
