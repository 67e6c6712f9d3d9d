//! A one-byte debug-exit port for tests: the guest writes a byte, ptvmm exits with it as
//! its status. Reads return 0.

use std::sync::Arc;

use crate::{BusDevice, ExitReason, ExitSignal};

pub struct DebugExit {
    exit: Arc<ExitSignal>,
}

impl DebugExit {
    pub fn new(exit: Arc<ExitSignal>) -> Self {
        Self { exit }
    }
}

impl BusDevice for DebugExit {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset == 0 {
            if let Some(&v) = data.first() {
                self.exit.request(ExitReason::DebugExit(v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_byte_becomes_the_exit_status() {
        let exit = Arc::new(ExitSignal::new().unwrap());
        let mut d = DebugExit::new(exit.clone());
        let mut b = [9u8; 2];
        d.read(0, &mut b);
        assert_eq!(b, [0, 0]);
        assert_eq!(exit.reason(), None);
        d.write(0, &[42, 0, 0, 0]);
        assert_eq!(exit.reason(), Some(ExitReason::DebugExit(42)));
    }
}
