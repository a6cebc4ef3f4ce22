//! One Prometheus exposition for several routers, every sample labelled with its router's
//! `service`.

use crate::exposition;
use crate::router::{Router, RouterFigures};

/// The metrics of every router in `routers` (`(service name, router)` pairs) as one
/// Prometheus text exposition (format 0.0.4).
///
/// The families are those of `Router::render_prometheus`, with a leading `service` label on
/// every sample; each family's `HELP`/`TYPE` is written once, followed by the samples of all
/// routers (see [`exposition::render`]).
pub fn render_prometheus_many(routers: &[(&str, &Router)]) -> String {
    let figures: Vec<([(&str, &str); 1], RouterFigures)> = (routers.iter())
        .map(|&(service, router)| ([("service", service)], router.figures()))
        .collect();
    let borrowed: Vec<(&[(&str, &str)], &RouterFigures)> = (figures.iter())
        .map(|(labels, figures)| (labels.as_slice(), figures))
        .collect();
    exposition::render(&borrowed)
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
        assert_eq!(families, 5 + 5 + 2);
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

        // A swap shows up in the router-wide counters.
        web.swap_table(web.table());
        let text = render_prometheus_many(&[("web", &web)]);
        assert!(text.contains("ramp_router_table_swaps_total{service=\"web\"} 1\n"));
        assert!(
            render_prometheus_many(&[])
                .lines()
                .all(|l| l.starts_with('#'))
        );
    }
}
