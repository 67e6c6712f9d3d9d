//! The layout of one port's netmap memory region: `[if pool][ring pool][buf pool]`.
//!
//! ```text
//!  0            if_pool.objsz           ring pool: tx rings, then rx rings    buf pool
//!  +----------------+-----------------------------------------+------------------------+
//!  | netmap_if +    | ring 0 | ring 1 | ...   (objsz each,    | buf 0 | buf 1 | buf 2..|
//!  | ring_ofs[]     |  header 256 + 16 * slots, 64-aligned)   | (reserved)     | (slots)
//!  +----------------+-----------------------------------------+------------------------+
//! ```
//! `ring_ofs[]` is laid out as upstream netmap does: NIC TX rings, one host TX entry, NIC RX
//! rings, one host RX entry (`host_tx_rings = host_rx_rings = 1`, the host entries 0 since a
//! VALE port has no host rings). Upstream's ptnet guest finds RX ring i at
//! `ring_ofs[tx_rings + 1 + i]`; see [`RegionLayout::ring_ofs_index`].
//! Every object is 64-byte aligned; the total is rounded up to a 4 KiB page so the region
//! can be mapped into a guest. Buffers 0 and 1 are reserved; each slot of each ring starts
//! with its own buffer `2 + global slot number`.

use std::sync::atomic::Ordering::Relaxed;

use crate::abi::{nif, ring, slot, NETMAP_API, OBJ_ALIGN, RESERVED_BUFS};
/// Most rings (TX + RX) a port may have: the ptnet NIC's limit (one kick register a ring),
/// so that every port can be passed through to a guest. One limit for every layer.
pub use crate::ptnet::MAX_RINGS;
use crate::shm::SharedMem;

/// Page size the region is rounded to.
pub const PAGE_SIZE: usize = 4096;
/// Host-ring entries per direction in a `netmap_if`: upstream netmap always counts at least
/// one (`netmap_all_rings() = nrings + 1`), bound or not (ptnet ABI §4).
pub const HOST_RINGS: u32 = 1;
/// Fewest and most slots in a ring.
pub const MIN_SLOTS: u32 = 4;
/// See [`MIN_SLOTS`].
pub const MAX_SLOTS: u32 = 32768;
/// Smallest and largest buffer size (multiples of 64).
pub const MIN_BUF_SIZE: u32 = 64;
/// See [`MIN_BUF_SIZE`].
pub const MAX_BUF_SIZE: u32 = 32768;

/// What a port's region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionConfig {
    pub tx_rings: u32,
    pub rx_rings: u32,
    pub tx_slots: u32,
    pub rx_slots: u32,
    pub buf_size: u32,
}

impl Default for RegionConfig {
    /// VALE defaults: 1 TX + 1 RX ring, 1024 slots, 2048-byte buffers.
    fn default() -> Self {
        RegionConfig {
            tx_rings: 1,
            rx_rings: 1,
            tx_slots: 1024,
            rx_slots: 1024,
            buf_size: 2048,
        }
    }
}

/// Invalid region configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "Ring count out of range: {tx} tx + {rx} rx (1..={MAX_RINGS} in total, at least 1 each)"
    )]
    Rings { tx: u32, rx: u32 },
    #[error("Slot count {0} out of range ({MIN_SLOTS}..={MAX_SLOTS})")]
    Slots(u32),
    #[error("Buffer size {0} must be a multiple of 64 in {MIN_BUF_SIZE}..={MAX_BUF_SIZE}")]
    BufSize(u32),
}

/// One object pool: the memdev's `*_POOL_OFS`, `*_OBJNUM`, `*_OBJSZ` registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub offset: u64,
    pub objnum: u32,
    pub objsz: u32,
}

/// The computed layout of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionLayout {
    pub config: RegionConfig,
    pub if_pool: Pool,
    pub ring_pool: Pool,
    pub buf_pool: Pool,
    /// Total size, a multiple of [`PAGE_SIZE`].
    pub size: usize,
}

