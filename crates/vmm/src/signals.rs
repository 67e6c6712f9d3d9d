//! Signals: SIGINT/SIGTERM become an orderly stop through a signalfd, and a real-time
//! signal kicks vCPU threads out of `KVM_RUN` when the VM stops.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

use crate::error::{Error, Result};

/// The signal that interrupts `KVM_RUN` on a vCPU thread.
pub fn kick_signal() -> libc::c_int {
    SIGRTMIN()
}

extern "C" fn noop_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the (empty) handler of the kick signal, so it interrupts instead of killing.
pub fn install_kick_handler() -> Result<()> {
    register_signal_handler(kick_signal(), noop_handler).map_err(|e| {
        Error::io("the vCPU kick signal")(std::io::Error::from_raw_os_error(e.errno()))
    })
}

/// SIGINT and SIGTERM (stop), and SIGUSR1 (inject an NMI into every vCPU: with the guest's
/// `unknown_nmi_panic` a hung guest prints its backtrace), blocked in this thread (and so in
/// every thread it spawns later) and delivered through a signalfd instead.
pub struct TerminationSignals {
    fd: OwnedFd,
}

fn termination_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; sigaddset only writes into it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        set
    }
}

impl TerminationSignals {
    pub fn block() -> Result<Self> {
        let set = termination_set();
        // SAFETY: `set` is a valid, initialised signal set; the old mask is not wanted.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(Error::io("signal mask")(std::io::Error::from_raw_os_error(
                rc,
            )));
        }
        // SAFETY: creates a new signalfd for a valid set; the result is checked below.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::io("signalfd")(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The pending termination signal, if one arrived.
    pub fn take(&self) -> Option<i32> {
        // SAFETY: all-zero bytes are a valid signalfd_siginfo.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`, which is exactly that large.
        let n = unsafe {
            libc::read(
                self.raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        (n == size as isize).then_some(info.ssi_signo as i32)
    }
}

impl Drop for TerminationSignals {
    fn drop(&mut self) {
        let set = termination_set();
        // SAFETY: restores delivery of the two signals this value blocked.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

/// Waits until one of `fds` is readable (or `timeout_ms` passes; -1 waits forever).
pub fn wait_readable(fds: &[i32], timeout_ms: i32) -> std::io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd structures.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if n >= 0 {
            return Ok(pfds.iter().map(|p| p.revents & libc::POLLIN != 0).collect());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
