//! The router's admin endpoints: `/metrics` (Prometheus), `/healthz`, `/routes` (JSON).

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use ramp_route::Source;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::router::Router;

/// Serves the admin endpoints on `listener` until `shutdown` completes.
pub async fn serve_admin(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let router = router.clone();
                async move { Ok::<_, Infallible>(respond(&router, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(router: &Router, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served here\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => {
            let mut res = text(StatusCode::OK, router.render_prometheus());
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/routes" => {
            let body = serde_json::to_string_pretty(&routes_json(router)).unwrap_or_default();
            let mut res = text(StatusCode::OK, body + "\n");
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            res
        }
        other => text(
            StatusCode::NOT_FOUND,
            format!("no such endpoint: {other}; try /metrics, /healthz or /routes\n"),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res
}

/// The table in use and each instance's live state.
pub fn routes_json(router: &Router) -> Value {
    let table = router.table();
    let total = table.total_weight() as f64;
    let instances = router.instances();
    let revisions: Vec<Value> = table
        .revisions()
        .iter()
        .map(|r| {
            let live: Vec<Value> = instances
                .iter()
                .filter(|i| i.revision == r.name)
                .map(|i| {
                    json!({
                        "addr": i.addr.to_string(),
                        "inFlight": i.in_flight,
                        "ejected": i.ejected,
                        "ejections": i.ejections,
                        "draining": i.draining,
                    })
                })
                .collect();
            json!({
                "name": r.name,
                "weight": r.weight,
                "percent": f64::from(r.weight) * 100.0 / total,
                "instances": live,
            })
        })
        .collect();
    let spec = table.spec();
    // Conditions as `ramp-route` serializes them: `{"header": NAME, "value": {...}}`.
    let rules: Vec<Value> = spec
        .rules
        .iter()
        .map(|r| json!({"revision": r.revision, "match": r.conditions}))
        .collect();
    let mirrors: Vec<Value> = spec
        .mirrors
        .iter()
        .map(|m| json!({"revision": m.revision, "percent": m.percent, "match": m.conditions}))
        .collect();
    json!({
        "revisions": revisions,
        "rules": rules,
        "mirrors": mirrors,
        "stickiness": spec.sticky.as_ref().map(Source::describe),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::RouterOptions;
    use crate::snapshot::ProxySettings;
    use ramp_route::{RouteTable, TableSpec};

    #[test]
    fn routes_show_conditions_as_tables_write_them() {
        let spec: TableSpec = serde_json::from_value(json!({
            "revisions": [
                {"name": "v1", "weight": 3, "instances": ["127.0.0.1:1"]},
                {"name": "v2", "weight": 1, "instances": ["127.0.0.1:2"]},
            ],
            "rules": [{"revision": "v2", "conditions": [
                {"header": "X-Canary", "value": {"present": true}},
                {"cookie": "plan", "value": {"exact": "beta"}},
            ]}, {"revision": "v1", "conditions": [
                {"header": "user-agent", "value": {"prefix": "curl/"}},
                {"header": "x-user", "value": {"regex": "[0-9]+"}},
            ]}],
            "mirrors": [{"revision": "v2", "percent": 5.0}],
            "sticky": {"cookie": "user"},
        }))
        .unwrap();
        let options = RouterOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            workers: 1,
            pin_workers: false,
        };
        let table = RouteTable::new(spec).unwrap();
        let router = Router::start(options, table, ProxySettings::default()).unwrap();
        let routes = routes_json(&router);
        assert_eq!(
            routes["rules"],
            json!([
                {"revision": "v2", "match": [
                    {"header": "x-canary", "value": {"present": true}},
                    {"cookie": "plan", "value": {"exact": "beta"}},
                ]},
                {"revision": "v1", "match": [
                    {"header": "user-agent", "value": {"prefix": "curl/"}},
                    {"header": "x-user", "value": {"regex": "[0-9]+"}},
                ]},
            ])
        );
        assert_eq!(
            routes["mirrors"],
            json!([{"revision": "v2", "percent": 5.0, "match": []}])
        );
        assert_eq!(
            routes["stickiness"],
            json!(Source::Cookie("user".into()).describe())
        );
        assert_eq!(routes["revisions"][0]["name"], json!("v1"));
        assert_eq!(routes["revisions"][0]["percent"], json!(75.0));
        assert_eq!(
            routes["revisions"][1]["instances"],
            json!([{"addr": "127.0.0.1:2", "inFlight": 0, "ejected": false, "ejections": 0,
                    "draining": false}])
        );
    }
}
