//! Shared support for the router's integration tests: in-process backends, clients, a load
//! generator and table builders. Everything talks to 127.0.0.1 only, and every loop is bounded
//! in count and in time.
//!
//! Each test file includes this module with `mod support;` and uses only part of it.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, HOST, UPGRADE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ramp_proxy::{ProxySettings, Router, RouterOptions};
use ramp_route::{RevisionSpec, RouteTable, TableSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

/// Response header in which the router names the serving revision (set by [`settings`]).
pub(crate) const REVISION_HEADER: &str = "x-ramp-revision";
/// Header the router adds to mirrored copies.
pub(crate) const MIRROR_HEADER: &str = "x-ramp-mirror";
/// Longest any single client operation may take before a helper gives up on it.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// Hard limits of one load generator, whatever the test does.
const LOAD_MAX_TIME: Duration = Duration::from_secs(20);
const LOAD_MAX_REQUESTS_PER_CONN: u64 = 100_000;
/// Errors kept verbatim in a tally.
const ERRORS_KEPT: usize = 8;

// ---------------------------------------------------------------------------------------------
// Routing tables and the router
// ---------------------------------------------------------------------------------------------

/// A revision spec.
pub(crate) fn rev(name: &str, weight: u32, addrs: &[SocketAddr]) -> RevisionSpec {
    RevisionSpec {
        name: name.into(),
        weight,
        instances: addrs.to_vec(),
    }
}

/// A table with just these revisions (no rules, mirrors or stickiness).
pub(crate) fn table(revisions: Vec<RevisionSpec>) -> RouteTable {
    table_from(TableSpec {
        revisions,
        ..TableSpec::default()
    })
}

/// A validated table; panics on an invalid spec (a test bug).
pub(crate) fn table_from(spec: TableSpec) -> RouteTable {
    RouteTable::new(spec).expect("valid route table")
}

/// Default settings with the revision response header on.
pub(crate) fn settings() -> ProxySettings {
    ProxySettings {
        revision_header: Some(REVISION_HEADER.into()),
        ..ProxySettings::default()
    }
}

/// A router on 127.0.0.1 with two workers and [`settings`].
pub(crate) fn start_router(table: RouteTable) -> Router {
    start_router_with(table, settings())
}

/// A router on 127.0.0.1 with two workers.
pub(crate) fn start_router_with(table: RouteTable, settings: ProxySettings) -> Router {
    let options = RouterOptions {
        listen: "127.0.0.1:0".parse().expect("address"),
        workers: 2,
        pin_workers: false,
    };
    Router::start(options, table, settings).expect("router starts")
}

/// An address on 127.0.0.1 where connections are refused (a low port nothing listens on,
/// checked to refuse right now; unprivileged tests can never bind it).
pub(crate) fn refused_addr() -> SocketAddr {
    for port in 1..100u16 {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if let Err(e) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            && e.kind() == io::ErrorKind::ConnectionRefused
        {
            return addr;
        }
    }
    panic!("no refusing port found on 127.0.0.1");
}

/// Waits until `cond` holds, polling every few milliseconds; panics with `what` after `wait`.
pub(crate) async fn eventually(what: &str, wait: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + wait;
    loop {
        if cond() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Binomial check with a 5-sigma tolerance: a correct split fails with odds below 1e-6.
pub(crate) fn assert_share(hits: u64, n: u64, p: f64, what: &str) {
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    let diff = (hits as f64 - n as f64 * p).abs();
    assert!(
        diff <= 5.0 * sd + 1.0,
        "{what}: {hits} of {n}, expected p={p} (±{:.1})",
        5.0 * sd + 1.0
    );
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct BackendCounters {
    requests: AtomicU64,
    mirrored: AtomicU64,
    connections: AtomicU64,
    /// Bodies of mirrored POST/PUT copies, in arrival order (at most a thousand).
    mirrored_bodies: Mutex<Vec<Bytes>>,
}

#[derive(Debug)]
struct BackendConfig {
    name: String,
    delay: Duration,
    counters: Arc<BackendCounters>,
    /// Tasks serving upgraded (101) connections, aborted with the backend.
    upgraded: Mutex<Vec<AbortHandle>>,
}

/// An in-process HTTP/1.1 instance (hyper server with upgrades).
///
/// - every response carries `x-backend: NAME` and `x-path: PATH`;
/// - the body is the name, except: POST/PUT echo the request body; `/chunked` streams
///   [`chunked_expected`] in several frames without a known length;
/// - `/slow/{ms}` sleeps that long first; `x-status: NNN` sets the status;
/// - `GET /ws` with `Upgrade: websocket` answers 101, sends `welcome NAME\n` over the upgraded
///   connection and then echoes every byte;
/// - a fixed delay (see [`Backend::with_delay`]) applies to every request.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    config: Arc<BackendConfig>,
    accept: JoinHandle<()>,
}

impl Backend {
    pub(crate) async fn start(name: &str) -> Backend {
        Backend::with_delay(name, Duration::ZERO).await
    }

    /// A backend that waits `delay` before answering any request.
    pub(crate) async fn with_delay(name: &str, delay: Duration) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("backend address");
        let config = Arc::new(BackendConfig {
            name: name.into(),
            delay,
            counters: Arc::default(),
            upgraded: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(backend_accept(listener, Arc::clone(&config)));
        Backend {
            name: name.into(),
            addr,
            config,
            accept,
        }
    }

    /// Requests received (including mirrored copies).
    pub(crate) fn requests(&self) -> u64 {
        self.config.counters.requests.load(Relaxed)
    }

    /// Requests received that carried `x-ramp-mirror`.
    pub(crate) fn mirrored(&self) -> u64 {
        self.config.counters.mirrored.load(Relaxed)
    }

    /// Connections accepted.
    pub(crate) fn connections(&self) -> u64 {
        self.config.counters.connections.load(Relaxed)
    }

    /// Bodies of mirrored POST/PUT copies received.
    pub(crate) fn mirrored_bodies(&self) -> Vec<Bytes> {
        lock(&self.config.counters.mirrored_bodies).clone()
    }

    /// Kills the instance: the listener and every open connection go away at once.
    pub(crate) async fn kill(&mut self) {
        for task in lock(&self.config.upgraded).drain(..) {
            task.abort();
        }
        self.accept.abort();
        // The accept task owns the listener and the JoinSet of connection tasks: once it has
        // been dropped, the listener is closed and every connection task is aborted.
        let _ = (&mut self.accept).await;
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        for task in lock(&self.config.upgraded).drain(..) {
            task.abort();
        }
        self.accept.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn backend_accept(listener: TcpListener, config: Arc<BackendConfig>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                config.counters.connections.fetch_add(1, Relaxed);
                let _ = stream.set_nodelay(true);
                let config = Arc::clone(&config);
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        backend_handle(Arc::clone(&config), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

type BackendBody = UnsyncBoxBody<Bytes, Infallible>;

fn full(body: impl Into<Bytes>) -> BackendBody {
    Full::new(body.into()).boxed_unsync()
}

async fn backend_handle(
    config: Arc<BackendConfig>,
    req: Request<Incoming>,
) -> Result<Response<BackendBody>, Infallible> {
    let counters = &config.counters;
    counters.requests.fetch_add(1, Relaxed);
    let mirrored = req.headers().contains_key(MIRROR_HEADER);
    if mirrored {
        counters.mirrored.fetch_add(1, Relaxed);
    }
    if !config.delay.is_zero() {
        tokio::time::sleep(config.delay).await;
    }
    let path = req.uri().path().to_string();
    if let Some(ms) = path
        .strip_prefix("/slow/")
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
    }
    let status = req
        .headers()
        .get("x-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let builder = Response::builder()
        .status(status)
        .header("x-backend", &config.name)
        .header("x-path", &path);

    let wants_websocket = req
        .headers()
        .get(UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if path == "/ws" && wants_websocket {
        let on_upgrade = hyper::upgrade::on(req);
        let greeting = format!("welcome {}\n", config.name);
        let task = tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let mut io = TokioIo::new(upgraded);
            if io.write_all(greeting.as_bytes()).await.is_err() {
                return;
            }
            let mut buf = [0u8; 4096];
            for _ in 0..10_000 {
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if io.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        lock(&config.upgraded).push(task.abort_handle());
        let response = builder
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, "websocket")
            .body(Empty::new().boxed_unsync());
        return Ok(response.expect("101 response"));
    }
    if path == "/chunked" {
        let body = ChunkedBody {
            frames: chunked_frames(&config.name).into(),
            pause: None,
        };
        return Ok(builder.body(body.boxed_unsync()).expect("chunked response"));
    }
    if req.method() == Method::POST || req.method() == Method::PUT {
        let body = match req.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        };
        if mirrored {
            let mut bodies = lock(&counters.mirrored_bodies);
            if bodies.len() < 1000 {
                bodies.push(body.clone());
            }
        }
        return Ok(builder.body(full(body)).expect("echo response"));
    }
    Ok(builder
        .body(full(config.name.clone()))
        .expect("plain response"))
}

fn chunked_frames(name: &str) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"alpha-"),
        Bytes::from(vec![b'x'; 20_000]),
        Bytes::from_static(b"-beta-"),
        Bytes::from(name.to_string()),
        Bytes::from_static(b"-end"),
    ]
}

/// The whole body `/chunked` streams from backend `name`.
pub(crate) fn chunked_expected(name: &str) -> Vec<u8> {
    chunked_frames(name).concat()
}

/// A body of several frames, a short pause between them, and no known length (so hyper sends
/// it with the chunked coding).
struct ChunkedBody {
    frames: VecDeque<Bytes>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(pause) = this.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            this.pause = None;
        }
        match this.frames.pop_front() {
            None => Poll::Ready(None),
            Some(frame) => {
                this.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(3))));
                Poll::Ready(Some(Ok(Frame::data(frame))))
            }
        }
    }
}

