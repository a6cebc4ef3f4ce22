//! `ramp-bench-rollback`: under load, the time from the abort API call until every new request
//! is served by the stable revision, and the requests that failed meanwhile.
//!
//! It starts `ramp server` in a fresh temp directory, deploys `ramp demo-app` (v1), starts a
//! canary of v2 that stops at an indefinite pause with 50% of the traffic, and then, with
//! closed-loop load running through the service's router, aborts and retries the canary
//! `--iterations` times. See `bench/rollback/README.md`.

mod api;
mod load;
mod procs;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use serde_json::{Value, json};

use api::Api;
use load::{Load, Sample, Served, Totals};
use procs::Env;

/// The service the benchmark deploys.
const SERVICE: &str = "bench";
/// Router revision names (`r<revision>` for the first stack of a revision).
const STABLE_ROUTE: &str = "r1";
const CANARY_ROUTE: &str = "r2";
/// The goal from the issue.
const GOAL_P99_MS: f64 = 10.0;

#[derive(Debug, Parser)]
#[command(
    name = "ramp-bench-rollback",
    about = "Time from a rollout abort to every new request served by the stable revision, under load",
    args_override_self = true
)]
struct Args {
    /// The `ramp` binary to benchmark.
    #[arg(long, value_name = "PATH")]
    ramp: PathBuf,
    /// Aborts measured.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
    iterations: u32,
    /// Keep-alive connections of the closed-loop load.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    connections: u32,
    /// How long the load goes on after the abort API call answered, before the window closes.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(50..=10_000))]
    tail_ms: u64,
    /// Steady load before each abort (after the canary is back at 50%).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    settle_ms: u64,
    /// A load request with no complete answer within this is a failed request.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    request_timeout_ms: u64,
    /// Limit for each setup step (server up, v1 stable, canary paused, canary back).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    step_timeout_s: u64,
    /// Limit for the whole run (setup and iterations, not the final shutdown).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(10..=7200))]
    max_duration_s: u64,
    /// Worker threads of this program (load and API calls).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// Repository root; `target/bench-results/rollback.json` is written under it.
    /// Default: the workspace above the current directory, else above the ramp binary.
    #[arg(long, value_name = "DIR")]
    repo_root: Option<PathBuf>,
    /// Write the results here instead.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Keep the temp directory (data directory, server and agent logs) after the run.
    #[arg(long)]
    keep_tmp: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads as usize)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[bench] ERROR: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn log(message: impl AsRef<str>) {
    eprintln!("[bench] {}", message.as_ref());
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let ramp = args
        .ramp
        .canonicalize()
        .with_context(|| format!("--ramp {}", args.ramp.display()))?;
    let root = repo_root(&args, &ramp);
    let out = match (&args.out, &root) {
        (Some(path), _) => path.clone(),
        (None, Ok(root)) => root
            .join("target")
            .join("bench-results")
            .join("rollback.json"),
        (None, Err(e)) => bail!("{e:#}"),
    };
    let loadavg_start = loadavg();
    let mut env = Env::create(&ramp, args.keep_tmp)?;
    log(format!("temp directory {}", env.dir.display()));

    let limit = Duration::from_secs(args.max_duration_s);
    let outcome = tokio::select! {
        r = tokio::time::timeout(limit, bench(&args, &mut env)) => match r {
            Ok(r) => r,
            Err(_) => Err(anyhow!("the run took longer than --max-duration-s {}", args.max_duration_s)),
        },
        signal = interrupted() => Err(anyhow!("interrupted by {signal}")),
    };
    if outcome.is_err() {
        eprint!("{}", env.log_tails(20));
    }
    log("stopping the server (SIGTERM: drains and stops the instances and the agent)");
    let shutdown = env.shutdown(Duration::from_secs(30)).await;
    let measured = outcome?;

    let wall = started.elapsed();
    let report = report(
        &args,
        &ramp,
        root.ok().as_deref(),
        &measured,
        &shutdown,
        wall,
        &loadavg_start,
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    print_table(&report);
    println!("\nresults: {}", out.display());
    if !shutdown.leftovers.is_empty() {
        bail!(
            "processes were left after the server stopped (killed): {:?}",
            shutdown.leftovers
        );
    }
    Ok(())
}

/// `--repo-root`, else the workspace root above the current directory, else above the binary.
fn repo_root(args: &Args, ramp: &Path) -> anyhow::Result<PathBuf> {
    if let Some(root) = &args.repo_root {
        return root
            .canonicalize()
            .with_context(|| format!("--repo-root {}", root.display()));
    }
    let is_root = |dir: &Path| {
        dir.join("bench").join("rollback").is_dir()
            && std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|t| t.contains("[workspace]"))
    };
    let cwd = std::env::current_dir()?;
    for start in [cwd.as_path(), ramp] {
        if let Some(dir) = start.ancestors().find(|d| is_root(d)) {
            return Ok(dir.to_path_buf());
        }
    }
    bail!(
        "cannot find the repository root from the current directory or the ramp binary; pass --repo-root or --out"
    )
}

