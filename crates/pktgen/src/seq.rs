//! `-f txseq|rxseq`: sequence numbers in the payload, and the receiver's per-flow loss,
//! reordering and duplicate counts.
//!
//! txseq puts 6 bytes at the start of the UDP payload (offset 42): the frame's sequence
//! number in its flow (u32, big-endian, from 0) and the sending thread
//! (u16), since `-p` threads each cycle through the same flows. A flow is the addresses and
//! ports of the frame plus that thread number. For each flow rxseq keeps the highest number
//! received: a higher one counts the numbers skipped as lost; a lower one is a duplicate if
//! that number was received already (remembered for the [`WINDOW`] numbers below the
//! highest), otherwise a reordered (late) frame, no longer lost. Frames lost after a flow's
//! last received one cannot be seen.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::frame::HEADERS;
use crate::json::Obj;

/// Payload bytes txseq writes: sequence number and thread.
pub const SEQ_LEN: usize = 6;

/// A flow: source IP, source port, destination IP, destination port, sending thread.
pub type FlowKey = (u32, u16, u32, u16, u16);

/// Numbers below a flow's highest that the receiver remembers, to tell a late frame from a
/// duplicate.
pub const WINDOW: u32 = 128;

/// One flow's counts at the receiver.
///
/// Numbers are compared in serial-number arithmetic (RFC 1982), so a flow that wraps past
/// `u32::MAX` (4.3 G frames, five minutes of one flow at line rate) goes on counting.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlowSeq {
    /// One more than the highest number received (numbers start at 0, as txseq's).
    next: u32,
    /// Bit `i`: number `next - 1 - i` was received.
    seen: u128,
    /// Frames received, duplicates included.
    pub received: u64,
    /// Numbers skipped by a jump forward, less those that arrived late after all.
    pub lost: u64,
    /// Frames whose number was below the highest already received (first arrivals).
    pub reordered: u64,
    /// Frames whose number had been received already.
    pub duplicates: u64,
}

impl FlowSeq {
    /// Accounts for frame `seq`.
    pub fn on(&mut self, seq: u32) {
        self.received += 1;
        let ahead = seq.wrapping_sub(self.next) as i32;
        if ahead >= 0 || self.received == 1 {
            // A new highest: the numbers in between are missing (so far).
            let skipped = seq.wrapping_sub(self.next);
            self.lost += skipped as u64;
            let shift = skipped as u64 + 1;
            self.seen = if shift >= WINDOW as u64 {
                0
            } else {
                self.seen << shift
            } | 1;
            self.next = seq.wrapping_add(1);
            return;
        }
        // Below the highest: `back` numbers below it (0: the highest itself).
        let back = self.next.wrapping_sub(1).wrapping_sub(seq);
        if back < WINDOW {
            let bit = 1u128 << back;
            if self.seen & bit != 0 {
                self.duplicates += 1;
                return;
            }
            self.seen |= bit;
        }
        // Late (beyond the window a duplicate cannot be told apart and counts here too):
        // it was counted lost when the flow jumped past it.
        self.reordered += 1;
        self.lost = self.lost.saturating_sub(1);
    }

    /// One more than the highest number received.
    pub fn next(&self) -> u32 {
        self.next
    }
}

/// Writes the sequence fields into `payload` (at least [`SEQ_LEN`] bytes).
pub fn put(payload: &mut [u8], seq: u32, thread: u16) {
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    payload[4..6].copy_from_slice(&thread.to_be_bytes());
}

/// The flow and sequence number of an Ethernet frame txseq built, or `None` if too short.
pub fn parse(f: &[u8]) -> Option<(FlowKey, u32)> {
    if f.len() < HEADERS + SEQ_LEN {
        return None;
    }
    let u32at = |i: usize| u32::from_be_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]);
    let u16at = |i: usize| u16::from_be_bytes([f[i], f[i + 1]]);
    let key = (u32at(26), u16at(34), u32at(30), u16at(36), u16at(46));
    Some((key, u32at(42)))
}

/// Every flow a receiver saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeqStats {
    pub flows: BTreeMap<FlowKey, FlowSeq>,
    /// Frames too short to carry a sequence number.
    pub short: u64,
}

/// Flows listed one by one in the text summary (the totals count all).
pub const LISTED: usize = 32;

impl SeqStats {
    /// Accounts for one frame (Ethernet onwards).
    pub fn on_frame(&mut self, f: &[u8]) {
        match parse(f) {
            Some((k, s)) => self.flows.entry(k).or_default().on(s),
            None => self.short += 1,
        }
    }

