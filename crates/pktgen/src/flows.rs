//! `-s`/`-d` address ranges (`IP[-IP][:PORT[-PORT]]`, e.g. `10.0.0.1-10.0.0.9:1234-1240`)
//! and the flow of each frame tx sends: the ranges cycled as an odometer (source port
//! fastest, then source IP, then destination port, then destination IP), or drawn at random
//! within them (`-z` source, `-Z` destination). [`Header`] rewrites a frame's addresses,
//! ports and both checksums for a flow.

use std::net::Ipv4Addr;

use crate::checksum;
use crate::frame::{Endpoints, HEADERS};
use crate::seq::SEQ_LEN;

/// An inclusive range of IPv4 addresses and of UDP ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub ip0: u32,
    pub ip1: u32,
    pub port0: u16,
    pub port1: u16,
}

impl Range {
    /// Parses `IP[-IP][:PORT[-PORT]]`; the port defaults to `port`. Errors say what is wrong
    /// and with which part.
    pub fn parse(s: &str, port: u16) -> Result<Range, String> {
        if s.is_empty() {
            return Err("empty address: expected IP[-IP][:PORT[-PORT]]".into());
        }
        let (ips, ports) = match s.split_once(':') {
            Some((i, p)) => (i, Some(p)),
            None => (s, None),
        };
        let (ip0, ip1) = span(s, ips, "address", |t| {
            t.parse::<Ipv4Addr>()
                .map(u32::from)
                .map_err(|_| format!("{s:?}: invalid IPv4 address {t:?}"))
        })?;
        let (port0, port1) = match ports {
            None => (port, port),
            Some(p) => span(s, p, "port", |t| match t.parse::<u64>() {
                Ok(v) => u16::try_from(v).map_err(|_| format!("{s:?}: port {v} above 65535")),
                Err(_) => Err(format!("{s:?}: invalid port {t:?}")),
            })?,
        };
        Ok(Range {
            ip0,
            ip1,
            port0,
            port1,
        })
    }

    /// Addresses times ports in the range.
    pub fn size(&self) -> u64 {
        (self.ip1 - self.ip0) as u64 * (self.port1 - self.port0) as u64
            + (self.ip1 - self.ip0) as u64
            + (self.port1 - self.port0) as u64
            + 1
    }
}

/// `A[-B]` (part `t` of range `s`) parsed with `one`: (A, A) or (A, B) with A <= B.
fn span<T: Copy + PartialOrd>(
    s: &str,
    t: &str,
    what: &str,
    one: impl Fn(&str) -> Result<T, String>,
) -> Result<(T, T), String> {
    let (a, b) = match t.split_once('-') {
        Some((a, b)) => (a, b),
        None => (t, t),
    };
    if a.is_empty() || b.is_empty() {
        return Err(format!("{s:?}: missing {what} in {t:?}"));
    }
    let (a, b) = (one(a)?, one(b)?);
    if b < a {
        return Err(format!(
            "{s:?}: empty {what} range {t:?} (its end is below its start)"
        ));
    }
    Ok((a, b))
}

/// A small xorshift64* generator for `-z`/`-Z` (statistical quality is not the point).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `lo..=hi`.
    fn within(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One frame's addresses and ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub src_ip: u32,
    pub src_port: u16,
    pub dst_ip: u32,
    pub dst_port: u16,
}

/// The sequence of flows for `-s`/`-d` ranges and `-z`/`-Z`.
#[derive(Debug, Clone)]
pub struct Flows {
    src: Range,
    dst: Range,
    random_src: bool,
    random_dst: bool,
    cur: Flow,
    rng: Rng,
}

impl Flows {
    /// Starts at both ranges' first address and port (random ones drawn); `seed` seeds
    /// `-z`/`-Z`.
    pub fn new(src: Range, dst: Range, random_src: bool, random_dst: bool, seed: u64) -> Flows {
        let mut f = Flows {
            src,
            dst,
            random_src,
            random_dst,
            cur: Flow {
                src_ip: src.ip0,
                src_port: src.port0,
                dst_ip: dst.ip0,
                dst_port: dst.port0,
            },
            rng: Rng(seed | 1),
        };
        if random_src {
            f.draw_src();
        }
        if random_dst {
            f.draw_dst();
        }
        f
    }

    /// Frames until the (non-random) sequence of flows repeats: the ranges' sizes' product.
    pub fn cycle_len(&self) -> u64 {
        self.src.size().saturating_mul(self.dst.size())
    }

    /// Whether the flows are drawn at random (`-z`/`-Z`).
    pub fn is_random(&self) -> bool {
        self.random_src || self.random_dst
    }

    /// Whether every frame has the same flow (then tx need not rewrite headers).
    pub fn is_single(&self) -> bool {
        self.src.size() == 1 && self.dst.size() == 1
    }

