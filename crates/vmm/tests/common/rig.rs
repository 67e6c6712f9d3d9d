//! Host-side setup shared by the ptnet KVM tests and the ptnet benchmark: find what the tiny
//! driver needs to know about the attached NIC, and load the guest.

use devices::pci::PciDevice;
use netmap::RegionLayout;
use vm_memory::{Bytes, GuestAddress};
use vmm::netdev::PtnetHandle;
use vmm::Machine;

use super::driver::{self, DeviceInfo};

/// Finds a capability by id in a function's config space (what a driver's PCI core does).
pub fn find_cap(dev: &mut dyn PciDevice, id: u8) -> u8 {
    let mut p = (dev.config_read(0x34 / 4) & 0xfc) as u8;
    while p != 0 {
        let v = dev.config_read(usize::from(p) / 4) >> ((p & 3) * 8);
        if v as u8 == id {
            return p;
        }
        p = (v >> 8) as u8;
    }
    panic!("capability {id:#x} not found");
}

/// What the tiny driver is told about a 1 TX + 1 RX NIC with 2048-byte buffers.
pub fn device_info(nic: &PtnetHandle, layout: &RegionLayout) -> DeviceInfo {
    let msix_cap = find_cap(&mut *nic.nic.lock().unwrap(), 0x11);
    DeviceInfo {
        memdev_dev: nic.memdev_dev,
        nic_dev: nic.nic_dev,
        msix_cap,
        msix_table: devices::ptnet::nic::MSIX_TABLE_OFFSET as u32,
        ntx: layout.config.tx_rings,
        slots: layout.config.tx_slots,
        buf_size: layout.config.buf_size,
        tx_ring: layout.tx_ring_offset(0) as u64,
        buf_pool: layout.buf_pool.offset,
    }
}

/// Writes the guest's tables, MSI handler, frame template and `code`, and points the boot
/// vCPU at it. `user`: the packet loop drops to ring 3 (see `driver::user_mode_tables`).
pub fn load_guest(m: &Machine, code: &[u8], frame: &[u8], user: bool) {
    let mem = m.memory();
    let mut writes = driver::guest_tables(2);
    if user {
        writes.extend(driver::user_mode_tables());
    }
    writes.push((driver::HANDLER, driver::handler()));
    writes.push((driver::TEMPLATE, frame.to_vec()));
    writes.push((driver::CODE, code.to_vec()));
    for (gpa, bytes) in writes {
        mem.write_slice(&bytes, GuestAddress(gpa)).unwrap();
    }
    m.set_boot_entry(GuestAddress(driver::CODE), 0).unwrap();
}

/// Runs `m` to its exit, or stops it with an error exit after `limit`: a guest that never
/// reaches its exit port fails the test instead of hanging it.
pub fn run_bounded(m: Machine, limit: std::time::Duration) -> vmm::Result<vmm::Exit> {
    let exit = m.exit_signal();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        exit.request(vmm::Exit::Error(format!(
            "test watchdog: the guest was still running after {limit:?}"
        )));
    });
    m.run()
}
