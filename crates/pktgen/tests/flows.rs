//! Multi-process tests of pkt-gen's flow options (-s/-d ranges, -z/-Z, txseq/rxseq, -P pcap
//! replay, -F/-M multi-slot frames): the real binary on a switch in a private directory.

use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapPacket, PcapWriter};
use pktgen::frame::{self, Endpoints};
use vale::fuzzing::TempDir;

mod common;
use common::{count, exchange, field, json_summary, pktgen, port_fields, vale_ctl, DEADLINE};

#[test]
fn address_ranges_and_random_flows_keep_checksums_valid() {
    // Cycled and random flows over ranges, with and without a virtio-net header in front:
    // every rewritten frame still verifies (IPv4 and UDP checksums) at the receiver.
    let d = TempDir::new("opt-ranges");
    let runs: [&[&str]; 5] = [
        &[],
        &["-z"],
        &["-Z"],
        &["-z", "-Z", "-H", "10"],
        &["-H", "12"],
    ];
    let total = (2000 * runs.len()).to_string();
    let rx = pktgen(&d, &["-i", "valeor:2", "-f", "rx", "-n", &total]);
    for extra in runs {
        let mut args = vec![
            "-i",
            "valeor:1",
            "-f",
            "tx",
            "-n",
            "2000",
            "-R",
            "20000",
            "-l",
            "61",
            "-s",
            "10.0.0.1-10.0.0.4:1000-1003",
            "-d",
            "10.9.0.250-10.9.1.3:7-8",
        ];
        args.extend_from_slice(extra);
        let tx = pktgen(&d, &args);
        let (code, tout) = tx.finish();
        assert_eq!(code, 0, "{extra:?}: {tout}");
        assert_eq!(count(&tout, "Sent"), 2000);
    }
    let (code, rout) = rx.finish();
    assert_eq!(code, 0, "{rout}");
    assert!(
        rout.contains(&format!("Verified {total} good 0 bad")),
        "{rout}"
    );
}

/// `(flows, received, lost, reordered, duplicated)` of rxseq's `Sequence:` line.
fn seq_totals(out: &str) -> (u64, u64, u64, u64, u64) {
    let l = out
        .lines()
        .find(|l| l.starts_with("Sequence: "))
        .unwrap_or_else(|| panic!("no Sequence line in:\n{out}"));
    let w: Vec<u64> = l
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (w[0], w[1], w[2], w[3], w[4])
}

#[test]
fn txseq_over_ranges_to_rxseq_counts_every_flow_exactly() {
    // 3 source IPs x 2 ports, 2 destination IPs x 2 ports: 24 flows, 100 frames each, paced,
    // all in order.
    let d = TempDir::new("opt-seqr");
    let rx = pktgen(&d, &["-i", "valeoa:2", "-f", "rxseq", "-n", "2400"]);
    let tx = pktgen(
        &d,
        &[
            "-i",
            "valeoa:1",
            "-f",
            "txseq",
            "-n",
            "2400",
            "-R",
            "20000",
            "-s",
            "10.0.0.1-10.0.0.3:5-6",
            "-d",
            "10.1.0.255-10.1.1.0:80-81",
        ],
    );
    let (_, rout) = exchange(tx, rx, 2400, None, "24 flows");
    assert_eq!(seq_totals(&rout), (24, 2400, 0, 0, 0), "{rout}");
    for sip in 1..=3 {
        for sp in [5, 6] {
            for dip in ["10.1.0.255", "10.1.1.0"] {
                for dp in [80, 81] {
                    let l = format!(
                        "Flow 10.0.0.{sip}:{sp} -> {dip}:{dp} thread 0: 100 received 0 lost 0 reordered 0 duplicated"
                    );
                    assert!(rout.lines().any(|x| x == l), "{l} in\n{rout}");
                }
            }
        }
    }
}

