//! Fuzzes the ptnet NIC as a hostile guest sees it: register writes (BAR0), MSI-X table writes
//! (BAR2), config-space writes and CSB words in guest RAM, interleaved with doorbells while the
//! ring workers run. The NIC must never panic nor reach outside its port or the guest's RAM.
//!
//! Input: a sequence of 12-byte operations `[op, a0, a1, a2, value: u64 LE]`.
#![no_main]

use std::ptr::NonNull;
use std::sync::Arc;

use devices::host::{GuestRam, MsiSink};
use devices::pci::{MsiMessage, PciDevice};
use devices::ptnet::PtnetNic;
use libfuzzer_sys::fuzz_target;
use netmap::{NetmapPort, RegionConfig, SharedMem};

/// Guest RAM: 16 KiB at guest-physical 0x10000 (the CSB pages live here).
const RAM_BASE: u64 = 0x10000;
const RAM_LEN: usize = 0x4000;

struct Ram(Box<[u64]>);

impl Ram {
    fn mem(&self) -> SharedMem {
        let p = NonNull::new(self.0.as_ptr() as *mut u8).unwrap();
        // The block is held in an Arc by the NIC and by this target until the end of the input.
        // SAFETY: so it lives as long as the Ram, and is only reached through SharedMem.
        unsafe { SharedMem::new(p, self.0.len() * 8) }
    }
}

impl GuestRam for Ram {
    fn shared(&self, gpa: u64, len: usize) -> Option<SharedMem> {
        let off = usize::try_from(gpa.checked_sub(RAM_BASE)?).ok()?;
        let m = self.mem();
        (m.contains(off, len) && off % 8 == 0).then(|| m.sub(off, len))
    }
}

struct NoMsi;
impl MsiSink for NoMsi {
    fn deliver(&self, _vector: u16, _msg: MsiMessage) {}
}

fuzz_target!(|data: &[u8]| {
    let dir = vale::fuzzing::TempDir::new("fuzz-ptnet");
    let port = vale::Port::open(
        "valefz:1",
        &vale::PortOptions {
            config: RegionConfig {
                tx_rings: 2,
                rx_rings: 2,
                tx_slots: 16,
                rx_slots: 16,
                buf_size: 2048,
            },
            shm_dir: Some(dir.0.clone()),
            lossless: false,
            vnet_hdr_len: 0,
        },
    )
    .unwrap();
    let port: Arc<dyn NetmapPort> = Arc::new(port);
    let ram = Arc::new(Ram(vec![0u64; RAM_LEN / 8].into_boxed_slice()));
    let mut nic =
        PtnetNic::new(port, [2, 0, 0, 0, 0, 1], ram.clone(), Arc::new(NoMsi), 1).unwrap();
    let mem = ram.mem();
    for op in data.chunks_exact(12) {
        let v = u64::from_le_bytes(op[4..12].try_into().unwrap());
        let (a0, a1, a2) = (op[1], op[2], op[3]);
        let len = usize::from(a2 % 9);
        match op[0] % 6 {
            0 => nic.bar_write(0, u64::from(a0), &v.to_le_bytes()[..len]),
            1 => nic.bar_write(2, u64::from(a0) | (u64::from(a1) << 8), &v.to_le_bytes()[..len]),
            2 => {
                let _ = nic.config_write(usize::from(a0 % 64), u64::from(a1 % 4), &v.to_le_bytes()[..len.min(4)]);
            }
            3 => {
                let off = (usize::from(a0) | usize::from(a1) << 8) % RAM_LEN / 4 * 4;
                mem.store_u32(off, v as u32, std::sync::atomic::Ordering::Relaxed);
            }
            4 => {
                for (_, d) in nic.doorbells() {
                    let _ = d.write(1);
                }
            }
            _ => {
                let mut b = [0u8; 8];
                nic.bar_read(a0 % 3, u64::from(a1), &mut b[..len]);
                let _ = nic.config_read(usize::from(a0 % 64));
            }
        }
    }
    nic.stop();
    drop(nic);
    let _ = std::fs::remove_dir_all(&dir.0);
});
