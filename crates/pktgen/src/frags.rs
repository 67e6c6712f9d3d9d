//! `-F NUM_FRAGS` and `-M FRAG_SIZE`: a frame sent over several TX slots chained with
//! `NS_MOREFRAG` (netmap pkt-gen's multi-slot frames).
//!
//! The bytes split are the whole buffer content: `-H`'s virtio-net header, then the frame.
//! For `len` such bytes:
//!
//! - `-F N` alone: N slots; the first N−1 carry ⌊len/N⌋ bytes each, the last the rest.
//! - `-M SIZE` alone: ⌈len/SIZE⌉ slots; all but the last carry SIZE bytes, the last the rest.
//! - both: `-F N`'s split, and SIZE caps every slot: a split whose last (largest) slot
//!   exceeds SIZE is refused. (netmap's pkt-gen uses min(SIZE, ⌊len/N⌋) for the first N−1
//!   slots; a SIZE below ⌊len/N⌋ would leave more than SIZE for the last, so under the cap
//!   that rule and this one accept the same splits.)
//!
//! Refused, with one line saying why: N or SIZE of 0, N above `len`, more slots than the
//! 64 a VALE port forwards per frame (netmap's `NETMAP_MAX_FRAGS`: a longer chain is
//! dropped), a first slot too short for the Ethernet header (the switch drops such frames
//! unread), and a slot larger than the port's buffers.

use netmap::abi::MAX_FRAGS;

/// Ethernet header bytes the first slot of a frame must hold (after `-H`'s header).
pub const ETH_HDR: usize = 14;

/// How one frame of `len` buffer bytes is laid over slots: `slots − 1` slots of `piece`
/// bytes, then one of `len − (slots − 1) × piece`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub len: usize,
    pub slots: usize,
    pub piece: usize,
}

impl Split {
    /// One slot for the whole frame (no `-F`/`-M`).
    pub fn whole(len: usize) -> Split {
        Split {
            len,
            slots: 1,
            piece: len,
        }
    }

    /// Bytes of the last slot.
    pub fn last(&self) -> usize {
        self.len - (self.slots - 1) * self.piece
    }

    /// `(offset in the buffer bytes, length)` of each slot, in order.
    pub fn pieces(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.slots).map(move |k| {
            let at = k * self.piece;
            let n = if k + 1 == self.slots {
                self.last()
            } else {
                self.piece
            };
            (at, n)
        })
    }
}

/// What `-F`/`-M` ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragOpts {
    pub frags: Option<u32>,
    pub size: Option<u32>,
}

impl FragOpts {
    /// Whether frames go out over several slots (either option given).
    pub fn active(&self) -> bool {
        self.frags.is_some() || self.size.is_some()
    }

    /// The options as they were written, for messages.
    fn named(&self) -> String {
        match (self.frags, self.size) {
            (Some(f), Some(m)) => format!("-F {f} -M {m}"),
            (Some(f), None) => format!("-F {f}"),
            (None, Some(m)) => format!("-M {m}"),
            (None, None) => String::new(),
        }
    }

    /// Checks the options themselves (independent of any frame).
    pub fn check(&self) -> Result<(), String> {
        if self.frags == Some(0) {
            return Err("-F 0: a frame takes at least 1 slot".into());
        }
        if self.size == Some(0) {
            return Err("-M 0: a slot carries at least 1 byte".into());
        }
        if let Some(f) = self.frags {
            if f as usize > MAX_FRAGS {
                return Err(format!(
                    "-F {f}: a VALE port forwards at most {MAX_FRAGS} slots per frame (netmap's NETMAP_MAX_FRAGS)"
                ));
            }
        }
        Ok(())
    }

