//! The Prometheus text exposition (format 0.0.4) of router metrics, for one router
//! ([`Router::render_prometheus`](crate::Router::render_prometheus)) or several
//! ([`render_prometheus_many`](crate::agent::render_prometheus_many)).
//!
//! Routers are rendered from [`RouterFigures`], plain values read by
//! [`Router::figures`](crate::Router::figures). Each family's `HELP`/`TYPE` is written once,
//! followed by the samples of every router in turn (the format requires a family's samples to
//! be contiguous), each sample carrying its router's extra labels before its own.

use ramp_metrics::{
    HistogramSnapshot, MetricKind, PromWriter, RevisionSnapshot, SampleValue, StatusClass,
};

use crate::router::{InstanceStatus, RouterFigures};

/// The metrics of `routers` as one text exposition: `(extra labels, figures)` pairs, the
/// extra labels (e.g. `[("service", "web")]`, or none) leading the labels of every sample of
/// that router.
///
/// The families, in order: per revision `ramp_router_requests_total{revision,code}`,
/// `ramp_router_upstream_errors_total{revision}`, `ramp_router_in_flight_requests{revision}`,
/// `ramp_router_mirrored_requests_total{revision,outcome}` and the
/// `ramp_router_request_duration_seconds{revision}` histogram; router-wide
/// `ramp_router_connections_total`, `ramp_router_bad_requests_total`,
/// `ramp_router_retries_total`, `ramp_router_table_swaps_total` and
/// `ramp_router_open_connections{worker}`; per instance
/// `ramp_router_instance_in_flight{revision,instance}` and
/// `ramp_router_instance_ejections_total{revision,instance}`. Every status class and mirror
/// outcome is written even when zero, so that `rate()` and ratios work from the first scrape.
pub fn render(routers: &[(&[(&str, &str)], &RouterFigures)]) -> String {
    let mut out = String::new();
    let mut w = PromWriter::new(&mut out);
    for family in &FAMILIES {
        w.family(family.name, family.help, family.kind);
        for (extra, figures) in routers {
            let mut samples = Samples {
                w: &mut w,
                name: family.name,
                extra,
            };
            (family.write)(&mut samples, figures);
        }
    }
    out
}

/// One metric family: its name, help text, type, and how to write one router's samples.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricKind,
    write: fn(&mut Samples<'_, '_, '_>, &RouterFigures),
}

/// Writes samples of one family for one router, prefixing the router's extra labels.
struct Samples<'w, 'o, 'l> {
    w: &'w mut PromWriter<'o>,
    name: &'static str,
    extra: &'l [(&'l str, &'l str)],
}

impl Samples<'_, '_, '_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<SampleValue>) {
        if self.extra.is_empty() {
            self.w.sample(self.name, labels, value);
        } else {
            self.w
                .sample(self.name, &prefixed(self.extra, labels), value);
        }
    }

    /// One sample per revision, labelled with it.
    fn per_revision<V: Into<SampleValue>>(
        &mut self,
        figures: &RouterFigures,
        value: impl Fn(&RevisionSnapshot) -> V,
    ) {
        for (revision, snap) in &figures.revisions {
            self.sample(&[("revision", revision)], value(snap));
        }
    }

    /// One sample per instance, labelled with its revision and address.
    fn per_instance<V: Into<SampleValue>>(
        &mut self,
        figures: &RouterFigures,
        value: impl Fn(&InstanceStatus) -> V,
    ) {
        for instance in &figures.instances {
            let addr = instance.addr.to_string();
            let labels = [
                ("revision", instance.revision.as_str()),
                ("instance", &addr),
            ];
            self.sample(&labels, value(instance));
        }
    }

    fn histogram(&mut self, labels: &[(&str, &str)], histogram: &HistogramSnapshot) {
        if self.extra.is_empty() {
            self.w.histogram(self.name, labels, histogram);
        } else {
            self.w
                .histogram(self.name, &prefixed(self.extra, labels), histogram);
        }
    }
}

/// `extra` followed by `labels`.
fn prefixed<'a>(
    extra: &[(&'a str, &'a str)],
    labels: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    extra.iter().chain(labels).copied().collect()
}

