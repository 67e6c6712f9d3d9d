//! The terminal of `top`: raw input (no line editing, no echo, no signal keys) and the
//! alternate screen while a [`Screen`] lives; the saved modes and the normal screen come back
//! when it is dropped, which every way out of `top` does (return, error, panic unwinding,
//! and SIGINT/SIGTERM, which only set a flag the loop reads).

use std::io::{self, Write};
use std::os::fd::RawFd;

/// Whether `fd` is a terminal.
pub fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor number; any value is allowed.
    unsafe { libc::isatty(fd) == 1 }
}

/// The terminal's size in (rows, columns), 24x80 if it does not say.
pub fn size(fd: RawFd) -> (usize, usize) {
    // SAFETY: winsize is plain data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which lives for the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    if r != 0 || ws.ws_row == 0 || ws.ws_col == 0 {
        (24, 80)
    } else {
        (ws.ws_row as usize, ws.ws_col as usize)
    }
}

fn tcgetattr(fd: RawFd) -> io::Result<libc::termios> {
    // SAFETY: termios is plain data; all-zero is a valid value to be overwritten.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes one termios into `t`, which lives for the call.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(t)
}

fn tcsetattr(fd: RawFd, t: &libc::termios) -> io::Result<()> {
    // SAFETY: tcsetattr reads one termios from `t`, which lives for the call.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Enter: alternate screen, cursor hidden. Leave: cursor shown, normal screen.
const ENTER: &str = "\x1b[?1049h\x1b[?25l";
const LEAVE: &str = "\x1b[?25h\x1b[?1049l";

/// Raw input on terminal `fd` and the alternate screen on stdout, until dropped.
pub struct Screen {
    fd: RawFd,
    saved: libc::termios,
}

impl Screen {
    /// Saves the modes of terminal `fd` and switches it to raw input: bytes arrive one by
    /// one, unechoed, and Ctrl-C, Ctrl-Z, Ctrl-S are bytes, not signals or flow control.
    /// Output processing stays (a newline still returns the carriage).
    pub fn enter(fd: RawFd) -> io::Result<Screen> {
        let saved = tcgetattr(fd)?;
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
        raw.c_iflag &=
            !(libc::IXON | libc::ICRNL | libc::BRKINT | libc::INPCK | libc::ISTRIP | libc::INLCR);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        tcsetattr(fd, &raw)?;
        let s = Screen { fd, saved };
        let mut out = io::stdout().lock();
        out.write_all(ENTER.as_bytes())?;
        out.flush()?;
        Ok(s)
    }

    /// Draws `lines` from the top left, each cut to `cols` characters, at most `rows` of
    /// them, and clears what an earlier, longer frame left below.
    pub fn draw(&self, lines: &[String], rows: usize, cols: usize) -> io::Result<()> {
        let mut f = String::from("\x1b[H");
        for l in lines.iter().take(rows) {
            f.extend(l.chars().take(cols));
            f.push_str("\x1b[K\n");
        }
        f.push_str("\x1b[J");
        let mut out = io::stdout().lock();
        out.write_all(f.as_bytes())?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(LEAVE.as_bytes());
        let _ = out.flush();
        if let Err(e) = tcsetattr(self.fd, &self.saved) {
            eprintln!("ptvmm-vale-ctl: restoring the terminal modes: {e}");
        }
    }
}

/// What the keyboard asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Nothing arrived in time (or a signal interrupted the wait).
    None,
    /// `q`, `Q`, Ctrl-C, or end of input (the terminal hung up).
    Quit,
    /// Any other key.
    Other,
}

/// Waits up to `timeout_ms` for input on `fd` and reads what arrived.
pub fn read_key(fd: RawFd, timeout_ms: i32) -> io::Result<Key> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll reads and writes exactly the one pollfd passed, which lives for the call.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms.max(0)) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(Key::None)
        } else {
            Err(e)
        };
    }
    if n == 0 {
        return Ok(Key::None);
    }
    if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
        && p.revents & libc::POLLIN == 0
    {
        return Ok(Key::Quit);
    }
    let mut buf = [0u8; 64];
    // SAFETY: read writes at most buf.len() bytes into `buf`, which lives for the call.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => Ok(Key::None),
            _ => Err(e),
        };
    }
    Ok(classify(&buf[..r as usize]))
}

/// The key a read of `bytes` means (an empty read is end of input).
pub fn classify(bytes: &[u8]) -> Key {
    if bytes.is_empty() || bytes.iter().any(|&b| matches!(b, b'q' | b'Q' | 0x03)) {
        Key::Quit
    } else {
        Key::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quit_keys() {
        assert_eq!(classify(b"q"), Key::Quit);
        assert_eq!(classify(b"Q"), Key::Quit);
        assert_eq!(classify(&[0x03]), Key::Quit, "Ctrl-C in raw mode is a byte");
        assert_eq!(classify(b""), Key::Quit, "end of input");
        assert_eq!(classify(b"xq"), Key::Quit);
        assert_eq!(classify(b"x"), Key::Other);
        assert_eq!(classify(b"\x1b[A"), Key::Other, "an arrow key");
    }
}
