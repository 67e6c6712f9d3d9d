//! ptvmm-pktgen's command line (netmap pkt-gen's options, in clap) and its checks.

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use netmap::RegionConfig;

use crate::flows::{self, Range};
use crate::frags::FragOpts;
use crate::frame::{self, Endpoints};
use crate::interface::Target;

/// What a run does (`-f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Function {
    Tx,
    Rx,
    Ping,
    Pong,
    /// tx with a sequence number per flow in the payload.
    Txseq,
    /// rx counting loss, reordering and duplicates per flow from those numbers.
    Rxseq,
}

impl Function {
    /// The name `-f` takes, for the JSON summary.
    pub fn name(self) -> &'static str {
        match self {
            Function::Tx => "tx",
            Function::Rx => "rx",
            Function::Ping => "ping",
            Function::Pong => "pong",
            Function::Txseq => "txseq",
            Function::Rxseq => "rxseq",
        }
    }
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "ptvmm-pktgen",
    version,
    about = "Packet generator and sink for VALE ports and ptnet devices (netmap pkt-gen options)"
)]
pub struct Cli {
    /// Interface: a VALE port (vale0:1) or a ptnet device in a guest (ptnet0, /dev/ptnet0).
    #[arg(short = 'i')]
    pub interface: Option<String>,
    /// Function: tx, rx, ping, pong, txseq or rxseq.
    #[arg(short = 'f', value_enum, default_value = "tx")]
    pub function: Function,
    /// Frame length in bytes, without CRC.
    #[arg(short = 'l', default_value_t = 60)]
    pub len: usize,
    /// Packets to send or receive (0 = forever); with -p, for all threads together.
    #[arg(short = 'n', default_value_t = 0)]
    pub count: u64,
    /// Burst (batch) size.
    #[arg(short = 'b', default_value_t = 512)]
    pub burst: u32,
    /// Rate limit in packets per second (0 = none); with -p, for all threads together.
    #[arg(short = 'R', default_value_t = 0)]
    pub rate: u64,
    /// Report interval in milliseconds.
    #[arg(short = 'T', default_value_t = 1000)]
    pub report_ms: u64,
    /// Seconds to wait for the link before starting.
    #[arg(short = 'w', default_value_t = 0)]
    pub wait_link: u64,
    /// Source IP[-IP][:PORT[-PORT]] (port default 1234): tx and txseq cycle through the
    /// -s and -d ranges frame by frame (source port fastest, then source IP, then the
    /// destination's port and IP); other functions use the first address and port.
    #[arg(short = 's', default_value = "10.0.0.1")]
    pub src_ip: String,
    /// Destination IP[-IP][:PORT[-PORT]] (port default 1234).
    #[arg(short = 'd', default_value = "10.1.0.1")]
    pub dst_ip: String,
    /// tx: a random source IP and port within the -s range for every frame (the -d range
    /// then moves one step per frame).
    #[arg(short = 'z')]
    pub random_src: bool,
    /// tx: a random destination IP and port within the -d range for every frame (the -s
    /// range still cycles).
    #[arg(short = 'Z')]
    pub random_dst: bool,
    /// tx: send the frames of this pcap file (Ethernet) in a loop, in file order and as
    /// captured, instead of built ones (-l, -s, -d, -S and -D do not apply).
    #[arg(short = 'P', value_name = "FILE.pcap")]
    pub pcap: Option<std::path::PathBuf>,
    /// Source MAC (default 02:00 followed by the process id).
    #[arg(short = 'S')]
    pub src_mac: Option<String>,
    /// Destination MAC.
    #[arg(short = 'D', default_value = "ff:ff:ff:ff:ff:ff")]
    pub dst_mac: String,
    /// rx: count frames without reading or verifying them (netmap pkt-gen's default).
    #[arg(long)]
    pub no_verify: bool,
    /// Run the single-process copy loop between two regions instead (no interface).
    #[arg(long)]
    pub copy_loop: bool,
    /// ptnet devices only: sync through the CSB from user space (ABI §2) instead of the
    /// TXSYNC/RXSYNC ioctls, spin instead of poll(), kick by outl only when the host asks
    /// (needs root for ioperm). Prints the kicks and interrupts per 1000 packets at the end.
    #[arg(long)]
    pub busy_poll: bool,
    /// VALE ports only: open the port lossless, so that a full receiver holds this sender
    /// (it waits) instead of dropping its frames (docs/vale.md, "Lossless ports").
    #[arg(long)]
    pub lossless: bool,
    /// VALE ports only: slots in each TX and RX ring of the port this pkt-gen creates
    /// (4..=32768; default 1024, VALE's; opening a persistent port fails unless N is its count).
    /// A bigger RX ring lets a receiver that is descheduled for a while miss nothing: at
    /// 20 Kpps of one-slot frames 1024 slots last 51 ms, 8192 slots 410 ms.
    #[arg(long, value_name = "N")]
    pub slots: Option<u32>,
    /// VALE ports only: virtio-net header length on the port's frames, 0, 10 or 12
    /// (netmap's -H): tx and ping send a zero header (no offload) in front of each frame,
    /// rx and pong expect one; the switch converts for ports of other lengths.
    #[arg(short = 'H', default_value_t = 0)]
    pub vnet_hdr: u32,
    /// Print numbers without unit prefixes (netmap's -N): `14880952 pps`, not `14.881 Mpps`.
    #[arg(short = 'N')]
    pub no_prefix: bool,
    /// At the end, print the mean and standard deviation of the per-interval packet rate.
    #[arg(short = 'A')]
    pub rate_stats: bool,
    /// Count Ethernet framing and CRC in bit/s: 24 bytes more per frame (preamble 8,
    /// inter-frame gap 12, CRC 4).
    #[arg(short = 'B')]
    pub framing: bool,
    /// Threads, one ring each (netmap's -p): a VALE port is opened with this many TX and
    /// RX rings, a ptnet device registered once per thread for TX and RX ring i (the NIC
    /// needs that many); tx splits -n and -R evenly, rx stops when all threads together got -n.
    #[arg(short = 'p', default_value_t = 1)]
    pub threads: u32,
    /// Pin thread i to CPU (FIRST_CPU + i) modulo -c (netmap's -a).
    #[arg(short = 'a', value_name = "FIRST_CPU")]
    pub affinity: Option<usize>,
    /// CPUs the -a pinning cycles through (default: all online).
    #[arg(short = 'c', value_name = "CPUS")]
    pub cpus: Option<usize>,
    /// Print one JSON object per line instead of text: every report line and the summary.
    #[arg(long)]
    pub json: bool,
    /// tx, txseq: send each frame over NUM_FRAGS slots chained with NS_MOREFRAG (netmap's
    /// -F): the first NUM_FRAGS-1 carry len/NUM_FRAGS bytes (rounded down), the last the
    /// rest; -b still counts frames. The bytes split are -H's header and the frame.
    #[arg(short = 'F', value_name = "NUM_FRAGS")]
    pub frags: Option<u32>,
    /// tx, txseq: at most FRAG_SIZE bytes per slot (netmap's -M); alone, a frame takes as
    /// many slots as that needs, all but the last full. With -F: -F's split, refused if a
    /// slot would exceed FRAG_SIZE. With -F or -M, -l may exceed a buffer (up to 9000) as
    /// long as every slot fits one; at most 64 slots per frame, the first holding the
    /// Ethernet header.
    #[arg(short = 'M', value_name = "FRAG_SIZE")]
    pub frag_size: Option<u32>,
}

