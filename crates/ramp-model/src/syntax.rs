//! Small shared forms: addresses and HTTP token names.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `IP:port`, `[IPv6]:port` or `localhost:port`.
pub fn parse_socket_addr(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse() {
        return Some(addr);
    }
    let port = text.strip_prefix("localhost:")?.parse().ok()?;
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

/// An HTTP token (RFC 9110 §5.6.2): what header and cookie names are made of.
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_tokens() {
        assert_eq!(
            parse_socket_addr("localhost:80"),
            Some(SocketAddr::from(([127, 0, 0, 1], 80)))
        );
        assert_eq!(parse_socket_addr("[::1]:9").map(|a| a.port()), Some(9));
        assert_eq!(parse_socket_addr("example.com:80"), None);
        assert_eq!(parse_socket_addr("localhost:99999"), None);
        assert!(
            is_token("x-ramp-revision") && !is_token("") && !is_token("a b") && !is_token("a:b")
        );
    }
}
