//! `ramp-bench-analysis`: how soon each canary judge catches a bad canary, at a matched
//! false-alarm rate. Run it with `bench/analysis/run` (flags: `--help`).
//!
//! # Method
//!
//! **Streams.** A run simulates `--horizon-s` (900) seconds of traffic: Poisson arrivals at
//! `--rate` (200) requests per second in total, each request sent to the canary with
//! probability `--canary-weight` (0.1), failing with its side's error rate (Bernoulli), and
//! taking a log-normal time (median 50 ms, sigma 0.5 of the natural log). Randomness comes
//! from an own xoshiro256** generator seeded through splitmix64 from (`--seed`, scenario,
//! run index): every number is reproducible, and a scenario's streams do not change when
//! other scenarios are added. A stream is generated once, 100 ms at a time, and the same
//! requests feed every judge; a run ends early once every judge has alarmed.
//!
//! **Scenarios** (canary vs baseline). A/A-like, where any alarm is false: `aa` (identical,
//! 1% errors), `drift` (both sides share a 10-minute wave: error rate x (1 + 0.5 sin), median
//! x (1 + 0.3 sin)) and `low_traffic_aa` (`aa` at 5 req/s, the reference for
//! `low_traffic`). Bad, where an alarm is a detection: `errors_1_to_2`, `errors_1_to_5`,
//! `errors_0.1_to_1`, `latency_plus_10` / `latency_plus_50` (canary median +10% / +50%),
//! `slow_leak` (canary error rate 1% + 1 point per minute) and `low_traffic` (5 req/s,
//! errors 1% -> 5%). A/A-like scenarios get `--aa-runs` (1000) runs, bad ones `--bad-runs`
//! (200).
//!
//! **Judges.**
//! - `argo_threshold`: Argo Rollouts as users configure it, at Flagger's default interval:
//!   every 60 s the canary's error rate and exact p99 over the last 60 s, failing at the first
//!   measurement over a threshold (`failureLimit: 0`). The thresholds are calibrated on the
//!   `aa` runs themselves: the smallest grid values (0.05 points, 1 ms) that at most 0.5% of
//!   the runs exceed, per condition, so at most 1% of `aa` runs alarm. They are then fixed for
//!   every scenario, as a user's would be. `argo_threshold_10s` is the same every 10 s over
//!   10 s, calibrated alike (for information).
//! - `kayenta_mwu`: Kayenta's Mann-Whitney judge at its defaults (98% confidence, pass 75,
//!   marginal 50) on each minute's data: per-10-second error rates (critical) and per-request
//!   latencies (increase is bad, allowed increase 1.0). Per-request latencies are its best
//!   case: real Kayenta only sees time series.
//! - `ramp_sequential`: Ramp's sequential judge at its defaults (1% false alarms over the whole
//!   analysis), given one tally per side per second and checked after each;
//!   `ramp_sequential_100ms` gets one per 100 ms.
//! - `oracle_sprt`, a yardstick rather than a contender: Wald's sequential probability ratio
//!   test on the canary's requests, told both sides' true error rates and latency
//!   distributions at every moment, alarming at `ln(1 / 0.01)`. No real judge knows them, and
//!   Wald's test needs the fewest requests on average for its error rates, so its median shows
//!   how soon a scenario's traffic allows a detection at all.
//!
//! **Figures.** Per judge and scenario: the false-alarm rate (A/A-like), or the detected
//! fraction and the p50 / p90 time to detect, where runs without an alarm count as
//! infinitely late (a percentile falling on them is null). The headline compares ours with the
//! anchor (`argo_threshold`, `kayenta_mwu`) that detects soonest among those whose false-alarm
//! rate at the same traffic is at most 1%, and says where even the yardstick is not three
//! times sooner than that anchor (the goal is then beyond the traffic's information). Results
//! go to the terminal and to
//! `target/bench-results/analysis.json`.

mod calibrate;
mod harness;
mod judges;
mod report;
mod rng;
mod scenario;
mod stats;
mod stream;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use harness::{RunOutcome, Simulation};
use judges::argo::Thresholds;
use judges::{Judge, LINEUP, Method};
use report::{Params, Report, Summaries, ThresholdsReport};
use scenario::{AA, Kind, Scenario};
use stats::Summary;

/// The false-alarm budget: what the Argo thresholds are calibrated to and what the headline
/// matches on.
const FALSE_ALARM_BUDGET: f64 = 0.01;

