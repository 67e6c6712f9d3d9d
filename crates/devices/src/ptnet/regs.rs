//! The register maps of the two ptnet PCI functions (ABI §1), declared as data.
//!
//! ```text
//!  ptnet NIC, BAR0 (I/O, 256 bytes, 4-byte accesses, offset & 0xff)
//!   0 PTFEAT        RW  offered & wanted; bit 0 = VNET_HDR
//!   4 PTCTL         RW  write 1 CREATE / 2 DELETE; read = 0 or a positive errno
//!   8 MAC_LO        RO  mac[2]<<24 | mac[3]<<16 | mac[4]<<8 | mac[5]
//!  12 MAC_HI        RO  mac[0]<<8 | mac[1]
//!  16 CSBBAH        --  deprecated, reads 0, writes ignored
//!  20 CSBBAL        --  deprecated, reads 0, writes ignored
//!  24 NIFP_OFS      RO  offset of the netmap_if in the region
//!  28 NUM_TX_RINGS  RO
//!  32 NUM_RX_RINGS  RO
//!  36 NUM_TX_SLOTS  RO
//!  40 NUM_RX_SLOTS  RO
//!  44 VNET_HDR_LEN  RW  0, 10 or 12, kept only if the backend accepts it
//!  48 HOSTMEMID     RO  MEMID of the memdev holding the region
//!  52 CSB_GH_BAH    RW  guest-to-host CSB array, high half
//!  56 CSB_GH_BAL    RW  low half: maps (or with 0, unmaps) the array; stops the workers
//!  60 CSB_HG_BAH    RW  host-to-guest CSB array, high half
//!  64 CSB_HG_BAL    RW  as GH_BAL
//!  68 END           --  68..128 read 0, writes ignored
//! 128 + 4*i KICK(i) W   doorbell of ring i (TX 0..ntx-1, then RX); reads 0
//!
//!  ptnetmap-memdev, BAR0 (I/O, 128 bytes, all read-only)
//!   0 MEMSIZE_LO   4 MEMSIZE_HI   8 MEMID
//!  64 IF_POOL_OFS     68 IF_POOL_OBJNUM    72 IF_POOL_OBJSZ
//!  76 RING_POOL_OFS   80 RING_POOL_OBJNUM  84 RING_POOL_OBJSZ
//!  88 BUF_POOL_OFS    92 BUF_POOL_OBJNUM   96 BUF_POOL_OBJSZ    100 END
//! ```

/// PCI identity shared by both functions (Red Hat's QEMU range, as netmap uses it).
pub const VENDOR_ID: u16 = 0x1b36;
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x1b36;
pub const SUBSYSTEM_ID: u16 = 1;
pub const MEMDEV_DEVICE_ID: u16 = 0x000c;
pub const NIC_DEVICE_ID: u16 = 0x000d;

/// Register window sizes.
pub const NIC_BAR0_SIZE: u64 = 256;
pub const MEMDEV_BAR0_SIZE: u64 = 128;

/// Who may write a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only: writes are ignored.
    Ro,
    /// Read-write.
    Rw,
    /// Deprecated or reserved: reads 0, writes ignored.
    Ignored,
}

/// One register of a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg {
    pub name: &'static str,
    pub offset: u64,
    pub access: Access,
}

const fn reg(name: &'static str, offset: u64, access: Access) -> Reg {
    Reg {
        name,
        offset,
        access,
    }
}

/// NIC register offsets.
pub mod nic {
    pub const PTFEAT: u64 = 0;
    pub const PTCTL: u64 = 4;
    pub const MAC_LO: u64 = 8;
    pub const MAC_HI: u64 = 12;
    pub const CSBBAH: u64 = 16;
    pub const CSBBAL: u64 = 20;
    pub const NIFP_OFS: u64 = 24;
    pub const NUM_TX_RINGS: u64 = 28;
    pub const NUM_RX_RINGS: u64 = 32;
    pub const NUM_TX_SLOTS: u64 = 36;
    pub const NUM_RX_SLOTS: u64 = 40;
    pub const VNET_HDR_LEN: u64 = 44;
    pub const HOSTMEMID: u64 = 48;
    pub const CSB_GH_BAH: u64 = 52;
    pub const CSB_GH_BAL: u64 = 56;
    pub const CSB_HG_BAH: u64 = 60;
    pub const CSB_HG_BAL: u64 = 64;
    pub const END: u64 = 68;
    /// KICK(i) is at `KICK_BASE + 4 * i`.
    pub const KICK_BASE: u64 = 128;

    /// PTCTL commands.
    pub const CMD_CREATE: u32 = 1;
    pub const CMD_DELETE: u32 = 2;

    /// PTFEAT bits.
    pub const FEAT_VNET_HDR: u32 = 1 << 0;

    /// Virtio-net header lengths a guest may ask for.
    pub const VNET_HDR_LENS: [u32; 3] = [0, 10, 12];
}

