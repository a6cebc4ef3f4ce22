//! The hash of a snapshot's key → flag table. Flag keys are short strings written by whoever
//! writes the flag files; clients only look keys up, they never add any. So a multiply-rotate
//! hash over 8-byte words (the kind compilers use for their symbol tables) is enough, and
//! several times cheaper per lookup than the default SipHash, whose strength guards tables
//! that adversaries fill.

use std::hash::{BuildHasherDefault, Hasher};

/// A multiplier with well-spread bits (from the golden ratio).
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Builds [`KeyHasher`]s.
pub(crate) type BuildKeyHasher = BuildHasherDefault<KeyHasher>;

/// Word-at-a-time multiply-rotate hasher for flag keys.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyHasher {
    hash: u64,
}

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buffer = [0; 8];
            buffer.copy_from_slice(word);
            self.add(u64::from_le_bytes(buffer));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let word = tail
                .iter()
                .rev()
                .fold(0_u64, |word, byte| (word << 8) | u64::from(*byte));
            self.add(word);
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn keys_differing_anywhere_hash_apart() {
        let keys = [
            "checkout-v2",
            "checkout-v3",
            "pricing-page",
            "pricing-pagf",
            "a",
            "b",
            "",
            "homepage-hero-banner-long-key",
            "homepage-hero-banner-long-kez",
        ];
        let hashes: HashSet<u64> = keys
            .iter()
            .map(|key| BuildKeyHasher::default().hash_one(key))
            .collect();
        assert_eq!(hashes.len(), keys.len());
    }
}
