//! Host resources of PCI functions ([`HostResource`]), installed where their BARs decode and
//! moved with them, for any device type: when the guest programs or moves a BAR, or toggles
//! decode, the [`devices::pci::BarRouter`] moves the BAR on its bus and then tells this
//! table, which moves what a bus cannot hold:
//!
//! - a **doorbell** becomes a register-handler entry (the PIO exit path, always) and, in
//!   [`Doorbells::Ioeventfd`] mode, a KVM ioeventfd at the BAR's new address;
//! - **host memory** behind a BAR becomes a KVM memory slot at the BAR's address (deleted
//!   while the BAR does not decode).
//!
//! A device declares what it needs (`PciDevice::host_resources`) and nothing of it is
//! device-specific here.

use std::collections::HashMap;
use std::sync::Arc;

use devices::pci::{BarChange, HostResource};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};

use crate::io_handlers::{Direction, Doorbells, Entry, Handler, HandlerTable};

/// One function's resources and how its doorbells ring.
struct Function {
    resources: Vec<HostResource>,
    doorbells: Doorbells,
    /// The KVM memory slot of each memory-backed BAR.
    slots: HashMap<u8, u32>,
}

/// The host resources of every PCI function of a machine.
pub struct PciHost {
    vm: Arc<VmFd>,
    handlers: HandlerTable,
    functions: HashMap<u8, Function>,
    next_slot: u32,
}

impl PciHost {
    /// Resources install into `vm` and `handlers`; memory slots are numbered from
    /// `first_slot` on.
    pub fn new(vm: Arc<VmFd>, handlers: HandlerTable, first_slot: u32) -> Self {
        Self {
            vm,
            handlers,
            functions: HashMap::new(),
            next_slot: first_slot,
        }
    }

    /// Records the resources of function `devnum` (installed when its BARs decode).
    pub fn add(&mut self, devnum: u8, resources: Vec<HostResource>, doorbells: Doorbells) {
        let mut slots = HashMap::new();
        for r in &resources {
            if let HostResource::Memory { bar, .. } = r {
                slots.entry(*bar).or_insert_with(|| {
                    self.next_slot += 1;
                    self.next_slot - 1
                });
            }
        }
        log::debug!("PCI 00:{devnum:02x}.0 host resources: {resources:?}");
        self.functions.insert(
            devnum,
            Function {
                resources,
                doorbells,
                slots,
            },
        );
    }

    /// Moves the resources of BAR `c.bar` of function `devnum` from `c.old` to `c.new`.
    pub fn bar_changed(&mut self, devnum: u8, c: &BarChange) {
        let Some(f) = self.functions.get(&devnum) else {
            return;
        };
        let owner = u32::from(devnum) << 8 | u32::from(c.bar);
        self.handlers.remove_owner(owner);
        for r in f.resources.iter().filter(|r| r.bar() == c.bar) {
            match r {
                HostResource::Doorbell { offset, event, .. } => {
                    self.move_doorbell(owner, f.doorbells, c, *offset, event)
                }
                HostResource::Memory { mem, .. } => {
                    self.move_memory(devnum, f.slots[&c.bar], c, mem)
                }
            }
        }
    }

    fn move_doorbell(
        &self,
        owner: u32,
        mode: Doorbells,
        c: &BarChange,
        offset: u64,
        event: &Arc<vmm_sys_util::eventfd::EventFd>,
    ) {
        if let (Some(old), Doorbells::Ioeventfd) = (c.old, mode) {
            let addr = IoEventAddress::Pio(old + offset);
            if let Err(e) = self
                .vm
                .unregister_ioevent(event.as_ref(), &addr, NoDatamatch)
            {
                log::warn!("unregistering the doorbell at {:#x}: {e}", old + offset);
            }
        }
        let Some(port) = c.new.and_then(|new| u16::try_from(new + offset).ok()) else {
            return;
        };
        self.handlers.add(Entry {
            port,
            direction: Direction::Write,
            mask: 0,
            data: 0,
            handler: Handler::Event(event.clone()),
            owner,
        });
        if mode == Doorbells::Ioeventfd {
            let addr = IoEventAddress::Pio(u64::from(port));
            if let Err(e) = self.vm.register_ioevent(event.as_ref(), &addr, NoDatamatch) {
                log::warn!("doorbell ioeventfd at {port:#x}: {e}; PIO exits instead");
            }
        }
    }

    fn move_memory(&self, devnum: u8, slot: u32, c: &BarChange, mem: &netmap::SharedMem) {
        let set = |gpa: u64, size: u64| {
            let r = kvm_userspace_memory_region {
                slot,
                guest_phys_addr: gpa,
                memory_size: size,
                userspace_addr: mem.as_ptr() as u64,
                flags: 0,
            };
            // SAFETY: the mapping behind `mem` is kept alive by the resource's `keep`, which this table holds for as long as the VM may use the slot.
            unsafe { self.vm.set_user_memory_region(r) }
        };
        let name = format!("PCI 00:{devnum:02x}.0 BAR{}", c.bar);
        if c.old.is_some() {
            if let Err(e) = set(0, 0) {
                log::warn!("{name}: removing its memory slot: {e}");
            }
        }
        if let Some(gpa) = c.new {
            match set(gpa, mem.len() as u64) {
                Ok(()) => log::info!("{name}: {} bytes of host memory at {gpa:#x}", mem.len()),
                Err(e) => log::warn!("{name}: mapping host memory at {gpa:#x}: {e}"),
            }
        }
    }
}