/// A raw instance that answers every request with a fixed `200` (content-length, no
/// `Connection: close`) and closes the connection right after: the classic keep-alive reuse
/// race of an instance closing idle connections. With a close delay, the connection stays
/// open (unread) that long first, so a client reusing it at once always loses the race.
#[derive(Debug)]
pub(crate) struct FlakyBackend {
    pub(crate) addr: SocketAddr,
    requests: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

/// The body [`FlakyBackend`] answers with.
pub(crate) const FLAKY_BODY: &str = "flaky";

impl FlakyBackend {
    pub(crate) async fn start() -> FlakyBackend {
        FlakyBackend::with_close_delay(Duration::ZERO).await
    }

    pub(crate) async fn with_close_delay(close_delay: Duration) -> FlakyBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind flaky backend");
        let addr = listener.local_addr().expect("flaky address");
        let requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&requests);
        let accept = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        };
                        conns.spawn(flaky_serve(stream, Arc::clone(&counter), close_delay));
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        FlakyBackend {
            addr,
            requests,
            accept,
        }
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }
}

impl Drop for FlakyBackend {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn flaky_serve(mut stream: TcpStream, requests: Arc<AtomicU64>, close_delay: Duration) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read one whole request (head and content-length body), at most 1 MB.
    let wanted = loop {
        if buf.len() > 1 << 20 {
            return;
        }
        match tokio::time::timeout(OP_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = req.parse(&buf) {
            let body_len = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break head_len + body_len;
        }
    };
    while buf.len() < wanted {
        match tokio::time::timeout(OP_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    requests.fetch_add(1, Relaxed);
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-backend: flaky\r\n\r\n{FLAKY_BODY}",
        FLAKY_BODY.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    if !close_delay.is_zero() {
        tokio::time::sleep(close_delay).await;
    }
    // Dropping the stream closes it (with a reset if a next request arrived unread).
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// A response as a client saw it.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The instance that answered (`x-backend`).
    pub(crate) fn backend(&self) -> Option<&str> {
        self.header("x-backend")
    }

    /// The revision the router names (`x-ramp-revision`).
    pub(crate) fn revision(&self) -> Option<&str> {
        self.header(REVISION_HEADER)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn build_request(
    addr: SocketAddr,
    method: Method,
    uri: String,
    headers: &[(&str, &str)],
    body: Bytes,
    host: bool,
) -> Result<Request<Full<Bytes>>, String> {
    let mut builder = Request::builder().method(method).uri(uri);
    if host {
        builder = builder.header(HOST, addr.to_string());
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body)).map_err(|e| e.to_string())
}

async fn read_reply(response: Response<Incoming>) -> Result<Reply, String> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// A keep-alive HTTP/1.1 client on one connection (hyper's client connection API).
#[derive(Debug)]
pub(crate) struct Client {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    conn: JoinHandle<()>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Client, String> {
        let connect = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))
        };
        let (sender, conn) = tokio::time::timeout(OP_TIMEOUT, connect)
            .await
            .map_err(|_| "connect timed out".to_string())??;
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Client { addr, sender, conn })
    }

