//! The router's public handle: start it, swap its table, drain instances, read its metrics,
//! shut it down.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ramp_metrics::RevisionSnapshot;
use ramp_route::RouteTable;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::exposition;
use crate::instances::{DrainOutcome, Registry};
use crate::shared::Shared;
use crate::snapshot::{MetricsRegistry, ProxySettings, Snapshot};
use crate::worker::spawn_workers;

/// Where and how the router listens; fixed for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterOptions {
    /// Listen address (port 0 picks a free port; see [`Router::local_addr`]).
    pub listen: SocketAddr,
    /// Worker threads; 0 means one per CPU.
    pub workers: usize,
    /// Run each worker thread on its own CPU (of those the process may use). A thread that
    /// owns its connections and stays on one core is never stalled behind the scheduler moving
    /// it; turn this off to let the scheduler place the workers freely.
    pub pin_workers: bool,
}

/// Draining named an address that no table has ever held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not an instance of this router")]
pub struct UnknownInstance(pub SocketAddr);

/// What one instance looks like to the router right now. As JSON (the agent API's
/// `GET /v1/routers/{name}/metrics`), fields are camelCase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// Revision that lists it.
    pub revision: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Requests in flight on it.
    pub in_flight: u32,
    /// Taken out of rotation after refused connections.
    pub ejected: bool,
    /// Times it was ejected.
    pub ejections: u64,
    /// Taken out of rotation by a drain.
    pub draining: bool,
}

/// Everything a router exposes as metrics at one point in time: plain values, rendered by
/// [`exposition::render`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterFigures {
    /// Each revision's request metrics, by revision name.
    pub revisions: Vec<(String, RevisionSnapshot)>,
    /// Every instance of the table with its live state, in table order.
    pub instances: Vec<InstanceStatus>,
    /// Client connections accepted.
    pub connections: u64,
    /// Requests refused as malformed.
    pub bad_requests: u64,
    /// Requests retried on another connection or instance.
    pub retries: u64,
    /// Route tables swapped in.
    pub table_swaps: u64,
    /// Client connections open, per worker thread.
    pub open_connections: Vec<u64>,
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections still open when the grace period ended (their requests were cut).
    pub connections_cut: usize,
}

/// A running router. Cheap to clone; every clone controls the same router.
#[derive(Debug, Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let threads = std::mem::take(self.threads.get_mut().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Router {
    /// Binds the listener and starts the worker threads.
    pub fn start(
        options: RouterOptions,
        table: RouteTable,
        settings: ProxySettings,
    ) -> io::Result<Router> {
        let workers = match options.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let listener = bind(options.listen)?;
        let local_addr = listener.local_addr()?;
        let instances = Registry::new();
        let metrics = MetricsRegistry::new(workers);
        let snapshot = Snapshot::build(table, settings, &instances, &metrics);
        let shared = Arc::new(Shared::new(snapshot, instances, metrics, workers));
        let (stop, stop_rx) = watch::channel(false);
        let threads = spawn_workers(&shared, &listener, &stop_rx, options.pin_workers)?;
        Ok(Router {
            inner: Arc::new(Inner {
                shared,
                local_addr,
                stop,
                threads: Mutex::new(threads),
            }),
        })
    }

    /// The address the router listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Replaces the table, keeping the settings. Requests already routed finish on the old
    /// table; every request routed after this call returns uses the new one.
    pub fn swap_table(&self, table: RouteTable) {
        let settings = self.settings();
        self.apply(table, settings);
    }

    /// Replaces the table and the settings in one atomic step.
    pub fn apply(&self, table: RouteTable, settings: ProxySettings) {
        let shared = &self.inner.shared;
        let _writer = shared.swap_lock.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = Snapshot::build(table, settings, &shared.instances, &shared.metrics);
        let names: Vec<&str> = snapshot
            .table
            .revisions()
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        shared.metrics.retain(&names);
        shared.snapshot.store(Arc::new(snapshot));
        shared.generation.fetch_add(1, Release);
        shared.counters.table_swaps.fetch_add(1, Relaxed);
        shared.instances.forget_unused();
    }

    /// The table in use.
    pub fn table(&self) -> RouteTable {
        self.inner.shared.current().table.clone()
    }

    /// The settings in use.
    pub fn settings(&self) -> ProxySettings {
        self.inner.shared.current().settings.clone()
    }

    /// Stops sending new requests to `addr` and waits until its in-flight requests finish or
    /// `deadline` passes. The instance stays out of rotation until [`Router::undrain`] or until
    /// it leaves the table.
    pub async fn drain(
        &self,
        addr: SocketAddr,
        deadline: Duration,
    ) -> Result<DrainOutcome, UnknownInstance> {
        self.inner
            .shared
            .instances
            .drain(addr, deadline)
            .await
            .ok_or(UnknownInstance(addr))
    }

    /// Puts a drained instance back into rotation.
    pub fn undrain(&self, addr: SocketAddr) -> Result<(), UnknownInstance> {
        if self.inner.shared.instances.undrain(addr) {
            Ok(())
        } else {
            Err(UnknownInstance(addr))
        }
    }

    /// Each revision's request metrics, in table order.
    pub fn revision_metrics(&self) -> Vec<(String, RevisionSnapshot)> {
        let snapshot = self.inner.shared.current();
        snapshot
            .revisions
            .iter()
            .map(|r| (r.name.to_string(), r.metrics.snapshot()))
            .collect()
    }

    /// Every instance of the table with its live state.
    pub fn instances(&self) -> Vec<InstanceStatus> {
        let shared = &self.inner.shared;
        let snapshot = shared.current();
        let now = shared.instances.now_ms();
        snapshot
            .revisions
            .iter()
            .flat_map(|r| {
                r.instances.iter().map(|i| InstanceStatus {
                    revision: r.name.to_string(),
                    addr: i.addr,
                    in_flight: i.in_flight(),
                    ejected: i.is_ejected(now),
                    ejections: i.ejections(),
                    draining: i.is_draining(),
                })
            })
            .collect()
    }

    /// Everything the router exposes as metrics, read now: every revision in the metrics
    /// registry (by name), every instance of the table, and the router-wide counters.
    pub fn figures(&self) -> RouterFigures {
        let shared = &self.inner.shared;
        let revisions = (shared.metrics.all().into_iter())
            .map(|(name, m)| (name.to_string(), m.snapshot()))
            .collect();
        let counters = &shared.counters;
        RouterFigures {
            revisions,
            instances: self.instances(),
            connections: counters.connections.load(Relaxed),
            bad_requests: counters.bad_requests.load(Relaxed),
            retries: counters.retries.load(Relaxed),
            table_swaps: counters.table_swaps.load(Relaxed),
            open_connections: (shared.active.iter())
                .map(|open| open.load(Relaxed) as u64)
                .collect(),
        }
    }

    /// The router's metrics in the Prometheus text format (see [`exposition::render`]).
    pub fn render_prometheus(&self) -> String {
        exposition::render(&[(&[], &self.figures())])
    }

    /// Stops accepting, lets in-flight requests finish (idle keep-alive connections close at
    /// once), and stops the workers when all connections are closed or `grace` has passed.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let shared = &self.inner.shared;
        let _ = shared.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while shared.open_connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let connections_cut = shared.open_connections();
        let _ = self.inner.stop.send(true);
        let threads =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        ShutdownReport { connections_cut }
    }
}

