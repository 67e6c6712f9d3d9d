//! Test doubles for the ptnet models: guest RAM on the heap, an MSI sink that records, and
//! VALE ports in a private directory.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use netmap::{NetmapPort, RegionConfig, SharedMem};
use vale::fuzzing::TempDir;
use vale::{Port, PortOptions};

use crate::host::{GuestRam, MsiSink};
use crate::pci::MsiMessage;

/// Guest RAM `[base, base + len)` backed by a zeroed heap block.
pub struct TestRam {
    buf: Box<[u64]>,
    pub base: u64,
}

impl TestRam {
    pub fn new(base: u64, len: usize) -> Arc<Self> {
        Arc::new(Self {
            buf: vec![0u64; len.div_ceil(8)].into_boxed_slice(),
            base,
        })
    }

    fn len(&self) -> usize {
        self.buf.len() * 8
    }

    /// The whole RAM as shared memory (the test's "guest" side).
    pub fn mem(&self) -> SharedMem {
        let ptr = NonNull::new(self.buf.as_ptr() as *mut u8).expect("heap pointer");
        // Once shared, the block is reached only through SharedMem's atomics and copies.
        // SAFETY: the boxed block is 8-aligned and outlives every window (tests hold the Arc).
        unsafe { SharedMem::new(ptr, self.len()) }
    }
}

impl GuestRam for TestRam {
    fn shared(&self, gpa: u64, len: usize) -> Option<SharedMem> {
        let off = usize::try_from(gpa.checked_sub(self.base)?).ok()?;
        let m = self.mem();
        (m.contains(off, len) && off.is_multiple_of(8)).then(|| m.sub(off, len))
    }
}

/// Records every delivered MSI.
#[derive(Default)]
pub struct RecordingSink {
    pub got: Mutex<Vec<(u16, MsiMessage)>>,
}

impl RecordingSink {
    pub fn count(&self, vector: u16) -> usize {
        let g = self.got.lock().unwrap();
        g.iter().filter(|(v, _)| *v == vector).count()
    }
}

impl MsiSink for RecordingSink {
    fn deliver(&self, vector: u16, msg: MsiMessage) {
        self.got.lock().unwrap().push((vector, msg));
    }
}

/// Opens VALE port `name` in `dir` with the given rings and slots (2048-byte buffers).
pub fn open_port(dir: &TempDir, name: &str, tx: u32, rx: u32, slots: u32) -> Arc<dyn NetmapPort> {
    Arc::new(open_vale(dir, name, tx, rx, slots))
}

/// As [`open_port`], keeping the concrete type (for the test's own sends and receives).
pub fn open_vale(dir: &TempDir, name: &str, tx: u32, rx: u32, slots: u32) -> Port {
    open_vale_with(dir, name, tx, rx, slots, false)
}

/// As [`open_vale`], lossless or not.
pub fn open_vale_with(
    dir: &TempDir,
    name: &str,
    tx: u32,
    rx: u32,
    slots: u32,
    lossless: bool,
) -> Port {
    Port::open(
        name,
        &PortOptions {
            config: RegionConfig {
                tx_rings: tx,
                rx_rings: rx,
                tx_slots: slots,
                rx_slots: slots,
                buf_size: 2048,
            },
            shm_dir: Some(dir.0.clone()),
            lossless,
            vnet_hdr_len: 0,
        },
    )
    .expect("open VALE port")
}
