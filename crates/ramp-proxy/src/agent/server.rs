//! The agent's server: routers by name, driven over HTTP/1.1 on a Unix socket.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use ramp_route::RouteTable;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::api::{
    Deleted, DrainRequest, ErrorBody, Health, MAX_ROUTER_NAME_LEN, PutResult, PutRouter,
    RouterInfo, RouterList, RouterMetrics, RouterState, ShuttingDown, UndrainRequest,
    valid_router_name,
};
use super::client::{AgentClient, AgentError};
use super::prometheus::render_prometheus_many;
use crate::router::{Router, RouterOptions};

/// Largest request body accepted (a route table of many thousands of instances fits).
const MAX_BODY: usize = 16 << 20;
/// How long a socket found on start may take to answer before it is judged not an agent.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// After shutting down, how long API calls still being answered may take to finish.
const API_LINGER: Duration = Duration::from_secs(1);

/// Runs the router agent on the Unix socket `socket` until `shutdown` completes or a client
/// asks for `POST /v1/shutdown`; then shuts every router down gracefully, removes the socket
/// and returns.
///
/// A stale socket file left by an agent that died is replaced; if an agent still answers on
/// it, this fails with [`io::ErrorKind::AddrInUse`], and if the path is something other than
/// a socket, with [`io::ErrorKind::AlreadyExists`]. The socket is created with mode 0600.
pub async fn serve_agent(socket: &Path, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let (listener, identity) = bind_socket(socket).await?;
    tracing::info!(socket = %socket.display(), pid = std::process::id(), "router agent listening");
    let agent = Arc::new(Agent::new());
    let mut stop_rx = agent.stop.subscribe();
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("router agent stopping");
                break;
            }
            () = async { drop(stop_rx.wait_for(|stop| *stop).await) } => {
                tracing::info!("router agent stopping on request");
                break;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let agent = Arc::clone(&agent);
                    conns.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let agent = Arc::clone(&agent);
                            async move { Ok::<_, Infallible>(handle(agent, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(e) => {
                    tracing::warn!("router agent cannot accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    remove_if_ours(socket, identity);
    agent.shutdown_all().await;
    let _ = tokio::time::timeout(API_LINGER, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.shutdown().await;
    tracing::info!("router agent stopped");
    Ok(())
}

/// Binds `path`, replacing a stale socket, with mode 0600 from the first moment it can be
/// connected to: the socket is bound under a temporary name, restricted, then linked into
/// place. Returns the listener and the socket file's (device, inode).
async fn bind_socket(path: &Path) -> io::Result<(UnixListener, (u64, u64))> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Ok(_) => match AgentClient::new(path).health_within(PROBE_TIMEOUT).await {
            Ok(health) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "another router agent (pid {}) is serving on {}",
                        health.pid,
                        path.display()
                    ),
                ));
            }
            Err(AgentError::Unreachable { .. }) => {
                tracing::info!(socket = %path.display(), "replacing a stale socket");
                remove_quietly(path)?;
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use by something that is not a router agent ({e})",
                        path.display()
                    ),
                ));
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }

    let restrict = |p: &Path| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600));
    let listener = match temporary_name(path) {
        Some(tmp) if remove_quietly(&tmp).is_ok() => match UnixListener::bind(&tmp) {
            Ok(listener) => {
                let linked = restrict(&tmp).and_then(|()| link_into_place(&tmp, path));
                let _ = std::fs::remove_file(&tmp);
                linked?;
                listener
            }
            // The temporary name may be too long for a socket address where the real one
            // is not; bind in place then.
            Err(_) => bind_in_place(path, restrict)?,
        },
        _ => bind_in_place(path, restrict)?,
    };
    let meta = std::fs::symlink_metadata(path)?;
    Ok((listener, (meta.dev(), meta.ino())))
}

fn bind_in_place(
    path: &Path,
    restrict: impl Fn(&Path) -> io::Result<()>,
) -> io::Result<UnixListener> {
    let listener = UnixListener::bind(path)?;
    if let Err(e) = restrict(path) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(listener)
}

/// `dir/.name.PID.tmp` next to `path`.
fn temporary_name(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    Some(path.with_file_name(format!(".{name}.{}.tmp", std::process::id())))
}

