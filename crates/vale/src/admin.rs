//! Administration for vale-ctl: listing switches, ports, counters and ring occupancy;
//! deleting a stale switch; creating and removing persistent ports.

use std::path::Path;
use std::sync::atomic::Ordering::{Acquire, Relaxed};

use netmap::{RegionConfig, RegionLayout, RingView};

use crate::error::ValeError;
use crate::layout::{
    PrivLayout, FLAG_PERSISTENT, HDR_MAGIC, HDR_VERSION, MAGIC, MAX_PORTS, RX_HWCUR, RX_HWTAIL,
    SWITCH_FILE_SIZE, TX_HWCUR, VERSION,
};
use crate::port::{create_entry, PortStats};
use crate::switch::{port_path, read_entry, shm_dir, switch_path, EntryInfo, SwitchFile};
use crate::sys;

/// One port as listed.
#[derive(Debug, Clone)]
pub struct PortListing {
    pub info: EntryInfo,
    /// Whether its owner process exists (false for an idle persistent port: no owner).
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
    let entries: Vec<EntryInfo> = (0..MAX_PORTS).filter_map(|i| s.entry(i)).collect();
    let live = entries.iter().find(|e| sys::alive(e.owner));
    if let (Some(e), false) = (live, force) {
        s.unlock();
        return Err(ValeError::SwitchInUse {
            name: sw.to_string(),
            pid: e.owner,
        });
    }
    if let (Some(e), false) = (entries.iter().find(|e| e.persistent()), force) {
        s.unlock();
        return Err(ValeError::HasPersistent {
            name: format!("vale{sw}"),
            port: format!("vale{sw}:{}", e.name),
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

/// Creates persistent port `valeX:Y` (and switch X if needed) with configuration `config`:
/// it has no owner until a process opens it by name, and stays, between and after openers,
/// until [`remove`]. Returns its table entry.
pub fn create(
    dir: Option<&Path>,
    full_name: &str,
    config: RegionConfig,
) -> Result<EntryInfo, ValeError> {
    let (swname, pname) = crate::name::parse(full_name)?;
    let layout = RegionLayout::new(config)?;
    let priv_layout = PrivLayout::new(&layout);
    let dir = shm_dir(dir);
    let s = SwitchFile::open_locked(&dir, swname, true)?;
    s.reclaim_dead();
    let r = match s.find(pname) {
        Some(e) if e.persistent() => Err(ValeError::PortExists(full_name.to_string())),
        Some(e) => Err(ValeError::PortBusy {
            name: full_name.to_string(),
            pid: e.owner,
        }),
        None => create_entry(
            &s,
            full_name,
            pname,
            &layout,
            &priv_layout,
            FLAG_PERSISTENT,
            0,
        )
        .map(|c| c.idx),
    };
    let r = r.and_then(|idx| {
        s.entry(idx)
            .ok_or_else(|| ValeError::NoPort(full_name.into()))
    });
    if r.is_err() {
        s.remove_if_empty();
    }
    s.unlock();
    r
}

/// Removes persistent port `valeX:Y` (and the switch if it was its last port). Refuses an
/// ephemeral port and one a live process has open.
pub fn remove(dir: Option<&Path>, full_name: &str) -> Result<(), ValeError> {
    let (swname, pname) = crate::name::parse(full_name)?;
    let dir = shm_dir(dir);
    let s = SwitchFile::open_locked(&dir, swname, false)?;
    s.reclaim_dead();
    let r = match s.find(pname) {
        None => Err(ValeError::NoPort(full_name.to_string())),
        Some(e) if !e.persistent() => Err(ValeError::NotPersistent {
            name: full_name.to_string(),
            pid: e.owner,
        }),
        Some(e) if !e.idle() => Err(ValeError::PortInUse {
            name: full_name.to_string(),
            pid: e.owner,
        }),
        Some(e) => {
            s.free_entry(e.idx, e.gen);
            Ok(())
        }
    };
    s.remove_if_empty();
    s.unlock();
    r
}

/// Occupancy of one ring: slots in use of `slots`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingFill {
    pub used: u32,
    pub slots: u32,
}

/// The rings of a port as the switch sees them: RX slots delivered and not yet released by
/// the receiver; TX slots handed to the switch and not yet forwarded (a held lossless
/// sender's backlog).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRings {
    pub tx: Vec<RingFill>,
    pub rx: Vec<RingFill>,
}

impl PortRings {
    /// The sum over RX rings.
    pub fn rx_total(&self) -> RingFill {
        sum(&self.rx)
    }

    /// The sum over TX rings.
    pub fn tx_total(&self) -> RingFill {
        sum(&self.tx)
    }
}

fn sum(r: &[RingFill]) -> RingFill {
    r.iter().fold(RingFill::default(), |a, f| RingFill {
        used: a.used + f.used,
        slots: a.slots + f.slots,
    })
}

/// Reads the ring occupancy of port `info` of switch `sw` from its file, without locks (a
/// snapshot). Fails if the port closed meanwhile or its entry is inconsistent.
pub fn port_rings(dir: Option<&Path>, sw: &str, info: &EntryInfo) -> Result<PortRings, ValeError> {
    let dir = shm_dir(dir);
    let path = port_path(&dir, sw, info.idx, info.gen);
    let layout = RegionLayout::new(info.config)?;
    let pl = PrivLayout::new(&layout);
    if layout.size as u64 != info.region_size || pl.file_size as u64 != info.file_size {
        return Err(ValeError::NotASwitch(path));
    }
    let (_fd, map) = sys::map_file(&path, pl.file_size).map_err(ValeError::io(&path))?;
    let mem = map.mem();
    let c = info.config;
    let fill = |hwcur: u32, end: u32, n: u32| RingFill {
        used: (end % n + n - hwcur % n) % n,
        slots: n,
    };
    let tx = (0..c.tx_rings)
        .map(|i| {
            let head = RingView::new(mem, layout.tx_ring_offset(i), c.tx_slots).head();
            fill(mem.load_u32(pl.tx(i) + TX_HWCUR, Relaxed), head, c.tx_slots)
        })
        .collect();
    let rx = (0..c.rx_rings)
        .map(|i| {
            let r = pl.rx(i);
            let tail = mem.load_u32(r + RX_HWTAIL, Acquire);
            fill(mem.load_u32(r + RX_HWCUR, Relaxed), tail, c.rx_slots)
        })
        .collect();
    Ok(PortRings { tx, rx })
}
