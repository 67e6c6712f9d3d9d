//! Busy-poll syncs for `/dev/ptnetN` (`--busy-poll`): the guest half of ABI §2 run from user
//! space on the mmapped CSB, so a batch costs no syscall and, while the host keeps up, no kick.
//!
//! ```text
//!  sync (TX and RX alike)                        host worker (ABI §3)
//!    take head/cur from the netmap_ring            kern_need_kick = 0, read atok, sync
//!    check hwcur-side head <= head <= cur <= hwtail   ...nothing new:
//!    moved?  atok: fence; cur; fence; head         kern_need_kick = 1; full fence;
//!    full fence; kern_need_kick?  -> kick            re-read atok (double check); sleep
//!    read ktoa: hwtail; fence; hwcur
//!    blocked (head == hwtail) and the host still
//!    lags our head and asks: kick once per head
//!    netmap_ring.tail = hwtail
//! ```
//!
//! While the application spins `appl_need_kick` stays 0 and the host raises no interrupts
//! (a long wait sleeps in the driver's `poll()`, which arms it; see `ptnet.rs`). The kick
//! decision after publishing is the guest side of the double check:
//! publish, full fence, read `kern_need_kick` against the host's set, full fence, re-read —
//! one of the two always sees the other. Values read from `ktoa` are untrusted: an index out
//! of range keeps the last good one.

use std::cell::Cell;
use std::io;

use netmap::csb::CsbRing;
use netmap::ptnet::{nic, MAX_RINGS};
use netmap::{ring, RingView, SyncResult};
use thiserror::Error;

/// Rings a ring's doorbell (KICK(i) of ABI §1).
pub trait Doorbell {
    /// Kicks ring `kring` (CSB/kick order: TX rings, then RX rings).
    fn kick(&self, kring: u32);
}

/// The application moved `head`/`cur` outside what it owns.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("Invalid ring indices: head {head} cur {cur} (last head {last}, tail {tail})")]
pub struct BadIndices {
    pub head: u32,
    pub cur: u32,
    pub last: u32,
    pub tail: u32,
}

/// One ring synced through its CSB entry.
pub struct BusyRing {
    csb: CsbRing,
    ring: RingView,
    kring: u32,
    n: u32,
    /// head and cur as last published to `atok`.
    head: Cell<u32>,
    cur: Cell<u32>,
    /// The host's state as last read from `ktoa` (last good values).
    hwcur: Cell<u32>,
    hwtail: Cell<u32>,
    /// The head of the last kick, so a blocked ring kicks at most once per head.
    kicked: Cell<Option<u32>>,
    kicks: Cell<u64>,
}

impl BusyRing {
    /// Ring `ring` (its netmap_ring view) with CSB entry `csb`, number `kring` for kicks.
    /// Starts from the indices the registration left in the netmap_ring and asks the host
    /// for no interrupts.
    pub fn new(csb: CsbRing, ring: RingView, kring: u32) -> Self {
        let n = ring.num_slots();
        let clamp = |v: u32| if v < n { v } else { 0 };
        let (head, cur) = (clamp(ring.head()), clamp(ring.cur()));
        let r = BusyRing {
            csb,
            ring,
            kring,
            n,
            head: Cell::new(head),
            cur: Cell::new(cur),
            hwcur: Cell::new(head),
            hwtail: Cell::new(clamp(ring.tail())),
            kicked: Cell::new(None),
            kicks: Cell::new(0),
        };
        r.csb.set_appl_need_kick(false);
        r.read_host();
        r
    }

    /// Asks for no interrupts again (after a sleep in `poll()`, which arms the flag).
    pub fn quiet(&self) {
        self.csb.set_appl_need_kick(false);
    }

    /// Kicks rung so far.
    pub fn kicks(&self) -> u64 {
        self.kicks.get()
    }

    /// `ktoa` (hwcur, hwtail) now, keeping the last good value of an index out of range.
    pub fn read_host(&self) -> (u32, u32) {
        let (hwcur, hwtail) = self.csb.guest_read_ktoa();
        if hwcur < self.n {
            self.hwcur.set(hwcur);
        }
        if hwtail < self.n {
            self.hwtail.set(hwtail);
        }
        (self.hwcur.get(), self.hwtail.get())
    }

