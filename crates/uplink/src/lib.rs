//! VALE uplinks: a port of a VALE switch whose other side is a host network interface, so
//! that guests and pkt-gen processes on the switch reach the host's own networking (a NIC, a
//! bridge, a VXLAN device, another namespace).
//!
//! An uplink is a process (`ptvmm-vale-ctl attach`) owning one VALE port `valeX:IF` and one
//! host-side endpoint of a [`Mode`]: an AF_XDP socket ([`xdp`]), AF_PACKET sockets with
//! TPACKET_V3 rings ([`packet`]) or a tap interface ([`tap`]). Two threads forward: host →
//! switch (the port's TX ring) and switch → host (the port's RX ring); see [`forward`].
//! What it is doing is published once a second in a small state file beside the switch
//! ([`state`]), which `ptvmm-vale-ctl list` shows. See docs/vale.md, "Uplinks".

use std::io;
use std::os::fd::RawFd;

pub mod attach;
pub mod forward;
pub mod packet;
pub mod state;
pub mod sys;
pub mod tap;
pub mod xdp;

pub use attach::{attach, detach, AttachOptions, Attached};

/// How an uplink talks to its host interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// AF_XDP on every RX queue of the interface (libxdp's redirect program).
    Xdp,
    /// AF_PACKET with mmap'ed TPACKET_V3 RX and TX rings.
    Packet,
    /// A tap interface created in the host stack.
    Tap,
}

impl Mode {
    /// The name used on the command line and in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Xdp => "xdp",
            Mode::Packet => "packet",
            Mode::Tap => "tap",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "xdp" => Ok(Mode::Xdp),
            "packet" => Ok(Mode::Packet),
            "tap" => Ok(Mode::Tap),
            _ => Err(format!("unknown uplink mode {s:?} (xdp, packet or tap)")),
        }
    }
}

/// Errors of attaching and running an uplink. Each is one line a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("Invalid interface name {0:?} (1 to 15 characters, no '/', ':' or blanks)")]
    BadIfName(String),
    #[error("Unknown interface {0} (see `ip link`)")]
    NoInterface(String),
    #[error("Interface {0} is down (ip link set {0} up)")]
    Down(String),
    #[error("Interface {ifname} is already attached to vale{switch} by process {pid}")]
    Attached {
        ifname: String,
        switch: String,
        pid: u32,
    },
    #[error(
        "MTU of {ifname} is {mtu}: its frames (up to {frame} bytes) do not fit the switch's \
         {buf}-byte buffers (ip link set {ifname} mtu {max})"
    )]
    Mtu {
        ifname: String,
        mtu: u32,
        frame: u32,
        buf: u32,
        max: u32,
    },
    #[error(
        "No permission to {what} on {ifname}: run as root (needs CAP_NET_ADMIN and CAP_NET_RAW)"
    )]
    Permission { what: &'static str, ifname: String },
    #[error("AF_XDP is not available on {ifname}: {why}")]
    NoXdp { ifname: String, why: String },
    #[error("{0} exists and is not a tap interface (choose another name or --mode packet)")]
    NotTap(String),
    #[error("Tap interface {0} is in use by another process")]
    TapBusy(String),
    #[error("{0} is not attached to vale{1} (see ptvmm-vale-ctl list)")]
    NotAttached(String, String),
    #[error("Cannot {what} on {ifname}")]
    Io {
        what: &'static str,
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Vale(#[from] vale::ValeError),
}

impl UplinkError {
    /// An I/O error of `what` on `ifname`; permission errors become [`UplinkError::Permission`].
    pub fn io<'a>(
        what: &'static str,
        ifname: &'a str,
    ) -> impl FnOnce(io::Error) -> UplinkError + 'a {
        move |source| match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => UplinkError::Permission {
                what,
                ifname: ifname.to_string(),
            },
            _ => UplinkError::Io {
                what,
                ifname: ifname.to_string(),
                source,
            },
        }
    }
}

/// A frame handed over by a host endpoint: its bytes and, when the kernel took the 802.1Q
/// tag out of the frame (VLAN offload), the 4 tag bytes to put back after the MACs.
pub type FrameFn<'a> = dyn FnMut(&[u8], Option<[u8; 4]>) + 'a;

/// The receiving half of a host endpoint (host → switch), driven by one thread.
pub trait HostRx: Send {
    /// A descriptor that polls readable when frames are waiting.
    fn fd(&self) -> RawFd;
    /// Hands up to `max` waiting frames to `f` without blocking; returns how many.
    fn recv(&mut self, max: usize, f: &mut FrameFn<'_>) -> io::Result<usize>;
    /// Frames the kernel dropped because this endpoint's ring was full, since the last call.
    fn kernel_drops(&mut self) -> u64 {
        0
    }
}

/// The sending half of a host endpoint (switch → host), driven by one thread.
pub trait HostTx: Send {
    /// A descriptor that polls writable when [`HostTx::send`] may accept a frame again.
    fn fd(&self) -> RawFd;
    /// Queues one frame; `Ok(false)` when there is no room now (flush, poll, retry).
    fn send(&mut self, frame: &[u8]) -> io::Result<bool>;
    /// Makes the queued frames leave.
    fn flush(&mut self) -> io::Result<()>;
}

/// An opened host endpoint.
pub struct Host {
    pub rx: Box<dyn HostRx>,
    pub tx: Box<dyn HostTx>,
    /// The interface's MTU: frames from the switch longer than this plus the Ethernet
    /// header (plus 4 for an 802.1Q tag) are dropped and counted.
    pub mtu: u32,
    /// Extra words for the listing (e.g. "copy" or "zero-copy" for xdp).
    pub detail: String,
}

/// Longest frame the interface takes for `mtu`, given the frame's own bytes (a tagged frame
/// may be 4 bytes longer).
pub fn max_frame(mtu: u32, frame: &[u8]) -> usize {
    let tagged =
        frame.len() >= 14 && matches!(u16::from_be_bytes([frame[12], frame[13]]), 0x8100 | 0x88a8);
    mtu as usize + 14 + if tagged { 4 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        for m in [Mode::Xdp, Mode::Packet, Mode::Tap] {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), m);
        }
        assert!("raw".parse::<Mode>().is_err());
    }

    #[test]
    fn frame_limit_counts_a_vlan_tag() {
        let mut f = vec![0u8; 1518];
        assert_eq!(max_frame(1500, &f), 1514);
        f[12] = 0x81;
        assert_eq!(max_frame(1500, &f), 1518);
    }

    #[test]
    fn permission_errors_name_the_fix() {
        let e = UplinkError::io("open a packet socket", "eth9")(io::Error::from_raw_os_error(
            libc::EPERM,
        ));
        assert!(matches!(e, UplinkError::Permission { .. }));
        assert!(e.to_string().contains("run as root"), "{e}");
    }
}