#[test]
fn txseq_threads_to_rxseq_threads_in_json() {
    // Two sender threads, each cycling two flows: four flows (a flow names its thread) of
    // 1,500 frames, none lost, reordered or duplicated; the --json summary says the same.
    let d = TempDir::new("opt-seq");
    let rx = pktgen(
        &d,
        &[
            "-i", "valeoq:2", "-f", "rxseq", "-p", "2", "-n", "6000", "--json",
        ],
    );
    let tx = pktgen(
        &d,
        &[
            "-i",
            "valeoq:1",
            "-f",
            "txseq",
            "-p",
            "2",
            "-n",
            "6000",
            "-R",
            "30000",
            "-s",
            "10.0.0.1:5-6",
        ],
    );
    let (code, tout) = tx.finish();
    assert_eq!(code, 0, "{tout}");
    let (code, rout) = rx.finish();
    assert_eq!(code, 0, "{rout}");
    let s = json_summary(&rout);
    assert!(s.contains("\"function\":\"rxseq\""), "{s}");
    for (k, v) in [
        ("pkts", 6000),
        ("good", 6000),
        ("bad", 0),
        ("flows", 4),
        ("seq_received", 6000),
        ("lost", 0),
        ("reordered", 0),
        ("duplicates", 0),
        ("no_seq", 0),
    ] {
        assert_eq!(field(&s, k), Some(v), "{k} in {s}");
    }
    for port in [5, 6] {
        for t in [0, 1] {
            let f = format!(
                "{{\"src\":\"10.0.0.1:{port}\",\"dst\":\"10.1.0.1:1234\",\"thread\":{t},\"received\":1500,\"lost\":0,\"reordered\":0,\"duplicates\":0}}"
            );
            assert!(s.contains(&f), "{f} in\n{s}");
        }
    }
}

/// `(rx_pkts, rx_drops)` of port `name` in `ptvmm-vale-ctl list`, if listed.
fn port_counts(d: &TempDir, name: &str) -> Option<(u64, u64)> {
    let row = port_fields(&vale_ctl(d, &["list"]), name)?;
    Some((row[9].parse().unwrap(), row[11].parse().unwrap()))
}

