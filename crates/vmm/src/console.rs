//! The host side of the serial console: stdin in raw mode when it is a terminal, read on
//! the `serial-in` thread, decoded for the Ctrl-A escape, and queued into the UART.

use std::io::{IsTerminal, Read};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use devices::serial::{ConsoleInput, EscapeDecoder, Serial};
use devices::{ExitReason, ExitSignal};
use vmm_sys_util::terminal::Terminal;

/// Puts stdin in raw mode while alive, if it is a terminal; restores it on drop.
pub struct RawStdin {
    active: bool,
}

impl RawStdin {
    pub fn enable() -> Self {
        let stdin = std::io::stdin();
        let active = stdin.is_terminal() && stdin.lock().set_raw_mode().is_ok();
        if active {
            log::info!("console: raw mode; type Ctrl-A x to quit");
        }
        Self { active }
    }
}

impl Drop for RawStdin {
    fn drop(&mut self) {
        if self.active {
            let _ = std::io::stdin().lock().set_canon_mode();
        }
    }
}

/// Waits up to `ms` for stdin to become readable.
fn stdin_readable(ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: std::io::stdin().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid pollfd for the duration of the call and nfds is 1.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n > 0
}

/// Forwards stdin to the guest until EOF, the quit escape, or `stop`.
pub fn spawn_input(
    serial: Arc<Mutex<Serial>>,
    exit: Arc<ExitSignal>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("serial-in".into())
        .spawn(move || {
            let mut decoder = EscapeDecoder::default();
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            while !stop.load(Ordering::Acquire) {
                if !stdin_readable(100) {
                    continue;
                }
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let bytes = match decoder.feed(&buf[..n]) {
                    ConsoleInput::Quit => {
                        exit.request(ExitReason::UserQuit);
                        return;
                    }
                    ConsoleInput::Bytes(b) => b,
                };
                let mut rest = &bytes[..];
                while !rest.is_empty() && !stop.load(Ordering::Acquire) {
                    let taken = serial
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .enqueue_input(rest);
                    rest = &rest[taken..];
                    if taken == 0 {
                        // The guest has not drained its receive FIFO yet.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        })
}
