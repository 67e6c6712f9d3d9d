//! The tx and rx loops, one per `-p` thread, each on its own ring.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Result;
use netmap::abi::slot::F_MOREFRAG;
use netmap::ring;

use crate::backend::{buf_offset, Backend};
use crate::cli::stopped;
use crate::flows::{Flows, Header};
use crate::frags::Split;
use crate::frame;
use crate::opts::Cli;
use crate::out::{Counters, Outcome};
use crate::seq::SeqStats;

/// One thread's share of `-n` and `-R` (0: forever, unpaced).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub count: u64,
    pub rate: f64,
}

/// Thread `i` of `threads`'s share: the count split as evenly as can be (the first threads
/// send one more), the rate split evenly, so that the totals are exactly `-n` and `-R`.
pub fn quota(count: u64, rate: u64, i: u32, threads: u32) -> Quota {
    let t = threads.max(1) as u64;
    let count = if count == 0 {
        0
    } else {
        count / t + u64::from((i as u64) < count % t)
    };
    Quota {
        count,
        rate: rate as f64 / t as f64,
    }
}

/// Slots published to the TX ring that the port has not sent yet (a held lossless port).
fn tx_pending(port: &dyn Backend, s: &netmap::SyncResult) -> u32 {
    let r = port.tx_ring();
    ring::distance(s.hwcur, r.head(), r.num_slots())
}

