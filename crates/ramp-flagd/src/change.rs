//! What changed between two snapshots, in the terms flagd's change events use, so streaming
//! clients can refresh only what moved.

use std::collections::BTreeMap;

use ramp_flags::model::FlagStore;

/// How one flag changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The flag did not exist before.
    Write,
    /// The flag exists in both snapshots with a different definition.
    Update,
    /// The flag no longer exists.
    Delete,
}

impl ChangeKind {
    /// The spelling flagd's `configuration_change` events use.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Write => "write",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }
}

/// One accepted configuration change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNotice {
    /// The configuration generation this change produced (the first load is generation 1).
    pub generation: u64,
    /// Every visible flag that changed, by key.
    pub flags: BTreeMap<String, ChangeKind>,
}

/// The visible flags that differ between `before` and `after` (no selector applied).
pub(crate) fn diff(before: &FlagStore, after: &FlagStore) -> BTreeMap<String, ChangeKind> {
    let old = before.all();
    let new = after.all();
    let mut changes = BTreeMap::new();
    for flag in new.iter() {
        match old.get(flag.key()) {
            None => {
                changes.insert(flag.key().to_owned(), ChangeKind::Write);
            }
            Some(previous) if previous.to_json() != flag.to_json() => {
                changes.insert(flag.key().to_owned(), ChangeKind::Update);
            }
            Some(_) => {}
        }
    }
    for flag in old.iter() {
        if new.get(flag.key()).is_none() {
            changes.insert(flag.key().to_owned(), ChangeKind::Delete);
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramp_flags::model::{FlagFile, Format};

    fn store(text: &str) -> FlagStore {
        let file = FlagFile::parse(text, Format::Json).expect("valid flag file");
        FlagStore::new(vec![("f".to_owned(), file)])
    }

    #[test]
    fn reports_writes_updates_and_deletes_but_not_unchanged_flags() {
        let before = store(
            r#"{"flags":{
                "kept":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on"},
                "edited":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on"},
                "removed":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on"}}}"#,
        );
        let after = store(
            r#"{"flags":{
                "kept":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on"},
                "edited":{"state":"DISABLED","variants":{"on":true},"defaultVariant":"on"},
                "added":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on"}}}"#,
        );
        let changes = diff(&before, &after);
        let expected = BTreeMap::from([
            ("added".to_owned(), ChangeKind::Write),
            ("edited".to_owned(), ChangeKind::Update),
            ("removed".to_owned(), ChangeKind::Delete),
        ]);
        assert_eq!(changes, expected);
        assert!(diff(&after, &after).is_empty());
    }
}
