//! Multi-process tests of pkt-gen's reporting and threading options (ping percentiles and
//! histogram, --json, -N/-A/-B, -p/-a): the real binary on a switch in a private directory.
//! The flow options (ranges, txseq/rxseq, -P, -F/-M) are in tests/flows.rs.

use std::time::Duration;

use vale::fuzzing::TempDir;

mod common;
use common::{count, exchange, field, json_summary, pktgen, pktgen_ready, vale_ctl};

#[test]
fn ping_prints_percentiles_and_the_log2_histogram() {
    let d = TempDir::new("opt-ping");
    let pong = pktgen(&d, &["-i", "valeop:2", "-f", "pong"]);
    let ping = pktgen(&d, &["-i", "valeop:1", "-f", "ping", "-n", "300"]);
    let (code, out) = ping.finish();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ping: 300 replies of 300, RTT min/avg/max"),
        "{out}"
    );
    let p = out
        .lines()
        .find(|l| l.starts_with("RTT percentiles: p50 "))
        .unwrap_or_else(|| panic!("no percentiles in:\n{out}"));
    // p50 <= p90 <= p99 <= p99.9, in microseconds.
    let v: Vec<f64> = p
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(v.len(), 4, "{p}");
    assert!(v.windows(2).all(|w| w[0] <= w[1]), "{p}");
    // The histogram's counts add up to the replies.
    let h: u64 = out
        .lines()
        .skip_while(|l| !l.starts_with("RTT histogram"))
        .skip(1)
        .take_while(|l| l.starts_with("  ["))
        .map(|l| {
            l.split(')')
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
        })
        .map(|c| c.parse::<u64>().unwrap())
        .sum();
    assert_eq!(h, 300, "{out}");
    // The same in JSON: the summary carries the percentiles and the histogram.
    let ping = pktgen(&d, &["-i", "valeop:1", "-f", "ping", "-n", "100", "--json"]);
    let (code, out) = ping.finish();
    assert_eq!(code, 0, "{out}");
    let s = json_summary(&out);
    assert_eq!(field(&s, "replies"), Some(100), "{s}");
    let (p50, p999) = (field(&s, "p50_ns").unwrap(), field(&s, "p99_9_ns").unwrap());
    assert!(
        p50 > 0 && p50 <= p999 && p999 <= field(&s, "max_ns").unwrap(),
        "{s}"
    );
    let hist: u64 = s
        .match_indices("\"count\":")
        .map(|(i, _)| field(&s[i..], "count").unwrap())
        .sum();
    assert_eq!(hist, 100, "{s}");
    drop(pong);
}

#[test]
fn json_lines_on_tx_and_rx() {
    let d = TempDir::new("opt-json");
    let rx = pktgen(
        &d,
        &[
            "-i", "valeoj:2", "-f", "rx", "-n", "4000", "-T", "50", "--json",
        ],
    );
    let tx = pktgen(
        &d,
        &[
            "-i", "valeoj:1", "-f", "tx", "-n", "4000", "-R", "20000", "-T", "50", "--json", "-B",
        ],
    );
    let (code, tout) = tx.finish();
    assert_eq!(code, 0, "{tout}");
    let s = json_summary(&tout);
    assert!(s.contains("\"function\":\"tx\""), "{s}");
    assert_eq!(field(&s, "pkts"), Some(4000), "{s}");
    assert_eq!(field(&s, "bytes"), Some(4000 * 60), "{s}");
    assert!(s.contains("\"raw_bps\":"), "{s}");
    assert!(
        tout.lines()
            .any(|l| l.starts_with("{\"type\":\"interval\"")),
        "{tout}"
    );
    let (code, rout) = rx.finish();
    assert_eq!(code, 0, "{rout}");
    let s = json_summary(&rout);
    assert_eq!(
        (field(&s, "pkts"), field(&s, "good"), field(&s, "bad")),
        (Some(4000), Some(4000), Some(0)),
        "{s}"
    );
}

#[test]
fn unprefixed_numbers_rate_stats_and_framing() {
    let d = TempDir::new("opt-nab");
    let tx = pktgen(
        &d,
        &[
            "-i", "valeon:1", "-f", "tx", "-n", "3000", "-R", "20000", "-T", "20", "-N", "-A", "-B",
        ],
    );
    let (code, out) = tx.finish();
    assert_eq!(code, 0, "{out}");
    let speed = out.lines().find(|l| l.starts_with("Speed: ")).unwrap();
    // "Speed: 20000 pps Bandwidth: 9600000 bps (raw 13440000 bps)": no prefixes, and raw
    // is 84/60 of the bandwidth.
    let w: Vec<&str> = speed.split_whitespace().collect();
    assert_eq!((w[2], w[5], w[8]), ("pps", "bps", "bps)"), "{speed}");
    let (bw, raw): (f64, f64) = (w[4].parse().unwrap(), w[7].parse().unwrap());
    assert!((raw / bw - 84.0 / 60.0).abs() < 0.01, "{speed}");
    let rate = out.lines().find(|l| l.starts_with("Rate: avg ")).unwrap();
    let avg: f64 = rate.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!((10_000.0..=30_000.0).contains(&avg), "{rate}");
    assert!(
        rate.contains(" pps stddev ") && rate.ends_with(" intervals"),
        "{rate}"
    );
}

