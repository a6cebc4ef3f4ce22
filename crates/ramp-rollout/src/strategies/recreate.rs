//! Recreate: every old instance stops, then the new ones start.

use crate::input::World;
use crate::machine::Machine;

use super::{ready, total};

pub(super) fn advance(m: &mut Machine<'_>, world: &World) {
    let Some((from, to)) = m.active().map(|r| (r.from, r.to)) else {
        return;
    };
    if let Some(from) = from {
        m.set_replicas(from, 0);
        if total(world, from) > 0 {
            return; // the old instances are still draining
        }
    }
    let replicas = m.s.replicas;
    m.set_replicas(to, replicas);
    if ready(world, to) >= replicas {
        m.complete(false);
    }
}
