//! ptvmm-pktgen: netmap's pkt-gen for VALE ports (`-f tx|rx|ping|pong`), plus `--copy-loop`,
//! the single-process copy benchmark that serves as the switch's reference limit.
//! `-i ptnet0` (or `/dev/ptnet0`) runs the same loops over ptnet.ko's netmap-mode character
//! device inside a guest (pktgen::backend); built static it is the guest's `/bin/pkt-gen`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use netmap::{ring, RegionConfig};
use pktgen::backend::{buf_offset, Backend};
use pktgen::cli::stopped;
use pktgen::copyloop::CopyLoop;
use pktgen::frame::{self, Endpoints};
use pktgen::interface::{self, Target};
use pktgen::report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Function {
    Tx,
    Rx,
    Ping,
    Pong,
}

#[derive(Parser, Debug)]
#[command(
    name = "ptvmm-pktgen",
    version,
    about = "Packet generator and sink for VALE ports and ptnet devices (netmap pkt-gen options)"
)]
struct Cli {
    /// Interface: a VALE port (vale0:1) or a ptnet device in a guest (ptnet0, /dev/ptnet0).
    #[arg(short = 'i')]
    interface: Option<String>,
    /// Function: tx, rx, ping or pong.
    #[arg(short = 'f', value_enum, default_value = "tx")]
    function: Function,
    /// Frame length in bytes, without CRC.
    #[arg(short = 'l', default_value_t = 60)]
    len: usize,
    /// Packets to send or receive (0 = forever).
    #[arg(short = 'n', default_value_t = 0)]
    count: u64,
    /// Burst (batch) size.
    #[arg(short = 'b', default_value_t = 512)]
    burst: u32,
    /// Rate limit in packets per second (0 = none).
    #[arg(short = 'R', default_value_t = 0)]
    rate: u64,
    /// Report interval in milliseconds.
    #[arg(short = 'T', default_value_t = 1000)]
    report_ms: u64,
    /// Seconds to wait for the link before starting.
    #[arg(short = 'w', default_value_t = 0)]
    wait_link: u64,
    /// Source IP[:port].
    #[arg(short = 's', default_value = "10.0.0.1")]
    src_ip: String,
    /// Destination IP[:port].
    #[arg(short = 'd', default_value = "10.1.0.1")]
    dst_ip: String,
    /// Source MAC (default 02:00 followed by the process id).
    #[arg(short = 'S')]
    src_mac: Option<String>,
    /// Destination MAC.
    #[arg(short = 'D', default_value = "ff:ff:ff:ff:ff:ff")]
    dst_mac: String,
    /// rx: count frames without reading or verifying them (netmap pkt-gen's default).
    #[arg(long)]
    no_verify: bool,
    /// Run the single-process copy loop between two regions instead (no interface).
    #[arg(long)]
    copy_loop: bool,
    /// ptnet devices only: sync through the CSB from user space (ABI §2) instead of the
    /// TXSYNC/RXSYNC ioctls, spin instead of poll(), kick by outl only when the host asks
    /// (needs root for ioperm). Prints the kicks and interrupts per 1000 packets at the end.
    #[arg(long)]
    busy_poll: bool,
    /// VALE ports only: open the port lossless, so that a full receiver holds this sender
    /// (it waits) instead of dropping its frames (docs/vale.md, "Lossless ports").
    #[arg(long)]
    lossless: bool,
    /// VALE ports only: virtio-net header length on the port's frames, 0, 10 or 12
    /// (netmap's -H): tx and ping send a zero header (no offload) in front of each frame,
    /// rx and pong expect one; the switch converts for ports of other lengths.
    #[arg(short = 'H', default_value_t = 0)]
    vnet_hdr: u32,
}

/// Prints an interval line every `period`.
struct Reporter {
    period: Duration,
    last: Instant,
    pkts: u64,
    bytes: u64,
    events: u64,
}

impl Reporter {
    fn new(period: Duration) -> Self {
        Reporter {
            period,
            last: Instant::now(),
            pkts: 0,
            bytes: 0,
            events: 0,
        }
    }

