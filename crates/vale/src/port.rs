//! A VALE port: opening (creating the switch if needed), the netmap region and its rings,
//! txsync/rxsync, receiver sleep/wake, closing (removing the switch when last).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{fence, AtomicU32, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netmap::port::{RingKind, Waker};
use netmap::{
    ring, rxsync_prologue, txsync_prologue, NetmapPort, PortError, RegionConfig, RegionInfo,
    RegionLayout, RingView, SharedMem, SyncResult,
};

use crate::error::ValeError;
use crate::forward::{self, Sender, TxCtx};
use crate::layout::*;
use crate::name;
use crate::switch::{port_path, shm_dir, EntryInfo, SwitchFile};
use crate::sys::{self, Mapping};
use crate::vnet;

mod sync;

/// How often (in txsyncs) a sender considers reclaiming ports of dead processes.
const MAINT_SYNCS: u64 = 256;
/// ... and at least this much time apart.
const MAINT_PERIOD: Duration = Duration::from_millis(500);

/// Options for [`Port::open`].
#[derive(Debug, Clone, Default)]
pub struct PortOptions {
    /// Rings, slots and buffer size of the new port.
    pub config: RegionConfig,
    /// Directory of the shared-memory files (default: `$PTVMM_SHM_DIR` or `/dev/shm`).
    pub shm_dir: Option<PathBuf>,
    /// Lossless sending: a full destination ring holds this port's TX slots in its ring
    /// (txsync returns early, [`NetmapPort::tx_wait`] sleeps until the receiver frees
    /// slots) instead of dropping them; a dead or stuck receiver releases it within
    /// [`forward::HOLD_MAX`]. Shown by `ptvmm-vale-ctl list`.
    pub lossless: bool,
    /// Length of the virtio-net header on the port's frames: 0 (none), 10 or 12. Frames
    /// between ports of different lengths are converted ([`crate::vnet`]). Can be changed
    /// later with [`Port::set_vnet_hdr_len`].
    pub vnet_hdr_len: u32,
}

/// Counters of a port (see vale-ctl).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortStats {
    pub tx_pkts: u64,
    pub tx_bytes: u64,
    pub tx_bad: u64,
    pub rx_pkts: u64,
    pub rx_bytes: u64,
    pub rx_drops: u64,
}

impl PortStats {
    /// Reads the counters of entry `idx` of a switch.
    pub fn read(sw: &SharedMem, idx: u32) -> PortStats {
        let e = entry(idx);
        let l = |o| sw.load_u64(e + o, Relaxed);
        PortStats {
            tx_pkts: l(E_TX_PKTS),
            tx_bytes: l(E_TX_BYTES),
            tx_bad: l(E_TX_BAD),
            rx_pkts: l(E_RX_PKTS),
            rx_bytes: l(E_RX_BYTES),
            rx_drops: l(E_RX_DROPS),
        }
    }
}

struct TxRing {
    ctx: TxCtx,
    last_maint: Instant,
}

/// An open VALE port owned by this process.
pub struct Port {
    full_name: String,
    sw: SwitchFile,
    idx: u32,
    gen: u32,
    /// This process's pid when it opened the port (the table entry's owner).
    owner: u32,
    /// An attached persistent port: closing detaches instead of freeing.
    persistent: bool,
    path: PathBuf,
    fd: OwnedFd,
    map: Arc<Mapping>,
    layout: RegionLayout,
    priv_layout: PrivLayout,
    tx: Vec<Mutex<TxRing>>,
    lossless: bool,
    hdr_len: AtomicU32,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("name", &self.full_name)
            .field("idx", &self.idx)
            .finish()
    }
}

impl Port {
    /// Opens port `valeX:Y`: creates switch X if it does not exist and a new ephemeral port
    /// Y with its own region, or attaches to persistent port Y if nobody has it open (its
    /// configuration must be `opts.config`). Ports of dead processes are reclaimed first.
    pub fn open(full_name: &str, opts: &PortOptions) -> Result<Port, ValeError> {
        let (swname, pname) = name::parse(full_name)?;
        if !vnet::HDR_LENS.contains(&opts.vnet_hdr_len) {
            return Err(ValeError::BadHdrLen(opts.vnet_hdr_len));
        }
        let layout = RegionLayout::new(opts.config)?;
        let priv_layout = PrivLayout::new(&layout);
        let dir = shm_dir(opts.shm_dir.as_deref());
        let sw = SwitchFile::open_locked(&dir, swname, true)?;
        let flags = if opts.lossless { FLAG_LOSSLESS } else { 0 };
        let r = Self::open_locked(&sw, full_name, pname, layout, priv_layout, flags)
            .inspect(|(c, _)| sw.set_hdr_len(c.idx, opts.vnet_hdr_len));
        if r.is_err() {
            sw.remove_if_empty();
        }
        sw.unlock();
        let (c, persistent) = r?;
        let tx = (0..layout.config.tx_rings)
            .map(|_| {
                Mutex::new(TxRing {
                    ctx: TxCtx::new(opts.lossless),
                    last_maint: Instant::now(),
                })
            })
            .collect();
        log::info!(
            "{full_name}: {} port {} ({} bytes region{})",
            if persistent {
                "attached to persistent"
            } else {
                "opened as"
            },
            c.idx,
            layout.size,
            if opts.lossless { ", lossless" } else { "" }
        );
        Ok(Port {
            full_name: full_name.to_string(),
            sw,
            idx: c.idx,
            gen: c.gen,
            owner: c.owner,
            persistent,
            path: c.path,
            fd: c.fd,
            map: Arc::new(c.map),
            layout,
            priv_layout,
            tx,
            lossless: opts.lossless,
            hdr_len: AtomicU32::new(opts.vnet_hdr_len),
        })
    }

