//! `flagd.evaluation.v2.Service`, what current providers call: `value` and `variant` are
//! optional, so a disabled flag (reason DISABLED) or a flag without a default variant (reason
//! DEFAULT) answers success with neither, and the caller keeps its code default.

use tonic::{Request, Response, Status};

use super::StreamSettings;
use super::resolve::Resolver;
use super::typed::{TypedResolve, evaluation_service};

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

    /// Answers one typed resolve.
    fn answer<Q: TypedResolve>(
        &self,
        request: Request<Q>,
    ) -> Result<Response<Q::Response>, Status> {
        let resolved = self.resolver.resolve(request)?;
        Ok(Response::new(Q::respond(resolved.served())))
    }
}

/// v2 sends the value and the variant as they are: absent tells the caller to use its code
/// default.
fn carry<V>(value: Option<V>, variant: Option<String>) -> (Option<V>, Option<String>) {
    (value, variant)
}

evaluation_service!(v2 for EvaluationV2, carried by carry, also {});
