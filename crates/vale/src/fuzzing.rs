//! The fuzz entry point: arbitrary slot contents, indices, frames and virtio-net headers fed
//! to txsync and rxsync.
//!
//! Used by `fuzz/fuzz_targets/vale_txsync.rs` and by a deterministic test. The input is a
//! byte string decoded into operations on three ports of a private switch; nothing it
//! contains may crash the switch or make it touch memory outside the ports' regions.
//!
//! The switch and its ports are made once per thread and kept across inputs (creating port
//! files per input bounded libFuzzer to a few hundred inputs a second): each input starts by
//! [`reset_port`]ing every port and emptying the MAC table, so every input starts from the
//! same state as on a fresh switch, whatever the previous one left behind.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use netmap::{NetmapPort, RegionConfig};

use crate::port::{Port, PortOptions};
use crate::vnet;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A private switch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "ptvmm-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
}

/// Puts `port` back in the state [`Port::open`] left it in, with a virtio-net header of
/// `hdr_len` bytes: region, rings, buffers and private ring state rewritten, counters zeroed,
/// its senders' lossless holds forgotten. For fuzz targets that keep ports across inputs;
/// nothing may use the port meanwhile. See also [`forget_macs`].
pub fn reset_port(port: &Port, hdr_len: u32) -> Result<(), crate::ValeError> {
    port.reset_for_fuzzing(hdr_len)
}

/// Empties the MAC table of `port`'s switch, as a fresh switch has it.
pub fn forget_macs(port: &Port) {
    port.forget_macs_for_fuzzing();
}

/// The switch of [`txsync_input`], made once per thread.
struct Rig {
    /// Declared before the directory: dropped (files removed) first.
    ports: Vec<Port>,
    _dir: TempDir,
}

impl Rig {
    fn new() -> Rig {
        let dir = TempDir::new("fuzz");
        let cfg = RegionConfig {
            tx_rings: 2,
            rx_rings: 2,
            tx_slots: 16,
            rx_slots: 8,
            buf_size: 128,
        };
        // Port 0 is lossless, so held syncs (pending slots, the all-destinations check) are
        // fuzzed too.
        let ports = (0..3)
            .map(|i| {
                let opts = PortOptions {
                    config: cfg,
                    shm_dir: Some(dir.0.clone()),
                    lossless: i == 0,
                    vnet_hdr_len: 0,
                };
                Port::open(&format!("valefz:{i}"), &opts).expect("open fuzz port")
            })
            .collect();
        Rig { ports, _dir: dir }
    }
}

thread_local! {
    static RIG: Rig = Rig::new();
}

/// Runs one fuzz input. Returns the number of operations executed.
///
/// The first byte gives the ports' virtio-net header lengths (two bits each: 0, 10, 12, 0),
/// so frames between ports of different lengths go through [`vnet::convert`] with whatever
/// header the input wrote in front of them. Then operations, each an op byte (bits 0-3:
/// what, bit 4: ring, bits 5-7: port, mod 3) and its arguments, until the input runs out.
pub fn txsync_input(data: &[u8]) -> usize {
    RIG.with(|rig| run(&rig.ports, data))
}

fn run(ports: &[Port], data: &[u8]) -> usize {
    let mut inp = Input(data);
    let Some(cfg) = inp.u8() else {
        return 0;
    };
    forget_macs(&ports[0]);
    for (i, p) in ports.iter().enumerate() {
        let len = vnet::HDR_LENS[((cfg >> (2 * i)) & 3) as usize % 3];
        reset_port(p, len).expect("valid header length");
    }
    let mut ops = 0;
    while let Some(op) = inp.u8() {
        let p = &ports[(op >> 5) as usize % 3];
        let ring = (op >> 4) as u32 & 1;
        if one_op(p, ring, op & 15, &mut inp).is_none() {
            break;
        }
        ops += 1;
    }
    ops
}

/// The buffer of TX slot `s` of `ring` of `p` (offset in the port file), if its index is
/// valid.
fn tx_buf(p: &Port, ring: u32, s: u32) -> Option<usize> {
    p.layout()
        .buf_offset(p.tx_ring(ring).slot(s % 16).buf_idx())
}

/// Writes `bytes` at `at` in a TX buffer (`buf` from [`tx_buf`]), cut at its end.
fn put(p: &Port, buf: usize, at: usize, bytes: &[u8]) {
    let size = p.layout().config.buf_size as usize;
    if at < size {
        let n = bytes.len().min(size - at);
        p.mem().write_bytes(buf + at, &bytes[..n]);
    }
}

