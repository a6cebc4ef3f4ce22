//! Response heads: parsing what an instance sent, and writing what the client receives.

use super::headers::{Framing, HeaderFacts, HeaderSlots, is_hop_by_hop, write_header};

/// What the router needs to know about an instance's response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// Bytes of the head in the upstream buffer.
    pub(crate) head_len: usize,
    pub(crate) status: u16,
    pub(crate) framing: Framing,
    /// The instance lets us reuse the connection after this response.
    pub(crate) reusable: bool,
}

impl ResponseHead {
    /// 1xx other than 101: a final response follows on the same connection.
    pub(crate) fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// The instance sent something that is not an HTTP/1 response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid response from instance: {0}")]
pub(crate) struct ResponseError(pub(crate) &'static str);

/// How the response is presented to the client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientSide<'a> {
    pub(crate) http10: bool,
    /// The connection may stay open after this response (the client wants it and the router
    /// is not shutting down).
    pub(crate) keep_alive: bool,
    /// A `name: value\r\n` line naming the serving revision, if configured.
    pub(crate) revision_line: Option<&'a [u8]>,
}

/// What forwarding this response means for the client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientPlan {
    /// Close the client connection after the body.
    pub(crate) close_after: bool,
    /// Strip the chunked coding (HTTP/1.0 clients cannot read it).
    pub(crate) decode_chunked: bool,
}

/// A response head parsed in place.
#[derive(Debug)]
pub(crate) struct ParsedResponse<'h, 'b> {
    pub(crate) head: ResponseHead,
    status_line: &'b [u8],
    headers: &'h [httparse::Header<'b>],
    facts: HeaderFacts<'b>,
}

/// Parses a response head at the start of `buf`; `Ok(None)` means more bytes are needed.
pub(crate) fn parse_response<'h, 'b>(
    buf: &'b [u8],
    slots: &'h mut HeaderSlots<'b>,
    head_request: bool,
) -> Result<Option<ParsedResponse<'h, 'b>>, ResponseError> {
    let mut res = httparse::Response::new(&mut []);
    let parsed =
        httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, slots);
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ResponseError("malformed response head")),
    };
    let (Some(status), Some(version)) = (res.code, res.version) else {
        return Err(ResponseError("malformed status line"));
    };
    let headers: &'h [httparse::Header<'b>] = res.headers;
    let facts = HeaderFacts::read(headers).map_err(|_| ResponseError("invalid Content-Length"))?;
    if !(100..=599).contains(&status) {
        return Err(ResponseError("status code out of range"));
    }
    // RFC 9112 §6.3, in order.
    let framing = if head_request || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else if facts.chunked {
        Framing::Chunked
    } else if facts.transfer_encoding {
        Framing::UntilClose
    } else {
        match facts.content_length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    let persistent = if version == 0 {
        facts.keep_alive && !facts.close
    } else {
        !facts.close
    };
    let reusable = persistent && framing != Framing::UntilClose && status != 101;
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(0);
    let status_line = buf[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..line_end]);
    Ok(Some(ParsedResponse {
        head: ResponseHead {
            head_len,
            status,
            framing,
            reusable,
        },
        status_line,
        headers,
        facts,
    }))
}

