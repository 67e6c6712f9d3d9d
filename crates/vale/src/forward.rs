//! Forwarding in the sender's txsync: validate slots, learn, look up, reserve destination
//! slots under a short per-ring lock, copy outside it, publish `hwtail` in order.
//!
//! Destination RX ring protocol (netmap's "leases"): under the ring lock a sender takes
//! `[hwlease, hwlease + k)` and a lease entry `{end, owner tid}`; it copies without the lock;
//! then, under the lock again, it marks its lease complete and advances `hwtail` over every
//! completed lease from the oldest (`lease_first`). A lease whose owner died is treated as
//! complete, so a sender killed mid-copy cannot wedge the ring. Each store leaves the state
//! consistent (lease entry before `lease_idx`, `lease_idx` before `hwlease`).

use std::sync::atomic::{fence, Ordering::*};
use std::time::Duration;

use netmap::abi::{slot, MAX_FRAGS};
use netmap::{ring, RingView, SharedMem};

use crate::layout::*;
use crate::learn;
use crate::lock;
use crate::peers::{Peer, Peers};
use crate::sys;
use crate::vnet;

mod convert;
mod lossless;

use convert::{Conv, Load};

/// Packets handled per forwarding round.
pub const BATCH: usize = 512;

/// How long a lossless sender stays held by a destination ring that frees nothing (its
/// receiver neither syncs nor exits) before it gives up on it: the frames for that ring are
/// then dropped and counted, as for a default port, until the receiver frees a slot again.
/// A destination whose owner process is dead is given up at once.
pub const HOLD_MAX: Duration = Duration::from_secs(1);

const DST_FLOOD: u16 = u16::MAX;
const DST_DROP: u16 = u16::MAX - 1;
const DST_BAD: u16 = u16::MAX - 2;

/// One packet of a batch.
#[derive(Debug, Clone, Copy)]
struct BatchPacket {
    /// First of its fragments in `TxCtx::frags`.
    frag: u32,
    nfrags: u16,
    /// A peer position, `DST_FLOOD`, or `DST_DROP`/`DST_BAD` (consumed without delivery).
    dst: u16,
    len: u32,
    /// Its first slot in the sender's TX ring (where a held lossless sender stops).
    slot: u32,
}

/// Packets `lists[start..end]` (indices into `ft`, ascending) for RX ring `ring` of peer
/// `peer` (a position in `Peers::list`).
#[derive(Debug, Clone, Copy, Default)]
struct Job {
    peer: usize,
    ring: u32,
    start: u32,
    end: u32,
    /// Its packets converted for the destination's virtio-net header (an index into
    /// `TxCtx::convs`), or [`NO_CONV`] when both ports have the same header length.
    conv: u32,
}

const NO_CONV: u32 = u32::MAX;

/// A destination RX ring, identified across peer-list refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DstKey {
    pub idx: u32,
    pub gen: u32,
    pub ring: u32,
}

/// The destination ring that stopped a lossless txsync, and its `hwcur` then: the sender
/// waits for that `hwcur` to move (`Port::tx_wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocker {
    pub key: DstKey,
    pub hwcur: u32,
}

/// Counters of one txsync.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TxStats {
    pub pkts: u64,
    pub bytes: u64,
    pub bad: u64,
}

/// Per-TX-ring scratch state of a sender (process-local).
#[derive(Debug, Default)]
pub struct TxCtx {
    pub peers: Peers,
    /// A full destination holds this ring's sender instead of dropping (`PortOptions`).
    pub lossless: bool,
    /// Set by a [`TxCtx::forward`] that stopped early (lossless only).
    pub blocker: Option<Blocker>,
    holds: Vec<lossless::Hold>,
    ft: Vec<BatchPacket>,
    /// `(buffer offset in the source region, len)` of every fragment of the batch.
    frags: Vec<(usize, u16)>,
    unicast: Vec<Vec<u32>>,
    flood: Vec<u32>,
    jobs: Vec<Job>,
    lists: Vec<u32>,
    convs: Vec<Conv>,
    /// A private copy of the packet being converted.
    pkt: Vec<u8>,
    pub syncs: u64,
}

/// The sending port as the forwarder needs it.
pub struct Sender<'a> {
    pub mem: SharedMem,
    pub layout: &'a netmap::RegionLayout,
    pub idx: u32,
    pub gen: u32,
    pub sw: SharedMem,
    pub tid: u32,
    /// Length of the virtio-net header on the sender's frames.
    pub hdr_len: u32,
}