    pub(crate) async fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        self.request(Method::GET, path, headers, Bytes::new()).await
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Reply, String> {
        self.request(Method::POST, path, &[], body.into()).await
    }

    pub(crate) async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, String> {
        let request = build_request(self.addr, method, path.to_string(), headers, body, true)?;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("connection not ready: {e}"))?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            read_reply(response).await
        };
        tokio::time::timeout(OP_TIMEOUT, exchange)
            .await
            .map_err(|_| "request timed out".to_string())?
    }

    /// The connection is closed (by either side).
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// An h2c client with prior knowledge (hyper's HTTP/2 client connection API).
#[derive(Debug)]
pub(crate) struct H2Client {
    addr: SocketAddr,
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    conn: JoinHandle<()>,
}

impl H2Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Result<H2Client, String> {
        let connect = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| format!("h2 handshake: {e}"))
        };
        let (sender, conn) = tokio::time::timeout(OP_TIMEOUT, connect)
            .await
            .map_err(|_| "connect timed out".to_string())??;
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(H2Client { addr, sender, conn })
    }

    /// One request; `&self` so that many can be in flight on the connection at once.
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, String> {
        let uri = format!("http://{}{path}", self.addr);
        let request = build_request(self.addr, method, uri, headers, body, false)?;
        let mut sender = self.sender.clone();
        let exchange = async {
            sender
                .ready()
                .await
                .map_err(|e| format!("connection not ready: {e}"))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            read_reply(response).await
        };
        tokio::time::timeout(OP_TIMEOUT, exchange)
            .await
            .map_err(|_| "request timed out".to_string())?
    }
}

