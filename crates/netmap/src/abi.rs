//! Exact byte offsets and sizes of the netmap structures (ABI reference §2 and §4).
//!
//! The `#[repr(C)]` structs below exist only to document the layouts and to let the tests
//! prove that the offset constants agree with a C compiler's view. Shared memory is never
//! accessed through them: see [`crate::shm`] and [`crate::view`].

/// netmap API version written into `netmap_if.version`.
pub const NETMAP_API: u32 = 14;

/// Every object in a netmap region is aligned to this many bytes.
pub const OBJ_ALIGN: usize = 64;

/// Buffers 0 and 1 of every buffer pool are reserved (scratch buffers).
pub const RESERVED_BUFS: u32 = 2;

/// Longest `MOREFRAG` chain a VALE port accepts; longer chains are truncated (dropped).
pub const MAX_FRAGS: usize = 64;

/// `struct netmap_slot` — 16 bytes.
///
/// ```text
///  0        4      6      8               16
///  +--------+------+------+---------------+
///  | buf_idx| len  | flags|      ptr      |
///  +--------+------+------+---------------+
/// ```
pub mod slot {
    /// Size of one slot.
    pub const SIZE: usize = 16;
    /// `u32 buf_idx`.
    pub const BUF_IDX: usize = 0;
    /// `u16 len`.
    pub const LEN: usize = 4;
    /// `u16 flags`.
    pub const FLAGS: usize = 6;
    /// `u64 ptr`.
    pub const PTR: usize = 8;

    /// The buffer index changed (application swapped buffers).
    pub const F_BUF_CHANGED: u16 = 0x1;
    /// Request a completion report.
    pub const F_REPORT: u16 = 0x2;
    /// Forward to the host stack.
    pub const F_FORWARD: u16 = 0x4;
    /// Do not learn the source MAC of this frame.
    pub const F_NO_LEARN: u16 = 0x8;
    /// `ptr` holds the payload address (not supported by VALE ports here).
    pub const F_INDIRECT: u16 = 0x10;
    /// More fragments of the same packet follow in the next slot.
    pub const F_MOREFRAG: u16 = 0x20;
    /// Bits 8..15: destination port override (VALE TX) / fragment count (VALE RX).
    pub const PORT_SHIFT: u16 = 8;
}

/// `struct netmap_ring` — a 256-byte header followed by `slot[num_slots]`.
///
/// ```text
///  0 buf_ofs(i64) 8 num_slots 12 nr_buf_size 16 ringid(u16) 18 dir(u16)
/// 20 head 24 cur 28 tail 32 flags 36 (pad) 40 ts(timeval, 16) 56 offset_mask(u64)
/// 64 buf_align(u64) 72 .. 128 (pad) 128 sem[128] 256 slot[0]
/// ```
pub mod ring {
    /// Size of the header; `slot[0]` starts here.
    pub const HEADER_SIZE: usize = 256;
    /// `i64 buf_ofs`: offset from the ring to the buffer pool.
    pub const BUF_OFS: usize = 0;
    /// `u32 num_slots`.
    pub const NUM_SLOTS: usize = 8;
    /// `u32 nr_buf_size`.
    pub const NR_BUF_SIZE: usize = 12;
    /// `u16 ringid`.
    pub const RINGID: usize = 16;
    /// `u16 dir`: 0 = TX, 1 = RX.
    pub const DIR: usize = 18;
    /// `u32 head`.
    pub const HEAD: usize = 20;
    /// `u32 cur`.
    pub const CUR: usize = 24;
    /// `u32 tail`.
    pub const TAIL: usize = 28;
    /// `u32 flags`.
    pub const FLAGS: usize = 32;
    /// `struct timeval ts` (16 bytes).
    pub const TS: usize = 40;
    /// `u64 offset_mask`.
    pub const OFFSET_MASK: usize = 56;
    /// `u64 buf_align`.
    pub const BUF_ALIGN: usize = 64;
    /// `u8 sem[128]`.
    pub const SEM: usize = 128;
    /// Offset of `slot[0]`.
    pub const SLOTS: usize = HEADER_SIZE;
    /// `dir` value of a TX ring.
    pub const DIR_TX: u16 = 0;
    /// `dir` value of an RX ring.
    pub const DIR_RX: u16 = 1;
}

