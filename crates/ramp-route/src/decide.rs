//! The per-request routing decision.

use crate::hash::key_hash;
use crate::matcher::{RequestView, all_hold};
use crate::table::RouteTable;

/// Why a request went where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Rule number `n` (declaration order) matched.
    Rule(usize),
    /// The sticky key pinned the user.
    Sticky,
    /// A weighted random draw.
    Weighted,
}

/// Where one request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Index of the revision that serves the request.
    pub revision: usize,
    /// Why.
    pub reason: Reason,
    /// Index of a revision that gets a copy of the request, if any.
    pub mirror: Option<usize>,
}

impl RouteTable {
    /// Decides where a request goes. `random` supplies fresh random words (at most two).
    ///
    /// Order: the first matching rule pins the request; otherwise the sticky key, when the
    /// request carries it; otherwise a weighted draw. A mirror copy is never sent to the
    /// revision that already serves the request.
    pub fn decide(&self, req: &impl RequestView, mut random: impl FnMut() -> u64) -> Decision {
        let (revision, reason) = self.primary(req, &mut random);
        let mirror = self.mirror_for(req, revision, &mut random);
        Decision {
            revision,
            reason,
            mirror,
        }
    }

    fn primary(&self, req: &impl RequestView, random: &mut impl FnMut() -> u64) -> (usize, Reason) {
        if let Some((n, (_, revision))) = self
            .rules()
            .enumerate()
            .find(|(_, (conditions, _))| all_hold(conditions, req))
        {
            return (revision, Reason::Rule(n));
        }
        if let Some(key) = self.sticky_source().and_then(|s| s.read(req)) {
            return (self.split().pick_sticky(key_hash(key)), Reason::Sticky);
        }
        (self.split().pick_random(random()), Reason::Weighted)
    }

    fn mirror_for(
        &self,
        req: &impl RequestView,
        primary: usize,
        random: &mut impl FnMut() -> u64,
    ) -> Option<usize> {
        let (_, revision, threshold) = self
            .mirrors()
            .find(|(conditions, revision, _)| *revision != primary && all_hold(conditions, req))?;
        (u128::from(random()) < threshold).then_some(revision)
    }
}

#[cfg(test)]
mod tests {
    use crate::hash::mix;
    use crate::matcher::tests::FakeRequest;
    use crate::matcher::{Condition, Source, ValueMatch};
    use crate::table::{MirrorSpec, RevisionSpec, RouteTable, RuleSpec, TableError, TableSpec};

    use super::*;

    fn rev(name: &str, weight: u32, port: u16) -> RevisionSpec {
        RevisionSpec {
            name: name.into(),
            weight,
            instances: vec![format!("127.0.0.1:{port}").parse().unwrap()],
        }
    }

    fn header_is(name: &str, value: &str) -> Condition {
        Condition {
            source: Source::header(name),
            value: ValueMatch::Exact(value.into()),
        }
    }

