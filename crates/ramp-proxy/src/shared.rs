//! State every worker reads: the current snapshot, instance and metric registries, counters,
//! and the shutdown signal.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::instances::Registry;
use crate::snapshot::{MetricsRegistry, Snapshot};

/// Router-wide counters (rare events only; per-request figures live in revision metrics).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) bad_requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) table_swaps: AtomicU64,
}

impl Counters {
    pub(crate) fn count_connection(&self) {
        self.connections.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_bad_request(&self) {
        self.bad_requests.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Bumped after every swap so workers can tell, with one load, that theirs is stale.
    pub(crate) generation: AtomicU64,
    /// Serializes writers: build, store and clean-up of one swap happen together.
    pub(crate) swap_lock: Mutex<()>,
    pub(crate) instances: Registry,
    pub(crate) metrics: MetricsRegistry,
    pub(crate) workers: usize,
    /// Connections open on each worker.
    pub(crate) active: Box<[AtomicUsize]>,
    /// Turns true when the router starts shutting down.
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn new(
        snapshot: Snapshot,
        instances: Registry,
        metrics: MetricsRegistry,
        workers: usize,
    ) -> Self {
        Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            generation: AtomicU64::new(0),
            swap_lock: Mutex::new(()),
            instances,
            metrics,
            workers,
            active: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            shutdown: watch::channel(false).0,
            counters: Counters::default(),
        }
    }

    pub(crate) fn current(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub(crate) fn least_busy_worker(&self) -> usize {
        (0..self.workers)
            .min_by_key(|&w| self.active[w].load(Relaxed))
            .unwrap_or(0)
    }

    pub(crate) fn open_connections(&self) -> usize {
        self.active.iter().map(|a| a.load(Relaxed)).sum()
    }
}
