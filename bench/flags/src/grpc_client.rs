//! The client side of the gRPC phases, as a flagd RPC provider calls Ramp: one HTTP/2
//! connection per channel, `flagd.evaluation.v2` typed resolves with the context as a protobuf
//! `Struct`.

use std::net::SocketAddr;

use prost_types::Struct;
use ramp_flagd::grpc::client::flagd::evaluation::v2;
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

/// A JSON evaluation context as the protobuf `Struct` flagd's RPCs carry (the servers' own
/// conversion, so both sides agree by construction).
pub(crate) use ramp_flagd::grpc::struct_from_object as context_struct;

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
