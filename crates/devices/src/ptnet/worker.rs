//! The ring workers: one named thread per ring (`ptnet-tx0`.., `ptnet-rx0`..) running the
//! host loop of ABI §3 between the guest's CSB entries and the backend port.
//!
//! ```text
//!  TX ring i                                  RX ring i
//!  loop:                                      loop:
//!    kern_need_kick = 0                         kern_need_kick = 0
//!    read atok (head, cur)                      read atok (head, cur)
//!    head != hwcur?  txsync, write ktoa,        rxsync (release hwcur..head, publish
//!      irq if sent and appl_need_kick,            arrivals), write ktoa,
//!      held (hwcur != head)? port.tx_wait         irq if arrivals and appl_need_kick
//!      -> loop
//!    kern_need_kick = 1, fence, re-read         ring half full or more?  kern_need_kick = 1,
//!    new head? -> loop                            fence, re-read; new head? -> loop
//!    sleep on doorbell | stop                   sleep in port.rx_wait_since: packets (unless
//!                                                 the ring is full), a guest kick, or stop
//! ```
//!
//! RX kicks reach the RX workers through one relay thread per NIC (`ptnet-rxkick`): it polls
//! the RX doorbells and wakes the port's RX wait, a futex that the sending process wakes on
//! arrivals. So the slots a guest releases go back to the switch as soon as the ring is half
//! full, not at the next arrival: a receiver that keeps up never makes the switch drop.
//!
//! Stopping: an explicit DELETE ([`Workers::finish`]) first lets each worker complete the
//! guest's last published request — TX forwards up to `atok.head`, RX takes back the slots
//! released up to `atok.head` — so a released slot is never handed out again by the next
//! CREATE (which starts from the port's state) and no published frame is lost. Other stops
//! (implicit DELETE by a CSB address write, reset, shutdown) do not read the CSB: it may be
//! unmapped or reused by then.
//!
//! Every CSB value is untrusted: indices go to the backend's sync, which validates them
//! (`hwcur <= head <= cur <= hwtail` modulo the ring). A rejected request reinitialises the
//! guest's view (`ktoa`) from `port.ring_state()` and the same bad indices are ignored until
//! the guest writes new ones, so a hostile guest can neither crash the worker nor make it spin.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use netmap::csb::{AtokSnapshot, CsbRing};
use netmap::port::{RingKind, Waker};
use netmap::{ring, NetmapPort, PortError, SyncResult};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::irq::Interrupts;
use super::stats::{PtnetStats, RingStats};

/// Longest sleep before a worker re-checks its stop flag (stops also wake it at once).
const MAX_SLEEP: Duration = Duration::from_millis(200);
/// Longest sleep of a TX worker held by a lossless port's full destination before it
/// re-checks its stop flag and the guest's ring (stops do not interrupt this wait).
const HELD_SLEEP: Duration = Duration::from_millis(20);
/// How long a DELETE lets a held lossless port forward the guest's last frames (the switch
/// releases a sender held by a dead or stuck receiver within a second).
const FINAL_TX_WAIT: Duration = Duration::from_secs(2);

/// The stop request shared by the workers of one CREATE.
struct Stop {
    flag: AtomicBool,
    /// Set before `flag` by [`Workers::finish`]: one last sync from the CSB before exiting.
    finish: AtomicBool,
    evt: EventFd,
}

