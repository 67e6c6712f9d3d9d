//! What a PCI function implements ([`PciDevice`]), and [`BarRegion`], the adapter that puts
//! one BAR of a function on a PIO or MMIO [`Bus`](crate::Bus) at the address the guest chose.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};

use netmap::SharedMem;
use vmm_sys_util::eventfd::EventFd;

use super::BarChange;
use crate::BusDevice;

/// Something of the host a PCI function needs where one of its BARs decodes, which the VMM
/// installs, moves with the BAR and removes when decode goes off, the same way for every
/// device type (`vmm::pci_host`).
#[derive(Clone)]
pub enum HostResource {
    /// A guest write of any value at `offset` in I/O BAR `bar` signals `event`: a KVM
    /// ioeventfd (the write never leaves the kernel) and a register-handler entry (the same
    /// doorbell when it arrives as a PIO exit).
    Doorbell {
        bar: u8,
        offset: u64,
        event: Arc<EventFd>,
    },
    /// Memory BAR `bar` is backed by `mem`, this process's mapping of host memory, as a KVM
    /// memory slot (the guest reads and writes it without exits); `keep` keeps the mapping
    /// alive as long as the slot may exist.
    Memory {
        bar: u8,
        mem: SharedMem,
        keep: Arc<dyn Any + Send + Sync>,
    },
}

impl HostResource {
    /// The BAR the resource follows.
    pub fn bar(&self) -> u8 {
        match self {
            HostResource::Doorbell { bar, .. } | HostResource::Memory { bar, .. } => *bar,
        }
    }
}

impl std::fmt::Debug for HostResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostResource::Doorbell { bar, offset, .. } => {
                write!(f, "doorbell at BAR{bar}+{offset:#x}")
            }
            HostResource::Memory { bar, mem, .. } => {
                write!(f, "{} bytes of host memory at BAR{bar}", mem.len())
            }
        }
    }
}

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
    /// The host resources the function needs at its BARs, asked once when it is added to
    /// the machine. Default: none.
    fn host_resources(&self) -> Vec<HostResource> {
        Vec::new()
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
