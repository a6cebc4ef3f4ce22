use serde_json::{Value, json};

use super::{FlagStore, Selector, SelectorError};
use crate::logic::LogicOptions;
use crate::model::FlagFile;

/// A file whose flags each serve the given string, optionally in a flag set.
fn file(flags: &[(&str, &str)], flag_set: Option<&str>) -> FlagFile {
    let flags: serde_json::Map<String, Value> = flags
        .iter()
        .map(|(key, served)| {
            let flag =
                json!({"state": "ENABLED", "variants": {"v": served}, "defaultVariant": "v"});
            ((*key).to_owned(), flag)
        })
        .collect();
    let mut document = json!({ "flags": flags });
    if let Some(id) = flag_set {
        document["metadata"] = json!({ "flagSetId": id });
    }
    FlagFile::from_value(&document, &LogicOptions::default()).unwrap()
}

fn served(store: &FlagStore, selector: &Selector, key: &str) -> Option<Value> {
    let flag = store.select(selector).get(key)?;
    Some(flag.variants()["v"].clone())
}

fn two_sources() -> FlagStore {
    FlagStore::new(vec![
        (
            "base".to_owned(),
            file(&[("shared", "from-base"), ("only-base", "b")], Some("core")),
        ),
        (
            "team".to_owned(),
            file(&[("shared", "from-team"), ("only-team", "t")], Some("web")),
        ),
    ])
}

#[test]
fn later_sources_win_on_duplicate_keys() {
    let store = two_sources();
    assert_eq!(
        served(&store, &Selector::All, "shared"),
        Some(json!("from-team"))
    );
    let keys: Vec<&str> = store.all().iter().map(|flag| flag.key()).collect();
    assert_eq!(keys, ["only-base", "only-team", "shared"]);
    assert_eq!(store.all().len(), 3);
}

#[test]
fn an_update_replaces_all_flags_of_its_source_and_keeps_its_priority() {
    let store = two_sources();
    let updated = store.with_source("base", file(&[("shared", "new-base")], None));
    assert!(updated.all().get("only-base").is_none());
    // "team" still outranks "base" after the update.
    assert_eq!(
        served(&updated, &Selector::All, "shared"),
        Some(json!("from-team"))
    );
    assert_eq!(
        served(&updated, &Selector::Source("base".into()), "shared"),
        Some(json!("new-base"))
    );
    let names: Vec<&str> = updated.source_names().collect();
    assert_eq!(names, ["base", "team"]);
    // The old snapshot is untouched.
    assert!(store.all().get("only-base").is_some());
}

#[test]
fn new_sources_are_added_with_the_highest_priority_and_can_be_removed() {
    let store = two_sources().with_source("override", file(&[("shared", "top")], None));
    assert_eq!(served(&store, &Selector::All, "shared"), Some(json!("top")));
    let without = store.without_source("override");
    assert_eq!(
        served(&without, &Selector::All, "shared"),
        Some(json!("from-team"))
    );
    assert!(without.source("override").is_none());
    assert_eq!(without.source("team").map(FlagFile::len), Some(2));
}

#[test]
fn selectors_narrow_what_is_visible() {
    let store = two_sources();
    let core = Selector::FlagSet("core".into());
    assert_eq!(served(&store, &core, "shared"), Some(json!("from-base")));
    assert!(store.select(&core).get("only-team").is_none());
    let team = Selector::Source("team".into());
    let keys: Vec<&str> = store.select(&team).iter().map(|flag| flag.key()).collect();
    assert_eq!(keys, ["only-team", "shared"]);
    assert!(store.select(&Selector::FlagSet("none".into())).is_empty());
}

#[test]
fn flag_metadata_can_move_a_flag_to_another_set() {
    let document = json!({
        "flags": {"moved": {
            "state": "ENABLED", "variants": {"v": 1}, "defaultVariant": "v",
            "metadata": {"flagSetId": "other"}
        }},
        "metadata": {"flagSetId": "main"}
    });
    let moved = FlagFile::from_value(&document, &LogicOptions::default()).unwrap();
    let store = FlagStore::new(vec![("s".to_owned(), moved)]);
    assert!(
        store
            .select(&Selector::FlagSet("main".into()))
            .get("moved")
            .is_none()
    );
    assert!(
        store
            .select(&Selector::FlagSet("other".into()))
            .get("moved")
            .is_some()
    );
}

#[test]
fn parses_selector_strings() {
    assert_eq!(Selector::parse("").unwrap(), Selector::All);
    assert_eq!(
        Selector::parse("flagSetId=shop").unwrap(),
        Selector::FlagSet("shop".into())
    );
    assert_eq!(
        Selector::parse(" source = flags/a.json ").unwrap(),
        Selector::Source("flags/a.json".into())
    );
    assert_eq!(
        Selector::parse("rawflags/selector-flags.json").unwrap(),
        Selector::Source("rawflags/selector-flags.json".into())
    );
    let SelectorError { reason, .. } = Selector::parse("team=web").unwrap_err();
    assert!(reason.contains("flagSetId=<id> or source=<name>"));
    assert!(Selector::parse("flagSetId=").is_err());
}

#[test]
fn flag_set_metadata_follows_the_selector() {
    let mut with_owner = json!({
        "flags": {},
        "metadata": {"flagSetId": "web", "owner": "team", "tier": 2}
    });
    let team = FlagFile::from_value(&with_owner, &LogicOptions::default()).unwrap();
    with_owner["metadata"] = json!({"flagSetId": "core", "owner": "base"});
    let base = FlagFile::from_value(&with_owner, &LogicOptions::default()).unwrap();
    let store = FlagStore::new(vec![("base".to_owned(), base), ("team".to_owned(), team)]);
    let metadata = |selector: Selector| Value::Object(store.select(&selector).metadata());

    // Every source, the later one winning.
    assert_eq!(
        metadata(Selector::All),
        json!({"flagSetId": "web", "owner": "team", "tier": 2})
    );
    assert_eq!(
        metadata(Selector::Source("base".to_owned())),
        json!({"flagSetId": "core", "owner": "base"})
    );
    assert_eq!(
        metadata(Selector::FlagSet("core".to_owned())),
        json!({"flagSetId": "core", "owner": "base"})
    );
    // A set no file declares (its flags may claim it themselves) still states its id.
    assert_eq!(
        metadata(Selector::FlagSet("mobile".to_owned())),
        json!({"flagSetId": "mobile"})
    );
}
