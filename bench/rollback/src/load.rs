//! Closed-loop load: a few keep-alive connections, each sending `GET /` as soon as the previous
//! answer is in. Every request is counted; requests are kept one by one only while a
//! measurement window is open.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Response header naming the router revision that served a request.
const REVISION_HEADER: &str = "x-ramp-revision";

/// Which revision answered, as far as this benchmark cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    Stable,
    Canary,
    /// Another or no `x-ramp-revision`.
    Other,
    /// No answer, or a 5xx.
    Failed(Failure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection could not be opened (the request was never sent).
    Connect,
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection broke while the request was out.
    Io,
    /// An answer with status >= 500.
    Status(u16),
}

/// One request of a measurement window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Just before the request was handed to its connection.
    pub(crate) sent: Instant,
    /// When its answer (head and body) was in, or it failed.
    pub(crate) done: Instant,
    pub(crate) served: Served,
}

/// Counts over the whole run.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub(crate) total: u64,
    pub(crate) stable: u64,
    pub(crate) canary: u64,
    pub(crate) other: u64,
    pub(crate) failed: u64,
    pub(crate) failed_connect: u64,
    pub(crate) failed_timeout: u64,
    pub(crate) failed_io: u64,
    pub(crate) failed_5xx: u64,
    /// Connections opened after the first (the router or an upstream closed one).
    pub(crate) reconnects: u64,
}

#[derive(Debug, Default)]
struct Counters {
    total: AtomicU64,
    stable: AtomicU64,
    canary: AtomicU64,
    other: AtomicU64,
    failed_connect: AtomicU64,
    failed_timeout: AtomicU64,
    failed_io: AtomicU64,
    failed_5xx: AtomicU64,
    reconnects: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    recording: AtomicBool,
    window: Mutex<Vec<Sample>>,
    counters: Counters,
    /// The origin of the `last_*` instants below (nanoseconds after it, 0 = never).
    epoch: Instant,
    last_stable_sent: AtomicU64,
    last_canary_sent: AtomicU64,
    stable_route: String,
    canary_route: String,
}

impl Shared {
    fn nanos(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.epoch).as_nanos() as u64).max(1)
    }

    fn at(&self, nanos: u64) -> Option<Instant> {
        (nanos > 0).then(|| self.epoch + Duration::from_nanos(nanos))
    }

    fn record(&self, sample: Sample) {
        let c = &self.counters;
        c.total.fetch_add(1, Relaxed);
        match sample.served {
            Served::Stable => {
                c.stable.fetch_add(1, Relaxed);
                self.last_stable_sent
                    .fetch_max(self.nanos(sample.sent), Relaxed);
            }
            Served::Canary => {
                c.canary.fetch_add(1, Relaxed);
                self.last_canary_sent
                    .fetch_max(self.nanos(sample.sent), Relaxed);
            }
            Served::Other => {
                c.other.fetch_add(1, Relaxed);
            }
            Served::Failed(Failure::Connect) => {
                c.failed_connect.fetch_add(1, Relaxed);
            }
            Served::Failed(Failure::Timeout) => {
                c.failed_timeout.fetch_add(1, Relaxed);
            }
            Served::Failed(Failure::Io) => {
                c.failed_io.fetch_add(1, Relaxed);
            }
            Served::Failed(Failure::Status(_)) => {
                c.failed_5xx.fetch_add(1, Relaxed);
            }
        }
        if self.recording.load(Relaxed) {
            self.window
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sample);
        }
    }

    fn classify(&self, revision: Option<&[u8]>) -> Served {
        match revision {
            Some(r) if r == self.stable_route.as_bytes() => Served::Stable,
            Some(r) if r == self.canary_route.as_bytes() => Served::Canary,
            _ => Served::Other,
        }
    }
}

