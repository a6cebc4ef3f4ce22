//! `ramp incident`: its command line, and a real incident — a canary aborted through the CLI —
//! listed and shown by the real binary against a real `ramp server`.

mod common;
mod rollout_env;

use std::time::Duration;

use rollout_env::{
    Plane, Svc, at_indefinite_pause, phase, ramp_cli, ready_count, serial, settled_on,
};
use serde_json::Value;

/// How long a deploy or a rollout step of a couple of demo apps may take.
const ROLLOUT_LIMIT: Duration = Duration::from_secs(30);

/// An address nothing listens on (the port of a listener that was just closed).
fn unused_server() -> String {
    format!("http://127.0.0.1:{}", common::free_port())
}

#[tokio::test]
async fn command_line_is_checked_before_any_request() {
    let server = unused_server();

    let (code, out, err) = ramp_cli(&server, &["incident", "--help"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    for needle in ["[ID]", "--service", "--limit", "markdown"] {
        assert!(out.contains(needle), "help lacks {needle}: {out}");
    }

    let (code, _, err) = ramp_cli(&server, &["incident", "seven"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid value 'seven'"), "{err}");

    let (code, _, err) = ramp_cli(&server, &["incident", "7", "--service", "web"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");

    let (code, _, err) = ramp_cli(&server, &["incident", "--service", "no/such"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not a service name"), "{err}");

    let (code, _, err) = ramp_cli(&server, &["incident"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot reach the ramp server"), "{err}");

    // Markdown is a format of `ramp incident` only, refused before any request.
    let (code, _, err) = ramp_cli(&server, &["get", "services", "-o", "markdown"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("-o markdown is supported by `ramp incident` only"),
        "{err}"
    );
}

/// Nothing recorded yet, then a canary aborted with `ramp abort`: the list shows the incident,
/// `ramp incident ID` its Markdown report with the rollout's events, `-o json` its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_canary_is_listed_and_shown() {
    let _serial = serial().await;
    let mut plane = Plane::start("incident").await;
    let url = plane.url();

    let (code, out, err) = ramp_cli(&url, &["incident"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("No incidents."), "{out}");
    let (code, _, err) = ramp_cli(&url, &["incident", "1"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not found: no incident 1"), "{err}");

    let svc = Svc::new("web", 1);
    let strategy = "canary:\n  steps:\n    - setWeight: 50\n    - pause: {}";
    plane.apply_ok(&svc.spec("v1", strategy)).await;
    plane
        .wait_for(&svc.name, "serving revision 1", ROLLOUT_LIMIT, |s| {
            settled_on(s, 1) && phase(s) == "Completed" && ready_count(s) == 1
        })
        .await;
    plane.apply_ok(&svc.spec("v2", strategy)).await;
    let paused = plane
        .wait_for(
            &svc.name,
            "canary paused",
            ROLLOUT_LIMIT,
            at_indefinite_pause,
        )
        .await;
    let rollout = paused.rollout.as_ref().map(|r| r.id).expect("a rollout");

    let (code, out, err) = ramp_cli(&url, &["abort", "web"]).await;
    assert_eq!(code, Some(0), "abort: {out}{err}");

    let (code, out, err) = ramp_cli(&url, &["incident"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID", "TIME", "SERVICE", "ROLLOUT", "REVISION", "TRIGGER", "REASON"
        ]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], "1", "{out}");
    assert_eq!(
        row[2..6],
        ["web", &rollout.to_string(), "2", "manual"],
        "{out}"
    );

    let (code, out, err) = ramp_cli(&url, &["incident", "--service", "other"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("No incidents of service other."), "{out}");

    let (code, report, err) = ramp_cli(&url, &["incident", "1"]).await;
    assert_eq!(code, Some(0), "{report}{err}");
    assert!(
        report.starts_with(&format!("# Incident 1: web, rollout {rollout}\n")),
        "{report}"
    );
    assert!(
        report.contains("Revision 2 was rolled back to revision 1."),
        "{report}"
    );
    assert!(report.contains("- **Trigger:** manual"), "{report}");
    assert!(report.contains("## Timeline"), "{report}");
    let started = report
        .lines()
        .position(|l| l.contains("| RolloutStarted |"))
        .unwrap_or_else(|| panic!("no RolloutStarted in the timeline:\n{report}"));
    let aborted = report
        .lines()
        .position(|l| l.contains("| Aborted |"))
        .unwrap_or_else(|| panic!("no Aborted in the timeline:\n{report}"));
    assert!(started < aborted, "{report}");
    let (code, markdown, err) = ramp_cli(&url, &["incident", "1", "-o", "markdown"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(markdown, report);

    let (code, out, err) = ramp_cli(&url, &["incident", "1", "-o", "json"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let record: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(record["service"], "web");
    assert_eq!(record["rollout"], rollout);
    assert_eq!(record["revision"], 2);
    assert_eq!(record["stableRevision"], 1);
    let timeline = record["timeline"].as_array().expect("timeline");
    let text = |e: &Value, key: &str| e[key].as_str().unwrap_or_default().to_string();
    assert!(
        timeline.iter().any(|e| text(e, "kind") == "Aborted"),
        "{timeline:#?}"
    );
    // The window starts with the aborted rollout: the first deploy's rollout is not in it.
    let starts: Vec<String> = timeline
        .iter()
        .filter(|e| text(e, "kind") == "RolloutStarted")
        .map(|e| text(e, "message"))
        .collect();
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert!(
        starts[0].starts_with(&format!("rollout {rollout}:")),
        "{starts:?}"
    );

    plane.stop().await;
}
