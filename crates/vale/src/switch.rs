//! A switch file: creation by the first opener, the port table, reclaiming dead owners,
//! and removal by the last one out. Control-plane changes happen under the file's `flock`,
//! which the kernel releases if its holder dies.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering::*};

use netmap::{RegionConfig, SharedMem};

use crate::error::ValeError;
use crate::layout::*;
use crate::sys::{self, Mapping};

/// Environment variable naming the directory of the shared-memory files.
pub const SHM_DIR_ENV: &str = "PTVMM_SHM_DIR";

/// The directory for switch files: `explicit`, else `$PTVMM_SHM_DIR`, else `/dev/shm`.
pub fn shm_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    std::env::var_os(SHM_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"))
}

/// Path of switch `sw`'s file.
pub fn switch_path(dir: &Path, sw: &str) -> PathBuf {
    dir.join(format!("ptvmm-vale.{sw}"))
}

/// Path of a port's region file.
pub fn port_path(dir: &Path, sw: &str, idx: u32, gen: u32) -> PathBuf {
    dir.join(format!("ptvmm-vale.{sw}.{idx}.{gen}"))
}

/// A consistent snapshot of one port-table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub idx: u32,
    pub gen: u32,
    pub owner: u32,
    pub name: String,
    pub config: RegionConfig,
    pub region_size: u64,
    pub file_size: u64,
    /// `FLAG_*` bits (lossless, ...); unknown bits are ignored.
    pub flags: u32,
    /// Length of the virtio-net header on the port's frames (0, 10 or 12).
    pub hdr_len: u32,
}

impl EntryInfo {
    /// Whether the port sends losslessly (a full destination holds it).
    pub fn lossless(&self) -> bool {
        self.flags & FLAG_LOSSLESS != 0
    }

    /// Whether the port was made persistent (`ptvmm-vale-ctl create`): it stays until removed.
    pub fn persistent(&self) -> bool {
        self.flags & FLAG_PERSISTENT != 0
    }

    /// Whether nobody has the port open: a persistent port between openers (owner 0).
    pub fn idle(&self) -> bool {
        self.persistent() && self.owner == 0
    }

    /// Whether the port's owner is a process that no longer exists (an idle persistent port
    /// has no owner and is never stale).
    pub fn stale(&self) -> bool {
        !self.idle() && !sys::alive(self.owner)
    }
}

/// An open switch file.
#[derive(Debug)]
pub struct SwitchFile {
    pub dir: PathBuf,
    pub name: String,
    pub path: PathBuf,
    fd: OwnedFd,
    map: Mapping,
}

impl SwitchFile {
    /// Opens switch `sw` in `dir` and returns it with its flock held. With `create`, a
    /// missing switch is created (and initialised); else a missing one is an error.
    pub fn open_locked(dir: &Path, sw: &str, create: bool) -> Result<SwitchFile, ValeError> {
        let path = switch_path(dir, sw);
        loop {
            let fd = match sys::open_rw(&path, create, false) {
                Ok(fd) => fd,
                Err(e) if !create && e.raw_os_error() == Some(libc::ENOENT) => {
                    return Err(ValeError::NoSwitch(sw.to_string()))
                }
                Err(e) => return Err(ValeError::io(&path)(e)),
            };
            sys::flock_ex(fd.as_raw_fd(), false).map_err(ValeError::io(&path))?;
            let (size, ino) = sys::fstat(fd.as_raw_fd()).map_err(ValeError::io(&path))?;
            if sys::path_inode(&path) != Some(ino) {
                // The last port of the previous incarnation removed it meanwhile: retry.
                continue;
            }
            if size == 0 {
                sys::ftruncate(fd.as_raw_fd(), SWITCH_FILE_SIZE as u64)
                    .map_err(ValeError::io(&path))?;
            } else if size != SWITCH_FILE_SIZE as u64 {
                return Err(ValeError::NotASwitch(path));
            }
            let map =
                Mapping::new(fd.as_raw_fd(), SWITCH_FILE_SIZE).map_err(ValeError::io(&path))?;
            let mem = map.mem();
            if size == 0 {
                mem.store_u32(HDR_VERSION, VERSION, Relaxed);
                mem.store_u32(HDR_MAX_PORTS, MAX_PORTS, Relaxed);
                mem.store_u32(HDR_NEXT_GEN, 1, Relaxed);
                mem.store_u64(HDR_MAGIC, MAGIC, Release);
            } else if mem.load_u64(HDR_MAGIC, Acquire) != MAGIC
                || mem.load_u32(HDR_VERSION, Relaxed) != VERSION
            {
                return Err(ValeError::NotASwitch(path));
            }
            return Ok(SwitchFile {
                dir: dir.to_path_buf(),
                name: sw.to_string(),
                path,
                fd,
                map,
            });
        }
    }

