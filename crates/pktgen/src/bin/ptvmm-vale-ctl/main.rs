//! ptvmm-vale-ctl: list VALE switches and ports with owners, rings and counters (as a table
//! or JSON); create and remove persistent ports; delete a stale switch; attach and detach
//! uplinks (a switch port forwarded to a host interface).

mod json;
mod list;
mod term;
mod top;

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
    /// List switches (all, or the named one: `0` or `vale0`) with their ports and uplinks
    /// (the default command).
    List {
        switch: Option<String>,
        /// One JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// A live per-port view of switch SWITCH (or all): rx/tx rates, drops, ring occupancy,
    /// refreshed every second. On a terminal: full screen until q or Ctrl-C; otherwise a
    /// plain snapshot every second.
    Top {
        switch: Option<String>,
        /// Stop after this many refreshes (default: until q, Ctrl-C, SIGINT or SIGTERM).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// Create persistent port valeX:Y (and switch X if needed): it stays, between and after
    /// the processes that open it by name, until `remove`. As netmap's `vale-ctl -n`.
    #[command(short_flag = 'n')]
    Create {
        port: String,
        /// TX and RX rings (as ptvmm's --netmap-rings; openers must ask for the same).
        #[arg(long, default_value_t = 1)]
        rings: u32,
        /// Slots per ring (as ptvmm's --netmap-slots).
        #[arg(long, default_value_t = 1024)]
        slots: u32,
    },
    /// Remove persistent port valeX:Y; refused while a process has it open. As netmap's
    /// `vale-ctl -r`.
    #[command(short_flag = 'r')]
    Remove { port: String },
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
    let cmd = cli.cmd.unwrap_or(Cmd::List {
        switch: None,
        json: false,
    });
    match cmd {
        Cmd::List { switch, json } => {
            let one = switch.as_deref().map(switch_arg).transpose()?;
            let switches = list::switches(dir, one.as_deref())?;
            if json {
                println!("{}", list::to_json(dir, &switches));
            } else {
                list::print_text(dir, &switches);
            }
            Ok(())
        }
        Cmd::Top { switch, count } => {
            let one = switch.as_deref().map(switch_arg).transpose()?;
            top::run(dir, one.as_deref(), count)
        }
        Cmd::Create { port, rings, slots } => {
            let config = netmap::RegionConfig {
                tx_rings: rings,
                rx_rings: rings,
                tx_slots: slots,
                rx_slots: slots,
                ..Default::default()
            };
            let e = vale::admin::create(dir, &port, config)
                .with_context(|| format!("creating {port}"))?;
            println!("created persistent port {port} (index {})", e.idx);
            Ok(())
        }
        Cmd::Remove { port } => {
            vale::admin::remove(dir, &port).with_context(|| format!("removing {port}"))?;
            println!("removed {port}");
            Ok(())
        }
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
