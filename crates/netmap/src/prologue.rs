//! Validation of `head`/`cur` from an untrusted application (netmap's sync prologues).
//!
//! For both directions the party may only move `head` and `cur` forward inside the slots it
//! owns: `hwcur <= head <= cur <= hwtail`, all modulo the ring size (netmap's
//! `nm_txsync_prologue` and `nm_rxsync_prologue`; TX completes synchronously here, so the
//! last head the host saw equals `hwcur`). A lossless VALE port held by a full destination
//! keeps slots `hwcur..head` pending with `hwtail = hwcur - 1`: the window `[hwcur, hwtail]`
//! then admits the same or any later head on the retry. Unlike netmap it also admits a head
//! pulled back into the pending slots (it withdraws frames not yet sent, which is harmless:
//! every slot is read, validated and copied during the sync itself).

use crate::ring;

/// Why a sync request was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrologueError {
    /// The host's own indices are out of range (corrupted ring state).
    #[error("Ring state out of range: hwcur {hwcur} hwtail {hwtail} slots {num_slots}")]
    BadRingState {
        hwcur: u32,
        hwtail: u32,
        num_slots: u32,
    },
    /// `head` outside `[hwcur, hwtail]`.
    #[error("Head {head} outside [{hwcur}, {hwtail}]")]
    BadHead { head: u32, hwcur: u32, hwtail: u32 },
    /// `cur` outside `[head, hwtail]`.
    #[error("Cur {cur} outside [{head}, {hwtail}]")]
    BadCur { cur: u32, head: u32, hwtail: u32 },
}

fn prologue(
    hwcur: u32,
    hwtail: u32,
    num_slots: u32,
    head: u32,
    cur: u32,
) -> Result<(u32, u32), PrologueError> {
    if num_slots == 0 || hwcur >= num_slots || hwtail >= num_slots {
        return Err(PrologueError::BadRingState {
            hwcur,
            hwtail,
            num_slots,
        });
    }
    if !ring::within(hwcur, head, hwtail, num_slots) {
        return Err(PrologueError::BadHead {
            head,
            hwcur,
            hwtail,
        });
    }
    if !ring::within(head, cur, hwtail, num_slots) {
        return Err(PrologueError::BadCur { cur, head, hwtail });
    }
    Ok((head, cur))
}

/// Checks a TX request: returns the validated `(head, cur)`.
pub fn txsync_prologue(
    hwcur: u32,
    hwtail: u32,
    num_slots: u32,
    head: u32,
    cur: u32,
) -> Result<(u32, u32), PrologueError> {
    prologue(hwcur, hwtail, num_slots, head, cur)
}

