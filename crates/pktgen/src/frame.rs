//! The pkt-gen frame: Ethernet + IPv4 (DF, header checksum) + UDP (full checksum) + text.
//!
//! ```text
//!  0 dst mac | 6 src mac | 12 ethertype 0x0800
//! 14 IPv4: 45 00 totlen | id 0000 flags 4000 (DF) | ttl 64 proto 17 csum | src | dst
//! 34 UDP: sport | dport | len | csum
//! 42 payload: "ptvmm pkt-gen " repeated
//! ```

use std::net::Ipv4Addr;

use crate::checksum;

/// Ethernet + IPv4 + UDP header bytes.
pub const HEADERS: usize = 42;
/// Largest frame (bytes without CRC) pkt-gen builds.
pub const MAX_LEN: usize = 9000;
/// Text repeated in the payload.
pub const PAYLOAD: &[u8] = b"ptvmm pkt-gen ";
/// Broadcast MAC.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// Addresses of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            src_mac: [0x02, 0, 0, 0, 0, 1],
            dst_mac: BROADCAST,
            src_ip: Ipv4Addr::new(10, 0, 0, 1),
            dst_ip: Ipv4Addr::new(10, 1, 0, 1),
            src_port: 1234,
            dst_port: 1234,
        }
    }
}

/// Why a frame failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("Frame too short")]
    Short,
    #[error("Not IPv4")]
    NotIpv4,
    #[error("Bad IPv4 header")]
    BadIpHeader,
    #[error("Bad IPv4 header checksum")]
    BadIpChecksum,
    #[error("Not UDP")]
    NotUdp,
    #[error("Bad UDP length")]
    BadUdpLength,
    #[error("Bad UDP checksum")]
    BadUdpChecksum,
}

/// The UDP pseudo-header's sum (addresses, protocol, length), not yet folded.
#[inline]
fn pseudo_sum(src: &[u8], dst: &[u8], udp_len: u16) -> u64 {
    let words = |a: &[u8]| {
        u16::from_be_bytes([a[0], a[1]]) as u64 + u16::from_be_bytes([a[2], a[3]]) as u64
    };
    words(src) + words(dst) + 17 + udp_len as u64
}

/// Builds a frame of `len` bytes (`HEADERS..=MAX_LEN`) into a new vector.
pub fn build(ep: &Endpoints, len: usize) -> Vec<u8> {
    assert!(
        (HEADERS..=MAX_LEN).contains(&len),
        "frame length {len} out of range"
    );
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&ep.dst_mac);
    f[6..12].copy_from_slice(&ep.src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    for (i, b) in f[HEADERS..].iter_mut().enumerate() {
        *b = PAYLOAD[i % PAYLOAD.len()];
    }
    fill_ip_udp(&mut f, ep);
    f
}

/// (Re)writes the IPv4 and UDP headers and checksums of `f` for `ep`.
pub fn fill_ip_udp(f: &mut [u8], ep: &Endpoints) {
    let len = f.len();
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&[0, 0]);
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[10..12].copy_from_slice(&[0, 0]);
    ip[12..16].copy_from_slice(&ep.src_ip.octets());
    ip[16..20].copy_from_slice(&ep.dst_ip.octets());
    let c = checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let udp_len = (len - 34) as u16;
    f[34..36].copy_from_slice(&ep.src_port.to_be_bytes());
    f[36..38].copy_from_slice(&ep.dst_port.to_be_bytes());
    f[38..40].copy_from_slice(&udp_len.to_be_bytes());
    f[40..42].copy_from_slice(&[0, 0]);
    let s = pseudo_sum(&ep.src_ip.octets(), &ep.dst_ip.octets(), udp_len);
    let mut c = checksum::finish(checksum::sum(&f[34..], s));
    if c == 0 {
        c = 0xffff;
    }
    f[40..42].copy_from_slice(&c.to_be_bytes());
}