impl ParsedResponse<'_, '_> {
    /// Writes the head the client receives, and says what that means for its connection.
    pub(crate) fn write_for_client(
        &self,
        client: &ClientSide<'_>,
        out: &mut Vec<u8>,
    ) -> ClientPlan {
        let head = &self.head;
        let switching = head.status == 101;
        let decode_chunked = client.http10 && head.framing == Framing::Chunked;
        let close_after = !switching
            && (!client.keep_alive || head.framing == Framing::UntilClose || decode_chunked);
        out.extend_from_slice(self.status_line);
        out.extend_from_slice(b"\r\n");
        for h in self.headers {
            let keep_upgrade = switching && h.name.eq_ignore_ascii_case("upgrade");
            let stale_length =
                head.framing == Framing::Chunked && h.name.eq_ignore_ascii_case("content-length");
            let dechunked = decode_chunked && h.name.eq_ignore_ascii_case("transfer-encoding");
            if (is_hop_by_hop(h.name) && !keep_upgrade)
                || self.facts.listed.contains(h.name)
                || stale_length
                || dechunked
            {
                continue;
            }
            write_header(out, h.name.as_bytes(), h.value);
        }
        if !head.is_interim() {
            if let Some(line) = client.revision_line {
                out.extend_from_slice(line);
            }
            if switching {
                out.extend_from_slice(b"connection: upgrade\r\n");
            } else if close_after {
                out.extend_from_slice(b"connection: close\r\n");
            } else if client.http10 {
                out.extend_from_slice(b"connection: keep-alive\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        ClientPlan {
            close_after,
            decode_chunked,
        }
    }

    /// Builds the head an HTTP/2 client receives (connection-specific headers removed).
    pub(crate) fn to_h2(
        &self,
        revision: Option<&(http::HeaderName, http::HeaderValue)>,
    ) -> http::response::Builder {
        let mut builder = http::Response::builder().status(self.head.status);
        for h in self.headers {
            let name = h.name;
            if is_hop_by_hop(name)
                || self.facts.listed.contains(name)
                || name.eq_ignore_ascii_case("transfer-encoding")
                || (self.head.framing == Framing::Chunked
                    && name.eq_ignore_ascii_case("content-length"))
            {
                continue;
            }
            builder = builder.header(name, h.value);
        }
        if let Some((name, value)) = revision {
            builder = builder.header(name.clone(), value.clone());
        }
        builder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::headers::header_slots;

    const KEEP: ClientSide<'static> = ClientSide {
        http10: false,
        keep_alive: true,
        revision_line: Some(b"x-ramp-revision: v2\r\n"),
    };

    fn client_view(
        raw: &str,
        head_request: bool,
        client: ClientSide<'_>,
    ) -> (ResponseHead, ClientPlan, String) {
        let mut headers = header_slots();
        let parsed = parse_response(raw.as_bytes(), &mut headers, head_request)
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        let plan = parsed.write_for_client(&client, &mut out);
        (parsed.head, plan, String::from_utf8(out).unwrap())
    }

    #[test]
    fn plain_response_gains_the_revision_header() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\n\r\nhi";
        let (head, plan, out) = client_view(raw, false, KEEP);
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.reusable && !plan.close_after);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-ramp-revision: v2\r\n\r\n"
        );
        assert_eq!(head.head_len, raw.len() - 2);
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let frame = |raw: &str, head_req| client_view(raw, head_req, KEEP).0.framing;
        assert_eq!(
            frame("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true),
            Framing::Empty
        );
        assert_eq!(
            frame("HTTP/1.1 204 No Content\r\n\r\n", false),
            Framing::Empty
        );
        assert_eq!(
            frame(
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                false
            ),
            Framing::Empty
        );
        assert_eq!(
            frame(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
                false
            ),
            Framing::Chunked
        );
        assert_eq!(
            frame("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false),
            Framing::UntilClose
        );
        assert_eq!(frame("HTTP/1.1 200 OK\r\n\r\n", false), Framing::UntilClose);
        assert_eq!(
            frame("HTTP/1.1 100 Continue\r\n\r\n", false),
            Framing::Empty
        );
    }

    #[test]
    fn chunked_response_drops_a_conflicting_length() {
        let (_, _, out) = client_view(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
            false,
            KEEP,
        );
        assert!(!out.to_ascii_lowercase().contains("content-length"));
    }

    #[test]
    fn until_close_and_connection_close_are_not_reusable() {
        let (head, plan, out) = client_view("HTTP/1.1 200 OK\r\n\r\n", false, KEEP);
        assert!(!head.reusable && plan.close_after);
        assert!(out.ends_with("connection: close\r\n\r\n"));
        let (head, plan, _) = client_view(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
            KEEP,
        );
        assert!(
            !head.reusable && !plan.close_after,
            "the instance closing is not the client's business"
        );
        let (head, _, _) = client_view("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, KEEP);
        assert!(!head.reusable);
    }

    #[test]
    fn http10_clients_get_dechunked_bodies_and_close() {
        let client = ClientSide {
            http10: true,
            keep_alive: true,
            revision_line: None,
        };
        let (_, plan, out) = client_view(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
            client,
        );
        assert_eq!(
            plan,
            ClientPlan {
                close_after: true,
                decode_chunked: true
            }
        );
        assert_eq!(out, "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
        let (_, plan, out) = client_view(
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n",
            false,
            client,
        );
        assert!(!plan.close_after);
        assert!(out.ends_with("connection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn switching_protocols_keeps_upgrade() {
        let raw = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: z\r\n\r\n";
        let (head, plan, out) = client_view(raw, false, KEEP);
        assert!(!head.reusable && !plan.close_after && !head.is_interim());
        assert_eq!(
            out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: z\r\nx-ramp-revision: v2\r\nconnection: upgrade\r\n\r\n"
        );
    }

    #[test]
    fn interim_responses_are_passed_as_they_are() {
        let (head, _, out) = client_view("HTTP/1.1 100 Continue\r\n\r\n", false, KEEP);
        assert!(head.is_interim());
        assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn garbage_is_an_error_and_partial_waits() {
        let mut headers = header_slots();
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Le", &mut headers, false)
                .unwrap()
                .is_none()
        );
        let mut headers = header_slots();
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", &mut headers, false).is_err());
        let mut headers = header_slots();
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                &mut headers,
                false
            )
            .is_err()
        );
    }
}
