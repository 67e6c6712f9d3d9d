//! The ptnetmap CSB entries (ABI §2) with the memory-ordering rules of each side.
//!
//! `atok` is written by the guest and read by the host; `ktoa` the other way round. The
//! fences follow netmap's `ptnetmap_{guest,host}_{read,write}_kring_csb`:
//! - guest writes: fence; cur; fence; head — the host never sees a head newer than cur;
//! - host reads: head; fence; cur; sync_flags; fence;
//! - host writes: fence; hwcur; fence; hwtail;
//! - guest reads: hwtail; fence; hwcur; fence.

use std::sync::atomic::{fence, Ordering::*};

use crate::abi::csb::*;
use crate::shm::SharedMem;

/// What the host reads from one `atok` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtokSnapshot {
    pub head: u32,
    pub cur: u32,
    pub sync_flags: u32,
}

/// One ring's pair of CSB entries: `atok` in the guest-to-host array, `ktoa` in the other.
#[derive(Debug, Clone, Copy)]
pub struct CsbRing {
    atok: SharedMem,
    ktoa: SharedMem,
}

impl CsbRing {
    /// Entry `ring` of the two arrays (each at least `64 * (ring + 1)` bytes).
    pub fn new(gh_array: &SharedMem, hg_array: &SharedMem, ring: u32) -> Self {
        let off = ENTRY_SIZE * ring as usize;
        CsbRing {
            atok: gh_array.sub(off, ENTRY_SIZE),
            ktoa: hg_array.sub(off, ENTRY_SIZE),
        }
    }

    /// Host side: reads head, cur and sync_flags in the prescribed order.
    pub fn host_read_atok(&self) -> AtokSnapshot {
        let head = self.atok.load_u32(ATOK_HEAD, Relaxed);
        fence(Acquire);
        let cur = self.atok.load_u32(ATOK_CUR, Relaxed);
        let sync_flags = self.atok.load_u32(ATOK_SYNC_FLAGS, Relaxed);
        fence(Acquire);
        AtokSnapshot {
            head,
            cur,
            sync_flags,
        }
    }

    /// Host side: publishes hwcur then hwtail.
    pub fn host_write_ktoa(&self, hwcur: u32, hwtail: u32) {
        fence(Release);
        self.ktoa.store_u32(KTOA_HWCUR, hwcur, Relaxed);
        fence(Release);
        self.ktoa.store_u32(KTOA_HWTAIL, hwtail, Relaxed);
    }

    /// Host side: sets `kern_need_kick`; setting it to 1 is followed by a full fence so that
    /// the caller's re-read of `atok` (the double check) cannot move before it.
    pub fn set_kern_need_kick(&self, v: bool) {
        self.ktoa.store_u32(KTOA_KERN_NEED_KICK, v as u32, Relaxed);
        if v {
            fence(SeqCst);
        }
    }

    /// `kern_need_kick` as last written.
    pub fn kern_need_kick(&self) -> bool {
        self.ktoa.load_u32(KTOA_KERN_NEED_KICK, Relaxed) != 0
    }

    /// Host side: whether the guest asked for an interrupt (`appl_need_kick`).
    pub fn appl_need_kick(&self) -> bool {
        fence(SeqCst);
        self.atok.load_u32(ATOK_APPL_NEED_KICK, Relaxed) != 0
    }

    /// Guest side (tests, guest tools): publishes cur then head.
    pub fn guest_write_atok(&self, head: u32, cur: u32) {
        fence(Release);
        self.atok.store_u32(ATOK_CUR, cur, Relaxed);
        fence(Release);
        self.atok.store_u32(ATOK_HEAD, head, Relaxed);
    }

    /// Guest side: sets `appl_need_kick` (with a full fence when arming).
    pub fn set_appl_need_kick(&self, v: bool) {
        self.atok.store_u32(ATOK_APPL_NEED_KICK, v as u32, Relaxed);
        if v {
            fence(SeqCst);
        }
    }

    /// Guest side: whether the host asks for a kick (`kern_need_kick`), read after a full
    /// fence so that the caller's preceding `guest_write_atok` cannot move after the read.
    /// With the host's "set flag; fence; re-read atok" this is the double check of ABI §2:
    /// either the host sees the new head or the guest sees the flag (no lost wakeup).
    pub fn guest_kern_need_kick(&self) -> bool {
        fence(SeqCst);
        self.ktoa.load_u32(KTOA_KERN_NEED_KICK, Relaxed) != 0
    }

    /// Guest side: reads `(hwcur, hwtail)` in the prescribed order (hwtail first).
    pub fn guest_read_ktoa(&self) -> (u32, u32) {
        let hwtail = self.ktoa.load_u32(KTOA_HWTAIL, Relaxed);
        fence(Acquire);
        let hwcur = self.ktoa.load_u32(KTOA_HWCUR, Relaxed);
        fence(Acquire);
        (hwcur, hwtail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::testmem::TestMem;

    #[test]
    fn entries_land_at_abi_offsets() {
        let mut gh = TestMem::new(4096);
        let mut hg = TestMem::new(4096);
        let (gh, hg) = (gh.mem(), hg.mem());
        let c = CsbRing::new(&gh, &hg, 2);
        c.guest_write_atok(10, 12);
        c.set_appl_need_kick(true);
        assert_eq!(gh.load_u32(128, Relaxed), 10);
        assert_eq!(gh.load_u32(132, Relaxed), 12);
        assert_eq!(gh.load_u32(136, Relaxed), 1);
        assert_eq!(
            c.host_read_atok(),
            AtokSnapshot {
                head: 10,
                cur: 12,
                sync_flags: 0
            }
        );
        assert!(c.appl_need_kick());
        c.host_write_ktoa(3, 9);
        c.set_kern_need_kick(true);
        assert_eq!(hg.load_u32(128, Relaxed), 3);
        assert_eq!(hg.load_u32(132, Relaxed), 9);
        assert_eq!(hg.load_u32(136, Relaxed), 1);
        assert_eq!(c.guest_read_ktoa(), (3, 9));
        assert!(c.kern_need_kick());
        assert!(c.guest_kern_need_kick());
        c.set_kern_need_kick(false);
        assert!(!c.guest_kern_need_kick());
    }
}
