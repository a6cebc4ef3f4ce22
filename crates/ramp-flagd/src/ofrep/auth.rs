//! OFREP's authentication: the shared token check applied to HTTP headers.

use axum::http::HeaderMap;

pub(crate) use crate::auth::Verdict;
use crate::auth::{API_KEY_HEADER, AUTHORIZATION_HEADER, check_credentials};

/// Checks `headers` against `token`; `None` means authentication is off.
pub(crate) fn check(headers: &HeaderMap, token: Option<&str>) -> Verdict {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    check_credentials(text(AUTHORIZATION_HEADER), text(API_KEY_HEADER), token)
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
    fn reads_the_bearer_and_api_key_headers() {
        let token = Some("s3cret");
        assert_eq!(check(&headers(&[]), None), Verdict::Allowed);
        assert_eq!(check(&headers(&[]), token), Verdict::Missing);
        let bearer = headers(&[("authorization", "Bearer s3cret")]);
        assert_eq!(check(&bearer, token), Verdict::Allowed);
        let api_key = headers(&[("x-api-key", "s3cret")]);
        assert_eq!(check(&api_key, token), Verdict::Allowed);
        let wrong = headers(&[("x-api-key", "nope")]);
        assert_eq!(check(&wrong, token), Verdict::Wrong);
    }
}
