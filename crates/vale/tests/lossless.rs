//! In-process tests of lossless ports: a full destination holds the sender's slots in its
//! ring instead of dropping, floods into slow receivers lose nothing, and a stuck, dead or
//! closing receiver releases a held sender. Each test uses its own directory and switch.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use netmap::NetmapPort;
use vale::fuzzing::TempDir;
use vale::{Port, PortOptions};

mod common;
use common::{mac, put_tagged, recv, send, small, BCAST};

fn lossless(o: PortOptions) -> PortOptions {
    PortOptions {
        lossless: true,
        ..o
    }
}

/// Fills as many TX slots of `p` as are free with frames numbered `next..` (at most up to
/// `total`), txsyncs and returns the new `next` (frames published so far).
fn publish(p: &Port, dst: [u8; 6], next: u32, total: u32) -> u32 {
    publish_from(p, mac(1), dst, next, total)
}

/// As [`publish`], with source MAC `src`.
fn publish_from(p: &Port, src: [u8; 6], dst: [u8; 6], next: u32, total: u32) -> u32 {
    let r = p.tx_ring(0);
    let n = r.num_slots();
    let mut head = r.head();
    let mut k = next;
    while k < total && netmap::ring::space(head, r.tail(), n) > 0 {
        put_tagged(p, head, dst, src, k);
        head = (head + 1) % n;
        k += 1;
    }
    r.set_head(head);
    r.set_cur(head);
    p.txsync_ring(0).unwrap();
    k
}

/// Slots published but not yet forwarded (a held lossless sender's pending slots).
fn pending(p: &Port) -> u32 {
    let s = p.ring_state(netmap::RingKind::Tx, 0).unwrap();
    let r = p.tx_ring(0);
    netmap::ring::distance(s.hwcur, r.head(), r.num_slots())
}

/// Sends `total` numbered frames losslessly: publishes, and sleeps in `tx_wait` whenever
/// the ring is full of pending slots, until everything has left the ring.
fn send_lossless(p: &Port, dst: [u8; 6], total: u32, deadline: Duration) {
    send_lossless_from(p, mac(1), dst, total, deadline)
}

/// As [`send_lossless`], with source MAC `src`.
fn send_lossless_from(p: &Port, src: [u8; 6], dst: [u8; 6], total: u32, deadline: Duration) {
    let t0 = std::time::Instant::now();
    let mut next = 0;
    while next < total || pending(p) > 0 {
        assert!(t0.elapsed() < deadline, "sender stuck: {next} published");
        let before = next;
        next = publish_from(p, src, dst, next, total);
        if next == before && pending(p) > 0 {
            p.tx_wait(0, Some(Duration::from_millis(100))).unwrap();
        }
    }
}

/// Receives numbered frames until `total`, slowly (`pause` after each sync); checks order.
fn recv_numbered(p: &Port, total: u32, pause: Duration, deadline: Duration) -> u32 {
    let t0 = std::time::Instant::now();
    let mut got = 0u32;
    while got < total && t0.elapsed() < deadline {
        let frames = recv(p);
        for (len, b) in &frames {
            assert_eq!(*len, 60);
            let k = u32::from_le_bytes(b[14..18].try_into().unwrap());
            assert_eq!(k, got, "frame out of order or lost");
            got += 1;
        }
        if frames.is_empty() {
            let seen = p.ring_state(netmap::RingKind::Rx, 0).unwrap().hwtail;
            p.rx_wait(0, seen, Some(Duration::from_millis(50))).unwrap();
        } else {
            std::thread::sleep(pause);
        }
    }
    got
}

