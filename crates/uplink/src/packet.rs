//! `packet` mode: AF_PACKET sockets bound to the interface, with mmap'ed TPACKET_V3 rings.
//!
//! RX: one socket (`ETH_P_ALL`, promiscuous, `PACKET_IGNORE_OUTGOING` so neither its own
//! transmissions nor the host's are seen) with a block ring: the kernel fills blocks of
//! frames and hands a block over by setting `TP_STATUS_USER` in its descriptor; we walk the
//! block's frames and give it back with `TP_STATUS_KERNEL`.
//!
//! ```text
//!  block (RX_BLOCK bytes):  tpacket_block_desc | tpacket3_hdr + frame | tpacket3_hdr + ...
//!    desc: version u32 @0, offset_to_priv u32 @4, block_status u32 @8, num_pkts u32 @12,
//!          offset_to_first_pkt u32 @16
//!    tpacket3_hdr: tp_next_offset u32 @0, tp_snaplen u32 @12, tp_len u32 @16,
//!          tp_status u32 @20, tp_mac u16 @24, hv1.tp_vlan_tci u32 @32, hv1.tp_vlan_tpid u16 @36
//! ```
//!
//! TX: a second socket (protocol 0, so it receives nothing) with a frame ring of
//! `TX_FRAME`-byte frames: a frame whose `tp_status` is `TP_STATUS_AVAILABLE` is ours; we
//! write the data at offset `TX_DATA` (TPACKET3_HDRLEN - sizeof(sockaddr_ll)), `tp_len`, then
//! `tp_status = TP_STATUS_SEND_REQUEST`, and `send()` makes the kernel transmit them.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering::*};

use crate::sys::{self, Mmap};
use crate::{FrameFn, Host, HostRx, HostTx, UplinkError};

const RX_BLOCK: usize = 1 << 18;
const RX_BLOCKS: usize = 16;
/// Nominal frame size of the RX ring (the kernel only checks it; V3 packs frames).
const RX_FRAME: usize = 2048;
/// How long the kernel waits before handing over a block that is not full (ms).
const RX_RETIRE_MS: u32 = 1;
const TX_FRAME: usize = 4096;
const TX_BLOCK: usize = 1 << 16;
const TX_BLOCKS: usize = 32;
/// Where the data of a TX frame starts: TPACKET3_HDRLEN - sizeof(struct sockaddr_ll).
const TX_DATA: usize = 48;

const BD_STATUS: usize = 8;
const BD_NUM_PKTS: usize = 12;
const BD_FIRST: usize = 16;
const H_NEXT: usize = 0;
const H_SNAPLEN: usize = 12;
const H_LEN: usize = 16;
const H_STATUS: usize = 20;
const H_MAC: usize = 24;
const H_VLAN_TCI: usize = 32;
const H_VLAN_TPID: usize = 36;

