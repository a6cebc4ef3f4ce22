//! `probe_once` and `run_command` against real listeners and commands.

mod common;

use std::time::{Duration, Instant};

use ramp_model::ProbeAction;
use ramp_runtime::{probe_once, run_command};
use tokio::net::TcpListener;

const SECOND: Duration = Duration::from_secs(1);

fn http(path: &str) -> ProbeAction {
    ProbeAction::Http {
        path: path.to_owned(),
    }
}

fn exec(command: &[&str]) -> ProbeAction {
    ProbeAction::Exec {
        command: command.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn status_for(path: &str) -> u16 {
    match path {
        "/ok" => 200,
        "/moved" => 302,
        "/missing" => 404,
        _ => 500,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_probe_accepts_200_to_399() {
    let (port, requests) = common::http_server(status_for).await;
    assert_eq!(probe_once(&http("/ok"), port, SECOND).await, Ok(()));
    assert_eq!(probe_once(&http("/moved"), port, SECOND).await, Ok(()));
    assert_eq!(
        probe_once(&http("/missing"), port, SECOND).await,
        Err("HTTP status 404".to_owned())
    );
    assert_eq!(
        probe_once(&http("/boom"), port, SECOND).await,
        Err("HTTP status 500".to_owned())
    );
    let first = requests.lock().unwrap()[0].clone();
    assert_eq!(
        first,
        "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_probe_fails_on_a_closed_port_or_a_silent_server() {
    let port = common::closed_port().await;
    let err = probe_once(&http("/ok"), port, SECOND).await.unwrap_err();
    assert!(err.contains("connect"), "{err}");

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let err = probe_once(&http("/ok"), port, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    assert!(started.elapsed() < SECOND);
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_probe_needs_a_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_eq!(probe_once(&ProbeAction::Tcp, port, SECOND).await, Ok(()));
    drop(listener);
    assert!(probe_once(&ProbeAction::Tcp, port, SECOND).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_probe_needs_exit_zero_and_gets_the_port() {
    assert_eq!(probe_once(&exec(&["true"]), 1, SECOND).await, Ok(()));
    let err = probe_once(&exec(&["false"]), 1, SECOND).await.unwrap_err();
    assert!(err.contains("exited with status 1"), "{err}");
    let check = exec(&["sh", "-c", "test \"$1\" = 4321", "sh", "{port}"]);
    assert_eq!(probe_once(&check, 4321, SECOND).await, Ok(()));
    assert!(probe_once(&check, 1234, SECOND).await.is_err());
    let err = probe_once(&exec(&["/nonexistent/ramp-probe"]), 1, SECOND)
        .await
        .unwrap_err();
    assert!(err.contains("/nonexistent/ramp-probe"), "{err}");
    assert!(probe_once(&exec(&[]), 1, SECOND).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_probe_is_killed_on_timeout() {
    let dir = common::temp_dir("exec-timeout");
    let marker = dir.path().join("survived");
    let script = format!("sleep 1; touch {}", marker.display());
    let started = Instant::now();
    let err = probe_once(&exec(&["sh", "-c", &script]), 1, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_millis(900));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(!marker.exists(), "the probe command kept running");
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_command_kills_the_whole_group_on_timeout() {
    let args = |list: &[&str]| -> Vec<String> { list.iter().map(|s| (*s).to_owned()).collect() };
    assert_eq!(run_command(&args(&["true"]), SECOND).await, Ok(()));
    let err = run_command(&args(&["false"]), SECOND).await.unwrap_err();
    assert!(err.contains("exited with status 1"), "{err}");
    assert!(run_command(&[], SECOND).await.is_err());
    // `{port}` is the exec probe's business: left as it is here.
    let literal = args(&["sh", "-c", "test \"$1\" = '{port}'", "sh", "{port}"]);
    assert_eq!(run_command(&literal, SECOND).await, Ok(()));

    // A child of the command (in the background, so not the process waited for) goes too.
    let dir = common::temp_dir("run-command-timeout");
    let marker = dir.path().join("survived");
    let script = format!("(sleep 1; touch {}) & wait", marker.display());
    let started = Instant::now();
    let err = run_command(&args(&["sh", "-c", &script]), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_millis(900));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(!marker.exists(), "a child of the command kept running");
    dir.close().unwrap();
}
