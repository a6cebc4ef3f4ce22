//! `flagd.evaluation.v1.Service`, for providers that have not moved to v2.
//!
//! v1 values are plain proto3 fields, so "no value" cannot be sent. As flagd does: a disabled
//! flag answers success with reason DISABLED and the type's zero value, and a flag with no
//! default variant to serve answers NOT_FOUND so the caller falls back to its code default
//! instead of taking a zero for a real value.

use ramp_flags::resolve::{Evaluation, Reason};
use serde_json::Value;
use tonic::{Request, Response, Status};

use super::StreamSettings;
use super::convert::struct_from_object;
use super::proto::flagd::evaluation::v1::{
    AnyFlag, ResolveAllRequest, ResolveAllResponse, any_flag,
};
use super::resolve::Resolver;
use super::typed::{TypedResolve, evaluation_service};

/// The v1 service.
#[derive(Debug, Clone)]
pub(super) struct EvaluationV1 {
    resolver: Resolver,
    streams: StreamSettings,
}

impl EvaluationV1 {
    pub(super) fn new(resolver: Resolver, streams: StreamSettings) -> EvaluationV1 {
        EvaluationV1 { resolver, streams }
    }

    /// Answers one typed resolve the v1 way (see the module docs for flags without a value).
    fn answer<Q: TypedResolve>(
        &self,
        request: Request<Q>,
    ) -> Result<Response<Q::Response>, Status> {
        let resolved = self.resolver.resolve(request)?;
        if !resolved.has_value() && resolved.reason() != Reason::Disabled {
            return Err(Status::not_found(format!(
                "flag '{}' has no default variant to serve: use the code default",
                resolved.key()
            )));
        }
        Ok(Response::new(Q::respond(resolved.served())))
    }

    /// Every flag the selector shows, failures inline.
    fn resolve_every_flag(
        &self,
        request: Request<ResolveAllRequest>,
    ) -> Result<Response<ResolveAllResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let bulk = self.resolver.resolve_all(&metadata, message.context)?;
        let flags = bulk
            .evaluations
            .into_iter()
            .map(|evaluation| (evaluation.key.clone(), any_flag(evaluation)))
            .collect();
        Ok(Response::new(ResolveAllResponse {
            flags,
            metadata: Some(struct_from_object(&bulk.metadata)),
        }))
    }
}

/// v1 fields cannot be absent: a missing value (a disabled flag's) is the type's zero, a
/// missing variant is empty.
fn carry<V: Default + Into<F>, F>(value: Option<V>, variant: Option<String>) -> (F, String) {
    (
        value.unwrap_or_default().into(),
        variant.unwrap_or_default(),
    )
}

evaluation_service!(v1 for EvaluationV1, carried by carry, also {
    async fn resolve_all(
        &self,
        request: Request<ResolveAllRequest>,
    ) -> Result<Response<ResolveAllResponse>, Status> {
        self.resolve_every_flag(request)
    }
});

/// One flag of a bulk answer: the value in the field of its JSON type (numbers as doubles),
/// unset when there is none (disabled, failed, or no default variant).
fn any_flag(evaluation: Evaluation) -> AnyFlag {
    let value = evaluation.value.as_ref().and_then(|value| match value {
        Value::Bool(flag) => Some(any_flag::Value::BoolValue(*flag)),
        Value::String(text) => Some(any_flag::Value::StringValue(text.clone())),
        Value::Number(number) => number.as_f64().map(any_flag::Value::DoubleValue),
        Value::Object(object) => Some(any_flag::Value::ObjectValue(struct_from_object(object))),
        Value::Null | Value::Array(_) => None,
    });
    AnyFlag {
        reason: evaluation.reason.as_str().to_owned(),
        variant: evaluation.variant.unwrap_or_default(),
        value,
        metadata: Some(struct_from_object(&evaluation.metadata)),
    }
}