#[derive(Debug, Parser)]
#[command(
    name = "ramp-bench-analysis",
    about = "False-alarm rate and time-to-detect of canary judges on simulated request streams"
)]
struct Args {
    /// Runs per A/A-like scenario (aa, drift, low_traffic_aa).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    aa_runs: u32,
    /// Runs per bad scenario.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    bad_runs: u32,
    /// Seed of every stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Total requests per second (the low-traffic scenarios use 5).
    #[arg(long, default_value_t = 200.0, value_parser = positive)]
    rate: f64,
    /// Chance that a request goes to the canary.
    #[arg(long, default_value_t = 0.1, value_parser = fraction)]
    canary_weight: f64,
    /// Length of a run in seconds; a judge that has not alarmed by then did not detect.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u32).range(60..=86_400))]
    horizon_s: u32,
    /// Worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench-results/analysis.json")]
    out: PathBuf,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("expected a positive number, got {text:?}")),
    }
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value > 0.0 && value < 1.0 => Ok(value),
        _ => Err(format!(
            "expected a number strictly between 0 and 1, got {text:?}"
        )),
    }
}

/// Fresh judges of the whole line-up; Argo-style ones fail once they have thresholds.
fn lineup(thresholds: &BTreeMap<&'static str, Thresholds>, scenario: &Scenario) -> Vec<Judge> {
    LINEUP
        .iter()
        .map(|spec| {
            let spec_thresholds = thresholds.get(spec.name).copied();
            Judge::new(spec, spec_thresholds, scenario, FALSE_ALARM_BUDGET)
        })
        .collect()
}

/// Runs one scenario, reporting its duration on stderr.
fn run_timed(
    simulation: &Simulation,
    scenario: &Scenario,
    runs: u32,
    thresholds: &BTreeMap<&'static str, Thresholds>,
) -> Vec<RunOutcome> {
    let started = Instant::now();
    let outcomes = simulation.run_scenario(scenario, runs, &|| lineup(thresholds, scenario));
    eprintln!(
        "[bench] {:<16} {runs:>5} runs in {:>6.1} s",
        scenario.name,
        started.elapsed().as_secs_f64()
    );
    outcomes
}

/// Per judge, its alarm times over the runs.
fn alarms_by_judge(outcomes: &[RunOutcome]) -> Vec<Vec<Option<f64>>> {
    (0..LINEUP.len())
        .map(|judge| outcomes.iter().map(|o| o.alarms[judge]).collect())
        .collect()
}

/// Calibrates every Argo-style judge on the A/A outcomes, and replaces their alarm times
/// (they ran without thresholds) with those the thresholds give.
fn calibrate_on_aa(
    aa: &mut [RunOutcome],
) -> (
    BTreeMap<&'static str, Thresholds>,
    BTreeMap<&'static str, ThresholdsReport>,
) {
    let mut thresholds = BTreeMap::new();
    let mut reports = BTreeMap::new();
    for (index, spec) in LINEUP.iter().enumerate() {
        let Method::Argo { interval_seconds } = spec.method else {
            continue;
        };
        let runs: Vec<_> = aa.iter().map(|o| o.measurements[index].clone()).collect();
        let calibrated = calibrate::calibrate(&runs, FALSE_ALARM_BUDGET);
        for (outcome, measurements) in aa.iter_mut().zip(&runs) {
            outcome.alarms[index] = calibrated.first_failure(measurements, interval_seconds);
        }
        thresholds.insert(spec.name, calibrated);
        reports.insert(
            spec.name,
            ThresholdsReport {
                interval_s: interval_seconds,
                max_error_rate: calibrated.max_error_rate,
                max_p99_s: calibrated.max_p99_seconds,
            },
        );
    }
    (thresholds, reports)
}

fn record(summaries: &mut Summaries, scenario: &Scenario, outcomes: &[RunOutcome]) {
    for (spec, alarms) in LINEUP.iter().zip(alarms_by_judge(outcomes)) {
        summaries
            .entry(spec.name)
            .or_default()
            .insert(scenario.name, Summary::of(scenario.kind, &alarms));
    }
}

fn write_json(path: &Path, report: &Report) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let text =
        serde_json::to_string_pretty(report).map_err(|e| format!("encoding the results: {e}"))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))
}