#[test]
fn rxseq_counts_what_the_switch_dropped_as_lost() {
    // An unpaced flood to a verifying receiver may overrun it: the switch drops frames,
    // which rxseq sees as gaps. Every gap is a drop (those after the last frame received
    // cannot be seen), nothing is reordered or duplicated, every frame is accounted.
    const N: u64 = 300_000;
    let d = TempDir::new("opt-seqloss");
    let rx = pktgen(&d, &["-i", "valeol:2", "-f", "rxseq", "--json"]);
    let tx = pktgen(&d, &["-i", "valeol:1", "-f", "txseq", "-n", &N.to_string()]);
    let (code, tout) = tx.finish();
    assert_eq!(code, 0, "{tout}");
    assert_eq!(count(&tout, "Sent"), N);
    let start = Instant::now();
    let (pkts, drops) = loop {
        let c = port_counts(&d, "valeol:2").expect("the receiver's port is listed");
        if c.0 + c.1 == N {
            break c;
        }
        assert!(start.elapsed() < DEADLINE, "{c:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The receiver drains what arrived before it exits.
    std::thread::sleep(Duration::from_millis(200));
    rx.signal(libc::SIGINT);
    let (code, rout) = rx.finish();
    assert_eq!(code, 0, "{rout}");
    let s = json_summary(&rout);
    let (got, lost) = (
        field(&s, "seq_received").unwrap(),
        field(&s, "lost").unwrap(),
    );
    assert_eq!(field(&s, "flows"), Some(1), "{s}");
    assert_eq!(field(&s, "reordered"), Some(0), "{s}");
    assert_eq!(field(&s, "duplicates"), Some(0), "{s}");
    assert_eq!(field(&s, "bad"), Some(0), "{s}");
    assert_eq!((field(&s, "pkts"), got), (Some(pkts), pkts), "{s}");
    assert!(lost <= drops, "lost {lost} drops {drops}: {s}");
    if drops == 0 {
        assert_eq!(lost, 0, "{s}");
    }
}

/// A frame of `len` bytes from source port `port` carrying txseq's fields `seq` (thread 0),
/// its checksums made valid.
fn seq_frame(port: u16, seq: u32, len: usize) -> Vec<u8> {
    let ep = Endpoints {
        src_port: port,
        ..Endpoints::default()
    };
    let mut f = frame::build(&ep, len);
    pktgen::seq::put(&mut f[frame::HEADERS..], seq, 0);
    frame::fill_ip_udp(&mut f, &ep);
    f
}

#[test]
fn pcap_replay_sends_the_files_frames_in_order() {
    // Two flows of three numbered frames each, interleaved, of six lengths. Replayed twice,
    // a sequence-counting receiver sees each flow's 0, 1, 2 twice: nothing lost or
    // reordered, the second pass all duplicates; the byte counts are the file's.
    let frames = [
        seq_frame(1, 0, 60),
        seq_frame(2, 0, 61),
        seq_frame(1, 1, 128),
        seq_frame(2, 1, 1000),
        seq_frame(1, 2, 1514),
        seq_frame(2, 2, 300),
    ];
    let file_bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    for (i, hdr) in ["0", "12"].into_iter().enumerate() {
        let d = TempDir::new("opt-pcap");
        let path = d.0.join("six.pcap");
        let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
        for (k, f) in frames.iter().enumerate() {
            let p = PcapPacket::new(Duration::from_millis(k as u64), f.len() as u32, f);
            w.write_packet(&p).unwrap();
        }
        drop(w);
        let (a, b) = (format!("valeoc{i}:1"), format!("valeoc{i}:2"));
        let rx = pktgen(&d, &["-i", &b, "-f", "rxseq", "-n", "12"]);
        let tx = pktgen(
            &d,
            &[
                "-i",
                &a,
                "-P",
                path.to_str().unwrap(),
                "-n",
                "12",
                "-R",
                "5000",
                "-H",
                hdr,
            ],
        );
        let what = format!("-H {hdr}");
        let (_, rout) = exchange(tx, rx, 12, Some(2 * file_bytes), &what);
        assert_eq!(seq_totals(&rout), (2, 12, 0, 0, 6), "-H {hdr}: {rout}");
        for port in [1, 2] {
            let l = format!(
                "Flow 10.0.0.1:{port} -> 10.1.0.1:1234 thread 0: 6 received 0 lost 0 reordered 3 duplicated"
            );
            assert!(rout.lines().any(|x| x == l), "{l} in\n{rout}");
        }
    }
}

/// `(pkts, bytes, good, bad)` of a JSON summary.
fn rx_totals(out: &str) -> (u64, u64, u64, u64) {
    let s = json_summary(out);
    let f = |k| field(&s, k).unwrap_or_else(|| panic!("no {k} in {s}"));
    (f("pkts"), f("bytes"), f("good"), f("bad"))
}

#[test]
fn multi_slot_frames_leave_as_morefrag_chains() {
    // The slots as the switch delivers them to a port of ours: each frame a chain of -F's
    // or -M's slot lengths, MOREFRAG on all but the last.
    use netmap::abi::slot::F_MOREFRAG;
    let d = TempDir::new("opt-chains");
    let o = vale::PortOptions {
        shm_dir: Some(d.0.clone()),
        ..Default::default()
    };
    let rx = vale::Port::open("valeoc:2", &o).unwrap();
    for (args, lens) in [
        (&["-F", "3", "-l", "1000"][..], &[333u16, 333, 334][..]),
        (&["-M", "512", "-l", "1514"][..], &[512, 512, 490][..]),
        (&["-F", "2", "-M", "900", "-l", "1514"][..], &[757, 757][..]),
        (&["-M", "2048", "-l", "4000"][..], &[2048, 1952][..]),
    ] {
        let mut a = vec!["-i", "valeoc:1", "-f", "tx", "-n", "10"];
        a.extend_from_slice(args);
        let (code, out) = pktgen(&d, &a).finish();
        assert_eq!(code, 0, "{args:?}: {out}");
        assert_eq!(count(&out, "Sent"), 10, "{out}");
        let r = rx.rx_ring(0);
        let s = rx.rxsync_ring(0).unwrap();
        let n = r.num_slots();
        let got = netmap::ring::distance(r.head(), s.hwtail, n);
        assert_eq!(got as usize, 10 * lens.len(), "{args:?}");
        let mut h = r.head();
        for _ in 0..10 {
            for (k, &len) in lens.iter().enumerate() {
                let (_, l, flags) = r.slot(h).load();
                assert_eq!(l, len, "{args:?}");
                let more = flags & F_MOREFRAG != 0;
                assert_eq!(more, k + 1 < lens.len(), "{args:?}");
                h = netmap::ring::next(h, n);
            }
        }
        r.set_head(h);
        r.set_cur(h);
    }
    let st = rx.stats();
    assert_eq!(st.rx_pkts, 40);
    assert_eq!(st.rx_bytes, 10 * (1000 + 1514 + 1514 + 4000));
}

#[test]
fn chained_frames_are_counted_once_and_verify() {
    // -F 3 and -M 512 -l 1514 (and a frame larger than a buffer, one with a virtio-net
    // header the switch strips, and one delivered with its header to a receiver with the
    // same header length, as a chain): every frame counted once, its bytes once (the header
    // left out once), and its IPv4/UDP checksums verified over the whole chain. The sender
    // is lossless: a receiver slowed by this machine's load holds it instead of losing
    // frames, so the counts are exact.
    let d = TempDir::new("opt-frags");
    let runs: [(&[&str], &[&str], u64); 6] = [
        (&["-F", "3"], &[], 60),
        (&["-M", "512", "-l", "1514"], &[], 1514),
        (
            &["-F", "4", "-M", "512", "-l", "1514", "-s", "10.0.0.1:1-9"],
            &[],
            1514,
        ),
        (&["-M", "1024", "-l", "5000"], &[], 5000),
        (&["-M", "700", "-l", "1514", "-H", "10", "-Z"], &[], 1514),
        (&["-F", "5", "-l", "1514", "-H", "12"], &["-H", "12"], 1514),
    ];
    for (extra, rx_extra, len) in runs {
        let mut rargs = vec!["-i", "valeof:2", "-f", "rx", "-n", "1500", "--json"];
        rargs.extend_from_slice(rx_extra);
        let rx = pktgen(&d, &rargs);
        let mut args = vec![
            "-i",
            "valeof:1",
            "-f",
            "tx",
            "-n",
            "1500",
            "-R",
            "10000",
            "--json",
            "--lossless",
        ];
        args.extend_from_slice(extra);
        let (code, tout) = pktgen(&d, &args).finish();
        assert_eq!(code, 0, "{extra:?}: {tout}");
        let s = json_summary(&tout);
        assert_eq!(field(&s, "pkts"), Some(1500), "{extra:?}: {s}");
        assert_eq!(field(&s, "bytes"), Some(1500 * len), "{extra:?}: {s}");
        let (code, rout) = rx.finish();
        assert_eq!(code, 0, "{extra:?}: {rout}");
        assert_eq!(
            rx_totals(&rout),
            (1500, 1500 * len, 1500, 0),
            "{extra:?}: {rout}"
        );
    }
}

#[test]
fn txseq_chains_to_rxseq() {
    // Sequence numbers written into a frame split over slots are read back whole (a
    // lossless sender: a receiver slowed by load holds it, so nothing may be lost).
    let d = TempDir::new("opt-fseq");
    let rx = pktgen(&d, &["-i", "valeoq:2", "-f", "rxseq", "-n", "2000"]);
    let tx = pktgen(
        &d,
        &[
            "-i",
            "valeoq:1",
            "-f",
            "txseq",
            "-n",
            "2000",
            "-R",
            "20000",
            "-F",
            "5",
            "-l",
            "300",
            "-d",
            "10.1.0.1:1-4",
            "--lossless",
        ],
    );
    let (_, rout) = exchange(tx, rx, 2000, None, "txseq chains");
    assert_eq!(seq_totals(&rout), (4, 2000, 0, 0, 0), "{rout}");
}

#[test]
fn impossible_fragment_options_exit_2_with_one_line() {
    let d = TempDir::new("opt-fbad");
    for (args, says) in [
        (&["-F", "0"][..], "-F 0: a frame takes at least 1 slot"),
        (&["-M", "0"][..], "-M 0: a slot carries at least 1 byte"),
        (
            &["-F", "61", "-l", "60"][..],
            "-F 61: 60 bytes cannot fill 61 slots",
        ),
        (
            &["-F", "65", "-l", "1514"][..],
            "at most 64 slots per frame",
        ),
        (
            &["-M", "16", "-l", "1514"][..],
            "take 95 slots, more than the 64",
        ),
        (&["-M", "10"][..], "cannot hold the 14-byte Ethernet header"),
        (
            &["-F", "2", "-M", "512", "-l", "1514"][..],
            "at least 3 slots of 512",
        ),
        (
            &["-M", "4000", "-l", "5000"][..],
            "does not fit the 2048-byte buffers",
        ),
        (&["-l", "5000"][..], "frame length 5000 out of range"),
        (
            &["-F", "2", "-f", "rx"][..],
            "-F/-M shape the frames tx and txseq send",
        ),
    ] {
        let mut a = vec!["-i", "valeob:1"];
        a.extend_from_slice(args);
        let (code, out, err) = common::spawn(common::PKTGEN, &d, &a).finish_with_stderr();
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
}

#[test]
fn pcap_frames_are_split_one_by_one() {
    // -P with -M: each frame of the file over as many slots as its length needs (one to
    // sixteen here, the last longer than a buffer), all verified with their numbers; with
    // -F 5 the file's 60-byte frame cannot be split (12 bytes cannot hold the Ethernet
    // header) and the run is refused naming the frame.
    let frames = [
        seq_frame(1, 0, 60),
        seq_frame(1, 1, 1000),
        seq_frame(1, 2, 1514),
        seq_frame(1, 3, 4000),
    ];
    let file_bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    let d = TempDir::new("opt-pfrag");
    let path = d.0.join("four.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for (k, f) in frames.iter().enumerate() {
        let p = PcapPacket::new(Duration::from_millis(k as u64), f.len() as u32, f);
        w.write_packet(&p).unwrap();
    }
    drop(w);
    let file = path.to_str().unwrap();
    let rx = pktgen(&d, &["-i", "valeop:2", "-f", "rxseq", "-n", "8"]);
    let tx = pktgen(
        &d,
        &[
            "-i",
            "valeop:1",
            "-P",
            file,
            "-M",
            "256",
            "-n",
            "8",
            "-R",
            "5000",
            "--lossless",
        ],
    );
    let (_, rout) = exchange(tx, rx, 8, Some(2 * file_bytes), "pcap chains");
    assert_eq!(seq_totals(&rout), (1, 8, 0, 0, 4), "{rout}");
    let (code, out, err) = common::spawn(
        common::PKTGEN,
        &d,
        &["-i", "valeop:1", "-P", file, "-F", "5"],
    )
    .finish_with_stderr();
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("-P frame 1: -F 5: a first slot of 12 bytes cannot hold"),
        "{err}"
    );
}
