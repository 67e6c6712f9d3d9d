//! ptvmm's command line: parse and check the options, hand them to the VMM, and turn the
//! way the guest ended into the process exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use vmm::config::NetConfig;
use vmm::config::{DEFAULT_CMDLINE, DEFAULT_MEMORY_MIB, MAX_CPUS};
use vmm::io_handlers::Doorbells;
use vmm::msi::MsiMode;
use vmm::{Exit, VmConfig};

const EXAMPLES: &str = "\
Examples:
  ptvmm --kernel bzImage --initrd initramfs.cpio.gz
  ptvmm --kernel bzImage --initrd initrd.gz --cpus 2 --memory 1024 \\
        --cmdline 'console=ttyS0 quiet -- uname -a'
  ptvmm --kernel bzImage --initrd initrd.gz --netmap vale0:1
  RUST_LOG=debug ptvmm --kernel bzImage

The console is the guest's COM1 on stdin/stdout; type Ctrl-A x to quit.
Exit status: the guest's poweroff or reboot gives 0, a byte written to the debug-exit
port 0x501 gives that byte, bad options or host setup give 2, a guest failure gives 1.";

#[derive(Parser, Debug)]
#[command(name = "ptvmm", version, about = "A small, fast KVM hypervisor with a ptnetmap passthrough NIC", after_help = EXAMPLES)]
struct Cli {
    /// Linux kernel image (bzImage with a 64-bit entry point)
    #[arg(long, value_name = "PATH")]
    kernel: PathBuf,
    /// Initial RAM disk (initramfs)
    #[arg(long, value_name = "PATH")]
    initrd: Option<PathBuf>,
    /// Kernel command line (replaces the default)
    #[arg(long, value_name = "STR", default_value = DEFAULT_CMDLINE)]
    cmdline: String,
    /// Guest memory in MiB (at least 64)
    #[arg(long, value_name = "MiB", default_value_t = DEFAULT_MEMORY_MIB as i64, allow_negative_numbers = true)]
    memory: i64,
    /// Number of vCPUs (1 to 32)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    cpus: i64,
    /// Host CPUs for the vCPU threads, e.g. 2,3: vCPU i runs on the i-th (the list repeats
    /// when shorter than --cpus); a pinned vCPU is never migrated between host CPUs
    #[arg(long, value_name = "CPU,..", value_delimiter = ',')]
    pin_vcpus: Vec<usize>,
    /// Attach a ptnetmap passthrough NIC to VALE port PORT (valeX:Y; created if new);
    /// `valeX:Y,lossless` opens it lossless (a full receiver holds the guest's TX frames);
    /// `,offloads` offers the guest the virtio-net header (checksum and segmentation
    /// offloads, converted by the switch for ports without one)
    #[arg(long, value_name = "PORT")]
    netmap: Option<String>,
    /// The NIC's MAC address (default: derived from the port name)
    #[arg(long, value_name = "MAC", requires = "netmap")]
    mac: Option<String>,
    /// How NIC doorbells reach the ring workers: KVM ioeventfd, or a PIO exit caught by
    /// ptvmm's register-handler table
    #[arg(long, value_enum, default_value = "ioeventfd", requires = "netmap")]
    doorbell: DoorbellArg,
    /// How the NIC's MSI-X interrupts reach KVM: irqfd on an MSI route, or KVM_SIGNAL_MSI
    #[arg(long, value_enum, default_value = "irqfd", requires = "netmap")]
    msi: MsiArg,
    /// Rings per direction of the VALE port, 1 to 16: N TX + N RX rings, at most the 32 the
    /// NIC has kick registers for (a new port only)
    #[arg(long, value_name = "N", default_value_t = 1, requires = "netmap")]
    netmap_rings: u32,
    /// Slots per ring of the VALE port (a new port only)
    #[arg(long, value_name = "N", default_value_t = 1024, requires = "netmap")]
    netmap_slots: u32,
    /// How long each TX ring's worker keeps polling for the guest's next frames after it
    /// caught up, before it sleeps and asks for a kick (0 to 10000 us): fewer kicks (VM
    /// exits) for a host core spent polling, like vhost-net's busyloop_timeout
    #[arg(long, value_name = "MICROSECONDS", default_value_t = 0, requires = "netmap",
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    netmap_tx_spin: u32,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DoorbellArg {
    Ioeventfd,
    Exit,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum MsiArg {
    Irqfd,
    Signal,
}

fn bad_input(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ptvmm: {msg}");
    ExitCode::from(vmm::error::EXIT_BAD_INPUT as u8)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's message spans lines (usage, hints); keep it to one.
            let text = e.to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut first = lines.next().unwrap_or("invalid arguments").to_string();
            if first.ends_with(':') {
                if let Some(next) = lines.next() {
                    first = format!("{first} {next}");
                }
            }
            return bad_input(format!(
                "{} (see ptvmm --help)",
                first.trim_start_matches("error: ")
            ));
        }
    };
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .init();

