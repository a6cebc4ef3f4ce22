//! End-to-end rollout tests: a real `ramp server` (control plane, router agent, instances of
//! `ramp demo-app`) driven through its REST API and the `ramp` CLI, with continuous keep-alive
//! load through each service's router recording every request.
//!
//! The tests run one at a time (see `rollout_env::serial`). Every test stops its control plane
//! gracefully and checks that nothing it started is left; if a test fails first, the harness
//! kills every process whose command line names the test's data directory.

mod common;
mod rollout_env;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, line_of};
use ramp_server::ServiceStatus;
use rollout_env::{
    Load, Plane, Sample, StatusLog, Svc, Tmpl, UserFn, assert_no_failures, at_indefinite_pause,
    by_revision, failures, instance_ids, phase, ramp_cli, ready_count, serial, settled_on, traffic,
};

/// How long a first deploy or a whole rollout of a few demo apps may take (an apply snapshots
/// the `ramp` binary into the object store, which takes seconds for a debug build).
const ROLLOUT_LIMIT: Duration = Duration::from_secs(30);

/// Pause between requests on each load connection.
const PACE: Duration = Duration::from_millis(2);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Processes of the plane that run `--app-version VERSION`.
fn version_processes(plane: &Plane, version: &str) -> Vec<(u32, String)> {
    plane
        .processes()
        .into_iter()
        .filter(|(_, cmdline)| {
            let words: Vec<&str> = cmdline.split(' ').collect();
            words
                .windows(2)
                .any(|w| w[0] == "--app-version" && w[1] == version)
        })
        .collect()
}

/// Starts a control plane and deploys `v1` of `svc` with `strategy`; returns once all its
/// instances are ready and the first rollout completed.
async fn deploy_v1(label: &str, svc: &Svc, strategy: &str) -> Plane {
    let plane = Plane::start(label).await;
    plane.apply_ok(&svc.spec("v1", strategy)).await;
    let replicas = svc.replicas as usize;
    plane
        .wait_for(&svc.name, "serving revision 1", ROLLOUT_LIMIT, |s| {
            settled_on(s, 1)
                && phase(s) == "Completed"
                && ready_count(s) == replicas
                && s.instances.len() == replicas
        })
        .await;
    plane
}

/// Requests among `samples` sent in `[from, to)`.
fn window(samples: &[Sample], from: Instant, to: Instant) -> Vec<Sample> {
    samples
        .iter()
        .filter(|s| s.sent >= from && s.sent < to)
        .cloned()
        .collect()
}

