//! Shared helpers for the real-process tests: child processes that are always killed, free
//! ports, temporary directories, and a small keep-alive HTTP/1 client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

pub(crate) const RAMP: &str = env!("CARGO_BIN_EXE_ramp");

/// The response header the test routers name the serving revision in.
pub(crate) const REVISION_HEADER: &str = "x-ramp-revision";

/// How long a child may take to start listening.
const STARTUP: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A child `ramp` process, killed and reaped when dropped (also when the test panics), with its
/// stdout and stderr collected in the background.
pub(crate) struct Proc {
    name: String,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proc")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .finish()
    }
}

impl Proc {
    /// Runs `ramp ARGS`, with color off, info logging, and none of demo-app's env settings.
    pub(crate) fn spawn(name: impl Into<String>, args: &[&str]) -> Proc {
        let name = name.into();
        let mut child = Command::new(RAMP)
            .args(args)
            .env("NO_COLOR", "1")
            .env("RAMP_LOG", "info")
            .env_remove("APP_VERSION")
            .env_remove("ERROR_RATE")
            .env_remove("LATENCY")
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({RAMP}): {e}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            capture(child.stdout.take().expect("piped stdout"), &stdout),
            capture(child.stderr.take().expect("piped stderr"), &stderr),
        ];
        Proc {
            name,
            child,
            stdout,
            stderr,
            readers,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything written to stdout so far.
    pub(crate) fn stdout(&self) -> String {
        strip_ansi(&lock(&self.stdout))
    }

    /// Everything written to stderr so far, without color codes.
    pub(crate) fn stderr(&self) -> String {
        strip_ansi(&lock(&self.stderr))
    }

    /// The exit status if the process has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().expect("try_wait");
        if status.is_some() {
            self.join_readers();
        }
        status
    }

    /// Panics (with its stderr) unless the process is still running.
    pub(crate) fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited ({status}) {when}; stderr:\n{}",
                self.name,
                self.stderr()
            );
        }
    }

    /// Waits up to `limit` for the process to end.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...) with the `kill` command.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// `kill -9` and reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "{} (pid {})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            self.pid(),
            self.stdout(),
            self.stderr()
        )
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
    }
}

fn lock(text: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    text.lock().unwrap_or_else(|e| e.into_inner())
}

fn capture(pipe: impl Read + Send + 'static, sink: &Arc<Mutex<String>>) -> JoinHandle<()> {
    let sink = Arc::clone(sink);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => lock(&sink).push_str(&String::from_utf8_lossy(&line)),
            }
        }
    })
}

/// Removes ANSI escape sequences (in case a logger colors its output anyway).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A port that was free a moment ago (bind to port 0, read it, release it).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

pub(crate) fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until `addr` accepts connections; `Err` with the process's stderr if it exits first or
/// the time runs out.
pub(crate) async fn wait_listening(
    proc: &mut Proc,
    addr: SocketAddr,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = proc.exited() {
            return Err(format!(
                "exited ({status}) before listening on {addr}:\n{}",
                proc.describe()
            ));
        }
        if let Ok(Ok(_)) = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not listening on {addr} after {limit:?}:\n{}",
                proc.describe()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `ramp demo-app --listen 127.0.0.1:PORT --app-version VERSION EXTRA...` and waits until
/// it listens (picking another port if the chosen one was taken in the meantime).
pub(crate) async fn demo_app(version: &str, extra: &[&str]) -> (Proc, SocketAddr) {
    for attempt in 0.. {
        let addr = local(free_port());
        let listen = addr.to_string();
        let mut args = vec![
            "demo-app",
            "--listen",
            listen.as_str(),
            "--app-version",
            version,
        ];
        args.extend_from_slice(extra);
        let mut proc = Proc::spawn(format!("demo-app {version} at {addr}"), &args);
        match wait_listening(&mut proc, addr, STARTUP).await {
            Ok(()) => return (proc, addr),
            Err(e) if attempt < 2 && e.contains("cannot listen") => continue,
            Err(e) => panic!("demo-app did not start: {e}"),
        }
    }
    unreachable!()
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed when dropped.
pub(crate) fn temp_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ramp-cli-test-{label}-"))
        .tempdir()
        .expect("create temp dir")
}

/// Replaces `path` atomically (write a sibling, then rename), as editors do.
pub(crate) fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).expect("write temp config");
    std::fs::rename(&tmp, path).expect("rename config into place");
}

/// 1-based number of the first line of `text` containing `needle`.
pub(crate) fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"))
        + 1
}

// ---------------------------------------------------------------------------------------------
// The router under test
// ---------------------------------------------------------------------------------------------

