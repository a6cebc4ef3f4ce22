//! A flag server on free local ports, fed from files in a temporary directory, and a minimal
//! HTTP/1.1 client speaking to it over real sockets.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ramp_flagd::ofrep::OfrepOptions;
use ramp_flagd::{EvaluationMetrics, FileWatcher, FlagSource, WATCH_INTERVAL, management, ofrep};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A fresh directory under the system temp dir, removed when dropped.
pub(crate) fn temp_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ramp-flagd-test-{label}-"))
        .tempdir()
        .expect("create temp dir")
}

/// Replaces `path` the way editors do: write a sibling, rename it over.
pub(crate) fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename into place");
}

/// Stops the servers of a test: every [`shutdown`](Self::shutdown) future completes once
/// [`stop`](Self::stop) is called.
#[derive(Debug)]
pub(crate) struct StopSwitch(watch::Sender<bool>);

impl StopSwitch {
    pub(crate) fn new() -> StopSwitch {
        StopSwitch(watch::channel(false).0)
    }

    /// A shutdown future for one server.
    pub(crate) fn shutdown(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopped = self.0.subscribe();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    }

    /// Completes every shutdown future; fails when none is still waiting.
    pub(crate) fn stop(&self) -> Result<(), watch::error::SendError<bool>> {
        self.0.send(true)
    }
}

/// A running OFREP + management server.
#[derive(Debug)]
pub(crate) struct FlagServer {
    pub(crate) ofrep: SocketAddr,
    pub(crate) management: SocketAddr,
    pub(crate) source: Arc<FlagSource>,
    pub(crate) files: Vec<PathBuf>,
    stop: StopSwitch,
    _dir: tempfile::TempDir,
}

impl FlagServer {
    /// Writes `files` (name, content) and serves them, later files winning.
    pub(crate) async fn start(files: &[(&str, &str)], options: OfrepOptions) -> FlagServer {
        let dir = temp_dir("server");
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, text)| {
                let path = dir.path().join(name);
                std::fs::write(&path, text).expect("write flag file");
                path
            })
            .collect();
        let source = Arc::new(FlagSource::new());
        let watcher = FileWatcher::load(Arc::clone(&source), &paths).expect("valid flag files");
        let metrics = Arc::new(EvaluationMetrics::new());
        let stop = StopSwitch::new();
        let ofrep_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind ofrep");
        let management_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mgmt");
        let ofrep = ofrep_listener.local_addr().expect("ofrep addr");
        let management = management_listener.local_addr().expect("mgmt addr");
        tokio::spawn(ofrep::serve(
            ofrep_listener,
            Arc::clone(&source),
            Arc::clone(&metrics),
            options,
            stop.shutdown(),
        ));
        tokio::spawn(management::serve(
            management_listener,
            Arc::clone(&source),
            metrics,
            stop.shutdown(),
        ));
        tokio::spawn(watcher.run(WATCH_INTERVAL, stop.shutdown()));
        FlagServer {
            ofrep,
            management,
            source,
            files: paths,
            stop,
            _dir: dir,
        }
    }

    /// `POST /ofrep/v1/evaluate/flags/{key}` with `body`.
    pub(crate) async fn evaluate(&self, key: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let path = format!("/ofrep/v1/evaluate/flags/{key}");
        request(self.ofrep, "POST", &path, headers, body.as_bytes()).await
    }

    /// `POST /ofrep/v1/evaluate/flags` with `body`.
    pub(crate) async fn evaluate_all(&self, body: &str, headers: &[(&str, &str)]) -> Reply {
        request(
            self.ofrep,
            "POST",
            "/ofrep/v1/evaluate/flags",
            headers,
            body.as_bytes(),
        )
        .await
    }

    /// `GET` on the management listener.
    pub(crate) async fn management_get(&self, path: &str) -> Reply {
        request(self.management, "GET", path, &[], b"").await
    }

    /// Polls `check` on single evaluations of `key` until it holds, or panics after `limit`.
    pub(crate) async fn wait_for_value(&self, key: &str, expected: &Value, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let reply = self.evaluate(key, "{}", &[]).await;
            if reply.json().get("value") == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{key} still answers {} after {limit:?}",
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for FlagServer {
    fn drop(&mut self) {
        let _ = self.stop.stop();
    }
}

/// One response, fully read.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} (status {})", self.body, self.status))
    }
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`, so the response ends at
/// end of stream).
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            head.push_str("Content-Type: application/json\r\n");
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        // A server refusing a large body may answer and close before reading all of it.
        let _ = stream.write_all(&bytes).await;
        let mut raw = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
                Err(_) if !raw.is_empty() => break,
                Err(e) => panic!("reading the response from {addr}: {e}"),
            }
        }
        parse_reply(&raw)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("response within 10 s")
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}