/// Load running in the background until [`Load::stop`] (or drop).
#[derive(Debug)]
pub(crate) struct Load {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `connections` closed loops against `addr`; answers from `stable_route` and
    /// `canary_route` (the values of `x-ramp-revision`) are told apart.
    pub(crate) fn start(
        addr: SocketAddr,
        connections: usize,
        timeout: Duration,
        stable_route: &str,
        canary_route: &str,
    ) -> Load {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            recording: AtomicBool::new(false),
            window: Mutex::new(Vec::new()),
            counters: Counters::default(),
            epoch: Instant::now(),
            last_stable_sent: AtomicU64::new(0),
            last_canary_sent: AtomicU64::new(0),
            stable_route: stable_route.to_string(),
            canary_route: canary_route.to_string(),
        });
        let tasks = (0..connections)
            .map(|_| tokio::spawn(connection_loop(Arc::clone(&shared), addr, timeout)))
            .collect();
        Load { shared, tasks }
    }

    /// Opens a measurement window: from now, every finished request is kept.
    pub(crate) fn open_window(&self) {
        self.shared
            .window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.shared.recording.store(true, Relaxed);
    }

    /// Closes the window and hands over its requests.
    pub(crate) fn close_window(&self) -> Vec<Sample> {
        self.shared.recording.store(false, Relaxed);
        std::mem::take(&mut *self.shared.window.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Send instant of the latest request the stable revision answered.
    pub(crate) fn last_stable_sent(&self) -> Option<Instant> {
        self.shared.at(self.shared.last_stable_sent.load(Relaxed))
    }

    /// Send instant of the latest request the canary answered.
    pub(crate) fn last_canary_sent(&self) -> Option<Instant> {
        self.shared.at(self.shared.last_canary_sent.load(Relaxed))
    }

    pub(crate) fn totals(&self) -> Totals {
        let c = &self.shared.counters;
        let failed_connect = c.failed_connect.load(Relaxed);
        let failed_timeout = c.failed_timeout.load(Relaxed);
        let failed_io = c.failed_io.load(Relaxed);
        let failed_5xx = c.failed_5xx.load(Relaxed);
        Totals {
            total: c.total.load(Relaxed),
            stable: c.stable.load(Relaxed),
            canary: c.canary.load(Relaxed),
            other: c.other.load(Relaxed),
            failed: failed_connect + failed_timeout + failed_io + failed_5xx,
            failed_connect,
            failed_timeout,
            failed_io,
            failed_5xx,
            reconnects: c.reconnects.load(Relaxed),
        }
    }

    /// Stops every loop (each finishes the request it has out, bounded by its timeout).
    pub(crate) async fn stop(mut self, limit: Duration) -> Totals {
        self.shared.stop.store(true, Relaxed);
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(limit, futures_join(tasks))
            .await
            .is_err()
        {
            for a in aborts {
                a.abort();
            }
        }
        self.totals()
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn connect(addr: SocketAddr, timeout: Duration) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let open = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        anyhow::Ok(sender)
    };
    tokio::time::timeout(timeout, open)
        .await
        .map_err(|_| anyhow::anyhow!("connect timed out"))?
}

async fn connection_loop(shared: Arc<Shared>, addr: SocketAddr, timeout: Duration) {
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    let mut opened = 0u64;
    while !shared.stop.load(Relaxed) {
        // A connection the other side closed between requests is replaced without counting
        // a failure: no request was out on it.
        if let Some(s) = sender.as_mut()
            && s.ready().await.is_err()
        {
            sender = None;
        }
        let s = match sender.as_mut() {
            Some(s) => s,
            None => {
                let attempt = Instant::now();
                match connect(addr, timeout).await {
                    Ok(s) => {
                        opened += 1;
                        if opened > 1 {
                            shared.counters.reconnects.fetch_add(1, Relaxed);
                        }
                        sender.insert(s)
                    }
                    Err(_) => {
                        shared.record(Sample {
                            sent: attempt,
                            done: Instant::now(),
                            served: Served::Failed(Failure::Connect),
                        });
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
            }
        };
        let request = http::Request::get("/")
            .header("host", "bench")
            .body(Empty::new())
            .expect("a constant request is valid");
        let sent = Instant::now();
        let exchange = async {
            let response = s.send_request(request).await.map_err(|_| Failure::Io)?;
            let status = response.status().as_u16();
            let revision = response
                .headers()
                .get(REVISION_HEADER)
                .map(|v| v.as_bytes().to_vec());
            response
                .into_body()
                .collect()
                .await
                .map_err(|_| Failure::Io)?;
            if status >= 500 {
                return Err(Failure::Status(status));
            }
            Ok(revision)
        };
        let served = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(revision)) => shared.classify(revision.as_deref()),
            Ok(Err(f)) => Served::Failed(f),
            Err(_) => Served::Failed(Failure::Timeout),
        };
        let done = Instant::now();
        if matches!(
            served,
            Served::Failed(Failure::Io | Failure::Timeout | Failure::Connect)
        ) {
            sender = None;
        }
        shared.record(Sample { sent, done, served });
    }
}
