//! What pkt-gen's loops run over ([`Backend`]): a VALE port (on the host, here) or ptnet.ko's
//! netmap-mode character device `/dev/ptnetN` (in a guest, [`crate::ptnet`]); which one an
//! interface name selects is [`crate::interface`]'s business.
//!
//! Both expose one ring of each direction (ring 0; a VALE port opened with several rings
//! gives one [`ValeRing`] per `-p` thread) as netmap rings in a shared region: the loops fill or
//! consume slots `[head, tail)`, advance `head`/`cur` in the ring, then sync (NIOCTXSYNC /
//! NIOCRXSYNC style), which updates `tail`.

use std::time::Duration;

use anyhow::{Context, Result};
use netmap::{NetmapPort, Pool, RingView, SharedMem, SyncResult};
use vale::Port;

/// The operations pkt-gen needs from a port (one ring of each direction).
pub trait Backend {
    /// A name for messages.
    fn name(&self) -> String;
    /// (tx rings, rx rings, tx slots) for the "ready" line.
    fn shape(&self) -> (u32, u32, u32);
    /// The shared memory the rings and buffers live in.
    fn mem(&self) -> SharedMem;
    /// TX ring 0.
    fn tx_ring(&self) -> RingView;
    /// RX ring 0.
    fn rx_ring(&self) -> RingView;
    /// The buffer pool inside [`Backend::mem`] (see [`buf_offset`]).
    fn bufs(&self) -> Pool;
    /// Publishes the TX ring's head/cur and updates its tail.
    fn txsync(&self) -> Result<SyncResult>;
    /// Releases RX slots up to head and updates the RX ring's tail.
    fn rxsync(&self) -> Result<SyncResult>;
    /// Sleeps until the RX ring's tail moves past `seen_hwtail` or `timeout`.
    fn rx_wait(&self, seen_hwtail: u32, timeout: Duration) -> Result<()>;
    /// Sleeps until the TX ring may have space or `timeout` (no-op if sync makes space itself;
    /// a lossless VALE port sleeps until the destination that holds it frees slots).
    fn tx_wait(&self, _timeout: Duration) -> Result<()> {
        Ok(())
    }
    /// Kicks this process rang itself (busy-poll mode), if it rings any.
    fn kicks(&self) -> Option<u64> {
        None
    }
    /// Interrupts the port's rings raised since it was opened, if the backend can see them.
    fn interrupts(&self) -> Option<u64> {
        None
    }
}

/// Offset of buffer `idx` of pool `p`, or `None` for an index outside the pool.
#[inline(always)]
pub fn buf_offset(p: &Pool, idx: u32) -> Option<usize> {
    (idx < p.objnum).then(|| p.offset as usize + idx as usize * p.objsz as usize)
}

/// Ring `ring` of each direction of a VALE port: syncs forward synchronously, `rx_wait`
/// sleeps on the port's futex. One per `-p` thread; threads share the port.
#[derive(Debug, Clone, Copy)]
pub struct ValeRing<'a> {
    port: &'a Port,
    ring: u32,
}

impl<'a> ValeRing<'a> {
    /// Ring `ring` of `port` (callers keep it below the port's ring counts).
    pub fn new(port: &'a Port, ring: u32) -> ValeRing<'a> {
        ValeRing { port, ring }
    }
}

impl Backend for ValeRing<'_> {
    fn name(&self) -> String {
        NetmapPort::name(self.port).to_string()
    }

    fn shape(&self) -> (u32, u32, u32) {
        let c = self.port.layout().config;
        (c.tx_rings, c.rx_rings, c.tx_slots)
    }

    fn mem(&self) -> SharedMem {
        self.port.mem()
    }

    fn tx_ring(&self) -> RingView {
        self.port.tx_ring(self.ring)
    }

    fn rx_ring(&self) -> RingView {
        self.port.rx_ring(self.ring)
    }

    fn bufs(&self) -> Pool {
        self.port.layout().buf_pool
    }

    fn txsync(&self) -> Result<SyncResult> {
        self.port.txsync_ring(self.ring).context("txsync")
    }

    fn rxsync(&self) -> Result<SyncResult> {
        self.port.rxsync_ring(self.ring).context("rxsync")
    }

    fn rx_wait(&self, seen_hwtail: u32, timeout: Duration) -> Result<()> {
        NetmapPort::rx_wait(self.port, self.ring, seen_hwtail, Some(timeout)).context("rx wait")?;
        Ok(())
    }

    fn tx_wait(&self, timeout: Duration) -> Result<()> {
        NetmapPort::tx_wait(self.port, self.ring, Some(timeout)).context("tx wait")?;
        Ok(())
    }
}
