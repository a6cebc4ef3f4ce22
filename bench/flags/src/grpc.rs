//! The gRPC load phase: Ramp's gRPC evaluation server in this process with the benchmark's
//! flag file, a check that it answers what the engine resolves, then the loader (this program
//! in a process of its own) for a warm-up and a timed window.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::RampEngine;
use crate::grpc_load::{self, GrpcFigures, LoadShape};
use crate::grpc_server::{GrpcServers, static_source};
use crate::workload::{FlagClass, PerClass};

/// How many contexts are checked against the engine before the load.
const CHECKED_CONTEXTS: usize = 5;

/// How the phase runs.
#[derive(Debug, Clone)]
pub(crate) struct GrpcPlan {
    pub(crate) load: LoadShape,
    pub(crate) server_threads: usize,
    /// The workload file the loader reads its contexts from.
    pub(crate) workload: PathBuf,
}

/// What the phase measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GrpcResults {
    pub(crate) channels: usize,
    pub(crate) in_flight_per_channel: usize,
    pub(crate) loader_threads: usize,
    pub(crate) server_threads: usize,
    pub(crate) warmup_secs: f64,
    pub(crate) duration_secs: f64,
    /// The three classes mixed: the published figure.
    pub(crate) mixed: GrpcFigures,
    /// The mixed run's requests by class.
    pub(crate) per_class: PerClass<GrpcFigures>,
}

impl GrpcResults {
    /// Requests in flight at any time.
    pub(crate) fn concurrency(&self) -> usize {
        self.channels * self.in_flight_per_channel
    }
}

/// Runs the phase against a fresh server holding `flag_text`.
pub(crate) fn run(
    plan: &GrpcPlan,
    flag_text: &str,
    engine: &RampEngine,
    contexts: &[Map<String, Value>],
) -> Result<GrpcResults, String> {
    let servers = GrpcServers::start(&static_source(flag_text)?, plan.server_threads, false)?;
    for context in contexts.iter().take(CHECKED_CONTEXTS) {
        for class in FlagClass::ALL {
            let served = servers.served_variant(class, context)?;
            let resolved = engine.resolve(class, context).variant.map(str::to_owned);
            if served != resolved {
                return Err(format!(
                    "gRPC serves {served:?} for {} where the engine resolves {resolved:?}",
                    class.flag_key()
                ));
            }
        }
    }
    eprintln!(
        "[bench] grpc: {} channels x {} in flight, {:.1}s warm-up then {:.1}s timed",
        plan.load.channels,
        plan.load.in_flight_per_channel,
        plan.load.warmup.as_secs_f64(),
        plan.load.duration.as_secs_f64()
    );
    let report = grpc_load::run_process(&plan.load, servers.evaluation_address(), &plan.workload)?;
    if report.failures > 0 {
        return Err(format!(
            "gRPC load: {} requests failed, the first: {}",
            report.failures,
            report.first_failure.unwrap_or_default()
        ));
    }
    Ok(GrpcResults {
        channels: plan.load.channels,
        in_flight_per_channel: plan.load.in_flight_per_channel,
        loader_threads: plan.load.threads,
        server_threads: plan.server_threads,
        warmup_secs: plan.load.warmup.as_secs_f64(),
        duration_secs: plan.load.duration.as_secs_f64(),
        mixed: report.mixed,
        per_class: report.per_class,
    })
}
