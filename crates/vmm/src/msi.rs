//! Delivering device MSIs through KVM, two ways (selectable, so both can be measured):
//! `KVM_SIGNAL_MSI` per interrupt, or an irqfd per vector on an MSI route in KVM's GSI
//! routing table. `KVM_SET_GSI_ROUTING` replaces the whole table, so the table kept here
//! always starts with the legacy routes (PIC and IOAPIC pins) KVM installs by default —
//! dropping them would silence the serial port.

use std::sync::{Arc, Mutex};

use devices::host::MsiSink;
use devices::pci::MsiMessage;
use kvm_bindings::{
    kvm_irq_routing_entry, kvm_msi, KvmIrqRouting, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER,
    KVM_IRQCHIP_PIC_SLAVE, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI,
};
use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::error::{Error, Result};

/// Pins of the in-kernel IOAPIC; GSIs below this are legacy lines.
pub const IOAPIC_PINS: u32 = 24;
/// Legacy ISA lines that also reach the PICs.
const PIC_LINES: u32 = 16;

/// How a device's MSIs reach KVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsiMode {
    /// An eventfd per vector, bound with KVM_IRQFD to a GSI with an MSI route.
    Irqfd,
    /// A KVM_SIGNAL_MSI ioctl per interrupt.
    SignalMsi,
}

fn irqchip_entry(gsi: u32, chip: u32, pin: u32) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_IRQCHIP,
        ..Default::default()
    };
    e.u.irqchip.irqchip = chip;
    e.u.irqchip.pin = pin;
    e
}

fn msi_entry(gsi: u32, msg: MsiMessage) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_MSI,
        ..Default::default()
    };
    e.u.msi.address_lo = msg.addr as u32;
    e.u.msi.address_hi = (msg.addr >> 32) as u32;
    e.u.msi.data = msg.data;
    e
}

/// The legacy routes KVM starts with: GSI 0-15 to the PICs and the IOAPIC, 16-23 to the
/// IOAPIC.
pub fn legacy_routes() -> Vec<kvm_irq_routing_entry> {
    let mut v = Vec::new();
    for gsi in 0..IOAPIC_PINS {
        if gsi < PIC_LINES {
            let chip = if gsi < 8 {
                KVM_IRQCHIP_PIC_MASTER
            } else {
                KVM_IRQCHIP_PIC_SLAVE
            };
            v.push(irqchip_entry(gsi, chip, gsi % 8));
        }
        v.push(irqchip_entry(gsi, KVM_IRQCHIP_IOAPIC, gsi));
    }
    v
}

/// KVM's GSI routing table: the legacy routes plus one MSI route per allocated GSI.
pub struct GsiRouting {
    vm: Arc<VmFd>,
    msi: Vec<(u32, Option<MsiMessage>)>,
    next_gsi: u32,
}

impl GsiRouting {
    pub fn new(vm: Arc<VmFd>) -> Self {
        Self {
            vm,
            msi: Vec::new(),
            next_gsi: IOAPIC_PINS,
        }
    }

    /// Reserves a GSI for an MSI route (no route until [`GsiRouting::set`]).
    pub fn allocate(&mut self) -> u32 {
        let gsi = self.next_gsi;
        self.next_gsi += 1;
        self.msi.push((gsi, None));
        gsi
    }

    /// Points `gsi` at `msg` (or removes its route) and reloads KVM's table.
    pub fn set(&mut self, gsi: u32, msg: Option<MsiMessage>) -> Result<()> {
        if let Some(slot) = self.msi.iter_mut().find(|(g, _)| *g == gsi) {
            slot.1 = msg;
        }
        self.commit()
    }

    /// The full table as it is (or will be) given to KVM.
    pub fn entries(&self) -> Vec<kvm_irq_routing_entry> {
        let mut v = legacy_routes();
        v.extend(
            self.msi
                .iter()
                .filter_map(|(gsi, msg)| msg.map(|m| msi_entry(*gsi, m))),
        );
        v
    }

    fn commit(&self) -> Result<()> {
        let entries = self.entries();
        let routing = KvmIrqRouting::from_entries(&entries)
            .map_err(|_| Error::Config(format!("{} GSI routes are too many", entries.len())))?;
        self.vm
            .set_gsi_routing(&routing)
            .map_err(Error::kvm("KVM_SET_GSI_ROUTING"))
    }
}

