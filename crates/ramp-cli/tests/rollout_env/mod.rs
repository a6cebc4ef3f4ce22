//! Helpers for the end-to-end rollout tests: a real `ramp server` in a fresh data directory
//! (stopped gracefully by the test, and everything it started killed when the harness is
//! dropped, also on panic), its REST API, service specs that run `ramp demo-app`, continuous
//! keep-alive load that records every request, and `/proc` scans for leaked processes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ramp_server::ServiceStatus;
use serde_json::{Value, json};

use crate::common::{Client, Proc, RAMP, Reply, failure_of, free_port, local, temp_dir};

/// How long the control plane may take to answer its health endpoint after it starts.
const SERVER_STARTUP: Duration = Duration::from_secs(20);

/// How long a graceful stop (drain and stop every instance, stop the agent) may take.
const SERVER_STOP: Duration = Duration::from_secs(30);

/// No load runs longer than this, whatever the test does.
const LOAD_HARD_LIMIT: Duration = Duration::from_secs(90);

/// No load connection sends more than this many requests.
const LOAD_MAX_PER_CONNECTION: usize = 200_000;

/// Tests in this binary run one at a time: each starts a control plane, a router agent and
/// several instances, and measures timing (atomic switches, abort latency) that a second test
/// running next to it on a small machine would blur.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Holds the lock that keeps these tests serial.
pub(crate) async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

// ---------------------------------------------------------------------------------------------
// Processes in /proc
// ---------------------------------------------------------------------------------------------

/// Every process (other than this one) whose command line contains `needle`, as
/// `(pid, command line with spaces for NULs)`, zombies left out.
pub(crate) fn processes_with(needle: &str) -> Vec<(u32, String)> {
    ramp_runtime::processes_mentioning(needle)
}

/// `kill -9` every process whose command line contains `needle`, until none is left (or a few
/// seconds passed). Returns what it killed.
pub(crate) fn kill_all_with(needle: &str) -> Vec<(u32, String)> {
    let mut killed = Vec::new();
    for _ in 0..60 {
        let left = processes_with(needle);
        if left.is_empty() {
            break;
        }
        for (pid, cmdline) in left {
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            if !killed.iter().any(|(p, _)| *p == pid) {
                killed.push((pid, cmdline));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    killed
}

// ---------------------------------------------------------------------------------------------
// The REST API
// ---------------------------------------------------------------------------------------------

/// A minimal client of the control plane's API: one connection per call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Api {
    pub(crate) addr: SocketAddr,
}

impl Api {
    /// `METHOD path` with an optional JSON body; returns the status and the body as JSON (or as
    /// a JSON string when it is not JSON).
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let addr = self.addr;
        let exchange = async move {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect to the API at {addr}: {e}"))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake with the API: {e}"))?;
            tokio::spawn(conn);
            let payload = body.map(|b| b.to_string()).unwrap_or_default();
            let request = http::Request::builder()
                .method(method)
                .uri(path)
                .header("host", addr.to_string())
                .header("content-type", "application/json")
                .header("x-ramp-actor", "rollout-test")
                .body(Full::new(Bytes::from(payload)))
                .map_err(|e| e.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("{method} {path}: {e}"))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{method} {path}: reading the body: {e}"))?
                .to_bytes();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            Ok((status, value))
        };
        tokio::time::timeout(Duration::from_secs(60), exchange)
            .await
            .map_err(|_| format!("{method} {path}: no answer within 60s"))?
    }
}

// ---------------------------------------------------------------------------------------------
// The control plane under test
// ---------------------------------------------------------------------------------------------

