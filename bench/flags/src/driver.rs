//! The reference evaluators run in their own runtimes (node, python): each is a small driver
//! script that loads the same flag file and workload, times the same loop, and prints one JSON
//! report on stdout.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use crate::workload::PerClass;

/// How to start one reference driver.
#[derive(Debug, Clone)]
pub(crate) struct Driver {
    /// Short name used in the results (`js`, `python`).
    pub(crate) name: &'static str,
    /// The interpreter (`node`, a venv's `python`).
    pub(crate) program: PathBuf,
    /// The script and any driver-specific arguments before the common ones.
    pub(crate) leading_args: Vec<OsString>,
}

/// Files and timings every driver receives.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec {
    pub(crate) flags_path: PathBuf,
    pub(crate) workload_path: PathBuf,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
}

/// What a driver prints.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct DriverReport {
    /// The evaluator package, e.g. `@openfeature/flagd-core`.
    pub(crate) evaluator: String,
    /// Its installed version.
    pub(crate) version: String,
    /// The runtime, e.g. `node v20.20.2`.
    pub(crate) runtime: String,
    pub(crate) static_eps: f64,
    pub(crate) rule_eps: f64,
    pub(crate) fractional_eps: f64,
    /// Variant served per context, per class (`null` when none).
    pub(crate) variants: PerClass<Vec<Option<String>>>,
}

impl DriverReport {
    pub(crate) fn rates(&self) -> PerClass<f64> {
        PerClass {
            static_: self.static_eps,
            rule: self.rule_eps,
            fractional: self.fractional_eps,
        }
    }
}

impl Driver {
    /// Runs the driver once (warm-up, then one timed run per class) and parses its report.
    pub(crate) fn run(&self, spec: &RunSpec) -> Result<DriverReport, String> {
        let output = Command::new(&self.program)
            .args(&self.leading_args)
            .arg("--flags")
            .arg(&spec.flags_path)
            .arg("--workload")
            .arg(&spec.workload_path)
            .arg("--duration")
            .arg(spec.duration.as_secs_f64().to_string())
            .arg("--warmup")
            .arg(spec.warmup.as_secs_f64().to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|error| {
                format!(
                    "{} driver: cannot start {}: {error}",
                    self.name,
                    self.program.display()
                )
            })?;
        if !output.status.success() {
            return Err(format!("{} driver failed ({})", self.name, output.status));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        parse_report(&stdout).map_err(|error| format!("{} driver: {error}", self.name))
    }
}

/// Reads the report from the last non-empty stdout line (a driver's dependencies may print
/// notices before it).
pub(crate) fn parse_report(stdout: &str) -> Result<DriverReport, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .ok_or("printed nothing")?;
    let report: DriverReport =
        serde_json::from_str(line).map_err(|error| format!("unreadable report: {error}"))?;
    let rates = report.rates();
    for rate in [rates.static_, rates.rule, rates.fractional] {
        if !rate.is_finite() || rate < 0.0 {
            return Err(format!("reported an invalid rate {rate}"));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_line_as_the_report() {
        let stdout = concat!(
            "some notice\n",
            r#"{"evaluator":"x","version":"1.0.0","runtime":"node v20","static_eps":10.5,"rule_eps":2,"fractional_eps":1,"#,
            r#""variants":{"static":["on"],"rule":[null],"fractional":["red"]}}"#,
            "\n\n"
        );
        let report = parse_report(stdout).unwrap();
        assert_eq!(report.rates().static_, 10.5);
        assert_eq!(report.variants.rule, vec![None]);
        assert_eq!(report.variants.fractional, vec![Some("red".to_owned())]);
    }

    #[test]
    fn refuses_empty_or_malformed_output() {
        assert!(parse_report("").is_err());
        assert!(parse_report("not json").is_err());
        let negative = r#"{"evaluator":"x","version":"1","runtime":"r","static_eps":-1,"rule_eps":2,"fractional_eps":1,"variants":{"static":[],"rule":[],"fractional":[]}}"#;
        assert!(parse_report(negative).unwrap_err().contains("invalid rate"));
    }
}
