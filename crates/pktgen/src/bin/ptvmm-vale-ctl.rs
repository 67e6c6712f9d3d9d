//! ptvmm-vale-ctl: list VALE switches and ports with owners, rings and counters; delete a
//! stale switch; attach and detach uplinks (a switch port forwarded to a host interface).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use uplink::Mode;

#[derive(Parser, Debug)]
#[command(
    name = "ptvmm-vale-ctl",
    version,
    about = "Inspect and clean up ptvmm VALE switches; attach host interfaces as uplinks"
)]
struct Cli {
    /// Directory of the shared-memory files (default: $PTVMM_SHM_DIR or /dev/shm).
    #[arg(long, global = true)]
    shm_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List switches (all, or the named one: `0` or `vale0`) with their ports and uplinks.
    List { switch: Option<String> },
    /// Delete a switch whose ports' owners are all dead (or any, with --force).
    Delete {
        switch: String,
        #[arg(long)]
        force: bool,
    },
    /// Attach host interface IFNAME to a switch as port valeX:IFNAME, forwarded by a
    /// background process (xdp: AF_XDP; packet: AF_PACKET TPACKET_V3; tap: a new tap
    /// interface named IFNAME). Without --mode, xdp, falling back to packet.
    Attach {
        switch: String,
        ifname: String,
        #[arg(long, value_parser = clap::value_parser!(ModeArg))]
        mode: Option<ModeArg>,
        /// Stay in the foreground (for a service manager): forward until SIGTERM/SIGINT.
        #[arg(long)]
        foreground: bool,
        /// Internal: the background process reports readiness on stdout.
        #[arg(long, hide = true)]
        notify: bool,
    },
    /// Stop the uplink of IFNAME on a switch (its port is closed, a tap removed).
    Detach { switch: String, ifname: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Xdp,
    Packet,
    Tap,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Xdp => Mode::Xdp,
            ModeArg::Packet => Mode::Packet,
            ModeArg::Tap => Mode::Tap,
        }
    }
}

fn switch_arg(s: &str) -> Result<String> {
    let s = s.strip_prefix("vale").unwrap_or(s);
    let s = s.strip_suffix(':').unwrap_or(s);
    if !vale::name::valid_switch(s) {
        bail!("invalid switch name {s:?}");
    }
    Ok(s.to_string())
}

fn list(dir: Option<&Path>, one: Option<String>) -> Result<()> {
    let switches = match one {
        Some(s) => vec![vale::admin::list_switch(dir, &switch_arg(&s)?)?],
        None => vale::admin::list(dir).context("listing switches")?,
    };
    if switches.is_empty() {
        println!("no switches");
    }
    let states = uplink::state::all(&vale::switch::shm_dir(dir));
    for s in switches {
        println!("vale{}: {} port(s)", s.name, s.ports.len());
        println!(
            "  {:<4} {:<20} {:>8} {:<5} {:<8} {:>9} {:>12} {:>14} {:>10} {:>12} {:>14} {:>10}",
            "idx",
            "port",
            "pid",
            "state",
            "mode",
            "rings",
            "tx_pkts",
            "tx_bytes",
            "tx_bad",
            "rx_pkts",
            "rx_bytes",
            "rx_drops"
        );
        let mut uplinks = Vec::new();
        for p in &s.ports {
            let c = p.info.config;
            println!(
                "  {:<4} {:<20} {:>8} {:<5} {:<8} {:>9} {:>12} {:>14} {:>10} {:>12} {:>14} {:>10}",
                p.info.idx,
                format!("vale{}:{}", s.name, p.info.name),
                p.info.owner,
                if p.alive { "alive" } else { "dead" },
                if p.info.lossless() {
                    "lossless"
                } else {
                    "drop"
                },
                format!(
                    "{}x{}/{}x{}",
                    c.tx_rings, c.tx_slots, c.rx_rings, c.rx_slots
                ),
                p.stats.tx_pkts,
                p.stats.tx_bytes,
                p.stats.tx_bad,
                p.stats.rx_pkts,
                p.stats.rx_bytes,
                p.stats.rx_drops
            );
            if let Some((_, u)) = states.iter().find(|(_, u)| {
                u.switch == s.name
                    && u.port == p.info.name
                    && u.pid == p.info.owner
                    && uplink::sys::alive(u.pid)
            }) {
                uplinks.push((u.clone(), p.stats.rx_drops));
            }
        }
        if uplinks.is_empty() {
            continue;
        }
        println!("  uplinks (in: interface -> switch, out: switch -> interface; drops: switch full ring / frame too big / over MTU / interface refused / kernel ring full / malformed):");
        println!(
            "  {:<20} {:<16} {:<8} {:>10} {:>10} {:>12} {:>12} {:>30}",
            "port",
            "interface",
            "mode",
            "in_pps",
            "out_pps",
            "in_pkts",
            "out_pkts",
            "drops ring/big/mtu/host/kern/bad"
        );
        for (u, ring_drops) in uplinks {
            let mode = if u.detail.is_empty() {
                u.mode.clone()
            } else {
                format!("{} ({})", u.mode, u.detail)
            };
            println!(
                "  {:<20} {:<16} {:<8} {:>10} {:>10} {:>12} {:>12} {:>30}",
                format!("vale{}:{}", u.switch, u.port),
                u.ifname,
                mode,
                u.in_pps,
                u.out_pps,
                u.in_pkts,
                u.out_pkts,
                format!(
                    "{}/{}/{}/{}/{}/{}",
                    ring_drops, u.drop_big, u.drop_mtu, u.drop_host, u.drop_kernel, u.drop_bad
                )
            );
        }
    }
    Ok(())
}

