//! The guest backend: ptnet.ko's netmap-mode character device `/dev/ptnetN`
//! (docs/ptnet-driver.md, guest-images/ptnet/ptnet_uapi.h).
//!
//! Open, `PTNET_IOC_LAYOUT`, `mmap` of the port's netmap region (netmap_if, rings and buffers
//! with netmap's layout, read only through `netmap`'s views), `PTNET_IOC_REGISTER`; then the
//! TXSYNC/RXSYNC ioctls after the loops moved head/cur in the ring, and `poll()` to sleep.
//! With `--busy-poll` the syncs run ABI §2 on the CSB (mapped after the region) from user
//! space instead ([`crate::busypoll`]): no syscall per batch, kicks by `outl` only when the
//! host asks, waits spin (then sleep in `poll()` after 50 µs). Closing needs no drain: the host's DELETE forwards the TX frames
//! published last and takes back the RX slots released last before its workers stop.
//! Nothing read from the region is trusted: ring and buffer offsets are checked against it.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use netmap::abi::{nif, ring, slot};
use netmap::csb::CsbRing;
use netmap::ptnet::nic;
use netmap::{IfView, Pool, RingView, SharedMem, SyncResult};

use crate::backend::Backend;
use crate::busypoll::{BusyRing, PortIo};
use crate::ptnet_uapi::{self as uapi, Layout};

/// How long a busy-poll wait spins before it sleeps in `poll()`.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);

/// An open, registered `/dev/ptnetN` with its region mapped.
pub struct PtnetDevice {
    path: String,
    layout: Layout,
    mem: SharedMem,
    tx: RingView,
    rx: RingView,
    bufs: Pool,
    /// Owns the mapping of the region and the CSB; unmapped after UNREGISTER, before `fd` closes.
    _map: vale::Mapping,
    /// Busy-poll mode: syncs through the CSB instead of the ioctls.
    busy: Option<Busy>,
    /// `/proc/interrupts` counts of the NIC's vectors at registration.
    irqs_at_start: Option<u64>,
    // Dropped after the mapping is gone (see Drop).
    fd: OwnedFd,
}

impl PtnetDevice {
    /// Opens `path`, maps the region, checks it and registers (netmap mode): every ring
    /// (`ring` `None`; the loops use ring 0) or TX and RX ring `i` only (`Some(i)`,
    /// `PTNET_IOC_REGISTER_RING`, one per `-p` thread); with `busy_poll`, also gets access to
    /// the kick registers (ioperm, root; threads spawned later inherit it) and syncs through
    /// the CSB from then on.
    pub fn open(path: &str, busy_poll: bool, ring: Option<u32>) -> Result<PtnetDevice> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let fd = OwnedFd::from(file);
        let layout = uapi::get_layout(&fd).context("PTNET_IOC_LAYOUT")?;
        ensure!(
            layout.version == uapi::VERSION,
            "ptnet uapi version {} (expected {})",
            layout.version,
            uapi::VERSION
        );
        let mem_size = usize::try_from(layout.mem_size)?;
        let csb_ofs = usize::try_from(layout.csb_offset)?;
        let csb_size = layout.csb_size as usize;
        let entries = (layout.num_tx_rings as usize + layout.num_rx_rings as usize) * 64;
        ensure!(
            mem_size > 0
                && csb_ofs >= mem_size
                && layout.csb_entry_size == 64
                && csb_size.is_multiple_of(2)
                && csb_size / 2 >= entries,
            "bad layout: region {mem_size} bytes, CSB {csb_size} bytes at {csb_ofs}"
        );
        let len = csb_ofs.checked_add(csb_size).context("bad CSB offset")?;
        // One mapping from offset 0 covers the region and the CSB pages.
        let map = vale::Mapping::new(fd.as_raw_fd(), len).context("mmap of the region")?;
        // Every view below is a field of the device, which owns `map`: none outlives it.
        let all = map.mem();
        let mem = all.sub(0, mem_size);
        let (atok, ktoa) = (
            all.sub(csb_ofs, csb_size / 2),
            all.sub(csb_ofs + csb_size / 2, csb_size / 2),
        );
        let idx = ring.unwrap_or(0);
        let rx_kring = layout.num_tx_rings + idx;
        let (tx, rx, bufs) = check_region(&mem, &layout, idx)?;
        let bell = if busy_poll {
            let rings = layout.num_tx_rings + layout.num_rx_rings;
            ensure!(
                layout.kick_port != 0,
                "--busy-poll: {path} has no I/O port for kicks"
            );
            let p = PortIo::new(layout.kick_port, rings).with_context(|| {
                format!(
                    "--busy-poll: ioperm on the kick registers at {:#x} (needs root)",
                    u64::from(layout.kick_port) + nic::KICK_BASE
                )
            })?;
            Some(p)
        } else {
            None
        };
        match ring {
            None => uapi::simple(&fd, uapi::IOC_REGISTER).context("PTNET_IOC_REGISTER")?,
            Some(i) => uapi::register_ring(&fd, i).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOTTY) => anyhow::anyhow!(
                    "this ptnet.ko cannot register one ring pair (no PTNET_IOC_REGISTER_RING): \
                     -p needs a newer driver"
                ),
                Some(libc::EBUSY) => anyhow::anyhow!(
                    "ring pair {i} (or the whole NIC) is registered by another user"
                ),
                _ => anyhow::Error::new(e).context(format!("PTNET_IOC_REGISTER_RING {i}")),
            })?,
        }
        // The registration set the netmap_rings from the host state: the busy rings start there.
        let busy = bell.map(|bell| Busy {
            tx: BusyRing::new(CsbRing::new(&atok, &ktoa, idx), tx, idx),
            rx: BusyRing::new(CsbRing::new(&atok, &ktoa, rx_kring), rx, rx_kring),
            bell,
        });
        let irqs_at_start = nic_interrupts(&layout.ifname());
        Ok(PtnetDevice {
            path: path.to_string(),
            layout,
            mem,
            tx,
            rx,
            bufs,
            busy,
            irqs_at_start,
            _map: map,
            fd,
        })
    }

    /// The layout the driver reported.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn poll(&self, events: i16, timeout: Duration) -> Result<()> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: `pfd` is one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e).context("poll");
        }
        if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
            bail!("poll: error on {}", self.path);
        }
        Ok(())
    }

    /// Busy-poll waits: spin on `ktoa` until `changed`, for at most [`SPIN_BEFORE_SLEEP`];
    /// then sleep in `poll()` (the driver arms `appl_need_kick` with the double check) for
    /// the rest of `timeout`, and ask for no interrupts again. A vCPU that spun without end
    /// would hold the CPU a host worker may need to make the change (measured in the nested
    /// runs: a kick took ~50 ms to be served while the guest kept spinning).
    fn busy_wait(
        &self,
        ring: &BusyRing,
        events: i16,
        timeout: Duration,
        changed: impl Fn() -> bool,
    ) -> Result<()> {
        let t0 = Instant::now();
        while !changed() {
            if t0.elapsed() >= SPIN_BEFORE_SLEEP.min(timeout) {
                if timeout > SPIN_BEFORE_SLEEP {
                    let r = self.poll(events, timeout - SPIN_BEFORE_SLEEP);
                    ring.quiet();
                    r?;
                }
                return Ok(());
            }
            for _ in 0..32 {
                std::hint::spin_loop();
            }
        }
        Ok(())
    }

    fn state(r: &RingView) -> SyncResult {
        SyncResult {
            hwcur: r.head(),
            hwtail: r.tail(),
        }
    }
}