/// Sends `q.count` frames (or until a signal), `burst` per txsync, paced at `q.rate`: the
/// `frames` in turn (one built frame, or `-P`'s), each with its `-H` header in front, over
/// the slots its `splits` entry says (`-F`/`-M`: a MOREFRAG chain, published whole). With
/// several `flows`, each frame's header is rewritten for the next one; with `seq` (txseq,
/// `Some(thread)`) it also carries its number in its flow. A thread with a count of 0 out
/// of a non-zero `-n` sends nothing.
#[allow(clippy::too_many_arguments)]
pub fn tx(
    port: &dyn Backend,
    cli: &Cli,
    frames: &[Vec<u8>],
    splits: &[Split],
    mut flows: Flows,
    seq: Option<u16>,
    q: Quota,
    c: &Counters,
) -> Result<Outcome> {
    let r = port.tx_ring();
    let n = r.num_slots();
    let mem = port.mem();
    let bufs = port.bufs();
    let f = &frames[0];
    // Multi-slot frames are written slot by slot for every frame (a frame's slots move
    // around the ring).
    let chained = splits.iter().any(|s| s.slots > 1);
    // The frame being sent when its header is rewritten (chained frames only).
    let mut scratch = Vec::new();
    // One frame: every buffer holds it from the start (only headers are rewritten, if any).
    let one = frames.len() == 1 && !chained;
    if one {
        for i in 0..n {
            let s = r.slot(i);
            if let Some(o) = buf_offset(&bufs, s.buf_idx()) {
                mem.write_bytes(o, f);
            }
        }
    }
    let hdr = cli.vnet_hdr as usize;
    let mut header =
        (!flows.is_single() || seq.is_some()).then(|| Header::new(&f[hdr..], seq.is_some()));
    let cycle = flows.cycle_len().max(1);
    // Frames this thread has put in slots (a flow's k-th frame is number k in it).
    let mut frames_put = 0u64;
    // The next of `frames` to send.
    let mut next = 0usize;
    let mut bytes = 0u64;
    let (mut sent, mut events) = (0u64, 0u64);
    let start = Instant::now();
    let none = cli.count > 0 && q.count == 0;
    while !none && !stopped() && (q.count == 0 || sent < q.count) {
        let mut head = r.head();
        let space = ring::space(head, r.tail(), n);
        // Frames: chains are counted against the space as they are laid out below.
        let mut want = if chained {
            cli.burst
        } else {
            space.min(cli.burst)
        } as u64;
        if q.count > 0 {
            want = want.min(q.count - sent);
        }
        if q.rate > 0.0 {
            let due = (start.elapsed().as_secs_f64() * q.rate) as u64;
            let allowed = due.saturating_sub(sent);
            if allowed == 0 {
                let next = Duration::from_secs_f64((sent + 1) as f64 / q.rate);
                std::thread::sleep(
                    next.saturating_sub(start.elapsed())
                        .min(Duration::from_millis(1)),
                );
                continue;
            }
            want = want.min(allowed);
        }
        let mut batch_bytes = 0u64;
        if chained {
            let mut space = space;
            let mut put = 0u64;
            while put < want {
                let (fr, sp) = (&frames[next], &splits[next]);
                if sp.slots as u32 > space {
                    break;
                }
                next = if next + 1 == frames.len() {
                    0
                } else {
                    next + 1
                };
                let bytes: &[u8] = match header.as_mut() {
                    Some(h) => {
                        let num = seq.map(|t| ((frames_put / cycle) as u32, t));
                        let rewritten = h.for_flow(&flows.next_flow(), num);
                        scratch.clear();
                        scratch.extend_from_slice(fr);
                        scratch[hdr..hdr + rewritten.len()].copy_from_slice(rewritten);
                        frames_put += 1;
                        &scratch
                    }
                    None => fr,
                };
                for (k, (at, len)) in sp.pieces().enumerate() {
                    let s = r.slot(head);
                    if let Some(o) = buf_offset(&bufs, s.buf_idx()) {
                        mem.write_bytes(o, &bytes[at..at + len]);
                    }
                    let more = if k + 1 < sp.slots { F_MOREFRAG } else { 0 };
                    s.set_len_flags(len as u16, more);
                    head = ring::next(head, n);
                }
                space -= sp.slots as u32;
                batch_bytes += (fr.len() - hdr) as u64;
                put += 1;
            }
            want = put;
        } else {
            for _ in 0..want {
                let s = r.slot(head);
                let fr = &frames[next];
                next = if next + 1 == frames.len() {
                    0
                } else {
                    next + 1
                };
                if !one {
                    if let Some(o) = buf_offset(&bufs, s.buf_idx()) {
                        mem.write_bytes(o, fr);
                    }
                }
                if let Some(h) = header.as_mut() {
                    let num = seq.map(|t| ((frames_put / cycle) as u32, t));
                    let rewritten = h.for_flow(&flows.next_flow(), num);
                    if let Some(o) = buf_offset(&bufs, s.buf_idx()) {
                        mem.write_bytes(o + hdr, rewritten);
                    }
                    frames_put += 1;
                }
                s.set_len_flags(fr.len() as u16, 0);
                batch_bytes += (fr.len() - hdr) as u64;
                head = ring::next(head, n);
            }
        }
        r.set_cur(head);
        r.set_head(head);
        // A lossless port may send fewer slots than published: they stay in the ring (its
        // tail stops short of them), and the next round's space accounts for that.
        port.txsync()?;
        if want == 0 {
            // Ring full: sleep until the peer frees slots (no-op where txsync forwards).
            port.tx_wait(Duration::from_millis(1))?;
        }
        sent += want;
        bytes += batch_bytes;
        events += 1;
        c.add(want, batch_bytes);
    }
    if cli.lossless {
        // Frames still held in the ring leave before the port closes (the switch releases
        // a sender held by a dead or stuck receiver within a second; bounded here anyway).
        let until = Instant::now() + Duration::from_secs(5);
        let mut s = port.txsync()?;
        while tx_pending(port, &s) > 0 && Instant::now() < until {
            port.tx_wait(Duration::from_millis(100))?;
            s = port.txsync()?;
        }
        let left = tx_pending(port, &s);
        if left > 0 {
            // The frames in the slots from the port's position to head were not sent (the
            // port stops at a frame's first slot).
            let (mut frames_left, mut bytes_left) = (0u64, 0u64);
            for k in 0..left {
                let (_, len, flags) = r.slot(ring::add(s.hwcur, k, n)).load();
                bytes_left += len as u64;
                if flags & F_MOREFRAG == 0 {
                    frames_left += 1;
                }
            }
            eprintln!("ptvmm-pktgen: {frames_left} frames still held at exit, not sent");
            sent -= frames_left;
            bytes -= bytes_left.saturating_sub(frames_left * hdr as u64);
        }
    }
    Ok(Outcome {
        pkts: sent,
        bytes,
        events,
        span: Some((start, Instant::now())),
        ..Outcome::default()
    })
}