impl Stop {
    fn stopped(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Read after `stopped()` returned true (its acquire orders this load).
    fn finishing(&self) -> bool {
        self.finish.load(Ordering::Relaxed)
    }
}

/// Everything one ring's worker uses.
pub(crate) struct RingCtx {
    /// Ring number in CSB/kick/vector order (TX first, then RX).
    pub ring: u32,
    pub kind: RingKind,
    /// Ring index within its direction, as the port numbers it.
    pub index: u32,
    pub num_slots: u32,
    /// The host state CREATE wrote to `ktoa`: the worker's starting point.
    pub initial: SyncResult,
    pub port: Arc<dyn NetmapPort>,
    pub csb: CsbRing,
    pub doorbell: Arc<EventFd>,
    pub irq: Arc<Interrupts>,
    pub stats: Arc<PtnetStats>,
    /// How long a TX worker polls the CSB for new work before it asks for a kick.
    pub spin: Duration,
}

/// The running workers of one CREATE; dropping them stops them.
pub(crate) struct Workers {
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
    rx_wakers: Vec<Arc<dyn Waker>>,
}

impl Workers {
    /// Starts one thread per ring.
    pub fn start(rings: Vec<RingCtx>) -> io::Result<Self> {
        let stop = Arc::new(Stop {
            flag: AtomicBool::new(false),
            finish: AtomicBool::new(false),
            evt: EventFd::new(EFD_NONBLOCK)?,
        });
        let mut w = Workers {
            stop,
            threads: Vec::new(),
            rx_wakers: Vec::new(),
        };
        let mut relay = Vec::new();
        for c in rings {
            if c.kind == RingKind::Rx {
                let waker = c.port.rx_waker(c.index).map_err(port_io)?;
                w.rx_wakers.push(waker.clone());
                relay.push(KickRelay {
                    doorbell: c.doorbell.clone(),
                    waker,
                    stats: c.stats.clone(),
                    ring: c.ring,
                });
            }
            let name = match c.kind {
                RingKind::Tx => format!("ptnet-tx{}", c.index),
                RingKind::Rx => format!("ptnet-rx{}", c.index),
            };
            let stop = w.stop.clone();
            let t = std::thread::Builder::new().name(name).spawn(move || {
                let mut worker = Worker::new(c, stop);
                worker.run();
            })?;
            w.threads.push(t);
        }
        if !relay.is_empty() {
            let stop = w.stop.clone();
            let t = std::thread::Builder::new()
                .name("ptnet-rxkick".into())
                .spawn(move || relay_rx_kicks(&relay, &stop))?;
            w.threads.push(t);
        }
        Ok(w)
    }

