//! In-process tests of the switch: forwarding, flooding, learning, drops, garbage slots,
//! lifecycle and reclaiming. Each test uses its own directory and switch.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use netmap::abi::slot::F_MOREFRAG;
use netmap::{NetmapPort, RegionConfig};
use vale::fuzzing::TempDir;
use vale::{Port, PortOptions, ValeError};

mod common;
use common::{files, mac, opts, recv, send, tags, BCAST};

fn small(dir: &TempDir, slots: u32) -> PortOptions {
    PortOptions {
        config: RegionConfig {
            tx_rings: 1,
            rx_rings: 1,
            tx_slots: slots,
            rx_slots: slots,
            buf_size: 2048,
        },
        shm_dir: Some(dir.0.clone()),
        lossless: false,
        vnet_hdr_len: 0,
    }
}

#[test]
fn unicast_counts_match_and_order_is_kept() {
    let d = TempDir::new("t-uni");
    let a = Port::open("valeu:1", &opts(&d)).unwrap();
    let b = Port::open("valeu:2", &opts(&d)).unwrap();
    let mut got = 0u32;
    for _round in 0..10 {
        send(&a, mac(2), mac(1), 60, 500);
        for (len, f) in recv(&b) {
            assert_eq!(len, 60);
            assert_eq!(&f[..6], &mac(2));
            assert_eq!(u32::from_le_bytes(f[14..18].try_into().unwrap()), got % 500);
            got += 1;
        }
    }
    assert_eq!(got, 5000);
    assert_eq!(a.stats().tx_pkts, 5000);
    assert_eq!(b.stats().rx_pkts, 5000);
    assert_eq!(b.stats().rx_bytes, 5000 * 60);
    assert_eq!(b.stats().rx_drops, 0);
}

/// Queues one frame from `src` to `dst` carrying `tag` in bytes 14..18, without syncing.
fn queue(p: &Port, dst: [u8; 6], src: [u8; 6], tag: u32) {
    let r = p.tx_ring(0);
    let head = r.head();
    let s = r.slot(head);
    let o = p.layout().buf_offset(s.buf_idx()).unwrap();
    let mut f = [0u8; 60];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12] = 0x08;
    f[14..18].copy_from_slice(&tag.to_le_bytes());
    p.mem().write_bytes(o, &f);
    s.set_len(60);
    s.set_flags(0);
    let next = (head + 1) % r.num_slots();
    r.set_head(next);
    r.set_cur(next);
}

#[test]
fn one_batch_to_several_destinations_keeps_each_ones_order() {
    // A single txsync whose frames go to B, to C, everywhere, and nowhere (a garbage slot),
    // interleaved: the forwarder's general path (one flow per batch takes a shortcut).
    let d = TempDir::new("t-mixed");
    let a = Port::open("valem:1", &opts(&d)).unwrap();
    let b = Port::open("valem:2", &opts(&d)).unwrap();
    let c = Port::open("valem:3", &opts(&d)).unwrap();
    // Teach the switch where B and C are.
    send(&b, BCAST, mac(2), 60, 1);
    send(&c, BCAST, mac(3), 60, 1);
    recv(&a);
    recv(&b);
    recv(&c);
    let plan = [2u8, 3, 0xff, 2, 2, 0, 3, 0xff, 3, 2];
    for (tag, &to) in plan.iter().enumerate() {
        match to {
            0xff => queue(&a, BCAST, mac(1), tag as u32),
            0 => {
                // A slot whose buffer index is outside the pool: dropped and counted.
                queue(&a, mac(2), mac(1), tag as u32);
                let r = a.tx_ring(0);
                let last = (r.head() + r.num_slots() - 1) % r.num_slots();
                r.slot(last).set_buf_idx(u32::MAX);
            }
            n => queue(&a, mac(n), mac(1), tag as u32),
        }
    }
    a.txsync_ring(0).unwrap();
    let want = |who: u8| -> Vec<u32> {
        (0..plan.len() as u32)
            .filter(|&t| plan[t as usize] == who || plan[t as usize] == 0xff)
            .collect()
    };
    assert_eq!(tags(&recv(&b)), want(2));
    assert_eq!(tags(&recv(&c)), want(3));
    assert_eq!(a.stats().tx_bad, 1);
    assert_eq!(a.stats().tx_pkts, plan.len() as u64 - 1);
}

