//! Tests of the virtio-net header conversion: every segment is checked by an independent
//! reading of its headers and checksums, and hostile headers are dropped, never a panic.

use super::*;

const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// An Ethernet + IPv4/IPv6 + TCP/UDP frame around `data`, with correct lengths and an IPv4
/// header checksum; the transport checksum field holds `l4_csum`.
fn packet(v6: bool, proto: u8, data: &[u8], l4_csum: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    let l4_len = if proto == PROTO_TCP { 20 } else { 8 };
    let l4_bytes = l4_len + data.len();
    if v6 {
        f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(l4_bytes as u16).to_be_bytes());
        f.extend_from_slice(&[proto, 64]);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    } else {
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let tot = (20 + l4_bytes) as u16;
        let mut ip = [
            0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&tot.to_be_bytes());
        let c = checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
    }
    if proto == PROTO_TCP {
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&5001u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&5002u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0xffff_f000u32.to_be_bytes()); // wraps during the stream
        tcp[12] = 5 << 4;
        tcp[13] = TCP_FIN | TCP_PSH | TCP_CWR | 0x10;
        tcp[16..18].copy_from_slice(&l4_csum.to_be_bytes());
        f.extend_from_slice(&tcp);
    } else {
        let mut udp = [0u8; 8];
        udp[0..2].copy_from_slice(&5001u16.to_be_bytes());
        udp[2..4].copy_from_slice(&5002u16.to_be_bytes());
        udp[4..6].copy_from_slice(&(l4_bytes as u16).to_be_bytes());
        udp[6..8].copy_from_slice(&l4_csum.to_be_bytes());
        f.extend_from_slice(&udp);
    }
    f.extend_from_slice(data);
    f
}

fn with_hdr(h: VnetHdr, len: usize, eth: &[u8]) -> Vec<u8> {
    let mut f = h.bytes(len)[..len].to_vec();
    f.extend_from_slice(eth);
    f
}

/// The folded pseudo-header sum a sender leaves in the checksum field for NEEDS_CSUM.
fn pseudo(eth: &[u8]) -> u16 {
    let (addrs, proto, l4) = if be16(eth, 12) == ETHERTYPE_IPV6 {
        (&eth[22..54], eth[20], 54)
    } else {
        (&eth[26..34], eth[23], 34)
    };
    let s = checksum::sum(addrs, 0) + proto as u64 + (eth.len() - l4) as u64;
    !checksum::finish(s)
}

/// Checks one segment independently: IPv4 header checksum, IP lengths, transport checksum.
/// Returns (IP payload offset, IPv4 id or 0).
fn check_segment(seg: &[u8]) -> (usize, u16) {
    let v6 = be16(seg, 12) == ETHERTYPE_IPV6;
    let l4 = if v6 { 54 } else { 34 };
    if v6 {
        assert_eq!(
            be16(seg, 18) as usize,
            seg.len() - l4,
            "IPv6 payload length"
        );
    } else {
        assert_eq!(checksum::checksum(&seg[14..34]), 0, "IPv4 header checksum");
        assert_eq!(be16(seg, 16) as usize, seg.len() - 14, "IPv4 total length");
    }
    let proto = if v6 { seg[20] } else { seg[23] };
    let frag = !v6 && be16(seg, 20) & 0x3fff != 0;
    if !frag {
        let addrs = if v6 { &seg[22..54] } else { &seg[26..34] };
        let s = checksum::sum(addrs, 0) + proto as u64 + (seg.len() - l4) as u64;
        assert_eq!(
            checksum::finish(checksum::sum(&seg[l4..], s)),
            0,
            "transport checksum"
        );
        if proto == PROTO_UDP {
            assert_eq!(be16(seg, l4 + 4) as usize, seg.len() - l4, "UDP length");
        }
    }
    (l4, if v6 { 0 } else { be16(seg, 18) })
}

