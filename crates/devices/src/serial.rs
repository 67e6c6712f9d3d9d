//! The 16550 UART on COM1 (vm-superio's model) as a bus device, its interrupt line as an
//! eventfd (an irqfd in KVM), and the console escape (Ctrl-A x quits, like QEMU).

use std::io::Write;

use vm_superio::{Serial as Uart, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::BusDevice;

/// Size of the UART's port range.
pub const LEN: u64 = 8;

/// Raises the serial interrupt by writing an eventfd (registered by the VMM as an irqfd).
pub struct EventFdTrigger(pub EventFd);

impl Trigger for EventFdTrigger {
    type E = std::io::Error;

    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// COM1: guest output goes to `out`, input comes from [`Serial::enqueue_input`].
pub struct Serial {
    uart: Uart<EventFdTrigger, vm_superio::serial::NoEvents, Box<dyn Write + Send>>,
}

impl Serial {
    pub fn new(irq: EventFd, out: Box<dyn Write + Send>) -> Self {
        Self {
            uart: Uart::new(EventFdTrigger(irq), out),
        }
    }

    /// Queues input bytes for the guest; returns how many fit in the receive FIFO.
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        if bytes.is_empty() || self.uart.fifo_capacity() == 0 {
            return 0;
        }
        match self.uart.enqueue_raw_bytes(bytes) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("serial input: {e:?}");
                0
            }
        }
    }
}

impl BusDevice for Serial {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Ok(off), Some(first)) = (u8::try_from(offset), data.first_mut()) {
            if u64::from(off) < LEN {
                *first = self.uart.read(off);
            }
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let (Ok(off), Some(&v)) = (u8::try_from(offset), data.first()) else {
            return;
        };
        if u64::from(off) < LEN {
            if let Err(e) = self.uart.write(off, v) {
                // Console output that cannot be written (closed stdout) is not fatal.
                log::debug!("serial output: {e:?}");
            }
        }
    }
}

/// What a console input byte means once the escape character is taken into account.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsoleInput {
    /// Bytes for the guest.
    Bytes(Vec<u8>),
    /// The user typed the quit sequence.
    Quit,
}

/// The escape character, Ctrl-A.
pub const ESCAPE: u8 = 0x01;

/// Decodes the console escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, Ctrl-A
/// followed by anything else sends both bytes.
#[derive(Default)]
pub struct EscapeDecoder {
    pending_escape: bool,
}

impl EscapeDecoder {
    pub fn feed(&mut self, input: &[u8]) -> ConsoleInput {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.pending_escape {
                self.pending_escape = false;
                match b {
                    b'x' | b'X' => return ConsoleInput::Quit,
                    ESCAPE => out.push(ESCAPE),
                    other => out.extend_from_slice(&[ESCAPE, other]),
                }
            } else if b == ESCAPE {
                self.pending_escape = true;
            } else {
                out.push(b);
            }
        }
        ConsoleInput::Bytes(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use vmm_sys_util::eventfd::EFD_NONBLOCK;

    use super::*;

    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>);
    impl Write for SharedBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const IER: u64 = 1;
    const LSR: u64 = 5;

    #[test]
    fn guest_output_reaches_the_writer() {
        let out = SharedBuf::default();
        let mut s = Serial::new(EventFd::new(EFD_NONBLOCK).unwrap(), Box::new(out.clone()));
        for b in b"hi\n" {
            s.write(0, &[*b]);
        }
        assert_eq!(&*out.0.lock().unwrap(), b"hi\n");
        let mut lsr = [0u8];
        s.read(LSR, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0, "transmitter holding register empty");
    }

    #[test]
    fn input_raises_the_interrupt_and_is_read_back() {
        let irq = EventFd::new(EFD_NONBLOCK).unwrap();
        let mut s = Serial::new(irq.try_clone().unwrap(), Box::new(std::io::sink()));
        s.write(IER, &[0x01]); // enable received-data-available interrupts
        assert_eq!(s.enqueue_input(b"ok"), 2);
        assert_eq!(irq.read().unwrap(), 1);
        let mut b = [0u8];
        s.read(0, &mut b);
        assert_eq!(b[0], b'o');
        s.read(0, &mut b);
        assert_eq!(b[0], b'k');
        s.read(LSR, &mut b);
        assert_eq!(b[0] & 1, 0, "no more data ready");
    }

    #[test]
    fn fifo_full_accepts_only_what_fits() {
        let mut s = Serial::new(
            EventFd::new(EFD_NONBLOCK).unwrap(),
            Box::new(std::io::sink()),
        );
        let big = [b'a'; 100];
        let first = s.enqueue_input(&big);
        assert!(first > 0 && first < 100);
        assert_eq!(s.enqueue_input(&big), 0);
    }

    #[test]
    fn out_of_range_offsets_are_harmless() {
        let mut s = Serial::new(
            EventFd::new(EFD_NONBLOCK).unwrap(),
            Box::new(std::io::sink()),
        );
        let mut b = [0xffu8; 4];
        s.read(300, &mut b);
        assert_eq!(b, [0; 4]);
        s.write(9, &[1]);
        s.write(0, &[]);
    }

    #[test]
    fn escape_sequences() {
        let mut d = EscapeDecoder::default();
        assert_eq!(d.feed(b"ab"), ConsoleInput::Bytes(b"ab".to_vec()));
        assert_eq!(
            d.feed(&[ESCAPE, ESCAPE, b'c']),
            ConsoleInput::Bytes(vec![ESCAPE, b'c'])
        );
        assert_eq!(
            d.feed(&[ESCAPE, b'q']),
            ConsoleInput::Bytes(vec![ESCAPE, b'q'])
        );
        // The escape may be split across reads.
        assert_eq!(d.feed(b"z\x01"), ConsoleInput::Bytes(b"z".to_vec()));
        assert_eq!(d.feed(b"x"), ConsoleInput::Quit);
    }
}