/// Every family, in exposition order.
const FAMILIES: [Family; 12] = [
    Family {
        name: "ramp_router_requests_total",
        help: "Requests answered, by revision and status class.",
        kind: MetricKind::Counter,
        write: |s, f| {
            for (revision, snap) in &f.revisions {
                for class in StatusClass::ALL {
                    let labels = [("revision", revision.as_str()), ("code", class.label())];
                    s.sample(&labels, snap.requests(class));
                }
            }
        },
    },
    Family {
        name: "ramp_router_upstream_errors_total",
        help: "Requests for which no response could be obtained from an instance (connect refused, reset, timeout).",
        kind: MetricKind::Counter,
        write: |s, f| s.per_revision(f, |snap| snap.upstream_errors),
    },
    Family {
        name: "ramp_router_in_flight_requests",
        help: "Requests currently being handled.",
        kind: MetricKind::Gauge,
        write: |s, f| s.per_revision(f, |snap| snap.in_flight),
    },
    Family {
        name: "ramp_router_mirrored_requests_total",
        help: "Shadow copies of requests, sent or dropped because the mirror target was saturated.",
        kind: MetricKind::Counter,
        write: |s, f| {
            for (revision, snap) in &f.revisions {
                for (outcome, value) in [("sent", snap.mirrored), ("dropped", snap.mirror_dropped)]
                {
                    s.sample(&[("revision", revision), ("outcome", outcome)], value);
                }
            }
        },
    },
    Family {
        name: "ramp_router_request_duration_seconds",
        help: "Latency of answered requests, in seconds.",
        kind: MetricKind::Histogram,
        write: |s, f| {
            for (revision, snap) in &f.revisions {
                s.histogram(&[("revision", revision)], &snap.latency);
            }
        },
    },
    Family {
        name: "ramp_router_connections_total",
        help: "Client connections accepted.",
        kind: MetricKind::Counter,
        write: |s, f| s.sample(&[], f.connections),
    },
    Family {
        name: "ramp_router_bad_requests_total",
        help: "Requests refused as malformed.",
        kind: MetricKind::Counter,
        write: |s, f| s.sample(&[], f.bad_requests),
    },
    Family {
        name: "ramp_router_retries_total",
        help: "Requests retried on another connection or instance.",
        kind: MetricKind::Counter,
        write: |s, f| s.sample(&[], f.retries),
    },
    Family {
        name: "ramp_router_table_swaps_total",
        help: "Route tables swapped in.",
        kind: MetricKind::Counter,
        write: |s, f| s.sample(&[], f.table_swaps),
    },
    Family {
        name: "ramp_router_open_connections",
        help: "Client connections open, per worker thread.",
        kind: MetricKind::Gauge,
        write: |s, f| {
            for (worker, &open) in f.open_connections.iter().enumerate() {
                s.sample(&[("worker", &worker.to_string())], open);
            }
        },
    },
    Family {
        name: "ramp_router_instance_in_flight",
        help: "Requests in flight per instance.",
        kind: MetricKind::Gauge,
        write: |s, f| s.per_instance(f, |i| u64::from(i.in_flight)),
    },
    Family {
        name: "ramp_router_instance_ejections_total",
        help: "Times an instance was ejected after refused connections.",
        kind: MetricKind::Counter,
        write: |s, f| s.per_instance(f, |i| i.ejections),
    },
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Figures with something non-zero in every family: two revisions (`canary` before
    /// `stable`, the registry's name order), three instances, two workers.
    pub(crate) fn sample_figures() -> RouterFigures {
        let histogram = |micros: &[u64]| {
            let mut h = HistogramSnapshot::new();
            for &us in micros {
                h.record_micros(us);
            }
            h
        };
        let instance = |revision: &str, port: u16, in_flight, ejections| InstanceStatus {
            revision: revision.into(),
            addr: ([127, 0, 0, 1], port).into(),
            in_flight,
            ejected: ejections > 0,
            ejections,
            draining: false,
        };
        RouterFigures {
            revisions: vec![
                (
                    "canary".into(),
                    RevisionSnapshot {
                        requests: [0, 0, 0, 1, 0],
                        latency: histogram(&[300]),
                        ..RevisionSnapshot::default()
                    },
                ),
                (
                    "stable".into(),
                    RevisionSnapshot {
                        requests: [0, 2, 0, 0, 1],
                        upstream_errors: 1,
                        mirrored: 2,
                        mirror_dropped: 1,
                        in_flight: 1,
                        latency: histogram(&[1_500, 40_000, 2_000_000]),
                    },
                ),
            ],
            instances: vec![
                instance("stable", 1, 0, 0),
                instance("stable", 2, 1, 0),
                instance("canary", 3, 0, 2),
            ],
            connections: 7,
            bad_requests: 2,
            retries: 3,
            table_swaps: 1,
            open_connections: vec![0, 4],
        }
    }

    /// What `Router::render_prometheus` wrote for [`sample_figures`] before it was built on
    /// [`render`] (captured from that implementation).
    pub(crate) const GOLDEN: &str = r#"# HELP ramp_router_requests_total Requests answered, by revision and status class.
# TYPE ramp_router_requests_total counter
ramp_router_requests_total{revision="canary",code="1xx"} 0
ramp_router_requests_total{revision="canary",code="2xx"} 0
ramp_router_requests_total{revision="canary",code="3xx"} 0
ramp_router_requests_total{revision="canary",code="4xx"} 1
ramp_router_requests_total{revision="canary",code="5xx"} 0
ramp_router_requests_total{revision="stable",code="1xx"} 0
ramp_router_requests_total{revision="stable",code="2xx"} 2
ramp_router_requests_total{revision="stable",code="3xx"} 0
ramp_router_requests_total{revision="stable",code="4xx"} 0
ramp_router_requests_total{revision="stable",code="5xx"} 1
# HELP ramp_router_upstream_errors_total Requests for which no response could be obtained from an instance (connect refused, reset, timeout).
# TYPE ramp_router_upstream_errors_total counter
ramp_router_upstream_errors_total{revision="canary"} 0
ramp_router_upstream_errors_total{revision="stable"} 1
# HELP ramp_router_in_flight_requests Requests currently being handled.
# TYPE ramp_router_in_flight_requests gauge
ramp_router_in_flight_requests{revision="canary"} 0
ramp_router_in_flight_requests{revision="stable"} 1
# HELP ramp_router_mirrored_requests_total Shadow copies of requests, sent or dropped because the mirror target was saturated.
# TYPE ramp_router_mirrored_requests_total counter
ramp_router_mirrored_requests_total{revision="canary",outcome="sent"} 0
ramp_router_mirrored_requests_total{revision="canary",outcome="dropped"} 0
ramp_router_mirrored_requests_total{revision="stable",outcome="sent"} 2
ramp_router_mirrored_requests_total{revision="stable",outcome="dropped"} 1
# HELP ramp_router_request_duration_seconds Latency of answered requests, in seconds.
# TYPE ramp_router_request_duration_seconds histogram
ramp_router_request_duration_seconds_bucket{revision="canary",le="0.0005"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="0.001"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="0.0025"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="0.005"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="0.01"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="0.025"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="0.05"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="0.1"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="0.25"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="0.5"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="1"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="2.5"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="5"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="10"} 1
ramp_router_request_duration_seconds_bucket{revision="canary",le="+Inf"} 1
ramp_router_request_duration_seconds_sum{revision="canary"} 0.0003
ramp_router_request_duration_seconds_count{revision="canary"} 1
ramp_router_request_duration_seconds_bucket{revision="stable",le="0.0005"} 0
ramp_router_request_duration_seconds_bucket{revision="stable",le="0.001"} 0
ramp_router_request_duration_seconds_bucket{revision="stable",le="0.0025"} 1
ramp_router_request_duration_seconds_bucket{revision="stable",le="0.005"} 1
ramp_router_request_duration_seconds_bucket{revision="stable",le="0.01"} 1
ramp_router_request_duration_seconds_bucket{revision="stable",le="0.025"} 1
ramp_router_request_duration_seconds_bucket{revision="stable",le="0.05"} 2
ramp_router_request_duration_seconds_bucket{revision="stable",le="0.1"} 2
ramp_router_request_duration_seconds_bucket{revision="stable",le="0.25"} 2
ramp_router_request_duration_seconds_bucket{revision="stable",le="0.5"} 2
ramp_router_request_duration_seconds_bucket{revision="stable",le="1"} 2
ramp_router_request_duration_seconds_bucket{revision="stable",le="2.5"} 3
ramp_router_request_duration_seconds_bucket{revision="stable",le="5"} 3
ramp_router_request_duration_seconds_bucket{revision="stable",le="10"} 3
ramp_router_request_duration_seconds_bucket{revision="stable",le="+Inf"} 3
ramp_router_request_duration_seconds_sum{revision="stable"} 2.0415
ramp_router_request_duration_seconds_count{revision="stable"} 3
# HELP ramp_router_connections_total Client connections accepted.
# TYPE ramp_router_connections_total counter
ramp_router_connections_total 7
# HELP ramp_router_bad_requests_total Requests refused as malformed.
# TYPE ramp_router_bad_requests_total counter
ramp_router_bad_requests_total 2
# HELP ramp_router_retries_total Requests retried on another connection or instance.
# TYPE ramp_router_retries_total counter
ramp_router_retries_total 3
# HELP ramp_router_table_swaps_total Route tables swapped in.
# TYPE ramp_router_table_swaps_total counter
ramp_router_table_swaps_total 1
# HELP ramp_router_open_connections Client connections open, per worker thread.
# TYPE ramp_router_open_connections gauge
ramp_router_open_connections{worker="0"} 0
ramp_router_open_connections{worker="1"} 4
# HELP ramp_router_instance_in_flight Requests in flight per instance.
# TYPE ramp_router_instance_in_flight gauge
ramp_router_instance_in_flight{revision="stable",instance="127.0.0.1:1"} 0
ramp_router_instance_in_flight{revision="stable",instance="127.0.0.1:2"} 1
ramp_router_instance_in_flight{revision="canary",instance="127.0.0.1:3"} 0
# HELP ramp_router_instance_ejections_total Times an instance was ejected after refused connections.
# TYPE ramp_router_instance_ejections_total counter
ramp_router_instance_ejections_total{revision="stable",instance="127.0.0.1:1"} 0
ramp_router_instance_ejections_total{revision="stable",instance="127.0.0.1:2"} 0
ramp_router_instance_ejections_total{revision="canary",instance="127.0.0.1:3"} 2
"#;

    /// The family a sample line belongs to (histogram series map to their family).
    fn family_of(line: &str) -> &'static str {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        (FAMILIES.iter())
            .map(|f| f.name)
            .find(|family| {
                name == *family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name.strip_suffix(suffix) == Some(family))
            })
            .unwrap_or_else(|| panic!("unknown family: {line}"))
    }

    #[test]
    fn one_router_without_labels_renders_as_before() {
        assert_eq!(render(&[(&[], &sample_figures())]), GOLDEN);
    }

    #[test]
    fn two_routers_share_each_family_and_keep_it_contiguous() {
        let web = sample_figures();
        let api = RouterFigures {
            revisions: vec![("v1".into(), RevisionSnapshot::default())],
            instances: Vec::new(),
            open_connections: vec![2],
            ..RouterFigures::default()
        };
        let text = render(&[(&[("service", "web")], &web), (&[("service", "api")], &api)]);

        for family in &FAMILIES {
            let help = format!("# HELP {} ", family.name);
            let ty = format!("# TYPE {} {}\n", family.name, family.kind.as_str());
            assert_eq!(text.matches(&help).count(), 1, "{}", family.name);
            assert_eq!(text.matches(&ty).count(), 1, "{}", family.name);
        }
        assert_eq!(
            text.lines().filter(|l| l.starts_with('#')).count(),
            2 * FAMILIES.len()
        );

        // Families come in order, each HELP/TYPE followed by all of its samples (web's, then
        // api's), and a family never shows up again once the next one has started.
        let mut order: Vec<&str> = Vec::new();
        let mut current = "";
        for line in text.lines() {
            let family = match line.strip_prefix("# HELP ") {
                Some(rest) => rest.split(' ').next().unwrap_or_default(),
                None if line.starts_with('#') => current,
                None => family_of(line),
            };
            if family != current {
                assert!(!order.contains(&family), "{family} is not contiguous");
                assert!(
                    line.starts_with("# HELP "),
                    "{family} has samples before its HELP"
                );
                order.push(family);
                current = family;
            }
            if !line.starts_with('#') {
                let labels = line.split_once('{').map(|(_, labels)| labels);
                assert!(
                    labels.is_some_and(|l| l.starts_with("service=\"web\",")
                        || l.starts_with("service=\"api\",")
                        || l.starts_with("service=\"web\"}")
                        || l.starts_with("service=\"api\"}")),
                    "{line}"
                );
            }
        }
        let expected: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        assert_eq!(order, expected);

        // Within a family, web's samples come first, then api's.
        for family in &FAMILIES {
            let services: Vec<&str> = (text.lines())
                .filter(|l| !l.starts_with('#') && family_of(l) == family.name)
                .map(|l| {
                    if l.contains("{service=\"web\"") {
                        "web"
                    } else {
                        "api"
                    }
                })
                .collect();
            let web_count = services.iter().take_while(|s| **s == "web").count();
            assert!(
                services[web_count..].iter().all(|s| *s == "api"),
                "{}: {services:?}",
                family.name
            );
        }

        // The extra labels lead; the sample's own labels follow in their usual order.
        for needle in [
            "ramp_router_requests_total{service=\"web\",revision=\"stable\",code=\"2xx\"} 2\n",
            "ramp_router_requests_total{service=\"api\",revision=\"v1\",code=\"2xx\"} 0\n",
            "ramp_router_mirrored_requests_total{service=\"web\",revision=\"stable\",outcome=\"dropped\"} 1\n",
            "ramp_router_request_duration_seconds_bucket{service=\"web\",revision=\"stable\",le=\"2.5\"} 3\n",
            "ramp_router_request_duration_seconds_sum{service=\"api\",revision=\"v1\"} 0\n",
            "ramp_router_connections_total{service=\"web\"} 7\n",
            "ramp_router_connections_total{service=\"api\"} 0\n",
            "ramp_router_open_connections{service=\"api\",worker=\"0\"} 2\n",
            "ramp_router_instance_ejections_total{service=\"web\",revision=\"canary\",instance=\"127.0.0.1:3\"} 2\n",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }

    #[test]
    fn no_routers_declares_the_families_only() {
        let text = render(&[]);
        assert_eq!(text.lines().count(), 2 * FAMILIES.len());
        assert!(text.lines().all(|l| l.starts_with('#')));
    }
}
