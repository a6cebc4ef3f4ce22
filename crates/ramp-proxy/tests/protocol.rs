//! HTTP on the wire: malformed input, bodies and their framings, pipelining, HTTP/1.0,
//! `Expect: 100-continue`, protocol upgrades and h2c.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use ramp_metrics::StatusClass;
use ramp_route::{Condition, RuleSpec, Source, TableSpec, ValueMatch};
use support::{
    Backend, Client, H2Client, RawConn, Reply, chunked_expected, eventually, first_status,
    parse_response, raw_exchange, refused_addr, rev, start_router, table, table_from,
};

const WAIT: Duration = Duration::from_secs(3);

fn prometheus_value(router: &ramp_proxy::Router, name: &str) -> u64 {
    router
        .render_prometheus()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not rendered"))
}

async fn assert_serves(addr: std::net::SocketAddr, what: &str) {
    let mut client = Client::connect(addr).await.expect("connect");
    let reply = client
        .get("/", &[])
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "app"),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_the_right_status() {
    let backend = Backend::start("app").await;
    let router = start_router(table(vec![rev("app", 1, &[backend.addr])]));
    let addr = router.local_addr();

    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage line", b"HELLO WORLD\r\n\r\n".to_vec(), 400),
        ("binary garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), 400),
        ("missing Host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        (
            "Content-Length and Transfer-Encoding",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec(),
            400,
        ),
        (
            "two different Content-Lengths",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
                .to_vec(),
            400,
        ),
        ("70 KB header", huge_header.into_bytes(), 431),
        (
            "unsupported transfer coding",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            501,
        ),
        ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n".to_vec(), 405),
    ];
    for (what, bytes, want) in &cases {
        let (reply, closed) = raw_exchange(addr, bytes, false, WAIT).await;
        assert_eq!(
            first_status(&reply),
            Some(*want),
            "{what}: got {:?}",
            String::from_utf8_lossy(&reply[..reply.len().min(200)])
        );
        assert!(closed, "{what}: the connection is closed after the error");
        assert_serves(addr, what).await;
    }
    assert_eq!(
        prometheus_value(&router, "ramp_router_bad_requests_total"),
        cases.len() as u64
    );
    assert_eq!(
        backend.requests(),
        cases.len() as u64,
        "only the good requests arrived"
    );
}