impl TxCtx {
    /// A fresh context for a TX ring of a port opened lossless or not.
    pub fn new(lossless: bool) -> Self {
        TxCtx {
            lossless,
            ..TxCtx::default()
        }
    }

    /// Forwards slots `from..to` of TX ring `ring` of `src` (indices already validated).
    /// Returns the counters and the first slot not consumed: `to`, unless the sender is
    /// lossless and a destination was full (then the slots from there on stay pending and
    /// [`TxCtx::blocker`] names the destination).
    pub fn forward(&mut self, src: &Sender, ring_idx: u32, from: u32, to: u32) -> (TxStats, u32) {
        self.blocker = None;
        let n = src.layout.config.tx_slots;
        let txr = RingView::new(src.mem, src.layout.tx_ring_offset(ring_idx), n);
        let buf_size = src.layout.config.buf_size;
        let mut stats = TxStats::default();
        let mut last_hdr = (0u64, 0u32);
        let mut last_dst: Option<u16> = None;
        let mut j = from;
        while j != to {
            self.ft.clear();
            self.frags.clear();
            while j != to && self.ft.len() < BATCH {
                // Gather one packet: a MOREFRAG chain, at most MAX_FRAGS slots.
                let slot0 = j;
                let frag = self.frags.len() as u32;
                let mut nfrags = 0usize;
                let mut len = 0u32;
                let mut bad = false;
                loop {
                    let (idx, l, flags) = txr.slot(j).load();
                    j = ring::next(j, n);
                    nfrags += 1;
                    match src.layout.buf_offset(idx) {
                        Some(o) if l as u32 <= buf_size => self.frags.push((o, l)),
                        _ => bad = true,
                    }
                    len += l as u32;
                    if flags & slot::F_MOREFRAG == 0 || j == to {
                        break;
                    }
                    if nfrags == MAX_FRAGS {
                        bad = true; // truncated chain: the packet is dropped
                        break;
                    }
                }
                let skip = |dst| BatchPacket {
                    frag,
                    nfrags: 0,
                    dst,
                    len: 0,
                    slot: slot0,
                };
                if bad {
                    self.frags.truncate(frag as usize);
                    stats.bad += 1;
                    self.ft.push(skip(DST_BAD));
                    continue;
                }
                let (first_ofs, first_len) = self.frags[frag as usize];
                if (first_len as u32) < src.hdr_len + 14 {
                    self.frags.truncate(frag as usize);
                    stats.bad += 1;
                    self.ft.push(skip(DST_BAD));
                    continue;
                }
                // The two MACs as two aligned loads (buffers are 64-byte aligned): a batch
                // from one flow compares them against the previous frame's and skips the
                // learning and the lookup.
                let hdr = if src.hdr_len == 0 {
                    (
                        src.mem.load_u64(first_ofs, Relaxed),
                        src.mem.load_u32(first_ofs + 8, Relaxed),
                    )
                } else {
                    let mut b = [0u8; 12];
                    src.mem.read_bytes(first_ofs + src.hdr_len as usize, &mut b);
                    (
                        u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
                        u32::from_le_bytes(b[8..].try_into().expect("4 bytes")),
                    )
                };
                let dst = match last_dst {
                    Some(d) if hdr == last_hdr => d,
                    _ => {
                        let mut bytes = [0u8; 12];
                        bytes[..8].copy_from_slice(&hdr.0.to_le_bytes());
                        bytes[8..].copy_from_slice(&hdr.1.to_le_bytes());
                        let d = self.decide(src, &bytes);
                        last_hdr = hdr;
                        last_dst = Some(d);
                        d
                    }
                };
                if dst == DST_DROP {
                    self.frags.truncate(frag as usize);
                    self.ft.push(skip(DST_DROP));
                    continue;
                }
                stats.pkts += 1;
                stats.bytes += len as u64;
                self.ft.push(BatchPacket {
                    frag,
                    nfrags: nfrags as u16,
                    dst,
                    len,
                    slot: slot0,
                });
            }
            let cut = self.dispatch(src, ring_idx);
            if cut < self.ft.len() {
                // Held: the packets from `cut` on stay in the ring and are counted when sent.
                for f in &self.ft[cut..] {
                    match f.dst {
                        DST_BAD => stats.bad -= 1,
                        DST_DROP => {}
                        _ => {
                            stats.pkts -= 1;
                            stats.bytes -= f.len as u64;
                        }
                    }
                }
                return (stats, self.ft[cut].slot);
            }
        }
        (stats, to)
    }

