//! One request's trip to an instance: choosing it, getting a connection, reading the response
//! head, and deciding whether a failed attempt may be tried again.
//!
//! Retry policy (the router's promise that losing an instance costs clients nothing):
//! - a refused or timed-out connect ejects the instance and is retried once on another one;
//! - a pooled keep-alive connection is checked before use; one the instance has closed is
//!   never used;
//! - a request that could not be written is retried (once on a fresh connection when the
//!   failed one came from the pool — the instance closed it just as we reused it — and once
//!   on another instance);
//! - a request that was written but got no response byte is replayed the same way only if its
//!   method is idempotent: the instance may have acted on it, and a POST must not run twice;
//! - nothing is retried once a response byte arrived or a streamed body left the router.

use std::cell::Cell;
use std::io;
use std::time::Duration;

use bytes::Buf;
use ramp_route::least_loaded;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http1::body::CopyError;
use crate::http1::headers::header_slots;
use crate::http1::response::{ParsedResponse, ResponseError, ResponseHead, parse_response};
use crate::instances::InFlight;
use crate::pool::Upstream;
use crate::snapshot::{ProxySettings, RevisionRuntime};
use crate::worker::Worker;

/// Largest response head accepted from an instance.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// A connection to an instance, held for one request.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) conn: Upstream,
    pub(crate) in_flight: InFlight,
    /// Came from the pool rather than a fresh connect.
    pub(crate) reused: bool,
    index: usize,
}

impl Lease {
    /// Done with the connection: it goes back to the worker's pool if the response left it
    /// `reusable`, nothing unread is left in its buffer and its instance is not draining;
    /// otherwise it is closed.
    pub(crate) fn release(self, worker: &Worker, reusable: bool) {
        if reusable && self.conn.buf.is_empty() && !self.in_flight.instance().is_draining() {
            worker.pool.borrow_mut().put(self.conn, worker.recent());
        }
    }
}

/// Why no response could be had; each maps to the status the client receives.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    #[error("no instance of the revision can take requests")]
    NoInstance,
    #[error("could not connect to an instance: {0}")]
    Connect(io::Error),
    #[error("instance did not answer in time")]
    Timeout,
    #[error("instance failed: {0}")]
    Upstream(String),
    /// The client stopped sending its request body (closed, stalled or sent bad framing).
    #[error("client request body: {0}")]
    ClientBody(#[from] CopyError),
}

impl ForwardError {
    /// The status the client gets; `None` when the client is gone and nothing can be sent.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            ForwardError::NoInstance => Some(503),
            ForwardError::Connect(_) | ForwardError::Upstream(_) => Some(502),
            ForwardError::Timeout => Some(504),
            ForwardError::ClientBody(CopyError::SourceTimeout) => Some(408),
            ForwardError::ClientBody(CopyError::Framing(_)) => Some(400),
            ForwardError::ClientBody(_) => None,
        }
    }

    /// An instance (not the client, not the table) is to blame.
    pub(crate) fn is_upstream_failure(&self) -> bool {
        matches!(
            self,
            ForwardError::Connect(_) | ForwardError::Upstream(_) | ForwardError::Timeout
        )
    }
}

/// How an attempt failed before any response byte arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Writing the request failed.
    WriteFailed,
    /// The request was written; the connection closed or reset without a response.
    NoResponse,
}

/// The state of one request's attempts.
#[derive(Debug)]
pub(crate) struct Exchange<'a> {
    worker: &'a Worker,
    revision: &'a RevisionRuntime,
    settings: &'a ProxySettings,
    idempotent: bool,
    tried: Vec<usize>,
    retries_left: u8,
    stale_left: u8,
    fresh_only: bool,
}

impl<'a> Exchange<'a> {
    pub(crate) fn new(
        worker: &'a Worker,
        revision: &'a RevisionRuntime,
        settings: &'a ProxySettings,
        idempotent: bool,
    ) -> Self {
        Exchange {
            worker,
            revision,
            settings,
            idempotent,
            tried: Vec::new(),
            retries_left: 1,
            stale_left: 1,
            fresh_only: false,
        }
    }

    /// A connection to the least-loaded usable instance: pooled if possible, else a new one.
    pub(crate) async fn lease(&mut self) -> Result<Lease, ForwardError> {
        let mut last_error = None;
        loop {
            let Some(index) = self.pick() else {
                // Nowhere left to try: say why the last attempt failed, if there was one.
                return Err(last_error.map_or(ForwardError::NoInstance, ForwardError::Connect));
            };
            let instance = &self.revision.instances[index];
            let in_flight = instance.start();
            if !self.fresh_only {
                let pooled = self.worker.pool.borrow_mut().take(
                    instance.addr,
                    self.worker.recent(),
                    self.settings.timeouts.upstream_idle,
                );
                if let Some(conn) = pooled {
                    return Ok(Lease {
                        conn,
                        in_flight,
                        reused: true,
                        index,
                    });
                }
            }
            let connect = TcpStream::connect(instance.addr);
            let error = match tokio::time::timeout(self.settings.timeouts.connect, connect).await {
                Ok(Ok(stream)) => {
                    // Without it, small writes wait for the peer's delayed ACK.
                    let _ = stream.set_nodelay(true);
                    instance.connect_succeeded();
                    return Ok(Lease {
                        conn: Upstream::new(instance.addr, stream),
                        in_flight,
                        reused: false,
                        index,
                    });
                }
                Ok(Err(e)) => e,
                Err(_) => io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
            };
            instance.connect_failed(self.worker.shared.instances.now_ms());
            self.tried.push(index);
            if self.retries_left == 0 {
                return Err(ForwardError::Connect(error));
            }
            self.retries_left -= 1;
            last_error = Some(error);
            self.worker.shared.counters.count_retry();
        }
    }