/// `struct netmap_if` — 56 bytes followed by `i64 ring_ofs[]`.
///
/// ```text
///  0 name[16] 16 version 20 flags 24 tx_rings 28 rx_rings 32 bufs_head
/// 36 host_tx_rings 40 host_rx_rings 44 spare[3] 56 ring_ofs[0] ...
/// ```
pub mod nif {
    /// Size of the fixed part.
    pub const SIZE: usize = 56;
    /// `char name[16]`.
    pub const NAME: usize = 0;
    /// Length of `name`.
    pub const NAME_LEN: usize = 16;
    /// `u32 version`.
    pub const VERSION: usize = 16;
    /// `u32 flags`.
    pub const FLAGS: usize = 20;
    /// `u32 tx_rings`.
    pub const TX_RINGS: usize = 24;
    /// `u32 rx_rings`.
    pub const RX_RINGS: usize = 28;
    /// `u32 bufs_head`.
    pub const BUFS_HEAD: usize = 32;
    /// `u32 host_tx_rings`.
    pub const HOST_TX_RINGS: usize = 36;
    /// `u32 host_rx_rings`.
    pub const HOST_RX_RINGS: usize = 40;
    /// `u32 spare[3]`.
    pub const SPARE: usize = 44;
    /// `i64 ring_ofs[]`: NIC tx, host tx, NIC rx, host rx, each relative to the netmap_if.
    pub const RING_OFS: usize = SIZE;
}

/// CSB entries (ABI §2): one 64-byte `atok` and one 64-byte `ktoa` per ring.
pub mod csb {
    /// Size of one entry in either array.
    pub const ENTRY_SIZE: usize = 64;
    /// `atok.head`.
    pub const ATOK_HEAD: usize = 0;
    /// `atok.cur`.
    pub const ATOK_CUR: usize = 4;
    /// `atok.appl_need_kick`.
    pub const ATOK_APPL_NEED_KICK: usize = 8;
    /// `atok.sync_flags`.
    pub const ATOK_SYNC_FLAGS: usize = 12;
    /// `ktoa.hwcur`.
    pub const KTOA_HWCUR: usize = 0;
    /// `ktoa.hwtail`.
    pub const KTOA_HWTAIL: usize = 4;
    /// `ktoa.kern_need_kick`.
    pub const KTOA_KERN_NEED_KICK: usize = 8;
}

/// C mirror of `struct netmap_slot`, for layout tests and documentation only.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct NetmapSlot {
    pub buf_idx: u32,
    pub len: u16,
    pub flags: u16,
    pub ptr: u64,
}

/// C mirror of `struct timeval` on x86_64.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}

/// C mirror of the `struct netmap_ring` header, for layout tests and documentation only.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy)]
pub struct NetmapRingHeader {
    pub buf_ofs: i64,
    pub num_slots: u32,
    pub nr_buf_size: u32,
    pub ringid: u16,
    pub dir: u16,
    pub head: u32,
    pub cur: u32,
    pub tail: u32,
    pub flags: u32,
    pub ts: Timeval,
    pub offset_mask: u64,
    pub buf_align: u64,
    pub _pad: [u8; 56],
    pub sem: [u8; 128],
}

/// C mirror of the fixed part of `struct netmap_if`, for layout tests and documentation only.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct NetmapIf {
    pub name: [u8; 16],
    pub version: u32,
    pub flags: u32,
    pub tx_rings: u32,
    pub rx_rings: u32,
    pub bufs_head: u32,
    pub host_tx_rings: u32,
    pub host_rx_rings: u32,
    pub spare: [u32; 3],
}

/// C mirror of `struct nm_csb_atok` (guest to host).
#[repr(C, align(64))]
#[derive(Debug, Default, Clone, Copy)]
pub struct CsbAtok {
    pub head: u32,
    pub cur: u32,
    pub appl_need_kick: u32,
    pub sync_flags: u32,
    pub pad: [u32; 12],
}

/// C mirror of `struct nm_csb_ktoa` (host to guest).
#[repr(C, align(64))]
#[derive(Debug, Default, Clone, Copy)]
pub struct CsbKtoa {
    pub hwcur: u32,
    pub hwtail: u32,
    pub kern_need_kick: u32,
    pub pad: [u32; 13],
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    #[test]
    fn slot_layout() {
        assert_eq!(size_of::<NetmapSlot>(), 16);
        assert_eq!(slot::SIZE, 16);
        assert_eq!(offset_of!(NetmapSlot, buf_idx), slot::BUF_IDX);
        assert_eq!(slot::BUF_IDX, 0);
        assert_eq!(offset_of!(NetmapSlot, len), slot::LEN);
        assert_eq!(slot::LEN, 4);
        assert_eq!(offset_of!(NetmapSlot, flags), slot::FLAGS);
        assert_eq!(slot::FLAGS, 6);
        assert_eq!(offset_of!(NetmapSlot, ptr), slot::PTR);
        assert_eq!(slot::PTR, 8);
    }

    #[test]
    fn slot_flags() {
        assert_eq!(slot::F_BUF_CHANGED, 0x1);
        assert_eq!(slot::F_REPORT, 0x2);
        assert_eq!(slot::F_FORWARD, 0x4);
        assert_eq!(slot::F_NO_LEARN, 0x8);
        assert_eq!(slot::F_INDIRECT, 0x10);
        assert_eq!(slot::F_MOREFRAG, 0x20);
        assert_eq!(slot::PORT_SHIFT, 8);
    }