    fn tick(&mut self, pkts: u64, bytes: u64, events: u64) {
        let now = Instant::now();
        let el = now - self.last;
        if el >= self.period {
            println!(
                "{}",
                report::interval_line(
                    pkts - self.pkts,
                    bytes - self.bytes,
                    events - self.events,
                    el
                )
            );
            (self.last, self.pkts, self.bytes, self.events) = (now, pkts, bytes, events);
        }
    }

    fn until_next(&self) -> Duration {
        self.period.saturating_sub(self.last.elapsed())
    }
}

fn endpoints(cli: &Cli) -> Result<Endpoints> {
    let (src_ip, sp) = frame::parse_ip_port(&cli.src_ip).map_err(anyhow::Error::msg)?;
    let (dst_ip, dp) = frame::parse_ip_port(&cli.dst_ip).map_err(anyhow::Error::msg)?;
    let pid = std::process::id().to_be_bytes();
    let src_mac = match &cli.src_mac {
        Some(m) => frame::parse_mac(m).map_err(anyhow::Error::msg)?,
        None => [0x02, 0x00, pid[0], pid[1], pid[2], pid[3]],
    };
    let dst_mac = frame::parse_mac(&cli.dst_mac).map_err(anyhow::Error::msg)?;
    Ok(Endpoints {
        src_mac,
        dst_mac,
        src_ip,
        dst_ip,
        src_port: sp.unwrap_or(1234),
        dst_port: dp.unwrap_or(1234),
    })
}

fn validate(cli: &Cli) -> Result<()> {
    let max = RegionConfig::default().buf_size as usize;
    if !(frame::HEADERS..=max).contains(&cli.len) {
        bail!(
            "frame length {} out of range ({}..={max})",
            cli.len,
            frame::HEADERS
        );
    }
    if cli.burst == 0 {
        bail!("burst must be at least 1");
    }
    if cli.report_ms == 0 {
        bail!("report interval must be at least 1 ms");
    }
    if !cli.copy_loop && cli.interface.is_none() {
        bail!("missing interface (-i valeX:Y or -i ptnetN)");
    }
    if cli.busy_poll {
        match cli.interface.as_deref().map(Target::parse) {
            Some(Target::Ptnet(_)) if !cli.copy_loop => {}
            _ => bail!(
                "--busy-poll needs a ptnet device (-i ptnetN): VALE ports sync in user space already"
            ),
        }
    }
    if cli.lossless {
        match cli.interface.as_deref().map(Target::parse) {
            Some(Target::Vale(_)) if !cli.copy_loop => {}
            _ => bail!("--lossless needs a VALE port (-i valeX:Y)"),
        }
    }
    if !vale::vnet::HDR_LENS.contains(&cli.vnet_hdr) {
        bail!(
            "-H {}: the virtio-net header is 0, 10 or 12 bytes",
            cli.vnet_hdr
        );
    }
    if cli.vnet_hdr != 0 {
        match cli.interface.as_deref().map(Target::parse) {
            Some(Target::Vale(_)) if !cli.copy_loop => {}
            _ => {
                bail!("-H needs a VALE port (-i valeX:Y); a ptnet device's driver sets its header")
            }
        }
        if cli.len + cli.vnet_hdr as usize > max {
            bail!(
                "frame length {} plus a {}-byte header exceeds the {max}-byte buffers",
                cli.len,
                cli.vnet_hdr
            );
        }
    }
    Ok(())
}

/// Slots published to the TX ring that the port has not sent yet (a held lossless port).
fn tx_pending(port: &dyn Backend, s: &netmap::SyncResult) -> u32 {
    let r = port.tx_ring();
    ring::distance(s.hwcur, r.head(), r.num_slots())
}