    /// The flow of the next frame.
    pub fn next_flow(&mut self) -> Flow {
        let f = self.cur;
        self.advance();
        f
    }

    fn draw_src(&mut self) {
        let s = self.src;
        self.cur.src_ip = self.rng.within(s.ip0 as u64, s.ip1 as u64) as u32;
        self.cur.src_port = self.rng.within(s.port0 as u64, s.port1 as u64) as u16;
    }

    fn draw_dst(&mut self) {
        let d = self.dst;
        self.cur.dst_ip = self.rng.within(d.ip0 as u64, d.ip1 as u64) as u32;
        self.cur.dst_port = self.rng.within(d.port0 as u64, d.port1 as u64) as u16;
    }

    /// Random sides are drawn anew for every frame; the others turn as an odometer: the
    /// source port fastest, carrying into the source IP, the destination port and the
    /// destination IP (with `-z` the source carries every frame, so `-d` cycles one step
    /// per frame).
    fn advance(&mut self) {
        let (s, d) = (self.src, self.dst);
        let carry = if self.random_src {
            self.draw_src();
            true
        } else {
            let c = &mut self.cur;
            step16(&mut c.src_port, s.port0, s.port1) && step32(&mut c.src_ip, s.ip0, s.ip1)
        };
        if self.random_dst {
            self.draw_dst();
        } else if carry {
            let c = &mut self.cur;
            let _ =
                step16(&mut c.dst_port, d.port0, d.port1) && step32(&mut c.dst_ip, d.ip0, d.ip1);
        }
    }
}

/// One odometer wheel: `v` to the next value of `lo..=hi`; true when it wrapped to `lo`.
fn step32(v: &mut u32, lo: u32, hi: u32) -> bool {
    if *v < hi {
        *v += 1;
        false
    } else {
        *v = lo;
        true
    }
}

/// [`step32`] for ports.
fn step16(v: &mut u16, lo: u16, hi: u16) -> bool {
    let mut w = *v as u32;
    let wrapped = step32(&mut w, lo as u32, hi as u32);
    *v = w as u16;
    wrapped
}

/// The first 42 bytes of a frame (48 with txseq's sequence fields), rewritten per flow with
/// correct checksums (the rest of the payload's sum is computed once).
#[derive(Debug, Clone)]
pub struct Header {
    bytes: [u8; HEADERS + SEQ_LEN],
    len: usize,
    payload_sum: u64,
}

impl Header {
    /// The header of `frame` (a [`crate::frame::build`] frame, at least 48 bytes with `seq`).
    pub fn new(frame: &[u8], seq: bool) -> Header {
        let len = if seq { HEADERS + SEQ_LEN } else { HEADERS };
        let mut bytes = [0u8; HEADERS + SEQ_LEN];
        bytes[..len].copy_from_slice(&frame[..len]);
        Header {
            bytes,
            len,
            payload_sum: checksum::sum(&frame[len..], 0),
        }
    }

    /// The header for flow `f` (and with txseq its sequence fields `seq`): addresses, ports,
    /// IPv4 and UDP checksums.
    pub fn for_flow(&mut self, f: &Flow, seq: Option<(u32, u16)>) -> &[u8] {
        let h = &mut self.bytes;
        h[26..30].copy_from_slice(&f.src_ip.to_be_bytes());
        h[30..34].copy_from_slice(&f.dst_ip.to_be_bytes());
        h[34..36].copy_from_slice(&f.src_port.to_be_bytes());
        h[36..38].copy_from_slice(&f.dst_port.to_be_bytes());
        if let (Some((n, t)), true) = (seq, self.len > HEADERS) {
            crate::seq::put(&mut h[HEADERS..], n, t);
        }
        h[24..26].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&h[14..34]);
        h[24..26].copy_from_slice(&c.to_be_bytes());
        h[40..42].copy_from_slice(&[0, 0]);
        let udp_len = u16::from_be_bytes([h[38], h[39]]);
        // The pseudo-header: addresses, protocol, UDP length.
        let pseudo = checksum::sum(&h[26..34], 17 + udp_len as u64);
        let mut c = checksum::finish(checksum::sum(&h[34..self.len], pseudo + self.payload_sum));
        if c == 0 {
            c = 0xffff;
        }
        h[40..42].copy_from_slice(&c.to_be_bytes());
        &self.bytes[..self.len]
    }
}

