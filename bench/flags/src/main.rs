//! Flag evaluation benchmark: in-process evaluations per second of Ramp's flag engine
//! (`ramp-flags`) against the flagd reference evaluators, `@openfeature/flagd-core` (node) and
//! `openfeature-flagd-core` (Python), on the same flags and contexts in the same run; then
//! Ramp's OFREP and gRPC servers under load, and the time a flag-file edit takes to reach gRPC
//! subscribers.
//!
//! Method: one flag file (`bench/flags/flags.json`) holds a static, a rule-based and a
//! fractional flag. A seeded population of users is written to a workload file that all three
//! evaluators read. In every round each evaluator (in rotating order, so none always runs on a
//! cooler or hotter machine) warms up, then cycles through the contexts for a fixed time per
//! class; the published figure is the median over rounds. Each evaluator also reports the
//! variant it served to every context, and Ramp's are compared with both references: a speed
//! figure only counts if the answers agree. Results go to `target/bench-results/flags.json`.
//!
//! What is timed per evaluation, on each side, is the call an in-process user makes and the
//! same information back (value, variant, reason, metadata):
//! - Ramp: `FlagStore::resolve(key, context, type, clock)`, which returns a `Resolution`
//!   borrowing the variant, value and metadata from the store snapshot. The system clock is
//!   handed over, not read: it is read only when a rule reads `$flagd` (none of these does).
//! - JavaScript: `FlagdCore.resolveBooleanEvaluation` / `resolveStringEvaluation`, which return a
//!   fresh object with value, variant, reason and flag metadata (and read `Date.now()` for every
//!   targeted flag).
//! - Python: `FlagdCore.resolve_boolean_value` / `resolve_string_value`.
//!
//! OFREP phase: Ramp's OFREP server runs in this process on 127.0.0.1 (port 0) with the same
//! flag file, on a runtime of its own; `wrk` (a separate process, `bench/flags/wrk/ofrep.lua`)
//! keeps 64 connections busy with `POST /ofrep/v1/evaluate/flags/{key}`, each carrying one
//! workload context, the three classes alternating request by request: 1 s of warm-up, then
//! 5 s timed (requests per second and latency percentiles), then a shorter run per class.
//!
//! gRPC phase: Ramp's `flagd.evaluation` server runs in this process on 127.0.0.1 (port 0)
//! with the same flag file, on a runtime of its own (half the CPUs); the load comes from this
//! program re-run as a hidden `grpc-load` subcommand, a process with a runtime of its own (the
//! other half). It opens 4 HTTP/2 connections and keeps 16 calls in flight on each (64 in
//! all, as the OFREP phase's 64 connections; gRPC multiplexes calls over a connection),
//! sending `flagd.evaluation.v2` `ResolveBoolean` (static flag) and `ResolveString` (rule and
//! fractional) with workload contexts as protobuf `Struct`s, the classes alternating: 1 s of
//! warm-up, then 5 s in which every completion counts towards requests per second and its
//! latency goes into an HDR-style histogram (fixed memory, percentiles within 1/128), per class
//! and together.
//!
//! Propagation phase: a temporary flag file (the benchmark's flags plus a probe flag) is served
//! by `FileWatcher` into a `FlagSource` behind the gRPC evaluation and sync servers, with one
//! `EventStream` (v2) and one `SyncFlags` subscriber connected. 200 times, the file is replaced
//! atomically (a new file renamed over it) with the probe flag's default variant changed; the
//! clock is read just before the rename and by each subscriber when the change arrives (an
//! `EventStream` `configuration_change` naming the probe flag; a `SyncFlags` configuration with
//! the new default). The next edit follows 20 ms after both have it, or after 2 s (a miss for
//! whoever did not). The published p50 and p99 are the larger of the two subscribers'.

mod compare;
mod driver;
mod engine;
mod grpc;
mod grpc_client;
mod grpc_load;
mod grpc_server;
mod ofrep;
mod ofrep_load;
mod ofrep_server;
mod probe;
mod probe_flag;
mod propagation;
mod report;
mod rng;
mod stats;
mod workload;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{Map, Value, json};