/// A listening socket with a deep accept queue (bursts of new connections are not refused).
fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::tests::{GOLDEN, sample_figures};
    use ramp_route::{RevisionSpec, TableSpec};

    #[test]
    fn figures_read_everything_the_router_exposes() {
        let table = RouteTable::new(TableSpec {
            revisions: vec![
                RevisionSpec {
                    name: "stable".into(),
                    weight: 3,
                    instances: vec![([127, 0, 0, 1], 1).into(), ([127, 0, 0, 1], 2).into()],
                },
                RevisionSpec {
                    name: "canary".into(),
                    weight: 1,
                    instances: vec![([127, 0, 0, 1], 3).into()],
                },
            ],
            ..TableSpec::default()
        })
        .unwrap();
        let options = RouterOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            workers: 2,
            pin_workers: false,
        };
        let router = Router::start(options, table, ProxySettings::default()).unwrap();
        router.swap_table(router.table());

        let shared = &router.inner.shared;
        for (name, metrics) in shared.metrics.all() {
            if &*name == "stable" {
                let s = metrics.shard(0);
                for (status, micros) in [(200, 1_500), (200, 40_000), (503, 2_000_000)] {
                    s.request_started();
                    s.request_finished(status, micros);
                }
                s.upstream_error();
                s.mirrored();
                s.mirrored();
                s.mirror_dropped();
                s.request_started();
            } else {
                let s = metrics.shard(1);
                s.request_started();
                s.request_finished(404, 300);
            }
        }
        shared.counters.connections.fetch_add(7, Relaxed);
        shared.counters.bad_requests.fetch_add(2, Relaxed);
        shared.counters.retries.fetch_add(3, Relaxed);
        // No connection is open; the gauge is set by hand and reset before the router drops.
        shared.active[1].fetch_add(4, Relaxed);
        let busy = shared.instances.get(([127, 0, 0, 1], 2).into()).unwrap();
        let _in_flight = busy.start();
        let refused = shared.instances.get(([127, 0, 0, 1], 3).into()).unwrap();
        refused.connect_failed(shared.instances.now_ms());
        refused.connect_failed(shared.instances.now_ms());

        let mut figures = router.figures();
        let text = router.render_prometheus();
        shared.active[1].fetch_sub(4, Relaxed);

        // Whether an instance is still ejected depends on the clock; it is not exposed.
        let expected = sample_figures();
        for (got, want) in figures.instances.iter_mut().zip(&expected.instances) {
            got.ejected = want.ejected;
        }
        assert_eq!(figures, expected);
        assert_eq!(text, GOLDEN);
    }
}