/// Runs operation `what` on `ring` of `p`; None when the input ran out.
fn one_op(p: &Port, ring: u32, what: u8, inp: &mut Input) -> Option<()> {
    match what {
        // Write a slot of a TX ring: index, buf_idx, len, flags.
        0 => {
            let s = inp.u8()? as u32 % 16;
            let slot = p.tx_ring(ring).slot(s);
            let b = inp.u32()?;
            // Bias towards valid buffers so that frames actually flow.
            slot.set_buf_idx(if b & 0x8000_0000 == 0 {
                b % p.layout().nbufs()
            } else {
                b
            });
            slot.set_len(inp.u16()?);
            slot.set_flags(inp.u16()?);
        }
        // Write the two MAC addresses of a TX slot's frame (after the port's virtio-net
        // header), from a small set so that learning and unicast happen.
        1 => {
            let s = inp.u8()? as u32;
            let mut macs = [0u8; 12];
            for b in &mut macs {
                *b = inp.u8()? & 0x07;
            }
            if let Some(o) = tx_buf(p, ring, s) {
                put(p, o, p.vnet_hdr_len() as usize, &macs);
            }
        }
        // txsync with arbitrary head/cur.
        2 => {
            let (h, c) = (inp.u32()?, inp.u32()?);
            let _ = p.txsync(ring, h % 20, c % 20);
        }
        // txsync with fully arbitrary values.
        3 => {
            let _ = p.txsync(inp.u8()? as u32, inp.u32()?, inp.u32()?);
        }
        // rxsync with arbitrary head/cur.
        4 => {
            let (h, c) = (inp.u32()?, inp.u32()?);
            let _ = p.rxsync(ring, h % 10, c % 10);
        }
        // A well-behaved rxsync releasing everything.
        5 => {
            let r = p.rx_ring(ring);
            if let Ok(s) = p.rxsync_ring(ring) {
                r.set_head(s.hwtail);
                r.set_cur(s.hwtail);
                let _ = p.rxsync_ring(ring);
            }
        }
        // Scribble on an RX slot's buf_idx (receiver garbage).
        6 => {
            let s = inp.u8()? as u32 % 8;
            p.rx_ring(ring).slot(s).set_buf_idx(inp.u32()?);
        }
        // A virtio-net header (12 bytes, at the start of a TX slot's buffer): arbitrary, with
        // a mode byte that may pick a known gso_type, a small gso_size, small checksum
        // offsets, so that conversion gets past its first checks as often as not.
        8 => {
            let s = inp.u8()? as u32;
            let mode = inp.u8()?;
            let mut h = [0u8; 12];
            for b in &mut h {
                *b = inp.u8()?;
            }
            if mode & 1 != 0 {
                const TYPES: [u8; 8] = [0, 1, 3, 4, 5, 0x81, 0x84, 0x80];
                h[1] = TYPES[(mode >> 4) as usize & 7];
            }
            if mode & 2 != 0 {
                h[5] = 0; // gso_size < 256
            }
            if mode & 4 != 0 {
                h[7] = 0; // csum_start < 256
                h[8] = if mode & 8 != 0 { 16 } else { 6 }; // TCP or UDP checksum field
                h[9] = 0;
            }
            if let Some(o) = tx_buf(p, ring, s) {
                put(p, o, 0, &h);
            }
        }
        // Ethertype, IP and TCP/UDP headers after the MACs (at the port's header length +
        // 12): a selector byte picks IPv4/IPv6/raw, a sane or raw version and fragment
        // field, TCP/UDP or raw protocol; the other fields come from the input.
        9 => {
            let s = inp.u8()? as u32;
            let sel = inp.u8()?;
            let tcp = sel & 0x10 == 0;
            let proto = if sel & 0x20 != 0 {
                inp.u8()?
            } else if tcp {
                6
            } else {
                17
            };
            let mut f = Vec::with_capacity(70);
            let v6 = match sel & 3 {
                0 | 2 => {
                    f.extend_from_slice(&0x0800u16.to_be_bytes());
                    false
                }
                1 => {
                    f.extend_from_slice(&0x86ddu16.to_be_bytes());
                    true
                }
                _ => {
                    f.extend_from_slice(&inp.u16()?.to_be_bytes());
                    inp.u8()? & 1 != 0
                }
            };
            let mut raw = [0u8; 8];
            for b in &mut raw {
                *b = inp.u8()?;
            }
            if v6 {
                let mut ip = [0u8; 40];
                ip[..8].copy_from_slice(&raw);
                if sel & 4 == 0 {
                    ip[0] = 0x60;
                }
                ip[6] = proto;
                f.extend_from_slice(&ip);
            } else {
                let mut ip = [0u8; 20];
                ip[..8].copy_from_slice(&raw);
                ip[8] = 64;
                if sel & 4 == 0 {
                    ip[0] = 0x45;
                }
                if sel & 8 == 0 {
                    ip[6] = 0; // not a fragment
                    ip[7] = 0;
                }
                ip[9] = proto;
                ip[12..20].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
                f.extend_from_slice(&ip);
            }
            let mut l4 = [0u8; 20];
            for b in &mut l4[..8] {
                *b = inp.u8()?;
            }
            if tcp {
                let (seq, doff, flags) = ([l4[0], l4[1], l4[2], l4[3]], l4[4], l4[5]);
                l4[4..8].copy_from_slice(&seq);
                l4[12] = if sel & 0x40 == 0 { 0x50 } else { doff };
                l4[13] = flags;
                f.extend_from_slice(&l4);
            } else {
                f.extend_from_slice(&l4[..8]);
            }
            if let Some(o) = tx_buf(p, ring, s) {
                put(p, o, p.vnet_hdr_len() as usize + 12, &f);
            }
        }
        // Arbitrary bytes (up to 32) anywhere in a TX slot's buffer.
        10 => {
            let s = inp.u8()? as u32;
            let at = inp.u8()? as usize;
            let n = inp.u8()? as usize % 33;
            let mut b = [0u8; 32];
            for x in &mut b[..n] {
                *x = inp.u8()?;
            }
            if let Some(o) = tx_buf(p, ring, s) {
                put(p, o, at, &b[..n]);
            }
        }
        // Change the port's header length between syncs (invalid lengths are refused).
        11 => {
            let v = inp.u8()?;
            let len = match v & 3 {
                0 => 0,
                1 => 10,
                2 => 12,
                _ => u32::from(v),
            };
            let _ = p.set_vnet_hdr_len(len);
        }
        // A well-behaved application txsync of everything up to tail (7, 12-15: the most
        // frequent operation, as in a real sender).
        _ => {
            let r = p.tx_ring(ring);
            let t = r.tail();
            r.set_head(t);
            r.set_cur(t);
            let _ = p.txsync_ring(ring);
        }
    }
    Some(())
}
