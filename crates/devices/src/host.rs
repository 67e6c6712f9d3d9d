//! What device models need from the VMM, as small traits: delivering an MSI, and reaching
//! guest RAM as shared memory. The VMM implements them with KVM (irqfd routes or
//! KVM_SIGNAL_MSI) and vm-memory; tests implement them in memory.

use netmap::shm::SharedMem;

use crate::pci::msix::MsiMessage;

/// Delivers message-signalled interrupts to the guest.
pub trait MsiSink: Send + Sync {
    /// Raises `msg`, the message currently programmed for the device's `vector`. Errors are
    /// the sink's to log: a lost interrupt must not take a device thread down.
    fn deliver(&self, vector: u16, msg: MsiMessage);
}

/// Guest RAM as seen by a device thread.
pub trait GuestRam: Send + Sync {
    /// `[gpa, gpa + len)` as shared memory, or `None` when that range is not entirely in
    /// guest RAM (the guest chose a bad address). The mapping stays valid while the VM lives.
    fn shared(&self, gpa: u64, len: usize) -> Option<SharedMem>;
}
