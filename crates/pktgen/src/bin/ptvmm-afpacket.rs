//! ptvmm-afpacket: the kernel-only baseline of `scripts/bench-uplink` (issue 10) — pkt-gen's
//! frames sent or received on a host interface through AF_PACKET sockets with mmap'ed
//! TPACKET_V3 rings, the very sockets of the `packet` uplink (`uplink::packet`), with no VALE
//! switch and no forwarding process in between. `-f tx` sends the frame `ptvmm-pktgen -f tx`
//! sends (UDP 10.0.0.1:1234 -> 10.1.0.1:1234, broadcast MAC), `-f rx` counts and verifies what
//! arrives on the interface (promiscuous; its own transmissions are not seen). Both print
//! pkt-gen's `Sent|Received` summary lines, so scripts parse them alike.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use pktgen::cli::stopped;
use pktgen::frame::{self, Endpoints};
use pktgen::report;
use uplink::{packet, sys};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Function {
    Tx,
    Rx,
}

#[derive(Parser, Debug)]
#[command(
    name = "ptvmm-afpacket",
    version,
    about = "pkt-gen's frames over AF_PACKET (TPACKET_V3 rings) on a host interface: the kernel-only baseline"
)]
struct Cli {
    /// Host interface (e.g. a veth end).
    #[arg(short = 'i')]
    interface: String,
    /// Function: tx or rx.
    #[arg(short = 'f', value_enum, default_value = "tx")]
    function: Function,
    /// Frame length in bytes, without CRC.
    #[arg(short = 'l', default_value_t = 60)]
    len: usize,
    /// Packets to send or receive (0 = until SIGINT).
    #[arg(short = 'n', default_value_t = 0)]
    count: u64,
    /// tx: rate limit in packets per second (0 = none).
    #[arg(short = 'R', default_value_t = 0)]
    rate: u64,
    /// rx: count frames without verifying them.
    #[arg(long)]
    no_verify: bool,
}

/// Longest wait in poll before the stop flag is looked at again.
const TICK: Duration = Duration::from_millis(50);

fn tx(h: &mut uplink::Host, cli: &Cli) -> Result<()> {
    let f = frame::build(&Endpoints::default(), cli.len);
    let (mut sent, mut events) = (0u64, 0u64);
    let start = Instant::now();
    while !stopped() && (cli.count == 0 || sent < cli.count) {
        if cli.rate > 0 {
            let due = (start.elapsed().as_secs_f64() * cli.rate as f64) as u64;
            if sent >= due {
                h.tx.flush().context("send")?;
                let next = Duration::from_secs_f64((sent + 1) as f64 / cli.rate as f64);
                std::thread::sleep(
                    next.saturating_sub(start.elapsed())
                        .min(Duration::from_millis(1)),
                );
                continue;
            }
        }
        if h.tx.send(&f).context("queue a frame")? {
            sent += 1;
        } else {
            // The ring is full: make its frames leave, then wait for a free slot.
            h.tx.flush().context("send")?;
            events += 1;
            sys::poll1(h.tx.fd(), libc::POLLOUT, TICK).context("poll")?;
        }
    }
    h.tx.flush().context("send")?;
    println!(
        "{}",
        report::final_lines("Sent", sent, sent * cli.len as u64, events, start.elapsed())
    );
    Ok(())
}

fn rx(h: &mut uplink::Host, cli: &Cli) -> Result<()> {
    let (mut pkts, mut bytes, mut events, mut good, mut bad) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut first, mut last) = (None, Instant::now());
    // After a signal, one last pass drains what already arrived.
    let mut draining = false;
    while !draining && (cli.count == 0 || pkts < cli.count) {
        draining = stopped();
        let n =
            h.rx.recv(4096, &mut |fr: &[u8], _tag| {
                pkts += 1;
                bytes += fr.len() as u64;
                if cli.no_verify || frame::verify(fr).is_ok() {
                    good += 1;
                } else {
                    bad += 1;
                }
            })
            .context("receive")?;
        if n == 0 {
            if !draining {
                sys::poll1(h.rx.fd(), libc::POLLIN, TICK).context("poll")?;
            }
            continue;
        }
        let now = Instant::now();
        first.get_or_insert(now);
        last = now;
        events += 1;
    }
    let el = first.map_or(Duration::ZERO, |f| last - f);
    println!(
        "{}",
        report::final_lines("Received", pkts, bytes, events, el)
    );
    println!("Verified {good} good {bad} bad");
    println!(
        "Kernel drops {} (the RX ring was full)",
        h.rx.kernel_drops()
    );
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let ifname = cli.interface.as_str();
    if !sys::valid_ifname(ifname) {
        bail!("invalid interface name {ifname:?}");
    }
    let Some(ifindex) = sys::ifindex(ifname) else {
        bail!("unknown interface {ifname} (see `ip link`)")
    };
    if sys::if_flags(ifname).context("reading the interface flags")? & libc::IFF_UP as u32 == 0 {
        bail!("interface {ifname} is down (ip link set {ifname} up)");
    }
    let mtu = sys::if_mtu(ifname).context("reading the MTU")?;
    let max = (mtu as usize + 14).min(frame::MAX_LEN);
    if !(frame::HEADERS..=max).contains(&cli.len) {
        bail!(
            "frame length {} out of range for {ifname} ({}..={max})",
            cli.len,
            frame::HEADERS
        );
    }
    pktgen::cli::install_stop_signals();
    let mut h = packet::open(ifname, ifindex, mtu)?;
    eprintln!(
        "ptvmm-afpacket: {ifname} ready (AF_PACKET, TPACKET_V3 rings, function {:?})",
        cli.function
    );
    match cli.function {
        Function::Tx => tx(&mut h, &cli),
        Function::Rx => rx(&mut h, &cli),
    }
}

fn main() -> ExitCode {
    pktgen::cli::main_with("ptvmm-afpacket", run)
}
