//! Choosing an instance inside a revision.

/// Picks the instance with the fewest requests in flight.
///
/// `load(i)` returns the in-flight count of instance `i`, or `None` when it must not be used
/// (ejected, draining, or already tried for this request). The scan starts at `start % n` so
/// that ties rotate between equally loaded instances instead of piling onto the first one.
/// Returns `None` when no instance is usable.
pub fn least_loaded(
    n: usize,
    start: usize,
    mut load: impl FnMut(usize) -> Option<u32>,
) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let mut best: Option<(u32, usize)> = None;
    for offset in 0..n {
        let i = (start + offset) % n;
        if let Some(l) = load(i)
            && best.is_none_or(|(b, _)| l < b)
        {
            best = Some((l, i));
            if l == 0 {
                break; // nothing beats an idle instance
            }
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefers_the_least_loaded() {
        let loads = [5, 2, 9];
        assert_eq!(least_loaded(3, 0, |i| Some(loads[i])), Some(1));
        assert_eq!(least_loaded(3, 2, |i| Some(loads[i])), Some(1));
    }

    #[test]
    fn skips_unusable_instances() {
        let loads = [Some(0), None, Some(3)];
        assert_eq!(least_loaded(3, 1, |i| loads[i]), Some(0));
        assert_eq!(least_loaded(2, 1, |i| [None, Some(7)][i]), Some(1));
        assert_eq!(least_loaded(3, 0, |_| None), None);
        assert_eq!(least_loaded(0, 0, |_| Some(0)), None);
    }

    #[test]
    fn ties_rotate_with_the_start() {
        let picks: Vec<_> = (0..4)
            .map(|s| least_loaded(4, s, |_| Some(1)).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 1, 2, 3]);
    }

    proptest! {
        #[test]
        fn result_is_a_minimum_among_usable(loads in proptest::collection::vec(proptest::option::of(0u32..8), 0..10), start in 0usize..20) {
            let picked = least_loaded(loads.len(), start, |i| loads[i]);
            let min = loads.iter().flatten().min();
            match (picked, min) {
                (Some(i), Some(&m)) => prop_assert_eq!(loads[i], Some(m)),
                (None, None) => {}
                other => prop_assert!(false, "mismatch {:?}", other),
            }
        }
    }
}
