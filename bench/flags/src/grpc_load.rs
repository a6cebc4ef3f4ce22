//! The gRPC load generator: this program re-run as `grpc-load` (a hidden subcommand), so it
//! runs in a process of its own on a runtime of its own and the server's and the loader's
//! threads are split explicitly, as with wrk in the OFREP phase.
//!
//! It opens a few HTTP/2 connections (channels) and keeps a fixed number of requests in flight
//! on each (gRPC multiplexes calls over one connection, unlike HTTP/1). Every in-flight slot is
//! a task that sends `flagd.evaluation.v2` resolves back to back, walking the workload's
//! contexts with the three flag classes alternating request by request, each slot starting
//! at a different place. Every completion inside the timed window is counted and its latency
//! recorded in a histogram per class; the report is one JSON line on stdout.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost_types::Struct;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::grpc_client::{self, EvaluationClient};
use crate::stats::{LatencyHistogram, LatencySummary};
use crate::workload::{FlagClass, PerClass, contexts_of};

/// The hidden subcommand's name.
pub(crate) const SUBCOMMAND: &str = "grpc-load";

/// How the load is shaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LoadShape {
    /// HTTP/2 connections.
    pub(crate) channels: usize,
    /// Requests kept in flight on each connection.
    pub(crate) in_flight_per_channel: usize,
    /// The loader's runtime worker threads.
    pub(crate) threads: usize,
    /// Untimed load before the timed window.
    pub(crate) warmup: Duration,
    /// The timed window.
    pub(crate) duration: Duration,
}

/// The arguments of the hidden subcommand.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LoaderArgs {
    /// The gRPC evaluation server.
    #[arg(long)]
    address: SocketAddr,
    /// The workload file whose contexts are sent.
    #[arg(long)]
    workload: PathBuf,
    #[arg(long)]
    channels: usize,
    #[arg(long)]
    in_flight_per_channel: usize,
    #[arg(long)]
    threads: usize,
    #[arg(long)]
    warmup_secs: f64,
    #[arg(long)]
    duration_secs: f64,
}

/// What one class (or all of them) got in the timed window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct GrpcFigures {
    /// Completed requests per second.
    pub(crate) rps: f64,
    #[serde(flatten)]
    pub(crate) latency: LatencySummary,
}

impl GrpcFigures {
    fn new(histogram: &LatencyHistogram, window: Duration) -> GrpcFigures {
        GrpcFigures {
            rps: histogram.count() as f64 / window.as_secs_f64().max(f64::MIN_POSITIVE),
            latency: histogram.summary(),
        }
    }
}

/// The loader's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GrpcLoadReport {
    /// All three classes together: the published figure.
    pub(crate) mixed: GrpcFigures,
    /// The same window's requests by class.
    pub(crate) per_class: PerClass<GrpcFigures>,
    /// Calls answered with a status other than OK, in the whole run (warm-up included).
    pub(crate) failures: u64,
    pub(crate) first_failure: Option<String>,
}

/// Runs the loader as a child process of this program and reads its report.
pub(crate) fn run_process(
    shape: &LoadShape,
    address: SocketAddr,
    workload: &Path,
) -> Result<GrpcLoadReport, String> {
    let program = std::env::current_exe()
        .map_err(|error| format!("cannot find this program to run the gRPC loader: {error}"))?;
    let output = Command::new(&program)
        .arg(SUBCOMMAND)
        .arg(format!("--address={address}"))
        .arg("--workload")
        .arg(workload)
        .arg(format!("--channels={}", shape.channels))
        .arg(format!(
            "--in-flight-per-channel={}",
            shape.in_flight_per_channel
        ))
        .arg(format!("--threads={}", shape.threads))
        .arg(format!("--warmup-secs={}", shape.warmup.as_secs_f64()))
        .arg(format!("--duration-secs={}", shape.duration.as_secs_f64()))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot start the gRPC loader: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the gRPC loader failed ({}): {}",
            output.status,
            stdout.trim()
        ));
    }
    parse_report(&stdout)
}

