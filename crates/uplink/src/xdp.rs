//! `xdp` mode: one AF_XDP socket on every RX queue of the interface, through libxdp's xsk API
//! (Debian's `libxdp1`), which loads its default redirect program (`xsk_def_xdp_prog`: a frame
//! arriving on queue q goes to the socket in slot q of its XSKMAP) and removes it when the last
//! socket is deleted. No BPF of our own.
//!
//! libxdp is opened at run time (`dlopen("libxdp.so.1")`), so the binaries build and run
//! without it and only `--mode xdp` needs it; its small `static inline` ring helpers
//! (`xsk_ring_prod__reserve`, ...) are re-implemented here over the same `struct xsk_ring_*`.
//!
//! Each socket has its own UMEM of [`FRAMES`] frames of [`FRAME`] bytes: the first half
//! circulates through the fill and RX rings (owned by the `uplink-in` thread), the second half
//! through the TX and completion rings of queue 0's socket (owned by `uplink-out`). Copy mode
//! is used where the driver has no zero-copy (veth, most virtual devices); the listing says
//! which. `uplink-in` sleeps in `poll` on an epoll descriptor holding every socket.

use std::ffi::{c_int, c_void, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use std::cell::UnsafeCell;

use crate::sys::Mmap;

mod libxdp;
use crate::{FrameFn, Host, HostRx, HostTx, UplinkError};
use libxdp::{lib, Lib, Ring, SocketConfig, UmemConfig};

/// Frame size in a UMEM (a frame holds one packet).
const FRAME: usize = 2048;
/// Frames per UMEM.
const FRAMES: usize = 4096;
/// Ring sizes (fill, completion, RX, TX).
const RING: u32 = 2048;
const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_RING_NEED_WAKEUP: u32 = 1;
const SOL_XDP: c_int = 283;
const XDP_OPTIONS: c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// One queue's socket, its UMEM and its four rings.
struct Queue {
    area: Mmap,
    umem: *mut c_void,
    xsk: *mut c_void,
    fd: RawFd,
    fill: UnsafeCell<Ring>,
    comp: UnsafeCell<Ring>,
    rx: UnsafeCell<Ring>,
    tx: UnsafeCell<Ring>,
}

/// One ring of a queue, for the one thread that uses it.
#[allow(clippy::mut_from_ref)]
fn ring(c: &UnsafeCell<Ring>) -> &mut Ring {
    // SAFETY: each ring has one user thread (fill/RX: `uplink-in`; TX/completion:
    // `uplink-out`; both only after `open` has returned), so no two references to one ring
    // exist at once.
    unsafe { &mut *c.get() }
}

/// Every queue of the interface; deleting them (the last socket) removes the XDP program.
struct Sockets {
    lib: &'static Lib,
    queues: Vec<Queue>,
}

// SAFETY: the sockets are used by two threads on disjoint rings (fill/RX by `uplink-in`,
// TX/completion of queue 0 by `uplink-out`) and disjoint halves of each UMEM; libxdp objects
// are only deleted in Drop, when both threads have ended.
unsafe impl Send for Sockets {}
// SAFETY: a shared `&Sockets` is used by the same two threads on the same disjoint rings and
// UMEM halves, and nothing is deleted before both have ended.
unsafe impl Sync for Sockets {}

impl Sockets {
    fn q(&self, i: usize) -> &Queue {
        &self.queues[i]
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        for q in &self.queues {
            // SAFETY: `xsk` and `umem` were created by libxdp and are deleted once, here,
            // socket first (the UMEM is busy while a socket uses it).
            unsafe {
                (self.lib.socket_delete)(q.xsk);
                (self.lib.umem_delete)(q.umem);
            }
        }
    }
}

/// Removes the generic XDP program of interface `ifindex`: the one an uplink of this interface
/// loaded before it was killed (libxdp removes only what its own process loaded). Callers
/// make sure that uplink is dead.
pub fn remove_stale(ifindex: u32) -> Result<(), String> {
    lib()?;
    let name = c"libbpf.so.1";
    // SAFETY: `name` is a valid C string; libbpf is already loaded by libxdp.
    let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        return Err("libbpf.so.1 not found".to_string());
    }
    // SAFETY: `h` is a live handle and the name a valid C string.
    let p = unsafe { libc::dlsym(h, c"bpf_xdp_detach".as_ptr()) };
    if p.is_null() {
        return Err("libbpf.so.1 has no bpf_xdp_detach".to_string());
    }
    type Detach = unsafe extern "C" fn(c_int, u32, *const c_void) -> c_int;
    // SAFETY: `bpf_xdp_detach(int ifindex, __u32 flags, const struct bpf_xdp_attach_opts *)`
    // of libbpf 1.x has this prototype; a null options pointer is allowed.
    let r = unsafe {
        let detach = std::mem::transmute::<*mut c_void, Detach>(p);
        detach(ifindex as c_int, XDP_FLAGS_SKB_MODE, std::ptr::null())
    };
    if r < 0 {
        return Err(io::Error::from_raw_os_error(-r).to_string());
    }
    Ok(())
}