impl Drop for H2Client {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Raw TCP
// ---------------------------------------------------------------------------------------------

/// A raw TCP connection for sending arbitrary bytes and reading whatever comes back.
#[derive(Debug)]
pub(crate) struct RawConn {
    stream: TcpStream,
    /// Bytes received and not yet taken by [`RawConn::response`].
    pub(crate) buf: Vec<u8>,
    /// The peer closed (or reset) the connection.
    pub(crate) closed: bool,
}

impl RawConn {
    pub(crate) async fn connect(addr: SocketAddr) -> RawConn {
        let stream = tokio::time::timeout(OP_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        let _ = stream.set_nodelay(true);
        RawConn {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }

    /// Sends bytes; a write error (the peer closed early) is returned, not a panic.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::time::timeout(OP_TIMEOUT, self.stream.write_all(bytes))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
    }

    /// Closes the sending half (the peer reads end of stream).
    pub(crate) async fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Reads once into `buf`, waiting at most until `deadline`. False on timeout or close.
    async fn read_some(&mut self, deadline: tokio::time::Instant) -> bool {
        if self.closed {
            return false;
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Err(_) => false,
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.closed = true;
                false
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Reads until `done(buf)` holds, the peer closes, or `wait` passes; returns `done(buf)`.
    pub(crate) async fn read_until(
        &mut self,
        wait: Duration,
        done: impl Fn(&[u8]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while !done(&self.buf) {
            if !self.read_some(deadline).await {
                return done(&self.buf);
            }
        }
        true
    }

    /// Reads until the peer closes or `wait` passes; true if it closed.
    pub(crate) async fn read_to_close(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while self.read_some(deadline).await {}
        self.closed
    }

    /// Takes the next complete response from the connection, reading as needed (up to `wait`).
    pub(crate) async fn response(&mut self, wait: Duration) -> Option<RawResponse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((response, used)) = parse_response(&self.buf, self.closed) {
                self.buf.drain(..used);
                return Some(response);
            }
            if !self.read_some(deadline).await && !self.closed {
                return None;
            }
            if self.closed {
                return parse_response(&self.buf, true).map(|(response, used)| {
                    self.buf.drain(..used);
                    response
                });
            }
        }
    }
}

/// Sends `bytes` on a new connection and reads until the router closes it or `wait` passes.
/// With `half_close`, the sending half is closed after the bytes.
pub(crate) async fn raw_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    half_close: bool,
    wait: Duration,
) -> (Vec<u8>, bool) {
    let mut conn = RawConn::connect(addr).await;
    // The router may answer and close before reading everything (e.g. a head too large).
    let _ = conn.send(bytes).await;
    if half_close {
        conn.shutdown_write().await;
    }
    let closed = conn.read_to_close(wait).await;
    (conn.buf, closed)
}

/// A response parsed from raw bytes.
#[derive(Debug, Clone)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one response at the start of `buf`: its head and, by its framing, its body.
/// `closed` says the stream ended (so a close-delimited body is complete). Returns the
/// response and the bytes it used, or `None` if it is not complete (or not HTTP).
pub(crate) fn parse_response(buf: &[u8], closed: bool) -> Option<(RawResponse, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    let status = res.code?;
    let headers: Vec<(String, String)> = res
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let rest = &buf[head_len..];
    let no_body = (100..200).contains(&status) || status == 204 || status == 304;
    let chunked = find("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().trim_end().ends_with("chunked"));
    let (body, used) = if no_body {
        (Vec::new(), 0)
    } else if chunked {
        decode_chunked(rest)?
    } else if let Some(len) = find("content-length") {
        let len: usize = len.trim().parse().ok()?;
        if rest.len() < len {
            return None;
        }
        (rest[..len].to_vec(), len)
    } else if closed {
        (rest.to_vec(), rest.len())
    } else {
        return None;
    };
    Some((
        RawResponse {
            status,
            headers,
            body,
        },
        head_len + used,
    ))
}

/// Decodes a complete chunked body at the start of `buf`: the payload and the bytes used.
pub(crate) fn decode_chunked(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + find_crlf(&buf[at..])?;
        let line = std::str::from_utf8(&buf[at..line_end]).ok()?;
        let size_text = line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailer fields (none expected), then the final empty line.
            loop {
                let end = at + find_crlf(&buf[at..])?;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Some((body, at));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return None;
        }
        at += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// The status code of the first status line in `bytes`, if there is one.
pub(crate) fn first_status(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..bytes.len().min(64))?).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

/// Headers for request number `i`.
pub(crate) type HeaderFn = Arc<dyn Fn(u64) -> Vec<(String, String)> + Send + Sync>;

/// What a run of requests came to.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    /// The first few failures, verbatim.
    pub(crate) errors: Vec<String>,
    /// Successful responses by `x-backend`.
    pub(crate) by_backend: HashMap<String, u64>,
    /// Successful responses by `x-ramp-revision`.
    pub(crate) by_revision: HashMap<String, u64>,
}

impl Tally {
    fn record(&mut self, result: &Result<Reply, String>) {
        match result {
            Ok(reply) if reply.status == 200 => {
                self.ok += 1;
                let backend = reply.backend().unwrap_or("<none>").to_string();
                *self.by_backend.entry(backend).or_default() += 1;
                let revision = reply.revision().unwrap_or("<none>").to_string();
                *self.by_revision.entry(revision).or_default() += 1;
            }
            Ok(reply) => self.fail(format!("status {}: {}", reply.status, reply.text().trim())),
            Err(e) => self.fail(e.clone()),
        }
    }

