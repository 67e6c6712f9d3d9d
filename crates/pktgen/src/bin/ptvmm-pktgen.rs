//! ptvmm-pktgen: netmap's pkt-gen for VALE ports (`-f tx|rx|ping|pong`, `-p` threads on as
//! many rings), plus `--copy-loop`, the single-process copy benchmark that serves as the
//! switch's reference limit. `-i ptnet0` (or `/dev/ptnet0`) runs the same loops over
//! ptnet.ko's netmap-mode character device inside a guest (pktgen::backend); built static it
//! is the guest's `/bin/pkt-gen`. The options are [`pktgen::opts::Cli`], the loops
//! [`pktgen::run`].

use std::process::ExitCode;

fn main() -> ExitCode {
    pktgen::cli::main_with("ptvmm-pktgen", pktgen::run::run)
}
