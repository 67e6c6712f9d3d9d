//! Keeps each function's BARs on the right bus at the right address: on every
//! [`BarChange`] the old range is removed and a [`BarRegion`] is inserted at the new one.
//! [`Bus`] clones share their map, so every vCPU sees the move at once. The router holds the
//! buses weakly: it lives behind the config ports on the PIO bus itself, and a strong
//! handle would keep bus, router and every device alive in a cycle.

use std::sync::Arc;

use super::device::{lock_device, BarRegion, SharedPciDevice};
use super::{BarChange, BarKind};
use crate::{Bus, WeakBus};

/// Called for every BAR change after the buses are updated (with the device number), so
/// the VMM can move what a bus cannot: KVM memory slots, ioeventfds.
pub type BarListener = Box<dyn FnMut(u8, &BarChange) + Send>;

pub struct BarRouter {
    pio: WeakBus,
    mmio: WeakBus,
    listener: Option<BarListener>,
}

impl BarRouter {
    /// Routes I/O BARs on `pio` and memory BARs on `mmio` (handles shared with the vCPUs).
    pub fn new(pio: Bus, mmio: Bus) -> Self {
        Self {
            pio: pio.downgrade(),
            mmio: mmio.downgrade(),
            listener: None,
        }
    }

    /// Sets the hook called after each change is applied.
    pub fn set_listener(&mut self, listener: BarListener) {
        self.listener = Some(listener);
    }

    /// The bus of a BAR kind, unless the machine is being torn down.
    fn bus(&self, kind: BarKind) -> Option<Bus> {
        match kind {
            BarKind::Io => &self.pio,
            BarKind::Memory32 { .. } => &self.mmio,
        }
        .upgrade()
    }

    /// Applies `changes` reported by function `devnum`.
    pub fn apply(&mut self, devnum: u8, device: &SharedPciDevice, changes: &[BarChange]) {
        for c in changes {
            let bus = self.bus(c.kind);
            if let Some(bus) = bus.filter(|_| lock_device(device).bar_on_bus(c.bar)) {
                if let Some(old) = c.old {
                    bus.remove(old);
                }
                if let Some(new) = c.new {
                    let region =
                        Arc::new(std::sync::Mutex::new(BarRegion::new(device.clone(), c.bar)));
                    if let Err(e) = bus.insert(region, new, c.size) {
                        log::warn!("PCI 00:{devnum:02x}.0 BAR{}: {e}; not mapped", c.bar);
                    }
                }
            }
            if let Some(l) = self.listener.as_mut() {
                l(devnum, c);
            }
        }
    }
}
