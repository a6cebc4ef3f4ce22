//! Worker threads: one single-threaded runtime per core, each accepting and serving its own
//! connections with its own connection pool.
//!
//! Thread-per-core keeps the hot path free of locks and cross-core wake-ups: a client
//! connection, the upstream connections it uses and their timers all live on one thread.
//! Workers accept from one shared listener; a worker that already serves more connections than
//! the least busy one hands new connections over, so load stays even without a central
//! acceptor in the path.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::LocalSet;

use crate::conn;
use crate::pool::Pool;
use crate::shared::Shared;
use crate::snapshot::{LocalSnapshot, Snapshot};

/// How often idle upstream connections are checked.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often a held request looks again for a usable instance.
const HOLD_RECHECK: Duration = Duration::from_millis(5);

/// A worker thread's state, shared by the tasks on that thread.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) id: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) pool: RefCell<Pool>,
    rng: Cell<u64>,
    /// The snapshot last seen, and the generation it was loaded at.
    cached: RefCell<(u64, LocalSnapshot)>,
    /// Mirrored copies in flight, by revision name.
    mirrors_in_flight: RefCell<HashMap<Arc<str>, usize>>,
    /// The router's shutdown as seen by this thread's connections.
    pub(crate) shutdown: LocalShutdown,
    /// The time last read by [`Worker::now`]: precise enough for idle bookkeeping, and free.
    clock: Cell<Instant>,
}

/// The router-wide shutdown signal, relayed per worker so that connections waiting for their
/// next request register with a thread-local notifier instead of shared state.
#[derive(Debug, Default)]
pub(crate) struct LocalShutdown {
    started: Cell<bool>,
    notify: Notify,
}

impl LocalShutdown {
    pub(crate) fn is_started(&self) -> bool {
        self.started.get()
    }

    /// Completes once shutdown has started.
    pub(crate) async fn wait(&self) {
        while !self.started.get() {
            let notified = self.notify.notified();
            if self.started.get() {
                return;
            }
            notified.await;
        }
    }

    fn start(&self) {
        self.started.set(true);
        self.notify.notify_waiters();
    }
}

impl Worker {
    fn new(id: usize, shared: Arc<Shared>) -> Self {
        let generation = shared.generation.load(Acquire);
        let snapshot = Rc::new(shared.snapshot.load_full());
        Worker {
            id,
            pool: RefCell::new(Pool::default()),
            rng: Cell::new(
                0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1).wrapping_mul(0xa076_1d64_78bd_642f),
            ),
            cached: RefCell::new((generation, snapshot)),
            mirrors_in_flight: RefCell::new(HashMap::new()),
            shutdown: LocalShutdown::default(),
            clock: Cell::new(Instant::now()),
            shared,
        }
    }

    /// The current routing snapshot. Costs one atomic load unless the table changed.
    pub(crate) fn snapshot(&self) -> LocalSnapshot {
        let generation = self.shared.generation.load(Acquire);
        let mut cached = self.cached.borrow_mut();
        if cached.0 != generation {
            *cached = (generation, Rc::new(self.shared.snapshot.load_full()));
        }
        Rc::clone(&cached.1)
    }

    /// Reads the clock (once per request, when it starts) and remembers it.
    pub(crate) fn now(&self) -> Instant {
        let now = Instant::now();
        self.clock.set(now);
        now
    }

    /// The time last read by [`Worker::now`]; at most one request's duration old.
    pub(crate) fn recent(&self) -> Instant {
        self.clock.get()
    }

    /// 64 random bits (wyrand: fast, and plenty for load balancing and sampling).
    pub(crate) fn random(&self) -> u64 {
        let s = self.rng.get().wrapping_add(0xa076_1d64_78bd_642f);
        self.rng.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }

    /// Whether a request routed to `revision` by `snapshot` should wait instead of being
    /// forwarded: a hold is configured (`hold_unavailable`), no instance of the revision can
    /// take it, and it has not waited that long yet. `held_since` is when it started waiting;
    /// the checks are cheapest first, so the clock is read only once a request is held.
    pub(crate) fn should_hold(
        &self,
        snapshot: &Snapshot,
        revision: usize,
        held_since: &mut Option<Instant>,
    ) -> bool {
        let hold = snapshot.settings.hold_unavailable;
        !(hold.is_zero()
            || snapshot.has_usable_instance(revision, || self.shared.instances.now_ms())
            || held_since.get_or_insert_with(Instant::now).elapsed() >= hold)
    }

    /// Waits before a held request is decided again (on the newest snapshot: the table may
    /// have changed, or an ejection ended). False when shutdown started instead.
    pub(crate) async fn hold_pause(&self) -> bool {
        tokio::select! {
            biased;
            _ = self.shutdown.wait() => false,
            _ = tokio::time::sleep(HOLD_RECHECK) => true,
        }
    }

    /// Takes a mirror slot for `revision` if fewer than `limit` copies are in flight.
    pub(crate) fn try_mirror_slot(
        self: &Rc<Self>,
        revision: &Arc<str>,
        limit: usize,
    ) -> Option<MirrorSlot> {
        let mut map = self.mirrors_in_flight.borrow_mut();
        let n = map.entry(Arc::clone(revision)).or_insert(0);
        (*n < limit).then(|| {
            *n += 1;
            MirrorSlot {
                worker: Rc::clone(self),
                revision: Arc::clone(revision),
            }
        })
    }
}

/// A mirrored copy in flight; frees its slot on drop.
#[derive(Debug)]
pub(crate) struct MirrorSlot {
    worker: Rc<Worker>,
    revision: Arc<str>,
}