/// `revisions:` YAML for `(name, weight, instances)` triples.
pub(crate) fn revisions(list: &[(&str, u32, &[SocketAddr])]) -> String {
    let mut out = String::from("revisions:\n");
    for (name, weight, instances) in list {
        let instances: Vec<String> = instances.iter().map(|a| format!("\"{a}\"")).collect();
        out.push_str(&format!(
            "  - name: {name}\n    weight: {weight}\n    instances: [{}]\n",
            instances.join(", ")
        ));
    }
    out
}

/// A running `ramp proxy --config FILE` with an admin endpoint and `x-ramp-revision` set.
#[derive(Debug)]
pub(crate) struct RampProxy {
    pub(crate) proc: Proc,
    pub(crate) addr: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) path: PathBuf,
    // Dropped after `proc`: the process is gone before its file is.
    _dir: tempfile::TempDir,
}

impl RampProxy {
    /// Starts a router whose file is the standard head (listen, admin, revision header, workers)
    /// followed by `body`; waits until both the router and its admin endpoint listen.
    pub(crate) async fn start(body: &str) -> RampProxy {
        let dir = temp_dir("proxy");
        let path = dir.path().join("router.yaml");
        for attempt in 0.. {
            let addr = local(free_port());
            let admin = local(free_port());
            std::fs::write(&path, head(addr, admin) + body).expect("write config");
            let config = path.to_str().expect("utf-8 temp path").to_string();
            let mut proc = Proc::spawn(
                format!("ramp proxy at {addr}"),
                &["proxy", "--config", &config],
            );
            let ready = match wait_listening(&mut proc, addr, STARTUP).await {
                Ok(()) => wait_listening(&mut proc, admin, STARTUP).await,
                Err(e) => Err(e),
            };
            match ready {
                Ok(()) => {
                    return RampProxy {
                        proc,
                        addr,
                        admin,
                        path,
                        _dir: dir,
                    };
                }
                Err(e) if attempt < 2 && e.contains("cannot listen") => continue,
                Err(e) => panic!("ramp proxy did not start: {e}"),
            }
        }
        unreachable!()
    }

    /// The whole file for `body` with this router's head.
    pub(crate) fn document(&self, body: &str) -> String {
        head(self.addr, self.admin) + body
    }

    /// Rewrites the configuration file (atomically) with this router's head and `body`.
    pub(crate) fn write_body(&self, body: &str) -> String {
        let text = self.document(body);
        write_atomic(&self.path, &text);
        text
    }

    /// Rewrites the configuration file with exactly `text`.
    pub(crate) fn write_text(&self, text: &str) {
        write_atomic(&self.path, text);
    }

    /// GET on the admin endpoint.
    pub(crate) async fn admin_get(&self, path: &str) -> Reply {
        let mut client = Client::connect(self.admin)
            .await
            .unwrap_or_else(|e| panic!("admin {}: {e}", self.admin));
        client
            .get(path, &[])
            .await
            .unwrap_or_else(|e| panic!("admin GET {path}: {e}"))
    }

    /// A counter's value from `/metrics` (a line `NAME VALUE`, labels included in `name`).
    pub(crate) async fn metric(&self, name: &str) -> Option<u64> {
        let metrics = self.admin_get("/metrics").await.body;
        metric_value(&metrics, name)
    }
}

fn head(addr: SocketAddr, admin: SocketAddr) -> String {
    format!("listen: {addr}\nadmin: {admin}\nrevisionHeader: {REVISION_HEADER}\nworkers: 2\n")
}

/// The value of the sample named exactly `name` (with labels) in Prometheus text.
pub(crate) fn metric_value(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (sample, value) = line.rsplit_once(' ')?;
        (sample == name).then(|| value.parse::<f64>().ok().map(|v| v as u64))?
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// One response, fully read.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// The router's revision header, if present.
    pub(crate) revision: Option<String>,
    /// The demo app's `x-app-version` header, if present.
    pub(crate) app_version: Option<String>,
    pub(crate) body: String,
}

impl Reply {
    /// The body without its trailing newline (the demo app answers `VERSION\n`).
    pub(crate) fn text(&self) -> &str {
        self.body.trim_end()
    }
}

