//! The OFREP phase of the benchmark: the in-process server, a check that it answers what the
//! engine resolves, a warm-up, the timed mixed run (all three flag classes, request by
//! request) and, optionally, one shorter run per class.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::RampEngine;
use crate::ofrep_load::{LoadFigures, LoadSpec, run_wrk, write_requests};
use crate::ofrep_server::OfrepServer;
use crate::workload::{FlagClass, PerClass};

/// How the phase runs.
#[derive(Debug, Clone)]
pub(crate) struct OfrepPlan {
    pub(crate) load: LoadSpec,
    pub(crate) server_threads: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// Per-class runs; zero leaves them out.
    pub(crate) class_duration: Duration,
    /// Where the requests files are written.
    pub(crate) work_dir: PathBuf,
}

/// What the phase measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OfrepResults {
    pub(crate) connections: u32,
    pub(crate) wrk_threads: u32,
    pub(crate) server_threads: usize,
    pub(crate) warmup_secs: u64,
    pub(crate) duration_secs: u64,
    /// The three classes mixed: the published figure.
    pub(crate) mixed: LoadFigures,
    pub(crate) per_class: Option<PerClass<LoadFigures>>,
}

/// Runs the phase against a fresh server holding `flag_text`.
pub(crate) fn run(
    plan: &OfrepPlan,
    flag_text: &str,
    engine: &RampEngine,
    contexts: &[Map<String, Value>],
) -> Result<OfrepResults, String> {
    let server = OfrepServer::start(flag_text, plan.server_threads)?;
    for class in FlagClass::ALL {
        let context = contexts.first().ok_or("no contexts to send")?;
        let served = server.served_variant(class.flag_key(), context)?;
        let resolved = engine.resolve(class, context).variant.map(str::to_owned);
        if served != resolved {
            return Err(format!(
                "OFREP serves {served:?} for {} where the engine resolves {resolved:?}",
                class.flag_key()
            ));
        }
    }
    let mixed_file = plan.work_dir.join("ofrep-mixed.txt");
    write_requests(&mixed_file, &FlagClass::ALL, contexts)?;
    let timed = |file: &PathBuf, duration: Duration, what: &str| {
        eprintln!(
            "[bench] ofrep {what}: wrk for {}s",
            duration.as_secs().max(1)
        );
        let figures = run_wrk(&plan.load, server.address(), file, duration)?;
        if figures.failures > 0 {
            return Err(format!(
                "OFREP {what}: {} of {} requests failed",
                figures.failures, figures.requests
            ));
        }
        Ok(figures)
    };
    timed(&mixed_file, plan.warmup, "warm-up")?;
    let mixed = timed(&mixed_file, plan.duration, "mixed")?;
    let per_class = if plan.class_duration.is_zero() {
        None
    } else {
        let mut figures = Vec::new();
        for class in FlagClass::ALL {
            let file = plan.work_dir.join(format!("ofrep-{}.txt", class.name()));
            write_requests(&file, &[class], contexts)?;
            figures.push(timed(&file, plan.class_duration, class.name())?);
        }
        let [static_, rule, fractional] = figures[..] else {
            return Err("a per-class run is missing".to_owned());
        };
        Some(PerClass {
            static_,
            rule,
            fractional,
        })
    };
    Ok(OfrepResults {
        connections: plan.load.connections,
        wrk_threads: plan.load.threads,
        server_threads: plan.server_threads,
        warmup_secs: plan.warmup.as_secs().max(1),
        duration_secs: plan.duration.as_secs().max(1),
        mixed,
        per_class,
    })
}
