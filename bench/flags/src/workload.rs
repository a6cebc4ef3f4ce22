//! What every evaluator runs: the three flag classes and a seeded population of users. The
//! workload is written to one JSON file that the Rust, JavaScript and Python sides all read, so
//! they evaluate exactly the same flags on exactly the same contexts.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::rng::SplitMix64;

/// The kinds of flag whose evaluation speed is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagClass {
    /// No targeting: the default variant.
    Static,
    /// `if` / `and` / `in` / `==` / `starts_with` / `ends_with` over context fields.
    Rule,
    /// `fractional` over `flagKey + targetingKey` with weighted variants.
    Fractional,
}

impl FlagClass {
    pub(crate) const ALL: [FlagClass; 3] =
        [FlagClass::Static, FlagClass::Rule, FlagClass::Fractional];

    pub(crate) fn name(self) -> &'static str {
        match self {
            FlagClass::Static => "static",
            FlagClass::Rule => "rule",
            FlagClass::Fractional => "fractional",
        }
    }

    /// The key of this class's flag in `bench/flags/flags.json`.
    pub(crate) fn flag_key(self) -> &'static str {
        match self {
            FlagClass::Static => "checkout-v2",
            FlagClass::Rule => "pricing-page",
            FlagClass::Fractional => "homepage-hero",
        }
    }

    /// The OpenFeature type the flag is resolved as (and the caller's default of that type).
    fn resolution(self) -> (&'static str, Value) {
        match self {
            FlagClass::Static => ("boolean", Value::Bool(false)),
            FlagClass::Rule | FlagClass::Fractional => ("string", Value::from("fallback")),
        }
    }
}

/// One value per flag class, serialised as `{"static": .., "rule": .., "fractional": ..}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PerClass<T> {
    #[serde(rename = "static")]
    pub(crate) static_: T,
    pub(crate) rule: T,
    pub(crate) fractional: T,
}

impl<T> PerClass<T> {
    pub(crate) fn from_fn(mut make: impl FnMut(FlagClass) -> T) -> PerClass<T> {
        PerClass {
            static_: make(FlagClass::Static),
            rule: make(FlagClass::Rule),
            fractional: make(FlagClass::Fractional),
        }
    }

    pub(crate) fn get(&self, class: FlagClass) -> &T {
        match class {
            FlagClass::Static => &self.static_,
            FlagClass::Rule => &self.rule,
            FlagClass::Fractional => &self.fractional,
        }
    }

    pub(crate) fn get_mut(&mut self, class: FlagClass) -> &mut T {
        match class {
            FlagClass::Static => &mut self.static_,
            FlagClass::Rule => &mut self.rule,
            FlagClass::Fractional => &mut self.fractional,
        }
    }
}

const DOMAINS: [(&str, u64); 5] = [
    ("acme.io", 20),
    ("gmail.com", 35),
    ("example.com", 20),
    ("outlook.com", 15),
    ("corp.example.org", 10),
];
const PLANS: [(&str, u64); 3] = [("free", 60), ("pro", 30), ("enterprise", 10)];
const COUNTRIES: [(&str, u64); 10] = [
    ("US", 30),
    ("DE", 12),
    ("FR", 8),
    ("GB", 10),
    ("NL", 5),
    ("SE", 3),
    ("BR", 8),
    ("IN", 12),
    ("JP", 7),
    ("CA", 5),
];
const MAJOR_VERSIONS: [(u64, u64); 3] = [(1, 30), (2, 45), (3, 25)];