fn packet_socket(ifname: &str, proto: u16) -> Result<OwnedFd, UplinkError> {
    // SAFETY: socket() has no memory arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            proto.to_be() as i32,
        )
    };
    if fd < 0 {
        return Err(UplinkError::io("open a packet socket", ifname)(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let v = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
    sys::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_VERSION, &v)
        .map_err(UplinkError::io("select TPACKET_V3", ifname))?;
    Ok(fd)
}

fn bind(fd: RawFd, ifname: &str, ifindex: u32, proto: u16) -> Result<(), UplinkError> {
    // SAFETY: `sockaddr_ll` is plain data; all-zero is valid.
    let mut a: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    a.sll_family = libc::AF_PACKET as u16;
    a.sll_protocol = proto.to_be();
    a.sll_ifindex = ifindex as i32;
    // SAFETY: `a` is a valid sockaddr_ll of the length given.
    let r = unsafe {
        libc::bind(
            fd,
            &a as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(UplinkError::io("bind a packet socket", ifname)(
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Opens the RX and TX sockets of interface `ifname` (which exists and is up).
pub fn open(ifname: &str, ifindex: u32, mtu: u32) -> Result<Host, UplinkError> {
    // RX socket and ring.
    let rx = packet_socket(ifname, libc::ETH_P_ALL as u16)?;
    let fd = rx.as_raw_fd();
    let one: libc::c_int = 1;
    sys::setsockopt(fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)
        .map_err(UplinkError::io("ignore outgoing frames", ifname))?;
    let req = libc::tpacket_req3 {
        tp_block_size: RX_BLOCK as u32,
        tp_block_nr: RX_BLOCKS as u32,
        tp_frame_size: RX_FRAME as u32,
        tp_frame_nr: (RX_BLOCK * RX_BLOCKS / RX_FRAME) as u32,
        tp_retire_blk_tov: RX_RETIRE_MS,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    sys::setsockopt(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
        .map_err(UplinkError::io("set up the RX ring", ifname))?;
    let rx_map = Mmap::new(fd, RX_BLOCK * RX_BLOCKS, 0)
        .map_err(UplinkError::io("map the RX ring", ifname))?;
    bind(fd, ifname, ifindex, libc::ETH_P_ALL as u16)?;
    // SAFETY: `packet_mreq` is plain data; all-zero is valid.
    let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mr.mr_ifindex = ifindex as i32;
    mr.mr_type = libc::PACKET_MR_PROMISC as u16;
    sys::setsockopt(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr)
        .map_err(UplinkError::io("enable promiscuous mode", ifname))?;

    // TX socket and ring.
    let tx = packet_socket(ifname, 0)?;
    let tfd = tx.as_raw_fd();
    sys::setsockopt(tfd, libc::SOL_PACKET, libc::PACKET_LOSS, &one)
        .map_err(UplinkError::io("set PACKET_LOSS", ifname))?;
    let req = libc::tpacket_req3 {
        tp_block_size: TX_BLOCK as u32,
        tp_block_nr: TX_BLOCKS as u32,
        tp_frame_size: TX_FRAME as u32,
        tp_frame_nr: (TX_BLOCK * TX_BLOCKS / TX_FRAME) as u32,
        tp_retire_blk_tov: 0,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    sys::setsockopt(tfd, libc::SOL_PACKET, libc::PACKET_TX_RING, &req)
        .map_err(UplinkError::io("set up the TX ring", ifname))?;
    let tx_map = Mmap::new(tfd, TX_BLOCK * TX_BLOCKS, 0)
        .map_err(UplinkError::io("map the TX ring", ifname))?;
    bind(tfd, ifname, ifindex, 0)?;
    Ok(Host {
        rx: Box::new(PacketRx {
            fd: rx,
            map: rx_map,
            block: 0,
        }),
        tx: Box::new(PacketTx {
            fd: tx,
            map: tx_map,
            frame: 0,
            frames: TX_BLOCK * TX_BLOCKS / TX_FRAME,
            queued: 0,
        }),
        mtu,
        detail: String::new(),
    })
}

fn status(map: &Mmap, ofs: usize) -> &AtomicU32 {
    assert!(ofs + 4 <= map.len() && ofs.is_multiple_of(4));
    // SAFETY: in bounds (checked) and 4-aligned inside a page-aligned mapping that lives as
    // long as `map`; the kernel and we access the word atomically.
    unsafe { &*(map.ptr().add(ofs) as *const AtomicU32) }
}

fn read_u32(map: &Mmap, ofs: usize) -> u32 {
    assert!(ofs + 4 <= map.len());
    // SAFETY: in bounds (checked); the kernel does not write a block or frame we own.
    unsafe { std::ptr::read_unaligned(map.ptr().add(ofs) as *const u32) }
}

fn read_u16(map: &Mmap, ofs: usize) -> u16 {
    assert!(ofs + 2 <= map.len());
    // SAFETY: in bounds (checked); the kernel does not write a block or frame we own.
    unsafe { std::ptr::read_unaligned(map.ptr().add(ofs) as *const u16) }
}

struct PacketRx {
    fd: OwnedFd,
    map: Mmap,
    block: usize,
}

impl HostRx for PacketRx {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Walks whole blocks (a block's frames all go; `max` is only a hint to stop between
    /// blocks).
    fn recv(&mut self, max: usize, f: &mut FrameFn<'_>) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            let b = self.block * RX_BLOCK;
            let st = status(&self.map, b + BD_STATUS);
            if st.load(Acquire) & libc::TP_STATUS_USER == 0 {
                break;
            }
            let num = read_u32(&self.map, b + BD_NUM_PKTS);
            let mut p = read_u32(&self.map, b + BD_FIRST) as usize;
            for _ in 0..num {
                // Offsets come from the kernel; still never leave the block.
                if p + 40 > RX_BLOCK {
                    break;
                }
                let h = b + p;
                let snap = read_u32(&self.map, h + H_SNAPLEN) as usize;
                let len = read_u32(&self.map, h + H_LEN) as usize;
                let hs = read_u32(&self.map, h + H_STATUS);
                let mac = read_u16(&self.map, h + H_MAC) as usize;
                if p + mac + snap <= RX_BLOCK {
                    let tag = (hs & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
                        let tci = read_u32(&self.map, h + H_VLAN_TCI) as u16;
                        let tpid = if hs & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                            read_u16(&self.map, h + H_VLAN_TPID)
                        } else {
                            0x8100
                        };
                        let (a, c) = (tpid.to_be_bytes(), tci.to_be_bytes());
                        [a[0], a[1], c[0], c[1]]
                    });
                    // SAFETY: `h + mac .. + snap` is inside this block (checked above), which
                    // the kernel handed to us and does not write until we release it.
                    let frame =
                        unsafe { std::slice::from_raw_parts(self.map.ptr().add(h + mac), snap) };
                    if snap < len {
                        // Truncated by the ring: hand over the real length so it is dropped.
                        f(&vec![0u8; len.max(snap)], tag);
                    } else {
                        f(frame, tag);
                    }
                }
                n += 1;
                let next = read_u32(&self.map, h + H_NEXT) as usize;
                if next == 0 {
                    break;
                }
                p += next;
            }
            st.store(libc::TP_STATUS_KERNEL, Release);
            self.block = (self.block + 1) % RX_BLOCKS;
        }
        Ok(n)
    }

    fn kernel_drops(&mut self) -> u64 {
        // SAFETY: `tpacket_stats_v3` is plain data; all-zero is valid.
        let mut s: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `s` and `len` are valid for writes; reading the statistics resets them.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut s as *mut libc::tpacket_stats_v3 as *mut libc::c_void,
                &mut len,
            )
        };
        if r < 0 {
            0
        } else {
            s.tp_drops as u64
        }
    }
}

struct PacketTx {
    fd: OwnedFd,
    map: Mmap,
    frame: usize,
    frames: usize,
    queued: usize,
}

impl HostTx for PacketTx {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        if frame.len() > TX_FRAME - TX_DATA {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        let h = self.frame * TX_FRAME;
        let st = status(&self.map, h + H_STATUS);
        if st.load(Acquire) != libc::TP_STATUS_AVAILABLE {
            return Ok(false);
        }
        // SAFETY: the frame slot `h .. h + TX_FRAME` is inside the mapping and ours while
        // its status is AVAILABLE; the data fits (checked above).
        unsafe {
            let base = self.map.ptr().add(h);
            std::ptr::copy_nonoverlapping(frame.as_ptr(), base.add(TX_DATA), frame.len());
            std::ptr::write_unaligned(base.add(H_LEN) as *mut u32, frame.len() as u32);
            std::ptr::write_unaligned(base.add(H_SNAPLEN) as *mut u32, frame.len() as u32);
            std::ptr::write_unaligned(base.add(H_NEXT) as *mut u32, 0);
        }
        st.store(libc::TP_STATUS_SEND_REQUEST, Release);
        self.frame = (self.frame + 1) % self.frames;
        self.queued += 1;
        if self.queued >= 64 {
            self.flush()?;
        }
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.queued == 0 {
            return Ok(());
        }
        // SAFETY: a send without data: the kernel transmits the ring's SEND_REQUEST frames.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                // Still queued: the next flush (the forwarder flushes when idle) retries.
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR) => Ok(()),
                _ => {
                    self.queued = 0;
                    Err(e)
                }
            };
        }
        self.queued = 0;
        Ok(())
    }
}