    fn counter() -> impl FnMut() -> u64 {
        let mut i = 0u64;
        move || {
            i += 1;
            mix(i)
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(TableSpec {
            revisions: vec![
                rev("stable", 90, 1),
                rev("canary", 10, 2),
                rev("shadow", 0, 3),
            ],
            rules: vec![RuleSpec {
                conditions: vec![header_is("x-canary", "always")],
                revision: "canary".into(),
            }],
            mirrors: vec![MirrorSpec {
                revision: "shadow".into(),
                percent: 50.0,
                conditions: vec![],
            }],
            sticky: Some(Source::header("x-user")),
        })
        .unwrap()
    }

    #[test]
    fn rules_pin_matching_requests() {
        let t = table();
        let mut rng = counter();
        for _ in 0..200 {
            let d = t.decide(&FakeRequest::with(&[("X-Canary", "always")]), &mut rng);
            assert_eq!((d.revision, d.reason), (1, Reason::Rule(0)));
        }
    }

    #[test]
    fn sticky_users_always_land_on_the_same_revision() {
        let t = table();
        let mut rng = counter();
        for user in 0..100 {
            let id = format!("user-{user}");
            let req = FakeRequest::with(&[("x-user", &id)]);
            let first = t.decide(&req, &mut rng);
            assert_eq!(first.reason, Reason::Sticky);
            for _ in 0..20 {
                assert_eq!(t.decide(&req, &mut rng).revision, first.revision);
            }
        }
    }

    #[test]
    fn zero_weight_revisions_get_no_unpinned_traffic_but_mirrors() {
        let t = table();
        let mut rng = counter();
        let (mut mirrored, n) = (0, 20_000);
        for _ in 0..n {
            let d = t.decide(&FakeRequest::default(), &mut rng);
            assert_ne!(d.revision, 2);
            assert_eq!(d.reason, Reason::Weighted);
            if let Some(m) = d.mirror {
                assert_eq!(m, 2);
                mirrored += 1;
            }
        }
        // 50% ± 5 standard deviations.
        assert!((mirrored as f64 - n as f64 / 2.0).abs() < 5.0 * (n as f64 / 4.0).sqrt());
    }

    #[test]
    fn no_mirror_copy_to_the_serving_revision() {
        let t = RouteTable::new(TableSpec {
            revisions: vec![rev("a", 1, 1)],
            mirrors: vec![MirrorSpec {
                revision: "a".into(),
                percent: 100.0,
                conditions: vec![],
            }],
            ..TableSpec::default()
        })
        .unwrap();
        assert_eq!(t.decide(&FakeRequest::default(), counter()).mirror, None);
    }

    #[test]
    fn full_mirror_copies_everything_that_matches() {
        let t = RouteTable::new(TableSpec {
            revisions: vec![rev("a", 1, 1), rev("b", 0, 2)],
            mirrors: vec![MirrorSpec {
                revision: "b".into(),
                percent: 100.0,
                conditions: vec![header_is("x-m", "1")],
            }],
            ..TableSpec::default()
        })
        .unwrap();
        let mut rng = || u64::MAX;
        let yes = FakeRequest::with(&[("x-m", "1")]);
        assert_eq!(t.decide(&yes, &mut rng).mirror, Some(1));
        assert_eq!(t.decide(&FakeRequest::default(), &mut rng).mirror, None);
    }

    #[test]
    fn invalid_specs_are_refused_with_the_culprit() {
        let base = || TableSpec {
            revisions: vec![rev("a", 1, 1), rev("b", 0, 2)],
            ..TableSpec::default()
        };
        assert_eq!(
            RouteTable::new(TableSpec::default()),
            Err(TableError::NoRevisions)
        );

        let mut spec = base();
        spec.revisions[1].name = "b c".into();
        assert!(matches!(
            RouteTable::new(spec),
            Err(TableError::InvalidName { revision: 1, .. })
        ));

        let mut spec = base();
        spec.revisions[1].name = "a".into();
        assert!(matches!(
            RouteTable::new(spec),
            Err(TableError::DuplicateName { revision: 1, .. })
        ));

        let mut spec = base();
        spec.revisions[0].weight = 0;
        assert_eq!(RouteTable::new(spec), Err(TableError::NoWeight));

        let mut spec = base();
        spec.revisions[0].instances.clear();
        assert!(matches!(
            RouteTable::new(spec),
            Err(TableError::NoInstances { revision: 0, .. })
        ));

        // A zero-weight revision without instances is fine until something routes to it.
        let mut spec = base();
        spec.revisions[1].instances.clear();
        assert!(RouteTable::new(spec.clone()).is_ok());
        spec.rules.push(RuleSpec {
            conditions: vec![header_is("x", "1")],
            revision: "b".into(),
        });
        assert!(matches!(
            RouteTable::new(spec),
            Err(TableError::NoInstances { revision: 1, .. })
        ));

        let mut spec = base();
        let dup = spec.revisions[0].instances[0];
        spec.revisions[0].instances.push(dup);
        assert!(matches!(
            RouteTable::new(spec),
            Err(TableError::DuplicateInstance { revision: 0, .. })
        ));

        let mut spec = base();
        spec.rules.push(RuleSpec {
            conditions: vec![header_is("x", "1")],
            revision: "zzz".into(),
        });
        assert!(matches!(
            RouteTable::new(spec),
            Err(TableError::UnknownRuleRevision { rule: 0, .. })
        ));

        let mut spec = base();
        spec.rules.push(RuleSpec {
            conditions: vec![],
            revision: "a".into(),
        });
        assert_eq!(
            RouteTable::new(spec),
            Err(TableError::EmptyRule { rule: 0 })
        );

        for percent in [0.0, -1.0, 100.5, f64::NAN] {
            let mut spec = base();
            spec.mirrors.push(MirrorSpec {
                revision: "b".into(),
                percent,
                conditions: vec![],
            });
            assert!(matches!(
                RouteTable::new(spec),
                Err(TableError::MirrorPercent { mirror: 0, .. })
            ));
        }
    }
}
