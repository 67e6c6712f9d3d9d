//! Administration for vale-ctl: listing switches, ports and counters; deleting a stale switch.

use std::path::Path;

use crate::error::ValeError;
use crate::layout::{HDR_MAGIC, HDR_VERSION, MAGIC, MAX_PORTS, SWITCH_FILE_SIZE, VERSION};
use crate::port::PortStats;
use crate::switch::{read_entry, shm_dir, switch_path, EntryInfo, SwitchFile};
use crate::sys;

/// One port as listed.
#[derive(Debug, Clone)]
pub struct PortListing {
    pub info: EntryInfo,
    pub alive: bool,
    pub stats: PortStats,
}

/// One switch as listed.
#[derive(Debug, Clone)]
pub struct SwitchListing {
    pub name: String,
    pub ports: Vec<PortListing>,
}

/// Names of the switches present in `dir` (default directory if None).
pub fn switch_names(dir: Option<&Path>) -> Result<Vec<String>, ValeError> {
    let dir = shm_dir(dir);
    let rd = std::fs::read_dir(&dir).map_err(ValeError::io(&dir))?;
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_prefix("ptvmm-vale.").map(str::to_string))
        .filter(|n| crate::name::valid_switch(n))
        .collect();
    v.sort();
    Ok(v)
}

/// Lists switch `sw` without taking its lock.
pub fn list_switch(dir: Option<&Path>, sw: &str) -> Result<SwitchListing, ValeError> {
    let dir = shm_dir(dir);
    let path = switch_path(&dir, sw);
    let (_fd, map) = sys::map_file(&path, SWITCH_FILE_SIZE).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            ValeError::NoSwitch(sw.to_string())
        } else {
            ValeError::io(&path)(e)
        }
    })?;
    let mem = map.mem();
    use std::sync::atomic::Ordering::{Acquire, Relaxed};
    if mem.load_u64(HDR_MAGIC, Acquire) != MAGIC || mem.load_u32(HDR_VERSION, Relaxed) != VERSION {
        return Err(ValeError::NotASwitch(path));
    }
    let ports = (0..MAX_PORTS)
        .filter_map(|i| read_entry(&mem, i))
        .map(|info| PortListing {
            alive: sys::alive(info.owner),
            stats: PortStats::read(&mem, info.idx),
            info,
        })
        .collect();
    Ok(SwitchListing {
        name: sw.to_string(),
        ports,
    })
}

/// Lists every switch in `dir`.
pub fn list(dir: Option<&Path>) -> Result<Vec<SwitchListing>, ValeError> {
    switch_names(dir)?
        .iter()
        .map(|s| list_switch(dir, s))
        .collect()
}

/// Removes switch `sw` and its port files. Refuses while a port's owner is alive unless
/// `force`.
pub fn delete(dir: Option<&Path>, sw: &str, force: bool) -> Result<(), ValeError> {
    let dir = shm_dir(dir);
    let s = SwitchFile::open_locked(&dir, sw, false)?;
    let live = (0..MAX_PORTS)
        .filter_map(|i| s.entry(i))
        .find(|e| sys::alive(e.owner));
    if let (Some(e), false) = (live, force) {
        s.unlock();
        return Err(ValeError::SwitchInUse {
            name: sw.to_string(),
            pid: e.owner,
        });
    }
    for i in 0..MAX_PORTS {
        if let Some(e) = s.entry(i) {
            s.free_entry(i, e.gen);
        }
    }
    // Stray port files (a creator killed between creating the file and publishing it).
    let prefix = format!("ptvmm-vale.{sw}.");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
            {
                sys::unlink(&e.path());
            }
        }
    }
    sys::unlink(&s.path);
    s.unlock();
    Ok(())
}
