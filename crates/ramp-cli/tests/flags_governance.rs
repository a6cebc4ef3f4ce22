//! `ramp flags lint` and `ramp flags refs` as a CI job runs them: the real binary over files in
//! a temporary directory, judged by output and exit status (0 clean, 1 failed, 2 bad input).

mod common;

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{RAMP, temp_dir};
use serde_json::Value;

/// What a finished `ramp` run left behind.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ramp(args: &[&str]) -> Run {
    let output = Command::new(RAMP)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RAMP_SERVER")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {RAMP}: {e}"));
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write(dir: &Path, relative: &str, content: &[u8]) -> String {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A flag `key` with on/off variants, `on` served to everyone, and `metadata`.
fn flag(key: &str, metadata: &str) -> String {
    format!(
        r#""{key}": {{"state": "ENABLED", "variants": {{"on": true, "off": false}},
            "defaultVariant": "on", "metadata": {metadata}}}"#
    )
}

fn flag_file(flags: &[String]) -> String {
    format!("{{\"flags\": {{{}}}}}", flags.join(",\n"))
}

/// `(key, rule)` of every finding line; each line must read `file: key: rule: message`.
fn findings(run: &Run, file: &str) -> Vec<(String, String)> {
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    let summary = lines.pop().expect("a summary line");
    assert!(summary.contains("error"), "summary: {summary}");
    lines
        .into_iter()
        .map(|line| {
            let rest = line
                .strip_prefix(&format!("{file}: "))
                .unwrap_or_else(|| panic!("line does not start with the file: {line}"));
            let mut parts = rest.splitn(3, ": ");
            let key = parts.next().unwrap().to_owned();
            let rule = parts.next().unwrap().to_owned();
            let message = parts.next().expect("a message");
            assert!(
                message.starts_with("$."),
                "message lacks a JSON path: {line}"
            );
            (key, rule)
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(key, rule)| (key.to_string(), rule.to_string()))
        .collect()
}

const TODAY: &str = "2025-06-15";

#[test]
fn lint_errors_fail_and_name_the_rule_file_and_path() {
    let dir = temp_dir("lint-errors");
    let file = write(
        dir.path(),
        "flags.json",
        flag_file(&[
            flag("expired", r#"{"type": "ops", "expires": "2025-06-01"}"#),
            flag("bad-type", r#"{"type": "feature"}"#),
            flag("bad-date", r#"{"expires": "June"}"#),
            flag("bad-owner", r#"{"owner": ""}"#),
            flag(
                "fine",
                r#"{"owner": "a", "type": "release", "expires": "2025-07-01"}"#,
            ),
        ])
        .as_bytes(),
    );
    let run = ramp(&["flags", "lint", "-f", &file, "--today", TODAY]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        findings(&run, &file),
        pairs(&[
            ("bad-date", "invalid-expiry"),
            ("bad-owner", "invalid-owner"),
            ("bad-type", "invalid-type"),
            ("expired", "expired"),
        ])
    );
    assert!(
        run.stdout.contains(
            "$.flags['expired'].metadata.expires: removal date 2025-06-01 passed 14 days"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("4 errors, 0 warnings in 5 flags (1 file): failed")
    );

    // Before the removal date and with the invalid flags fixed, the same file is clean.
    let clean = write(
        dir.path(),
        "clean.yaml",
        b"flags:\n  expired:\n    state: ENABLED\n    variants: {enabled: true}\n    defaultVariant: enabled\n    metadata: {type: ops, expires: 2025-06-01}\n",
    );
    let run = ramp(&["flags", "lint", "-f", &clean, "--today", "2025-05-31"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .starts_with("0 errors, 0 warnings in 1 flag (1 file)\n")
    );
}

#[test]
fn lint_warnings_pass_unless_strict() {
    let dir = temp_dir("lint-warnings");
    let file = write(
        dir.path(),
        "flags.json",
        flag_file(&[
            flag(
                "release-no-owner",
                r#"{"type": "release", "expires": "2025-07-01"}"#,
            ),
            flag(
                "experiment-no-expiry",
                r#"{"type": "experiment", "owner": "a"}"#,
            ),
            flag(
                "plan-gate",
                r#"{"type": "permission", "expires": "2026-01-01"}"#,
            ),
        ])
        .as_bytes(),
    );
    let run = ramp(&["flags", "lint", "-f", &file, "--today", TODAY]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        findings(&run, &file),
        pairs(&[
            ("experiment-no-expiry", "missing-expiry"),
            ("plan-gate", "permission-expiry"),
            ("release-no-owner", "missing-owner"),
        ])
    );
    let strict = ramp(&["flags", "lint", "-f", &file, "--today", TODAY, "--strict"]);
    assert_eq!(strict.code, 1, "{strict:?}");
    assert!(
        strict
            .stdout
            .contains("0 errors, 3 warnings in 3 flags (1 file): failed")
    );
}

#[test]
fn lint_reports_finished_releases_by_file_age() {
    let dir = temp_dir("lint-finished");
    let release = r#"{"owner": "a", "type": "release", "expires": "2026-01-01"}"#;
    let split = r#""split": {"state": "ENABLED", "variants": {"on": true, "off": false},
        "defaultVariant": "off", "targeting": {"fractional": [["on", 1], ["off", 1]]},
        "metadata": {"owner": "a", "type": "release", "expires": "2026-01-01"}}"#;
    let file = write(
        dir.path(),
        "flags.json",
        flag_file(&[flag("done", release), split.to_owned()]).as_bytes(),
    );
    // Last modified on 2025-05-01: 45 days before TODAY.
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_746_100_800);
    File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(modified))
        .unwrap();

    let run = ramp(&["flags", "lint", "-f", &file, "--today", TODAY, "--strict"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        findings(&run, &file),
        pairs(&[("done", "finished-release")])
    );
    assert!(
        run.stdout.contains("variant 'on' to everyone for 45 days"),
        "{}",
        run.stdout
    );

    let later = ramp(&[
        "flags",
        "lint",
        "-f",
        &file,
        "--today",
        TODAY,
        "--strict",
        "--finished-after",
        "7w",
    ]);
    assert_eq!(later.code, 0, "{later:?}");
}

#[test]
fn lint_json_output_carries_every_field() {
    let dir = temp_dir("lint-json");
    let file = write(
        dir.path(),
        "flags.json",
        flag_file(&[flag("old", r#"{"expires": "2020-01-01"}"#)]).as_bytes(),
    );
    for args in [
        vec!["flags", "lint", "-f", &file, "--today", TODAY, "-o", "json"],
        vec!["-o", "json", "flags", "lint", "-f", &file, "--today", TODAY],
    ] {
        let run = ramp(&args);
        assert_eq!(run.code, 1, "{run:?}");
        let report: Value = serde_json::from_str(&run.stdout).expect("JSON output");
        assert_eq!(report["failed"], true);
        assert_eq!(report["errors"], 1);
        let finding = &report["findings"][0];
        assert_eq!(finding["file"], file.as_str());
        assert_eq!(finding["key"], "old");
        assert_eq!(finding["rule"], "expired");
        assert_eq!(finding["severity"], "error");
        assert_eq!(finding["path"], "$.flags['old'].metadata.expires");
    }
    let yaml = ramp(&["flags", "lint", "-f", &file, "-o", "yaml"]);
    assert_eq!(yaml.code, 2, "{yaml:?}");
}

#[test]
fn lint_and_refs_refuse_unusable_flag_files() {
    let dir = temp_dir("lint-bad-input");
    let invalid = write(
        dir.path(),
        "bad.json",
        br#"{"flags": {"x": {"state": "ON", "variants": {"a": 1}}}}"#,
    );
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    for command in ["lint", "refs"] {
        let tree = dir.path().to_str().unwrap();
        let extra: &[&str] = if command == "refs" {
            &["--path", tree]
        } else {
            &[]
        };
        let run = ramp(&[&["flags", command, "-f", &invalid], extra].concat());
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(&invalid), "{}", run.stderr);
        assert!(run.stderr.contains("$.flags['x'].state"), "{}", run.stderr);
        let run = ramp(&[&["flags", command, "-f", missing], extra].concat());
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(missing), "{}", run.stderr);
    }
}

/// A tree with one call per language, plus places that must not be scanned.
fn source_tree(dir: &Path) {
    write(
        dir,
        "web/app.ts",
        b"import x from 'y';\nconst on = await client.getBooleanValue(\"checkout\", false);\n",
    );
    write(dir, "api/main.go", b"package main\n\nfunc f() {\n\tv, _ := client.StringValue(ctx, \"banner\", \"a\", ec)\n}\n");
    write(dir, "worker/app.py", b"x = client.get_integer_value('retries', 3)\ny = client.get_boolean_value(\"chekout\", False)\n");
    write(
        dir,
        "billing/charge.rb",
        b"client.fetch_boolean_value(flag_key: 'checkout', default_value: false)\n",
    );
    write(
        dir,
        "Svc/Flags.cs",
        b"var b = await client.GetStringValueAsync(\"banner\", \"a\");\n",
    );
    write(
        dir,
        "scripts/probe.php",
        b"<?php\n$r = http_post('/ofrep/v1/evaluate/flags/retries');\n",
    );
    write(
        dir,
        "README.md",
        b"client.getBooleanValue(\"in-docs\", false)\n",
    );
    for skipped in [
        "node_modules/lib/index.js",
        "vendor/x.go",
        "target/gen.rs",
        ".git/hooks/a.py",
    ] {
        write(
            dir,
            skipped,
            b"client.getBooleanValue(\"in-skipped-dir\", false)\n",
        );
    }
    write(
        dir,
        "bin/blob.js",
        b"\0\0client.getBooleanValue(\"in-binary\", false)\n",
    );
    let mut big = b"client.getBooleanValue(\"in-big-file\", false)\n".to_vec();
    big.resize(1024 * 1024 + 1, b' ');
    write(dir, "web/bundle.js", &big);
}

#[test]
fn refs_reports_unknown_references_and_unused_flags() {
    let dir = temp_dir("refs");
    let tree = dir.path().join("src");
    source_tree(&tree);
    let tree = tree.to_str().unwrap();
    let flags = write(
        dir.path(),
        "flags.json",
        flag_file(&[
            flag("checkout", "{}"),
            flag("banner", "{}"),
            flag("retries", "{}"),
            flag("legacy", "{}"),
        ])
        .as_bytes(),
    );

    let run = ramp(&["flags", "refs", "--path", tree, "-f", &flags]);
    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            format!("{tree}/worker/app.py:2:31: unknown flag 'chekout': no flag file defines it"),
            format!("{flags}: legacy: unused: no reference under {tree}"),
        ]
    );
    assert_eq!(
        lines[2],
        "7 references in 6 files scanned: 3 of 4 flags used, 1 unknown reference, 1 unused flag: failed"
    );

    let run = ramp(&["flags", "refs", "--path", tree, "-f", &flags, "-o", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON output");
    let places: Vec<String> = report["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{} {} {}",
                r["path"].as_str().unwrap().trim_start_matches(tree),
                r["line"],
                r["column"],
                r["key"].as_str().unwrap(),
                r["kind"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            "/Svc/Flags.cs:1:43 banner sdk",
            "/api/main.go:4:35 banner sdk",
            "/billing/charge.rb:1:39 checkout sdk",
            "/scripts/probe.php:2:42 retries ofrep",
            "/web/app.ts:2:42 checkout sdk",
            "/worker/app.py:1:31 retries sdk",
            "/worker/app.py:2:31 chekout sdk",
        ]
    );
    assert_eq!(report["unused"][0]["key"], "legacy");
    assert_eq!(report["unknown"][0]["key"], "chekout");
    assert_eq!(report["scannedFiles"], 6);
}

#[test]
fn refs_fails_on_unused_flags_only_when_asked() {
    let dir = temp_dir("refs-unused");
    let tree = dir.path().join("src");
    write(
        &tree,
        "main.go",
        b"v, _ := c.BooleanValue(ctx, \"used\", false, ec)\n",
    );
    let tree = tree.to_str().unwrap();
    let flags = write(
        dir.path(),
        "flags.json",
        flag_file(&[flag("used", "{}"), flag("idle", "{}")]).as_bytes(),
    );
    let run = ramp(&["flags", "refs", "--path", tree, "-f", &flags]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(": idle: unused:"), "{}", run.stdout);
    let run = ramp(&[
        "flags",
        "refs",
        "--path",
        tree,
        "-f",
        &flags,
        "--fail-on-unused",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let run = ramp(&[
        "flags",
        "refs",
        "--path",
        &format!("{tree}/nowhere"),
        "-f",
        &flags,
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("nowhere"), "{}", run.stderr);
}
