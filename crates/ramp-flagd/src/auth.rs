//! Optional shared-token authentication, the same for every flag server: a request presents the
//! token as `Authorization: Bearer T` or as `X-API-Key: T` (HTTP headers or gRPC metadata).

/// The header (or gRPC metadata key) of the API-key scheme.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";

/// The header (or gRPC metadata key) of the bearer scheme.
pub(crate) const AUTHORIZATION_HEADER: &str = "authorization";

/// What a request's credentials amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A credential matches the token (or no token is configured).
    Allowed,
    /// No credential was sent (HTTP 401, gRPC UNAUTHENTICATED).
    Missing,
    /// Credentials were sent and none matches (HTTP 403, gRPC PERMISSION_DENIED).
    Wrong,
}

/// Checks the `Authorization` and `X-API-Key` values a request sent against `token`; `None`
/// means authentication is off.
pub(crate) fn check_credentials(
    authorization: Option<&str>,
    api_key: Option<&str>,
    token: Option<&str>,
) -> Verdict {
    let Some(token) = token else {
        return Verdict::Allowed;
    };
    let bearer = authorization.and_then(bearer_token);
    if bearer.is_none() && api_key.is_none() {
        return Verdict::Missing;
    }
    let matches = |credential: &str| same_secret(credential.trim().as_bytes(), token.as_bytes());
    if bearer.into_iter().chain(api_key).any(matches) {
        Verdict::Allowed
    } else {
        Verdict::Wrong
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// Compares without stopping at the first difference, so response timing does not reveal how
/// much of a guessed token was right.
fn same_secret(offered: &[u8], expected: &[u8]) -> bool {
    offered.len() == expected.len()
        && offered
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bearer_or_api_key_and_tells_missing_from_wrong() {
        let token = Some("s3cret");
        assert_eq!(check_credentials(None, None, None), Verdict::Allowed);
        assert_eq!(check_credentials(None, None, token), Verdict::Missing);
        let allowed = [
            (Some("Bearer s3cret"), None),
            (Some("bearer s3cret"), None),
            (None, Some("s3cret")),
            (Some("Bearer nope"), Some("s3cret")),
        ];
        for (authorization, api_key) in allowed {
            let verdict = check_credentials(authorization, api_key, token);
            assert_eq!(verdict, Verdict::Allowed, "{authorization:?} {api_key:?}");
        }
        assert_eq!(
            check_credentials(Some("Bearer s3cre"), None, token),
            Verdict::Wrong
        );
        assert_eq!(check_credentials(None, Some("nope"), token), Verdict::Wrong);
        // Another scheme is no credential at all.
        assert_eq!(
            check_credentials(Some("Basic czNjcmV0"), None, token),
            Verdict::Missing
        );
    }
}
