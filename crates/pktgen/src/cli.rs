//! The shared `main` of the host tools (ptvmm-pktgen, ptvmm-vale-ctl): parse with clap, run,
//! and turn any failure into one line on stderr and exit status 2.

use std::process::ExitCode;

/// Parses `C` from the command line and runs `run` with it. `--help`/`--version` print and
/// succeed; a parse error or a failed run prints `prog: <first line>` and returns 2.
pub fn main_with<C: clap::Parser>(
    prog: &str,
    run: impl FnOnce(C) -> anyhow::Result<()>,
) -> ExitCode {
    let cli = match C::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let msg = e.to_string();
            eprintln!(
                "{prog}: {}",
                msg.lines().next().unwrap_or("invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{prog}: {e:#}");
            ExitCode::from(2)
        }
    }
}
