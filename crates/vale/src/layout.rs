//! Byte layouts of the switch file and of the switch-private area of a port file.
//!
//! Switch file `<dir>/ptvmm-vale.<X>` (all little-endian, 4 KiB pages):
//! ```text
//! 0       header: magic u64, version u32, max_ports u32, port_version u32, next_gen u32
//! 4096    port table: 256 entries x 256 bytes (entries 0..254 usable)
//!           +0   state u32 (0 free, 1 active)    +4  owner pid u32 (0: none)  +8  gen u32
//!           +12  tx_rings  +16 rx_rings  +20 tx_slots  +24 rx_slots  +28 buf_size
//!           +32  region_size u64   +40 file_size u64   +48 flags u32 (bit 0: lossless,
//!                                                           bit 1: persistent)
//!           +52  vnet_hdr_len u32 (0, 10 or 12: the virtio-net header on its frames)
//!           +64  name [u8; 64] (the Y of valeX:Y, NUL padded)
//!           +128 tx_pkts u64 +136 tx_bytes u64 +144 tx_bad u64        (written by the owner)
//!           +192 rx_pkts u64 +200 rx_bytes u64 +208 rx_drops u64      (written by senders)
//! 69632   MAC table: 4096 x u64 = mac << 16 | gen8 << 8 | (port + 1); 0 = empty
//! 102400  end
//! ```
//!
//! Port file `<dir>/ptvmm-vale.<X>.<port>.<gen>`: the netmap region (`0..region_size`, the
//! part a guest may map), then the switch-private state no guest can reach:
//! ```text
//! region_size + 64*i              TX ring i: hwcur u32, hwtail u32
//! rx_base + i*rx_stride           RX ring i:
//!   +0   lock u32 (owner tid)  +4 hwlease u32  +8 lease_idx u32  +12 lease_first u32
//!   +64  hwtail u32                                   (published by senders)
//!   +128 hwcur u32  +132 need_kick u32                (written by the receiver)
//!   +192 seq u32                                      (futex word: arrivals, wakers)
//!   +196 space_wanted u32                             (set by held lossless senders)
//!   +200 space_seq u32                                (futex word: the receiver freed slots)
//!   +256 leases[rx_slots]: end u32, owner tid u32 (0 = complete)
//! ```

use netmap::RegionLayout;

/// `"PTVMMVAL"` little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"PTVMMVAL");
/// Bumped on any incompatible change of these layouts (2: port flags, space_wanted and
/// space_seq for lossless senders; 3: the virtio-net header length of each port; 4: persistent
/// ports, whose owner may be 0 and which a version-3 party would reclaim as dead).
pub const VERSION: u32 = 4;
/// Ports per switch (netmap's VALE limit).
pub const MAX_PORTS: u32 = 254;

pub const HDR_MAGIC: usize = 0;
pub const HDR_VERSION: usize = 8;
pub const HDR_MAX_PORTS: usize = 12;
pub const HDR_PORT_VERSION: usize = 16;
pub const HDR_NEXT_GEN: usize = 20;

pub const TABLE_OFS: usize = 4096;
pub const ENTRY_SIZE: usize = 256;
pub const TABLE_ENTRIES: usize = 256;

pub const E_STATE: usize = 0;
pub const E_OWNER: usize = 4;
pub const E_GEN: usize = 8;
pub const E_TX_RINGS: usize = 12;
pub const E_RX_RINGS: usize = 16;
pub const E_TX_SLOTS: usize = 20;
pub const E_RX_SLOTS: usize = 24;
pub const E_BUF_SIZE: usize = 28;
pub const E_REGION_SIZE: usize = 32;
pub const E_FILE_SIZE: usize = 40;
pub const E_FLAGS: usize = 48;
pub const E_HDR_LEN: usize = 52;
pub const E_NAME: usize = 64;
pub const NAME_MAX: usize = 63;
pub const E_TX_PKTS: usize = 128;
pub const E_TX_BYTES: usize = 136;
pub const E_TX_BAD: usize = 144;
pub const E_RX_PKTS: usize = 192;
pub const E_RX_BYTES: usize = 200;
pub const E_RX_DROPS: usize = 208;

