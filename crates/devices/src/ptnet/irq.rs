//! MSI-X delivery shared by the vCPU side (table, PBA and capability writes) and the ring
//! workers (vector triggers): the table lives behind one lock, and messages are handed to the
//! [`MsiSink`] after the lock is dropped.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::host::MsiSink;
use crate::pci::{MsiMessage, MsixConfig};

/// A function's MSI-X state plus the VMM's delivery path.
pub struct Interrupts {
    msix: Mutex<MsixConfig>,
    sink: Arc<dyn MsiSink>,
}

impl Interrupts {
    pub fn new(vectors: u16, sink: Arc<dyn MsiSink>) -> Self {
        Self {
            msix: Mutex::new(MsixConfig::new(vectors)),
            sink,
        }
    }

    /// The MSI-X state (ignoring poisoning: it is plain registers).
    pub fn msix(&self) -> MutexGuard<'_, MsixConfig> {
        self.msix.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fires `vector`: delivered now, or left pending while masked/disabled. Returns whether
    /// a message went out.
    pub fn trigger(&self, vector: u16) -> bool {
        let msg = self.msix().trigger(vector);
        match msg {
            Some(m) => {
                self.sink.deliver(vector, m);
                true
            }
            None => false,
        }
    }

    /// The guest wrote MSI-X message control: replays what became deliverable.
    pub fn set_control(&self, control: u16) {
        let out = {
            let mut m = self.msix();
            let before: Vec<u16> = (0..m.vectors()).filter(|&v| m.pending(v)).collect();
            let msgs = m.set_control(control);
            let released = before.into_iter().filter(|&v| !m.pending(v));
            released.zip(msgs).collect::<Vec<_>>()
        };
        self.deliver_all(out);
    }

    /// A guest write of the MSI-X table at `offset`: replays the vector if it was unmasked
    /// with its pending bit set.
    pub fn table_write(&self, offset: u64, data: &[u8]) {
        let vector = (offset / crate::pci::msix::ENTRY_SIZE).min(u16::MAX.into()) as u16;
        let msgs = self.msix().table_write(offset, data);
        self.deliver_all(msgs.into_iter().map(|m| (vector, m)).collect());
    }

    /// The messages currently programmed for vectors `0..n` (what CREATE captures).
    pub fn messages(&self, n: u16) -> Vec<MsiMessage> {
        let m = self.msix();
        (0..n)
            .map(|v| {
                let mut b = [0u8; 16];
                m.table_read(u64::from(v) * crate::pci::msix::ENTRY_SIZE, &mut b[..8]);
                m.table_read(u64::from(v) * crate::pci::msix::ENTRY_SIZE + 8, &mut b[8..]);
                MsiMessage {
                    addr: u64::from_le_bytes(b[..8].try_into().unwrap_or_default()),
                    data: u32::from_le_bytes(b[8..12].try_into().unwrap_or_default()),
                }
            })
            .collect()
    }

    fn deliver_all(&self, msgs: Vec<(u16, MsiMessage)>) {
        for (v, m) in msgs {
            self.sink.deliver(v, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::msix::{ENTRY_SIZE, FUNCTION_MASK, MSIX_ENABLE};
    use crate::ptnet::testutil::RecordingSink;

    #[test]
    fn replayed_messages_carry_their_own_vector() {
        let sink = Arc::new(RecordingSink::default());
        let irq = Interrupts::new(4, sink.clone());
        for v in 0..4u64 {
            irq.table_write(v * ENTRY_SIZE, &0xfee0_0000u64.to_le_bytes());
            irq.table_write(v * ENTRY_SIZE + 8, &(0x40 + v as u32).to_le_bytes());
        }
        irq.set_control(MSIX_ENABLE | FUNCTION_MASK);
        irq.table_write(ENTRY_SIZE + 12, &0u32.to_le_bytes());
        irq.table_write(3 * ENTRY_SIZE + 12, &0u32.to_le_bytes());
        assert!(!irq.trigger(1) && !irq.trigger(2) && !irq.trigger(3));
        irq.set_control(MSIX_ENABLE);
        let got: Vec<(u16, u32)> = sink
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(v, m)| (*v, m.data))
            .collect();
        assert_eq!(got, [(1, 0x41), (3, 0x43)], "vector 2 stays pending");
        irq.table_write(2 * ENTRY_SIZE + 12, &0u32.to_le_bytes());
        assert_eq!(sink.count(2), 1);
        assert!(!irq.trigger(0), "vector 0 is masked");
        assert_eq!(irq.messages(4)[3].data, 0x43);
    }
}
