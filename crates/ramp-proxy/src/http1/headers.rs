//! Header facts shared by requests and responses: framing, `Connection` tokens, hop-by-hop.

use ramp_route::{RequestView, find_cookie};

/// Most headers a message may carry.
pub(crate) const MAX_HEADERS: usize = 96;

/// Room for parsed headers. Left uninitialized: zeroing 3 KB per message would cost more
/// than parsing a typical head.
pub(crate) type HeaderSlots<'b> = [std::mem::MaybeUninit<httparse::Header<'b>>; MAX_HEADERS];

/// Fresh, uninitialized header slots.
pub(crate) fn header_slots<'b>() -> HeaderSlots<'b> {
    [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS]
}

/// How a message body is delimited (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the sender closes (responses only).
    UntilClose,
}

/// What the `Connection`, `Content-Length` and `Transfer-Encoding` headers said.
#[derive(Debug, Default)]
pub(crate) struct HeaderFacts<'b> {
    pub(crate) close: bool,
    pub(crate) keep_alive: bool,
    pub(crate) upgrade_token: bool,
    pub(crate) upgrade: Option<&'b [u8]>,
    pub(crate) content_length: Option<u64>,
    pub(crate) chunked: bool,
    pub(crate) transfer_encoding: bool,
    pub(crate) expect_continue: bool,
    pub(crate) host_count: usize,
    /// Header names listed in `Connection` (hop-by-hop by declaration), lowercase-compared.
    pub(crate) listed: ListedNames<'b>,
}

/// Content-Length is not a number, or appears twice with different values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadContentLength;

/// Up to eight header names named by `Connection`; more is treated as malformed input.
#[derive(Debug, Default)]
pub(crate) struct ListedNames<'b> {
    names: [&'b [u8]; 8],
    len: usize,
    pub(crate) overflow: bool,
}

impl<'b> ListedNames<'b> {
    fn push(&mut self, name: &'b [u8]) {
        if self.len < self.names.len() {
            self.names[self.len] = name;
            self.len += 1;
        } else {
            self.overflow = true;
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names[..self.len]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
    }
}

impl<'b> HeaderFacts<'b> {
    /// Reads the framing and connection-management headers in one pass.
    pub(crate) fn read(headers: &[httparse::Header<'b>]) -> Result<Self, BadContentLength> {
        let mut facts = HeaderFacts::default();
        for h in headers {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let n = parse_content_length(h.value).ok_or(BadContentLength)?;
                if facts.content_length.is_some_and(|prev| prev != n) {
                    return Err(BadContentLength);
                }
                facts.content_length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                facts.transfer_encoding = true;
                // Only the last coding decides the framing; earlier ones are payload codings.
                facts.chunked = last_token(h.value).eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                for token in tokens(h.value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        facts.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        facts.keep_alive = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        facts.upgrade_token = true;
                    } else {
                        facts.listed.push(token);
                    }
                }
            } else if name.eq_ignore_ascii_case("upgrade") {
                facts.upgrade = Some(h.value);
            } else if name.eq_ignore_ascii_case("expect") {
                facts.expect_continue = h.value.eq_ignore_ascii_case(b"100-continue");
            } else if name.eq_ignore_ascii_case("host") {
                facts.host_count += 1;
            }
        }
        Ok(facts)
    }
}

/// Headers that describe one connection, not the message, and so are never forwarded as is.
pub(crate) fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 6] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

fn parse_content_length(value: &[u8]) -> Option<u64> {
    let value = trim(value);
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Comma-separated list elements, trimmed, empty ones skipped.
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
}

fn last_token(value: &[u8]) -> &[u8] {
    tokens(value).last().unwrap_or(&[])
}

pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => &bytes[s..=e],
        _ => &[],
    }
}

/// Lets the routing decision read parsed HTTP/1 headers in place.
#[derive(Debug)]
pub(crate) struct HeaderView<'h, 'b>(pub(crate) &'h [httparse::Header<'b>]);

impl RequestView for HeaderView<'_, '_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    fn cookie(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
            .find_map(|h| find_cookie(h.value, name))
    }
}

/// Appends `name: value\r\n`.
pub(crate) fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
        httparse::Header {
            name,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn reads_framing_and_connection_tokens() {
        let hs = [
            header("Content-Length", " 42 "),
            header("Connection", "keep-alive, X-Trace , Upgrade"),
            header("Upgrade", "websocket"),
            header("Expect", "100-Continue"),
            header("Host", "a"),
        ];
        let f = HeaderFacts::read(&hs).unwrap();
        assert_eq!(f.content_length, Some(42));
        assert!(f.keep_alive && f.upgrade_token && !f.close && f.expect_continue);
        assert_eq!(f.upgrade, Some(&b"websocket"[..]));
        assert!(f.listed.contains("x-trace"));
        assert!(!f.listed.contains("keep-alive"));
        assert_eq!(f.host_count, 1);
    }

    #[test]
    fn chunked_must_be_the_last_coding() {
        let ok = HeaderFacts::read(&[header("Transfer-Encoding", "gzip, chunked")]).unwrap();
        assert!(ok.chunked && ok.transfer_encoding);
        let not = HeaderFacts::read(&[header("Transfer-Encoding", "chunked, gzip")]).unwrap();
        assert!(!not.chunked && not.transfer_encoding);
    }

    #[test]
    fn content_length_must_be_one_number() {
        for bad in ["", "-1", "1,1", "0x10", "1 2", "9999999999999999999"] {
            assert!(
                HeaderFacts::read(&[header("content-length", bad)]).is_err(),
                "{bad:?}"
            );
        }
        let twice = [header("content-length", "3"), header("content-length", "4")];
        assert_eq!(HeaderFacts::read(&twice).unwrap_err(), BadContentLength);
        let same = [header("content-length", "3"), header("content-length", "3")];
        assert_eq!(HeaderFacts::read(&same).unwrap().content_length, Some(3));
    }

    #[test]
    fn hop_by_hop_names() {
        for name in [
            "Connection",
            "keep-alive",
            "TE",
            "Upgrade",
            "Proxy-Connection",
            "trailer",
        ] {
            assert!(is_hop_by_hop(name));
        }
        for name in ["content-length", "transfer-encoding", "host", "tea"] {
            assert!(!is_hop_by_hop(name));
        }
    }
}
