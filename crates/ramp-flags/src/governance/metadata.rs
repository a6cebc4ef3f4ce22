//! The lifecycle conventions carried in flag metadata: who owns a flag (`owner`), what kind it
//! is (`type`) and when it should be gone (`expires`). They live in flagd's free-form
//! `metadata`, so files stay valid for flagd and every OpenFeature SDK sees them too.

use serde::Serialize;
use serde_json::{Map, Value};

use super::date::Date;

/// Metadata key naming the team or person responsible for removing the flag.
pub const OWNER_KEY: &str = "owner";
/// Metadata key holding the [`FlagType`].
pub const TYPE_KEY: &str = "type";
/// Metadata key holding the removal date (`YYYY-MM-DD` or an RFC 3339 date-time).
pub const EXPIRES_KEY: &str = "expires";

/// What a flag is for, which decides how long it may live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagType {
    /// Hides unfinished work while it ships; removed once the feature is fully out.
    Release,
    /// Splits users between variants to measure them; removed when the experiment ends.
    Experiment,
    /// An operational switch (kill switch, degradation mode); may live as long as the system.
    Ops,
    /// Gates a feature by entitlement; permanent by design.
    Permission,
}

impl FlagType {
    /// Every type, in the order they are listed to users.
    pub const ALL: [FlagType; 4] = [
        FlagType::Release,
        FlagType::Experiment,
        FlagType::Ops,
        FlagType::Permission,
    ];

    /// The spelling in flag metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagType::Release => "release",
            FlagType::Experiment => "experiment",
            FlagType::Ops => "ops",
            FlagType::Permission => "permission",
        }
    }

    /// The type spelled `text` (exact, lower case).
    pub fn parse(text: &str) -> Option<FlagType> {
        FlagType::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Temporary flags: they must name an owner and a removal date.
    pub fn is_temporary(self) -> bool {
        matches!(self, FlagType::Release | FlagType::Experiment)
    }
}

/// One lifecycle field as found in metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Field<T> {
    Absent,
    Valid(T),
    /// Present but unusable; the value as written, for the message.
    Invalid(Value),
}

impl<T> Field<T> {
    pub(super) fn is_present(&self) -> bool {
        !matches!(self, Field::Absent)
    }
}

pub(super) fn owner(metadata: &Map<String, Value>) -> Field<&str> {
    match metadata.get(OWNER_KEY) {
        None => Field::Absent,
        Some(Value::String(owner)) if !owner.trim().is_empty() => Field::Valid(owner),
        Some(other) => Field::Invalid(other.clone()),
    }
}

pub(super) fn flag_type(metadata: &Map<String, Value>) -> Field<FlagType> {
    match metadata.get(TYPE_KEY) {
        None => Field::Absent,
        Some(value) => match value.as_str().and_then(FlagType::parse) {
            Some(kind) => Field::Valid(kind),
            None => Field::Invalid(value.clone()),
        },
    }
}

pub(super) fn expires(metadata: &Map<String, Value>) -> Field<Date> {
    match metadata.get(EXPIRES_KEY) {
        None => Field::Absent,
        Some(value) => match value.as_str().map(Date::parse_date_or_datetime) {
            Some(Ok(date)) => Field::Valid(date),
            _ => Field::Invalid(value.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metadata(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn types_parse_exactly_and_round_trip() {
        for kind in FlagType::ALL {
            assert_eq!(FlagType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(FlagType::parse("Release"), None);
        assert!(FlagType::Release.is_temporary() && FlagType::Experiment.is_temporary());
        assert!(!FlagType::Ops.is_temporary() && !FlagType::Permission.is_temporary());
    }

    #[test]
    fn fields_are_absent_valid_or_invalid() {
        let good = metadata(json!({"owner": "team-a", "type": "ops", "expires": "2025-01-31"}));
        assert_eq!(owner(&good), Field::Valid("team-a"));
        assert_eq!(flag_type(&good), Field::Valid(FlagType::Ops));
        assert_eq!(
            expires(&good),
            Field::Valid(Date::from_ymd(2025, 1, 31).unwrap())
        );

        let bad = metadata(json!({"owner": "  ", "type": 3, "expires": "soon"}));
        assert_eq!(owner(&bad), Field::Invalid(json!("  ")));
        assert_eq!(flag_type(&bad), Field::Invalid(json!(3)));
        assert_eq!(expires(&bad), Field::Invalid(json!("soon")));

        let none = Map::new();
        assert!(!owner(&none).is_present());
        assert!(!flag_type(&none).is_present());
        assert!(!expires(&none).is_present());
    }
}
