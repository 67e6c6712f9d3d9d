//! Thin, safe wrappers over the system calls the switch needs: files, mmap, flock, futex,
//! process liveness.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use netmap::SharedMem;

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens `path` read-write, creating it (mode 0600) if `create`, exclusively if `excl`.
pub fn open_rw(path: &Path, create: bool, excl: bool) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    let mut flags = libc::O_RDWR | libc::O_CLOEXEC;
    if create {
        flags |= libc::O_CREAT;
    }
    if excl {
        flags |= libc::O_EXCL;
    }
    // SAFETY: `c` is a valid NUL-terminated path; the mode argument is read only with O_CREAT.
    let fd = unsafe { libc::open(c.as_ptr(), flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Size and inode of an open file.
pub fn fstat(fd: RawFd) -> io::Result<(u64, u64)> {
    // SAFETY: `libc::stat` is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer for the duration of the call.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.st_size as u64, st.st_ino))
}

/// Inode of a path, or None if it does not exist.
pub fn path_inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

/// Sets the size of an open file.
pub fn ftruncate(fd: RawFd, size: u64) -> io::Result<()> {
    // SAFETY: ftruncate(2) on a descriptor we own; no memory is passed.
    if unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes (or with `nonblock`, tries to take) the exclusive flock of `fd`. Returns false if
/// `nonblock` and the lock is held elsewhere.
pub fn flock_ex(fd: RawFd, nonblock: bool) -> io::Result<bool> {
    let op = libc::LOCK_EX | if nonblock { libc::LOCK_NB } else { 0 };
    loop {
        // SAFETY: flock(2) on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(fd, op) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if nonblock => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// Releases the flock of `fd`.
pub fn flock_un(fd: RawFd) {
    // SAFETY: flock(2) on a descriptor we own; no memory is passed.
    unsafe { libc::flock(fd, libc::LOCK_UN) };
}

/// A shared, read-write memory mapping of a whole file, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is process-wide memory; all access goes through `SharedMem`'s atomic
// and raw-copy accessors, so sharing the owner between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: a shared `&Mapping` only hands out `SharedMem` windows, whose accessors are atomic
// or raw copies, so concurrent use from several threads is sound.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` from offset 0, shared and read-write.
    pub fn new(fd: RawFd, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL); it overlaps nothing we own.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Mapping { ptr, len })
    }

    /// The mapped window. Valid while `self` lives; callers keep the `Mapping` alive (e.g.
    /// in an `Arc`) alongside any copy.
    pub fn mem(&self) -> SharedMem {
        // Every holder of the window also holds the mapping.
        // SAFETY: `ptr..ptr + len` is a live read-write mapping (page aligned) until `self` drops.
        unsafe { SharedMem::new(self.ptr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the range mmap(2) returned; no window outlives the owner.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Opens and maps a whole file of at least `min_len` bytes.
pub fn map_file(path: &Path, min_len: usize) -> io::Result<(OwnedFd, Mapping)> {
    let fd = open_rw(path, false, false)?;
    let (size, _) = fstat(fd.as_raw_fd())?;
    if (size as usize) < min_len {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let m = Mapping::new(fd.as_raw_fd(), min_len)?;
    Ok((fd, m))
}

/// The calling process id.
pub fn getpid() -> u32 {
    std::process::id()
}

/// The calling thread id (unique system-wide while the thread lives). Asked of the kernel
/// once per thread and kept: every txsync needs it, and a system call per sync is a cost the
/// forwarding path does not otherwise pay. A child of fork(2) would inherit its parent's
/// value; ports are never used across a fork (a port belongs to the process that opened it).
pub fn gettid() -> u32 {
    thread_local! {
        // SAFETY: gettid(2) takes no arguments and cannot fail.
        static TID: u32 = unsafe { libc::gettid() as u32 };
    }
    TID.with(|t| *t)
}

/// Whether process (or thread) `pid` exists. EPERM counts as alive.
/// A zombie (exited, not yet reaped by its parent: a killed party whose parent, or a PID 1
/// that reaps late, has not collected it) counts as gone, so its port is reclaimed at once.
pub fn alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission; nothing is delivered.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the last ')' (the command name may contain one).
        Ok(s) => !matches!(
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next()),
            Some(Some('Z' | 'X'))
        ),
        Err(_) => true, // no /proc (or not ours to read): kill() said it exists
    }
}

/// Sleeps while `*word == expected` (non-private futex: works across processes on a shared
/// file mapping), at most `timeout`. Spurious returns are possible.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // FUTEX_WAIT only reads the word.
    // SAFETY: `word` is a live, aligned u32; `tsp` is null or points to `ts`, alive for the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            tsp,
            0usize,
            0u32,
        )
    };
}

/// Wakes every waiter on `word` in any process.
pub fn futex_wake(word: &AtomicU32) {
    // FUTEX_WAKE uses the address only as a key.
    // SAFETY: `word` is a live, aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            0usize,
            0usize,
            0u32,
        )
    };
}

/// Removes a file, ignoring "not found".
pub fn unlink(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            log::warn!("cannot remove {}: {e}", path.display());
        }
    }
}

/// Creates a file of `size` bytes exclusively and maps it.
pub fn create_and_map(path: &Path, size: usize) -> io::Result<(OwnedFd, Mapping)> {
    let fd = open_rw(path, true, true)?;
    let r = ftruncate(fd.as_raw_fd(), size as u64).and_then(|_| Mapping::new(fd.as_raw_fd(), size));
    match r {
        Ok(m) => Ok((fd, m)),
        Err(e) => {
            unlink(path);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_not_alive() {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        std::thread::sleep(std::time::Duration::from_millis(300));
        // SAFETY: signal 0 to our own unreaped child only checks that it exists.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        assert_eq!(r, 0, "it still exists");
        assert!(!alive(pid), "but an unreaped child is not alive");
        c.wait().unwrap();
        assert!(alive(std::process::id()));
        assert!(alive(gettid()), "a thread id counts too");
    }
}