fn align_up(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

impl RegionLayout {
    /// Computes the layout for `config`.
    pub fn new(config: RegionConfig) -> Result<Self, LayoutError> {
        let c = config;
        if c.tx_rings == 0 || c.rx_rings == 0 || c.tx_rings + c.rx_rings > MAX_RINGS {
            return Err(LayoutError::Rings {
                tx: c.tx_rings,
                rx: c.rx_rings,
            });
        }
        for s in [c.tx_slots, c.rx_slots] {
            if !(MIN_SLOTS..=MAX_SLOTS).contains(&s) {
                return Err(LayoutError::Slots(s));
            }
        }
        if !(MIN_BUF_SIZE..=MAX_BUF_SIZE).contains(&c.buf_size) || !c.buf_size.is_multiple_of(64) {
            return Err(LayoutError::BufSize(c.buf_size));
        }
        let nrings = (c.tx_rings + c.rx_rings) as usize;
        let nentries = nrings + 2 * HOST_RINGS as usize;
        let if_objsz = align_up(nif::SIZE + 8 * nentries, OBJ_ALIGN);
        let max_slots = c.tx_slots.max(c.rx_slots) as usize;
        let ring_objsz = align_up(ring::HEADER_SIZE + slot::SIZE * max_slots, OBJ_ALIGN);
        let nbufs = RESERVED_BUFS as usize
            + (c.tx_rings * c.tx_slots) as usize
            + (c.rx_rings * c.rx_slots) as usize;
        let ring_ofs = if_objsz;
        let buf_ofs = align_up(ring_ofs + ring_objsz * nrings, OBJ_ALIGN);
        let end = buf_ofs + nbufs * c.buf_size as usize;
        Ok(RegionLayout {
            config,
            if_pool: Pool {
                offset: 0,
                objnum: 1,
                objsz: if_objsz as u32,
            },
            ring_pool: Pool {
                offset: ring_ofs as u64,
                objnum: nrings as u32,
                objsz: ring_objsz as u32,
            },
            buf_pool: Pool {
                offset: buf_ofs as u64,
                objnum: nbufs as u32,
                objsz: c.buf_size,
            },
            size: align_up(end, PAGE_SIZE),
        })
    }

    /// Offset of the (single) `netmap_if` in the region.
    pub fn nifp_offset(&self) -> usize {
        self.if_pool.offset as usize
    }

    /// Total rings; TX rings are `0..tx_rings`, RX rings follow.
    pub fn num_rings(&self) -> u32 {
        self.config.tx_rings + self.config.rx_rings
    }

    /// Offset of ring `i` (TX rings first, then RX rings) in the region.
    pub fn ring_offset(&self, i: u32) -> usize {
        assert!(i < self.num_rings(), "ring {i} out of range");
        self.ring_pool.offset as usize + i as usize * self.ring_pool.objsz as usize
    }

    /// Index in `ring_offs[]` of ring `i` (TX rings first, then RX rings, as in
    /// [`RegionLayout::ring_offset`]): RX entries follow the host TX entries.
    pub fn ring_ofs_index(&self, i: u32) -> u32 {
        if i < self.config.tx_rings {
            i
        } else {
            i + HOST_RINGS
        }
    }

    /// Entries of `ring_ofs[]`: NIC and host rings of both directions.
    pub fn ring_ofs_entries(&self) -> u32 {
        self.num_rings() + 2 * HOST_RINGS
    }

    /// Offset of TX ring `i`.
    pub fn tx_ring_offset(&self, i: u32) -> usize {
        assert!(i < self.config.tx_rings);
        self.ring_offset(i)
    }

    /// Offset of RX ring `i`.
    pub fn rx_ring_offset(&self, i: u32) -> usize {
        assert!(i < self.config.rx_rings);
        self.ring_offset(self.config.tx_rings + i)
    }

    /// Number of buffers in the pool (valid indices are `0..nbufs`, 0 and 1 reserved).
    pub fn nbufs(&self) -> u32 {
        self.buf_pool.objnum
    }

    /// Offset of buffer `idx` in the region, or `None` for an index outside the pool.
    #[inline(always)]
    pub fn buf_offset(&self, idx: u32) -> Option<usize> {
        (idx < self.buf_pool.objnum)
            .then(|| self.buf_pool.offset as usize + idx as usize * self.buf_pool.objsz as usize)
    }

    /// Writes a fresh region into `mem` (which must be at least `size` bytes): the netmap_if
    /// named `name`, every ring header and slot, and zeroed buffers 0 and 1.
    pub fn init(&self, mem: &SharedMem, name: &str) {
        assert!(mem.len() >= self.size, "region mapping too small");
        let c = self.config;
        let nifp = self.nifp_offset();
        let mut name_buf = [0u8; nif::NAME_LEN];
        let n = name.len().min(nif::NAME_LEN - 1);
        name_buf[..n].copy_from_slice(&name.as_bytes()[..n]);
        mem.write_bytes(nifp + nif::NAME, &name_buf);
        mem.store_u32(nifp + nif::VERSION, NETMAP_API, Relaxed);
        mem.store_u32(nifp + nif::FLAGS, 0, Relaxed);
        mem.store_u32(nifp + nif::TX_RINGS, c.tx_rings, Relaxed);
        mem.store_u32(nifp + nif::RX_RINGS, c.rx_rings, Relaxed);
        mem.store_u32(nifp + nif::BUFS_HEAD, 0, Relaxed);
        mem.store_u32(nifp + nif::HOST_TX_RINGS, HOST_RINGS, Relaxed);
        mem.store_u32(nifp + nif::HOST_RX_RINGS, HOST_RINGS, Relaxed);
        // Unbound host entries are 0; NIC entries are written below.
        mem.fill(
            nifp + nif::RING_OFS,
            8 * self.ring_ofs_entries() as usize,
            0,
        );
        for k in 0..3 {
            mem.store_u32(nifp + nif::SPARE + 4 * k, 0, Relaxed);
        }
        let mut next_buf = RESERVED_BUFS;
        for i in 0..self.num_rings() {
            let (is_tx, ringid, slots) = if i < c.tx_rings {
                (true, i, c.tx_slots)
            } else {
                (false, i - c.tx_rings, c.rx_slots)
            };
            let r = self.ring_offset(i);
            mem.store_i64(
                nifp + nif::RING_OFS + 8 * self.ring_ofs_index(i) as usize,
                (r - nifp) as i64,
                Relaxed,
            );
            mem.fill(r, ring::HEADER_SIZE, 0);
            mem.store_i64(
                r + ring::BUF_OFS,
                self.buf_pool.offset as i64 - r as i64,
                Relaxed,
            );
            mem.store_u32(r + ring::NUM_SLOTS, slots, Relaxed);
            mem.store_u32(r + ring::NR_BUF_SIZE, c.buf_size, Relaxed);
            mem.store_u16(r + ring::RINGID, ringid as u16, Relaxed);
            mem.store_u16(
                r + ring::DIR,
                if is_tx { ring::DIR_TX } else { ring::DIR_RX },
                Relaxed,
            );
            let tail = if is_tx { slots - 1 } else { 0 };
            mem.store_u32(r + ring::HEAD, 0, Relaxed);
            mem.store_u32(r + ring::CUR, 0, Relaxed);
            mem.store_u32(r + ring::TAIL, tail, Relaxed);
            for s in 0..slots as usize {
                let so = r + ring::SLOTS + s * slot::SIZE;
                mem.store_u32(so + slot::BUF_IDX, next_buf, Relaxed);
                mem.store_u16(
                    so + slot::LEN,
                    if is_tx { 0 } else { c.buf_size as u16 },
                    Relaxed,
                );
                mem.store_u16(so + slot::FLAGS, 0, Relaxed);
                mem.store_u64(so + slot::PTR, 0, Relaxed);
                next_buf += 1;
            }
        }
        debug_assert_eq!(next_buf, self.nbufs());
        let b0 = self.buf_offset(0).expect("buffer 0 exists");
        mem.fill(b0, 2 * c.buf_size as usize, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::testmem::TestMem;
    use crate::view::{IfView, RingView};

    #[test]
    fn default_layout() {
        let l = RegionLayout::new(RegionConfig::default()).unwrap();
        assert_eq!(
            l.if_pool,
            Pool {
                offset: 0,
                objnum: 1,
                objsz: 128
            }
        );
        assert_eq!(l.ring_pool.offset, 128);
        assert_eq!(l.ring_pool.objnum, 2);
        assert_eq!(l.ring_pool.objsz, 256 + 16 * 1024);
        assert_eq!(l.buf_pool.objnum, 2 + 2048);
        assert_eq!(l.buf_pool.objsz, 2048);
        assert_eq!(l.buf_pool.offset, 128 + 2 * (256 + 16 * 1024));
        assert_eq!(l.size % PAGE_SIZE, 0);
        assert!(l.size >= l.buf_pool.offset as usize + 2050 * 2048);
        assert_eq!(l.rx_ring_offset(0), l.ring_offset(1));
        assert_eq!(l.buf_offset(2050), None);
        assert_eq!(
            l.buf_offset(2049),
            Some(l.buf_pool.offset as usize + 2049 * 2048)
        );
    }

    #[test]
    fn objects_are_64_aligned_and_disjoint() {
        for (tx, rx, ts, rs, bs) in [
            (1, 1, 1024, 1024, 2048),
            (3, 2, 100, 7, 64),
            (16, 16, 4, 4, 9024),
            (31, 1, 4, 4, 64),
        ] {
            let l = RegionLayout::new(RegionConfig {
                tx_rings: tx,
                rx_rings: rx,
                tx_slots: ts,
                rx_slots: rs,
                buf_size: bs,
            })
            .unwrap();
            for p in [l.if_pool, l.ring_pool, l.buf_pool] {
                assert_eq!(p.offset % 64, 0);
                assert_eq!(p.objsz % 64, 0);
            }
            assert!(l.if_pool.objsz as usize >= 56 + 8 * (tx + rx) as usize);
            assert!(l.ring_pool.offset >= l.if_pool.offset + l.if_pool.objsz as u64);
            assert!(
                l.buf_pool.offset
                    >= l.ring_pool.offset + l.ring_pool.objsz as u64 * l.ring_pool.objnum as u64
            );
            assert!(l.ring_pool.objsz as usize >= 256 + 16 * ts.max(rs) as usize);
        }
    }

    #[test]
    fn rejects_bad_configs() {
        let d = RegionConfig::default();
        assert!(RegionLayout::new(RegionConfig { tx_rings: 0, ..d }).is_err());
        assert!(RegionLayout::new(RegionConfig {
            tx_rings: 40,
            rx_rings: 30,
            ..d
        })
        .is_err());
        for (tx, rx) in [(17, 16), (16, 17), (32, 1), (1, 32)] {
            let c = RegionConfig {
                tx_rings: tx,
                rx_rings: rx,
                ..d
            };
            assert_eq!(
                RegionLayout::new(c),
                Err(LayoutError::Rings { tx, rx }),
                "{tx} + {rx} rings: more than the NIC can kick"
            );
        }
        assert!(RegionLayout::new(RegionConfig { tx_slots: 3, ..d }).is_err());
        assert!(RegionLayout::new(RegionConfig {
            rx_slots: 1 << 20,
            ..d
        })
        .is_err());
        assert!(RegionLayout::new(RegionConfig {
            buf_size: 2000,
            ..d
        })
        .is_err());
        assert!(RegionLayout::new(RegionConfig { buf_size: 0, ..d }).is_err());
    }

    /// The layout of `cfg` and a region initialised with it, named `vale0:1`.
    fn fresh(cfg: RegionConfig) -> (RegionLayout, TestMem) {
        let l = RegionLayout::new(cfg).unwrap();
        let mut t = TestMem::new(l.size);
        l.init(&t.mem(), "vale0:1");
        (l, t)
    }

    #[test]
    fn init_writes_netmap_structures() {
        let cfg = RegionConfig {
            tx_rings: 2,
            rx_rings: 1,
            tx_slots: 8,
            rx_slots: 16,
            buf_size: 256,
        };
        let (l, mut t) = fresh(cfg);
        let mem = t.mem();
        let nif = IfView::new(mem, l.nifp_offset());
        assert_eq!(nif.name(), "vale0:1");
        assert_eq!(mem.load_u32(nif::VERSION, Relaxed), 14);
        assert_eq!(nif.tx_rings(), 2);
        assert_eq!(nif.rx_rings(), 1);
        let mut seen = std::collections::HashSet::new();
        for i in 0..3u32 {
            let ofs = nif.ring_ofs(l.ring_ofs_index(i));
            assert_eq!(ofs as usize, l.ring_offset(i) - l.nifp_offset());
            let r = RingView::new(mem, l.ring_offset(i), if i < 2 { 8 } else { 16 });
            assert_eq!(
                mem.load_u32(l.ring_offset(i) + ring::NUM_SLOTS, Relaxed),
                r.num_slots()
            );
            assert_eq!(
                r.buf_ofs() + l.ring_offset(i) as i64,
                l.buf_pool.offset as i64
            );
            assert_eq!(
                mem.load_u16(l.ring_offset(i) + ring::DIR, Relaxed),
                u16::from(i >= 2)
            );
            assert_eq!(r.head(), 0);
            assert_eq!(r.tail(), if i < 2 { 7 } else { 0 });
            for s in 0..r.num_slots() {
                let b = r.slot(s).buf_idx();
                assert!((2..l.nbufs()).contains(&b));
                assert!(seen.insert(b), "buffer {b} used twice");
            }
        }
        assert_eq!(seen.len() as u32, l.nbufs() - 2);
    }

    /// `ring_ofs[]` as upstream netmap lays it out, pinned for three ring shapes: NIC TX
    /// entries, one host TX entry (0), NIC RX entries, one host RX entry (0); and RX ring i is
    /// where upstream's guest looks for it, at `ring_ofs[tx_rings + host_tx_rings + i]`.
    #[test]
    fn netmap_if_has_the_host_ring_entries_upstream_expects() {
        for (tx, rx) in [(1u32, 1u32), (2, 2), (4, 1)] {
            let cfg = RegionConfig {
                tx_rings: tx,
                rx_rings: rx,
                tx_slots: 8,
                rx_slots: 8,
                buf_size: 256,
            };
            let (l, mut t) = fresh(cfg);
            let mem = t.mem();
            let nif = IfView::new(mem, l.nifp_offset());
            let host_tx = mem.load_u32(nif::HOST_TX_RINGS, Relaxed);
            let host_rx = mem.load_u32(nif::HOST_RX_RINGS, Relaxed);
            assert_eq!((host_tx, host_rx), (1, 1), "{tx}+{rx}");
            let rel = |i: u32| (l.ring_offset(i) - l.nifp_offset()) as i64;
            let mut want: Vec<i64> = (0..tx).map(rel).collect();
            want.push(0);
            want.extend((tx..tx + rx).map(rel));
            want.push(0);
            let got: Vec<i64> = (0..tx + rx + 2).map(|k| nif.ring_ofs(k)).collect();
            assert_eq!(got, want, "ring_ofs for {tx}+{rx} rings");
            // Upstream's index rule, and the netmap_if object holds every entry.
            for i in 0..rx {
                assert_eq!(nif.ring_ofs(tx + host_tx + i), rel(tx + i));
            }
            assert!(nif::RING_OFS + 8 * (tx + rx + 2) as usize <= l.if_pool.objsz as usize);
            assert!(
                nif.ring_ofs(tx + host_tx) != 0,
                "RX ring 0 is never the netmap_if"
            );
        }
        // Exactly the pinned byte offsets for 1+1 rings of the default shape.
        let l = RegionLayout::new(RegionConfig::default()).unwrap();
        assert_eq!(
            l.if_pool.objsz, 128,
            "56-byte header + 4 entries, 64-aligned"
        );
        assert_eq!(l.ring_ofs_index(0), 0);
        assert_eq!(l.ring_ofs_index(1), 2);
    }
}
