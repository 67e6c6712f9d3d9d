//! The one module that reads and writes shared memory: bounds-checked atomics and copies.
//!
//! Memory shared with another process or a guest may change under our feet at any time, so
//! no `&T`/`&mut T` to it is ever created except for atomic types (whose interior mutability
//! makes concurrent writes well defined). Plain byte ranges are moved with raw-pointer copies.
//!
//! Every accessor checks `offset + size <= len` and natural alignment and panics otherwise:
//! callers validate untrusted indices *before* computing offsets, so a panic here means a
//! bug in ptvmm, never undefined behaviour.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU32, AtomicU64, Ordering};

/// A window of shared memory: a base pointer and a length. Cheap to copy.
///
/// It does not own the memory: whoever creates it (unsafely) guarantees that the range stays
/// mapped for as long as any copy of it is used.
#[derive(Debug, Clone, Copy)]
pub struct SharedMem {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: `SharedMem` is only a pointer and a length to memory that every user accesses
// through atomics or raw copies; moving the handle to another thread adds no aliasing.
unsafe impl Send for SharedMem {}
// SAFETY: `&SharedMem` exposes only atomic and raw-copy accessors, so sharing the handle
// between threads adds no aliasing either.
unsafe impl Sync for SharedMem {}

impl SharedMem {
    /// Wraps `len` bytes at `base`.
    ///
    /// # Safety
    /// `base..base + len` must be mapped, readable and writable for as long as this value or
    /// any copy or sub-window of it is used, and `base` must be at least 8-byte aligned.
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> Self {
        assert_eq!(
            base.as_ptr() as usize % 8,
            0,
            "shared memory base must be 8-byte aligned"
        );
        SharedMem { base, len }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The base pointer (for handing the mapping to, e.g., KVM).
    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// A sub-window `offset..offset + len`.
    pub fn sub(&self, offset: usize, len: usize) -> SharedMem {
        self.check(offset, len, 8);
        SharedMem {
            // SAFETY: `check` proved `offset + len <= self.len`, so the pointer stays inside (or
            // one past the end of) the mapping and is not null.
            base: unsafe { NonNull::new_unchecked(self.base.as_ptr().add(offset)) },
            len,
        }
    }

    /// Whether `offset..offset + size` lies inside the window.
    pub fn contains(&self, offset: usize, size: usize) -> bool {
        offset.checked_add(size).is_some_and(|end| end <= self.len)
    }

    #[inline(always)]
    fn check(&self, offset: usize, size: usize, align: usize) {
        if !(self.contains(offset, size) && offset.is_multiple_of(align)) {
            out_of_bounds(offset, size, self.len);
        }
    }

    /// The atomic `u32` at `offset` (for futexes and read-modify-write operations).
    #[inline(always)]
    pub fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4, 4);
        // SAFETY: the word is in bounds and 4-byte aligned (checked; the base is 8-aligned),
        // mapped per `new`'s contract, and `AtomicU32` tolerates concurrent access.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    /// The atomic `u64` at `offset`.
    #[inline(always)]
    pub fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8, 8);
        // SAFETY: the word is in bounds and 8-byte aligned (checked), mapped per `new`'s
        // contract, and `AtomicU64` tolerates concurrent access.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    #[inline(always)]
    fn atomic_u16(&self, offset: usize) -> &AtomicU16 {
        self.check(offset, 2, 2);
        // SAFETY: the word is in bounds and 2-byte aligned (checked), mapped per `new`'s
        // contract, and `AtomicU16` tolerates concurrent access.
        unsafe { AtomicU16::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    #[inline(always)]
    fn atomic_i64(&self, offset: usize) -> &AtomicI64 {
        self.check(offset, 8, 8);
        // SAFETY: the word is in bounds and 8-byte aligned (checked), mapped per `new`'s
        // contract, and `AtomicI64` tolerates concurrent access.
        unsafe { AtomicI64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    /// Loads a `u16`.
    #[inline(always)]
    pub fn load_u16(&self, offset: usize, order: Ordering) -> u16 {
        self.atomic_u16(offset).load(order)
    }

    /// Stores a `u16`.
    #[inline(always)]
    pub fn store_u16(&self, offset: usize, value: u16, order: Ordering) {
        self.atomic_u16(offset).store(value, order)
    }

    /// Loads a `u32`.
    #[inline(always)]
    pub fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        self.atomic_u32(offset).load(order)
    }

    /// Stores a `u32`.
    #[inline(always)]
    pub fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        self.atomic_u32(offset).store(value, order)
    }

    /// Loads a `u64`.
    #[inline(always)]
    pub fn load_u64(&self, offset: usize, order: Ordering) -> u64 {
        self.atomic_u64(offset).load(order)
    }

    /// Stores a `u64`.
    #[inline(always)]
    pub fn store_u64(&self, offset: usize, value: u64, order: Ordering) {
        self.atomic_u64(offset).store(value, order)
    }

    /// Adds to a `u64` counter.
    #[inline(always)]
    pub fn add_u64(&self, offset: usize, value: u64) {
        if value != 0 {
            self.atomic_u64(offset).fetch_add(value, Ordering::Relaxed);
        }
    }

    /// Loads an `i64`.
    #[inline(always)]
    pub fn load_i64(&self, offset: usize, order: Ordering) -> i64 {
        self.atomic_i64(offset).load(order)
    }

    /// Stores an `i64`.
    #[inline(always)]
    pub fn store_i64(&self, offset: usize, value: i64, order: Ordering) {
        self.atomic_i64(offset).store(value, order)
    }

    /// Hints the CPU to bring the cache line at `offset` closer (no effect if out of
    /// bounds; never faults).
    #[inline(always)]
    pub fn prefetch(&self, offset: usize) {
        #[cfg(target_arch = "x86_64")]
        if offset < self.len {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = self.base.as_ptr().wrapping_add(offset);
            // SAFETY: a prefetch is a hint that never faults or changes memory (p is in bounds).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = offset;
    }

    /// Copies `dst.len()` bytes at `offset` out of shared memory.
    #[inline(always)]
    pub fn read_bytes(&self, offset: usize, dst: &mut [u8]) {
        self.check(offset, dst.len(), 1);
        // `dst` is private memory that cannot overlap a mapping reached only by raw pointers.
        // SAFETY: the source range is in bounds (checked) and mapped.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            )
        }
    }

    /// Copies `src` into shared memory at `offset`.
    #[inline(always)]
    pub fn write_bytes(&self, offset: usize, src: &[u8]) {
        self.check(offset, src.len(), 1);
        // `src` is private memory, so the ranges do not overlap.
        // SAFETY: the destination range is in bounds (checked) and mapped writable.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.as_ptr().add(offset), src.len())
        }
    }

    /// Fills `len` bytes at `offset` with `byte`.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) {
        self.check(offset, len, 1);
        // SAFETY: in bounds (checked) and mapped writable.
        unsafe { std::ptr::write_bytes(self.base.as_ptr().add(offset), byte, len) }
    }

