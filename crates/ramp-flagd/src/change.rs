//! What changed between two snapshots, in the terms flagd's change events use, so streaming
//! clients can refresh only what moved.

use std::collections::BTreeMap;

use ramp_flags::model::{Flag, FlagStore, Flags};

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
    diff_views(before.all(), after.all())
}

/// The flags that differ between two views, e.g. the same selector over two snapshots, so a
/// subscriber hears only about the flags it can see.
pub(crate) fn diff_views(before: Flags<'_>, after: Flags<'_>) -> BTreeMap<String, ChangeKind> {
    let mut changes = BTreeMap::new();
    for flag in after.iter() {
        match before.get(flag.key()) {
            None => {
                changes.insert(flag.key().to_owned(), ChangeKind::Write);
            }
            Some(previous) if !same_definition(previous, flag) => {
                changes.insert(flag.key().to_owned(), ChangeKind::Update);
            }
            Some(_) => {}
        }
    }
    for flag in before.iter() {
        if after.get(flag.key()).is_none() {
            changes.insert(flag.key().to_owned(), ChangeKind::Delete);
        }
    }
    changes
}

/// Snapshots share the flags of sources an update did not touch, so identity settles most
/// comparisons without serialising either flag.
fn same_definition(before: &Flag, after: &Flag) -> bool {
    std::ptr::eq(before, after) || before.to_json() == after.to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramp_flags::model::{FlagFile, Format, Selector};

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

    #[test]
    fn views_report_only_what_their_selector_shows() {
        let file = |id: &str, value: bool| {
            let text = format!(
                r#"{{"metadata":{{"flagSetId":"{id}"}},"flags":{{"{id}-flag":{{"state":"ENABLED","variants":{{"on":{value}}},"defaultVariant":"on"}}}}}}"#
            );
            FlagFile::parse(&text, Format::Json).expect("valid flag file")
        };
        let before = FlagStore::new(vec![
            ("a".to_owned(), file("a", true)),
            ("b".to_owned(), file("b", true)),
        ]);
        let after = before.with_source("b", file("b", false));
        let only_a = Selector::FlagSet("a".to_owned());
        let only_b = Selector::FlagSet("b".to_owned());
        assert!(diff_views(before.select(&only_a), after.select(&only_a)).is_empty());
        assert_eq!(
            diff_views(before.select(&only_b), after.select(&only_b)),
            BTreeMap::from([("b-flag".to_owned(), ChangeKind::Update)])
        );
    }
}
