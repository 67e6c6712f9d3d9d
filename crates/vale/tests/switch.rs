//! In-process tests of the switch: forwarding, flooding, learning, drops, garbage slots,
//! lifecycle and reclaiming (lossless ports: tests/lossless.rs). Each test uses its own
//! directory and switch.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use netmap::abi::slot::F_MOREFRAG;
use netmap::NetmapPort;
use vale::fuzzing::TempDir;
use vale::{Port, ValeError};

mod common;
use common::{files, mac, opts, put_tagged, recv, send, small, tags, BCAST};

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
    put_tagged(p, head, dst, src, tag);
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
