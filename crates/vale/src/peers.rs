//! A sender's cache of the other ports of its switch, each mapped once and refreshed when
//! the switch's port table changes (`port_version`).

use std::path::Path;
use std::sync::atomic::Ordering::Acquire;
use std::sync::Arc;

use netmap::{RegionLayout, SharedMem};

use crate::layout::{PrivLayout, HDR_PORT_VERSION, MAX_PORTS};
use crate::switch::{port_path, read_entry};
use crate::sys::{self, Mapping};

/// A mapped peer port.
#[derive(Debug, Clone)]
pub struct Peer {
    pub idx: u32,
    pub gen: u32,
    /// Owner process (for liveness checks of a destination that holds a lossless sender).
    pub owner: u32,
    /// Length of the virtio-net header on its frames (refreshed when it changes).
    pub hdr_len: u32,
    pub layout: RegionLayout,
    pub priv_layout: PrivLayout,
    pub mem: SharedMem,
    _map: Arc<Mapping>,
}

/// The set of peers, indexed by port number.
#[derive(Debug, Default)]
pub struct Peers {
    version: Option<u32>,
    /// Active peers in port order (never the owning port itself).
    pub list: Vec<Peer>,
    /// Position in `list` of port `idx`.
    pos: Vec<Option<u16>>,
}

impl Peers {
    /// Position in `list` of port `idx` with generation `gen`.
    pub fn find_exact(&self, idx: u32, gen: u32) -> Option<usize> {
        let p = (*self.pos.get(idx as usize)?)? as usize;
        (self.list[p].gen == gen).then_some(p)
    }

    /// Position in `list` of port `idx` if its low generation byte is `gen8`.
    #[inline]
    pub fn find(&self, idx: u32, gen8: u32) -> Option<usize> {
        let p = (*self.pos.get(idx as usize)?)? as usize;
        (self.list[p].gen & 0xff == gen8).then_some(p)
    }

    /// Re-reads the port table if it changed. Returns true if the list changed.
    pub fn refresh(&mut self, sw: &SharedMem, dir: &Path, swname: &str, self_idx: u32) -> bool {
        let v = sw.load_u32(HDR_PORT_VERSION, Acquire);
        if self.version == Some(v) {
            return false;
        }
        let old = std::mem::take(&mut self.list);
        let mut list = Vec::new();
        for idx in 0..MAX_PORTS {
            if idx == self_idx {
                continue;
            }
            let Some(e) = read_entry(sw, idx) else {
                continue;
            };
            if let Some(p) = old.iter().find(|p| p.idx == idx && p.gen == e.gen) {
                // A persistent port changes owner between openers.
                list.push(Peer {
                    hdr_len: e.hdr_len,
                    owner: e.owner,
                    ..p.clone()
                });
                continue;
            }
            let Ok(layout) = RegionLayout::new(e.config) else {
                continue;
            };
            let priv_layout = PrivLayout::new(&layout);
            if layout.size as u64 != e.region_size || priv_layout.file_size as u64 != e.file_size {
                log::warn!("vale{swname}: port {idx} has an inconsistent table entry, ignored");
                continue;
            }
            let path = port_path(dir, swname, idx, e.gen);
            match sys::map_file(&path, priv_layout.file_size) {
                Ok((_fd, map)) => list.push(Peer {
                    idx,
                    gen: e.gen,
                    owner: e.owner,
                    hdr_len: e.hdr_len,
                    layout,
                    priv_layout,
                    mem: map.mem(),
                    _map: Arc::new(map),
                }),
                // Closed meanwhile: the next version bump will tell.
                Err(e) => log::debug!("cannot map {}: {e}", path.display()),
            }
        }
        self.pos = vec![None; MAX_PORTS as usize];
        for (i, p) in list.iter().enumerate() {
            self.pos[p.idx as usize] = Some(i as u16);
        }
        self.list = list;
        self.version = Some(v);
        true
    }
}
