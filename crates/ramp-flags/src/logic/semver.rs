//! flagd's `sem_ver` operator: `[version, operator, target]`, `null` on any invalid input.
//!
//! Versions follow Semantic Versioning 2.0 with flagd's leniencies: one leading `v`/`V`,
//! partial versions (`1`, `1.2`, meaning `.0` for the rest, without pre-release or build),
//! JSON numbers (`1.2` reads as `"1.2"`). Build metadata never affects the order.

use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

/// Evaluates `sem_ver` on already-evaluated arguments.
pub(super) fn compare(
    version: Option<&Value>,
    operator: Option<&Value>,
    target: Option<&Value>,
) -> Value {
    let (Some(version_text), Some(Value::String(operator)), Some(target_text)) = (
        version.and_then(version_text),
        operator,
        target.and_then(version_text),
    ) else {
        return Value::Null;
    };
    let (Some(version), Some(target)) =
        (Version::parse(&version_text), Version::parse(&target_text))
    else {
        return Value::Null;
    };
    let order = version.cmp_precedence(&target);
    let result = match operator.as_str() {
        "=" => order == Ordering::Equal,
        "!=" => order != Ordering::Equal,
        "<" => order == Ordering::Less,
        "<=" => order != Ordering::Greater,
        ">" => order == Ordering::Greater,
        ">=" => order != Ordering::Less,
        "^" => version.major == target.major,
        "~" => version.major == target.major && version.minor == target.minor,
        _ => return Value::Null,
    };
    Value::Bool(result)
}

fn version_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(text) => Some(Cow::Borrowed(text)),
        Value::Number(number) if number.is_f64() => {
            number.as_f64().map(|f| Cow::Owned(f.to_string()))
        }
        Value::Number(number) => Some(Cow::Owned(number.to_string())),
        _ => None,
    }
}

/// A parsed version; numeric parts stay text so arbitrarily large numbers compare correctly.
#[derive(Debug)]
struct Version<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    pre_release: Vec<&'a str>,
}

impl<'a> Version<'a> {
    fn parse(text: &'a str) -> Option<Version<'a>> {
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let (core, build) = match text.split_once('+') {
            Some((core, build)) => (core, Some(build)),
            None => (text, None),
        };
        let (core, pre_release) = match core.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (core, None),
        };
        let mut numbers = core.split('.');
        let major = numbers.next().filter(|n| is_numeric_identifier(n))?;
        let minor = numbers.next();
        let patch = numbers.next();
        if numbers.next().is_some() {
            return None;
        }
        let is_full = patch.is_some();
        if !is_full && (pre_release.is_some() || build.is_some()) {
            return None;
        }
        let part = |n: Option<&'a str>| match n {
            None => Some("0"),
            Some(n) if is_numeric_identifier(n) => Some(n),
            Some(_) => None,
        };
        let pre_release: Vec<&str> = match pre_release {
            None => Vec::new(),
            Some(pre) => pre
                .split('.')
                .map(|id| is_pre_release_identifier(id).then_some(id))
                .collect::<Option<_>>()?,
        };
        if let Some(build) = build
            && !build.split('.').all(is_build_identifier)
        {
            return None;
        }
        Some(Version {
            major,
            minor: part(minor)?,
            patch: part(patch)?,
            pre_release,
        })
    }

    fn cmp_precedence(&self, other: &Version<'_>) -> Ordering {
        compare_numeric(self.major, other.major)
            .then_with(|| compare_numeric(self.minor, other.minor))
            .then_with(|| compare_numeric(self.patch, other.patch))
            .then_with(
                || match (self.pre_release.is_empty(), other.pre_release.is_empty()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    (false, false) => compare_pre_release(&self.pre_release, &other.pre_release),
                },
            )
    }
}

fn is_numeric_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
}

fn is_build_identifier(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_pre_release_identifier(text: &str) -> bool {
    let all_digits = text.bytes().all(|b| b.is_ascii_digit());
    is_build_identifier(text) && (!all_digits || is_numeric_identifier(text))
}

/// Orders canonical decimal strings (no leading zeros) without parsing them.
fn compare_numeric(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn compare_pre_release(a: &[&str], b: &[&str]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let order = match (numeric(x), numeric(y)) {
            (true, true) => compare_numeric(x, y),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}
