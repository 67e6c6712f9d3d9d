//! pkt-gen's output lines (ABI §6), in netmap pkt-gen's number format.
//!
//! - per interval: `<pps>pps (<pkts>pkts <bps>bps in <usec> usec) <avg_batch> avg_batch`
//! - at the end: `Sent|Received <n> packets <b> bytes <e> events <l> bytes each in <s> seconds.`
//!   then `Speed: <pps>pps Bandwidth: <bps>bps`
//!
//! Numbers use netmap's `norm()`: three decimals and a unit prefix, e.g. `14.881 M`; with
//! `-N`, no prefix and no decimals (`14880952 `), as netmap's `-N`.

use std::time::Duration;

/// netmap's `norm()`: `"%.3f %s"` with the value scaled by 1000s into "", K, M, G, T.
pub fn norm(mut v: f64) -> String {
    const UNITS: [&str; 5] = ["", "K", "M", "G", "T"];
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.3} {}", UNITS[i])
}

/// netmap's `norm()` with its `normalize` flag: `prefix` false (`-N`) gives `"%.0f "`.
pub fn norm_with(v: f64, prefix: bool) -> String {
    if prefix {
        norm(v)
    } else {
        format!("{v:.0} ")
    }
}

/// `n` per second over `d` (0 for an empty interval).
pub fn per_sec(n: f64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        n / s
    } else {
        0.0
    }
}

/// The line printed every report interval.
pub fn interval_line(pkts: u64, bytes: u64, events: u64, elapsed: Duration) -> String {
    interval_line_with(pkts, bytes, events, elapsed, true)
}

/// [`interval_line`] with or without unit prefixes (`-N`); `bytes` already counts any
/// framing (`-B`).
pub fn interval_line_with(
    pkts: u64,
    bytes: u64,
    events: u64,
    elapsed: Duration,
    prefix: bool,
) -> String {
    let avg = if events > 0 {
        pkts as f64 / events as f64
    } else {
        0.0
    };
    format!(
        "{}pps ({}pkts {}bps in {} usec) {avg:.2} avg_batch",
        norm_with(per_sec(pkts as f64, elapsed), prefix),
        norm_with(pkts as f64, prefix),
        norm_with(per_sec(bytes as f64 * 8.0, elapsed), prefix),
        elapsed.as_micros()
    )
}

/// The closing lines; `verb` is "Sent" or "Received".
pub fn final_lines(verb: &str, pkts: u64, bytes: u64, events: u64, elapsed: Duration) -> String {
    final_lines_with(verb, pkts, bytes, events, elapsed, true, None)
}

/// [`final_lines`] with or without unit prefixes (`-N`), and with `Some(bytes)` of framing
/// per frame (`-B`) a ` (raw <bps>bps)` figure that counts them, as netmap's.
pub fn final_lines_with(
    verb: &str,
    pkts: u64,
    bytes: u64,
    events: u64,
    elapsed: Duration,
    prefix: bool,
    framing: Option<u64>,
) -> String {
    let each = bytes.checked_div(pkts).unwrap_or(0);
    let raw = framing.map_or(String::new(), |f| {
        let b = (bytes + pkts * f) as f64 * 8.0;
        format!(" (raw {}bps)", norm_with(per_sec(b, elapsed), prefix))
    });
    format!(
        "{verb} {pkts} packets {bytes} bytes {events} events {each} bytes each in {:.2} seconds.\nSpeed: {}pps Bandwidth: {}bps{raw}",
        elapsed.as_secs_f64(),
        norm_with(per_sec(pkts as f64, elapsed), prefix),
        norm_with(per_sec(bytes as f64 * 8.0, elapsed), prefix),
    )
}

/// Mean and (population) standard deviation of the per-interval rates that saw traffic
/// (netmap's `-A` skips empty intervals too); `None` without any.
pub fn mean_stddev(rates: &[f64]) -> Option<(f64, f64, usize)> {
    let v: Vec<f64> = rates.iter().copied().filter(|&r| r > 0.0).collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / n;
    Some((mean, var.sqrt(), v.len()))
}

/// Parses a `norm()` number back (e.g. `"14.881 M"` → 14.881e6), for tests and scripts.
pub fn parse_norm(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, unit) = match s.split_once(' ') {
        Some((n, u)) => (n, u.trim()),
        None => (s, ""),
    };
    let m = match unit.chars().next() {
        None => 1.0,
        Some('K') => 1e3,
        Some('M') => 1e6,
        Some('G') => 1e9,
        Some('T') => 1e12,
        Some(_) => 1.0,
    };
    num.parse::<f64>().ok().map(|v| v * m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_matches_netmap() {
        assert_eq!(norm(0.0), "0.000 ");
        assert_eq!(norm(999.0), "999.000 ");
        assert_eq!(norm(14_880_952.0), "14.881 M");
        assert_eq!(norm(241_380.0), "241.380 K");
        assert_eq!(norm(7.143e9), "7.143 G");
        assert_eq!(norm(5e15), "5000.000 T");
        assert_eq!(norm_with(14_880_952.4, false), "14880952 ");
        assert_eq!(norm_with(14_880_952.4, true), "14.881 M");
    }

    #[test]
    fn lines_have_the_abi_shape() {
        let l = interval_line(
            1_000_000,
            60_000_000,
            2000,
            Duration::from_micros(1_000_000),
        );
        assert_eq!(
            l,
            "1.000 Mpps (1.000 Mpkts 480.000 Mbps in 1000000 usec) 500.00 avg_batch"
        );
        let f = final_lines("Sent", 1000, 60000, 2, Duration::from_millis(500));
        assert_eq!(
            f,
            "Sent 1000 packets 60000 bytes 2 events 60 bytes each in 0.50 seconds.\nSpeed: 2.000 Kpps Bandwidth: 960.000 Kbps"
        );
        assert_eq!(parse_norm("14.881 M"), Some(14.881e6));
        assert_eq!(parse_norm("2.000 "), Some(2.0));
    }

    #[test]
    fn unprefixed_and_framed_lines() {
        let l = interval_line_with(1000, 84_000, 2, Duration::from_millis(1), false);
        assert_eq!(
            l,
            "1000000 pps (1000 pkts 672000000 bps in 1000 usec) 500.00 avg_batch"
        );
        // 1000 frames of 60 bytes in 0.5 s: 960 kbit/s, with framing 84 bytes each 1.344 Mbit/s.
        let f = final_lines_with(
            "Sent",
            1000,
            60000,
            2,
            Duration::from_millis(500),
            true,
            Some(24),
        );
        assert!(
            f.ends_with("Bandwidth: 960.000 Kbps (raw 1.344 Mbps)"),
            "{f}"
        );
        let f = final_lines_with(
            "Sent",
            1000,
            60000,
            2,
            Duration::from_millis(500),
            false,
            None,
        );
        assert!(f.ends_with("Speed: 2000 pps Bandwidth: 960000 bps"), "{f}");
    }

    #[test]
    fn rate_mean_and_stddev() {
        assert_eq!(mean_stddev(&[]), None);
        assert_eq!(mean_stddev(&[0.0, 0.0]), None);
        let (m, s, n) = mean_stddev(&[0.0, 2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!((m, s, n), (5.0, 2.0, 8));
    }
}