/// The report in the loader's output: its last line that is a JSON object.
pub(crate) fn parse_report(stdout: &str) -> Result<GrpcLoadReport, String> {
    let line = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('{'))
        .ok_or_else(|| format!("the gRPC loader printed no report: {stdout}"))?;
    serde_json::from_str(line)
        .map_err(|error| format!("unreadable gRPC loader report {line:?}: {error}"))
}

/// The hidden subcommand: loads the server and prints the report.
pub(crate) fn run_subcommand(args: &LoaderArgs) -> Result<(), String> {
    let text = fs::read_to_string(&args.workload)
        .map_err(|error| format!("cannot read {}: {error}", args.workload.display()))?;
    let document: Value = serde_json::from_str(&text)
        .map_err(|error| format!("{} is not JSON: {error}", args.workload.display()))?;
    let contexts = contexts_of(&document)?;
    let seconds = |value: f64, flag: &str| {
        Duration::try_from_secs_f64(value)
            .map_err(|_| format!("{flag} must be a non-negative number, got {value}"))
    };
    let shape = LoadShape {
        channels: args.channels,
        in_flight_per_channel: args.in_flight_per_channel,
        threads: args.threads,
        warmup: seconds(args.warmup_secs, "--warmup-secs")?,
        duration: seconds(args.duration_secs, "--duration-secs")?,
    };
    let report = load(&shape, args.address, &contexts)?;
    let line = serde_json::to_string(&report)
        .map_err(|error| format!("cannot serialise the gRPC load report: {error}"))?;
    println!("{line}");
    Ok(())
}

/// When timing counts: completions from `timed_start` until `end`.
#[derive(Debug, Clone, Copy)]
struct Window {
    timed_start: Instant,
    end: Instant,
}

/// What one in-flight slot measured.
#[derive(Debug, Default)]
struct Tally {
    latencies: PerClass<LatencyHistogram>,
    failures: u64,
    first_failure: Option<String>,
}

