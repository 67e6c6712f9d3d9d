//! The user ABI of ptnet.ko's netmap-mode character device `/dev/ptnetN`, mirrored from
//! `guest-images/ptnet/ptnet_uapi.h` (docs/ptnet-driver.md): `struct ptnet_layout` and the
//! ioctl numbers, plus thin wrappers around the calls.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// `PTNET_UAPI_VERSION`.
pub const VERSION: u32 = 1;
/// `PTNET_LAYOUT_REGISTERED` in [`Layout::flags`].
pub const LAYOUT_REGISTERED: u32 = 1;

/// `struct ptnet_layout` (88 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    pub version: u32,
    pub memid: u32,
    pub mem_size: u64,
    pub csb_offset: u64,
    pub csb_size: u32,
    pub nifp_offset: u32,
    pub num_tx_rings: u32,
    pub num_rx_rings: u32,
    pub num_tx_slots: u32,
    pub num_rx_slots: u32,
    pub buf_size: u32,
    pub flags: u32,
    pub mac: [u8; 6],
    pub pad: [u8; 2],
    pub ifname: [u8; 16],
    pub kick_port: u32,
    pub csb_entry_size: u32,
}

impl Layout {
    /// The interface name (up to the first NUL).
    pub fn ifname(&self) -> String {
        let end = self.ifname.iter().position(|&c| c == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.ifname[..end]).into_owned()
    }
}

// <asm-generic/ioctl.h>: dir (2 bits) << 30 | size (14 bits) << 16 | type << 8 | nr.
const IOC_READ: u32 = 2;
const IOC_WRITE: u32 = 1;

const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    dir << 30 | (size as u32) << 16 | (ty as u32) << 8 | nr as u32
}

/// `_IOR('p', 1, struct ptnet_layout)`.
pub const IOC_LAYOUT: u32 = ioc(IOC_READ, b'p', 1, std::mem::size_of::<Layout>());
/// `_IO('p', 2)`.
pub const IOC_REGISTER: u32 = ioc(0, b'p', 2, 0);
/// `_IO('p', 3)`.
pub const IOC_UNREGISTER: u32 = ioc(0, b'p', 3, 0);
/// `_IO('p', 4)`.
pub const IOC_TXSYNC: u32 = ioc(0, b'p', 4, 0);
/// `_IO('p', 5)`.
pub const IOC_RXSYNC: u32 = ioc(0, b'p', 5, 0);
/// `_IOW('p', 6, __u32)`: TX ring i and RX ring i only (netmap's `NR_REG_ONE_NIC`).
pub const IOC_REGISTER_RING: u32 = ioc(IOC_WRITE, b'p', 6, std::mem::size_of::<u32>());

/// `PTNET_IOC_LAYOUT`.
pub fn get_layout(fd: &OwnedFd) -> io::Result<Layout> {
    let mut l = Layout::default();
    // The request's size field is `size_of::<Layout>()`; the kernel writes only `l`.
    // SAFETY: `l` is a writable `repr(C)` struct of exactly that size and the header's layout.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), IOC_LAYOUT as _, &mut l as *mut Layout) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(l)
}

/// `PTNET_IOC_REGISTER_RING`: registers TX ring `ring` and RX ring `ring` for this file.
pub fn register_ring(fd: &OwnedFd, ring: u32) -> io::Result<()> {
    // SAFETY: the kernel reads one u32 through the pointer, which points at `ring`, alive
    // for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), IOC_REGISTER_RING as _, &ring as *const u32) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An ioctl without argument (REGISTER, UNREGISTER, TXSYNC, RXSYNC).
pub fn simple(fd: &OwnedFd, request: u32) -> io::Result<()> {
    // SAFETY: `_IO` requests take no argument, so no memory is read or written through it.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, 0usize) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_header() {
        // 12 u32/u64 fields: 4+4+8+8+4*8 = 56, mac+pad 8, ifname 16, kick_port, entry size.
        assert_eq!(std::mem::size_of::<Layout>(), 88);
        assert_eq!(std::mem::align_of::<Layout>(), 8);
        assert_eq!(std::mem::offset_of!(Layout, csb_offset), 16);
        assert_eq!(std::mem::offset_of!(Layout, mac), 56);
        assert_eq!(std::mem::offset_of!(Layout, ifname), 64);
        assert_eq!(std::mem::offset_of!(Layout, kick_port), 80);
        assert_eq!(std::mem::offset_of!(Layout, csb_entry_size), 84);
    }

    #[test]
    fn ioctl_numbers_computed_by_hand() {
        // _IOR('p' = 0x70, 1, 88 = 0x58): 2 << 30 | 0x58 << 16 | 0x70 << 8 | 1.
        assert_eq!(IOC_LAYOUT, 0x8058_7001);
        assert_eq!(IOC_REGISTER, 0x7002);
        assert_eq!(IOC_UNREGISTER, 0x7003);
        assert_eq!(IOC_TXSYNC, 0x7004);
        assert_eq!(IOC_RXSYNC, 0x7005);
        // _IOW('p', 6, 4): 1 << 30 | 4 << 16 | 0x70 << 8 | 6.
        assert_eq!(IOC_REGISTER_RING, 0x4004_7006);
    }

    #[test]
    fn ifname_stops_at_nul() {
        let mut l = Layout::default();
        l.ifname[..4].copy_from_slice(b"eth0");
        assert_eq!(l.ifname(), "eth0");
    }
}
