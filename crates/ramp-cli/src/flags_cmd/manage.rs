//! `ramp flags list | get | apply | delete | disable | enable | history`: the flags the control
//! plane manages, through its API (`--server` / `RAMP_SERVER`, as every API command).
//!
//! `apply` validates the whole file with the flag engine before the first request, so a file
//! with a mistake changes nothing; each flag is then sent as a self-contained definition
//! (`$evaluators` inlined, the file's metadata merged in), since the control plane keeps flags
//! one by one.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ramp_flags::model::{FlagFile, Format, Targeting};
use ramp_server::{MAX_KEY_LEN, valid_key};
use serde_json::{Value, json};

use crate::api_client::ApiClient;
use crate::commands::{Output, print_table, print_value};

/// The control-plane subcommands of `ramp flags`.
#[derive(Debug, Subcommand)]
pub(crate) enum ManageCommand {
    /// List the flags the control plane manages.
    List(Remote),
    /// Show one managed flag (`-o json` / `-o yaml` for the API's record).
    Get(KeyArgs),
    /// Create or update every flag of a flagd flag file (JSON or YAML; `-` reads stdin) in the
    /// control plane; the file is validated first, and flags not in it are left alone.
    Apply(ApplyArgs),
    /// Delete a managed flag (its history is kept).
    Delete(KeyArgs),
    /// Kill switch: serve the flag as DISABLED, so every client falls back to its code default.
    Disable(KeyArgs),
    /// Serve a disabled flag again.
    Enable(KeyArgs),
    /// Who changed a flag, when, and what changed.
    History(KeyArgs),
}

/// Where the API is and how to print, from `ramp`'s global options.
#[derive(Debug, Args)]
pub(crate) struct Remote {
    #[arg(from_global)]
    server: String,
    #[arg(from_global)]
    output: Output,
}

#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// The flag key.
    key: String,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The flag file.
    #[arg(long, short = 'f', value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn run(command: ManageCommand) -> anyhow::Result<()> {
    match command {
        ManageCommand::List(remote) => list(&remote).await,
        ManageCommand::Get(args) => get(&args).await,
        ManageCommand::Apply(args) => apply(&args).await,
        ManageCommand::Delete(args) => delete(&args).await,
        ManageCommand::Disable(args) => set_state(&args, "disable").await,
        ManageCommand::Enable(args) => set_state(&args, "enable").await,
        ManageCommand::History(args) => history(&args).await,
    }
}

impl Remote {
    fn client(&self) -> anyhow::Result<ApiClient> {
        ApiClient::new(&self.server)
    }

    /// Prints `value` as JSON or YAML when asked; false when a table is wanted instead.
    fn print_structured(&self, value: &Value) -> anyhow::Result<bool> {
        if self.output == Output::Table {
            return Ok(false);
        }
        print_value(value, self.output)?;
        Ok(true)
    }
}

impl KeyArgs {
    /// `/api/v1/flags/{key}`, after checking the key is one the control plane accepts.
    fn path(&self) -> anyhow::Result<String> {
        check_key(&self.key)?;
        Ok(format!("/api/v1/flags/{}", self.key))
    }
}

