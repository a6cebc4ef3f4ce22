//! `ramp flags refs`: which flags the code under a directory uses. Exit status 1 when code names
//! a flag no file defines (with `--fail-on-unused`, also when a flag is never used), 0
//! otherwise, 2 when a flag file or the directory cannot be read.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use ramp_flags::governance::{FlagReference, cross_check, find_references, is_source_file};
use serde_json::json;

use super::lint::{exit_failed, load_all, plural, report_format, wants_json};
use crate::commands::Output;

/// Directories never scanned: version control, build output and third-party code.
const SKIPPED_DIRS: &[&str] = &[".git", "target", "node_modules", "vendor"];

/// Larger files are generated or bundled code, not where flags are read by hand.
const MAX_SOURCE_BYTES: u64 = 1024 * 1024;

/// Options of `ramp flags refs`.
#[derive(Debug, Args)]
pub(crate) struct RefsArgs {
    /// The source tree to scan.
    #[arg(long, value_name = "DIR")]
    path: PathBuf,
    /// A flag file (JSON or YAML) defining the known keys; several may follow one `-f`, or
    /// repeat it.
    #[arg(long = "file", short = 'f', value_name = "PATH", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Fail when a defined flag is not used anywhere, too.
    #[arg(long)]
    fail_on_unused: bool,
    /// Output format.
    #[arg(long, short = 'o', value_name = "FORMAT", default_value = "text", value_parser = report_format())]
    output: Output,
}

pub(crate) fn run(args: RefsArgs) -> anyhow::Result<()> {
    let json = wants_json(args.output)?;
    let files = load_all(&args.files)?;
    // Later files win on duplicate keys, as when serving.
    let defined: BTreeMap<&str, &Path> = files
        .iter()
        .flat_map(|(path, file)| file.flags().map(move |flag| (flag.key(), *path)))
        .collect();
    let mut references = Vec::new();
    let mut scanned = 0;
    for source in source_files(&args.path)? {
        if let Some(text) = read_source(&source) {
            scanned += 1;
            references.extend(find_references(&source.display().to_string(), &text));
        }
    }
    let report = cross_check(defined.keys().copied(), references);
    let failed = !report.unknown.is_empty() || (args.fail_on_unused && !report.unused.is_empty());

    let mut out = std::io::stdout().lock();
    if json {
        let unused: Vec<_> = report
            .unused
            .iter()
            .map(|key| json!({"key": key, "file": defined[key.as_str()].display().to_string()}))
            .collect();
        let document = json!({
            "references": report.references,
            "unknown": report.unknown,
            "unused": unused,
            "scannedFiles": scanned,
            "failed": failed,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?;
    } else {
        for reference in &report.unknown {
            writeln!(
                out,
                "{}: unknown flag '{}': no flag file defines it",
                location(reference),
                reference.key
            )?;
        }
        for key in &report.unused {
            writeln!(
                out,
                "{}: {key}: unused: no reference under {}",
                defined[key.as_str()].display(),
                args.path.display()
            )?;
        }
        let used = defined.len() - report.unused.len();
        writeln!(
            out,
            "{} reference{} in {} file{} scanned: {used} of {} flag{} used, {} unknown \
             reference{}, {} unused flag{}{}",
            report.references.len(),
            plural(report.references.len()),
            scanned,
            plural(scanned),
            defined.len(),
            plural(defined.len()),
            report.unknown.len(),
            plural(report.unknown.len()),
            report.unused.len(),
            plural(report.unused.len()),
            if failed { ": failed" } else { "" }
        )?;
    }
    out.flush()?;
    if failed {
        exit_failed();
    }
    Ok(())
}

fn location(reference: &FlagReference) -> String {
    format!("{}:{}:{}", reference.path, reference.line, reference.column)
}

/// Source files under `root` in the scanned languages, sorted by path. Symbolic links are
/// not followed (they could loop or leave the tree); an unreadable subdirectory is reported
/// and skipped.
fn source_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    let mut first = true;
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if first => {
                return Err(error).with_context(|| format!("cannot read {}", dir.display()));
            }
            Err(error) => {
                eprintln!("warning: skipping {}: {error}", dir.display());
                continue;
            }
        };
        first = false;
        for entry in entries.filter_map(Result::ok) {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() && !SKIPPED_DIRS.contains(&name.as_ref()) {
                pending.push(entry.path());
            } else if kind.is_file() && is_source_file(&name) {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The text of a source file, or `None` for files too large, unreadable, or not UTF-8 text.
fn read_source(path: &Path) -> Option<String> {
    let size = std::fs::metadata(path).ok()?.len();
    if size > MAX_SOURCE_BYTES {
        return None;
    }
    let bytes = std::fs::read(path)
        .map_err(|error| eprintln!("warning: skipping {}: {error}", path.display()))
        .ok()?;
    if bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}