pub const STATE_FREE: u32 = 0;
pub const STATE_ACTIVE: u32 = 1;

/// `E_FLAGS` bit: the port's TX rings are lossless (a full destination holds the sender).
pub const FLAG_LOSSLESS: u32 = 1;
/// `E_FLAGS` bit: the port was made by `ptvmm-vale-ctl create` and stays until removed; its
/// opener attaches to it (owner = its pid) and detaches on close (owner back to 0).
pub const FLAG_PERSISTENT: u32 = 2;

pub const MAC_OFS: usize = TABLE_OFS + TABLE_ENTRIES * ENTRY_SIZE;
pub const MAC_BUCKETS: usize = 4096;
pub const SWITCH_FILE_SIZE: usize = MAC_OFS + MAC_BUCKETS * 8;

/// Offset of port `idx`'s table entry.
pub fn entry(idx: u32) -> usize {
    TABLE_OFS + idx as usize * ENTRY_SIZE
}

pub const TX_STATE_SIZE: usize = 64;
pub const TX_HWCUR: usize = 0;
pub const TX_HWTAIL: usize = 4;

pub const RX_LOCK: usize = 0;
pub const RX_HWLEASE: usize = 4;
pub const RX_LEASE_IDX: usize = 8;
pub const RX_LEASE_FIRST: usize = 12;
pub const RX_HWTAIL: usize = 64;
pub const RX_HWCUR: usize = 128;
pub const RX_NEED_KICK: usize = 132;
pub const RX_SEQ: usize = 192;
pub const RX_SPACE_WANTED: usize = 196;
pub const RX_SPACE_SEQ: usize = 200;
pub const RX_LEASES: usize = 256;

/// Where the private state of a port lives inside its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivLayout {
    pub region_size: usize,
    pub tx_rings: u32,
    pub rx_rings: u32,
    pub rx_slots: u32,
    pub file_size: usize,
}

impl PrivLayout {
    pub fn new(l: &RegionLayout) -> Self {
        let c = l.config;
        let priv_size = c.tx_rings as usize * TX_STATE_SIZE
            + c.rx_rings as usize * Self::rx_stride_for(c.rx_slots);
        PrivLayout {
            region_size: l.size,
            tx_rings: c.tx_rings,
            rx_rings: c.rx_rings,
            rx_slots: c.rx_slots,
            file_size: l.size + priv_size.div_ceil(4096) * 4096,
        }
    }

    fn rx_stride_for(slots: u32) -> usize {
        (RX_LEASES + 8 * slots as usize).div_ceil(64) * 64
    }

    /// Offset of TX ring `i`'s state.
    pub fn tx(&self, i: u32) -> usize {
        assert!(i < self.tx_rings);
        self.region_size + i as usize * TX_STATE_SIZE
    }

    /// Offset of RX ring `i`'s state.
    pub fn rx(&self, i: u32) -> usize {
        assert!(i < self.rx_rings);
        self.region_size
            + self.tx_rings as usize * TX_STATE_SIZE
            + i as usize * Self::rx_stride_for(self.rx_slots)
    }
}

#[cfg(test)]
mod tests {
    use netmap::RegionConfig;

    use super::*;

    #[test]
    fn switch_file_layout() {
        assert_eq!(MAC_OFS, 69632);
        assert_eq!(SWITCH_FILE_SIZE, 102400);
        assert_eq!(SWITCH_FILE_SIZE % 4096, 0);
        assert_eq!(entry(MAX_PORTS - 1) + ENTRY_SIZE, TABLE_OFS + 254 * 256);
        const { assert!(E_RX_DROPS + 8 <= ENTRY_SIZE) };
        const { assert!(E_NAME + NAME_MAX < E_TX_PKTS) };
    }

    #[test]
    fn private_area_follows_region() {
        let l = RegionLayout::new(RegionConfig::default()).unwrap();
        let p = PrivLayout::new(&l);
        assert_eq!(p.tx(0), l.size);
        assert_eq!(p.rx(0), l.size + 64);
        assert!(p.rx(0) + RX_LEASES + 8 * 1024 <= p.file_size);
        assert_eq!(p.file_size % 4096, 0);
        assert_eq!(p.rx(0) % 64, 0);
    }
}
