//! `ramp demo`: the router at work, end to end, in a few seconds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ramp_proxy::{DrainOutcome, ProxySettings, Router, RouterOptions};
use ramp_route::{Condition, RevisionSpec, RouteTable, RuleSpec, Source, TableSpec, ValueMatch};

use crate::demo_app::spawn_local;
use crate::load::{self, Conn, REVISION_HEADER, Tally};

struct Stage {
    v1: Vec<SocketAddr>,
    v2: Vec<SocketAddr>,
}

impl Stage {
    fn table(
        &self,
        v1_weight: u32,
        v2_weight: u32,
        rules: Vec<RuleSpec>,
    ) -> anyhow::Result<RouteTable> {
        Ok(RouteTable::new(TableSpec {
            revisions: vec![
                RevisionSpec {
                    name: "v1".into(),
                    weight: v1_weight,
                    instances: self.v1.clone(),
                },
                RevisionSpec {
                    name: "v2".into(),
                    weight: v2_weight,
                    instances: self.v2.clone(),
                },
            ],
            rules,
            mirrors: vec![],
            sticky: Some(Source::header("x-user")),
        })?)
    }
}

pub(crate) async fn run(requests: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    println!("Ramp router demo\n");
    let stage = Stage {
        v1: vec![
            spawn_local("v1", 0.0, Duration::ZERO).await?,
            spawn_local("v1", 0.0, Duration::ZERO).await?,
        ],
        v2: vec![spawn_local("v2", 0.0, Duration::ZERO).await?],
    };
    println!(
        "  demo apps   v1 at {} and {}, v2 at {}",
        stage.v1[0], stage.v1[1], stage.v2[0]
    );
    let settings = ProxySettings {
        revision_header: Some(REVISION_HEADER.into()),
        ..ProxySettings::default()
    };
    let options = RouterOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: 2,
        pin_workers: true,
    };
    let router = Router::start(options, stage.table(95, 5, vec![])?, settings)?;
    let addr = router.local_addr();
    println!(
        "  router      http://{addr} (2 worker threads), revision named in the {REVISION_HEADER} header\n"
    );

    let anonymous = |_: usize| Vec::<(String, String)>::new();
    let tally = load::run(addr, requests, 16, anonymous).await?;
    step(1, "weighted split 95/5", &tally);

    router.swap_table(stage.table(50, 50, vec![])?);
    let tally = load::run(addr, requests, 16, anonymous).await?;
    step(2, "atomic table swap to 50/50", &tally);

    sticky_users(&router, &stage).await?;

    let canary_rule = RuleSpec {
        conditions: vec![Condition {
            source: Source::header("x-canary"),
            value: ValueMatch::Exact("yes".into()),
        }],
        revision: "v2".into(),
    };
    router.swap_table(stage.table(100, 0, vec![canary_rule])?);
    let header = |_: usize| vec![("x-canary".to_string(), "yes".to_string())];
    let pinned = load::run(addr, requests / 4, 8, header).await?;
    let plain = load::run(addr, requests / 4, 8, anonymous).await?;
    println!(
        "  4. header rule x-canary: yes -> v2, weights 100/0\n       with the header: {:>5.1}% v2    without: {:>5.1}% v1",
        pinned.share("v2"),
        plain.share("v1")
    );

    drain_under_load(&router, &stage, requests).await?;

    println!(
        "\n  Per-revision metrics read from the router (what the analysis engine will judge):"
    );
    println!(
        "    {:<9}{:>10}{:>8}{:>8}{:>11}{:>11}",
        "revision", "requests", "2xx", "5xx", "p50", "p99"
    );
    for (name, m) in router.revision_metrics() {
        let q = |p| {
            m.latency
                .quantile_micros(p)
                .map_or("-".into(), |us| format!("{:.2} ms", us as f64 / 1000.0))
        };
        println!(
            "    {:<9}{:>10}{:>8}{:>8}{:>11}{:>11}",
            name,
            m.total(),
            m.requests(ramp_metrics::StatusClass::Success),
            m.errors_5xx(),
            q(0.5),
            q(0.99)
        );
    }
    let report = router.shutdown(Duration::from_secs(5)).await;
    println!(
        "\n  Graceful shutdown: {} connection(s) cut. Demo took {:.1} s.",
        report.connections_cut,
        started.elapsed().as_secs_f64()
    );
    println!("\n  Next: run the router from a file and reload it live:");
    println!(
        "    ramp proxy --config examples/router.yaml     (see README, \"Router configuration\")"
    );
    Ok(())
}

fn step(n: u32, what: &str, tally: &Tally) {
    println!(
        "  {n}. {what:<32} {} requests: v1 {:>5.1}%  v2 {:>5.1}%  failed {}",
        tally.total(),
        tally.share("v1"),
        tally.share("v2"),
        tally.failed
    );
}

/// Users keyed by `x-user` stay put as v2's weight grows; nobody on v2 goes back to v1.
async fn sticky_users(router: &Router, stage: &Stage) -> anyhow::Result<()> {
    let addr = router.local_addr();
    let users = 300;
    let mut placed: HashMap<usize, String> = HashMap::new();
    let (mut moved_forward, mut moved_back) = (0, 0);
    let mut conn = Conn::open(addr).await?;
    let mut shares = Vec::new();
    for v2_weight in [10, 30, 60, 90] {
        router.swap_table(stage.table(100 - v2_weight, v2_weight, vec![])?);
        let mut on_v2 = 0;
        for user in 0..users {
            let id = format!("user-{user}");
            let (_, revision) = conn.get(&[("x-user", &id)]).await?;
            let (again_status, again) = conn.get(&[("x-user", &id)]).await?;
            anyhow::ensure!(
                again_status < 500 && again == revision,
                "user {id} was not sticky"
            );
            match placed.insert(user, revision.clone()).as_deref() {
                Some("v1") if revision == "v2" => moved_forward += 1,
                Some("v2") if revision == "v1" => moved_back += 1,
                _ => {}
            }
            on_v2 += usize::from(revision == "v2");
        }
        shares.push(format!("{v2_weight}%->{on_v2}"));
    }
    println!(
        "  3. sticky users (x-user header)     {users} users as v2 grows {}: {moved_forward} moved to v2, {moved_back} moved back",
        shares.join(", ")
    );
    Ok(())
}

/// Drains one v1 instance while load runs, then removes it: no request fails.
async fn drain_under_load(router: &Router, stage: &Stage, requests: usize) -> anyhow::Result<()> {
    router.swap_table(stage.table(100, 0, vec![])?);
    let addr = router.local_addr();
    let load = tokio::spawn(load::run(addr, requests * 2, 16, |_| Vec::new()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    let outcome = router.drain(stage.v1[1], Duration::from_secs(5)).await?;
    let took = t0.elapsed();
    let remaining = Stage {
        v1: vec![stage.v1[0]],
        v2: stage.v2.clone(),
    };
    router.swap_table(remaining.table(100, 0, vec![])?);
    let tally = load.await??;
    let verdict = match outcome {
        DrainOutcome::Drained => format!("drained in {:.1} ms", took.as_secs_f64() * 1000.0),
        DrainOutcome::DeadlineExceeded { in_flight } => {
            format!("deadline passed with {in_flight} in flight")
        }
    };
    println!(
        "  5. drain {} under load             {verdict}, then removed; {} requests, {} failed",
        stage.v1[1],
        tally.total(),
        tally.failed
    );
    Ok(())
}
