//! End-to-end tests of `ramp proxy --config FILE` (and `ramp demo`) as real processes: demo
//! apps as backends, the router in front, HTTP/1.1 keep-alive clients, signals and file edits.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    Client, Proc, RampProxy, demo_app, free_port, line_of, load, local, metric_value, revisions,
    temp_dir, wait_for_revision,
};

/// How quickly a changed file must take effect (the router checks it twice a second).
const RELOAD_WITHIN: Duration = Duration::from_millis(2500);

/// Two revisions with weights 80/20 over a few thousand keep-alive requests split within five
/// standard deviations, every reply names its revision, and the admin endpoint reports it.
#[tokio::test]
async fn weighted_split_with_revision_header_and_admin_endpoints() {
    let (_a1, a1) = demo_app("v1", &[]).await;
    let (_a2, a2) = demo_app("v1", &[]).await;
    let (_b, b) = demo_app("v2", &[]).await;
    let mut router = RampProxy::start(&revisions(&[("v1", 80, &[a1, a2]), ("v2", 20, &[b])])).await;

    let connections = 4;
    let per_connection = 750;
    let total = connections * per_connection;
    let result = load(router.addr, connections, per_connection, None).await;
    let failures = result.failures();
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed, e.g. {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        router.proc.describe()
    );
    assert_eq!(result.records.len(), total);
    for record in &result.records {
        let reply = record.outcome.as_ref().expect("checked above");
        assert_eq!(
            reply.revision.as_deref(),
            Some(reply.text()),
            "the revision header must name the revision whose app answered: {reply:?}"
        );
    }
    let counts = result.by_revision();
    let keys: Vec<&str> = counts.keys().map(String::as_str).collect();
    assert_eq!(keys, ["v1", "v2"], "{counts:?}");
    let v2 = counts["v2"] as f64;
    let (n, p) = (total as f64, 0.2);
    let sigma = (n * p * (1.0 - p)).sqrt();
    assert!(
        (v2 - n * p).abs() <= 5.0 * sigma,
        "v2 got {v2} of {n} requests; expected {} ± {:.0} (5 sigma) for weight 20/100",
        n * p,
        5.0 * sigma
    );

    let health = router.admin_get("/healthz").await;
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.text(), "ok");

    // The counters are updated as responses finish; give the last ones a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    let metrics = loop {
        let metrics = router.admin_get("/metrics").await;
        assert_eq!(metrics.status, 200);
        let served = |rev: &str| {
            metric_value(
                &metrics.body,
                &format!("ramp_router_requests_total{{revision=\"{rev}\",code=\"2xx\"}}"),
            )
        };
        let seen = (served("v1"), served("v2"));
        if seen == (Some(counts["v1"] as u64), Some(counts["v2"] as u64)) {
            break metrics.body;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics 2xx counts {seen:?} do not match the {counts:?} the clients saw:\n{}",
            metrics.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(metrics.contains("ramp_router_requests_total{revision=\"v1\""));
    assert!(metrics.contains("ramp_router_requests_total{revision=\"v2\""));

    let routes = router.admin_get("/routes").await;
    assert_eq!(routes.status, 200, "{routes:?}");
    let json: serde_json::Value = serde_json::from_str(&routes.body)
        .unwrap_or_else(|e| panic!("/routes is not JSON ({e}): {}", routes.body));
    let listed = json["revisions"]
        .as_array()
        .unwrap_or_else(|| panic!("/routes has no revisions array: {json}"));
    let summary: Vec<(String, u64, BTreeSet<String>)> = listed
        .iter()
        .map(|r| {
            let addrs = r["instances"]
                .as_array()
                .unwrap_or_else(|| panic!("revision without instances: {r}"))
                .iter()
                .map(|i| i["addr"].as_str().unwrap_or_default().to_string())
                .collect();
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["weight"].as_u64().unwrap_or(u64::MAX),
                addrs,
            )
        })
        .collect();
    let expected = vec![
        (
            "v1".to_string(),
            80,
            BTreeSet::from([a1.to_string(), a2.to_string()]),
        ),
        ("v2".to_string(), 20, BTreeSet::from([b.to_string()])),
    ];
    assert_eq!(summary, expected, "/routes: {json}");
    router.proc.assert_alive("after the load");
}

