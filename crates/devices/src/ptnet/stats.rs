//! Counters of the ring workers, readable by the VMM while they run (tests, benchmarks:
//! kicks and interrupts per 1,000 packets).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one ring.
#[derive(Debug, Default)]
pub struct RingStats {
    /// Guest kicks seen on the doorbell (an eventfd counts every write).
    pub kicks: AtomicU64,
    /// Interrupts raised (delivered or left pending by MSI-X masking).
    pub interrupts: AtomicU64,
    /// Backend syncs performed.
    pub syncs: AtomicU64,
    /// Packets: sent (TX) or made visible to the guest (RX).
    pub packets: AtomicU64,
    /// Times invalid CSB indices made the worker reinitialise the ring.
    pub resets: AtomicU64,
    /// Times the worker went to sleep.
    pub sleeps: AtomicU64,
}

/// A plain copy of counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub kicks: u64,
    pub interrupts: u64,
    pub syncs: u64,
    pub packets: u64,
    pub resets: u64,
    pub sleeps: u64,
}

impl std::ops::Add for StatsSnapshot {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            kicks: self.kicks + o.kicks,
            interrupts: self.interrupts + o.interrupts,
            syncs: self.syncs + o.syncs,
            packets: self.packets + o.packets,
            resets: self.resets + o.resets,
            sleeps: self.sleeps + o.sleeps,
        }
    }
}

impl RingStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            kicks: self.kicks.load(Relaxed),
            interrupts: self.interrupts.load(Relaxed),
            syncs: self.syncs.load(Relaxed),
            packets: self.packets.load(Relaxed),
            resets: self.resets.load(Relaxed),
            sleeps: self.sleeps.load(Relaxed),
        }
    }

    pub(crate) fn add(c: &AtomicU64, n: u64) {
        if n != 0 {
            c.fetch_add(n, Relaxed);
        }
    }
}

/// Counters of every ring of a NIC, in ring order (TX 0..ntx-1, then RX). They survive
/// CREATE/DELETE cycles.
#[derive(Debug)]
pub struct PtnetStats {
    pub ntx: u32,
    pub rings: Vec<RingStats>,
}

impl PtnetStats {
    pub fn new(ntx: u32, nrx: u32) -> Self {
        Self {
            ntx,
            rings: (0..ntx + nrx).map(|_| RingStats::default()).collect(),
        }
    }

    /// Ring `i`'s counters (zeros for a ring that does not exist).
    pub fn ring(&self, i: usize) -> StatsSnapshot {
        self.rings
            .get(i)
            .map(RingStats::snapshot)
            .unwrap_or_default()
    }

    /// Sum over the TX rings.
    pub fn tx(&self) -> StatsSnapshot {
        self.sum(0..self.ntx as usize)
    }

    /// Sum over the RX rings.
    pub fn rx(&self) -> StatsSnapshot {
        self.sum(self.ntx as usize..self.rings.len())
    }

    fn sum(&self, r: std::ops::Range<usize>) -> StatsSnapshot {
        r.map(|i| self.ring(i))
            .fold(StatsSnapshot::default(), |a, b| a + b)
    }
}
