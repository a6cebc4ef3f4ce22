//! Rolling update with Kubernetes semantics: at most `replicas + maxSurge` instances exist and
//! at least `replicas - maxUnavailable` are ready at any time.

use ramp_model::Rolling;

use crate::input::World;
use crate::machine::Machine;

use super::ready;

pub(super) fn advance(m: &mut Machine<'_>, world: &World, bounds: Rolling) {
    let Some((from, to)) = m.active().map(|r| (r.from, r.to)) else {
        return;
    };
    let replicas = m.s.replicas;
    let surge = bounds.max_surge.round_up(replicas);
    let unavailable = bounds.max_unavailable.round_down(replicas);
    // Validation forbids both bounds at 0; a restart of a tiny service may still get there.
    let surge = if surge == 0 && unavailable == 0 {
        1
    } else {
        surge
    };
    let min_ready = replicas.saturating_sub(unavailable);

    // A stack's size is what it should have or what it has, whichever is larger: instances
    // asked for but not started yet, and instances still stopping, both count.
    let size = |m: &Machine<'_>, id: u64| {
        let existing = world.get(&id).map_or(0, |s| s.total());
        m.replicas_of(id).max(existing)
    };
    let old: Vec<u64> = from.into_iter().collect();

    // Scale up the new stack within the surge budget.
    let total_size: u32 = old.iter().map(|&o| size(m, o)).sum::<u32>() + size(m, to);
    let room = (replicas + surge).saturating_sub(total_size);
    let new_replicas = (m.replicas_of(to) + room).min(replicas);
    m.set_replicas(to, new_replicas);

    // Scale down old stacks while enough instances stay ready. Ready old instances beyond an
    // old stack's desired size are already on their way out and are not counted.
    let mut available = ready(world, to)
        + old
            .iter()
            .map(|&o| ready(world, o).min(m.replicas_of(o)))
            .sum::<u32>();
    for &o in &old {
        let desired = m.replicas_of(o);
        let running = world.get(&o).map_or(0, |s| s.running);
        let old_ready = ready(world, o).min(desired);
        let unready = running.min(desired).saturating_sub(old_ready);
        let removable = unready + available.saturating_sub(min_ready);
        let remove = removable.min(desired);
        m.set_replicas(o, desired - remove);
        available -= remove.saturating_sub(unready).min(old_ready);
    }

    let old_left: u32 = old.iter().map(|&o| m.replicas_of(o)).sum();
    if ready(world, to) >= replicas && old_left == 0 {
        m.complete(false);
    }
}