    /// Learns the source MAC and picks the destination of a frame with header `hdr`.
    fn decide(&self, src: &Sender, hdr: &[u8; 12]) -> u16 {
        let dmac = learn::mac_to_u64(&hdr[0..6]);
        let smac = learn::mac_to_u64(&hdr[6..12]);
        if !learn::is_multicast(smac) {
            learn::learn(&src.sw, smac, src.idx, src.gen);
        }
        if learn::is_multicast(dmac) {
            return DST_FLOOD;
        }
        match learn::lookup(&src.sw, dmac) {
            Some((idx, _)) if idx == src.idx => DST_DROP,
            Some((idx, gen8)) => self.peers.find(idx, gen8).map_or(DST_FLOOD, |p| p as u16),
            None => DST_FLOOD,
        }
    }

    /// Sends the batch in `self.ft` to its destinations. Returns the index in `ft` of the
    /// first packet not consumed (`ft.len()` unless a lossless sender is held).
    fn dispatch(&mut self, src: &Sender, ring_idx: u32) -> usize {
        let np = self.peers.list.len();
        if np == 0 || self.ft.is_empty() {
            return self.ft.len();
        }
        self.jobs.clear();
        self.lists.clear();
        if !self.plan_uniform(ring_idx) {
            self.plan_mixed(ring_idx);
        }
        self.convert_jobs(src);
        if self.lossless {
            return self.dispatch_lossless(src);
        }
        for job in &self.jobs {
            deliver(src, &self.peers.list[job.peer], job.ring, self.load(job));
        }
        self.ft.len()
    }

    /// What `job` delivers.
    fn load<'a>(&'a self, job: &Job) -> Load<'a> {
        Load::of(job, &self.lists, &self.ft, &self.frags, &self.convs)
    }

    /// The common batch, one flow: every packet has the same destination (one port, or a
    /// flood), so every job takes the whole batch in order and no per-port lists are built.
    /// Returns false (nothing planned) for any other batch.
    fn plan_uniform(&mut self, ring_idx: u32) -> bool {
        let d = self.ft[0].dst;
        if d == DST_BAD || d == DST_DROP || self.ft.iter().any(|f| f.dst != d) {
            return false;
        }
        self.lists.extend(0..self.ft.len() as u32);
        let end = self.lists.len() as u32;
        let whole = |peer, ring| Job {
            peer,
            ring,
            start: 0,
            end,
            conv: NO_CONV,
        };
        if d == DST_FLOOD {
            self.jobs
                .extend((0..self.peers.list.len()).map(|p| whole(p, 0)));
        } else {
            let p = d as usize;
            let ring = ring_idx % self.peers.list[p].layout.config.rx_rings;
            self.jobs.push(whole(p, ring));
        }
        true
    }

    /// Any batch: per destination port, its unicast packets merged in batch order with the
    /// flooded ones (one job per destination ring).
    fn plan_mixed(&mut self, ring_idx: u32) {
        let np = self.peers.list.len();
        self.unicast.resize_with(np, Vec::new);
        for l in &mut self.unicast {
            l.clear();
        }
        self.flood.clear();
        for (i, f) in self.ft.iter().enumerate() {
            match f.dst {
                DST_BAD | DST_DROP => {}
                DST_FLOOD => self.flood.push(i as u32),
                d => self.unicast[d as usize].push(i as u32),
            }
        }
        // One job per destination ring, its packets in batch order.
        for p in 0..np {
            let unicast = &self.unicast[p];
            if unicast.is_empty() && self.flood.is_empty() {
                continue;
            }
            let ring_u = ring_idx % self.peers.list[p].layout.config.rx_rings;
            let mut job = |ring: u32, lists: &mut Vec<u32>, a: &[u32], b: &[u32]| {
                let start = lists.len() as u32;
                let (mut x, mut y) = (0, 0);
                while x < a.len() || y < b.len() {
                    if y == b.len() || (x < a.len() && a[x] < b[y]) {
                        lists.push(a[x]);
                        x += 1;
                    } else {
                        lists.push(b[y]);
                        y += 1;
                    }
                }
                self.jobs.push(Job {
                    peer: p,
                    ring,
                    start,
                    end: lists.len() as u32,
                    conv: NO_CONV,
                });
            };
            if ring_u == 0 {
                job(0, &mut self.lists, unicast, &self.flood);
            } else {
                if !unicast.is_empty() {
                    job(ring_u, &mut self.lists, unicast, &[]);
                }
                if !self.flood.is_empty() {
                    job(0, &mut self.lists, &[], &self.flood);
                }
            }
        }
    }
}

