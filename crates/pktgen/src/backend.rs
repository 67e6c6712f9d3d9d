//! What pkt-gen's loops run over: a VALE port (on the host) or ptnet.ko's netmap-mode
//! character device `/dev/ptnetN` (in a guest), chosen by the interface name.
//!
//! Both expose ring 0 of each direction as netmap rings in a shared region: the loops fill or
//! consume slots `[head, tail)`, advance `head`/`cur` in the ring, then sync (NIOCTXSYNC /
//! NIOCRXSYNC style), which updates `tail`.

use std::time::Duration;

use anyhow::{Context, Result};
use netmap::{NetmapPort, Pool, RingView, SharedMem, SyncResult};
use vale::{Port, PortOptions};

use crate::ptnet::PtnetDevice;

/// Which backend an interface name selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A VALE port, e.g. `vale0:1`.
    Vale(String),
    /// A ptnet character device, by path (`ptnet0` and `/dev/ptnet0` both give `/dev/ptnet0`).
    Ptnet(String),
}

impl Target {
    /// `/dev/...` or `ptnetN` → the device; anything else is a VALE port name.
    pub fn parse(name: &str) -> Target {
        if name.starts_with("/dev/") {
            return Target::Ptnet(name.to_string());
        }
        match name.strip_prefix("ptnet") {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                Target::Ptnet(format!("/dev/{name}"))
            }
            _ => Target::Vale(name.to_string()),
        }
    }
}

/// The operations pkt-gen needs from a port (ring 0 of each direction).
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

/// How to open a port (see [`open`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// The ptnet device's busy-poll mode (callers refuse it for VALE ports, whose syncs
    /// never enter the kernel).
    pub busy_poll: bool,
    /// A VALE port opened lossless (callers refuse it for ptnet devices).
    pub lossless: bool,
    /// A VALE port's virtio-net header length, 0, 10 or 12 (callers refuse others, and any
    /// but 0 for ptnet devices, whose driver sets it).
    pub vnet_hdr_len: u32,
}

/// Opens the backend an interface name selects.
pub fn open(name: &str, o: OpenOptions) -> Result<Box<dyn Backend>> {
    Ok(match Target::parse(name) {
        Target::Vale(n) => {
            let opts = PortOptions {
                lossless: o.lossless,
                vnet_hdr_len: o.vnet_hdr_len,
                ..PortOptions::default()
            };
            Box::new(Port::open(&n, &opts).with_context(|| format!("opening {n}"))?)
        }
        Target::Ptnet(p) => {
            Box::new(PtnetDevice::open(&p, o.busy_poll).with_context(|| format!("opening {p}"))?)
        }
    })
}

/// A VALE port: syncs forward synchronously, `rx_wait` sleeps on the port's futex.
impl Backend for Port {
    fn name(&self) -> String {
        NetmapPort::name(self).to_string()
    }

    fn shape(&self) -> (u32, u32, u32) {
        let c = self.layout().config;
        (c.tx_rings, c.rx_rings, c.tx_slots)
    }

    fn mem(&self) -> SharedMem {
        Port::mem(self)
    }

    fn tx_ring(&self) -> RingView {
        Port::tx_ring(self, 0)
    }

    fn rx_ring(&self) -> RingView {
        Port::rx_ring(self, 0)
    }

    fn bufs(&self) -> Pool {
        self.layout().buf_pool
    }

    fn txsync(&self) -> Result<SyncResult> {
        self.txsync_ring(0).context("txsync")
    }

    fn rxsync(&self) -> Result<SyncResult> {
        self.rxsync_ring(0).context("rxsync")
    }

    fn rx_wait(&self, seen_hwtail: u32, timeout: Duration) -> Result<()> {
        NetmapPort::rx_wait(self, 0, seen_hwtail, Some(timeout)).context("rx wait")?;
        Ok(())
    }

    fn tx_wait(&self, timeout: Duration) -> Result<()> {
        NetmapPort::tx_wait(self, 0, Some(timeout)).context("tx wait")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_by_name() {
        let p = |s: &str| Target::Ptnet(s.to_string());
        let v = |s: &str| Target::Vale(s.to_string());
        assert_eq!(Target::parse("ptnet0"), p("/dev/ptnet0"));
        assert_eq!(Target::parse("ptnet12"), p("/dev/ptnet12"));
        assert_eq!(Target::parse("/dev/ptnet0"), p("/dev/ptnet0"));
        assert_eq!(Target::parse("/dev/ptnet3"), p("/dev/ptnet3"));
        assert_eq!(Target::parse("vale0:1"), v("vale0:1"));
        assert_eq!(Target::parse("valeX:Y"), v("valeX:Y"));
        assert_eq!(Target::parse("ptnet"), v("ptnet"));
        assert_eq!(Target::parse("ptnetx"), v("ptnetx"));
    }

    #[test]
    fn missing_device_is_an_error_not_a_vale_port() {
        let e = open("/dev/ptnet-does-not-exist", OpenOptions::default())
            .err()
            .expect("must fail");
        assert!(
            format!("{e:#}").contains("/dev/ptnet-does-not-exist"),
            "{e:#}"
        );
    }
}