/// Loads `address` with `shape` on a runtime of its own, cycling through `contexts`.
pub(crate) fn load(
    shape: &LoadShape,
    address: SocketAddr,
    contexts: &[Map<String, Value>],
) -> Result<GrpcLoadReport, String> {
    if shape.channels == 0 || shape.in_flight_per_channel == 0 || contexts.is_empty() {
        return Err("the gRPC load needs a channel, a request in flight and a context".to_owned());
    }
    if shape.duration.is_zero() {
        return Err("the gRPC load needs a timed window".to_owned());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(shape.threads.max(1))
        .thread_name("grpc-loader")
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the loader runtime: {error}"))?;
    let requests: Arc<[(FlagClass, Struct)]> = contexts
        .iter()
        .flat_map(|context| {
            let context = grpc_client::context_struct(context);
            FlagClass::ALL.map(|class| (class, context.clone()))
        })
        .collect();
    runtime.block_on(async {
        let mut channels = Vec::with_capacity(shape.channels);
        for _ in 0..shape.channels {
            channels.push(grpc_client::connect(address).await?);
        }
        let slots = shape.channels * shape.in_flight_per_channel;
        let timed_start = Instant::now() + shape.warmup;
        let window = Window {
            timed_start,
            end: timed_start + shape.duration,
        };
        let mut tasks = Vec::with_capacity(slots);
        for slot in 0..slots {
            let client = EvaluationClient::new(channels[slot % shape.channels].clone());
            let first = slot * requests.len() / slots;
            tasks.push(tokio::spawn(drive(
                client,
                Arc::clone(&requests),
                first,
                window,
            )));
        }
        let mut total = Tally::default();
        for task in tasks {
            let tally = task
                .await
                .map_err(|error| format!("a gRPC load task failed: {error}"))?;
            for class in FlagClass::ALL {
                total
                    .latencies
                    .get_mut(class)
                    .merge(tally.latencies.get(class));
            }
            total.failures += tally.failures;
            total.first_failure = total.first_failure.or(tally.first_failure);
        }
        Ok(report(&total, shape.duration))
    })
}

/// One in-flight slot: back-to-back resolves from `first` on until the window ends.
async fn drive(
    mut client: EvaluationClient,
    requests: Arc<[(FlagClass, Struct)]>,
    first: usize,
    window: Window,
) -> Tally {
    let mut tally = Tally::default();
    for (class, context) in requests.iter().cycle().skip(first) {
        let started = Instant::now();
        if started >= window.end {
            break;
        }
        let outcome = grpc_client::resolve_variant(&mut client, *class, context.clone()).await;
        let finished = Instant::now();
        match outcome {
            Ok(_) if (window.timed_start..=window.end).contains(&finished) => {
                tally.latencies.get_mut(*class).record(finished - started);
            }
            Ok(_) => {}
            Err(status) => {
                tally.failures += 1;
                tally.first_failure.get_or_insert_with(|| {
                    format!(
                        "{} answered {:?}: {}",
                        class.flag_key(),
                        status.code(),
                        status.message()
                    )
                });
            }
        }
    }
    tally
}

fn report(total: &Tally, window: Duration) -> GrpcLoadReport {
    let mut mixed = LatencyHistogram::default();
    for class in FlagClass::ALL {
        mixed.merge(total.latencies.get(class));
    }
    GrpcLoadReport {
        mixed: GrpcFigures::new(&mixed, window),
        per_class: PerClass::from_fn(|class| GrpcFigures::new(total.latencies.get(class), window)),
        failures: total.failures,
        first_failure: total.first_failure.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc_server::{GrpcServers, static_source};
    use crate::workload::generate_contexts;

    #[test]
    fn a_short_load_counts_every_class_without_failures() {
        let source = static_source(include_str!("../flags.json")).unwrap();
        let servers = GrpcServers::start(&source, 1, false).unwrap();
        let shape = LoadShape {
            channels: 2,
            in_flight_per_channel: 3,
            threads: 1,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(300),
        };
        let report = load(
            &shape,
            servers.evaluation_address(),
            &generate_contexts(20, 5),
        )
        .unwrap();
        assert_eq!(report.failures, 0, "{:?}", report.first_failure);
        let per_class: u64 = FlagClass::ALL
            .iter()
            .map(|class| report.per_class.get(*class).latency.samples)
            .sum();
        assert_eq!(report.mixed.latency.samples, per_class);
        for class in FlagClass::ALL {
            assert!(report.per_class.get(class).latency.samples > 0, "{class:?}");
        }
        let expected_rps = report.mixed.latency.samples as f64 / 0.3;
        assert!((report.mixed.rps - expected_rps).abs() < 1e-6);
        assert!(report.mixed.latency.p50_ms <= report.mixed.latency.p99_ms);
    }

    #[test]
    fn a_server_that_refuses_every_call_shows_as_failures() {
        let servers =
            GrpcServers::start(&static_source(r#"{"flags":{}}"#).unwrap(), 1, false).unwrap();
        let shape = LoadShape {
            channels: 1,
            in_flight_per_channel: 2,
            threads: 1,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(100),
        };
        let report = load(
            &shape,
            servers.evaluation_address(),
            &generate_contexts(3, 1),
        )
        .unwrap();
        assert!(report.failures > 0);
        assert_eq!(report.mixed.latency.samples, 0);
        assert!(report.first_failure.unwrap().contains("NotFound"));
    }

    #[test]
    fn the_report_survives_the_trip_through_stdout() {
        let mut histogram = LatencyHistogram::default();
        histogram.record(Duration::from_micros(700));
        let figures = GrpcFigures::new(&histogram, Duration::from_secs(1));
        let report = GrpcLoadReport {
            mixed: figures,
            per_class: PerClass::from_fn(|_| figures),
            failures: 1,
            first_failure: Some("x".to_owned()),
        };
        let stdout = format!("noise\n{}\n", serde_json::to_string(&report).unwrap());
        assert_eq!(parse_report(&stdout).unwrap(), report);
        assert!(parse_report("nothing").is_err());
    }
}