/// `count` user contexts, fully determined by `seed`: `targetingKey`, `email`, `plan`,
/// `country` and an app `version`, as a real client would send them.
pub(crate) fn generate_contexts(count: usize, seed: u64) -> Vec<Map<String, Value>> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|index| {
            let id = rng.next_u64();
            let domain = rng.weighted(&DOMAINS);
            let major = rng.weighted(&MAJOR_VERSIONS);
            let version = format!("{major}.{}.{}", rng.below(12), rng.below(20));
            let mut context = Map::new();
            let mut put = |name: &str, value: String| {
                context.insert(name.to_owned(), Value::String(value));
            };
            put("targetingKey", format!("user-{id:016x}"));
            put("email", format!("user{index}@{domain}"));
            put("plan", (*rng.weighted(&PLANS)).to_owned());
            put("country", (*rng.weighted(&COUNTRIES)).to_owned());
            put("version", version);
            context
        })
        .collect()
}

/// The file the external drivers read: which flag each class uses, how to resolve it, and the
/// contexts in evaluation order.
pub(crate) fn workload_document(contexts: &[Map<String, Value>]) -> Value {
    let classes: Vec<Value> = FlagClass::ALL
        .iter()
        .map(|class| {
            let (value_type, default) = class.resolution();
            json!({
                "class": class.name(),
                "flag": class.flag_key(),
                "type": value_type,
                "default": default,
            })
        })
        .collect();
    json!({ "classes": classes, "contexts": contexts })
}

/// The contexts of a document written by [`workload_document`].
pub(crate) fn contexts_of(document: &Value) -> Result<Vec<Map<String, Value>>, String> {
    let contexts = document["contexts"]
        .as_array()
        .ok_or("the workload has no \"contexts\" list")?;
    contexts
        .iter()
        .enumerate()
        .map(|(index, context)| {
            context
                .as_object()
                .cloned()
                .ok_or_else(|| format!("workload context #{index} is not an object"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn contexts_are_deterministic_per_seed() {
        assert_eq!(generate_contexts(50, 42), generate_contexts(50, 42));
        assert_ne!(generate_contexts(50, 42), generate_contexts(50, 43));
    }

    #[test]
    fn population_reaches_every_rule_branch() {
        let contexts = generate_contexts(1_000, 42);
        let field = |context: &Map<String, Value>, name: &str| {
            context[name].as_str().unwrap_or_default().to_owned()
        };
        let internal = contexts.iter().any(|context| {
            field(context, "email").ends_with("@acme.io") && field(context, "plan") != "free"
        });
        let eu = contexts
            .iter()
            .any(|context| ["DE", "FR", "NL", "SE"].contains(&field(context, "country").as_str()));
        let beta = contexts.iter().any(|context| {
            field(context, "country") == "US" && field(context, "version").starts_with("3.")
        });
        assert!(internal && eu && beta);
    }

    #[test]
    fn workload_names_each_class_once_in_order() {
        let document = workload_document(&generate_contexts(3, 1));
        let names: Vec<&str> = document["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|class| class["class"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["static", "rule", "fractional"]);
        assert_eq!(document["contexts"].as_array().unwrap().len(), 3);
        assert_eq!(document["classes"][0]["type"], "boolean");
    }

    #[test]
    fn contexts_read_back_from_the_workload_document() {
        let contexts = generate_contexts(4, 9);
        assert_eq!(
            contexts_of(&workload_document(&contexts)).unwrap(),
            contexts
        );
        assert!(
            contexts_of(&json!({"contexts": [1]}))
                .unwrap_err()
                .contains("#0")
        );
        assert!(contexts_of(&json!({})).is_err());
    }

    proptest! {
        #[test]
        fn every_context_has_a_unique_targeting_key_and_all_fields(seed in any::<u64>()) {
            let contexts = generate_contexts(200, seed);
            let mut keys: Vec<&str> = contexts
                .iter()
                .map(|context| context["targetingKey"].as_str().unwrap())
                .collect();
            for context in &contexts {
                for name in ["targetingKey", "email", "plan", "country", "version"] {
                    prop_assert!(context[name].is_string(), "missing {}", name);
                }
            }
            keys.sort_unstable();
            keys.dedup();
            prop_assert_eq!(keys.len(), 200);
        }
    }
}
