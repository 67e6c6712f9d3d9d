//! Which backend an interface name selects, and opening it: `vale0:1` is a VALE port,
//! `ptnet0` or `/dev/ptnet0` ptnet.ko's character device.

use anyhow::{Context, Result};
use netmap::RegionConfig;
use vale::{Port, PortOptions};

use crate::ptnet::PtnetDevice;

/// Which backend an interface name selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A VALE port, e.g. `vale0:1`.
    Vale(String),
    /// A ptnet character device, by path (`ptnet0` and `/dev/ptnet0` both give `/dev/ptnet0`).
    Ptnet(String),
}

impl Target {
    /// `/dev/...` or `ptnetN` → the device; anything else is a VALE port name.
    pub fn parse(name: &str) -> Target {
        if name.starts_with("/dev/") {
            return Target::Ptnet(name.to_string());
        }
        match name.strip_prefix("ptnet") {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                Target::Ptnet(format!("/dev/{name}"))
            }
            _ => Target::Vale(name.to_string()),
        }
    }
}

/// How to open a port (see [`open`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// The ptnet device's busy-poll mode (callers refuse it for VALE ports, whose syncs
    /// never enter the kernel).
    pub busy_poll: bool,
    /// A VALE port opened lossless (callers refuse it for ptnet devices).
    pub lossless: bool,
    /// A VALE port's virtio-net header length, 0, 10 or 12 (callers refuse others, and any
    /// but 0 for ptnet devices, whose driver sets it).
    pub vnet_hdr_len: u32,
    /// A VALE port's TX and RX ring count, or how many ring pairs of a ptnet device to
    /// register, one per file (0 is taken as 1; `-p` opens one per thread).
    pub rings: u32,
    /// A VALE port's slots per TX and RX ring (0: VALE's default; callers refuse it for
    /// ptnet devices).
    pub slots: u32,
}

/// An open interface: a VALE port (with all its rings) or a ptnet device: one file
/// registered for every ring (driven on ring 0), or with `o.rings` > 1 one file per ring pair.
pub enum Opened {
    Vale(Box<Port>),
    Ptnet(Vec<PtnetDevice>),
}

/// Opens a VALE port `name` with `o.rings` TX and RX rings of `o.slots` slots.
pub fn open_vale(name: &str, o: OpenOptions) -> Result<Port> {
    let rings = o.rings.max(1);
    let d = RegionConfig::default();
    let slots = |n| if o.slots > 0 { o.slots } else { n };
    let opts = PortOptions {
        lossless: o.lossless,
        vnet_hdr_len: o.vnet_hdr_len,
        config: RegionConfig {
            tx_rings: rings,
            rx_rings: rings,
            tx_slots: slots(d.tx_slots),
            rx_slots: slots(d.rx_slots),
            ..d
        },
        ..PortOptions::default()
    };
    Port::open(name, &opts).with_context(|| format!("opening {name}"))
}

/// Opens the interface a name selects.
pub fn open_any(name: &str, o: OpenOptions) -> Result<Opened> {
    Ok(match Target::parse(name) {
        Target::Vale(n) => Opened::Vale(Box::new(open_vale(&n, o)?)),
        Target::Ptnet(p) => {
            let open = |ring| {
                PtnetDevice::open(&p, o.busy_poll, ring).with_context(|| format!("opening {p}"))
            };
            Opened::Ptnet(if o.rings <= 1 {
                vec![open(None)?]
            } else {
                (0..o.rings).map(|i| open(Some(i))).collect::<Result<_>>()?
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_by_name() {
        let p = |s: &str| Target::Ptnet(s.to_string());
        let v = |s: &str| Target::Vale(s.to_string());
        assert_eq!(Target::parse("ptnet0"), p("/dev/ptnet0"));
        assert_eq!(Target::parse("ptnet12"), p("/dev/ptnet12"));
        assert_eq!(Target::parse("/dev/ptnet0"), p("/dev/ptnet0"));
        assert_eq!(Target::parse("/dev/ptnet3"), p("/dev/ptnet3"));
        assert_eq!(Target::parse("vale0:1"), v("vale0:1"));
        assert_eq!(Target::parse("valeX:Y"), v("valeX:Y"));
        assert_eq!(Target::parse("ptnet"), v("ptnet"));
        assert_eq!(Target::parse("ptnetx"), v("ptnetx"));
    }

    #[test]
    fn missing_device_is_an_error_not_a_vale_port() {
        let e = open_any("/dev/ptnet-does-not-exist", OpenOptions::default())
            .err()
            .expect("must fail");
        assert!(
            format!("{e:#}").contains("/dev/ptnet-does-not-exist"),
            "{e:#}"
        );
    }
}
