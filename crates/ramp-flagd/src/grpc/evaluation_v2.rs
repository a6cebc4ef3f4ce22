//! `flagd.evaluation.v2.Service`, what current providers call: `value` and `variant` are
//! optional, so a disabled flag (reason DISABLED) or a flag without a default variant (reason
//! DEFAULT) answers success with neither, and the caller keeps its code default.

use std::sync::Arc;

use ramp_flags::resolve::ValueType;
use serde_json::Value;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::StreamSettings;
use super::convert::struct_from_object;
use super::events::{self, Event};
use super::proto::flagd::evaluation::v2::service_server::Service;
use super::proto::flagd::evaluation::v2::{
    EventStreamRequest, EventStreamResponse, ResolveBooleanRequest, ResolveBooleanResponse,
    ResolveFloatRequest, ResolveFloatResponse, ResolveIntRequest, ResolveIntResponse,
    ResolveObjectRequest, ResolveObjectResponse, ResolveStringRequest, ResolveStringResponse,
};
use super::resolve::{Resolver, request_selector};
use super::selected::SelectedView;

/// The v2 service.
#[derive(Debug, Clone)]
pub(super) struct EvaluationV2 {
    resolver: Resolver,
    streams: StreamSettings,
}

impl EvaluationV2 {
    pub(super) fn new(resolver: Resolver, streams: StreamSettings) -> EvaluationV2 {
        EvaluationV2 { resolver, streams }
    }
}

#[tonic::async_trait]
impl Service for EvaluationV2 {
    async fn resolve_boolean(
        &self,
        request: Request<ResolveBooleanRequest>,
    ) -> Result<Response<ResolveBooleanResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut resolved = self.resolver.resolve(
            &metadata,
            &message.flag_key,
            message.context,
            ValueType::Bool,
        )?;
        Ok(Response::new(ResolveBooleanResponse {
            value: resolved.value().and_then(Value::as_bool),
            reason: resolved.reason_text(),
            variant: resolved.take_variant(),
            metadata: resolved.metadata(),
        }))
    }

    async fn resolve_string(
        &self,
        request: Request<ResolveStringRequest>,
    ) -> Result<Response<ResolveStringResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut resolved = self.resolver.resolve(
            &metadata,
            &message.flag_key,
            message.context,
            ValueType::String,
        )?;
        Ok(Response::new(ResolveStringResponse {
            value: resolved.value().and_then(Value::as_str).map(str::to_owned),
            reason: resolved.reason_text(),
            variant: resolved.take_variant(),
            metadata: resolved.metadata(),
        }))
    }

    async fn resolve_float(
        &self,
        request: Request<ResolveFloatRequest>,
    ) -> Result<Response<ResolveFloatResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut resolved = self.resolver.resolve(
            &metadata,
            &message.flag_key,
            message.context,
            ValueType::Float,
        )?;
        Ok(Response::new(ResolveFloatResponse {
            value: resolved.value().and_then(Value::as_f64),
            reason: resolved.reason_text(),
            variant: resolved.take_variant(),
            metadata: resolved.metadata(),
        }))
    }

    async fn resolve_int(
        &self,
        request: Request<ResolveIntRequest>,
    ) -> Result<Response<ResolveIntResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut resolved = self.resolver.resolve(
            &metadata,
            &message.flag_key,
            message.context,
            ValueType::Int,
        )?;
        Ok(Response::new(ResolveIntResponse {
            value: resolved.value().and_then(Value::as_i64),
            reason: resolved.reason_text(),
            variant: resolved.take_variant(),
            metadata: resolved.metadata(),
        }))
    }

    async fn resolve_object(
        &self,
        request: Request<ResolveObjectRequest>,
    ) -> Result<Response<ResolveObjectResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut resolved = self.resolver.resolve(
            &metadata,
            &message.flag_key,
            message.context,
            ValueType::Object,
        )?;
        Ok(Response::new(ResolveObjectResponse {
            value: resolved
                .value()
                .and_then(Value::as_object)
                .map(struct_from_object),
            reason: resolved.reason_text(),
            variant: resolved.take_variant(),
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