/// The endpoints of the ranges' first flow.
pub fn first_endpoints(ep: Endpoints, src: &Range, dst: &Range) -> Endpoints {
    Endpoints {
        src_ip: Ipv4Addr::from(src.ip0),
        dst_ip: Ipv4Addr::from(dst.ip0),
        src_port: src.port0,
        dst_port: dst.port0,
        ..ep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{build, verify};

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn ranges_parse() {
        let r = Range::parse("10.0.0.1-10.0.0.9:1234-1240", 1).unwrap();
        assert_eq!(
            r,
            Range {
                ip0: ip("10.0.0.1"),
                ip1: ip("10.0.0.9"),
                port0: 1234,
                port1: 1240
            }
        );
        assert_eq!(r.size(), 9 * 7);
        let r = Range::parse("10.0.0.1", 1234).unwrap();
        assert_eq!(
            (r.ip0, r.ip1, r.port0, r.port1, r.size()),
            (ip("10.0.0.1"), ip("10.0.0.1"), 1234, 1234, 1)
        );
        let r = Range::parse("10.0.0.1:99", 1234).unwrap();
        assert_eq!((r.port0, r.port1, r.size()), (99, 99, 1));
        let r = Range::parse("10.0.0.1:0-65535", 1234).unwrap();
        assert_eq!((r.port0, r.port1, r.size()), (0, 65535, 65536));
        let r = Range::parse("10.0.0.250-10.0.1.4", 7).unwrap();
        assert_eq!((r.port0, r.size()), (7, 11), "ranges cross octets");
        let r = Range::parse("0.0.0.0-255.255.255.255:0-65535", 7).unwrap();
        assert_eq!(r.size(), 1 << 48, "the largest range's size fits");
        let r = Range::parse("10.0.0.3-10.0.0.3:5-5", 7).unwrap();
        assert_eq!(r.size(), 1, "a range of one");
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        for (bad, says) in [
            ("", "empty address"),
            (
                "10.0.0.9-10.0.0.1",
                "empty address range \"10.0.0.9-10.0.0.1\"",
            ),
            ("10.0.0.1:9-1", "empty port range \"9-1\""),
            ("10.0.0.1:70000", "port 70000 above 65535"),
            ("10.0.0.1:1-65536", "port 65536 above 65535"),
            ("10.0.0", "invalid IPv4 address \"10.0.0\""),
            ("10.0.0.1-", "missing address"),
            ("-10.0.0.1", "missing address"),
            ("10.0.0.1:", "missing port"),
            ("10.0.0.1:5-", "missing port"),
            ("10.0.0.1:1-x", "invalid port \"x\""),
            ("10.0.0.1:1-2-3", "invalid port \"2-3\""),
            ("10.0.0.1:-1", "missing port"),
            ("garbage", "invalid IPv4 address \"garbage\""),
            ("10.0.0.1:80:81", "invalid port \"80:81\""),
            ("10.0.0.256", "invalid IPv4 address"),
        ] {
            let e = Range::parse(bad, 1).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
            if !bad.is_empty() {
                assert!(e.starts_with(&format!("{bad:?}: ")), "{bad:?}: {e}");
            }
        }
    }

    #[test]
    fn flows_cycle_source_port_first_then_source_ip_then_destination() {
        let s = Range::parse("10.0.0.1-10.0.0.2:1-2", 0).unwrap();
        let d = Range::parse("10.1.0.1-10.1.0.2:7", 0).unwrap();
        let mut f = Flows::new(s, d, false, false, 1);
        assert!(!f.is_single() && !f.is_random());
        assert_eq!(f.cycle_len(), 8);
        let seq: Vec<(u32, u16, u32)> = (0..9)
            .map(|_| f.next_flow())
            .map(|x| (x.src_ip - s.ip0, x.src_port, x.dst_ip - d.ip0))
            .collect();
        assert_eq!(
            seq,
            vec![
                (0, 1, 0),
                (0, 2, 0),
                (1, 1, 0),
                (1, 2, 0),
                (0, 1, 1),
                (0, 2, 1),
                (1, 1, 1),
                (1, 2, 1),
                (0, 1, 0),
            ]
        );
        let one = Range::parse("10.0.0.1", 5).unwrap();
        let mut f = Flows::new(one, one, false, false, 1);
        assert!(f.is_single());
        assert_eq!(f.cycle_len(), 1);
        assert_eq!(f.next_flow(), f.next_flow());
    }

    #[test]
    fn each_cycle_sends_every_flow_once() {
        // The destination port turns after the whole source range, before the destination IP.
        let s = Range::parse("10.0.0.1-10.0.0.3:1000-1001", 0).unwrap();
        let d = Range::parse("10.9.0.255-10.9.1.0:7-9", 0).unwrap();
        let mut f = Flows::new(s, d, false, false, 1);
        let n = f.cycle_len();
        assert_eq!(n, 6 * 6);
        let cycle: Vec<Flow> = (0..n).map(|_| f.next_flow()).collect();
        let distinct: std::collections::HashSet<_> = cycle.iter().collect();
        assert_eq!(distinct.len() as u64, n);
        assert_eq!(
            (cycle[5].dst_port, cycle[6].dst_port, cycle[6].src_port),
            (7, 8, 1000)
        );
        assert_eq!((cycle[17].dst_ip, cycle[18].dst_ip), (d.ip0, d.ip1));
        let again: Vec<Flow> = (0..n).map(|_| f.next_flow()).collect();
        assert_eq!(cycle, again, "the next cycle repeats it");
    }

    #[test]
    fn random_flows_stay_in_their_ranges_and_cover_them() {
        let s = Range::parse("10.0.0.1-10.0.0.4:100-103", 0).unwrap();
        let d = Range::parse("10.1.0.1:9", 0).unwrap();
        let mut f = Flows::new(s, d, true, false, 42);
        assert!(f.is_random());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let x = f.next_flow();
            assert!((s.ip0..=s.ip1).contains(&x.src_ip) && (100..=103).contains(&x.src_port));
            assert_eq!((x.dst_ip, x.dst_port), (d.ip0, 9));
            seen.insert((x.src_ip, x.src_port));
        }
        assert_eq!(seen.len(), 16, "all 16 source pairs drawn");
        // -Z with a source range: the destination is drawn for every frame (not only when
        // the source wraps) while the source still cycles in order.
        let mut f = Flows::new(s, s, false, true, 7);
        let mut dsts = std::collections::HashSet::new();
        for k in 0..400u32 {
            let x = f.next_flow();
            assert!((s.ip0..=s.ip1).contains(&x.dst_ip) && (100..=103).contains(&x.dst_port));
            assert_eq!(x.src_port, 100 + (k % 4) as u16);
            assert_eq!(x.src_ip, s.ip0 + (k / 4) % 4);
            dsts.insert((x.dst_ip, x.dst_port));
        }
        assert_eq!(dsts.len(), 16);
        // -z with a destination range: the destination moves one step per frame.
        let two = Range::parse("10.2.0.1:1-2", 0).unwrap();
        let mut f = Flows::new(s, two, true, false, 9);
        let ports: Vec<u16> = (0..4).map(|_| f.next_flow().dst_port).collect();
        assert_eq!(ports, [1, 2, 1, 2]);
        // Both, over the whole address space: still inside, and not stuck on one value.
        let all = Range::parse("0.0.0.0-255.255.255.255:0-65535", 0).unwrap();
        let small = Range::parse("192.168.0.7-192.168.0.9:65534-65535", 0).unwrap();
        let mut f = Flows::new(all, small, true, true, 11);
        let mut srcs = std::collections::HashSet::new();
        for _ in 0..1000 {
            let x = f.next_flow();
            assert!((small.ip0..=small.ip1).contains(&x.dst_ip) && x.dst_port >= 65534);
            srcs.insert(x.src_ip);
        }
        assert!(srcs.len() > 990, "{}", srcs.len());
    }

    #[test]
    fn rewritten_headers_keep_both_checksums_valid() {
        for len in [60, 61, 333, 1514] {
            assert!(len >= HEADERS + SEQ_LEN);
            let f = build(&Endpoints::default(), len);
            let mut h = Header::new(&f, false);
            let s = Range::parse("10.0.0.1-10.0.0.3:1-65535", 0).unwrap();
            let d = Range::parse("192.168.255.250-192.168.255.255:0-3", 0).unwrap();
            let mut flows = Flows::new(s, d, true, true, 3);
            for _ in 0..500 {
                let fl = flows.next_flow();
                let mut g = f.clone();
                g[..HEADERS].copy_from_slice(h.for_flow(&fl, None));
                assert_eq!(verify(&g), Ok(()), "len {len} flow {fl:?}");
                // The same frame built from scratch is byte for byte identical.
                let ep = Endpoints {
                    src_ip: Ipv4Addr::from(fl.src_ip),
                    dst_ip: Ipv4Addr::from(fl.dst_ip),
                    src_port: fl.src_port,
                    dst_port: fl.dst_port,
                    ..Endpoints::default()
                };
                assert_eq!(g, build(&ep, len));
            }
            // With sequence fields: still valid, and rxseq reads them back.
            let mut h = Header::new(&f, true);
            let fl = flows.next_flow();
            let mut g = f.clone();
            g[..HEADERS + SEQ_LEN].copy_from_slice(h.for_flow(&fl, Some((0x01020304, 3))));
            assert_eq!(verify(&g), Ok(()), "len {len} with sequence");
            let (k, n) = crate::seq::parse(&g).unwrap();
            assert_eq!(
                (k, n),
                (
                    (fl.src_ip, fl.src_port, fl.dst_ip, fl.dst_port, 3),
                    0x01020304
                )
            );
        }
    }
}
