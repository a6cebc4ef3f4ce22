//! One Prometheus exposition for several routers, every sample labelled with its router's
//! `service`.

use ramp_metrics::{MetricKind, PromWriter, RevisionSnapshot, StatusClass};

use crate::router::{InstanceStatus, Router};

/// Router-wide families that `Router::render_prometheus` writes and the public API has no
/// accessor for; they are read back from that text.
const ROUTER_FAMILIES: [(&str, &str, MetricKind); 5] = [
    (
        "ramp_router_connections_total",
        "Client connections accepted.",
        MetricKind::Counter,
    ),
    (
        "ramp_router_bad_requests_total",
        "Requests refused as malformed.",
        MetricKind::Counter,
    ),
    (
        "ramp_router_retries_total",
        "Requests retried on another connection or instance.",
        MetricKind::Counter,
    ),
    (
        "ramp_router_table_swaps_total",
        "Route tables swapped in.",
        MetricKind::Counter,
    ),
    (
        "ramp_router_open_connections",
        "Client connections open, per worker thread.",
        MetricKind::Gauge,
    ),
];

/// The metrics of every router in `routers` (`(service name, router)` pairs) as one
/// Prometheus text exposition (format 0.0.4).
///
/// The families are those of `Router::render_prometheus`, with a leading `service` label on
/// every sample; each family's `HELP`/`TYPE` is written once, followed by the samples of all
/// routers.
pub fn render_prometheus_many(routers: &[(&str, &Router)]) -> String {
    struct Seen<'a> {
        service: &'a str,
        revisions: Vec<(String, RevisionSnapshot)>,
        instances: Vec<InstanceStatus>,
        text: String,
    }
    let seen: Vec<Seen<'_>> = routers
        .iter()
        .map(|(service, router)| Seen {
            service,
            revisions: router.revision_metrics(),
            instances: router.instances(),
            text: router.render_prometheus(),
        })
        .collect();

    let mut out = String::new();
    let mut w = PromWriter::new(&mut out);

    let name = "ramp_router_requests_total";
    w.family(
        name,
        "Requests answered, by revision and status class.",
        MetricKind::Counter,
    );
    for s in &seen {
        for (revision, snap) in &s.revisions {
            for class in StatusClass::ALL {
                let labels = [
                    ("service", s.service),
                    ("revision", revision.as_str()),
                    ("code", class.label()),
                ];
                w.sample(name, &labels, snap.requests(class));
            }
        }
    }

    let name = "ramp_router_upstream_errors_total";
    w.family(
        name,
        "Requests for which no response could be obtained from an instance (connect refused, reset, timeout).",
        MetricKind::Counter,
    );
    for s in &seen {
        for (revision, snap) in &s.revisions {
            let labels = [("service", s.service), ("revision", revision.as_str())];
            w.sample(name, &labels, snap.upstream_errors);
        }
    }

    let name = "ramp_router_in_flight_requests";
    w.family(name, "Requests currently being handled.", MetricKind::Gauge);
    for s in &seen {
        for (revision, snap) in &s.revisions {
            let labels = [("service", s.service), ("revision", revision.as_str())];
            w.sample(name, &labels, snap.in_flight);
        }
    }

    let name = "ramp_router_mirrored_requests_total";
    w.family(
        name,
        "Shadow copies of requests, sent or dropped because the mirror target was saturated.",
        MetricKind::Counter,
    );
    for s in &seen {
        for (revision, snap) in &s.revisions {
            for (outcome, value) in [("sent", snap.mirrored), ("dropped", snap.mirror_dropped)] {
                let labels = [
                    ("service", s.service),
                    ("revision", revision.as_str()),
                    ("outcome", outcome),
                ];
                w.sample(name, &labels, value);
            }
        }
    }

    let name = "ramp_router_request_duration_seconds";
    w.family(
        name,
        "Latency of answered requests, in seconds.",
        MetricKind::Histogram,
    );
    for s in &seen {
        for (revision, snap) in &s.revisions {
            let labels = [("service", s.service), ("revision", revision.as_str())];
            w.histogram(name, &labels, &snap.latency);
        }
    }

    for (name, help, kind) in ROUTER_FAMILIES {
        w.family(name, help, kind);
        for s in &seen {
            for (labels, value) in samples(&s.text, name) {
                let mut all = vec![("service", s.service)];
                all.extend(labels);
                w.sample(name, &all, value);
            }
        }
    }

    type Value = fn(&InstanceStatus) -> u64;
    let per_instance: [(&str, &str, MetricKind, Value); 2] = [
        (
            "ramp_router_instance_in_flight",
            "Requests in flight per instance.",
            MetricKind::Gauge,
            |i| u64::from(i.in_flight),
        ),
        (
            "ramp_router_instance_ejections_total",
            "Times an instance was ejected after refused connections.",
            MetricKind::Counter,
            |i| i.ejections,
        ),
    ];
    for (name, help, kind, value) in per_instance {
        w.family(name, help, kind);
        for s in &seen {
            for i in &s.instances {
                let addr = i.addr.to_string();
                let labels = [
                    ("service", s.service),
                    ("revision", i.revision.as_str()),
                    ("instance", addr.as_str()),
                ];
                w.sample(name, &labels, value(i));
            }
        }
    }
    out
}

