//! The shared `main` of the host tools (ptvmm-pktgen, ptvmm-vale-ctl): parse with clap, run,
//! and turn any failure into one line on stderr and exit status 2.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM set the flag [`stopped`] reads, instead of killing the process
/// (a tool then ends its run and prints its summary). No SA_RESTART: blocking waits return
/// early.
pub fn install_stop_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `sigaction` is plain data; all-zero is a valid starting value.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        // SAFETY: the handler is async-signal-safe (one atomic store) and `sa` is valid for the call.
        unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
    }
}

/// Whether SIGINT or SIGTERM arrived since [`install_stop_signals`].
pub fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

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
