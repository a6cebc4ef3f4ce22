//! A small keep-alive HTTP load generator (for the demo): counts responses by the revision
//! that served them.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Header the demo's router adds to name the serving revision.
pub(crate) const REVISION_HEADER: &str = "x-ramp-revision";

/// What a batch of requests saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub(crate) by_revision: BTreeMap<String, u64>,
    pub(crate) failed: u64,
}

impl Tally {
    pub(crate) fn total(&self) -> u64 {
        self.by_revision.values().sum::<u64>() + self.failed
    }

    pub(crate) fn share(&self, revision: &str) -> f64 {
        let n = self.by_revision.get(revision).copied().unwrap_or(0);
        100.0 * n as f64 / self.total().max(1) as f64
    }

    fn merge(&mut self, other: Tally) {
        for (k, v) in other.by_revision {
            *self.by_revision.entry(k).or_default() += v;
        }
        self.failed += other.failed;
    }
}

/// One keep-alive connection.
pub(crate) struct Conn {
    sender: SendRequest<Empty<Bytes>>,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Conn { sender })
    }

    /// GET `/` with `headers`; returns the status and the revision that served it.
    pub(crate) async fn get(&mut self, headers: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
        let mut req = http::Request::get("/").header("host", "demo");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.sender.ready().await?;
        let res = self.sender.send_request(req.body(Empty::new())?).await?;
        let status = res.status().as_u16();
        let revision = res
            .headers()
            .get(REVISION_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_string();
        res.into_body().collect().await?;
        Ok((status, revision))
    }
}

/// Sends `total` requests over `connections` connections; `headers(i)` gives request i's headers.
pub(crate) async fn run(
    addr: SocketAddr,
    total: usize,
    connections: usize,
    headers: impl Fn(usize) -> Vec<(String, String)> + Clone + Send + 'static,
) -> anyhow::Result<Tally> {
    let mut tasks = Vec::new();
    for c in 0..connections {
        let headers = headers.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut conn = Conn::open(addr).await?;
            for i in (c..total).step_by(connections) {
                let pairs = headers(i);
                let borrowed: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                match conn.get(&borrowed).await {
                    Ok((status, revision)) if status < 500 => {
                        *tally.by_revision.entry(revision).or_default() += 1
                    }
                    Ok(_) => tally.failed += 1,
                    Err(_) => {
                        tally.failed += 1;
                        conn = Conn::open(addr).await?;
                    }
                }
            }
            anyhow::Ok(tally)
        }));
    }
    let mut tally = Tally::default();
    for t in tasks {
        tally.merge(t.await??);
    }
    Ok(tally)
}
