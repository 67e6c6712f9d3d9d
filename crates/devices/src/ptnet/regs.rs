//! The register maps of the two ptnet PCI functions (ABI §1) as data — name, offset, access —
//! and the decoding of a BAR0 access. The offsets, ids and sizes themselves are
//! [`netmap::ptnet`]'s (the register drawing is there), re-exported here for the device models.

pub use netmap::ptnet::{
    memdev, nic, MEMDEV_BAR0_SIZE, MEMDEV_DEVICE_ID, NIC_BAR0_SIZE, NIC_DEVICE_ID, REG_OFFSET_MASK,
    SUBSYSTEM_ID, SUBSYSTEM_VENDOR_ID, VENDOR_ID,
};

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

/// Position in `map` of the register at offset `off`, or `None` where `map` has none
/// (reserved offsets, past END, the NIC's kick window).
pub fn index(map: &[Reg], off: u64) -> Option<usize> {
    map.binary_search_by_key(&off, |r| r.offset).ok()
}

/// Who may access offset `off` of `map`: the table's entry, [`Access::Ignored`] where it
/// has none. The NIC and the memdev decide with it which reads return a value and which
/// writes take effect.
pub fn access(map: &[Reg], off: u64) -> Access {
    index(map, off).map_or(Access::Ignored, |i| map[i].access)
}

/// The register offset a 4-byte access at `offset` of a BAR0 hits, or `None` for accesses
/// that are not 4 bytes wide or not 4-byte aligned (reads return 0, writes are ignored).
pub fn decode(offset: u64, len: usize) -> Option<u64> {
    let off = offset & REG_OFFSET_MASK;
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
    fn lookups_find_every_register_and_nothing_else() {
        for map in [NIC_REGS, MEMDEV_REGS] {
            for (i, r) in map.iter().enumerate() {
                assert_eq!(index(map, r.offset), Some(i), "{}", r.name);
                assert_eq!(access(map, r.offset), r.access, "{}", r.name);
            }
        }
        for off in [nic::END, 124, nic::KICK_BASE, nic::kick(31), 2, u64::MAX] {
            assert_eq!(index(NIC_REGS, off), None, "{off}");
            assert_eq!(access(NIC_REGS, off), Access::Ignored, "{off}");
        }
        for off in [12, 60, memdev::END, 124] {
            assert_eq!(index(MEMDEV_REGS, off), None, "{off}");
        }
        assert_eq!(access(NIC_REGS, nic::MAC_LO), Access::Ro);
        assert_eq!(access(NIC_REGS, nic::CSBBAL), Access::Ignored);
        assert_eq!(access(NIC_REGS, nic::CSB_HG_BAL), Access::Rw);
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
