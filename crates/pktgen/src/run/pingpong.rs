//! The ping and pong loops (one thread, ring 0, as netmap's).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use netmap::ring;

use crate::backend::{buf_offset, Backend};
use crate::cli::stopped;
use crate::frame;
use crate::json::Obj;
use crate::latency::RttStats;
use crate::opts::Cli;
use crate::out::{Counters, Format, Outcome};

/// The running line `ping: R replies of S, RTT min/avg/max ...` (or its JSON object).
fn rtt_line(fmt: &Format, sent: u64, r: &RttStats) -> String {
    if fmt.json {
        return Obj::new()
            .str("type", "rtt")
            .u64("sent", sent)
            .u64("replies", r.count())
            .u64("min_ns", r.min().unwrap_or(0))
            .f64("avg_ns", r.avg().unwrap_or(0.0).round())
            .u64("max_ns", r.max().unwrap_or(0))
            .finish();
    }
    format!(
        "ping: {} replies of {sent}, RTT min/avg/max {:.1}/{:.1}/{:.1} us",
        r.count(),
        r.min().unwrap_or(0) as f64 / 1e3,
        r.avg().unwrap_or(0.0) / 1e3,
        r.max().unwrap_or(0) as f64 / 1e3
    )
}

/// Sends one frame `f` per round and waits up to a second for any reply, recording its
/// round-trip time; prints the running RTT line every report interval.
pub fn ping(
    port: &dyn Backend,
    cli: &Cli,
    fmt: &Format,
    f: &[u8],
    c: &Counters,
) -> Result<Outcome> {
    let (tr, rr) = (port.tx_ring(), port.rx_ring());
    let (tn, rn) = (tr.num_slots(), rr.num_slots());
    let mem = port.mem();
    let bufs = port.bufs();
    let period = Duration::from_millis(cli.report_ms);
    let mut rtt = RttStats::new();
    let mut sent = 0u64;
    let start = Instant::now();
    let mut last_print = start;
    while !stopped() && (cli.count == 0 || sent < cli.count) {
        let h = tr.head();
        let s = tr.slot(h);
        let Some(o) = buf_offset(&bufs, s.buf_idx()) else {
            bail!("TX slot with an invalid buffer")
        };
        mem.write_bytes(o, f);
        s.set_len_flags(f.len() as u16, 0);
        let t0 = Instant::now();
        tr.set_cur(ring::next(h, tn));
        tr.set_head(ring::next(h, tn));
        port.txsync()?;
        sent += 1;
        c.add(1, cli.len as u64);
        // Wait up to one second for a reply.
        while t0.elapsed() < Duration::from_secs(1) && !stopped() {
            let st = port.rxsync()?;
            let rh = rr.head();
            if rh != st.hwtail {
                rtt.add(t0.elapsed().as_nanos() as u64);
                let d = ring::distance(rh, st.hwtail, rn);
                rr.set_cur(ring::add(rh, d, rn));
                rr.set_head(ring::add(rh, d, rn));
                break;
            }
            port.rx_wait(st.hwtail, Duration::from_millis(10))?;
        }
        if last_print.elapsed() >= period && rtt.count() > 0 {
            println!("{}", rtt_line(fmt, sent, &rtt));
            last_print = Instant::now();
        }
    }
    Ok(Outcome {
        pkts: sent,
        bytes: sent * cli.len as u64,
        events: sent,
        span: Some((start, Instant::now())),
        rtt: Some(rtt),
        ..Outcome::default()
    })
}

/// Answers every received frame with its reply (addresses and ports swapped).
pub fn pong(port: &dyn Backend, cli: &Cli, c: &Counters) -> Result<Outcome> {
    let (tr, rr) = (port.tx_ring(), port.rx_ring());
    let (tn, rn) = (tr.num_slots(), rr.num_slots());
    let mem = port.mem();
    let bufs = port.bufs();
    let mut buf = vec![0u8; bufs.objsz as usize];
    let (mut replies, mut bytes, mut events) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while !stopped() && (cli.count == 0 || replies < cli.count) {
        let st = port.rxsync()?;
        let mut rh = rr.head();
        if rh == st.hwtail {
            port.rx_wait(st.hwtail, Duration::from_millis(10))?;
            continue;
        }
        let mut th = tr.head();
        let (r0, b0) = (replies, bytes);
        while rh != st.hwtail && ring::space(th, tr.tail(), tn) > 0 {
            let (idx, len, _) = rr.slot(rh).load();
            rh = ring::next(rh, rn);
            let (Some(so), true) = (buf_offset(&bufs, idx), len as usize <= buf.len()) else {
                continue;
            };
            mem.read_bytes(so, &mut buf[..len as usize]);
            if let Some(eth) = buf[..len as usize].get_mut(cli.vnet_hdr as usize..) {
                frame::make_reply(eth);
            }
            let ts = tr.slot(th);
            let Some(to) = buf_offset(&bufs, ts.buf_idx()) else {
                continue;
            };
            mem.write_bytes(to, &buf[..len as usize]);
            ts.set_len_flags(len, 0);
            th = ring::next(th, tn);
            replies += 1;
            bytes += len as u64;
        }
        rr.set_cur(rh);
        rr.set_head(rh);
        tr.set_cur(th);
        tr.set_head(th);
        port.txsync()?;
        events += 1;
        c.add(replies - r0, bytes - b0);
    }
    Ok(Outcome {
        pkts: replies,
        bytes,
        events,
        span: Some((start, Instant::now())),
        ..Outcome::default()
    })
}
