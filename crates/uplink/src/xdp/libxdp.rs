//! libxdp's xsk API as `xdp` uses it: the `struct xsk_ring_*` with the `static inline` ring
//! helpers of `<xdp/xsk.h>` re-implemented, the `repr(C)` descriptor and configurations, and
//! the functions `dlopen("libxdp.so.1")` gives (see the parent module).

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::sync::OnceLock;

use super::XDP_RING_NEED_WAKEUP;

/// `struct xsk_ring_prod` / `struct xsk_ring_cons` of `<xdp/xsk.h>`.
#[repr(C)]
pub(super) struct Ring {
    pub(super) cached_prod: u32,
    pub(super) cached_cons: u32,
    pub(super) mask: u32,
    pub(super) size: u32,
    pub(super) producer: *mut u32,
    pub(super) consumer: *mut u32,
    pub(super) ring: *mut c_void,
    pub(super) flags: *mut u32,
}

impl Ring {
    pub(super) fn empty() -> Ring {
        Ring {
            cached_prod: 0,
            cached_cons: 0,
            mask: 0,
            size: 0,
            producer: std::ptr::null_mut(),
            consumer: std::ptr::null_mut(),
            ring: std::ptr::null_mut(),
            flags: std::ptr::null_mut(),
        }
    }

    fn word(p: *mut u32) -> &'static AtomicU32 {
        // SAFETY: libxdp set `p` to a 4-aligned word of the ring mapping, which stays mapped
        // until the socket (or UMEM) is deleted, after both forwarding threads have ended.
        unsafe { &*(p as *const AtomicU32) }
    }

    /// `xsk_ring_prod__reserve`: the index of `nb` free entries, if there are.
    pub(super) fn reserve(&mut self, nb: u32) -> Option<u32> {
        if self.cached_cons.wrapping_sub(self.cached_prod) < nb {
            self.cached_cons = Self::word(self.consumer)
                .load(Acquire)
                .wrapping_add(self.size);
            if self.cached_cons.wrapping_sub(self.cached_prod) < nb {
                return None;
            }
        }
        let i = self.cached_prod;
        self.cached_prod = self.cached_prod.wrapping_add(nb);
        Some(i)
    }

    /// `xsk_ring_prod__submit`.
    pub(super) fn submit(&self, nb: u32) {
        let p = Self::word(self.producer);
        p.store(p.load(Relaxed).wrapping_add(nb), Release);
    }

    /// `xsk_ring_cons__peek`: (entries, first index).
    pub(super) fn peek(&mut self, nb: u32) -> (u32, u32) {
        let mut n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n == 0 {
            self.cached_prod = Self::word(self.producer).load(Acquire);
            n = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        let n = n.min(nb);
        let i = self.cached_cons;
        self.cached_cons = self.cached_cons.wrapping_add(n);
        (n, i)
    }

    /// `xsk_ring_cons__release`.
    pub(super) fn release(&self, nb: u32) {
        let c = Self::word(self.consumer);
        c.store(c.load(Relaxed).wrapping_add(nb), Release);
    }

    pub(super) fn needs_wakeup(&self) -> bool {
        Self::word(self.flags).load(Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    /// Entry `i` of a ring of u64 addresses (fill, completion).
    pub(super) fn addr(&self, i: u32) -> *mut u64 {
        // SAFETY: `i & mask` is inside the ring of `size` u64 entries libxdp mapped.
        unsafe { (self.ring as *mut u64).add((i & self.mask) as usize) }
    }

    /// Entry `i` of a ring of descriptors (RX, TX).
    pub(super) fn desc(&self, i: u32) -> *mut Desc {
        // SAFETY: `i & mask` is inside the ring of `size` descriptors libxdp mapped.
        unsafe { (self.ring as *mut Desc).add((i & self.mask) as usize) }
    }
}

/// `struct xdp_desc`.
#[repr(C)]
pub(super) struct Desc {
    pub(super) addr: u64,
    pub(super) len: u32,
    pub(super) options: u32,
}

/// `struct xsk_umem_config`.
#[repr(C)]
pub(super) struct UmemConfig {
    pub(super) fill_size: u32,
    pub(super) comp_size: u32,
    pub(super) frame_size: u32,
    pub(super) frame_headroom: u32,
    pub(super) flags: u32,
}

/// `struct xsk_socket_config`.
#[repr(C)]
pub(super) struct SocketConfig {
    pub(super) rx_size: u32,
    pub(super) tx_size: u32,
    pub(super) libxdp_flags: u32,
    pub(super) xdp_flags: u32,
    pub(super) bind_flags: u16,
}

pub(super) type UmemCreate = unsafe extern "C" fn(
    *mut *mut c_void,
    *mut c_void,
    u64,
    *mut Ring,
    *mut Ring,
    *const UmemConfig,
) -> c_int;
pub(super) type SocketCreate = unsafe extern "C" fn(
    *mut *mut c_void,
    *const c_char,
    u32,
    *mut c_void,
    *mut Ring,
    *mut Ring,
    *const SocketConfig,
) -> c_int;
pub(super) type UmemDelete = unsafe extern "C" fn(*mut c_void) -> c_int;
pub(super) type SocketDelete = unsafe extern "C" fn(*mut c_void);
pub(super) type SocketFd = unsafe extern "C" fn(*const c_void) -> c_int;
pub(super) type PrintFn = unsafe extern "C" fn(c_int, *const c_char, *mut c_void) -> c_int;
pub(super) type SetPrint = unsafe extern "C" fn(Option<PrintFn>) -> Option<PrintFn>;

/// A print callback for libxdp and libbpf that prints nothing.
unsafe extern "C" fn quiet(_level: c_int, _fmt: *const c_char, _args: *mut c_void) -> c_int {
    0
}

/// The libxdp functions used.
pub(super) struct Lib {
    pub(super) umem_create: UmemCreate,
    pub(super) socket_create: SocketCreate,
    pub(super) umem_delete: UmemDelete,
    pub(super) socket_delete: SocketDelete,
    pub(super) socket_fd: SocketFd,
}

pub(super) fn lib() -> Result<&'static Lib, String> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(|| {
        let name = c"libxdp.so.1";
        // SAFETY: `name` is a valid C string; dlopen runs libxdp's initialisers, which are
        // safe to run in this process.
        let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if h.is_null() {
            return Err("libxdp.so.1 not found (apt-get install libxdp1)".to_string());
        }
        let sym = |s: &std::ffi::CStr| {
            // SAFETY: `h` is a live handle and `s` a valid C string.
            let p = unsafe { libc::dlsym(h, s.as_ptr()) };
            if p.is_null() {
                Err(format!("libxdp.so.1 has no {}", s.to_string_lossy()))
            } else {
                Ok(p)
            }
        };
        // libxdp and libbpf print their notes on stderr; our errors say what failed.
        for f in [c"libxdp_set_print", c"libbpf_set_print"] {
            if let Ok(p) = sym(f) {
                // SAFETY: both take a `int (*)(enum level, const char *, va_list)` and return
                // the previous one; `quiet` has a compatible C ABI and ignores its arguments.
                unsafe {
                    let set = std::mem::transmute::<*mut c_void, SetPrint>(p);
                    set(Some(quiet));
                }
            }
        }
        let (uc, sc, ud, sd, sf) = (
            sym(c"xsk_umem__create")?,
            sym(c"xsk_socket__create")?,
            sym(c"xsk_umem__delete")?,
            sym(c"xsk_socket__delete")?,
            sym(c"xsk_socket__fd")?,
        );
        // SAFETY: each symbol is the libxdp 1.x function of that name, whose C prototype in
        // <xdp/xsk.h> is the function pointer type it is converted to.
        Ok(unsafe {
            Lib {
                umem_create: std::mem::transmute::<*mut c_void, UmemCreate>(uc),
                socket_create: std::mem::transmute::<*mut c_void, SocketCreate>(sc),
                umem_delete: std::mem::transmute::<*mut c_void, UmemDelete>(ud),
                socket_delete: std::mem::transmute::<*mut c_void, SocketDelete>(sd),
                socket_fd: std::mem::transmute::<*mut c_void, SocketFd>(sf),
            }
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_helpers_follow_libxdp() {
        let prod = AtomicU32::new(0);
        let cons = AtomicU32::new(0);
        let flags = AtomicU32::new(0);
        let mut entries = [0u64; 4];
        let mut r = Ring {
            cached_prod: 0,
            cached_cons: 4,
            mask: 3,
            size: 4,
            producer: prod.as_ptr(),
            consumer: cons.as_ptr(),
            ring: entries.as_mut_ptr() as *mut c_void,
            flags: flags.as_ptr(),
        };
        assert_eq!(r.reserve(3), Some(0));
        assert_eq!(r.reserve(2), None, "only one entry left");
        r.submit(3);
        assert_eq!(prod.load(Relaxed), 3);
        // The consumer takes two: two more free.
        cons.store(2, Relaxed);
        assert_eq!(r.reserve(3), Some(3));
        assert!(!r.needs_wakeup());
        let mut c = Ring {
            cached_prod: 0,
            cached_cons: 0,
            mask: 3,
            size: 4,
            producer: prod.as_ptr(),
            consumer: cons.as_ptr(),
            ring: entries.as_mut_ptr() as *mut c_void,
            flags: flags.as_ptr(),
        };
        cons.store(0, Relaxed);
        assert_eq!(c.peek(8), (3, 0));
        c.release(3);
        assert_eq!(cons.load(Relaxed), 3);
        assert_eq!(c.peek(8), (0, 3));
    }
}