/// Memdev register offsets.
pub mod memdev {
    pub const MEMSIZE_LO: u64 = 0;
    pub const MEMSIZE_HI: u64 = 4;
    pub const MEMID: u64 = 8;
    pub const IF_POOL_OFS: u64 = 64;
    pub const IF_POOL_OBJNUM: u64 = 68;
    pub const IF_POOL_OBJSZ: u64 = 72;
    pub const RING_POOL_OFS: u64 = 76;
    pub const RING_POOL_OBJNUM: u64 = 80;
    pub const RING_POOL_OBJSZ: u64 = 84;
    pub const BUF_POOL_OFS: u64 = 88;
    pub const BUF_POOL_OBJNUM: u64 = 92;
    pub const BUF_POOL_OBJSZ: u64 = 96;
    pub const END: u64 = 100;
}

/// Every NIC register below KICK, in offset order.
pub const NIC_REGS: &[Reg] = &[
    reg("PTFEAT", nic::PTFEAT, Access::Rw),
    reg("PTCTL", nic::PTCTL, Access::Rw),
    reg("MAC_LO", nic::MAC_LO, Access::Ro),
    reg("MAC_HI", nic::MAC_HI, Access::Ro),
    reg("CSBBAH", nic::CSBBAH, Access::Ignored),
    reg("CSBBAL", nic::CSBBAL, Access::Ignored),
    reg("NIFP_OFS", nic::NIFP_OFS, Access::Ro),
    reg("NUM_TX_RINGS", nic::NUM_TX_RINGS, Access::Ro),
    reg("NUM_RX_RINGS", nic::NUM_RX_RINGS, Access::Ro),
    reg("NUM_TX_SLOTS", nic::NUM_TX_SLOTS, Access::Ro),
    reg("NUM_RX_SLOTS", nic::NUM_RX_SLOTS, Access::Ro),
    reg("VNET_HDR_LEN", nic::VNET_HDR_LEN, Access::Rw),
    reg("HOSTMEMID", nic::HOSTMEMID, Access::Ro),
    reg("CSB_GH_BAH", nic::CSB_GH_BAH, Access::Rw),
    reg("CSB_GH_BAL", nic::CSB_GH_BAL, Access::Rw),
    reg("CSB_HG_BAH", nic::CSB_HG_BAH, Access::Rw),
    reg("CSB_HG_BAL", nic::CSB_HG_BAL, Access::Rw),
];

/// Every memdev register, in offset order (all read-only).
pub const MEMDEV_REGS: &[Reg] = &[
    reg("MEMSIZE_LO", memdev::MEMSIZE_LO, Access::Ro),
    reg("MEMSIZE_HI", memdev::MEMSIZE_HI, Access::Ro),
    reg("MEMID", memdev::MEMID, Access::Ro),
    reg("IF_POOL_OFS", memdev::IF_POOL_OFS, Access::Ro),
    reg("IF_POOL_OBJNUM", memdev::IF_POOL_OBJNUM, Access::Ro),
    reg("IF_POOL_OBJSZ", memdev::IF_POOL_OBJSZ, Access::Ro),
    reg("RING_POOL_OFS", memdev::RING_POOL_OFS, Access::Ro),
    reg("RING_POOL_OBJNUM", memdev::RING_POOL_OBJNUM, Access::Ro),
    reg("RING_POOL_OBJSZ", memdev::RING_POOL_OBJSZ, Access::Ro),
    reg("BUF_POOL_OFS", memdev::BUF_POOL_OFS, Access::Ro),
    reg("BUF_POOL_OBJNUM", memdev::BUF_POOL_OBJNUM, Access::Ro),
    reg("BUF_POOL_OBJSZ", memdev::BUF_POOL_OBJSZ, Access::Ro),
];

/// The register offset a 4-byte access at `offset` of a BAR0 hits, or `None` for accesses
/// that are not 4 bytes wide or not 4-byte aligned (reads return 0, writes are ignored).
pub fn decode(offset: u64, len: usize) -> Option<u64> {
    let off = offset & 0xff;
    (len == 4 && off.is_multiple_of(4)).then_some(off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_sorted_dense_and_end_where_the_abi_says() {
        for map in [NIC_REGS, MEMDEV_REGS] {
            assert!(map.windows(2).all(|w| w[0].offset < w[1].offset));
            assert!(map.iter().all(|r| r.offset.is_multiple_of(4)));
        }
        assert_eq!(NIC_REGS.last().unwrap().offset + 4, nic::END);
        assert_eq!(MEMDEV_REGS.last().unwrap().offset + 4, memdev::END);
        assert_eq!(NIC_REGS.len(), 17);
        const { assert!(nic::END <= nic::KICK_BASE) };
    }

    #[test]
    fn decode_masks_and_rejects_odd_accesses() {
        assert_eq!(decode(0x104, 4), Some(4));
        assert_eq!(decode(8, 4), Some(8));
        assert_eq!(decode(8, 2), None);
        assert_eq!(decode(9, 4), None);
        assert_eq!(decode(u64::MAX - 3, 4), Some(0xfc));
    }
}