/// Rewriting the file changes the split without a restart, and so does SIGHUP after a change;
/// SIGHUP alone reloads (does not kill the router).
#[tokio::test]
async fn live_reload_on_file_change_and_on_sighup() {
    let (_a, a) = demo_app("v1", &[]).await;
    let (_b, b) = demo_app("v2", &[]).await;
    let all_v1 = revisions(&[("v1", 100, &[a]), ("v2", 0, &[b])]);
    let all_v2 = revisions(&[("v1", 0, &[a]), ("v2", 100, &[b])]);
    let mut router = RampProxy::start(&all_v1).await;

    // A connection opened before the reload keeps going and follows the new table.
    let mut client = Client::connect(router.addr).await.expect("connect");
    for _ in 0..50 {
        let reply = client.get("/", &[]).await.expect("request");
        assert_eq!(
            (reply.status, reply.revision.as_deref()),
            (200, Some("v1")),
            "{reply:?}"
        );
    }

    // 1. The file changes: picked up by the watcher.
    router.write_body(&all_v2);
    let took = wait_for_revision(&mut client, "v2", Duration::from_secs(6)).await;
    assert!(
        took <= RELOAD_WITHIN,
        "the new weights took {took:?} to apply (want <= {RELOAD_WITHIN:?})"
    );
    let after = load(router.addr, 2, 100, None).await;
    assert!(after.failures().is_empty(), "{:?}", after.failures());
    assert_eq!(
        after.by_revision().get("v2").copied(),
        Some(200),
        "with weights 0/100 every new request goes to v2: {:?}",
        after.by_revision()
    );
    router.proc.assert_alive("after a file reload");

    // 2. The file changes and SIGHUP is sent right away.
    router.write_body(&all_v1);
    router.proc.signal("HUP");
    let took = wait_for_revision(&mut client, "v1", Duration::from_secs(6)).await;
    assert!(
        took <= RELOAD_WITHIN,
        "after SIGHUP the new weights took {took:?} to apply"
    );
    router.proc.assert_alive("after SIGHUP");

    // 3. SIGHUP with no change still reloads (one more table swap), and the router lives.
    tokio::time::sleep(Duration::from_millis(1200)).await; // let any watcher tick settle
    let swaps_before = router
        .metric("ramp_router_table_swaps_total")
        .await
        .expect("ramp_router_table_swaps_total in /metrics");
    let reloads_before = router
        .proc
        .stderr()
        .matches("configuration reloaded")
        .count();
    router.proc.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let swaps = router.metric("ramp_router_table_swaps_total").await;
        if swaps > Some(swaps_before) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP on an unchanged file did not reload (swaps still {swaps:?}):\n{}",
            router.proc.describe()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reloads = router
        .proc
        .stderr()
        .matches("configuration reloaded")
        .count();
    assert!(
        reloads > reloads_before,
        "no 'configuration reloaded' logged:\n{}",
        router.proc.stderr()
    );
    router
        .proc
        .assert_alive("after SIGHUP on an unchanged file");
    let reply = client.get("/", &[]).await.expect("request after SIGHUP");
    assert_eq!(reply.revision.as_deref(), Some("v1"), "{reply:?}");
}