    /// Writes `bytes` (a head, or a whole request) on a leased connection, retrying on another
    /// connection when the write fails.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<Lease, ForwardError> {
        loop {
            let mut lease = self.lease().await?;
            match lease.conn.stream.write_all(bytes).await {
                Ok(()) => return Ok(lease),
                Err(_) if self.may_retry(lease, Attempt::WriteFailed) => {}
                Err(e) => return Err(ForwardError::Upstream(format!("writing the request: {e}"))),
            }
        }
    }

    /// Sends a request whose bytes are all in hand and reads its response head with `read`,
    /// replaying the request as the retry policy allows when no response byte arrives.
    pub(crate) async fn send_replayable<T>(
        &mut self,
        request: &[u8],
        mut read: impl AsyncFnMut(&mut Lease) -> Result<T, HeadError>,
    ) -> Result<(Lease, T), ForwardError> {
        loop {
            let mut lease = self.send(request).await?;
            match read(&mut lease).await {
                Ok(value) => return Ok((lease, value)),
                Err(HeadError::NoResponse(_)) if self.may_retry(lease, Attempt::NoResponse) => {}
                Err(e) => return Err(e.into_forward_error()),
            }
        }
    }

    /// Decides whether a failed attempt may be replayed, and prepares the next one if so.
    pub(crate) fn may_retry(&mut self, lease: Lease, attempt: Attempt) -> bool {
        let replay_safe = attempt == Attempt::WriteFailed || self.idempotent;
        if !replay_safe {
            return false;
        }
        if lease.reused && self.stale_left > 0 {
            // Most likely the instance closed an idle connection as we picked it up.
            self.stale_left -= 1;
            self.fresh_only = true;
        } else if self.retries_left > 0 {
            self.retries_left -= 1;
            self.tried.push(lease.index);
            self.fresh_only = true;
        } else {
            return false;
        }
        self.worker.shared.counters.count_retry();
        true
    }

    /// The least-loaded instance not tried yet; when every untried instance is ejected, the
    /// least-loaded of those (an ejected instance may have recovered; 503 certainly fails).
    fn pick(&self) -> Option<usize> {
        let instances = &self.revision.instances;
        let now = Cell::new(None);
        let now_ms = || {
            *now.get()
                .get_or_insert_with(|| self.worker.shared.instances.now_ms())
        };
        let start = self.worker.random() as usize;
        let untried = |i: usize| !self.tried.contains(&i);
        least_loaded(instances.len(), start, |i| {
            let usable = untried(i).then(|| instances[i].load_if_usable(now_ms));
            usable.flatten()
        })
        .or_else(|| {
            least_loaded(instances.len(), start, |i| {
                (untried(i) && !instances[i].is_draining()).then(|| instances[i].in_flight())
            })
        })
    }
}

/// Why reading a response head failed.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// Nothing arrived before the connection ended: the attempt may be retried.
    NoResponse(String),
    Timeout,
    /// Part of a response arrived, or it was not HTTP.
    Broken(String),
}

impl HeadError {
    pub(crate) fn into_forward_error(self) -> ForwardError {
        match self {
            HeadError::Timeout => ForwardError::Timeout,
            HeadError::NoResponse(why) | HeadError::Broken(why) => ForwardError::Upstream(why),
        }
    }
}

/// Reads one response head from `conn`. `on_head` sees it parsed in place (to write the
/// client's head without copying headers); the head's bytes are then dropped from the buffer.
pub(crate) async fn read_head<T>(
    conn: &mut Upstream,
    head_request: bool,
    timeout: Duration,
    on_head: impl FnOnce(&ParsedResponse<'_, '_>) -> T,
) -> Result<(ResponseHead, T), HeadError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if !conn.buf.is_empty() {
            let mut headers = header_slots();
            match parse_response(&conn.buf, &mut headers, head_request) {
                Ok(Some(parsed)) => {
                    let value = on_head(&parsed);
                    let head = parsed.head;
                    conn.buf.advance(head.head_len);
                    return Ok((head, value));
                }
                Ok(None) if conn.buf.len() >= MAX_RESPONSE_HEAD => {
                    return Err(HeadError::Broken("response head too large".into()));
                }
                Ok(None) => {}
                Err(ResponseError(why)) => return Err(HeadError::Broken(why.into())),
            }
        }
        let started_empty = conn.buf.is_empty();
        conn.buf.reserve(4096);
        let failure =
            match tokio::time::timeout_at(deadline, conn.stream.read_buf(&mut conn.buf)).await {
                Err(_) => return Err(HeadError::Timeout),
                Ok(Ok(0)) => "instance closed the connection".to_string(),
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => e.to_string(),
            };
        return Err(if started_empty {
            HeadError::NoResponse(failure)
        } else {
            HeadError::Broken(failure)
        });
    }
}