#[test]
fn lossless_full_destination_holds_slots_in_the_ring() {
    let d = TempDir::new("t-ll-hold");
    let a = Port::open("valellh:a", &lossless(small(&d, 64))).unwrap();
    let b = Port::open("valellh:b", &small(&d, 64)).unwrap();
    assert!(a.lossless() && !b.lossless());
    // 63 frames fit B's ring; the rest stay in A's.
    assert_eq!(publish(&a, mac(2), 0, 63), 63);
    assert_eq!(pending(&a), 0);
    assert_eq!(publish(&a, mac(2), 63, 100), 100);
    assert_eq!(pending(&a), 37);
    let s = a.ring_state(netmap::RingKind::Tx, 0).unwrap();
    assert_eq!(s.hwtail, (s.hwcur + 63) % 64, "hwtail = hwcur - 1");
    assert_eq!(a.tx_ring(0).tail(), s.hwtail);
    assert_eq!(b.stats().rx_pkts, 63);
    assert_eq!(b.stats().rx_drops, 0);
    assert_eq!(
        a.stats().tx_pkts,
        63,
        "pending frames are not counted as sent"
    );
    // A retry with nothing freed forwards nothing, and does not sleep.
    a.txsync_ring(0).unwrap();
    assert_eq!(pending(&a), 37);
    // tx_wait returns at once once the receiver has freed slots.
    assert_eq!(recv(&b).len(), 63);
    let t0 = std::time::Instant::now();
    assert!(a.tx_wait(0, Some(Duration::from_secs(5))).unwrap());
    assert!(t0.elapsed() < Duration::from_secs(1));
    a.txsync_ring(0).unwrap();
    assert_eq!(pending(&a), 0);
    let got = recv(&b);
    assert_eq!(got.len(), 37);
    assert_eq!(u32::from_le_bytes(got[0].1[14..18].try_into().unwrap()), 63);
    assert_eq!(b.stats().rx_drops, 0);
    assert_eq!(a.stats().tx_pkts, 100);
}

#[test]
fn lossless_flood_into_slow_receivers_loses_nothing() {
    const N: u32 = 64 * 60;
    let d = TempDir::new("t-ll-flood");
    let a = Port::open("valellf:a", &lossless(small(&d, 64))).unwrap();
    let slow = std::sync::Arc::new(Port::open("valellf:slow", &small(&d, 64)).unwrap());
    let fast = std::sync::Arc::new(Port::open("valellf:fast", &small(&d, 64)).unwrap());
    let deadline = Duration::from_secs(60);
    let rx = |p: &std::sync::Arc<Port>, pause| {
        let p = p.clone();
        std::thread::spawn(move || recv_numbered(&p, N, pause, deadline))
    };
    let hs = rx(&slow, Duration::from_micros(300));
    let hf = rx(&fast, Duration::ZERO);
    // Broadcast: every frame goes to both receivers, each gets it exactly once.
    send_lossless(&a, BCAST, N, deadline);
    assert_eq!(hs.join().unwrap(), N);
    assert_eq!(hf.join().unwrap(), N);
    assert!(
        recv(&slow).is_empty() && recv(&fast).is_empty(),
        "no duplicate"
    );
    for p in [&slow, &fast] {
        assert_eq!(p.stats().rx_pkts, N as u64);
        assert_eq!(p.stats().rx_drops, 0);
    }
    assert_eq!(a.stats().tx_pkts, N as u64);
}

#[test]
fn default_port_into_slow_receiver_drops_and_counts() {
    const N: u32 = 64 * 20;
    let d = TempDir::new("t-ll-default");
    let a = Port::open("valelld:a", &small(&d, 64)).unwrap();
    let b = Port::open("valelld:b", &small(&d, 64)).unwrap();
    let mut next = 0;
    let mut received = 0u64;
    while next < N {
        next = publish(&a, mac(2), next, N);
        assert_eq!(pending(&a), 0, "a default port never holds");
        if next % 256 == 0 {
            received += recv(&b).len() as u64;
        }
    }
    received += recv(&b).len() as u64;
    let st = b.stats();
    assert!(st.rx_drops > 0);
    assert_eq!(st.rx_pkts, received);
    assert_eq!(st.rx_pkts + st.rx_drops, N as u64);
}

/// Publishes 100 frames to a 64-slot receiver that will not take them and returns how long
/// the lossless sender took to get rid of them.
fn time_to_release(a: &Port) -> Duration {
    let t0 = std::time::Instant::now();
    send_lossless(a, mac(2), 100, Duration::from_secs(10));
    t0.elapsed()
}

#[test]
fn lossless_sender_is_released_by_a_stuck_receiver() {
    let d = TempDir::new("t-ll-stuck");
    let a = Port::open("valells:a", &lossless(small(&d, 64))).unwrap();
    let b = Port::open("valells:b", &small(&d, 64)).unwrap();
    // B is alive but never syncs: held for HOLD_MAX, then the excess is dropped.
    let t = time_to_release(&a);
    assert!(
        t >= vale::forward::HOLD_MAX && t < vale::forward::HOLD_MAX + Duration::from_millis(500),
        "released after {t:?}"
    );
    assert_eq!(b.stats().rx_pkts, 63);
    assert_eq!(b.stats().rx_drops, 37);
    assert_eq!(a.stats().tx_pkts, 100);
    // Given up: more frames to it drop at once, without another hold.
    let t = time_to_release(&a);
    assert!(t < Duration::from_millis(300), "{t:?}");
    assert_eq!(b.stats().rx_drops, 137);
    // Once B frees slots, A is lossless towards it again.
    assert_eq!(recv(&b).len(), 63);
    let mut next = publish(&a, mac(2), 0, 100);
    next = publish(&a, mac(2), next, 100);
    assert_eq!(pending(&a), 37);
    while pending(&a) > 0 {
        recv(&b);
        next = publish(&a, mac(2), next, 100);
    }
    assert_eq!(b.stats().rx_drops, 137);
}

