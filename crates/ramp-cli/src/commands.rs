//! `ramp apply | get | history | promote | pause | ... | logs | events | incident`: clients of
//! the API, kubectl style.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use ramp_server::ServiceStatus;
use serde_json::{Value, json};

use crate::api_client::ApiClient;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Human-readable tables.
    Table,
    /// The API's JSON.
    Json,
    /// The API's answer as YAML.
    Yaml,
    /// A Markdown document (`ramp incident`).
    Markdown,
}

pub(crate) fn print_value(value: &Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json | Output::Table => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => print!(
            "{}",
            serde_saphyr::to_string(value).context("cannot render YAML")?
        ),
        Output::Markdown => bail!("-o markdown is supported by `ramp incident` only"),
    }
    Ok(())
}

fn path_segment(name: &str) -> anyhow::Result<&str> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        bail!("{name:?} is not a service name");
    }
    Ok(name)
}

pub(crate) async fn apply(client: &ApiClient, file: &Path, output: Output) -> anyhow::Result<()> {
    let spec = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read the spec from stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let base_dir = match file
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && file != Path::new("-"))
    {
        Some(dir) => std::fs::canonicalize(dir)
            .with_context(|| format!("cannot resolve {}", dir.display()))?,
        None => std::env::current_dir()?,
    };
    let answer = client
        .post_json(
            "/api/v1/services",
            json!({ "spec": spec, "baseDir": base_dir }),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    if output != Output::Table {
        return print_value(&answer, output);
    }
    let service = answer["service"].as_str().unwrap_or("?");
    let revision = answer["revision"].as_u64().unwrap_or(0);
    let fresh = if answer["newRevision"].as_bool() == Some(true) {
        "new"
    } else {
        "unchanged"
    };
    println!("service/{service} applied: revision {revision} ({fresh})");
    if let Ok(status) = serde_json::from_value::<ServiceStatus>(answer["status"].clone())
        && let Some(r) = &status.rollout
    {
        println!(
            "rollout {}: {} -> revision {}, {}",
            r.id, r.kind, r.to_revision, r.phase
        );
        println!("watch it: ramp get rollout {service} --watch");
    }
    Ok(())
}

pub(crate) async fn get_services(client: &ApiClient, output: Output) -> anyhow::Result<()> {
    let answer = client.get_json("/api/v1/services").await?;
    if output != Output::Table {
        return print_value(&answer, output);
    }
    let services: Vec<ServiceStatus> = serde_json::from_value(answer["services"].clone())?;
    if services.is_empty() {
        println!("No services. Apply one: ramp apply -f service.yaml");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            let ready: u32 = s.stacks.iter().map(|k| k.ready).sum();
            vec![
                s.name.clone(),
                s.strategy.clone(),
                s.stable_revision.map_or("-".into(), |r| r.to_string()),
                format!("{ready}/{}", s.replicas),
                s.rollout.as_ref().map_or("-".into(), |r| r.phase.clone()),
                traffic_line(s),
                s.listen.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &[
            "NAME", "STRATEGY", "STABLE", "READY", "ROLLOUT", "TRAFFIC", "LISTEN",
        ],
        &rows,
    );
    Ok(())
}

fn traffic_line(s: &ServiceStatus) -> String {
    if s.traffic.is_empty() {
        return "-".into();
    }
    s.traffic
        .iter()
        .map(|t| format!("{} {:.0}%", t.route, t.percent))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn get_rollout(
    client: &ApiClient,
    name: &str,
    watch: bool,
    output: Output,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/services/{}", path_segment(name)?);
    let clear = watch && std::io::stdout().is_terminal() && output == Output::Table;
    loop {
        let answer = client.get_json(&path).await?;
        if output != Output::Table {
            print_value(&answer["status"], output)?;
        } else {
            let status: ServiceStatus = serde_json::from_value(answer["status"].clone())?;
            if clear {
                print!("\x1b[2J\x1b[H");
            }
            print_rollout(&status);
        }
        if !watch {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !clear {
            println!();
        }
    }
}

fn print_rollout(s: &ServiceStatus) {
    println!("Name:       {}", s.name);
    println!("Strategy:   {}", s.strategy);
    println!("Listen:     {}", s.listen.as_deref().unwrap_or("-"));
    println!(
        "Stable:     {}",
        s.stable_revision
            .map_or("-".into(), |r| format!("revision {r}"))
    );
    match &s.rollout {
        Some(r) => {
            let from = r
                .from_revision
                .map_or(String::new(), |f| format!("revision {f} -> "));
            println!(
                "Rollout:    {} ({}): {from}revision {}",
                r.id, r.kind, r.to_revision
            );
            let reason = r
                .reason
                .as_deref()
                .map_or(String::new(), |why| format!(" - {why}"));
            println!("Status:     {}{reason}", r.phase);
            if let Some((step, steps)) = r.step {
                let name = r.step_name.as_deref().unwrap_or("done");
                println!("Step:       {step}/{steps} ({name})");
                println!("Weight:     {}%", r.weight);
            }
            if !r.header_routes.is_empty() || !r.mirror_routes.is_empty() {
                println!(
                    "Routes:     header {:?}, mirror {:?}",
                    r.header_routes, r.mirror_routes
                );
            }
        }
        None => println!("Rollout:    -"),
    }
    for a in &s.analyses {
        let metrics: Vec<String> = a
            .metrics
            .iter()
            .map(|(name, phase, count)| format!("{name} {phase} ({count} measured)"))
            .collect();
        println!("Analysis:   {} {}: {}", a.kind, a.phase, metrics.join(", "));
    }
    println!("Traffic:    {}", traffic_line(s));
    println!("\nStacks:");
    let rows: Vec<Vec<String>> = s
        .stacks
        .iter()
        .map(|k| {
            vec![
                k.revision.to_string(),
                k.route.clone(),
                k.desired.to_string(),
                k.ready.to_string(),
                k.running.to_string(),
                k.stopping.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "  REVISION",
            "ROUTE",
            "DESIRED",
            "READY",
            "RUNNING",
            "STOPPING",
        ],
        &indent(rows),
    );
    println!("\nInstances:");
    let rows: Vec<Vec<String>> = s
        .instances
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                i.revision.to_string(),
                i.port.to_string(),
                i.phase.clone(),
                i.restarts.to_string(),
                i.pid.map_or("-".into(), |p| p.to_string()),
            ]
        })
        .collect();
    print_table(
        &["  ID", "REVISION", "PORT", "PHASE", "RESTARTS", "PID"],
        &indent(rows),
    );
}

fn indent(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|mut r| {
            if let Some(first) = r.first_mut() {
                first.insert_str(0, "  ");
            }
            r
        })
        .collect()
}

