//! Optional shared-token authentication, as OFREP providers send it: `Authorization: Bearer T`
//! or `X-API-Key: T`.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// The header OFREP's API-key scheme uses.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";

/// What a request's credentials amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A credential matches the token (or no token is configured).
    Allowed,
    /// No credential was sent: 401.
    Missing,
    /// Credentials were sent and none matches: 403.
    Wrong,
}

/// Checks `headers` against `token`; `None` means authentication is off.
pub(crate) fn check(headers: &HeaderMap, token: Option<&str>) -> Verdict {
    let Some(token) = token else {
        return Verdict::Allowed;
    };
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    let api_key = headers
        .get(API_KEY_HEADER)
        .and_then(|value| value.to_str().ok());
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
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn accepts_bearer_or_api_key_and_tells_missing_from_wrong() {
        let token = Some("s3cret");
        assert_eq!(check(&headers(&[]), None), Verdict::Allowed);
        assert_eq!(check(&headers(&[]), token), Verdict::Missing);
        let ok_bearer = headers(&[("authorization", "Bearer s3cret")]);
        assert_eq!(check(&ok_bearer, token), Verdict::Allowed);
        let ok_lower = headers(&[("authorization", "bearer s3cret")]);
        assert_eq!(check(&ok_lower, token), Verdict::Allowed);
        let ok_key = headers(&[("x-api-key", "s3cret")]);
        assert_eq!(check(&ok_key, token), Verdict::Allowed);
        let wrong = headers(&[("authorization", "Bearer s3cre")]);
        assert_eq!(check(&wrong, token), Verdict::Wrong);
        let wrong_key = headers(&[("x-api-key", "nope")]);
        assert_eq!(check(&wrong_key, token), Verdict::Wrong);
        let basic = headers(&[("authorization", "Basic czNjcmV0")]);
        assert_eq!(check(&basic, token), Verdict::Missing);
    }
}
