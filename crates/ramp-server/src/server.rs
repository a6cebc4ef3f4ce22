//! The control plane: state store, router agent, one controller per service, REST API, and the
//! flags it manages (served over OFREP and flagd's gRPC protocols when configured).

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;

use ramp_flagd::{EvaluationMetrics, FlagSource};
use ramp_model::{ServiceSpec, same_socket};
use ramp_store::{NewEvent, Store};
use tokio::sync::{Mutex, oneshot};

use crate::agent::Agent;
use crate::config::ServerConfig;
use crate::controller::{self, ApplyOutcome, Context, ControllerHandle, Request};
use crate::error::ServerError;
use crate::flags::{FlagListeners, FlagServers, FlagService};
use crate::payload::{FileDigests, Payload};

/// A running control plane.
#[derive(Debug)]
pub struct Server {
    inner: Arc<Inner>,
    api_addr: SocketAddr,
    api_stop: Option<oneshot::Sender<()>>,
    api_task: tokio::task::JoinHandle<()>,
    flag_servers: Option<FlagServers>,
}

/// What API handlers share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) ctx: Arc<Context>,
    pub(crate) controllers: Mutex<BTreeMap<String, ControllerHandle>>,
    /// The flags managed through the API.
    pub(crate) flags: Arc<FlagService>,
    /// Counts of the evaluations of those flags (OFREP and gRPC), for `/metrics`.
    pub(crate) flag_metrics: Arc<EvaluationMetrics>,
    /// Digests of executables and files already stored.
    digests: Arc<FileDigests>,
    /// Held for the server's life: one control plane per data directory.
    _lock: nix::fcntl::Flock<File>,
}

impl Server {
    /// Opens the data directory (refusing one another server uses), loads the stored flags,
    /// connects to or starts the router agent, picks up every service where the last control
    /// plane left it, and serves the API (and the flags over OFREP, gRPC evaluation and gRPC
    /// sync, each when configured).
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            ServerError::Invalid(format!(
                "cannot create data directory {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let lock = lock_data_dir(&config)?;
        let config = Arc::new(config);
        let store = Arc::new(Store::open(&config.data_dir)?);
        let flags = Arc::new(FlagService::load(Arc::clone(&store))?);
        // Bound now, so a taken port fails the start before anything else is started.
        let flag_listeners = FlagListeners::bind(&config).await?;
        let agent = Arc::new(Agent::connect_or_start(Arc::clone(&config)).await?);
        let ctx = Arc::new(Context {
            config: Arc::clone(&config),
            store: Arc::clone(&store),
            agent,
        });
        let mut controllers = BTreeMap::new();
        for row in store.services()? {
            match controller::spawn(Arc::clone(&ctx), row.name.clone(), true).await {
                Ok(handle) => {
                    controllers.insert(row.name, handle);
                }
                Err(e) => tracing::error!(service = %row.name, "cannot resume service: {e}"),
            }
        }
        store.append_event(&NewEvent {
            actor: "ramp".into(),
            service: None,
            kind: "ServerStarted".into(),
            message: format!(
                "control plane started with {} service(s)",
                controllers.len()
            ),
            data: serde_json::Value::Null,
        })?;
        let inner = Arc::new(Inner {
            ctx,
            controllers: Mutex::new(controllers),
            flags,
            flag_metrics: Arc::new(EvaluationMetrics::new()),
            digests: Arc::new(FileDigests::default()),
            _lock: lock,
        });
        let listener = tokio::net::TcpListener::bind(config.api_listen)
            .await
            .map_err(|e| {
                ServerError::Invalid(format!("cannot listen on {}: {e}", config.api_listen))
            })?;
        let api_addr = listener
            .local_addr()
            .map_err(|e| ServerError::Internal(e.to_string()))?;
        let flag_servers = FlagServers::start(
            flag_listeners,
            inner.flags.source(),
            &inner.flag_metrics,
            config.flags_token.as_deref(),
        )?;
        let (api_stop, stopped) = oneshot::channel::<()>();
        let app = crate::api::router(Arc::clone(&inner));
        let api_task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("API server stopped: {e}");
            }
        });
        tracing::info!(
            api = %api_addr,
            flags_ofrep = ?flag_servers.ofrep_addr(),
            flags_grpc = ?flag_servers.grpc_addr(),
            flags_sync = ?flag_servers.sync_addr(),
            data = %config.data_dir.display(),
            "control plane ready"
        );
        Ok(Server {
            inner,
            api_addr,
            api_stop: Some(api_stop),
            api_task,
            flag_servers: Some(flag_servers),
        })
    }

    /// Where the API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where OFREP serves the control plane's flags, if it does
    /// ([`ServerConfig::flags_ofrep_listen`]).
    pub fn flags_ofrep_addr(&self) -> Option<SocketAddr> {
        self.flag_servers.as_ref()?.ofrep_addr()
    }

    /// Where flagd's gRPC evaluation services (v1, v2) serve the control plane's flags, if they
    /// do ([`ServerConfig::flags_grpc_listen`]).
    pub fn flags_grpc_addr(&self) -> Option<SocketAddr> {
        self.flag_servers.as_ref()?.grpc_addr()
    }

    /// Where flagd's gRPC sync service serves the control plane's flags, if it does
    /// ([`ServerConfig::flags_sync_listen`]).
    pub fn flags_sync_addr(&self) -> Option<SocketAddr> {
        self.flag_servers.as_ref()?.sync_addr()
    }

    /// The flags the control plane manages, as served: one source named
    /// [`crate::FLAG_SOURCE_NAME`], replaced after every committed change (subscribers get a
    /// change notice each time). Every configured flag surface serves it.
    pub fn flag_source(&self) -> Arc<FlagSource> {
        Arc::clone(self.inner.flags.source())
    }

    /// Stops the API and the controllers. With `stop_services`, every instance is drained and
    /// stopped and the router agent exits; without, the data plane keeps serving for the next
    /// control plane to adopt.
    pub async fn shutdown(mut self, stop_services: bool) {
        if let Some(stop) = self.api_stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.api_task).await;
        if let Some(servers) = self.flag_servers.take() {
            servers.stop().await;
        }
        let controllers = std::mem::take(&mut *self.inner.controllers.lock().await);
        for (_, handle) in controllers {
            let (reply, done) = oneshot::channel();
            if handle
                .send(Request::Shutdown {
                    stop_instances: stop_services,
                    reply,
                })
                .await
                .is_ok()
            {
                let _ = done.await;
            }
        }
        if stop_services {
            let _ = self.inner.ctx.agent.client().shutdown().await;
        }
    }
}

