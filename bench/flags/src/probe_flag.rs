//! The flag the propagation phase edits, and how each subscriber's messages are recognised.
//!
//! Every edit rewrites the flag file with the benchmark's flags plus `propagation-probe`, whose
//! default variant names the edit (`edit-7`), so consecutive files always differ in content and
//! a SyncFlags configuration says exactly which edit it carries. An EventStream
//! `configuration_change` says only which flags changed; it is attributed to the edit in
//! progress.

use prost_types::value::Kind;
use ramp_flagd::grpc::client::flagd::evaluation::v2::EventStreamResponse;
use serde_json::{Map, Value, json};

/// The key of the edited flag.
pub(crate) const PROBE_FLAG: &str = "propagation-probe";

/// The variant that is the default after edit `edit` (edit 0 is the initial file).
fn variant_name(edit: usize) -> String {
    format!("edit-{edit}")
}

/// The flag file after edit `edit` of `edits`: every flag of `base` (a flag file's JSON) plus
/// the probe flag with variants `edit-0` to `edit-{edits}`, `edit-{edit}` the default.
pub(crate) fn probe_file(base: &Value, edit: usize, edits: usize) -> Result<String, String> {
    let mut document = base.clone();
    let flags = document
        .get_mut("flags")
        .and_then(Value::as_object_mut)
        .ok_or("the flag file has no \"flags\" object")?;
    let variants: Map<String, Value> = (0..=edits.max(edit))
        .map(|index| (variant_name(index), json!(index)))
        .collect();
    flags.insert(
        PROBE_FLAG.to_owned(),
        json!({
            "state": "ENABLED",
            "variants": variants,
            "defaultVariant": variant_name(edit),
        }),
    );
    serde_json::to_string_pretty(&document)
        .map_err(|error| format!("cannot write the probe flag file: {error}"))
}

/// The edit a SyncFlags configuration (flag-file JSON) carries, read from the probe flag's
/// default variant; `None` when it does not hold the probe flag.
pub(crate) fn synced_edit(flag_configuration: &str) -> Option<usize> {
    let document: Value = serde_json::from_str(flag_configuration).ok()?;
    document["flags"][PROBE_FLAG]["defaultVariant"]
        .as_str()?
        .strip_prefix("edit-")?
        .parse()
        .ok()
}

/// Whether an EventStream message is a `configuration_change` naming the probe flag.
pub(crate) fn names_probe(event: &EventStreamResponse) -> bool {
    if event.r#type != "configuration_change" {
        return false;
    }
    let flags = event
        .data
        .as_ref()
        .and_then(|data| data.fields.get("flags"))
        .and_then(|flags| flags.kind.as_ref());
    matches!(flags, Some(Kind::StructValue(flags)) if flags.fields.contains_key(PROBE_FLAG))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use prost_types::Struct;
    use ramp_flags::model::{FlagFile, Format};

    fn base() -> Value {
        serde_json::from_str(include_str!("../flags.json")).unwrap()
    }

    fn event(kind: &str, flag_keys: &[&str]) -> EventStreamResponse {
        let flags = Struct {
            fields: flag_keys
                .iter()
                .map(|key| {
                    let change = prost_types::Value {
                        kind: Some(Kind::StructValue(Struct::default())),
                    };
                    ((*key).to_owned(), change)
                })
                .collect(),
        };
        let data = Struct {
            fields: [(
                "flags".to_owned(),
                prost_types::Value {
                    kind: Some(Kind::StructValue(flags)),
                },
            )]
            .into(),
        };
        EventStreamResponse {
            r#type: kind.to_owned(),
            data: Some(data),
        }
    }

    #[test]
    fn probe_files_are_valid_and_keep_the_benchmark_flags() {
        let text = probe_file(&base(), 3, 5).unwrap();
        let file = FlagFile::parse(&text, Format::Json).unwrap();
        assert_eq!(file.len(), 4);
        assert!(file.flag("pricing-page").is_some());
        assert!(file.flag(PROBE_FLAG).is_some());
        assert!(probe_file(&json!({"flagz": {}}), 1, 1).is_err());
    }

    #[test]
    fn events_count_only_when_they_name_the_probe_flag() {
        assert!(names_probe(&event("configuration_change", &[PROBE_FLAG])));
        assert!(names_probe(&event(
            "configuration_change",
            &["pricing-page", PROBE_FLAG]
        )));
        assert!(!names_probe(&event(
            "configuration_change",
            &["pricing-page"]
        )));
        assert!(!names_probe(&event("provider_ready", &[PROBE_FLAG])));
        let keep_alive = EventStreamResponse {
            r#type: "keep_alive".to_owned(),
            data: None,
        };
        assert!(!names_probe(&keep_alive));
    }

    #[test]
    fn configurations_without_the_probe_carry_no_edit() {
        assert_eq!(synced_edit(include_str!("../flags.json")), None);
        assert_eq!(synced_edit("not json"), None);
        let foreign = json!({"flags": {PROBE_FLAG: {"defaultVariant": "other"}}});
        assert_eq!(synced_edit(&foreign.to_string()), None);
    }

    proptest! {
        #[test]
        fn every_edit_reads_back_from_its_configuration(edits in 1usize..300, pick in any::<prop::sample::Index>()) {
            let edit = pick.index(edits + 1);
            let text = probe_file(&base(), edit, edits).unwrap();
            prop_assert_eq!(synced_edit(&text), Some(edit));
            if edit > 0 {
                prop_assert_ne!(text, probe_file(&base(), edit - 1, edits).unwrap());
            }
        }
    }
}