    /// The sync: publishes the netmap_ring's head/cur if they moved, kicks if the host asks
    /// for it, and sets the ring's tail from the host. `hwcur` of the result is the head
    /// published (as the ioctl syncs report it).
    pub fn sync(&self, bell: &dyn Doorbell) -> Result<SyncResult, BadIndices> {
        let (h, c) = (self.ring.head(), self.ring.cur());
        let (_, tail) = self.read_host();
        let last = self.head.get();
        if !ring::within(last, h, tail, self.n) || !ring::within(h, c, tail, self.n) {
            return Err(BadIndices {
                head: h,
                cur: c,
                last,
                tail,
            });
        }
        let moved = (h, c) != (last, self.cur.get());
        if moved {
            self.csb.guest_write_atok(h, c);
            self.head.set(h);
            self.cur.set(c);
        }
        let (hwcur, hwtail) = self.read_host();
        let blocked = h == hwtail && hwcur != h && self.kicked.get() != Some(h);
        if (moved || blocked) && self.csb.guest_kern_need_kick() {
            bell.kick(self.kring);
            self.kicks.set(self.kicks.get() + 1);
            self.kicked.set(Some(h));
        }
        self.ring.set_tail(hwtail);
        Ok(SyncResult { hwcur: h, hwtail })
    }
}

/// KICK(i) by `outl` to the NIC's I/O BAR from user space, after `ioperm` (root).
#[derive(Debug)]
pub struct PortIo {
    base: u16,
    rings: u32,
}

impl PortIo {
    /// Asks for access to the kick registers of `rings` rings of the NIC whose BAR0 is the
    /// I/O port `bar0` (`ptnet_layout.kick_port`): KICK(0) to KICK(rings - 1), at most
    /// [`MAX_RINGS`], so no `outl` can reach past the NIC's kick window.
    pub fn new(bar0: u32, rings: u32) -> io::Result<Self> {
        let first = u64::from(bar0) + nic::kick(0);
        let end = u64::from(bar0) + nic::kick(rings);
        if bar0 == 0 || rings == 0 || rings > MAX_RINGS || end > 0x1_0000 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: ioperm only changes this thread's I/O permission bitmap; no memory is passed.
        let r = unsafe { libc::ioperm(first, end - first, 1) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PortIo {
            base: first as u16,
            rings,
        })
    }
}

