//! The control plane's flags through the real `ramp` binary: `ramp flags apply` a flag file to
//! a real `ramp server` serving OFREP, pull the kill switch with `ramp flags disable` and see
//! OFREP answer DISABLED, `enable` it again, and read who did it in `ramp flags history`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Proc, RAMP, free_port, local, temp_dir, wait_listening};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The user the CLI reports as the actor (it sends `$USER`).
const OPERATOR: &str = "oncall-dana";

const FLAGS: &str = r#"
metadata:
  flagSetId: shop
flags:
  checkout:
    state: ENABLED
    variants: {old: v1, new: v2}
    defaultVariant: new
    targeting:
      if: [{"==": [{var: plan}, legacy]}, old, null]
  banner:
    state: ENABLED
    variants: {shown: true, hidden: false}
    defaultVariant: hidden
"#;

/// `ramp server` with OFREP, gRPC evaluation and gRPC sync on, in a fresh data directory. Dropping it kills the server and
/// every process naming the data directory (its router agent).
struct ControlPlane {
    server: Option<Proc>,
    url: String,
    ofrep: SocketAddr,
    grpc: SocketAddr,
    sync: SocketAddr,
    data_dir: String,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    async fn start() -> ControlPlane {
        let dir = temp_dir("flags-control-plane");
        let data_dir = dir.path().join("data").to_string_lossy().into_owned();
        let mut last_error = String::new();
        for _ in 0..3 {
            let (api, ofrep) = (local(free_port()), local(free_port()));
            let (grpc, sync) = (local(free_port()), local(free_port()));
            let (api_arg, ofrep_arg) = (api.to_string(), ofrep.to_string());
            let (grpc_arg, sync_arg) = (grpc.to_string(), sync.to_string());
            let mut server = Proc::spawn(
                "ramp server",
                &[
                    "server",
                    "--data-dir",
                    &data_dir,
                    "--listen",
                    &api_arg,
                    "--flags-ofrep-listen",
                    &ofrep_arg,
                    "--flags-grpc-listen",
                    &grpc_arg,
                    "--flags-sync-listen",
                    &sync_arg,
                ],
            );
            // The flag listeners are bound before the API: once the API answers, all do.
            match wait_listening(&mut server, api, Duration::from_secs(20)).await {
                Ok(()) => {
                    return ControlPlane {
                        server: Some(server),
                        url: format!("http://{api}"),
                        ofrep,
                        grpc,
                        sync,
                        data_dir,
                        dir,
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("ramp server did not start: {last_error}");
    }

    /// `ramp ARGS --server URL` as [`OPERATOR`]: exit code, stdout, stderr.
    async fn ramp(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let output = tokio::process::Command::new(RAMP)
            .args(args)
            .arg("--server")
            .arg(&self.url)
            .env("USER", OPERATOR)
            .env("NO_COLOR", "1")
            .env("RAMP_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(30), output)
            .await
            .unwrap_or_else(|_| panic!("ramp {args:?} did not finish within 30 s"))
            .unwrap_or_else(|e| panic!("ramp {args:?}: {e}"));
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// `ramp ARGS` that must succeed; its stdout.
    async fn ramp_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ramp(args).await;
        assert_eq!(code, Some(0), "ramp {args:?}\n{out}\n{err}");
        out
    }

    /// An OFREP evaluation of `key` on the control plane.
    async fn evaluate(&self, key: &str, context: Value) -> (u16, Value) {
        let body = json!({ "context": context }).to_string();
        let path = format!("/ofrep/v1/evaluate/flags/{key}");
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.ofrep).await.unwrap();
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut raw = String::new();
            stream.read_to_string(&mut raw).await.unwrap();
            let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
            let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
            (status, serde_json::from_str(body).expect("a JSON answer"))
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("an OFREP answer within 10 s")
    }

    /// SIGTERM: the server stops its router agent and exits cleanly.
    async fn stop(mut self) {
        let mut server = self.server.take().expect("running");
        server.signal("TERM");
        let status = server
            .wait_exit(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("still running 20 s after SIGTERM\n{}", server.describe()));
        assert!(status.success(), "{status}\n{}", server.describe());
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill();
        }
        for (pid, _) in ramp_runtime::processes_mentioning(&self.data_dir) {
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .status();
        }
    }
}

#[tokio::test]
async fn apply_disable_enable_and_history_through_the_cli() {
    let plane = ControlPlane::start().await;
    let file = plane.write("flags.yaml", FLAGS);

    let applied = plane.ramp_ok(&["flags", "apply", "-f", &file]).await;
    assert!(
        applied.contains("flag/checkout created (version 1)"),
        "{applied}"
    );
    assert!(
        applied.contains("flag/banner created (version 1)"),
        "{applied}"
    );
    let again = plane.ramp_ok(&["flags", "apply", "-f", &file]).await;
    assert!(
        again.contains("flag/checkout unchanged (version 1)"),
        "{again}"
    );

    let (status, served) = plane.evaluate("checkout", json!({"plan": "team"})).await;
    assert_eq!(status, 200, "{served}");
    assert_eq!(
        (&served["value"], &served["reason"]),
        (&json!("v2"), &json!("DEFAULT"))
    );
    assert_eq!(served["metadata"]["flagSetId"], "shop", "{served}");

    // The kill switch: DISABLED from the next evaluation on, so clients use their defaults.
    let disabled = plane.ramp_ok(&["flags", "disable", "checkout"]).await;
    assert!(
        disabled.contains("flag/checkout disabled (version 2)"),
        "{disabled}"
    );
    let (status, off) = plane.evaluate("checkout", json!({"plan": "team"})).await;
    assert_eq!((status, &off["reason"]), (200, &json!("DISABLED")), "{off}");
    assert!(off.get("value").is_none(), "{off}");
    let twice = plane.ramp_ok(&["flags", "disable", "checkout"]).await;
    assert!(twice.contains("already disabled"), "{twice}");

    plane.ramp_ok(&["flags", "enable", "checkout"]).await;
    let (_, on) = plane.evaluate("checkout", json!({"plan": "legacy"})).await;
    assert_eq!(
        (&on["value"], &on["reason"]),
        (&json!("v1"), &json!("TARGETING_MATCH"))
    );

    let history = plane.ramp_ok(&["flags", "history", "checkout"]).await;
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three changes:\n{history}");
    for (line, kind) in lines[1..]
        .iter()
        .zip(["flag.created", "flag.disabled", "flag.enabled"])
    {
        assert!(line.contains(OPERATOR) && line.contains(kind), "{line}");
    }
    assert!(
        lines[2].contains(r#"/state: "ENABLED" -> "DISABLED""#),
        "{history}"
    );

    // A file with a mistake is refused before any request: nothing changes.
    let broken = plane.write(
        "broken.json",
        r#"{"flags": {"checkout": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "b"}}}"#,
    );
    let (code, _, err) = plane.ramp(&["flags", "apply", "-f", &broken]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("broken.json")
            && err.contains("$.flags['checkout'].defaultVariant")
            && err.contains("nothing was applied"),
        "{err}"
    );
    let record: Value = serde_json::from_str(
        &plane
            .ramp_ok(&["flags", "get", "checkout", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(record["version"], 3);
    assert_eq!(record["definition"]["defaultVariant"], "new");

    plane.ramp_ok(&["flags", "delete", "banner"]).await;
    let listed = plane.ramp_ok(&["flags", "list"]).await;
    assert!(
        listed.contains("checkout") && !listed.contains("banner"),
        "{listed}"
    );
    let (code, _, err) = plane.ramp(&["flags", "get", "banner"]).await;
    assert_eq!(code, Some(2));
    assert!(err.contains("not found"), "{err}");
    plane.stop().await;
}

/// A release flag serving `new` to everyone, with a removal date but no owner.
const RELEASE: &str = r#"
flags:
  new-checkout:
    state: ENABLED
    variants: {new: true, old: false}
    defaultVariant: new
    metadata: {type: release, expires: "2099-01-01"}
"#;

/// Today (UTC) as `YYYY-MM-DD`, `days` from now.
fn day_from_now(days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    ramp_flags::governance::Date::from_unix_seconds(i64::try_from(now).unwrap())
        .plus_days(days)
        .to_string()
}

/// The rules `ramp flags lint --server` reports on the control plane's flags, judged as on
/// `today`; the run must pass (no --strict).
async fn lint_rules(plane: &ControlPlane, today: &str) -> Vec<String> {
    let out = plane
        .ramp_ok(&["flags", "lint", "--today", today, "-o", "json"])
        .await;
    let report: Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(report["server"], json!(plane.url), "{report}");
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|finding| finding["rule"].as_str().expect("a rule").to_owned())
        .collect()
}

#[tokio::test]
async fn lint_judges_the_control_planes_flags() {
    let plane = ControlPlane::start().await;
    let release = plane.write("release.yaml", RELEASE);
    plane.ramp_ok(&["flags", "apply", "-f", &release]).await;

    // The missing owner is a warning: reported, and failing the run under --strict.
    let (code, out, err) = plane.ramp(&["flags", "lint", "--strict"]).await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    let finding = format!(
        "{}: new-checkout: missing-owner: $.flags['new-checkout'].metadata.owner",
        plane.url
    );
    assert!(out.contains(&finding), "{out}");
    assert!(
        out.ends_with(&format!(
            "0 errors, 1 warning in 1 flag (control plane at {}): failed\n",
            plane.url
        )),
        "{out}"
    );
    let (code, out, err) = plane.ramp(&["flags", "lint"]).await;
    assert_eq!(
        code,
        Some(0),
        "a warning alone passes without --strict\n{out}\n{err}"
    );

    // Finished or not is judged from the flag's last change, which was today.
    assert_eq!(
        lint_rules(&plane, &day_from_now(20)).await,
        ["missing-owner"]
    );
    assert_eq!(
        lint_rules(&plane, &day_from_now(40)).await,
        ["missing-owner", "finished-release"]
    );

    // With an owner, the flag is clean.
    let owned = plane.write(
        "owned.yaml",
        &RELEASE.replace("type: release,", "type: release, owner: team-checkout,"),
    );
    plane.ramp_ok(&["flags", "apply", "-f", &owned]).await;
    let clean = plane.ramp_ok(&["flags", "lint", "--strict"]).await;
    assert_eq!(
        clean,
        format!(
            "0 errors, 0 warnings in 1 flag (control plane at {})\n",
            plane.url
        )
    );

    // Files and the control plane are never linted together.
    let (code, _, err) = plane.ramp(&["flags", "lint", "-f", &owned]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("-f and --server cannot be used together"),
        "{err}"
    );
    plane.stop().await;
}

#[tokio::test]
async fn the_server_serves_flags_over_grpc_when_asked() {
    let plane = ControlPlane::start().await;
    for addr in [plane.grpc, plane.sync] {
        tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .expect("connects in time")
        .unwrap_or_else(|e| panic!("nothing listens on {addr}: {e}"));
    }
    // The addresses are printed once the server has started, which may be just after the API
    // first answers.
    let lines = [
        format!(
            "flags over gRPC (flagd.evaluation v1, v2) on {}",
            plane.grpc
        ),
        format!("flags over gRPC sync (flagd.sync.v1) on {}", plane.sync),
    ];
    let server = plane.server.as_ref().expect("running");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !lines.iter().all(|line| server.stdout().contains(line)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{lines:?} not all in:\n{}",
            server.stdout()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    plane.stop().await;
}