#[test]
fn broadcast_reaches_every_other_port() {
    let d = TempDir::new("t-bc");
    let ports: Vec<Port> = (1..=4)
        .map(|i| Port::open(&format!("valeb:{i}"), &opts(&d)).unwrap())
        .collect();
    send(&ports[0], BCAST, mac(1), 100, 7);
    assert!(recv(&ports[0]).is_empty(), "no frame back to the sender");
    for p in &ports[1..] {
        assert_eq!(recv(p).len(), 7);
    }
}

#[test]
fn learning_stops_flooding_after_first_reply() {
    let d = TempDir::new("t-learn");
    let a = Port::open("valel:a", &opts(&d)).unwrap();
    let b = Port::open("valel:b", &opts(&d)).unwrap();
    let c = Port::open("valel:c", &opts(&d)).unwrap();
    // B's MAC is unknown: flooded to B and C.
    send(&a, mac(2), mac(1), 60, 1);
    assert_eq!(recv(&b).len(), 1);
    assert_eq!(recv(&c).len(), 1);
    // B replies to A: A's MAC was learned, so only A gets it.
    send(&b, mac(1), mac(2), 60, 1);
    assert_eq!(recv(&a).len(), 1);
    assert!(recv(&c).is_empty());
    // Now B's MAC is known too: no more flooding to C.
    send(&a, mac(2), mac(1), 60, 5);
    assert_eq!(recv(&b).len(), 5);
    assert!(recv(&c).is_empty());
    // A frame to the sender's own MAC is dropped.
    send(&a, mac(1), mac(1), 60, 1);
    assert!(recv(&a).is_empty() && recv(&b).is_empty() && recv(&c).is_empty());
}

#[test]
fn full_destination_drops_and_counts_without_blocking() {
    let d = TempDir::new("t-full");
    let a = Port::open("valef:1", &small(&d, 64)).unwrap();
    let b = Port::open("valef:2", &small(&d, 64)).unwrap();
    // Nobody reads B: it holds 63 frames, the rest is dropped.
    for _ in 0..5 {
        send(&a, mac(2), mac(1), 60, 40);
    }
    assert_eq!(b.stats().rx_pkts, 63);
    assert_eq!(b.stats().rx_drops, 200 - 63);
    assert_eq!(a.stats().tx_pkts, 200);
    assert_eq!(recv(&b).len(), 63);
    send(&a, mac(2), mac(1), 60, 10);
    assert_eq!(recv(&b).len(), 10);
}

#[test]
fn garbage_slots_are_dropped_and_counted() {
    let d = TempDir::new("t-garbage");
    let a = Port::open("valeg:1", &opts(&d)).unwrap();
    let b = Port::open("valeg:2", &opts(&d)).unwrap();
    let r = a.tx_ring(0);
    let good = |i: u32| {
        let s = r.slot(i);
        let o = a.layout().buf_offset(s.buf_idx()).unwrap();
        let mut f = [0u8; 60];
        f[..6].copy_from_slice(&BCAST);
        f[6..12].copy_from_slice(&mac(1));
        a.mem().write_bytes(o, &f);
        s.set_len(60);
        s.set_flags(0);
    };
    for i in 0..200 {
        good(i);
    }
    r.slot(0).set_buf_idx(u32::MAX); // out of range
    r.slot(1).set_buf_idx(a.layout().nbufs()); // just out of range
    r.slot(2).set_len(2049); // longer than a buffer
    r.slot(3).set_len(u16::MAX);
    r.slot(4).set_len(10); // shorter than an Ethernet header
                           // Slots 10..=199: an endless MOREFRAG chain (190 slots = 64 + 64 + 62).
    for i in 10..200 {
        r.slot(i).set_flags(F_MOREFRAG);
    }
    r.set_head(200);
    r.set_cur(200);
    a.txsync_ring(0).unwrap();
    let st = a.stats();
    // 5 bad singles, 2 truncated 64-slot chains; the last 62-slot chain ends at head and is
    // sent as one packet of 62 fragments.
    assert_eq!(st.tx_bad, 7);
    assert_eq!(st.tx_pkts, 5 + 1);
    let got = recv(&b);
    assert_eq!(got.len(), 5 + 62);
    assert_eq!(b.stats().rx_pkts, 6);
    // The switch still works afterwards.
    send(&a, BCAST, mac(1), 60, 3);
    assert_eq!(recv(&b).len(), 3);
}

