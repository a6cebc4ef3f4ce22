//! Entity tags for bulk evaluations.
//!
//! The tag is a hash of the response body itself: it changes exactly when what the client would
//! receive changes (new flags, another selector or context, a time-dependent rule flipping), and
//! needs no bookkeeping of configuration generations.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;

/// The strong entity tag of `body`, quoted as HTTP requires.
pub(crate) fn of_body(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    hasher.write(body);
    format!("\"{:016x}\"", hasher.finish())
}

/// Whether an `If-None-Match` header value matches `etag` (RFC 9110 weak comparison: a `W/`
/// prefix is ignored; `*` matches anything).
pub(crate) fn none_match_hits(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_listed_weak_and_wildcard_tags_only() {
        let tag = of_body(b"{}");
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert!(none_match_hits(&tag, &tag));
        assert!(none_match_hits(&format!("\"x\", W/{tag}"), &tag));
        assert!(none_match_hits("*", &tag));
        assert!(!none_match_hits("\"other\"", &tag));
        assert!(!none_match_hits("", &tag));
    }

    proptest! {
        /// Different bodies get different tags (a collision would serve stale flags).
        #[test]
        fn different_bodies_get_different_tags(a in ".{0,64}", b in ".{0,64}") {
            prop_assume!(a != b);
            prop_assert_ne!(of_body(a.as_bytes()), of_body(b.as_bytes()));
        }
    }
}
