//! Result checking: a speed figure only counts if the evaluators agree on what they served, so
//! every context's variant is compared with Ramp's.

use serde::Serialize;
use serde_json::{Map, Value};

/// How many examples of disagreement to keep per comparison.
const EXAMPLES_KEPT: usize = 5;

/// Disagreements between Ramp and one other evaluator on one flag class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Mismatches {
    /// Contexts compared.
    pub(crate) compared: usize,
    /// Contexts whose variants differ (a missing answer counts as a difference).
    pub(crate) count: usize,
    /// The first few differences.
    pub(crate) examples: Vec<MismatchExample>,
}

/// One context on which two evaluators served different variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct MismatchExample {
    pub(crate) index: usize,
    pub(crate) targeting_key: Option<String>,
    pub(crate) ramp: Option<String>,
    pub(crate) other: Option<String>,
}

impl Mismatches {
    pub(crate) fn is_clean(&self) -> bool {
        self.count == 0
    }
}

/// Compares variant lists context by context. `other` being shorter or longer than `ramp` counts
/// each unmatched position as a mismatch.
pub(crate) fn compare_variants(
    contexts: &[Map<String, Value>],
    ramp: &[Option<String>],
    other: &[Option<String>],
) -> Mismatches {
    let compared = ramp.len().max(other.len());
    let mut count = 0;
    let mut examples = Vec::new();
    for index in 0..compared {
        let ours = ramp.get(index).cloned().flatten();
        let theirs = other.get(index).cloned().flatten();
        let both_present = index < ramp.len() && index < other.len();
        if both_present && ours == theirs {
            continue;
        }
        count += 1;
        if examples.len() < EXAMPLES_KEPT {
            let targeting_key = contexts
                .get(index)
                .and_then(|context| context.get("targetingKey"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            examples.push(MismatchExample {
                index,
                targeting_key,
                ramp: ours,
                other: theirs,
            });
        }
    }
    Mismatches {
        compared,
        count,
        examples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn names(list: &[Option<&str>]) -> Vec<Option<String>> {
        list.iter().map(|name| name.map(str::to_owned)).collect()
    }

    #[test]
    fn equal_lists_are_clean() {
        let list = names(&[Some("a"), None, Some("b")]);
        let result = compare_variants(&[], &list, &list);
        assert!(result.is_clean());
        assert_eq!(result.compared, 3);
    }

    #[test]
    fn differences_are_counted_with_the_context_key() {
        let context = json!({"targetingKey": "user-1"});
        let contexts = vec![Map::new(), context.as_object().cloned().unwrap()];
        let result = compare_variants(
            &contexts,
            &names(&[Some("a"), Some("b")]),
            &names(&[Some("a"), None]),
        );
        assert_eq!(result.count, 1);
        assert_eq!(
            result.examples,
            [MismatchExample {
                index: 1,
                targeting_key: Some("user-1".to_owned()),
                ramp: Some("b".to_owned()),
                other: None,
            }]
        );
    }

    #[test]
    fn a_short_answer_list_counts_the_missing_positions() {
        let result = compare_variants(&[], &names(&[None, None, None]), &names(&[None]));
        assert_eq!((result.compared, result.count), (3, 2));
    }

    proptest! {
        #[test]
        fn count_equals_differing_positions(pairs in proptest::collection::vec((0u8..3, 0u8..3), 0..200)) {
            let to_names = |values: Vec<u8>| -> Vec<Option<String>> {
                values.into_iter().map(|v| (v > 0).then(|| v.to_string())).collect()
            };
            let ramp = to_names(pairs.iter().map(|p| p.0).collect());
            let other = to_names(pairs.iter().map(|p| p.1).collect());
            let expected = pairs.iter().filter(|(a, b)| a != b).count();
            let result = compare_variants(&[], &ramp, &other);
            prop_assert_eq!(result.count, expected);
            prop_assert!(result.examples.len() <= EXAMPLES_KEPT.min(expected));
        }
    }
}