/// The samples of family `name` in exposition `text` whose labels need no unescaping and
/// whose value is an unsigned integer: `name 3` or `name{worker="0"} 3`.
fn samples<'t>(text: &'t str, name: &str) -> Vec<(Vec<(&'t str, &'t str)>, u64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(inner) => {
                    let (labels, value) = inner.split_once("} ")?;
                    (parse_labels(labels)?, value)
                }
                None => (Vec::new(), rest.strip_prefix(' ')?),
            };
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// `a="1",b="2"` without escapes (anything with a backslash is refused).
fn parse_labels(text: &str) -> Option<Vec<(&str, &str)>> {
    if text.contains('\\') {
        return None;
    }
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        labels.push((key, value));
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::RouterOptions;
    use crate::snapshot::ProxySettings;
    use ramp_route::{RevisionSpec, RouteTable, TableSpec};

    fn router(revisions: &[(&str, u16)]) -> Router {
        let table = RouteTable::new(TableSpec {
            revisions: revisions
                .iter()
                .map(|&(name, port)| RevisionSpec {
                    name: name.into(),
                    weight: 1,
                    instances: vec![([127, 0, 0, 1], port).into()],
                })
                .collect(),
            ..TableSpec::default()
        })
        .unwrap();
        let options = RouterOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            workers: 1,
            pin_workers: false,
        };
        Router::start(options, table, ProxySettings::default()).unwrap()
    }

    #[test]
    fn labels_every_sample_with_its_service_and_declares_families_once() {
        let web = router(&[("v1", 1), ("v2", 2)]);
        let api = router(&[("v1", 3)]);
        let text = render_prometheus_many(&[("web", &web), ("api", &api)]);

        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                line.contains("{service=\"web\"") || line.contains("{service=\"api\""),
                "{line}"
            );
        }
        let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(families, 5 + ROUTER_FAMILIES.len() + 2);
        assert_eq!(
            text.lines().filter(|l| l.starts_with("# HELP ")).count(),
            families
        );
        for needle in [
            "ramp_router_requests_total{service=\"web\",revision=\"v2\",code=\"2xx\"} 0\n",
            "ramp_router_requests_total{service=\"api\",revision=\"v1\",code=\"5xx\"} 0\n",
            "ramp_router_request_duration_seconds_count{service=\"api\",revision=\"v1\"} 0\n",
            "ramp_router_table_swaps_total{service=\"web\"} 0\n",
            "ramp_router_connections_total{service=\"api\"} 0\n",
            "ramp_router_open_connections{service=\"web\",worker=\"0\"} 0\n",
            "ramp_router_instance_in_flight{service=\"web\",revision=\"v2\",instance=\"127.0.0.1:2\"} 0\n",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }

        // A swap shows up in the router-wide counters read back from the router.
        web.swap_table(web.table());
        let text = render_prometheus_many(&[("web", &web)]);
        assert!(text.contains("ramp_router_table_swaps_total{service=\"web\"} 1\n"));
        assert!(
            render_prometheus_many(&[])
                .lines()
                .all(|l| l.starts_with('#'))
        );
    }

    #[test]
    fn reads_samples_back() {
        let text = "# HELP a_total x\na_total 3\na_total_more 4\nb{worker=\"0\",x=\"y\"} 5\nb{w=\"a\\\"\"} 6\n";
        assert_eq!(samples(text, "a_total"), vec![(vec![], 3)]);
        assert_eq!(
            samples(text, "b"),
            vec![(vec![("worker", "0"), ("x", "y")], 5)]
        );
        assert!(samples(text, "c").is_empty());
    }
}
