//! Rolling update with Kubernetes semantics: at most `replicas + maxSurge` instances exist and
//! at least `replicas - maxUnavailable` are ready at any time.

use ramp_model::Rolling;

use crate::input::World;
use crate::machine::Machine;
use crate::state::RolloutKind;

use super::{ready, total};

pub(super) fn advance(m: &mut Machine<'_>, world: &World, bounds: &Rolling) {
    let Some((id, kind, from, to)) = m.active().map(|r| (r.id, r.kind, r.from, r.to)) else {
        return;
    };
    let judged = kind == RolloutKind::Update && bounds.analysis.is_some();
    if judged && !batch_judged(m, world, id, to) {
        return;
    }
    // New instances judged good so far; without per-batch analysis every one counts.
    let verified = if judged {
        m.active().map_or(0, |r| r.analysis.batch_verified)
    } else {
        u32::MAX
    };
    let replicas = m.s.replicas;
    let (surge, unavailable) = bounds.resolve(replicas);
    // Validation forbids both bounds at 0; a restart of a tiny service may still get there.
    let surge = if surge == 0 && unavailable == 0 {
        1
    } else {
        surge
    };
    let min_ready = replicas.saturating_sub(unavailable);

    // A stack's size is what it should have or what it has, whichever is larger: instances
    // asked for but not started yet, and instances still stopping, both count.
    let size = |m: &Machine<'_>, id: u64| m.replicas_of(id).max(total(world, id));

    // Scale up the new stack within the surge budget.
    let total_size = from.map_or(0, |o| size(m, o)) + size(m, to);
    let room = (replicas + surge).saturating_sub(total_size);
    // A new batch starts only once the one before was judged good.
    let new_replicas = if m.replicas_of(to) > verified {
        m.replicas_of(to)
    } else {
        (m.replicas_of(to) + room).min(replicas)
    };
    m.set_replicas(to, new_replicas);

    // Scale down the old stack while enough instances stay ready. Ready old instances beyond
    // its desired size are already on their way out and are not counted; instances that are
    // not ready can always go.
    if let Some(old) = from {
        let desired = m.replicas_of(old);
        let old_ready = ready(world, old).min(desired);
        let available = ready(world, to) + old_ready;
        let running = world.get(&old).map_or(0, |s| s.running);
        let unready = running.min(desired).saturating_sub(old_ready);
        let remove = (unready + available.saturating_sub(min_ready)).min(desired);
        m.set_replicas(old, desired - remove);
    }

    let old_left = from.map_or(0, |o| m.replicas_of(o));
    if ready(world, to) >= replicas && old_left == 0 && verified >= replicas {
        m.complete(false);
    }
}

/// Per-batch analysis: once every instance of the current batch is ready, it is judged
/// before anything else moves. False while a verdict is awaited.
fn batch_judged(m: &mut Machine<'_>, world: &World, id: u64, to: u64) -> bool {
    let Some(r) = m.active() else {
        return false;
    };
    if r.analysis.batch_pending.is_some() {
        return false;
    }
    let batch = m.replicas_of(to);
    if batch > r.analysis.batch_verified && ready(world, to) >= batch {
        if let Some(r) = m.rollout_mut() {
            r.analysis.batch_pending = Some(batch);
        }
        m.event(
            "AnalysisStarted",
            format!("rollout {id}: {batch} new instances ready, running batch analysis"),
        );
        return false;
    }
    true
}
