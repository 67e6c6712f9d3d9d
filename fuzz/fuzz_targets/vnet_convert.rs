//! Fuzzes the virtio-net header conversion (`vale::vnet::convert`) directly: an arbitrary
//! frame with an arbitrary header, between fuzzer-chosen header lengths. Besides never
//! panicking, a conversion must leave the output as it was on error, make at most `MAX_SEGS`
//! frames, and give every IPv4 segment or fragment it makes to a port without a header a
//! correct IP length and header checksum (and TCP/UDP segments a correct length and
//! transport checksum), since the receiver trusts those.
//!
//! Input: a byte choosing the source and destination header lengths (bits 0-1 and 2-3:
//! 0, 10, 12, 0), then the frame (header first).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netmap::checksum;
use vale::vnet::{self, Frames, VnetHdr, HDR_LENS};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let src = HDR_LENS[usize::from(sel & 3) % 3] as usize;
    let dst = HDR_LENS[usize::from(sel >> 2 & 3) % 3] as usize;
    // Something in front, as when a job converts several packets into one `Frames`.
    let mut out = Frames::default();
    vnet::convert(&[0u8; 64], 0, 10, &mut out).unwrap();
    let (bytes0, frames0) = (out.bytes.clone(), out.frames.clone());
    match vnet::convert(frame, src, dst, &mut out) {
        Err(_) => {
            assert_eq!(out.bytes, bytes0);
            assert_eq!(out.frames, frames0);
        }
        Ok(()) => {
            assert_eq!(out.bytes[..bytes0.len()], bytes0[..]);
            assert_eq!(out.frames[..1], frames0[..]);
            let made = out.frames.len() - 1;
            assert!((1..=vnet::MAX_SEGS).contains(&made), "{made} frames");
            let gso = if src != 0 && dst == 0 {
                VnetHdr::parse(frame).gso_type & !vnet::GSO_ECN
            } else {
                vnet::GSO_NONE
            };
            for i in 1..out.frames.len() {
                let f = out.get(i);
                assert!(f.len() >= dst);
                if gso != vnet::GSO_NONE {
                    check_segment(f, gso);
                }
            }
        }
    }
});

/// A segment (or fragment) made from a frame of GSO type `gso`: its IP length fields and
/// checksums (for UFO only the IP header's: the UDP header is the guest's, untouched).
fn check_segment(f: &[u8], gso: u8) {
    assert!(f.len() >= 14 + 20, "segment of {} bytes", f.len());
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    let be16 = |i: usize| u16::from_be_bytes([f[i], f[i + 1]]) as usize;
    let (l4, proto, addrs) = match ethertype {
        0x0800 => {
            let ihl = usize::from(f[14] & 0xf) * 4;
            assert_eq!(be16(16), f.len() - 14, "IPv4 total length");
            assert_eq!(
                checksum::checksum(&f[14..14 + ihl]),
                0,
                "IPv4 header checksum"
            );
            if gso == vnet::GSO_UDP {
                return;
            }
            (14 + ihl, f[23], &f[26..34])
        }
        0x86dd => {
            assert_eq!(be16(18), f.len() - 54, "IPv6 payload length");
            (54, f[20], &f[22..54])
        }
        t => panic!("segment with ethertype {t:#x}"),
    };
    let seg = &f[l4..];
    if proto == 17 {
        assert_eq!(be16(l4 + 4), seg.len(), "UDP length");
    }
    let pseudo = checksum::sum(addrs, 0) + u64::from(proto) + seg.len() as u64;
    assert_eq!(
        checksum::finish(checksum::sum(seg, pseudo)),
        0,
        "transport checksum (proto {proto})"
    );
}