impl Cli {
    /// `-F` and `-M`.
    pub fn frag_opts(&self) -> FragOpts {
        FragOpts {
            frags: self.frags,
            size: self.frag_size,
        }
    }

    /// Frame bytes that `-B` adds to each frame in bit/s figures.
    pub fn framing_bytes(&self) -> u64 {
        if self.framing {
            24
        } else {
            0
        }
    }
}

/// The `-s` and `-d` ranges (ports default to 1234).
pub fn ranges(cli: &Cli) -> Result<(Range, Range)> {
    let src = Range::parse(&cli.src_ip, 1234).map_err(anyhow::Error::msg)?;
    let dst = Range::parse(&cli.dst_ip, 1234).map_err(anyhow::Error::msg)?;
    Ok((src, dst))
}

/// The first frame's addresses from `-s -d -S -D` (source MAC default: 02:00 + the pid's
/// bytes); tx moves through the ranges from there.
pub fn endpoints(cli: &Cli) -> Result<Endpoints> {
    let (src, dst) = ranges(cli)?;
    let pid = std::process::id().to_be_bytes();
    let src_mac = match &cli.src_mac {
        Some(m) => frame::parse_mac(m).map_err(anyhow::Error::msg)?,
        None => [0x02, 0x00, pid[0], pid[1], pid[2], pid[3]],
    };
    let dst_mac = frame::parse_mac(&cli.dst_mac).map_err(anyhow::Error::msg)?;
    let ep = Endpoints {
        src_mac,
        dst_mac,
        ..Endpoints::default()
    };
    Ok(flows::first_endpoints(ep, &src, &dst))
}

