//! The little URL syntax the providers need: `http://host[:port][/path][?query]`, and
//! percent-encoding of a query parameter.

/// An `http://` URL split into what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// Host name or IP address (an IPv6 address without its brackets).
    pub(crate) host: String,
    /// TCP port; 80 when the URL names none.
    pub(crate) port: u16,
    /// Origin-form request target, `/path?query`; at least `/`.
    pub(crate) target: String,
}

impl HttpUrl {
    /// Splits `url`. Only `http://` is supported; user info (`user@`) is refused so that
    /// credentials go in headers, and the fragment (`#…`) is dropped as browsers do.
    pub(crate) fn parse(url: &str) -> Result<HttpUrl, String> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!("`{url}` is not an http:// URL"));
        };
        if scheme.eq_ignore_ascii_case("https") {
            return Err(format!(
                "https is not supported yet; use an http:// address instead of `{url}` \
                 (for example through a local TLS-terminating proxy)"
            ));
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(format!(
                "unsupported scheme `{scheme}` in `{url}`; only http:// is supported"
            ));
        }
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, remainder) = rest.split_at(split);
        if authority.contains('@') {
            return Err(format!(
                "user info in `{url}` is not supported; pass credentials as headers"
            ));
        }
        let (host, port) = split_authority(authority).map_err(|e| format!("`{url}`: {e}"))?;
        let remainder = remainder.split('#').next().unwrap_or_default();
        let target = match remainder.chars().next() {
            None => "/".to_owned(),
            Some('?') => format!("/{remainder}"),
            Some(_) => remainder.to_owned(),
        };
        if !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "`{url}` has spaces or other characters that must be percent-encoded"
            ));
        }
        Ok(HttpUrl { host, port, target })
    }

    /// The `Host` header's value: the host (bracketed if IPv6), with the port unless it is 80.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// `host[:port]` or `[ipv6][:port]` into host and port.
fn split_authority(authority: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("an IPv6 host lacks its closing `]`")?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected `{after}` after the host")),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    let port = match port {
        None => 80,
        Some(port) => port
            .parse()
            .map_err(|_| format!("`{port}` is not a port number"))?,
    };
    Ok((host.to_owned(), port))
}

/// `text` percent-encoded for use as a query parameter: every byte but RFC 3986's
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`.
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url(host: &str, port: u16, target: &str) -> HttpUrl {
        HttpUrl {
            host: host.into(),
            port,
            target: target.into(),
        }
    }

    #[test]
    fn splits_host_port_and_target() {
        assert_eq!(
            HttpUrl::parse("http://127.0.0.1:9090/api/v1/query?query=up"),
            Ok(url("127.0.0.1", 9090, "/api/v1/query?query=up"))
        );
        assert_eq!(
            HttpUrl::parse("HTTP://example.com"),
            Ok(url("example.com", 80, "/"))
        );
        assert_eq!(
            HttpUrl::parse("http://example.com?x=1#frag"),
            Ok(url("example.com", 80, "/?x=1"))
        );
        assert_eq!(
            HttpUrl::parse("http://[::1]:8080/a"),
            Ok(url("::1", 8080, "/a"))
        );
        assert_eq!(HttpUrl::parse(" http://[::1] "), Ok(url("::1", 80, "/")));
    }

    #[test]
    fn refuses_what_it_cannot_request() {
        let https = HttpUrl::parse("https://prometheus:9090").unwrap_err();
        assert!(https.starts_with("https is not supported yet;"), "{https}");
        for bad in [
            "prometheus:9090",
            "ftp://host/",
            "http://",
            "http://:80/",
            "http://host:port/",
            "http://host:70000/",
            "http://user:pw@host/",
            "http://[::1/",
            "http://[::1]x/",
            "http://host/a b",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn host_header_names_non_default_ports_only() {
        assert_eq!(url("example.com", 80, "/").authority(), "example.com");
        assert_eq!(url("10.0.0.1", 9090, "/").authority(), "10.0.0.1:9090");
        assert_eq!(url("::1", 8080, "/").authority(), "[::1]:8080");
    }

    #[test]
    fn encodes_promql() {
        assert_eq!(
            encode_component(r#"sum(rate(x{code="5xx"}[1m])) / 2"#),
            "sum%28rate%28x%7Bcode%3D%225xx%22%7D%5B1m%5D%29%29%20%2F%202"
        );
        assert_eq!(encode_component("a+b&c=é"), "a%2Bb%26c%3D%C3%A9");
    }

    fn decode(encoded: &str) -> Vec<u8> {
        let bytes = encoded.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    proptest! {
        #[test]
        fn encoding_is_safe_and_reversible(text in any::<String>()) {
            let encoded = encode_component(&text);
            prop_assert!(encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            prop_assert_eq!(decode(&encoded), text.into_bytes());
        }

        #[test]
        fn parsed_parts_rebuild_the_url(
            host in "[a-z][a-z0-9.-]{0,20}",
            port in 1u16..,
            path in "(/[a-zA-Z0-9._~%-]{0,8}){0,4}",
            query in proptest::option::of("[a-zA-Z0-9=&%._-]{0,20}"),
        ) {
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            let text = format!("http://{host}:{port}{path}{query}");
            let parsed = HttpUrl::parse(&text).unwrap();
            prop_assert_eq!(&parsed.host, &host);
            prop_assert_eq!(parsed.port, port);
            let target = if path.is_empty() { format!("/{query}") } else { format!("{path}{query}") };
            prop_assert_eq!(&parsed.target, &target);
            let rebuilt = format!("http://{}{}", parsed.authority(), parsed.target);
            prop_assert_eq!(HttpUrl::parse(&rebuilt).unwrap(), parsed);
        }

        #[test]
        fn parsing_never_panics(text in any::<String>()) {
            let _ = HttpUrl::parse(&text);
        }
    }
}
