//! Request matching: header and cookie conditions used by rules and mirrors.
//!
//! Conditions are serializable (JSON shape, as the router agent API and `/routes` show them):
//! `{"header": "x-canary", "value": {"exact": "yes"}}`, `{"cookie": "beta", "value":
//! {"present": true}}`; the value is one of `{"present": true}`, `{"exact": S}`,
//! `{"prefix": S}` or `{"regex": PATTERN}` (the pattern as written, compiled on the way in).

use std::fmt;

use regex::bytes::Regex;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
///
/// Serialized as `{"header": NAME}` or `{"cookie": NAME}`; a header name read back is
/// lowercased, as [`Source::header`] does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// A request header; the name is stored lowercase.
    #[serde(deserialize_with = "lowercase")]
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

fn lowercase<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    String::deserialize(deserializer).map(|name| name.to_ascii_lowercase())
}

/// A regular expression that must match a whole value: the pattern as written, and its
/// compiled form anchored at both ends (`^(?:pattern)$`).
///
/// Two are equal when their patterns are; serialized as the pattern.
#[derive(Clone)]
pub struct FullMatch {
    pattern: String,
    regex: Regex,
}

impl FullMatch {
    /// Compiles `pattern` to match whole values.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        Ok(FullMatch {
            regex: Regex::new(&format!("^(?:{pattern})$"))?,
            pattern: pattern.to_owned(),
        })
    }

    /// The pattern as written (without the anchors added to it).
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The compiled, anchored expression.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    /// True when the whole of `value` matches.
    pub fn is_match(&self, value: &[u8]) -> bool {
        self.regex.is_match(value)
    }
}

impl fmt::Debug for FullMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FullMatch").field(&self.pattern).finish()
    }
}

impl PartialEq for FullMatch {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for FullMatch {}

impl Serialize for FullMatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.pattern)
    }
}

impl<'de> Deserialize<'de> for FullMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pattern = String::deserialize(deserializer)?;
        FullMatch::new(&pattern)
            .map_err(|e| D::Error::custom(format!("invalid regex {pattern:?}: {e}")))
    }
}

/// How a value must look for a condition to hold.
///
/// Serialized as a one-key object: `{"present": true}`, `{"exact": S}`, `{"prefix": S}` or
/// `{"regex": PATTERN}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueMatch {
    /// The source is present, whatever its value.
    Present,
    /// Byte-for-byte equal.
    Exact(String),
    /// Starts with the given bytes.
    Prefix(String),
    /// The whole value matches the regular expression (it is anchored at both ends).
    Regex(FullMatch),
}

impl ValueMatch {
    /// Compiles a full-match regular expression.
    pub fn regex(pattern: &str) -> Result<Self, regex::Error> {
        FullMatch::new(pattern).map(ValueMatch::Regex)
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

impl Serialize for ValueMatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            ValueMatch::Present => map.serialize_entry("present", &true)?,
            ValueMatch::Exact(v) => map.serialize_entry("exact", v)?,
            ValueMatch::Prefix(v) => map.serialize_entry("prefix", v)?,
            ValueMatch::Regex(re) => map.serialize_entry("regex", re)?,
        }
        map.end()
    }
}

/// What a serialized [`ValueMatch`] may hold; exactly one field must be set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueMatchRepr {
    present: Option<bool>,
    exact: Option<String>,
    prefix: Option<String>,
    regex: Option<FullMatch>,
}

impl<'de> Deserialize<'de> for ValueMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = ValueMatchRepr::deserialize(deserializer)?;
        match repr {
            ValueMatchRepr {
                present: Some(true),
                exact: None,
                prefix: None,
                regex: None,
            } => Ok(ValueMatch::Present),
            ValueMatchRepr {
                present: Some(false),
                ..
            } => Err(D::Error::custom(
                "\"present\" can only be true; to match any value use {\"present\": true}",
            )),
            ValueMatchRepr {
                present: None,
                exact: Some(v),
                prefix: None,
                regex: None,
            } => Ok(ValueMatch::Exact(v)),
            ValueMatchRepr {
                present: None,
                exact: None,
                prefix: Some(v),
                regex: None,
            } => Ok(ValueMatch::Prefix(v)),
            ValueMatchRepr {
                present: None,
                exact: None,
                prefix: None,
                regex: Some(re),
            } => Ok(ValueMatch::Regex(re)),
            _ => Err(D::Error::custom(
                "a value match needs exactly one of present, exact, prefix or regex",
            )),
        }
    }
}

/// One condition: a source and the shape its value must have.
///
/// Serialized as `{"header": NAME, "value": VALUE}` or `{"cookie": NAME, "value": VALUE}`,
/// `VALUE` as [`ValueMatch`] is.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Where the value comes from.
    pub source: Source,
    /// What it must look like.
    pub value: ValueMatch,
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        match &self.source {
            Source::Header(name) => map.serialize_entry("header", name)?,
            Source::Cookie(name) => map.serialize_entry("cookie", name)?,
        }
        map.serialize_entry("value", &self.value)?;
        map.end()
    }
}

/// What a serialized [`Condition`] may hold.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionRepr {
    header: Option<String>,
    cookie: Option<String>,
    value: ValueMatch,
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = ConditionRepr::deserialize(deserializer)?;
        let source = match (repr.header, repr.cookie) {
            (Some(header), None) => Source::header(&header),
            (None, Some(cookie)) => Source::Cookie(cookie),
            _ => {
                return Err(D::Error::custom(
                    "a condition needs exactly one of header or cookie",
                ));
            }
        };
        Ok(Condition {
            source,
            value: repr.value,
        })
    }
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