#[test]
fn a_frame_without_header_gets_a_zero_one() {
    let eth = packet(false, PROTO_UDP, &payload(100), 0);
    let mut out = Frames::default();
    convert(&eth, 0, 10, &mut out).unwrap();
    convert(&eth, 0, 12, &mut out).unwrap();
    assert_eq!(out.frames.len(), 2);
    assert_eq!(&out.get(0)[..10], &[0; 10]);
    assert_eq!(&out.get(0)[10..], &eth[..]);
    assert_eq!(&out.get(1)[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(&out.get(1)[12..], &eth[..]);
}

#[test]
fn ten_and_twelve_byte_headers_convert_both_ways() {
    let h = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 54,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
    };
    let eth = packet(false, PROTO_TCP, &payload(3000), 0);
    let mut out = Frames::default();
    convert(&with_hdr(h, 10, &eth), 10, 12, &mut out).unwrap();
    let twelve = out.get(0).to_vec();
    assert_eq!(VnetHdr::parse(&twelve), h);
    assert_eq!(&twelve[10..12], &[1, 0], "num_buffers");
    assert_eq!(
        &twelve[12..],
        &eth[..],
        "a GSO frame passes whole to a port with a header"
    );
    out.clear();
    convert(&twelve, 12, 10, &mut out).unwrap();
    assert_eq!(out.get(0), &with_hdr(h, 10, &eth)[..]);
}

#[test]
fn needs_csum_is_completed_for_a_port_without_header() {
    for (v6, proto, field) in [
        (false, PROTO_UDP, 6),
        (false, PROTO_TCP, 16),
        (true, PROTO_UDP, 6),
        (true, PROTO_TCP, 16),
    ] {
        let mut eth = packet(v6, proto, &payload(777), 0);
        let l4 = if v6 { 54 } else { 34 };
        let p = pseudo(&eth);
        eth[l4 + field..l4 + field + 2].copy_from_slice(&p.to_be_bytes());
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: l4 as u16,
            csum_offset: field as u16,
            ..VnetHdr::default()
        };
        let mut out = Frames::default();
        convert(&with_hdr(h, 12, &eth), 12, 0, &mut out).unwrap();
        assert_eq!(out.frames.len(), 1);
        let f = out.get(0);
        assert_eq!(f.len(), eth.len());
        check_segment(f);
        assert_eq!(&f[l4 + field + 2..], &eth[l4 + field + 2..]);
    }
}

/// Segments a stream of `n` payload bytes with `mss` and checks every segment.
fn tso(v6: bool, n: usize, mss: u16) {
    let data = payload(n);
    let eth = packet(v6, PROTO_TCP, &data, 0);
    let h = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
        hdr_len: if v6 { 74 } else { 54 },
        gso_size: mss,
        csum_start: if v6 { 54 } else { 34 },
        csum_offset: 16,
    };
    let mut out = Frames::default();
    convert(&with_hdr(h, 10, &eth), 10, 0, &mut out).unwrap();
    let want = n.div_ceil(mss as usize).max(1);
    assert_eq!(out.frames.len(), want, "{n} bytes / mss {mss}");
    let mut joined = Vec::new();
    for k in 0..want {
        let seg = out.get(k);
        let (l4, id) = check_segment(seg);
        let body = &seg[l4 + 20..];
        assert!(body.len() <= mss as usize);
        let seq = u32::from_be_bytes(seg[l4 + 4..l4 + 8].try_into().unwrap());
        assert_eq!(seq, 0xffff_f000u32.wrapping_add((k * mss as usize) as u32));
        if !v6 {
            assert_eq!(id, 0x1234u16.wrapping_add(k as u16));
        }
        let flags = seg[l4 + 13];
        let last = k + 1 == want;
        assert_eq!(
            flags & (TCP_FIN | TCP_PSH) != 0,
            last,
            "FIN/PSH on the last only"
        );
        assert_eq!(flags & TCP_CWR != 0, k == 0, "CWR on the first only");
        assert_eq!(&seg[..12], &eth[..12], "MACs");
        joined.extend_from_slice(body);
    }
    assert_eq!(joined, data, "the segments carry the stream in order");
}

#[test]
fn tso_segments_ipv4_and_ipv6_with_every_field_right() {
    for (n, mss) in [
        (10_000, 1448),
        (65_000, 1448),
        (1448, 1448),
        (1449, 1448),
        (1, 536),
    ] {
        tso(false, n, mss);
        tso(true, n, mss);
    }
    tso(false, 0, 1448); // a bare ACK asked to be segmented: one segment
}