/// Sends `cli.count` frames (or forever), `burst` per txsync, paced by `-R`.
fn tx(port: &dyn Backend, cli: &Cli, ep: &Endpoints) -> Result<()> {
    let f = with_header(cli, frame::build(ep, cli.len));
    let r = port.tx_ring();
    let n = r.num_slots();
    let mem = port.mem();
    let bufs = port.bufs();
    for i in 0..n {
        let s = r.slot(i);
        if let Some(o) = buf_offset(&bufs, s.buf_idx()) {
            mem.write_bytes(o, &f);
        }
    }
    let len = f.len() as u16;
    let (mut sent, mut events) = (0u64, 0u64);
    let mut rep = Reporter::new(Duration::from_millis(cli.report_ms));
    let start = Instant::now();
    while !stopped() && (cli.count == 0 || sent < cli.count) {
        let mut head = r.head();
        let mut want = ring::space(head, r.tail(), n).min(cli.burst) as u64;
        if cli.count > 0 {
            want = want.min(cli.count - sent);
        }
        if cli.rate > 0 {
            let due = (start.elapsed().as_secs_f64() * cli.rate as f64) as u64;
            let allowed = due.saturating_sub(sent);
            if allowed == 0 {
                let next = Duration::from_secs_f64((sent + 1) as f64 / cli.rate as f64);
                std::thread::sleep(
                    next.saturating_sub(start.elapsed())
                        .min(Duration::from_millis(1)),
                );
                rep.tick(sent, sent * cli.len as u64, events);
                continue;
            }
            want = want.min(allowed);
        }
        for _ in 0..want {
            r.slot(head).set_len_flags(len, 0);
            head = ring::next(head, n);
        }
        r.set_cur(head);
        r.set_head(head);
        // A lossless port may send fewer slots than published: they stay in the ring (its
        // tail stops short of them), and the next round's space accounts for that.
        port.txsync()?;
        if want == 0 {
            // Ring full: sleep until the peer frees slots (no-op where txsync forwards).
            port.tx_wait(
                rep.until_next()
                    .clamp(Duration::from_millis(1), Duration::from_millis(100)),
            )?;
        }
        sent += want;
        events += 1;
        rep.tick(sent, sent * cli.len as u64, events);
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
        let left = tx_pending(port, &s) as u64;
        if left > 0 {
            eprintln!("ptvmm-pktgen: {left} frames still held at exit, not sent");
            sent -= left;
        }
    }
    let el = start.elapsed();
    println!(
        "{}",
        report::final_lines("Sent", sent, sent * cli.len as u64, events, el)
    );
    notifications(port, sent);
    Ok(())
}