    fn fail(&mut self, error: String) {
        self.failed += 1;
        if self.errors.len() < ERRORS_KEPT {
            self.errors.push(error);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        for e in other.errors {
            if self.errors.len() < ERRORS_KEPT {
                self.errors.push(e);
            }
        }
        for (k, v) in other.by_backend {
            *self.by_backend.entry(k).or_default() += v;
        }
        for (k, v) in other.by_revision {
            *self.by_revision.entry(k).or_default() += v;
        }
    }

    pub(crate) fn backend(&self, name: &str) -> u64 {
        self.by_backend.get(name).copied().unwrap_or(0)
    }

    pub(crate) fn revision(&self, name: &str) -> u64 {
        self.by_revision.get(name).copied().unwrap_or(0)
    }
}

/// Connections hammering `GET /` until stopped, reconnecting after errors.
#[derive(Debug)]
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<Tally>>,
}

impl Load {
    pub(crate) fn start(addr: SocketAddr, conns: usize) -> Load {
        Load::start_with(addr, conns, None)
    }

    pub(crate) fn start_with(addr: SocketAddr, conns: usize, headers: Option<HeaderFn>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let tasks = (0..conns)
            .map(|c| {
                let (stop, done, headers) = (Arc::clone(&stop), Arc::clone(&done), headers.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let started = Instant::now();
                    let mut client: Option<Client> = None;
                    let mut i = 0u64;
                    while !stop.load(Relaxed)
                        && started.elapsed() < LOAD_MAX_TIME
                        && i < LOAD_MAX_REQUESTS_PER_CONN
                    {
                        i += 1;
                        let conn = match client.as_mut() {
                            Some(conn) => conn,
                            None => match Client::connect(addr).await {
                                Ok(conn) => client.insert(conn),
                                Err(e) => {
                                    tally.fail(e);
                                    tokio::time::sleep(Duration::from_millis(5)).await;
                                    continue;
                                }
                            },
                        };
                        let owned = headers
                            .as_ref()
                            .map(|h| h(i * 1000 + c as u64))
                            .unwrap_or_default();
                        let pairs: Vec<(&str, &str)> = owned
                            .iter()
                            .map(|(n, v)| (n.as_str(), v.as_str()))
                            .collect();
                        let result = conn.get("/", &pairs).await;
                        if result.is_err() {
                            client = None;
                        }
                        tally.record(&result);
                        done.fetch_add(1, Relaxed);
                    }
                    tally
                })
            })
            .collect();
        Load { stop, done, tasks }
    }

