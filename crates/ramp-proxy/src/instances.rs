//! Live state of every instance the router sends to: load, ejection and draining.
//!
//! The state is keyed by address and outlives route tables, so an instance keeps its load
//! count, ejection and draining flag across table swaps.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// First ejection after a refused connection; doubled for each further failure.
const EJECT_BASE: Duration = Duration::from_millis(500);
/// Longest ejection.
const EJECT_MAX: Duration = Duration::from_secs(30);

/// One instance: an address and what the router knows about it right now.
#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) addr: SocketAddr,
    in_flight: AtomicU32,
    draining: AtomicBool,
    /// Milliseconds since the registry's epoch until which the instance is ejected; 0 if not.
    ejected_until: AtomicU64,
    consecutive_failures: AtomicU32,
    ejections: AtomicU64,
    /// Woken when a draining instance's last request finishes.
    idle: Notify,
}

impl Instance {
    fn new(addr: SocketAddr) -> Self {
        Instance {
            addr,
            in_flight: AtomicU32::new(0),
            draining: AtomicBool::new(false),
            ejected_until: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejections: AtomicU64::new(0),
            idle: Notify::new(),
        }
    }

    /// Requests in flight right now.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// Ejected at time `now_ms` (milliseconds since the registry epoch).
    pub(crate) fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until.load(Relaxed) > now_ms
    }

    pub(crate) fn ejections(&self) -> u64 {
        self.ejections.load(Relaxed)
    }

    /// The instance's load if it may take new requests.
    pub(crate) fn load_if_usable(&self, now_ms: impl FnOnce() -> u64) -> Option<u32> {
        if self.is_draining() {
            return None;
        }
        let until = self.ejected_until.load(Relaxed);
        if until != 0 && until > now_ms() {
            return None;
        }
        Some(self.in_flight())
    }

    /// Counts a request as started on this instance until the guard drops.
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(Arc::clone(self))
    }

    /// A connection attempt failed: take the instance out of rotation for a growing while.
    pub(crate) fn connect_failed(&self, now_ms: u64) {
        let failures = self.consecutive_failures.fetch_add(1, Relaxed).min(16);
        let backoff = EJECT_BASE.saturating_mul(1 << failures).min(EJECT_MAX);
        self.ejected_until
            .store(now_ms + backoff.as_millis() as u64, Relaxed);
        self.ejections.fetch_add(1, Relaxed);
    }

    /// A connection succeeded: forget past failures. Writes only when there is something to
    /// forget, so the hot path does not dirty a shared cache line.
    pub(crate) fn connect_succeeded(&self) {
        if self.consecutive_failures.load(Relaxed) != 0 {
            self.consecutive_failures.store(0, Relaxed);
            self.ejected_until.store(0, Relaxed);
        }
    }

    fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Relaxed);
        if draining {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no request is in flight, or the deadline passes; returns what was left.
    async fn wait_idle(&self, deadline: tokio::time::Instant) -> u32 {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let left = self.in_flight();
            if left == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight();
            }
        }
    }
}

/// Holds one in-flight request on an instance.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Instance>);

impl InFlight {
    pub(crate) fn instance(&self) -> &Arc<Instance> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let before = self.0.in_flight.fetch_sub(1, Relaxed);
        if before == 1 && self.0.is_draining() {
            self.0.idle.notify_waiters();
        }
    }
}

/// How a drain ended. As JSON (the agent API's answer to a drain): `{"outcome": "drained"}`
/// or `{"outcome": "deadlineExceeded", "inFlight": 3}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "outcome",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum DrainOutcome {
    /// Every in-flight request finished.
    Drained,
    /// The deadline passed with this many requests still in flight.
    DeadlineExceeded {
        /// Requests still in flight.
        in_flight: u32,
    },
}

