//! Routing end to end: weighted splits, header and cookie rules, sticky users across a canary
//! ramp, the revision response header, and per-revision metrics.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use ramp_metrics::StatusClass;
use ramp_route::{Condition, RuleSpec, Source, TableSpec, ValueMatch};
use support::{
    Backend, Client, Reply, assert_share, eventually, fire, no_headers, rev, start_router, table,
    table_from, tally,
};

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Every successful reply names, in `x-ramp-revision`, the revision whose backend served it
/// (backends are named after their revision).
fn assert_revision_header_matches(results: &[Result<Reply, String>]) {
    for r in results {
        let reply = r.as_ref().expect("request succeeds");
        assert_eq!(reply.status, 200, "{}", reply.text());
        let backend = reply.backend().expect("x-backend");
        assert_eq!(
            reply.revision(),
            Some(backend),
            "revision header names the server"
        );
        assert_eq!(reply.text(), backend);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_split_follows_weights() {
    let stable = Backend::start("stable").await;
    let canary = Backend::start("canary").await;
    let router = start_router(table(vec![
        rev("stable", 90, &[stable.addr]),
        rev("canary", 10, &[canary.addr]),
    ]));
    let addr = router.local_addr();

    let n = 3000;
    let results = fire(addr, 4, n, no_headers).await;
    assert_revision_header_matches(&results);
    let t = tally(&results);
    assert_eq!(t.ok, n, "{:?}", t.errors);
    assert_share(t.revision("stable"), n, 0.9, "stable at 90/10");
    assert_share(t.revision("canary"), n, 0.1, "canary at 90/10");

    // Three revisions, 60/30/10, after an atomic swap.
    let third = Backend::start("third").await;
    router.swap_table(table(vec![
        rev("stable", 60, &[stable.addr]),
        rev("canary", 30, &[canary.addr]),
        rev("third", 10, &[third.addr]),
    ]));
    let results = fire(addr, 4, n, no_headers).await;
    assert_revision_header_matches(&results);
    let t = tally(&results);
    assert_eq!(t.ok, n, "{:?}", t.errors);
    assert_share(t.revision("stable"), n, 0.6, "stable at 60/30/10");
    assert_share(t.revision("canary"), n, 0.3, "canary at 60/30/10");
    assert_share(t.revision("third"), n, 0.1, "third at 60/30/10");
    assert_eq!(
        stable.requests() + canary.requests() + third.requests(),
        2 * n,
        "every request reached exactly one instance"
    );
}

fn rule(revision: &str, conditions: Vec<Condition>) -> RuleSpec {
    RuleSpec {
        conditions,
        revision: revision.into(),
    }
}

fn cond(source: Source, value: ValueMatch) -> Condition {
    Condition { source, value }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_cookie_rules_pin_requests() {
    let stable = Backend::start("stable").await;
    let canary = Backend::start("canary").await;
    let pin_a = Backend::start("pin-a").await;
    let pin_b = Backend::start("pin-b").await;
    let spec = TableSpec {
        revisions: vec![
            rev("stable", 80, &[stable.addr]),
            rev("canary", 20, &[canary.addr]),
            rev("pin-a", 0, &[pin_a.addr]),
            rev("pin-b", 0, &[pin_b.addr]),
        ],
        rules: vec![
            rule(
                "pin-a",
                vec![cond(
                    Source::header("X-Canary"),
                    ValueMatch::Exact("yes".into()),
                )],
            ),
            rule(
                "pin-b",
                vec![cond(
                    Source::header("x-group"),
                    ValueMatch::Prefix("beta-".into()),
                )],
            ),
            rule(
                "pin-a",
                vec![cond(
                    Source::header("user-agent"),
                    ValueMatch::regex(".*iPhone.*").expect("regex"),
                )],
            ),
            rule(
                "pin-b",
                vec![cond(
                    Source::cookie("tier"),
                    ValueMatch::Exact("gold".into()),
                )],
            ),
        ],
        ..TableSpec::default()
    };
    let router = start_router(table_from(spec));
    let addr = router.local_addr();

    // (headers, revision they must be pinned to)
    let pinned: Vec<(Vec<(String, String)>, &str)> = vec![
        (headers(&[("x-canary", "yes")]), "pin-a"),
        (headers(&[("X-CANARY", "yes")]), "pin-a"),
        (headers(&[("x-group", "beta-7")]), "pin-b"),
        (headers(&[("x-group", "beta-")]), "pin-b"),
        (
            headers(&[("user-agent", "Mozilla/5.0 (iPhone; CPU OS 17)")]),
            "pin-a",
        ),
        (headers(&[("cookie", "tier=gold")]), "pin-b"),
        (headers(&[("cookie", "a=1; tier=gold; b=2")]), "pin-b"),
        (
            headers(&[("cookie", "a=1"), ("cookie", "tier=\"gold\"")]),
            "pin-b",
        ),
        // First matching rule wins: the exact rule is declared before the prefix rule.
        (
            headers(&[("x-group", "beta-1"), ("x-canary", "yes")]),
            "pin-a",
        ),
    ];
    for (hs, want) in &pinned {
        let hs2 = hs.clone();
        let results = fire(addr, 2, 40, move |_| hs2.clone()).await;
        assert_revision_header_matches(&results);
        let t = tally(&results);
        assert_eq!(
            t.revision(want),
            40,
            "{hs:?} must be pinned to {want}: {t:?}"
        );
    }

    // Near misses follow the weights and never reach a pinned revision.
    let misses = [
        headers(&[("x-canary", "Yes")]),
        headers(&[("x-canary", "yes please")]),
        headers(&[("x-group", "alpha-beta-1")]),
        headers(&[("x-group", "Beta-1")]),
        headers(&[("user-agent", "Mozilla/5.0 (Android)")]),
        headers(&[("cookie", "tier=golden")]),
        headers(&[("cookie", "mytier=gold")]),
        headers(&[("x-tier", "gold")]),
        headers(&[]),
    ];
    let n = 2700u64;
    let results = fire(addr, 4, n, move |i| misses[(i % 9) as usize].clone()).await;
    assert_revision_header_matches(&results);
    let t = tally(&results);
    assert_eq!(t.ok, n, "{:?}", t.errors);
    assert_eq!(t.revision("pin-a") + t.revision("pin-b"), 0, "{t:?}");
    assert_share(t.revision("stable"), n, 0.8, "unpinned stable share");
    assert_share(t.revision("canary"), n, 0.2, "unpinned canary share");
}

/// Users keyed by `source` keep their revision on every request, and as the canary's weight
/// rises no user on the canary ever moves back.
async fn sticky_ramp(source: Source, request_headers: fn(&str) -> Vec<(String, String)>) {
    let stable = Backend::start("stable").await;
    let canary = Backend::start("canary").await;
    let ramp_table = |canary_weight: u32| {
        table_from(TableSpec {
            revisions: vec![
                rev("stable", 100 - canary_weight, &[stable.addr]),
                rev("canary", canary_weight, &[canary.addr]),
            ],
            sticky: Some(source.clone()),
            ..TableSpec::default()
        })
    };
    let router = start_router(ramp_table(10));
    let addr = router.local_addr();

    const USERS: u64 = 200;
    const REPEATS: u64 = 3;
    let mut previous: Option<HashMap<u64, String>> = None;
    let mut moved_forward_total = 0;
    for weight in [10u32, 30, 60, 90] {
        router.swap_table(ramp_table(weight));
        let results = fire(addr, 4, USERS * REPEATS, move |i| {
            request_headers(&format!("user-{}", i % USERS))
        })
        .await;
        assert_revision_header_matches(&results);
        let mut placed: HashMap<u64, String> = HashMap::new();
        for (i, r) in results.iter().enumerate() {
            let user = i as u64 % USERS;
            let revision = r
                .as_ref()
                .expect("ok")
                .revision()
                .expect("header")
                .to_string();
            if let Some(before) = placed.insert(user, revision.clone()) {
                assert_eq!(before, revision, "user-{user} moved within weight {weight}");
            }
        }
        let on_canary = placed.values().filter(|r| *r == "canary").count() as u64;
        assert_share(
            on_canary,
            USERS,
            f64::from(weight) / 100.0,
            "users on canary",
        );
        if let Some(previous) = &previous {
            let mut moved_forward = 0;
            for (user, before) in previous {
                let now = &placed[user];
                assert!(
                    before != "canary" || now == "canary",
                    "user-{user} moved back from canary at weight {weight}"
                );
                if before == "stable" && now == "canary" {
                    moved_forward += 1;
                }
            }
            assert!(
                moved_forward > 0,
                "nobody moved to canary at weight {weight}"
            );
            moved_forward_total += moved_forward;
        }
        previous = Some(placed);
    }
    assert!(moved_forward_total > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_users_by_header_only_move_forward() {
    sticky_ramp(Source::header("x-user"), |user| {
        headers(&[("x-user", user)])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_users_by_cookie_only_move_forward() {
    sticky_ramp(Source::cookie("uid"), |user| {
        vec![("cookie".to_string(), format!("theme=dark; uid={user}"))]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_metrics_count_requests() {
    let api = Backend::start("api").await;
    let other = Backend::start("other").await;
    // `other` takes no traffic; its metrics must stay at zero.
    let router = start_router(table(vec![
        rev("api", 1, &[api.addr]),
        rev("other", 0, &[other.addr]),
    ]));
    let mut client = Client::connect(router.local_addr()).await.expect("connect");
    const OK: u64 = 40;
    for _ in 0..OK {
        let reply = client.get("/", &[]).await.expect("get");
        assert_eq!(reply.status, 200);
    }
    let reply = client
        .get("/", &[("x-status", "503")])
        .await
        .expect("get 503");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.revision(), Some("api"));
    let reply = client
        .get("/", &[("x-status", "404")])
        .await
        .expect("get 404");
    assert_eq!(reply.status, 404);

    // A request is recorded just after its response is written: wait for the last one.
    let total = || {
        router
            .revision_metrics()
            .iter()
            .find(|(name, _)| name == "api")
            .map_or(0, |(_, m)| m.total())
    };
    eventually(
        "metrics to count every request",
        Duration::from_secs(2),
        || total() == OK + 2,
    )
    .await;

    let metrics = router.revision_metrics();
    let names: Vec<&str> = metrics.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["api", "other"], "metrics come in table order");
    let api_metrics = &metrics[0].1;
    assert_eq!(api_metrics.total(), OK + 2);
    assert_eq!(api_metrics.requests(StatusClass::Success), OK);
    assert_eq!(api_metrics.requests(StatusClass::ClientError), 1);
    assert_eq!(api_metrics.errors_5xx(), 1);
    assert_eq!(api_metrics.latency.count(), OK + 2);
    assert_eq!(api_metrics.upstream_errors, 0);
    assert_eq!(api_metrics.in_flight, 0);
    assert_eq!(metrics[1].1.total(), 0);

    let text = router.render_prometheus();
    for line in [
        format!("ramp_router_requests_total{{revision=\"api\",code=\"2xx\"}} {OK}"),
        "ramp_router_requests_total{revision=\"api\",code=\"4xx\"} 1".to_string(),
        "ramp_router_requests_total{revision=\"api\",code=\"5xx\"} 1".to_string(),
        "ramp_router_requests_total{revision=\"other\",code=\"2xx\"} 0".to_string(),
        format!(
            "ramp_router_request_duration_seconds_count{{revision=\"api\"}} {}",
            OK + 2
        ),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert_eq!(api.requests(), OK + 2);
    assert_eq!(other.requests(), 0);
}
