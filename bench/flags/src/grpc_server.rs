//! Ramp's gRPC servers for the benchmark's gRPC phases: `flagd.evaluation` (v1 and v2) and,
//! when asked, `flagd.sync`, each on 127.0.0.1 (port 0) over one [`FlagSource`], exactly as
//! `ramp flags serve` wires them (evaluation metrics, default options), on a runtime of its own.
//! A [`FileWatcher`] can run on the same runtime, as it does in the real server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ramp_flagd::grpc::{self, GrpcOptions};
use ramp_flagd::{EvaluationMetrics, FileWatcher, FlagSource};
use ramp_flags::model::{FlagFile, Format};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::grpc_client::{self, EvaluationClient};
use crate::workload::FlagClass;

/// Running gRPC servers; stopped (streams ended, in-flight calls finished) when dropped.
#[derive(Debug)]
pub(crate) struct GrpcServers {
    evaluation: SocketAddr,
    sync: Option<SocketAddr>,
    runtime: Option<Runtime>,
    stop: watch::Sender<bool>,
}

impl GrpcServers {
    /// Serves `source` for evaluation (and sync when `with_sync`) on `worker_threads` threads.
    pub(crate) fn start(
        source: &Arc<FlagSource>,
        worker_threads: usize,
        with_sync: bool,
    ) -> Result<GrpcServers, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("grpc-server")
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start the gRPC server runtime: {error}"))?;
        let (stop, _) = watch::channel(false);
        let mut servers = GrpcServers {
            evaluation: SocketAddr::from(([127, 0, 0, 1], 0)),
            sync: None,
            runtime: None,
            stop,
        };
        let listener = bind(&runtime)?;
        servers.evaluation = local_address(&listener)?;
        runtime.spawn(grpc::serve_evaluation(
            listener,
            Arc::clone(source),
            Arc::new(EvaluationMetrics::new()),
            GrpcOptions::default(),
            servers.stopped(),
        ));
        if with_sync {
            let listener = bind(&runtime)?;
            servers.sync = Some(local_address(&listener)?);
            runtime.spawn(grpc::serve_sync(
                listener,
                Arc::clone(source),
                GrpcOptions::default(),
                servers.stopped(),
            ));
        }
        servers.runtime = Some(runtime);
        Ok(servers)
    }

    /// Where `flagd.evaluation` listens.
    pub(crate) fn evaluation_address(&self) -> SocketAddr {
        self.evaluation
    }

    /// Where `flagd.sync` listens, if it was started.
    pub(crate) fn sync_address(&self) -> Option<SocketAddr> {
        self.sync
    }

    /// Runs `watcher` on the servers' runtime, checking every `interval`, until they stop.
    pub(crate) fn watch(&self, watcher: FileWatcher, interval: Duration) {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(watcher.run(interval, self.stopped()));
        }
    }

    /// The variant the evaluation server serves for `class` and `context`, over a fresh
    /// connection: a check that it answers real evaluations before it is loaded.
    pub(crate) fn served_variant(
        &self,
        class: FlagClass,
        context: &Map<String, Value>,
    ) -> Result<Option<String>, String> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or("the gRPC servers are stopped")?;
        runtime.block_on(async {
            let mut client = EvaluationClient::new(grpc_client::connect(self.evaluation).await?);
            grpc_client::resolve_variant(&mut client, class, grpc_client::context_struct(context))
                .await
                .map_err(|status| {
                    format!(
                        "gRPC answered '{}' with {:?}: {}",
                        class.flag_key(),
                        status.code(),
                        status.message()
                    )
                })
        })
    }

    /// Completes when the servers are told to stop.
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.subscribe();
        async move {
            // An error means the sender is gone, which also means stop.
            let _ = stop.wait_for(|stop| *stop).await;
        }
    }
}

impl Drop for GrpcServers {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// A ready source serving `flag_text` (a flag file in JSON) that never changes.
pub(crate) fn static_source(flag_text: &str) -> Result<Arc<FlagSource>, String> {
    let file = FlagFile::parse(flag_text, Format::Json)
        .map_err(|errors| format!("flag file rejected: {errors}"))?;
    let source = Arc::new(FlagSource::new());
    source.put_source("bench", file);
    source.mark_ready();
    Ok(source)
}

fn bind(runtime: &Runtime) -> Result<TcpListener, String> {
    runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .map_err(|error| format!("cannot listen on 127.0.0.1: {error}"))
}

fn local_address(listener: &TcpListener) -> Result<SocketAddr, String> {
    listener
        .local_addr()
        .map_err(|error| format!("cannot read a server address: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RampEngine;
    use crate::workload::generate_contexts;

    const FLAGS: &str = include_str!("../flags.json");

    #[test]
    fn the_evaluation_server_serves_what_the_engine_resolves() {
        let servers = GrpcServers::start(&static_source(FLAGS).unwrap(), 1, false).unwrap();
        assert_eq!(servers.sync_address(), None);
        let engine = RampEngine::load(FLAGS).unwrap();
        for context in generate_contexts(5, 3) {
            for class in FlagClass::ALL {
                let served = servers.served_variant(class, &context).unwrap();
                let resolved = engine.resolve(class, &context).variant.map(str::to_owned);
                assert_eq!(served, resolved, "{}", class.name());
            }
        }
    }
}