/// Refuses option combinations that cannot work, with one line saying why.
pub fn validate(cli: &Cli) -> Result<()> {
    let buf = RegionConfig::default().buf_size as usize;
    let fr = cli.frag_opts();
    // Split over several slots, a frame may be larger than one buffer.
    let max = if fr.active() { frame::MAX_LEN } else { buf };
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
    if cli.threads == 0 {
        bail!("-p: at least 1 thread");
    }
    let online = crate::run::online_cpus();
    if let Some(c) = cli.cpus {
        if !(1..=online).contains(&c) {
            bail!("-c {c}: this machine has {online} online CPUs");
        }
    }
    if cli.cpus.is_some() && cli.affinity.is_none() {
        bail!("-c needs -a FIRST_CPU (pinning is off without it)");
    }
    if let Some(a) = cli.affinity {
        if a >= cli.cpus.unwrap_or(online) {
            bail!(
                "-a {a}: CPUs are numbered 0..{}",
                cli.cpus.unwrap_or(online)
            );
        }
    }
    let target = cli.interface.as_deref().map(Target::parse);
    let vale = matches!(target, Some(Target::Vale(_))) && !cli.copy_loop;
    if cli.busy_poll && !matches!(target, Some(Target::Ptnet(_)) if !cli.copy_loop) {
        bail!(
            "--busy-poll needs a ptnet device (-i ptnetN): VALE ports sync in user space already"
        );
    }
    if cli.lossless && !vale {
        bail!("--lossless needs a VALE port (-i valeX:Y)");
    }
    if let Some(n) = cli.slots {
        if !vale {
            bail!("--slots needs a VALE port (-i valeX:Y): a ptnet device's rings are the NIC's (ptvmm --netmap-slots)");
        }
        if !(netmap::region::MIN_SLOTS..=netmap::region::MAX_SLOTS).contains(&n) {
            bail!(
                "--slots {n}: a ring has {}..={} slots",
                netmap::region::MIN_SLOTS,
                netmap::region::MAX_SLOTS
            );
        }
    }
    if cli.threads > 1 {
        if cli.copy_loop {
            bail!("-p {}: --copy-loop runs in one thread", cli.threads);
        }
        if matches!(cli.function, Function::Ping | Function::Pong) {
            bail!(
                "-p {}: ping and pong run in one thread (as netmap's)",
                cli.threads
            );
        }
    }
    if (cli.random_src || cli.random_dst) && !matches!(cli.function, Function::Tx | Function::Txseq)
    {
        bail!(
            "-z/-Z: random flows are for tx (-f {} uses the first address of -s and -d)",
            cli.function.name()
        );
    }
    if cli.pcap.is_some() {
        if cli.function != Function::Tx || cli.copy_loop {
            bail!("-P replays a file with -f tx on an interface");
        }
        if cli.random_src || cli.random_dst {
            bail!("-P sends the file's frames as they are: -z/-Z do not apply");
        }
        if ranges(cli).is_ok_and(|(s, d)| s.size() > 1 || d.size() > 1) {
            bail!("-P sends the file's frames as they are: -s/-d ranges do not apply");
        }
    }
    if cli.function == Function::Txseq {
        if cli.random_src || cli.random_dst {
            bail!(
                "txseq: -z/-Z draw flows at random, so a flow's frames cannot be numbered in order"
            );
        }
        if cli.len < frame::HEADERS + crate::seq::SEQ_LEN {
            bail!(
                "txseq: frames of at least {} bytes carry the sequence number",
                frame::HEADERS + crate::seq::SEQ_LEN
            );
        }
    }
    if cli.function == Function::Rxseq && cli.no_verify {
        bail!("rxseq reads every frame: --no-verify does not apply");
    }
    if !vale::vnet::HDR_LENS.contains(&cli.vnet_hdr) {
        bail!(
            "-H {}: the virtio-net header is 0, 10 or 12 bytes",
            cli.vnet_hdr
        );
    }
    if cli.vnet_hdr != 0 {
        if !vale {
            bail!("-H needs a VALE port (-i valeX:Y); a ptnet device's driver sets its header");
        }
        if !fr.active() && cli.len + cli.vnet_hdr as usize > max {
            bail!(
                "frame length {} plus a {}-byte header exceeds the {max}-byte buffers",
                cli.len,
                cli.vnet_hdr
            );
        }
    }
    if fr.active() {
        fr.check().map_err(anyhow::Error::msg)?;
        if !matches!(cli.function, Function::Tx | Function::Txseq) || cli.copy_loop {
            bail!(
                "-F/-M shape the frames tx and txseq send (rx and rxseq read chains as they come)"
            );
        }
        if cli.pcap.is_none() {
            let hdr = cli.vnet_hdr as usize;
            fr.split(cli.len + hdr, hdr, buf)
                .map_err(anyhow::Error::msg)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("ptvmm-pktgen").chain(args.iter().copied()))
            .expect("parses")
    }

    #[test]
    fn output_flags_parse() {
        let c = parse(&["-i", "vale0:1", "-N", "-A", "-B", "--json"]);
        assert!(c.no_prefix && c.rate_stats && c.framing && c.json);
        assert_eq!(c.framing_bytes(), 24);
        assert_eq!(parse(&["-i", "vale0:1"]).framing_bytes(), 0);
        validate(&c).unwrap();
    }

    #[test]
    fn fragment_options_parse_and_validate() {
        let c = parse(&["-i", "vale0:1", "-F", "3", "-M", "512", "-l", "1514"]);
        assert_eq!((c.frags, c.frag_size), (Some(3), Some(512)));
        assert!(c.frag_opts().active());
        validate(&c).unwrap();
        assert!(!parse(&["-i", "vale0:1"]).frag_opts().active());
        // Split over slots, a frame may be larger than a buffer, up to frame::MAX_LEN.
        validate(&parse(&["-i", "vale0:1", "-M", "2048", "-l", "9000"])).unwrap();
        validate(&parse(&[
            "-i", "vale0:1", "-F", "2", "-l", "4000", "-H", "12",
        ]))
        .unwrap();
        validate(&parse(&["-i", "vale0:1", "-f", "txseq", "-F", "2"])).unwrap();
        validate(&parse(&["-i", "vale0:1", "-F", "2", "-P", "a.pcap"])).unwrap();
        let e = |args: &[&str]| validate(&parse(args)).unwrap_err().to_string();
        assert!(e(&["-i", "vale0:1", "-l", "4000"]).contains("out of range"));
        assert!(e(&["-i", "vale0:1", "-M", "2048", "-l", "9001"]).contains("out of range"));
        assert_eq!(
            e(&["-i", "vale0:1", "-F", "0"]),
            "-F 0: a frame takes at least 1 slot"
        );
        assert_eq!(
            e(&["-i", "vale0:1", "-M", "0", "-P", "a.pcap"]),
            "-M 0: a slot carries at least 1 byte"
        );
        assert!(e(&["-i", "vale0:1", "-F", "65", "-P", "a.pcap"]).contains("at most 64 slots"));
        assert!(e(&["-i", "vale0:1", "-F", "70", "-l", "1514"]).contains("at most 64 slots"));
        assert!(e(&["-i", "vale0:1", "-M", "100", "-l", "9000"]).contains("90 slots"));
        assert!(e(&["-i", "vale0:1", "-M", "13"]).contains("Ethernet header"));
        assert!(e(&["-i", "vale0:1", "-M", "20", "-H", "10"]).contains("after -H's 10"));
        assert!(e(&["-i", "vale0:1", "-F", "2", "-l", "9000"]).contains("4500 bytes does not fit"));
        for f in ["rx", "rxseq", "ping", "pong"] {
            let m = e(&["-i", "vale0:1", "-f", f, "-M", "512"]);
            assert!(m.contains("shape the frames tx and txseq send"), "{f}: {m}");
        }
        let m = e(&["--copy-loop", "-F", "2"]);
        assert!(m.contains("shape the frames tx and txseq send"), "{m}");
        assert!(parse_err(&["-i", "vale0:1", "-F", "-1"]).contains("-1"));
        assert!(parse_err(&["-i", "vale0:1", "-M", "x"]).contains("x"));
    }

    fn parse_err(args: &[&str]) -> String {
        Cli::try_parse_from(std::iter::once("ptvmm-pktgen").chain(args.iter().copied()))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn ranges_start_the_endpoints() {
        let c = parse(&[
            "-i",
            "v:1",
            "-s",
            "10.0.0.5-10.0.0.9:7-9",
            "-d",
            "10.2.0.1",
            "-z",
        ]);
        assert!(c.random_src && !c.random_dst);
        let ep = endpoints(&c).unwrap();
        assert_eq!((ep.src_ip.to_string(), ep.src_port), ("10.0.0.5".into(), 7));
        assert_eq!(
            (ep.dst_ip.to_string(), ep.dst_port),
            ("10.2.0.1".into(), 1234)
        );
    }

    #[test]
    fn refusals_say_why() {
        let e = validate(&parse(&["-i", "ptnet0", "--lossless"])).unwrap_err();
        assert!(
            e.to_string().contains("--lossless needs a VALE port"),
            "{e}"
        );
        let e = validate(&parse(&["-i", "vale0:1", "--busy-poll"])).unwrap_err();
        assert!(e.to_string().contains("--busy-poll needs a ptnet"), "{e}");
        let e = validate(&parse(&["-i", "vale0:1", "-H", "11"])).unwrap_err();
        assert!(e.to_string().contains("0, 10 or 12"), "{e}");
        validate(&parse(&["-i", "ptnet0", "-p", "2"])).unwrap();
        let e = validate(&parse(&["--copy-loop", "-p", "2"])).unwrap_err();
        assert!(
            e.to_string().contains("--copy-loop runs in one thread"),
            "{e}"
        );
        let e = validate(&parse(&["-i", "vale0:1", "-p", "2", "-f", "ping"])).unwrap_err();
        assert!(e.to_string().contains("one thread"), "{e}");
        let e = validate(&parse(&["-i", "vale0:1", "-p", "0"])).unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let e = validate(&parse(&["-i", "vale0:1", "-a", "100000"])).unwrap_err();
        assert!(e.to_string().contains("CPUs are numbered"), "{e}");
        let e = validate(&parse(&["-i", "vale0:1", "-c", "1"])).unwrap_err();
        assert!(e.to_string().contains("-c needs -a"), "{e}");
        validate(&parse(&["-i", "vale0:1", "-p", "4", "-a", "0", "-c", "1"])).unwrap();
        let e = endpoints(&parse(&["-i", "vale0:1", "-s", "10.0.0.9-10.0.0.1"])).unwrap_err();
        assert!(e.to_string().contains("empty address range"), "{e}");
        let e = endpoints(&parse(&["-i", "vale0:1", "-d", "10.0.0.1:65536"])).unwrap_err();
        assert!(e.to_string().contains("port 65536 above 65535"), "{e}");
        let e = validate(&parse(&["-i", "vale0:1", "-f", "rx", "-z"])).unwrap_err();
        assert!(e.to_string().contains("random flows are for tx"), "{e}");
        validate(&parse(&["-i", "vale0:1", "-f", "tx", "-z", "-Z"])).unwrap();
        let e = validate(&parse(&["-i", "vale0:1", "-f", "txseq", "-Z"])).unwrap_err();
        assert!(e.to_string().contains("at random"), "{e}");
        let e = validate(&parse(&["-i", "vale0:1", "-f", "txseq", "-l", "47"])).unwrap_err();
        assert!(e.to_string().contains("at least 48 bytes"), "{e}");
        let e = validate(&parse(&["-i", "vale0:1", "-f", "rx", "-P", "a.pcap"])).unwrap_err();
        assert!(
            e.to_string().contains("-P replays a file with -f tx"),
            "{e}"
        );
        let e = validate(&parse(&["-i", "vale0:1", "-P", "a.pcap", "-Z"])).unwrap_err();
        assert!(e.to_string().contains("-z/-Z do not apply"), "{e}");
        let e = validate(&parse(&["-i", "vale0:1", "-P", "a", "-s", "10.0.0.1:1-2"])).unwrap_err();
        assert!(e.to_string().contains("ranges do not apply"), "{e}");
        validate(&parse(&[
            "-i", "vale0:1", "-P", "a.pcap", "-p", "2", "-H", "10",
        ]))
        .unwrap();
        let e = validate(&parse(&["-i", "vale0:1", "-f", "rxseq", "--no-verify"])).unwrap_err();
        assert!(e.to_string().contains("--no-verify"), "{e}");
        let e = validate(&parse(&["-i", "vale0:1", "-l", "41"])).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }

    #[test]
    fn slots_only_for_vale_ports_and_in_range() {
        let e = |args: &[&str]| validate(&parse(args)).unwrap_err().to_string();
        let m = e(&["-i", "ptnet0", "--slots", "4096"]);
        assert!(m.contains("--slots needs a VALE port"), "{m}");
        let m = e(&["-i", "vale0:1", "--slots", "3"]);
        assert!(m.contains("--slots 3: a ring has 4..=32768 slots"), "{m}");
        let m = e(&["-i", "vale0:1", "--slots", "32769"]);
        assert!(m.contains("32769"), "{m}");
        for n in ["4", "8192", "32768"] {
            let c = parse(&["-i", "vale0:1", "-f", "rx", "--slots", n]);
            assert!(validate(&c).is_ok(), "--slots {n}");
            assert_eq!(c.slots, Some(n.parse().unwrap()));
        }
        assert!(parse_err(&["-i", "vale0:1", "--slots", "x"]).contains("x"));
    }
}