impl Drop for MirrorSlot {
    fn drop(&mut self) {
        if let Some(n) = self
            .worker
            .mirrors_in_flight
            .borrow_mut()
            .get_mut(&self.revision)
        {
            *n = n.saturating_sub(1);
        }
    }
}

/// Counts a connection as open on its worker until dropped.
struct Active(Rc<Worker>);

impl Active {
    fn new(worker: Rc<Worker>) -> Self {
        worker.shared.active[worker.id].fetch_add(1, Relaxed);
        Active(worker)
    }

    /// A connection handed over by another worker, which already counted it here.
    fn adopted(worker: Rc<Worker>) -> Self {
        Active(worker)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.shared.active[self.0.id].fetch_sub(1, Relaxed);
    }
}

/// Starts `shared.workers` threads serving `listener` until `stop` turns true.
pub(crate) fn spawn_workers(
    shared: &Arc<Shared>,
    listener: &StdListener,
    stop: &watch::Receiver<bool>,
    pin: bool,
) -> io::Result<Vec<JoinHandle<()>>> {
    let cpus = if pin { allowed_cpus() } else { Vec::new() };
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..shared.workers)
        .map(|_| mpsc::unbounded_channel::<std::net::TcpStream>())
        .unzip();
    let handoff = Arc::new(senders);
    let mut threads = Vec::with_capacity(shared.workers);
    for (id, inbox) in receivers.into_iter().enumerate() {
        let listener = listener.try_clone()?;
        let (shared, handoff, stop) = (Arc::clone(shared), Arc::clone(&handoff), stop.clone());
        let cpu = (!cpus.is_empty()).then(|| cpus[id % cpus.len()]);
        let thread = std::thread::Builder::new()
            .name(format!("ramp-router-{id}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    pin_current_thread(cpu);
                }
                run_worker(id, shared, listener, handoff, inbox, stop)
            })?;
        threads.push(thread);
    }
    Ok(threads)
}

/// The CPUs this process may run on (its affinity mask, which honours cgroup cpusets).
fn allowed_cpus() -> Vec<usize> {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..nix::sched::CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect()
}

fn pin_current_thread(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    let pinned = set
        .set(cpu)
        .and_then(|()| nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set));
    if let Err(e) = pinned {
        tracing::warn!(cpu, error = %e, "cannot pin worker thread; the scheduler will place it");
    }
}

fn run_worker(
    id: usize,
    shared: Arc<Shared>,
    listener: StdListener,
    handoff: Arc<Vec<mpsc::UnboundedSender<std::net::TcpStream>>>,
    inbox: mpsc::UnboundedReceiver<std::net::TcpStream>,
    mut stop: watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = id, error = %e, "cannot start worker runtime");
            return;
        }
    };
    LocalSet::new().block_on(&runtime, async move {
        let worker = Rc::new(Worker::new(id, shared));
        match TcpListener::from_std(listener) {
            Ok(listener) => {
                tokio::task::spawn_local(accept_loop(Rc::clone(&worker), listener, handoff));
            }
            Err(e) => tracing::error!(worker = id, error = %e, "cannot register listener"),
        }
        tokio::task::spawn_local(adopt_handoffs(Rc::clone(&worker), inbox));
        tokio::task::spawn_local(sweep_pool(Rc::clone(&worker)));
        tokio::task::spawn_local(relay_shutdown(Rc::clone(&worker)));
        let _ = stop.wait_for(|stopped| *stopped).await;
    });
}

async fn accept_loop(
    worker: Rc<Worker>,
    listener: TcpListener,
    handoff: Arc<Vec<mpsc::UnboundedSender<std::net::TcpStream>>>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = worker.shutdown.wait() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        worker.shared.counters.count_connection();
        let target = worker.shared.least_busy_worker();
        let mine = worker.shared.active[worker.id].load(Relaxed);
        let theirs = worker.shared.active[target].load(Relaxed);
        if target != worker.id && mine > theirs + 1 {
            // Counted on the target now, not when it gets round to adopting the connection:
            // otherwise a burst of accepts all see the target idle and pile onto it.
            let active = &worker.shared.active[target];
            active.fetch_add(1, Relaxed);
            let sent = stream
                .into_std()
                .ok()
                .is_some_and(|s| handoff[target].send(s).is_ok());
            if !sent {
                active.fetch_sub(1, Relaxed);
            }
            continue;
        }
        serve(stream, Active::new(Rc::clone(&worker)));
    }
}

async fn adopt_handoffs(
    worker: Rc<Worker>,
    mut inbox: mpsc::UnboundedReceiver<std::net::TcpStream>,
) {
    while let Some(std_stream) = inbox.recv().await {
        match TcpStream::from_std(std_stream) {
            Ok(stream) => serve(stream, Active::adopted(Rc::clone(&worker))),
            Err(e) => {
                drop(Active::adopted(Rc::clone(&worker)));
                tracing::warn!(error = %e, "cannot adopt connection");
            }
        }
    }
}

fn serve(stream: TcpStream, active: Active) {
    tokio::task::spawn_local(async move {
        conn::serve(Rc::clone(&active.0), stream).await;
        drop(active);
    });
}

async fn relay_shutdown(worker: Rc<Worker>) {
    let mut shutdown = worker.shared.shutdown.subscribe();
    let _ = shutdown.wait_for(|started| *started).await;
    worker.shutdown.start();
}

async fn sweep_pool(worker: Rc<Worker>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let snapshot = worker.snapshot();
        let max_idle = snapshot.settings.timeouts.upstream_idle;
        let routable = |addr| {
            snapshot
                .revisions
                .iter()
                .flat_map(|r| &r.instances)
                .any(|i| i.addr == addr && !i.is_draining())
        };
        worker
            .pool
            .borrow_mut()
            .sweep(Instant::now(), max_idle, routable);
    }
}
