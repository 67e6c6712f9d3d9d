//! The interface a netmap backend offers to the VMM (the "netmap port" of architecture.md).
//!
//! A ptnet NIC maps the port's region into the guest (memdev BAR1), then drives the port
//! from its ring workers with indices taken from the CSB. The VALE switch implements this
//! trait; a real `/dev/netmap` backend could implement it too.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use crate::prologue::PrologueError;
use crate::region::RegionLayout;
use crate::shm::SharedMem;

/// Direction of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingKind {
    Tx,
    Rx,
}

/// The host's view of a ring after a sync: what goes into `ktoa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncResult {
    pub hwcur: u32,
    pub hwtail: u32,
}

/// Where a port's netmap memory lives, for mapping it into a guest.
#[derive(Debug, Clone, Copy)]
pub struct RegionInfo {
    /// A file descriptor whose bytes `0..size` are the region (`mmap(fd, offset 0)`), valid
    /// while the port is open.
    pub fd: RawFd,
    /// Region size in bytes, a multiple of 4 KiB (`MEMSIZE`).
    pub size: usize,
    /// This process's mapping of the region (page aligned, `size` bytes), usable directly as
    /// the userspace address of a KVM memory slot.
    pub mem: SharedMem,
    /// Pools (`*_POOL_OFS/OBJNUM/OBJSZ`), ring counts and slots (`NUM_*`).
    pub layout: RegionLayout,
    /// Offset of the port's `netmap_if` (`NIFP_OFS`).
    pub nifp_offset: u32,
    /// An allocator id for `MEMID`/`HOSTMEMID`, unique among the open ports of a switch.
    pub mem_id: u16,
}

/// Errors of a port operation.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// `head`/`cur` from the application failed validation; the ring was left unchanged and
    /// the caller should reinitialise its view from [`NetmapPort::ring_state`].
    #[error("Invalid ring indices")]
    Prologue(#[from] PrologueError),
    /// No such ring.
    #[error("No {kind:?} ring {ring}")]
    NoRing { kind: RingKind, ring: u32 },
    /// An operating-system call failed.
    #[error("Port I/O error")]
    Io(#[from] std::io::Error),
}

/// Something that wakes a thread sleeping in [`NetmapPort::rx_wait`] (for example on a guest
/// kick or at shutdown). Works from any thread of the process that owns the port.
pub trait Waker: Send + Sync {
    fn wake(&self);
}

/// A netmap port as the VMM sees it. All methods take `&self`: one thread may drive each
/// ring (a TX worker and an RX worker concurrently); a ring must not be synced by two threads
/// at once.
pub trait NetmapPort: Send + Sync {
    /// The port's name, e.g. `vale0:2`.
    fn name(&self) -> &str;

    /// The region to map into the guest.
    fn region(&self) -> RegionInfo;

    /// The host's current `(hwcur, hwtail)` of a ring, e.g. to reinitialise a guest ring
    /// after a rejected sync.
    fn ring_state(&self, kind: RingKind, ring: u32) -> Result<SyncResult, PortError>;

    /// Transmits the slots `hwcur..head` of TX ring `ring` (head/cur are untrusted and are
    /// validated). TX completes synchronously up to the returned `hwcur`, and
    /// `hwtail == hwcur - 1`. Normally `hwcur == head`; a lossless port held by a full
    /// destination returns an earlier `hwcur`: slots `hwcur..head` stay pending, and the next
    /// txsync (with the same or a later head) retries them, best after [`NetmapPort::tx_wait`].
    fn txsync(&self, ring: u32, head: u32, cur: u32) -> Result<SyncResult, PortError>;

    /// Releases RX slots `hwcur..head` of ring `ring` and reports packets that arrived
    /// (`hwtail`).
    fn rxsync(&self, ring: u32, head: u32, cur: u32) -> Result<SyncResult, PortError>;

    /// Sleeps until RX ring `ring`'s hwtail moves from `seen_hwtail`, the timeout passes, or
    /// a [`Waker`] fires, using the need-kick / double-check protocol (no lost wakeups).
    /// Returns true if the hwtail moved.
    fn rx_wait(
        &self,
        ring: u32,
        seen_hwtail: u32,
        timeout: Option<Duration>,
    ) -> Result<bool, PortError>;

    /// Sleeps until the destination that held TX ring `ring`'s last txsync (a lossless
    /// port's full destination) may have room, or `timeout` passes. Returns true if a retry
    /// may make progress now. The default, for ports whose txsync never holds, sleeps
    /// briefly.
    fn tx_wait(&self, _ring: u32, timeout: Option<Duration>) -> Result<bool, PortError> {
        std::thread::sleep(
            timeout
                .unwrap_or(Duration::from_millis(1))
                .min(Duration::from_millis(1)),
        );
        Ok(true)
    }

    /// A handle that interrupts [`NetmapPort::rx_wait`] on ring `ring`.
    fn rx_waker(&self, ring: u32) -> Result<Arc<dyn Waker>, PortError>;

    /// A token for [`NetmapPort::rx_wait_since`], taken *before* the caller's own double
    /// check (for example of a guest's CSB) so that a [`Waker`] firing between that check and
    /// the sleep is not lost. The default (0) suits ports whose `rx_wait` never loses one.
    fn rx_wait_token(&self, _ring: u32) -> Result<u32, PortError> {
        Ok(0)
    }

    /// Like [`NetmapPort::rx_wait`], but returns at once if a [`Waker`] fired since `token`
    /// was taken; with `arrivals` false it waits for a waker (or the timeout) only, not for
    /// packets, so a full ring's arrivals (dropped anyway) do not wake the caller.
    fn rx_wait_since(
        &self,
        ring: u32,
        _token: u32,
        seen_hwtail: u32,
        arrivals: bool,
        timeout: Option<Duration>,
    ) -> Result<bool, PortError> {
        if arrivals {
            self.rx_wait(ring, seen_hwtail, timeout)
        } else {
            std::thread::sleep(
                timeout
                    .unwrap_or(Duration::from_millis(1))
                    .min(Duration::from_millis(1)),
            );
            Ok(false)
        }
    }

    /// Sets the length of the virtio-net header on the port's frames (ptnet's VNET_HDR_LEN:
    /// 0, 10 or 12). Returns false, changing nothing, for a length the backend does not
    /// support; the default backend supports only 0.
    fn set_vnet_hdr_len(&self, len: u32) -> bool {
        len == 0
    }
}