impl Inner {
    /// Applies a spec: snapshots its payload, then hands it to the service's controller
    /// (created on first apply).
    pub(crate) async fn apply(
        &self,
        yaml: String,
        base_dir: std::path::PathBuf,
        actor: String,
    ) -> Result<ApplyOutcome, ServerError> {
        let spec = ServiceSpec::from_yaml(&yaml)?;
        let handle = {
            let mut controllers = self.controllers.lock().await;
            match controllers.get(&spec.name) {
                Some(handle) => handle.clone(),
                None => {
                    self.check_listen_free(&spec, &controllers).await?;
                    let handle =
                        controller::spawn(Arc::clone(&self.ctx), spec.name.clone(), false).await?;
                    controllers.insert(spec.name.clone(), handle.clone());
                    handle
                }
            }
        };
        // A conflicting apply is refused before the executable is read and stored.
        let (reply, verdict) = oneshot::channel();
        handle
            .send(Request::CheckApply {
                spec: Box::new(spec.clone()),
                reply,
            })
            .await?;
        verdict
            .await
            .map_err(|_| ServerError::Internal("the controller stopped".into()))??;
        let store = Arc::clone(&self.ctx.store);
        let digests = Arc::clone(&self.digests);
        let template = spec.template.clone();
        let payload = tokio::task::spawn_blocking(move || {
            Payload::snapshot(&template, &base_dir, store.objects(), &digests)
        })
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))??;
        let (reply, result) = oneshot::channel();
        handle
            .send(Request::Apply {
                spec: Box::new(spec),
                yaml,
                payload: Box::new(payload),
                actor,
                reply,
            })
            .await?;
        result
            .await
            .map_err(|_| ServerError::Internal("the controller stopped".into()))?
    }

    /// A new service may not take another service's listen address: the same address, or the
    /// same port with either of them on every interface.
    async fn check_listen_free(
        &self,
        spec: &ServiceSpec,
        controllers: &BTreeMap<String, ControllerHandle>,
    ) -> Result<(), ServerError> {
        for (name, handle) in controllers {
            let (reply, listen) = oneshot::channel();
            if handle.send(Request::Listen { reply }).await.is_ok()
                && let Ok(Some(listen)) = listen.await
                && same_socket(listen, spec.listen)
            {
                return Err(ServerError::Conflict(format!(
                    "spec.listen {} is already used by service {name} (listening on {listen})",
                    spec.listen
                )));
            }
        }
        Ok(())
    }

    pub(crate) async fn handle(&self, name: &str) -> Result<ControllerHandle, ServerError> {
        self.controllers
            .lock()
            .await
            .get(name)
            .cloned()
            .ok_or_else(|| ServerError::NotFound(format!("no service named {name:?}")))
    }

    pub(crate) async fn forget(&self, name: &str) {
        self.controllers.lock().await.remove(name);
    }
}

/// One control plane per data directory: an exclusive lock on `<dir>/ramp.lock`.
fn lock_data_dir(config: &ServerConfig) -> Result<nix::fcntl::Flock<File>, ServerError> {
    let path = config.data_dir.join("ramp.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| ServerError::Invalid(format!("cannot open {}: {e}", path.display())))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        ServerError::Conflict(format!(
            "another ramp server is using {}; stop it or choose another --data-dir",
            config.data_dir.display()
        ))
    })
}