    #[test]
    fn ring_layout() {
        assert_eq!(size_of::<NetmapRingHeader>(), 256);
        assert_eq!(ring::HEADER_SIZE, 256);
        assert_eq!(ring::SLOTS, 256);
        let pairs = [
            (offset_of!(NetmapRingHeader, buf_ofs), ring::BUF_OFS, 0),
            (offset_of!(NetmapRingHeader, num_slots), ring::NUM_SLOTS, 8),
            (
                offset_of!(NetmapRingHeader, nr_buf_size),
                ring::NR_BUF_SIZE,
                12,
            ),
            (offset_of!(NetmapRingHeader, ringid), ring::RINGID, 16),
            (offset_of!(NetmapRingHeader, dir), ring::DIR, 18),
            (offset_of!(NetmapRingHeader, head), ring::HEAD, 20),
            (offset_of!(NetmapRingHeader, cur), ring::CUR, 24),
            (offset_of!(NetmapRingHeader, tail), ring::TAIL, 28),
            (offset_of!(NetmapRingHeader, flags), ring::FLAGS, 32),
            (offset_of!(NetmapRingHeader, ts), ring::TS, 40),
            (
                offset_of!(NetmapRingHeader, offset_mask),
                ring::OFFSET_MASK,
                56,
            ),
            (offset_of!(NetmapRingHeader, buf_align), ring::BUF_ALIGN, 64),
            (offset_of!(NetmapRingHeader, sem), ring::SEM, 128),
        ];
        for (c, ours, abi) in pairs {
            assert_eq!(c, abi);
            assert_eq!(ours, abi);
        }
        assert_eq!(size_of::<Timeval>(), 16);
        assert_eq!(ring::DIR_TX, 0);
        assert_eq!(ring::DIR_RX, 1);
    }

    #[test]
    fn if_layout() {
        assert_eq!(size_of::<NetmapIf>(), 56);
        assert_eq!(nif::SIZE, 56);
        assert_eq!(nif::RING_OFS, 56);
        let pairs = [
            (offset_of!(NetmapIf, name), nif::NAME, 0),
            (offset_of!(NetmapIf, version), nif::VERSION, 16),
            (offset_of!(NetmapIf, flags), nif::FLAGS, 20),
            (offset_of!(NetmapIf, tx_rings), nif::TX_RINGS, 24),
            (offset_of!(NetmapIf, rx_rings), nif::RX_RINGS, 28),
            (offset_of!(NetmapIf, bufs_head), nif::BUFS_HEAD, 32),
            (offset_of!(NetmapIf, host_tx_rings), nif::HOST_TX_RINGS, 36),
            (offset_of!(NetmapIf, host_rx_rings), nif::HOST_RX_RINGS, 40),
            (offset_of!(NetmapIf, spare), nif::SPARE, 44),
        ];
        for (c, ours, abi) in pairs {
            assert_eq!(c, abi);
            assert_eq!(ours, abi);
        }
        assert_eq!(nif::NAME_LEN, 16);
        assert_eq!(NETMAP_API, 14);
    }

    #[test]
    fn csb_layout() {
        assert_eq!(size_of::<CsbAtok>(), 64);
        assert_eq!(size_of::<CsbKtoa>(), 64);
        assert_eq!(csb::ENTRY_SIZE, 64);
        assert_eq!(offset_of!(CsbAtok, head), csb::ATOK_HEAD);
        assert_eq!(csb::ATOK_HEAD, 0);
        assert_eq!(offset_of!(CsbAtok, cur), csb::ATOK_CUR);
        assert_eq!(csb::ATOK_CUR, 4);
        assert_eq!(
            offset_of!(CsbAtok, appl_need_kick),
            csb::ATOK_APPL_NEED_KICK
        );
        assert_eq!(csb::ATOK_APPL_NEED_KICK, 8);
        assert_eq!(offset_of!(CsbAtok, sync_flags), csb::ATOK_SYNC_FLAGS);
        assert_eq!(csb::ATOK_SYNC_FLAGS, 12);
        assert_eq!(offset_of!(CsbAtok, pad), 16);
        assert_eq!(offset_of!(CsbKtoa, hwcur), csb::KTOA_HWCUR);
        assert_eq!(csb::KTOA_HWCUR, 0);
        assert_eq!(offset_of!(CsbKtoa, hwtail), csb::KTOA_HWTAIL);
        assert_eq!(csb::KTOA_HWTAIL, 4);
        assert_eq!(
            offset_of!(CsbKtoa, kern_need_kick),
            csb::KTOA_KERN_NEED_KICK
        );
        assert_eq!(csb::KTOA_KERN_NEED_KICK, 8);
        assert_eq!(offset_of!(CsbKtoa, pad), 12);
    }
}
