//! Wiring a ptnet NIC into the machine: the memdev and NIC PCI functions for a netmap port,
//! the memdev's BAR1 as a KVM memory slot (zero copy: the guest sees the port's region),
//! the NIC's doorbells as KVM ioeventfds and register-handler entries that follow BAR0, and
//! the NIC's MSIs through the chosen delivery path.

use std::sync::{Arc, Mutex};

use devices::host::MsiSink;
use devices::pci::{BarChange, SharedPciDevice};
use devices::ptnet::{PtnetMemdev, PtnetNic, PtnetStats};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
use netmap::NetmapPort;
use vmm_sys_util::eventfd::EventFd;

use crate::error::{Error, Result};
use crate::guest_ram::VmGuestRam;
use crate::io_handlers::{Direction, Doorbells, Entry, Handler, HandlerTable};
use crate::msi::{IrqfdMsiSink, MsiMode, SignalMsiSink};
use crate::Machine;

/// How the NIC is attached.
#[derive(Debug, Clone, Copy)]
pub struct NicSetup {
    pub mac: [u8; 6],
    pub doorbells: Doorbells,
    pub msi: MsiMode,
    /// Offer the virtio-net header ([`devices::ptnet::NicOptions::with_vnet_hdr`]).
    pub offloads: bool,
}

/// The attached NIC, for tests, benchmarks and shutdown.
pub struct PtnetHandle {
    pub nic: Arc<Mutex<PtnetNic>>,
    pub memdev_dev: u8,
    pub nic_dev: u8,
    pub stats: Arc<PtnetStats>,
}

impl PtnetHandle {
    /// Stops the ring workers (as PTCTL=DELETE would).
    pub fn stop(&self) {
        self.nic.lock().unwrap_or_else(|e| e.into_inner()).stop();
    }
}

/// Moves the memdev's BAR1 memory slot: delete at the old address, map at the new one.
fn memdev_hook(vm: Arc<VmFd>, slot: u32, port: Arc<dyn NetmapPort>) -> crate::BarHook {
    let region = port.region();
    Box::new(move |c: &BarChange| {
        let _keep_alive = &port;
        if c.bar != devices::ptnet::memdev::MEM_BAR {
            return;
        }
        let set = |gpa: u64, size: u64| {
            let r = kvm_userspace_memory_region {
                slot,
                guest_phys_addr: gpa,
                memory_size: size,
                userspace_addr: region.mem.as_ptr() as u64,
                flags: 0,
            };
            // `port` is held by this hook, which the Machine owns for the VM's life.
            // SAFETY: the mapping is the port's region, `region.size` bytes, kept alive by `port`.
            unsafe { vm.set_user_memory_region(r) }
        };
        if c.old.is_some() {
            if let Err(e) = set(0, 0) {
                log::warn!("ptnet memdev: removing the BAR1 memory slot: {e}");
            }
        }
        if let Some(gpa) = c.new {
            match set(gpa, region.size as u64) {
                Ok(()) => log::info!("ptnet memdev: port memory mapped at {gpa:#x}"),
                Err(e) => log::warn!("ptnet memdev: mapping BAR1 at {gpa:#x}: {e}"),
            }
        }
    })
}

/// Moves the doorbells with BAR0: handler-table entries always (the PIO-exit path), KVM
/// ioeventfds too in ioeventfd mode.
fn doorbell_hook(
    vm: Arc<VmFd>,
    handlers: HandlerTable,
    owner: u32,
    bells: Vec<(u64, Arc<EventFd>)>,
    mode: Doorbells,
) -> crate::BarHook {
    Box::new(move |c: &BarChange| {
        if c.bar != devices::ptnet::nic::REGS_BAR {
            return;
        }
        handlers.remove_owner(owner);
        for (off, evt) in &bells {
            if let (Some(old), Doorbells::Ioeventfd) = (c.old, mode) {
                let addr = IoEventAddress::Pio(old + off);
                if let Err(e) = vm.unregister_ioevent(evt, &addr, NoDatamatch) {
                    log::warn!("ptnet: unregistering the doorbell at {:#x}: {e}", old + off);
                }
            }
            let Some(new) = c.new else { continue };
            let Ok(port) = u16::try_from(new + off) else {
                continue;
            };
            handlers.add(Entry {
                port,
                direction: Direction::Write,
                mask: 0,
                data: 0,
                handler: Handler::Event(evt.clone()),
                owner,
            });
            if mode == Doorbells::Ioeventfd {
                let addr = IoEventAddress::Pio(u64::from(port));
                if let Err(e) = vm.register_ioevent(evt, &addr, NoDatamatch) {
                    log::warn!("ptnet: doorbell ioeventfd at {port:#x}: {e}; PIO exits instead");
                }
            }
        }
    })
}

impl Machine {
    /// Attaches a ptnet NIC (memdev + NIC functions) serving `port`.
    pub fn add_ptnet(&mut self, port: Arc<dyn NetmapPort>, setup: NicSetup) -> Result<PtnetHandle> {
        let region = port.region();
        let memid = region.mem_id;
        let ptnet_err = |e: devices::ptnet::PtnetError| Error::Config(format!("ptnet NIC: {e}"));
        let memdev = PtnetMemdev::new(port.clone(), memid).map_err(ptnet_err)?;
        let memdev: SharedPciDevice = Arc::new(Mutex::new(memdev));
        let memdev_dev = self.add_pci_device(memdev)?;
        let slot = self.allocate_mem_slot();
        self.set_bar_hook(memdev_dev, memdev_hook(self.vm.clone(), slot, port.clone()));

        let vectors = region.layout.config.tx_rings + region.layout.config.rx_rings;
        let sink: Arc<dyn MsiSink> = match setup.msi {
            MsiMode::SignalMsi => Arc::new(SignalMsiSink::new(self.vm.clone())),
            MsiMode::Irqfd => Arc::new(IrqfdMsiSink::new(
                &self.vm,
                self.routing.clone(),
                vectors as u16,
            )?),
        };
        let ram = Arc::new(VmGuestRam::new(self.mem.clone()));
        let opts = if setup.offloads {
            devices::ptnet::NicOptions::with_vnet_hdr()
        } else {
            devices::ptnet::NicOptions::default()
        };
        let nic =
            PtnetNic::with_options(port, setup.mac, ram, sink, memid, opts).map_err(ptnet_err)?;
        let bells = nic.doorbells();
        let stats = nic.stats();
        let nic = Arc::new(Mutex::new(nic));
        let shared: SharedPciDevice = nic.clone();
        let nic_dev = self.add_pci_device(shared)?;
        let hook = doorbell_hook(
            self.vm.clone(),
            self.handlers.clone(),
            u32::from(nic_dev),
            bells,
            setup.doorbells,
        );
        self.set_bar_hook(nic_dev, hook);
        self.nics.push(nic.clone());
        Ok(PtnetHandle {
            nic,
            memdev_dev,
            nic_dev,
            stats,
        })
    }
}