/// The RX queues of `ifname` (from sysfs; 1 if it cannot tell).
fn rx_queues(ifname: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{ifname}/queues"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

fn no_xdp(ifname: &str, why: impl Into<String>) -> UplinkError {
    UplinkError::NoXdp {
        ifname: ifname.to_string(),
        why: why.into(),
    }
}

/// Opens AF_XDP sockets on every RX queue of `ifname` (which exists and is up), with generic
/// (skb-mode) XDP, which every device has.
///
/// Native (driver) XDP is not tried: on a device without it (a VXLAN device) libxdp 1.3's
/// failed native attach left the queue busy, and the generic retry in the same process got
/// `EBUSY`; choosing native XDP per driver is left for later.
pub fn open(ifname: &str, _ifindex: u32, mtu: u32) -> Result<Host, UplinkError> {
    let lib = lib().map_err(|e| no_xdp(ifname, e))?;
    open_with(lib, ifname, mtu, true)
        .map_err(|e| e.unwrap_or_else(|| no_xdp(ifname, "not supported")))
}

/// [`open`] in one XDP mode (generic or native); `Err(None)`: native XDP is not supported.
fn open_with(
    lib: &'static Lib,
    ifname: &str,
    mtu: u32,
    generic: bool,
) -> Result<Host, Option<UplinkError>> {
    let cname =
        CString::new(ifname).map_err(|_| Some(UplinkError::BadIfName(ifname.to_string())))?;
    let n = rx_queues(ifname);
    let mut queues = Vec::new();
    for qid in 0..n {
        // Anonymous memory for the UMEM.
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FRAME * FRAMES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Some(UplinkError::io("allocate an AF_XDP UMEM", ifname)(
                io::Error::last_os_error(),
            )));
        }
        let area = Mmap::adopt(p as *mut u8, FRAME * FRAMES);
        let mut q = Queue {
            area,
            umem: std::ptr::null_mut(),
            xsk: std::ptr::null_mut(),
            fd: -1,
            fill: UnsafeCell::new(Ring::empty()),
            comp: UnsafeCell::new(Ring::empty()),
            rx: UnsafeCell::new(Ring::empty()),
            tx: UnsafeCell::new(Ring::empty()),
        };
        let ucfg = UmemConfig {
            fill_size: RING,
            comp_size: RING,
            frame_size: FRAME as u32,
            frame_headroom: 0,
            flags: 0,
        };
        // SAFETY: the area is FRAME * FRAMES bytes of page-aligned memory that outlives the
        // UMEM (dropped after it in `Sockets::drop`); the ring structs are filled by libxdp.
        let r = unsafe {
            (lib.umem_create)(
                &mut q.umem,
                q.area.ptr() as *mut c_void,
                (FRAME * FRAMES) as u64,
                q.fill.get(),
                q.comp.get(),
                &ucfg,
            )
        };
        if r != 0 {
            return Err(Some(xdp_error(ifname, "create an AF_XDP UMEM", -r)));
        }
        let scfg = SocketConfig {
            rx_size: RING,
            tx_size: RING,
            libxdp_flags: 0,
            xdp_flags: if generic { XDP_FLAGS_SKB_MODE } else { 0 },
            bind_flags: XDP_USE_NEED_WAKEUP,
        };
        // SAFETY: `cname` is a valid C string, `q.umem` a live UMEM, the rings are filled by
        // libxdp; on failure nothing is kept but the UMEM, deleted below.
        let r = unsafe {
            (lib.socket_create)(
                &mut q.xsk,
                cname.as_ptr(),
                qid,
                q.umem,
                q.rx.get(),
                q.tx.get(),
                &scfg,
            )
        };
        if r != 0 {
            // SAFETY: the UMEM has no socket; deleted once.
            unsafe { (lib.umem_delete)(q.umem) };
            // Sockets of earlier queues are deleted when `queues` is dropped.
            drop(Sockets { lib, queues });
            if r == -libc::EOPNOTSUPP && !generic {
                return Err(None);
            }
            return Err(Some(xdp_error(ifname, "create an AF_XDP socket", -r)));
        }
        // SAFETY: `q.xsk` is a live socket.
        q.fd = unsafe { (lib.socket_fd)(q.xsk) };
        // The first half of the frames waits in the fill ring for packets.
        let half = (FRAMES / 2) as u32;
        let nfill = half.min(RING);
        let fill = q.fill.get_mut();
        if let Some(i) = fill.reserve(nfill) {
            for k in 0..nfill {
                // SAFETY: entry of the fill ring reserved above.
                unsafe { *fill.addr(i.wrapping_add(k)) = k as u64 * FRAME as u64 };
            }
            fill.submit(nfill);
        }
        queues.push(q);
    }
    let s = Arc::new(Sockets { lib, queues });
    let zc = zerocopy(s.q(0).fd);
    // epoll over every socket, for the RX thread's poll.
    // SAFETY: epoll_create1 has no memory arguments; the result is checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(Some(UplinkError::io("create an epoll descriptor", ifname)(
            io::Error::last_os_error(),
        )));
    }
    // SAFETY: `ep` is a fresh descriptor that nothing else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    for i in 0..s.queues.len() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: `ev` is valid for the call; the socket fd lives as long as `s`.
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, s.q(i).fd, &mut ev) } < 0 {
            return Err(Some(UplinkError::io("poll AF_XDP sockets", ifname)(
                io::Error::last_os_error(),
            )));
        }
    }
    let free = (FRAMES / 2..FRAMES).map(|f| (f * FRAME) as u64).collect();
    Ok(Host {
        rx: Box::new(XdpRx {
            s: s.clone(),
            ep,
            next: 0,
        }),
        tx: Box::new(XdpTx { s, free, queued: 0 }),
        mtu,
        detail: format!(
            "{} XDP, {}, {} queue{}",
            if generic { "generic" } else { "native" },
            if zc { "zero-copy" } else { "copy" },
            n,
            if n == 1 { "" } else { "s" }
        ),
    })
}

