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

use netmap::abi::{slot, MAX_FRAGS};
use netmap::{ring, RingView, SharedMem};

use crate::layout::*;
use crate::learn;
use crate::lock;
use crate::peers::{Peer, Peers};
use crate::sys;

/// Packets handled per forwarding round.
pub const BATCH: usize = 512;

const DST_FLOOD: u16 = u16::MAX;
const DST_DROP: u16 = u16::MAX - 1;

/// One packet of a batch.
#[derive(Debug, Clone, Copy)]
struct Ft {
    /// First of its fragments in `TxCtx::frags`.
    frag: u32,
    nfrags: u16,
    dst: u16,
    len: u32,
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
    ft: Vec<Ft>,
    /// `(buffer offset in the source region, len)` of every fragment of the batch.
    frags: Vec<(usize, u16)>,
    uni: Vec<Vec<u32>>,
    flood: Vec<u32>,
    merged: Vec<u32>,
    pub syncs: u64,
}

/// The sending port as the forwarder needs it.
pub struct Src<'a> {
    pub mem: SharedMem,
    pub layout: &'a netmap::RegionLayout,
    pub idx: u32,
    pub gen: u32,
    pub sw: SharedMem,
    pub tid: u32,
}

impl TxCtx {
    /// Forwards slots `from..to` of TX ring `ring` of `src` (indices already validated).
    pub fn forward(&mut self, src: &Src, ring_idx: u32, from: u32, to: u32) -> TxStats {
        let n = src.layout.config.tx_slots;
        let txr = RingView::new(src.mem, src.layout.tx_ring_offset(ring_idx), n);
        let buf_size = src.layout.config.buf_size;
        let mut st = TxStats::default();
        let mut last_hdr = [0u8; 12];
        let mut last_dst: Option<u16> = None;
        let mut j = from;
        while j != to {
            self.ft.clear();
            self.frags.clear();
            while j != to && self.ft.len() < BATCH {
                // Gather one packet: a MOREFRAG chain, at most MAX_FRAGS slots.
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
                if bad {
                    self.frags.truncate(frag as usize);
                    st.bad += 1;
                    continue;
                }
                let (first_ofs, first_len) = self.frags[frag as usize];
                if first_len < 14 {
                    self.frags.truncate(frag as usize);
                    st.bad += 1;
                    continue;
                }
                let mut hdr = [0u8; 12];
                src.mem.read_bytes(first_ofs, &mut hdr);
                let dst = match last_dst {
                    Some(d) if hdr == last_hdr => d,
                    _ => {
                        let d = self.decide(src, &hdr);
                        last_hdr = hdr;
                        last_dst = Some(d);
                        d
                    }
                };
                if dst == DST_DROP {
                    self.frags.truncate(frag as usize);
                    continue;
                }
                st.pkts += 1;
                st.bytes += len as u64;
                self.ft.push(Ft {
                    frag,
                    nfrags: nfrags as u16,
                    dst,
                    len,
                });
            }
            self.dispatch(src, ring_idx);
        }
        st
    }

