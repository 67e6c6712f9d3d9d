//! The least of an i8042 keyboard controller that Linux needs: `reboot=k` writes the
//! CPU-reset command 0xFE to the command port and waits for an empty input buffer.
//!
//! ```text
//!  port 0x60  data     reads 0, writes ignored
//!  port 0x64  status   reads 0 (output buffer empty, input buffer empty)
//!             command  0xFE = pulse the reset line -> ExitReason::Reset
//! ```

use std::sync::Arc;

use crate::{BusDevice, ExitReason, ExitSignal};

/// Offset of the command/status port from the data port (0x64 - 0x60).
pub const COMMAND_OFFSET: u64 = 4;
/// The "pulse output line 0" command: a CPU reset.
pub const CMD_RESET_CPU: u8 = 0xfe;

pub struct I8042 {
    exit: Arc<ExitSignal>,
}

impl I8042 {
    pub fn new(exit: Arc<ExitSignal>) -> Self {
        Self { exit }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset == COMMAND_OFFSET && data.first() == Some(&CMD_RESET_CPU) {
            self.exit.request(ExitReason::Reset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_command_requests_a_reset_and_nothing_else_does() {
        let exit = Arc::new(ExitSignal::new().unwrap());
        let mut k = I8042::new(exit.clone());
        let mut status = [0xffu8];
        k.read(COMMAND_OFFSET, &mut status);
        assert_eq!(status[0] & 0x2, 0, "input buffer must read empty");
        k.write(0, &[CMD_RESET_CPU]);
        k.write(COMMAND_OFFSET, &[0xaa]);
        assert_eq!(exit.reason(), None);
        k.write(COMMAND_OFFSET, &[CMD_RESET_CPU]);
        assert_eq!(exit.reason(), Some(ExitReason::Reset));
    }
}
