//! `tap` mode: a tap interface in the host stack (netmap's `vale-ctl -h`). Frames the host
//! stack sends out of the tap are read from its descriptor and go to the switch; frames from
//! the switch are written to it and enter the host stack as if received. The interface is
//! created by the uplink (or an existing persistent tap is taken over) and brought up; a
//! created one disappears with the uplink process, however it ends.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::{sys, FrameFn, Host, HostRx, HostTx, UplinkError};

/// Largest frame read from the tap in one go (a frame longer than a switch buffer is read
/// whole, then dropped and counted).
const READ_MAX: usize = 65536;

/// Creates (or takes over) tap interface `ifname` and brings it up.
pub fn open(ifname: &str) -> Result<Host, UplinkError> {
    let path = c"/dev/net/tun";
    // SAFETY: `path` is a valid NUL-terminated string; the result is checked.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(UplinkError::io("open /dev/net/tun", ifname)(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `ifreq` is plain data; all-zero is valid.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    r.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes the valid ifreq `r`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut r as *mut libc::ifreq) } < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINVAL) => UplinkError::NotTap(ifname.to_string()),
            Some(libc::EBUSY) => UplinkError::TapBusy(ifname.to_string()),
            _ => UplinkError::io("create the tap interface", ifname)(e),
        });
    }
    sys::if_up(ifname).map_err(UplinkError::io("bring up the tap interface", ifname))?;
    let mtu = sys::if_mtu(ifname).map_err(UplinkError::io("read the MTU", ifname))?;
    let fd = Arc::new(fd);
    Ok(Host {
        rx: Box::new(TapRx {
            fd: fd.clone(),
            buf: vec![0; READ_MAX],
        }),
        tx: Box::new(TapTx { fd }),
        mtu,
        detail: String::new(),
    })
}

struct TapRx {
    fd: Arc<OwnedFd>,
    buf: Vec<u8>,
}

impl HostRx for TapRx {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn recv(&mut self, max: usize, f: &mut FrameFn<'_>) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            // SAFETY: `buf` is valid for writes of its whole length.
            let r = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => break,
                    _ => return Err(e),
                }
            }
            f(&self.buf[..r as usize], None);
            n += 1;
        }
        Ok(n)
    }
}

struct TapTx {
    fd: Arc<OwnedFd>,
}

impl HostTx for TapTx {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        // SAFETY: `frame` is valid for reads of its whole length.
        let r = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(false),
                _ => Err(e),
            };
        }
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
