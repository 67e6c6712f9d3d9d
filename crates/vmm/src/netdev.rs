//! Wiring a ptnet NIC into the machine: the memdev and NIC PCI functions for a netmap port
//! and the NIC's MSIs through the chosen delivery path. What the functions need at their
//! BARs (the memdev's BAR1 as a KVM memory slot, zero copy; the NIC's doorbells as KVM
//! ioeventfds and register-handler entries) they declare as host resources, which
//! [`crate::pci_host`] installs and moves like any device's.

use std::sync::{Arc, Mutex};

use devices::host::MsiSink;
use devices::pci::SharedPciDevice;
use devices::ptnet::{PtnetMemdev, PtnetNic, PtnetStats};
use netmap::NetmapPort;

use crate::error::{Error, Result};
use crate::guest_ram::VmGuestRam;
use crate::io_handlers::Doorbells;
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
    /// [`devices::ptnet::NicOptions::tx_spin`].
    pub tx_spin: std::time::Duration,
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

impl Machine {
    /// Attaches a ptnet NIC (memdev + NIC functions) serving `port`.
    pub fn add_ptnet(&mut self, port: Arc<dyn NetmapPort>, setup: NicSetup) -> Result<PtnetHandle> {
        let region = port.region();
        let memid = region.mem_id;
        let ptnet_err = |e: devices::ptnet::PtnetError| Error::Config(format!("ptnet NIC: {e}"));
        let memdev = PtnetMemdev::new(port.clone(), memid).map_err(ptnet_err)?;
        let memdev: SharedPciDevice = Arc::new(Mutex::new(memdev));
        let memdev_dev = self.add_pci_device(memdev)?;

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
        let mut opts = if setup.offloads {
            devices::ptnet::NicOptions::with_vnet_hdr()
        } else {
            devices::ptnet::NicOptions::default()
        };
        opts.tx_spin = setup.tx_spin;
        let nic =
            PtnetNic::with_options(port, setup.mac, ram, sink, memid, opts).map_err(ptnet_err)?;
        let stats = nic.stats();
        let nic = Arc::new(Mutex::new(nic));
        let shared: SharedPciDevice = nic.clone();
        let nic_dev = self.add_pci_function(shared, setup.doorbells)?;
        self.nics.push(nic.clone());
        Ok(PtnetHandle {
            nic,
            memdev_dev,
            nic_dev,
            stats,
        })
    }
}