    /// Under the switch lock: a new ephemeral port, or the idle persistent port of that name
    /// (then `true`).
    fn open_locked(
        sw: &SwitchFile,
        full_name: &str,
        pname: &str,
        layout: RegionLayout,
        priv_layout: PrivLayout,
        flags: u32,
    ) -> Result<(Claimed, bool), ValeError> {
        sw.reclaim_dead();
        match sw.find(pname) {
            Some(e) if e.idle() => {
                attach_persistent(sw, full_name, &e, &layout, &priv_layout, flags)
                    .map(|c| (c, true))
            }
            Some(e) => Err(ValeError::PortBusy {
                name: full_name.to_string(),
                pid: e.owner,
            }),
            None => create_entry(
                sw,
                full_name,
                pname,
                &layout,
                &priv_layout,
                flags,
                sys::getpid(),
            )
            .map(|c| (c, false)),
        }
    }

    /// Puts the port back in the state [`Port::open`] left it in, with header length
    /// `hdr_len`: the whole file rewritten (region, rings, buffers zeroed, private ring state),
    /// its counters zeroed and every TX ring's sender state (holds, blocker, maintenance
    /// clock) fresh; only the cached peer mappings stay, as they depend on the port table
    /// alone. For the fuzz targets, which keep their ports across inputs
    /// ([`crate::fuzzing`]). Nothing may use the port meanwhile (no sync in another thread,
    /// no peer sending to it).
    pub(crate) fn reset_for_fuzzing(&self, hdr_len: u32) -> Result<(), ValeError> {
        let mem = self.mem();
        mem.fill(0, self.priv_layout.file_size, 0);
        init_file(&mem, &self.layout, &self.priv_layout, &self.full_name);
        for t in &self.tx {
            let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
            let peers = std::mem::take(&mut t.ctx.peers);
            *t = TxRing {
                ctx: TxCtx::new(self.lossless),
                last_maint: Instant::now(),
            };
            t.ctx.peers = peers;
        }
        self.sw.zero_counters(self.idx);
        if self.vnet_hdr_len() != hdr_len {
            self.set_vnet_hdr_len(hdr_len)?;
        }
        Ok(())
    }

    /// Empties the MAC table of the port's switch (see [`Port::reset_for_fuzzing`]).
    pub(crate) fn forget_macs_for_fuzzing(&self) {
        self.sw.clear_macs();
    }

    /// `valeX:Y`.
    pub fn full_name(&self) -> &str {
        &self.full_name
    }

    /// The port's file: bytes `0..layout().size` are the netmap region.
    pub fn region_path(&self) -> &std::path::Path {
        &self.path
    }

    /// Whether this is a persistent port (made by `ptvmm-vale-ctl create`) this process
    /// attached to; closing it detaches, the port stays.
    pub fn persistent(&self) -> bool {
        self.persistent
    }

    /// Whether the port sends losslessly ([`PortOptions::lossless`]).
    pub fn lossless(&self) -> bool {
        self.lossless
    }

    /// Length of the virtio-net header on the port's frames (0, 10 or 12).
    pub fn vnet_hdr_len(&self) -> u32 {
        self.hdr_len.load(Relaxed)
    }

    /// Changes the length of the virtio-net header on the port's frames (0, 10 or 12).
    /// Meant for an idle port (a guest sets it before it creates its rings); frames in
    /// flight meanwhile are read with one length or the other.
    pub fn set_vnet_hdr_len(&self, len: u32) -> Result<(), ValeError> {
        if !vnet::HDR_LENS.contains(&len) {
            return Err(ValeError::BadHdrLen(len));
        }
        self.hdr_len.store(len, Relaxed);
        self.sw.set_hdr_len(self.idx, len);
        log::info!("{}: virtio-net header length {len}", self.full_name);
        Ok(())
    }

