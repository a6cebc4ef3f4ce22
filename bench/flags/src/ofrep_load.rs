//! The OFREP load phase: `wrk` (a separate process) drives Ramp's OFREP server over keep-alive
//! connections with `POST /ofrep/v1/evaluate/flags/{key}`, each request carrying a context of
//! the workload, and reports requests per second and latency percentiles. The requests come
//! from a file of `key<TAB>body` lines that `bench/flags/wrk/ofrep.lua` turns into requests;
//! the script's `done()` prints the figures as one JSON line.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::workload::FlagClass;

/// How `wrk` loads the server.
#[derive(Debug, Clone)]
pub(crate) struct LoadSpec {
    /// The `wrk` executable.
    pub(crate) wrk: PathBuf,
    /// The Lua script (`bench/flags/wrk/ofrep.lua`).
    pub(crate) script: PathBuf,
    /// Open keep-alive connections.
    pub(crate) connections: u32,
    /// `wrk` threads.
    pub(crate) threads: u32,
}

/// What one timed `wrk` run measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct LoadFigures {
    /// Completed requests per second.
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Completed requests.
    pub(crate) requests: u64,
    /// Socket errors, timeouts and answers with a status above 399.
    pub(crate) failures: u64,
}

/// The line `ofrep.lua` prints when a run is done (durations in microseconds).
#[derive(Debug, Deserialize)]
struct WrkReport {
    requests: u64,
    duration_us: u64,
    latency_p50_us: u64,
    latency_p99_us: u64,
    latency_max_us: u64,
    errors_connect: u64,
    errors_read: u64,
    errors_write: u64,
    errors_status: u64,
    errors_timeout: u64,
}

/// Writes the requests file for `classes`: for every context, one request per class in turn,
/// so a mixed run alternates flag classes request by request.
pub(crate) fn write_requests(
    path: &Path,
    classes: &[FlagClass],
    contexts: &[Map<String, Value>],
) -> Result<(), String> {
    let mut lines = String::new();
    for context in contexts {
        let body = json!({ "context": context }).to_string();
        for class in classes {
            let _ = writeln!(lines, "{}\t{body}", class.flag_key());
        }
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
    }
    fs::write(path, lines).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// One `wrk` run of `duration` (whole seconds, at least one) against `address`.
pub(crate) fn run_wrk(
    spec: &LoadSpec,
    address: SocketAddr,
    requests_file: &Path,
    duration: Duration,
) -> Result<LoadFigures, String> {
    let seconds = duration.as_secs().max(1);
    let output = Command::new(&spec.wrk)
        .arg(format!("--threads={}", spec.threads.max(1)))
        .arg(format!("--connections={}", spec.connections.max(1)))
        .arg(format!("--duration={seconds}s"))
        .arg("--timeout=2s")
        .arg("--latency")
        .arg("--script")
        .arg(&spec.script)
        .arg(format!("http://{address}"))
        .arg("--")
        .arg(requests_file)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot start {}: {error}", spec.wrk.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout.trim(),
            stderr.trim()
        ));
    }
    parse_report(&stdout)
}

/// The figures from `wrk`'s output: the last line that is a JSON object (the script's report).
pub(crate) fn parse_report(stdout: &str) -> Result<LoadFigures, String> {
    let line = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('{'))
        .ok_or_else(|| format!("wrk printed no report: {stdout}"))?;
    let report: WrkReport = serde_json::from_str(line)
        .map_err(|error| format!("unreadable wrk report {line:?}: {error}"))?;
    if report.duration_us == 0 {
        return Err(format!("wrk reported a run of no duration: {line}"));
    }
    let millis = |micros: u64| micros as f64 / 1000.0;
    Ok(LoadFigures {
        rps: report.requests as f64 / (report.duration_us as f64 / 1e6),
        p50_ms: millis(report.latency_p50_us),
        p99_ms: millis(report.latency_p99_us),
        max_ms: millis(report.latency_max_us),
        requests: report.requests,
        failures: report.errors_connect
            + report.errors_read
            + report.errors_write
            + report.errors_status
            + report.errors_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::generate_contexts;

    #[test]
    fn reads_the_scripts_report_after_wrks_own_output() {
        let stdout = concat!(
            "Running 5s test @ http://127.0.0.1:1234\n",
            "  Latency Distribution\n     50%  500.00us\n",
            "Requests/sec:  60000.00\n",
            r#"{"requests":300000,"duration_us":5000000,"latency_p50_us":500,"latency_p99_us":1800,"#,
            r#""latency_max_us":9000,"errors_connect":0,"errors_read":0,"errors_write":0,"#,
            r#""errors_status":2,"errors_timeout":1}"#,
            "\n"
        );
        let figures = parse_report(stdout).unwrap();
        assert_eq!(figures.rps, 60_000.0);
        assert_eq!(
            (figures.p50_ms, figures.p99_ms, figures.max_ms),
            (0.5, 1.8, 9.0)
        );
        assert_eq!((figures.requests, figures.failures), (300_000, 3));
    }

    #[test]
    fn refuses_output_without_a_report() {
        assert!(parse_report("Requests/sec: 1\n").is_err());
        let empty_run = r#"{"requests":0,"duration_us":0,"latency_p50_us":0,"latency_p99_us":0,"latency_max_us":0,"errors_connect":0,"errors_read":0,"errors_write":0,"errors_status":0,"errors_timeout":0}"#;
        assert!(parse_report(empty_run).unwrap_err().contains("no duration"));
    }

    #[test]
    fn the_requests_file_alternates_classes_per_context() {
        let path = std::env::temp_dir().join(format!("ofrep-requests-{}.txt", std::process::id()));
        let contexts = generate_contexts(2, 7);
        write_requests(&path, &FlagClass::ALL, &contexts).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let _ = fs::remove_file(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6);
        let keys: Vec<&str> = lines
            .iter()
            .map(|line| line.split('\t').next().unwrap())
            .collect();
        assert_eq!(keys[..3], ["checkout-v2", "pricing-page", "homepage-hero"]);
        let body: Value = serde_json::from_str(lines[4].split_once('\t').unwrap().1).unwrap();
        assert_eq!(body["context"], Value::Object(contexts[1].clone()));
    }
}