async fn list(remote: &Remote) -> anyhow::Result<()> {
    let answer = remote.client()?.get_json("/api/v1/flags").await?;
    if remote.print_structured(&answer)? {
        return Ok(());
    }
    let flags = answer["flags"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if flags.is_empty() {
        println!("No flags. Add some: ramp flags apply -f flags.yaml");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = flags
        .iter()
        .map(|flag| {
            let definition = &flag["definition"];
            let variants = definition["variants"]
                .as_object()
                .map(|v| v.keys().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            vec![
                text(&flag["key"]),
                text(&definition["state"]),
                definition["defaultVariant"].as_str().unwrap_or("-").into(),
                variants,
                if is_targeted(definition) { "yes" } else { "no" }.into(),
                flag["version"].to_string(),
                text(&flag["updatedAt"]),
            ]
        })
        .collect();
    print_table(
        &[
            "KEY",
            "STATE",
            "DEFAULT",
            "VARIANTS",
            "TARGETING",
            "VERSION",
            "UPDATED",
        ],
        &rows,
    );
    Ok(())
}

async fn get(args: &KeyArgs) -> anyhow::Result<()> {
    let answer = args.remote.client()?.get_json(&args.path()?).await?;
    if args.remote.print_structured(&answer)? {
        return Ok(());
    }
    println!("Key:       {}", text(&answer["key"]));
    println!("Version:   {}", answer["version"]);
    println!("Created:   {}", text(&answer["createdAt"]));
    println!("Updated:   {}", text(&answer["updatedAt"]));
    print!(
        "{}",
        serde_saphyr::to_string(&answer["definition"]).context("cannot render YAML")?
    );
    Ok(())
}

async fn apply(args: &ApplyArgs) -> anyhow::Result<()> {
    let definitions = read_flag_file(&args.file)?;
    let client = args.remote.client()?;
    let mut results = Vec::new();
    for (key, definition) in definitions {
        let path = format!("/api/v1/flags/{key}");
        let answer = client
            .call("PUT", &path, Some(definition))
            .await
            .with_context(|| format!("{}: flag {key}", args.file.display()))?;
        let answer: Value = serde_json::from_str(&answer)
            .with_context(|| format!("the server's answer to PUT {path} is not JSON"))?;
        let outcome = match answer["event"]["kind"].as_str() {
            Some("flag.created") => "created",
            Some(_) => "updated",
            None => "unchanged",
        };
        let version = answer["flag"]["version"].as_u64().unwrap_or(0);
        if args.remote.output == Output::Table {
            println!("flag/{key} {outcome} (version {version})");
        }
        results.push(json!({ "key": key, "result": outcome, "version": version }));
    }
    if args.remote.output != Output::Table {
        args.remote.print_structured(&json!({ "flags": results }))?;
    }
    Ok(())
}

async fn delete(args: &KeyArgs) -> anyhow::Result<()> {
    args.remote
        .client()?
        .call("DELETE", &args.path()?, None)
        .await?;
    println!("flag/{} deleted", args.key);
    Ok(())
}

/// `action` is `disable` or `enable`.
async fn set_state(args: &KeyArgs, action: &str) -> anyhow::Result<()> {
    let path = format!("{}/{action}", args.path()?);
    let answer = args.remote.client()?.post_json(&path, Value::Null).await?;
    if args.remote.print_structured(&answer)? {
        return Ok(());
    }
    let version = &answer["flag"]["version"];
    if answer["changed"].as_bool() == Some(true) {
        println!("flag/{} {action}d (version {version})", args.key);
    } else {
        println!(
            "flag/{} was already {action}d (version {version}); nothing changed",
            args.key
        );
    }
    Ok(())
}

async fn history(args: &KeyArgs) -> anyhow::Result<()> {
    let path = format!("{}/history", args.path()?);
    let answer = args.remote.client()?.get_json(&path).await?;
    if args.remote.print_structured(&answer)? {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = answer["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|event| {
            vec![
                text(&event["at"]),
                text(&event["actor"]),
                text(&event["kind"]),
                event["data"]["version"].to_string(),
                describe_diff(&event["data"]["diff"]),
            ]
        })
        .collect();
    print_table(&["TIME", "ACTOR", "KIND", "VERSION", "CHANGES"], &rows);
    Ok(())
}

/// A diff's changes on one line: `/state: "ENABLED" -> "DISABLED"; /metadata/owner: + "x"`.
fn describe_diff(diff: &Value) -> String {
    const LONGEST_VALUE: usize = 40;
    let shown = |value: Option<&Value>| -> String {
        let text = value.map_or_else(String::new, Value::to_string);
        if text.chars().count() > LONGEST_VALUE {
            let cut: String = text.chars().take(LONGEST_VALUE - 3).collect();
            format!("{cut}...")
        } else {
            text
        }
    };
    let changes = diff.as_array().map(Vec::as_slice).unwrap_or_default();
    let lines: Vec<String> = changes
        .iter()
        .map(|change| {
            let path = change["path"].as_str().unwrap_or_default();
            let path = if path.is_empty() { "flag" } else { path };
            match (change.get("from"), change.get("to")) {
                (None, to) => format!("{path}: + {}", shown(to)),
                (from, None) => format!("{path}: - {}", shown(from)),
                (from, to) => format!("{path}: {} -> {}", shown(from), shown(to)),
            }
        })
        .collect();
    if lines.is_empty() {
        "-".into()
    } else {
        lines.join("; ")
    }
}

/// Reads and validates a flag file; every flag as the self-contained definition to send, by key.
fn read_flag_file(file: &Path) -> anyhow::Result<Vec<(String, Value)>> {
    let parsed = if file == Path::new("-") {
        let text =
            std::io::read_to_string(std::io::stdin()).context("cannot read flags from stdin")?;
        FlagFile::parse(&text, Format::Auto)
            .map_err(|errors| anyhow::anyhow!("-: {errors}; nothing was applied"))?
    } else {
        ramp_flagd::load_file(file)
            .map_err(|error| anyhow::anyhow!("{error}; nothing was applied"))?
    };
    let mut problems = Vec::new();
    for flag in parsed.flags() {
        if !valid_key(flag.key()) {
            problems.push(format!(
                "$.flags['{}']: the control plane's flag keys are 1 to {MAX_KEY_LEN} ASCII \
                 letters, digits, '-', '_' and '.'",
                flag.key()
            ));
        }
        if let Targeting::Broken(reason) = flag.targeting() {
            problems.push(reason.clone());
        }
    }
    if !problems.is_empty() {
        bail!(
            "{}: {} problem(s); nothing was applied\n  {}",
            file.display(),
            problems.len(),
            problems.join("\n  ")
        );
    }
    if parsed.is_empty() {
        bail!("{}: the file defines no flags", file.display());
    }
    Ok(parsed
        .flags()
        .map(|flag| (flag.key().to_owned(), flag.to_json()))
        .collect())
}

fn is_targeted(definition: &Value) -> bool {
    definition["targeting"]
        .as_object()
        .is_some_and(|rule| !rule.is_empty())
}

fn check_key(key: &str) -> anyhow::Result<()> {
    if !valid_key(key) {
        bail!(
            "{key:?} is not a flag key: use 1 to {MAX_KEY_LEN} ASCII letters, digits, '-', '_' and '.'"
        );
    }
    Ok(())
}

/// A string member as it reads, anything else as JSON (a missing one as `-`).
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{describe_diff, read_flag_file, valid_key};

    #[test]
    fn diffs_read_as_one_line() {
        let diff = json!([
            {"path": "/state", "from": "ENABLED", "to": "DISABLED"},
            {"path": "/metadata", "to": {"owner": "team"}},
            {"path": "/targeting", "from": {"if": [{"==": [{"var": "plan"}, "pro-plan-with-a-long-name"]}, "a", "b"]}},
        ]);
        let line = describe_diff(&diff);
        assert!(
            line.starts_with(
                r#"/state: "ENABLED" -> "DISABLED"; /metadata: + {"owner":"team"}; /targeting: - "#
            ),
            "{line}"
        );
        assert!(line.ends_with("..."), "{line}");
        assert_eq!(describe_diff(&json!([{"path": "", "to": 1}])), "flag: + 1");
        assert_eq!(describe_diff(&json!([])), "-");
    }

    #[test]
    fn flag_files_are_validated_and_made_self_contained() {
        let dir = std::env::temp_dir().join(format!("ramp-flags-manage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("flags.yaml");
        let yaml = r#"
$evaluators:
  pro: {"==": [{var: plan}, pro]}
metadata: {flagSetId: shop}
flags:
  checkout:
    state: ENABLED
    variants: {big: true, small: false}
    defaultVariant: small
    targeting: {if: [{$ref: pro}, big, null]}
"#;
        std::fs::write(&good, yaml).unwrap();
        let flags = read_flag_file(&good).unwrap();
        assert_eq!(flags.len(), 1);
        let (key, definition) = &flags[0];
        assert_eq!(key, "checkout");
        assert_eq!(
            definition["targeting"],
            json!({"if": [{"==": [{"var": "plan"}, "pro"]}, "big", null]})
        );
        assert_eq!(definition["metadata"]["flagSetId"], "shop");

        let bad = dir.join("bad.json");
        std::fs::write(
            &bad,
            r#"{"flags": {"a b": {"state": "ENABLED", "variants": {"x": 1}},
                "c": {"state": "ENABLED", "variants": {"x": 1}, "targeting": {"$ref": "nope"}}}}"#,
        )
        .unwrap();
        let err = read_flag_file(&bad).unwrap_err().to_string();
        assert!(
            err.contains("bad.json: 2 problem(s); nothing was applied"),
            "{err}"
        );
        assert!(err.contains("$.flags['a b']"), "{err}");
        assert!(err.contains("nope"), "{err}");
        let invalid = dir.join("invalid.json");
        std::fs::write(
            &invalid,
            r#"{"flags": {"a": {"state": "ON", "variants": {"x": 1}}}}"#,
        )
        .unwrap();
        let err = read_flag_file(&invalid).unwrap_err().to_string();
        assert!(err.contains("$.flags['a'].state"), "{err}");
        assert!(
            err.contains("invalid.json") && err.ends_with("nothing was applied"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(valid_key("a.b-c_d") && !valid_key("a/b"));
    }
}
