//! `ramp demo-app`: a small HTTP service whose behaviour is set by flags, so rollouts and
//! analysis can be shown and tested against versions that are good, slow or failing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use ramp_model::parse_duration;
use ramp_route::hash::mix;

#[derive(Debug, Clone, Args)]
pub(crate) struct DemoAppArgs {
    /// Address to listen on; defaults to 127.0.0.1:$PORT, or 127.0.0.1:8080 without PORT.
    #[arg(long, value_parser = crate::parse_listen)]
    listen: Option<SocketAddr>,
    /// Version label the service answers with.
    #[arg(long, env = "APP_VERSION", default_value = "v1")]
    app_version: String,
    /// Share of requests answered with 500, from 0 to 1.
    #[arg(long, env = "ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    error_rate: f64,
    /// Added delay per request, e.g. 20ms.
    #[arg(long, env = "LATENCY", default_value = "0ms", value_parser = parse_duration)]
    latency: Duration,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a rate between 0 and 1")),
    }
}

struct App {
    version: String,
    error_rate: f64,
    latency: Duration,
    served: AtomicU64,
    seed: u64,
}

pub(crate) async fn run(args: DemoAppArgs) -> anyhow::Result<()> {
    let listen = match args.listen {
        Some(addr) => addr,
        None => match std::env::var("PORT") {
            Ok(port) => crate::parse_listen(&format!(":{port}")).map_err(anyhow::Error::msg)?,
            Err(_) => SocketAddr::from(([127, 0, 0, 1], 8080)),
        },
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let app = Arc::new(App {
        version: args.app_version,
        error_rate: args.error_rate,
        latency: args.latency,
        served: AtomicU64::new(0),
        seed: u64::from(std::process::id()),
    });
    tracing::info!(%listen, version = %app.version, error_rate = app.error_rate, latency_ms = app.latency.as_millis() as u64, "demo app serving");
    serve(listener, app).await;
    Ok(())
}

/// Starts a demo app on an ephemeral port inside this process; returns its address.
pub(crate) async fn spawn_local(
    version: &str,
    error_rate: f64,
    latency: Duration,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        version: version.to_string(),
        error_rate,
        latency,
        served: AtomicU64::new(0),
        seed: addr.port().into(),
    });
    tokio::spawn(serve(listener, app));
    Ok(addr)
}

async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(answer(&app, &req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn answer(app: &App, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() == "/healthz" {
        return reply(app, StatusCode::OK, "ok\n".into());
    }
    if !app.latency.is_zero() {
        tokio::time::sleep(app.latency).await;
    }
    let n = app.served.fetch_add(1, Relaxed);
    let draw = (mix(n ^ mix(app.seed)) >> 11) as f64 / (1u64 << 53) as f64;
    if draw < app.error_rate {
        return reply(
            app,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{} failed\n", app.version),
        );
    }
    reply(app, StatusCode::OK, format!("{}\n", app.version))
}

fn reply(app: &App, status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(&app.version) {
        res.headers_mut().insert("x-app-version", v);
    }
    res
}
