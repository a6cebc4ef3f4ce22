//! Request matching: header and cookie conditions used by rules and mirrors.

use regex::bytes::Regex;

/// What the router lets the decision logic see of a request.
///
/// Implemented over the router's parsed headers without copying them.
pub trait RequestView {
    /// The first value of header `name`; `name` is lowercase ASCII, compared case-insensitively.
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// The value of cookie `name` (case-sensitive) in any `Cookie` header.
    fn cookie(&self, name: &str) -> Option<&[u8]>;
}

/// Where a condition reads its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A request header; the name is stored lowercase.
    Header(String),
    /// A cookie from the `Cookie` header(s).
    Cookie(String),
}

impl Source {
    /// A header source; the name is lowercased so lookups need no case folding of the pattern.
    pub fn header(name: &str) -> Self {
        Source::Header(name.to_ascii_lowercase())
    }

    /// A cookie source.
    pub fn cookie(name: &str) -> Self {
        Source::Cookie(name.to_owned())
    }

    /// Reads this source's value from a request.
    pub fn read<'r>(&self, req: &'r impl RequestView) -> Option<&'r [u8]> {
        match self {
            Source::Header(name) => req.header(name),
            Source::Cookie(name) => req.cookie(name),
        }
    }

    /// A short human description, e.g. `header x-user` or `cookie session`.
    pub fn describe(&self) -> String {
        match self {
            Source::Header(name) => format!("header {name}"),
            Source::Cookie(name) => format!("cookie {name}"),
        }
    }
}

/// How a value must look for a condition to hold.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    /// The source is present, whatever its value.
    Present,
    /// Byte-for-byte equal.
    Exact(String),
    /// Starts with the given bytes.
    Prefix(String),
    /// The whole value matches the regular expression (it is anchored at both ends).
    Regex(Regex),
}

impl ValueMatch {
    /// Compiles a full-match regular expression.
    pub fn regex(pattern: &str) -> Result<Self, regex::Error> {
        Regex::new(&format!("^(?:{pattern})$")).map(ValueMatch::Regex)
    }

    fn matches(&self, value: &[u8]) -> bool {
        match self {
            ValueMatch::Present => true,
            ValueMatch::Exact(want) => value == want.as_bytes(),
            ValueMatch::Prefix(prefix) => value.starts_with(prefix.as_bytes()),
            ValueMatch::Regex(re) => re.is_match(value),
        }
    }
}

impl PartialEq for ValueMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ValueMatch::Present, ValueMatch::Present) => true,
            (ValueMatch::Exact(a), ValueMatch::Exact(b)) => a == b,
            (ValueMatch::Prefix(a), ValueMatch::Prefix(b)) => a == b,
            (ValueMatch::Regex(a), ValueMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// One condition: a source and the shape its value must have.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Where the value comes from.
    pub source: Source,
    /// What it must look like.
    pub value: ValueMatch,
}

impl Condition {
    /// True when the request carries the source and its value matches.
    pub fn holds(&self, req: &impl RequestView) -> bool {
        self.source
            .read(req)
            .is_some_and(|value| self.value.matches(value))
    }
}

/// True when every condition holds (an empty list holds for every request).
pub fn all_hold(conditions: &[Condition], req: &impl RequestView) -> bool {
    conditions.iter().all(|c| c.holds(req))
}

/// Finds cookie `name` in one `Cookie` header value (`a=1; b=2`).
pub fn find_cookie<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = trim(pair);
        let eq = pair.iter().position(|&b| b == b'=')?;
        (trim(&pair[..eq]) == name.as_bytes()).then(|| strip_quotes(trim(&pair[eq + 1..])))
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(s), Some(e)) => &bytes[s..=e],
        _ => &[],
    }
}

fn strip_quotes(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A request made of (name, value) header pairs, for tests.
    #[derive(Debug, Default)]
    pub(crate) struct FakeRequest(pub(crate) Vec<(String, String)>);

    impl FakeRequest {
        pub(crate) fn with(pairs: &[(&str, &str)]) -> Self {
            FakeRequest(
                pairs
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            )
        }
    }

    impl RequestView for FakeRequest {
        fn header(&self, name: &str) -> Option<&[u8]> {
            self.0
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
        }
        fn cookie(&self, name: &str) -> Option<&[u8]> {
            self.0
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
                .find_map(|(_, v)| find_cookie(v.as_bytes(), name))
        }
    }

    #[test]
    fn header_names_are_case_insensitive_values_are_not() {
        let req = FakeRequest::with(&[("X-Canary", "Yes")]);
        let cond = |v| Condition {
            source: Source::header("x-CANARY"),
            value: v,
        };
        assert!(cond(ValueMatch::Exact("Yes".into())).holds(&req));
        assert!(!cond(ValueMatch::Exact("yes".into())).holds(&req));
        assert!(cond(ValueMatch::Present).holds(&req));
        assert!(cond(ValueMatch::Prefix("Y".into())).holds(&req));
        assert!(!cond(ValueMatch::Prefix("Yess".into())).holds(&req));
    }

    #[test]
    fn regex_is_anchored() {
        let req = FakeRequest::with(&[("user-agent", "Mozilla/5.0 (iPhone)")]);
        let cond = |p| Condition {
            source: Source::header("user-agent"),
            value: ValueMatch::regex(p).unwrap(),
        };
        assert!(cond(".*iPhone.*").holds(&req));
        assert!(!cond("iPhone").holds(&req));
        assert!(cond("Mozilla/5\\.0 .*").holds(&req));
    }

    #[test]
    fn absent_source_never_matches() {
        let req = FakeRequest::default();
        let cond = Condition {
            source: Source::cookie("beta"),
            value: ValueMatch::Present,
        };
        assert!(!cond.holds(&req));
    }

    #[test]
    fn cookies_are_found_in_any_cookie_header() {
        let req = FakeRequest::with(&[("cookie", "a=1; b=2"), ("Cookie", "user=\"u-7\" ;c=3")]);
        assert_eq!(req.cookie("b"), Some(&b"2"[..]));
        assert_eq!(req.cookie("user"), Some(&b"u-7"[..]));
        assert_eq!(req.cookie("c"), Some(&b"3"[..]));
        assert_eq!(req.cookie("d"), None);
        assert_eq!(find_cookie(b"ab=1", "a"), None);
        assert_eq!(find_cookie(b"novalue; a=", "a"), Some(&b""[..]));
    }

    #[test]
    fn all_conditions_must_hold() {
        let req = FakeRequest::with(&[("x-a", "1"), ("cookie", "b=2")]);
        let a = Condition {
            source: Source::header("x-a"),
            value: ValueMatch::Exact("1".into()),
        };
        let b = Condition {
            source: Source::cookie("b"),
            value: ValueMatch::Exact("2".into()),
        };
        let c = Condition {
            source: Source::cookie("b"),
            value: ValueMatch::Exact("3".into()),
        };
        assert!(all_hold(&[], &req));
        assert!(all_hold(&[a.clone(), b.clone()], &req));
        assert!(!all_hold(&[a, b, c], &req));
    }
}