impl Doorbell for PortIo {
    fn kick(&self, kring: u32) {
        assert!(kring < self.rings, "kick of ring {kring} out of range");
        // In range of the ioperm window (checked in new), below 0x10000.
        let port = self.base + 4 * kring as u16;
        // The NIC's KICK register, whose value is ignored; it touches no memory of this process.
        // SAFETY: a 4-byte write to a port this thread was granted by ioperm in `new`.
        unsafe {
            std::arch::asm!("out dx, eax", in("dx") port, in("eax") 0u32,
                options(nomem, nostack, preserves_flags));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicU32, Ordering};

    use netmap::abi::{ring as ringabi, slot};

    use super::*;

    const N: u32 = 8;

    /// Records the kicks.
    #[derive(Default)]
    struct Bell(Cell<Vec<u32>>);

    impl Doorbell for Bell {
        fn kick(&self, kring: u32) {
            let mut v = self.0.take();
            v.push(kring);
            self.0.set(v);
        }
    }

    impl Bell {
        /// Kicks since the last call.
        fn count(&self) -> usize {
            self.0.take().len()
        }
    }

    /// Two CSB pages and one ring of N slots in a private file mapping.
    struct Rig {
        _map: vale::Mapping,
        host: CsbRing,
        ring: RingView,
    }

    fn rig() -> Rig {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "ptvmm-busypoll-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let len = 3 * 4096;
        f.set_len(len as u64).unwrap();
        let map = vale::Mapping::new(f.as_raw_fd(), len).unwrap();
        let m = map.mem();
        let host = CsbRing::new(&m.sub(0, 4096), &m.sub(4096, 4096), 0);
        let ring = RingView::new(m.sub(8192, 4096), 0, N);
        assert!(ringabi::HEADER_SIZE + slot::SIZE * N as usize <= 4096);
        Rig {
            _map: map,
            host,
            ring,
        }
    }

    /// The state a registration leaves: host at (hwcur, hwtail), ring head = cur = hwcur.
    fn start(r: &Rig, hwcur: u32, hwtail: u32) -> BusyRing {
        r.host.host_write_ktoa(hwcur, hwtail);
        r.host.guest_write_atok(hwcur, hwcur);
        r.host.set_appl_need_kick(true);
        r.ring.set_head(hwcur);
        r.ring.set_cur(hwcur);
        r.ring.set_tail(hwtail);
        BusyRing::new(r.host, r.ring, 0)
    }

    fn advance(r: &Rig, k: u32) {
        let h = ring::add(r.ring.head(), k, N);
        r.ring.set_cur(h);
        r.ring.set_head(h);
    }

    #[test]
    fn publishes_head_and_cur_and_asks_for_no_interrupts() {
        let r = rig();
        let b = start(&r, 0, N - 1);
        assert!(!r.host.appl_need_kick(), "busy-poll wants no interrupts");
        let bell = Bell::default();
        advance(&r, 3);
        let s = b.sync(&bell).unwrap();
        let a = r.host.host_read_atok();
        assert_eq!((a.head, a.cur), (3, 3));
        assert_eq!(
            s,
            SyncResult {
                hwcur: 3,
                hwtail: N - 1
            }
        );
        assert_eq!(bell.count(), 0, "host did not ask for a kick");
    }

    #[test]
    fn kicks_only_when_the_host_asks() {
        let r = rig();
        let b = start(&r, 0, N - 1);
        let bell = Bell::default();
        r.host.set_kern_need_kick(true);
        advance(&r, 2);
        b.sync(&bell).unwrap();
        assert_eq!(bell.0.take(), vec![0]);
        assert_eq!(b.kicks(), 1);
        // Nothing moved and the ring is not blocked: no second kick though the flag stays.
        b.sync(&bell).unwrap();
        assert_eq!(bell.count(), 0);
        // The host woke up: flag cleared, it took the slots. New work, no kick.
        r.host.set_kern_need_kick(false);
        r.host.host_write_ktoa(2, 1);
        advance(&r, 2);
        b.sync(&bell).unwrap();
        assert_eq!(bell.count(), 0);
        assert_eq!(b.kicks(), 1);
    }

    #[test]
    fn blocked_ring_kicks_once_per_head_while_the_host_lags() {
        // RX: 4 packets arrived (hwtail 4); the application consumed and released them.
        let r = rig();
        let b = start(&r, 0, 4);
        let bell = Bell::default();
        advance(&r, 4);
        b.sync(&bell).unwrap();
        assert_eq!(bell.count(), 0, "host in rx_wait, no kick wanted");
        // The host now sleeps asking for kicks, not having taken the slots (hwcur 0 != 4).
        r.host.set_kern_need_kick(true);
        for _ in 0..10 {
            b.sync(&bell).unwrap();
        }
        assert_eq!(bell.count(), 1, "one kick for head 4, not one per spin");
        // Host caught up (hwcur = head): blocked but nothing to hand over, no kick.
        r.host.host_write_ktoa(4, 4);
        let b2 = start(&r, 4, 4);
        r.host.set_kern_need_kick(true);
        b2.sync(&bell).unwrap();
        assert_eq!(bell.count(), 0);
    }

    #[test]
    fn tail_follows_the_host_and_bad_host_values_are_ignored() {
        let r = rig();
        let b = start(&r, 0, 3);
        let bell = Bell::default();
        r.host.host_write_ktoa(0, 6);
        assert_eq!(b.sync(&bell).unwrap().hwtail, 6);
        assert_eq!(r.ring.tail(), 6);
        r.host.host_write_ktoa(u32::MAX, 1000);
        assert_eq!(
            b.sync(&bell).unwrap().hwtail,
            6,
            "out-of-range hwtail ignored"
        );
        assert_eq!(b.read_host(), (0, 6));
    }

    #[test]
    fn head_beyond_tail_or_behind_the_last_head_is_refused() {
        let r = rig();
        let b = start(&r, 2, 5);
        let bell = Bell::default();
        advance(&r, 4); // head 6 > tail 5
        let e = b.sync(&bell).unwrap_err();
        assert_eq!((e.head, e.last, e.tail), (6, 2, 5));
        r.ring.set_head(1); // behind the last head published
        r.ring.set_cur(1);
        assert!(b.sync(&bell).is_err());
        r.ring.set_head(4);
        r.ring.set_cur(3); // cur behind head
        assert!(b.sync(&bell).is_err());
        r.ring.set_head(N);
        r.ring.set_cur(N);
        assert!(b.sync(&bell).is_err());
        let a = r.host.host_read_atok();
        assert_eq!((a.head, a.cur), (2, 2), "nothing invalid was published");
        r.ring.set_head(5);
        r.ring.set_cur(5);
        assert_eq!(b.sync(&bell).unwrap().hwcur, 5);
    }

    #[test]
    fn wraps_around_the_ring() {
        let r = rig();
        let b = start(&r, 6, 5);
        let bell = Bell::default();
        for lap in 0..3 {
            advance(&r, 5);
            let s = b.sync(&bell).unwrap();
            // The host forwards and completes at once (VALE): hwcur = head, hwtail = head - 1.
            r.host.host_write_ktoa(s.hwcur, ring::prev(s.hwcur, N));
            let a = r.host.host_read_atok();
            assert_eq!(a.head, ring::add(6, 5 * (lap + 1), N));
        }
        assert_eq!(bell.count(), 0);
    }

    #[test]
    fn port_io_rejects_bad_ranges() {
        assert!(PortIo::new(0, 2).is_err());
        assert!(PortIo::new(0xffc0, 32).is_err());
        assert!(PortIo::new(0xc000, 0).is_err());
        assert!(
            PortIo::new(0xc000, MAX_RINGS + 1).is_err(),
            "past the kick window"
        );
    }
}
