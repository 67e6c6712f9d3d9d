//! The fuzz entry point: arbitrary slot contents and indices fed to txsync and rxsync.
//!
//! Used by `fuzz/fuzz_targets/vale_txsync.rs` and by a deterministic test. The input is a
//! byte string decoded into operations on three ports of a private switch; nothing it
//! contains may crash the switch or make it touch memory outside the ports' regions.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use netmap::{NetmapPort, RegionConfig};

use crate::port::{Port, PortOptions};

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

/// Runs one fuzz input. Returns the number of operations executed.
pub fn txsync_input(data: &[u8]) -> usize {
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
    let ports: Vec<Port> = (0..3)
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
    let mut inp = Input(data);
    let mut ops = 0;
    while let Some(op) = inp.u8() {
        let p = &ports[(op >> 4) as usize % 3];
        let ring = (op >> 3) as u32 & 1;
        let r = (|| -> Option<()> {
            match op & 7 {
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
                // Write 12 header bytes into the buffer of a TX slot (if valid).
                1 => {
                    let s = inp.u8()? as u32 % 16;
                    let idx = p.tx_ring(ring).slot(s).buf_idx();
                    let mut hdr = [0u8; 12];
                    for b in &mut hdr {
                        *b = inp.u8()? & 0x07;
                    }
                    if let Some(o) = p.layout().buf_offset(idx) {
                        p.mem().write_bytes(o, &hdr);
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
                // A well-behaved application txsync of everything up to tail.
                _ => {
                    let r = p.tx_ring(ring);
                    let t = r.tail();
                    r.set_head(t);
                    r.set_cur(t);
                    let _ = p.txsync_ring(ring);
                }
            }
            Some(())
        })();
        if r.is_none() {
            break;
        }
        ops += 1;
    }
    ops
}
