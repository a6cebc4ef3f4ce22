//! MurmurHash3 x86_32: the hash flagd buckets with, so assignments agree with every flagd SDK.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// MurmurHash3 x86_32 of `data` with `seed` (little-endian blocks, as the reference implementation).
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    let mut hash = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let word = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        hash ^= mix_word(word);
        hash = hash
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let word = tail
            .iter()
            .rev()
            .fold(0_u32, |acc, byte| (acc << 8) | u32::from(*byte));
        hash ^= mix_word(word);
    }
    // The reference folds the length in as a 32-bit value; longer inputs wrap the same way.
    hash ^= data.len() as u32;
    finalize(hash)
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
