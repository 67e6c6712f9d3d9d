//! What a run prints, as text (netmap's lines, [`crate::report`]) or JSON lines (`--json`):
//! the interval lines a monitor thread prints from the workers' shared [`Counters`], and the
//! summary of the workers' merged [`Outcome`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::json::Obj;
use crate::latency::RttStats;
use crate::opts::Cli;
use crate::report;
use crate::seq::SeqStats;

/// How numbers and lines are printed (`--json`, `-N`, `-B`, `-A`).
#[derive(Debug, Clone, Copy)]
pub struct Format {
    pub json: bool,
    pub prefix: bool,
    /// Bytes of framing and CRC counted per frame in bit/s (`-B`: 24, else 0).
    pub framing: u64,
    pub rate_stats: bool,
}

impl Format {
    pub fn new(cli: &Cli) -> Format {
        Format {
            json: cli.json,
            prefix: !cli.no_prefix,
            framing: cli.framing_bytes(),
            rate_stats: cli.rate_stats,
        }
    }

    /// The line for one report interval of `el`, `t` after the start.
    pub fn interval(
        &self,
        pkts: u64,
        bytes: u64,
        events: u64,
        el: Duration,
        t: Duration,
    ) -> String {
        let wire = bytes + pkts * self.framing;
        if self.json {
            let avg = if events > 0 {
                pkts as f64 / events as f64
            } else {
                0.0
            };
            return Obj::new()
                .str("type", "interval")
                .f64("t", round3(t.as_secs_f64()))
                .u64("usec", el.as_micros() as u64)
                .u64("pkts", pkts)
                .u64("bytes", bytes)
                .u64("events", events)
                .f64("pps", round3(report::per_sec(pkts as f64, el)))
                .f64("bps", round3(report::per_sec(wire as f64 * 8.0, el)))
                .f64("avg_batch", round3(avg))
                .finish();
        }
        report::interval_line_with(pkts, bytes + pkts * self.framing, events, el, self.prefix)
    }

    /// A number as the text lines print it.
    pub fn norm(&self, v: f64) -> String {
        report::norm_with(v, self.prefix)
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Running totals of all workers, for the interval lines.
#[derive(Debug, Default)]
pub struct Counters {
    pub pkts: AtomicU64,
    pub bytes: AtomicU64,
    pub events: AtomicU64,
    /// Workers still running; the monitor stops when it reaches 0.
    pub running: AtomicUsize,
}

impl Counters {
    /// Adds one batch.
    #[inline]
    pub fn add(&self, pkts: u64, bytes: u64) {
        self.pkts.fetch_add(pkts, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.events.fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.pkts.load(Relaxed),
            self.bytes.load(Relaxed),
            self.events.load(Relaxed),
        )
    }
}

/// Prints an interval line every `period` until no worker runs; returns the packet rate of
/// every interval (for `-A`).
pub fn monitor(c: &Counters, fmt: &Format, period: Duration) -> Vec<f64> {
    let start = Instant::now();
    let mut last = start;
    let mut prev = c.snapshot();
    let mut rates = Vec::new();
    while c.running.load(Relaxed) > 0 {
        let left = period.saturating_sub(last.elapsed());
        if !left.is_zero() {
            std::thread::sleep(left.min(Duration::from_millis(5)));
            continue;
        }
        let now = Instant::now();
        let cur = c.snapshot();
        let el = now - last;
        let (p, b, e) = (cur.0 - prev.0, cur.1 - prev.1, cur.2 - prev.2);
        println!("{}", fmt.interval(p, b, e, el, now - start));
        rates.push(report::per_sec(p as f64, el));
        (last, prev) = (now, cur);
    }
    rates
}

/// What a worker did, merged over all workers for the summary.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub pkts: u64,
    pub bytes: u64,
    pub events: u64,
    /// When the counted activity began and ended (rx: first and last batch).
    pub span: Option<(Instant, Instant)>,
    /// rx: frames verified good and bad (None when the run does not verify: tx, pong).
    pub verified: Option<(u64, u64)>,
    /// ping: round-trip times of the replies.
    pub rtt: Option<RttStats>,
    /// rxseq: the flows and their loss and reordering.
    pub seq: Option<SeqStats>,
    /// With `-p`: each thread's packets, thread 0 first (filled by the driver of the threads).
    pub per_thread: Vec<u64>,
}

impl Outcome {
    /// Sums two workers' outcomes (spans: the earliest start and latest end).
    pub fn merge(mut self, o: Outcome) -> Outcome {
        self.pkts += o.pkts;
        self.bytes += o.bytes;
        self.events += o.events;
        self.span = match (self.span, o.span) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
        self.verified = match (self.verified, o.verified) {
            (Some(a), Some(b)) => Some((a.0 + b.0, a.1 + b.1)),
            (a, b) => a.or(b),
        };
        self.rtt = self.rtt.or(o.rtt);
        self.per_thread.extend(o.per_thread);
        self.seq = match (self.seq, o.seq) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, b) => a.or(b),
        };
        self
    }

    fn elapsed(&self) -> Duration {
        self.span
            .map_or(Duration::ZERO, |(a, b)| b.saturating_duration_since(a))
    }
}