/// Free slots of the destination ring at `rs` whose receiver's `hwcur` is `hwcur`
/// (untrusted: out of range means no space). Ring lock held.
fn ring_space(pm: &SharedMem, rs: usize, n: u32, hwcur: u32) -> u32 {
    let hwlease = pm.load_u32(rs + RX_HWLEASE, Relaxed) % n;
    if hwcur < n {
        ring::distance(hwlease, ring::prev(hwcur, n), n)
    } else {
        0
    }
}

/// Takes `[hwlease, hwlease + slots)` and a lease for thread `tid`. Ring lock held, `slots`
/// within the ring's space. Returns the first slot and the lease index.
fn reserve(pm: &SharedMem, rs: usize, n: u32, tid: u32, slots: u32) -> (u32, u32) {
    let hwlease = pm.load_u32(rs + RX_HWLEASE, Relaxed) % n;
    let lease = pm.load_u32(rs + RX_LEASE_IDX, Relaxed) % n;
    let end = ring::add(hwlease, slots, n);
    let le = rs + RX_LEASES + 8 * lease as usize;
    pm.store_u32(le, end, Relaxed);
    pm.store_u32(le + 4, tid, Relaxed);
    pm.store_u32(rs + RX_LEASE_IDX, ring::next(lease, n), Relaxed);
    pm.store_u32(rs + RX_HWLEASE, end, Relaxed);
    (hwlease, lease)
}

/// Copies the packets `pkts` into RX ring `rx` of `peer` from slot `start` on (reserved).
/// Returns their bytes.
fn copy_packets(
    src: &Sender,
    peer: &Peer,
    rx: u32,
    start: u32,
    pkts: &[u32],
    ft: &[BatchPacket],
    frags: &[(usize, u16)],
) -> u64 {
    let n = peer.layout.config.rx_slots;
    let rxr = RingView::new(peer.mem, peer.layout.rx_ring_offset(rx), n);
    let mut k = start;
    let mut bytes = 0u64;
    let put = |k, frag, flags| copy_fragment(src, peer, &rxr, k, frag, flags);
    for &i in pkts {
        let f = &ft[i as usize];
        let chain = &frags[f.frag as usize..f.frag as usize + f.nfrags as usize];
        // Every fragment but the last carries MOREFRAG (the usual packet has only the one).
        let Some((last, more)) = chain.split_last() else {
            continue; // never planned: consumed packets have no fragments
        };
        for &fr in more {
            put(k, fr, slot::F_MOREFRAG);
            k = ring::next(k, n);
        }
        put(k, *last, 0);
        k = ring::next(k, n);
        bytes += f.len as u64;
    }
    bytes
}

/// Copies one fragment `(source offset, len)` into slot `k` of `rxr`, a ring of `peer`: a
/// destination slot with a bad buffer index (its receiver wrote it) gets an empty fragment
/// rather than a write outside the pool.
#[inline(always)]
fn copy_fragment(
    src: &Sender,
    peer: &Peer,
    rxr: &RingView,
    k: u32,
    frag: (usize, u16),
    flags: u16,
) {
    let (sofs, len) = frag;
    let d = rxr.slot(k);
    match peer.layout.buf_offset(d.buf_idx()) {
        Some(dofs) => {
            src.mem.copy_to(sofs, &peer.mem, dofs, len as usize);
            d.set_len_flags(len, flags);
        }
        None => d.set_len_flags(0, flags),
    }
}

/// Completes lease `lease` of the ring at `rs`, publishes in order, wakes the receiver and
/// counts `frames` frames of `bytes`.
fn complete(src: &Sender, peer: &Peer, rs: usize, lease: u32, frames: u64, bytes: u64) {
    let pm = peer.mem;
    let n = peer.layout.config.rx_slots;
    {
        let _g = lock::lock(pm.atomic_u32(rs + RX_LOCK), src.tid);
        pm.store_u32(rs + RX_LEASES + 8 * lease as usize + 4, 0, Release);
        advance(&pm, rs, n, src.tid);
    }
    wake_receiver(&pm, rs);
    let e = entry(peer.idx);
    src.sw.add_u64(e + E_RX_PKTS, frames);
    src.sw.add_u64(e + E_RX_BYTES, bytes);
}