/// Claims up to `want` of the `count` packets all rx threads receive together (all of
/// them when `count` is 0).
fn claim(claimed: &AtomicU64, count: u64, want: u64) -> u64 {
    if count == 0 {
        return want;
    }
    let mut cur = claimed.load(Relaxed);
    loop {
        let k = want.min(count.saturating_sub(cur));
        if k == 0 {
            return 0;
        }
        match claimed.compare_exchange_weak(cur, cur + k, Relaxed, Relaxed) {
            Ok(_) => return k,
            Err(v) => cur = v,
        }
    }
}

/// What the rx threads share: packets claimed and received so far, of `-n` in total.
#[derive(Debug, Default)]
pub struct RxShare {
    claimed: AtomicU64,
    done: AtomicU64,
}

/// Whether `f` (a frame without `-H`'s header) is a good pkt-gen frame; a good one is
/// accounted to its flow's sequence with `seqs` (rxseq).
fn verify(f: &[u8], seqs: Option<&mut SeqStats>) -> bool {
    let ok = frame::verify(f).is_ok();
    if let (true, Some(st)) = (ok, seqs) {
        st.on_frame(f);
    }
    ok
}

/// The multi-slot frame being received: its bytes so far, and whether every slot could be
/// read (a slot longer than a buffer, a bad buffer index or a chain longer than netmap's 64
/// slots makes the frame bad).
#[derive(Debug, Default)]
struct Chain {
    data: Vec<u8>,
    bytes: u64,
    slots: usize,
    broken: bool,
}

impl Chain {
    /// Adds a slot of `len` bytes in buffer `idx` (its bytes copied unless `count_only`).
    fn add(
        &mut self,
        count_only: bool,
        mem: &netmap::SharedMem,
        bufs: &netmap::Pool,
        idx: u32,
        len: u16,
    ) {
        self.bytes += len as u64;
        self.slots += 1;
        if count_only || self.broken {
            return;
        }
        match buf_offset(bufs, idx) {
            Some(o) if len as u32 <= bufs.objsz && self.slots <= netmap::abi::MAX_FRAGS => {
                let at = self.data.len();
                self.data.resize(at + len as usize, 0);
                mem.read_bytes(o, &mut self.data[at..]);
            }
            _ => self.broken = true,
        }
    }

    /// Whether the gathered frame, after its `hdr` bytes of virtio-net header, is good.
    fn verify(&self, hdr: usize, seqs: Option<&mut SeqStats>) -> bool {
        !self.broken && self.data.len() >= hdr && verify(&self.data[hdr..], seqs)
    }

    fn reset(&mut self) {
        self.data.clear();
        self.bytes = 0;
        self.slots = 0;
        self.broken = false;
    }
}

