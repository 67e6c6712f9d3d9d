//! ptvmm-vale-ctl: list VALE switches and ports with owners, rings and counters; delete a
//! stale switch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ptvmm-vale-ctl",
    version,
    about = "Inspect and clean up ptvmm VALE switches"
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
    /// List switches (all, or the named one: `0` or `vale0`) with their ports.
    List { switch: Option<String> },
    /// Delete a switch whose ports' owners are all dead (or any, with --force).
    Delete {
        switch: String,
        #[arg(long)]
        force: bool,
    },
}

fn switch_arg(s: &str) -> Result<String> {
    let s = s.strip_prefix("vale").unwrap_or(s);
    let s = s.strip_suffix(':').unwrap_or(s);
    if !vale::name::valid_switch(s) {
        bail!("invalid switch name {s:?}");
    }
    Ok(s.to_string())
}

fn list(dir: Option<&std::path::Path>, one: Option<String>) -> Result<()> {
    let switches = match one {
        Some(s) => vec![vale::admin::list_switch(dir, &switch_arg(&s)?)?],
        None => vale::admin::list(dir).context("listing switches")?,
    };
    if switches.is_empty() {
        println!("no switches");
    }
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
        for p in s.ports {
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
        }
    }
    Ok(())
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
    }
}

fn main() -> ExitCode {
    pktgen::cli::main_with("ptvmm-vale-ctl", run)
}
