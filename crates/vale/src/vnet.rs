//! The virtio-net header on VALE ports (netmap's `virt_hdr_len`).
//!
//! A port may carry a header of 0, 10 or 12 bytes in front of every frame it sends and
//! receives (`struct virtio_net_hdr`, plus `num_buffers` for 12). Through it a guest hands over
//! checksums to complete (`NEEDS_CSUM`) and frames up to 64 KiB to segment (GSO: TSO, TSO6,
//! UFO, USO). Between ports with the same length a frame passes unchanged. Between different
//! lengths the switch converts it here, as netmap's VALE does on a mismatch:
//! - to a port without a header: a GSO frame is segmented (TCP, UDP) or fragmented (UFO) with
//!   every checksum computed, a `NEEDS_CSUM` frame gets its checksum, and the header goes;
//! - to a port with a header from one without: a zero header (no offload) is put in front;
//! - 10 ↔ 12: the same header, `num_buffers` added (1) or removed.
//!
//! The header comes from a guest or another process and is untrusted like every slot field:
//! offsets past the frame, a zero or absurd `gso_size`, headers that do not parse, more than
//! [`MAX_SEGS`] segments → [`BadFrame`] (the frame is dropped and counted), never a panic.
//! Everything works on a private copy of the frame, so the sender cannot change it meanwhile.

use netmap::checksum;

/// Header lengths a port may have.
pub const HDR_LENS: [u32; 3] = [0, 10, 12];
/// `flags`: the checksum from `csum_start` to the end is to be computed and stored at
/// `csum_start + csum_offset` (which holds the pseudo-header's sum).
pub const F_NEEDS_CSUM: u8 = 1;
/// `gso_type` values.
pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_UDP: u8 = 3;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;
/// `gso_type` bit: the TCP stream uses ECN (CWR stays on the first segment only).
pub const GSO_ECN: u8 = 0x80;
/// The most segments one frame may become (a 64 KiB frame with a 256-byte MSS); more is
/// taken as a hostile `gso_size`.
pub const MAX_SEGS: usize = 256;

const ETH: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// `struct virtio_net_hdr` (little-endian fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads the first 10 bytes of `b` (at least 10 long).
    pub fn parse(b: &[u8]) -> VnetHdr {
        let le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: le(2),
            gso_size: le(4),
            csum_start: le(6),
            csum_offset: le(8),
        }
    }

    /// The header as `len` (10 or 12) bytes; `num_buffers` is 1 for 12.
    pub fn bytes(&self, len: usize) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        if len == 12 {
            b[10] = 1;
        }
        b
    }
}

/// Why a frame could not be converted (it is dropped and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadFrame {
    #[error("frame shorter than its virtio-net header")]
    Short,
    #[error("checksum offsets past the frame")]
    CsumOutside,
    #[error("unknown gso_type {0:#x}")]
    UnknownGso(u8),
    #[error("gso_size 0")]
    ZeroGsoSize,
    #[error("more than {MAX_SEGS} segments")]
    TooManySegments,
    #[error("GSO frame whose headers do not parse as its gso_type says")]
    Headers,
    #[error("a segment would exceed the 64 KiB an IP length can say")]
    TooLong,
}

/// Frames produced by [`convert`]: their bytes one after the other in `bytes`, and each
/// one's `(start, len)` there.
#[derive(Debug, Default)]
pub struct Frames {
    pub bytes: Vec<u8>,
    pub frames: Vec<(usize, usize)>,
}

impl Frames {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
    }

    /// Frame `i` of those produced.
    pub fn get(&self, i: usize) -> &[u8] {
        let (s, l) = self.frames[i];
        &self.bytes[s..s + l]
    }

    fn push(&mut self, parts: &[&[u8]]) -> usize {
        let start = self.bytes.len();
        for p in parts {
            self.bytes.extend_from_slice(p);
        }
        self.frames.push((start, self.bytes.len() - start));
        start
    }
}

/// Converts `frame` (a `src_len`-byte header, then the Ethernet frame) for a port whose
/// header is `dst_len` bytes, appending the result (one frame, or the segments of a GSO
/// frame) to `out`. On error `out` is as it was.
pub fn convert(
    frame: &[u8],
    src_len: usize,
    dst_len: usize,
    out: &mut Frames,
) -> Result<(), BadFrame> {
    let mark = (out.bytes.len(), out.frames.len());
    let r = convert_inner(frame, src_len, dst_len, out);
    if r.is_err() {
        out.bytes.truncate(mark.0);
        out.frames.truncate(mark.1);
    }
    r
}