#[test]
fn two_threads_to_two_threads_count_exactly() {
    // -p 2 on both sides: two rings each; paced, every frame arrives and the totals are
    // exact. pkt-gen's frames are broadcast, and the switch floods on the destination's RX
    // ring 0 (docs/vale.md), so receiving thread 0 gets them all.
    let d = TempDir::new("opt-threads");
    let (rx, ready) = pktgen_ready(
        &d,
        &[
            "-i", "valeot:2", "-f", "rx", "-p", "2", "-n", "10000", "-a", "0",
        ],
    );
    assert!(
        ready.contains("(2 tx / 2 rx rings") && ready.contains("2 threads"),
        "{ready}"
    );
    let (tx, ready) = pktgen_ready(
        &d,
        &[
            "-i", "valeot:1", "-f", "tx", "-p", "2", "-n", "10000", "-R", "40000", "-T", "100",
        ],
    );
    assert!(ready.contains("(2 tx / 2 rx rings"), "{ready}");
    let (code, tout) = tx.finish();
    assert_eq!(code, 0, "{tout}");
    assert_eq!(count(&tout, "Sent"), 10000, "{tout}");
    assert!(tout.contains("Per thread: 5000 5000 packets"), "{tout}");
    let (code, rout) = rx.finish();
    assert_eq!(code, 0, "{rout}");
    assert_eq!(count(&rout, "Received"), 10000, "{rout}");
    assert!(rout.contains("Verified 10000 good 0 bad"), "{rout}");
    assert!(rout.contains("Per thread: 10000 0 packets"), "{rout}");
}

#[test]
fn unicast_to_a_learnt_mac_goes_from_tx_ring_i_to_rx_ring_i() {
    // The receiving port is persistent and first sends one frame from each ring with its MAC,
    // so the switch has learnt it before the receiver attaches: unicast frames from sender
    // ring i then land on receiver ring i (docs/vale.md), one receiving thread each.
    let d = TempDir::new("opt-uni");
    let mac = "02:00:00:00:00:2b";
    vale_ctl(&d, &["create", "--rings", "2", "valeou:2"]);
    let (code, out) = pktgen(
        &d,
        &[
            "-i", "valeou:2", "-f", "tx", "-p", "2", "-n", "2", "-S", mac,
        ],
    )
    .finish();
    assert_eq!(code, 0, "{out}");
    let rx = pktgen(
        &d,
        &["-i", "valeou:2", "-f", "rx", "-p", "2", "-n", "10000"],
    );
    let tx = pktgen(
        &d,
        &[
            "-i", "valeou:1", "-f", "tx", "-p", "2", "-n", "10000", "-R", "40000", "-D", mac,
        ],
    );
    let (tout, rout) = exchange(tx, rx, 10000, None, "unicast -p 2");
    assert!(tout.contains("Per thread: 5000 5000 packets"), "{tout}");
    assert!(rout.contains("Per thread: 5000 5000 packets"), "{rout}");
    vale_ctl(&d, &["remove", "valeou:2"]);
}

#[test]
fn threaded_receiver_stops_on_a_signal_with_its_summary() {
    let d = TempDir::new("opt-sig");
    let rx = pktgen(&d, &["-i", "valeos:2", "-f", "rx", "-p", "3"]);
    let tx = pktgen(
        &d,
        &[
            "-i", "valeos:1", "-f", "tx", "-p", "3", "-n", "3000", "-R", "30000",
        ],
    );
    let (code, tout) = tx.finish();
    assert_eq!(code, 0, "{tout}");
    std::thread::sleep(Duration::from_millis(200));
    rx.signal(libc::SIGINT);
    let (code, rout) = rx.finish();
    assert_eq!(code, 0, "{rout}");
    assert_eq!(count(&rout, "Received"), 3000, "{rout}");
    assert!(rout.contains("Verified 3000 good 0 bad"), "{rout}");
}

#[test]
fn slots_size_the_port_and_a_burst_that_fills_it_arrives_whole() {
    // 6000 frames sent at once to a receiver that is not reading (SIGSTOP): with 8192 slots
    // every one waits in its ring; with VALE's default 1024 slots most would be dropped.
    let d = TempDir::new("opt-slots");
    let (rx, ready) = pktgen_ready(&d, &["-i", "valesl:2", "-f", "rx", "--slots", "8192"]);
    assert!(ready.contains("8192 slots"), "{ready}");
    rx.signal(libc::SIGSTOP);
    let tx = pktgen(&d, &["-i", "valesl:1", "-f", "tx", "-n", "6000"]);
    let (code, tout) = tx.finish();
    assert_eq!(code, 0, "{tout}");
    rx.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(300));
    rx.signal(libc::SIGINT);
    let (code, rout) = rx.finish();
    assert_eq!(code, 0, "{rout}");
    assert_eq!(count(&rout, "Received"), 6000, "{rout}");
    assert!(rout.contains("Verified 6000 good 0 bad"), "{rout}");
}