use crate::compare::{Mismatches, compare_variants};
use crate::driver::{Driver, DriverReport, RunSpec};
use crate::engine::RampEngine;
use crate::grpc::{GrpcPlan, GrpcResults};
use crate::grpc_load::{LoadShape, LoaderArgs};
use crate::ofrep::{OfrepPlan, OfrepResults};
use crate::ofrep_load::LoadSpec;
use crate::propagation::{PropagationPlan, PropagationResults};
use crate::report::{EvaluatorSummary, Results, mismatches_json};
use crate::workload::{FlagClass, PerClass, generate_contexts, workload_document};

/// The workspace root, for default paths that work from any current directory.
const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[derive(Debug, Parser)]
#[command(about = "In-process flag evaluation speed: Ramp vs the flagd reference evaluators")]
struct Args {
    /// The flag file all evaluators load.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/flags.json"))]
    flags: PathBuf,
    /// Number of user contexts.
    #[arg(long, default_value_t = 1_000)]
    contexts: usize,
    /// Seed of the user population.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Timed seconds per evaluator, class and round.
    #[arg(long, default_value_t = 2.0)]
    duration_secs: f64,
    /// Untimed warm-up seconds per evaluator and class before each round's timing.
    #[arg(long, default_value_t = 0.5)]
    warmup_secs: f64,
    /// Rounds; the published figure is the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The node executable.
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// The JavaScript driver.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/js/bench.mjs"))]
    js_driver: PathBuf,
    /// The node_modules directory holding @openfeature/flagd-core.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench-flags-js/node_modules"))]
    js_modules: PathBuf,
    /// The Python interpreter with openfeature-flagd-core installed.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench-flags-venv/bin/python"))]
    python: PathBuf,
    /// The Python driver.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/py/bench.py"))]
    py_driver: PathBuf,
    /// Leave out the JavaScript reference.
    #[arg(long)]
    skip_js: bool,
    /// Leave out the Python reference.
    #[arg(long)]
    skip_python: bool,
    /// Print a per-step cost breakdown of Ramp's evaluations instead of benchmarking.
    #[arg(long)]
    breakdown: bool,
    /// Leave out the OFREP load phase.
    #[arg(long)]
    skip_ofrep: bool,
    /// The wrk executable (Debian package `wrk`).
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
    /// The wrk script that sends OFREP requests.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/wrk/ofrep.lua"))]
    wrk_script: PathBuf,
    /// Open keep-alive connections during the OFREP phase.
    #[arg(long, default_value_t = 64)]
    ofrep_connections: u32,
    /// wrk threads (default: half the CPUs, at least one).
    #[arg(long)]
    ofrep_wrk_threads: Option<u32>,
    /// OFREP server runtime threads (default: half the CPUs, at least one; the load generator
    /// runs on the same machine and needs the rest).
    #[arg(long)]
    ofrep_server_threads: Option<usize>,
    /// Untimed seconds of OFREP load before the timed run (whole seconds).
    #[arg(long, default_value_t = 1)]
    ofrep_warmup_secs: u64,
    /// Timed seconds of mixed OFREP load (whole seconds).
    #[arg(long, default_value_t = 5)]
    ofrep_duration_secs: u64,
    /// Timed seconds of OFREP load per flag class; 0 leaves the per-class runs out.
    #[arg(long, default_value_t = 2)]
    ofrep_class_secs: u64,
    /// Leave out the gRPC load phase.
    #[arg(long)]
    skip_grpc: bool,
    /// HTTP/2 connections the gRPC loader opens.
    #[arg(long, default_value_t = 4)]
    grpc_channels: usize,
    /// gRPC calls kept in flight on each connection.
    #[arg(long, default_value_t = 16)]
    grpc_in_flight_per_channel: usize,
    /// gRPC loader runtime threads (default: half the CPUs, at least one).
    #[arg(long)]
    grpc_loader_threads: Option<usize>,
    /// gRPC server runtime threads (default: half the CPUs, at least one).
    #[arg(long)]
    grpc_server_threads: Option<usize>,
    /// Untimed seconds of gRPC load before the timed window.
    #[arg(long, default_value_t = 1.0)]
    grpc_warmup_secs: f64,
    /// Timed seconds of gRPC load.
    #[arg(long, default_value_t = 5.0)]
    grpc_duration_secs: f64,
    /// Leave out the propagation phase.
    #[arg(long)]
    skip_propagation: bool,
    /// Flag-file edits in the propagation phase.
    #[arg(long, default_value_t = 200)]
    propagation_edits: usize,
    /// Pause (milliseconds) after both subscribers saw an edit, before the next one.
    #[arg(long, default_value_t = 20)]
    propagation_spacing_ms: u64,
    /// Milliseconds after which an edit a subscriber has not seen counts as missed.
    #[arg(long, default_value_t = 2_000)]
    propagation_timeout_ms: u64,
    /// Where the shared workload (flag classes and contexts) is written.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench-flags/workload.json"))]
    workload: PathBuf,
    /// The results file.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench-results/flags.json"))]
    out: PathBuf,
    #[command(subcommand)]
    internal: Option<Internal>,
}

