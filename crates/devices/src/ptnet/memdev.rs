//! The ptnetmap-memdev PCI function: exposes a netmap port's memory region to the guest
//! (BAR1, mapped by the VMM with a KVM memory slot: zero copy) and describes its pools in
//! read-only registers (BAR0).
//!
//! ```text
//!  BAR0  I/O, 128 bytes     read-only registers (netmap::ptnet, regs.rs), writes ignored
//!  BAR1  32-bit prefetchable memory, next power of two >= region size;
//!        [0, size) is the region, the rest is not backed. Not on the MMIO bus:
//!        the VMM installs a memory slot and moves it on every BarChange of BAR1.
//! ```

use std::sync::Arc;

use netmap::{NetmapPort, RegionInfo};

use super::regs::{self, memdev::*, MEMDEV_BAR0_SIZE, MEMDEV_REGS};
use super::PtnetError;
use crate::pci::{BarChange, BarKind, ConfigSpace, HostResource, PciDevice, PciIds};

/// PCI class "memory controller / other".
pub const CLASS: u8 = 0x05;
pub const SUBCLASS: u8 = 0x80;
/// The BAR holding the registers and the one holding the region.
pub const REGS_BAR: u8 = netmap::ptnet::MEMDEV_REGS_BAR;
pub const MEM_BAR: u8 = netmap::ptnet::MEMDEV_MEM_BAR;
/// Smallest memory BAR the config space accepts.
const MIN_MEM_BAR: u64 = 4096;

/// The memdev function of one port.
pub struct PtnetMemdev {
    config: ConfigSpace,
    /// Register file: the value of each register of [`MEMDEV_REGS`], in its order.
    regs: [u32; MEMDEV_REGS.len()],
    region: RegionInfo,
    bar1_size: u64,
    memid: u16,
    /// Keeps the port, and so `region.fd` and `region.mem`, alive.
    _port: Arc<dyn NetmapPort>,
}

impl PtnetMemdev {
    /// The memdev of `port`, with allocator id `memid` (the NIC's HOSTMEMID).
    pub fn new(port: Arc<dyn NetmapPort>, memid: u16) -> Result<Self, PtnetError> {
        let region = port.region();
        let size = region.size as u64;
        let bar1_size = size.max(MIN_MEM_BAR).next_power_of_two();
        let mut config = ConfigSpace::new(PciIds {
            vendor: regs::VENDOR_ID,
            device: regs::MEMDEV_DEVICE_ID,
            class: CLASS,
            subclass: SUBCLASS,
            subsystem_vendor: regs::SUBSYSTEM_VENDOR_ID,
            subsystem: regs::SUBSYSTEM_ID,
            ..Default::default()
        });
        config.add_bar(REGS_BAR.into(), BarKind::Io, MEMDEV_BAR0_SIZE)?;
        config
            .add_bar(
                MEM_BAR.into(),
                BarKind::Memory32 { prefetchable: true },
                bar1_size,
            )
            .map_err(|_| PtnetError::RegionTooLarge(region.size))?;
        let l = &region.layout;
        let value = |off| match off {
            MEMSIZE_LO => size as u32,
            MEMSIZE_HI => (size >> 32) as u32,
            MEMID => memid.into(),
            IF_POOL_OFS => l.if_pool.offset as u32,
            IF_POOL_OBJNUM => l.if_pool.objnum,
            IF_POOL_OBJSZ => l.if_pool.objsz,
            RING_POOL_OFS => l.ring_pool.offset as u32,
            RING_POOL_OBJNUM => l.ring_pool.objnum,
            RING_POOL_OBJSZ => l.ring_pool.objsz,
            BUF_POOL_OFS => l.buf_pool.offset as u32,
            BUF_POOL_OBJNUM => l.buf_pool.objnum,
            BUF_POOL_OBJSZ => l.buf_pool.objsz,
            _ => 0,
        };
        let regs = std::array::from_fn(|i| value(MEMDEV_REGS[i].offset));
        Ok(Self {
            config,
            regs,
            region,
            bar1_size,
            memid,
            _port: port,
        })
    }

    /// The region to map at BAR1: `fd` (bytes `0..size`), `size` and this process's mapping
    /// `mem` (`mem.as_ptr()` is the userspace address of the KVM memory slot, `size` bytes).
    pub fn region(&self) -> RegionInfo {
        self.region
    }

    /// Size of BAR1 (a power of two >= the region size).
    pub fn bar1_size(&self) -> u64 {
        self.bar1_size
    }

    /// The allocator id in MEMID.
    pub fn memid(&self) -> u16 {
        self.memid
    }

    /// The guest-physical address BAR1 decodes now (memory decode on, address assigned).
    pub fn bar1_address(&self) -> Option<u64> {
        self.config.decoded_address(MEM_BAR.into())
    }

