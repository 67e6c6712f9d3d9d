//! ptvmm-pktgen's run: open the interface, start one worker per `-p` thread (each on its own
//! ring, pinned with `-a`/`-c`) and a monitor printing the interval lines, then print the
//! merged summary.

mod pingpong;
mod txrx;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use netmap::RegionConfig;

use crate::backend::{Backend, ValeRing};
use crate::copyloop::CopyLoop;
use crate::flows::Flows;
use crate::frags::Split;
use crate::frame::{self, Endpoints};
use crate::interface::{self, Opened};
use crate::opts::{self, Cli, Function};
use crate::out::{self, Counters, Extras, Format, Outcome};

pub use txrx::{quota, Quota};

/// `f` with the port's virtio-net header in front (`-H`; zeros: no offload asked).
fn with_header(cli: &Cli, f: Vec<u8>) -> Vec<u8> {
    let mut out = vec![0u8; cli.vnet_hdr as usize];
    if cli.vnet_hdr == 12 {
        out[10] = 1; // num_buffers
    }
    out.extend_from_slice(&f);
    out
}

/// Pins the calling thread to CPU `cpu`.
fn pin_to(cpu: usize) -> Result<()> {
    // SAFETY: `cpu_set_t` is plain data (a bit mask); all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit of `set`, and the callers keep `cpu` below the number of online CPUs.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread, and `set` is a valid mask of the size passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("pinning to CPU {cpu}"));
    }
    Ok(())
}

/// The CPU thread `i` runs on with `-a first -c cpus` (netmap's: the next ones, wrapping).
pub fn cpu_of(first: usize, cpus: usize, i: u32) -> usize {
    (first + i as usize) % cpus.max(1)
}

/// Online CPUs.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What every worker needs.
struct Job<'a> {
    cli: &'a Cli,
    fmt: Format,
    /// The built frame (with `-H`'s header in front), which ping sends.
    frame: Vec<u8>,
    /// What tx sends in turn: the built frame, or `-P`'s frames (with `-H`'s header).
    tx_frames: Vec<Vec<u8>>,
    /// How each of `tx_frames` is laid over slots (`-F`/`-M`; one slot each without them).
    tx_splits: Vec<Split>,
    counters: Counters,
    rx_share: txrx::RxShare,
}

impl Job<'_> {
    /// Worker `i` of `cli.threads` on `port`.
    fn work(&self, port: &dyn Backend, i: u32) -> Result<Outcome> {
        let cli = self.cli;
        if let Some(first) = cli.affinity {
            pin_to(cpu_of(first, cli.cpus.unwrap_or_else(online_cpus), i))?;
        }
        let c = &self.counters;
        match cli.function {
            Function::Tx | Function::Txseq => {
                let q = quota(cli.count, cli.rate, i, cli.threads);
                let (src, dst) = opts::ranges(cli)?;
                let seed = ((std::process::id() as u64) << 32) ^ ((i as u64 + 1) * 0x9e37_79b9);
                let flows = Flows::new(src, dst, cli.random_src, cli.random_dst, seed);
                let seq = (cli.function == Function::Txseq).then_some(i as u16);
                txrx::tx(
                    port,
                    cli,
                    &self.tx_frames,
                    &self.tx_splits,
                    flows,
                    seq,
                    q,
                    c,
                )
            }
            Function::Rx => txrx::rx(port, cli, false, c, &self.rx_share),
            Function::Rxseq => txrx::rx(port, cli, true, c, &self.rx_share),
            Function::Ping => pingpong::ping(port, cli, &self.fmt, &self.frame, c),
            Function::Pong => pingpong::pong(port, cli, c),
        }
    }
}

/// What [`drive`] returns: the workers' merged outcome, the interval rates, and the backends
/// of workers 1.. back (their counters are read after the run).
type Driven<B> = (Outcome, Vec<f64>, Vec<B>);