    /// Stops and joins every worker without reading the CSB again.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Explicit DELETE: every worker completes the guest's last published request (TX
    /// forwards, RX takes released slots back), then stops; joined on return. Only while the
    /// CSB is still the one CREATE mapped.
    pub fn finish(mut self) {
        self.stop.finish.store(true, Ordering::Relaxed);
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.flag.store(true, Ordering::Release);
        let _ = self.stop.evt.write(1);
        // A waker fired between a worker's flag check and its sleep would be missed, so keep
        // waking until every thread is gone.
        while self.threads.iter().any(|t| !t.is_finished()) {
            for w in &self.rx_wakers {
                w.wake();
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::error!("ptnet: a ring worker panicked");
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn port_io(e: PortError) -> io::Error {
    io::Error::other(e)
}

struct Worker {
    c: RingCtx,
    stop: Arc<Stop>,
    /// The host state last written to `ktoa`.
    st: SyncResult,
    /// Indices that failed validation; ignored until the guest writes others.
    bad: Option<(u32, u32)>,
}

impl Worker {
    fn new(c: RingCtx, stop: Arc<Stop>) -> Self {
        Worker {
            st: c.initial,
            c,
            stop,
            bad: None,
        }
    }

    fn stats(&self) -> &RingStats {
        // The NIC sizes the stats with one entry per ring.
        &self.c.stats.rings[self.c.ring as usize]
    }

    fn run(&mut self) {
        let r = match self.c.kind {
            RingKind::Tx => self.run_tx(),
            RingKind::Rx => self.run_rx(),
        };
        let r = r.and_then(|()| {
            if self.stop.finishing() {
                self.final_sync()
            } else {
                Ok(())
            }
        });
        if let Err(e) = r {
            log::error!("{}: ring {} worker: {e}", self.c.port.name(), self.c.ring);
        }
        self.c.csb.set_kern_need_kick(true);
    }

    /// On DELETE: one last sync of what the guest published since the last one. Invalid
    /// indices are left alone (the next CREATE starts from the port's state anyway); no
    /// interrupt, the guest is tearing the ring down.
    fn final_sync(&mut self) -> Result<(), PortError> {
        let a = self.c.csb.host_read_atok();
        if !self.new_work(a) {
            return Ok(());
        }
        let (i, n) = (self.c.index, self.c.num_slots);
        let r = match self.c.kind {
            RingKind::Tx => {
                // A held lossless port gets a bounded time to forward the rest.
                let until = std::time::Instant::now() + FINAL_TX_WAIT;
                let mut r = self.c.port.txsync(i, a.head, a.cur);
                while matches!(r, Ok(s) if s.hwcur != a.head) && std::time::Instant::now() < until {
                    self.c.port.tx_wait(i, Some(HELD_SLEEP))?;
                    r = self.c.port.txsync(i, a.head, a.cur);
                }
                r
            }
            RingKind::Rx => self.c.port.rxsync(i, a.head, a.cur),
        };
        match r {
            Ok(r) => {
                let done = match self.c.kind {
                    RingKind::Tx => ring::distance(self.st.hwcur, r.hwcur, n),
                    RingKind::Rx => ring::distance(self.st.hwtail, r.hwtail, n),
                };
                RingStats::add(&self.stats().packets, done.into());
                self.publish(r);
                Ok(())
            }
            Err(PortError::Prologue(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the guest published indices the host has not handled.
    fn new_work(&self, a: AtokSnapshot) -> bool {
        a.head != self.st.hwcur && self.bad != Some((a.head, a.cur))
    }

    fn run_tx(&mut self) -> Result<(), PortError> {
        let n = self.c.num_slots;
        while !self.stop.stopped() {
            self.c.csb.set_kern_need_kick(false);
            let a = self.c.csb.host_read_atok();
            if self.new_work(a) {
                match self.c.port.txsync(self.c.index, a.head, a.cur) {
                    Ok(r) => {
                        let sent = ring::distance(self.st.hwcur, r.hwcur, n);
                        self.publish(r);
                        self.bad = None;
                        RingStats::add(&self.stats().packets, sent.into());
                        if sent > 0 && self.c.csb.appl_need_kick() {
                            self.interrupt();
                        }
                        if r.hwcur != a.head {
                            // A lossless port held by a full destination: slots
                            // hwcur..head stay pending. Sleep until the receiver frees
                            // room (or briefly, to see a stop), then retry.
                            RingStats::add(&self.stats().sleeps, 1);
                            self.c.port.tx_wait(self.c.index, Some(HELD_SLEEP))?;
                        }
                    }
                    Err(PortError::Prologue(_)) => self.reset(a)?,
                    Err(e) => return Err(e),
                }
                continue;
            }
            if self.spin_for_work() {
                continue;
            }
            // Double check: ask for kicks, then look again before sleeping.
            self.c.csb.set_kern_need_kick(true);
            if self.new_work(self.c.csb.host_read_atok()) {
                continue;
            }
            self.sleep_on_doorbell();
        }
        Ok(())
    }

    fn run_rx(&mut self) -> Result<(), PortError> {
        let n = self.c.num_slots;
        while !self.stop.stopped() {
            self.c.csb.set_kern_need_kick(false);
            let a = self.c.csb.host_read_atok();
            let (head, cur) = if self.bad == Some((a.head, a.cur)) {
                (self.st.hwcur, self.st.hwcur)
            } else {
                (a.head, a.cur)
            };
            match self.c.port.rxsync(self.c.index, head, cur) {
                Ok(r) => {
                    let arrived = ring::distance(self.st.hwtail, r.hwtail, n);
                    if r != self.st {
                        self.publish(r);
                    } else {
                        RingStats::add(&self.stats().syncs, 1);
                    }
                    if head == a.head {
                        self.bad = None;
                    }
                    RingStats::add(&self.stats().packets, arrived.into());
                    if arrived > 0 && self.c.csb.appl_need_kick() {
                        self.interrupt();
                    }
                }
                Err(PortError::Prologue(_)) => {
                    self.reset(a)?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            // Guest kicks reach this sleep through the relay thread (`ptnet-rxkick`), which
            // wakes the port's RX wait. Take the wait token before the double check, so a
            // kick between the check and the sleep is not lost.
            let token = self.c.port.rx_wait_token(self.c.index)?;
            let free = ring::distance(self.st.hwtail, ring::prev(self.st.hwcur, n), n);
            // Ask for kicks once the ring is at least half full: the slots the guest releases
            // then go back to the switch at once, before senders find the ring full and drop
            // (a ring with room needs no kicks: arrivals wake this worker anyway).
            if free <= n / 2 {
                self.c.csb.set_kern_need_kick(true);
                if self.new_work(self.c.csb.host_read_atok()) {
                    continue;
                }
            }
            RingStats::add(&self.stats().sleeps, 1);
            // A full ring waits for kicks only: arrivals are dropped by the switch anyway.
            self.c.port.rx_wait_since(
                self.c.index,
                token,
                self.st.hwtail,
                free > 0,
                Some(MAX_SLEEP),
            )?;
        }
        Ok(())
    }

    /// Polls `atok` for up to `spin` (kicks stay suppressed meanwhile). Returns true if the
    /// guest published new work.
    fn spin_for_work(&self) -> bool {
        if self.c.spin.is_zero() {
            return false;
        }
        let start = std::time::Instant::now();
        while start.elapsed() < self.c.spin && !self.stop.stopped() {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            if self.new_work(self.c.csb.host_read_atok()) {
                return true;
            }
        }
        false
    }

    /// Writes the host state to `ktoa`.
    fn publish(&mut self, r: SyncResult) {
        self.st = r;
        self.c.csb.host_write_ktoa(r.hwcur, r.hwtail);
        RingStats::add(&self.stats().syncs, 1);
    }

    /// The guest's indices failed validation: reinitialise its view from the host's state.
    fn reset(&mut self, a: AtokSnapshot) -> Result<(), PortError> {
        log::debug!(
            "{}: ring {}: invalid CSB head {} cur {}, ring reinitialised",
            self.c.port.name(),
            self.c.ring,
            a.head,
            a.cur
        );
        let s = self.c.port.ring_state(self.c.kind, self.c.index)?;
        self.publish(s);
        self.bad = Some((a.head, a.cur));
        RingStats::add(&self.stats().resets, 1);
        Ok(())
    }

    fn interrupt(&self) {
        RingStats::add(&self.stats().interrupts, 1);
        // Vector i serves ring i; ring counts are capped at 64, far below u16::MAX.
        self.c.irq.trigger(self.c.ring as u16);
    }

    /// Sleeps until a kick or a stop; counts the kicks consumed.
    fn sleep_on_doorbell(&self) {
        RingStats::add(&self.stats().sleeps, 1);
        let mut fds = [
            libc::pollfd {
                fd: self.c.doorbell.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.stop.evt.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Both descriptors are owned by live EventFds (the worker holds Arcs to them).
        // SAFETY: `fds` is a valid array of two pollfds for the duration of the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, MAX_SLEEP.as_millis() as i32) };
        if r > 0 && fds[0].revents & libc::POLLIN != 0 {
            self.drain_doorbell();
        }
    }

    fn drain_doorbell(&self) {
        if let Ok(k) = self.c.doorbell.read() {
            RingStats::add(&self.stats().kicks, k);
        }
    }
}

/// An RX ring's doorbell as the relay sees it.
struct KickRelay {
    doorbell: Arc<EventFd>,
    waker: Arc<dyn Waker>,
    stats: Arc<PtnetStats>,
    ring: u32,
}

/// The `ptnet-rxkick` thread: turns guest kicks of RX rings (eventfds, from KVM's ioeventfd
/// or the register-handler table) into wakes of the RX workers, which sleep in the port's
/// RX wait (a futex another process can wake) and so cannot poll the eventfds themselves.
fn relay_rx_kicks(relay: &[KickRelay], stop: &Stop) {
    let mut fds: Vec<libc::pollfd> = relay
        .iter()
        .map(|r| r.doorbell.as_raw_fd())
        .chain(std::iter::once(stop.evt.as_raw_fd()))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.stopped() {
        // Every descriptor belongs to an EventFd this thread holds an Arc to.
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds for the duration of the call.
        let r = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                MAX_SLEEP.as_millis() as i32,
            )
        };
        if r <= 0 {
            continue;
        }
        for (r, fd) in relay.iter().zip(&fds) {
            if fd.revents & libc::POLLIN != 0 {
                if let Ok(k) = r.doorbell.read() {
                    RingStats::add(&r.stats.rings[r.ring as usize].kicks, k);
                }
                r.waker.wake();
            }
        }
    }
}
