//! Helpers shared by the switch's in-process tests: port options, frames sent and received
//! on ring 0, the files in a test's directory.
#![allow(dead_code)] // each test file uses its own subset

use netmap::RegionConfig;
use vale::fuzzing::TempDir;
use vale::{Port, PortOptions};

/// Default ports (1+1 rings of 1024 slots) in `dir`.
pub fn opts(dir: &TempDir) -> PortOptions {
    PortOptions {
        config: RegionConfig::default(),
        shm_dir: Some(dir.0.clone()),
        lossless: false,
        vnet_hdr_len: 0,
    }
}

/// Ports of 1+1 rings of `slots` slots in `dir`.
pub fn small(dir: &TempDir, slots: u32) -> PortOptions {
    PortOptions {
        config: RegionConfig {
            tx_rings: 1,
            rx_rings: 1,
            tx_slots: slots,
            rx_slots: slots,
            buf_size: 2048,
        },
        shm_dir: Some(dir.0.clone()),
        lossless: false,
        vnet_hdr_len: 0,
    }
}

/// Writes a 60-byte IPv4-typed frame from `src` to `dst` carrying `tag` in bytes 14..18 into
/// TX slot `head` of ring 0 of `p` (length set, flags cleared), without publishing it.
pub fn put_tagged(p: &Port, head: u32, dst: [u8; 6], src: [u8; 6], tag: u32) {
    let s = p.tx_ring(0).slot(head);
    let o = p.layout().buf_offset(s.buf_idx()).unwrap();
    let mut f = [0u8; 60];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12] = 0x08;
    f[14..18].copy_from_slice(&tag.to_le_bytes());
    p.mem().write_bytes(o, &f);
    s.set_len_flags(60, 0);
}

/// A locally administered MAC ending in `n`.
pub fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}
/// The broadcast address.
pub const BCAST: [u8; 6] = [0xff; 6];

/// Queues `count` frames of `len` bytes from `src` to `dst` and txsyncs.
pub fn send(p: &Port, dst: [u8; 6], src: [u8; 6], len: u16, count: u32) {
    let r = p.tx_ring(0);
    let n = r.num_slots();
    let mut head = r.head();
    for k in 0..count {
        let s = r.slot(head);
        let o = p.layout().buf_offset(s.buf_idx()).unwrap();
        let mut f = vec![0u8; len as usize];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12] = 0x08;
        if len as usize > 16 {
            f[14..18].copy_from_slice(&k.to_le_bytes());
        }
        p.mem().write_bytes(o, &f);
        s.set_len(len);
        s.set_flags(0);
        head = (head + 1) % n;
    }
    r.set_head(head);
    r.set_cur(head);
    p.txsync_ring(0).unwrap();
}

/// Receives everything pending; returns the frames' (len, first 18 bytes).
pub fn recv(p: &Port) -> Vec<(u16, Vec<u8>)> {
    let r = p.rx_ring(0);
    let s = p.rxsync_ring(0).unwrap();
    let n = r.num_slots();
    let mut out = Vec::new();
    let mut h = r.head();
    while h != s.hwtail {
        let sl = r.slot(h);
        let o = p.layout().buf_offset(sl.buf_idx()).unwrap();
        let mut b = vec![0u8; (sl.len() as usize).min(18)];
        p.mem().read_bytes(o, &mut b);
        out.push((sl.len(), b));
        h = (h + 1) % n;
    }
    r.set_head(h);
    r.set_cur(h);
    p.rxsync_ring(0).unwrap();
    out
}

/// The names of the files in `dir`, sorted.
pub fn files(dir: &TempDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// The sequence numbers that `send` put into `frames` (bytes 14..18).
pub fn tags(frames: &[(u16, Vec<u8>)]) -> Vec<u32> {
    frames
        .iter()
        .map(|(_, f)| u32::from_le_bytes(f[14..18].try_into().unwrap()))
        .collect()
}