/// How long one request may take before the test calls it failed.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// One keep-alive HTTP/1.1 client connection.
#[derive(Debug)]
pub(crate) struct Client {
    sender: SendRequest<Empty<Bytes>>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Client, String> {
        let stream =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| format!("connect to {addr} timed out"))?
                .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with {addr}: {e}"))?;
        tokio::spawn(connection);
        Ok(Client { sender })
    }

    /// Whether the connection can take another request (the server has not closed it).
    pub(crate) async fn usable(&mut self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(1), self.sender.ready()).await,
            Ok(Ok(()))
        )
    }

    /// GET `path` with `headers`.
    pub(crate) async fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let mut req = http::Request::get(path).header("host", "ramp-test");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("connection not ready: {e}"))?;
            let res = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = res.status().as_u16();
            let header = |name: &str| {
                res.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let revision = header(REVISION_HEADER);
            let app_version = header("x-app-version");
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the body failed: {e}"))?
                .to_bytes();
            Ok(Reply {
                status,
                revision,
                app_version,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        tokio::time::timeout(REQUEST_LIMIT, exchange)
            .await
            .map_err(|_| format!("no response within {REQUEST_LIMIT:?}"))?
    }
}

/// One request sent by [`load`]: when it completed and what came back.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) at: Instant,
    pub(crate) outcome: Result<Reply, String>,
}

/// Why a request failed, if it did: no answer, not 200, no revision header, or a body that is
/// not the version the `x-app-version` header names.
pub(crate) fn failure_of(outcome: &Result<Reply, String>) -> Option<String> {
    match outcome {
        Err(e) => Some(e.clone()),
        Ok(reply) if reply.status != 200 => {
            Some(format!("status {}: {:?}", reply.status, reply.body))
        }
        Ok(reply)
            if reply.revision.is_none() || reply.app_version.as_deref() != Some(reply.text()) =>
        {
            Some(format!("inconsistent reply {reply:?}"))
        }
        Ok(_) => None,
    }
}

/// What [`load`] saw.
#[derive(Debug, Default)]
pub(crate) struct LoadResult {
    pub(crate) records: Vec<Record>,
    /// Times a connection had to be opened again because the server had closed it between
    /// requests (no request was lost to it).
    pub(crate) reconnects: usize,
}

impl LoadResult {
    /// Every request that did not get a 200 whose revision header, body and `x-app-version`
    /// agree, described.
    pub(crate) fn failures(&self) -> Vec<String> {
        self.records
            .iter()
            .filter_map(|r| failure_of(&r.outcome))
            .collect()
    }

    /// Successful replies counted by revision header.
    pub(crate) fn by_revision(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for r in &self.records {
            if let Ok(reply) = &r.outcome
                && reply.status == 200
            {
                let name = reply.revision.clone().unwrap_or_default();
                *counts.entry(name).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// Sends GET `/` over `connections` keep-alive connections, `per_connection` requests each, or
/// until `stop` is set. A connection that fails a request is replaced.
pub(crate) async fn load(
    addr: SocketAddr,
    connections: usize,
    per_connection: usize,
    stop: Option<Arc<AtomicBool>>,
) -> LoadResult {
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut result = LoadResult::default();
            let mut client: Option<Client> = None;
            let stopped = || stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
            while result.records.len() < per_connection && !stopped() {
                let mut reusable = client.take();
                if let Some(c) = reusable.as_mut()
                    && !c.usable().await
                {
                    result.reconnects += 1;
                    reusable = None;
                }
                let mut conn = match reusable {
                    Some(c) => c,
                    None => match Client::connect(addr).await {
                        Ok(c) => c,
                        Err(e) => {
                            result.records.push(Record {
                                at: Instant::now(),
                                outcome: Err(e),
                            });
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let outcome = conn.get("/", &[]).await;
                if outcome.is_ok() {
                    client = Some(conn);
                }
                result.records.push(Record {
                    at: Instant::now(),
                    outcome,
                });
            }
            result
        }));
    }
    let mut all = LoadResult::default();
    for t in tasks {
        let part = t.await.expect("load task panicked");
        all.records.extend(part.records);
        all.reconnects += part.reconnects;
    }
    all.records.sort_by_key(|r| r.at);
    all
}

/// Sends requests on one connection until 30 consecutive replies come from `revision`;
/// returns when the first of them was sent, counted from the call. Panics after `limit` or on any failed request.
pub(crate) async fn wait_for_revision(
    client: &mut Client,
    revision: &str,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    let want = 30;
    let mut run = 0;
    let mut run_began = Duration::ZERO;
    let mut last = None;
    while run < want {
        assert!(
            started.elapsed() < limit,
            "requests did not all go to {revision} within {limit:?}; last reply {last:?}"
        );
        let sent = started.elapsed();
        let reply = client
            .get("/", &[])
            .await
            .unwrap_or_else(|e| panic!("request failed while waiting for {revision}: {e}"));
        assert_eq!(reply.status, 200, "while waiting for {revision}: {reply:?}");
        if reply.revision.as_deref() == Some(revision) {
            if run == 0 {
                run_began = sent;
            }
            run += 1;
        } else {
            run = 0;
        }
        last = Some(reply);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run_began
}