/// A reload that cannot be applied is refused with a message naming the line and field, the old
/// table keeps serving, the router stays up, and a good file is applied afterwards.
#[tokio::test]
async fn bad_reloads_are_refused_and_the_old_table_keeps_serving() {
    let (_a, a) = demo_app("v1", &[]).await;
    let (_b, b) = demo_app("v2", &[]).await;
    let all_v1 = revisions(&[("v1", 100, &[a]), ("v2", 0, &[b])]);
    let all_v2 = revisions(&[("v1", 0, &[a]), ("v2", 100, &[b])]);
    let mut router = RampProxy::start(&all_v1).await;
    let mut client = Client::connect(router.addr).await.expect("connect");

    let syntax = router.document(&format!(
        "revisions:\n  - name: v1\n    weight: 0\n    instances: [\"{a}\"]\n  - name: v2\n    weight: [100\n    instances: [\"{b}\"]\n"
    ));
    let unknown_field = router.document(&format!(
        "revisions:\n  - name: v1\n    weight: 0\n    instances: [\"{a}\"]\n  - name: v2\n    weight: 100\n    wieght: 100\n    instances: [\"{b}\"]\n"
    ));
    let bad_address = router.document(&format!(
        "revisions:\n  - name: v1\n    weight: 0\n    instances: [\"{a}\"]\n  - name: v2\n    weight: 100\n    instances: [\"127.0.0.1:notaport\"]\n"
    ));
    let unknown_rule_revision = router.document(&format!(
        "{all_v2}rules:\n  - match: [{{header: x-canary, exact: \"yes\"}}]\n    revision: v9\n"
    ));
    let moved_listen = format!(
        "listen: {}\nadmin: {}\nrevisionHeader: x-ramp-revision\nworkers: 2\n{all_v2}",
        local(free_port()),
        router.admin
    );
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "YAML syntax error",
            syntax.clone(),
            vec![format!("line {}", line_of(&syntax, "weight: [100"))],
        ),
        (
            "unknown field",
            unknown_field.clone(),
            vec![
                "wieght".to_string(),
                format!("line {}", line_of(&unknown_field, "wieght")),
            ],
        ),
        (
            "bad instance address",
            bad_address.clone(),
            vec![
                "revisions[1].instances[0]".to_string(),
                format!("line {}", line_of(&bad_address, "notaport")),
            ],
        ),
        (
            "rule to an unknown revision",
            unknown_rule_revision.clone(),
            vec![
                "rules[0].revision".to_string(),
                format!("line {}", line_of(&unknown_rule_revision, "revision: v9")),
            ],
        ),
        (
            "listen address changed",
            moved_listen,
            vec!["listen cannot change".to_string()],
        ),
    ];

    for (what, text, expected) in cases {
        let seen_before = router.proc.stderr().len();
        router.write_text(&text);
        // The old table keeps answering for a while (well past the watcher's period).
        let started = Instant::now();
        let mut answered = 0;
        while started.elapsed() < Duration::from_millis(1500) {
            let reply = client
                .get("/", &[])
                .await
                .unwrap_or_else(|e| panic!("after a bad reload ({what}): {e}"));
            assert_eq!(
                (reply.status, reply.revision.as_deref()),
                (200, Some("v1")),
                "after a bad reload ({what}) the old table must keep serving: {reply:?}\n{}",
                router.proc.describe()
            );
            answered += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(answered > 20, "only {answered} requests in 1.5 s");

        let deadline = Instant::now() + Duration::from_secs(3);
        let message = loop {
            let stderr = router.proc.stderr();
            let new = stderr.get(seen_before..).unwrap_or_default().to_string();
            if new.contains("reload refused") {
                break new;
            }
            assert!(
                Instant::now() < deadline,
                "no 'reload refused' logged for the {what}:\n{stderr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for needle in &expected {
            assert!(
                message.contains(needle.as_str()),
                "the refusal of the {what} should mention {needle:?}; it says:\n{message}"
            );
        }
        assert!(
            !message.contains("configuration reloaded"),
            "the {what} was reported as reloaded:\n{message}"
        );
        router
            .proc
            .assert_alive(&format!("after a bad reload ({what})"));
    }

    // A good file is applied again.
    router.write_body(&all_v2);
    let took = wait_for_revision(&mut client, "v2", Duration::from_secs(6)).await;
    assert!(
        took <= RELOAD_WITHIN,
        "the good file took {took:?} to apply after the bad ones"
    );
    router.proc.assert_alive("after the good reload");
}

/// Startup with an invalid file exits non-zero naming the file, the field and the line; a
/// missing file exits non-zero naming the path.
#[tokio::test]
async fn invalid_or_missing_config_at_startup_exits_nonzero_with_a_precise_message() {
    let dir = temp_dir("startup");
    let listen = local(free_port());
    let up = local(free_port());
    let cases: Vec<(&str, String, Vec<String>)> = {
        let unknown_field = format!(
            "listen: {listen}\nrevisions:\n  - name: v1\n    weight: 80\n    instances: [\"{up}\"]\n  - name: v2\n    wieght: 20\n    instances: [\"{up}\"]\n"
        );
        let bad_address = format!(
            "listen: {listen}\nrevisions:\n  - name: v1\n    weight: 80\n    instances: [\"{up}\"]\n  - name: v2\n    weight: 20\n    instances: [\"127.0.0.1:notaport\"]\n"
        );
        let unknown_rule = format!(
            "listen: {listen}\nrevisions:\n  - name: v1\n    weight: 100\n    instances: [\"{up}\"]\nrules:\n  - match: [{{header: x-canary, exact: \"yes\"}}]\n    revision: v9\n"
        );
        let wrong_type = format!(
            "listen: {listen}\nrevisions:\n  - name: v1\n    weight: -5\n    instances: [\"{up}\"]\n"
        );
        let bad_listen = format!(
            "listen: nowhere\nrevisions:\n  - name: v1\n    weight: 1\n    instances: [\"{up}\"]\n"
        );
        vec![
            (
                "unknown-field",
                unknown_field.clone(),
                vec![
                    "wieght".into(),
                    format!("line {}", line_of(&unknown_field, "wieght")),
                ],
            ),
            (
                "bad-address",
                bad_address.clone(),
                vec![
                    "revisions[1].instances[0]".into(),
                    format!("line {}", line_of(&bad_address, "notaport")),
                ],
            ),
            (
                "unknown-rule-revision",
                unknown_rule.clone(),
                vec![
                    "rules[0].revision".into(),
                    format!("line {}", line_of(&unknown_rule, "revision: v9")),
                ],
            ),
            (
                "wrong-type",
                wrong_type.clone(),
                vec![
                    "weight".into(),
                    format!("line {}", line_of(&wrong_type, "weight: -5")),
                ],
            ),
            (
                "bad-listen",
                bad_listen,
                vec!["listen".into(), "line 1".into()],
            ),
        ]
    };
    for (name, text, expected) in cases {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &text).expect("write config");
        let shown = path.display().to_string();
        let mut proc = Proc::spawn(
            format!("ramp proxy ({name})"),
            &["proxy", "--config", &shown],
        );
        let status = proc
            .wait_exit(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{name}: still running with an invalid config"));
        assert!(!status.success(), "{name}: exited with {status}");
        let stderr = proc.stderr();
        assert!(
            stderr.contains(&shown),
            "{name}: the message should name the file {shown}:\n{stderr}"
        );
        for needle in &expected {
            assert!(
                stderr.contains(needle.as_str()),
                "{name}: the message should mention {needle:?}:\n{stderr}"
            );
        }
    }

    let missing = dir.path().join("no-such-router.yaml");
    let shown = missing.display().to_string();
    let mut proc = Proc::spawn("ramp proxy (missing file)", &["proxy", "--config", &shown]);
    let status = proc
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("still running without a config file");
    assert!(!status.success(), "exited with {status}");
    let stderr = proc.stderr();
    assert!(
        stderr.contains(&shown),
        "the message should name the missing file:\n{stderr}"
    );
}

/// `kill -9` of one of a revision's two instances under continuous keep-alive load costs no
/// request: everything is answered 200, by the survivor once the other is gone.
#[tokio::test]
async fn killing_an_instance_under_load_fails_no_request() {
    let (mut victim, a) = demo_app("v1-a", &["--latency", "5ms"]).await;
    let (_survivor, b) = demo_app("v1-b", &["--latency", "5ms"]).await;
    let router = RampProxy::start(&revisions(&[("v1", 100, &[a, b])])).await;

    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(load(router.addr, 4, usize::MAX, Some(Arc::clone(&stop))));
    tokio::time::sleep(Duration::from_millis(700)).await;
    victim.kill();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let result = tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("load did not stop")
        .expect("load task");

    let failures = result.failures();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed when an instance was killed, e.g. {:?}\n{}",
        failures.len(),
        result.records.len(),
        &failures[..failures.len().min(5)],
        router.proc.describe()
    );
    let served_by = |range: &dyn Fn(Instant) -> bool, version: &str| {
        result
            .records
            .iter()
            .filter(|r| range(r.at))
            .filter(|r| matches!(&r.outcome, Ok(reply) if reply.text() == version))
            .count()
    };
    let before = |at: Instant| at < killed_at;
    let after = |at: Instant| at > killed_at + Duration::from_millis(100);
    assert!(
        served_by(&before, "v1-a") > 0 && served_by(&before, "v1-b") > 0,
        "both instances should serve before the kill (a: {}, b: {})",
        served_by(&before, "v1-a"),
        served_by(&before, "v1-b")
    );
    let late = result.records.iter().filter(|r| after(r.at)).count();
    assert!(late > 50, "only {late} requests after the kill");
    assert_eq!(
        served_by(&after, "v1-b"),
        late,
        "after the kill every request is answered by the survivor"
    );
}