    let net = match &cli.netmap {
        None => None,
        Some(spec) => {
            let vmm::config::NetmapSpec {
                port,
                lossless,
                offloads,
            } = match vmm::config::parse_netmap_spec(spec) {
                Ok(p) => p,
                Err(e) => return bad_input(e),
            };
            let mac = match cli.mac.as_deref().map(vmm::config::parse_mac).transpose() {
                Ok(m) => m,
                Err(e) => return bad_input(e),
            };
            Some(NetConfig {
                port,
                mac,
                doorbells: match cli.doorbell {
                    DoorbellArg::Ioeventfd => Doorbells::Ioeventfd,
                    DoorbellArg::Exit => Doorbells::Exit,
                },
                msi: match cli.msi {
                    MsiArg::Irqfd => MsiMode::Irqfd,
                    MsiArg::Signal => MsiMode::SignalMsi,
                },
                rings: cli.netmap_rings,
                slots: cli.netmap_slots,
                tx_spin: std::time::Duration::from_micros(cli.netmap_tx_spin.into()),
                shm_dir: None,
                lossless,
                offloads,
            })
        }
    };
    let cpus = match u8::try_from(cli.cpus) {
        Ok(n) if (1..=MAX_CPUS).contains(&n) => n,
        _ => {
            return bad_input(format!(
                "--cpus {} is out of range: give 1 to {MAX_CPUS}",
                cli.cpus
            ))
        }
    };
    let Ok(memory_mib) = u64::try_from(cli.memory) else {
        return bad_input(format!(
            "--memory {} MiB is too small: a Linux guest needs at least {} MiB",
            cli.memory,
            vmm::config::MIN_MEMORY_MIB
        ));
    };
    let cfg = VmConfig {
        kernel: cli.kernel,
        initrd: cli.initrd,
        cmdline: cli.cmdline,
        memory_mib,
        cpus,
        pin_vcpus: cli.pin_vcpus,
        net,
    };
    let port = match vmm::check_linux(&cfg).and_then(|()| open_port(cfg.net.as_ref())) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ptvmm: {e}");
            return ExitCode::from(e.exit_status() as u8);
        }
    };
    match vmm::run_linux(&cfg, port) {
        Ok(Exit::Error(reason)) => {
            eprintln!("ptvmm: {reason}");
            ExitCode::from(vmm::error::EXIT_FAILURE as u8)
        }
        Ok(exit) => {
            log::info!("guest ended: {exit:?}");
            ExitCode::from(exit.status().clamp(0, 255) as u8)
        }
        Err(e) => {
            eprintln!("ptvmm: {e}");
            ExitCode::from(e.exit_status() as u8)
        }
    }
}

/// Opens (creating if needed) the VALE port the NIC of `net` serves.
fn open_port(
    net: Option<&NetConfig>,
) -> vmm::Result<Option<std::sync::Arc<dyn netmap::NetmapPort>>> {
    let Some(net) = net else {
        return Ok(None);
    };
    let opts = vale::PortOptions {
        config: netmap::RegionConfig {
            tx_rings: net.rings,
            rx_rings: net.rings,
            tx_slots: net.slots,
            rx_slots: net.slots,
            ..Default::default()
        },
        shm_dir: net.shm_dir.clone(),
        lossless: net.lossless,
        vnet_hdr_len: 0,
    };
    let port = vale::Port::open(&net.port, &opts).map_err(|e| {
        let mut text = format!("--netmap {}: {e}", net.port);
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        vmm::Error::Config(text)
    })?;
    Ok(Some(std::sync::Arc::new(port)))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use vmm::config::MAX_NETMAP_RINGS;

    use super::Cli;

    /// The help text cannot name the constants, so it is checked against them.
    #[test]
    fn netmap_rings_help_states_the_limit() {
        let cmd = Cli::command();
        let arg = cmd.get_arguments().find(|a| a.get_id() == "netmap_rings");
        let help = arg.and_then(|a| a.get_help()).expect("--netmap-rings help");
        let help = help.to_string();
        assert!(
            help.contains(&format!("1 to {MAX_NETMAP_RINGS}:")),
            "{help}"
        );
        assert!(
            help.contains(&format!("the {} the NIC", 2 * MAX_NETMAP_RINGS)),
            "{help}"
        );
    }
}