/// The busy-poll state: one CSB-synced ring per direction and the kick registers.
struct Busy {
    tx: BusyRing,
    rx: BusyRing,
    bell: PortIo,
}

/// Sum of `/proc/interrupts` counts (all CPUs) of `ifname`'s ring vectors, or `None` if
/// unreadable.
fn nic_interrupts(ifname: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/interrupts").ok()?;
    Some(count_interrupts(&text, ifname))
}

/// Sums the per-CPU counts of the lines whose action is `<ifname>-tx<i>` or `<ifname>-rx<i>`
/// (the names ptnet.ko gives its vectors).
pub fn count_interrupts(proc_interrupts: &str, ifname: &str) -> u64 {
    let ours = |action: &str| {
        action
            .strip_prefix(ifname)
            .and_then(|r| r.strip_prefix("-tx").or_else(|| r.strip_prefix("-rx")))
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
    };
    proc_interrupts
        .lines()
        .filter(|l| l.split_whitespace().last().is_some_and(ours))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map_while(|w| w.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Finds TX ring `idx` and RX ring `idx` through the netmap_if (order: NIC tx, host tx, NIC
/// rx, host rx) and the buffer pool, checking everything against the region and the layout.
fn check_region(mem: &SharedMem, l: &Layout, idx: u32) -> Result<(RingView, RingView, Pool)> {
    let nifp = l.nifp_offset as usize;
    ensure!(
        mem.contains(nifp, nif::SIZE),
        "netmap_if outside the region"
    );
    let nif = IfView::new(*mem, nifp);
    let (ntx, nrx) = (nif.tx_rings(), nif.rx_rings());
    ensure!(
        ntx == l.num_tx_rings && nrx == l.num_rx_rings && ntx >= 1 && nrx >= 1,
        "netmap_if rings {ntx}/{nrx}, layout {}/{}",
        l.num_tx_rings,
        l.num_rx_rings
    );
    ensure!(
        idx < ntx && idx < nrx,
        "ring pair {idx}: the NIC has {ntx} TX / {nrx} RX rings (-p takes one pair per thread)"
    );
    let host_tx = mem.load_u32(nifp + nif::HOST_TX_RINGS, Relaxed);
    let krx = ntx
        .checked_add(host_tx)
        .filter(|&k| k < 64)
        .context("bad host ring count")?;
    ensure!(
        mem.contains(nifp + nif::RING_OFS, 8 * (krx as usize + idx as usize + 1)),
        "ring offsets outside the region"
    );
    let ring_at = |k: u32, slots: u32, dir: u16| -> Result<RingView> {
        let off = usize::try_from(nifp as i64 + nif.ring_ofs(k)).context("ring offset")?;
        ensure!(
            slots > 0 && mem.contains(off, ring::HEADER_SIZE + slot::SIZE * slots as usize),
            "ring {k} outside the region"
        );
        let n = mem.load_u32(off + ring::NUM_SLOTS, Relaxed);
        let bs = mem.load_u32(off + ring::NR_BUF_SIZE, Relaxed);
        let d = mem.load_u16(off + ring::DIR, Relaxed);
        ensure!(
            n == slots && bs == l.buf_size && d == dir,
            "ring {k}: {n} slots, buffers of {bs}, dir {d} (expected {slots}, {}, {dir})",
            l.buf_size
        );
        Ok(RingView::new(*mem, off, slots))
    };
    let tx = ring_at(idx, l.num_tx_slots, ring::DIR_TX)?;
    let rx = ring_at(krx + idx, l.num_rx_slots, ring::DIR_RX)?;
    // Buffers: ring + buf_ofs + idx * buf_size, one pool for every ring.
    let base = |r: &RingView| usize::try_from(r.offset() as i64 + r.buf_ofs()).ok();
    let b = base(&tx).context("TX buffer offset")?;
    ensure!(
        base(&rx) == Some(b),
        "TX and RX rings disagree on the buffers"
    );
    ensure!(l.buf_size >= 64 && b <= mem.len(), "bad buffer pool");
    let objnum = ((mem.len() - b) / l.buf_size as usize).min(u32::MAX as usize) as u32;
    Ok((
        tx,
        rx,
        Pool {
            offset: b as u64,
            objnum,
            objsz: l.buf_size,
        },
    ))
}

impl Drop for PtnetDevice {
    fn drop(&mut self) {
        // Back to stack mode (closing the file would do it too); then the fields drop in
        // order: the mapping (`_map`) before the descriptor (`fd`, declared last).
        let _ = uapi::simple(&self.fd, uapi::IOC_UNREGISTER);
    }
}

impl Backend for PtnetDevice {
    fn name(&self) -> String {
        format!("{} ({})", self.path, self.layout.ifname())
    }

    fn shape(&self) -> (u32, u32, u32) {
        let l = &self.layout;
        (l.num_tx_rings, l.num_rx_rings, l.num_tx_slots)
    }

    fn mem(&self) -> SharedMem {
        self.mem
    }

    fn tx_ring(&self) -> RingView {
        self.tx
    }

    fn rx_ring(&self) -> RingView {
        self.rx
    }

    fn bufs(&self) -> Pool {
        self.bufs
    }

    fn txsync(&self) -> Result<SyncResult> {
        if let Some(b) = &self.busy {
            return Ok(b.tx.sync(&b.bell)?);
        }
        uapi::simple(&self.fd, uapi::IOC_TXSYNC).context("PTNET_IOC_TXSYNC")?;
        Ok(Self::state(&self.tx))
    }

    fn rxsync(&self) -> Result<SyncResult> {
        if let Some(b) = &self.busy {
            return Ok(b.rx.sync(&b.bell)?);
        }
        uapi::simple(&self.fd, uapi::IOC_RXSYNC).context("PTNET_IOC_RXSYNC")?;
        Ok(Self::state(&self.rx))
    }

    fn rx_wait(&self, seen_hwtail: u32, timeout: Duration) -> Result<()> {
        if self.rx.tail() != seen_hwtail {
            return Ok(());
        }
        if let Some(b) = &self.busy {
            let changed = || b.rx.read_host().1 != seen_hwtail;
            return self.busy_wait(&b.rx, libc::POLLIN, timeout, changed);
        }
        self.poll(libc::POLLIN, timeout)
    }

    fn tx_wait(&self, timeout: Duration) -> Result<()> {
        if let Some(b) = &self.busy {
            let seen = self.tx.tail();
            let changed = || b.tx.read_host().1 != seen;
            return self.busy_wait(&b.tx, libc::POLLOUT, timeout, changed);
        }
        self.poll(libc::POLLOUT, timeout)
    }

    fn kicks(&self) -> Option<u64> {
        self.busy.as_ref().map(|b| b.tx.kicks() + b.rx.kicks())
    }

    fn interrupts(&self) -> Option<u64> {
        let now = nic_interrupts(&self.layout.ifname())?;
        Some(now.saturating_sub(self.irqs_at_start?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupts_of_the_nic_vectors_only() {
        let text = "           CPU0       CPU1
  0:         41          0   IO-APIC   2-edge      timer
 24:        120          3   PCI-MSIX-0000:00:03.0   0-edge      eth0-tx0
 25:       5000          7   PCI-MSIX-0000:00:03.0   1-edge      eth0-rx0
 26:          9          0   PCI-MSIX-0000:00:04.0   0-edge      eth1-rx0
 27:          1          1   PCI-MSIX-0000:00:05.0   0-edge      eth0-txq
NMI:          0          0   Non-maskable interrupts
";
        assert_eq!(count_interrupts(text, "eth0"), 123 + 5007);
        assert_eq!(count_interrupts(text, "eth1"), 9);
        assert_eq!(count_interrupts(text, "eth2"), 0);
    }
}