/// The uplink process itself: attach, report, forward until a signal.
fn attach_here(opts: uplink::AttachOptions, notify: bool) -> Result<()> {
    pktgen::cli::install_stop_signals();
    let mut note = |l: String| {
        if notify {
            println!("note {l}");
        } else {
            eprintln!("ptvmm-vale-ctl: {l}");
        }
    };
    let a = match uplink::attach(&opts, &mut note) {
        Ok(a) => a,
        Err(e) if notify => {
            println!(
                "error {}",
                anyhow::Error::from(e)
                    .chain()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(": ")
            );
            std::process::exit(2);
        }
        Err(e) => return Err(e.into()),
    };
    let line = format!(
        "{} attached to {} ({}, pid {})",
        a.port_name(),
        opts.ifname,
        a.mode(),
        std::process::id()
    );
    if notify {
        println!("ready {line}");
        // Nothing is written to the parent's pipe from now on (it goes away).
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            use std::os::fd::AsRawFd;
            // SAFETY: replaces descriptor 1 with an open /dev/null; no Rust object owns fd 1.
            unsafe { libc::dup2(null.as_raw_fd(), 1) };
        }
    } else {
        println!("{line}");
    }
    a.run(&pktgen::cli::stopped);
    Ok(())
}

/// Starts the uplink process in the background and waits until it is attached or failed.
fn attach_background(
    dir: Option<&Path>,
    sw: &str,
    ifname: &str,
    mode: Option<ModeArg>,
) -> Result<()> {
    let exe = std::env::current_exe().context("finding this program")?;
    let mut cmd = Command::new(exe);
    if let Some(d) = dir {
        cmd.arg("--shm-dir").arg(d);
    }
    cmd.args(["attach", sw, ifname, "--notify"]);
    if let Some(m) = mode {
        cmd.arg("--mode").arg(Mode::from(m).as_str());
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting the uplink process")?;
    let out = child.stdout.take().context("uplink process stdout")?;
    for l in BufReader::new(out).lines() {
        let l = l.context("reading from the uplink process")?;
        if let Some(n) = l.strip_prefix("note ") {
            eprintln!("ptvmm-vale-ctl: {n}");
        } else if let Some(r) = l.strip_prefix("ready ") {
            println!("{r}");
            return Ok(());
        } else if let Some(e) = l.strip_prefix("error ") {
            let _ = child.wait();
            bail!("{e}");
        }
    }
    let st = child.wait().context("waiting for the uplink process")?;
    bail!("the uplink process ended before attaching ({st})")
}

fn run(cli: Cli) -> Result<()> {
    let dir = cli.shm_dir.as_deref();
    match cli.cmd.unwrap_or(Cmd::List { switch: None }) {
        Cmd::List { switch } => list(dir, switch),
        Cmd::Delete { switch, force } => {
            let s = switch_arg(&switch)?;
            vale::admin::delete(dir, &s, force).with_context(|| format!("deleting vale{s}"))?;
            println!("deleted vale{s}");
            Ok(())
        }
        Cmd::Attach {
            switch,
            ifname,
            mode,
            foreground,
            notify,
        } => {
            let s = switch_arg(&switch)?;
            if foreground || notify {
                let opts = uplink::AttachOptions {
                    switch: s,
                    ifname,
                    mode: mode.map(Mode::from),
                    shm_dir: dir.map(Path::to_path_buf),
                };
                attach_here(opts, notify)
            } else {
                attach_background(dir, &s, &ifname, mode)
            }
        }
        Cmd::Detach { switch, ifname } => {
            let s = switch_arg(&switch)?;
            let pid = uplink::detach(dir, &s, &ifname)?;
            println!("detached {ifname} from vale{s} (uplink process {pid} stopped)");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    pktgen::cli::main_with("ptvmm-vale-ctl", run)
}
