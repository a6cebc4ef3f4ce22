//! `ramp quickstart`: a real canary rollout, start to end, on this machine.
//!
//! It starts an embedded control plane in a fresh data directory, deploys the demo service,
//! sends steady load through its router, rolls out a faulty v2 as a canary that Ramp's
//! analysis catches and rolls back by itself, then rolls out a good v3 that Ramp promotes by
//! itself, printing what happens as it happens and how long detection and rollback took.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ramp_server::{Server, ServerConfig, ServiceStatus};
use serde_json::json;

use crate::api_client::ApiClient;
use crate::load::Conn;

/// Requests per second the quickstart sends through the router.
const RATE: u64 = 200;

/// Share of requests v1 and v3 fail (a realistic background of errors)...
const NORMAL_ERROR_RATE: f64 = 0.01;
/// ... and v2, the bad version.
const BAD_ERROR_RATE: f64 = 0.05;

/// One answered (or failed) request: when it was sent, which revision served it, its status.
#[derive(Debug, Clone)]
struct Sample {
    sent: Instant,
    /// `sent` on the wall clock, in ms since the epoch (to compare with the event log).
    wall_ms: u64,
    revision: String,
    status: u16,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Steady load through the router, recorded request by request.
struct Load {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, connections: u64) -> Load {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let pace = Duration::from_micros(1_000_000 * connections / RATE);
        let tasks = (0..connections)
            .map(|_| {
                let (samples, stop) = (Arc::clone(&samples), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut conn = None;
                    let mut tick = tokio::time::interval(pace);
                    while !stop.load(Relaxed) {
                        tick.tick().await;
                        if conn.is_none() {
                            conn = Conn::open(addr).await.ok();
                        }
                        let sent = Instant::now();
                        let wall_ms = wall_ms();
                        let result = match conn.as_mut() {
                            Some(c) => c.get(&[]).await.ok(),
                            None => None,
                        };
                        let (status, revision) = result.unwrap_or((0, String::new()));
                        if status == 0 {
                            conn = None;
                        }
                        samples
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(Sample {
                                sent,
                                wall_ms,
                                revision,
                                status,
                            });
                    }
                })
            })
            .collect();
        Load {
            samples,
            stop,
            tasks,
        }
    }

    fn since(&self, from: Instant) -> Vec<Sample> {
        let all = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().filter(|s| s.sent >= from).cloned().collect()
    }

    /// When `revision` served its first and its last request so far (wall clock, ms), if it
    /// served any; the load goes on.
    fn served_span(&self, revision: &str) -> Option<(u64, u64)> {
        let all = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .filter(|s| s.revision == revision)
            .fold(None, |span, s| match span {
                None => Some((s.wall_ms, s.wall_ms)),
                Some((first, last)) => Some((first.min(s.wall_ms), last.max(s.wall_ms))),
            })
    }

    async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// `r1 78%  r2 22% (3 errors)` over a window of samples.
fn split(samples: &[Sample]) -> String {
    let mut by: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut failed = 0;
    for s in samples {
        if s.status == 0 {
            failed += 1;
            continue;
        }
        let e = by.entry(s.revision.as_str()).or_default();
        e.0 += 1;
        if s.status >= 500 {
            e.1 += 1;
        }
    }
    let total: u64 = by.values().map(|v| v.0).sum::<u64>().max(1);
    let mut parts: Vec<String> = by
        .iter()
        .map(|(rev, (n, errors))| {
            let errs = if *errors > 0 {
                format!(" ({errors} x 5xx)")
            } else {
                String::new()
            };
            format!("{rev} {:>3.0}%{errs}", 100.0 * *n as f64 / total as f64)
        })
        .collect();
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    parts.join("  ")
}

fn spec(name: &str, listen: SocketAddr, ramp: &Path, version: &str, error_rate: f64) -> String {
    format!(
        r#"apiVersion: ramp/v1
kind: Service
metadata:
  name: {name}
spec:
  replicas: 2
  listen: {listen}
  template:
    command: {ramp}
    args: [demo-app, --listen, "127.0.0.1:{{port}}", --app-version, {version}, --error-rate, "{error_rate}"]
    readiness:
      httpGet: {{path: /healthz}}
      period: 200ms
    stop:
      gracePeriod: 5s
  strategy:
    canary:
      stickiness: {{header: x-user}}
      steps:
        - setWeight: 10
        - pause: {{duration: 20s}}
        - setWeight: 50
        - pause: {{duration: 5s}}
"#,
        ramp = ramp.display()
    )
}