    /// The mapped switch file.
    pub fn mem(&self) -> SharedMem {
        self.map.mem()
    }

    /// Takes the control-plane lock again (blocking, or not with `nonblock`).
    pub fn lock(&self, nonblock: bool) -> bool {
        sys::flock_ex(self.fd.as_raw_fd(), nonblock).unwrap_or(false)
    }

    /// Releases the control-plane lock.
    pub fn unlock(&self) {
        sys::flock_un(self.fd.as_raw_fd());
    }

    /// A snapshot of entry `idx` if it is active (lock-free; consistent via gen re-check).
    pub fn entry(&self, idx: u32) -> Option<EntryInfo> {
        read_entry(&self.mem(), idx)
    }

    /// Frees every ephemeral port whose owner process is dead and removes its file; a
    /// persistent port whose opener died is only detached (owner 0), as if closed. Lock held.
    /// Returns the number of ports freed or detached.
    pub fn reclaim_dead(&self) -> usize {
        let mut n = 0;
        for idx in 0..MAX_PORTS {
            if let Some(e) = self.entry(idx) {
                if e.stale() && e.persistent() {
                    log::warn!(
                        "vale{}:{}: opener {} is gone, the persistent port stays",
                        self.name,
                        e.name,
                        e.owner
                    );
                    self.release_entry(idx, e.gen, e.owner);
                    n += 1;
                } else if e.stale() {
                    log::warn!(
                        "vale{}:{}: owner {} is gone, reclaiming the port",
                        self.name,
                        e.name,
                        e.owner
                    );
                    self.free_entry(idx, e.gen);
                    n += 1;
                }
            }
        }
        n
    }

    /// Marks entry `idx` free and removes its file. Lock held.
    pub fn free_entry(&self, idx: u32, gen: u32) {
        let mem = self.mem();
        let e = entry(idx);
        if mem.load_u32(e + E_GEN, Relaxed) != gen {
            return;
        }
        mem.store_u32(e + E_STATE, STATE_FREE, Release);
        mem.atomic_u32(HDR_PORT_VERSION).fetch_add(1, Release);
        sys::unlink(&port_path(&self.dir, &self.name, idx, gen));
    }

    /// Gives persistent entry `idx` (generation `gen`) to process `pid` with flags `flags`
    /// (the persistent bit is kept). Lock held.
    pub fn attach_entry(&self, idx: u32, gen: u32, pid: u32, flags: u32) {
        let mem = self.mem();
        let e = entry(idx);
        if mem.load_u32(e + E_GEN, Relaxed) != gen {
            return;
        }
        mem.store_u32(e + E_OWNER, pid, Relaxed);
        mem.store_u32(e + E_FLAGS, flags | FLAG_PERSISTENT, Relaxed);
        mem.atomic_u32(HDR_PORT_VERSION).fetch_add(1, Release);
    }

    /// Detaches persistent entry `idx` (generation `gen`) from its opener `pid`: owner 0, the
    /// file and the entry stay. Lock held.
    pub fn release_entry(&self, idx: u32, gen: u32, pid: u32) {
        let mem = self.mem();
        let e = entry(idx);
        if mem.load_u32(e + E_GEN, Relaxed) != gen || mem.load_u32(e + E_OWNER, Relaxed) != pid {
            return;
        }
        mem.store_u32(e + E_OWNER, 0, Relaxed);
        mem.atomic_u32(HDR_PORT_VERSION).fetch_add(1, Release);
    }

    /// Index of the active port named `port`, if any.
    pub fn find(&self, port: &str) -> Option<EntryInfo> {
        (0..MAX_PORTS)
            .filter_map(|i| self.entry(i))
            .find(|e| e.name == port)
    }

    /// Number of active ports.
    pub fn active_ports(&self) -> usize {
        (0..MAX_PORTS).filter(|&i| self.entry(i).is_some()).count()
    }

    /// Removes the switch file if no port is active. Lock held. Returns true if removed.
    pub fn remove_if_empty(&self) -> bool {
        if self.active_ports() == 0 {
            sys::unlink(&self.path);
            true
        } else {
            false
        }
    }