#[test]
fn random_bytes_never_break_the_router() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (backend, router) = rt.block_on(async {
        let backend = Backend::start("app").await;
        let router = start_router(table(vec![rev("app", 1, &[backend.addr])]));
        (backend, router)
    });
    let addr = router.local_addr();
    let prefixes = prop::sample::select(vec![
        &b""[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        b"GET / HTTP/1.1\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    ]);
    let inputs =
        (prefixes, prop::collection::vec(any::<u8>(), 0..1024)).prop_map(|(prefix, tail)| {
            let mut bytes = prefix.to_vec();
            bytes.extend_from_slice(&tail);
            bytes
        });
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&inputs, |bytes| {
        rt.block_on(async {
            let (reply, closed) = raw_exchange(addr, &bytes, true, WAIT).await;
            prop_assert!(closed, "the connection is closed after end of input");
            if !reply.is_empty() {
                prop_assert!(
                    first_status(&reply).is_some(),
                    "not an HTTP response: {:?}",
                    String::from_utf8_lossy(&reply[..reply.len().min(100)])
                );
            }
            let mut client = Client::connect(addr).await.map_err(TestCaseError::fail)?;
            let reply = client.get("/", &[]).await.map_err(TestCaseError::fail)?;
            prop_assert_eq!(reply.status, 200);
            prop_assert_eq!(reply.text(), "app");
            Ok(())
        })
    });
    drop(backend);
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_are_echoed() {
    let backend = Backend::start("app").await;
    let router = start_router(table(vec![rev("app", 1, &[backend.addr])]));
    let mut client = Client::connect(router.local_addr()).await.expect("connect");
    for size in [0usize, 1, 10, 10_000, 300_000] {
        let body: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        for method in [Method::POST, Method::PUT] {
            let reply = client
                .request(method.clone(), "/echo", &[], Bytes::from(body.clone()))
                .await
                .unwrap_or_else(|e| panic!("{method} {size}: {e}"));
            assert_eq!(reply.status, 200, "{method} {size}");
            assert_eq!(reply.body.len(), size, "{method} {size}");
            assert!(reply.body == body, "{method} {size}: body differs");
            assert_eq!(reply.revision(), Some("app"));
        }
    }
    // HEAD: no body, and the connection carries on.
    let reply = client
        .request(Method::HEAD, "/", &[], Bytes::new())
        .await
        .expect("head");
    assert_eq!((reply.status, reply.body.len()), (200, 0));
    let reply = client.get("/", &[]).await.expect("get after head");
    assert_eq!(reply.text(), "app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_request_bodies_are_echoed() {
    let backend = Backend::start("app").await;
    let router = start_router(table(vec![rev("app", 1, &[backend.addr])]));
    let addr = router.local_addr();
    let head = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunks = [
        "5\r\nhello\r\n",
        "6;ext=1\r\n world\r\n",
        "1\r\n!\r\n",
        "0\r\n\r\n",
    ];

    // All at once (the router has the whole body before it forwards).
    let mut conn = RawConn::connect(addr).await;
    conn.send(format!("{head}{}", chunks.concat()).as_bytes())
        .await
        .expect("send");
    let reply = conn.response(WAIT).await.expect("response");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"hello world!");

    // Piece by piece on the same connection (the router streams the body).
    conn.send(head.as_bytes()).await.expect("send head");
    for chunk in chunks {
        tokio::time::sleep(Duration::from_millis(20)).await;
        conn.send(chunk.as_bytes()).await.expect("send chunk");
    }
    let reply = conn.response(WAIT).await.expect("streamed response");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"hello world!");
    assert_eq!(reply.header("x-ramp-revision"), Some("app"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunked_body_is_a_client_error() {
    let backend = Backend::start("app").await;
    let router = start_router(table(vec![rev("app", 1, &[backend.addr])]));
    let mut conn = RawConn::connect(router.local_addr()).await;
    conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = conn.send(b"lo\r\nzz-not-a-size\r\n\r\n").await;
    let reply = conn.response(WAIT).await.expect("an answer");
    assert_eq!(
        reply.status,
        400,
        "a broken request body is the client's fault: {}",
        String::from_utf8_lossy(&reply.body)
    );
    // Nor may it count against the revision as a failing upstream.
    eventually("the request recorded", Duration::from_secs(2), || {
        router.revision_metrics()[0].1.total() == 1
    })
    .await;
    let m = &router.revision_metrics()[0].1;
    assert_eq!((m.errors_5xx(), m.upstream_errors), (0, 0), "{m:?}");
    assert_eq!(m.requests(StatusClass::ClientError), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_responses_are_delivered_whole() {
    let backend = Backend::start("app").await;
    let router = start_router(table(vec![rev("app", 1, &[backend.addr])]));
    let addr = router.local_addr();
    let mut client = Client::connect(addr).await.expect("connect");
    for _ in 0..3 {
        let reply = client.get("/chunked", &[]).await.expect("chunked");
        assert_eq!(reply.status, 200);
        assert!(reply.body == chunked_expected("app"), "body differs");
        assert_eq!(reply.header("content-length"), None);
    }
    // On the wire: chunked coding, then the connection carries on.
    let mut conn = RawConn::connect(addr).await;
    conn.send(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let first = conn.response(WAIT).await.expect("chunked response");
    assert_eq!(first.header("transfer-encoding"), Some("chunked"));
    assert!(first.body == chunked_expected("app"));
    let second = conn.response(WAIT).await.expect("next response");
    assert_eq!(second.body, b"app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let backend = Backend::start("app").await;
    let router = start_router(table(vec![rev("app", 1, &[backend.addr])]));
    let (bytes, closed) = raw_exchange(
        router.local_addr(),
        b"GET /slow/50 HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody\
          GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false,
        WAIT,
    )
    .await;
    assert!(closed, "closed after the last request asked for it");
    let mut rest = &bytes[..];
    let mut paths = Vec::new();
    let mut bodies = Vec::new();
    while let Some((reply, used)) = parse_response(rest, true) {
        assert_eq!(reply.status, 200);
        paths.push(reply.header("x-path").unwrap_or_default().to_string());
        bodies.push(String::from_utf8_lossy(&reply.body).into_owned());
        rest = &rest[used..];
        if rest.is_empty() {
            break;
        }
    }
    assert_eq!(paths, ["/slow/50", "/b", "/c"]);
    assert_eq!(bodies, ["app", "body", "app"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_requests_are_answered() {
    let backend = Backend::start("app").await;
    let router = start_router(table(vec![rev("app", 1, &[backend.addr])]));
    let addr = router.local_addr();

    let (bytes, closed) = raw_exchange(addr, b"GET /x HTTP/1.0\r\n\r\n", false, WAIT).await;
    assert!(
        closed,
        "an HTTP/1.0 request without keep-alive ends the connection"
    );
    let (reply, _) = parse_response(&bytes, true).expect("a response");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"app"[..]));
    assert_eq!(reply.header("x-ramp-revision"), Some("app"));

    // A chunked response is decoded for an HTTP/1.0 client, which reads it to the close.
    let (bytes, closed) = raw_exchange(addr, b"GET /chunked HTTP/1.0\r\n\r\n", false, WAIT).await;
    assert!(closed);
    let (reply, _) = parse_response(&bytes, true).expect("a response");
    assert_eq!(reply.header("transfer-encoding"), None);
    assert!(
        reply.body == chunked_expected("app"),
        "dechunked body differs"
    );

    // HTTP/1.0 keep-alive is honoured.
    let mut conn = RawConn::connect(addr).await;
    for _ in 0..2 {
        conn.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await
            .expect("send");
        let reply = conn.response(WAIT).await.expect("response");
        assert_eq!(reply.body, b"app");
        assert_eq!(reply.header("connection"), Some("keep-alive"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_gets_100_then_the_response() {
    let backend = Backend::start("app").await;
    let router = start_router(table(vec![rev("app", 1, &[backend.addr])]));
    let mut conn = RawConn::connect(router.local_addr()).await;
    conn.send(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .expect("send head");
    let interim = conn.response(WAIT).await.expect("interim response");
    assert_eq!(interim.status, 100);
    // Nothing more until the body is sent.
    assert!(
        !conn
            .read_until(Duration::from_millis(100), |b| !b.is_empty())
            .await
    );
    conn.send(b"hello there").await.expect("send body");
    let reply = conn.response(WAIT).await.expect("final response");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"hello there");
    assert_eq!(reply.header("x-ramp-revision"), Some("app"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_tunnels_both_ways() {
    let backend = Backend::start("app").await;
    let router = start_router(table(vec![rev("app", 1, &[backend.addr])]));
    let mut conn = RawConn::connect(router.local_addr()).await;
    conn.send(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .expect("send upgrade");
    let switching = conn.response(WAIT).await.expect("101");
    assert_eq!(switching.status, 101);
    assert_eq!(
        switching
            .header("upgrade")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("websocket")
    );
    assert_eq!(switching.header("x-ramp-revision"), Some("app"));
    // The instance speaks first, then echoes.
    assert!(
        conn.read_until(WAIT, |b| b == b"welcome app\n").await,
        "greeting: {:?}",
        String::from_utf8_lossy(&conn.buf)
    );
    conn.buf.clear();
    for i in 0..5 {
        let message = format!("message {i} {}", "x".repeat(i * 1000));
        conn.send(message.as_bytes()).await.expect("send");
        assert!(
            conn.read_until(WAIT, |b| b.len() >= message.len()).await,
            "echo of message {i}"
        );
        assert_eq!(conn.buf, message.as_bytes());
        conn.buf.clear();
    }
}

/// The body of a request whose exchange failed must never be read as the next request on the
/// connection (that is request smuggling).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_request_body_is_never_parsed_as_a_request() {
    let backend = Backend::start("app").await;
    let spec = TableSpec {
        revisions: vec![
            rev("app", 1, &[backend.addr]),
            rev("dead", 0, &[refused_addr()]),
        ],
        rules: vec![RuleSpec {
            conditions: vec![Condition {
                source: Source::header("x-dead"),
                value: ValueMatch::Present,
            }],
            revision: "dead".into(),
        }],
        ..TableSpec::default()
    };
    let router = start_router(table_from(spec));
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut conn = RawConn::connect(router.local_addr()).await;
    conn.send(
        format!(
            "POST /first HTTP/1.1\r\nHost: x\r\nx-dead: 1\r\nContent-Length: {}\r\n\r\n{smuggled}",
            smuggled.len()
        )
        .as_bytes(),
    )
    .await
    .expect("send");
    let first = conn.response(WAIT).await.expect("first response");
    assert!(
        first.status >= 500,
        "the dead revision fails: {}",
        first.status
    );
    // The client goes on with its next request, if the router kept the connection.
    let _ = conn
        .send(b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut answers = Vec::new();
    while let Some(reply) = conn.response(WAIT).await {
        answers.push((reply.status, reply.header("x-path").map(str::to_string)));
        if answers.len() >= 3 {
            break;
        }
    }
    assert!(
        answers.is_empty() || answers == [(200, Some("/next".to_string()))],
        "after a failed POST the router answered {answers:?} (its body was taken for a request)"
    );
    assert_eq!(
        backend.requests(),
        answers.len() as u64,
        "the backend saw a smuggled request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_requests_are_routed() {
    let blue = Backend::start("blue").await;
    let green = Backend::start("green").await;
    let spec = TableSpec {
        revisions: vec![
            rev("blue", 50, &[blue.addr]),
            rev("green", 50, &[green.addr]),
        ],
        rules: vec![RuleSpec {
            conditions: vec![Condition {
                source: Source::cookie("beta"),
                value: ValueMatch::Exact("1".into()),
            }],
            revision: "green".into(),
        }],
        ..TableSpec::default()
    };
    let router = start_router(table_from(spec));
    let client = Arc::new(
        H2Client::connect(router.local_addr())
            .await
            .expect("h2 connect"),
    );

    // Many streams at once on the one connection.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200u32 {
        let client = Arc::clone(&client);
        tasks.spawn(async move {
            let headers: &[(&str, &str)] = if i % 4 == 0 {
                &[("cookie", "beta=1")]
            } else {
                &[]
            };
            (
                i,
                client
                    .request(Method::GET, "/", headers, Bytes::new())
                    .await,
            )
        });
    }
    let mut by_revision = std::collections::HashMap::<String, u32>::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.expect("task");
        let reply: Reply = result.unwrap_or_else(|e| panic!("h2 request {i}: {e}"));
        assert_eq!(reply.status, 200);
        let backend = reply.backend().expect("x-backend").to_string();
        assert_eq!(reply.revision(), Some(backend.as_str()));
        assert_eq!(reply.text(), backend);
        if i % 4 == 0 {
            assert_eq!(backend, "green", "the cookie rule pins h2 requests");
        }
        *by_revision.entry(backend).or_default() += 1;
    }
    assert!(
        by_revision.get("blue").copied().unwrap_or(0) > 0,
        "{by_revision:?}"
    );
    assert!(
        by_revision.get("green").copied().unwrap_or(0) > 50,
        "{by_revision:?}"
    );

    // POST echo over h2, small and large.
    for size in [5usize, 100_000] {
        let body: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        let reply = client
            .request(Method::POST, "/echo", &[], Bytes::from(body.clone()))
            .await
            .expect("h2 post");
        assert_eq!(reply.status, 200);
        assert!(reply.body == body, "h2 echo of {size} bytes differs");
        assert!(reply.revision().is_some());
    }
    // A chunked response over h2.
    let reply = client
        .request(
            Method::GET,
            "/chunked",
            &[("cookie", "beta=1")],
            Bytes::new(),
        )
        .await
        .expect("h2 chunked");
    assert!(reply.body == chunked_expected("green"));
}
