//! Round-trip-time statistics of `-f ping`: min/avg/max, percentiles and netmap's log2
//! histogram, in bounded memory however long the run.
//!
//! Percentiles come from a log-linear histogram: values below 128 ns exactly, larger ones in
//! 128 buckets per power of two (a bucket is under 1/128 of its value wide), so that a
//! percentile is off by less than 0.4 % once reported at the bucket's middle. The log2
//! histogram is netmap pkt-gen's: bucket k counts RTTs in [2^k, 2^(k+1)) ns (0 ns in bucket 0).

use crate::json::Obj;

const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
const FINE_BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * SUB) as usize;

/// The percentiles pkt-gen reports, as (label, percent).
pub const REPORTED: [(&str, f64); 4] =
    [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)];

/// RTT samples in nanoseconds, summarized.
#[derive(Debug, Clone)]
pub struct RttStats {
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
    log2: [u64; 64],
    fine: Vec<u64>,
}

impl Default for RttStats {
    fn default() -> Self {
        RttStats::new()
    }
}

/// Index of `v` in the log-linear histogram.
fn fine_index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    (SUB + shift as u64 * SUB + ((v >> shift) - SUB)) as usize
}

/// (lowest value, width) of log-linear bucket `i`.
fn fine_bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, 1);
    }
    let shift = (i - SUB) / SUB;
    ((SUB + (i - SUB) % SUB) << shift, 1 << shift)
}

/// netmap's bucket of `v`: the position of its highest set bit (0 for 0 and 1).
pub fn log2_bucket(v: u64) -> usize {
    63usize.saturating_sub(v.leading_zeros() as usize)
}

impl RttStats {
    pub fn new() -> RttStats {
        RttStats {
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
            log2: [0; 64],
            fine: vec![0; FINE_BUCKETS],
        }
    }