/// Parts of the benchmark run as processes of their own; not for direct use.
#[derive(Debug, Subcommand)]
enum Internal {
    /// Loads a gRPC evaluation server and prints the figures as one JSON line.
    #[command(name = grpc_load::SUBCOMMAND, hide = true)]
    GrpcLoad(LoaderArgs),
}

/// One evaluator taking part in a round.
#[derive(Debug, Clone)]
enum Participant {
    Ramp,
    Reference(Driver),
}

impl Participant {
    fn name(&self) -> &'static str {
        match self {
            Participant::Ramp => "rust",
            Participant::Reference(driver) => driver.name,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Internal::GrpcLoad(loader)) = &args.internal {
        return match grpc_load::run_subcommand(loader) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("[bench] gRPC loader ERROR: {error}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("[bench] FAILED: Ramp disagrees with the JavaScript reference (see above)");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("[bench] ERROR: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark; `Ok(false)` when results were written but Ramp's variants disagree with
/// the JavaScript reference.
fn run(args: &Args) -> Result<bool, String> {
    let started = Instant::now();
    let duration = seconds(args.duration_secs, "--duration-secs")?;
    let warmup = seconds(args.warmup_secs, "--warmup-secs")?;
    if args.rounds == 0 || args.contexts == 0 {
        return Err("--rounds and --contexts must be at least 1".to_owned());
    }
    let flag_text = read(&args.flags)?;
    let engine = RampEngine::load(&flag_text)?;
    let contexts = generate_contexts(args.contexts, args.seed);
    if args.breakdown {
        println!(
            "{}",
            probe::render(&probe::breakdown(&engine, &contexts, duration))
        );
        return Ok(true);
    }
    write_json(&args.workload, &workload_document(&contexts))?;

    let participants = participants(args);
    let spec = RunSpec {
        flags_path: args.flags.clone(),
        workload_path: args.workload.clone(),
        duration,
        warmup,
    };
    let mut ramp_rounds = Vec::new();
    let mut reports: Vec<(&'static str, Vec<DriverReport>)> = Vec::new();
    let mut orders = Vec::new();
    for round in 0..args.rounds {
        let mut order = participants.clone();
        order.rotate_left(round % participants.len());
        orders.push(order.iter().map(Participant::name).collect::<Vec<_>>());
        for participant in &order {
            eprintln!(
                "[bench] round {}/{}: {}",
                round + 1,
                args.rounds,
                participant.name()
            );
            match participant {
                Participant::Ramp => {
                    engine.measure(&contexts, warmup);
                    ramp_rounds.push(engine.measure(&contexts, duration));
                }
                Participant::Reference(driver) => {
                    let report = driver.run(&spec)?;
                    match reports.iter_mut().find(|(name, _)| *name == driver.name) {
                        Some((_, list)) => list.push(report),
                        None => reports.push((driver.name, vec![report])),
                    }
                }
            }
        }
    }

    let ofrep = if args.skip_ofrep {
        None
    } else {
        Some(ofrep::run(
            &ofrep_plan(args),
            &flag_text,
            &engine,
            &contexts,
        )?)
    };

    let grpc = if args.skip_grpc {
        None
    } else {
        Some(grpc::run(
            &grpc_plan(args)?,
            &flag_text,
            &engine,
            &contexts,
        )?)
    };
    let propagation = if args.skip_propagation {
        None
    } else {
        Some(propagation::run(&propagation_plan(args), &flag_text)?)
    };

    let ramp_variants = PerClass::from_fn(|class| engine.variants(class, &contexts));
    let rust = EvaluatorSummary::new(
        "ramp-flags".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
        "rust (release build)".to_owned(),
        ramp_rounds,
    );
    let summaries: Vec<(&str, EvaluatorSummary, &DriverReport)> = reports
        .iter()
        .filter_map(|(name, list)| {
            let first = list.first()?;
            let rounds = list.iter().map(DriverReport::rates).collect();
            let summary = EvaluatorSummary::new(
                first.evaluator.clone(),
                first.version.clone(),
                first.runtime.clone(),
                rounds,
            );
            Some((*name, summary, first))
        })
        .collect();
    let summary_of = |wanted: &str| {
        summaries
            .iter()
            .find(|(name, _, _)| *name == wanted)
            .map(|(_, summary, _)| summary)
    };

    let mut mismatches = Map::new();
    let mut notes = vec![
        format!(
            "Each eps figure is the median of {} rounds; per round every evaluator warms up for \
             {}s and is then timed for {}s per flag class, evaluators in rotating order.",
            args.rounds, args.warmup_secs, args.duration_secs
        ),
        "Calls timed: Ramp FlagStore::resolve (typed; value, variant, reason and metadata \
         borrowed from the snapshot; the clock is handed over and read only by rules that read \
         $flagd); JS FlagdCore.resolveBooleanEvaluation / resolveStringEvaluation; Python \
         FlagdCore.resolve_boolean_value / resolve_string_value."
            .to_owned(),
    ];
    if let Some(ofrep) = &ofrep {
        notes.push(ofrep_note(ofrep));
    }
    if let Some(grpc) = &grpc {
        notes.push(grpc_note(grpc));
    }
    if let Some(propagation) = &propagation {
        notes.push(propagation_note(propagation));
    }
    let mut agrees_with_js = true;
    for (name, _, report) in &summaries {
        let per_class = PerClass::from_fn(|class| {
            compare_variants(
                &contexts,
                ramp_variants.get(class),
                report.variants.get(class),
            )
        });
        print_mismatches(name, &per_class);
        let mut entry = mismatches_json(&per_class);
        if *name == "js" {
            agrees_with_js = FlagClass::ALL
                .iter()
                .all(|class| per_class.get(*class).is_clean());
        }
        if *name == "python" && !per_class.fractional.is_clean() {
            let cbor = cbor_fractional_comparison(&flag_text, &contexts, report)?;
            notes.push(format!(
                "openfeature-flagd-core (Python) buckets fractional over the CBOR encoding of \
                 [flagKey, targetingKey] (flagd's v3), not the UTF-8 of flagKey+targetingKey (v2, \
                 what flagd and the JS evaluator use): it differs from Ramp's v2 result on {} of \
                 {} contexts and from Ramp's v3 option on {} of {}.",
                per_class.fractional.count,
                per_class.fractional.compared,
                cbor.count,
                cbor.compared
            ));
            entry.insert("fractional_vs_ramp_cbor_v3".to_owned(), json!(cbor));
        }
        mismatches.insert((*name).to_owned(), Value::Object(entry));
    }

    let params = json!({
        "contexts": args.contexts,
        "seed": args.seed,
        "duration_secs": args.duration_secs,
        "warmup_secs": args.warmup_secs,
        "rounds": args.rounds,
        "round_orders": orders,
        "flag_file": display_relative(&args.flags),
        "flags": PerClass::from_fn(FlagClass::flag_key),
        "available_cpus": std::thread::available_parallelism().map_or(0, usize::from),
        "wall_seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    let results = Results {
        params,
        rust: &rust,
        js: summary_of("js"),
        python: summary_of("python"),
        mismatches,
        ofrep: ofrep.as_ref(),
        grpc: grpc.as_ref(),
        propagation: propagation.as_ref(),
        notes,
    };
    write_json(&args.out, &results.to_json())?;
    println!("{}", results.table());
    eprintln!(
        "[bench] wrote {} in {:.1}s",
        display_relative(&args.out),
        started.elapsed().as_secs_f64()
    );
    Ok(agrees_with_js)
}

/// Half the machine's CPUs (at least one): what a server and its load generator each get.
fn half_the_cpus() -> usize {
    (std::thread::available_parallelism().map_or(1, usize::from) / 2).max(1)
}

fn ofrep_plan(args: &Args) -> OfrepPlan {
    // Server and load generator share the machine: each gets half of it unless told otherwise.
    let half = half_the_cpus();
    OfrepPlan {
        load: LoadSpec {
            wrk: args.wrk.clone(),
            script: args.wrk_script.clone(),
            connections: args.ofrep_connections,
            threads: args
                .ofrep_wrk_threads
                .unwrap_or(u32::try_from(half).unwrap_or(1)),
        },
        server_threads: args.ofrep_server_threads.unwrap_or(half),
        warmup: Duration::from_secs(args.ofrep_warmup_secs),
        duration: Duration::from_secs(args.ofrep_duration_secs),
        class_duration: Duration::from_secs(args.ofrep_class_secs),
        work_dir: args
            .workload
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    }
}

fn grpc_plan(args: &Args) -> Result<GrpcPlan, String> {
    let half = half_the_cpus();
    Ok(GrpcPlan {
        load: LoadShape {
            channels: args.grpc_channels,
            in_flight_per_channel: args.grpc_in_flight_per_channel,
            threads: args.grpc_loader_threads.unwrap_or(half),
            warmup: seconds(args.grpc_warmup_secs, "--grpc-warmup-secs")?,
            duration: seconds(args.grpc_duration_secs, "--grpc-duration-secs")?,
        },
        server_threads: args.grpc_server_threads.unwrap_or(half),
        workload: args.workload.clone(),
    })
}

fn propagation_plan(args: &Args) -> PropagationPlan {
    PropagationPlan {
        edits: args.propagation_edits,
        spacing: Duration::from_millis(args.propagation_spacing_ms),
        timeout: Duration::from_millis(args.propagation_timeout_ms),
        watch_interval: ramp_flagd::WATCH_INTERVAL,
        server_threads: half_the_cpus(),
        work_dir: args
            .workload
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    }
}

fn ofrep_note(ofrep: &OfrepResults) -> String {
    format!(
        "OFREP: Ramp's server runs in this process on 127.0.0.1 (server runtime threads: {}) and \
         wrk loads it (wrk threads: {}; {} keep-alive connections; bench/flags/wrk/ofrep.lua) \
         with POST /ofrep/v1/evaluate/flags/{{key}} carrying workload contexts, the three \
         classes alternating; {}s warm-up, then {}s timed. ofrep_rps and ofrep_p99_ms are that \
         run's requests per second and 99th-percentile latency as wrk measures them; both \
         processes share the machine's CPUs.",
        ofrep.server_threads,
        ofrep.wrk_threads,
        ofrep.connections,
        ofrep.warmup_secs,
        ofrep.duration_secs
    )
}

fn grpc_note(grpc: &GrpcResults) -> String {
    format!(
        "gRPC: Ramp's flagd.evaluation server runs in this process on 127.0.0.1 (server runtime \
         threads: {}); this program re-run as a separate process (grpc-load, loader runtime \
         threads: {}) opens {} HTTP/2 connections with {} calls in flight on each ({} in all) \
         and sends flagd.evaluation.v2 ResolveBoolean / ResolveString carrying workload \
         contexts as protobuf Structs, the three classes alternating; {}s warm-up, then {}s \
         timed. grpc_rps counts completions in the timed window; grpc_p99_ms is their \
         99th-percentile latency from an HDR-style histogram (within 1/128); per_class splits \
         the same window by class.",
        grpc.server_threads,
        grpc.loader_threads,
        grpc.channels,
        grpc.in_flight_per_channel,
        grpc.concurrency(),
        grpc.warmup_secs,
        grpc.duration_secs
    )
}

fn propagation_note(propagation: &PropagationResults) -> String {
    format!(
        "Propagation: a temporary flag file (the benchmark's flags plus a probe flag) is served \
         by FileWatcher, run with interval {} ms (WATCH_INTERVAL, as `ramp flags serve` runs \
         it), into a FlagSource behind the gRPC evaluation and sync servers; one EventStream \
         (v2) and one SyncFlags subscriber are connected. {} times the file is replaced by \
         renaming a new file over it, the probe flag's default variant changed; latency runs \
         from just before the rename until the subscriber receives the change (a \
         configuration_change naming the probe flag; a configuration whose probe flag has the \
         new default). Edits are {} ms apart after both notices, or after {} ms (a miss for \
         whoever had not seen it). propagation_p99_ms and propagation_p50_ms are the larger of \
         the two subscribers' exact percentiles.",
        propagation.watch_interval_ms,
        propagation.edits,
        propagation.spacing_ms,
        propagation.timeout_ms
    )
}

fn participants(args: &Args) -> Vec<Participant> {
    let mut participants = vec![Participant::Ramp];
    if !args.skip_js {
        participants.push(Participant::Reference(Driver {
            name: "js",
            program: args.node.clone(),
            leading_args: vec![
                args.js_driver.clone().into_os_string(),
                OsString::from("--modules"),
                args.js_modules.clone().into_os_string(),
            ],
        }));
    }
    if !args.skip_python {
        participants.push(Participant::Reference(Driver {
            name: "python",
            program: args.python.clone(),
            leading_args: vec![args.py_driver.clone().into_os_string()],
        }));
    }
    participants
}

/// Ramp with v3 (CBOR) fractional bucketing against the Python reference's fractional answers.
fn cbor_fractional_comparison(
    flag_text: &str,
    contexts: &[Map<String, Value>],
    report: &DriverReport,
) -> Result<Mismatches, String> {
    let cbor_engine = RampEngine::load_cbor_fractional(flag_text)?;
    let variants = cbor_engine.variants(FlagClass::Fractional, contexts);
    Ok(compare_variants(
        contexts,
        &variants,
        &report.variants.fractional,
    ))
}

fn print_mismatches(name: &str, per_class: &PerClass<Mismatches>) {
    for class in FlagClass::ALL {
        let result = per_class.get(class);
        if result.is_clean() {
            eprintln!(
                "[bench] {name} {}: all {} variants equal Ramp's",
                class.name(),
                result.compared
            );
            continue;
        }
        eprintln!(
            "[bench] {name} {}: {} of {} variants differ from Ramp's, e.g.",
            class.name(),
            result.count,
            result.compared
        );
        for example in &result.examples {
            eprintln!(
                "[bench]   #{} {}: ramp {:?}, {name} {:?}",
                example.index,
                example.targeting_key.as_deref().unwrap_or("?"),
                example.ramp,
                example.other
            );
        }
    }
}

fn seconds(value: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{flag} must be a non-negative number of seconds, got {value}"))
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

fn write_json(path: &Path, value: &Value) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| format!("cannot serialise {}: {error}", path.display()))?;
    fs::write(path, text + "\n")
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// A path shown relative to the workspace root when it lies inside it.
fn display_relative(path: &Path) -> String {
    let root = Path::new(REPO_ROOT).canonicalize().ok();
    let full = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    root.and_then(|root| full.strip_prefix(root).ok().map(Path::to_path_buf))
        .unwrap_or(full)
        .display()
        .to_string()
}
