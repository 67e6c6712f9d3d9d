//! PCI bus 0 and configuration mechanism #1: [`PciRoot`] holds the functions by device
//! number, [`PciConfigIo`] is the [`BusDevice`] at ports 0xcf8–0xcff that the guest uses to
//! reach their config spaces.
//!
//! ```text
//!  CONFIG_ADDRESS (0xcf8, 32-bit latch; byte/word writes merge at offset*8)
//!   31 enable │ 30..28 reserved │ 27..24 extended register (AMD) │ 23..16 bus │ 15..11 device │ 10..8 function │ 7..2 register │ 1..0 = 0
//!  CONFIG_DATA (0xcfc..0xcff): the addressed register; an access at 0xcfc + k of n bytes
//!   reaches bytes k..k+n of it (k + n <= 4)
//! ```
//!
//! Absent functions, other buses, extended registers (there are only 256 bytes of config
//! space; such accesses must not alias the first 256), and data accesses with the enable
//! bit clear read all ones and ignore writes.

use super::device::{lock_device, SharedPciDevice};
use super::router::BarRouter;
use crate::BusDevice;

/// Length of the config mechanism #1 port range (0xcf8..=0xcff).
pub const CONFIG_IO_LEN: u64 = 8;
/// Device numbers on a bus.
pub const NUM_DEVICES: usize = 32;

const ENABLE: u32 = 1 << 31;
/// Reserved and AMD extended-register bits: set, they address no register of ours.
const RESERVED: u32 = 0x7f00_0000;
const DATA_OFFSET: u64 = 4;

/// Errors of adding a function to bus 0.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PciBusError {
    #[error("PCI device number {0} is out of range")]
    BadDeviceNumber(u8),
    #[error("PCI device number {0} is taken")]
    SlotTaken(u8),
    #[error("PCI bus 0 is full")]
    Full,
}

/// Bus 0: function 0 of up to 32 devices.
#[derive(Default)]
pub struct PciRoot {
    devices: [Option<SharedPciDevice>; NUM_DEVICES],
}

impl PciRoot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `device` at device number `devnum`.
    pub fn add(&mut self, devnum: u8, device: SharedPciDevice) -> Result<(), PciBusError> {
        let slot = self
            .devices
            .get_mut(usize::from(devnum))
            .ok_or(PciBusError::BadDeviceNumber(devnum))?;
        if slot.is_some() {
            return Err(PciBusError::SlotTaken(devnum));
        }
        *slot = Some(device);
        Ok(())
    }

    /// Puts `device` at the lowest free device number and returns it.
    pub fn add_next(&mut self, device: SharedPciDevice) -> Result<u8, PciBusError> {
        let free = self
            .devices
            .iter()
            .position(Option::is_none)
            .ok_or(PciBusError::Full)? as u8;
        self.add(free, device)?;
        Ok(free)
    }

    pub fn device(&self, devnum: u8) -> Option<&SharedPciDevice> {
        self.devices.get(usize::from(devnum))?.as_ref()
    }
}

/// Configuration mechanism #1 on ports 0xcf8–0xcff.
pub struct PciConfigIo {
    address: u32,
    root: PciRoot,
    router: BarRouter,
}

impl PciConfigIo {
    pub fn new(root: PciRoot, router: BarRouter) -> Self {
        Self {
            address: 0,
            root,
            router,
        }
    }

    pub fn root_mut(&mut self) -> &mut PciRoot {
        &mut self.root
    }

    pub fn router_mut(&mut self) -> &mut BarRouter {
        &mut self.router
    }

    /// The addressed function's device number and register, if enabled on bus 0,
    /// function 0, and present.
    fn target(&self) -> Option<(u8, usize, &SharedPciDevice)> {
        let a = self.address;
        let bus = (a >> 16) & 0xff;
        let dev = ((a >> 11) & 0x1f) as u8;
        let func = (a >> 8) & 0x7;
        let reg = ((a >> 2) & 0x3f) as usize;
        if a & ENABLE == 0 || a & RESERVED != 0 || bus != 0 || func != 0 {
            return None;
        }
        Some((dev, reg, self.root.device(dev)?))
    }

    fn read_data(&self, k: u64, data: &mut [u8]) {
        data.fill(0xff);
        if k as usize + data.len() > 4 {
            return;
        }
        if let Some((_, reg, dev)) = self.target() {
            let v = lock_device(dev).config_read(reg).to_le_bytes();
            data.copy_from_slice(&v[k as usize..k as usize + data.len()]);
        }
    }

