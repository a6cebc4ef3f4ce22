//! Mirroring: copies go to the mirror target marked `x-ramp-mirror`, and a slow, saturated or
//! dead target never slows or fails the requests clients wait for.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use ramp_metrics::RevisionSnapshot;
use ramp_route::{MirrorSpec, TableSpec};
use support::{
    Backend, Client, eventually, refused_addr, rev, settings, start_router, start_router_with,
    table_from,
};

fn mirrored_table(primary: std::net::SocketAddr, shadow: std::net::SocketAddr) -> TableSpec {
    TableSpec {
        revisions: vec![rev("primary", 1, &[primary]), rev("shadow", 0, &[shadow])],
        mirrors: vec![MirrorSpec {
            revision: "shadow".into(),
            percent: 100.0,
            conditions: vec![],
        }],
        ..TableSpec::default()
    }
}

fn metrics(router: &ramp_proxy::Router, name: &str) -> RevisionSnapshot {
    router
        .revision_metrics()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, m)| m)
        .unwrap_or_else(|| panic!("no metrics for {name}"))
}

/// Sends `n` sequential requests (GET, or POST with body `payload {i}`) and returns the
/// slowest one's duration; every one must be answered by the primary.
async fn sequential(client: &mut Client, n: usize, post: bool) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let started = Instant::now();
        let reply = if post {
            client
                .request(Method::POST, "/", &[], Bytes::from(format!("payload {i}")))
                .await
        } else {
            client.get("/", &[]).await
        }
        .unwrap_or_else(|e| panic!("request {i}: {e}"));
        slowest = slowest.max(started.elapsed());
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
        assert_eq!(reply.backend(), Some("primary"));
        assert_eq!(reply.revision(), Some("primary"));
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_mirror_target_never_slows_primary_requests() {
    let primary = Backend::start("primary").await;
    let shadow = Backend::with_delay("shadow", Duration::from_millis(500)).await;
    let router = start_router(table_from(mirrored_table(primary.addr, shadow.addr)));
    let mut client = Client::connect(router.local_addr()).await.expect("connect");

    const N: usize = 30;
    let slowest = sequential(&mut client, N, false).await;
    assert!(
        slowest < Duration::from_millis(250),
        "slowest primary request {slowest:?}"
    );

    eventually(
        "every copy to reach the target",
        Duration::from_secs(3),
        || shadow.requests() >= N as u64,
    )
    .await;
    assert_eq!(shadow.requests(), N as u64);
    assert_eq!(
        shadow.mirrored(),
        N as u64,
        "every copy is marked x-ramp-mirror"
    );
    assert_eq!(primary.requests(), N as u64);
    assert_eq!(primary.mirrored(), 0, "the primary gets no marked requests");
    let m = metrics(&router, "shadow");
    assert_eq!((m.mirrored, m.mirror_dropped), (N as u64, 0), "{m:?}");

    // Copies of POST requests carry the body.
    const POSTS: usize = 10;
    let slowest = sequential(&mut client, POSTS, true).await;
    assert!(
        slowest < Duration::from_millis(250),
        "slowest primary POST {slowest:?}"
    );
    eventually(
        "every POST copy to reach the target",
        Duration::from_secs(3),
        || shadow.mirrored_bodies().len() >= POSTS,
    )
    .await;
    let mut bodies: Vec<String> = shadow
        .mirrored_bodies()
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    bodies.sort();
    let mut want: Vec<String> = (0..POSTS).map(|i| format!("payload {i}")).collect();
    want.sort();
    assert_eq!(bodies, want);
    // The copies' own outcomes are recorded for the target, once they finish.
    eventually("copies recorded", Duration::from_secs(3), || {
        metrics(&router, "shadow").total() == (N + POSTS) as u64
    })
    .await;
    let p = metrics(&router, "primary");
    assert_eq!(p.total(), (N + POSTS) as u64);
    assert_eq!(p.mirrored, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_beyond_the_concurrency_limit_are_dropped_and_counted() {
    let primary = Backend::start("primary").await;
    let shadow = Backend::with_delay("shadow", Duration::from_millis(1000)).await;
    let mut limited = settings();
    limited.mirror_concurrency = 2;
    let router = start_router_with(
        table_from(mirrored_table(primary.addr, shadow.addr)),
        limited,
    );
    let mut client = Client::connect(router.local_addr()).await.expect("connect");

    const N: u64 = 30;
    let started = Instant::now();
    let slowest = sequential(&mut client, N as usize, false).await;
    let took = started.elapsed();
    assert!(
        slowest < Duration::from_millis(250),
        "slowest primary request {slowest:?}"
    );

    // Sent and dropped copies are counted synchronously, before the primary request proceeds.
    let m = metrics(&router, "shadow");
    assert_eq!(m.mirrored + m.mirror_dropped, N, "{m:?}");
    if took < Duration::from_millis(900) {
        // One connection is served by one worker: at most 2 copies were ever in flight, and
        // none finished before the last request.
        assert_eq!((m.mirrored, m.mirror_dropped), (2, N - 2), "{m:?}");
    } else {
        assert!(m.mirror_dropped >= N / 2, "most copies dropped: {m:?}");
    }
    eventually("the sent copies to arrive", Duration::from_secs(3), || {
        shadow.requests() == m.mirrored
    })
    .await;
    assert_eq!(shadow.mirrored(), m.mirrored);

    let text = router.render_prometheus();
    for line in [
        format!(
            "ramp_router_mirrored_requests_total{{revision=\"shadow\",outcome=\"sent\"}} {}",
            m.mirrored
        ),
        format!(
            "ramp_router_mirrored_requests_total{{revision=\"shadow\",outcome=\"dropped\"}} {}",
            m.mirror_dropped
        ),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_mirror_target_never_fails_or_slows_primary_requests() {
    let primary = Backend::start("primary").await;
    let mut shadow = Backend::start("shadow").await;
    let router = start_router(table_from(mirrored_table(primary.addr, refused_addr())));
    let mut client = Client::connect(router.local_addr()).await.expect("connect");

    // A target that refuses connections.
    const N: usize = 40;
    let slowest = sequential(&mut client, N, false).await;
    assert!(
        slowest < Duration::from_millis(250),
        "slowest primary request {slowest:?}"
    );
    let slowest = sequential(&mut client, 10, true).await;
    assert!(
        slowest < Duration::from_millis(250),
        "slowest primary POST {slowest:?}"
    );
    eventually("failed copies recorded", Duration::from_secs(3), || {
        metrics(&router, "shadow").total() == N as u64 + 10
    })
    .await;
    let m = metrics(&router, "shadow");
    assert_eq!(m.errors_5xx(), N as u64 + 10, "{m:?}");
    let p = metrics(&router, "primary");
    assert_eq!((p.errors_5xx(), p.upstream_errors), (0, 0), "{p:?}");

    // A target that dies while copies are going to it.
    router.swap_table(table_from(mirrored_table(primary.addr, shadow.addr)));
    let slowest = sequential(&mut client, 20, false).await;
    assert!(slowest < Duration::from_millis(250));
    shadow.kill().await;
    let slowest = sequential(&mut client, 20, false).await;
    assert!(
        slowest < Duration::from_millis(250),
        "after the kill: {slowest:?}"
    );
    assert_eq!(primary.requests(), N as u64 + 10 + 40);
}
