//! `ramp flags lint`: lifecycle rules over flag files, for CI. Exit status 0 when clean, 1 when
//! a finding fails the run (any error; with `--strict` any warning too), 2 when a file cannot be
//! read or validated.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use ramp_flags::governance::{Date, Finding, LintPolicy, Severity, lint_file};
use ramp_flags::model::FlagFile;
use serde_json::json;

use crate::commands::Output;

/// Options of `ramp flags lint`.
#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// A flag file (JSON or YAML); several may follow one `-f`, or repeat it.
    #[arg(long = "file", short = 'f', value_name = "PATH", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Report a release flag as finished once it has served one variant to everyone this long
    /// (`30d`, `4w`, or a number of days); a file's flags count as unchanged since the file
    /// was last modified.
    #[arg(long, value_name = "DAYS", default_value = "30d", value_parser = parse_days)]
    finished_after: u32,
    /// Judge removal dates and ages as on this day instead of today (UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    today: Option<Date>,
    /// Fail on warnings too, not only on errors.
    #[arg(long)]
    strict: bool,
    /// Output format.
    #[arg(long, short = 'o', value_name = "FORMAT", default_value = "text", value_parser = report_format())]
    output: Output,
}

/// `-o` is a global option of `ramp` with formats this command cannot print. Declaring it here
/// with the same name and type replaces the global one for this command, so `ramp -o json
/// flags lint` and `ramp flags lint -o json` both arrive in this field.
pub(super) fn report_format() -> impl TypedValueParser<Value = Output> {
    PossibleValuesParser::new(["text", "json"]).map(|format| match format.as_str() {
        "json" => Output::Json,
        _ => Output::Table,
    })
}

/// Refuses the global formats this command has no rendering for.
pub(super) fn wants_json(output: Output) -> anyhow::Result<bool> {
    match output {
        Output::Table => Ok(false),
        Output::Json => Ok(true),
        Output::Yaml | Output::Markdown => anyhow::bail!("this command prints -o text or -o json"),
    }
}

fn parse_days(text: &str) -> Result<u32, String> {
    let (number, unit_days) = if let Some(days) = text.strip_suffix('d') {
        (days, 1)
    } else if let Some(weeks) = text.strip_suffix('w') {
        (weeks, 7)
    } else {
        (text, 1)
    };
    number
        .parse::<u32>()
        .ok()
        .and_then(|count| count.checked_mul(unit_days))
        .ok_or_else(|| format!("{text:?} is not a number of days (30d, 4w or 30)"))
}

fn parse_date(text: &str) -> Result<Date, String> {
    Date::parse(text).map_err(|error| error.to_string())
}

/// Today's date in UTC from the system clock.
pub(super) fn today_utc() -> Date {
    Date::from_unix_seconds(unix_seconds(SystemTime::now()))
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Reads and validates every flag file; the first one that fails ends the command (exit 2)
/// with its path and the JSON path of each problem.
pub(super) fn load_all(paths: &[PathBuf]) -> anyhow::Result<Vec<(&Path, FlagFile)>> {
    paths
        .iter()
        .map(|path| Ok((path.as_path(), ramp_flagd::load_file(path)?)))
        .collect()
}

/// The day a file was last modified, which is as far as a file tells when its flags changed.
fn modified_day(path: &Path) -> Option<Date> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(Date::from_unix_seconds(unix_seconds(modified)))
}

pub(crate) fn run(args: LintArgs) -> anyhow::Result<()> {
    let json = wants_json(args.output)?;
    let files = load_all(&args.files)?;
    let policy = LintPolicy {
        today: args.today.unwrap_or_else(today_utc),
        finished_after_days: args.finished_after,
    };
    let mut findings: Vec<(&Path, Finding)> = Vec::new();
    let mut flag_count = 0;
    for (path, file) in &files {
        let since = modified_day(path);
        flag_count += file.len();
        findings.extend(
            lint_file(file, &policy, |_| since)
                .into_iter()
                .map(|finding| (*path, finding)),
        );
    }
    let failed = findings
        .iter()
        .any(|(_, finding)| finding.fails(args.strict));
    let errors = count(&findings, Severity::Error);
    let warnings = count(&findings, Severity::Warning);

    let mut out = std::io::stdout().lock();
    if json {
        let findings: Vec<_> = findings
            .iter()
            .map(|(path, finding)| {
                let mut value = serde_json::to_value(finding).unwrap_or_default();
                value["file"] = json!(path.display().to_string());
                value
            })
            .collect();
        let report = json!({
            "findings": findings,
            "errors": errors,
            "warnings": warnings,
            "flags": flag_count,
            "files": files.len(),
            "failed": failed,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for (path, finding) in &findings {
            writeln!(
                out,
                "{}: {}: {}: {}",
                path.display(),
                finding.key,
                finding.rule.id(),
                finding.message
            )?;
        }
        writeln!(
            out,
            "{errors} error{}, {warnings} warning{} in {flag_count} flag{} ({} file{}){}",
            plural(errors),
            plural(warnings),
            plural(flag_count),
            files.len(),
            plural(files.len()),
            if failed { ": failed" } else { "" }
        )?;
    }
    out.flush()?;
    if failed {
        exit_failed();
    }
    Ok(())
}

fn count(findings: &[(&Path, Finding)], severity: Severity) -> usize {
    findings
        .iter()
        .filter(|(_, finding)| finding.severity == severity)
        .count()
}

pub(super) fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Ends the process with status 1, the "checked, and it failed" status CI acts on; status 2
/// (any error returned to `main`) stays for "could not check".
pub(super) fn exit_failed() -> ! {
    let _ = std::io::stdout().flush();
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_counts_accept_days_weeks_and_plain_numbers() {
        assert_eq!(parse_days("30d"), Ok(30));
        assert_eq!(parse_days("4w"), Ok(28));
        assert_eq!(parse_days("0"), Ok(0));
        assert!(parse_days("-1d").is_err());
        assert!(parse_days("1m").is_err());
        assert!(parse_days("d").is_err());
    }

    #[test]
    fn clock_times_become_utc_days() {
        let day = Date::parse("2025-06-15").unwrap();
        let noon = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_749_988_800);
        assert_eq!(Date::from_unix_seconds(unix_seconds(noon)), day);
        let before_epoch = SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(1);
        assert_eq!(unix_seconds(before_epoch), -1);
    }
}
