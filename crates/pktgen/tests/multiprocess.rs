//! Multi-process tests: the real ptvmm-pktgen and ptvmm-vale-ctl binaries on a switch in a
//! private directory (PTVMM_SHM_DIR), one directory and switch name per test.

use std::time::{Duration, Instant};

use vale::fuzzing::TempDir;

mod common;
use common::{count, files, pktgen, port_fields, spawn, vale_ctl, wait_for, Proc, PKTGEN, VALECTL};

/// A vale-ctl listing, or None if it failed (the switch was removed while it listed, as
/// when the last port closes at that moment).
fn try_vale_ctl_list(dir: &TempDir) -> Option<String> {
    let (code, out) = spawn(VALECTL, dir, &["list"]).finish();
    (code == 0).then_some(out)
}

/// `(state, rx_pkts, rx_drops)` of port `name` in a vale-ctl listing.
fn port_row(listing: &str, name: &str) -> Option<(String, u64, u64)> {
    port_fields(listing, name).map(|f| {
        (
            f[3].to_string(),
            f[9].parse().unwrap(),
            f[11].parse().unwrap(),
        )
    })
}

#[test]
fn tx_to_rx_counts_match_exactly() {
    let d = TempDir::new("mp-exact");
    let rx = pktgen(&d, &["-i", "valemx:2", "-f", "rx", "-n", "5000"]);
    let tx = pktgen(
        &d,
        &[
            "-i", "valemx:1", "-f", "tx", "-n", "5000", "-R", "20000", "-T", "50",
        ],
    );
    let (code, tout) = tx.finish();
    assert_eq!(code, 0);
    assert_eq!(count(&tout, "Sent"), 5000);
    assert!(
        tout.lines()
            .any(|l| l.ends_with("avg_batch") && l.contains("pps (")),
        "{tout}"
    );
    assert!(tout
        .lines()
        .any(|l| l.starts_with("Speed: ") && l.contains("pps Bandwidth: ")));
    let (code, rout) = rx.finish();
    assert_eq!(code, 0);
    assert_eq!(count(&rout, "Received"), 5000);
    assert!(rout.contains("Verified 5000 good 0 bad"), "{rout}");
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn frames_cross_ports_of_different_header_lengths_exactly() {
    // -H 10 sender to a port without header and back to -H 12: every frame arrives and
    // verifies, its header added or removed by the switch.
    for (i, (htx, hrx)) in [("10", "0"), ("0", "12"), ("12", "10")]
        .into_iter()
        .enumerate()
    {
        let d = TempDir::new("mp-hdr");
        let (a, b) = (format!("valeh{i}:1"), format!("valeh{i}:2"));
        let rx = pktgen(&d, &["-i", &b, "-f", "rx", "-n", "3000", "-H", hrx]);
        let tx = pktgen(
            &d,
            &["-i", &a, "-f", "tx", "-n", "3000", "-R", "20000", "-H", htx],
        );
        let (code, tout) = tx.finish();
        assert_eq!((code, count(&tout, "Sent")), (0, 3000), "{htx}->{hrx}");
        let (code, rout) = rx.finish();
        assert_eq!(code, 0);
        assert!(
            rout.contains("Verified 3000 good 0 bad"),
            "{htx}->{hrx}: {rout}"
        );
    }
}

#[test]
fn unpaced_sender_accounts_for_every_packet() {
    let d = TempDir::new("mp-unpaced");
    let rx = pktgen(&d, &["-i", "valemu:2", "-f", "rx"]);
    let (code, tout) = pktgen(&d, &["-i", "valemu:1", "-f", "tx", "-n", "100000"]).finish();
    assert_eq!(code, 0);
    assert_eq!(count(&tout, "Sent"), 100000);
    // Delivered + dropped (destination full) = sent; vale-ctl sees the live receiver.
    let listing = vale_ctl(&d, &["list"]);
    let (state, pkts, drops) = port_row(&listing, "valemu:2").expect("receiver listed");
    assert_eq!(state, "alive");
    assert_eq!(pkts + drops, 100000, "{listing}");
    // Stop the receiver: it drains what already arrived before exiting.
    rx.signal(libc::SIGINT);
    let (code, rout) = rx.finish();
    assert_eq!(code, 0);
    assert_eq!(count(&rout, "Received"), pkts);
    assert!(rout.contains(" 0 bad"), "{rout}");
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

const FLOOD: u64 = 2_000_000;

#[test]
fn lossless_unpaced_flood_loses_nothing() {
    let d = TempDir::new("mp-lossless");
    let n = FLOOD.to_string();
    let rx = pktgen(&d, &["-i", "valemz:2", "-f", "rx", "-n", &n, "--lossless"]);
    let tx = pktgen(&d, &["-i", "valemz:1", "-f", "tx", "-n", &n, "--lossless"]);
    // Both ports are listed lossless while they run (unless already done: 2M frames take
    // a debug build seconds, but a release build only a fraction of one).
    let listing = try_vale_ctl_list(&d).unwrap_or_default();
    for p in ["valemz:1", "valemz:2"] {
        if let Some(f) = port_fields(&listing, p) {
            assert_eq!(f[4], "lossless", "{listing}");
        }
    }
    let (code, tout) = tx.finish();
    assert_eq!(code, 0);
    assert_eq!(count(&tout, "Sent"), FLOOD);
    // While the receiver still runs, the switch has dropped nothing for it (it may have
    // received everything and closed the switch meanwhile).
    let listing = try_vale_ctl_list(&d).unwrap_or_default();
    if let Some((_, _, drops)) = port_row(&listing, "valemz:2") {
        assert_eq!(drops, 0, "{listing}");
    }
    // The receiver stops by itself only once every frame has arrived: nothing was lost.
    let (code, rout) = rx.finish();
    assert_eq!(code, 0);
    assert_eq!(count(&rout, "Received"), FLOOD);
    assert!(
        rout.contains(&format!("Verified {FLOOD} good 0 bad")),
        "{rout}"
    );
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn default_unpaced_flood_accounts_for_every_packet() {
    let d = TempDir::new("mp-lossy");
    let n = FLOOD.to_string();
    let rx = pktgen(&d, &["-i", "valemy:2", "-f", "rx", "-n", &n]);
    let (code, tout) = pktgen(&d, &["-i", "valemy:1", "-f", "tx", "-n", &n]).finish();
    assert_eq!(code, 0);
    assert_eq!(count(&tout, "Sent"), FLOOD);
    // The receiver may fall behind and the switch drops: delivered + dropped = sent.
    let mut row = None;
    wait_for("the receiver's counters", || {
        let listing = vale_ctl(&d, &["list"]);
        row = port_row(&listing, "valemy:2");
        row.as_ref().is_none_or(|(_, p, dr)| p + dr == FLOOD)
    });
    let Some((state, pkts, drops)) = row else {
        // Gone: it received everything and exited.
        let (code, rout) = rx.finish();
        assert_eq!(code, 0);
        assert_eq!(count(&rout, "Received"), FLOOD);
        return;
    };
    assert_eq!(state, "alive");
    assert_eq!(pkts + drops, FLOOD);
    rx.signal(libc::SIGINT);
    let (code, rout) = rx.finish();
    assert_eq!(code, 0);
    assert_eq!(count(&rout, "Received"), pkts);
    assert!(rout.contains(" 0 bad"), "{rout}");
}

#[test]
fn broadcast_reaches_every_other_port() {
    let d = TempDir::new("mp-bcast");
    let rxs: Vec<Proc> = (2..=4)
        .map(|i| {
            pktgen(
                &d,
                &["-i", &format!("valemb:{i}"), "-f", "rx", "-n", "2000"],
            )
        })
        .collect();
    let (code, _) = pktgen(
        &d,
        &["-i", "valemb:1", "-f", "tx", "-n", "2000", "-R", "20000"],
    )
    .finish();
    assert_eq!(code, 0);
    for rx in rxs {
        let (code, out) = rx.finish();
        assert_eq!(code, 0);
        assert_eq!(count(&out, "Received"), 2000);
    }
    assert!(files(&d).is_empty());
}

#[test]
fn learning_stops_flooding_after_first_reply() {
    let d = TempDir::new("mp-learn");
    let watcher = pktgen(&d, &["-i", "valeml:3", "-f", "rx"]);
    let pong = pktgen(
        &d,
        &["-i", "valeml:2", "-f", "pong", "-S", "02:00:00:00:00:02"],
    );
    let (code, out) = pktgen(
        &d,
        &[
            "-i",
            "valeml:1",
            "-f",
            "ping",
            "-n",
            "20",
            "-S",
            "02:00:00:00:00:01",
            "-D",
            "02:00:00:00:00:02",
        ],
    )
    .finish();
    assert_eq!(code, 0);
    assert!(out.contains("ping: 20 replies of 20"), "{out}");
    pong.signal(libc::SIGINT);
    let (_, pout) = pong.finish();
    assert_eq!(count(&pout, "Sent"), 20);
    watcher.signal(libc::SIGINT);
    let (_, wout) = watcher.finish();
    // Only the first ping (unknown destination) was flooded to the third port.
    assert_eq!(count(&wout, "Received"), 1, "{wout}");
    assert!(files(&d).is_empty());
}

#[test]
fn killed_receiver_is_reclaimed_and_sender_keeps_going() {
    let d = TempDir::new("mp-kill");
    let rx = pktgen(&d, &["-i", "valemk:2", "-f", "rx"]);
    let mut tx = pktgen(
        &d,
        &["-i", "valemk:1", "-f", "tx", "-R", "100000", "-T", "100"],
    );
    // Wait until the receiver has packets, then kill it.
    wait_for("first packets", || {
        port_row(&vale_ctl(&d, &["list"]), "valemk:2").is_some_and(|(_, p, _)| p > 1000)
    });
    rx.signal(libc::SIGKILL);
    let _ = rx.finish();
    // The sender reclaims the dead port while it keeps sending.
    wait_for("reclaim", || {
        port_row(&vale_ctl(&d, &["list"]), "valemk:2").is_none()
    });
    assert!(tx.running(), "sender died");
    assert_eq!(files(&d).len(), 2, "{:?}", files(&d));
    // The name is free again: a new receiver gets packets.
    let (code, out) = pktgen(&d, &["-i", "valemk:2", "-f", "rx", "-n", "1000"]).finish();
    assert_eq!(code, 0);
    assert_eq!(count(&out, "Received"), 1000);
    tx.signal(libc::SIGINT);
    let (code, tout) = tx.finish();
    assert_eq!(code, 0);
    assert!(count(&tout, "Sent") > 1000);
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn killed_receiver_releases_a_lossless_sender() {
    let d = TempDir::new("mp-llkill");
    let rx = pktgen(&d, &["-i", "valemq:2", "-f", "rx", "--lossless"]);
    // Unpaced and lossless: the sender is held by the receiver most of the time.
    let tx = pktgen(
        &d,
        &["-i", "valemq:1", "-f", "tx", "-n", "3000000", "--lossless"],
    );
    wait_for("first packets", || {
        port_row(&vale_ctl(&d, &["list"]), "valemq:2").is_some_and(|(_, p, _)| p > 1000)
    });
    rx.signal(libc::SIGKILL);
    let _ = rx.finish();
    // The sender gives up on the dead receiver at once and finishes its count (a wedged
    // sender would hit the deadline in finish()).
    let t0 = Instant::now();
    let (code, tout) = tx.finish();
    assert_eq!(code, 0);
    assert_eq!(count(&tout, "Sent"), 3_000_000);
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn stale_switch_is_listed_and_deleted() {
    let d = TempDir::new("mp-stale");
    let rx = pktgen(&d, &["-i", "valems:7", "-f", "rx"]);
    rx.signal(libc::SIGKILL);
    let _ = rx.finish();
    assert_eq!(files(&d).len(), 2);
    let listing = vale_ctl(&d, &["list"]);
    assert!(listing.contains("valems: 1 port(s)"), "{listing}");
    assert_eq!(port_row(&listing, "valems:7").unwrap().0, "dead");
    let (code, _) = spawn(VALECTL, &d, &["delete", "nosuch"]).finish();
    assert_eq!(code, 2);
    let out = vale_ctl(&d, &["delete", "valems"]);
    assert!(out.contains("deleted valems"));
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let d = TempDir::new("mp-bad");
    for args in [
        vec!["-i", "valebad:1", "-l", "5"],
        vec!["-i", "valebad:1", "-f", "sideways"],
        vec!["-i", "eth0", "-f", "tx"],
        vec!["-i", "valebad:1", "-D", "not-a-mac"],
        vec!["-i", "valebad:1", "-s", "300.1.1.1"],
        vec!["-i", "valebad:1", "-b", "0"],
        vec!["-f", "tx"],
        vec!["-n", "many"],
        vec!["-i", "valebad:1", "-f", "rx", "--busy-poll"],
        vec!["--copy-loop", "--busy-poll"],
        vec!["-i", "/dev/ptnet-missing", "-f", "tx", "--busy-poll"],
        vec!["-i", "ptnet0", "-f", "tx", "--lossless"],
        vec!["--copy-loop", "--lossless"],
        vec!["-i", "valebad:1", "-H", "11"],
        vec!["-i", "ptnet0", "-f", "tx", "-H", "10"],
        vec!["-i", "valebad:1", "-H", "12", "-l", "2048"],
        vec!["-i", "valebad:1", "-s", "10.0.0.9-10.0.0.1"],
        vec!["-i", "valebad:1", "-d", "10.1.0.1:70000"],
        vec!["-i", "valebad:1", "-s", "10.0.0.1:5-"],
        vec!["-i", "valebad:1", "-f", "rx", "-z"],
        vec!["-i", "valebad:1", "-f", "txseq", "-Z"],
        vec!["-i", "valebad:1", "-f", "txseq", "-l", "47"],
        vec!["-i", "valebad:1", "-f", "rxseq", "--no-verify"],
        vec!["-i", "valebad:1", "-P", "/nonexistent/file.pcap"],
        vec![
            "-i",
            "valebad:1",
            "-f",
            "rx",
            "-P",
            "/nonexistent/file.pcap",
        ],
    ] {
        let mut p = spawn(PKTGEN, &d, &args);
        let status = p.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let err: Vec<String> = p.stderr.try_iter().collect();
        assert_eq!(status.code(), Some(2), "{args:?}");
        assert_eq!(err.len(), 1, "{args:?}: {err:?}");
        assert!(err[0].starts_with("ptvmm-pktgen: "), "{err:?}");
    }
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn busy_poll_on_a_vale_port_says_why_it_is_refused() {
    let d = TempDir::new("mp-busy");
    let mut p = spawn(PKTGEN, &d, &["-i", "valebusy:1", "-f", "tx", "--busy-poll"]);
    let status = p.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let err: Vec<String> = p.stderr.try_iter().collect();
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        err,
        ["ptvmm-pktgen: --busy-poll needs a ptnet device (-i ptnetN): VALE ports sync in user space already"]
    );
    assert!(
        files(&d).is_empty(),
        "the port must not even be opened: {:?}",
        files(&d)
    );
}
