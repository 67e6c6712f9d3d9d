//! ptvmm's command line: parse and check the options, hand them to the VMM, and turn the
//! way the guest ended into the process exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use vmm::config::{DEFAULT_CMDLINE, DEFAULT_MEMORY_MIB, MAX_CPUS};
use vmm::{Exit, VmConfig};

const EXAMPLES: &str = "\
Examples:
  ptvmm --kernel bzImage --initrd initramfs.cpio.gz
  ptvmm --kernel bzImage --initrd initrd.gz --cpus 2 --memory 1024 \\
        --cmdline 'console=ttyS0 quiet -- uname -a'
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
    /// Attach a ptnetmap NIC to a VALE port, e.g. vale0:1 (not available yet)
    #[arg(long, value_name = "PORT")]
    netmap: Option<String>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
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

    if let Some(port) = &cli.netmap {
        return bad_input(format!(
            "--netmap {port}: the ptnetmap NIC is not part of this build yet"
        ));
    }
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
    };
    match vmm::run_linux(&cfg) {
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
