//! The shared token on gRPC: checked from the request metadata before the message is decoded.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::auth::{API_KEY_HEADER, AUTHORIZATION_HEADER, Verdict, check_credentials};

/// Refuses calls without the configured token: UNAUTHENTICATED when none is sent,
/// PERMISSION_DENIED when the one sent is wrong.
#[derive(Debug, Clone)]
pub(super) struct TokenCheck {
    token: Option<Arc<str>>,
}

impl TokenCheck {
    /// `None` lets every call through.
    pub(super) fn new(token: Option<&str>) -> TokenCheck {
        TokenCheck {
            token: token.map(Arc::from),
        }
    }
}

impl Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let verdict = {
            let metadata = request.metadata();
            let text = |key: &str| metadata.get(key).and_then(|value| value.to_str().ok());
            check_credentials(
                text(AUTHORIZATION_HEADER),
                text(API_KEY_HEADER),
                self.token.as_deref(),
            )
        };
        match verdict {
            Verdict::Allowed => Ok(request),
            Verdict::Missing => Err(Status::unauthenticated(
                "credentials required: send `authorization: Bearer <token>` or \
                 `x-api-key: <token>` metadata",
            )),
            Verdict::Wrong => Err(Status::permission_denied(
                "the credentials sent are not valid",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn call(check: &mut TokenCheck, key: &'static str, value: &str) -> Result<(), Code> {
        let mut request = Request::new(());
        if !key.is_empty() {
            request
                .metadata_mut()
                .insert(key, value.parse().expect("ascii metadata"));
        }
        check
            .call(request)
            .map(drop)
            .map_err(|status| status.code())
    }

    #[test]
    fn maps_verdicts_to_grpc_codes() {
        let mut open = TokenCheck::new(None);
        assert_eq!(call(&mut open, "", ""), Ok(()));
        let mut guarded = TokenCheck::new(Some("s3cret"));
        assert_eq!(call(&mut guarded, "", ""), Err(Code::Unauthenticated));
        assert_eq!(call(&mut guarded, "authorization", "Bearer s3cret"), Ok(()));
        assert_eq!(call(&mut guarded, "x-api-key", "s3cret"), Ok(()));
        assert_eq!(
            call(&mut guarded, "x-api-key", "guess"),
            Err(Code::PermissionDenied)
        );
    }
}