#[test]
fn uso_makes_one_datagram_per_segment() {
    for v6 in [false, true] {
        let data = payload(5000);
        let eth = packet(v6, PROTO_UDP, &data, 0);
        let h = VnetHdr {
            gso_type: GSO_UDP_L4,
            gso_size: 1400,
            ..VnetHdr::default()
        };
        let mut out = Frames::default();
        convert(&with_hdr(h, 10, &eth), 10, 0, &mut out).unwrap();
        assert_eq!(out.frames.len(), 4);
        let mut joined = Vec::new();
        for k in 0..4 {
            let seg = out.get(k);
            let (l4, _) = check_segment(seg);
            joined.extend_from_slice(&seg[l4 + 8..]);
        }
        assert_eq!(joined, data);
    }
}

/// Found by the vnet_convert fuzz target: a USO frame without payload became zero frames,
/// so `convert` said Ok and the switch consumed the packet without delivering or counting it.
#[test]
fn uso_without_payload_is_one_datagram() {
    for v6 in [false, true] {
        for gso_size in [0, 64] {
            let eth = packet(v6, PROTO_UDP, &[], 0);
            let h = VnetHdr {
                gso_type: GSO_UDP_L4,
                gso_size,
                ..VnetHdr::default()
            };
            let mut out = Frames::default();
            convert(&with_hdr(h, 10, &eth), 10, 0, &mut out).unwrap();
            assert_eq!(out.frames.len(), 1);
            let seg = out.get(0);
            assert_eq!(seg.len(), eth.len());
            check_segment(seg);
        }
    }
}

#[test]
fn ufo_fragments_reassemble_into_the_checksummed_datagram() {
    let data = payload(4000);
    let mut eth = packet(false, PROTO_UDP, &data, 0);
    let p = pseudo(&eth);
    eth[40..42].copy_from_slice(&p.to_be_bytes());
    let h = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_UDP,
        gso_size: 1477, // rounded down to 1472
        csum_start: 34,
        csum_offset: 6,
        ..VnetHdr::default()
    };
    let mut out = Frames::default();
    convert(&with_hdr(h, 10, &eth), 10, 0, &mut out).unwrap();
    assert_eq!(out.frames.len(), 3); // 4008 bytes of UDP in 1472-byte pieces
    let mut datagram = Vec::new();
    for k in 0..3 {
        let seg = out.get(k);
        check_segment(seg);
        let frag = be16(seg, 20);
        assert_eq!(
            (frag & 0x1fff) as usize * 8,
            datagram.len(),
            "fragment offset"
        );
        assert_eq!(frag & 0x2000 != 0, k < 2, "more fragments");
        assert_eq!(be16(seg, 18), 0x1234, "one id for all fragments");
        datagram.extend_from_slice(&seg[34..]);
    }
    let mut whole = eth[..34].to_vec();
    whole.extend_from_slice(&datagram);
    let tot = (whole.len() - 14) as u16;
    whole[16..18].copy_from_slice(&tot.to_be_bytes());
    whole[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&whole[14..34]);
    whole[24..26].copy_from_slice(&c.to_be_bytes());
    check_segment(&whole); // the reassembled datagram's UDP checksum is right
    assert_eq!(&whole[42..], &data[..]);
}

/// Found by the vnet_convert fuzz target: a UFO frame whose NEEDS_CSUM checksum started in
/// its own Ethernet or IP header had the sum written there after the headers were parsed, and
/// came out as fragments with a garbage ethertype (or IHL, protocol) under a freshly valid
/// IP checksum. Such a checksum request is refused, as one past the frame is.
#[test]
fn ufo_checksum_into_its_own_headers_is_refused() {
    let eth = packet(false, PROTO_UDP, &payload(3000), 0);
    for (start, offset) in [(0, 12), (14, 0), (14, 10), (20, 6), (33, 0)] {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_UDP,
            gso_size: 1400,
            csum_start: start,
            csum_offset: offset,
            ..VnetHdr::default()
        };
        let mut out = Frames::default();
        let r = convert(&with_hdr(h, 12, &eth), 12, 0, &mut out);
        assert_eq!(r, Err(BadFrame::CsumOutside), "csum_start {start}");
        assert!(out.frames.is_empty());
    }
}

