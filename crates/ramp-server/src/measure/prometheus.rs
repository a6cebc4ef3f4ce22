//! PromQL instant queries over Prometheus' HTTP API (`GET /api/v1/query`).

use ramp_analysis::PrometheusQuery;
use serde::Deserialize;
use serde_json::Value;

use super::url::{HttpUrl, encode_component};
use super::{excerpt, http, number};

/// Runs `q.query` as an instant query against the Prometheus server at `q.address` (an
/// `http://` base URL, possibly with a path prefix), bounded by `q.timeout`.
///
/// `result` is:
/// - for a vector with exactly one sample, that sample's value as a number;
/// - for a vector with any other number of samples, the array of their values (an empty
///   vector gives `[]`, so a condition can test `len(result) == 0` for "no data");
/// - for a scalar, its value; for a string, the string.
///
/// Sample values follow [`super::number`]: `NaN` (e.g. `0/0` when there was no traffic)
/// becomes `null`, `+Inf`/`-Inf` become ±`f64::MAX`.
///
/// Errors: Prometheus' own (`status: "error"`, with its `errorType` and message), any other
/// non-2xx status (with the start of the body), answers that are not Prometheus JSON, range
/// vectors (a matrix is not one measurement), and every transport failure.
pub async fn prometheus(q: &PrometheusQuery) -> Result<Value, String> {
    let url = query_url(&q.address, &q.query)?;
    let answer = http::get(&url, &[], q.timeout)
        .await
        .map_err(|e| format!("Prometheus at {}: {e}", q.address))?;
    decode(answer.status, &answer.body)
}

/// `{address}/api/v1/query?query=…`.
fn query_url(address: &str, query: &str) -> Result<HttpUrl, String> {
    let base = address.trim().trim_end_matches('/');
    if base.contains(['?', '#']) {
        return Err(format!(
            "the Prometheus address `{address}` must be a base URL, without `?` or `#`"
        ));
    }
    let encoded = encode_component(query);
    HttpUrl::parse(&format!("{base}/api/v1/query?query={encoded}"))
        .map_err(|e| format!("bad Prometheus address: {e}"))
}

/// Prometheus' answer envelope.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    data: Option<QueryData>,
    error_type: Option<String>,
    error: Option<String>,
}

/// The `data` of a successful query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    result_type: String,
    result: Value,
}

/// One sample of an instant vector; the labels are not needed.
#[derive(Debug, Deserialize)]
struct VectorSample {
    value: (f64, String),
}

/// `result` from an answer's status and body.
fn decode(status: u16, body: &[u8]) -> Result<Value, String> {
    let envelope = serde_json::from_slice::<Envelope>(body);
    if let Ok(failed) = &envelope
        && failed.status == "error"
    {
        let kind = failed.error_type.as_deref().unwrap_or("unknown");
        let message = failed.error.as_deref().unwrap_or("no message");
        return Err(format!("Prometheus query failed ({kind}): {message}"));
    }
    if !(200..300).contains(&status) {
        return Err(format!("HTTP status {status}: {}", excerpt(body)));
    }
    let envelope =
        envelope.map_err(|e| format!("not a Prometheus answer ({e}): {}", excerpt(body)))?;
    if envelope.status != "success" {
        return Err(format!(
            "unexpected Prometheus status `{}`: {}",
            envelope.status,
            excerpt(body)
        ));
    }
    let data = envelope
        .data
        .ok_or_else(|| format!("Prometheus answer without data: {}", excerpt(body)))?;
    decode_result(&data.result_type, data.result)
}

