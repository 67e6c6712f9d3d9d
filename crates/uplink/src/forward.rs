//! The two forwarding threads of an uplink and their counters.
//!
//! - `uplink-in` (host → switch): waits in `poll` for the host endpoint to be readable,
//!   copies each frame into a free slot of the port's TX ring and txsyncs (the switch then
//!   learns, floods or forwards it like any port's frame). A frame longer than a switch
//!   buffer is dropped and counted (`drop_big`).
//! - `uplink-out` (switch → host): rxsyncs the port's RX ring, sleeping in the port's
//!   `rx_wait` (futex) when it is empty; hands each frame to the host endpoint, waiting in
//!   `poll` for room when the endpoint is full (at most [`SEND_STALL`], then the frame is
//!   dropped and counted in `drop_host`). A frame longer than the interface's MTU allows (the
//!   MTU is re-read once a second) is dropped and counted (`drop_mtu`); one shorter than an Ethernet header or in a fragment
//!   chain longer than [`CHAIN_MAX`] is counted in `drop_bad`.
//!
//! Both check a stop flag at least every [`TICK`].

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netmap::abi::slot::F_MOREFRAG;
use netmap::{ring, NetmapPort};
use vale::Port;

use crate::{max_frame, sys, HostRx, HostTx};

/// Longest sleep before a thread looks at its stop flag again.
pub const TICK: Duration = Duration::from_millis(50);
/// Longest wait for room in the host endpoint before a frame is dropped.
pub const SEND_STALL: Duration = Duration::from_secs(1);
/// Longest frame assembled from a fragment chain of the switch.
pub const CHAIN_MAX: usize = 65535;
/// Frames moved per txsync / rxsync at most.
const BATCH: u32 = 256;

/// Counters of an uplink (published in its state file).
#[derive(Debug, Default)]
pub struct Stats {
    /// Frames (and bytes) from the host interface into the switch.
    pub in_pkts: AtomicU64,
    pub in_bytes: AtomicU64,
    /// Frames (and bytes) from the switch out of the host interface.
    pub out_pkts: AtomicU64,
    pub out_bytes: AtomicU64,
    /// Host frames longer than a switch buffer.
    pub drop_big: AtomicU64,
    /// Switch frames longer than the interface's MTU allows.
    pub drop_mtu: AtomicU64,
    /// Switch frames the host endpoint refused or had no room for.
    pub drop_host: AtomicU64,
    /// Host frames the kernel dropped because the endpoint's ring was full.
    pub drop_kernel: AtomicU64,
    /// Malformed switch frames (runt, chain too long, bad buffer).
    pub drop_bad: AtomicU64,
}

fn inc(c: &AtomicU64, v: u64) {
    c.fetch_add(v, Relaxed);
}

/// Host → switch, until `stop`.
pub fn ingress(port: Arc<Port>, mut rx: Box<dyn HostRx>, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let r = port.tx_ring(0);
    let n = r.num_slots();
    let mem = port.mem();
    let layout = *port.layout();
    let buf_size = layout.config.buf_size as usize;
    let mut last_drops = Instant::now();
    let mut logged = false;
    while !stop.load(Relaxed) {
        if last_drops.elapsed() >= Duration::from_secs(1) {
            inc(&stats.drop_kernel, rx.kernel_drops());
            last_drops = Instant::now();
        }
        let mut head = r.head();
        let mut space = ring::space(head, r.tail(), n);
        let mut moved = 0u32;
        let sync = |head: u32, moved: &mut u32| -> u32 {
            r.set_cur(head);
            r.set_head(head);
            *moved = 0;
            match port.txsync_ring(0) {
                Ok(_) => {}
                Err(e) => log::warn!("{}: txsync: {e}", port.full_name()),
            }
            ring::space(r.head(), r.tail(), n)
        };
        if space == 0 {
            space = sync(head, &mut moved);
            if space == 0 {
                let _ = port.tx_wait(0, Some(TICK));
                continue;
            }
        }
        let got = rx.recv(BATCH as usize, &mut |frame: &[u8], tag: Option<[u8; 4]>| {
            let len = frame.len() + if tag.is_some() { 4 } else { 0 };
            if len > buf_size {
                inc(&stats.drop_big, 1);
                return;
            }
            if frame.len() < 14 {
                inc(&stats.drop_bad, 1);
                return;
            }
            if space == 0 {
                // A block of the packet ring can hold more frames than the ring has room.
                space = sync(head, &mut moved);
                head = r.head();
                if space == 0 {
                    inc(&stats.drop_host, 1);
                    return;
                }
            }
            let slot = r.slot(head);
            let Some(o) = layout.buf_offset(slot.buf_idx()) else {
                inc(&stats.drop_bad, 1);
                return;
            };
            match tag {
                Some(t) => {
                    mem.write_bytes(o, &frame[..12]);
                    mem.write_bytes(o + 12, &t);
                    mem.write_bytes(o + 16, &frame[12..]);
                }
                None => mem.write_bytes(o, frame),
            }
            slot.set_len_flags(len as u16, 0);
            head = ring::next(head, n);
            space -= 1;
            moved += 1;
            inc(&stats.in_pkts, 1);
            inc(&stats.in_bytes, len as u64);
        });
        match got {
            Ok(0) => {
                if moved > 0 {
                    sync(head, &mut moved);
                }
                if let Err(e) = sys::poll1(rx.fd(), libc::POLLIN, TICK) {
                    log::warn!("{}: poll: {e}", port.full_name());
                    std::thread::sleep(TICK);
                }
            }
            Ok(_) => {
                if moved > 0 {
                    sync(head, &mut moved);
                }
            }
            Err(e) => {
                if moved > 0 {
                    sync(head, &mut moved);
                }
                if !logged {
                    log::warn!("{}: receiving from the host: {e}", port.full_name());
                    logged = true;
                }
                std::thread::sleep(TICK);
            }
        }
    }
}