    /// The split of a frame of `len` buffer bytes whose first `hdr` are the virtio-net
    /// header, into slots of buffers of `buf` bytes (see the module's rules).
    pub fn split(&self, len: usize, hdr: usize, buf: usize) -> Result<Split, String> {
        self.check()?;
        let name = self.named();
        let s = match (
            self.frags.map(|f| f as usize),
            self.size.map(|m| m as usize),
        ) {
            (None, None) => Split::whole(len),
            (Some(n), size) => {
                if n > len {
                    return Err(format!("{name}: {len} bytes cannot fill {n} slots"));
                }
                let s = Split {
                    len,
                    slots: n,
                    piece: len / n,
                };
                // The last slot is the largest.
                if let Some(m) = size.filter(|&m| s.last() > m) {
                    let need = len.div_ceil(m);
                    let hint = if need > n {
                        format!(" ({len} bytes need at least {need} slots of {m})")
                    } else {
                        String::new()
                    };
                    return Err(format!(
                        "{name}: the last of {n} slots would carry {} bytes, more than {m}{hint}",
                        s.last()
                    ));
                }
                s
            }
            (None, Some(m)) => Split {
                len,
                slots: len.div_ceil(m).max(1),
                piece: m.min(len),
            },
        };
        if s.slots > MAX_FRAGS {
            return Err(format!(
                "{name}: {len} bytes take {} slots, more than the {MAX_FRAGS} a VALE port forwards per frame (netmap's NETMAP_MAX_FRAGS)",
                s.slots
            ));
        }
        let first = s.pieces().next().map_or(0, |(_, n)| n);
        if s.slots > 1 && first < hdr + ETH_HDR {
            let with = if hdr > 0 {
                format!(" after -H's {hdr}")
            } else {
                String::new()
            };
            return Err(format!(
                "{name}: a first slot of {first} bytes cannot hold the {ETH_HDR}-byte Ethernet header{with}"
            ));
        }
        let largest = s.piece.max(s.last());
        if largest > buf {
            return Err(if s.slots == 1 {
                format!("a frame of {len} bytes does not fit the {buf}-byte buffers (-F or -M split it)")
            } else {
                format!("{name}: a slot of {largest} bytes does not fit the {buf}-byte buffers")
            });
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lens(len: usize, f: Option<u32>, m: Option<u32>) -> Vec<usize> {
        FragOpts { frags: f, size: m }
            .split(len, 0, 2048)
            .unwrap()
            .pieces()
            .map(|(_, n)| n)
            .collect()
    }

    fn refusal(len: usize, hdr: usize, f: Option<u32>, m: Option<u32>) -> String {
        FragOpts { frags: f, size: m }
            .split(len, hdr, 2048)
            .unwrap_err()
    }

    #[test]
    fn slot_lengths() {
        assert_eq!(lens(60, None, None), [60]);
        assert_eq!(lens(1514, Some(1), None), [1514]);
        assert_eq!(lens(60, Some(3), None), [20, 20, 20]);
        assert_eq!(lens(61, Some(3), None), [20, 20, 21]);
        assert_eq!(lens(1514, Some(3), None), [504, 504, 506]);
        assert_eq!(lens(1514, None, Some(512)), [512, 512, 490]);
        assert_eq!(lens(1536, None, Some(512)), [512, 512, 512]);
        assert_eq!(lens(60, None, Some(512)), [60]);
        assert_eq!(lens(100, None, Some(30)), [30, 30, 30, 10]);
        // Both: -F's count, slots capped by -M.
        assert_eq!(lens(1514, Some(4), Some(512)), [378, 378, 378, 380]);
        assert_eq!(lens(1536, Some(3), Some(512)), [512, 512, 512]);
        // Frames larger than a buffer, split so that every slot fits one.
        assert_eq!(lens(9000, None, Some(2048)), [2048, 2048, 2048, 2048, 808]);
        assert_eq!(lens(4000, Some(2), None), [2000, 2000]);
        // The pieces tile the frame.
        for (len, f, m) in [
            (1514, Some(7), None),
            (999, None, Some(100)),
            (64, Some(4), Some(16)),
        ] {
            let s = FragOpts { frags: f, size: m }.split(len, 0, 2048).unwrap();
            let mut at = 0;
            for (o, n) in s.pieces() {
                assert_eq!(o, at);
                assert!(n > 0);
                at += n;
            }
            assert_eq!(at, len);
        }
    }

    #[test]
    fn the_vnet_header_is_split_with_the_frame() {
        let s = FragOpts {
            frags: Some(2),
            size: None,
        }
        .split(70, 10, 2048)
        .unwrap();
        assert_eq!(s.pieces().collect::<Vec<_>>(), [(0, 35), (35, 35)]);
    }

    #[test]
    fn impossible_splits_are_refused() {
        assert!(refusal(60, 0, Some(0), None).contains("-F 0"));
        assert!(refusal(60, 0, None, Some(0)).contains("-M 0"));
        let e = refusal(60, 0, Some(61), None);
        assert_eq!(e, "-F 61: 60 bytes cannot fill 61 slots");
        let e = refusal(1514, 0, Some(65), None);
        assert!(e.contains("at most 64 slots per frame"), "{e}");
        let e = refusal(1514, 0, None, Some(20));
        assert!(e.contains("take 76 slots, more than the 64"), "{e}");
        let e = refusal(60, 0, Some(5), None);
        assert!(e.contains("first slot of 12 bytes"), "{e}");
        let e = refusal(60, 10, None, Some(20));
        assert!(e.contains("after -H's 10"), "{e}");
        let e = refusal(1514, 0, Some(2), Some(512));
        assert!(e.contains("last of 2 slots would carry 757 bytes"), "{e}");
        assert!(e.contains("at least 3 slots of 512"), "{e}");
        // ⌊1514/3⌋ = 504 leaves 506 for the last slot, over 505.
        let e = refusal(1514, 0, Some(3), Some(505));
        assert!(e.ends_with("506 bytes, more than 505"), "{e}");
        let e = refusal(4000, 0, Some(1), None);
        assert!(e.contains("does not fit the 2048-byte buffers"), "{e}");
        let e = refusal(5000, 0, None, Some(3000));
        assert!(e.contains("a slot of 3000 bytes does not fit"), "{e}");
    }
}
