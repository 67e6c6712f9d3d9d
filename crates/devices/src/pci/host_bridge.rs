//! The host bridge at 00:00.0: a type-0 function with bridge/host class and no BARs. Linux's
//! config mechanism #1 sanity check (`pci_sanity_check`) looks for exactly this, a host
//! bridge class or an Intel vendor id on bus 0, before it trusts ports 0xcf8/0xcfc.

use super::config::{ConfigSpace, PciIds};
use super::device::PciDevice;
use super::BarChange;

/// Intel, with the device id of a generic (QEMU/Cloud Hypervisor style) host bridge.
pub const VENDOR_ID: u16 = 0x8086;
pub const DEVICE_ID: u16 = 0x0d57;
/// Class 0x06 (bridge), subclass 0x00 (host bridge).
pub const CLASS: u8 = 0x06;
pub const SUBCLASS: u8 = 0x00;

pub struct HostBridge {
    config: ConfigSpace,
}

impl HostBridge {
    pub fn new() -> Self {
        Self {
            config: ConfigSpace::new(PciIds {
                vendor: VENDOR_ID,
                device: DEVICE_ID,
                class: CLASS,
                subclass: SUBCLASS,
                ..Default::default()
            }),
        }
    }
}

impl Default for HostBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl PciDevice for HostBridge {
    fn config_read(&mut self, reg: usize) -> u32 {
        self.config.read_reg(reg)
    }

    fn config_write(&mut self, reg: usize, offset: u64, data: &[u8]) -> Vec<BarChange> {
        self.config.write_config(reg, offset, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_as_a_host_bridge_with_no_bars() {
        let mut h = HostBridge::new();
        assert_eq!(h.config_read(0), 0x0d57_8086);
        assert_eq!(h.config_read(2) >> 16, 0x0600);
        for r in 4..10 {
            assert!(h.config_write(r, 0, &[0xff; 4]).is_empty());
            assert_eq!(h.config_read(r), 0, "BAR{} absent", r - 4);
        }
        assert_eq!(h.config_read(3) >> 16 & 0xff, 0, "type-0 header");
    }
}