fn convert_inner(
    frame: &[u8],
    src_len: usize,
    dst_len: usize,
    out: &mut Frames,
) -> Result<(), BadFrame> {
    if frame.len() < src_len {
        return Err(BadFrame::Short);
    }
    let eth = &frame[src_len..];
    if src_len == 0 {
        // No offload asked: a zero header in front.
        out.push(&[&VnetHdr::default().bytes(dst_len)[..dst_len], eth]);
        return Ok(());
    }
    let hdr = VnetHdr::parse(frame);
    if dst_len != 0 {
        // 10 <-> 12: the receiver takes the offloads as they are.
        out.push(&[&hdr.bytes(dst_len)[..dst_len], eth]);
        return Ok(());
    }
    match hdr.gso_type & !GSO_ECN {
        GSO_NONE => {
            let start = out.push(&[eth]);
            if hdr.flags & F_NEEDS_CSUM != 0 {
                let f = &mut out.bytes[start..];
                complete_csum(f, hdr.csum_start as usize, hdr.csum_offset as usize)?;
            }
            Ok(())
        }
        GSO_TCPV4 => segment_tcp(eth, hdr.gso_size as usize, false, out),
        GSO_TCPV6 => segment_tcp(eth, hdr.gso_size as usize, true, out),
        GSO_UDP_L4 => segment_udp(eth, hdr.gso_size as usize, out),
        GSO_UDP => fragment_udp(eth, &hdr, out),
        t => Err(BadFrame::UnknownGso(t)),
    }
}

/// Stores the checksum of `f[start..]` at `start + offset` (the field holds the pseudo-header
/// sum, as a sender leaves it for `NEEDS_CSUM`).
fn complete_csum(f: &mut [u8], start: usize, offset: usize) -> Result<(), BadFrame> {
    let at = start + offset;
    if at + 2 > f.len() {
        return Err(BadFrame::CsumOutside);
    }
    let mut c = checksum::finish(checksum::sum(&f[start..], 0));
    if c == 0 && offset == 6 {
        c = 0xffff; // UDP: 0 would mean "no checksum"
    }
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

fn put16(b: &mut [u8], i: usize, v: u16) {
    b[i..i + 2].copy_from_slice(&v.to_be_bytes());
}

/// Where the IP and transport headers of a GSO frame are.
#[derive(Debug, Clone, Copy)]
struct Headers {
    v6: bool,
    /// Length of the IPv4 header (40 for IPv6, which may not carry extension headers here).
    ip_len: usize,
    /// Offset of the TCP or UDP header.
    l4: usize,
    /// Its length.
    l4_len: usize,
}

impl Headers {
    fn parse(eth: &[u8], proto: u8) -> Result<Headers, BadFrame> {
        let bad = Err(BadFrame::Headers);
        if eth.len() < ETH + 20 {
            return bad;
        }
        let (v6, ip_len, next) = match be16(eth, 12) {
            ETHERTYPE_IPV4 if eth[ETH] >> 4 == 4 => {
                let ihl = (eth[ETH] & 0xf) as usize * 4;
                if ihl < 20 || be16(eth, ETH + 6) & 0x3fff != 0 {
                    return bad; // short header, or already a fragment
                }
                (false, ihl, eth[ETH + 9])
            }
            ETHERTYPE_IPV6 if eth.len() >= ETH + 40 && eth[ETH] >> 4 == 6 => {
                (true, 40, eth[ETH + 6])
            }
            _ => return bad,
        };
        if next != proto {
            return bad;
        }
        let l4 = ETH + ip_len;
        let l4_len = match proto {
            PROTO_TCP if eth.len() >= l4 + 20 => (eth[l4 + 12] >> 4) as usize * 4,
            PROTO_UDP => 8,
            _ => return bad,
        };
        if l4_len < 8 || (proto == PROTO_TCP && l4_len < 20) || eth.len() < l4 + l4_len {
            return bad;
        }
        Ok(Headers {
            v6,
            ip_len,
            l4,
            l4_len,
        })
    }

    fn end(&self) -> usize {
        self.l4 + self.l4_len
    }

    /// Sets the IP length fields of a segment whose IP payload is `l4_bytes`, and for IPv4
    /// its identification (`id`) and header checksum.
    fn fix_ip(&self, seg: &mut [u8], l4_bytes: usize, id: u16) {
        if self.v6 {
            put16(seg, ETH + 4, l4_bytes as u16);
        } else {
            put16(seg, ETH + 2, (self.ip_len + l4_bytes) as u16);
            put16(seg, ETH + 4, id);
            put16(seg, ETH + 10, 0);
            let c = checksum::checksum(&seg[ETH..ETH + self.ip_len]);
            put16(seg, ETH + 10, c);
        }
    }

    /// The transport checksum of a segment (pseudo-header included), stored at `field`.
    fn fix_l4_csum(&self, seg: &mut [u8], proto: u8, field: usize) {
        let l4_bytes = seg.len() - self.l4;
        put16(seg, self.l4 + field, 0);
        let addrs = if self.v6 {
            &seg[ETH + 8..ETH + 40]
        } else {
            &seg[ETH + 12..ETH + 20]
        };
        let pseudo = checksum::sum(addrs, 0) + proto as u64 + l4_bytes as u64;
        let mut c = checksum::finish(checksum::sum(&seg[self.l4..], pseudo));
        if c == 0 && proto == PROTO_UDP {
            c = 0xffff;
        }
        put16(seg, self.l4 + field, c);
    }
}

/// Payload chunks of `mss` bytes, checked against [`MAX_SEGS`] and against the IP length
/// field: `head` bytes of IP and transport headers go in front of each.
fn chunks(payload: &[u8], mss: usize, head: usize) -> Result<std::slice::Chunks<'_, u8>, BadFrame> {
    if mss == 0 {
        return Err(BadFrame::ZeroGsoSize);
    }
    if payload.len().div_ceil(mss) > MAX_SEGS {
        return Err(BadFrame::TooManySegments);
    }
    if head + mss.min(payload.len()) > u16::MAX as usize {
        return Err(BadFrame::TooLong);
    }
    Ok(payload.chunks(mss))
}