/// MSIs by KVM_SIGNAL_MSI.
pub struct SignalMsiSink {
    vm: Arc<VmFd>,
}

impl SignalMsiSink {
    pub fn new(vm: Arc<VmFd>) -> Self {
        Self { vm }
    }
}

impl MsiSink for SignalMsiSink {
    fn deliver(&self, vector: u16, msg: MsiMessage) {
        let m = kvm_msi {
            address_lo: msg.addr as u32,
            address_hi: (msg.addr >> 32) as u32,
            data: msg.data,
            ..Default::default()
        };
        if let Err(e) = self.vm.signal_msi(m) {
            log::warn!("KVM_SIGNAL_MSI for vector {vector} failed: {e}");
        }
    }
}

struct IrqfdVector {
    gsi: u32,
    evt: EventFd,
    routed: Option<MsiMessage>,
}

/// MSIs by irqfd: vector i has its own eventfd bound to its own GSI, whose MSI route is
/// (re)programmed the first time a vector fires with a message it does not carry yet.
pub struct IrqfdMsiSink {
    routing: Arc<Mutex<GsiRouting>>,
    vectors: Vec<Mutex<IrqfdVector>>,
}

impl IrqfdMsiSink {
    pub fn new(vm: &VmFd, routing: Arc<Mutex<GsiRouting>>, vectors: u16) -> Result<Self> {
        let mut v = Vec::with_capacity(vectors.into());
        for _ in 0..vectors {
            let gsi = routing.lock().unwrap_or_else(|e| e.into_inner()).allocate();
            let evt = EventFd::new(EFD_NONBLOCK).map_err(Error::io("MSI irqfd"))?;
            vm.register_irqfd(&evt, gsi)
                .map_err(Error::kvm("KVM_IRQFD (MSI)"))?;
            v.push(Mutex::new(IrqfdVector {
                gsi,
                evt,
                routed: None,
            }));
        }
        Ok(Self {
            routing,
            vectors: v,
        })
    }
}

impl MsiSink for IrqfdMsiSink {
    fn deliver(&self, vector: u16, msg: MsiMessage) {
        let Some(slot) = self.vectors.get(usize::from(vector)) else {
            log::warn!("MSI for vector {vector}, which has no irqfd");
            return;
        };
        let mut v = slot.lock().unwrap_or_else(|e| e.into_inner());
        if v.routed != Some(msg) {
            let r = self
                .routing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set(v.gsi, Some(msg));
            if let Err(e) = r {
                log::warn!("MSI route for vector {vector}: {e}");
                return;
            }
            v.routed = Some(msg);
        }
        if let Err(e) = v.evt.write(1) {
            log::warn!("MSI irqfd for vector {vector}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_routes_cover_pics_and_ioapic() {
        let r = legacy_routes();
        assert_eq!(r.len(), 16 * 2 + 8);
        fn pin(e: &kvm_irq_routing_entry) -> (u32, u32, u32) {
            // SAFETY: every legacy route is an IRQCHIP entry, written through `irqchip`.
            unsafe { (e.gsi, e.u.irqchip.irqchip, e.u.irqchip.pin) }
        }
        let pins: Vec<(u32, u32, u32)> = r.iter().map(pin).collect();
        assert!(pins.contains(&(4, KVM_IRQCHIP_IOAPIC, 4)));
        assert!(pins.contains(&(4, KVM_IRQCHIP_PIC_MASTER, 4)));
        assert!(pins.contains(&(10, KVM_IRQCHIP_PIC_SLAVE, 2)));
        assert!(pins.contains(&(23, KVM_IRQCHIP_IOAPIC, 23)));
        assert!(r.iter().all(|e| e.type_ == KVM_IRQ_ROUTING_IRQCHIP));
    }

    #[test]
    fn msi_entry_splits_the_address() {
        let e = msi_entry(
            30,
            MsiMessage {
                addr: 0x1_fee0_1000,
                data: 0x4041,
            },
        );
        assert_eq!((e.gsi, e.type_), (30, KVM_IRQ_ROUTING_MSI));
        // SAFETY: msi_entry writes the `msi` member.
        let m = unsafe { e.u.msi };
        assert_eq!(
            (m.address_lo, m.address_hi, m.data),
            (0xfee0_1000, 1, 0x4041)
        );
    }
}
