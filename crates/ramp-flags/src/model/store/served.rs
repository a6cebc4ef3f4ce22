//! A flag as a snapshot serves it: the definition, and its variants copied into a flat list
//! so resolution finds the variant a rule names with a short scan of lengths rather than a
//! tree search comparing bytes at every step.

use std::sync::Arc;

use serde_json::Value;

use crate::logic::small::str_eq;
use crate::model::Flag;

/// Flags with more variants than this are searched in their own map.
const SCAN_VARIANTS: usize = 16;

/// One flag of a snapshot, prepared for resolution.
#[derive(Debug)]
pub(crate) struct ServedFlag {
    flag: Arc<Flag>,
    /// Name and value of every variant, in the flag's order; empty when the flag has too many
    /// for a scan to pay.
    variants: Box<[(String, Value)]>,
    /// Where the default variant is in `variants`.
    default: Option<usize>,
}

impl ServedFlag {
    pub(crate) fn new(flag: Arc<Flag>) -> ServedFlag {
        let variants = if flag.variants().len() <= SCAN_VARIANTS {
            let copies = flag.variants().iter();
            copies
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect()
        } else {
            Box::default()
        };
        let default = flag
            .default_variant()
            .and_then(|name| variants.iter().position(|(candidate, _)| candidate == name));
        ServedFlag {
            flag,
            variants,
            default,
        }
    }

    /// The definition.
    pub(crate) fn flag(&self) -> &Flag {
        &self.flag
    }

    /// The default variant, when it is known in advance (see [`ServedFlag::variant`] for the
    /// rest).
    pub(crate) fn default_variant(&self) -> Option<(&str, &Value)> {
        let (name, value) = self.variants.get(self.default?)?;
        Some((name, value))
    }

    /// The variant called `name`, if the flag defines one.
    pub(crate) fn variant(&self, name: &str) -> Option<(&str, &Value)> {
        if self.variants.is_empty() {
            let found = self.flag.variants().get_key_value(name);
            return found.map(|(name, value)| (name.as_str(), value));
        }
        self.variants
            .iter()
            .find(|(candidate, _)| str_eq(candidate, name))
            .map(|(name, value)| (name.as_str(), value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::LogicOptions;
    use crate::model::FlagFile;
    use proptest::prelude::*;
    use serde_json::json;

    fn served_flag(variant_count: usize) -> ServedFlag {
        let variants: serde_json::Map<String, Value> = (0..variant_count)
            .map(|i| (format!("v{i}"), json!(i)))
            .collect();
        let document = json!({"flags": {"f": {
            "state": "ENABLED", "variants": variants, "defaultVariant": "v0"
        }}});
        let file = FlagFile::from_value(&document, &LogicOptions::default()).unwrap();
        let flag = file.shared_flags().next().unwrap();
        ServedFlag::new(Arc::clone(flag))
    }

    proptest! {
        /// Scanned or searched, a name finds exactly what the flag's own map holds.
        #[test]
        fn variants_are_found_as_the_flag_defines_them(count in 1_usize..40, probe in 0_usize..45) {
            let served = served_flag(count);
            let name = format!("v{probe}");
            let expected = served.flag().variants().get_key_value(&name)
                .map(|(name, value)| (name.as_str(), value));
            prop_assert_eq!(served.variant(&name), expected);
            let default = served.flag().variants().get_key_value("v0")
                .map(|(name, value)| (name.as_str(), value));
            prop_assert_eq!(served.default_variant().or_else(|| served.variant("v0")), default);
            prop_assert_eq!(served.default_variant().is_some(), count <= SCAN_VARIANTS);
        }
    }
}