    /// Index of the port in its switch.
    pub fn index(&self) -> u32 {
        self.idx
    }

    /// The region layout.
    pub fn layout(&self) -> &RegionLayout {
        &self.layout
    }

    /// The whole port file mapping (region, then private state).
    pub fn mem(&self) -> SharedMem {
        self.map.mem()
    }

    /// The netmap view of TX ring `i` (for applications such as pkt-gen).
    pub fn tx_ring(&self, i: u32) -> RingView {
        RingView::new(
            self.mem(),
            self.layout.tx_ring_offset(i),
            self.layout.config.tx_slots,
        )
    }

    /// The netmap view of RX ring `i`.
    pub fn rx_ring(&self, i: u32) -> RingView {
        RingView::new(
            self.mem(),
            self.layout.rx_ring_offset(i),
            self.layout.config.rx_slots,
        )
    }

    /// This port's counters.
    pub fn stats(&self) -> PortStats {
        PortStats::read(&self.sw.mem(), self.idx)
    }

    /// Application-style TX sync (NIOCTXSYNC): takes head/cur from the netmap ring in the
    /// region, forwards, and writes the ring's tail. On invalid indices the ring is
    /// reinitialised from the host state and the error returned.
    pub fn txsync_ring(&self, i: u32) -> Result<SyncResult, PortError> {
        let r = self.tx_ring(i);
        match self.txsync(i, r.head(), r.cur()) {
            Ok(s) => {
                r.set_tail(s.hwtail);
                Ok(s)
            }
            Err(e) => {
                let s = self.ring_state(RingKind::Tx, i)?;
                r.set_head(s.hwcur);
                r.set_cur(s.hwcur);
                r.set_tail(s.hwtail);
                Err(e)
            }
        }
    }

    /// Application-style RX sync (NIOCRXSYNC).
    pub fn rxsync_ring(&self, i: u32) -> Result<SyncResult, PortError> {
        let r = self.rx_ring(i);
        match self.rxsync(i, r.head(), r.cur()) {
            Ok(s) => {
                r.set_tail(s.hwtail);
                Ok(s)
            }
            Err(e) => {
                let s = self.ring_state(RingKind::Rx, i)?;
                r.set_head(s.hwcur);
                r.set_cur(s.hwcur);
                r.set_tail(s.hwtail);
                Err(e)
            }
        }
    }

    fn check_ring(&self, kind: RingKind, ring: u32) -> Result<(), PortError> {
        let n = match kind {
            RingKind::Tx => self.layout.config.tx_rings,
            RingKind::Rx => self.layout.config.rx_rings,
        };
        if ring < n {
            Ok(())
        } else {
            Err(PortError::NoRing { kind, ring })
        }
    }

    fn maintain(&self, t: &mut TxRing) {
        t.ctx.syncs += 1;
        if !t.ctx.syncs.is_multiple_of(MAINT_SYNCS) || t.last_maint.elapsed() < MAINT_PERIOD {
            return;
        }
        t.last_maint = Instant::now();
        let dead = (0..MAX_PORTS)
            .filter(|&i| i != self.idx)
            .filter_map(|i| self.sw.entry(i))
            .any(|e| e.stale());
        if dead && self.sw.lock(true) {
            self.sw.reclaim_dead();
            self.sw.unlock();
        }
    }
}

/// A table entry claimed by this process, with its file mapped.
pub(crate) struct Claimed {
    pub idx: u32,
    pub gen: u32,
    pub owner: u32,
    pub path: PathBuf,
    pub fd: OwnedFd,
    pub map: Mapping,
}

/// Under the switch lock: takes a free entry for port `pname` owned by `pid` (0: a persistent
/// port nobody has open), creates and initialises its file, and publishes the entry.
pub(crate) fn create_entry(
    sw: &SwitchFile,
    full_name: &str,
    pname: &str,
    layout: &RegionLayout,
    priv_layout: &PrivLayout,
    flags: u32,
    pid: u32,
) -> Result<Claimed, ValeError> {
    let (idx, gen) = sw.alloc(
        pname,
        pid,
        &layout.config,
        layout.size as u64,
        priv_layout.file_size as u64,
        flags,
    )?;
    let path = port_path(&sw.dir, &sw.name, idx, gen);
    let (fd, map) =
        sys::create_and_map(&path, priv_layout.file_size).map_err(ValeError::io(&path))?;
    init_file(&map.mem(), layout, priv_layout, full_name);
    sw.publish(idx);
    Ok(Claimed {
        idx,
        gen,
        owner: pid,
        path,
        fd,
        map,
    })
}