#[test]
fn fragments_are_delivered_as_chains() {
    let d = TempDir::new("t-frag");
    let a = Port::open("valefr:1", &opts(&d)).unwrap();
    let b = Port::open("valefr:2", &opts(&d)).unwrap();
    let r = a.tx_ring(0);
    for i in 0..3 {
        let s = r.slot(i);
        let o = a.layout().buf_offset(s.buf_idx()).unwrap();
        let mut f = [i as u8; 100];
        f[..6].copy_from_slice(&BCAST);
        f[6..12].copy_from_slice(&mac(1));
        a.mem().write_bytes(o, &f);
        s.set_len(100 + i as u16);
        s.set_flags(if i < 2 { F_MOREFRAG } else { 0 });
    }
    r.set_head(3);
    r.set_cur(3);
    a.txsync_ring(0).unwrap();
    let rr = b.rx_ring(0);
    let s = b.rxsync_ring(0).unwrap();
    assert_eq!(s.hwtail, 3);
    for i in 0..3 {
        assert_eq!(rr.slot(i).len(), 100 + i as u16);
        assert_eq!(rr.slot(i).flags() & F_MOREFRAG != 0, i < 2);
    }
    assert_eq!(b.stats().rx_pkts, 1);
    assert_eq!(b.stats().rx_bytes, 303);
}

#[test]
fn invalid_indices_are_rejected_and_ring_reset() {
    let d = TempDir::new("t-idx");
    let a = Port::open("valei:1", &opts(&d)).unwrap();
    assert!(a.txsync(0, 1024, 0).is_err());
    assert!(a.txsync(0, 5, 4).is_err());
    assert!(a.txsync(1, 0, 0).is_err());
    assert!(a.rxsync(0, 1, 1).is_err());
    let r = a.tx_ring(0);
    r.set_head(5000);
    assert!(a.txsync_ring(0).is_err());
    assert_eq!((r.head(), r.cur(), r.tail()), (0, 0, 1023));
    let s = a.txsync(0, 0, 0).unwrap();
    assert_eq!((s.hwcur, s.hwtail), (0, 1023));
}

