//! One HTTP/1.1 GET on a fresh connection, shared by the HTTP-based providers.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONNECTION, HOST, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::url::HttpUrl;

/// Largest answer body read; a measurement is a number or a small document.
const MAX_BODY: usize = 4 << 20;

/// What a server answered.
#[derive(Debug)]
pub(crate) struct Answer {
    /// Status code.
    pub(crate) status: u16,
    /// The whole body (chunked or not), at most [`MAX_BODY`] bytes.
    pub(crate) body: Bytes,
}

/// `GET url` with `headers` on a fresh connection (`Connection: close`), the whole exchange
/// bounded by `limit`. Sends `Accept: application/json` unless `headers` name an `Accept`.
/// The error says which step failed: connecting, the exchange, or the body.
pub(crate) async fn get(
    url: &HttpUrl,
    headers: &[(String, String)],
    limit: Duration,
) -> Result<Answer, String> {
    let request = build_request(url, headers)?;
    tokio::time::timeout(limit, exchange(url, request))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within the timeout of {limit:?}")))
}

fn build_request(
    url: &HttpUrl,
    headers: &[(String, String)],
) -> Result<http::Request<Empty<Bytes>>, String> {
    let mut request = http::Request::get(url.target.as_str())
        .body(Empty::new())
        .map_err(|e| format!("bad request target `{}`: {e}", url.target))?;
    let fields = request.headers_mut();
    let host = HeaderValue::from_str(&url.authority())
        .map_err(|e| format!("bad host `{}`: {e}", url.host))?;
    fields.insert(HOST, host);
    fields.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let mut given = Vec::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header `{name}` is not a valid header value"))?;
        // A header the caller gives replaces the default of the same name; repeats add up.
        if given.contains(&name) {
            fields.append(name, value);
        } else {
            fields.insert(name.clone(), value);
            given.push(name);
        }
    }
    fields.insert(CONNECTION, HeaderValue::from_static("close"));
    Ok(request)
}

async fn exchange(url: &HttpUrl, request: http::Request<Empty<Bytes>>) -> Result<Answer, String> {
    let authority = url.authority();
    let stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("cannot talk HTTP to {authority}: {e}"))?;
    let response = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request to {authority} failed: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    format!("the answer from {authority} is larger than {MAX_BODY} bytes")
                } else {
                    format!("reading the answer from {authority} failed: {e}")
                }
            })?
            .to_bytes();
        Ok(Answer { status, body })
    };
    // The connection is driven in this task, so a timeout drops everything at once. It ends
    // by itself after the response (`Connection: close`); its own error, if any, shows in
    // the response's.
    let (answer, _) = tokio::join!(response, connection);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_server::{Canned, refused_addr, silent_server};

    fn url_of(addr: std::net::SocketAddr, target: &str) -> HttpUrl {
        HttpUrl::parse(&format!("http://{addr}{target}")).unwrap()
    }

    const LIMIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn reads_status_and_body_and_sends_headers() {
        let mut server =
            Canned::start(Canned::response(418, "application/json", "{\"a\":1}")).await;
        let headers = vec![
            ("Authorization".to_owned(), "Bearer t".to_owned()),
            ("X-Tag".to_owned(), "one".to_owned()),
            ("x-tag".to_owned(), "two".to_owned()),
            ("accept".to_owned(), "text/plain".to_owned()),
        ];
        let answer = get(&url_of(server.addr, "/p?q=1"), &headers, LIMIT)
            .await
            .unwrap();
        assert_eq!(answer.status, 418);
        assert_eq!(&answer.body[..], b"{\"a\":1}");
        let head = server.request().await.to_ascii_lowercase();
        assert!(head.starts_with("get /p?q=1 http/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("host: {}\r\n", server.addr)),
            "{head}"
        );
        assert!(head.contains("authorization: bearer t\r\n"), "{head}");
        assert!(head.contains("x-tag: one\r\n"), "{head}");
        assert!(head.contains("x-tag: two\r\n"), "{head}");
        assert!(head.contains("accept: text/plain\r\n"), "{head}");
        assert!(!head.contains("application/json"), "{head}");
        assert!(head.contains("connection: close\r\n"), "{head}");
    }

    #[tokio::test]
    async fn decodes_chunked_bodies() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                   3\r\n{\"a\r\n5\r\n\":12}\r\n0\r\n\r\n";
        let server = Canned::start(raw.as_bytes().to_vec()).await;
        let answer = get(&url_of(server.addr, "/"), &[], LIMIT).await.unwrap();
        assert_eq!(&answer.body[..], b"{\"a\":12}");
    }

    #[tokio::test]
    async fn refuses_oversized_bodies() {
        let body = "x".repeat(MAX_BODY + 1);
        let server = Canned::start(Canned::response(200, "text/plain", &body)).await;
        let err = get(&url_of(server.addr, "/"), &[], LIMIT)
            .await
            .unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }

    #[tokio::test]
    async fn bad_headers_are_errors_not_panics() {
        let url = url_of(refused_addr(), "/");
        let bad_name = vec![("bad name".to_owned(), "v".to_owned())];
        let err = get(&url, &bad_name, LIMIT).await.unwrap_err();
        assert!(
            err.contains("`bad name` is not a valid header name"),
            "{err}"
        );
        let bad_value = vec![("x".to_owned(), "a\nb".to_owned())];
        let err = get(&url, &bad_value, LIMIT).await.unwrap_err();
        assert!(err.contains("header `x`"), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let addr = silent_server().await;
        let limit = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = get(&url_of(addr, "/"), &[], limit).await.unwrap_err();
        assert!(err.contains("timeout of 300ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_closed_port_fails_fast() {
        let addr = refused_addr();
        let started = std::time::Instant::now();
        let err = get(&url_of(addr, "/"), &[], LIMIT).await.unwrap_err();
        assert!(
            err.starts_with(&format!("cannot connect to {addr}")),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