/// Every instance the router knows, by address.
#[derive(Debug)]
pub(crate) struct Registry {
    epoch: Instant,
    by_addr: Mutex<HashMap<SocketAddr, Arc<Instance>>>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            epoch: Instant::now(),
            by_addr: Mutex::new(HashMap::new()),
        }
    }

    /// Milliseconds since the registry started (never 0, so 0 can mean "not ejected").
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<Instance>>> {
        // A panic while holding this lock cannot leave the map half-updated, so poison is moot.
        self.by_addr.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of each address, created on first sight.
    pub(crate) fn resolve(&self, addrs: &[SocketAddr]) -> Vec<Arc<Instance>> {
        let mut map = self.lock();
        addrs
            .iter()
            .map(|&a| Arc::clone(map.entry(a).or_insert_with(|| Arc::new(Instance::new(a)))))
            .collect()
    }

    pub(crate) fn get(&self, addr: SocketAddr) -> Option<Arc<Instance>> {
        self.lock().get(&addr).cloned()
    }

    /// Forgets instances nothing refers to any more (no table, no request, no drain).
    pub(crate) fn forget_unused(&self) {
        self.lock().retain(|_, i| Arc::strong_count(i) > 1);
    }

    /// Stops new requests to `addr` and waits for its in-flight requests, up to `deadline`.
    pub(crate) async fn drain(&self, addr: SocketAddr, deadline: Duration) -> Option<DrainOutcome> {
        let instance = self.get(addr)?;
        instance.set_draining(true);
        let left = instance
            .wait_idle(tokio::time::Instant::now() + deadline)
            .await;
        Some(if left == 0 {
            DrainOutcome::Drained
        } else {
            DrainOutcome::DeadlineExceeded { in_flight: left }
        })
    }

    /// Puts a drained instance back into rotation.
    pub(crate) fn undrain(&self, addr: SocketAddr) -> bool {
        self.get(addr).map(|i| i.set_draining(false)).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn ejection_grows_and_success_resets() {
        let i = Instance::new(addr(1));
        i.connect_failed(1000);
        assert!(i.is_ejected(1499) && !i.is_ejected(1500));
        assert_eq!(i.load_if_usable(|| 1200), None);
        assert_eq!(i.load_if_usable(|| 1600), Some(0));
        i.connect_failed(2000);
        assert!(i.is_ejected(2999) && !i.is_ejected(3000));
        i.connect_succeeded();
        assert!(!i.is_ejected(2001));
        for _ in 0..40 {
            i.connect_failed(0);
        }
        assert!(!i.is_ejected(30_000), "ejection is capped");
        assert_eq!(i.ejections(), 42);
    }

    #[test]
    fn in_flight_guard_counts() {
        let i = Arc::new(Instance::new(addr(1)));
        let a = i.start();
        let b = i.start();
        assert_eq!(i.in_flight(), 2);
        drop(a);
        assert_eq!(b.instance().in_flight(), 1);
        drop(b);
        assert_eq!(i.in_flight(), 0);
    }

    #[tokio::test]
    async fn drain_waits_for_the_last_request() {
        let reg = Registry::new();
        let inst = reg.resolve(&[addr(7)]).remove(0);
        let guard = inst.start();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(guard);
        });
        let outcome = reg.drain(addr(7), Duration::from_secs(5)).await;
        assert_eq!(outcome, Some(DrainOutcome::Drained));
        assert!(inst.is_draining());
        assert_eq!(inst.load_if_usable(|| 1), None);
        release.await.unwrap();
        assert!(reg.undrain(addr(7)));
        assert_eq!(inst.load_if_usable(|| 1), Some(0));
    }

    #[tokio::test]
    async fn drain_reports_a_missed_deadline() {
        let reg = Registry::new();
        let inst = reg.resolve(&[addr(8)]).remove(0);
        let _guard = inst.start();
        let outcome = reg.drain(addr(8), Duration::from_millis(30)).await;
        assert_eq!(
            outcome,
            Some(DrainOutcome::DeadlineExceeded { in_flight: 1 })
        );
        assert_eq!(reg.drain(addr(9), Duration::from_millis(1)).await, None);
    }

    #[test]
    fn unused_instances_are_forgotten() {
        let reg = Registry::new();
        let kept = reg.resolve(&[addr(1), addr(2)]).remove(0);
        reg.forget_unused();
        assert!(reg.get(addr(1)).is_some());
        assert!(reg.get(addr(2)).is_none());
        drop(kept);
    }
}
