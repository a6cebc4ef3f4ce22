//! Request heads: parsing what a client sent, and writing what an instance receives.

use super::headers::{Framing, HeaderFacts, HeaderView, header_slots, is_hop_by_hop, write_header};

/// The request methods the router treats specially.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Head,
    /// GET, OPTIONS, TRACE, PUT, DELETE: safe to send twice (RFC 9110 §9.2.2).
    Idempotent,
    /// POST, PATCH and anything else.
    Other,
}

impl Method {
    pub(crate) fn classify(name: &str) -> Method {
        match name {
            "HEAD" => Method::Head,
            "GET" | "OPTIONS" | "TRACE" | "PUT" | "DELETE" => Method::Idempotent,
            _ => Method::Other,
        }
    }

    /// A failed attempt may be replayed on another instance.
    pub(crate) fn is_idempotent(self) -> bool {
        self != Method::Other
    }
}

/// What the router needs to know about a parsed request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestHead {
    /// Bytes of the head in the client buffer.
    pub(crate) head_len: usize,
    pub(crate) method: Method,
    pub(crate) http10: bool,
    pub(crate) framing: Framing,
    /// The client wants the connection kept open after this exchange.
    pub(crate) keep_alive: bool,
    /// The client asks to switch protocols (e.g. WebSocket).
    pub(crate) upgrade: bool,
    pub(crate) expect_continue: bool,
}

/// Why a request head is refused, and the status that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestError {
    /// 400.
    Malformed(&'static str),
    /// 431: too many headers.
    TooManyHeaders,
    /// 501: a transfer coding we cannot frame.
    UnsupportedCoding,
    /// 405: `CONNECT` tunnels are not for a reverse proxy.
    ConnectNotAllowed,
}

impl RequestError {
    pub(crate) fn status(self) -> u16 {
        match self {
            RequestError::Malformed(_) => 400,
            RequestError::TooManyHeaders => 431,
            RequestError::UnsupportedCoding => 501,
            RequestError::ConnectNotAllowed => 405,
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            RequestError::Malformed(why) => why,
            RequestError::TooManyHeaders => "too many headers",
            RequestError::UnsupportedCoding => "unsupported transfer coding",
            RequestError::ConnectNotAllowed => "CONNECT is not supported",
        }
    }
}