/// The summary's extras besides the outcome: port notifications and the interval rates.
#[derive(Debug, Default, Clone)]
pub struct Extras {
    pub function: &'static str,
    pub threads: u32,
    pub kicks: Option<u64>,
    pub interrupts: Option<u64>,
    /// The packets the notifications are counted per (ping: sent and received).
    pub notif_pkts: u64,
    pub rates: Vec<f64>,
}

/// The summary: text lines as netmap's (plus ours), or one JSON object.
pub fn summary(fmt: &Format, verb: &str, o: &Outcome, x: &Extras) -> String {
    let el = o.elapsed();
    let norm_pkts = x.notif_pkts.max(1) as f64;
    let per_k = |v: u64| v as f64 * 1000.0 / norm_pkts;
    let rate = if fmt.rate_stats {
        report::mean_stddev(&x.rates)
    } else {
        None
    };
    if fmt.json {
        let mut j = Obj::new()
            .str("type", "summary")
            .str("function", x.function)
            .u64("threads", x.threads as u64)
            .u64("pkts", o.pkts)
            .u64("bytes", o.bytes)
            .u64("events", o.events)
            .f64("seconds", round3(el.as_secs_f64()))
            .f64("pps", round3(report::per_sec(o.pkts as f64, el)))
            .f64("bps", round3(report::per_sec(o.bytes as f64 * 8.0, el)));
        if fmt.framing > 0 {
            let raw = (o.bytes + o.pkts * fmt.framing) as f64 * 8.0;
            j = j.f64("raw_bps", round3(report::per_sec(raw, el)));
        }
        if let Some((good, bad)) = o.verified {
            j = j.u64("good", good).u64("bad", bad);
        }
        if let Some(r) = &o.rtt {
            j = r.json(j.u64("replies", r.count()));
        }
        if let Some(s) = &o.seq {
            j = s.json(j);
        }
        if let Some((m, s, n)) = rate {
            j = j
                .f64("rate_avg_pps", round3(m))
                .f64("rate_stddev_pps", round3(s))
                .u64("intervals", n as u64);
        }
        if o.per_thread.len() > 1 {
            j = j.u64s("per_thread", &o.per_thread);
        }
        if let Some(k) = x.kicks {
            j = j.u64("kicks", k);
        }
        if let Some(i) = x.interrupts {
            j = j.u64("interrupts", i);
        }
        return j.finish();
    }
    let mut lines = Vec::new();
    if let Some(r) = &o.rtt {
        if let (Some(min), Some(avg), Some(max)) = (r.min(), r.avg(), r.max()) {
            lines.push(format!(
                "ping: {} replies of {}, RTT min/avg/max {:.1}/{:.1}/{:.1} us",
                r.count(),
                o.pkts,
                min as f64 / 1e3,
                avg / 1e3,
                max as f64 / 1e3
            ));
            lines.push(r.text());
        }
    }
    let framing = (fmt.framing > 0).then_some(fmt.framing);
    lines.push(report::final_lines_with(
        verb, o.pkts, o.bytes, o.events, el, fmt.prefix, framing,
    ));
    if let Some((good, bad)) = o.verified {
        lines.push(format!("Verified {good} good {bad} bad"));
    }
    if o.per_thread.len() > 1 {
        let each: Vec<String> = o.per_thread.iter().map(u64::to_string).collect();
        lines.push(format!("Per thread: {} packets", each.join(" ")));
    }
    if let Some(s) = &o.seq {
        lines.push(s.text());
    }
    if let Some((m, s, n)) = rate {
        lines.push(format!(
            "Rate: avg {}pps stddev {}pps over {n} intervals",
            fmt.norm(m),
            fmt.norm(s)
        ));
    }
    if let Some(k) = x.kicks {
        lines.push(format!("Kicks {k} ({:.3} per 1000 packets)", per_k(k)));
    }
    if let Some(i) = x.interrupts {
        lines.push(format!("Interrupts {i} ({:.3} per 1000 packets)", per_k(i)));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summaries(per_thread: Vec<u64>) -> (String, String) {
        let o = Outcome {
            pkts: per_thread.iter().sum(),
            per_thread,
            ..Outcome::default()
        };
        let x = Extras::default();
        let mut f = Format {
            json: false,
            prefix: true,
            framing: 0,
            rate_stats: false,
        };
        let text = summary(&f, "Sent", &o, &x);
        f.json = true;
        (text, summary(&f, "Sent", &o, &x))
    }

    #[test]
    fn per_thread_counts_only_with_threads() {
        let (text, json) = summaries(vec![3, 4]);
        assert!(text.contains("\nPer thread: 3 4 packets"), "{text}");
        assert!(json.contains(r#""per_thread":[3,4]"#), "{json}");
        let (text, json) = summaries(vec![7]);
        assert!(!text.contains("Per thread"), "{text}");
        assert!(!json.contains("per_thread"), "{json}");
    }
}