#[test]
fn lifecycle_creates_and_removes_files() {
    let d = TempDir::new("t-life");
    let a = Port::open("valelc:1", &opts(&d)).unwrap();
    assert!(matches!(
        Port::open("valelc:1", &opts(&d)),
        Err(ValeError::PortBusy { .. })
    ));
    assert!(matches!(
        Port::open("vale lc:1", &opts(&d)),
        Err(ValeError::BadName(_))
    ));
    let b = Port::open("valelc:2", &opts(&d)).unwrap();
    assert_eq!(files(&d).len(), 3, "{:?}", files(&d));
    drop(a);
    assert_eq!(files(&d).len(), 2);
    let a2 = Port::open("valelc:1", &opts(&d)).unwrap();
    drop(b);
    drop(a2);
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn region_info_describes_the_mapping() {
    let d = TempDir::new("t-region");
    let a = Port::open("valer:1", &opts(&d)).unwrap();
    let ri = a.region();
    assert_eq!(ri.size, a.layout().size);
    assert_eq!(ri.size % 4096, 0);
    assert_eq!(ri.nifp_offset, 0);
    assert_eq!(ri.layout.buf_pool.objsz, 2048);
    assert_eq!(ri.mem.as_ptr() as usize % 4096, 0);
    let md = std::fs::metadata(a.region_path()).unwrap();
    assert!(
        md.len() as usize > ri.size,
        "private state follows the region"
    );
    // The fd maps the same bytes.
    let nif = netmap::IfView::new(ri.mem, ri.nifp_offset as usize);
    assert_eq!(nif.name(), "valer:1");
    assert!(ri.fd >= 0);
}

#[test]
fn dead_owner_is_reclaimed_by_next_opener() {
    let d = TempDir::new("t-reclaim");
    let a = Port::open("valerc:1", &opts(&d)).unwrap();
    // Pretend port 1's owner died: give it a pid that cannot exist.
    let sw = vale::switch::SwitchFile::open_locked(&d.0, "rc", false).unwrap();
    sw.unlock();
    let e = vale::layout::entry(a.index());
    sw.mem()
        .store_u32(e + vale::layout::E_OWNER, 0x7fff_fff0, Relaxed);
    let listing = vale::admin::list_switch(Some(&d.0), "rc").unwrap();
    assert!(!listing.ports[0].alive);
    let b = Port::open("valerc:1", &opts(&d)).unwrap();
    assert_eq!(files(&d).len(), 2, "old port file removed: {:?}", files(&d));
    drop(b);
    // `a`'s entry is already gone; dropping it must not disturb anything.
    drop(a);
    drop(sw);
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn receiver_sleeps_and_is_woken() {
    let d = TempDir::new("t-wake");
    let a = Port::open("valew:1", &opts(&d)).unwrap();
    let b = std::sync::Arc::new(Port::open("valew:2", &opts(&d)).unwrap());
    let b2 = b.clone();
    let h = std::thread::spawn(move || {
        let mut total = 0;
        while total < 100 {
            let s = b2
                .rxsync(0, b2.ring_state(netmap::RingKind::Rx, 0).unwrap().hwcur, 0)
                .ok();
            let _ = s;
            let got = recv(&b2).len();
            total += got;
            if got == 0 {
                let seen = b2.ring_state(netmap::RingKind::Rx, 0).unwrap().hwtail;
                b2.rx_wait(0, seen, Some(Duration::from_secs(10))).unwrap();
            }
        }
        total
    });
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(5));
        send(&a, mac(2), mac(1), 60, 10);
    }
    assert_eq!(h.join().unwrap(), 100);
    // A waker interrupts a sleeping receiver.
    let w = b.rx_waker(0).unwrap();
    let b3 = b.clone();
    let h = std::thread::spawn(move || {
        let seen = b3.ring_state(netmap::RingKind::Rx, 0).unwrap().hwtail;
        b3.rx_wait(0, seen, Some(Duration::from_secs(30))).unwrap()
    });
    std::thread::sleep(Duration::from_millis(20));
    w.wake();
    assert!(!h.join().unwrap(), "woken without packets");
}

#[test]
fn fuzz_entry_survives_pseudo_random_inputs() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut total = 0;
    for iter in 0..300 {
        let len = 64 + (iter * 37) % 2000;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        total += vale::fuzzing::txsync_input(&data);
    }
    assert!(total > 10_000, "ops executed: {total}");
}

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
        let s = r.slot(head);
        let o = p.layout().buf_offset(s.buf_idx()).unwrap();
        let mut f = [0u8; 60];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12] = 0x08;
        f[14..18].copy_from_slice(&k.to_le_bytes());
        p.mem().write_bytes(o, &f);
        s.set_len_flags(60, 0);
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