fn decode_result(result_type: &str, result: Value) -> Result<Value, String> {
    let malformed = |e: serde_json::Error| format!("malformed {result_type} result: {e}");
    match result_type {
        "vector" => {
            let samples: Vec<VectorSample> = serde_json::from_value(result).map_err(malformed)?;
            let mut values = samples
                .iter()
                .map(|s| sample_value(&s.value.1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match values.len() {
                1 => values.remove(0),
                _ => Value::Array(values),
            })
        }
        "scalar" => {
            let (_, value): (f64, String) = serde_json::from_value(result).map_err(malformed)?;
            sample_value(&value)
        }
        "string" => {
            let (_, value): (f64, String) = serde_json::from_value(result).map_err(malformed)?;
            Ok(Value::String(value))
        }
        "matrix" => Err(
            "the query returned a range vector (matrix); use an instant query, e.g. wrap the \
             range in rate() or avg_over_time()"
                .to_owned(),
        ),
        other => Err(format!("unknown Prometheus result type `{other}`")),
    }
}

/// A sample value as Prometheus writes it (`"0.25"`, `"NaN"`, `"+Inf"`), as JSON.
fn sample_value(text: &str) -> Result<Value, String> {
    text.parse::<f64>()
        .map(number)
        .map_err(|_| format!("`{text}` is not a sample value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_server::{Canned, refused_addr, silent_server};
    use proptest::prelude::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    fn vector(values: &[&str]) -> String {
        let samples: Vec<Value> = values
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"metric": {"pod": format!("p{i}")}, "value": [1700000000.5, v]}))
            .collect();
        json!({"status": "success", "data": {"resultType": "vector", "result": samples}})
            .to_string()
    }

    async fn ask(raw: Vec<u8>) -> Result<Value, String> {
        let server = Canned::start(raw).await;
        prometheus(&query(&format!("http://{}", server.addr))).await
    }

    fn query(address: &str) -> PrometheusQuery {
        PrometheusQuery {
            address: address.to_owned(),
            query: "up".to_owned(),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn sends_an_encoded_instant_query() {
        let mut server = Canned::start(Canned::json(&vector(&["1"]))).await;
        let q = PrometheusQuery {
            address: format!("http://{}/prom/", server.addr),
            query: r#"sum(rate(x{code="5xx"}[1m]))"#.to_owned(),
            timeout: Duration::from_secs(5),
        };
        assert_eq!(prometheus(&q).await, Ok(json!(1.0)));
        let head = server.request().await;
        let first_line = head.lines().next().unwrap();
        assert_eq!(
            first_line,
            "GET /prom/api/v1/query?query=sum%28rate%28x%7Bcode%3D%225xx%22%7D%5B1m%5D%29%29 \
             HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn one_sample_is_a_number() {
        assert_eq!(ask(Canned::json(&vector(&["0.25"]))).await, Ok(json!(0.25)));
    }

    #[tokio::test]
    async fn several_samples_are_an_array() {
        let answer = ask(Canned::json(&vector(&["1", "2.5", "-3"]))).await;
        assert_eq!(answer, Ok(json!([1.0, 2.5, -3.0])));
    }

    #[tokio::test]
    async fn an_empty_vector_is_an_empty_array() {
        assert_eq!(ask(Canned::json(&vector(&[]))).await, Ok(json!([])));
    }

    #[tokio::test]
    async fn a_scalar_is_a_number() {
        let body = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"42"]}}"#;
        assert_eq!(ask(Canned::json(body)).await, Ok(json!(42.0)));
    }

    #[tokio::test]
    async fn nan_is_null_and_infinities_are_the_largest_doubles() {
        assert_eq!(ask(Canned::json(&vector(&["NaN"]))).await, Ok(Value::Null));
        let answer = ask(Canned::json(&vector(&["+Inf", "-Inf", "NaN"]))).await;
        assert_eq!(answer, Ok(json!([f64::MAX, -f64::MAX, null])));
    }

    #[tokio::test]
    async fn prometheus_errors_are_reported_with_their_type() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#;
        let answer = ask(Canned::response(400, "application/json", body)).await;
        assert_eq!(
            answer,
            Err("Prometheus query failed (bad_data): 1:5: parse error".to_owned())
        );
    }

    #[tokio::test]
    async fn other_failures_quote_the_status_and_body() {
        let answer = ask(Canned::response(503, "text/plain", "Service Unavailable\n")).await;
        assert_eq!(
            answer,
            Err("HTTP status 503: Service Unavailable".to_owned())
        );
        let err = ask(Canned::response(200, "text/html", "<html>login</html>"))
            .await
            .unwrap_err();
        assert!(err.starts_with("not a Prometheus answer"), "{err}");
        assert!(err.ends_with(": <html>login</html>"), "{err}");
    }

    #[tokio::test]
    async fn range_vectors_are_refused() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        let err = ask(Canned::json(body)).await.unwrap_err();
        assert!(err.contains("range vector"), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let addr = silent_server().await;
        let q = PrometheusQuery {
            timeout: Duration::from_millis(200),
            ..query(&format!("http://{addr}"))
        };
        let started = Instant::now();
        let err = prometheus(&q).await.unwrap_err();
        assert!(
            err.contains("no answer within the timeout of 200ms"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_fast() {
        let addr = refused_addr();
        let started = Instant::now();
        let err = prometheus(&query(&format!("http://{addr}")))
            .await
            .unwrap_err();
        assert!(
            err.starts_with(&format!("Prometheus at http://{addr}: cannot connect")),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn https_and_bad_addresses_are_refused() {
        let err = prometheus(&query("https://prometheus:9090"))
            .await
            .unwrap_err();
        assert!(err.contains("https is not supported yet;"), "{err}");
        assert!(prometheus(&query("http://host:9090?x")).await.is_err());
    }

    proptest! {
        #[test]
        fn finite_sample_values_come_back_exactly(values in proptest::collection::vec(-1e12f64..1e12, 0..5)) {
            let texts: Vec<String> = values.iter().map(f64::to_string).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let result = decode(200, vector(&refs).as_bytes()).unwrap();
            let expected = match values.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            prop_assert_eq!(result, expected);
        }

        #[test]
        fn decoding_never_panics(status in 100u16..600, body in any::<Vec<u8>>()) {
            let _ = decode(status, &body);
        }
    }
}
