//! What the two evaluation versions have in common: the typed resolves (`ResolveBoolean`,
//! `ResolveString`, `ResolveInt`, `ResolveFloat`, `ResolveObject`), one resolution with two
//! wire shapes, and `EventStream`.
//!
//! Every generated typed request has `flag_key` and `context`, and every typed response has
//! `value`, `reason`, `variant` and `metadata`; the versions differ only in whether `value` and
//! `variant` may be absent, and v1 refuses what it cannot carry. [`evaluation_service!`]
//! implements a version's service from its `answer` method and its `carry` function, which
//! says how the value and variant go on its wire.

use prost_types::Struct;
use ramp_flags::resolve::ValueType;
use serde_json::Value;

use super::convert::struct_from_object;

/// The Rust type of a typed response's value, read from the JSON value the engine served.
pub(super) trait WireValue: Sized {
    /// What the flag must resolve to for this value type.
    const TYPE: ValueType;

    /// The value as this type; `None` when it is not one.
    fn from_json(value: Value) -> Option<Self>;
}

impl WireValue for bool {
    const TYPE: ValueType = ValueType::Bool;

    fn from_json(value: Value) -> Option<bool> {
        value.as_bool()
    }
}

impl WireValue for String {
    const TYPE: ValueType = ValueType::String;

    fn from_json(value: Value) -> Option<String> {
        match value {
            Value::String(text) => Some(text),
            _ => None,
        }
    }
}

impl WireValue for i64 {
    const TYPE: ValueType = ValueType::Int;

    fn from_json(value: Value) -> Option<i64> {
        value.as_i64()
    }
}

impl WireValue for f64 {
    const TYPE: ValueType = ValueType::Float;

    fn from_json(value: Value) -> Option<f64> {
        value.as_f64()
    }
}

impl WireValue for Struct {
    const TYPE: ValueType = ValueType::Object;

    fn from_json(value: Value) -> Option<Struct> {
        value.as_object().map(struct_from_object)
    }
}

/// A successful resolution taken apart for a typed response.
#[derive(Debug)]
pub(super) struct Served<V> {
    /// The served value; `None` means "use the code default".
    pub(super) value: Option<V>,
    /// The reason as flagd spells it on the wire.
    pub(super) reason: String,
    pub(super) variant: Option<String>,
    /// The flag's metadata (flag-set metadata overlaid with the flag's own).
    pub(super) metadata: Option<Struct>,
}

/// A typed resolve request of either version, and the response that answers it.
pub(super) trait TypedResolve {
    /// The type of the response's value.
    type Value: WireValue;
    type Response;

    /// The flag asked for and the caller's evaluation context.
    fn into_flag(self) -> (String, Option<Struct>);

    /// The response carrying `served` the way its version does.
    fn respond(served: Served<Self::Value>) -> Self::Response;
}

/// Implements evaluation version `$version`'s `Service` for `$service`, a struct with a
/// `resolver: Resolver` and `streams: StreamSettings`: the five typed resolves, each answered
/// by `$service::answer` after [`TypedResolve`] ties its request to its response (with
/// `$carry(Option<V>, Option<String>)` giving the response's `value` and `variant` fields),
/// `EventStream`, and the version's other methods, given in `also { ... }`.
macro_rules! evaluation_service {
    (
        $version:ident for $service:ty,
        carried by $carry:path,
        also { $($other:tt)* }
    ) => {
        $crate::grpc::typed::evaluation_service!(
            @typed $version, $service, $carry, { $($other)* }:
            resolve_boolean(ResolveBooleanRequest => ResolveBooleanResponse, bool),
            resolve_string(ResolveStringRequest => ResolveStringResponse, String),
            resolve_int(ResolveIntRequest => ResolveIntResponse, i64),
            resolve_float(ResolveFloatRequest => ResolveFloatResponse, f64),
            resolve_object(ResolveObjectRequest => ResolveObjectResponse, ::prost_types::Struct),
        );
    };
    (
        @typed $version:ident, $service:ty, $carry:path, { $($other:tt)* }:
        $($method:ident($request:ident => $response:ident, $value:ty),)+
    ) => {
        // A block, so that `wire` stays out of the invoking module.
        const _: () = {
            use $crate::grpc::proto::flagd::evaluation::$version as wire;

            $(
                impl $crate::grpc::typed::TypedResolve for wire::$request {
                    type Value = $value;
                    type Response = wire::$response;

                    fn into_flag(self) -> (String, Option<::prost_types::Struct>) {
                        (self.flag_key, self.context)
                    }

                    fn respond(served: $crate::grpc::typed::Served<$value>) -> wire::$response {
                        let (value, variant) = $carry(served.value, served.variant);
                        wire::$response {
                            value,
                            reason: served.reason,
                            variant,
                            metadata: served.metadata,
                        }
                    }
                }
            )+

            #[::tonic::async_trait]
            impl wire::service_server::Service for $service {
                $($other)*

                $(
                    async fn $method(
                        &self,
                        request: ::tonic::Request<wire::$request>,
                    ) -> Result<::tonic::Response<wire::$response>, ::tonic::Status> {
                        self.answer(request)
                    }
                )+

                type EventStreamStream = ::tokio_stream::wrappers::ReceiverStream<
                    Result<wire::EventStreamResponse, ::tonic::Status>,
                >;

                async fn event_stream(
                    &self,
                    request: ::tonic::Request<wire::EventStreamRequest>,
                ) -> Result<::tonic::Response<Self::EventStreamStream>, ::tonic::Status> {
                    let stream = $crate::grpc::events::open_for_call(
                        request.metadata(),
                        self.resolver.source(),
                        &self.streams,
                    )?;
                    Ok(::tonic::Response::new(stream))
                }
            }

            impl From<$crate::grpc::events::Event> for wire::EventStreamResponse {
                fn from(event: $crate::grpc::events::Event) -> Self {
                    wire::EventStreamResponse {
                        r#type: event.kind.to_owned(),
                        data: event.data,
                    }
                }
            }
        };
    };
}

pub(super) use evaluation_service;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_of_another_type_are_none() {
        assert_eq!(bool::from_json(json!(true)), Some(true));
        assert_eq!(bool::from_json(json!("true")), None);
        assert_eq!(String::from_json(json!("a")), Some("a".to_owned()));
        assert_eq!(String::from_json(json!(1)), None);
        assert_eq!(i64::from_json(json!(10)), Some(10));
        assert_eq!(i64::from_json(json!(0.5)), None);
        assert_eq!(f64::from_json(json!(10)), Some(10.0));
        assert_eq!(f64::from_json(json!([1])), None);
        let object = Struct::from_json(json!({"size": 1})).expect("an object");
        assert!(object.fields.contains_key("size"));
        assert_eq!(Struct::from_json(json!(null)), None);
    }
}
