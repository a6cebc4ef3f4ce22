//! The flagd testbed's provider scenarios, run by the real OpenFeature Python SDK and providers
//! (flagd RPC, flagd in-process, OFREP) against this build's `ramp flags serve`:
//! `tests/providers/run` does the work; this test runs it and fails when it fails, including
//! when its Python environment cannot be created.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The whole suite takes a few minutes (most of it in connection-loss scenarios that wait out
/// real reconnects), plus the first creation of the Python environment.
const SUITE_LIMIT: Duration = Duration::from_secs(20 * 60);

/// The line the suite's per-mode summary starts with.
const SUMMARY_HEADING: &str = "scenarios per mode";

/// Every mode must pass scenarios: a rule that skipped them all would otherwise pass silently.
const MODES: [&str; 3] = ["rpc", "in-process", "ofrep"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the suite with its output in `log`; `None` if it had to be stopped at the limit.
fn run_suite(log: &Path) -> Option<ExitStatus> {
    let output = File::create(log).expect("create the suite's log file");
    let mut child = Command::new(repo_root().join("tests/providers/run"))
        .env("RAMP_BIN", env!("CARGO_BIN_EXE_ramp"))
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("clone the log file handle"))
        .stderr(output)
        // A group of its own, so a suite stopped at the limit takes its servers with it.
        .process_group(0)
        .spawn()
        .expect("start tests/providers/run");
    let deadline = Instant::now() + SUITE_LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the suite") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The suite's closing summary: the per-mode table and the line pytest ends with.
fn summary(output: &str) -> &str {
    output
        .find(SUMMARY_HEADING)
        .and_then(|at| output[..at].rfind('\n').map(|line| &output[line + 1..]))
        .unwrap_or(output)
}

/// Passed scenarios per mode, read from the summary table (`mode passed failed ...`).
fn passed_per_mode(summary: &str) -> Vec<(&str, u64)> {
    summary
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let counts: Vec<u64> = fields
                .get(1..)?
                .iter()
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            (counts.len() == 6).then(|| (fields[0], counts[0]))
        })
        .collect()
}

#[test]
fn flagd_testbed_scenarios_pass_with_the_real_openfeature_providers() {
    let log = std::env::temp_dir().join(format!("ramp-flagd-providers-{}.log", std::process::id()));
    let started = Instant::now();
    let status = run_suite(&log);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let Some(status) = status else {
        panic!("the provider suite did not finish within {SUITE_LIMIT:?}:\n{output}");
    };
    assert!(
        status.success(),
        "the provider suite failed ({status}):\n{output}"
    );
    assert!(
        output.contains(SUMMARY_HEADING),
        "the provider suite printed no per-mode summary:\n{output}"
    );
    let summary = summary(&output);
    let passed = passed_per_mode(summary);
    for mode in MODES {
        let count = passed
            .iter()
            .find(|(name, _)| *name == mode)
            .map(|(_, n)| *n);
        assert!(
            count.is_some_and(|n| n > 0),
            "no scenario passed in mode {mode}:\n{summary}"
        );
    }
    println!("{}\n(provider suite: {:.0?})", summary, started.elapsed());
}
