//! Measurement providers: the I/O behind an analysis metric's `result`.
//!
//! Each provider runs one measurement and returns the JSON value that conditions see as
//! `result`, or an error message saying what went wrong; the caller records an error as an
//! Error measurement (counted against the metric's consecutive error limit).
//!
//! - [`prometheus`]: a PromQL instant query over Prometheus' HTTP API;
//! - [`web`]: an HTTP GET returning JSON, optionally narrowed by a JSON path;
//! - [`command`]: a program whose last line of output (or success) is the result.
//!
//! JSON has no NaN or infinities, so every provider maps non-finite numbers the same way
//! (see [`number`]): NaN becomes `null`, and ±infinity becomes ±[`f64::MAX`], which compares
//! with every finite threshold exactly as the infinity would.

mod command;
mod http;
mod json_path;
mod prometheus;
#[cfg(test)]
mod test_server;
mod url;
mod web;

pub use command::command;
pub use prometheus::prometheus;
pub use web::web;

use serde_json::Value;

/// Longest excerpt of an answer or of stderr quoted in an error message, in characters.
const EXCERPT_CHARS: usize = 200;

/// `value` as JSON: NaN is `null` (there is no value to compare), ±infinity is ±[`f64::MAX`]
/// (still above, or below, every finite threshold).
pub fn number(value: f64) -> Value {
    let finite = if value.is_nan() {
        return Value::Null;
    } else if value.is_infinite() {
        f64::MAX.copysign(value)
    } else {
        value
    };
    serde_json::Number::from_f64(finite).map_or(Value::Null, Value::Number)
}

/// The start of `bytes` as one line of text for an error message: lossy UTF-8, whitespace
/// runs collapsed to one space, cut at [`EXCERPT_CHARS`] characters with `…`.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut words = text.split_whitespace();
    let mut out = String::new();
    let mut chars = 0;
    for word in words.by_ref() {
        let sep = usize::from(!out.is_empty());
        let len = word.chars().count();
        if chars + sep + len > EXCERPT_CHARS {
            let room = EXCERPT_CHARS.saturating_sub(chars + sep);
            if sep == 1 && room > 0 {
                out.push(' ');
            }
            out.extend(word.chars().take(room));
            out.push('…');
            return out;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
        chars += sep + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn non_finite_numbers_have_json_stand_ins() {
        assert_eq!(number(f64::NAN), Value::Null);
        assert_eq!(number(f64::INFINITY), json!(f64::MAX));
        assert_eq!(number(f64::NEG_INFINITY), json!(-f64::MAX));
        assert_eq!(number(0.25), json!(0.25));
        assert_eq!(number(-3.0), json!(-3.0));
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b"  not\n\tjson  at all \r\n"), "not json at all");
        assert_eq!(excerpt(b""), "");
        let long = "word ".repeat(100);
        let cut = excerpt(long.as_bytes());
        assert!(cut.ends_with('…'), "{cut}");
        assert!(cut.chars().count() <= EXCERPT_CHARS + 1);
        let word = "x".repeat(500);
        assert_eq!(excerpt(word.as_bytes()).chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(excerpt(&[0xff, b'a']), "\u{fffd}a");
    }

    proptest! {
        #[test]
        fn finite_numbers_survive(value in proptest::num::f64::NORMAL | proptest::num::f64::ZERO) {
            prop_assert_eq!(number(value).as_f64(), Some(value));
        }

        #[test]
        fn excerpts_are_bounded(text in ".{0,400}") {
            let cut = excerpt(text.as_bytes());
            prop_assert!(cut.chars().count() <= EXCERPT_CHARS + 1);
            prop_assert!(!cut.contains('\n'));
        }
    }
}