/// Switch → host, until `stop`.
pub fn egress(
    port: Arc<Port>,
    mut tx: Box<dyn HostTx>,
    mtu: Arc<AtomicU32>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let r = port.rx_ring(0);
    let n = r.num_slots();
    let mem = port.mem();
    let layout = *port.layout();
    let mut frame: Vec<u8> = Vec::with_capacity(CHAIN_MAX);
    let mut chain_bad = false;
    let mut logged = false;
    while !stop.load(Relaxed) {
        let s = match port.rxsync_ring(0) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("{}: rxsync: {e}", port.full_name());
                std::thread::sleep(TICK);
                continue;
            }
        };
        let mut h = r.head();
        if h == s.hwtail {
            if let Err(e) = tx.flush() {
                log::warn!("{}: flushing to the host: {e}", port.full_name());
            }
            let _ = port.rx_wait(0, s.hwtail, Some(TICK));
            continue;
        }
        let mut k = 0;
        while h != s.hwtail && k < BATCH && !stop.load(Relaxed) {
            k += 1;
            let (idx, len, flags) = r.slot(h).load();
            h = ring::next(h, n);
            let more = flags & F_MOREFRAG != 0;
            match layout.buf_offset(idx) {
                Some(o) if len as u32 <= layout.config.buf_size => {
                    if frame.len() + len as usize > CHAIN_MAX {
                        chain_bad = true;
                    } else {
                        let at = frame.len();
                        frame.resize(at + len as usize, 0);
                        mem.read_bytes(o, &mut frame[at..]);
                    }
                }
                _ => chain_bad = true,
            }
            if more {
                continue;
            }
            if chain_bad || frame.len() < 14 {
                inc(&stats.drop_bad, 1);
            } else if frame.len() > max_frame(mtu.load(Relaxed), &frame) {
                inc(&stats.drop_mtu, 1);
            } else {
                let since = Instant::now();
                loop {
                    match tx.send(&frame) {
                        Ok(true) => {
                            inc(&stats.out_pkts, 1);
                            inc(&stats.out_bytes, frame.len() as u64);
                            break;
                        }
                        Ok(false) => {
                            let _ = tx.flush();
                            if stop.load(Relaxed) || since.elapsed() > SEND_STALL {
                                inc(&stats.drop_host, 1);
                                break;
                            }
                            let _ = sys::poll1(tx.fd(), libc::POLLOUT, Duration::from_millis(10));
                        }
                        Err(e) => {
                            if !logged {
                                log::warn!("{}: sending to the host: {e}", port.full_name());
                                logged = true;
                            }
                            inc(&stats.drop_host, 1);
                            break;
                        }
                    }
                }
            }
            frame.clear();
            chain_bad = false;
        }
        r.set_cur(h);
        r.set_head(h);
        if let Err(e) = tx.flush() {
            log::warn!("{}: flushing to the host: {e}", port.full_name());
        }
    }
}