const NOTES: [&str; 6] = [
    "Argo thresholds are calibrated on the aa runs themselves (in-sample, the anchor's best case), with the 1% budget split evenly between the error-rate and the p99 condition",
    "the Argo thresholds stay fixed in every scenario, as a user's would; they suit a service with 1% errors, so in errors_0.1_to_1 they are looser than a user of a 0.1% service would set",
    "Argo measures the canary only, over the last interval, with an exact p99 (nearest rank); windows do not overlap",
    "Kayenta is given per-request latency samples (its best case; real Kayenta sees time series) and per-10-second error rates",
    "alarm times are the end of the interval or slice at which a judge first fails; runs without an alarm within the horizon count as infinitely late in percentiles",
    "headline ratio = best_anchor_p50_s / ours_p50_s (above 1: ours detects sooner); an anchor qualifies when its false-alarm rate on matched_on is within the budget",
];

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let simulation = Simulation {
        rate: args.rate,
        canary_weight: args.canary_weight,
        horizon_seconds: args.horizon_s,
        seed: args.seed,
        threads: usize::from(args.threads),
    };
    let mut summaries = Summaries::new();

    let mut aa = run_timed(&simulation, &AA, args.aa_runs, &BTreeMap::new());
    let (thresholds, threshold_reports) = calibrate_on_aa(&mut aa);
    record(&mut summaries, &AA, &aa);
    drop(aa);

    // Every run of the bad scenarios at the benchmark's own traffic, per judge, pooled.
    let mut pooled: Vec<Vec<Option<f64>>> = vec![Vec::new(); LINEUP.len()];
    for scenario in scenario::ALL.iter().filter(|s| s.name != AA.name) {
        let runs = match scenario.kind {
            Kind::AaLike => args.aa_runs,
            Kind::Bad => args.bad_runs,
        };
        let outcomes = run_timed(&simulation, scenario, runs, &thresholds);
        record(&mut summaries, scenario, &outcomes);
        if scenario.kind == Kind::Bad && scenario.rate.is_none() {
            for (all, alarms) in pooled.iter_mut().zip(alarms_by_judge(&outcomes)) {
                all.extend(alarms);
            }
        }
    }
    let pooled: BTreeMap<&'static str, Option<f64>> = LINEUP
        .iter()
        .zip(&pooled)
        .map(|(spec, alarms)| (spec.name, stats::percentile(alarms, 0.5)))
        .collect();

    let report = Report {
        params: Params {
            rate: args.rate,
            canary_weight: args.canary_weight,
            horizon_s: args.horizon_s,
            aa_runs: args.aa_runs,
            bad_runs: args.bad_runs,
            seed: args.seed,
            latency: format!(
                "lognormal median {:.0}ms sigma {}",
                scenario::BASE_MEDIAN_SECONDS * 1000.0,
                scenario::LATENCY_SIGMA
            ),
            argo_thresholds: threshold_reports,
            notes: NOTES.to_vec(),
        },
        headline: report::headline(&summaries, FALSE_ALARM_BUDGET, pooled),
        judges: summaries,
    };

    println!("\n{}", report::table(&report.judges));
    for (name, t) in &report.params.argo_thresholds {
        println!(
            "{name}: every {} s, fail when error rate > {:.2}% or p99 > {:.0} ms",
            t.interval_s,
            t.max_error_rate * 100.0,
            t.max_p99_s * 1000.0
        );
    }
    println!("\nheadline (false-alarm rate <= {FALSE_ALARM_BUDGET}, p50 seconds to detect):");
    for (scenario, entry) in &report.headline.per_scenario {
        let goal = match (
            entry.best_anchor,
            entry.meets_goal,
            entry.goal_within_information,
        ) {
            (None, _, _) => "not compared (no anchor within the budget)",
            (_, true, _) => "met",
            (_, false, true) => "not met",
            (_, false, false) => "not met (beyond what the traffic tells)",
        };
        println!(
            "  {scenario:<16} ours {:>5}  best anchor {:<15} {:>5}  ratio {:>5}  oracle {:>5}  goal {goal}",
            fmt_opt(entry.ours_p50_s, 0),
            entry.best_anchor.unwrap_or("none"),
            fmt_opt(entry.best_anchor_p50_s, 0),
            fmt_opt(entry.ratio, 1),
            fmt_opt(entry.oracle_p50_s, 0),
        );
    }
    println!(
        "  goal (<= 1% false alarms, >= 3x sooner than the best anchor) met on {} of {} scenarios",
        report.headline.scenarios_meeting_goal, report.headline.scenarios_compared
    );
    println!(
        "  pooled over every bad run at {} req/s (never detected = infinitely late), median seconds to detect:",
        args.rate
    );
    for (judge, p50) in &report.headline.pooled_p50_s {
        println!("    {judge:<22} {:>5}", fmt_opt(*p50, 0));
    }
    write_json(&args.out, &report)?;
    println!(
        "\nwrote {} in {:.1} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn fmt_opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ramp-bench-analysis: {message}");
            ExitCode::FAILURE
        }
    }
}
