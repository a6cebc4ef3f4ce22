//! End-to-end tests of `ramp flags serve` as a real process: OFREP answers from a flag file,
//! edits picked up, SIGTERM ends it cleanly, and a bad file stops it at startup.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Proc, free_port, local, temp_dir, wait_listening, write_atomic};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FLAGS: &str = r#"{"flags": {"checkout": {"state": "ENABLED",
  "variants": {"old": "v1", "new": "v2"}, "defaultVariant": "old",
  "targeting": {"if": [{"==": [{"var": "targetingKey"}, "beta-user"]}, "new", null]}}}}"#;

/// `POST path` with a JSON body on a fresh connection; the status and the body.
async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        (status, body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("an answer within 10 s")
}

async fn evaluate(addr: SocketAddr, context: Value) -> Value {
    let body = json!({ "context": context }).to_string();
    let (status, text) = post(addr, "/ofrep/v1/evaluate/flags/checkout", &body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON answer")
}

#[tokio::test]
async fn serves_ofrep_follows_edits_and_exits_cleanly_on_sigterm() {
    let dir = temp_dir("flags");
    let path = dir.path().join("flags.json");
    std::fs::write(&path, FLAGS).unwrap();
    let ofrep = local(free_port());
    let management = local(free_port());
    let (ofrep_arg, management_arg) = (ofrep.to_string(), management.to_string());
    let (grpc_arg, sync_arg) = (
        local(free_port()).to_string(),
        local(free_port()).to_string(),
    );
    let mut proc = Proc::spawn(
        "ramp flags serve",
        &[
            "flags",
            "serve",
            "--file",
            path.to_str().unwrap(),
            "--ofrep-listen",
            &ofrep_arg,
            "--management-listen",
            &management_arg,
            "--grpc-listen",
            &grpc_arg,
            "--sync-listen",
            &sync_arg,
        ],
    );
    wait_listening(&mut proc, ofrep, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let default = evaluate(ofrep, json!({"targetingKey": "someone"})).await;
    assert_eq!(default["value"], "v1");
    assert_eq!(default["reason"], "DEFAULT");
    let beta = evaluate(ofrep, json!({"targetingKey": "beta-user"})).await;
    assert_eq!(
        (&beta["value"], &beta["reason"]),
        (&json!("v2"), &json!("TARGETING_MATCH"))
    );
    let (status, bulk) = post(ofrep, "/ofrep/v1/evaluate/flags", "{}").await;
    assert_eq!(status, 200);
    assert!(bulk.contains("\"checkout\""), "{bulk}");

    write_atomic(
        &path,
        &FLAGS.replace(r#""defaultVariant": "old""#, r#""defaultVariant": "new""#),
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while evaluate(ofrep, json!({})).await["value"] != "v2" {
        assert!(
            Instant::now() < deadline,
            "the edit was not served within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    proc.signal("TERM");
    let status = proc
        .wait_exit(Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM\n{}", proc.describe()));
    assert!(status.success(), "{status}\n{}", proc.describe());
}

#[tokio::test]
async fn an_invalid_flag_file_stops_startup_naming_the_file_and_json_path() {
    let dir = temp_dir("flags-bad");
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "flags:\n  checkout:\n    state: ENABLED\n    variants: {a: 1}\n    defaultVariant: b\n",
    )
    .unwrap();
    let ofrep = local(free_port()).to_string();
    let management = local(free_port()).to_string();
    let (grpc, sync) = (
        local(free_port()).to_string(),
        local(free_port()).to_string(),
    );
    let mut proc = Proc::spawn(
        "ramp flags serve (bad file)",
        &[
            "flags",
            "serve",
            "--file",
            path.to_str().unwrap(),
            "--ofrep-listen",
            &ofrep,
            "--management-listen",
            &management,
            "--grpc-listen",
            &grpc,
            "--sync-listen",
            &sync,
        ],
    );
    let status = proc
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits at startup");
    assert!(!status.success());
    let stderr = proc.stderr();
    assert!(stderr.contains("broken.yaml"), "{stderr}");
    assert!(
        stderr.contains("$.flags['checkout'].defaultVariant"),
        "{stderr}"
    );
}
