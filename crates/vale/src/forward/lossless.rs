//! Lossless delivery: a full destination holds the sender (its slots stay in its TX ring)
//! instead of dropping, every destination ring of a batch locked at once so a packet goes to
//! all its destinations or to none; a dead or stuck receiver is given up after [`HOLD_MAX`].

use std::time::Instant;

use super::*;

/// A full destination ring that holds (or held) a lossless sender.
#[derive(Debug)]
pub(super) struct Hold {
    key: DstKey,
    /// The ring's `hwcur` when it was last seen to move (or first found full).
    hwcur: u32,
    since: Instant,
    /// Given up: excess frames for it are dropped until its `hwcur` moves.
    released: bool,
}

impl TxCtx {
    /// The lossless delivery of `self.jobs`: with the locks of every destination ring held
    /// at once (taken in port/ring order, so two lossless senders cannot deadlock), find the
    /// first packet that does not fit one of its destinations that still holds us (`cut`),
    /// reserve everything before it, then copy and publish as [`deliver`] does. A packet is
    /// thus delivered to all its destinations or to none, and is never duplicated on retry.
    pub(super) fn dispatch_lossless(&mut self, src: &Sender) -> usize {
        let nft = self.ft.len();
        self.jobs.sort_unstable_by_key(|j| (j.peer, j.ring));
        if self.holds.len() > 16 {
            // Forget rings of ports that are gone.
            let peers = &self.peers;
            self.holds
                .retain(|h| peers.find_exact(h.key.idx, h.key.gen).is_some());
        }
        // Per job: how many of its packets fit.
        let mut fits: Vec<usize> = Vec::with_capacity(self.jobs.len());
        let mut cut = nft;
        let mut blocker = None;
        let mut held = lock::Held::new(src.tid);
        for job in &self.jobs {
            let peer = &self.peers.list[job.peer];
            let (pm, n) = (peer.mem, peer.layout.config.rx_slots);
            let rs = peer.priv_layout.rx(job.ring);
            held.take(pm, rs + RX_LOCK);
            advance(&pm, rs, n, src.tid);
            let hwcur = pm.load_u32(rs + RX_HWCUR, Acquire);
            let space = ring_space(&pm, rs, n, hwcur);
            let load = Load::of(job, &self.lists, &self.ft, &self.frags, &self.convs);
            let pkts = load.pkts();
            let mut slots = 0u32;
            let mut fit = pkts.len();
            for k in 0..pkts.len() {
                let f = load.slots(k);
                if slots + f > space {
                    fit = k;
                    break;
                }
                slots += f;
            }
            let key = DstKey {
                idx: peer.idx,
                gen: peer.gen,
                ring: job.ring,
            };
            if fit == pkts.len() {
                if !self.holds.is_empty() {
                    forget_hold(&mut self.holds, key);
                }
            } else if hold(&mut self.holds, key, hwcur, peer.owner) {
                let first = pkts[fit] as usize;
                if first < cut {
                    cut = first;
                    blocker = Some(Blocker { key, hwcur });
                }
            }
            fits.push(fit);
        }
        // Reserve what comes before the cut (for a given-up ring: what fits, the rest drops).
        // Per job: (first slot, lease, packets taken, packets dropped, slots reserved).
        let mut plan = Vec::with_capacity(self.jobs.len());
        for (job, &fit) in self.jobs.iter().zip(&fits) {
            let peer = &self.peers.list[job.peer];
            let (pm, n) = (peer.mem, peer.layout.config.rx_slots);
            let rs = peer.priv_layout.rx(job.ring);
            let load = self.load(job);
            let before = load.pkts().partition_point(|&i| (i as usize) < cut);
            let taken = fit.min(before);
            let slots: u32 = (0..taken).map(|k| load.slots(k)).sum();
            let (start, lease) = if slots > 0 {
                reserve(&pm, rs, n, src.tid, slots)
            } else {
                (0, 0)
            };
            plan.push((start, lease, taken, before - taken, slots));
        }
        drop(held);
        // Copy and publish outside the locks.
        for (job, &(start, lease, taken, dropped, slots)) in self.jobs.iter().zip(&plan) {
            let peer = &self.peers.list[job.peer];
            let load = self.load(job);
            let rs = peer.priv_layout.rx(job.ring);
            if slots > 0 {
                let (frames, bytes) = load.copy(src, peer, job.ring, start, taken);
                complete(src, peer, rs, lease, frames, bytes);
            } else if taken < load.pkts().len() {
                // Full: a receiver asleep with slots its consumer has since given back syncs.
                wake_receiver(&peer.mem, rs);
            }
            if dropped > 0 {
                account_drops(&src.sw, peer.idx, dropped as u64);
            }
        }
        self.blocker = blocker;
        cut
    }
}

/// Whether the full destination `key` (whose `hwcur` is now `hwcur`) still holds a lossless
/// sender: a new or moving one does; one whose owner `owner` is dead, or that freed nothing
/// for [`HOLD_MAX`], is given up (logged once) until its `hwcur` moves again.
fn hold(holds: &mut Vec<Hold>, key: DstKey, hwcur: u32, owner: u32) -> bool {
    let now = Instant::now();
    let give_up = |reason: &str| {
        log::warn!(
            "lossless: port {} ring {}: {reason}, dropping what does not fit until it frees slots",
            key.idx,
            key.ring
        );
    };
    match holds.iter_mut().find(|h| h.key == key) {
        Some(h) if h.hwcur != hwcur => {
            if h.released {
                log::info!(
                    "lossless: port {} ring {} frees slots again",
                    key.idx,
                    key.ring
                );
            }
            (h.hwcur, h.since, h.released) = (hwcur, now, false);
            true
        }
        Some(h) if h.released => false,
        Some(h) => {
            if !sys::alive(owner) {
                give_up("receiver process gone");
            } else if now.duration_since(h.since) >= HOLD_MAX {
                give_up("receiver freed nothing for 1 s");
            } else {
                return true;
            }
            h.released = true;
            false
        }
        None => {
            let alive = sys::alive(owner);
            if !alive {
                give_up("receiver process gone");
            }
            holds.push(Hold {
                key,
                hwcur,
                since: now,
                released: !alive,
            });
            alive
        }
    }
}

/// A destination ring had room for everything: it no longer holds anyone.
fn forget_hold(holds: &mut Vec<Hold>, key: DstKey) {
    if let Some(p) = holds.iter().position(|h| h.key == key) {
        if holds[p].released {
            log::info!(
                "lossless: port {} ring {} frees slots again",
                key.idx,
                key.ring
            );
        }
        holds.swap_remove(p);
    }
}