/// Runs worker 0 on `first` on this thread and workers 1.. on `rest` in threads of their own
/// (each owning its backend), beside the monitor.
fn drive<B: Backend + Send>(job: &Job, first: &dyn Backend, rest: Vec<B>) -> Result<Driven<B>> {
    job.counters.running.store(1, Relaxed);
    let period = Duration::from_millis(job.cli.report_ms);
    std::thread::scope(|s| {
        let mon = s.spawn(|| out::monitor(&job.counters, &job.fmt, period));
        let others: Vec<_> = rest
            .into_iter()
            .enumerate()
            .map(|(i, p)| s.spawn(move || (job.work(&p, i as u32 + 1), p)))
            .collect();
        // Each worker's packets, in thread order, for the summary's per-thread line.
        let own = |r: Result<Outcome>| {
            r.map(|o| Outcome {
                per_thread: vec![o.pkts],
                ..o
            })
        };
        let mut res = own(job.work(first, 0));
        let mut back = Vec::with_capacity(others.len());
        for h in others {
            let r = match h.join() {
                Ok((r, p)) => {
                    back.push(p);
                    own(r)
                }
                Err(_) => Err(anyhow::anyhow!("a worker panicked")),
            };
            res = match (res, r) {
                (Ok(a), Ok(b)) => Ok(a.merge(b)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
        }
        job.counters.running.store(0, Relaxed);
        let rates = mon.join().unwrap_or_default();
        res.map(|o| (o, rates, back))
    })
}

/// The reference limit: copy frames between two private regions in one thread.
fn copy_loop(cli: &Cli, fmt: &Format, ep: &Endpoints) -> Result<()> {
    let f = frame::build(ep, cli.len);
    let mut c = CopyLoop::new(&f);
    let burst = cli.burst.min(1023);
    let counters = Counters::default();
    counters.running.store(1, Relaxed);
    let period = Duration::from_millis(cli.report_ms);
    let (o, rates) = std::thread::scope(|s| {
        let mon = s.spawn(|| out::monitor(&counters, fmt, period));
        let (mut pkts, mut bytes, mut events) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        while !crate::cli::stopped() && (cli.count == 0 || pkts < cli.count) {
            let b = if cli.count > 0 {
                (burst as u64).min(cli.count - pkts) as u32
            } else {
                burst
            };
            let n = c.run_batch(b);
            bytes += n;
            pkts += b as u64;
            events += 1;
            counters.add(b as u64, n);
        }
        counters.running.store(0, Relaxed);
        let o = Outcome {
            pkts,
            bytes,
            events,
            span: Some((start, Instant::now())),
            ..Outcome::default()
        };
        (o, mon.join().unwrap_or_default())
    });
    let x = Extras {
        function: "copy-loop",
        threads: 1,
        rates,
        ..Extras::default()
    };
    println!("{}", out::summary(fmt, "Copied", &o, &x));
    Ok(())
}

/// Everything after parsing: checks, open, run, summary.
pub fn run(cli: Cli) -> Result<()> {
    opts::validate(&cli)?;
    let ep = opts::endpoints(&cli)?;
    crate::cli::install_stop_signals();
    let fmt = Format::new(&cli);
    if cli.copy_loop {
        return copy_loop(&cli, &fmt, &ep);
    }
    let frame = with_header(&cli, frame::build(&ep, cli.len));
    let tx_frames = match &cli.pcap {
        Some(path) => {
            // Split over slots (-F/-M), a frame may be larger than a buffer: each frame's
            // split is checked once the port's buffers are known.
            let max = if cli.frag_opts().active() {
                frame::MAX_LEN
            } else {
                RegionConfig::default().buf_size as usize - cli.vnet_hdr as usize
            };
            let frames = crate::pcap::load(path, max)?;
            frames.into_iter().map(|f| with_header(&cli, f)).collect()
        }
        None => vec![frame.clone()],
    };
    let ifname = cli.interface.clone().unwrap_or_default();
    let o = interface::OpenOptions {
        busy_poll: cli.busy_poll,
        lossless: cli.lossless,
        vnet_hdr_len: cli.vnet_hdr,
        rings: cli.threads,
        slots: cli.slots.unwrap_or(0),
    };
    let opened = interface::open_any(&ifname, o)?;
    let mut job = Job {
        cli: &cli,
        fmt,
        frame,
        tx_frames,
        tx_splits: Vec::new(),
        counters: Counters::default(),
        rx_share: Default::default(),
    };
    let ((outcome, rates), kicks, interrupts) = match opened {
        Opened::Vale(port) => {
            let first = ValeRing::new(&port, 0);
            let rest: Vec<ValeRing> = (1..cli.threads).map(|i| ValeRing::new(&port, i)).collect();
            job.tx_splits = start(&cli, &first, &job.frame, &job.tx_frames)?;
            let (o, rates, _) = drive(&job, &first, rest)?;
            ((o, rates), None, None)
        }
        Opened::Ptnet(mut devs) => {
            let first = devs.remove(0);
            job.tx_splits = start(&cli, &first, &job.frame, &job.tx_frames)?;
            let (o, rates, rest) = drive(&job, &first, devs)?;
            // Kicks are counted per ring pair; the interrupts are the NIC's, counted once.
            let kicks = rest.iter().map(|d| d.kicks()).sum::<Option<u64>>();
            let kicks = kicks.zip(first.kicks()).map(|(a, b)| a + b);
            ((o, rates), kicks, first.interrupts())
        }
    };
    let verb = match cli.function {
        Function::Rx | Function::Rxseq => "Received",
        _ => "Sent",
    };
    let notif_pkts = match cli.function {
        Function::Ping => outcome.pkts + outcome.rtt.as_ref().map_or(0, |r| r.count()),
        Function::Pong => 2 * outcome.pkts,
        _ => outcome.pkts,
    };
    let x = Extras {
        function: cli.function.name(),
        threads: cli.threads,
        kicks,
        interrupts,
        notif_pkts,
        rates,
    };
    println!("{}", out::summary(&fmt, verb, &outcome, &x));
    Ok(())
}

/// Checks that `frame` (ping's) and the `tx_frames` (headers included) fit the port's
/// buffers and ring, each of the latter over the slots `-F`/`-M` make of it (returned, one
/// per frame), waits `-w`, and prints the "ready" line tests wait for.
fn start(cli: &Cli, port: &dyn Backend, frame: &[u8], tx_frames: &[Vec<u8>]) -> Result<Vec<Split>> {
    let buf = port.bufs().objsz as usize;
    if frame.len() > buf && !cli.frag_opts().active() {
        bail!(
            "frame length {} larger than the buffers of {} ({buf})",
            frame.len() - cli.vnet_hdr as usize,
            port.name(),
        );
    }
    let (_, _, ring_slots) = port.shape();
    let hdr = cli.vnet_hdr as usize;
    let fr = cli.frag_opts();
    let mut splits = Vec::with_capacity(tx_frames.len());
    for (i, f) in tx_frames.iter().enumerate() {
        let which = if cli.pcap.is_some() {
            format!("-P frame {}: ", i + 1)
        } else {
            String::new()
        };
        let s = fr
            .split(f.len(), hdr, buf)
            .map_err(|e| anyhow::anyhow!("{which}{e} ({})", port.name()))?;
        if s.slots as u32 >= ring_slots {
            bail!(
                "{which}a frame takes {} slots; the {ring_slots}-slot TX ring of {} holds {} at once",
                s.slots,
                port.name(),
                ring_slots - 1
            );
        }
        splits.push(s);
    }
    if cli.wait_link > 0 {
        std::thread::sleep(Duration::from_secs(cli.wait_link));
    }
    let (txr, rxr, slots) = port.shape();
    eprintln!(
        "ptvmm-pktgen: {} ready ({txr} tx / {rxr} rx rings, {slots} slots, function {:?}, {} thread{})",
        port.name(),
        cli.function,
        cli.threads,
        if cli.threads == 1 { "" } else { "s" }
    );
    Ok(splits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_pin_to_the_following_cpus() {
        assert_eq!(cpu_of(0, 2, 0), 0);
        assert_eq!(cpu_of(0, 2, 1), 1);
        assert_eq!(cpu_of(1, 2, 1), 0, "wraps at -c");
        assert_eq!(cpu_of(3, 4, 2), 1);
        assert_eq!(cpu_of(0, 0, 5), 0, "-c 0 is taken as 1");
    }

    #[test]
    fn pinning_to_an_online_cpu_works() {
        std::thread::spawn(|| pin_to(online_cpus() - 1))
            .join()
            .unwrap()
            .unwrap();
    }
}