pub(crate) async fn history(client: &ApiClient, name: &str, output: Output) -> anyhow::Result<()> {
    let answer = client
        .get_json(&format!(
            "/api/v1/services/{}/revisions",
            path_segment(name)?
        ))
        .await?;
    if output != Output::Table {
        return print_value(&answer, output);
    }
    let rows: Vec<Vec<String>> = answer["revisions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let template = &r["template"];
            let command = std::iter::once(template["command"].as_str().unwrap_or("").to_string())
                .chain(
                    template["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(String::from)),
                )
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                r["number"].to_string(),
                r["createdAt"].as_str().unwrap_or("").to_string(),
                if r["stable"].as_bool() == Some(true) {
                    "stable".into()
                } else if r["running"].as_bool() == Some(true) {
                    "running".into()
                } else {
                    "-".into()
                },
                r["digest"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(12)
                    .collect(),
                command,
            ]
        })
        .collect();
    print_table(
        &["REVISION", "CREATED", "STATE", "DIGEST", "COMMAND"],
        &rows,
    );
    Ok(())
}

/// `promote`, `pause`, `resume`, `abort`, `retry`, `restart`, `undo`, `scale`.
pub(crate) async fn act(
    client: &ApiClient,
    name: &str,
    action: &str,
    body: Value,
    output: Output,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/services/{}/{action}", path_segment(name)?);
    let answer = client.post_json(&path, body).await?;
    if output != Output::Table {
        return print_value(&answer, output);
    }
    let status: ServiceStatus = serde_json::from_value(answer)?;
    let phase = status.rollout.as_ref().map_or("-".to_string(), |r| {
        let reason = r
            .reason
            .as_deref()
            .map_or(String::new(), |why| format!(" ({why})"));
        format!("rollout {} {}{reason}", r.id, r.phase)
    });
    println!(
        "service/{name} {action}: {phase}; traffic: {}",
        traffic_line(&status)
    );
    Ok(())
}

pub(crate) async fn delete(client: &ApiClient, name: &str) -> anyhow::Result<()> {
    client
        .call(
            "DELETE",
            &format!("/api/v1/services/{}", path_segment(name)?),
            None,
        )
        .await?;
    println!("service/{name} deleted");
    Ok(())
}