#[test]
fn hostile_headers_are_refused_and_leave_the_output_as_it_was() {
    let eth = packet(false, PROTO_TCP, &payload(5000), 0);
    let base = VnetHdr {
        gso_type: GSO_TCPV4,
        gso_size: 1448,
        ..VnetHdr::default()
    };
    let cases: Vec<(VnetHdr, Vec<u8>, BadFrame)> = vec![
        (
            VnetHdr {
                gso_size: 0,
                ..base
            },
            eth.clone(),
            BadFrame::ZeroGsoSize,
        ),
        (
            VnetHdr {
                gso_size: 1,
                ..base
            },
            eth.clone(),
            BadFrame::TooManySegments,
        ),
        (
            VnetHdr {
                gso_type: GSO_TCPV6,
                ..base
            },
            eth.clone(),
            BadFrame::Headers,
        ),
        (
            VnetHdr {
                gso_type: 0x42,
                ..base
            },
            eth.clone(),
            BadFrame::UnknownGso(0x42),
        ),
        (
            VnetHdr {
                flags: F_NEEDS_CSUM,
                csum_start: 60_000,
                csum_offset: 16,
                ..VnetHdr::default()
            },
            eth.clone(),
            BadFrame::CsumOutside,
        ),
        (
            VnetHdr {
                flags: F_NEEDS_CSUM,
                csum_start: (eth.len() - 1) as u16,
                csum_offset: 0,
                ..VnetHdr::default()
            },
            eth.clone(),
            BadFrame::CsumOutside,
        ),
        (base, eth[..40].to_vec(), BadFrame::Headers), // TCP header cut short
        (
            base,
            packet(false, PROTO_UDP, &payload(100), 0),
            BadFrame::Headers,
        ),
    ];
    for (h, frame, want) in cases {
        let mut out = Frames::default();
        convert(&eth, 0, 12, &mut out).unwrap();
        let before = (out.bytes.clone(), out.frames.clone());
        assert_eq!(
            convert(&with_hdr(h, 10, &frame), 10, 0, &mut out),
            Err(want),
            "{h:?}"
        );
        assert_eq!((out.bytes, out.frames), before, "{h:?}");
    }
    let mut out = Frames::default();
    assert_eq!(convert(&[0; 5], 10, 0, &mut out), Err(BadFrame::Short));
}

#[test]
fn pseudo_random_frames_and_headers_never_panic() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let good = [
        packet(false, PROTO_TCP, &payload(3000), 0),
        packet(true, PROTO_TCP, &payload(3000), 0),
        packet(false, PROTO_UDP, &payload(3000), 0),
        packet(true, PROTO_UDP, &payload(300), 0),
    ];
    let mut out = Frames::default();
    for _ in 0..20_000 {
        let r = rnd();
        let mut f = good[(r % 4) as usize].clone();
        // Mutate a few bytes of the frame, maybe cut it, then put a random header in front.
        for _ in 0..(r >> 8) % 4 {
            let i = (rnd() as usize) % f.len();
            f[i] = rnd() as u8;
        }
        if r & 0x10000 != 0 {
            f.truncate((rnd() as usize) % (f.len() + 1));
        }
        let h = VnetHdr {
            flags: rnd() as u8 & 3,
            gso_type: [0, 1, 3, 4, 5, 0x81, rnd() as u8][(rnd() % 7) as usize],
            hdr_len: rnd() as u16,
            gso_size: [0, 1, 8, 536, 1448, rnd() as u16][(rnd() % 6) as usize],
            csum_start: [34, 54, rnd() as u16][(rnd() % 3) as usize],
            csum_offset: [6, 16, rnd() as u16][(rnd() % 3) as usize],
        };
        let (sl, dl) = [(10, 0), (12, 0), (10, 12), (12, 10), (0, 10)][(rnd() % 5) as usize];
        out.clear();
        if convert(&with_hdr(h, sl, &f), sl, dl, &mut out).is_ok() {
            assert!(!out.frames.is_empty() && out.frames.len() <= MAX_SEGS);
        }
    }
}
