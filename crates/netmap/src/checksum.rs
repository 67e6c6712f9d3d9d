//! The Internet checksum (RFC 1071), summed 64 bits at a time.
//!
//! The one's-complement sum does not depend on byte order (RFC 1071 §2(B)): the data is
//! summed as little-endian 64-bit words and the folded result byte-swapped once.

/// One's-complement sum of `data` (big-endian 16-bit words, odd byte padded) added to
/// `init`, not yet folded.
#[inline]
pub fn sum(data: &[u8], init: u64) -> u64 {
    // 64-bit words with the carry added back (end-around carry): one add per 8 bytes.
    let add = |acc: u64, w: u64| {
        let (s, carry) = acc.overflowing_add(w);
        s + carry as u64 // cannot overflow: after a carry, s <= 2^64 - 2
    };
    let mut acc = 0u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        acc = add(acc, u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
    }
    // The last 0..=7 bytes as one little-endian word, in 4-, 2- and 1-byte pieces.
    let rest = chunks.remainder();
    let (mut tail, mut at) = (0u64, 0usize);
    if rest.len() >= 4 {
        tail = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as u64;
        at = 4;
    }
    if rest.len() - at >= 2 {
        tail |= (u16::from_le_bytes([rest[at], rest[at + 1]]) as u64) << (8 * at);
        at += 2;
    }
    if rest.len() > at {
        tail |= (rest[at] as u64) << (8 * at);
    }
    acc = add(acc, tail);
    // Fold to 16 bits (in little-endian order), then swap into network order.
    init + (fold16(acc)).swap_bytes() as u64
}

/// Folds a 64-bit one's-complement sum to 16 bits, in a fixed number of steps.
#[inline]
fn fold16(x: u64) -> u16 {
    let x = (x & 0xffff_ffff) + (x >> 32); // < 2^33
    let x = (x & 0xffff_ffff) + (x >> 32); // <= 2^32
    let x = (x & 0xffff) + (x >> 16); // <= 0x1_ffff
    let x = (x & 0xffff) + (x >> 16); // <= 0x1_0000
    let x = (x & 0xffff) + (x >> 16); // <= 0xffff
    x as u16
}

/// Folds a sum to 16 bits and complements it.
#[inline]
pub fn finish(acc: u64) -> u16 {
    !fold16(acc)
}

/// The checksum of `data`.
#[inline]
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
        assert_eq!(checksum(&[0xff; 65535]), naive(&[0xff; 65535]));
        assert_eq!(finish(u64::MAX), finish(0xffff));
        assert_eq!(finish(0x1_0000_ffff), naive(&[0, 1, 0xff, 0xff, 0, 0]));
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
