//! The agent's client: one HTTP/1.1 connection over the Unix socket per call.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use super::api::{
    Deleted, DrainRequest, ErrorBody, Health, PutResult, PutRouter, RouterList, RouterMetrics,
    RouterState, ShuttingDown, UndrainRequest,
};
use crate::instances::DrainOutcome;

/// How long any call may take, except a drain (which may take its deadline plus this margin).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Added to a drain's deadline to get the call's timeout.
const DRAIN_MARGIN: Duration = Duration::from_secs(5);

/// Why a call to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No agent listens on the socket: it does not exist, or nothing accepts on it.
    #[error("no router agent on {}: {source}", socket.display())]
    Unreachable {
        /// The socket tried.
        socket: PathBuf,
        /// Why connecting failed.
        #[source]
        source: io::Error,
    },
    /// The agent answered with an error.
    #[error("router agent refused the request ({status}): {message}")]
    Api {
        /// The HTTP status (400, 404, 409, 500, ...).
        status: u16,
        /// The agent's `error` message.
        message: String,
    },
    /// The agent did not answer in time.
    #[error("router agent on {} did not answer {what} within {after:?}", socket.display())]
    Timeout {
        /// The socket.
        socket: PathBuf,
        /// The call, e.g. `PUT /v1/routers/web`.
        what: String,
        /// The time limit.
        after: Duration,
    },
    /// The connection failed after it was made (the agent died mid-call, for instance).
    #[error("talking to the router agent on {}: {message}", socket.display())]
    Transport {
        /// The socket.
        socket: PathBuf,
        /// What failed.
        message: String,
    },
    /// The agent answered something that is not the expected JSON.
    #[error("router agent's answer to {what} is not understood: {message}")]
    Decode {
        /// The call.
        what: String,
        /// What was wrong with the answer.
        message: String,
    },
}

impl AgentError {
    /// No agent is there to talk to.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, AgentError::Unreachable { .. })
    }
}

/// A client of the router agent on `socket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentClient {
    socket: PathBuf,
}

impl AgentClient {
    /// A client of the agent listening on `socket` (nothing is connected yet).
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        AgentClient {
            socket: socket.into(),
        }
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<Health, AgentError> {
        self.health_within(CALL_TIMEOUT).await
    }

    pub(super) async fn health_within(&self, timeout: Duration) -> Result<Health, AgentError> {
        self.json(Method::GET, "/v1/health", None, timeout).await
    }

    /// `GET /v1/routers`.
    pub async fn routers(&self) -> Result<RouterList, AgentError> {
        self.json(Method::GET, "/v1/routers", None, CALL_TIMEOUT)
            .await
    }

    /// `GET /v1/routers/{name}`: the table and settings a router runs.
    pub async fn router(&self, name: &str) -> Result<RouterState, AgentError> {
        let path = router_path(name, "")?;
        self.json(Method::GET, &path, None, CALL_TIMEOUT).await
    }

    /// `PUT /v1/routers/{name}`: creates the router or swaps its table and settings.
    pub async fn put_router(&self, name: &str, put: &PutRouter) -> Result<PutResult, AgentError> {
        let path = router_path(name, "")?;
        let body = encode(put)?;
        self.json(Method::PUT, &path, Some(body), CALL_TIMEOUT)
            .await
    }

    /// `DELETE /v1/routers/{name}`: shuts the router down, letting in-flight requests finish
    /// for up to `grace` (the router's own `shutdownGrace` when `None`), and forgets it.
    pub async fn delete_router(
        &self,
        name: &str,
        grace: Option<Duration>,
    ) -> Result<Deleted, AgentError> {
        let mut path = router_path(name, "")?;
        let mut timeout = CALL_TIMEOUT;
        if let Some(grace) = grace {
            path.push_str(&format!("?graceMs={}", grace.as_millis()));
            timeout = timeout.max(grace + DRAIN_MARGIN);
        }
        self.json(Method::DELETE, &path, None, timeout).await
    }

    /// `POST /v1/routers/{name}/drain`: takes `addr` out of rotation and waits for its
    /// in-flight requests, up to `deadline`.
    pub async fn drain(
        &self,
        name: &str,
        addr: SocketAddr,
        deadline: Duration,
    ) -> Result<DrainOutcome, AgentError> {
        let path = router_path(name, "/drain")?;
        let body = encode(&DrainRequest {
            addr,
            deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
        })?;
        self.json(
            Method::POST,
            &path,
            Some(body),
            deadline.saturating_add(DRAIN_MARGIN),
        )
        .await
    }