fn spec(listen: SocketAddr, ramp: &Path, version: &str) -> String {
    format!(
        r#"apiVersion: ramp/v1
kind: Service
metadata:
  name: {SERVICE}
spec:
  replicas: 2
  listen: {listen}
  template:
    command: {ramp}
    args: [demo-app, --listen, "127.0.0.1:{{port}}", --app-version, {version}]
    readiness:
      httpGet: {{path: /healthz}}
      period: 100ms
    stop:
      gracePeriod: 5s
  strategy:
    canary:
      steps:
        - setWeight: 50
        - pause: {{}}
"#,
        ramp = ramp.display()
    )
}

/// What the run measured.
#[derive(Debug)]
struct Measured {
    iterations: Vec<Iteration>,
    totals: Totals,
    /// Requests that failed inside the measurement windows.
    failed_in_windows: u64,
    setup: Value,
}

/// One abort.
#[derive(Debug)]
struct Iteration {
    /// Latest send instant of a canary-served request sent at or after t0, minus t0 (0 if none).
    abort_to_stable: Duration,
    /// The abort API call itself (request handed to the connection to whole answer read).
    api: Duration,
    /// Requests sent at or after t0: served by the canary / by the stable revision.
    canary_after_t0: u64,
    stable_after_t0: u64,
    /// Canary-served requests sent after the API had answered (should be none).
    canary_after_answer: u64,
    /// Requests sent while the abort call was out (t0 to its answer): how densely the load
    /// sampled the interval in which the swap happened.
    sent_during_call: u64,
    /// Requests out at t0 that the canary then answered (correctly: they were sent before).
    in_flight_canary_at_t0: u64,
    /// Failed requests in the window.
    failed: u64,
    /// Last canary answer received, relative to t0.
    last_canary_done: Option<Duration>,
    /// How long before the abort call the latest canary-answered request (answered by then)
    /// had been sent: shows the canary was really being served when the abort went out.
    canary_seen_before: Option<Duration>,
    /// The retry after this abort until the canary served again (none after the last abort).
    back_to_canary: Option<Duration>,
    /// Wall clock just before the abort call, to line up with the server's and the agent's
    /// logs (kept with --keep-tmp).
    abort_unix_us: u128,
}