    /// Requests completed so far (successful or not).
    pub(crate) fn completed(&self) -> u64 {
        self.done.load(Relaxed)
    }

    /// Waits until `n` more requests have completed (at most a few seconds).
    pub(crate) async fn wait_for(&self, n: u64) {
        let target = self.completed() + n;
        eventually("load progress", Duration::from_secs(10), || {
            self.completed() >= target
        })
        .await;
    }

    /// Stops every connection and returns the tally.
    pub(crate) async fn stop(self) -> Tally {
        self.stop.store(true, Relaxed);
        let mut total = Tally::default();
        for task in self.tasks {
            total.merge(task.await.expect("load task"));
        }
        total
    }
}

/// Results tagged with their request number.
type Indexed = Vec<(u64, Result<Reply, String>)>;

/// Sends exactly `n` requests (`GET /` with the headers `headers(i)` for request `i`) over
/// `conns` keep-alive connections; returns each request's result, by `i`.
pub(crate) async fn fire(
    addr: SocketAddr,
    conns: usize,
    n: u64,
    headers: impl Fn(u64) -> Vec<(String, String)> + Send + Sync + 'static,
) -> Vec<Result<Reply, String>> {
    let next = Arc::new(AtomicU64::new(0));
    let headers = Arc::new(headers);
    let tasks: Vec<JoinHandle<Indexed>> = (0..conns)
        .map(|_| {
            let (next, headers) = (Arc::clone(&next), Arc::clone(&headers));
            tokio::spawn(async move {
                let mut out = Vec::new();
                let mut client: Option<Client> = None;
                loop {
                    let i = next.fetch_add(1, Relaxed);
                    if i >= n {
                        return out;
                    }
                    if client.is_none() {
                        match Client::connect(addr).await {
                            Ok(c) => client = Some(c),
                            Err(e) => {
                                out.push((i, Err(e)));
                                continue;
                            }
                        }
                    }
                    let conn = client.as_mut().expect("connected");
                    let owned = headers(i);
                    let pairs: Vec<(&str, &str)> = owned
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    let result = conn.get("/", &pairs).await;
                    if result.is_err() {
                        client = None;
                    }
                    out.push((i, result));
                }
            })
        })
        .collect();
    let mut results: Vec<Option<Result<Reply, String>>> = (0..n).map(|_| None).collect();
    for task in tasks {
        for (i, result) in task.await.expect("fire task") {
            results[i as usize] = Some(result);
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every request ran"))
        .collect()
}

/// Tallies results from [`fire`].
pub(crate) fn tally(results: &[Result<Reply, String>]) -> Tally {
    let mut t = Tally::default();
    for r in results {
        t.record(r);
    }
    t
}

/// No headers, for [`fire`].
pub(crate) fn no_headers(_: u64) -> Vec<(String, String)> {
    Vec::new()
}