pub(crate) async fn logs(
    client: &ApiClient,
    name: &str,
    instance: Option<&str>,
    tail: usize,
    follow: bool,
) -> anyhow::Result<()> {
    let mut query = format!("tail={tail}");
    if let Some(id) = instance {
        query.push_str(&format!("&instance={id}"));
    }
    let path = format!("/api/v1/services/{}/logs?{query}", path_segment(name)?);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let text = client.call("GET", &path, None).await?;
        let lines: Vec<String> = text.lines().map(String::from).collect();
        // Print what is new since the last poll (the API returns the last lines each time).
        let overlap = (0..=seen.len().min(lines.len()))
            .rev()
            .find(|&k| seen[seen.len() - k..] == lines[..k])
            .unwrap_or(0);
        for line in &lines[overlap..] {
            println!("{line}");
        }
        seen = lines;
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub(crate) async fn events(
    client: &ApiClient,
    name: Option<&str>,
    follow: bool,
    output: Output,
) -> anyhow::Result<()> {
    let mut after = 0u64;
    loop {
        let mut path = format!("/api/v1/events?after={after}");
        if let Some(name) = name {
            path.push_str(&format!("&service={}", path_segment(name)?));
        }
        let answer = client.get_json(&path).await?;
        let list = answer["events"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if output != Output::Table {
            print_value(&answer, output)?;
        } else {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|e| {
                    vec![
                        e["at"].as_str().unwrap_or("").to_string(),
                        e["actor"].as_str().unwrap_or("").to_string(),
                        e["service"].as_str().unwrap_or("-").to_string(),
                        e["kind"].as_str().unwrap_or("").to_string(),
                        e["message"].as_str().unwrap_or("").to_string(),
                    ]
                })
                .collect();
            if after == 0 || !rows.is_empty() {
                print_table(&["TIME", "ACTOR", "SERVICE", "KIND", "MESSAGE"], &rows);
            }
        }
        after = list
            .iter()
            .filter_map(|e| e["id"].as_u64())
            .max()
            .unwrap_or(after);
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `ramp incident [ID]`: the incidents (rolled-back rollouts), newest first, or one of them.
pub(crate) async fn incident(
    client: &ApiClient,
    id: Option<u64>,
    service: Option<&str>,
    limit: usize,
    output: Output,
) -> anyhow::Result<()> {
    match id {
        Some(id) => show_incident(client, id, output).await,
        None => list_incidents(client, service, limit, output).await,
    }
}

/// One incident: the server's Markdown rendering for people, its record for machines.
async fn show_incident(client: &ApiClient, id: u64, output: Output) -> anyhow::Result<()> {
    let path = format!("/api/v1/incidents/{id}");
    match output {
        Output::Table | Output::Markdown => {
            let text = client
                .call("GET", &format!("{path}?format=markdown"), None)
                .await?;
            println!("{}", text.trim_end());
            Ok(())
        }
        Output::Json | Output::Yaml => print_value(&client.get_json(&path).await?, output),
    }
}

async fn list_incidents(
    client: &ApiClient,
    service: Option<&str>,
    limit: usize,
    output: Output,
) -> anyhow::Result<()> {
    let mut path = format!("/api/v1/incidents?limit={limit}");
    if let Some(name) = service {
        path.push_str(&format!("&service={}", path_segment(name)?));
    }
    let answer = client.get_json(&path).await?;
    if matches!(output, Output::Json | Output::Yaml) {
        return print_value(&answer, output);
    }
    let list = answer["incidents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if list.is_empty() {
        let whose = service.map_or(String::new(), |s| format!(" of service {s}"));
        println!("No incidents{whose}. One is recorded whenever a rollout is rolled back.");
        return Ok(());
    }
    let header = [
        "ID", "TIME", "SERVICE", "ROLLOUT", "REVISION", "TRIGGER", "REASON",
    ];
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            let number = |key: &str| i[key].as_u64().map_or("-".into(), |n| n.to_string());
            let text = |key: &str| {
                let t = i[key].as_str().unwrap_or("-");
                t.split_whitespace().collect::<Vec<_>>().join(" ")
            };
            vec![
                number("id"),
                text("at"),
                text("service"),
                number("rollout"),
                number("revision"),
                text("trigger"),
                text("reason"),
            ]
        })
        .collect();
    if output == Output::Markdown {
        print_markdown_table(&header, &rows);
    } else {
        print_table(&header, &rows);
    }
    Ok(())
}

/// A Markdown table (cells are single-line already; `|` is escaped).
fn print_markdown_table(header: &[&str], rows: &[Vec<String>]) {
    println!("| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        println!("| {} |", cells.join(" | "));
    }
}

/// Columns padded to their widest cell; the last column is not padded.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out
    };
    println!("{}", line(header.to_vec()));
    for row in rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
}
