//! The CLI's client of the control plane's REST API.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Where the control plane's API is, and who is acting.
#[derive(Debug, Clone)]
pub(crate) struct ApiClient {
    addr: SocketAddr,
    actor: String,
}

/// How long one API call may take (an apply snapshots the executable; a drain may wait).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

impl ApiClient {
    /// `url` is `http://host:port` (or `host:port`).
    pub(crate) fn new(url: &str) -> anyhow::Result<ApiClient> {
        let hostport = url
            .trim_end_matches('/')
            .strip_prefix("http://")
            .unwrap_or(url);
        let addr = crate::parse_listen(hostport)
            .map_err(|e| anyhow!("--server {url:?}: {e} (https is not supported)"))?;
        let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
        Ok(ApiClient { addr, actor })
    }

    /// A request; returns the body as text, or an error carrying the API's message.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<String> {
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(self.addr).await.with_context(|| {
                format!(
                    "cannot reach the ramp server at http://{} (is `ramp server` running? set --server or RAMP_SERVER)",
                    self.addr
                )
            })?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let payload = body
                .filter(|b| !b.is_null())
                .map(|b| b.to_string())
                .unwrap_or_default();
            let request = http::Request::builder()
                .method(method)
                .uri(path)
                .header("host", self.addr.to_string())
                .header("content-type", "application/json")
                .header("x-ramp-actor", &self.actor)
                .body(Full::new(Bytes::from(payload)))?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let text = String::from_utf8_lossy(&response.into_body().collect().await?.to_bytes())
                .to_string();
            anyhow::Ok((status, text))
        };
        let (status, text) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                anyhow!(
                    "the ramp server did not answer within {}s",
                    CALL_TIMEOUT.as_secs()
                )
            })??;
        if status.is_success() {
            return Ok(text);
        }
        bail!("{}", explain_error(status.as_u16(), &text))
    }

    pub(crate) async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let text = self.call("GET", path, None).await?;
        serde_json::from_str(&text)
            .with_context(|| format!("the server's answer to GET {path} is not JSON"))
    }

    pub(crate) async fn post_json(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let text = self.call("POST", path, Some(body)).await?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("the server's answer to POST {path} is not JSON"))
    }
}

/// The API's error body (`{error, problems}`) as lines a person reads.
fn explain_error(status: u16, text: &str) -> String {
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return format!("server answered {status}: {}", text.trim());
    };
    let mut out = body["error"]
        .as_str()
        .unwrap_or("request failed")
        .to_string();
    if let Some(problems) = body["problems"].as_array() {
        for p in problems {
            let path = p["path"].as_str().unwrap_or("");
            let (line, column) = (
                p["line"].as_u64().unwrap_or(0),
                p["column"].as_u64().unwrap_or(0),
            );
            let message = p["message"].as_str().unwrap_or("");
            if problems.len() == 1 && out.contains(message) {
                continue;
            }
            // Flag problems are located by JSON path only; spec problems also by line.
            let location = if line > 0 {
                format!(" (line {line}, column {column})")
            } else {
                String::new()
            };
            out.push_str(&format!("\n  - {path}{location}: {message}"));
        }
    }
    let kind = match status {
        400 => "invalid",
        404 => "not found",
        409 => "conflict",
        _ => "error",
    };
    format!("{kind}: {out}")
}
