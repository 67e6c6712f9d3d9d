//! The power device of a hardware-reduced ACPI platform: the FADT's sleep control register
//! and reset register live here, so the guest can power off and reboot.
//!
//! ```text
//!  offset 0  sleep control/status (1 byte)
//!            bit 5     SLP_EN
//!            bits 4:2  SLP_TYPx  (5 = S5, soft off; matches the DSDT's \_S5_ package)
//!  offset 1  reset register (1 byte): writing RESET_VALUE resets the machine
//! ```

use std::sync::Arc;

use crate::{BusDevice, ExitReason, ExitSignal};

/// Size of the device's port range.
pub const LEN: u64 = 2;
/// Offset of the sleep control/status register.
pub const SLEEP_OFFSET: u64 = 0;
/// Offset of the reset register.
pub const RESET_OFFSET: u64 = 1;
/// Value the FADT tells the guest to write to the reset register.
pub const RESET_VALUE: u8 = 1;
/// SLP_TYP of the S5 (soft off) state; the DSDT's `\_S5_` package holds the same value.
pub const S5_SLP_TYP: u8 = 5;
const SLP_EN: u8 = 1 << 5;
const SLP_TYP_SHIFT: u8 = 2;
const SLP_TYP_MASK: u8 = 0x7;

pub struct AcpiPm {
    exit: Arc<ExitSignal>,
}

impl AcpiPm {
    pub fn new(exit: Arc<ExitSignal>) -> Self {
        Self { exit }
    }
}

impl BusDevice for AcpiPm {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        // The wake status bit stays 0: the guest never really sleeps here.
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&v) = data.first() else { return };
        match offset {
            SLEEP_OFFSET if v & SLP_EN != 0 => {
                let typ = (v >> SLP_TYP_SHIFT) & SLP_TYP_MASK;
                if typ == S5_SLP_TYP {
                    self.exit.request(ExitReason::PowerOff);
                } else {
                    log::warn!("guest asked for ACPI sleep type {typ}; only S5 (off) exists");
                }
            }
            RESET_OFFSET if v == RESET_VALUE => self.exit.request(ExitReason::Reset),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> (Arc<ExitSignal>, AcpiPm) {
        let exit = Arc::new(ExitSignal::new().unwrap());
        (exit.clone(), AcpiPm::new(exit))
    }

    #[test]
    fn s5_with_slp_en_powers_off() {
        let (exit, mut pm) = dev();
        pm.write(SLEEP_OFFSET, &[S5_SLP_TYP << 2]);
        assert_eq!(exit.reason(), None, "no SLP_EN, no transition");
        pm.write(SLEEP_OFFSET, &[(3 << 2) | SLP_EN]);
        assert_eq!(exit.reason(), None, "S3 does not exist");
        pm.write(SLEEP_OFFSET, &[(S5_SLP_TYP << 2) | SLP_EN]);
        assert_eq!(exit.reason(), Some(ExitReason::PowerOff));
    }

    #[test]
    fn reset_register_resets() {
        let (exit, mut pm) = dev();
        pm.write(RESET_OFFSET, &[2]);
        pm.write(RESET_OFFSET, &[]);
        assert_eq!(exit.reason(), None);
        pm.write(RESET_OFFSET, &[RESET_VALUE]);
        assert_eq!(exit.reason(), Some(ExitReason::Reset));
    }
}