async fn bench(args: &Args, env: &mut Env) -> anyhow::Result<Measured> {
    let step_limit = Duration::from_secs(args.step_timeout_s);
    let call_limit = Duration::from_secs(30);
    let setup_started = Instant::now();

    // 1. The server.
    let api_addr = SocketAddr::from(([127, 0, 0, 1], procs::free_port()?));
    log(format!(
        "starting {} server --listen {api_addr}",
        env.ramp.display()
    ));
    env.start_server(api_addr)?;
    let mut api = Api::new(api_addr);
    let deadline = Instant::now() + step_limit;
    loop {
        env.check_server()?;
        if let Ok(body) = api.get("/api/v1/health", Duration::from_secs(1)).await
            && body["status"] == "ok"
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the server did not answer /api/v1/health within {step_limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server_ready = setup_started.elapsed();

    // 2. v1, then a canary of v2 paused at 50%.
    let listen = SocketAddr::from(([127, 0, 0, 1], procs::free_port()?));
    let specs = env.dir.join("specs");
    std::fs::create_dir_all(&specs)?;
    log(format!(
        "applying v1 (2 instances of ramp demo-app behind {listen})"
    ));
    apply(&mut api, &specs, listen, &env.ramp, "v1", call_limit).await?;
    wait_status(&mut api, env, step_limit, "revision 1 stable", |s| {
        s["stableRevision"] == 1 && s["rollout"]["phase"] == "Completed"
    })
    .await?;
    let v1_ready = setup_started.elapsed();

    let timeout = Duration::from_millis(args.request_timeout_ms);
    let load = Load::start(
        listen,
        args.connections as usize,
        timeout,
        STABLE_ROUTE,
        CANARY_ROUTE,
    );
    let since = Instant::now();
    wait_load(&load, env, since, step_limit, false).await?;
    log(format!(
        "v1 serves; load running ({} connections). Applying v2 as a canary",
        args.connections
    ));
    apply(&mut api, &specs, listen, &env.ramp, "v2", call_limit).await?;
    let paused = wait_status(
        &mut api,
        env,
        step_limit,
        "canary paused at 50%",
        paused_at_50,
    )
    .await?;
    check_routes(&paused)?;
    wait_load(&load, env, Instant::now(), step_limit, true).await?;
    let canary_ready = setup_started.elapsed();
    log(format!(
        "canary at 50% and serving; measuring {} aborts",
        args.iterations
    ));

    // 3./4. Abort, watch, retry.
    let tail = Duration::from_millis(args.tail_ms);
    let settle = Duration::from_millis(args.settle_ms);
    let abort_path = format!("/api/v1/services/{SERVICE}/abort");
    let retry_path = format!("/api/v1/services/{SERVICE}/retry");
    let mut iterations = Vec::new();
    let mut failed_in_windows = 0;
    for i in 0..args.iterations {
        tokio::time::sleep(settle).await;
        env.check_server()?;
        // The API connection is made ready by this status call, so t0 pays no connect.
        let s = status(&mut api, call_limit).await?;
        if !paused_at_50(&s) {
            bail!(
                "before abort {}: the canary is not paused at 50%: {}",
                i + 1,
                s["rollout"]
            );
        }
        let before_abort = Instant::now();
        let canary_seen_before = load
            .last_canary_sent()
            .map(|at| before_abort.saturating_duration_since(at));
        load.open_window();
        let abort_unix_us = unix_us();
        let answer = api.post(&abort_path, &Value::Null, call_limit).await?;
        let t0 = answer.sent;
        if answer.body["rollout"]["phase"] != "Aborted" {
            load.close_window();
            bail!(
                "abort {} answered but the rollout is {}",
                i + 1,
                answer.body["rollout"]
            );
        }
        tokio::time::sleep(tail).await;
        let window = load.close_window();
        let mut it = measure(&window, t0, answer.answered, canary_seen_before);
        it.abort_unix_us = abort_unix_us;
        failed_in_windows += it.failed;
        if it.stable_after_t0 == 0 {
            bail!(
                "abort {}: no request sent after the abort was answered at all; the load stalled",
                i + 1
            );
        }
        if i + 1 < args.iterations {
            let retried = Instant::now();
            api.post(&retry_path, &Value::Null, call_limit).await?;
            wait_status(
                &mut api,
                env,
                step_limit,
                "canary paused at 50% again",
                paused_at_50,
            )
            .await?;
            wait_load(&load, env, retried, step_limit, true).await?;
            it.back_to_canary = Some(retried.elapsed());
        }
        log(format!(
            "abort {:>2}/{}: abort->stable {:>7.3} ms, API {:>7.3} ms, canary-served after t0: {}, failed in window: {}",
            i + 1,
            args.iterations,
            ms(it.abort_to_stable),
            ms(it.api),
            it.canary_after_t0,
            it.failed
        ));
        iterations.push(it);
    }

    // Stop the load before the server drains everything (those would be failures we caused).
    let totals = load.stop(timeout + Duration::from_secs(1)).await;
    Ok(Measured {
        iterations,
        totals,
        failed_in_windows,
        setup: json!({
            "server_ready_s": secs3(server_ready),
            "v1_stable_s": secs3(v1_ready),
            "canary_paused_s": secs3(canary_ready),
        }),
    })
}

async fn apply(
    api: &mut Api,
    specs: &Path,
    listen: SocketAddr,
    ramp: &Path,
    version: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let yaml = spec(listen, ramp, version);
    std::fs::write(specs.join(format!("{version}.yaml")), &yaml)?;
    let body = json!({ "spec": yaml, "baseDir": specs });
    let answer = api.post("/api/v1/services", &body, limit).await?;
    if answer.body["newRevision"] != true {
        bail!(
            "applying {version} did not make a new revision: {}",
            answer.body
        );
    }
    Ok(())
}

async fn status(api: &mut Api, limit: Duration) -> anyhow::Result<Value> {
    let body = api
        .get(&format!("/api/v1/services/{SERVICE}"), limit)
        .await?;
    Ok(body["status"].clone())
}

fn paused_at_50(s: &Value) -> bool {
    let r = &s["rollout"];
    r["phase"] == "Paused" && r["stepName"] == "pause" && r["weight"] == 50 && r["toRevision"] == 2
}

/// The router revisions must be the names the load tells apart.
fn check_routes(s: &Value) -> anyhow::Result<()> {
    let route_of = |revision: u64| {
        s["stacks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|st| st["revision"] == revision)
            .and_then(|st| st["route"].as_str())
            .map(str::to_string)
    };
    let (stable, canary) = (route_of(1), route_of(2));
    if stable.as_deref() != Some(STABLE_ROUTE) || canary.as_deref() != Some(CANARY_ROUTE) {
        bail!("unexpected router revisions: stable {stable:?}, canary {canary:?}");
    }
    Ok(())
}

async fn wait_status(
    api: &mut Api,
    env: &mut Env,
    limit: Duration,
    what: &str,
    until: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + limit;
    loop {
        env.check_server()?;
        let s = status(api, Duration::from_secs(10)).await?;
        if until(&s) {
            return Ok(s);
        }
        if Instant::now() > deadline {
            bail!("waited {limit:?} for {what}; the service is: {s}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Until the load has seen the stable revision (and, with `canary`, the canary) answer a
/// request sent after `since`.
async fn wait_load(
    load: &Load,
    env: &mut Env,
    since: Instant,
    limit: Duration,
    canary: bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        env.check_server()?;
        let stable_ok = load.last_stable_sent().is_some_and(|t| t > since);
        let canary_ok = !canary || load.last_canary_sent().is_some_and(|t| t > since);
        if stable_ok && canary_ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "waited {limit:?} for the load to see {}; so far: {:?}",
                if canary {
                    "both revisions"
                } else {
                    "the stable revision"
                },
                load.totals()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn measure(
    window: &[Sample],
    t0: Instant,
    answered: Instant,
    canary_seen_before: Option<Duration>,
) -> Iteration {
    let mut it = Iteration {
        abort_to_stable: Duration::ZERO,
        api: answered.saturating_duration_since(t0),
        canary_after_t0: 0,
        stable_after_t0: 0,
        canary_after_answer: 0,
        sent_during_call: 0,
        in_flight_canary_at_t0: 0,
        failed: 0,
        last_canary_done: None,
        canary_seen_before,
        back_to_canary: None,
        abort_unix_us: 0,
    };
    for s in window {
        if s.sent >= t0 && s.sent < answered {
            it.sent_during_call += 1;
        }
        match s.served {
            Served::Canary if s.sent >= t0 => {
                it.canary_after_t0 += 1;
                it.abort_to_stable = it.abort_to_stable.max(s.sent - t0);
                if s.sent >= answered {
                    it.canary_after_answer += 1;
                }
            }
            Served::Canary if s.done >= t0 => it.in_flight_canary_at_t0 += 1,
            Served::Stable if s.sent >= t0 => it.stable_after_t0 += 1,
            Served::Failed(_) => it.failed += 1,
            _ => {}
        }
        if s.served == Served::Canary && s.done >= t0 {
            let d = s.done - t0;
            it.last_canary_done = Some(it.last_canary_done.map_or(d, |x| x.max(d)));
        }
    }
    it
}

fn unix_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn secs3(d: Duration) -> f64 {
    round(d.as_secs_f64(), 3)
}

/// Nearest-rank percentile: the smallest value with at least `q` of the values at or below it.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn first_line_of(program: &Path, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}

fn report(
    args: &Args,
    ramp: &Path,
    root: Option<&Path>,
    m: &Measured,
    shutdown: &procs::Shutdown,
    wall: Duration,
    loadavg_start: &str,
) -> Value {
    let samples: Vec<f64> = m
        .iterations
        .iter()
        .map(|i| round(ms(i.abort_to_stable), 3))
        .collect();
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let mut api: Vec<f64> = m.iterations.iter().map(|i| ms(i.api)).collect();
    api.sort_by(f64::total_cmp);
    let p99 = percentile(&sorted, 0.99);
    let t = &m.totals;
    let goal_p99 = p99 < GOAL_P99_MS;
    let goal_failed = t.failed == 0;
    let commit = root
        .map(|r| {
            first_line_of(
                Path::new("git"),
                &["-C", &r.to_string_lossy(), "rev-parse", "--short", "HEAD"],
            )
        })
        .unwrap_or_else(|| "unknown".into());
    let details: Vec<Value> = m
        .iterations
        .iter()
        .enumerate()
        .map(|(n, i)| {
            json!({
                "iteration": n + 1,
                "abort_to_stable_ms": round(ms(i.abort_to_stable), 3),
                "abort_api_ms": round(ms(i.api), 3),
                "canary_after_t0": i.canary_after_t0,
                "stable_after_t0": i.stable_after_t0,
                "canary_after_api_answer": i.canary_after_answer,
                "sent_during_api_call": i.sent_during_call,
                "in_flight_canary_at_t0": i.in_flight_canary_at_t0,
                "last_canary_answer_ms": i.last_canary_done.map(|d| round(ms(d), 3)),
                "canary_seen_before_t0_ms": i.canary_seen_before.map(|d| round(ms(d), 3)),
                "failed": i.failed,
                "retry_to_canary_serving_ms": i.back_to_canary.map(|d| round(ms(d), 1)),
                "abort_unix_us": i.abort_unix_us as u64,
            })
        })
        .collect();
    json!({
        "benchmark": "rollback",
        "abort_to_stable_p50_ms": percentile(&sorted, 0.50),
        "abort_to_stable_p99_ms": p99,
        "abort_to_stable_max_ms": sorted.last().copied().unwrap_or(0.0),
        "abort_api_p50_ms": round(percentile(&api, 0.50), 3),
        "abort_api_p99_ms": round(percentile(&api, 0.99), 3),
        "failed_requests": t.failed,
        "total_requests": t.total,
        "iterations": m.iterations.len(),
        "connections": args.connections,
        "samples_ms": samples,
        "goal": {
            "abort_to_stable_p99_under_ms": GOAL_P99_MS,
            "p99_met": goal_p99,
            "zero_failed_met": goal_failed,
            "met": goal_p99 && goal_failed,
        },
        "requests": {
            "total": t.total,
            "stable": t.stable,
            "canary": t.canary,
            "other_revision": t.other,
            "failed": t.failed,
            "failed_in_abort_windows": m.failed_in_windows,
            "failed_by_kind": {
                "connect": t.failed_connect,
                "timeout": t.failed_timeout,
                "io": t.failed_io,
                "status_5xx": t.failed_5xx,
            },
            "reconnects": t.reconnects,
        },
        "iterations_detail": details,
        "setup": m.setup,
        "shutdown": {
            "server_exit_s": shutdown.server_exit.map(secs3),
            "leftover_processes": shutdown.leftovers.len(),
        },
        "wall_time_s": round(wall.as_secs_f64(), 1),
        "settings": {
            "iterations": args.iterations,
            "connections": args.connections,
            "load": "closed loop, GET / back to back on each keep-alive connection",
            "tail_ms": args.tail_ms,
            "settle_ms": args.settle_ms,
            "request_timeout_ms": args.request_timeout_ms,
            "threads": args.threads,
            "replicas": 2,
            "readiness": "httpGet /healthz, period 100ms",
            "strategy": "canary, stickiness none, steps [setWeight: 50, pause: {}]",
            "percentiles": "nearest rank over iterations (p99 of fewer than 100 iterations is the max)",
            "cpu_count": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default(),
            "loadavg_start": loadavg_start,
            "loadavg_end": loadavg(),
            "git_commit": commit,
            "ramp_bin": ramp.display().to_string(),
            "ramp_version": first_line_of(ramp, &["--version"]),
        },
    })
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let s = &r["settings"];
    println!(
        "\nRollback benchmark: {} aborts of a 50% canary under load ({} keep-alive connections, closed loop), {} CPUs",
        r["iterations"], r["connections"], s["cpu_count"]
    );
    let header = format!("{:<34} {:>9} {:>9} {:>9}", "", "p50 ms", "p99 ms", "max ms");
    println!("{header}");
    println!("{}", "-".repeat(header.len()));
    let api_max = r["iterations_detail"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| f(&i["abort_api_ms"]))
        .fold(0.0, f64::max);
    println!(
        "{:<34} {:>9.3} {:>9.3} {:>9.3}",
        "abort call -> all new on stable",
        f(&r["abort_to_stable_p50_ms"]),
        f(&r["abort_to_stable_p99_ms"]),
        f(&r["abort_to_stable_max_ms"])
    );
    println!(
        "{:<34} {:>9.3} {:>9.3} {:>9.3}",
        "abort API call (request->answer)",
        f(&r["abort_api_p50_ms"]),
        f(&r["abort_api_p99_ms"]),
        api_max
    );
    let q = &r["requests"];
    println!(
        "requests: {} total ({} stable, {} canary), {} failed ({} inside abort windows)",
        q["total"], q["stable"], q["canary"], q["failed"], q["failed_in_abort_windows"]
    );
    let samples: Vec<String> = r["samples_ms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| format!("{:.2}", f(v)))
        .collect();
    println!("per abort (ms): {}", samples.join(" "));
    println!(
        "(p99 is nearest-rank over {} aborts{})",
        r["iterations"],
        if r["iterations"].as_u64().unwrap_or(0) < 100 {
            ", i.e. the max"
        } else {
            ""
        }
    );
    let mark = |ok: bool| if ok { "met" } else { "MISSED" };
    let g = &r["goal"];
    println!(
        "goal: abort->stable p99 < {GOAL_P99_MS} ms: {} ({:.3} ms); zero failed requests: {} ({})",
        mark(g["p99_met"] == true),
        f(&r["abort_to_stable_p99_ms"]),
        mark(g["zero_failed_met"] == true),
        r["failed_requests"]
    );
    println!("wall time: {} s", r["wall_time_s"]);
}