    /// `POST /v1/routers/{name}/undrain`: puts `addr` back into rotation.
    pub async fn undrain(&self, name: &str, addr: SocketAddr) -> Result<(), AgentError> {
        let path = router_path(name, "/undrain")?;
        let body = encode(&UndrainRequest { addr })?;
        let _: serde_json::Value = self
            .json(Method::POST, &path, Some(body), CALL_TIMEOUT)
            .await?;
        Ok(())
    }

    /// `GET /v1/routers/{name}/metrics`.
    pub async fn metrics(&self, name: &str) -> Result<RouterMetrics, AgentError> {
        let path = router_path(name, "/metrics")?;
        self.json(Method::GET, &path, None, CALL_TIMEOUT).await
    }

    /// `GET /metrics`: every router's metrics in the Prometheus text format.
    pub async fn prometheus(&self) -> Result<String, AgentError> {
        let (status, body) = self
            .call(Method::GET, "/metrics", None, CALL_TIMEOUT)
            .await?;
        check(status, &body)?;
        String::from_utf8(body.to_vec()).map_err(|e| AgentError::Decode {
            what: "GET /metrics".into(),
            message: e.to_string(),
        })
    }

    /// `POST /v1/shutdown`: the agent shuts every router down gracefully and exits. Returns
    /// once the agent has accepted (not when it has finished).
    pub async fn shutdown(&self) -> Result<ShuttingDown, AgentError> {
        self.json(Method::POST, "/v1/shutdown", None, CALL_TIMEOUT)
            .await
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<T, AgentError> {
        let what = format!("{method} {path}");
        let (status, bytes) = self.call(method, path, body, timeout).await?;
        check(status, &bytes)?;
        serde_json::from_slice(&bytes).map_err(|e| AgentError::Decode {
            what,
            message: e.to_string(),
        })
    }

    /// One request on a new connection; the status and the whole body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), AgentError> {
        let what = format!("{method} {path}");
        let exchange = async {
            let stream = UnixStream::connect(&self.socket)
                .await
                .map_err(|e| self.connect_error(e))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| self.transport(&e))?;
            let conn = tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut request = Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, "ramp-agent");
            if body.is_some() {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
            }
            let request = request
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| self.transport(&e))?;
            let result = async {
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| self.transport(&e))?;
                let status = response.status();
                let bytes = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| self.transport(&e))?
                    .to_bytes();
                Ok((status, bytes))
            }
            .await;
            conn.abort();
            result
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| AgentError::Timeout {
                socket: self.socket.clone(),
                what,
                after: timeout,
            })?
    }

    fn connect_error(&self, e: io::Error) -> AgentError {
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => AgentError::Unreachable {
                socket: self.socket.clone(),
                source: e,
            },
            _ => AgentError::Transport {
                socket: self.socket.clone(),
                message: format!("cannot connect: {e}"),
            },
        }
    }

    fn transport(&self, e: &dyn std::fmt::Display) -> AgentError {
        AgentError::Transport {
            socket: self.socket.clone(),
            message: e.to_string(),
        }
    }
}

fn router_path(name: &str, suffix: &str) -> Result<String, AgentError> {
    if !super::api::valid_router_name(name) {
        return Err(AgentError::Api {
            status: 400,
            message: format!(
                "router name {name:?} must be 1-{} characters of A-Z a-z 0-9 . _ -",
                super::api::MAX_ROUTER_NAME_LEN
            ),
        });
    }
    Ok(format!("/v1/routers/{name}{suffix}"))
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, AgentError> {
    serde_json::to_vec(value).map_err(|e| AgentError::Decode {
        what: "the request body".into(),
        message: e.to_string(),
    })
}

/// Turns a non-2xx answer into [`AgentError::Api`].
fn check(status: StatusCode, body: &[u8]) -> Result<(), AgentError> {
    if status.is_success() {
        return Ok(());
    }
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.error,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    };
    Err(AgentError::Api {
        status: status.as_u16(),
        message,
    })
}