    /// Learns the source MAC and picks the destination of a frame with header `hdr`.
    fn decide(&self, src: &Src, hdr: &[u8; 12]) -> u16 {
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

    /// Sends the batch in `self.ft` to its destinations.
    fn dispatch(&mut self, src: &Src, ring_idx: u32) {
        let np = self.peers.list.len();
        if np == 0 || self.ft.is_empty() {
            return;
        }
        self.uni.resize_with(np, Vec::new);
        for l in &mut self.uni {
            l.clear();
        }
        self.flood.clear();
        for (i, f) in self.ft.iter().enumerate() {
            if f.dst == DST_FLOOD {
                self.flood.push(i as u32);
            } else {
                self.uni[f.dst as usize].push(i as u32);
            }
        }
        let mut merged = std::mem::take(&mut self.merged);
        for p in 0..np {
            let peer = &self.peers.list[p];
            let uni = &self.uni[p];
            if uni.is_empty() && self.flood.is_empty() {
                continue;
            }
            let ring_u = ring_idx % peer.layout.config.rx_rings;
            if ring_u == 0 && !uni.is_empty() && !self.flood.is_empty() {
                merged.clear();
                let (mut a, mut b) = (0, 0);
                while a < uni.len() || b < self.flood.len() {
                    if b == self.flood.len() || (a < uni.len() && uni[a] < self.flood[b]) {
                        merged.push(uni[a]);
                        a += 1;
                    } else {
                        merged.push(self.flood[b]);
                        b += 1;
                    }
                }
                deliver(src, peer, 0, &merged, &self.ft, &self.frags);
            } else {
                if !uni.is_empty() {
                    deliver(src, peer, ring_u, uni, &self.ft, &self.frags);
                }
                if !self.flood.is_empty() {
                    deliver(src, peer, 0, &self.flood, &self.ft, &self.frags);
                }
            }
        }
        self.merged = merged;
    }
}

/// Copies the packets `pkts` (indices into `ft`) into RX ring `rx` of `peer`.
fn deliver(src: &Src, peer: &Peer, rx: u32, pkts: &[u32], ft: &[Ft], frags: &[(usize, u16)]) {
    let pm = peer.mem;
    let n = peer.layout.config.rx_slots;
    let rs = peer.priv_layout.rx(rx);
    let lockw = pm.atomic_u32(rs + RX_LOCK);

    // 1. Reserve under the lock.
    let (start, lease, taken) = {
        let _g = lock::lock(lockw, src.tid);
        advance(&pm, rs, n, src.tid);
        let hwcur = pm.load_u32(rs + RX_HWCUR, Acquire);
        let hwlease = pm.load_u32(rs + RX_HWLEASE, Relaxed) % n;
        let space = if hwcur < n {
            ring::distance(hwlease, ring::prev(hwcur, n), n)
        } else {
            0
        };
        let mut slots = 0u32;
        let mut taken = 0usize;
        for &i in pkts {
            let f = ft[i as usize].nfrags as u32;
            if slots + f > space {
                break;
            }
            slots += f;
            taken += 1;
        }
        if slots == 0 {
            drop(_g);
            account_drops(&src.sw, peer.idx, pkts.len() as u64);
            // The receiver may be asleep with slots its own consumer has since given back
            // (a ptnet RX worker waiting for arrivals): wake it so it syncs and frees them,
            // instead of dropping until its next timeout.
            wake_receiver(&pm, rs);
            return;
        }
        let lease = pm.load_u32(rs + RX_LEASE_IDX, Relaxed) % n;
        let end = ring::add(hwlease, slots, n);
        let le = rs + RX_LEASES + 8 * lease as usize;
        pm.store_u32(le, end, Relaxed);
        pm.store_u32(le + 4, src.tid, Relaxed);
        pm.store_u32(rs + RX_LEASE_IDX, ring::next(lease, n), Relaxed);
        pm.store_u32(rs + RX_HWLEASE, end, Relaxed);
        (hwlease, lease, taken)
    };

    // 2. Copy outside the lock.
    let rxr = RingView::new(pm, peer.layout.rx_ring_offset(rx), n);
    let mut k = start;
    let mut bytes = 0u64;
    for &i in &pkts[..taken] {
        let f = &ft[i as usize];
        let last = f.nfrags as usize - 1;
        for (fi, &(sofs, len)) in frags[f.frag as usize..f.frag as usize + f.nfrags as usize]
            .iter()
            .enumerate()
        {
            let d = rxr.slot(k);
            let flags = if fi < last { slot::F_MOREFRAG } else { 0 };
            match peer.layout.buf_offset(d.buf_idx()) {
                Some(dofs) => {
                    src.mem.copy_to(sofs, &pm, dofs, len as usize);
                    d.set_len_flags(len, flags);
                }
                None => d.set_len_flags(0, flags),
            }
            k = ring::next(k, n);
        }
        bytes += f.len as u64;
    }

    // 3. Complete the lease and publish in order.
    {
        let _g = lock::lock(lockw, src.tid);
        pm.store_u32(rs + RX_LEASES + 8 * lease as usize + 4, 0, Release);
        advance(&pm, rs, n, src.tid);
    }
    wake_receiver(&pm, rs);
    let e = entry(peer.idx);
    src.sw.add_u64(e + E_RX_PKTS, taken as u64);
    src.sw.add_u64(e + E_RX_BYTES, bytes);
    account_drops(&src.sw, peer.idx, (pkts.len() - taken) as u64);
}

/// Wakes the receiver of ring state `rs` if it sleeps waiting for arrivals (need-kick set).
fn wake_receiver(pm: &SharedMem, rs: usize) {
    fence(SeqCst);
    if pm.load_u32(rs + RX_NEED_KICK, Relaxed) != 0 {
        pm.store_u32(rs + RX_NEED_KICK, 0, Relaxed);
        let seq = pm.atomic_u32(rs + RX_SEQ);
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
    ] {
        pm.store_u32(rs + off, 0, Relaxed);
    }
    pm.fill(rs + RX_LEASES, 8 * n as usize, 0);
}