/// TSO/TSO6: one TCP segment per `mss` bytes of payload, sequence numbers advanced, FIN and
/// PSH on the last only, CWR on the first only, lengths and checksums recomputed.
fn segment_tcp(eth: &[u8], mss: usize, v6: bool, out: &mut Frames) -> Result<(), BadFrame> {
    let h = Headers::parse(eth, PROTO_TCP)?;
    if h.v6 != v6 {
        return Err(BadFrame::Headers);
    }
    let (head, payload) = eth.split_at(h.end());
    let seq0 = u32::from_be_bytes(head[h.l4 + 4..h.l4 + 8].try_into().expect("4 bytes"));
    let flags0 = head[h.l4 + 13];
    let id0 = be16(head, ETH + 4);
    let parts: Vec<&[u8]> = if payload.is_empty() {
        vec![payload]
    } else {
        chunks(payload, mss, h.ip_len + h.l4_len)?.collect()
    };
    let n = parts.len();
    for (k, part) in parts.into_iter().enumerate() {
        let start = out.push(&[head, part]);
        let seg = &mut out.bytes[start..];
        h.fix_ip(seg, h.l4_len + part.len(), id0.wrapping_add(k as u16));
        let seq = seq0.wrapping_add((k * mss) as u32);
        seg[h.l4 + 4..h.l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = flags0;
        if k + 1 < n {
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if k > 0 {
            flags &= !TCP_CWR;
        }
        seg[h.l4 + 13] = flags;
        h.fix_l4_csum(seg, PROTO_TCP, 16);
    }
    Ok(())
}

/// USO (UDP_L4): one UDP datagram per `mss` bytes of payload, each with its own length and
/// checksum; a datagram without payload stays one (as for TSO: never zero frames).
fn segment_udp(eth: &[u8], mss: usize, out: &mut Frames) -> Result<(), BadFrame> {
    let h = Headers::parse(eth, PROTO_UDP)?;
    let (head, payload) = eth.split_at(h.end());
    let id0 = be16(head, ETH + 4);
    let parts: Vec<&[u8]> = if payload.is_empty() {
        vec![payload]
    } else {
        chunks(payload, mss, h.ip_len + 8)?.collect()
    };
    for (k, part) in parts.into_iter().enumerate() {
        let start = out.push(&[head, part]);
        let seg = &mut out.bytes[start..];
        h.fix_ip(seg, 8 + part.len(), id0.wrapping_add(k as u16));
        put16(seg, h.l4 + 4, (8 + part.len()) as u16);
        h.fix_l4_csum(seg, PROTO_UDP, 6);
    }
    Ok(())
}

/// UFO: the UDP datagram (its checksum completed first if asked) cut into IPv4 fragments of
/// `gso_size` bytes rounded down to a multiple of 8.
fn fragment_udp(eth: &[u8], hdr: &VnetHdr, out: &mut Frames) -> Result<(), BadFrame> {
    let h = Headers::parse(eth, PROTO_UDP)?;
    if h.v6 {
        return Err(BadFrame::Headers); // IPv6 fragments need an extension header: not done
    }
    let mut datagram = eth.to_vec();
    if hdr.flags & F_NEEDS_CSUM != 0 {
        if (hdr.csum_start as usize) < h.l4 {
            // The sum would land in the headers just parsed (IHL, protocol, ethertype), and
            // the fragments would carry a header that no longer says how they were cut.
            return Err(BadFrame::CsumOutside);
        }
        complete_csum(
            &mut datagram,
            hdr.csum_start as usize,
            hdr.csum_offset as usize,
        )?;
    }
    let (head, body) = datagram.split_at(h.l4);
    if body.len() > u16::MAX as usize - h.ip_len {
        return Err(BadFrame::TooLong); // past the last fragment offset
    }
    let step = hdr.gso_size as usize & !7;
    let id = be16(head, ETH + 4);
    let mut ofs = 0;
    for part in chunks(body, step, h.ip_len)? {
        let start = out.push(&[head, part]);
        let seg = &mut out.bytes[start..];
        let more = ofs + part.len() < body.len();
        put16(
            seg,
            ETH + 6,
            (ofs / 8) as u16 | if more { 0x2000 } else { 0 },
        );
        h.fix_ip(seg, part.len(), id);
        ofs += part.len();
    }
    Ok(())
}

#[cfg(test)]
#[path = "vnet_tests.rs"]
mod tests;
