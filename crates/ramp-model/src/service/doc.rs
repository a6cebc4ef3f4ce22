//! The service document as written: every field optional where the format allows, every value
//! with its place in the text. `validate.rs` turns it into a [`ServiceSpec`](super::ServiceSpec).
//!
//! One-key choices (the strategy, a canary step, a probe action, a check) are structs of
//! optional fields, not serde enums: the validation then names the item and says which keys
//! are allowed, rather than surfacing serde's "unknown variant".

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

mod analysis;

pub(super) use analysis::*;

/// A key whose presence matters even when its value is empty: `pause: {}`, `pause:` and
/// `pause: ~` all give `Some`, with `None` inside for the empty forms.
pub(super) type Present<T> = Option<Spanned<Option<T>>>;

/// Deserializes a [`Present`] field (use with `#[serde(default)]`, so an absent key is `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Present<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Spanned::<Option<T>>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ServiceDoc {
    pub(super) api_version: Spanned<String>,
    pub(super) kind: Spanned<String>,
    pub(super) metadata: MetadataDoc,
    pub(super) spec: SpecDoc,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct MetadataDoc {
    pub(super) name: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SpecDoc {
    pub(super) replicas: Spanned<i64>,
    pub(super) listen: Spanned<String>,
    pub(super) revision_history_limit: Option<Spanned<i64>>,
    pub(super) progress_deadline: Option<Spanned<String>>,
    pub(super) template: TemplateDoc,
    pub(super) strategy: Spanned<StrategyDoc>,
    pub(super) analysis_templates: Option<Vec<Spanned<AnalysisTemplateDoc>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct TemplateDoc {
    pub(super) command: Spanned<String>,
    pub(super) args: Option<Vec<String>>,
    pub(super) env: Option<EnvDoc>,
    pub(super) working_dir: Option<Spanned<String>>,
    pub(super) port_env: Option<Spanned<String>>,
    pub(super) files: Option<Vec<Spanned<String>>>,
    pub(super) readiness: Option<Spanned<ProbeDoc>>,
    pub(super) liveness: Option<Spanned<ProbeDoc>>,
    pub(super) stop: Option<StopDoc>,
}

/// `env:` in the order written, each name and value with its place.
#[derive(Debug)]
pub(super) struct EnvDoc(pub(super) Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for EnvDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;

        impl<'de> Visitor<'de> for EnvVisitor {
            type Value = EnvDoc;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of environment variable names to values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvDoc, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(EnvDoc(entries))
            }
        }

        deserializer.deserialize_map(EnvVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ProbeDoc {
    #[serde(default, deserialize_with = "present")]
    pub(super) http_get: Present<HttpGetDoc>,
    #[serde(default, deserialize_with = "present")]
    pub(super) tcp_socket: Present<EmptyDoc>,
    pub(super) exec: Option<Spanned<ExecDoc>>,
    pub(super) initial_delay: Option<Spanned<String>>,
    pub(super) period: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) success_threshold: Option<Spanned<i64>>,
    pub(super) failure_threshold: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct HttpGetDoc {
    pub(super) path: Option<Spanned<String>>,
}

/// A mapping that takes no keys (`tcpSocket: {}`, `recreate: {}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmptyDoc {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ExecDoc {
    pub(super) command: Spanned<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct StopDoc {
    pub(super) signal: Option<Spanned<String>>,
    pub(super) grace_period: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct StrategyDoc {
    #[serde(default, deserialize_with = "present")]
    pub(super) recreate: Present<EmptyDoc>,
    #[serde(default, deserialize_with = "present")]
    pub(super) rolling: Present<RollingDoc>,
    #[serde(default, deserialize_with = "present")]
    pub(super) blue_green: Present<BlueGreenDoc>,
    pub(super) canary: Option<Spanned<CanaryDoc>>,
}

/// `maxSurge` / `maxUnavailable`: a number or `"N%"`, read as text (YAML numbers read as
/// their text) and parsed by the validation, so a bad value is a located problem.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RollingDoc {
    pub(super) max_surge: Option<Spanned<String>>,
    pub(super) max_unavailable: Option<Spanned<String>>,
    pub(super) analysis: Option<Spanned<AnalysisRefDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct BlueGreenDoc {
    pub(super) preview_listen: Option<Spanned<String>>,
    pub(super) pre_promotion_checks: Option<Vec<Spanned<CheckDoc>>>,
    pub(super) pre_promotion_analysis: Option<Spanned<AnalysisRefDoc>>,
    pub(super) post_promotion_analysis: Option<Spanned<AnalysisRefDoc>>,
    pub(super) auto_promotion: Option<AutoPromotionDoc>,
    pub(super) scale_down_delay: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CheckDoc {
    #[serde(default, deserialize_with = "present")]
    pub(super) http: Present<HttpCheckDoc>,
    pub(super) command: Option<Spanned<CommandCheckDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct HttpCheckDoc {
    pub(super) path: Option<Spanned<String>>,
    pub(super) requests: Option<Spanned<i64>>,
    /// `200` or `"200-299"`, read as text.
    pub(super) expect_status: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CommandCheckDoc {
    pub(super) command: Spanned<Vec<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct AutoPromotionDoc {
    pub(super) enabled: Option<bool>,
    pub(super) delay: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CanaryDoc {
    pub(super) stickiness: Option<Spanned<StickinessDoc>>,
    pub(super) scale_down_delay: Option<Spanned<String>>,
    pub(super) baseline: Option<Spanned<String>>,
    pub(super) analysis: Option<Spanned<BackgroundAnalysisDoc>>,
    pub(super) steps: Spanned<Vec<Spanned<StepDoc>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct StickinessDoc {
    pub(super) header: Option<Spanned<String>>,
    pub(super) cookie: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct StepDoc {
    pub(super) set_weight: Option<Spanned<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub(super) pause: Present<PauseDoc>,
    pub(super) set_header_route: Option<Spanned<HeaderRouteDoc>>,
    pub(super) set_mirror_route: Option<Spanned<MirrorRouteDoc>>,
    #[serde(default, deserialize_with = "present")]
    pub(super) analysis: Present<AnalysisRefDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PauseDoc {
    pub(super) duration: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct HeaderRouteDoc {
    pub(super) name: Spanned<String>,
    #[serde(rename = "match")]
    pub(super) conditions: Option<Spanned<Vec<Spanned<MatchDoc>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct MirrorRouteDoc {
    pub(super) name: Spanned<String>,
    pub(super) percentage: Option<Spanned<f64>>,
    #[serde(rename = "match")]
    pub(super) conditions: Option<Spanned<Vec<Spanned<MatchDoc>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct MatchDoc {
    pub(super) header_name: Option<Spanned<String>>,
    pub(super) header_value: Option<Spanned<ValueDoc>>,
    pub(super) cookie_name: Option<Spanned<String>>,
    pub(super) cookie_value: Option<Spanned<ValueDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ValueDoc {
    pub(super) exact: Option<String>,
    pub(super) prefix: Option<String>,
    pub(super) regex: Option<Spanned<String>>,
}