/// Checks that `f` is a well-formed IPv4/UDP frame with valid checksums.
pub fn verify(f: &[u8]) -> Result<(), FrameError> {
    if f.len() < HEADERS {
        return Err(FrameError::Short);
    }
    if f[12..14] != [0x08, 0x00] {
        return Err(FrameError::NotIpv4);
    }
    let ip = &f[14..34];
    let tot = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if ip[0] != 0x45 || tot < 28 || tot > f.len() - 14 {
        return Err(FrameError::BadIpHeader);
    }
    if checksum::checksum(ip) != 0 {
        return Err(FrameError::BadIpChecksum);
    }
    if ip[9] != 17 {
        return Err(FrameError::NotUdp);
    }
    let udp_len = u16::from_be_bytes([f[38], f[39]]) as usize;
    if udp_len != tot - 20 {
        return Err(FrameError::BadUdpLength);
    }
    if f[40..42] != [0, 0] {
        let s = pseudo_sum(&ip[12..16], &ip[16..20], udp_len as u16);
        if checksum::finish(checksum::sum(&f[34..34 + udp_len], s)) != 0 {
            return Err(FrameError::BadUdpChecksum);
        }
    }
    Ok(())
}

/// Turns a received frame into its reply in place: swaps MACs, IPs and UDP ports (the
/// checksums stay valid, as the sums are unchanged by the swaps).
pub fn make_reply(f: &mut [u8]) {
    if f.len() < HEADERS {
        return;
    }
    for i in 0..6 {
        f.swap(i, 6 + i);
    }
    for i in 0..4 {
        f.swap(26 + i, 30 + i);
    }
    for i in 0..2 {
        f.swap(34 + i, 36 + i);
    }
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("invalid MAC address {s:?}"));
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(format!("invalid MAC address {s:?}"));
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| format!("invalid MAC address {s:?}"))?;
    }
    Ok(m)
}

/// Parses `IP[:PORT]`.
pub fn parse_ip_port(s: &str) -> Result<(Ipv4Addr, Option<u16>), String> {
    let (ip, port) = match s.split_once(':') {
        Some((ip, p)) => (
            ip,
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("invalid port in {s:?}"))?,
            ),
        ),
        None => (s, None),
    };
    let ip = ip
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("invalid IPv4 address {s:?}"))?;
    Ok((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_verify() {
        for len in [42, 43, 60, 61, 1514, 2048] {
            let f = build(&Endpoints::default(), len);
            assert_eq!(f.len(), len);
            assert_eq!(verify(&f), Ok(()), "len {len}");
            assert_eq!(&f[0..6], &BROADCAST);
            assert_eq!(f[20] & 0x40, 0x40, "DF set");
            assert_eq!(u16::from_be_bytes([f[34], f[35]]), 1234);
            assert_eq!(u16::from_be_bytes([f[36], f[37]]), 1234);
        }
    }

    #[test]
    fn known_header_checksum() {
        // 60-byte frame 10.0.0.1 -> 10.1.0.1: total length 46, DF, ttl 64, UDP.
        let f = build(&Endpoints::default(), 60);
        let expect = checksum::checksum(&[
            0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 1, 0, 1,
        ]);
        assert_eq!(u16::from_be_bytes([f[24], f[25]]), expect);
        assert_eq!(expect, 0x26bd);
    }

    #[test]
    fn corruption_is_detected() {
        let f = build(&Endpoints::default(), 60);
        let mut g = f.clone();
        g[50] ^= 1;
        assert_eq!(verify(&g), Err(FrameError::BadUdpChecksum));
        let mut g = f.clone();
        g[22] ^= 1;
        assert_eq!(verify(&g), Err(FrameError::BadIpChecksum));
        let mut g = f.clone();
        g[12] = 0x86;
        assert_eq!(verify(&g), Err(FrameError::NotIpv4));
        assert_eq!(verify(&f[..30]), Err(FrameError::Short));
    }

    #[test]
    fn replies_verify() {
        let ep = Endpoints {
            src_mac: [2, 0, 0, 0, 0, 7],
            dst_mac: [2, 0, 0, 0, 0, 9],
            ..Default::default()
        };
        let mut f = build(&ep, 100);
        make_reply(&mut f);
        assert_eq!(verify(&f), Ok(()));
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 7]);
        assert_eq!(&f[26..30], &[10, 1, 0, 1]);
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_mac("02:00:00:00:00:0a").unwrap(), [2, 0, 0, 0, 0, 10]);
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("02:00:00:00:00:zz").is_err());
        assert_eq!(
            parse_ip_port("10.0.0.2:99").unwrap(),
            (Ipv4Addr::new(10, 0, 0, 2), Some(99))
        );
        assert_eq!(parse_ip_port("10.0.0.2").unwrap().1, None);
        assert!(parse_ip_port("10.0.0").is_err());
    }
}
