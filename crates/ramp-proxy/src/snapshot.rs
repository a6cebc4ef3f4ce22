//! What a request is routed with: a route table joined with the live state of its instances
//! and the metrics of its revisions. Built off the hot path whenever the table changes, then
//! swapped in whole.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use ramp_metrics::RevisionMetrics;
use ramp_model::Timeouts;
use ramp_route::RouteTable;

use crate::instances::{Instance, Registry};

/// Settings that may change with every table swap.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySettings {
    /// Response header naming the revision that served the request (lowercase), if any.
    pub revision_header: Option<String>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Mirrored copies in flight per worker and revision; copies beyond it are dropped so a
    /// slow mirror target never holds memory or connections the primary path needs.
    pub mirror_concurrency: usize,
    /// How long a request waits for its revision to have a usable instance (none ready yet,
    /// every one draining or ejected) before it is answered 503. Zero answers at once. A
    /// control plane that replaces every instance at once (recreate) sets it, so the gap is a
    /// pause for clients rather than errors.
    pub hold_unavailable: Duration,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            revision_header: None,
            timeouts: Timeouts::default(),
            mirror_concurrency: 64,
            hold_unavailable: Duration::ZERO,
        }
    }
}

/// One revision, ready for the hot path.
#[derive(Debug)]
pub(crate) struct RevisionRuntime {
    pub(crate) name: Arc<str>,
    pub(crate) instances: Vec<Arc<Instance>>,
    pub(crate) metrics: Arc<RevisionMetrics>,
    /// `name: value\r\n` for the revision response header, when configured.
    pub(crate) header_line: Option<Box<[u8]>>,
    /// The same header for HTTP/2 responses, parsed once per table: one copy per worker
    /// thread, because cloning it bumps a reference count, and a count shared by every core
    /// would bounce between them on each response (as [`LocalSnapshot`] avoids for the
    /// snapshot itself).
    h2_header: Option<Box<[(HeaderName, HeaderValue)]>>,
}

impl RevisionRuntime {
    /// The revision response header for an HTTP/2 response served by `worker`, if configured.
    pub(crate) fn h2_header(&self, worker: usize) -> Option<&(HeaderName, HeaderValue)> {
        self.h2_header
            .as_deref()
            .and_then(|copies| copies.get(worker))
    }
}

/// A worker's handle on a snapshot. Cloning it per request is a plain increment (`Rc`); the
/// `Arc` inside is touched only when the table changes, so requests on different cores never
/// bounce a shared reference count between them.
#[allow(clippy::redundant_allocation)]
pub(crate) type LocalSnapshot = std::rc::Rc<Arc<Snapshot>>;

/// An immutable routing snapshot.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) table: RouteTable,
    pub(crate) revisions: Vec<RevisionRuntime>,
    pub(crate) settings: ProxySettings,
}

/// Per-revision metrics by name; a revision keeps its counters while it stays in the table.
#[derive(Debug)]
pub(crate) struct MetricsRegistry {
    shards: usize,
    by_name: Mutex<BTreeMap<Arc<str>, Arc<RevisionMetrics>>>,
}

impl MetricsRegistry {
    pub(crate) fn new(shards: usize) -> Self {
        MetricsRegistry {
            shards,
            by_name: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Arc<str>, Arc<RevisionMetrics>>> {
        self.by_name.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get_or_create(&self, name: &str) -> (Arc<str>, Arc<RevisionMetrics>) {
        let mut map = self.lock();
        if let Some((k, v)) = map.get_key_value(name) {
            return (Arc::clone(k), Arc::clone(v));
        }
        let key: Arc<str> = Arc::from(name);
        let metrics = Arc::new(RevisionMetrics::new(self.shards));
        map.insert(Arc::clone(&key), Arc::clone(&metrics));
        (key, metrics)
    }

    /// Keeps only the named revisions.
    pub(crate) fn retain(&self, names: &[&str]) {
        self.lock().retain(|k, _| names.contains(&&**k));
    }

    /// Every revision's metrics, by name.
    pub(crate) fn all(&self) -> Vec<(Arc<str>, Arc<RevisionMetrics>)> {
        self.lock()
            .iter()
            .map(|(k, v)| (Arc::clone(k), Arc::clone(v)))
            .collect()
    }
}

impl Snapshot {
    /// True when some instance of the revision may take a request right now.
    pub(crate) fn has_usable_instance(&self, revision: usize, now_ms: impl Fn() -> u64) -> bool {
        self.revisions[revision]
            .instances
            .iter()
            .any(|i| i.load_if_usable(&now_ms).is_some())
    }

    /// Joins a table with live instance state and metrics.
    pub(crate) fn build(
        table: RouteTable,
        settings: ProxySettings,
        instances: &Registry,
        metrics: &MetricsRegistry,
    ) -> Snapshot {
        let header = settings.revision_header.as_deref();
        let workers = metrics.shards;
        let revisions = table
            .revisions()
            .iter()
            .map(|r| {
                let (name, metrics) = metrics.get_or_create(&r.name);
                let h2_header = header.and_then(|h| {
                    (0..workers)
                        .map(|_| {
                            let value = HeaderValue::from_str(&name).ok()?;
                            Some((HeaderName::from_bytes(h.as_bytes()).ok()?, value))
                        })
                        .collect()
                });
                RevisionRuntime {
                    header_line: header
                        .map(|h| format!("{h}: {name}\r\n").into_bytes().into_boxed_slice()),
                    h2_header,
                    name,
                    instances: instances.resolve(&r.instances),
                    metrics,
                }
            })
            .collect();
        Snapshot {
            table,
            revisions,
            settings,
        }
    }
}