    /// Register value at `off`: 0 where [`MEMDEV_REGS`] has no register (reserved, past END).
    fn reg(&self, off: u64) -> u32 {
        regs::index(MEMDEV_REGS, off).map_or(0, |i| self.regs[i])
    }
}

impl PciDevice for PtnetMemdev {
    fn config_read(&mut self, reg: usize) -> u32 {
        self.config.read_reg(reg)
    }

    fn config_write(&mut self, reg: usize, offset: u64, data: &[u8]) -> Vec<BarChange> {
        self.config.write_config(reg, offset, data)
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if bar != REGS_BAR {
            return;
        }
        if let Some(off) = regs::decode(offset, data.len()) {
            data.copy_from_slice(&self.reg(off).to_le_bytes());
        }
    }

    fn bar_on_bus(&self, bar: u8) -> bool {
        bar != MEM_BAR
    }

    /// BAR1 is the port's region itself (zero copy).
    fn host_resources(&self) -> Vec<HostResource> {
        vec![HostResource::Memory {
            bar: MEM_BAR,
            mem: self.region.mem,
            keep: Arc::new(self._port.clone()),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ptnet::testutil::open_port;
    use vale::fuzzing::TempDir;

    fn read(m: &mut PtnetMemdev, off: u64) -> u32 {
        let mut b = [0xcc; 4];
        m.bar_read(REGS_BAR, off, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn identity_bars_and_registers() {
        let dir = TempDir::new("memdev");
        let port = open_port(&dir, "valeM:1", 1, 1, 64);
        let info = port.region();
        let mut m = PtnetMemdev::new(port, 7).unwrap();
        assert_eq!(m.config_read(0), 0x000c_1b36);
        assert_eq!(m.config_read(2) >> 16, 0x0580);
        assert_eq!(m.config_read(11), 0x0001_1b36);
        assert_eq!(m.config_read(4), 1, "BAR0 is I/O");
        assert_eq!(m.config_read(5), 0x8, "BAR1 is 32-bit prefetchable memory");
        m.config_write(4, 0, &[0xff; 4]);
        m.config_write(5, 0, &[0xff; 4]);
        assert_eq!(m.config_read(4), !(128 - 1) | 1);
        let size = info.size as u64;
        assert!(m.bar1_size().is_power_of_two() && m.bar1_size() >= size);
        assert!(m.bar1_size() < 2 * size.max(4096));
        assert_eq!(m.config_read(5), !(m.bar1_size() as u32 - 1) | 0x8);
        assert!(m.bar_on_bus(0));
        assert!(!m.bar_on_bus(1));

        let l = info.layout;
        let expect = [
            (MEMSIZE_LO, size as u32),
            (MEMSIZE_HI, 0),
            (MEMID, 7),
            (IF_POOL_OFS, l.if_pool.offset as u32),
            (IF_POOL_OBJNUM, l.if_pool.objnum),
            (IF_POOL_OBJSZ, l.if_pool.objsz),
            (RING_POOL_OFS, l.ring_pool.offset as u32),
            (RING_POOL_OBJNUM, l.ring_pool.objnum),
            (RING_POOL_OBJSZ, l.ring_pool.objsz),
            (BUF_POOL_OFS, l.buf_pool.offset as u32),
            (BUF_POOL_OBJNUM, l.buf_pool.objnum),
            (BUF_POOL_OBJSZ, 2048),
        ];
        assert_eq!(expect.len(), regs::MEMDEV_REGS.len());
        for (off, v) in expect {
            assert_eq!(read(&mut m, off), v, "register {off}");
            m.bar_write(REGS_BAR, off, &0xdead_beefu32.to_le_bytes());
            assert_eq!(read(&mut m, off), v, "register {off} is read-only");
            assert_eq!(read(&mut m, off + 256), v, "offsets are masked with 0xff");
        }
        for off in (END..256).step_by(4) {
            assert_eq!(read(&mut m, off), 0);
        }
        assert_eq!(read(&mut m, 12), 0, "reserved");
        let mut b = [0xcc; 2];
        m.bar_read(REGS_BAR, 0, &mut b);
        assert_eq!(b, [0, 0], "2-byte accesses read 0");
        assert_eq!(m.memid(), 7);
        assert_eq!(m.region().size, info.size);
    }

    #[test]
    fn bar1_follows_the_guest() {
        let dir = TempDir::new("memdev");
        let port = open_port(&dir, "valeM:2", 1, 1, 64);
        let mut m = PtnetMemdev::new(port, 1).unwrap();
        assert_eq!(m.bar1_address(), None);
        m.config_write(5, 0, &0xc000_0000u32.to_le_bytes());
        let ch = m.config_write(1, 0, &[0x02, 0]);
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].bar, MEM_BAR);
        assert_eq!(ch[0].new, Some(0xc000_0000));
        assert_eq!(ch[0].size, m.bar1_size());
        assert_eq!(m.bar1_address(), Some(0xc000_0000));
    }
}
