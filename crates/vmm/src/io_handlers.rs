//! The register-handler table: port writes (and reads) that are caught before any device
//! code runs. An entry is `{port, direction, mask, data, handler}` and matches an access
//! to `port` in `direction` whose value satisfies `(value & mask) == data` (mask 0 matches
//! anything). Two kinds of handler:
//!
//! - **Event**: signal an eventfd that wakes a worker thread (a PCI function's doorbell,
//!   installed by [`crate::pci_host`]). In `Doorbells::Ioeventfd` mode the same doorbell is
//!   also a KVM ioeventfd, so the vCPU does not even leave the kernel and this entry only
//!   sees writes KVM could not take; in `Doorbells::Exit` mode every kick is a PIO exit that
//!   reaches this table, and the vCPU thread only writes the eventfd.
//! - **Callback**: a closure run on the vCPU thread.
//!
//! Entries carry an owner tag (device number and BAR) so that a BAR's entries can be moved
//! together when the guest relocates it.

use std::sync::{Arc, RwLock};

use vmm_sys_util::eventfd::EventFd;

/// Access direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// A callback handler: gets the access's bytes (to fill, for a read).
pub type Callback = Arc<dyn Fn(&mut [u8]) + Send + Sync>;

/// What a matching access does.
#[derive(Clone)]
pub enum Handler {
    /// Wake whoever waits on this eventfd.
    Event(Arc<EventFd>),
    /// Run on the vCPU thread with the access's data (filled in for reads).
    Callback(Callback),
}

/// One entry of the table.
#[derive(Clone)]
pub struct Entry {
    pub port: u16,
    pub direction: Direction,
    pub mask: u32,
    pub data: u32,
    pub handler: Handler,
    /// Who installed the entry (e.g. a PCI device number), for moving and removing.
    pub owner: u32,
}

impl Entry {
    fn matches(&self, port: u16, direction: Direction, value: u32) -> bool {
        self.port == port && self.direction == direction && value & self.mask == self.data
    }
}

/// How doorbells reach their eventfds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doorbells {
    /// KVM ioeventfds: the write never leaves the kernel.
    Ioeventfd,
    /// A PIO exit to user space, caught by this table on the vCPU thread.
    Exit,
}

/// The shared table; clones see the same entries.
#[derive(Clone, Default)]
pub struct HandlerTable {
    entries: Arc<RwLock<Vec<Entry>>>,
}

fn value_of(data: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = data.len().min(4);
    b[..n].copy_from_slice(&data[..n]);
    u32::from_le_bytes(b)
}

impl HandlerTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&self, entry: Entry) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    /// Removes every entry of `owner`, returning them (to re-add them elsewhere).
    pub fn remove_owner(&self, owner: u32) -> Vec<Entry> {
        let mut all = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let (gone, kept): (Vec<Entry>, Vec<Entry>) = all.drain(..).partition(|e| e.owner == owner);
        *all = kept;
        gone
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Handles an access if an entry matches; true when it did (the bus is then skipped).
    pub fn dispatch(&self, port: u16, direction: Direction, data: &mut [u8]) -> bool {
        let handler = {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            if entries.is_empty() {
                return false;
            }
            let value = value_of(data);
            match entries.iter().find(|e| e.matches(port, direction, value)) {
                Some(e) => e.handler.clone(),
                None => return false,
            }
        };
        match handler {
            Handler::Event(evt) => {
                if let Err(e) = evt.write(1) {
                    log::warn!("doorbell eventfd on port {port:#x}: {e}");
                }
            }
            Handler::Callback(f) => f(data),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use vmm_sys_util::eventfd::EFD_NONBLOCK;

    use super::*;

    fn event_entry(port: u16, mask: u32, data: u32, owner: u32) -> (Entry, Arc<EventFd>) {
        let evt = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        (
            Entry {
                port,
                direction: Direction::Write,
                mask,
                data,
                handler: Handler::Event(evt.clone()),
                owner,
            },
            evt,
        )
    }

    #[test]
    fn mask_zero_matches_any_value_and_events_fire() {
        let t = HandlerTable::new();
        let (e, evt) = event_entry(0xc080, 0, 0, 1);
        t.add(e);
        assert!(t.dispatch(0xc080, Direction::Write, &mut [0xde, 0xad, 0xbe, 0xef]));
        assert!(t.dispatch(0xc080, Direction::Write, &mut [1]));
        assert_eq!(evt.read().unwrap(), 2);
        assert!(
            !t.dispatch(0xc080, Direction::Read, &mut [0; 4]),
            "direction matters"
        );
        assert!(
            !t.dispatch(0xc084, Direction::Write, &mut [0; 4]),
            "port matters"
        );
    }

    #[test]
    fn value_is_matched_under_the_mask() {
        let t = HandlerTable::new();
        let (e, evt) = event_entry(0x10, 0xff, 0x02, 1);
        t.add(e);
        assert!(!t.dispatch(0x10, Direction::Write, &mut [0x01, 0, 0, 0]));
        assert!(t.dispatch(0x10, Direction::Write, &mut [0x02, 0x99, 0, 0]));
        assert_eq!(evt.read().unwrap(), 1);
    }

    #[test]
    fn callbacks_run_and_fill_reads() {
        let t = HandlerTable::new();
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        t.add(Entry {
            port: 0x20,
            direction: Direction::Read,
            mask: 0,
            data: 0,
            handler: Handler::Callback(Arc::new(move |d: &mut [u8]| {
                c.fetch_add(1, Ordering::Relaxed);
                d.fill(0x5a);
            })),
            owner: 7,
        });
        let mut d = [0u8; 2];
        assert!(t.dispatch(0x20, Direction::Read, &mut d));
        assert_eq!(d, [0x5a, 0x5a]);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn entries_move_with_their_owner() {
        let t = HandlerTable::new();
        for (port, owner) in [(0x100, 1), (0x104, 1), (0x200, 2)] {
            t.add(event_entry(port, 0, 0, owner).0);
        }
        let moved = t.remove_owner(1);
        assert_eq!(moved.len(), 2);
        assert_eq!(t.len(), 1);
        for mut e in moved {
            e.port += 0x1000;
            t.add(e);
        }
        assert!(!t.dispatch(0x100, Direction::Write, &mut [0]));
        assert!(t.dispatch(0x1104, Direction::Write, &mut [0]));
    }
}
