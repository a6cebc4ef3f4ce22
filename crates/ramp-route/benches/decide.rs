//! How long one routing decision takes, for the shapes a router sees most.

use criterion::{Criterion, criterion_group, criterion_main};
use ramp_route::{
    Condition, RequestView, RevisionSpec, RouteTable, RuleSpec, Source, TableSpec, ValueMatch,
    find_cookie, hash::mix,
};
use std::hint::black_box;

struct Headers(Vec<(&'static str, &'static str)>);

impl RequestView for Headers {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    }
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        self.header("cookie").and_then(|c| find_cookie(c, name))
    }
}

fn table(sticky: bool) -> RouteTable {
    let rev = |name: &str, weight, port| RevisionSpec {
        name: name.into(),
        weight,
        instances: vec![format!("127.0.0.1:{port}").parse().unwrap()],
    };
    RouteTable::new(TableSpec {
        revisions: vec![rev("stable", 95, 1), rev("canary", 5, 2)],
        rules: vec![RuleSpec {
            conditions: vec![Condition {
                source: Source::header("x-canary"),
                value: ValueMatch::Exact("1".into()),
            }],
            revision: "canary".into(),
        }],
        mirrors: vec![],
        sticky: sticky.then(|| Source::cookie("user")),
    })
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let req = Headers(vec![
        ("host", "example.com"),
        ("user-agent", "wrk"),
        ("accept", "*/*"),
        ("cookie", "theme=dark; user=u-12345"),
    ]);
    let mut i = 0u64;
    let mut rng = move || {
        i += 1;
        mix(i)
    };
    let weighted = table(false);
    c.bench_function("decide/weighted+rule-miss", |b| {
        b.iter(|| black_box(weighted.decide(black_box(&req), &mut rng)))
    });
    let sticky = table(true);
    c.bench_function("decide/sticky-cookie", |b| {
        b.iter(|| black_box(sticky.decide(black_box(&req), &mut rng)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