/// Parses a request head at the start of `buf`.
///
/// On success `decide` is called with a view of the headers (the routing decision is made
/// while they are borrowed, without copying them) and the head for the instance is written
/// to `upstream_head`. `Ok(None)` means the head is not complete yet.
pub(crate) fn parse_request<D>(
    buf: &[u8],
    upstream_head: &mut Vec<u8>,
    decide: impl FnOnce(&HeaderView<'_, '_>) -> D,
) -> Result<Option<(RequestHead, D)>, RequestError> {
    let mut slots = header_slots();
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooManyHeaders),
        Err(_) => return Err(RequestError::Malformed("malformed request head")),
    };
    let (Some(method_name), Some(target), Some(version)) = (req.method, req.path, req.version)
    else {
        return Err(RequestError::Malformed("malformed request line"));
    };
    if method_name == "CONNECT" {
        return Err(RequestError::ConnectNotAllowed);
    }
    let headers = req.headers;
    let facts = HeaderFacts::read(headers)
        .map_err(|_| RequestError::Malformed("invalid Content-Length"))?;
    if facts.transfer_encoding && !facts.chunked {
        return Err(RequestError::UnsupportedCoding);
    }
    let http10 = version == 0;
    if facts.listed.overflow {
        return Err(RequestError::Malformed("too many names in Connection"));
    }
    if !http10 && facts.host_count != 1 {
        return Err(RequestError::Malformed(
            "HTTP/1.1 needs exactly one Host header",
        ));
    }
    // Both framings at once is how requests are smuggled past proxies (RFC 9112 §6.1).
    let framing = match (facts.transfer_encoding, facts.content_length) {
        (true, Some(_)) => {
            return Err(RequestError::Malformed(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        (true, None) if http10 => {
            return Err(RequestError::Malformed(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        (true, None) => Framing::Chunked,
        (false, Some(0)) | (false, None) => Framing::Empty,
        (false, Some(n)) => Framing::Length(n),
    };
    let upgrade = facts.upgrade_token
        && facts
            .upgrade
            .is_some_and(|u| !u.is_empty() && !u.eq_ignore_ascii_case(b"h2c"));
    let keep_alive = if http10 {
        facts.keep_alive && !facts.close
    } else {
        !facts.close
    };

    let decision = decide(&HeaderView(headers));

    upstream_head.clear();
    upstream_head.extend_from_slice(method_name.as_bytes());
    upstream_head.push(b' ');
    upstream_head.extend_from_slice(target.as_bytes());
    upstream_head.extend_from_slice(b" HTTP/1.1\r\n");
    for h in headers.iter() {
        let keep_upgrade = upgrade && h.name.eq_ignore_ascii_case("upgrade");
        if (is_hop_by_hop(h.name) && !keep_upgrade) || facts.listed.contains(h.name) {
            continue;
        }
        write_header(upstream_head, h.name.as_bytes(), h.value);
    }
    if upgrade {
        upstream_head.extend_from_slice(b"connection: upgrade\r\n");
    }
    upstream_head.extend_from_slice(b"\r\n");

    let head = RequestHead {
        head_len,
        method: Method::classify(method_name),
        http10,
        framing,
        keep_alive,
        upgrade,
        expect_continue: facts.expect_continue,
    };
    Ok(Some((head, decision)))
}

/// Writes the head an instance receives for a request that arrived over HTTP/2.
pub(crate) fn write_upstream_head_from_h2(
    parts: &http::request::Parts,
    framing: Framing,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = parts.uri.authority()
    {
        write_header(out, b"host", authority.as_str().as_bytes());
    }
    for (name, value) in &parts.headers {
        let name = name.as_str();
        if is_hop_by_hop(name) || name == "content-length" || name == "transfer-encoding" {
            continue;
        }
        write_header(out, name.as_bytes(), value.as_bytes());
    }
    match framing {
        Framing::Length(n) => write_header(out, b"content-length", n.to_string().as_bytes()),
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Empty | Framing::UntilClose => {}
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramp_route::RequestView;

    fn parse(raw: &str) -> Result<Option<(RequestHead, String)>, RequestError> {
        let mut out = Vec::new();
        parse_request(raw.as_bytes(), &mut out, |_| ())
            .map(|r| r.map(|(h, ())| (h, String::from_utf8(out).unwrap())))
    }

    #[test]
    fn forwards_a_simple_get_without_hop_by_hop_headers() {
        let raw = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nAccept: */*\r\n\r\nNEXT";
        let (head, upstream) = parse(raw).unwrap().unwrap();
        assert_eq!(head.head_len, raw.len() - 4);
        assert_eq!(head.framing, Framing::Empty);
        assert_eq!(head.method, Method::Idempotent);
        assert!(head.keep_alive && !head.http10 && !head.upgrade);
        assert_eq!(
            upstream,
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse("GE"), Ok(None));
    }

    #[test]
    fn framing_is_derived_and_smuggling_refused() {
        let (h, _) = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.method), (Framing::Length(5), Method::Other));
        let (h, up) = parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(up.contains("Transfer-Encoding: chunked"));
        for bad in [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
            "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(parse(bad).unwrap_err().status(), 400, "{bad:?}");
        }
        assert_eq!(
            parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n").unwrap_err(),
            RequestError::UnsupportedCoding
        );
        assert_eq!(
            parse("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap_err()
                .status(),
            405
        );
    }

    #[test]
    fn keep_alive_follows_the_version_defaults() {
        let (h, _) = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(h.http10 && !h.keep_alive);
        let (h, up) = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
        assert_eq!(up, "GET / HTTP/1.1\r\n\r\n");
        let (h, _) = parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
    }

    #[test]
    fn websocket_upgrade_keeps_its_headers() {
        let raw = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n";
        let (h, up) = parse(raw).unwrap().unwrap();
        assert!(h.upgrade);
        assert_eq!(
            up,
            "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nconnection: upgrade\r\n\r\n"
        );
        let (h, up) = parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: x\r\n\r\n").unwrap().unwrap();
        assert!(!h.upgrade, "h2c upgrade is served as plain HTTP/1.1");
        assert_eq!(up, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn decision_sees_the_headers() {
        let mut out = Vec::new();
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Canary: yes\r\nCookie: u=7\r\n\r\n";
        let (_, seen) = parse_request(raw, &mut out, |view| {
            (
                view.header("x-canary").map(<[u8]>::to_vec),
                view.cookie("u").map(<[u8]>::to_vec),
            )
        })
        .unwrap()
        .unwrap();
        assert_eq!(seen, (Some(b"yes".to_vec()), Some(b"7".to_vec())));
    }
}
