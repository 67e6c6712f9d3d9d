//! Typed views of a ring, a slot and a `netmap_if` inside shared memory.
//!
//! A view holds a [`SharedMem`] window, an offset, and (for rings) the slot count the
//! *owner* configured — never the `num_slots` field read back from memory another party can
//! write. Every read returns a plain value that the caller must treat as untrusted.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::abi::{nif, ring, slot};
use crate::shm::SharedMem;

/// A `netmap_ring` at `offset` with `num_slots` slots.
#[derive(Debug, Clone, Copy)]
pub struct RingView {
    mem: SharedMem,
    offset: usize,
    num_slots: u32,
}

impl RingView {
    /// A view of the ring at `offset`; panics if the header and slots do not fit in `mem`.
    pub fn new(mem: SharedMem, offset: usize, num_slots: u32) -> Self {
        assert!(
            mem.contains(offset, ring::HEADER_SIZE + slot::SIZE * num_slots as usize),
            "ring outside its region"
        );
        RingView {
            mem,
            offset,
            num_slots,
        }
    }

    /// The slot count this view was built with.
    pub fn num_slots(&self) -> u32 {
        self.num_slots
    }

    /// Offset of the ring within its region.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// `buf_ofs` as stored in the ring.
    pub fn buf_ofs(&self) -> i64 {
        self.mem.load_i64(self.offset + ring::BUF_OFS, Relaxed)
    }

    /// `head` (acquire: slot contents written before it are visible).
    pub fn head(&self) -> u32 {
        self.mem.load_u32(self.offset + ring::HEAD, Acquire)
    }

    /// `cur`.
    pub fn cur(&self) -> u32 {
        self.mem.load_u32(self.offset + ring::CUR, Acquire)
    }

    /// `tail`.
    pub fn tail(&self) -> u32 {
        self.mem.load_u32(self.offset + ring::TAIL, Acquire)
    }

    /// Publishes `head` (release: slot contents written before are visible first).
    pub fn set_head(&self, v: u32) {
        self.mem.store_u32(self.offset + ring::HEAD, v, Release)
    }

    /// Publishes `cur`.
    pub fn set_cur(&self, v: u32) {
        self.mem.store_u32(self.offset + ring::CUR, v, Release)
    }

    /// Publishes `tail`.
    pub fn set_tail(&self, v: u32) {
        self.mem.store_u32(self.offset + ring::TAIL, v, Release)
    }

    /// Slot `i` (`i < num_slots`, panics otherwise).
    #[inline(always)]
    pub fn slot(&self, i: u32) -> SlotView {
        if i >= self.num_slots {
            slot_out_of_range(i, self.num_slots);
        }
        SlotView {
            mem: self.mem,
            offset: self.offset + ring::SLOTS + i as usize * slot::SIZE,
        }
    }
}

/// One `netmap_slot`.
#[derive(Debug, Clone, Copy)]
pub struct SlotView {
    mem: SharedMem,
    offset: usize,
}

impl SlotView {
    /// `buf_idx` (untrusted).
    #[inline(always)]
    pub fn buf_idx(&self) -> u32 {
        self.mem.load_u32(self.offset + slot::BUF_IDX, Relaxed)
    }

    /// `len` (untrusted).
    #[inline(always)]
    pub fn len(&self) -> u16 {
        self.mem.load_u16(self.offset + slot::LEN, Relaxed)
    }

    /// True if `len` is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `flags` (untrusted).
    #[inline(always)]
    pub fn flags(&self) -> u16 {
        self.mem.load_u16(self.offset + slot::FLAGS, Relaxed)
    }

    /// `buf_idx`, `len` and `flags` in one 64-bit load.
    #[inline(always)]
    pub fn load(&self) -> (u32, u16, u16) {
        let v = self.mem.load_u64(self.offset, Relaxed);
        (v as u32, (v >> 32) as u16, (v >> 48) as u16)
    }

    /// Sets `buf_idx`.
    pub fn set_buf_idx(&self, v: u32) {
        self.mem.store_u32(self.offset + slot::BUF_IDX, v, Relaxed)
    }

    /// Sets `len`.
    #[inline(always)]
    pub fn set_len(&self, v: u16) {
        self.mem.store_u16(self.offset + slot::LEN, v, Relaxed)
    }

    /// Sets `flags`.
    #[inline(always)]
    pub fn set_flags(&self, v: u16) {
        self.mem.store_u16(self.offset + slot::FLAGS, v, Relaxed)
    }

    /// Sets `len` and `flags` together, keeping `buf_idx`.
    #[inline(always)]
    pub fn set_len_flags(&self, len: u16, flags: u16) {
        let v = (len as u32) | (flags as u32) << 16;
        self.mem.store_u32(self.offset + slot::LEN, v, Relaxed)
    }
}

/// A `netmap_if` at `offset`.
#[derive(Debug, Clone, Copy)]
pub struct IfView {
    mem: SharedMem,
    offset: usize,
}

impl IfView {
    /// A view of the netmap_if at `offset`.
    pub fn new(mem: SharedMem, offset: usize) -> Self {
        assert!(
            mem.contains(offset, nif::SIZE),
            "netmap_if outside its region"
        );
        IfView { mem, offset }
    }

    /// The interface name (up to the first NUL; lossy UTF-8).
    pub fn name(&self) -> String {
        let mut b = [0u8; nif::NAME_LEN];
        self.mem.read_bytes(self.offset + nif::NAME, &mut b);
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    }

    /// `tx_rings`.
    pub fn tx_rings(&self) -> u32 {
        self.mem.load_u32(self.offset + nif::TX_RINGS, Relaxed)
    }

    /// `rx_rings`.
    pub fn rx_rings(&self) -> u32 {
        self.mem.load_u32(self.offset + nif::RX_RINGS, Relaxed)
    }

    /// `ring_ofs[i]`, relative to the netmap_if.
    pub fn ring_ofs(&self, i: u32) -> i64 {
        self.mem
            .load_i64(self.offset + nif::RING_OFS + 8 * i as usize, Relaxed)
    }
}

/// The failure of [`RingView::slot`]'s check, out of line (see `shm::out_of_bounds`).
#[cold]
#[inline(never)]
#[track_caller]
fn slot_out_of_range(i: u32, n: u32) -> ! {
    panic!("slot {i} out of range (ring of {n} slots)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::testmem::TestMem;

    #[test]
    fn slot_packed_access() {
        let mut t = TestMem::new(4096);
        let mem = t.mem();
        let r = RingView::new(mem, 0, 8);
        let s = r.slot(3);
        s.set_buf_idx(77);
        s.set_len_flags(1514, slot::F_MOREFRAG);
        assert_eq!(s.load(), (77, 1514, slot::F_MOREFRAG));
        assert_eq!(s.len(), 1514);
        assert_eq!(s.flags(), slot::F_MOREFRAG);
        assert_eq!(mem.load_u32(ring::SLOTS + 3 * 16, Relaxed), 77);
        r.set_head(5);
        r.set_cur(6);
        r.set_tail(7);
        assert_eq!((r.head(), r.cur(), r.tail()), (5, 6, 7));
        assert_eq!(mem.load_u32(ring::TAIL, Relaxed), 7);
    }

    #[test]
    #[should_panic(expected = "slot 8 out of range")]
    fn slot_index_checked() {
        let mut t = TestMem::new(4096);
        RingView::new(t.mem(), 0, 8).slot(8);
    }
}
