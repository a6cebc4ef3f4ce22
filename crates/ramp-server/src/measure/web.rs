//! Web metrics: an HTTP GET whose JSON answer, or the part a JSON path picks, is `result`.

use ramp_analysis::WebQuery;
use serde_json::Value;

use super::url::HttpUrl;
use super::{excerpt, http, json_path};

/// GETs `q.url` with `q.headers`, bounded by `q.timeout`, and returns the JSON answer or
/// the value `q.json_path` picks in it. Paths are `$` followed by any chain of `.field`,
/// `['field']` and `[index]`, e.g. `$.data.items[0].value`.
///
/// Values keep their JSON type: a number written as a string (`"0.25"`) stays a string, which
/// CEL conditions can still convert (`double(result) < 0.5`).
///
/// Errors: a non-2xx status (with the start of the body), a body that is not JSON (with its
/// start), a path part that is missing (named, with what was there instead), and every
/// transport failure.
pub async fn web(q: &WebQuery) -> Result<Value, String> {
    let url = HttpUrl::parse(&q.url)?;
    let answer = http::get(&url, &q.headers, q.timeout)
        .await
        .map_err(|e| format!("GET {}: {e}", q.url))?;
    if !(200..300).contains(&answer.status) {
        return Err(format!(
            "GET {}: HTTP status {}: {}",
            q.url,
            answer.status,
            excerpt(&answer.body)
        ));
    }
    let document: Value = serde_json::from_slice(&answer.body).map_err(|e| {
        format!(
            "GET {}: the answer is not JSON ({e}): {}",
            q.url,
            excerpt(&answer.body)
        )
    })?;
    match &q.json_path {
        None => Ok(document),
        Some(path) => json_path::select(&document, path).cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_server::{Canned, refused_addr, silent_server};
    use serde_json::json;
    use std::time::{Duration, Instant};

    const DOC: &str = r#"{"data":{"items":[{"value":"0.25"},{"value":3}]},"ok":true}"#;

    fn query(url: String, json_path: Option<&str>) -> WebQuery {
        WebQuery {
            url,
            headers: Vec::new(),
            json_path: json_path.map(str::to_owned),
            timeout: Duration::from_secs(5),
        }
    }

    async fn ask(raw: Vec<u8>, json_path: Option<&str>) -> Result<Value, String> {
        let server = Canned::start(raw).await;
        web(&query(format!("http://{}/status", server.addr), json_path)).await
    }

    #[tokio::test]
    async fn the_whole_answer_without_a_path() {
        let answer = ask(Canned::json(DOC), None).await;
        assert_eq!(answer, Ok(serde_json::from_str::<Value>(DOC).unwrap()));
    }

    #[tokio::test]
    async fn paths_pick_values_and_keep_their_type() {
        let doc = Canned::json(DOC);
        assert_eq!(ask(doc.clone(), Some("$.ok")).await, Ok(json!(true)));
        assert_eq!(
            ask(doc.clone(), Some("$.data.items[0].value")).await,
            Ok(json!("0.25"))
        );
        assert_eq!(
            ask(doc, Some("$['data']['items'][1]['value']")).await,
            Ok(json!(3))
        );
    }

    #[tokio::test]
    async fn a_missing_path_names_the_missing_part() {
        let err = ask(Canned::json(DOC), Some("$.data.items[5].value"))
            .await
            .unwrap_err();
        assert!(
            err.contains("`[5]` is missing at `$.data.items` (an array of 2 items)"),
            "{err}"
        );
        let err = ask(Canned::json(DOC), Some("$.data.total"))
            .await
            .unwrap_err();
        assert!(err.contains("`.total` is missing at `$.data`"), "{err}");
    }

    #[tokio::test]
    async fn sends_the_headers() {
        let mut server = Canned::start(Canned::json("1")).await;
        let mut q = query(format!("http://{}/v1/x?y=1", server.addr), None);
        q.headers = vec![("Authorization".to_owned(), "Bearer abc".to_owned())];
        assert_eq!(web(&q).await, Ok(json!(1)));
        let head = server.request().await;
        assert!(head.starts_with("GET /v1/x?y=1 HTTP/1.1\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("authorization: bearer abc\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn non_json_answers_are_errors_with_an_excerpt() {
        let err = ask(Canned::response(200, "text/plain", "all good\n"), None)
            .await
            .unwrap_err();
        assert!(err.contains("the answer is not JSON"), "{err}");
        assert!(err.ends_with(": all good"), "{err}");
    }

    #[tokio::test]
    async fn non_2xx_answers_are_errors() {
        let err = ask(Canned::response(404, "text/plain", "no such page"), None)
            .await
            .unwrap_err();
        assert!(err.ends_with("HTTP status 404: no such page"), "{err}");
    }

    #[tokio::test]
    async fn silence_and_closed_ports_are_errors_in_time() {
        let addr = silent_server().await;
        let mut q = query(format!("http://{addr}/"), None);
        q.timeout = Duration::from_millis(200);
        let started = Instant::now();
        let err = web(&q).await.unwrap_err();
        assert!(err.contains("timeout of 200ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));

        let addr = refused_addr();
        let err = web(&query(format!("http://{addr}/"), None))
            .await
            .unwrap_err();
        assert!(err.contains(&format!("cannot connect to {addr}")), "{err}");
    }

    #[tokio::test]
    async fn https_is_refused_clearly() {
        let err = web(&query("https://example.com/".to_owned(), None))
            .await
            .unwrap_err();
        assert!(err.starts_with("https is not supported yet;"), "{err}");
    }
}
