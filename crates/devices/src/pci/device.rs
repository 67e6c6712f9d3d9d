//! What a PCI function implements ([`PciDevice`]), and [`BarRegion`], the adapter that puts
//! one BAR of a function on a PIO or MMIO [`Bus`](crate::Bus) at the address the guest chose.

use std::sync::{Arc, Mutex, MutexGuard};

use super::BarChange;
use crate::BusDevice;

/// A PCI function on bus 0. Register indexes are dword indexes into the 256-byte config
/// space; every input comes from the guest and must not panic.
pub trait PciDevice: Send {
    /// Reads config register `reg` (0..64).
    fn config_read(&mut self, reg: usize) -> u32;
    /// Writes `data` (1, 2 or 4 bytes) at byte `offset` of register `reg`. Returns the BARs
    /// whose decoded address changed, for the [`super::BarRouter`] to move.
    fn config_write(&mut self, reg: usize, offset: u64, data: &[u8]) -> Vec<BarChange>;
    /// A guest read of BAR `bar` at `offset` (relative to the BAR's base).
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        let _ = (bar, offset);
        data.fill(0xff);
    }
    /// A guest write of BAR `bar` at `offset`.
    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        let _ = (bar, offset, data);
    }
    /// Whether the router should put BAR `bar` on a bus. A BAR backed by a KVM memory
    /// slot (guest RAM-like, no exits) returns false and is moved by the VMM instead.
    fn bar_on_bus(&self, bar: u8) -> bool {
        let _ = bar;
        true
    }
}

/// A shared PCI function.
pub type SharedPciDevice = Arc<Mutex<dyn PciDevice>>;

/// Locks a function, ignoring poisoning (its state is plain registers).
pub(crate) fn lock_device(d: &Mutex<dyn PciDevice>) -> MutexGuard<'_, dyn PciDevice + 'static> {
    d.lock().unwrap_or_else(|e| e.into_inner())
}

/// One BAR of a function, as a [`BusDevice`] inserted at the BAR's address.
pub struct BarRegion {
    device: SharedPciDevice,
    bar: u8,
}

impl BarRegion {
    pub fn new(device: SharedPciDevice, bar: u8) -> Self {
        Self { device, bar }
    }
}

impl BusDevice for BarRegion {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        lock_device(&self.device).bar_read(self.bar, offset, data);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        lock_device(&self.device).bar_write(self.bar, offset, data);
    }
}