fn revisions_seen(samples: &[Sample]) -> Vec<String> {
    by_revision(samples).into_keys().collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Recreate
// ---------------------------------------------------------------------------------------------

/// Recreate: v1 → v2 under load completes and leaves no v1 instance; the requests that fail
/// during recreate's switch are reported, not asserted (recreate has downtime by definition).
/// An `undo` back to v1 afterwards is a fast rollout (v1 scaled up, then one switch) and fails
/// no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_rolls_out_and_undo_back_fails_nothing() {
    let _serial = serial().await;
    let svc = Svc::new("web", 2);
    let mut plane = deploy_v1("recreate", &svc, "recreate: {}").await;
    let load = Load::start(svc.listen, 4, PACE);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let applied = Instant::now();
    plane.apply_ok(&svc.spec("v2", "recreate: {}")).await;
    let answered = Instant::now();
    let done = plane
        .wait_for(&svc.name, "completed on revision 2", ROLLOUT_LIMIT, |s| {
            settled_on(s, 2) && phase(s) == "Completed" && ready_count(s) == 2
        })
        .await;
    let completed = Instant::now();
    assert!(
        done.instances.iter().all(|i| i.revision == 2),
        "v1 instances left after the recreate: {:#?}",
        done.instances
    );
    let v1 = version_processes(&plane, "v1");
    assert!(
        v1.is_empty(),
        "v1 processes still run after recreate: {v1:#?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = load.since(applied);
    let failed = failures(&during, applied);
    let first = failed.first().cloned().unwrap_or_default();
    let last = failed.last().cloned().unwrap_or_default();
    println!(
        "recreate v1 -> v2: apply answered in {:.0} ms, completed {:.0} ms after the apply call; \
         {} requests from the apply call to completion + 0.5 s, {} failed (first: {first}; last: {last})",
        ms(answered - applied),
        ms(completed - applied),
        during.len(),
        failed.len(),
    );
    // The gap between the last v1 and the first ready v2 instance is waited out by the
    // router (requests are held, not failed).
    assert!(
        failed.is_empty(),
        "recreate failed {} requests: first {first}; last {last}",
        failed.len()
    );
    // Once the rollout is complete, v2 serves everything.
    let settled = load.since(completed + Duration::from_millis(50));
    assert!(
        !settled.is_empty(),
        "no requests after the recreate completed"
    );
    assert_no_failures(&settled, completed, "after the recreate completed");
    assert_eq!(
        revisions_seen(&settled),
        ["r2"],
        "after the recreate completed"
    );

    // Undo: back to v1, a fast rollout that must not fail a request.
    let undo_at = Instant::now();
    plane.act_ok(&svc.name, "undo", None).await;
    plane
        .wait_for(&svc.name, "back on revision 1", ROLLOUT_LIMIT, |s| {
            settled_on(s, 1)
                && phase(s) == "Completed"
                && s.rollout.as_ref().is_some_and(|r| r.kind == "undo")
        })
        .await;
    let undone = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let samples = load.stop().await;
    let undo = window(&samples, undo_at, Instant::now());
    assert!(
        undo.len() > 100,
        "too few requests during the undo: {}",
        undo.len()
    );
    assert_no_failures(&undo, undo_at, "during the undo back to v1");
    let after = window(&samples, undone + Duration::from_millis(50), Instant::now());
    assert_eq!(revisions_seen(&after), ["r1"], "after the undo completed");
    println!(
        "undo v2 -> v1: {} requests, none failed, completed in {:.0} ms",
        undo.len(),
        ms(undone - undo_at)
    );
    plane.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Rolling
// ---------------------------------------------------------------------------------------------

/// One status sample of a rolling update: instances (starting and stopping ones included),
/// ready instances, and instances per revision.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    total: usize,
    ready: usize,
    by_revision: BTreeMap<u64, usize>,
}

fn shape(s: &ServiceStatus) -> Shape {
    let mut by_revision = BTreeMap::new();
    for i in &s.instances {
        *by_revision.entry(i.revision).or_insert(0) += 1;
    }
    Shape {
        total: s.instances.len(),
        ready: ready_count(s),
        by_revision,
    }
}

/// A rolling update of 4 replicas with `bounds` under load: never more than `replicas + surge`
/// instances (starting and stopping ones counted), never fewer than `replicas - unavailable`
/// ready, at every status change polled every 20 ms; no request fails.
async fn rolling_update_within_bounds(label: &str, bounds: &str, surge: usize, unavailable: usize) {
    let _serial = serial().await;
    let replicas = 4;
    let svc = Svc::new("web", replicas as u32);
    let strategy = format!("rolling:\n{bounds}");
    let mut plane = deploy_v1(label, &svc, &strategy).await;
    let load = Load::start(svc.listen, 4, PACE);
    let log = StatusLog::start(plane.api, &svc.name, Duration::from_millis(20));
    let origin = Instant::now();
    plane.apply_ok(&svc.spec("v2", &strategy)).await;
    plane
        .wait_for(&svc.name, "completed on revision 2", ROLLOUT_LIMIT, |s| {
            settled_on(s, 2)
                && phase(s) == "Completed"
                && ready_count(s) == replicas
                && s.instances.len() == replicas
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let statuses = log.stop().await;
    let samples = load.stop().await;

    let mut shapes: Vec<(Duration, Shape)> = Vec::new();
    for (at, status) in &statuses {
        let s = shape(status);
        if shapes.last().is_none_or(|(_, last)| *last != s) {
            shapes.push((at.saturating_duration_since(origin), s));
        }
    }
    let timeline: Vec<String> = shapes
        .iter()
        .map(|(t, s)| {
            format!(
                "+{:.3}s total {} ready {} {:?}",
                t.as_secs_f64(),
                s.total,
                s.ready,
                s.by_revision
            )
        })
        .collect();
    println!("rolling {label}: {}", timeline.join(" | "));
    for (t, s) in &shapes {
        assert!(
            s.total <= replicas + surge,
            "{} instances at +{:.3}s, more than replicas {replicas} + maxSurge {surge}; timeline:\n{}",
            s.total,
            t.as_secs_f64(),
            timeline.join("\n")
        );
        assert!(
            s.ready >= replicas - unavailable,
            "{} ready at +{:.3}s, fewer than replicas {replicas} - maxUnavailable {unavailable}; timeline:\n{}",
            s.ready,
            t.as_secs_f64(),
            timeline.join("\n")
        );
    }
    assert!(
        shapes.iter().any(|(_, s)| s.by_revision.len() == 2),
        "never saw both revisions running at once; was it a rolling update? {}",
        timeline.join("\n")
    );
    assert_no_failures(&samples, origin, "during the rolling update");
    let after = window(
        &samples,
        samples.last().map_or(origin, |s| s.sent) - Duration::from_millis(200),
        Instant::now(),
    );
    assert_eq!(revisions_seen(&after), ["r2"], "at the end of the update");
    let v1 = version_processes(&plane, "v1");
    assert!(v1.is_empty(), "v1 processes left: {v1:#?}");
    println!(
        "rolling {label}: {} requests, none failed; {:?}",
        samples.len(),
        by_revision(&samples)
    );
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_surge_1_unavailable_1_keeps_bounds_and_fails_nothing() {
    rolling_update_within_bounds("rolling-1-1", "  maxSurge: 1\n  maxUnavailable: 1", 1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_surge_25_percent_unavailable_0_keeps_bounds_and_fails_nothing() {
    // 25% of 4 rounds up to 1 surge instance; nothing may be unavailable.
    rolling_update_within_bounds(
        "rolling-25pct-0",
        "  maxSurge: \"25%\"\n  maxUnavailable: 0",
        1,
        0,
    )
    .await;
}

/// A rolling update whose new instances are slow to get ready is aborted half-way: no request
/// fails, and every request after the abort goes to v1, which is back to full size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_abort_midway_goes_back_to_v1_without_failures() {
    let _serial = serial().await;
    let strategy = "rolling:\n  maxSurge: 1\n  maxUnavailable: 1";
    let svc = Svc::new("web", 4);
    let mut plane = deploy_v1("rolling-abort", &svc, strategy).await;
    let load = Load::start(svc.listen, 4, PACE);
    let origin = Instant::now();
    let slow = Tmpl {
        period: "200ms".into(),
        initial_delay: Some("1500ms".into()),
        ..Tmpl::default()
    };
    plane.apply_ok(&svc.spec_with("v2", strategy, &slow)).await;
    let midway = plane
        .wait_for(
            &svc.name,
            "half-way (a v2 instance ready, the update going on)",
            ROLLOUT_LIMIT,
            |s| {
                phase(s) == "Progressing"
                    && s.instances
                        .iter()
                        .any(|i| i.revision == 2 && i.phase.eq_ignore_ascii_case("ready"))
            },
        )
        .await;
    // Let the v2 instance take some traffic.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let abort_at = Instant::now();
    plane.act_ok(&svc.name, "abort", None).await;
    let answered = Instant::now();
    let back = plane
        .wait_for(&svc.name, "back on v1 at full size", ROLLOUT_LIMIT, |s| {
            settled_on(s, 1)
                && phase(s) == "Aborted"
                && s.instances
                    .iter()
                    .filter(|i| i.revision == 1 && i.phase.eq_ignore_ascii_case("ready"))
                    .count()
                    == 4
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let samples = load.stop().await;
    assert_no_failures(&samples, origin, "during the rolling update and its abort");
    let before = window(&samples, origin, abort_at);
    assert!(
        by_revision(&before).contains_key("r2"),
        "v2 served nothing before the abort, so the abort was not mid-way: {:?}\nstatus then: {midway:#?}",
        by_revision(&before)
    );
    let after = window(
        &samples,
        answered + Duration::from_millis(20),
        Instant::now(),
    );
    assert!(!after.is_empty());
    assert_eq!(
        revisions_seen(&after),
        ["r1"],
        "requests sent after the abort answered"
    );
    assert_eq!(
        traffic(&back),
        BTreeMap::from([("r1".to_string(), 100.0)]),
        "{back:#?}"
    );
    println!(
        "rolling abort: before the abort {:?}; after it {:?}; none failed",
        by_revision(&before),
        by_revision(&after)
    );
    plane.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Blue-green
// ---------------------------------------------------------------------------------------------

/// The first request (by send time) served by `to`, and the requests served by `from` that
/// were sent more than `allowance` after it.
fn switch_violations<'a>(
    samples: &'a [Sample],
    from: &str,
    to: &str,
    allowance: Duration,
) -> (Option<Instant>, Vec<&'a Sample>) {
    let Some(first) = samples
        .iter()
        .filter(|s| s.revision() == Some(to))
        .map(|s| s.sent)
        .min()
    else {
        return (None, Vec::new());
    };
    let late = samples
        .iter()
        .filter(|s| s.revision() == Some(from) && s.sent > first + allowance)
        .collect();
    (Some(first), late)
}

/// Blue-green with a preview listener, an HTTP pre-promotion check and manual promotion: the
/// preview serves v2 while the main listener serves only v1; `promote` switches atomically
/// (no v1 answer to a request sent 20 ms after the first v2 answer); `undo` within
/// `scaleDownDelay` is a routing change back to the warm v1 instances. No request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_preview_atomic_promote_and_warm_undo() {
    let _serial = serial().await;
    let svc = Svc::new("shop", 2);
    let preview = common::local(common::free_port());
    let strategy = format!(
        "blueGreen:
  previewListen: {preview}
  prePromotionChecks:
    - http: {{path: /, requests: 3}}
  scaleDownDelay: 30s"
    );
    let mut plane = deploy_v1("blue-green", &svc, &strategy).await;
    let load = Load::start(svc.listen, 4, PACE);
    let origin = Instant::now();
    plane.apply_ok(&svc.spec("v2", &strategy)).await;
    let waiting = plane
        .wait_for(&svc.name, "waiting for promotion", ROLLOUT_LIMIT, |s| {
            phase(s) == "Paused"
                && s.rollout
                    .as_ref()
                    .and_then(|r| r.reason.as_deref())
                    .is_some_and(|r| r.contains("promote"))
        })
        .await;
    let events = plane.events_text(&svc.name).await;
    assert!(
        events.contains("ChecksPassed"),
        "promotion offered without passed checks:\n{events}"
    );
    assert_eq!(waiting.stable_revision, Some(1));

    // The preview listener serves v2 only.
    let mut client = Client::connect(preview)
        .await
        .unwrap_or_else(|e| panic!("preview listener {preview}: {e}\n{}", plane.logs()));
    for _ in 0..50 {
        let reply = client.get("/", &[]).await.expect("preview request");
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.revision.as_deref(), Some("r2"), "preview: {reply:?}");
        assert_eq!(reply.text(), "v2", "preview: {reply:?}");
    }
    drop(client);
    let v1_ids: BTreeSet<String> = waiting
        .instances
        .iter()
        .filter(|i| i.revision == 1)
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(v1_ids.len(), 2, "{waiting:#?}");

    // Promote: one atomic switch.
    let promote_at = Instant::now();
    let promoted = plane.act_ok(&svc.name, "promote", None).await;
    let promote_answered = Instant::now();
    assert_eq!(
        promoted.stable_revision,
        Some(2),
        "promote did not switch: {promoted:#?}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let samples = load.samples();
    let before = window(&samples, origin, promote_at);
    assert_eq!(
        revisions_seen(&before),
        ["r1"],
        "the main listener served something else than v1 before the promotion"
    );
    let around = window(&samples, origin, Instant::now());
    let allowance = Duration::from_millis(20);
    let (first_v2, late) = switch_violations(&around, "r1", "r2", allowance);
    let first_v2 = first_v2.expect("no request was served by v2 after the promotion");
    assert!(
        late.is_empty(),
        "{} requests sent more than 20 ms after the first v2 answer were served by v1 (not atomic), \
         the latest {:.1} ms after it",
        late.len(),
        late.iter()
            .map(|s| ms(s.sent - first_v2))
            .fold(0.0, f64::max)
    );
    let last_v1 = around
        .iter()
        .filter(|s| s.revision() == Some("r1"))
        .map(|s| s.sent)
        .max()
        .expect("v1 served before");
    assert!(
        last_v1 <= promote_answered,
        "v1 served a request sent after the promote call returned"
    );
    println!(
        "blue-green promote: first v2 answer sent {:.1} ms after the promote call; last v1 answer sent {:.1} ms after the first v2",
        ms(first_v2.saturating_duration_since(promote_at)),
        ms(last_v1.saturating_duration_since(first_v2)),
    );

    // Undo within scaleDownDelay: a routing change back to the warm v1 instances.
    let before_undo = plane.status(&svc.name).await;
    let ids_before: BTreeSet<String> = instance_ids(&before_undo).into_iter().collect();
    let undo_at = Instant::now();
    let undone = plane.act_ok(&svc.name, "undo", None).await;
    let undo_answered = Instant::now();
    assert!(
        settled_on(&undone, 1),
        "undo within scaleDownDelay should switch at once: {undone:#?}"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let after_undo = plane.status(&svc.name).await;
    let samples = load.stop().await;
    assert_no_failures(&samples, origin, "through preview, promotion and undo");
    let late = window(&samples, undo_at + Duration::from_secs(1), Instant::now());
    assert!(!late.is_empty());
    assert_eq!(
        revisions_seen(&late),
        ["r1"],
        "requests sent 1 s after the undo call"
    );
    // The undo to a warm stack is a routing change made within the call.
    let after_call = window(
        &samples,
        undo_answered + Duration::from_millis(20),
        Instant::now(),
    );
    assert_eq!(
        revisions_seen(&after_call),
        ["r1"],
        "requests sent after the undo call returned"
    );
    let ids_after: BTreeSet<String> = instance_ids(&after_undo).into_iter().collect();
    let new: Vec<&String> = ids_after.difference(&ids_before).collect();
    assert!(
        new.is_empty(),
        "undo within scaleDownDelay started new instances {new:?}"
    );
    let serving: BTreeSet<String> = after_undo
        .instances
        .iter()
        .filter(|i| i.revision == 1)
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(
        serving, v1_ids,
        "undo is served by other v1 instances than the warm ones"
    );
    let last_v2 = window(&samples, undo_at, Instant::now())
        .iter()
        .filter(|s| s.revision() == Some("r2"))
        .map(|s| s.sent)
        .max();
    println!(
        "blue-green undo: answered in {:.0} ms; last v2 answer sent {:.1} ms after the undo call; {} requests in all, none failed",
        ms(undo_answered - undo_at),
        last_v2.map_or(0.0, |t| ms(t.saturating_duration_since(undo_at))),
        samples.len()
    );
    plane.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. Canary
// ---------------------------------------------------------------------------------------------

const USERS_PER_CONN: usize = 40;

/// Each user load connection has its own users, so one user's requests are strictly in order.
fn user_of(conn: usize, i: usize) -> Option<String> {
    Some(format!("user-{conn}-{}", i % USERS_PER_CONN))
}

/// Requests of each user, in send order.
fn per_user(samples: &[Sample]) -> BTreeMap<String, Vec<&Sample>> {
    let mut users: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        if let Some(u) = &s.user {
            users.entry(u.clone()).or_default().push(s);
        }
    }
    for list in users.values_mut() {
        list.sort_by_key(|s| s.sent);
    }
    users
}

/// The canary weight in force when `at` happened, from a status log.
fn weight_at(log: &[(Instant, ServiceStatus)], at: Instant) -> Option<u32> {
    log.iter()
        .take_while(|(t, _)| *t <= at)
        .last()
        .and_then(|(_, s)| s.rollout.as_ref())
        .filter(|r| r.phase == "Progressing" || r.phase == "Paused")
        .map(|r| r.weight)
}

/// Canary with sticky users: at `setWeight 30` the anonymous split is within 5 sigma of 30%
/// and each user keeps its revision; through 10% → 30% → 60% no user seen on the canary is
/// sent back to stable; `abort` at the pause sends every new request to v1 within a second;
/// the service stays on v1 until `retry`, which runs the rollout again. No request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_split_stickiness_abort_and_retry() {
    let _serial = serial().await;
    let svc = Svc::new("api", 2);
    let first = "canary:
  stickiness: {header: x-user}
  steps:
    - setWeight: 30
    - pause: {}";
    let stepped = "canary:
  stickiness: {header: x-user}
  steps:
    - setWeight: 10
    - pause: {duration: 1s}
    - setWeight: 30
    - pause: {duration: 1s}
    - setWeight: 60
    - pause: {}";
    let mut plane = deploy_v1("canary", &svc, first).await;
    let origin = Instant::now();
    let anonymous = Load::start(svc.listen, 3, PACE);
    let users = Load::start_with(svc.listen, 2, PACE, Some(Arc::new(user_of) as UserFn));

    // setWeight 30, pause.
    plane.apply_ok(&svc.spec("v2", first)).await;
    plane
        .wait_for(&svc.name, "paused at 30%", ROLLOUT_LIMIT, |s| {
            at_indefinite_pause(s) && s.rollout.as_ref().is_some_and(|r| r.weight == 30)
        })
        .await;
    let paused_at = Instant::now();
    anonymous
        .wait_count_since(paused_at, 1200, Duration::from_secs(20))
        .await;
    let split = anonymous.since(paused_at);
    assert_no_failures(&split, paused_at, "at the 30% pause");
    let counts = by_revision(&split);
    let n = split.len() as f64;
    let canary = counts.get("r2").copied().unwrap_or(0) as f64;
    let sigma = (n * 0.3 * 0.7).sqrt();
    println!(
        "canary at 30%: {canary} of {n} anonymous requests on v2 ({:.1}%, 5 sigma = ±{:.1}%)",
        100.0 * canary / n,
        500.0 * sigma / n
    );
    assert!(
        (canary - 0.3 * n).abs() <= 5.0 * sigma,
        "v2 served {canary} of {n} requests at weight 30; expected {} ± {:.0} (5 sigma): {counts:?}",
        0.3 * n,
        5.0 * sigma
    );
    assert_eq!(counts.keys().cloned().collect::<Vec<_>>(), ["r1", "r2"]);

    // Sticky users keep their revision across three requests each.
    let mut client = Client::connect(svc.listen).await.expect("connect");
    let mut on_canary = 0;
    let batch = 200;
    for u in 0..batch {
        let user = format!("batch-{u}");
        let mut seen = Vec::new();
        for _ in 0..3 {
            let reply = client
                .get("/", &[("x-user", &user)])
                .await
                .expect("sticky request");
            assert_eq!(reply.status, 200, "{reply:?}");
            seen.push(reply.revision.unwrap_or_default());
        }
        assert!(
            seen.iter().all(|r| *r == seen[0]),
            "user {user} moved between revisions: {seen:?}"
        );
        if seen[0] == "r2" {
            on_canary += 1;
        }
    }
    drop(client);
    let sigma = (batch as f64 * 0.3 * 0.7).sqrt();
    assert!(
        (f64::from(on_canary) - 0.3 * batch as f64).abs() <= 5.0 * sigma,
        "{on_canary} of {batch} sticky users on the canary at weight 30"
    );
    let paused_users = users.since(paused_at);
    for (user, list) in per_user(&paused_users) {
        let revs: BTreeSet<&str> = list.iter().filter_map(|s| s.revision()).collect();
        assert!(
            revs.len() == 1,
            "{user} was served by {revs:?} while the weight stayed at 30%"
        );
    }

    // Back to v1 to try the stepped canary.
    plane.act_ok(&svc.name, "abort", None).await;
    plane
        .wait_for(&svc.name, "aborted", ROLLOUT_LIMIT, |s| settled_on(s, 1))
        .await;

    // 10% → 30% → 60%: users on the canary stay there.
    let log = StatusLog::start(plane.api, &svc.name, Duration::from_millis(20));
    let stepped_at = Instant::now();
    let applied = plane.apply_ok(&svc.spec("v3", stepped)).await;
    assert_eq!(applied["revision"], 3, "{applied}");
    let at_pause = plane
        .wait_for(&svc.name, "paused at 60%", ROLLOUT_LIMIT, |s| {
            at_indefinite_pause(s) && s.rollout.as_ref().is_some_and(|r| r.weight == 60)
        })
        .await;
    let stepped_rollout = at_pause.rollout.as_ref().map(|r| r.id).expect("rollout");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let weights = log.stop().await;
    let stepped_samples = users.since(stepped_at);
    let mut first_canary_weight: BTreeMap<u32, usize> = BTreeMap::new();
    for (user, list) in per_user(&stepped_samples) {
        let mut canary_since: Option<Instant> = None;
        for s in &list {
            match (s.revision(), canary_since) {
                (Some("r3"), None) => {
                    canary_since = Some(s.sent);
                    if let Some(w) = weight_at(&weights, s.sent) {
                        *first_canary_weight.entry(w).or_insert(0) += 1;
                    }
                }
                (Some("r1"), Some(since)) => panic!(
                    "{user} was on the canary (from +{:.3}s) and then served by stable at +{:.3}s",
                    since.saturating_duration_since(origin).as_secs_f64(),
                    s.sent.saturating_duration_since(origin).as_secs_f64()
                ),
                _ => {}
            }
        }
    }
    println!(
        "stepped canary: users first seen on the canary, by weight then: {first_canary_weight:?}"
    );
    assert!(
        first_canary_weight.get(&10).copied().unwrap_or(0) > 0,
        "no user was on the canary at 10%: {first_canary_weight:?}"
    );
    assert!(
        first_canary_weight.keys().any(|&w| w > 10),
        "no user joined the canary after 10%: {first_canary_weight:?}"
    );

    // Abort at the pause: every new request to v1.
    let abort_at = Instant::now();
    let aborted = plane.act_ok(&svc.name, "abort", None).await;
    assert!(settled_on(&aborted, 1), "{aborted:#?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = plane.status(&svc.name).await;
    assert!(
        settled_on(&still, 1)
            && phase(&still) == "Aborted"
            && still.rollout.as_ref().map(|r| r.id) == Some(stepped_rollout),
        "the service did not stay on v1 after the abort: {still:#?}"
    );
    let mut after_abort = anonymous.since(abort_at);
    after_abort.extend(users.since(abort_at));
    after_abort.sort_by_key(|s| s.sent);
    let last_canary = after_abort
        .iter()
        .filter(|s| s.revision() == Some("r3"))
        .map(|s| s.sent)
        .max();
    let to_stable = last_canary.map_or(Duration::ZERO, |t| t.saturating_duration_since(abort_at));
    println!(
        "canary abort: last canary-served request sent {:.1} ms after the abort call",
        ms(to_stable)
    );
    assert!(
        to_stable < Duration::from_secs(1),
        "canary still served requests sent {to_stable:?} after the abort"
    );
    let settled = window(
        &after_abort,
        abort_at + to_stable + Duration::from_millis(1),
        Instant::now(),
    );
    assert!(settled.len() > 500, "{}", settled.len());
    assert_eq!(revisions_seen(&settled), ["r1"], "after the abort");

    // Retry: the rollout runs again.
    let retry_at = Instant::now();
    let retried = plane.act_ok(&svc.name, "retry", None).await;
    let again = retried.rollout.as_ref().expect("a rollout after retry");
    assert!(
        again.id > stepped_rollout && again.to_revision == 3,
        "retry did not start a new rollout to revision 3: {retried:#?}"
    );
    plane
        .wait_for(&svc.name, "on the canary again", ROLLOUT_LIMIT, |s| {
            s.rollout
                .as_ref()
                .is_some_and(|r| r.id == again.id && r.weight >= 10)
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = anonymous.stop().await;
    let u = users.stop().await;
    let retried_samples: Vec<Sample> = a
        .iter()
        .chain(u.iter())
        .filter(|s| s.sent >= retry_at)
        .cloned()
        .collect();
    assert!(
        by_revision(&retried_samples).contains_key("r3"),
        "no request reached the canary after retry: {:?}",
        by_revision(&retried_samples)
    );
    assert_no_failures(&a, origin, "(anonymous load, whole test)");
    assert_no_failures(&u, origin, "(sticky users, whole test)");
    println!(
        "canary: {} anonymous and {} sticky requests, none failed",
        a.len(),
        u.len()
    );
    plane.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. The control plane killed mid-rollout
// ---------------------------------------------------------------------------------------------

/// `kill -9` of the control plane while a canary pauses: the router agent and the instances
/// keep serving; a new `ramp server` on the same data directory carries the rollout on to the
/// end; no request fails and no process is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_killed_mid_rollout_resumes_without_failures() {
    let _serial = serial().await;
    let svc = Svc::new("web", 2);
    let strategy = "canary:
  steps:
    - setWeight: 50
    - pause: {duration: 4s}";
    let mut plane = deploy_v1("kill9", &svc, strategy).await;
    let load = Load::start(svc.listen, 4, PACE);
    let origin = Instant::now();
    plane.apply_ok(&svc.spec("v2", strategy)).await;
    let paused = plane
        .wait_for(&svc.name, "paused at 50%", ROLLOUT_LIMIT, |s| {
            phase(s) == "Paused" && s.rollout.as_ref().is_some_and(|r| r.weight == 50)
        })
        .await;
    let rollout = paused.rollout.as_ref().map(|r| r.id).expect("rollout");
    let pids_before: BTreeSet<u32> = paused.instances.iter().filter_map(|i| i.pid).collect();
    assert_eq!(pids_before.len(), 3, "2 stable + 1 canary: {paused:#?}");
    let old_pid = plane.server_pid();

    let killed_at = Instant::now();
    plane.kill9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let headless = load.since(killed_at);
    assert!(
        headless.len() > 200,
        "too few requests while the control plane was down: {}",
        headless.len()
    );
    assert_no_failures(&headless, killed_at, "while the control plane was dead");
    assert_eq!(
        revisions_seen(&headless),
        ["r1", "r2"],
        "the 50% split should keep serving while the control plane is down"
    );

    plane.restart().await;
    assert_ne!(plane.server_pid(), old_pid);
    let done = plane
        .wait_for(&svc.name, "completed on revision 2", ROLLOUT_LIMIT, |s| {
            settled_on(s, 2) && phase(s) == "Completed"
        })
        .await;
    assert_eq!(
        done.rollout.as_ref().map(|r| r.id),
        Some(rollout),
        "a new rollout ran instead of the interrupted one going on: {done:#?}"
    );
    let completed = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let samples = load.stop().await;
    assert_no_failures(&samples, origin, "over the whole test");
    let after = window(
        &samples,
        completed + Duration::from_millis(50),
        Instant::now(),
    );
    assert_eq!(
        revisions_seen(&after),
        ["r2"],
        "after the rollout completed"
    );

    // Every demo-app process is one the new control plane knows (none orphaned).
    let status = plane.status(&svc.name).await;
    let known: BTreeSet<u32> = status.instances.iter().filter_map(|i| i.pid).collect();
    let running: BTreeSet<u32> = plane
        .processes()
        .into_iter()
        .filter(|(_, c)| c.contains("demo-app"))
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(
        running, known,
        "instance processes running vs known to the control plane: {status:#?}"
    );
    // The instances that served through the outage were adopted, not replaced.
    assert!(
        pids_before.is_subset(&known),
        "instances from before the kill {pids_before:?} are not all adopted: {status:#?}"
    );
    println!(
        "kill -9: {} requests while the control plane was dead, {} in all, none failed",
        headless.len(),
        samples.len()
    );
    plane.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Bad specs change nothing
// ---------------------------------------------------------------------------------------------

/// Applies `text`, expects 400 with a problem at `path` and `line`.
async fn refused(plane: &Plane, what: &str, text: &str, path: &str, line: usize) {
    let (code, body) = plane.apply(text).await;
    assert_eq!(code, 400, "{what}: {body}");
    let problems = body["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems
            .iter()
            .any(|p| p["path"] == path && p["line"].as_u64() == Some(line as u64)),
        "{what}: expected a problem at {path} line {line}, got {body:#}"
    );
}

/// After a good deploy, a spec with a YAML syntax error, an unknown field or an invalid value
/// is refused with 400 naming the field and line, and nothing changes: revisions, stable
/// revision, traffic, instances, load. Applying while a rollout is paused is a 409 naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_are_refused_and_change_nothing() {
    let _serial = serial().await;
    let svc = Svc::new("web", 2);
    let strategy = "canary:
  steps:
    - setWeight: 50
    - pause: {}";
    let mut plane = deploy_v1("bad-spec", &svc, strategy).await;
    let load = Load::start(svc.listen, 4, PACE);
    let origin = Instant::now();
    let good = svc.spec("v1", strategy);
    let before = plane.status(&svc.name).await;
    let revisions = plane.revisions(&svc.name).await;
    let (_, stored) = plane
        .api
        .call("GET", &format!("/api/v1/services/{}", svc.name), None)
        .await
        .expect("get service");

    // (a) YAML syntax errors: a second `:` on a line, and a key indented out of its mapping.
    let text = good.replacen("replicas: 2", "replicas: 2: 3", 1);
    refused(
        &plane,
        "syntax error (two colons)",
        &text,
        "spec.replicas",
        6,
    )
    .await;
    let text = good.replacen("      period: 100ms", "     period: 100ms", 1);
    refused(
        &plane,
        "syntax error (indentation)",
        &text,
        "spec.template.readiness.period",
        line_of(&text, "period: 100ms"),
    )
    .await;
    // (b) An unknown field.
    let text = good.replacen("  template:\n", "  template:\n    colour: blue\n", 1);
    refused(
        &plane,
        "unknown field",
        &text,
        "spec.template.colour",
        line_of(&text, "colour: blue"),
    )
    .await;
    // (c) Invalid values.
    let text = good.replacen("replicas: 2", "replicas: 0", 1);
    refused(&plane, "replicas 0", &text, "spec.replicas", 6).await;
    let text = good.replacen("setWeight: 50", "setWeight: 150", 1);
    refused(
        &plane,
        "setWeight 150",
        &text,
        "spec.strategy.canary.steps[0].setWeight",
        line_of(&text, "setWeight: 150"),
    )
    .await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = plane.status(&svc.name).await;
    assert_eq!(plane.revisions(&svc.name).await, revisions, "revision list");
    assert_eq!(after.stable_revision, Some(1));
    assert_eq!(traffic(&after), traffic(&before), "traffic");
    assert_eq!(instance_ids(&after), instance_ids(&before), "instances");
    assert_eq!(after.rollout, before.rollout, "rollout");
    let (_, stored_after) = plane
        .api
        .call("GET", &format!("/api/v1/services/{}", svc.name), None)
        .await
        .expect("get service");
    assert_eq!(stored_after["spec"], stored["spec"], "stored spec");
    let samples = load.since(origin);
    assert!(samples.len() > 100);
    assert_no_failures(&samples, origin, "while bad specs were applied");
    assert_eq!(revisions_seen(&samples), ["r1"]);

    // While a rollout is paused, another apply is a conflict that names it.
    plane.apply_ok(&svc.spec("v2", strategy)).await;
    let paused = plane
        .wait_for(&svc.name, "paused", ROLLOUT_LIMIT, at_indefinite_pause)
        .await;
    let id = paused.rollout.as_ref().map(|r| r.id).expect("rollout");
    let (code, body) = plane.apply(&svc.spec("v3", strategy)).await;
    assert_eq!(code, 409, "apply while paused: {body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("rollout {id}")) && message.contains("paused"),
        "the conflict should name the paused rollout {id}: {body}"
    );
    assert_eq!(
        plane.revisions(&svc.name).await,
        [1, 2],
        "a refused apply added a revision"
    );
    let still = plane.status(&svc.name).await;
    assert_eq!(still.rollout.as_ref().map(|r| r.id), Some(id));
    assert!(at_indefinite_pause(&still), "{still:#?}");
    let samples = load.stop().await;
    assert_no_failures(&samples, origin, "over the whole test");
    plane.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7. The CLI
// ---------------------------------------------------------------------------------------------

/// `ramp apply | get | history | events | logs | promote | scale | restart | delete` through the
/// real binary against a real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_smoke_against_a_real_server() {
    let _serial = serial().await;
    let mut plane = Plane::start("cli").await;
    let url = plane.url();
    let svc = Svc::new("web", 2);
    let strategy = "rolling:\n  maxSurge: 1\n  maxUnavailable: 0";
    let file = rollout_env::write_spec(&plane.spec_dir, "web.yaml", &svc.spec("v1", strategy));
    let file = file.to_str().expect("utf-8 path").to_string();

    let (code, out, err) = ramp_cli(&url, &["apply", "-f", &file]).await;
    assert_eq!(code, Some(0), "apply: {out}{err}");
    assert!(
        out.contains("service/web applied: revision 1 (new)"),
        "apply: {out}"
    );
    plane
        .wait_for(&svc.name, "serving", ROLLOUT_LIMIT, |s| {
            settled_on(s, 1) && ready_count(s) == 2
        })
        .await;

    let (code, out, err) = ramp_cli(&url, &["get", "services"]).await;
    assert_eq!(code, Some(0), "get services: {out}{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("no row for web: {out}"));
    assert!(
        row.contains("rolling") && row.contains("2/2") && row.contains(&svc.listen.to_string()),
        "get services row: {row}"
    );

    let (code, out, err) = ramp_cli(&url, &["get", "rollout", "web", "-o", "json"]).await;
    assert_eq!(code, Some(0), "get rollout: {out}{err}");
    let status: ServiceStatus =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not a status ({e}): {out}"));
    assert_eq!(status.name, "web");
    assert_eq!(status.stable_revision, Some(1));
    assert_eq!(status.instances.len(), 2);

    let (code, out, err) = ramp_cli(&url, &["history", "web"]).await;
    assert_eq!(code, Some(0), "history: {out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("1 ") && l.contains("stable") && l.contains("demo-app")),
        "history: {out}"
    );

    let (code, out, err) = ramp_cli(&url, &["events", "web"]).await;
    assert_eq!(code, Some(0), "events: {out}{err}");
    for kind in ["Applied", "RolloutStarted", "Completed"] {
        assert!(out.contains(kind), "events without {kind}: {out}");
    }

    let (code, out, err) = ramp_cli(&url, &["logs", "web", "--tail", "5"]).await;
    assert_eq!(code, Some(0), "logs: {out}{err}");
    for id in instance_ids(&status) {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("[{id}]")) && l.contains("demo app serving")),
            "logs lack instance {id}'s start line: {out}"
        );
    }

    let (code, out, err) = ramp_cli(&url, &["promote", "web"]).await;
    assert!(
        code.is_some_and(|c| c != 0),
        "promote with nothing in progress succeeded: {out}"
    );
    assert!(
        err.contains("nothing to promote"),
        "promote conflict message: {err}"
    );

    let (code, out, err) = ramp_cli(&url, &["scale", "web", "3"]).await;
    assert_eq!(code, Some(0), "scale: {out}{err}");
    let scaled = plane
        .wait_for(&svc.name, "at 3 ready", ROLLOUT_LIMIT, |s| {
            ready_count(s) == 3 && s.instances.len() == 3
        })
        .await;
    let ids_before: BTreeSet<String> = instance_ids(&scaled).into_iter().collect();

    let load = Load::start(svc.listen, 4, PACE);
    let origin = Instant::now();
    let (code, out, err) = ramp_cli(&url, &["restart", "web"]).await;
    assert_eq!(code, Some(0), "restart: {out}{err}");
    let restarted = plane
        .wait_for(&svc.name, "restarted", ROLLOUT_LIMIT, |s| {
            s.rollout
                .as_ref()
                .is_some_and(|r| r.kind == "restart" && r.phase == "Completed")
                && ready_count(s) == 3
                && s.instances.len() == 3
        })
        .await;
    let ids_after: BTreeSet<String> = instance_ids(&restarted).into_iter().collect();
    assert!(
        ids_before.is_disjoint(&ids_after),
        "restart kept instances: before {ids_before:?}, after {ids_after:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let samples = load.stop().await;
    assert_no_failures(&samples, origin, "during the restart");

    let (code, out, err) = ramp_cli(&url, &["delete", "web"]).await;
    assert_eq!(code, Some(0), "delete: {out}{err}");
    assert!(out.contains("service/web deleted"), "delete: {out}");
    let (code, body) = plane
        .api
        .call("GET", "/api/v1/services/web", None)
        .await
        .expect("get");
    assert_eq!(code, 404, "service after delete: {body}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left: Vec<(u32, String)> = plane
        .processes()
        .into_iter()
        .filter(|(_, c)| c.contains("demo-app"))
        .collect();
    while !left.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = plane
            .processes()
            .into_iter()
            .filter(|(_, c)| c.contains("demo-app"))
            .collect();
    }
    assert!(left.is_empty(), "instances left after delete: {left:#?}");
    let closed = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(svc.listen),
    )
    .await;
    assert!(
        matches!(closed, Ok(Err(_))),
        "the service's listen address {} still accepts connections after delete",
        svc.listen
    );
    plane.stop().await;
}

/// A canary whose instances crash as they start is aborted by the control plane itself: the
/// stable revision keeps every request, and the abort is in the event log with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_looping_canary_aborts_by_itself() {
    let _serial = serial().await;
    let svc = Svc::new("crashy", 2);
    let strategy = "canary:
  steps:
    - setWeight: 50
    - pause: {}";
    let mut plane = deploy_v1("crashloop", &svc, strategy).await;
    let origin = Instant::now();
    let load = Load::start(svc.listen, 3, PACE);
    // An invalid flag makes every v2 instance exit as soon as it starts.
    let broken = Tmpl {
        extra_args: vec!["--error-rate".into(), "7".into()],
        ..Tmpl::default()
    };
    plane
        .apply_ok(&svc.spec_with("v2", strategy, &broken))
        .await;
    let aborted = plane
        .wait_for(&svc.name, "aborted on its own", ROLLOUT_LIMIT, |s| {
            phase(s) == "Aborted"
        })
        .await;
    let reason = aborted
        .rollout
        .as_ref()
        .and_then(|r| r.reason.clone())
        .unwrap_or_default();
    assert!(reason.contains("crash-looping"), "abort reason: {reason}");
    assert_eq!(aborted.stable_revision, Some(1));
    let events = plane.events_text(&svc.name).await;
    assert!(
        events.contains("Aborted") && events.contains("crash-looping"),
        "{events}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let samples = load.since(origin);
    assert_no_failures(&samples, origin, "while the canary crash-looped");
    assert_eq!(
        revisions_seen(&samples),
        ["r1"],
        "the canary never got traffic"
    );
    plane.stop().await;
}
