//! MurmurHash3 x86_32: the hash flagd buckets with, so assignments agree with every flagd SDK.
//!
//! The hasher is streaming, so a key made of several pieces (`flagKey` then `targetingKey`) is
//! hashed without first joining the pieces into a new string.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// MurmurHash3 x86_32 of `data` with `seed` (little-endian blocks, as the reference implementation).
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    let mut hasher = Murmur3::new(seed);
    hasher.write(data);
    hasher.finish()
}

/// MurmurHash3 x86_32 of the concatenation of `pieces`, without concatenating them.
pub(super) fn murmur3_x86_32_of_pieces(pieces: &[&[u8]], seed: u32) -> u32 {
    let mut hasher = Murmur3::new(seed);
    for piece in pieces {
        hasher.write(piece);
    }
    hasher.finish()
}

/// Hashing state: whole 4-byte blocks are mixed in as they complete; up to three bytes wait in
/// `pending` (little-endian, as a block reads them) for the next piece or the tail step.
#[derive(Debug, Clone, Copy)]
struct Murmur3 {
    hash: u32,
    pending: u32,
    pending_len: u32,
    total_len: usize,
}

impl Murmur3 {
    fn new(seed: u32) -> Murmur3 {
        Murmur3 {
            hash: seed,
            pending: 0,
            pending_len: 0,
            total_len: 0,
        }
    }

    fn write(&mut self, data: &[u8]) {
        self.total_len += data.len();
        let mut rest = data;
        while self.pending_len > 0 {
            let Some((byte, after)) = rest.split_first() else {
                return;
            };
            self.push(*byte);
            rest = after;
        }
        let mut blocks = rest.chunks_exact(4);
        for block in &mut blocks {
            self.mix_block(u32::from_le_bytes([block[0], block[1], block[2], block[3]]));
        }
        for byte in blocks.remainder() {
            self.push(*byte);
        }
    }

    /// Adds one byte to the pending block, mixing it in when it completes.
    fn push(&mut self, byte: u8) {
        self.pending |= u32::from(byte) << (8 * self.pending_len);
        self.pending_len += 1;
        if self.pending_len == 4 {
            self.mix_block(self.pending);
            self.pending = 0;
            self.pending_len = 0;
        }
    }

    fn mix_block(&mut self, word: u32) {
        self.hash ^= mix_word(word);
        self.hash = self
            .hash
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }

    fn finish(mut self) -> u32 {
        if self.pending_len > 0 {
            self.hash ^= mix_word(self.pending);
        }
        // The reference folds the length in as a 32-bit value; longer inputs wrap the same way.
        self.hash ^= self.total_len as u32;
        finalize(self.hash)
    }
}

fn mix_word(word: u32) -> u32 {
    word.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

fn finalize(mut hash: u32) -> u32 {
    hash ^= hash >> 16;
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^ (hash >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_reference_vectors() {
        // Published MurmurHash3 x86_32 test vectors (Appleby's SMHasher), covering every tail
        // length and the seed.
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"", 0xffff_ffff), 0x81f1_6f39);
        assert_eq!(murmur3_x86_32(b"test", 0), 0xba6b_d213);
        assert_eq!(murmur3_x86_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_x86_32(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(
            murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
        assert_eq!(murmur3_x86_32(&[0x21, 0x43, 0x65, 0x87], 0), 0xf55b_516b);
        assert_eq!(murmur3_x86_32(&[0x21, 0x43, 0x65], 0), 0x7e4a_8634);
        assert_eq!(murmur3_x86_32(&[0x21, 0x43], 0), 0xa0f7_b07a);
        assert_eq!(murmur3_x86_32(&[0x21], 0), 0x7266_1cf4);
        assert_eq!(murmur3_x86_32(&[0, 0, 0, 0], 0), 0x2362_f9de);
    }

    proptest! {
        /// Hashing pieces one after another equals hashing their concatenation, wherever the
        /// piece boundaries fall relative to the 4-byte blocks.
        #[test]
        fn pieces_hash_like_their_concatenation(
            pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..11), 0..6),
            seed in any::<u32>(),
        ) {
            let joined: Vec<u8> = pieces.concat();
            let slices: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(murmur3_x86_32_of_pieces(&slices, seed), murmur3_x86_32(&joined, seed));
        }
    }
}
