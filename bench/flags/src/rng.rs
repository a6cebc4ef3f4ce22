//! A tiny seeded generator (SplitMix64) so the user population is the same on every machine and
//! every run, without pulling in a random-number crate.

/// SplitMix64: fast, well mixed, and fully determined by its seed.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// A value in `0..bound` (`bound` > 0); the tiny modulo bias is irrelevant here.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// One of `choices`, each `(item, weight)`; weights need not sum to anything in particular.
    pub(crate) fn weighted<'a, T>(&mut self, choices: &'a [(T, u64)]) -> &'a T {
        let total: u64 = choices.iter().map(|(_, weight)| weight).sum();
        let mut ticket = self.below(total.max(1));
        for (item, weight) in choices {
            if ticket < *weight {
                return item;
            }
            ticket -= weight;
        }
        &choices[choices.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut first = SplitMix64::new(7);
        let mut second = SplitMix64::new(7);
        let a: Vec<u64> = (0..16).map(|_| first.next_u64()).collect();
        let b: Vec<u64> = (0..16).map(|_| second.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(a, {
            let mut other = SplitMix64::new(8);
            (0..16).map(|_| other.next_u64()).collect::<Vec<_>>()
        });
    }

    proptest! {
        #[test]
        fn below_stays_in_range(seed in any::<u64>(), bound in 1u64..1_000) {
            let mut rng = SplitMix64::new(seed);
            for _ in 0..32 {
                prop_assert!(rng.below(bound) < bound);
            }
        }

        #[test]
        fn weighted_never_picks_a_zero_weight(seed in any::<u64>()) {
            let mut rng = SplitMix64::new(seed);
            let choices = [("never", 0), ("a", 3), ("b", 1)];
            for _ in 0..32 {
                prop_assert_ne!(*rng.weighted(&choices), "never");
            }
        }
    }
}