    /// Copies `len` bytes from `self[src_offset..]` to `dst[dst_offset..]`.
    ///
    /// The two ranges may belong to different mappings; if they are in the same mapping they
    /// must not overlap (buffers of a netmap pool never do).
    #[inline(always)]
    pub fn copy_to(&self, src_offset: usize, dst: &SharedMem, dst_offset: usize, len: usize) {
        self.check(src_offset, len, 1);
        dst.check(dst_offset, len, 1);
        let src = self.base.as_ptr().wrapping_add(src_offset);
        let dstp = dst.base.as_ptr().wrapping_add(dst_offset);
        if !(src.wrapping_add(len) <= dstp || dstp.wrapping_add(len) <= src) {
            overlapping_copy();
        }
        // SAFETY: both ranges are in bounds of live mappings and do not overlap (both checked).
        unsafe { std::ptr::copy_nonoverlapping(src, dstp, len) }
    }
}

/// The failure of [`SharedMem`]'s bounds check, out of line: the checks sit on every
/// forwarded frame's path, where preparing a panic message inline costs instructions.
#[cold]
#[inline(never)]
#[track_caller]
fn out_of_bounds(offset: usize, size: usize, len: usize) -> ! {
    panic!(
        "shared memory access out of bounds or misaligned: offset {offset} size {size} len {len}"
    )
}

/// The failure of [`SharedMem::copy_to`]'s overlap check, out of line.
#[cold]
#[inline(never)]
#[track_caller]
fn overlapping_copy() -> ! {
    panic!("overlapping shared memory copy")
}

#[cfg(test)]
pub(crate) mod testmem {
    //! Heap-backed shared memory for unit tests.
    use super::*;

    /// A zeroed, 64-byte aligned heap block exposed as [`SharedMem`].
    pub struct TestMem {
        buf: Vec<u64>,
        len: usize,
    }

    impl TestMem {
        pub fn new(len: usize) -> Self {
            TestMem {
                buf: vec![0u64; len.div_ceil(8) + 8],
                len,
            }
        }

        pub fn mem(&mut self) -> SharedMem {
            let ptr = self.buf.as_mut_ptr().cast::<u8>();
            let pad = ptr.align_offset(64);
            assert!(pad + self.len <= self.buf.len() * 8);
            // SAFETY: the heap block lives as long as `self`, which keeps it alive while the window
            // is used, and `pad` (< 64) 64-aligns the base inside the block's 64 spare bytes.
            unsafe { SharedMem::new(NonNull::new(ptr.add(pad)).unwrap(), self.len) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testmem::TestMem;
    use super::*;

    #[test]
    fn loads_and_stores_round_trip() {
        let mut t = TestMem::new(256);
        let m = t.mem();
        m.store_u32(4, 0xdead_beef, Ordering::Relaxed);
        m.store_u16(8, 0x1234, Ordering::Relaxed);
        m.store_u64(16, u64::MAX - 1, Ordering::Relaxed);
        m.store_i64(24, -5, Ordering::Relaxed);
        assert_eq!(m.load_u32(4, Ordering::Relaxed), 0xdead_beef);
        assert_eq!(m.load_u16(8, Ordering::Relaxed), 0x1234);
        assert_eq!(m.load_u64(16, Ordering::Relaxed), u64::MAX - 1);
        assert_eq!(m.load_i64(24, Ordering::Relaxed), -5);
        let mut b = [0u8; 4];
        m.read_bytes(4, &mut b);
        assert_eq!(b, 0xdead_beefu32.to_le_bytes());
        m.write_bytes(100, b"hello");
        m.copy_to(100, &m, 200, 5);
        let mut out = [0u8; 5];
        m.read_bytes(200, &mut out);
        assert_eq!(&out, b"hello");
        let s = m.sub(64, 64);
        assert_eq!(s.load_u64(0, Ordering::Relaxed), 0);
        assert!(m.contains(0, 256));
        assert!(!m.contains(usize::MAX, 2));
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn out_of_bounds_panics() {
        let mut t = TestMem::new(64);
        let m = t.mem();
        m.load_u32(m.len(), Ordering::Relaxed);
    }

    #[test]
    #[should_panic(expected = "misaligned")]
    fn misaligned_panics() {
        let mut t = TestMem::new(64);
        let m = t.mem();
        m.load_u32(2, Ordering::Relaxed);
    }
}
