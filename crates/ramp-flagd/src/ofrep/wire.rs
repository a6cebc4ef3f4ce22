//! OFREP 0.3.0 request and response bodies.
//!
//! Responses borrow from the resolution (which itself borrows from the flag store snapshot)
//! instead of building `serde_json::Value` trees, so serialising one costs a single buffer.

use ramp_flags::resolve::{ErrorCode, Resolution};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body both evaluation endpoints accept: `{"context": {...}}`. A missing body or context
/// means an empty context; unknown fields are ignored for forward compatibility.
#[derive(Debug, Default, Deserialize)]
struct EvaluationRequest {
    #[serde(default)]
    context: Option<Map<String, Value>>,
}

/// The evaluation context of a request body, or why it is unusable (an INVALID_CONTEXT detail).
pub(crate) fn parse_context(body: &[u8]) -> Result<Map<String, Value>, String> {
    let refuse = |error: &dyn std::fmt::Display| {
        format!(
            "the request body must be a JSON object {{\"context\": {{...}}}} whose context \
             is an object: {error}"
        )
    };
    match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        None => return Ok(Map::new()),
        // serde would also read a struct from an array; OFREP bodies are objects.
        Some(b'{') => {}
        Some(_) => return Err(refuse(&"the body is not an object")),
    }
    serde_json::from_slice::<EvaluationRequest>(body)
        .map(|request| request.context.unwrap_or_default())
        .map_err(|error| refuse(&error))
}

/// A successful evaluation; no `value` means "use the code default".
#[derive(Debug, Serialize)]
pub(crate) struct Success<'a> {
    key: &'a str,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    metadata: &'a Map<String, Value>,
}

/// A failed evaluation of one flag (also the 404 shape).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Failure<'a> {
    key: &'a str,
    error_code: &'static str,
    error_details: &'a str,
    #[serde(skip_serializing_if = "Map::is_empty")]
    metadata: &'a Map<String, Value>,
}

/// A request that failed as a whole before any flag was evaluated.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestFailure<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    error_code: &'static str,
    error_details: &'a str,
}

impl<'a> RequestFailure<'a> {
    /// The single-flag shape (`key` present) or, without a key, the bulk shape.
    pub(crate) fn new(key: Option<&'a str>, code: ErrorCode, details: &'a str) -> Self {
        RequestFailure {
            key,
            error_code: code.as_str(),
            error_details: details,
        }
    }
}

/// One entry of a response: a success or a failure.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Outcome<'a> {
    /// The flag resolved.
    Success(Success<'a>),
    /// The flag failed; the code says why.
    Failure(Failure<'a>),
}

impl<'a> Outcome<'a> {
    pub(crate) fn of(resolution: &'a Resolution<'_>) -> Outcome<'a> {
        match &resolution.error {
            None => Outcome::Success(Success {
                key: resolution.key,
                reason: resolution.reason.as_str(),
                variant: resolution.variant,
                value: resolution.value.as_deref(),
                metadata: resolution.metadata,
            }),
            Some((code, details)) => Outcome::Failure(Failure {
                key: resolution.key,
                error_code: code.as_str(),
                error_details: details,
                metadata: resolution.metadata,
            }),
        }
    }
}

/// The bulk response: every visible flag, failures inline, and the flag set's metadata.
#[derive(Debug, Serialize)]
pub(crate) struct Bulk<'a> {
    pub(crate) flags: Vec<Outcome<'a>>,
    pub(crate) metadata: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn empty_or_contextless_bodies_mean_an_empty_context() {
        assert_eq!(parse_context(b""), Ok(Map::new()));
        assert_eq!(parse_context(b" \n"), Ok(Map::new()));
        assert_eq!(parse_context(b"{}"), Ok(Map::new()));
        assert_eq!(parse_context(br#"{"context":null}"#), Ok(Map::new()));
        let context = parse_context(br#"{"context":{"targetingKey":"u1"},"extra":1}"#).unwrap();
        assert_eq!(context.get("targetingKey"), Some(&json!("u1")));
    }

    #[test]
    fn non_object_contexts_and_bad_json_are_refused() {
        for body in [
            &br#"{"context":"user"}"#[..],
            br#"{"context":[1]}"#,
            b"[]",
            b"null",
            b"{not json",
        ] {
            assert!(
                parse_context(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest! {
        /// Any object sent as the context comes back unchanged.
        #[test]
        fn object_contexts_round_trip(
            entries in proptest::collection::btree_map("[a-zA-Z]{1,8}", any::<i64>(), 0..8)
        ) {
            let context: Map<String, Value> =
                entries.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
            let body = serde_json::to_vec(&json!({ "context": context.clone() })).unwrap();
            prop_assert_eq!(parse_context(&body), Ok(context));
        }
    }
}
