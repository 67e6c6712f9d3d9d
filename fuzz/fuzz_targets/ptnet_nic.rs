//! Fuzzes the ptnet NIC as a hostile guest sees it: register writes (BAR0), MSI-X table writes
//! (BAR2), config-space writes, CSB words in guest RAM and words of the port's netmap region
//! (rings, slots, buffers: the memdev's BAR1), interleaved with doorbells and guest resets
//! while the ring workers run, and with frames a peer port sends to the NIC's port. The NIC
//! must never panic nor reach outside its port or the guest's RAM.
//!
//! Input: a config byte (bit 0: the NIC offers the virtio-net header; bits 1-2: the peer's
//! header length 0/10/12/0), then 12-byte operations `[op, a0, a1, a2, value: u64 LE]`.
//!
//! The switch with its two ports and the guest RAM are made once per thread and kept across
//! inputs (fresh port files per input bounded libFuzzer to ~1,000 inputs a second); each input
//! starts from the same state: RAM zeroed, both ports reset (`vale::fuzzing::reset_port`:
//! region, rings, buffers, private ring state, counters, header length), the MAC table
//! emptied, and a new NIC (config space, MSI-X, registers, doorbells all at power-on).
#![no_main]

use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use devices::host::{GuestRam, MsiSink};
use devices::pci::{MsiMessage, PciDevice};
use devices::ptnet::{NicOptions, PtnetNic};
use libfuzzer_sys::fuzz_target;
use netmap::{NetmapPort, RegionConfig, SharedMem};
use vale::fuzzing::{forget_macs, reset_port, TempDir};
use vale::{Port, PortOptions};

/// Guest RAM: 16 KiB at guest-physical 0x10000 (the CSB pages live here).
const RAM_BASE: u64 = 0x10000;
const RAM_LEN: usize = 0x4000;

struct Ram(Box<[u64]>);

impl Ram {
    fn mem(&self) -> SharedMem {
        let p = NonNull::new(self.0.as_ptr() as *mut u8).unwrap();
        // SAFETY: the block belongs to the Ram, which the rig and every NIC hold in an Arc
        // for longer than any SharedMem made here is used, and only SharedMem reaches it.
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

/// What stays across inputs. Ports are declared before the directory: dropped first.
struct Rig {
    /// The NIC's port.
    port: Arc<Port>,
    /// Another port of the switch: it receives the guest's frames and sends it some.
    peer: Port,
    ram: Arc<Ram>,
    _dir: TempDir,
}

impl Rig {
    fn new() -> Rig {
        let dir = TempDir::new("fuzz-ptnet");
        let opts = PortOptions {
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
        };
        Rig {
            port: Arc::new(Port::open("valefz:1", &opts).unwrap()),
            peer: Port::open("valefz:2", &opts).unwrap(),
            ram: Arc::new(Ram(vec![0u64; RAM_LEN / 8].into_boxed_slice())),
            _dir: dir,
        }
    }
}

thread_local! {
    static RIG: Rig = Rig::new();
}

fuzz_target!(|data: &[u8]| {
    RIG.with(|rig| run(rig, data));
});

fn run(rig: &Rig, data: &[u8]) {
    let Some((&cfg, data)) = data.split_first() else {
        return;
    };
    let mem = rig.ram.mem();
    mem.fill(0, RAM_LEN, 0);
    forget_macs(&rig.port);
    reset_port(&rig.port, 0).unwrap();
    let peer_len = [0, 10, 12, 0][usize::from(cfg >> 1 & 3)];
    reset_port(&rig.peer, peer_len).unwrap();
    let opts = if cfg & 1 != 0 {
        NicOptions::with_vnet_hdr()
    } else {
        NicOptions::default()
    };
    let port: Arc<dyn NetmapPort> = rig.port.clone();
    let mut nic = PtnetNic::with_options(
        port,
        [2, 0, 0, 0, 0, 1],
        rig.ram.clone(),
        Arc::new(NoMsi),
        1,
        opts,
    )
    .unwrap();
    let layout = *rig.port.layout();
    let region = rig.port.mem().sub(0, layout.size);
    let pool = layout.buf_pool.offset as usize;
    for op in data.chunks_exact(12) {
        let v = u64::from_le_bytes(op[4..12].try_into().unwrap());
        let (a0, a1, a2) = (op[1], op[2], op[3]);
        let len = usize::from(a2 % 9);
        match op[0] % 9 {
            0 => nic.bar_write(0, u64::from(a0), &v.to_le_bytes()[..len]),
            1 => nic.bar_write(
                2,
                u64::from(a0) | (u64::from(a1) << 8),
                &v.to_le_bytes()[..len],
            ),
            2 => {
                let _ = nic.config_write(
                    usize::from(a0 % 64),
                    u64::from(a1 % 4),
                    &v.to_le_bytes()[..len.min(4)],
                );
            }
            3 => {
                let off = (usize::from(a0) | usize::from(a1) << 8) % RAM_LEN / 4 * 4;
                mem.store_u32(off, v as u32, Relaxed);
            }
            4 => {
                for (_, d) in nic.doorbells() {
                    let _ = d.write(1);
                }
            }
            5 => {
                let mut b = [0u8; 8];
                nic.bar_read(a0 % 3, u64::from(a1), &mut b[..len]);
                let _ = nic.config_read(usize::from(a0 % 64));
            }
            // A word of the port's region as the guest writes it through the memdev's BAR1:
            // the netmap_if and rings (ring headers, slots) or, with a2 odd, the buffers.
            6 => {
                let x = usize::from(a0) | usize::from(a1) << 8 | usize::from(a2) << 16;
                let off = if a2 & 1 == 0 {
                    x % pool
                } else {
                    pool + (x >> 1) % (layout.size - pool)
                };
                region.store_u32(off / 4 * 4, v as u32, Relaxed);
            }
            // Guest reset (the VMM's reset path): workers stopped, registers at power-on.
            7 => nic.reset(),
            // The peer sends a frame to everyone (so the NIC's RX rings get traffic): its
            // header zeroed, broadcast, `a1 % 128` bytes of payload; a well-behaved txsync.
            _ => {
                let p = &rig.peer;
                let ring = u32::from(a0 & 1);
                let r = p.tx_ring(ring);
                let s = r.head();
                let Some(o) = p.layout().buf_offset(r.slot(s).buf_idx()) else {
                    continue;
                };
                let h = p.vnet_hdr_len() as usize;
                let mut f = vec![0u8; h + 14 + usize::from(a1 % 128)];
                f[h..h + 6].fill(0xff);
                f[h + 6..h + 12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
                f[h + 12..h + 14].copy_from_slice(&v.to_le_bytes()[..2]);
                p.mem().write_bytes(o, &f);
                r.slot(s).set_len_flags(f.len() as u16, 0);
                let next = (s + 1) % r.num_slots();
                r.set_head(next);
                r.set_cur(next);
                let _ = p.txsync_ring(ring);
            }
        }
    }
    nic.stop();
}
