//! Guest RAM as shared memory for device threads (the `devices::host::GuestRam` service):
//! a range is handed out only when it lies entirely inside one RAM region.

use std::ptr::NonNull;

use devices::host::GuestRam;
use netmap::shm::SharedMem;
use vm_memory::{Address, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// Owns a handle on the guest's memory, so the mappings it hands out stay valid while this
/// value (which device models keep in an `Arc`) is alive.
pub struct VmGuestRam {
    mem: GuestMemoryMmap,
}

impl VmGuestRam {
    pub fn new(mem: GuestMemoryMmap) -> Self {
        Self { mem }
    }
}

impl GuestRam for VmGuestRam {
    fn shared(&self, gpa: u64, len: usize) -> Option<SharedMem> {
        let region = self.mem.find_region(GuestAddress(gpa))?;
        let offset = gpa - region.start_addr().raw_value();
        let end = offset.checked_add(len as u64)?;
        if len == 0 || end > region.len() {
            return None;
        }
        let host = self.mem.get_host_address(GuestAddress(gpa)).ok()?;
        let base = NonNull::new(host)?;
        // Concurrent guest writes are what SharedMem's accessors allow.
        // SAFETY: `[host, host + len)` is in one mapped RAM region (checked), kept by `self.mem`.
        Some(unsafe { SharedMem::new(base, len) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use vm_memory::Bytes;

    use super::*;

    #[test]
    fn ranges_inside_ram_only() {
        let mem = crate::memory::create_guest_memory(64 << 20).unwrap();
        mem.write_obj(0x1234_5678u32, GuestAddress(0x5000)).unwrap();
        let ram = VmGuestRam::new(mem);
        let s = ram.shared(0x5000, 8192).unwrap();
        assert_eq!(s.load_u32(0, Ordering::Relaxed), 0x1234_5678);
        assert!(ram.shared((64 << 20) - 4096, 4096).is_some());
        assert!(
            ram.shared((64 << 20) - 4096, 4097).is_none(),
            "crosses the end of RAM"
        );
        assert!(ram.shared(64 << 20, 64).is_none());
        assert!(ram.shared(0xfee0_0000, 64).is_none());
        assert!(ram.shared(0x5000, 0).is_none());
        assert!(ram.shared(u64::MAX - 10, 64).is_none());
    }
}
