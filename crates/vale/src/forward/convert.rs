//! Delivery to a destination with another virtio-net header length than the sender's:
//! each job's packets converted ([`vnet::convert`]) from a private copy, and what a job
//! delivers either way ([`Load`]).

use super::*;

/// A job's packets converted for a destination with another header length: the frames
/// produced, and per packet `(first frame, end frame, slots they take)`.
#[derive(Debug, Default)]
pub(super) struct Conv {
    out: vnet::Frames,
    pkts: Vec<(u32, u32, u32)>,
}

impl TxCtx {
    /// Converts the packets of every job whose destination has another virtio-net header
    /// length than the sender ([`vnet::convert`]), from a private copy of each. A packet
    /// that cannot be converted (a hostile or broken header) is dropped for that
    /// destination and counted in the sender's `tx_bad`.
    pub(super) fn convert_jobs(&mut self, src: &Sender) {
        let mut used = 0;
        let mut bad = 0u64;
        for job in self.jobs.iter_mut() {
            let peer = &self.peers.list[job.peer];
            if peer.hdr_len == src.hdr_len {
                continue;
            }
            if self.convs.len() == used {
                self.convs.push(Conv::default());
            }
            let conv = &mut self.convs[used];
            conv.out.clear();
            conv.pkts.clear();
            let buf = peer.layout.config.buf_size.max(1) as usize;
            for &i in &self.lists[job.start as usize..job.end as usize] {
                let f = &self.ft[i as usize];
                self.pkt.clear();
                for &(o, l) in &self.frags[f.frag as usize..(f.frag + f.nfrags as u32) as usize] {
                    let at = self.pkt.len();
                    self.pkt.resize(at + l as usize, 0);
                    src.mem.read_bytes(o, &mut self.pkt[at..]);
                }
                let first = conv.out.frames.len();
                if let Err(e) = vnet::convert(
                    &self.pkt,
                    src.hdr_len as usize,
                    peer.hdr_len as usize,
                    &mut conv.out,
                ) {
                    log::debug!("port {} -> port {}: frame dropped: {e}", src.idx, peer.idx);
                    bad += 1;
                }
                let end = conv.out.frames.len();
                let slots = conv.out.frames[first..end]
                    .iter()
                    .map(|&(_, len)| len.div_ceil(buf).max(1) as u32)
                    .sum();
                conv.pkts.push((first as u32, end as u32, slots));
            }
            job.conv = used as u32;
            used += 1;
        }
        src.sw.add_u64(entry(src.idx) + E_TX_BAD, bad);
    }
}

/// What one job delivers to its destination ring.
#[derive(Clone, Copy)]
pub(super) enum Load<'a> {
    /// Packets of the batch as they are (`pkts` index `ft`).
    Direct {
        pkts: &'a [u32],
        ft: &'a [BatchPacket],
        frags: &'a [(usize, u16)],
    },
    /// The same packets converted for the destination's virtio-net header.
    Converted { pkts: &'a [u32], conv: &'a Conv },
}

impl<'a> Load<'a> {
    /// What `job` delivers, from the batch's lists.
    pub(super) fn of(
        job: &Job,
        lists: &'a [u32],
        ft: &'a [BatchPacket],
        frags: &'a [(usize, u16)],
        convs: &'a [Conv],
    ) -> Load<'a> {
        let pkts = &lists[job.start as usize..job.end as usize];
        match job.conv {
            NO_CONV => Load::Direct { pkts, ft, frags },
            index => Load::Converted {
                pkts,
                conv: &convs[index as usize],
            },
        }
    }

    /// The packets (positions in the batch, ascending).
    pub(super) fn pkts(&self) -> &'a [u32] {
        match *self {
            Load::Direct { pkts, .. } | Load::Converted { pkts, .. } => pkts,
        }
    }

    /// Destination slots packet `k` (of [`Load::pkts`]) takes.
    #[inline(always)]
    pub(super) fn slots(&self, k: usize) -> u32 {
        match *self {
            Load::Direct { pkts, ft, .. } => ft[pkts[k] as usize].nfrags as u32,
            Load::Converted { conv, .. } => conv.pkts[k].2,
        }
    }

    /// Copies packets `0..count` into RX ring `rx` of `peer` from slot `start` on
    /// (reserved). Returns the frames and bytes the receiver gets.
    pub(super) fn copy(
        &self,
        src: &Sender,
        peer: &Peer,
        rx: u32,
        start: u32,
        count: usize,
    ) -> (u64, u64) {
        match *self {
            Load::Direct { pkts, ft, frags } => {
                let bytes = copy_packets(src, peer, rx, start, &pkts[..count], ft, frags);
                (count as u64, bytes)
            }
            Load::Converted { conv, .. } => copy_converted(peer, rx, start, conv, count),
        }
    }
}

/// Copies the converted frames of packets `0..count` of `conv` into RX ring `rx` of `peer`
/// from slot `start` on, each frame over as many slots as the destination's buffers need
/// (MOREFRAG on all but its last). Returns the frames and bytes delivered.
fn copy_converted(peer: &Peer, rx: u32, start: u32, conv: &Conv, count: usize) -> (u64, u64) {
    let n = peer.layout.config.rx_slots;
    let rxr = RingView::new(peer.mem, peer.layout.rx_ring_offset(rx), n);
    let buf = peer.layout.config.buf_size.max(1) as usize;
    let (mut k, mut frames, mut bytes) = (start, 0u64, 0u64);
    for &(first, end, _) in &conv.pkts[..count] {
        for f in first..end {
            let frame = conv.out.get(f as usize);
            let pieces = frame.len().div_ceil(buf).max(1);
            for (p, piece) in frame
                .chunks(buf)
                .chain(std::iter::once(&[][..]))
                .take(pieces)
                .enumerate()
            {
                let flags = if p + 1 < pieces { slot::F_MOREFRAG } else { 0 };
                let d = rxr.slot(k);
                match peer.layout.buf_offset(d.buf_idx()) {
                    Some(dofs) => {
                        peer.mem.write_bytes(dofs, piece);
                        d.set_len_flags(piece.len() as u16, flags);
                    }
                    None => d.set_len_flags(0, flags),
                }
                k = ring::next(k, n);
            }
            frames += 1;
            bytes += frame.len() as u64;
        }
    }
    (frames, bytes)
}
