//! A small client of the control plane's REST API over one keep-alive connection, so that a
//! timed call (the abort) does not pay for a TCP connect.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// An API answer and when the exchange started and ended.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
    /// Taken just before the request was handed to the connection.
    pub(crate) sent: Instant,
    /// Taken when the whole answer had been read.
    pub(crate) answered: Instant,
}

#[derive(Debug)]
pub(crate) struct Api {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Api {
    pub(crate) fn new(addr: SocketAddr) -> Api {
        Api { addr, sender: None }
    }

    /// A connection ready to take a request: the one kept, or a new one.
    async fn ready(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if let Some(mut sender) = self.sender.take()
            && sender.ready().await.is_ok()
        {
            return Ok(self.sender.insert(sender));
        }
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("cannot connect to the ramp API at {}", self.addr))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        sender.ready().await?;
        Ok(self.sender.insert(sender))
    }

    /// One exchange; any HTTP status is an `Ok` answer.
    pub(crate) async fn call(
        &mut self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
        limit: Duration,
    ) -> anyhow::Result<Answer> {
        let host = self.addr.to_string();
        let exchange = async {
            let sender = self.ready().await?;
            let payload = body.map(Value::to_string).unwrap_or_default();
            let request = http::Request::builder()
                .method(method.clone())
                .uri(path)
                .header("host", host)
                .header("content-type", "application/json")
                .header("x-ramp-actor", "bench-rollback")
                .body(Full::new(Bytes::from(payload)))?;
            let sent = Instant::now();
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await?.to_bytes();
            let answered = Instant::now();
            let body = if bytes.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
            };
            anyhow::Ok(Answer {
                status,
                body,
                sent,
                answered,
            })
        };
        let result = tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| anyhow!("{method} {path}: no answer within {limit:?}"))
            .and_then(|r| r.with_context(|| format!("{method} {path}")));
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    /// GET that must answer 2xx; one reconnect on a transport error.
    pub(crate) async fn get(&mut self, path: &str, limit: Duration) -> anyhow::Result<Value> {
        let answer = match self.call(http::Method::GET, path, None, limit).await {
            Ok(a) => a,
            Err(_) => self.call(http::Method::GET, path, None, limit).await?,
        };
        ok(answer, "GET", path).map(|a| a.body)
    }

    /// POST that must answer 2xx (never repeated: an abort twice is not an abort).
    pub(crate) async fn post(
        &mut self,
        path: &str,
        body: &Value,
        limit: Duration,
    ) -> anyhow::Result<Answer> {
        let answer = self
            .call(http::Method::POST, path, Some(body), limit)
            .await?;
        ok(answer, "POST", path)
    }
}

fn ok(answer: Answer, method: &str, path: &str) -> anyhow::Result<Answer> {
    if (200..300).contains(&answer.status) {
        return Ok(answer);
    }
    let message = answer.body["error"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| answer.body.to_string());
    bail!(
        "{method} {path} answered {}: {message}{}",
        answer.status,
        match answer.body.get("problems") {
            Some(p) => format!(" {p}"),
            None => String::new(),
        }
    )
}