/// Receives, verifies and counts until `cli.count` frames (or a signal).
fn rx(port: &dyn Backend, cli: &Cli) -> Result<()> {
    let r = port.rx_ring();
    let n = r.num_slots();
    let bufs = port.bufs();
    let mem = port.mem();
    let mut buf = vec![0u8; bufs.objsz as usize];
    let hdr = cli.vnet_hdr as usize;
    let (mut pkts, mut bytes, mut events, mut good, mut bad) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut rep = Reporter::new(Duration::from_millis(cli.report_ms));
    let (mut first, mut last) = (None, Instant::now());
    let mut idle_since: Option<Instant> = None;
    let mut in_chain = false;
    // After a signal, one last pass drains what already arrived.
    let mut draining = false;
    while cli.count == 0 || pkts < cli.count {
        if draining {
            break;
        }
        draining = stopped();
        let s = port.rxsync()?;
        let mut h = r.head();
        if h == s.hwtail {
            if draining {
                break;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < Duration::from_micros(50) {
                std::hint::spin_loop();
            } else {
                let t = rep
                    .until_next()
                    .clamp(Duration::from_millis(1), Duration::from_millis(100));
                port.rx_wait(s.hwtail, t)?;
            }
            rep.tick(pkts, bytes, events);
            continue;
        }
        idle_since = None;
        // Prefetch the buffers a few slots ahead: they were just written on another core.
        const AHEAD: u32 = 8;
        let avail = ring::distance(h, s.hwtail, n);
        if !cli.no_verify {
            for k in 0..AHEAD.min(avail) {
                if let Some(o) = buf_offset(&bufs, r.slot(ring::add(h, k, n)).buf_idx()) {
                    mem.prefetch(o);
                }
            }
        }
        let mut k = 0;
        while h != s.hwtail && (cli.count == 0 || pkts < cli.count) {
            if !cli.no_verify && k + AHEAD < avail {
                if let Some(o) = buf_offset(&bufs, r.slot(ring::add(h, AHEAD, n)).buf_idx()) {
                    mem.prefetch(o);
                }
            }
            k += 1;
            let (idx, len, flags) = r.slot(h).load();
            bytes += (len as u64).saturating_sub(hdr as u64);
            let more = flags & netmap::abi::slot::F_MOREFRAG != 0;
            if !more {
                pkts += 1;
                let single = !in_chain;
                let ok = cli.no_verify
                    || single
                        && len as usize <= buf.len()
                        && len as usize >= hdr
                        && buf_offset(&bufs, idx).is_some_and(|o| {
                            mem.read_bytes(o, &mut buf[..len as usize]);
                            frame::verify(&buf[hdr..len as usize]).is_ok()
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
        r.set_cur(h);
        r.set_head(h);
        let now = Instant::now();
        first.get_or_insert(now);
        last = now;
        events += 1;
        rep.tick(pkts, bytes, events);
    }
    port.rxsync()?;
    let el = first.map_or(Duration::ZERO, |f| last - f);
    println!(
        "{}",
        report::final_lines("Received", pkts, bytes, events, el)
    );
    println!("Verified {good} good {bad} bad");
    notifications(port, pkts);
    Ok(())
}

/// Sends one frame per round and waits for any reply, reporting round-trip times.
fn ping(port: &dyn Backend, cli: &Cli, ep: &Endpoints) -> Result<()> {
    let f = with_header(cli, frame::build(ep, cli.len));
    let (tr, rr) = (port.tx_ring(), port.rx_ring());
    let (tn, rn) = (tr.num_slots(), rr.num_slots());
    let mem = port.mem();
    let bufs = port.bufs();
    let mut rep = Reporter::new(Duration::from_millis(cli.report_ms));
    let (mut sent, mut replies, mut rtt_sum, mut rtt_min, mut rtt_max) =
        (0u64, 0u64, 0u128, u128::MAX, 0u128);
    let start = Instant::now();
    while !stopped() && (cli.count == 0 || sent < cli.count) {
        let h = tr.head();
        let s = tr.slot(h);
        let Some(o) = buf_offset(&bufs, s.buf_idx()) else {
            bail!("TX slot with an invalid buffer")
        };
        mem.write_bytes(o, &f);
        s.set_len_flags(f.len() as u16, 0);
        let t0 = Instant::now();
        tr.set_cur(ring::next(h, tn));
        tr.set_head(ring::next(h, tn));
        port.txsync()?;
        sent += 1;
        // Wait up to one second for a reply.
        while t0.elapsed() < Duration::from_secs(1) && !stopped() {
            let st = port.rxsync()?;
            let rh = rr.head();
            if rh != st.hwtail {
                let rtt = t0.elapsed().as_nanos();
                (rtt_sum, rtt_min, rtt_max) = (rtt_sum + rtt, rtt_min.min(rtt), rtt_max.max(rtt));
                replies += 1;
                let d = ring::distance(rh, st.hwtail, rn);
                rr.set_cur(ring::add(rh, d, rn));
                rr.set_head(ring::add(rh, d, rn));
                break;
            }
            port.rx_wait(st.hwtail, Duration::from_millis(10))?;
        }
        if rep.last.elapsed() >= rep.period && replies > 0 {
            println!(
                "ping: {replies} replies of {sent}, RTT min/avg/max {:.1}/{:.1}/{:.1} us",
                rtt_min as f64 / 1e3,
                rtt_sum as f64 / replies as f64 / 1e3,
                rtt_max as f64 / 1e3
            );
        }
        rep.tick(sent, sent * cli.len as u64, sent);
    }
    if replies > 0 {
        println!(
            "ping: {replies} replies of {sent}, RTT min/avg/max {:.1}/{:.1}/{:.1} us",
            rtt_min as f64 / 1e3,
            rtt_sum as f64 / replies as f64 / 1e3,
            rtt_max as f64 / 1e3
        );
    }
    let el = start.elapsed();
    println!(
        "{}",
        report::final_lines("Sent", sent, sent * cli.len as u64, sent, el)
    );
    notifications(port, sent + replies);
    Ok(())
}

/// Answers every received frame with its reply (addresses and ports swapped).
fn pong(port: &dyn Backend, cli: &Cli) -> Result<()> {
    let (tr, rr) = (port.tx_ring(), port.rx_ring());
    let (tn, rn) = (tr.num_slots(), rr.num_slots());
    let mem = port.mem();
    let bufs = port.bufs();
    let mut buf = vec![0u8; bufs.objsz as usize];
    let (mut replies, mut bytes, mut events) = (0u64, 0u64, 0u64);
    let mut rep = Reporter::new(Duration::from_millis(cli.report_ms));
    let start = Instant::now();
    while !stopped() && (cli.count == 0 || replies < cli.count) {
        let st = port.rxsync()?;
        let mut rh = rr.head();
        if rh == st.hwtail {
            let t = rep
                .until_next()
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            port.rx_wait(st.hwtail, t)?;
            rep.tick(replies, bytes, events);
            continue;
        }
        let mut th = tr.head();
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
        rep.tick(replies, bytes, events);
    }
    let el = start.elapsed();
    println!(
        "{}",
        report::final_lines("Sent", replies, bytes, events, el)
    );
    notifications(port, 2 * replies);
    Ok(())
}

/// `f` with the port's virtio-net header in front (`-H`; zeros: no offload asked).
fn with_header(cli: &Cli, f: Vec<u8>) -> Vec<u8> {
    let mut out = vec![0u8; cli.vnet_hdr as usize];
    if cli.vnet_hdr == 12 {
        out[10] = 1; // num_buffers
    }
    out.extend_from_slice(&f);
    out
}

/// The reference limit: copy frames between two private regions in one thread.
fn copy_loop(cli: &Cli, ep: &Endpoints) -> Result<()> {
    let f = frame::build(ep, cli.len);
    let mut c = CopyLoop::new(&f);
    let burst = cli.burst.min(1023);
    let (mut pkts, mut bytes, mut events) = (0u64, 0u64, 0u64);
    let mut rep = Reporter::new(Duration::from_millis(cli.report_ms));
    let start = Instant::now();
    while !stopped() && (cli.count == 0 || pkts < cli.count) {
        let b = if cli.count > 0 {
            (burst as u64).min(cli.count - pkts) as u32
        } else {
            burst
        };
        bytes += c.run_batch(b);
        pkts += b as u64;
        events += 1;
        rep.tick(pkts, bytes, events);
    }
    println!(
        "{}",
        report::final_lines("Copied", pkts, bytes, events, start.elapsed())
    );
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    validate(&cli)?;
    let ep = endpoints(&cli)?;
    pktgen::cli::install_stop_signals();
    if cli.copy_loop {
        return copy_loop(&cli, &ep);
    }
    let ifname = cli.interface.clone().unwrap_or_default();
    let opts = interface::OpenOptions {
        busy_poll: cli.busy_poll,
        lossless: cli.lossless,
        vnet_hdr_len: cli.vnet_hdr,
    };
    let port = interface::open(&ifname, opts)?;
    let port = port.as_ref();
    if cli.len + cli.vnet_hdr as usize > port.bufs().objsz as usize {
        bail!(
            "frame length {} larger than the buffers of {ifname} ({})",
            cli.len,
            port.bufs().objsz
        );
    }
    if cli.wait_link > 0 {
        std::thread::sleep(Duration::from_secs(cli.wait_link));
    }
    let (txr, rxr, slots) = port.shape();
    eprintln!(
        "ptvmm-pktgen: {} ready ({txr} tx / {rxr} rx rings, {slots} slots, function {:?})",
        port.name(),
        cli.function
    );
    match cli.function {
        Function::Tx => tx(port, &cli, &ep),
        Function::Rx => rx(port, &cli),
        Function::Ping => ping(port, &cli, &ep),
        Function::Pong => pong(port, &cli),
    }
}

/// The notification counts after a run of `pkts` packets (ptnet: interrupts of the NIC's
/// vectors; busy-poll: the kicks this process rang), before the port closes.
fn notifications(port: &dyn Backend, pkts: u64) {
    let per_k = |v: u64| v as f64 * 1000.0 / pkts.max(1) as f64;
    if let Some(k) = port.kicks() {
        println!("Kicks {k} ({:.3} per 1000 packets)", per_k(k));
    }
    if let Some(i) = port.interrupts() {
        println!("Interrupts {i} ({:.3} per 1000 packets)", per_k(i));
    }
}

fn main() -> ExitCode {
    pktgen::cli::main_with("ptvmm-pktgen", run)
}
