//! Routes guest accesses in one address space (port I/O or MMIO) to the device that owns
//! the range: a `BTreeMap` keyed by range start, looked up with `range(..=addr)`.
//!
//! The map sits behind an `Arc<RwLock<..>>` so every clone of a [`Bus`] (one per vCPU
//! thread, one in the PCI BAR router) sees ranges inserted or removed later: a guest that
//! moves a BAR is served at the new address by every vCPU.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock, Weak};

/// A device reachable through a [`Bus`]. Offsets are relative to the start of the range
/// the device was inserted at.
pub trait BusDevice: Send {
    /// The guest reads `data.len()` bytes at `offset`; fill `data`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// The guest writes `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// Errors of bus insertion.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// The new range is empty.
    #[error("Empty bus range at {0:#x}")]
    EmptyRange(u64),
    /// The new range overlaps a range already on the bus.
    #[error("Bus range {base:#x}+{len:#x} overlaps an existing device")]
    Overlap { base: u64, len: u64 },
}

#[derive(Clone)]
struct Entry {
    len: u64,
    device: Arc<Mutex<dyn BusDevice>>,
}

/// An address space of devices. Cloning is cheap; clones share the devices and the map,
/// so an insertion through one clone is seen by all.
#[derive(Clone, Default)]
pub struct Bus {
    devices: Arc<RwLock<BTreeMap<u64, Entry>>>,
}

/// A [`Bus`] that may be gone ([`Bus::downgrade`]).
#[derive(Clone, Default)]
pub struct WeakBus(Weak<RwLock<BTreeMap<u64, Entry>>>);

impl WeakBus {
    /// The bus, while anyone else still holds it.
    pub fn upgrade(&self) -> Option<Bus> {
        self.0.upgrade().map(|devices| Bus { devices })
    }
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `device` at `[base, base + len)`. Overlapping ranges are rejected.
    pub fn insert(
        &self,
        device: Arc<Mutex<dyn BusDevice>>,
        base: u64,
        len: u64,
    ) -> Result<(), BusError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(BusError::EmptyRange(base))?;
        let mut devices = self.devices.write().unwrap_or_else(|e| e.into_inner());
        let clash_below = devices
            .range(..=base)
            .next_back()
            .is_some_and(|(b, e)| b + e.len > base);
        let clash_above = devices.range(base..end).next().is_some();
        if clash_below || clash_above {
            return Err(BusError::Overlap { base, len });
        }
        devices.insert(base, Entry { len, device });
        Ok(())
    }

    /// Removes the device whose range starts at `base`; true if there was one.
    pub fn remove(&self, base: u64) -> bool {
        self.devices
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&base)
            .is_some()
    }

    /// A handle that does not keep the bus alive: for a device on the bus that changes the
    /// bus (the PCI BAR router sits behind the config ports on the PIO bus it routes onto),
    /// so that bus and device can drop together with no cycle to break by hand.
    pub fn downgrade(&self) -> WeakBus {
        WeakBus(Arc::downgrade(&self.devices))
    }

    /// The device owning `addr` and its range start. The map lock is released before the
    /// device runs, so a device may itself insert or remove ranges (a BAR move).
    fn find(&self, addr: u64) -> Option<(u64, Arc<Mutex<dyn BusDevice>>)> {
        let devices = self.devices.read().unwrap_or_else(|e| e.into_inner());
        let (base, entry) = devices.range(..=addr).next_back()?;
        (addr - base < entry.len).then(|| (*base, entry.device.clone()))
    }

    /// Dispatches a read. Returns false (leaving `data` untouched) if no device owns `addr`.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr) {
            Some((base, device)) => {
                lock(&device).read(addr - base, data);
                true
            }
            None => false,
        }
    }

    /// Dispatches a write. Returns false if no device owns `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr) {
            Some((base, device)) => {
                lock(&device).write(addr - base, data);
                true
            }
            None => false,
        }
    }
}

/// Locks a device; a device whose previous user panicked is still usable (its state is
/// plain registers), so poisoning is ignored rather than spreading the panic.
fn lock<'a>(
    device: &'a Mutex<dyn BusDevice + 'static>,
) -> std::sync::MutexGuard<'a, dyn BusDevice + 'static> {
    device.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        last_write: Option<(u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.last_write = Some((offset, data.to_vec()));
        }
    }

    #[test]
    fn routes_by_range_with_relative_offsets() {
        let bus = Bus::new();
        let a = Arc::new(Mutex::new(Recorder::default()));
        bus.insert(a.clone(), 0x3f8, 8).unwrap();
        let mut buf = [0u8; 1];
        assert!(bus.read(0x3fd, &mut buf));
        assert_eq!(buf[0], 5);
        assert!(bus.write(0x3f8, &[0x41]));
        assert_eq!(a.lock().unwrap().last_write, Some((0, vec![0x41])));
        assert!(!bus.read(0x400, &mut buf));
        assert!(!bus.read(0x3f7, &mut buf));
    }

    #[test]
    fn rejects_overlaps_and_empty_ranges() {
        let bus = Bus::new();
        let d = || Arc::new(Mutex::new(Recorder::default()));
        bus.insert(d(), 0x100, 0x10).unwrap();
        assert_eq!(
            bus.insert(d(), 0x10f, 1),
            Err(BusError::Overlap {
                base: 0x10f,
                len: 1
            })
        );
        assert!(bus.insert(d(), 0xf8, 0x10).is_err());
        assert!(bus.insert(d(), 0x100, 1).is_err());
        assert_eq!(bus.insert(d(), 0x200, 0), Err(BusError::EmptyRange(0x200)));
        assert!(bus.insert(d(), u64::MAX, 2).is_err());
        bus.insert(d(), 0x110, 0x10).unwrap();
        bus.insert(d(), 0xf0, 0x10).unwrap();
        assert!(bus.remove(0x110));
        assert!(!bus.remove(0x110));
        bus.insert(d(), 0x110, 4).unwrap();
    }

    #[test]
    fn clones_share_later_insertions() {
        let bus = Bus::new();
        let other = bus.clone();
        other
            .insert(Arc::new(Mutex::new(Recorder::default())), 0x40, 4)
            .unwrap();
        let mut b = [0u8; 1];
        assert!(bus.read(0x42, &mut b));
        assert!(bus.remove(0x40));
        assert!(!other.read(0x42, &mut b));
    }
}
