//! `ramp flags lint`: lifecycle rules over flag files, or over the flags the control plane
//! manages, for CI. Exit status 0 when clean, 1 when a finding fails the run (any error; with
//! `--strict` any warning too), 2 when the flags cannot be read or validated.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, anyhow, bail};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use ramp_flags::governance::{Date, Finding, LintPolicy, Severity, lint_file, lint_flag};
use ramp_flags::logic::LogicOptions;
use ramp_flags::model::FlagFile;
use serde_json::{Map, Value, json};

use crate::api_client::ApiClient;
use crate::commands::Output;

/// The id (and long name) of `--server`, shared with `ramp`'s global option of that name.
const SERVER: &str = "server";

/// Where `--server` without a URL points when `RAMP_SERVER` is not set, as the global option.
const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";

/// Options of `ramp flags lint`: exactly one of `-f` and `--server` says what to lint.
#[derive(Debug)]
pub(crate) struct LintArgs {
    target: LintTarget,
    options: LintOptions,
}

/// What a lint run reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LintTarget {
    /// Flag files.
    Files(Vec<PathBuf>),
    /// The flags the control plane at this API URL manages.
    Server(String),
}

/// The options `clap` derives; `--server` is added by hand because whether it was given
/// depends on where its value came from (see [`given_server`]).
#[derive(Debug, Args)]
struct LintOptions {
    /// A flag file (JSON or YAML); several may follow one `-f`, or repeat it.
    #[arg(long = "file", short = 'f', value_name = "PATH", num_args = 1..)]
    files: Vec<PathBuf>,
    /// Report a release flag as finished once it has served one variant to everyone this long
    /// (`30d`, `4w`, or a number of days); a file's flags count as unchanged since the file
    /// was last modified, the control plane's since their last recorded change.
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

/// `--server [URL]`. Declared here with the global option's id and value type, it replaces
/// the global one for this command (so it may go without a value), and clap still fills it
/// from `ramp --server URL flags lint` too.
fn server_arg() -> Arg {
    Arg::new(SERVER)
        .long(SERVER)
        .value_name("URL")
        .num_args(0..=1)
        .default_missing_value("")
        .help(
            "Lint the flags the control plane manages instead of files, through its API at \
             URL (without URL: $RAMP_SERVER, else http://127.0.0.1:7070)",
        )
}

/// The API URL when `--server` was given on the command line (before or after `flags lint`).
/// A value from `RAMP_SERVER` or the global default does not count: lint reads files unless
/// asked otherwise.
fn given_server(matches: &ArgMatches) -> Option<String> {
    if matches.value_source(SERVER) != Some(ValueSource::CommandLine) {
        return None;
    }
    let url = matches
        .get_one::<String>(SERVER)
        .cloned()
        .unwrap_or_default();
    if !url.is_empty() {
        return Some(url);
    }
    Some(
        std::env::var("RAMP_SERVER")
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
    )
}

/// Exactly one of files and a server.
fn choose_target(files: Vec<PathBuf>, server: Option<String>) -> Result<LintTarget, clap::Error> {
    match (files.is_empty(), server) {
        (false, None) => Ok(LintTarget::Files(files)),
        (true, Some(url)) => Ok(LintTarget::Server(url)),
        (true, None) => Err(clap::Error::raw(
            ErrorKind::MissingRequiredArgument,
            "say what to lint: -f FILE... for flag files, or --server [URL] for the flags the \
             control plane manages",
        )),
        (false, Some(_)) => Err(clap::Error::raw(
            ErrorKind::ArgumentConflict,
            "-f and --server cannot be used together: lint either flag files or the control \
             plane's flags",
        )),
    }
}

impl FromArgMatches for LintArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut matches.clone())
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        let server = given_server(matches);
        let mut options = LintOptions::from_arg_matches_mut(matches)?;
        let target = choose_target(std::mem::take(&mut options.files), server)?;
        Ok(LintArgs { target, options })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for LintArgs {
    fn augment_args(command: Command) -> Command {
        LintOptions::augment_args(command).arg(server_arg())
    }

    fn augment_args_for_update(command: Command) -> Command {
        LintOptions::augment_args_for_update(command).arg(server_arg())
    }
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
fn today_utc() -> Date {
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

/// What one run found, and over what.
#[derive(Debug)]
struct Report {
    /// Each finding with where its flag came from (a file's path, or the server's URL).
    findings: Vec<(String, Finding)>,
    flag_count: usize,
    scope: Scope,
}

/// What a run linted, as the summary names it.
#[derive(Debug)]
enum Scope {
    Files(usize),
    Server(String),
}

pub(crate) async fn run(args: LintArgs) -> anyhow::Result<()> {
    let json = wants_json(args.options.output)?;
    let policy = LintPolicy {
        today: args.options.today.unwrap_or_else(today_utc),
        finished_after_days: args.options.finished_after,
    };
    let report = match &args.target {
        LintTarget::Files(paths) => lint_files(paths, &policy)?,
        LintTarget::Server(url) => lint_server(url, &policy).await?,
    };
    let failed = report
        .findings
        .iter()
        .any(|(_, finding)| finding.fails(args.options.strict));
    let mut out = std::io::stdout().lock();
    if json {
        write_json(&mut out, &report, failed)?;
    } else {
        write_text(&mut out, &report, failed)?;
    }
    out.flush()?;
    if failed {
        exit_failed();
    }
    Ok(())
}

fn lint_files(paths: &[PathBuf], policy: &LintPolicy) -> anyhow::Result<Report> {
    let files = load_all(paths)?;
    let mut findings = Vec::new();
    let mut flag_count = 0;
    for (path, file) in &files {
        let since = modified_day(path);
        flag_count += file.len();
        let location = path.display().to_string();
        findings.extend(
            lint_file(file, policy, |_| since)
                .into_iter()
                .map(|finding| (location.clone(), finding)),
        );
    }
    Ok(Report {
        findings,
        flag_count,
        scope: Scope::Files(files.len()),
    })
}

/// Lints the flags `GET /api/v1/flags` lists. A flag counts as unchanged since its
/// `updatedAt`, the time of its last recorded change (unchanged writes record nothing).
async fn lint_server(url: &str, policy: &LintPolicy) -> anyhow::Result<Report> {
    let answer = ApiClient::new(url)?.get_json("/api/v1/flags").await?;
    let managed = managed_flags(&answer)?;
    let file = managed.compile()?;
    let findings = file
        .flags()
        .flat_map(|flag| {
            let since = managed.updated.get(flag.key()).copied();
            lint_flag(flag, policy, since)
        })
        .map(|finding| (url.to_owned(), finding))
        .collect();
    Ok(Report {
        findings,
        flag_count: file.len(),
        scope: Scope::Server(url.to_owned()),
    })
}

/// The control plane's flags as its API lists them.
#[derive(Debug, Default)]
struct ManagedFlags {
    /// Each flag's definition, by key.
    definitions: Map<String, Value>,
    /// The UTC day of each flag's last change, by key.
    updated: BTreeMap<String, Date>,
}

impl ManagedFlags {
    /// The flags as one flag file, validated by the engine as the control plane serves them.
    fn compile(&self) -> anyhow::Result<FlagFile> {
        let document = json!({ "flags": self.definitions });
        FlagFile::from_value(&document, &LogicOptions::default())
            .context("the control plane's flags do not validate")
    }
}

/// Reads `{"flags": [{"key", "updatedAt", "definition"}, ...]}`.
fn managed_flags(answer: &Value) -> anyhow::Result<ManagedFlags> {
    let listed = answer["flags"]
        .as_array()
        .ok_or_else(|| anyhow!("the server's flag list has no \"flags\" array: {answer}"))?;
    let mut managed = ManagedFlags::default();
    for flag in listed {
        let Some(key) = flag["key"].as_str() else {
            bail!("a flag in the server's list has no key: {flag}");
        };
        let updated = flag["updatedAt"]
            .as_str()
            .map(Date::parse_date_or_datetime)
            .ok_or_else(|| anyhow!("flag {key:?} has no updatedAt"))?
            .with_context(|| format!("flag {key:?}: updatedAt"))?;
        managed.updated.insert(key.to_owned(), updated);
        managed
            .definitions
            .insert(key.to_owned(), flag["definition"].clone());
    }
    Ok(managed)
}

fn write_json(out: &mut impl Write, report: &Report, failed: bool) -> anyhow::Result<()> {
    let location_field = match report.scope {
        Scope::Files(_) => "file",
        Scope::Server(_) => "server",
    };
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|(location, finding)| {
            let mut value = serde_json::to_value(finding).unwrap_or_default();
            value[location_field] = json!(location);
            value
        })
        .collect();
    let mut summary = json!({
        "findings": findings,
        "errors": count(&report.findings, Severity::Error),
        "warnings": count(&report.findings, Severity::Warning),
        "flags": report.flag_count,
        "failed": failed,
    });
    match &report.scope {
        Scope::Files(files) => summary["files"] = json!(files),
        Scope::Server(url) => summary["server"] = json!(url),
    }
    writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
    Ok(())
}

fn write_text(out: &mut impl Write, report: &Report, failed: bool) -> anyhow::Result<()> {
    for (location, finding) in &report.findings {
        writeln!(
            out,
            "{location}: {}: {}: {}",
            finding.key,
            finding.rule.id(),
            finding.message
        )?;
    }
    let errors = count(&report.findings, Severity::Error);
    let warnings = count(&report.findings, Severity::Warning);
    let scope = match &report.scope {
        Scope::Files(files) => format!("{files} file{}", plural(*files)),
        Scope::Server(url) => format!("control plane at {url}"),
    };
    writeln!(
        out,
        "{errors} error{}, {warnings} warning{} in {} flag{} ({scope}){}",
        plural(errors),
        plural(warnings),
        report.flag_count,
        plural(report.flag_count),
        if failed { ": failed" } else { "" }
    )?;
    Ok(())
}

fn count(findings: &[(String, Finding)], severity: Severity) -> usize {
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
    use crate::flags_cmd::FlagsCommand;
    use clap::Parser;

    /// `ramp ARGS` parsed as the binary parses it, down to the lint target.
    fn lint_target(args: &[&str]) -> Result<LintTarget, ErrorKind> {
        let cli = crate::Cli::try_parse_from(std::iter::once("ramp").chain(args.iter().copied()))
            .map_err(|error| error.kind())?;
        match cli.command {
            crate::Command::Flags {
                command: FlagsCommand::Lint(args),
            } => Ok(args.target),
            other => panic!("not flags lint: {other:?}"),
        }
    }

    #[test]
    fn exactly_one_of_files_and_server_is_linted() {
        assert_eq!(
            lint_target(&["flags", "lint", "-f", "a.json", "b.yaml"]),
            Ok(LintTarget::Files(vec!["a.json".into(), "b.yaml".into()]))
        );
        assert_eq!(
            lint_target(&["flags", "lint", "--server", "http://cp:7070"]),
            Ok(LintTarget::Server("http://cp:7070".to_owned()))
        );
        // The global position counts as given too.
        assert_eq!(
            lint_target(&["--server", "http://cp:7070", "flags", "lint", "--strict"]),
            Ok(LintTarget::Server("http://cp:7070".to_owned()))
        );
        // Without a URL: $RAMP_SERVER or the default, never empty.
        match lint_target(&["flags", "lint", "--server"]) {
            Ok(LintTarget::Server(url)) => assert!(url.starts_with("http"), "{url}"),
            other => panic!("not a server target: {other:?}"),
        }
        assert_eq!(
            lint_target(&["flags", "lint"]),
            Err(ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            lint_target(&["flags", "lint", "-f", "a.json", "--server"]),
            Err(ErrorKind::ArgumentConflict)
        );
        assert_eq!(
            lint_target(&[
                "--server",
                "http://cp:7070",
                "flags",
                "lint",
                "-f",
                "a.json"
            ]),
            Err(ErrorKind::ArgumentConflict)
        );
    }

    /// A flag list as `GET /api/v1/flags` answers it: a release flag serving one variant to
    /// everyone, without an owner, last changed on `updated_at`.
    fn listed_release_flag(updated_at: &str) -> Value {
        json!({"flags": [{
            "key": "new-checkout",
            "version": 3,
            "createdAt": "2025-01-01T08:00:00.000Z",
            "updatedAt": updated_at,
            "definition": {
                "state": "ENABLED",
                "variants": {"on": true, "off": false},
                "defaultVariant": "on",
                "metadata": {"type": "release", "expires": "2030-01-01"}
            }
        }]})
    }

    fn rules(answer: &Value, today: &str) -> Vec<&'static str> {
        let managed = managed_flags(answer).unwrap();
        let file = managed.compile().unwrap();
        let policy = LintPolicy::new(Date::parse(today).unwrap());
        file.flags()
            .flat_map(|flag| lint_flag(flag, &policy, managed.updated.get(flag.key()).copied()))
            .map(|finding| finding.rule.id())
            .collect()
    }

    #[test]
    fn managed_flags_are_unchanged_since_their_last_update() {
        let answer = listed_release_flag("2025-03-01T23:59:59.999Z");
        // 29 days after the last change, then 30 (the default threshold).
        assert_eq!(rules(&answer, "2025-03-30"), ["missing-owner"]);
        assert_eq!(
            rules(&answer, "2025-03-31"),
            ["missing-owner", "finished-release"]
        );
    }

    #[test]
    fn a_malformed_flag_list_is_refused() {
        assert!(managed_flags(&json!({"items": []})).is_err());
        assert!(managed_flags(&json!({"flags": [{"definition": {}}]})).is_err());
        let undated = listed_release_flag("yesterday");
        assert!(managed_flags(&undated).is_err());
        let invalid = json!({"flags": [{"key": "k", "updatedAt": "2025-01-01T00:00:00Z",
                                        "definition": {"state": "ON"}}]});
        let error = managed_flags(&invalid).unwrap().compile().unwrap_err();
        assert!(
            format!("{error:#}").contains("do not validate"),
            "{error:#}"
        );
    }

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