    /// Claims a free entry for `port` owned by `pid` (0 for a persistent port nobody has
    /// open yet); returns `(idx, gen)`. Lock held. The
    /// entry is published (state active) by [`SwitchFile::publish`] once its file exists.
    pub fn alloc(
        &self,
        port: &str,
        pid: u32,
        cfg: &RegionConfig,
        region: u64,
        file: u64,
        flags: u32,
    ) -> Result<(u32, u32), ValeError> {
        let mem = self.mem();
        let idx = (0..MAX_PORTS)
            .find(|&i| mem.load_u32(entry(i) + E_STATE, Acquire) == STATE_FREE)
            .ok_or_else(|| ValeError::SwitchFull(self.name.clone()))?;
        let gen = mem.atomic_u32(HDR_NEXT_GEN).fetch_add(1, Relaxed).max(1);
        let e = entry(idx);
        mem.store_u32(e + E_GEN, gen, Relaxed);
        mem.store_u32(e + E_OWNER, pid, Relaxed);
        mem.store_u32(e + E_TX_RINGS, cfg.tx_rings, Relaxed);
        mem.store_u32(e + E_RX_RINGS, cfg.rx_rings, Relaxed);
        mem.store_u32(e + E_TX_SLOTS, cfg.tx_slots, Relaxed);
        mem.store_u32(e + E_RX_SLOTS, cfg.rx_slots, Relaxed);
        mem.store_u32(e + E_BUF_SIZE, cfg.buf_size, Relaxed);
        mem.store_u64(e + E_REGION_SIZE, region, Relaxed);
        mem.store_u64(e + E_FILE_SIZE, file, Relaxed);
        mem.store_u32(e + E_FLAGS, flags, Relaxed);
        mem.store_u32(e + E_HDR_LEN, 0, Relaxed);
        let mut name = [0u8; NAME_MAX + 1];
        name[..port.len()].copy_from_slice(port.as_bytes());
        mem.write_bytes(e + E_NAME, &name);
        for c in [
            E_TX_PKTS, E_TX_BYTES, E_TX_BAD, E_RX_PKTS, E_RX_BYTES, E_RX_DROPS,
        ] {
            mem.store_u64(e + c, 0, Relaxed);
        }
        Ok((idx, gen))
    }

    /// Sets the virtio-net header length of active entry `idx` and bumps the port version,
    /// so senders refresh their view of it before their next batch.
    pub fn set_hdr_len(&self, idx: u32, len: u32) {
        let mem = self.mem();
        mem.store_u32(entry(idx) + E_HDR_LEN, len, Release);
        mem.atomic_u32(HDR_PORT_VERSION).fetch_add(1, Release);
    }

    /// Zeroes the counters of entry `idx` (for the fuzz targets' resets).
    pub(crate) fn zero_counters(&self, idx: u32) {
        let mem = self.mem();
        let e = entry(idx);
        for c in [
            E_TX_PKTS, E_TX_BYTES, E_TX_BAD, E_RX_PKTS, E_RX_BYTES, E_RX_DROPS,
        ] {
            mem.store_u64(e + c, 0, Relaxed);
        }
    }

    /// Empties the MAC table (for the fuzz targets' resets: nothing learnt before).
    pub(crate) fn clear_macs(&self) {
        self.mem().fill(MAC_OFS, MAC_BUCKETS * 8, 0);
    }

    /// Makes entry `idx` visible to everyone. Lock held.
    pub fn publish(&self, idx: u32) {
        let mem = self.mem();
        mem.store_u32(entry(idx) + E_STATE, STATE_ACTIVE, Release);
        mem.atomic_u32(HDR_PORT_VERSION).fetch_add(1, Release);
    }
}

/// Reads entry `idx` of a mapped switch file; None unless active and stable while read.
pub fn read_entry(mem: &SharedMem, idx: u32) -> Option<EntryInfo> {
    if idx >= MAX_PORTS {
        return None;
    }
    let e = entry(idx);
    if mem.load_u32(e + E_STATE, Acquire) != STATE_ACTIVE {
        return None;
    }
    let gen = mem.load_u32(e + E_GEN, Acquire);
    let mut name = [0u8; NAME_MAX + 1];
    mem.read_bytes(e + E_NAME, &mut name);
    let end = name.iter().position(|&b| b == 0).unwrap_or(NAME_MAX);
    let info = EntryInfo {
        idx,
        gen,
        owner: mem.load_u32(e + E_OWNER, Relaxed),
        name: String::from_utf8_lossy(&name[..end]).into_owned(),
        config: RegionConfig {
            tx_rings: mem.load_u32(e + E_TX_RINGS, Relaxed),
            rx_rings: mem.load_u32(e + E_RX_RINGS, Relaxed),
            tx_slots: mem.load_u32(e + E_TX_SLOTS, Relaxed),
            rx_slots: mem.load_u32(e + E_RX_SLOTS, Relaxed),
            buf_size: mem.load_u32(e + E_BUF_SIZE, Relaxed),
        },
        region_size: mem.load_u64(e + E_REGION_SIZE, Relaxed),
        file_size: mem.load_u64(e + E_FILE_SIZE, Relaxed),
        flags: mem.load_u32(e + E_FLAGS, Relaxed),
        hdr_len: mem.load_u32(e + E_HDR_LEN, Relaxed),
    };
    fence(Acquire);
    if mem.load_u32(e + E_STATE, Relaxed) != STATE_ACTIVE || mem.load_u32(e + E_GEN, Relaxed) != gen
    {
        return None;
    }
    Some(info)
}
