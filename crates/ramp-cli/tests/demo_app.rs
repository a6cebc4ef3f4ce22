//! End-to-end tests of `ramp demo-app`: the backend the router tests stand on.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Proc, demo_app};

/// `--error-rate 0.2` answers about a fifth of requests with 500 (within five standard
/// deviations over 1000 requests); every answer names the version.
#[tokio::test]
async fn error_rate_answers_that_share_with_500() {
    let (_app, addr) = demo_app("v7", &["--error-rate", "0.2"]).await;
    let mut tasks = Vec::new();
    for _ in 0..2 {
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await.expect("connect");
            let (mut ok, mut errors) = (0u32, 0u32);
            for _ in 0..500 {
                let reply = client.get("/", &[]).await.expect("request");
                assert_eq!(reply.app_version.as_deref(), Some("v7"), "{reply:?}");
                match reply.status {
                    200 => {
                        assert_eq!(reply.text(), "v7");
                        ok += 1;
                    }
                    500 => {
                        assert_eq!(reply.text(), "v7 failed");
                        errors += 1;
                    }
                    other => panic!("unexpected status {other}: {reply:?}"),
                }
            }
            (ok, errors)
        }));
    }
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let (o, e) = t.await.expect("task");
        ok += o;
        errors += e;
    }
    assert_eq!(ok + errors, 1000);
    let (n, p) = (1000.0, 0.2);
    let sigma = f64::sqrt(n * p * (1.0 - p));
    assert!(
        (f64::from(errors) - n * p).abs() <= 5.0 * sigma,
        "{errors} of 1000 answered 500; expected {} ± {:.0}",
        n * p,
        5.0 * sigma
    );
}

/// `--error-rate 1` fails every request, but `/healthz` stays 200.
#[tokio::test]
async fn healthz_is_ok_even_when_every_request_fails() {
    let (_app, addr) = demo_app("v1", &["--error-rate", "1"]).await;
    let mut client = Client::connect(addr).await.expect("connect");
    for _ in 0..20 {
        let reply = client.get("/", &[]).await.expect("request");
        assert_eq!(reply.status, 500, "{reply:?}");
        let health = client.get("/healthz", &[]).await.expect("healthz");
        assert_eq!(health.status, 200, "{health:?}");
        assert_eq!(health.text(), "ok");
    }
}

/// `--latency 50ms` delays every answer by at least 50 ms.
#[tokio::test]
async fn latency_delays_each_answer() {
    let (_app, addr) = demo_app("v1", &["--latency", "50ms"]).await;
    let mut client = Client::connect(addr).await.expect("connect");
    for _ in 0..5 {
        let started = Instant::now();
        let reply = client.get("/", &[]).await.expect("request");
        let took = started.elapsed();
        assert_eq!((reply.status, reply.text()), (200, "v1"), "{reply:?}");
        assert!(took >= Duration::from_millis(50), "answered in {took:?}");
    }
}

/// An out-of-range `--error-rate` is refused at startup, naming the flag.
#[tokio::test]
async fn bad_error_rate_exits_nonzero_naming_the_flag() {
    let mut app = Proc::spawn(
        "demo-app --error-rate 2",
        &["demo-app", "--listen", "127.0.0.1:0", "--error-rate", "2"],
    );
    let status = app
        .wait_exit(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("demo-app accepted --error-rate 2:\n{}", app.describe()));
    assert!(!status.success(), "exited {status}");
    let stderr = app.stderr();
    assert!(
        stderr.contains("--error-rate"),
        "the message should name the flag:\n{stderr}"
    );
}
