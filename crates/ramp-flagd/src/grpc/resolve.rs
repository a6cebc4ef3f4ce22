//! What both evaluation services share: the request's selector and context, the evaluation
//! itself (the engine's, as OFREP uses it), the metrics, and flagd's gRPC status for each error.

use std::sync::Arc;

use prost_types::Struct;
use ramp_flags::model::Selector;
use ramp_flags::resolve::{ErrorCode, Evaluation, Reason};
use serde_json::{Map, Value};
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Status};

use super::convert::{object_from_struct, struct_from_object};
use super::typed::{Served, TypedResolve, WireValue};
use crate::context::now_unix_seconds;
use crate::metrics::EvaluationMetrics;
use crate::ofrep::SELECTOR_HEADER;
use crate::source::FlagSource;

/// Evaluates requests against whatever the source holds when each one arrives.
#[derive(Debug, Clone)]
pub(super) struct Resolver {
    source: Arc<FlagSource>,
    metrics: Arc<EvaluationMetrics>,
    context_values: Arc<Map<String, Value>>,
}

/// A successful resolution, ready to fill a typed response.
#[derive(Debug)]
pub(super) struct Resolved(Evaluation);

impl Resolved {
    /// The flag resolved.
    pub(super) fn key(&self) -> &str {
        &self.0.key
    }

    /// Whether a value is served; without one the caller uses its code default.
    pub(super) fn has_value(&self) -> bool {
        self.0.value.is_some()
    }

    pub(super) fn reason(&self) -> Reason {
        self.0.reason
    }

    /// The resolution as a typed response carries it.
    pub(super) fn served<V: WireValue>(self) -> Served<V> {
        let Evaluation {
            value,
            variant,
            reason,
            metadata,
            ..
        } = self.0;
        Served {
            value: value.and_then(V::from_json),
            reason: reason.as_str().to_owned(),
            variant,
            metadata: Some(struct_from_object(&metadata)),
        }
    }
}

/// A bulk evaluation: every visible flag, and the metadata of the flag set shown.
#[derive(Debug)]
pub(super) struct Bulk {
    pub(super) evaluations: Vec<Evaluation>,
    pub(super) metadata: Map<String, Value>,
}

impl Resolver {
    /// `context_values` join every request's context, overriding the caller's keys.
    pub(super) fn new(
        source: Arc<FlagSource>,
        metrics: Arc<EvaluationMetrics>,
        context_values: Map<String, Value>,
    ) -> Resolver {
        Resolver {
            source,
            metrics,
            context_values: Arc::new(context_values),
        }
    }

    /// The source evaluated against.
    pub(super) fn source(&self) -> &Arc<FlagSource> {
        &self.source
    }

    /// Resolves a typed request's flag as its response's value type; a failed resolution is
    /// the status flagd answers with.
    pub(super) fn resolve<Q: TypedResolve>(&self, request: Request<Q>) -> Result<Resolved, Status> {
        let (metadata, _, message) = request.into_parts();
        let (key, context) = message.into_flag();
        let selector = request_selector(&metadata, "")?;
        let context = self.context(context);
        let store = self.source.current();
        // The clock is read only if the flag's rule reads `$flagd`, as on OFREP.
        let evaluation: Evaluation = store
            .select(&selector)
            .resolve(
                &key,
                &context,
                <Q::Value as WireValue>::TYPE,
                now_unix_seconds,
            )
            .into();
        self.metrics
            .record_outcome(&evaluation.key, evaluation.reason, evaluation.error_code());
        match &evaluation.error {
            None => Ok(Resolved(evaluation)),
            Some((code, message)) => Err(error_status(*code, message)),
        }
    }

    /// Resolves every visible flag; failures stay inline as error evaluations.
    pub(super) fn resolve_all(
        &self,
        metadata: &MetadataMap,
        context: Option<Struct>,
    ) -> Result<Bulk, Status> {
        let selector = request_selector(metadata, "")?;
        let context = self.context(context);
        let store = self.source.current();
        let flags = store.select(&selector);
        let evaluations = flags.evaluate_all(&context, now_unix_seconds());
        for evaluation in &evaluations {
            self.metrics.record_outcome(
                &evaluation.key,
                evaluation.reason,
                evaluation.error_code(),
            );
        }
        Ok(Bulk {
            evaluations,
            metadata: flags.metadata(),
        })
    }

