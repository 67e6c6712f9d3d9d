//! `xdp` mode: not available in this build yet (see docs/vale.md, "Uplinks").

use crate::{Host, UplinkError};

/// Opens AF_XDP sockets on every RX queue of `ifname`.
pub fn open(ifname: &str, _ifindex: u32, _mtu: u32) -> Result<Host, UplinkError> {
    Err(UplinkError::NoXdp {
        ifname: ifname.to_string(),
        why: "this build of ptvmm has no AF_XDP support".to_string(),
    })
}