fn xdp_error(ifname: &str, what: &'static str, errno: c_int) -> UplinkError {
    let e = io::Error::from_raw_os_error(errno);
    match errno {
        libc::EPERM | libc::EACCES => UplinkError::Permission {
            what,
            ifname: ifname.to_string(),
        },
        libc::EAFNOSUPPORT | libc::EOPNOTSUPP | libc::ENOPROTOOPT => {
            no_xdp(ifname, format!("{what}: {e}"))
        }
        _ => no_xdp(ifname, format!("{what}: {e}")),
    }
}

fn zerocopy(fd: RawFd) -> bool {
    let mut v: u32 = 0;
    let mut len = 4 as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for writes of the option's size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_OPTIONS,
            &mut v as *mut u32 as *mut c_void,
            &mut len,
        )
    };
    r == 0 && v & XDP_OPTIONS_ZEROCOPY != 0
}

/// Kicks the kernel to look at a socket's rings (needed when the ring asks for it).
fn kick(fd: RawFd, tx: bool) {
    // SAFETY: a send or receive without data on an AF_XDP socket only wakes the kernel side.
    unsafe {
        if tx {
            libc::sendto(
                fd,
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            );
        } else {
            libc::recvfrom(
                fd,
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }
}

struct XdpRx {
    s: Arc<Sockets>,
    ep: OwnedFd,
    next: usize,
}

impl HostRx for XdpRx {
    fn fd(&self) -> RawFd {
        self.ep.as_raw_fd()
    }

    fn recv(&mut self, max: usize, f: &mut FrameFn<'_>) -> io::Result<usize> {
        let nq = self.s.queues.len();
        let mut total = 0;
        for k in 0..nq {
            let qi = (self.next + k) % nq;
            let q = self.s.q(qi);
            let (rx, fill) = (ring(&q.rx), ring(&q.fill));
            let (n, i) = rx.peek(((max - total) as u32).min(256));
            if n == 0 {
                if fill.needs_wakeup() {
                    kick(q.fd, false);
                }
                continue;
            }
            let mut addrs = [0u64; 256];
            let mut m = 0usize;
            for j in 0..n {
                // SAFETY: `i + j` is an RX entry the kernel produced and we have not released.
                let (addr, len) = unsafe {
                    let d = rx.desc(i.wrapping_add(j));
                    ((*d).addr, (*d).len as usize)
                };
                let base = (addr as usize / FRAME) * FRAME;
                let off = addr as usize;
                if off + len <= q.area.len() && off + len <= base + FRAME {
                    // SAFETY: the frame's bytes are inside the UMEM (checked) and ours until
                    // the frame goes back to the fill ring below.
                    let frame = unsafe { std::slice::from_raw_parts(q.area.ptr().add(off), len) };
                    f(frame, None);
                }
                if m < addrs.len() {
                    addrs[m] = base as u64;
                    m += 1;
                }
            }
            rx.release(n);
            // The frames go back to the fill ring (it has room: they came from it).
            if let Some(fi) = fill.reserve(m as u32) {
                for (j, a) in addrs[..m].iter().enumerate() {
                    // SAFETY: entry of the fill ring reserved above.
                    unsafe { *fill.addr(fi.wrapping_add(j as u32)) = *a };
                }
                fill.submit(m as u32);
            }
            if fill.needs_wakeup() {
                kick(q.fd, false);
            }
            total += n as usize;
            if total >= max {
                self.next = (qi + 1) % nq;
                break;
            }
        }
        Ok(total)
    }
}

struct XdpTx {
    s: Arc<Sockets>,
    /// UMEM addresses of queue 0's TX frames not in flight.
    free: Vec<u64>,
    queued: u32,
}

impl XdpTx {
    fn reap(&mut self) {
        let comp = ring(&self.s.q(0).comp);
        let (n, i) = comp.peek(RING);
        for j in 0..n {
            // SAFETY: `i + j` is a completion entry the kernel produced.
            self.free.push(unsafe { *comp.addr(i.wrapping_add(j)) });
        }
        if n > 0 {
            comp.release(n);
        }
    }
}

impl HostTx for XdpTx {
    fn fd(&self) -> RawFd {
        self.s.q(0).fd
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        if frame.len() > FRAME {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        if self.free.is_empty() {
            self.reap();
        }
        let Some(&addr) = self.free.last() else {
            return Ok(false);
        };
        let q = self.s.q(0);
        let tx = ring(&q.tx);
        let Some(i) = tx.reserve(1) else {
            return Ok(false);
        };
        self.free.pop();
        // SAFETY: `addr` is a TX frame of the UMEM not in flight (it came back through the
        // completion ring or was never sent), FRAME bytes long; the TX entry was reserved.
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                q.area.ptr().add(addr as usize),
                frame.len(),
            );
            let d = tx.desc(i);
            (*d).addr = addr;
            (*d).len = frame.len() as u32;
            (*d).options = 0;
        }
        tx.submit(1);
        self.queued += 1;
        if self.queued >= 64 {
            self.flush()?;
        }
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        let q = self.s.q(0);
        if self.queued > 0 || ring(&q.tx).needs_wakeup() {
            kick(q.fd, true);
            self.queued = 0;
        }
        self.reap();
        Ok(())
    }
}