/// A `ramp server` on a fresh data directory. Dropping it kills the server and then every
/// process whose command line names the data directory (the router agent and the instances,
/// which live in their own process groups on purpose), then removes the directory.
pub(crate) struct Plane {
    server: Option<Proc>,
    /// The API's port (kept across restarts).
    pub(crate) port: u16,
    pub(crate) api: Api,
    /// The data directory (`--data-dir`).
    pub(crate) data_dir: PathBuf,
    /// Where specs are written (the `baseDir` of applies).
    pub(crate) spec_dir: PathBuf,
    /// Server output of earlier (killed or stopped) processes, for diagnostics.
    earlier_logs: Vec<String>,
    /// When the plane was started (for the test's duration).
    created: Instant,
    // Dropped last: the processes are gone before their directory is.
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Plane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plane")
            .field("port", &self.port)
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl Plane {
    /// Starts `ramp server` on a fresh data directory and a free port; waits for its API.
    pub(crate) async fn start(label: &str) -> Plane {
        let dir = temp_dir(label);
        let data_dir = dir.path().join("data");
        let spec_dir = dir.path().join("specs");
        std::fs::create_dir_all(&spec_dir).expect("create the spec directory");
        let mut plane = Plane {
            server: None,
            port: 0,
            // Set once a port is chosen below.
            api: Api { addr: local(0) },
            data_dir,
            spec_dir,
            earlier_logs: Vec::new(),
            created: Instant::now(),
            dir,
        };
        let mut last_error = String::new();
        for _ in 0..3 {
            plane.port = free_port();
            plane.api = Api {
                addr: local(plane.port),
            };
            match plane.launch().await {
                Ok(()) => return plane,
                Err(e) => last_error = e,
            }
        }
        panic!("ramp server did not start: {last_error}");
    }

    /// Starts the server process on this plane's data directory and port.
    async fn launch(&mut self) -> Result<(), String> {
        let data = self.data_dir.to_str().expect("utf-8 temp path").to_string();
        let listen = format!("127.0.0.1:{}", self.port);
        let mut proc = Proc::spawn(
            format!("ramp server on {listen}"),
            &["server", "--data-dir", &data, "--listen", &listen],
        );
        let deadline = Instant::now() + SERVER_STARTUP;
        loop {
            if let Some(status) = proc.exited() {
                return Err(format!("exited ({status}):\n{}", proc.describe()));
            }
            if let Ok((200, _)) = self.api.call("GET", "/api/v1/health", None).await {
                self.server = Some(proc);
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "API not answering after {SERVER_STARTUP:?}:\n{}",
                    proc.describe()
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `http://127.0.0.1:PORT`, for `ramp --server`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's pid.
    pub(crate) fn server_pid(&self) -> u32 {
        self.server.as_ref().expect("server running").pid()
    }

    /// What the server processes wrote, and the router agent's log.
    pub(crate) fn logs(&self) -> String {
        let mut out = self.earlier_logs.join("\n");
        if let Some(server) = &self.server {
            out.push_str(&server.describe());
        }
        let agent = std::fs::read_to_string(self.data_dir.join("logs").join("router-agent.log"))
            .unwrap_or_default();
        out.push_str("\n--- router agent log ---\n");
        out.push_str(&tail(&agent, 40));
        out
    }

    /// `kill -9` the control plane (and only it).
    pub(crate) fn kill9(&mut self) {
        let mut server = self.server.take().expect("server running");
        server.kill();
        self.earlier_logs.push(server.describe());
    }

    /// Starts the control plane again on the same data directory and port.
    pub(crate) async fn restart(&mut self) {
        assert!(self.server.is_none(), "the server is still running");
        let mut last_error = String::new();
        // The port was just released by the killed process; give a rebind a few tries.
        for _ in 0..20 {
            match self.launch().await {
                Ok(()) => return,
                Err(e) => last_error = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("ramp server did not start again: {last_error}");
    }

    /// Every process (router agent, instances, ...) whose command line names the data
    /// directory.
    pub(crate) fn processes(&self) -> Vec<(u32, String)> {
        processes_with(self.data_dir.to_str().expect("utf-8 temp path"))
    }

    /// Stops the control plane gracefully (SIGTERM: it drains and stops every instance and the
    /// router agent), then checks that it exited cleanly and that no process it started is left.
    pub(crate) async fn stop(&mut self) {
        let mut server = self.server.take().expect("server running");
        server.signal("TERM");
        let status = server.wait_exit(SERVER_STOP).await;
        let described = server.describe();
        self.earlier_logs.push(described.clone());
        let status =
            status.unwrap_or_else(|| panic!("ramp server did not stop within {SERVER_STOP:?}"));
        assert!(
            status.success(),
            "ramp server exited with {status} on SIGTERM:\n{described}"
        );
        // The agent is asked to exit; give the last processes a moment to be gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = self.processes();
        while !left.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            left = self.processes();
        }
        assert!(
            left.is_empty(),
            "processes left running after a graceful stop of the control plane: {left:#?}"
        );
        println!(
            "control plane stopped cleanly {:.1} s after it was started",
            self.created.elapsed().as_secs_f64()
        );
    }

    // --- API conveniences -------------------------------------------------------------------

    /// `GET /api/v1/services/{name}` → its status.
    pub(crate) async fn status(&self, name: &str) -> ServiceStatus {
        fetch_status(self.api, name)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Polls the status (every 25 ms) until `until` holds; panics with the last status after
    /// `limit`.
    pub(crate) async fn wait_for(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        until: impl Fn(&ServiceStatus) -> bool,
    ) -> ServiceStatus {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.status(name).await;
            if until(&status) {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "{name}: not {what} within {limit:?}; status: {status:#?}\nevents:\n{}",
                    self.events_text(name).await
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `POST /api/v1/services` with the spec and this plane's spec directory as `baseDir`.
    pub(crate) async fn apply(&self, yaml: &str) -> (u16, Value) {
        self.api
            .call(
                "POST",
                "/api/v1/services",
                Some(json!({ "spec": yaml, "baseDir": self.spec_dir })),
            )
            .await
            .unwrap_or_else(|e| panic!("apply: {e}"))
    }

    /// Applies a spec that must be accepted (200 or 201); returns the answer.
    pub(crate) async fn apply_ok(&self, yaml: &str) -> Value {
        let (code, body) = self.apply(yaml).await;
        assert!(
            code == 200 || code == 201,
            "apply answered {code}: {body}\nspec:\n{yaml}"
        );
        body
    }

    /// `POST /api/v1/services/{name}/{action}`.
    pub(crate) async fn act(&self, name: &str, action: &str, body: Option<Value>) -> (u16, Value) {
        self.api
            .call("POST", &format!("/api/v1/services/{name}/{action}"), body)
            .await
            .unwrap_or_else(|e| panic!("{action} {name}: {e}"))
    }

    /// An action that must succeed; returns the status it answers with.
    pub(crate) async fn act_ok(
        &self,
        name: &str,
        action: &str,
        body: Option<Value>,
    ) -> ServiceStatus {
        let (code, answer) = self.act(name, action, body).await;
        assert_eq!(code, 200, "{action} {name} answered {code}: {answer}");
        serde_json::from_value(answer.clone())
            .unwrap_or_else(|e| panic!("{action} answer does not parse: {e}: {answer}"))
    }

    /// The service's events as lines, for failure messages.
    /// The service's events as the API returns them.
    pub(crate) async fn events(&self, name: &str) -> Vec<Value> {
        match self
            .api
            .call("GET", &format!("/api/v1/events?service={name}"), None)
            .await
        {
            Ok((200, body)) => body["events"].as_array().cloned().unwrap_or_default(),
            other => panic!("events unavailable: {other:?}"),
        }
    }

    pub(crate) async fn events_text(&self, name: &str) -> String {
        match self
            .api
            .call("GET", &format!("/api/v1/events?service={name}"), None)
            .await
        {
            Ok((200, body)) => body["events"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    format!(
                        "  {} {} {}",
                        e["at"].as_str().unwrap_or(""),
                        e["kind"].as_str().unwrap_or(""),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            other => format!("(events unavailable: {other:?})"),
        }
    }

    /// `GET /api/v1/services/{name}/revisions` → the revision numbers.
    pub(crate) async fn revisions(&self, name: &str) -> Vec<u64> {
        let (code, body) = self
            .api
            .call("GET", &format!("/api/v1/services/{name}/revisions"), None)
            .await
            .unwrap_or_else(|e| panic!("revisions of {name}: {e}"));
        assert_eq!(code, 200, "revisions of {name}: {body}");
        body["revisions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["number"].as_u64())
            .collect()
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill();
        }
        let needle = self.data_dir.to_string_lossy().into_owned();
        let killed = kill_all_with(&needle);
        if !killed.is_empty() && !std::thread::panicking() {
            eprintln!("safety net killed processes left by the test: {killed:#?}");
        }
    }
}

/// `GET /api/v1/services/{name}` → its status.
pub(crate) async fn fetch_status(api: Api, name: &str) -> Result<ServiceStatus, String> {
    let (code, body) = api
        .call("GET", &format!("/api/v1/services/{name}"), None)
        .await
        .map_err(|e| format!("status of {name}: {e}"))?;
    if code != 200 {
        return Err(format!("GET service {name} answered {code}: {body}"));
    }
    serde_json::from_value(body["status"].clone())
        .map_err(|e| format!("status of {name} does not parse: {e}: {body}"))
}

/// Polls a service's status in the background and keeps every status that differs from the
/// one before, with when it was seen.
pub(crate) struct StatusLog {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(Instant, ServiceStatus)>>,
}

impl std::fmt::Debug for StatusLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusLog").finish()
    }
}

impl StatusLog {
    /// Polls every `every` (at most for the load's hard limit).
    pub(crate) fn start(api: Api, name: &str, every: Duration) -> StatusLog {
        let stop = Arc::new(AtomicBool::new(false));
        let name = name.to_string();
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut seen: Vec<(Instant, ServiceStatus)> = Vec::new();
            while !flag.load(Ordering::Relaxed) && started.elapsed() < LOAD_HARD_LIMIT {
                let at = Instant::now();
                if let Ok(status) = fetch_status(api, &name).await
                    && seen.last().is_none_or(|(_, last)| *last != status)
                {
                    seen.push((at, status));
                }
                tokio::time::sleep(every).await;
            }
            seen
        });
        StatusLog { stop, task }
    }

    /// Stops polling; returns the distinct statuses seen, in order.
    pub(crate) async fn stop(self) -> Vec<(Instant, ServiceStatus)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("status poller panicked")
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Status helpers
// ---------------------------------------------------------------------------------------------

/// The rollout's phase, or `-`.
pub(crate) fn phase(s: &ServiceStatus) -> &str {
    s.rollout.as_ref().map_or("-", |r| r.phase.as_str())
}

/// The current or last rollout is over (completed or aborted) with this revision stable.
pub(crate) fn settled_on(s: &ServiceStatus, revision: u64) -> bool {
    s.stable_revision == Some(revision)
        && s.rollout
            .as_ref()
            .is_some_and(|r| r.phase == "Completed" || r.phase == "Aborted")
}

/// The rollout waits at a `pause {}` step (for `promote`).
pub(crate) fn at_indefinite_pause(s: &ServiceStatus) -> bool {
    s.rollout
        .as_ref()
        .is_some_and(|r| r.phase == "Paused" && r.step_name.as_deref() == Some("pause"))
}

/// Instance ids, sorted.
pub(crate) fn instance_ids(s: &ServiceStatus) -> Vec<String> {
    let mut ids: Vec<String> = s.instances.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    ids
}

/// Instances that are ready. (The API documents the phases as `Ready`, `Starting`, ... but
/// answers the runtime's lowercase names, except `Stopping`; compare without case.)
pub(crate) fn ready_count(s: &ServiceStatus) -> usize {
    s.instances
        .iter()
        .filter(|i| i.phase.eq_ignore_ascii_case("ready"))
        .count()
}

/// Traffic as `route → percent`.
pub(crate) fn traffic(s: &ServiceStatus) -> BTreeMap<String, f64> {
    s.traffic
        .iter()
        .map(|t| (t.route.clone(), t.percent))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Specs
// ---------------------------------------------------------------------------------------------

/// A service running `ramp demo-app` behind its router on a free port.
#[derive(Debug, Clone)]
pub(crate) struct Svc {
    pub(crate) name: String,
    pub(crate) listen: SocketAddr,
    pub(crate) replicas: u32,
}

/// Template knobs for a revision.
#[derive(Debug, Clone)]
pub(crate) struct Tmpl {
    /// Readiness probe period.
    pub(crate) period: String,
    /// Readiness probe initial delay, if any.
    pub(crate) initial_delay: Option<String>,
    /// More `demo-app` arguments.
    pub(crate) extra_args: Vec<String>,
}

impl Default for Tmpl {
    fn default() -> Self {
        Tmpl {
            period: "100ms".into(),
            initial_delay: None,
            extra_args: Vec::new(),
        }
    }
}

impl Svc {
    pub(crate) fn new(name: &str, replicas: u32) -> Svc {
        Svc {
            name: name.into(),
            listen: local(free_port()),
            replicas,
        }
    }

    /// The spec for `version` with `strategy` (YAML under `strategy:`, written without
    /// indentation) and the default template.
    pub(crate) fn spec(&self, version: &str, strategy: &str) -> String {
        self.spec_with(version, strategy, &Tmpl::default())
    }

    /// The spec for `version` with `strategy` and template knobs. Line 6 is `replicas`.
    pub(crate) fn spec_with(&self, version: &str, strategy: &str, t: &Tmpl) -> String {
        let mut args = vec![
            "demo-app".to_string(),
            "--listen".into(),
            "127.0.0.1:{port}".into(),
            "--app-version".into(),
            version.into(),
        ];
        args.extend(t.extra_args.iter().cloned());
        let args: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
        let delay = t
            .initial_delay
            .as_ref()
            .map_or(String::new(), |d| format!("      initialDelay: {d}\n"));
        let strategy: String = strategy
            .trim_matches('\n')
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect();
        format!(
            "apiVersion: ramp/v1
kind: Service
metadata:
  name: {name}
spec:
  replicas: {replicas}
  listen: {listen}
  template:
    command: {ramp}
    args: [{args}]
    readiness:
      httpGet: {{path: /healthz}}
      period: {period}
{delay}    stop:
      gracePeriod: 5s
  strategy:
{strategy}",
            name = self.name,
            replicas = self.replicas,
            listen = self.listen,
            ramp = RAMP,
            args = args.join(", "),
            period = t.period,
        )
    }
}

/// Writes `text` to `dir/file` and returns the path.
pub(crate) fn write_spec(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write spec");
    path
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

/// One request of the load: when it was sent and finished, on which connection, as which user,
/// and what came back.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) conn: usize,
    pub(crate) sent: Instant,
    pub(crate) done: Instant,
    pub(crate) user: Option<String>,
    pub(crate) outcome: Result<Reply, String>,
}

impl Sample {
    /// The revision that served it, for a 200 answer.
    pub(crate) fn revision(&self) -> Option<&str> {
        match &self.outcome {
            Ok(reply) if reply.status == 200 => reply.revision.as_deref(),
            _ => None,
        }
    }

    /// Why the request failed, if it did (see [`failure_of`]).
    pub(crate) fn failure(&self) -> Option<String> {
        failure_of(&self.outcome)
    }
}

/// Describes the failed requests among `samples` (empty when none failed), each with its send
/// time relative to `origin`.
pub(crate) fn failures(samples: &[Sample], origin: Instant) -> Vec<String> {
    samples
        .iter()
        .filter_map(|s| {
            s.failure().map(|why| {
                format!(
                    "conn {} at +{:.3}s: {why}",
                    s.conn,
                    s.sent.saturating_duration_since(origin).as_secs_f64()
                )
            })
        })
        .collect()
}

/// Served requests by revision.
pub(crate) fn by_revision(samples: &[Sample]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for s in samples {
        if let Some(rev) = s.revision() {
            *counts.entry(rev.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// Gives the `x-user` header of request `i` on connection `conn`, if any.
pub(crate) type UserFn = Arc<dyn Fn(usize, usize) -> Option<String> + Send + Sync>;

/// Continuous load through a service's router: `connections` keep-alive connections, each
/// sending `GET /` with a short pause between requests, until stopped (or a hard limit).
pub(crate) struct Load {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Connections opened again because the server had closed them between requests (no
    /// request is lost to that).
    pub(crate) reconnects: Arc<AtomicUsize>,
    /// When the load started.
    pub(crate) started: Instant,
    /// Where it goes.
    addr: SocketAddr,
}

impl std::fmt::Debug for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Load")
            .field("samples", &self.count())
            .finish()
    }
}

impl Load {
    /// Anonymous load (no `x-user`).
    pub(crate) fn start(addr: SocketAddr, connections: usize, pause: Duration) -> Load {
        Load::start_with(addr, connections, pause, None)
    }

    /// Load whose request `i` on connection `conn` carries the `x-user` that `user` gives.
    pub(crate) fn start_with(
        addr: SocketAddr,
        connections: usize,
        pause: Duration,
        user: Option<UserFn>,
    ) -> Load {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reconnects = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let tasks = (0..connections)
            .map(|conn| {
                let (samples, stop, reconnects, user) = (
                    Arc::clone(&samples),
                    Arc::clone(&stop),
                    Arc::clone(&reconnects),
                    user.clone(),
                );
                tokio::spawn(async move {
                    let mut client: Option<Client> = None;
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed)
                        && i < LOAD_MAX_PER_CONNECTION
                        && started.elapsed() < LOAD_HARD_LIMIT
                    {
                        let who = user.as_ref().and_then(|f| f(conn, i));
                        i += 1;
                        let mut reusable = client.take();
                        if let Some(c) = reusable.as_mut()
                            && !c.usable().await
                        {
                            reconnects.fetch_add(1, Ordering::Relaxed);
                            reusable = None;
                        }
                        let sent = Instant::now();
                        let outcome = match reusable {
                            Some(c) => Ok(c),
                            None => Client::connect(addr).await,
                        };
                        let outcome = match outcome {
                            Ok(mut c) => {
                                let headers: Vec<(&str, &str)> =
                                    who.as_deref().map(|u| ("x-user", u)).into_iter().collect();
                                let reply = c.get("/", &headers).await;
                                if reply.is_ok() {
                                    client = Some(c);
                                }
                                reply
                            }
                            Err(e) => Err(e),
                        };
                        let failed = outcome.is_err();
                        samples
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(Sample {
                                conn,
                                sent,
                                done: Instant::now(),
                                user: who,
                                outcome,
                            });
                        let rest = if failed {
                            Duration::from_millis(10)
                        } else {
                            pause
                        };
                        if !rest.is_zero() {
                            tokio::time::sleep(rest).await;
                        }
                    }
                })
            })
            .collect();
        Load {
            samples,
            stop,
            tasks,
            reconnects,
            started,
            addr,
        }
    }

    /// Requests recorded so far.
    pub(crate) fn count(&self) -> usize {
        self.samples.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Every request recorded so far, by send time.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let mut all = self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        all.sort_by_key(|s| s.sent);
        all
    }

    /// Requests sent at or after `from`, by send time.
    pub(crate) fn since(&self, from: Instant) -> Vec<Sample> {
        let mut all: Vec<Sample> = self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| s.sent >= from)
            .cloned()
            .collect();
        all.sort_by_key(|s| s.sent);
        all
    }

    /// Waits until at least `n` requests sent since `from` have finished; panics after `limit`.
    pub(crate) async fn wait_count_since(&self, from: Instant, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let have = self
                .samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|s| s.sent >= from)
                .count();
            if have >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {have} of {n} requests finished within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the load and returns every request, by send time.
    pub(crate) async fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        let mut all = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()));
        all.sort_by_key(|s| s.sent);
        println!(
            "load to {}: {} requests in {:.1} s, {} connections reopened after the server closed them between requests",
            self.addr,
            all.len(),
            self.started.elapsed().as_secs_f64(),
            self.reconnects.load(Ordering::Relaxed)
        );
        all
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Asserts that no request among `samples` failed.
pub(crate) fn assert_no_failures(samples: &[Sample], origin: Instant, during: &str) {
    let failed = failures(samples, origin);
    assert!(
        failed.is_empty(),
        "{} of {} requests failed {during}; first ones: {:#?}",
        failed.len(),
        samples.len(),
        &failed[..failed.len().min(10)]
    );
}

/// Runs `ramp ARGS --server URL` to completion (at most 60 s); returns (exit code, stdout,
/// stderr).
pub(crate) async fn ramp_cli(url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = tokio::process::Command::new(RAMP);
    command
        .args(args)
        .arg("--server")
        .arg(url)
        .env("NO_COLOR", "1")
        .env("RAMP_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ramp {args:?}: {e}"));
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("ramp {args:?} did not finish within 60s"))
        .unwrap_or_else(|e| panic!("ramp {args:?}: {e}"));
    (
        output.status.code(),
        crate::common::strip_ansi(&String::from_utf8_lossy(&output.stdout)),
        crate::common::strip_ansi(&String::from_utf8_lossy(&output.stderr)),
    )
}
