//! String equality shaped for what evaluation compares: short strings (country codes, plan
//! names, variant names). Comparing lengths first and short bytes inline avoids a library call
//! per comparison, which otherwise costs more than the comparison itself.

/// `a == b`.
#[inline(always)]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    bytes_eq(a.as_bytes(), b.as_bytes())
}

/// `a == b`. Up to 16 bytes are compared as at most two pairs of overlapping words.
#[inline(always)]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    match len {
        0 => true,
        1..=3 => a[0] == b[0] && a[len / 2] == b[len / 2] && a[len - 1] == b[len - 1],
        4..=8 => word4(a, 0) == word4(b, 0) && word4(a, len - 4) == word4(b, len - 4),
        9..=16 => word8(a, 0) == word8(b, 0) && word8(a, len - 8) == word8(b, len - 8),
        _ => a == b,
    }
}

#[inline(always)]
fn word4(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[inline(always)]
fn word8(bytes: &[u8], at: usize) -> u64 {
    u64::from(word4(bytes, at)) | (u64::from(word4(bytes, at + 4)) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn str_eq_is_equality(a in ".{0,24}", b in ".{0,24}") {
            prop_assert_eq!(str_eq(&a, &b), a == b);
            prop_assert!(str_eq(&a, &a.clone()));
        }

        /// Strings of one length differing in a single byte, wherever it is, are unequal.
        #[test]
        fn one_byte_apart_is_unequal(text in "[a-z]{1,20}", at in any::<prop::sample::Index>()) {
            let mut other = text.clone().into_bytes();
            let at = at.index(other.len());
            other[at] = b'A';
            let other = String::from_utf8(other).unwrap();
            prop_assert!(!str_eq(&text, &other));
        }
    }
}