    /// The request's context with the static context values laid over it, as flagd merges them.
    fn context(&self, request: Option<Struct>) -> Map<String, Value> {
        let mut context = object_from_struct(request);
        crate::context::overlay_context_values(&mut context, &self.context_values);
        context
    }
}

/// The selector a call asks for: the `flagd-selector` metadata, else `fallback` (the sync
/// request's deprecated `selector` field), else every flag. One that does not parse is
/// INVALID_ARGUMENT.
pub(super) fn request_selector(metadata: &MetadataMap, fallback: &str) -> Result<Selector, Status> {
    let text = match metadata.get(SELECTOR_HEADER) {
        Some(value) => value.to_str().map_err(|_| {
            Status::invalid_argument(format!("the {SELECTOR_HEADER} metadata is not text"))
        })?,
        None => fallback,
    };
    Selector::parse(text).map_err(|error| Status::invalid_argument(error.to_string()))
}

/// flagd's status for each error code. The first four are flagd's own mapping, which providers
/// turn back into error codes; INVALID_CONTEXT is a bad argument like TYPE_MISMATCH, and
/// TARGETING_KEY_MISSING asks the caller to fix its context first, a failed precondition.
pub(super) fn error_status(code: ErrorCode, message: &str) -> Status {
    let status = match code {
        ErrorCode::FlagNotFound => Code::NotFound,
        ErrorCode::TypeMismatch | ErrorCode::InvalidContext => Code::InvalidArgument,
        ErrorCode::ParseError => Code::DataLoss,
        ErrorCode::General => Code::Unknown,
        ErrorCode::TargetingKeyMissing => Code::FailedPrecondition,
    };
    Status::new(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::proto::flagd::evaluation::v2::ResolveBooleanRequest;
    use ramp_flags::model::{FlagFile, Format};
    use serde_json::json;

    #[test]
    fn rules_read_the_current_time_as_flagd_timestamp() {
        // Served only when `$flagd.timestamp` is a current Unix time (after 2020-09-13).
        let file = FlagFile::parse(
            r#"{"flags":{"recent":{"state":"ENABLED","variants":{"on":true,"off":false},
                "defaultVariant":"off",
                "targeting":{"if":[{">":[{"var":"$flagd.timestamp"},1600000000]},"on","off"]}}}}"#,
            Format::Json,
        )
        .expect("valid flag file");
        let source = Arc::new(FlagSource::new());
        source.put_source("f", file);
        let resolver = Resolver::new(source, Arc::default(), Map::new());
        let request = Request::new(ResolveBooleanRequest {
            flag_key: "recent".to_owned(),
            context: None,
        });
        let resolved = resolver.resolve(request).expect("a resolution");
        assert_eq!(resolved.reason(), Reason::TargetingMatch);
        assert_eq!(resolved.0.value, Some(json!(true)));
    }

    #[test]
    fn the_header_wins_over_the_fallback_and_bad_selectors_are_refused() {
        let mut metadata = MetadataMap::new();
        let selector = |metadata: &MetadataMap, fallback| {
            request_selector(metadata, fallback).expect("a valid selector")
        };
        assert_eq!(selector(&metadata, ""), Selector::All);
        assert_eq!(
            selector(&metadata, "source=a"),
            Selector::Source("a".to_owned())
        );
        metadata.insert(SELECTOR_HEADER, "flagSetId=shop".parse().unwrap());
        assert_eq!(
            selector(&metadata, "source=a"),
            Selector::FlagSet("shop".to_owned())
        );
        metadata.insert(SELECTOR_HEADER, "color=blue".parse().unwrap());
        let refused = request_selector(&metadata, "").unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
    }

    #[test]
    fn error_codes_map_to_flagd_statuses() {
        let cases = [
            (ErrorCode::FlagNotFound, Code::NotFound),
            (ErrorCode::TypeMismatch, Code::InvalidArgument),
            (ErrorCode::ParseError, Code::DataLoss),
            (ErrorCode::General, Code::Unknown),
            (ErrorCode::InvalidContext, Code::InvalidArgument),
            (ErrorCode::TargetingKeyMissing, Code::FailedPrecondition),
        ];
        for (code, expected) in cases {
            let status = error_status(code, "why");
            assert_eq!((status.code(), status.message()), (expected, "why"));
        }
    }
}
