//! The virtio-net header through the switch: ports of different header lengths exchange
//! frames converted (segmented, checksummed, header added or removed), hostile headers are
//! dropped and counted, lossless senders convert too.

use std::time::{Duration, Instant};

use netmap::abi::slot::F_MOREFRAG;
use netmap::checksum;
use netmap::NetmapPort;
use vale::fuzzing::TempDir;
use vale::vnet::{VnetHdr, F_NEEDS_CSUM, GSO_TCPV4};
use vale::{Port, PortOptions, ValeError};

mod common;

fn opts(dir: &TempDir, hdr: u32, slots: u32) -> PortOptions {
    PortOptions {
        vnet_hdr_len: hdr,
        ..common::small(dir, slots)
    }
}

const MSS: usize = 1448;

/// An Ethernet/IPv4/TCP frame to `dst` carrying `data`, its TCP checksum field holding the
/// pseudo-header sum (as a sender asking for NEEDS_CSUM leaves it).
fn tcp_frame(dst: [u8; 6], src: [u8; 6], data: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let tot = (40 + data.len()) as u16;
    let mut ip = [
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip[2..4].copy_from_slice(&tot.to_be_bytes());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH ACK
    let pseudo = checksum::sum(&ip[12..20], 0) + 6 + (20 + data.len()) as u64;
    tcp[16..18].copy_from_slice(&(!checksum::finish(pseudo)).to_be_bytes());
    f.extend_from_slice(&tcp);
    f.extend_from_slice(data);
    f
}

fn tso_hdr(mss: u16) -> VnetHdr {
    VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 54,
        gso_size: mss,
        csum_start: 34,
        csum_offset: 16,
    }
}

/// Queues `frame` in `p`'s TX ring over as many 2048-byte slots as it needs (MOREFRAG
/// chain). Returns false, queueing nothing, when the ring lacks room.
fn queue(p: &Port, frame: &[u8]) -> bool {
    let r = p.tx_ring(0);
    let n = r.num_slots();
    let pieces: Vec<&[u8]> = frame.chunks(2048).collect();
    if netmap::ring::space(r.head(), r.tail(), n) < pieces.len() as u32 {
        return false;
    }
    let mut head = r.head();
    for (i, piece) in pieces.iter().enumerate() {
        let s = r.slot(head);
        let o = p.layout().buf_offset(s.buf_idx()).unwrap();
        p.mem().write_bytes(o, piece);
        s.set_len(piece.len() as u16);
        s.set_flags(if i + 1 < pieces.len() { F_MOREFRAG } else { 0 });
        head = (head + 1) % n;
    }
    r.set_head(head);
    r.set_cur(head);
    true
}

/// Receives every frame pending (chains joined).
fn recv(p: &Port) -> Vec<Vec<u8>> {
    let r = p.rx_ring(0);
    let s = p.rxsync_ring(0).unwrap();
    let n = r.num_slots();
    let (mut out, mut cur) = (Vec::new(), Vec::new());
    let mut h = r.head();
    while h != s.hwtail {
        let sl = r.slot(h);
        let o = p.layout().buf_offset(sl.buf_idx()).unwrap();
        let mut b = vec![0u8; sl.len() as usize];
        p.mem().read_bytes(o, &mut b);
        cur.extend_from_slice(&b);
        if sl.flags() & F_MOREFRAG == 0 {
            out.push(std::mem::take(&mut cur));
        }
        h = (h + 1) % n;
    }
    r.set_head(h);
    r.set_cur(h);
    p.rxsync_ring(0).unwrap();
    out
}

fn with_hdr(h: &VnetHdr, len: usize, eth: &[u8]) -> Vec<u8> {
    let mut f = h.bytes(len)[..len].to_vec();
    f.extend_from_slice(eth);
    f
}

/// Checks a segment's IPv4 and TCP checksums; returns its sequence number and payload.
fn segment(f: &[u8]) -> (u32, Vec<u8>) {
    assert_eq!(checksum::checksum(&f[14..34]), 0, "IPv4 header checksum");
    assert_eq!(
        u16::from_be_bytes([f[16], f[17]]) as usize,
        f.len() - 14,
        "IPv4 length"
    );
    let pseudo = checksum::sum(&f[26..34], 0) + 6 + (f.len() - 34) as u64;
    assert_eq!(
        checksum::finish(checksum::sum(&f[34..], pseudo)),
        0,
        "TCP checksum"
    );
    let seq = u32::from_be_bytes(f[38..42].try_into().unwrap());
    (seq, f[54..].to_vec())
}

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

#[test]
fn a_tso_frame_is_segmented_for_a_port_without_header_and_passed_whole_to_one_with() {
    let d = TempDir::new("t-vnet-tso");
    let a = Port::open("valev:1", &opts(&d, 10, 1024)).unwrap();
    let b = Port::open("valev:2", &opts(&d, 0, 1024)).unwrap();
    let c = Port::open("valev:3", &opts(&d, 12, 1024)).unwrap();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let eth = tcp_frame([0xff; 6], mac(1), &data); // flooded to B and C
    assert!(queue(&a, &with_hdr(&tso_hdr(MSS as u16), 10, &eth)));
    a.txsync_ring(0).unwrap();

    let segs = recv(&b);
    assert_eq!(segs.len(), data.len().div_ceil(MSS));
    let mut joined = Vec::new();
    for (k, s) in segs.iter().enumerate() {
        let (seq, body) = segment(s);
        assert_eq!(seq, 1000 + (k * MSS) as u32);
        joined.extend_from_slice(&body);
    }
    assert_eq!(joined, data);
    assert_eq!(b.stats().rx_pkts, segs.len() as u64);

    let whole = recv(&c);
    assert_eq!(whole.len(), 1, "one GSO frame for a port with a header");
    assert_eq!(VnetHdr::parse(&whole[0]), tso_hdr(MSS as u16));
    assert_eq!(&whole[0][10..12], &[1, 0], "num_buffers");
    assert_eq!(&whole[0][12..], &eth[..]);
    assert_eq!(a.stats().tx_bad, 0);
}

