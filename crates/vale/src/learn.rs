//! The learning bridge's MAC table: a direct-mapped hash of 4096 atomic 64-bit entries in
//! the switch file, updated lock-free by every sender.
//!
//! An entry is `mac << 16 | gen8 << 8 | (port + 1)` (0 = empty); `gen8` is the low byte of
//! the port's generation so that an entry left by a closed port is not trusted for its
//! successor in the same table slot.

use std::sync::atomic::Ordering::Relaxed;

use netmap::SharedMem;

use crate::layout::{MAC_BUCKETS, MAC_OFS};

/// A MAC address as the low 48 bits of a u64 (first byte most significant).
pub fn mac_to_u64(mac: &[u8]) -> u64 {
    mac[..6].iter().fold(0u64, |acc, &b| acc << 8 | b as u64)
}

/// Whether a MAC (as u64) is multicast or broadcast.
pub fn is_multicast(mac: u64) -> bool {
    mac & (1 << 40) != 0
}

fn bucket(mac: u64) -> usize {
    let h = mac.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    MAC_OFS + 8 * (h >> (64 - 12)) as usize
}

const _: () = assert!(MAC_BUCKETS == 1 << 12);

/// Records that `mac` lives behind port `idx` (generation `gen`).
#[inline]
pub fn learn(sw: &SharedMem, mac: u64, idx: u32, gen: u32) {
    let b = bucket(mac);
    let v = mac << 16 | ((gen & 0xff) as u64) << 8 | (idx as u64 + 1);
    if sw.load_u64(b, Relaxed) != v {
        sw.store_u64(b, v, Relaxed);
    }
}

/// The port `(idx, gen8)` that `mac` was last seen on, if known.
#[inline]
pub fn lookup(sw: &SharedMem, mac: u64) -> Option<(u32, u32)> {
    let v = sw.load_u64(bucket(mac), Relaxed);
    if v >> 16 != mac {
        return None;
    }
    let idx = ((v & 0xff) as u32).checked_sub(1)?;
    Some((idx, ((v >> 8) & 0xff) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_helpers() {
        assert_eq!(mac_to_u64(&[0, 1, 2, 3, 4, 5]), 0x0001_0203_0405);
        assert!(is_multicast(mac_to_u64(&[0xff; 6])));
        assert!(is_multicast(mac_to_u64(&[0x01, 0, 0x5e, 0, 0, 1])));
        assert!(!is_multicast(mac_to_u64(&[0x02, 0, 0, 0, 0, 1])));
        for m in [0u64, 1, 0xffff_ffff_ffff, 0x0203_0405_0607] {
            let b = bucket(m);
            assert!(b >= MAC_OFS && b + 8 <= MAC_OFS + MAC_BUCKETS * 8);
        }
    }
}
