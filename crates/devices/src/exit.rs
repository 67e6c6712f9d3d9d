//! How devices and threads ask the VMM to stop: the first [`ExitReason`] recorded wins, and
//! an eventfd wakes whoever waits for it.

use std::sync::Mutex;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Why the virtual machine stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest powered off (ACPI S5).
    PowerOff,
    /// The guest rebooted (i8042 or ACPI reset); ptvmm ends rather than restarting it.
    Reset,
    /// The guest wrote a status byte to the debug-exit port.
    DebugExit(u8),
    /// The user typed the quit escape on the console (Ctrl-A x).
    UserQuit,
    /// A signal (SIGINT/SIGTERM) asked ptvmm to stop.
    Signal(i32),
    /// Something went wrong; the text is the one-line reason.
    Error(String),
}

impl ExitReason {
    /// The process exit status this reason maps to.
    pub fn status(&self) -> i32 {
        match self {
            ExitReason::PowerOff | ExitReason::Reset | ExitReason::UserQuit => 0,
            ExitReason::DebugExit(v) => i32::from(*v),
            ExitReason::Signal(sig) => 128 + sig,
            ExitReason::Error(_) => 1,
        }
    }
}

/// A one-shot, thread-safe "stop the VM" latch.
pub struct ExitSignal {
    reason: Mutex<Option<ExitReason>>,
    evt: EventFd,
}

impl ExitSignal {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            reason: Mutex::new(None),
            evt: EventFd::new(EFD_NONBLOCK)?,
        })
    }

    /// Records `reason` unless another one was recorded first, and wakes the waiter.
    pub fn request(&self, reason: ExitReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            log::debug!("exit requested: {reason:?}");
            *slot = Some(reason);
        }
        drop(slot);
        // A full counter (impossible in practice) still leaves the eventfd readable.
        let _ = self.evt.write(1);
    }

    /// The recorded reason, if any.
    pub fn reason(&self) -> Option<ExitReason> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The eventfd that becomes readable once a reason is recorded.
    pub fn eventfd(&self) -> &EventFd {
        &self.evt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins_and_maps_to_status() {
        let s = ExitSignal::new().unwrap();
        assert_eq!(s.reason(), None);
        s.request(ExitReason::DebugExit(7));
        s.request(ExitReason::PowerOff);
        assert_eq!(s.reason(), Some(ExitReason::DebugExit(7)));
        assert_eq!(s.reason().unwrap().status(), 7);
        assert!(s.eventfd().read().unwrap() >= 1);
        assert_eq!(ExitReason::PowerOff.status(), 0);
        assert_eq!(ExitReason::Signal(15).status(), 143);
        assert_eq!(ExitReason::Error("x".into()).status(), 1);
    }
}