pub(crate) async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = std::env::temp_dir().join(format!("ramp-quickstart-{}", std::process::id()));
    let ramp = std::env::current_exe().context("cannot find the ramp binary")?;
    println!("Ramp quickstart: a canary rollout on this machine\n");
    println!("  data directory  {}", data_dir.display());
    let mut config = ServerConfig::new(data_dir.clone());
    config.api_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.agent_program = ramp.clone();
    let server = Server::start(config).await?;
    let api = ApiClient::new(&format!("http://{}", server.api_addr()))?;
    println!(
        "  control plane   http://{}/api/v1 (state in SQLite; routers in a separate agent process)",
        server.api_addr()
    );

    // Interrupted or not, everything started here is stopped: the router agent and the
    // instances run in process groups of their own and would outlive us.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let outcome = tokio::select! {
        outcome = walk_through(&api, &ramp, &data_dir) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        _ = terminate.recv() => Err(anyhow::anyhow!("terminated")),
    };
    println!("\n  Stopping: instances drained and stopped, routers removed.");
    server.shutdown(true).await;
    let _ = std::fs::remove_dir_all(&data_dir);
    outcome?;
    println!("  Done in {:.0} s.", started.elapsed().as_secs_f64());
    Ok(())
}

async fn walk_through(api: &ApiClient, ramp: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let specs = data_dir.join("specs");
    std::fs::create_dir_all(&specs)?;
    let write = |version: &str, error_rate: f64| -> anyhow::Result<PathBuf> {
        let path = specs.join(format!("demo-{version}.yaml"));
        std::fs::write(&path, spec("demo", listen, ramp, version, error_rate))?;
        Ok(path)
    };
    let percent = |rate: f64| rate * 100.0;

    println!("\n1. Deploy v1 (2 instances of `ramp demo-app` behind the router on {listen})");
    println!(
        "   v1 fails {}% of requests, like a real service with a background of errors.",
        percent(NORMAL_ERROR_RATE)
    );
    apply(api, &write("v1", NORMAL_ERROR_RATE)?).await?;
    wait_for(api, Duration::from_secs(30), |s| {
        s.stable_revision == Some(1) && done(s)
    })
    .await?;
    println!("   v1 is stable. Sending {RATE} requests/s through the router from now on.");
    let load = Load::start(listen, 8);
    tokio::time::sleep(Duration::from_secs(2)).await;

    println!("\n2. Roll out v2 as a canary: setWeight 10, pause 20s, setWeight 50, pause 5s.");
    println!(
        "   v2 is bad: it fails {}% of requests. Nobody is watching; Ramp's analysis compares \
         v2 with v1 request by request (sequential test, false-alarm rate 1%).",
        percent(BAD_ERROR_RATE)
    );
    apply(api, &write("v2", BAD_ERROR_RATE)?).await?;
    follow(api, &load, Duration::from_secs(60), |s| {
        s.rollout.as_ref().is_some_and(|r| r.phase == "Aborted")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = api.get_json("/api/v1/events?service=demo").await?;
    let event_at = |kind: &str| {
        events["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["kind"] == kind)
            .filter_map(|e| e["atMs"].as_u64())
            .next_back()
    };
    if let (Some((first, last)), Some(verdict)) =
        (load.served_span("r2"), event_at("AnalysisFailed"))
    {
        println!(
            "   Detected: the analysis failed v2 {:.1} s after it started serving.",
            verdict.saturating_sub(first) as f64 / 1000.0
        );
        println!(
            "   Rolled back: the last request v2 served was sent {} ms after the verdict; \
             every later one went to v1.",
            last.saturating_sub(verdict)
        );
    }
    let incidents = api.get_json("/api/v1/incidents?service=demo").await?;
    if let Some(incident) = incidents["incidents"].as_array().and_then(|l| l.first()) {
        println!(
            "   Incident {} recorded: {}",
            incident["id"],
            incident["reason"].as_str().unwrap_or("")
        );
        println!(
            "   (read it with `ramp incident {} -o markdown`)",
            incident["id"]
        );
    }

    println!("\n3. Roll out a good v3 the same way. Nobody promotes it either.");
    apply(api, &write("v3", NORMAL_ERROR_RATE)?).await?;
    follow(api, &load, Duration::from_secs(90), |s| {
        s.stable_revision == Some(3) && done(s)
    })
    .await?;
    println!("   The analysis found nothing wrong with v3: Ramp promoted it step by step.");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let samples = load.stop().await;
    let failed = samples.iter().filter(|s| s.status == 0).count();
    let errors = samples.iter().filter(|s| s.status >= 500).count();
    println!("\n4. Timeline (from the event log)");
    let events = api.get_json("/api/v1/events?service=demo").await?;
    for e in events["events"].as_array().into_iter().flatten() {
        let at = e["at"].as_str().unwrap_or("");
        let time = at.get(11..23).unwrap_or(at);
        println!(
            "   {time}  {:<20} {}",
            e["kind"].as_str().unwrap_or(""),
            e["message"].as_str().unwrap_or("")
        );
    }
    println!(
        "\n   Load: {} requests, {} failed to get an answer, {} answered 5xx by the demo app.",
        samples.len(),
        failed,
        errors
    );
    println!("\nWhere to look next (run your own server with `ramp server`, then):");
    println!("   ramp apply -f demo.yaml           # create or change a service");
    println!("   ramp get rollout demo --watch     # steps, weights, analysis, instances, live");
    println!("   ramp promote demo | ramp abort demo | ramp undo demo | ramp history demo");
    println!("   ramp events demo | ramp incident  # who did what, when; what went wrong");
    println!("   curl http://127.0.0.1:7070/api/v1/openapi.json");
    if failed > 0 {
        bail!("{failed} requests failed during the quickstart");
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn apply(api: &ApiClient, path: &Path) -> anyhow::Result<()> {
    let yaml = std::fs::read_to_string(path)?;
    api.post_json(
        "/api/v1/services",
        json!({ "spec": yaml, "baseDir": path.parent() }),
    )
    .await?;
    Ok(())
}

async fn status(api: &ApiClient) -> anyhow::Result<ServiceStatus> {
    let answer = api.get_json("/api/v1/services/demo").await?;
    Ok(serde_json::from_value(answer["status"].clone())?)
}

fn done(s: &ServiceStatus) -> bool {
    s.rollout
        .as_ref()
        .is_some_and(|r| r.phase == "Completed" || r.phase == "Aborted")
}

async fn wait_for(
    api: &ApiClient,
    limit: Duration,
    until: impl Fn(&ServiceStatus) -> bool,
) -> anyhow::Result<ServiceStatus> {
    let deadline = Instant::now() + limit;
    loop {
        let s = status(api).await?;
        if until(&s) {
            return Ok(s);
        }
        if Instant::now() > deadline {
            bail!(
                "waited {}s for the service; it is: {:?}",
                limit.as_secs(),
                s.rollout
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prints the rollout's progress (step, phase, observed traffic) whenever it changes.
async fn follow(
    api: &ApiClient,
    load: &Load,
    limit: Duration,
    until: impl Fn(&ServiceStatus) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    let mut last_print = Instant::now();
    loop {
        let s = status(api).await?;
        let line = match &s.rollout {
            Some(r) => {
                let step = r.step.map_or(String::new(), |(i, n)| {
                    format!(
                        "step {i}/{n} {:<12}",
                        r.step_name.as_deref().unwrap_or("done")
                    )
                });
                format!("{step} {:<11} weight {:>3}%", r.phase, r.weight)
            }
            None => "-".into(),
        };
        if line != last || last_print.elapsed() > Duration::from_secs(2) {
            let window = load.since(Instant::now() - Duration::from_secs(1));
            println!("   {line}   served last second: {}", split(&window));
            last = line;
            last_print = Instant::now();
        }
        if until(&s) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the rollout did not get there within {}s: {:?}",
                limit.as_secs(),
                s.rollout
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