    /// Records one RTT of `ns` nanoseconds.
    pub fn add(&mut self, ns: u64) {
        self.count += 1;
        self.sum += ns as u128;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
        self.log2[log2_bucket(ns)] += 1;
        self.fine[fine_index(ns)] += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest RTT, or `None` before the first.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// Mean RTT in nanoseconds.
    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The `p`-th percentile (0 < p <= 100) by nearest rank: the smallest recorded value
    /// that at least `p` % of the samples do not exceed, to the histogram's precision
    /// (exact below 256 ns), never outside [min, max].
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((p / 100.0 * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.fine.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, w) = fine_bounds(i);
                return Some((lo + w / 2).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// netmap's log2 histogram from the first to the last non-empty bucket:
    /// (lowest ns, highest ns + 1, count) per bucket.
    pub fn log2_histogram(&self) -> Vec<(u64, u64, u64)> {
        let Some(first) = self.log2.iter().position(|&c| c > 0) else {
            return Vec::new();
        };
        let last = self.log2.iter().rposition(|&c| c > 0).unwrap_or(first);
        (first..=last)
            .map(|k| {
                let lo = if k == 0 { 0 } else { 1u64 << k };
                let hi = if k == 63 { u64::MAX } else { 1u64 << (k + 1) };
                (lo, hi, self.log2[k])
            })
            .collect()
    }

    /// The text lines after `ping: R replies of S, RTT min/avg/max ...`: the percentiles,
    /// then the log2 histogram with a bar per bucket.
    pub fn text(&self) -> String {
        let us = |v: Option<u64>| v.map_or(0.0, |v| v as f64 / 1e3);
        let mut out = String::from("RTT percentiles:");
        for (l, p) in REPORTED {
            out.push_str(&format!(" {l} {:.1}", us(self.percentile(p))));
        }
        out.push_str(" us\nRTT histogram (log2 buckets, ns):");
        let h = self.log2_histogram();
        let top = h.iter().map(|b| b.2).max().unwrap_or(1).max(1);
        for (lo, hi, c) in h {
            let bar = "#".repeat(((c * 40).div_ceil(top)) as usize);
            out.push_str(&format!("\n  [{lo:>10}, {hi:>10}) {c:>10} {bar}"));
        }
        out
    }

    /// The fields of the JSON `rtt` object: `*_ns` figures and the histogram.
    pub fn json(&self, o: Obj) -> Obj {
        let mut o = o
            .u64("min_ns", self.min().unwrap_or(0))
            .f64("avg_ns", self.avg().unwrap_or(0.0))
            .u64("max_ns", self.max().unwrap_or(0));
        for (l, p) in REPORTED {
            let k = format!("{}_ns", l.replace('.', "_"));
            o = o.u64(&k, self.percentile(p).unwrap_or(0));
        }
        o.array(
            "histogram",
            self.log2_histogram()
                .into_iter()
                .map(|(lo, hi, c)| Obj::new().u64("lo_ns", lo).u64("hi_ns", hi).u64("count", c)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range() {
        // Every bucket starts where the previous one ends, up to the top of u64.
        let mut next = 0u64;
        for i in 0..FINE_BUCKETS {
            let (lo, w) = fine_bounds(i);
            assert_eq!(lo, next, "bucket {i}");
            assert_eq!(fine_index(lo), i);
            assert_eq!(fine_index(lo + (w - 1)), i);
            assert!(w == 1 || w <= lo / SUB, "bucket {i} too wide");
            next = lo.wrapping_add(w);
        }
        assert_eq!(next, 0, "the last bucket ends at 2^64");
        assert_eq!(fine_index(u64::MAX), FINE_BUCKETS - 1);
    }

    #[test]
    fn nearest_rank_percentiles_exact_for_small_values() {
        let mut s = RttStats::new();
        assert_eq!(s.percentile(50.0), None);
        for v in 1..=200 {
            s.add(v);
        }
        assert_eq!(s.percentile(50.0), Some(100));
        assert_eq!(s.percentile(90.0), Some(180));
        assert_eq!(s.percentile(99.0), Some(198));
        assert_eq!(s.percentile(99.9), Some(200));
        assert_eq!(s.percentile(100.0), Some(200));
        assert_eq!(s.percentile(0.1), Some(1));
        assert_eq!((s.min(), s.max()), (Some(1), Some(200)));
        assert_eq!(s.avg(), Some(100.5));
    }

    #[test]
    fn percentiles_of_a_tail() {
        // 990 fast round trips and 10 slow ones: p99 is still fast, p99.9 the slow one.
        let mut s = RttStats::new();
        for _ in 0..990 {
            s.add(5_000);
        }
        for _ in 0..10 {
            s.add(1_000_000);
        }
        let near = |v: u64, want: u64| v.abs_diff(want) * 256 <= want;
        assert!(near(s.percentile(50.0).unwrap(), 5_000));
        assert!(near(s.percentile(99.0).unwrap(), 5_000));
        assert_eq!(s.percentile(99.1), Some(1_000_000), "clamped to max");
        assert_eq!(s.percentile(99.9), Some(1_000_000));
        // Spread values: every percentile within the bucket precision of the exact one.
        let mut s = RttStats::new();
        let vals: Vec<u64> = (0..10_000u64).map(|i| 1_000 + i * i % 977_777).collect();
        for &v in &vals {
            s.add(v);
        }
        let mut sorted = vals.clone();
        sorted.sort_unstable();
        for p in [50.0, 90.0, 99.0, 99.9] {
            let exact = sorted[((p / 100.0 * 10_000f64).ceil() as usize) - 1];
            let got = s.percentile(p).unwrap();
            assert!(got.abs_diff(exact) * 256 <= exact, "p{p}: {got} vs {exact}");
        }
    }

    #[test]
    fn log2_histogram_as_netmap() {
        assert_eq!(log2_bucket(0), 0);
        assert_eq!(log2_bucket(1), 0);
        assert_eq!(log2_bucket(2), 1);
        assert_eq!(log2_bucket(4095), 11);
        assert_eq!(log2_bucket(4096), 12);
        assert_eq!(log2_bucket(u64::MAX), 63);
        let mut s = RttStats::new();
        assert!(s.log2_histogram().is_empty());
        for v in [3000, 3500, 5000, 20_000] {
            s.add(v);
        }
        // 2048..4096: 2, 4096..8192: 1, 8192..16384: 0, 16384..32768: 1.
        assert_eq!(
            s.log2_histogram(),
            vec![
                (2048, 4096, 2),
                (4096, 8192, 1),
                (8192, 16384, 0),
                (16384, 32768, 1)
            ]
        );
        let t = s.text();
        assert!(t.starts_with("RTT percentiles: p50 3.5 p90 20.0"), "{t}");
        assert!(
            t.contains("[      2048,       4096)          2 ####"),
            "{t}"
        );
        let j = s.json(Obj::new()).finish();
        assert!(
            j.contains(r#""p99_9_ns":"#) && j.contains(r#"{"lo_ns":2048,"hi_ns":4096,"count":2}"#),
            "{j}"
        );
    }
}
