//! `flagd.evaluation.v1.Service`, for providers that have not moved to v2.
//!
//! v1 values are plain proto3 fields, so "no value" cannot be sent. As flagd does: a disabled
//! flag answers success with reason DISABLED and the type's zero value, and a flag with no
//! default variant to serve answers NOT_FOUND so the caller falls back to its code default
//! instead of taking a zero for a real value.

use std::sync::Arc;

use ramp_flags::resolve::{Evaluation, Reason, ValueType};
use serde_json::Value;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::StreamSettings;
use super::convert::struct_from_object;
use super::events::{self, Event};
use super::proto::flagd::evaluation::v1::any_flag;
use super::proto::flagd::evaluation::v1::service_server::Service;
use super::proto::flagd::evaluation::v1::{
    AnyFlag, EventStreamRequest, EventStreamResponse, ResolveAllRequest, ResolveAllResponse,
    ResolveBooleanRequest, ResolveBooleanResponse, ResolveFloatRequest, ResolveFloatResponse,
    ResolveIntRequest, ResolveIntResponse, ResolveObjectRequest, ResolveObjectResponse,
    ResolveStringRequest, ResolveStringResponse,
};
use super::resolve::{Resolved, Resolver, request_selector};
use super::selected::SelectedView;

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

    /// Resolves one flag the v1 way (see the module docs for flags without a value).
    fn resolve(
        &self,
        metadata: &MetadataMap,
        key: &str,
        context: Option<prost_types::Struct>,
        expected: ValueType,
    ) -> Result<Resolved, Status> {
        let resolved = self.resolver.resolve(metadata, key, context, expected)?;
        if resolved.value().is_none() && resolved.reason() != Reason::Disabled {
            return Err(Status::not_found(format!(
                "flag '{key}' has no default variant to serve: use the code default"
            )));
        }
        Ok(resolved)
    }
}

#[tonic::async_trait]
impl Service for EvaluationV1 {
    async fn resolve_all(
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

    async fn resolve_boolean(
        &self,
        request: Request<ResolveBooleanRequest>,
    ) -> Result<Response<ResolveBooleanResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut resolved = self.resolve(
            &metadata,
            &message.flag_key,
            message.context,
            ValueType::Bool,
        )?;
        Ok(Response::new(ResolveBooleanResponse {
            value: resolved
                .value()
                .and_then(Value::as_bool)
                .unwrap_or_default(),
            reason: resolved.reason_text(),
            variant: resolved.take_variant().unwrap_or_default(),
            metadata: resolved.metadata(),
        }))
    }

    async fn resolve_string(
        &self,
        request: Request<ResolveStringRequest>,
    ) -> Result<Response<ResolveStringResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut resolved = self.resolve(
            &metadata,
            &message.flag_key,
            message.context,
            ValueType::String,
        )?;
        Ok(Response::new(ResolveStringResponse {
            value: resolved
                .value()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            reason: resolved.reason_text(),
            variant: resolved.take_variant().unwrap_or_default(),
            metadata: resolved.metadata(),
        }))
    }

    async fn resolve_float(
        &self,
        request: Request<ResolveFloatRequest>,
    ) -> Result<Response<ResolveFloatResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut resolved = self.resolve(
            &metadata,
            &message.flag_key,
            message.context,
            ValueType::Float,
        )?;
        Ok(Response::new(ResolveFloatResponse {
            value: resolved.value().and_then(Value::as_f64).unwrap_or_default(),
            reason: resolved.reason_text(),
            variant: resolved.take_variant().unwrap_or_default(),
            metadata: resolved.metadata(),
        }))
    }

    async fn resolve_int(
        &self,
        request: Request<ResolveIntRequest>,
    ) -> Result<Response<ResolveIntResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut resolved = self.resolve(
            &metadata,
            &message.flag_key,
            message.context,
            ValueType::Int,
        )?;
        Ok(Response::new(ResolveIntResponse {
            value: resolved.value().and_then(Value::as_i64).unwrap_or_default(),
            reason: resolved.reason_text(),
            variant: resolved.take_variant().unwrap_or_default(),
            metadata: resolved.metadata(),
        }))
    }

    async fn resolve_object(
        &self,
        request: Request<ResolveObjectRequest>,
    ) -> Result<Response<ResolveObjectResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut resolved = self.resolve(
            &metadata,
            &message.flag_key,
            message.context,
            ValueType::Object,
        )?;
        let value = match resolved.value() {
            Some(Value::Object(object)) => struct_from_object(object),
            _ => prost_types::Struct::default(),
        };
        Ok(Response::new(ResolveObjectResponse {
            value: Some(value),
            reason: resolved.reason_text(),
            variant: resolved.take_variant().unwrap_or_default(),
            metadata: resolved.metadata(),
        }))
    }

    type EventStreamStream = ReceiverStream<Result<EventStreamResponse, Status>>;

    async fn event_stream(
        &self,
        request: Request<EventStreamRequest>,
    ) -> Result<Response<Self::EventStreamStream>, Status> {
        let selector = request_selector(request.metadata(), "")?;
        let view = SelectedView::new(Arc::clone(self.resolver.source()), selector);
        let stream = events::open(view, self.streams.keep_alive, self.streams.stop.clone());
        Ok(Response::new(stream))
    }
}

impl From<Event> for EventStreamResponse {
    fn from(event: Event) -> Self {
        EventStreamResponse {
            r#type: event.kind.to_owned(),
            data: event.data,
        }
    }
}

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
