//! Ring index arithmetic modulo the number of slots `n`.
//!
//! All functions take indices already known to be `< n` (validated by [`crate::prologue`]
//! or produced by these functions) and `n >= 1`; none of them overflows for any `u32` input.

/// The slot after `i`.
#[inline(always)]
pub fn next(i: u32, n: u32) -> u32 {
    if i + 1 >= n {
        0
    } else {
        i + 1
    }
}

/// The slot before `i`.
#[inline(always)]
pub fn prev(i: u32, n: u32) -> u32 {
    if i == 0 {
        n - 1
    } else {
        i - 1
    }
}

/// `i + k` modulo `n`, for `i < n` and `k <= n`.
#[inline(always)]
pub fn add(i: u32, k: u32, n: u32) -> u32 {
    let s = i as u64 + k as u64;
    (s % n as u64) as u32
}

/// Number of steps from `from` forward to `to`: `(to - from) mod n`.
#[inline(always)]
pub fn distance(from: u32, to: u32, n: u32) -> u32 {
    if to >= from {
        to - from
    } else {
        n - from + to
    }
}

/// Free slots an application owns: `(tail - head) mod n` (one slot always stays empty on a
/// TX ring, so a full TX ring reports `n - 1`).
#[inline(always)]
pub fn space(head: u32, tail: u32, n: u32) -> u32 {
    distance(head, tail, n)
}

/// Whether `x` lies in the inclusive circular interval `[lo, hi]` modulo `n`.
#[inline(always)]
pub fn within(lo: u32, x: u32, hi: u32, n: u32) -> bool {
    x < n && distance(lo, x, n) <= distance(lo, hi, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (xorshift64*) for property loops.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u32) -> u32 {
            (self.next() % n as u64) as u32
        }
    }

    fn sizes() -> impl Iterator<Item = u32> {
        [1u32, 2, 3, 7, 64, 1000, 1024, 4096, u32::MAX / 2, u32::MAX].into_iter()
    }

    #[test]
    fn next_prev_wrap() {
        assert_eq!(next(1023, 1024), 0);
        assert_eq!(prev(0, 1024), 1023);
        assert_eq!(next(0, 1), 0);
        assert_eq!(prev(0, 1), 0);
        assert_eq!(next(u32::MAX - 1, u32::MAX), 0);
    }

    #[test]
    fn prop_next_prev_inverse_and_distance_one() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        for n in sizes() {
            for _ in 0..2000 {
                let i = r.below(n);
                assert_eq!(prev(next(i, n), n), i);
                assert_eq!(next(prev(i, n), n), i);
                assert!(next(i, n) < n && prev(i, n) < n);
                if n > 1 {
                    assert_eq!(distance(i, next(i, n), n), 1);
                }
            }
        }
    }

    #[test]
    fn prop_add_matches_repeated_next_and_distance() {
        let mut r = Rng(42);
        for n in [1u32, 2, 5, 17, 256, 1024] {
            for _ in 0..500 {
                let i = r.below(n);
                let k = r.below(n + 1);
                let mut j = i;
                for _ in 0..k {
                    j = next(j, n);
                }
                assert_eq!(add(i, k, n), j);
                assert_eq!(distance(i, j, n), k % n);
            }
        }
    }

    #[test]
    fn prop_distance_is_modular_difference() {
        let mut r = Rng(7);
        for n in sizes() {
            for _ in 0..5000 {
                let a = r.below(n);
                let b = r.below(n);
                let d = distance(a, b, n);
                assert!(d < n);
                assert_eq!((a as u64 + d as u64) % n as u64, b as u64);
                assert_eq!(add(a, d, n), b);
                // distance there and back covers the ring once (or zero when equal).
                let back = distance(b, a, n);
                if a == b {
                    assert_eq!(d + back, 0);
                } else {
                    assert_eq!(d as u64 + back as u64, n as u64);
                }
                assert_eq!(space(a, b, n), d);
            }
        }
    }

    #[test]
    fn prop_within_matches_walk() {
        let mut r = Rng(99);
        for n in [1u32, 2, 3, 8, 33] {
            for _ in 0..300 {
                let lo = r.below(n);
                let hi = r.below(n);
                // Walk lo..=hi and collect the members.
                let mut members = vec![false; n as usize];
                let mut j = lo;
                loop {
                    members[j as usize] = true;
                    if j == hi {
                        break;
                    }
                    j = next(j, n);
                }
                for x in 0..n + 3 {
                    let expect = x < n && members[x as usize];
                    assert_eq!(within(lo, x, hi, n), expect, "lo {lo} x {x} hi {hi} n {n}");
                }
            }
        }
    }

    #[test]
    fn full_tx_ring_has_n_minus_one() {
        // Initial TX ring: head = 0, tail = n - 1.
        assert_eq!(space(0, 1023, 1024), 1023);
        // After sending everything and completing: head = tail + 1.
        assert_eq!(space(1000, 999, 1024), 1023);
        assert_eq!(space(5, 5, 1024), 0);
    }
}