#[test]
fn a_plain_frame_gets_a_zero_header_and_the_header_goes_the_other_way() {
    let d = TempDir::new("t-vnet-zero");
    let a = Port::open("valez:1", &opts(&d, 10, 256)).unwrap();
    let b = Port::open("valez:2", &opts(&d, 0, 256)).unwrap();
    let eth = tcp_frame(mac(1), mac(2), &[7; 100]);
    assert!(queue(&b, &eth));
    b.txsync_ring(0).unwrap();
    let got = recv(&a);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0][..10], &[0; 10]);
    assert_eq!(&got[0][10..], &eth[..]);
    // And back: a frame without offload loses its header only.
    assert!(queue(&a, &with_hdr(&VnetHdr::default(), 10, &eth)));
    a.txsync_ring(0).unwrap();
    assert_eq!(recv(&b), vec![eth]);
}

#[test]
fn hostile_headers_are_dropped_for_ports_without_header_and_counted() {
    let d = TempDir::new("t-vnet-bad");
    let a = Port::open("valeh:1", &opts(&d, 10, 256)).unwrap();
    let b = Port::open("valeh:2", &opts(&d, 0, 256)).unwrap();
    let c = Port::open("valeh:3", &opts(&d, 10, 256)).unwrap();
    let eth = tcp_frame([0xff; 6], mac(1), &[1; 3000]);
    let bad = [
        tso_hdr(0),
        tso_hdr(1),
        VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 9000,
            ..VnetHdr::default()
        },
        VnetHdr {
            gso_type: 0x33,
            ..VnetHdr::default()
        },
    ];
    for h in &bad {
        assert!(queue(&a, &with_hdr(h, 10, &eth)));
    }
    // A good one after them still goes through.
    assert!(queue(&a, &with_hdr(&tso_hdr(MSS as u16), 10, &eth)));
    a.txsync_ring(0).unwrap();
    assert_eq!(recv(&b).len(), 3000usize.div_ceil(MSS));
    assert_eq!(a.stats().tx_bad, bad.len() as u64);
    assert_eq!(
        recv(&c).len(),
        bad.len() + 1,
        "same header length: frames pass as they are, the receiver judges"
    );
}

#[test]
fn header_length_is_checked_and_a_change_reaches_senders() {
    let d = TempDir::new("t-vnet-set");
    match Port::open("valeq:1", &opts(&d, 11, 64)) {
        Err(ValeError::BadHdrLen(11)) => {}
        other => panic!("expected BadHdrLen, got {other:?}"),
    }
    let a = Port::open("valeq:1", &opts(&d, 0, 64)).unwrap();
    let b = Port::open("valeq:2", &opts(&d, 0, 64)).unwrap();
    assert!(a.set_vnet_hdr_len(7).is_err());
    assert!(!NetmapPort::set_vnet_hdr_len(&a, 7));
    assert_eq!(a.vnet_hdr_len(), 0);
    assert!(NetmapPort::set_vnet_hdr_len(&a, 12));
    assert_eq!(a.vnet_hdr_len(), 12);
    let eth = tcp_frame(mac(1), mac(2), &[3; 60]);
    assert!(queue(&b, &eth));
    b.txsync_ring(0).unwrap();
    let got = recv(&a);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].len(),
        eth.len() + 12,
        "B converts for A's new length"
    );
}

#[test]
fn a_lossless_sender_converts_and_loses_nothing_into_a_small_ring() {
    let d = TempDir::new("t-vnet-lossless");
    let a = Port::open(
        "valel:1",
        &PortOptions {
            lossless: true,
            ..opts(&d, 10, 256)
        },
    )
    .unwrap();
    let b = Port::open("valel:2", &opts(&d, 0, 32)).unwrap();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 13) as u8).collect();
    let frame = with_hdr(
        &tso_hdr(MSS as u16),
        10,
        &tcp_frame([0xff; 6], mac(1), &data),
    );
    let per = data.len().div_ceil(MSS); // 7 segments per TSO frame
    let total = 20;
    let (mut queued, mut got) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while got < total * per {
        assert!(Instant::now() < deadline, "stuck: {got} of {}", total * per);
        while queued < total && queue(&a, &frame) {
            queued += 1;
        }
        a.txsync_ring(0).unwrap();
        for s in recv(&b) {
            let (seq, body) = segment(&s);
            assert_eq!(seq, 1000 + ((got % per) * MSS) as u32);
            assert_eq!(
                &body[..],
                &data[(got % per) * MSS..((got % per + 1) * MSS).min(data.len())]
            );
            got += 1;
        }
    }
    assert_eq!(got, total * per);
    assert_eq!(b.stats().rx_drops, 0);
}
