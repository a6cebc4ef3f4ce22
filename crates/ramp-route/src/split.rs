//! Weighted split between revisions, random or sticky.
//!
//! Random requests use a cumulative-weight table. Sticky requests use weighted rendezvous
//! hashing: every revision draws an exponential "arrival time" `-ln(u) / weight` from the user's
//! hash and the revision's salt, and the earliest arrival wins. Each revision wins with
//! probability `weight / total`, and a user stays on a revision as long as that revision's
//! weight grows at least as fast as every other's — in particular when a canary's weight grows
//! and the stable revision's shrinks, nobody on the canary ever moves back.

use crate::hash::{mix, unit_interval};

/// A revision's place in the split.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    /// Index of the revision in its table.
    pub revision: usize,
    /// Relative weight; zero-weight revisions take no share.
    pub weight: u32,
    /// Per-revision salt (a hash of its name), stable across tables.
    pub salt: u64,
}

/// The split of one route table, precomputed once per table.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedSplit {
    /// Positive-weight shares in table order, with the running total of weights.
    cumulative: Vec<(u64, usize)>,
    total: u64,
    /// Positive-weight shares with their salt and `1 / weight`.
    rendezvous: Vec<(usize, u64, f64)>,
}

impl WeightedSplit {
    /// Builds the split; `None` when no share has a positive weight.
    pub fn new(shares: &[Share]) -> Option<Self> {
        let mut total = 0u64;
        let mut cumulative = Vec::new();
        let mut rendezvous = Vec::new();
        for share in shares.iter().filter(|s| s.weight > 0) {
            total += u64::from(share.weight);
            cumulative.push((total, share.revision));
            rendezvous.push((share.revision, share.salt, 1.0 / f64::from(share.weight)));
        }
        (total > 0).then_some(WeightedSplit {
            cumulative,
            total,
            rendezvous,
        })
    }

    /// Sum of all weights.
    pub fn total_weight(&self) -> u64 {
        self.total
    }

    /// Picks a revision with probability proportional to its weight, from 64 random bits.
    pub fn pick_random(&self, random: u64) -> usize {
        // Multiply-shift maps the bits onto [0, total) without a division.
        let point = ((u128::from(random) * u128::from(self.total)) >> 64) as u64;
        let slot = self.cumulative.partition_point(|&(end, _)| end <= point);
        self.cumulative[slot.min(self.cumulative.len() - 1)].1
    }

    /// Picks the revision for a user with key hash `key` (see module docs).
    pub fn pick_sticky(&self, key: u64) -> usize {
        let mut best = (f64::INFINITY, self.rendezvous[0].0);
        for &(revision, salt, inverse_weight) in &self.rendezvous {
            let arrival = -unit_interval(mix(key ^ salt)).ln() * inverse_weight;
            if arrival < best.0 {
                best = (arrival, revision);
            }
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::key_hash;
    use proptest::prelude::*;

    fn shares(weights: &[u32]) -> Vec<Share> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Share {
                revision: i,
                weight,
                salt: key_hash(format!("rev-{i}").as_bytes()),
            })
            .collect()
    }

    #[test]
    fn no_positive_weight_means_no_split() {
        assert!(WeightedSplit::new(&shares(&[0, 0])).is_none());
        assert!(WeightedSplit::new(&[]).is_none());
    }

    #[test]
    fn random_pick_covers_exact_ranges() {
        let split = WeightedSplit::new(&shares(&[1, 0, 3])).unwrap();
        // The random word is mapped to [0, 4): 0 → rev 0, 1..4 → rev 2; rev 1 never.
        assert_eq!(split.pick_random(0), 0);
        assert_eq!(split.pick_random(u64::MAX / 4), 0);
        assert_eq!(split.pick_random(u64::MAX / 4 + 1), 2);
        assert_eq!(split.pick_random(u64::MAX), 2);
    }

    /// Binomial tolerance: 5 standard deviations, so a correct split fails with odds < 1e-6.
    fn assert_share(hits: u64, n: u64, p: f64) {
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        let diff = (hits as f64 - n as f64 * p).abs();
        assert!(diff <= 5.0 * sd + 1.0, "{hits} of {n}, expected p={p}");
    }

    #[test]
    fn random_and_sticky_picks_follow_weights() {
        let split = WeightedSplit::new(&shares(&[95, 5, 20])).unwrap();
        let n = 200_000u64;
        let mut random = [0u64; 3];
        let mut sticky = [0u64; 3];
        for i in 0..n {
            random[split.pick_random(mix(i))] += 1;
            sticky[split.pick_sticky(key_hash(format!("user-{i}").as_bytes()))] += 1;
        }
        for (counts, what) in [(random, "random"), (sticky, "sticky")] {
            assert_share(counts[0], n, 95.0 / 120.0);
            assert_share(counts[1], n, 5.0 / 120.0);
            assert_share(counts[2], n, 20.0 / 120.0);
            assert_eq!(counts.iter().sum::<u64>(), n, "{what}");
        }
    }

    proptest! {
        /// The monotonicity promise: as the canary's weight grows and the stable's shrinks, a user
        /// already on the canary stays there, whatever the weights and however many revisions.
        #[test]
        fn sticky_users_never_leave_a_growing_revision(
            key in any::<u64>(),
            weights in proptest::collection::vec(0u32..1000, 2..5),
            canary in 0usize..5,
            growth in 1u32..1000,
            shrink in proptest::collection::vec(0u32..1000, 5),
        ) {
            let canary = canary % weights.len();
            let before_shares = shares(&weights);
            let mut after_weights = weights.clone();
            after_weights[canary] = after_weights[canary].saturating_add(growth);
            for (i, w) in after_weights.iter_mut().enumerate() {
                if i != canary {
                    *w = w.saturating_sub(shrink[i]);
                }
            }
            let (Some(before), Some(after)) = (
                WeightedSplit::new(&before_shares),
                WeightedSplit::new(&shares(&after_weights)),
            ) else {
                return Ok(());
            };
            if before.pick_sticky(key) == canary {
                prop_assert_eq!(after.pick_sticky(key), canary);
            }
        }

        /// A sticky user only ever moves towards a revision whose weight went up.
        #[test]
        fn canary_ramp_moves_users_one_way(key in any::<u64>(), steps in proptest::collection::vec(1u32..30, 1..8)) {
            let mut canary_weight = 0u32;
            let mut on_canary = false;
            for step in steps {
                canary_weight = (canary_weight + step).min(100);
                let split = WeightedSplit::new(&shares(&[100 - canary_weight, canary_weight]))
                    .expect("total is 100");
                let now_on_canary = split.pick_sticky(key) == 1;
                prop_assert!(!on_canary || now_on_canary, "user moved back at weight {}", canary_weight);
                on_canary = now_on_canary;
            }
        }

        #[test]
        fn picks_only_positive_weights(weights in proptest::collection::vec(0u32..10, 1..6), r in any::<u64>()) {
            if let Some(split) = WeightedSplit::new(&shares(&weights)) {
                prop_assert!(weights[split.pick_random(r)] > 0);
                prop_assert!(weights[split.pick_sticky(r)] > 0);
            }
        }
    }
}
