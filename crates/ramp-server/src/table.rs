//! From the routes a rollout asks for to the router's table: which ready instance serves which
//! share. Pure, so the rules are tested without a router.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ramp_rollout::{Routes, Split, Stack};
use ramp_route::{MirrorSpec, RevisionSpec, RuleSpec, TableSpec};

/// Ready instances per stack, as the router should see them (instances being drained left out).
pub type ReadyInstances = BTreeMap<u64, Vec<SocketAddr>>;

/// Builds the router table for `routes`, or `None` when no stack that should get traffic has a
/// ready instance. The caller then keeps the table already serving: sending traffic nowhere is
/// never better than sending it to the instances that still answer.
///
/// The spec is only built, not compiled: it is compared with the table in place every tick,
/// and the router validates it when it is pushed. It is valid by construction (every revision
/// has instances, rules and mirrors name a revision in the table, some weight is not 0); the
/// tests check that with `RouteTable::new`.
pub fn build_table(routes: &Routes, stacks: &[Stack], ready: &ReadyInstances) -> Option<TableSpec> {
    let name = |id: u64| {
        stacks
            .iter()
            .find(|s| s.id == id)
            .map_or_else(|| format!("s{id}"), |s| s.route_name(stacks))
    };
    let instances = |id: u64| ready.get(&id).cloned().unwrap_or_default();
    let weights: Vec<(u64, u32)> = match &routes.split {
        Split::PerInstance(ids) => ids
            .iter()
            .map(|&id| (id, instances(id).len() as u32))
            .collect(),
        Split::Weighted(weights) => weights
            .iter()
            .map(|&(id, w)| (id, if instances(id).is_empty() { 0 } else { w }))
            .collect(),
    };
    if weights.iter().all(|&(_, w)| w == 0) {
        return None;
    }
    let mut revisions: Vec<RevisionSpec> = Vec::new();
    let mut add = |id: u64, weight: u32| {
        let revision_name = name(id);
        match revisions.iter_mut().find(|r| r.name == revision_name) {
            Some(r) => r.weight = r.weight.max(weight),
            None => revisions.push(RevisionSpec {
                name: revision_name,
                weight,
                instances: instances(id),
            }),
        }
    };
    for &(id, weight) in weights.iter().filter(|&&(_, w)| w > 0) {
        add(id, weight);
    }
    // Pinned and mirrored stacks need their instances in the table even at weight 0; routes to a
    // stack with no ready instance are left out rather than failing requests.
    let pinned: Vec<_> = routes
        .pinned
        .iter()
        .filter(|p| !instances(p.stack).is_empty())
        .collect();
    let mirrors: Vec<_> = routes
        .mirrors
        .iter()
        .filter(|m| !instances(m.stack).is_empty())
        .collect();
    for p in &pinned {
        add(p.stack, 0);
    }
    for m in &mirrors {
        add(m.stack, 0);
    }
    Some(TableSpec {
        revisions,
        rules: pinned
            .iter()
            .map(|p| RuleSpec {
                conditions: p.conditions.clone(),
                revision: name(p.stack),
            })
            .collect(),
        mirrors: mirrors
            .iter()
            .map(|m| MirrorSpec {
                revision: name(m.stack),
                percent: m.percentage,
                conditions: m.conditions.clone(),
            })
            .collect(),
        sticky: routes.sticky.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramp_rollout::{Mirror, PinnedRoute};
    use ramp_route::{Condition, RouteTable, Source, ValueMatch};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn stacks() -> Vec<Stack> {
        vec![
            Stack {
                id: 1,
                revision: 1,
                replicas: 2,
            },
            Stack {
                id: 2,
                revision: 2,
                replicas: 1,
            },
        ]
    }

    /// The table `build_table` makes, which the router must accept.
    fn table(routes: &Routes, ready: &ReadyInstances) -> RouteTable {
        let spec = build_table(routes, &stacks(), ready).expect("a table");
        RouteTable::new(spec.clone())
            .unwrap_or_else(|e| panic!("the router refuses the table: {e}\n{spec:#?}"))
    }

    fn weights(table: &RouteTable) -> Vec<(String, u32, usize)> {
        table
            .revisions()
            .iter()
            .map(|r| (r.name.clone(), r.weight, r.instances.len()))
            .collect()
    }

    #[test]
    fn per_instance_split_weighs_by_ready_instances() {
        let ready: ReadyInstances = [(1, vec![addr(1), addr(2)]), (2, vec![addr(3)])].into();
        let routes = Routes {
            split: Split::PerInstance(vec![1, 2]),
            pinned: vec![],
            mirrors: vec![],
            sticky: None,
        };
        let table = table(&routes, &ready);
        assert_eq!(weights(&table), [("r1".into(), 2, 2), ("r2".into(), 1, 1)]);
    }

    #[test]
    fn weighted_split_skips_stacks_without_ready_instances() {
        let ready: ReadyInstances = [(1, vec![addr(1)])].into();
        let routes = Routes {
            split: Split::Weighted(vec![(1, 80), (2, 20)]),
            pinned: vec![PinnedRoute {
                conditions: vec![Condition {
                    source: Source::header("x-canary"),
                    value: ValueMatch::Present,
                }],
                stack: 2,
            }],
            mirrors: vec![],
            sticky: None,
        };
        let table = table(&routes, &ready);
        assert_eq!(weights(&table), [("r1".into(), 80, 1)]);
        assert!(
            table.spec().rules.is_empty(),
            "no route to a stack with nothing ready"
        );
    }

    #[test]
    fn canary_routes_and_mirrors_point_at_the_canary() {
        let ready: ReadyInstances = [(1, vec![addr(1)]), (2, vec![addr(2)])].into();
        let condition = Condition {
            source: Source::cookie("beta"),
            value: ValueMatch::Exact("yes".into()),
        };
        let routes = Routes {
            split: Split::Weighted(vec![(1, 100)]),
            pinned: vec![PinnedRoute {
                conditions: vec![condition.clone()],
                stack: 2,
            }],
            mirrors: vec![Mirror {
                stack: 2,
                percentage: 10.0,
                conditions: vec![],
            }],
            sticky: Some(Source::header("x-user")),
        };
        let table = table(&routes, &ready);
        assert_eq!(
            weights(&table),
            [("r1".into(), 100, 1), ("r2".into(), 0, 1)]
        );
        assert_eq!(table.spec().rules[0].revision, "r2");
        assert_eq!(table.spec().mirrors[0].revision, "r2");
        assert_eq!(table.sticky_source(), Some(&Source::header("x-user")));
    }

    #[test]
    fn nothing_ready_means_no_new_table() {
        let routes = Routes::only(1);
        assert!(build_table(&routes, &stacks(), &ReadyInstances::new()).is_none());
    }
}
