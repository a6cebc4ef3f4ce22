//! Keep-alive connections to instances, one pool per worker thread.
//!
//! A worker only ever uses connections registered with its own reactor, so the pool needs no
//! lock and a connection is always polled by the thread that owns it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

/// Idle connections kept per instance and worker.
const MAX_IDLE_PER_INSTANCE: usize = 256;
/// Initial read buffer of a connection to an instance.
const UPSTREAM_BUF: usize = 16 * 1024;

/// A connection to an instance with its read buffer.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    pub(crate) stream: TcpStream,
    pub(crate) buf: BytesMut,
}

impl Upstream {
    pub(crate) fn new(addr: SocketAddr, stream: TcpStream) -> Self {
        Upstream {
            addr,
            stream,
            buf: BytesMut::with_capacity(UPSTREAM_BUF),
        }
    }

    /// True when the peer has not closed the connection nor sent anything unasked.
    ///
    /// Asks the reactor for readiness it already recorded, so a healthy idle connection costs
    /// no system call; only a connection with pending events is probed with a read.
    fn looks_alive(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }
}

#[derive(Debug)]
struct Idle {
    conn: Upstream,
    since: Instant,
}

/// Idle connections by instance address.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: HashMap<SocketAddr, Vec<Idle>>,
}

impl Pool {
    /// The most recently used live connection to `addr`, dropping stale ones on the way.
    pub(crate) fn take(
        &mut self,
        addr: SocketAddr,
        now: Instant,
        max_idle: Duration,
    ) -> Option<Upstream> {
        let list = self.idle.get_mut(&addr)?;
        while let Some(idle) = list.pop() {
            if now.saturating_duration_since(idle.since) < max_idle && idle.conn.looks_alive() {
                return Some(idle.conn);
            }
        }
        None
    }

    /// Keeps a connection whose last exchange ended cleanly, idle since `now`.
    pub(crate) fn put(&mut self, mut conn: Upstream, now: Instant) {
        conn.buf.clear();
        let list = self.idle.entry(conn.addr).or_default();
        if list.len() < MAX_IDLE_PER_INSTANCE {
            list.push(Idle { conn, since: now });
        }
    }

    /// Closes connections idle too long or to instances that may no longer be used.
    pub(crate) fn sweep(
        &mut self,
        now: Instant,
        max_idle: Duration,
        keep: impl Fn(SocketAddr) -> bool,
    ) {
        self.idle.retain(|&addr, list| {
            if !keep(addr) {
                return false;
            }
            list.retain(|i| {
                now.saturating_duration_since(i.since) < max_idle && i.conn.looks_alive()
            });
            !list.is_empty()
        });
    }
}