/// SIGTERM lets a slow in-flight request finish with 200, then the router exits 0 promptly
/// (even though the client keeps its keep-alive connection open).
#[tokio::test]
async fn sigterm_finishes_the_in_flight_request_and_exits_zero() {
    let (_app, app) = demo_app("v1", &["--latency", "800ms"]).await;
    let mut router = RampProxy::start(&revisions(&[("v1", 100, &[app])])).await;
    let mut client = Client::connect(router.addr).await.expect("connect");

    let started = Instant::now();
    let in_flight = tokio::spawn(async move {
        let reply = client.get("/", &[]).await;
        (reply, client)
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    router.proc.signal("TERM");
    let (reply, client) = in_flight.await.expect("request task");
    let took = started.elapsed();
    let reply = reply.unwrap_or_else(|e| {
        panic!(
            "the in-flight request failed after SIGTERM: {e}\n{}",
            router.proc.describe()
        )
    });
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.text(), "v1");
    assert!(took >= Duration::from_millis(800), "answered in {took:?}");

    let exited = router.proc.wait_exit(Duration::from_secs(5)).await;
    let status = exited.unwrap_or_else(|| {
        panic!(
            "the router was still running 5 s after the in-flight request finished:\n{}",
            router.proc.describe()
        )
    });
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM should end the router with status 0:\n{}",
        router.proc.describe()
    );
    drop(client);
}

/// `ramp demo` runs its steps and reports no failure.
#[tokio::test]
async fn demo_runs_and_reports_its_steps() {
    let mut demo = Proc::spawn("ramp demo", &["demo", "--requests", "500"]);
    let status = demo
        .wait_exit(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("ramp demo still running after 30 s:\n{}", demo.describe()));
    assert!(
        status.success(),
        "ramp demo exited {status}:\n{}",
        demo.describe()
    );
    let out = demo.stdout();
    for needle in [
        "weighted split",
        "atomic table swap",
        "sticky",
        "0 moved back",
        "header rule",
        "failed 0",
        "0 failed",
        "0 connection(s) cut",
    ] {
        assert!(out.contains(needle), "demo output lacks {needle:?}:\n{out}");
    }
    // Every failure count printed is zero.
    let words: Vec<&str> = out.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if *w == "failed" {
            let before = words[i.saturating_sub(1)].trim_end_matches(',');
            let after = words.get(i + 1).copied().unwrap_or("");
            let count = if before.parse::<u64>().is_ok() {
                before
            } else {
                after
            };
            assert_eq!(count, "0", "a failure count is not zero:\n{out}");
        }
    }
}