/// Links `tmp` at `path` unless something appeared there meanwhile (another agent starting
/// at the same moment); falls back to a rename where hard links are not supported.
fn link_into_place(tmp: &Path, path: &Path) -> io::Result<()> {
    match std::fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another router agent took {} while this one started",
                path.display()
            ),
        )),
        Err(_) => std::fs::rename(tmp, path),
    }
}

fn remove_quietly(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the socket file if it is still the one this agent created.
fn remove_if_ours(path: &Path, (dev, ino): (u64, u64)) {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.dev() == dev
        && meta.ino() == ino
    {
        let _ = std::fs::remove_file(path);
    }
}

/// The agent's state: its routers, and whether it is shutting down.
#[derive(Debug)]
struct Agent {
    state: Mutex<State>,
    stop: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct State {
    routers: BTreeMap<String, Entry>,
    /// Set once shutdown has begun: no router is created after that.
    closing: bool,
    /// Grace period asked for by `POST /v1/shutdown?graceMs=N`.
    grace: Option<Duration>,
}

#[derive(Debug)]
struct Entry {
    router: Router,
    listen: SocketAddr,
    workers: usize,
    pin_workers: bool,
    generation: u64,
    /// A DELETE is shutting it down.
    deleting: bool,
}

impl Entry {
    fn info(&self) -> RouterInfo {
        RouterInfo {
            listen: self.listen,
            generation: self.generation,
            local_addr: self.router.local_addr(),
            workers: self.workers,
            pin_workers: self.pin_workers,
        }
    }
}

/// An error answer: a status and a message.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, message.into())
    }
    fn conflict(message: impl Into<String>) -> Self {
        ApiError(StatusCode::CONFLICT, message.into())
    }
    fn no_router(name: &str) -> Self {
        ApiError(StatusCode::NOT_FOUND, format!("no router named {name:?}"))
    }
}

type Answer = Result<Response<Full<Bytes>>, ApiError>;

