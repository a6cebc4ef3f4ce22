//! The surfaces the control plane serves its flags on, each opt-in and on a listener of its
//! own: OFREP, flagd's gRPC evaluation (v1, v2, event streams) and flagd's gRPC sync. All read
//! the one [`FlagSource`], so a change made through the API reaches every client, and all count
//! evaluations into the same [`EvaluationMetrics`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use ramp_flagd::grpc::{self, GrpcOptions};
use ramp_flagd::ofrep::{self, OfrepOptions};
use ramp_flagd::{EvaluationMetrics, FlagSource};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::ServerConfig;
use crate::error::ServerError;

/// The configured flag listeners, bound before anything else starts so a taken port fails the
/// start early and cleanly.
#[derive(Debug)]
pub(crate) struct FlagListeners {
    ofrep: Option<TcpListener>,
    grpc: Option<TcpListener>,
    sync: Option<TcpListener>,
}

impl FlagListeners {
    pub(crate) async fn bind(config: &ServerConfig) -> Result<FlagListeners, ServerError> {
        Ok(FlagListeners {
            ofrep: bind(config.flags_ofrep_listen, "OFREP").await?,
            grpc: bind(config.flags_grpc_listen, "gRPC evaluation").await?,
            sync: bind(config.flags_sync_listen, "gRPC sync").await?,
        })
    }
}

async fn bind(addr: Option<SocketAddr>, surface: &str) -> Result<Option<TcpListener>, ServerError> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    TcpListener::bind(addr).await.map(Some).map_err(|e| {
        ServerError::Invalid(format!("cannot serve flags over {surface} on {addr}: {e}"))
    })
}

/// The running flag servers.
#[derive(Debug)]
pub(crate) struct FlagServers {
    ofrep: Option<Background>,
    grpc: Option<Background>,
    sync: Option<Background>,
}

impl FlagServers {
    /// Serves `source` on every bound listener.
    pub(crate) fn start(
        listeners: FlagListeners,
        source: &Arc<FlagSource>,
        metrics: &Arc<EvaluationMetrics>,
        token: Option<&str>,
    ) -> Result<FlagServers, ServerError> {
        let ofrep_options = || OfrepOptions {
            token: token.map(str::to_owned),
            ..OfrepOptions::default()
        };
        let grpc_options = || GrpcOptions {
            token: token.map(str::to_owned),
            ..GrpcOptions::default()
        };
        let ofrep = listeners
            .ofrep
            .map(|listener| {
                let (source, metrics) = (Arc::clone(source), Arc::clone(metrics));
                let options = ofrep_options();
                Background::spawn(listener, "OFREP", move |listener, shutdown| {
                    ofrep::serve(listener, source, metrics, options, shutdown)
                })
            })
            .transpose()?;
        let grpc = listeners
            .grpc
            .map(|listener| {
                let (source, metrics) = (Arc::clone(source), Arc::clone(metrics));
                let options = grpc_options();
                Background::spawn(listener, "gRPC evaluation", move |listener, shutdown| {
                    grpc::serve_evaluation(listener, source, metrics, options, shutdown)
                })
            })
            .transpose()?;
        let sync = listeners
            .sync
            .map(|listener| {
                let source = Arc::clone(source);
                let options = grpc_options();
                Background::spawn(listener, "gRPC sync", move |listener, shutdown| {
                    grpc::serve_sync(listener, source, options, shutdown)
                })
            })
            .transpose()?;
        Ok(FlagServers { ofrep, grpc, sync })
    }

    pub(crate) fn ofrep_addr(&self) -> Option<SocketAddr> {
        self.ofrep.as_ref().map(|served| served.addr)
    }

    pub(crate) fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|served| served.addr)
    }

    pub(crate) fn sync_addr(&self) -> Option<SocketAddr> {
        self.sync.as_ref().map(|served| served.addr)
    }

    /// Stops every server at once: open event and sync streams end, calls in flight finish.
    pub(crate) async fn stop(self) {
        let stopping: Vec<_> = [self.ofrep, self.grpc, self.sync]
            .into_iter()
            .flatten()
            .map(Background::stop)
            .collect();
        for task in stopping {
            let _ = task.await;
        }
    }
}

/// Completes when a [`Background`] server is told to stop.
type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A listener served by a task of its own until told to stop.
#[derive(Debug)]
struct Background {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    /// Runs `serve` on `listener` with a shutdown future that completes on [`Background::stop`];
    /// a server that fails is logged under `surface`.
    fn spawn<F, S>(
        listener: TcpListener,
        surface: &'static str,
        serve: S,
    ) -> Result<Background, ServerError>
    where
        S: FnOnce(TcpListener, Shutdown) -> F,
        F: Future<Output = io::Result<()>> + Send + 'static,
    {
        let addr = listener
            .local_addr()
            .map_err(|e| ServerError::Internal(e.to_string()))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: Shutdown = Box::pin(async {
            let _ = stopped.await;
        });
        let served = serve(listener, shutdown);
        let task = tokio::spawn(async move {
            if let Err(e) = served.await {
                tracing::error!("flags {surface} server stopped: {e}");
            }
        });
        Ok(Background { addr, stop, task })
    }

    /// Tells the server to stop accepting; its task ends once requests in flight finish.
    fn stop(self) -> tokio::task::JoinHandle<()> {
        let _ = self.stop.send(());
        self.task
    }
}