/// Checks an RX request: `head` may release slots up to `hwtail`.
pub fn rxsync_prologue(
    hwcur: u32,
    hwtail: u32,
    num_slots: u32,
    head: u32,
    cur: u32,
) -> Result<(u32, u32), PrologueError> {
    prologue(hwcur, hwtail, num_slots, head, cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_tx() {
        // Fresh TX ring: hwcur 0, hwtail n-1; the app may go up to n-1.
        assert_eq!(txsync_prologue(0, 1023, 1024, 512, 512), Ok((512, 512)));
        assert_eq!(txsync_prologue(0, 1023, 1024, 1023, 1023), Ok((1023, 1023)));
        assert_eq!(txsync_prologue(0, 1023, 1024, 0, 0), Ok((0, 0)));
        // cur ahead of head is allowed.
        assert_eq!(txsync_prologue(0, 1023, 1024, 10, 20), Ok((10, 20)));
        // Wrapped window: hwcur 1000, hwtail 999.
        assert_eq!(txsync_prologue(1000, 999, 1024, 5, 5), Ok((5, 5)));
    }

    #[test]
    fn rejects_bad_tx() {
        assert!(matches!(
            txsync_prologue(10, 5, 1024, 7, 7),
            Err(PrologueError::BadHead { .. })
        ));
        assert!(matches!(
            txsync_prologue(0, 1023, 1024, 1024, 1024),
            Err(PrologueError::BadHead { .. })
        ));
        assert!(matches!(
            txsync_prologue(0, 100, 1024, 50, 40),
            Err(PrologueError::BadCur { .. })
        ));
        assert!(matches!(
            txsync_prologue(0, 100, 1024, 50, u32::MAX),
            Err(PrologueError::BadCur { .. })
        ));
        assert!(matches!(
            txsync_prologue(2000, 0, 1024, 0, 0),
            Err(PrologueError::BadRingState { .. })
        ));
        assert!(matches!(
            txsync_prologue(0, 0, 0, 0, 0),
            Err(PrologueError::BadRingState { .. })
        ));
    }

    #[test]
    fn tx_with_slots_pending_after_a_held_sync() {
        // A lossless VALE port held by a full destination returned hwcur 10 (hwtail 9) while
        // the application had published up to head 50: slots 10..50 are pending.
        let (hwcur, hwtail, n) = (10, 9, 1024);
        // The retry with the same head, and later heads, are accepted.
        assert_eq!(txsync_prologue(hwcur, hwtail, n, 50, 50), Ok((50, 50)));
        assert_eq!(txsync_prologue(hwcur, hwtail, n, 60, 70), Ok((60, 70)));
        // Up to a ring with n - 1 pending slots, across the wrap.
        assert_eq!(txsync_prologue(hwcur, hwtail, n, 9, 9), Ok((9, 9)));
        assert_eq!(txsync_prologue(hwcur, hwtail, n, 1023, 5), Ok((1023, 5)));
        // Nothing pending (hwcur == head) is the ordinary case.
        assert_eq!(txsync_prologue(hwcur, hwtail, n, 10, 10), Ok((10, 10)));
        // Out of range is still rejected.
        assert!(matches!(
            txsync_prologue(hwcur, hwtail, n, n, n),
            Err(PrologueError::BadHead { .. })
        ));
        assert!(matches!(
            txsync_prologue(hwcur, hwtail, n, 50, 40),
            Err(PrologueError::BadCur { .. })
        ));
        // Wrapped: hwcur 1000 (hwtail 999), pending 1000..20.
        assert_eq!(txsync_prologue(1000, 999, n, 20, 20), Ok((20, 20)));
        assert_eq!(txsync_prologue(1000, 999, n, 999, 999), Ok((999, 999)));
    }

    #[test]
    fn rx_release_window() {
        // RX: hwcur 1020, hwtail 3 (7 packets pending across the wrap).
        assert_eq!(rxsync_prologue(1020, 3, 1024, 1020, 1020), Ok((1020, 1020)));
        assert_eq!(rxsync_prologue(1020, 3, 1024, 2, 3), Ok((2, 3)));
        assert_eq!(rxsync_prologue(1020, 3, 1024, 3, 3), Ok((3, 3)));
        assert!(rxsync_prologue(1020, 3, 1024, 4, 4).is_err());
        assert!(rxsync_prologue(1020, 3, 1024, 1019, 1019).is_err());
        // Empty ring: only head == hwcur is allowed.
        assert!(rxsync_prologue(5, 5, 1024, 6, 6).is_err());
        assert_eq!(rxsync_prologue(5, 5, 1024, 5, 5), Ok((5, 5)));
    }

    #[test]
    fn prop_exhaustive_small_rings() {
        // Every combination on small rings agrees with the definition by walking.
        for n in 1u32..=6 {
            for hwcur in 0..n {
                for hwtail in 0..n {
                    for head in 0..n + 2 {
                        for cur in 0..n + 2 {
                            let walk = |from: u32, to: u32, x: u32| {
                                let mut j = from;
                                loop {
                                    if j == x {
                                        return true;
                                    }
                                    if j == to {
                                        return false;
                                    }
                                    j = (j + 1) % n;
                                }
                            };
                            let ok = head < n
                                && cur < n
                                && walk(hwcur, hwtail, head)
                                && walk(head, hwtail, cur);
                            assert_eq!(
                                txsync_prologue(hwcur, hwtail, n, head, cur).is_ok(),
                                ok,
                                "n {n} hwcur {hwcur} hwtail {hwtail} head {head} cur {cur}"
                            );
                        }
                    }
                }
            }
        }
    }
}
