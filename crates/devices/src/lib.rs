//! Device models of ptvmm: the buses that route guest accesses, and the legacy devices a
//! stock Linux guest needs (serial console, i8042 reset, ACPI power, a debug-exit port),
//! PCI (config mechanism #1, host bridge, config spaces, BARs, MSI-X), and the ptnetmap
//! passthrough NIC (memdev, NIC, ring workers).
//!
//! Devices depend only on the small traits here ([`BusDevice`], [`vm_superio::Trigger`]),
//! never on KVM, so every model is unit-tested without /dev/kvm.

pub mod acpi_pm;
pub mod bus;
pub mod debug_exit;
pub mod exit;
pub mod host;
pub mod i8042;
pub mod pci;
pub mod ptnet;
pub mod serial;

pub use bus::{Bus, BusDevice, BusError, WeakBus};
pub use exit::{ExitReason, ExitSignal};