/// Copies what `load` holds into RX ring `rx` of `peer`; what does not fit is dropped and
/// counted.
fn deliver(src: &Sender, peer: &Peer, rx: u32, load: Load) {
    let pm = peer.mem;
    let n = peer.layout.config.rx_slots;
    let rs = peer.priv_layout.rx(rx);
    let lockw = pm.atomic_u32(rs + RX_LOCK);
    let total = load.pkts().len();

    // 1. Reserve under the lock.
    let (start, lease, taken) = {
        let _g = lock::lock(lockw, src.tid);
        advance(&pm, rs, n, src.tid);
        let hwcur = pm.load_u32(rs + RX_HWCUR, Acquire);
        let space = ring_space(&pm, rs, n, hwcur);
        let mut slots = 0u32;
        let mut taken = 0usize;
        for k in 0..total {
            let f = load.slots(k);
            if slots + f > space {
                break;
            }
            slots += f;
            taken += 1;
        }
        if slots == 0 {
            drop(_g);
            if taken < total {
                account_drops(&src.sw, peer.idx, total as u64);
                // The receiver may be asleep with slots its own consumer has since given
                // back (a ptnet RX worker waiting for arrivals): wake it so it syncs and
                // frees them, instead of dropping until its next timeout.
                wake_receiver(&pm, rs);
            }
            return; // (or every packet was a frame that could not be converted)
        }
        let (start, lease) = reserve(&pm, rs, n, src.tid, slots);
        (start, lease, taken)
    };

    // 2. Copy outside the lock.
    let (frames, bytes) = load.copy(src, peer, rx, start, taken);

    // 3. Complete the lease and publish in order.
    complete(src, peer, rs, lease, frames, bytes);
    account_drops(&src.sw, peer.idx, (total - taken) as u64);
}

/// Wakes the receiver of ring state `rs` if it sleeps waiting for arrivals (need-kick set).
fn wake_receiver(pm: &SharedMem, rs: usize) {
    wake_if_asked(pm, rs + RX_NEED_KICK, rs + RX_SEQ);
}

/// If the sleeper's flag word at `flag` is set: clears it, bumps the futex word at `seq` and
/// wakes it (the fence orders our ring update before the flag's read, as the sleeper sets the
/// flag before its last look at the ring).
pub(crate) fn wake_if_asked(m: &SharedMem, flag: usize, seq: usize) {
    fence(SeqCst);
    if m.load_u32(flag, Relaxed) != 0 {
        m.store_u32(flag, 0, Relaxed);
        let seq = m.atomic_u32(seq);
        seq.fetch_add(1, Release);
        sys::futex_wake(seq);
    }
}

fn account_drops(sw: &SharedMem, idx: u32, n: u64) {
    sw.add_u64(entry(idx) + E_RX_DROPS, n);
}

/// Advances `hwtail` over completed (or orphaned) leases, oldest first. Ring lock held.
fn advance(pm: &SharedMem, rs: usize, n: u32, tid: u32) {
    let idx = pm.load_u32(rs + RX_LEASE_IDX, Relaxed) % n;
    let mut first = pm.load_u32(rs + RX_LEASE_FIRST, Relaxed) % n;
    let mut tail = None;
    while first != idx {
        let le = rs + RX_LEASES + 8 * first as usize;
        let owner = pm.load_u32(le + 4, Acquire);
        if owner != 0 {
            if owner != tid && sys::alive(owner) {
                break;
            }
            log::warn!("completing the lease of dead thread {owner}");
        }
        tail = Some(pm.load_u32(le, Relaxed) % n);
        first = ring::next(first, n);
    }
    pm.store_u32(rs + RX_LEASE_FIRST, first, Relaxed);
    if let Some(t) = tail {
        pm.store_u32(rs + RX_HWTAIL, t, Release);
    }
}

/// Resets the private state of RX ring `rx` of a fresh port.
pub fn init_rx_state(pm: &SharedMem, rs: usize, n: u32) {
    for off in [
        RX_LOCK,
        RX_HWLEASE,
        RX_LEASE_IDX,
        RX_LEASE_FIRST,
        RX_HWTAIL,
        RX_HWCUR,
        RX_NEED_KICK,
        RX_SEQ,
        RX_SPACE_WANTED,
        RX_SPACE_SEQ,
    ] {
        pm.store_u32(rs + off, 0, Relaxed);
    }
    pm.fill(rs + RX_LEASES, 8 * n as usize, 0);
}
