//! The client side of the gRPC phases, as a flagd RPC provider calls Ramp: one HTTP/2
//! connection per channel, `flagd.evaluation.v2` typed resolves with the context as a protobuf
//! `Struct`.

use std::net::SocketAddr;

use prost_types::value::Kind;
use prost_types::{ListValue, Struct};
use ramp_flagd::grpc::client::flagd::evaluation::v2;
use serde_json::{Map, Value};
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

use crate::workload::FlagClass;

/// The evaluation client over one channel.
pub(crate) type EvaluationClient = v2::service_client::ServiceClient<Channel>;

/// One new HTTP/2 connection to `address` (each call opens its own, so channels do not share).
pub(crate) async fn connect(address: SocketAddr) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://{address}"))
        .map_err(|error| format!("bad gRPC address {address}: {error}"))?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|error| format!("cannot connect to gRPC at {address}: {error}"))
}

/// A JSON evaluation context as the protobuf `Struct` flagd's RPCs carry.
pub(crate) fn context_struct(context: &Map<String, Value>) -> Struct {
    Struct {
        fields: context
            .iter()
            .map(|(key, value)| (key.clone(), protobuf_value(value)))
            .collect(),
    }
}

fn protobuf_value(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(flag) => Kind::BoolValue(*flag),
        Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or(f64::NAN)),
        Value::String(text) => Kind::StringValue(text.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(protobuf_value).collect(),
        }),
        Value::Object(fields) => Kind::StructValue(context_struct(fields)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// One evaluation of `class`'s flag, typed as the in-process comparison resolves it
/// (`ResolveBoolean` for the static flag, `ResolveString` for the others); the variant served.
pub(crate) async fn resolve_variant(
    client: &mut EvaluationClient,
    class: FlagClass,
    context: Struct,
) -> Result<Option<String>, Status> {
    let flag_key = class.flag_key().to_owned();
    match class {
        FlagClass::Static => {
            let request = v2::ResolveBooleanRequest {
                flag_key,
                context: Some(context),
            };
            Ok(client.resolve_boolean(request).await?.into_inner().variant)
        }
        FlagClass::Rule | FlagClass::Fractional => {
            let request = v2::ResolveStringRequest {
                flag_key,
                context: Some(context),
            };
            Ok(client.resolve_string(request).await?.into_inner().variant)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contexts_keep_every_key_and_json_type() {
        let context = json!({
            "targetingKey": "u1",
            "age": 42,
            "beta": true,
            "tags": ["a", 1],
            "org": {"tier": "gold"},
            "gone": null
        });
        let converted = context_struct(context.as_object().unwrap());
        let kind = |key: &str| converted.fields[key].kind.clone().unwrap();
        assert_eq!(converted.fields.len(), 6);
        assert_eq!(kind("targetingKey"), Kind::StringValue("u1".into()));
        assert_eq!(kind("age"), Kind::NumberValue(42.0));
        assert_eq!(kind("beta"), Kind::BoolValue(true));
        assert_eq!(kind("gone"), Kind::NullValue(0));
        let Kind::ListValue(tags) = kind("tags") else {
            panic!("tags is not a list");
        };
        assert_eq!(tags.values.len(), 2);
        let Kind::StructValue(org) = kind("org") else {
            panic!("org is not a struct");
        };
        assert_eq!(
            org.fields["tier"].kind,
            Some(Kind::StringValue("gold".into()))
        );
    }
}