/// Receives, verifies and counts until all threads together have `-n` frames (or a signal).
/// With `seq` (rxseq), every good frame's sequence number is accounted to its flow.
pub fn rx(
    port: &dyn Backend,
    cli: &Cli,
    seq: bool,
    c: &Counters,
    share: &RxShare,
) -> Result<Outcome> {
    let mut seqs = seq.then(SeqStats::default);
    let r = port.rx_ring();
    let n = r.num_slots();
    let bufs = port.bufs();
    let mem = port.mem();
    let mut buf = vec![0u8; bufs.objsz as usize];
    let hdr = cli.vnet_hdr as usize;
    let count = cli.count;
    let (mut pkts, mut bytes, mut events, mut good, mut bad) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut first, mut last) = (None, Instant::now());
    let mut idle_since: Option<Instant> = None;
    let mut in_chain = false;
    let mut chain = Chain::default();
    // After a signal, one last pass drains what already arrived.
    let mut draining = false;
    while count == 0 || share.done.load(Relaxed) < count {
        if draining {
            break;
        }
        draining = stopped();
        let s = port.rxsync()?;
        let mut h = r.head();
        let avail = ring::distance(h, s.hwtail, n);
        // At most `avail` packets are in the ring (fewer if chained); unused claims go back.
        let mine = if avail > 0 {
            claim(&share.claimed, count, avail as u64)
        } else {
            0
        };
        if mine == 0 {
            if draining {
                break;
            }
            if avail > 0 {
                // Other threads claimed the rest of -n: wait for them to finish.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < Duration::from_micros(50) {
                std::hint::spin_loop();
            } else {
                port.rx_wait(s.hwtail, Duration::from_millis(10))?;
            }
            continue;
        }
        idle_since = None;
        // Prefetch the buffers a few slots ahead: they were just written on another core.
        const AHEAD: u32 = 8;
        if !cli.no_verify {
            for k in 0..AHEAD.min(avail) {
                if let Some(o) = buf_offset(&bufs, r.slot(ring::add(h, k, n)).buf_idx()) {
                    mem.prefetch(o);
                }
            }
        }
        let (mut k, mut got, mut got_bytes) = (0, 0u64, 0u64);
        while h != s.hwtail && got < mine {
            if !cli.no_verify && k + AHEAD < avail {
                if let Some(o) = buf_offset(&bufs, r.slot(ring::add(h, AHEAD, n)).buf_idx()) {
                    mem.prefetch(o);
                }
            }
            k += 1;
            let (idx, len, flags) = r.slot(h).load();
            let more = flags & F_MOREFRAG != 0;
            if more || in_chain {
                // A slot of a multi-slot frame: its bytes are gathered (unless --no-verify)
                // and the frame is counted, and verified whole, at its last slot.
                chain.add(cli.no_verify, &mem, &bufs, idx, len);
                if !more {
                    got += 1;
                    got_bytes += chain.bytes.saturating_sub(hdr as u64);
                    let ok = cli.no_verify || chain.verify(hdr, seqs.as_mut());
                    if ok {
                        good += 1;
                    } else {
                        bad += 1;
                    }
                    chain.reset();
                }
            } else {
                got += 1;
                got_bytes += (len as u64).saturating_sub(hdr as u64);
                let ok = cli.no_verify
                    || len as usize <= buf.len()
                        && len as usize >= hdr
                        && buf_offset(&bufs, idx).is_some_and(|o| {
                            mem.read_bytes(o, &mut buf[..len as usize]);
                            verify(&buf[hdr..len as usize], seqs.as_mut())
                        });
                if ok {
                    good += 1;
                } else {
                    bad += 1;
                }
            }
            in_chain = more;
            h = ring::next(h, n);
        }
        if count > 0 && got < mine {
            share.claimed.fetch_sub(mine - got, Relaxed);
        }
        share.done.fetch_add(got, Relaxed);
        r.set_cur(h);
        r.set_head(h);
        let now = Instant::now();
        first.get_or_insert(now);
        last = now;
        events += 1;
        pkts += got;
        bytes += got_bytes;
        c.add(got, got_bytes);
    }
    port.rxsync()?;
    Ok(Outcome {
        pkts,
        bytes,
        events,
        span: first.map(|f| (f, last)),
        verified: Some((good, bad)),
        seq: seqs,
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_add_up_to_the_totals() {
        for (count, threads) in [(0u64, 1u32), (10, 1), (10, 3), (5000, 2), (3, 4), (7, 7)] {
            let qs: Vec<Quota> = (0..threads)
                .map(|i| quota(count, 3000, i, threads))
                .collect();
            assert_eq!(qs.iter().map(|q| q.count).sum::<u64>(), count);
            let max = qs.iter().map(|q| q.count).max().unwrap();
            let min = qs.iter().map(|q| q.count).min().unwrap();
            assert!(max - min <= 1, "{qs:?}");
            let rate: f64 = qs.iter().map(|q| q.rate).sum();
            assert!((rate - 3000.0).abs() < 1e-6);
        }
        assert_eq!(
            quota(3, 0, 3, 4),
            Quota {
                count: 0,
                rate: 0.0
            }
        );
    }

    #[test]
    fn claims_never_exceed_the_count() {
        let c = AtomicU64::new(0);
        assert_eq!(claim(&c, 0, 512), 512, "no count: everything");
        assert_eq!(claim(&c, 1000, 512), 512);
        assert_eq!(claim(&c, 1000, 512), 488);
        assert_eq!(claim(&c, 1000, 512), 0);
        c.fetch_sub(88, Relaxed);
        assert_eq!(claim(&c, 1000, 100), 88);
    }
}