    fn write_data(&mut self, k: u64, data: &[u8]) {
        if k as usize + data.len() > 4 {
            return;
        }
        let Some((devnum, reg, dev)) = self.target() else {
            return;
        };
        let dev = dev.clone();
        let changes = lock_device(&dev).config_write(reg, k, data);
        if !changes.is_empty() {
            self.router.apply(devnum, &dev, &changes);
        }
    }
}

impl BusDevice for PciConfigIo {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= DATA_OFFSET {
            self.read_data(offset - DATA_OFFSET, data);
            return;
        }
        let v = self.address.to_le_bytes();
        match v.get(offset as usize..offset as usize + data.len()) {
            Some(b) => data.copy_from_slice(b),
            None => data.fill(0xff),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= DATA_OFFSET {
            self.write_data(offset - DATA_OFFSET, data);
            return;
        }
        let mut v = self.address.to_le_bytes();
        if let Some(b) = v.get_mut(offset as usize..offset as usize + data.len()) {
            b.copy_from_slice(data);
            self.address = u32::from_le_bytes(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::pci::{BarKind, ConfigSpace, HostBridge, PciDevice, PciIds, COMMAND_IO};
    use crate::Bus;

    /// A function with one 16-byte I/O BAR whose registers read back what was written.
    struct Mock {
        config: ConfigSpace,
        regs: [u8; 16],
    }

    impl PciDevice for Mock {
        fn config_read(&mut self, reg: usize) -> u32 {
            self.config.read_reg(reg)
        }
        fn config_write(&mut self, reg: usize, o: u64, d: &[u8]) -> Vec<crate::pci::BarChange> {
            self.config.write_config(reg, o, d)
        }
        fn bar_read(&mut self, _bar: u8, o: u64, d: &mut [u8]) {
            let o = o as usize;
            d.copy_from_slice(&self.regs[o..o + d.len()]);
        }
        fn bar_write(&mut self, _bar: u8, o: u64, d: &[u8]) {
            let o = o as usize;
            self.regs[o..o + d.len()].copy_from_slice(d);
        }
    }

    fn setup() -> (PciConfigIo, Bus) {
        let pio = Bus::new();
        let mut root = PciRoot::new();
        root.add(0, Arc::new(Mutex::new(HostBridge::new())))
            .unwrap();
        let mut config = ConfigSpace::new(PciIds {
            vendor: 0x1b36,
            device: 0x000c,
            ..Default::default()
        });
        config.add_bar(0, BarKind::Io, 16).unwrap();
        let mock = Mock {
            config,
            regs: [0; 16],
        };
        assert_eq!(root.add_next(Arc::new(Mutex::new(mock))), Ok(1));
        let io = PciConfigIo::new(root, BarRouter::new(pio.clone(), Bus::new()));
        (io, pio)
    }

    fn out32(io: &mut PciConfigIo, port: u64, v: u32) {
        io.write(port - 0xcf8, &v.to_le_bytes());
    }

    fn in32(io: &mut PciConfigIo, port: u64) -> u32 {
        let mut b = [0u8; 4];
        io.read(port - 0xcf8, &mut b);
        u32::from_le_bytes(b)
    }

    fn addr(dev: u32, reg: u32) -> u32 {
        ENABLE | dev << 11 | reg << 2
    }

    #[test]
    fn address_latch_merges_byte_and_word_writes() {
        let (mut io, _) = setup();
        out32(&mut io, 0xcf8, 0x1234_5678);
        io.write(3, &[0x80]);
        assert_eq!(in32(&mut io, 0xcf8), 0x8034_5678);
        io.write(0, &[0xcd, 0xab]);
        assert_eq!(in32(&mut io, 0xcf8), 0x8034_abcd);
        io.write(1, &[0x11, 0x22]);
        assert_eq!(in32(&mut io, 0xcf8), 0x8022_11cd);
        let mut w = [0u8; 2];
        io.read(2, &mut w);
        assert_eq!(w, [0x22, 0x80]);
        // Linux's probe: outb(1, 0xcfb), save, outl(0x80000000), read back.
        io.write(3, &[0x01]);
        out32(&mut io, 0xcf8, 0x8000_0000);
        assert_eq!(in32(&mut io, 0xcf8), 0x8000_0000);
        io.write(2, &[1, 2, 3]);
        assert_eq!(
            in32(&mut io, 0xcf8),
            0x8000_0000,
            "crossing the latch: ignored"
        );
    }

    #[test]
    fn data_port_reaches_the_host_bridge_at_any_offset() {
        let (mut io, _) = setup();
        out32(&mut io, 0xcf8, addr(0, 0));
        assert_eq!(in32(&mut io, 0xcfc), 0x0d57_8086);
        let mut w = [0u8; 2];
        io.read(6, &mut w);
        assert_eq!(u16::from_le_bytes(w), 0x0d57);
        out32(&mut io, 0xcf8, addr(0, 2));
        io.read(6, &mut w);
        assert_eq!(u16::from_le_bytes(w), 0x0600, "class at 0x0a via 0xcfe");
        let mut b = [0u8; 1];
        io.read(5, &mut b);
        assert_eq!(b[0], 0, "prog-if at 0x09 via 0xcfd");
        io.read(7, &mut b);
        assert_eq!(b[0], 0x06);
        let mut bad = [0u8; 4];
        io.read(6, &mut bad);
        assert_eq!(bad, [0xff; 4], "crossing the dword");
    }

    #[test]
    fn absent_devices_other_buses_and_disabled_read_all_ones() {
        let (mut io, _) = setup();
        out32(&mut io, 0xcf8, addr(2, 0));
        assert_eq!(in32(&mut io, 0xcfc), 0xffff_ffff);
        out32(&mut io, 0xcf8, addr(0, 0) | 1 << 16);
        assert_eq!(in32(&mut io, 0xcfc), 0xffff_ffff, "bus 1");
        out32(&mut io, 0xcf8, addr(0, 0) | 1 << 8);
        assert_eq!(in32(&mut io, 0xcfc), 0xffff_ffff, "function 1");
        out32(&mut io, 0xcf8, addr(0, 0) | 1 << 24);
        assert_eq!(in32(&mut io, 0xcfc), 0xffff_ffff, "extended register 0x100");
        out32(&mut io, 0xcf8, addr(0, 0) & !ENABLE);
        assert_eq!(in32(&mut io, 0xcfc), 0xffff_ffff, "enable bit clear");
        out32(&mut io, 0xcfc, 0);
        out32(&mut io, 0xcf8, addr(2, 1));
        out32(&mut io, 0xcfc, 7);
    }

    #[test]
    fn bar_programming_moves_the_region_on_the_bus() {
        let (mut io, pio) = setup();
        out32(&mut io, 0xcf8, addr(1, 4));
        out32(&mut io, 0xcfc, 0xffff_ffff);
        assert_eq!(in32(&mut io, 0xcfc), 0xffff_fff1, "I/O BAR sizing");
        out32(&mut io, 0xcf8, addr(1, 4));
        out32(&mut io, 0xcfc, 0xc000);
        let mut b = [0u8; 1];
        assert!(!pio.read(0xc000, &mut b), "decode still off");
        out32(&mut io, 0xcf8, addr(1, 1));
        io.write(4, &[COMMAND_IO as u8]);
        assert!(pio.write(0xc003, &[0x5a]));
        assert!(pio.read(0xc003, &mut b));
        assert_eq!(b[0], 0x5a);
        // Move with a word write to the BAR's low half.
        out32(&mut io, 0xcf8, addr(1, 4));
        io.write(4, &[0x10, 0xd0]);
        assert!(!pio.read(0xc003, &mut b));
        assert!(pio.read(0xd013, &mut b));
        assert_eq!(b[0], 0x5a);
        // Decode off removes it.
        out32(&mut io, 0xcf8, addr(1, 1));
        io.write(4, &[0]);
        assert!(!pio.read(0xd013, &mut b));
    }

    #[test]
    fn listener_hears_every_change() {
        let (mut io, _) = setup();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        io.router_mut()
            .set_listener(Box::new(move |dev, c| s.lock().unwrap().push((dev, c.new))));
        out32(&mut io, 0xcf8, addr(1, 4));
        out32(&mut io, 0xcfc, 0xc100);
        out32(&mut io, 0xcf8, addr(1, 1));
        out32(&mut io, 0xcfc, u32::from(COMMAND_IO));
        assert_eq!(*seen.lock().unwrap(), vec![(1, Some(0xc100))]);
    }

    #[test]
    fn root_rejects_bad_slots() {
        let mut root = PciRoot::new();
        let d = || -> SharedPciDevice { Arc::new(Mutex::new(HostBridge::new())) };
        assert_eq!(root.add(32, d()), Err(PciBusError::BadDeviceNumber(32)));
        root.add(3, d()).unwrap();
        assert_eq!(root.add(3, d()), Err(PciBusError::SlotTaken(3)));
        for _ in 0..31 {
            root.add_next(d()).unwrap();
        }
        assert_eq!(root.add_next(d()), Err(PciBusError::Full));
    }
}