impl Agent {
    fn new() -> Self {
        Agent {
            state: Mutex::new(State::default()),
            stop: watch::channel(false).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state is a single assignment or insert: poison is moot.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A clone of the named router's handle.
    fn router(&self, name: &str) -> Result<Router, ApiError> {
        self.lock()
            .routers
            .get(name)
            .map(|e| e.router.clone())
            .ok_or_else(|| ApiError::no_router(name))
    }

    fn put(&self, name: &str, put: PutRouter) -> Result<PutResult, ApiError> {
        let mut state = self.lock();
        if state.closing {
            return Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "the router agent is shutting down".into(),
            ));
        }
        if let Some(entry) = state.routers.get_mut(name) {
            if entry.deleting {
                return Err(ApiError::conflict(format!(
                    "router {name:?} is being deleted"
                )));
            }
            if put.generation < entry.generation {
                tracing::info!(
                    router = name,
                    stale = put.generation,
                    current = entry.generation,
                    "stale configuration ignored"
                );
                return Ok(PutResult {
                    generation: entry.generation,
                    local_addr: entry.router.local_addr(),
                    applied: false,
                    created: false,
                });
            }
            if put.listen != entry.listen && put.listen != entry.router.local_addr() {
                return Err(ApiError::conflict(format!(
                    "router {name:?} listens on {}; delete it to listen on {} instead",
                    entry.listen, put.listen
                )));
            }
            if (put.workers, put.pin_workers) != (entry.workers, entry.pin_workers) {
                return Err(ApiError::conflict(format!(
                    "router {name:?} runs with workers={} pinWorkers={}; these cannot change \
                     while it runs (delete it and create it again)",
                    entry.workers, entry.pin_workers
                )));
            }
            let settings = put.settings.to_settings().map_err(ApiError::bad_request)?;
            let table = RouteTable::new(put.table)
                .map_err(|e| ApiError::bad_request(format!("invalid table: {e}")))?;
            entry.router.apply(table, settings);
            entry.generation = put.generation;
            tracing::info!(router = name, generation = put.generation, "table applied");
            return Ok(PutResult {
                generation: entry.generation,
                local_addr: entry.router.local_addr(),
                applied: true,
                created: false,
            });
        }

        let settings = put.settings.to_settings().map_err(ApiError::bad_request)?;
        let table = RouteTable::new(put.table)
            .map_err(|e| ApiError::bad_request(format!("invalid table: {e}")))?;
        let options = RouterOptions {
            listen: put.listen,
            workers: put.workers,
            pin_workers: put.pin_workers,
        };
        let router = Router::start(options, table, settings).map_err(|e| {
            let status = match e.kind() {
                io::ErrorKind::AddrInUse
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::PermissionDenied => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            ApiError(status, format!("cannot listen on {}: {e}", put.listen))
        })?;
        let local_addr = router.local_addr();
        tracing::info!(router = name, listen = %local_addr, generation = put.generation, "router started");
        state.routers.insert(
            name.to_owned(),
            Entry {
                router,
                listen: put.listen,
                workers: put.workers,
                pin_workers: put.pin_workers,
                generation: put.generation,
                deleting: false,
            },
        );
        Ok(PutResult {
            generation: put.generation,
            local_addr,
            applied: true,
            created: true,
        })
    }

    async fn delete(self: &Arc<Self>, name: &str, grace: Option<Duration>) -> Answer {
        let router = {
            let mut state = self.lock();
            let entry = state
                .routers
                .get_mut(name)
                .ok_or_else(|| ApiError::no_router(name))?;
            if entry.deleting {
                return Err(ApiError::conflict(format!(
                    "router {name:?} is already being deleted"
                )));
            }
            entry.deleting = true;
            entry.router.clone()
        };
        let grace = grace.unwrap_or_else(|| router.settings().timeouts.shutdown_grace);
        // On its own task: a caller that hangs up must not leave the router half deleted.
        let agent = Arc::clone(self);
        let owned = name.to_owned();
        let task = tokio::spawn(async move {
            let report = router.shutdown(grace).await;
            let removed = agent.lock().routers.remove(&owned);
            drop(removed);
            tracing::info!(
                router = owned,
                cut = report.connections_cut,
                "router deleted"
            );
            report
        });
        let report = task
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        json(
            StatusCode::OK,
            &Deleted {
                connections_cut: report.connections_cut,
            },
        )
    }

    /// Shuts every router down gracefully (in parallel) and forgets them.
    async fn shutdown_all(&self) {
        let routers: Vec<(String, Router, Duration)> = {
            let mut state = self.lock();
            state.closing = true;
            let grace = state.grace;
            state
                .routers
                .iter()
                .map(|(name, e)| {
                    let grace =
                        grace.unwrap_or_else(|| e.router.settings().timeouts.shutdown_grace);
                    (name.clone(), e.router.clone(), grace)
                })
                .collect()
        };
        let mut tasks = JoinSet::new();
        for (name, router, grace) in routers {
            tasks.spawn(async move {
                let report = router.shutdown(grace).await;
                if report.connections_cut > 0 {
                    tracing::warn!(
                        router = name,
                        connections = report.connections_cut,
                        "grace period over; connections cut"
                    );
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let routers = std::mem::take(&mut self.lock().routers);
        drop(routers);
    }
}

async fn handle(agent: Arc<Agent>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match route(&agent, req).await {
        Ok(response) => response,
        Err(ApiError(status, message)) => {
            if status.is_server_error() {
                tracing::warn!(%method, path, "{message}");
            } else {
                tracing::debug!(%method, path, %status, "{message}");
            }
            json(status, &ErrorBody { error: message }).unwrap_or_else(|e| {
                let mut res = Response::new(Full::new(Bytes::from(e.1)));
                *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                res
            })
        }
    }
}

async fn route(agent: &Arc<Agent>, req: Request<Incoming>) -> Answer {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let allowed = |methods: &str| {
        Err(ApiError(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not served on {path}; use {methods}"),
        ))
    };
    match segments.as_slice() {
        ["metrics"] if method == Method::GET => {
            let routers: Vec<(String, Router)> = {
                let state = agent.lock();
                (state.routers.iter())
                    .map(|(n, e)| (n.clone(), e.router.clone()))
                    .collect()
            };
            let borrowed: Vec<(&str, &Router)> =
                routers.iter().map(|(n, r)| (n.as_str(), r)).collect();
            let mut res = Response::new(Full::new(Bytes::from(render_prometheus_many(&borrowed))));
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(res)
        }
        ["metrics"] => allowed("GET"),
        ["v1", "health"] if method == Method::GET => json(
            StatusCode::OK,
            &Health {
                pid: std::process::id(),
                routers: agent.lock().routers.len(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
        ),
        ["v1", "health"] => allowed("GET"),
        ["v1", "shutdown"] if method == Method::POST => {
            let grace = query_millis(&query, "graceMs")?;
            let routers = {
                let mut state = agent.lock();
                state.grace = grace;
                state.routers.len()
            };
            agent.stop.send_replace(true);
            json(StatusCode::OK, &ShuttingDown { routers })
        }
        ["v1", "shutdown"] => allowed("POST"),
        ["v1", "routers"] if method == Method::GET => {
            let routers = (agent.lock().routers.iter())
                .map(|(n, e)| (n.clone(), e.info()))
                .collect();
            json(StatusCode::OK, &RouterList { routers })
        }
        ["v1", "routers"] => allowed("GET"),
        ["v1", "routers", name, rest @ ..] => {
            if !valid_router_name(name) {
                return Err(ApiError::bad_request(format!(
                    "router name {name:?} must be 1-{MAX_ROUTER_NAME_LEN} characters of A-Z a-z 0-9 . _ -"
                )));
            }
            match (rest, &method) {
                ([], &Method::GET) => {
                    let state = agent.lock();
                    let e = state
                        .routers
                        .get(*name)
                        .ok_or_else(|| ApiError::no_router(name))?;
                    json(
                        StatusCode::OK,
                        &RouterState {
                            listen: e.listen,
                            local_addr: e.router.local_addr(),
                            workers: e.workers,
                            pin_workers: e.pin_workers,
                            generation: e.generation,
                            table: e.router.table().spec().clone(),
                            settings: e.router.settings().into(),
                        },
                    )
                }
                ([], &Method::PUT) => {
                    let put: PutRouter = read_json(req).await?;
                    json(StatusCode::OK, &agent.put(name, put)?)
                }
                ([], &Method::DELETE) => {
                    let grace = query_millis(&query, "graceMs")?;
                    agent.delete(name, grace).await
                }
                ([], _) => allowed("GET, PUT or DELETE"),
                (["drain"], &Method::POST) => {
                    let body: DrainRequest = read_json(req).await?;
                    let router = agent.router(name)?;
                    let outcome = router
                        .drain(body.addr, Duration::from_millis(body.deadline_ms))
                        .await
                        .map_err(|e| ApiError(StatusCode::NOT_FOUND, e.to_string()))?;
                    tracing::info!(router = *name, instance = %body.addr, ?outcome, "instance drained");
                    json(StatusCode::OK, &outcome)
                }
                (["undrain"], &Method::POST) => {
                    let body: UndrainRequest = read_json(req).await?;
                    agent
                        .router(name)?
                        .undrain(body.addr)
                        .map_err(|e| ApiError(StatusCode::NOT_FOUND, e.to_string()))?;
                    tracing::info!(router = *name, instance = %body.addr, "instance back in rotation");
                    json(StatusCode::OK, &serde_json::json!({}))
                }
                (["drain" | "undrain"], _) => allowed("POST"),
                (["metrics"], &Method::GET) => {
                    let router = agent.router(name)?;
                    let metrics = RouterMetrics {
                        revisions: router.revision_metrics().into_iter().collect(),
                        instances: router.instances(),
                    };
                    json(StatusCode::OK, &metrics)
                }
                (["metrics"], _) => allowed("GET"),
                _ => not_found(&method, &path),
            }
        }
        _ => not_found(&method, &path),
    }
}

fn not_found(method: &Method, path: &str) -> Answer {
    Err(ApiError(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {method} {path}"),
    ))
}

/// A `key=N` query parameter, in milliseconds.
fn query_millis(query: &str, key: &str) -> Result<Option<Duration>, ApiError> {
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix(key).and_then(|v| v.strip_prefix('=')) {
            let ms: u64 = value.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "{key} must be a number of milliseconds, got {value:?}"
                ))
            })?;
            return Ok(Some(Duration::from_millis(ms)));
        }
    }
    Ok(None)
}

async fn read_json<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, ApiError> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {MAX_BODY} bytes"),
                )
            } else {
                ApiError::bad_request(format!("cannot read the body: {e}"))
            }
        })?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

fn json(status: StatusCode, value: &impl Serialize) -> Answer {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        assert_eq!(query_millis("", "graceMs").unwrap(), None);
        assert_eq!(
            query_millis("a=1&graceMs=250", "graceMs").unwrap(),
            Some(Duration::from_millis(250))
        );
        assert!(query_millis("graceMs=soon", "graceMs").is_err());
    }

    #[test]
    fn serve_agent_is_send() {
        fn send<T: Send>(_: T) {}
        send(serve_agent(Path::new("/nonexistent/x"), async {}));
    }
}