/// Under the switch lock: maps idle persistent port `e` (which must have the configuration
/// `layout` was made from), restarts its rings from the switch's state as netmap does at
/// registration (what was queued for it stays), and gives it to this process with `flags`.
fn attach_persistent(
    sw: &SwitchFile,
    full_name: &str,
    e: &EntryInfo,
    layout: &RegionLayout,
    priv_layout: &PrivLayout,
    flags: u32,
) -> Result<Claimed, ValeError> {
    if e.config != layout.config
        || e.region_size != layout.size as u64
        || e.file_size != priv_layout.file_size as u64
    {
        return Err(ValeError::ConfigMismatch {
            name: full_name.to_string(),
            have: describe(&e.config),
            want: describe(&layout.config),
        });
    }
    let path = port_path(&sw.dir, &sw.name, e.idx, e.gen);
    let (fd, map) = sys::map_file(&path, priv_layout.file_size).map_err(ValeError::io(&path))?;
    restart_rings(&map.mem(), layout, priv_layout);
    let pid = sys::getpid();
    sw.attach_entry(e.idx, e.gen, pid, flags);
    Ok(Claimed {
        idx: e.idx,
        gen: e.gen,
        owner: pid,
        path,
        fd,
        map,
    })
}

/// `1x1024/1x1024, 2048-byte buffers`: TX rings x slots / RX rings x slots.
pub(crate) fn describe(c: &RegionConfig) -> String {
    format!(
        "{}x{}/{}x{} rings, {}-byte buffers",
        c.tx_rings, c.tx_slots, c.rx_rings, c.rx_slots, c.buf_size
    )
}

/// Points every netmap ring of a port file at the switch's state of that ring (head = cur =
/// hwcur, tail = hwtail), as a netmap registration does: a new opener starts where the
/// switch is, whatever the previous one left in the ring headers. Out-of-range private
/// values (a corrupted file) restart the ring empty.
fn restart_rings(mem: &SharedMem, layout: &RegionLayout, priv_layout: &PrivLayout) {
    let c = layout.config;
    for i in 0..c.tx_rings {
        let t = priv_layout.tx(i);
        let (mut cur, mut tail) = (
            mem.load_u32(t + TX_HWCUR, Relaxed),
            mem.load_u32(t + TX_HWTAIL, Relaxed),
        );
        if cur >= c.tx_slots || tail >= c.tx_slots {
            (cur, tail) = (0, c.tx_slots - 1);
            mem.store_u32(t + TX_HWCUR, cur, Relaxed);
            mem.store_u32(t + TX_HWTAIL, tail, Relaxed);
        }
        let r = RingView::new(*mem, layout.tx_ring_offset(i), c.tx_slots);
        r.set_head(cur);
        r.set_cur(cur);
        r.set_tail(tail);
    }
    for i in 0..c.rx_rings {
        let rs = priv_layout.rx(i);
        let mut cur = mem.load_u32(rs + RX_HWCUR, Relaxed);
        let tail = mem.load_u32(rs + RX_HWTAIL, Acquire) % c.rx_slots;
        if cur >= c.rx_slots {
            cur = tail;
            mem.store_u32(rs + RX_HWCUR, cur, Release);
        }
        let r = RingView::new(*mem, layout.rx_ring_offset(i), c.rx_slots);
        r.set_head(cur);
        r.set_cur(cur);
        r.set_tail(tail);
    }
}

/// Writes a fresh port file into `mem`: the netmap region named `name` and the private state
/// of every ring (TX: `hwcur` 0, `hwtail` at the slot before it; RX: empty, no lease).
pub(crate) fn init_file(
    mem: &SharedMem,
    layout: &RegionLayout,
    priv_layout: &PrivLayout,
    name: &str,
) {
    layout.init(mem, name);
    for i in 0..layout.config.tx_rings {
        let t = priv_layout.tx(i);
        mem.store_u32(t + TX_HWCUR, 0, Relaxed);
        mem.store_u32(t + TX_HWTAIL, layout.config.tx_slots - 1, Relaxed);
    }
    for i in 0..layout.config.rx_rings {
        forward::init_rx_state(mem, priv_layout.rx(i), layout.config.rx_slots);
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.sw.lock(false);
        if self.persistent {
            self.sw.release_entry(self.idx, self.gen, self.owner);
        } else {
            self.sw.free_entry(self.idx, self.gen);
        }
        self.sw.reclaim_dead();
        if self.sw.remove_if_empty() {
            log::info!("{}: last port closed, switch removed", self.full_name);
        }
        self.sw.unlock();
        // Lossless senders held by our rings retry now and find us gone.
        let m = self.mem();
        for i in 0..self.layout.config.rx_rings {
            let seq = m.atomic_u32(self.priv_layout.rx(i) + RX_SPACE_SEQ);
            seq.fetch_add(1, Release);
            sys::futex_wake(seq);
        }
        // The file is unlinked; the mapping lives on while wakers hold it.
    }
}