    /// (received, lost, reordered, duplicates) over all flows.
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        self.flows.values().fold((0, 0, 0, 0), |t, f| {
            (
                t.0 + f.received,
                t.1 + f.lost,
                t.2 + f.reordered,
                t.3 + f.duplicates,
            )
        })
    }

    /// Adds another receiver thread's flows. The switch delivers a sender ring's frames to
    /// one receiver ring (docs/vale.md), and a flow names its sending thread, so a flow is
    /// seen by one receiver thread; were it split, its counts would simply be added.
    pub fn merge(mut self, o: SeqStats) -> SeqStats {
        for (k, f) in o.flows {
            match self.flows.entry(k) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(f);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    let e = e.get_mut();
                    e.received += f.received;
                    e.lost += f.lost;
                    e.reordered += f.reordered;
                    e.duplicates += f.duplicates;
                }
            }
        }
        self.short += o.short;
        self
    }

    fn name(k: &FlowKey) -> String {
        format!(
            "{}:{} -> {}:{} thread {}",
            Ipv4Addr::from(k.0),
            k.1,
            Ipv4Addr::from(k.2),
            k.3,
            k.4
        )
    }

    /// `Flow ...` lines (the first [`LISTED`]) and the `Sequence:` totals line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (k, f) in self.flows.iter().take(LISTED) {
            out.push_str(&format!(
                "Flow {}: {} received {} lost {} reordered {} duplicated\n",
                Self::name(k),
                f.received,
                f.lost,
                f.reordered,
                f.duplicates
            ));
        }
        if self.flows.len() > LISTED {
            out.push_str(&format!("({} more flows)\n", self.flows.len() - LISTED));
        }
        let (r, l, o, d) = self.totals();
        out.push_str(&format!(
            "Sequence: {} flows {r} received {l} lost {o} reordered {d} duplicated {} without a sequence number",
            self.flows.len(),
            self.short
        ));
        out
    }

    /// The summary's fields: totals, and every flow.
    pub fn json(&self, o: Obj) -> Obj {
        let (r, l, x, d) = self.totals();
        o.u64("flows", self.flows.len() as u64)
            .u64("seq_received", r)
            .u64("lost", l)
            .u64("reordered", x)
            .u64("duplicates", d)
            .u64("no_seq", self.short)
            .array(
                "per_flow",
                self.flows.iter().map(|(k, f)| {
                    Obj::new()
                        .str("src", &format!("{}:{}", Ipv4Addr::from(k.0), k.1))
                        .str("dst", &format!("{}:{}", Ipv4Addr::from(k.2), k.3))
                        .u64("thread", k.4 as u64)
                        .u64("received", f.received)
                        .u64("lost", f.lost)
                        .u64("reordered", f.reordered)
                        .u64("duplicates", f.duplicates)
                }),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{build, Endpoints};

    /// Feeds `nums` to a fresh flow.
    fn flow(nums: &[u32]) -> FlowSeq {
        let mut f = FlowSeq::default();
        for &n in nums {
            f.on(n);
        }
        f
    }

    /// (received, lost, reordered, duplicates)
    fn counts(f: &FlowSeq) -> (u64, u64, u64, u64) {
        (f.received, f.lost, f.reordered, f.duplicates)
    }

    #[test]
    fn in_order_frames_count_nothing_else() {
        let f = flow(&(0..1000).collect::<Vec<_>>());
        assert_eq!(counts(&f), (1000, 0, 0, 0));
        assert_eq!(f.next(), 1000);
    }

    #[test]
    fn a_gap_is_lost() {
        let f = flow(&[0, 1, 2, 6, 7]);
        assert_eq!(counts(&f), (5, 3, 0, 0), "3, 4 and 5 missing");
        // Numbers start at 0: a flow first seen at 5 lost 0..=4.
        assert_eq!(counts(&flow(&[5, 6])), (2, 5, 0, 0));
    }

    #[test]
    fn a_late_frame_is_reordered_and_no_longer_lost() {
        let f = flow(&[0, 1, 2, 6, 4, 7]);
        assert_eq!(counts(&f), (6, 2, 1, 0));
        let f = flow(&[1, 0, 2]);
        assert_eq!(counts(&f), (3, 0, 1, 0), "0 after 1");
    }

    #[test]
    fn a_repeated_number_is_a_duplicate_not_a_late_frame() {
        assert_eq!(
            counts(&flow(&[0, 1, 1, 2])),
            (4, 0, 0, 1),
            "the highest again"
        );
        assert_eq!(
            counts(&flow(&[0, 1, 2, 0])),
            (4, 0, 0, 1),
            "an older one again"
        );
        // A late frame, then the same number once more: one reordered, one duplicate.
        assert_eq!(counts(&flow(&[0, 3, 1, 1, 4])), (5, 1, 1, 1));
        // Far below the highest (beyond the window) a repeat cannot be told from a late
        // frame: it is counted late.
        let mut nums: Vec<u32> = (0..=WINDOW + 10).collect();
        nums.push(0);
        assert_eq!(counts(&flow(&nums)), (WINDOW as u64 + 12, 0, 1, 0));
    }

    #[test]
    fn numbers_wrap_past_u32_max() {
        let mut f = FlowSeq::default();
        f.on(u32::MAX - 2);
        let lost0 = f.lost;
        for n in [u32::MAX - 1, 0, 1, u32::MAX, 3] {
            f.on(n);
        }
        // u32::MAX came late, 2 is missing.
        assert_eq!(
            (f.received, f.lost - lost0, f.reordered, f.duplicates),
            (6, 1, 1, 0)
        );
        assert_eq!(f.next(), 4);
    }

    #[test]
    fn counts_match_a_set_of_the_numbers_seen() {
        // Shuffled within the window, some numbers dropped, some repeated: lost, reordered
        // (first arrivals below the highest so far) and duplicates equal what a set of every
        // number received says.
        let mut x = 0x2545_f491_u64;
        let mut rnd = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..50 {
            let mut nums: Vec<u32> = Vec::new();
            for n in 0..2000u32 {
                match rnd(20) {
                    0 => {}
                    1 => nums.extend([n, n]),
                    _ => nums.push(n),
                }
            }
            // Swaps within blocks of 40: no frame moves further than the window.
            for b in (0..nums.len() - 40).step_by(40) {
                for _ in 0..6 {
                    let (i, j) = (b + rnd(40) as usize, b + rnd(40) as usize);
                    nums.swap(i, j);
                }
            }
            let f = flow(&nums);
            let mut seen = std::collections::HashSet::new();
            let (mut high, mut late) = (None::<u32>, 0u64);
            for &n in &nums {
                if seen.insert(n) && high.is_some_and(|h| n < h) {
                    late += 1;
                }
                high = high.max(Some(n));
            }
            let distinct = seen.len() as u64;
            let top = high.unwrap() as u64 + 1;
            assert_eq!(
                counts(&f),
                (
                    nums.len() as u64,
                    top - distinct,
                    late,
                    nums.len() as u64 - distinct
                )
            );
        }
    }

    #[test]
    fn flows_are_told_apart_by_addresses_ports_and_thread() {
        let mut st = SeqStats::default();
        let a = build(&Endpoints::default(), 60);
        let ep_b = Endpoints {
            src_port: 9,
            ..Endpoints::default()
        };
        let b = build(&ep_b, 60);
        let frame = |base: &[u8], seq: u32, t: u16| {
            let mut f = base.to_vec();
            put(&mut f[HEADERS..], seq, t);
            f
        };
        for s in 0..10 {
            st.on_frame(&frame(&a, s, 0));
            st.on_frame(&frame(&a, s, 1));
            if s != 4 {
                st.on_frame(&frame(&b, s, 0));
            }
        }
        st.on_frame(&a[..45]);
        assert_eq!(st.flows.len(), 3);
        st.on_frame(&frame(&b, 2, 0));
        assert_eq!(st.totals(), (30, 1, 0, 1));
        assert_eq!(st.short, 1);
        let t = st.text();
        assert!(
            t.contains(
                "Flow 10.0.0.1:9 -> 10.1.0.1:1234 thread 0: 10 received 1 lost 0 reordered 1 duplicated\n"
            ),
            "{t}"
        );
        assert!(
            t.ends_with(
                "Sequence: 3 flows 30 received 1 lost 0 reordered 1 duplicated 1 without a sequence number"
            ),
            "{t}"
        );
        let j = st.json(Obj::new()).finish();
        assert!(
            j.starts_with(
                r#"{"flows":3,"seq_received":30,"lost":1,"reordered":0,"duplicates":1,"no_seq":1,"per_flow":[{"src":"10.0.0.1:9","dst":"10.1.0.1:1234","thread":0,"received":10,"lost":1,"reordered":0,"duplicates":1},{"#
            ),
            "{j}"
        );
        let m = st.clone().merge(st);
        assert_eq!(m.totals(), (60, 2, 0, 2));
        assert_eq!((m.flows.len(), m.short), (3, 2));
    }
}
