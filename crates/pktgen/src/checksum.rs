//! The Internet checksum (RFC 1071), summed 64 bits at a time.
//!
//! The one's-complement sum does not depend on byte order (RFC 1071 §2(B)): the data is
//! summed as little-endian 64-bit words and the folded result byte-swapped once.

/// One's-complement sum of `data` (big-endian 16-bit words, odd byte padded) added to
/// `init`, not yet folded.
pub fn sum(data: &[u8], init: u64) -> u64 {
    let mut acc: u128 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        acc += u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as u128;
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from_le_bytes(tail) as u128;
    // Fold to 16 bits (in little-endian order), then swap into network order.
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    init + (acc as u16).swap_bytes() as u64
}

/// Folds a sum to 16 bits and complements it.
pub fn finish(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (checksum 220d).
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    /// The plain definition: big-endian 16-bit words, odd byte padded.
    fn naive(data: &[u8]) -> u16 {
        let mut acc = 0u64;
        for c in data.chunks(2) {
            acc += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64;
        }
        finish(acc)
    }

    #[test]
    fn prop_matches_naive_definition() {
        let mut x = 0x1234_5678u64;
        for len in 0..300 {
            let d: Vec<u8> = (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 33) as u8
                })
                .collect();
            assert_eq!(checksum(&d), naive(&d), "len {len}");
            assert_eq!(finish(sum(&d, 0x1234)), finish(sum(&d, 0) + 0x1234));
        }
        assert_eq!(checksum(&[0xff; 1000]), naive(&[0xff; 1000]));
    }

    #[test]
    fn odd_length_and_verification() {
        let mut d = vec![
            0x45u8, 0, 0, 0x1c, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 10, 0, 0, 1, 10, 1, 0, 1,
        ];
        let c = checksum(&d);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&d), 0);
        assert_eq!(checksum(&[0xab]), !0xab00);
    }
}