#[test]
fn lossless_sender_is_released_by_a_dead_receiver() {
    let d = TempDir::new("t-ll-dead");
    let a = Port::open("valelldd:a", &lossless(small(&d, 64))).unwrap();
    let b = Port::open("valelldd:b", &small(&d, 64)).unwrap();
    // B's owner "dies" (a pid that cannot exist, as after a SIGKILL): released at once.
    let sw = vale::switch::SwitchFile::open_locked(&d.0, "lldd", false).unwrap();
    sw.unlock();
    sw.mem().store_u32(
        vale::layout::entry(b.index()) + vale::layout::E_OWNER,
        0x7fff_fff0,
        Relaxed,
    );
    let t = time_to_release(&a);
    assert!(t < Duration::from_millis(300), "released after {t:?}");
    assert_eq!(b.stats().rx_drops, 37);
    assert_eq!(a.stats().tx_pkts, 100);
}

#[test]
fn lossless_sender_waiting_is_released_when_the_receiver_closes() {
    let d = TempDir::new("t-ll-close");
    let a = std::sync::Arc::new(Port::open("valellc:a", &lossless(small(&d, 64))).unwrap());
    let b = Port::open("valellc:b", &small(&d, 64)).unwrap();
    assert_eq!(publish(&a, mac(2), 0, 100), 63);
    assert_eq!(publish(&a, mac(2), 63, 100), 100);
    assert_eq!(pending(&a), 37);
    let a2 = a.clone();
    let h = std::thread::spawn(move || {
        let t0 = std::time::Instant::now();
        a2.tx_wait(0, Some(Duration::from_secs(5))).unwrap();
        t0.elapsed()
    });
    std::thread::sleep(Duration::from_millis(50));
    drop(b);
    let waited = h.join().unwrap();
    assert!(
        waited < Duration::from_millis(500),
        "woken after {waited:?}"
    );
    // B is gone: the pending frames have nowhere to go and leave the ring.
    a.txsync_ring(0).unwrap();
    assert_eq!(pending(&a), 0);
}

#[test]
fn two_lossless_senders_share_a_slow_receiver_without_loss() {
    const N: u32 = 64 * 40;
    let d = TempDir::new("t-ll-two");
    let b = Port::open("valell2:b", &small(&d, 64)).unwrap();
    // B announces itself, so the senders' frames are unicast to it only.
    send(&b, BCAST, mac(9), 60, 1);
    let senders: Vec<_> = [3u8, 4]
        .into_iter()
        .map(|i| {
            let p = Port::open(&format!("valell2:{i}"), &lossless(small(&d, 64))).unwrap();
            recv(&p);
            std::thread::spawn(move || {
                send_lossless_from(&p, mac(i), mac(9), N, Duration::from_secs(60));
                p.stats().tx_pkts
            })
        })
        .collect();
    // Each sender's frames arrive complete and in order, interleaved with the other's.
    let mut next = [0u32; 2];
    let t0 = std::time::Instant::now();
    while next != [N, N] {
        assert!(t0.elapsed() < Duration::from_secs(60), "stuck at {next:?}");
        let frames = recv(&b);
        for (_, f) in &frames {
            let s = (f[11] - 3) as usize;
            let k = u32::from_le_bytes(f[14..18].try_into().unwrap());
            assert_eq!(k, next[s], "sender {s}: frame lost or out of order");
            next[s] += 1;
        }
        if frames.is_empty() {
            let seen = b.ring_state(netmap::RingKind::Rx, 0).unwrap().hwtail;
            b.rx_wait(0, seen, Some(Duration::from_millis(50))).unwrap();
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    for h in senders {
        assert_eq!(h.join().unwrap(), N as u64);
    }
    assert_eq!(b.stats().rx_drops, 0);
    assert_eq!(b.stats().rx_pkts, 2 * N as u64);
}
