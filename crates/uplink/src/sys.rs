//! Thin wrappers over the system calls the uplinks need: interface queries (index, flags,
//! MTU), poll, and a shared mapping of a socket's ring memory.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Longest interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = libc::IFNAMSIZ - 1;

/// Whether `name` can be a Linux interface name.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

/// The interface's index, or None if there is no such interface.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is plain data (a name and a union of integers); all-zero is valid.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(name.bytes().take(IFNAME_MAX)) {
        *d = s as libc::c_char;
    }
    r
}

/// A datagram socket to issue interface ioctls on.
fn ctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket() has no memory arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn if_ioctl(req: libc::c_ulong, r: &mut libc::ifreq) -> io::Result<()> {
    let s = ctl_socket()?;
    // SAFETY: `r` is a valid, writable ifreq for this interface ioctl.
    if unsafe { libc::ioctl(s.as_raw_fd(), req, r as *mut libc::ifreq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The interface's flags (`IFF_UP`, ...).
pub fn if_flags(name: &str) -> io::Result<u32> {
    let mut r = ifreq(name);
    if_ioctl(libc::SIOCGIFFLAGS, &mut r)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    Ok(unsafe { r.ifr_ifru.ifru_flags } as u16 as u32)
}

/// Sets `IFF_UP` on the interface.
pub fn if_up(name: &str) -> io::Result<()> {
    let flags = if_flags(name)?;
    let mut r = ifreq(name);
    r.ifr_ifru.ifru_flags = (flags | libc::IFF_UP as u32) as u16 as libc::c_short;
    if_ioctl(libc::SIOCSIFFLAGS, &mut r)
}

/// The interface's MTU.
pub fn if_mtu(name: &str) -> io::Result<u32> {
    let mut r = ifreq(name);
    if_ioctl(libc::SIOCGIFMTU, &mut r)?;
    // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member of the union.
    Ok(unsafe { r.ifr_ifru.ifru_mtu } as u32)
}

/// The interface's MAC address.
pub fn if_mac(name: &str) -> io::Result<[u8; 6]> {
    let mut r = ifreq(name);
    if_ioctl(libc::SIOCGIFHWADDR, &mut r)?;
    // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member of the union.
    let a = unsafe { r.ifr_ifru.ifru_hwaddr };
    let mut m = [0u8; 6];
    for (d, s) in m.iter_mut().zip(a.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(m)
}

/// Waits up to `timeout` for `events` on `fd`; returns the revents (0 on timeout or signal).
pub fn poll1(fd: RawFd, events: i16, timeout: Duration) -> io::Result<i16> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(p.revents)
}

/// `setsockopt` of a plain value.
pub fn setsockopt<T>(fd: RawFd, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to `size_of::<T>()` readable bytes for the duration of the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            val as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A shared mapping of a descriptor's memory (a socket's rings), unmapped on drop.
pub struct Mmap {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory shared with the kernel; every access goes through raw
// pointers or atomics by the owner of each part (one thread per ring).
unsafe impl Send for Mmap {}
// SAFETY: every access to the shared mapping goes through raw pointers or atomics, and `Mmap`
// itself only hands out its base pointer and length.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd` at `offset`, shared and read/write (with `MAP_POPULATE`).
    pub fn new(fd: RawFd, len: usize, offset: u64) -> io::Result<Mmap> {
        // SAFETY: a fresh mapping chosen by the kernel; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: p as *mut u8,
            len,
        })
    }

    /// Takes ownership of a mapping made elsewhere (`ptr`, `len` as returned by mmap).
    pub fn adopt(ptr: *mut u8, len: usize) -> Mmap {
        Mmap { ptr, len }
    }

    /// The base address.
    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, once created).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region this object mapped; nothing uses it afterwards.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// Sends `sig` to `pid`; false if it does not exist (or cannot be signalled).
pub fn kill(pid: u32, sig: i32) -> bool {
    // SAFETY: kill() has no memory arguments.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

/// Whether process `pid` exists and has not exited (a zombie counts as gone): the switch's
/// own rule, so an uplink and the switch agree on who is alive.
pub use vale::process_alive as alive;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(valid_ifname("eth0"));
        assert!(valid_ifname("veth-a.100"));
        assert!(valid_ifname("a234567890abcde"));
        for bad in ["", "a234567890abcdef", "a/b", "a b", "a:1", ".", ".."] {
            assert!(!valid_ifname(bad), "{bad}");
        }
    }

    #[test]
    fn loopback_is_found_and_unknown_is_not() {
        assert!(ifindex("lo").is_some());
        assert!(if_mtu("lo").unwrap() >= 1500);
        assert!(ifindex("ptvmm-nonesuch").is_none());
        assert!(if_flags("ptvmm-nonesuch").is_err());
    }
}
