//! The ring workers against an in-memory guest: the test plays the guest driver of ABI §2
//! (CSB pages in heap "RAM", rings in the port's region) with real VALE ports as the
//! backend and as the far end of the wire.

use std::time::{Duration, Instant};

use netmap::csb::CsbRing;
use netmap::{ring, NetmapPort, RingView};
use vale::Port;

use super::nic::NicOptions;
use super::nic_tests::{enable_msix, map_csb, rd, rig_on, rig_with, wr, Rig, GH, HG, MAC};
use super::regs::nic::{CMD_CREATE, CMD_DELETE, CSB_GH_BAL, PTCTL};
use super::testutil::{open_vale, open_vale_with};
use crate::pci::PciDevice;

const SLOTS: u32 = 64;

/// Polls `f` for up to 5 s.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(5), "timed out: {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The guest driver's view of a 1 TX + 1 RX NIC.
struct Guest {
    tx: CsbRing,
    rx: CsbRing,
    txr: RingView,
    rxr: RingView,
    port: std::sync::Arc<dyn NetmapPort>,
    tx_head: u32,
    rx_head: u32,
}

impl Guest {
    /// Bring-up steps 4, 5 and 8: CSB, MSI-X, need-kick flags, CREATE.
    fn up(r: &mut Rig) -> Guest {
        map_csb(&mut r.nic, GH, HG);
        enable_msix(&mut r.nic, 2);
        let gh = super::host_ram(&r.ram, GH);
        let hg = super::host_ram(&r.ram, HG);
        let (tx, rx) = (CsbRing::new(&gh, &hg, 0), CsbRing::new(&gh, &hg, 1));
        tx.set_kern_need_kick(true);
        rx.set_kern_need_kick(true);
        tx.set_appl_need_kick(false);
        rx.set_appl_need_kick(true);
        wr(&mut r.nic, PTCTL, CMD_CREATE);
        assert_eq!(rd(&mut r.nic, PTCTL), 0);
        let info = r.port.region();
        let l = info.layout;
        Guest {
            tx,
            rx,
            txr: RingView::new(info.mem, l.tx_ring_offset(0), SLOTS),
            rxr: RingView::new(info.mem, l.rx_ring_offset(0), SLOTS),
            port: r.port.clone(),
            tx_head: tx.guest_read_ktoa().0,
            rx_head: rx.guest_read_ktoa().0,
        }
    }

    /// Queues `count` broadcast frames of 60 bytes, publishes head and kicks if asked to.
    fn send(&mut self, r: &Rig, count: u32) {
        self.queue(count);
        self.tx.guest_write_atok(self.tx_head, self.tx_head);
        if self.tx.kern_need_kick() {
            r.nic.doorbells()[0].1.write(1).unwrap();
        }
    }

    /// Fills the next `count` TX slots with broadcast frames of 60 bytes (not published).
    fn queue(&mut self, count: u32) {
        let info = self.port.region();
        for k in 0..count {
            let s = self.txr.slot(self.tx_head);
            let o = info.layout.buf_offset(s.buf_idx()).unwrap();
            info.mem.write_bytes(o, &frame(k));
            s.set_len(60);
            s.set_flags(0);
            self.tx_head = ring::next(self.tx_head, SLOTS);
        }
    }

    /// Releases every received slot (guest rxsync) and kicks if the host asked.
    fn release_rx(&mut self, r: &Rig) {
        self.rx_head = self.rx.guest_read_ktoa().1;
        self.rx.guest_write_atok(self.rx_head, self.rx_head);
        if self.rx.kern_need_kick() {
            r.nic.doorbells()[1].1.write(1).unwrap();
        }
    }
}

fn frame(k: u32) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&MAC);
    f[12] = 0x08;
    f[14..18].copy_from_slice(&k.to_le_bytes());
    f
}

/// A host application sends `count` broadcast frames from `p`.
fn host_send(p: &Port, count: u32) {
    let r = p.tx_ring(0);
    let mut head = r.head();
    for k in 0..count {
        let s = r.slot(head);
        let o = p.layout().buf_offset(s.buf_idx()).unwrap();
        let mut f = frame(k);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
        p.mem().write_bytes(o, &f);
        s.set_len(60);
        s.set_flags(0);
        head = ring::next(head, r.num_slots());
    }
    r.set_head(head);
    r.set_cur(head);
    p.txsync_ring(0).unwrap();
}

/// A host application receives and releases everything pending on `p`.
fn host_drain(p: &Port) -> u32 {
    let r = p.rx_ring(0);
    let s = p.rxsync_ring(0).unwrap();
    let got = ring::distance(r.head(), s.hwtail, r.num_slots());
    r.set_head(s.hwtail);
    r.set_cur(s.hwtail);
    p.rxsync_ring(0).unwrap();
    got
}

fn rig(name: &str) -> Rig {
    rig_with(name, 1, 1, SLOTS, NicOptions::default())
}

#[test]
fn tx_frames_reach_the_other_port_with_exact_counts() {
    let mut r = rig("valeW1:1");
    let peer = open_vale(&r.dir, "valeW1:2", 1, 1, SLOTS);
    let mut g = Guest::up(&mut r);
    let mut got = 0;
    for _ in 0..8 {
        g.send(&r, 40);
        let head = g.tx_head;
        wait_for("TX hwcur", || g.tx.guest_read_ktoa().0 == head);
        assert_eq!(g.tx.guest_read_ktoa().1, ring::prev(head, SLOTS));
        got += host_drain(&peer);
    }
    assert_eq!(got, 320, "every frame delivered once");
    let s = r.nic.stats().tx();
    assert_eq!(s.packets, 320);
    assert!(s.kicks >= 1 && s.kicks <= 8, "{s:?}");
    assert_eq!(s.resets, 0);
    assert_eq!(s.interrupts, 0, "the guest never asked for one");
    assert_eq!(peer.stats().rx_pkts, 320);
    assert_eq!(r.vale.stats().tx_pkts, 320);
}

#[test]
fn a_spinning_tx_worker_needs_almost_no_kicks() {
    let opts = NicOptions {
        tx_spin: Duration::from_secs(2),
        ..Default::default()
    };
    let mut r = rig_with("valeW7:1", 1, 1, SLOTS, opts);
    let peer = open_vale(&r.dir, "valeW7:2", 1, 1, SLOTS);
    let mut g = Guest::up(&mut r);
    let mut got = 0;
    for _ in 0..20 {
        g.send(&r, 30);
        let head = g.tx_head;
        wait_for("TX hwcur", || g.tx.guest_read_ktoa().0 == head);
        got += host_drain(&peer);
    }
    assert_eq!(got, 600);
    let t = Instant::now();
    r.nic.stop();
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "a stop ends the spin"
    );
    let s = r.nic.stats().tx();
    assert!(s.kicks <= 1, "{s:?}");
    assert_eq!(s.packets, 600);
}

#[test]
fn tx_interrupts_when_the_guest_asks_and_msix_masking_holds_them() {
    let mut r = rig("valeW2:1");
    let _peer = open_vale(&r.dir, "valeW2:2", 1, 1, SLOTS);
    let mut g = Guest::up(&mut r);
    // Mask vector 0: the interrupt must pend, then be replayed on unmask.
    r.nic.bar_write(2, 12, &1u32.to_le_bytes());
    g.tx.set_appl_need_kick(true);
    g.send(&r, 5);
    let st = r.nic.stats();
    wait_for("TX interrupt", || st.ring(0).interrupts == 1);
    assert_eq!(r.sink.count(0), 0, "masked");
    let mut pba = [0u8; 4];
    r.nic.bar_read(2, 0x800, &mut pba);
    assert_eq!(pba[0] & 1, 1, "pending");
    r.nic.bar_write(2, 12, &0u32.to_le_bytes());
    assert_eq!(r.sink.count(0), 1, "replayed on unmask");
    let got = r.sink.got.lock().unwrap()[0].1;
    assert_eq!((got.addr, got.data), (0xfee0_0000, 0x40));
}

#[test]
fn rx_frames_advance_hwtail_raise_msi_and_a_full_ring_waits_for_the_guest() {
    let mut r = rig("valeW3:1");
    let peer = open_vale(&r.dir, "valeW3:2", 1, 1, SLOTS);
    let mut g = Guest::up(&mut r);
    let st = r.nic.stats();
    host_send(&peer, 10);
    wait_for("RX hwtail", || g.rx.guest_read_ktoa().1 == 10);
    wait_for("RX MSI", || r.sink.count(1) >= 1);
    for i in 0..10 {
        assert_eq!(g.rxr.slot(i).len(), 60);
    }
    // Fill the ring: 53 more fit (one slot stays empty), the rest are dropped.
    host_send(&peer, 40);
    host_send(&peer, 30);
    wait_for("RX full", || g.rx.guest_read_ktoa().1 == 63);
    wait_for("host asks for a kick", || g.rx.kern_need_kick());
    let kicks = st.rx().kicks;
    g.release_rx(&r);
    wait_for("RX hwcur", || g.rx.guest_read_ktoa().0 == 63);
    assert!(st.rx().kicks > kicks);
    host_send(&peer, 5);
    wait_for("RX after release", || g.rx.guest_read_ktoa().1 == 4);
    assert_eq!(st.rx().packets, 68);
    assert_eq!(st.rx().resets, 0);
    assert_eq!(g.rx_head, 63);
}

#[test]
fn hostile_csb_values_reset_the_ring_without_spinning() {
    let mut r = rig("valeW4:1");
    let peer = open_vale(&r.dir, "valeW4:2", 1, 1, SLOTS);
    let mut g = Guest::up(&mut r);
    let st = r.nic.stats();
    // TX: a huge head.
    g.tx.guest_write_atok(u32::MAX, 5);
    r.nic.doorbells()[0].1.write(1).unwrap();
    wait_for("TX reset", || st.ring(0).resets == 1);
    assert_eq!(g.tx.guest_read_ktoa(), (0, 63));
    for _ in 0..5 {
        r.nic.doorbells()[0].1.write(1).unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(st.ring(0).resets, 1, "the same bad values are not retried");
    assert!(st.ring(0).syncs < 5, "{:?}", st.ring(0));
    // cur behind head.
    g.tx.guest_write_atok(10, 3);
    r.nic.doorbells()[0].1.write(1).unwrap();
    wait_for("TX reset 2", || st.ring(0).resets == 2);
    // The guest recovers with valid values.
    g.tx_head = 0;
    g.send(&r, 3);
    wait_for("TX after reset", || g.tx.guest_read_ktoa().0 == 3);
    assert_eq!(host_drain(&peer), 3);

    // RX: head beyond hwtail (nothing received yet), then packets still arrive.
    g.rx.guest_write_atok(5, 5);
    wait_for("RX reset", || st.ring(1).resets == 1);
    host_send(&peer, 3);
    wait_for("RX despite bad head", || g.rx.guest_read_ktoa().1 == 3);
    assert_eq!(st.ring(1).resets, 1);
    g.rx.guest_write_atok(3, 3);
    host_send(&peer, 1);
    wait_for("RX release", || g.rx.guest_read_ktoa() == (3, 4));
    assert_eq!(r.port.ring_state(netmap::RingKind::Rx, 0).unwrap().hwcur, 3);
}

#[test]
fn workers_are_named_and_stop_promptly() {
    let mut r = rig("valeW5:1");
    let _g = Guest::up(&mut r);
    let names = || -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
            .map(|s| s.trim().to_string())
            .collect()
    };
    for n in ["ptnet-tx0", "ptnet-rx0"] {
        wait_for(n, || names().iter().any(|x| x == n));
    }
    // Let both workers reach their sleeps, then stop.
    std::thread::sleep(Duration::from_millis(10));
    let t = Instant::now();
    r.nic.stop();
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    assert!(!r.nic.running());
    // CREATE again after DELETE works, and drop stops the workers.
    wr(&mut r.nic, PTCTL, CMD_CREATE);
    assert_eq!(rd(&mut r.nic, PTCTL), 0);
    let t = Instant::now();
    drop(r);
    assert!(t.elapsed() < Duration::from_millis(150));
}

#[test]
fn fuzz_csb_values_while_workers_run() {
    let mut r = rig("valeW6:1");
    let peer = open_vale(&r.dir, "valeW6:2", 1, 1, SLOTS);
    let g = Guest::up(&mut r);
    let st = r.nic.stats();
    let mut rng = super::nic_tests::Rng(0x0dd_ba11_5eed);
    for i in 0..4000u32 {
        let v = rng.next();
        let csb = if v & 1 == 0 { &g.tx } else { &g.rx };
        let pick = |x: u64| match x % 4 {
            0 => (x >> 8) as u32,
            1 => (x >> 8) as u32 % (SLOTS + 2),
            2 => u32::MAX - (x >> 8) as u32 % 2,
            _ => SLOTS,
        };
        match (v >> 1) % 4 {
            0 => csb.guest_write_atok(pick(v >> 3), pick(v >> 13)),
            1 => csb.set_appl_need_kick(v & 0x100 != 0),
            2 => {
                let _ = r.nic.doorbells()[(v >> 5) as usize % 2].1.write(1);
            }
            _ => {
                if i % 64 == 0 {
                    host_send(&peer, (v >> 9) as u32 % 8 + 1);
                    host_drain(&peer);
                }
            }
        }
        if i % 256 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    r.nic.stop();
    let (tx, rx) = (st.tx(), st.rx());
    assert!(tx.resets + rx.resets > 0, "{tx:?} {rx:?}");
    for k in [netmap::RingKind::Tx, netmap::RingKind::Rx] {
        let s = r.port.ring_state(k, 0).unwrap();
        assert!(s.hwcur < SLOTS && s.hwtail < SLOTS, "{s:?}");
    }
}

/// Lets the workers reach their sleeps (TX on the doorbell, RX in `rx_wait` with free slots:
/// neither asks for a kick then).
fn let_workers_sleep(r: &Rig, rx_sleeps: u64) {
    let st = r.nic.stats();
    wait_for("RX worker asleep", || st.rx().sleeps > rx_sleeps);
    std::thread::sleep(Duration::from_millis(5));
}

#[test]
fn delete_returns_the_rx_slots_released_last_so_a_new_create_sees_no_stale_frames() {
    let mut r = rig("valeW8:1");
    let peer = open_vale(&r.dir, "valeW8:2", 1, 1, SLOTS);
    let mut g = Guest::up(&mut r);
    host_send(&peer, 10);
    wait_for("RX hwtail", || g.rx.guest_read_ktoa().1 == 10);
    let_workers_sleep(&r, r.nic.stats().rx().sleeps);
    // The guest consumes all 10 and releases them; the worker sleeps in rx_wait with free
    // slots, so it asked for no kick and none is sent. Then at once: DELETE.
    assert!(!g.rx.guest_kern_need_kick());
    g.release_rx(&r);
    wr(&mut r.nic, PTCTL, CMD_DELETE);
    assert_eq!(rd(&mut r.nic, PTCTL), 0);
    let s = r.port.ring_state(netmap::RingKind::Rx, 0).unwrap();
    assert_eq!(
        (s.hwcur, s.hwtail),
        (10, 10),
        "the released slots went back to the port"
    );
    assert_eq!(g.rx.guest_read_ktoa(), (10, 10), "and the guest was told");
    // The next registration starts with an empty ring, then sees only new frames.
    wr(&mut r.nic, PTCTL, CMD_CREATE);
    assert_eq!(rd(&mut r.nic, PTCTL), 0);
    assert_eq!(
        g.rx.guest_read_ktoa(),
        (10, 10),
        "no stale frames after CREATE"
    );
    host_send(&peer, 3);
    wait_for("new frames only", || g.rx.guest_read_ktoa() == (10, 13));
}

#[test]
fn delete_forwards_tx_frames_published_last() {
    let mut r = rig("valeW9:1");
    let peer = open_vale(&r.dir, "valeW9:2", 1, 1, SLOTS);
    let mut g = Guest::up(&mut r);
    g.send(&r, 4);
    wait_for("TX hwcur", || g.tx.guest_read_ktoa().0 == 4);
    assert_eq!(host_drain(&peer), 4);
    let_workers_sleep(&r, 0);
    wait_for("TX worker asks for kicks", || g.tx.guest_kern_need_kick());
    // Publish 7 more without the kick (as if DELETE overtook it), then DELETE.
    g.queue(7);
    g.tx.guest_write_atok(g.tx_head, g.tx_head);
    wr(&mut r.nic, PTCTL, CMD_DELETE);
    assert_eq!(
        host_drain(&peer),
        7,
        "published frames leave before the workers stop"
    );
    assert_eq!(g.tx.guest_read_ktoa(), (11, 10));
    assert_eq!(r.nic.stats().tx().packets, 11);
}

#[test]
fn implicit_delete_and_stop_do_not_trust_the_csb() {
    let mut r = rig("valeWA:1");
    let peer = open_vale(&r.dir, "valeWA:2", 1, 1, SLOTS);
    let mut g = Guest::up(&mut r);
    host_send(&peer, 6);
    wait_for("RX hwtail", || g.rx.guest_read_ktoa().1 == 6);
    let_workers_sleep(&r, r.nic.stats().rx().sleeps);
    g.release_rx(&r);
    // A BAL write stops the workers (implicit DELETE): the CSB may be on its way out, so the
    // release written there is not acted upon.
    wr(&mut r.nic, CSB_GH_BAL, GH as u32);
    assert!(!r.nic.running());
    let s = r.port.ring_state(netmap::RingKind::Rx, 0).unwrap();
    assert_eq!(s.hwcur, 0, "{s:?}");
    // Same for a VMM stop (shutdown, reset).
    map_csb(&mut r.nic, GH, HG);
    wr(&mut r.nic, PTCTL, CMD_CREATE);
    assert_eq!(rd(&mut r.nic, PTCTL), 0);
    let _ = g.rx.guest_read_ktoa();
    let_workers_sleep(&r, r.nic.stats().rx().sleeps);
    g.rx.guest_write_atok(6, 6);
    r.nic.stop();
    assert_eq!(r.port.ring_state(netmap::RingKind::Rx, 0).unwrap().hwcur, 0);
}

/// A guest that keeps up never makes the switch drop: once its RX ring is half full the worker
/// asks for kicks, and a kick (through the `ptnet-rxkick` relay) gives the released slots back
/// to the switch at once — before, they went back only at the next arrival, so a sender that
/// found the ring full in between dropped frames the guest had room for.
#[test]
fn released_rx_slots_go_back_to_the_switch_on_the_kick_without_new_arrivals() {
    let mut r = rig("valeWB:1");
    let peer = open_vale(&r.dir, "valeWB:2", 1, 1, SLOTS);
    let mut g = Guest::up(&mut r);
    // More than half the ring arrives; the worker publishes it and goes to sleep.
    host_send(&peer, 40);
    wait_for("RX hwtail", || g.rx.guest_read_ktoa().1 == 40);
    let_workers_sleep(&r, r.nic.stats().rx().sleeps);
    wait_for("RX worker asks for kicks past half full", || {
        g.rx.guest_kern_need_kick()
    });
    // The guest consumes everything and releases it with a kick; nothing else arrives.
    g.release_rx(&r);
    wait_for("released slots back at the switch", || {
        r.port.ring_state(netmap::RingKind::Rx, 0).unwrap().hwcur == 40
    });
    assert!(r.nic.stats().rx().kicks >= 1);
    // So the switch has room for a whole ring's worth again: 63 more frames, none dropped.
    host_send(&peer, 63);
    wait_for("63 more arrive", || {
        g.rx.guest_read_ktoa().1 == (40 + 63) % SLOTS
    });
    assert_eq!(peer.stats().tx_pkts, 103);
    assert_eq!(
        r.nic.stats().rx().packets,
        103,
        "every frame reached the guest ring"
    );
}

#[test]
fn a_lossless_port_holds_guest_frames_until_the_receiver_frees_slots() {
    const TOTAL: u32 = SLOTS * 10;
    let dir = vale::fuzzing::TempDir::new("ptnet-ll");
    let vale = std::sync::Arc::new(open_vale_with(&dir, "valeWL:1", 1, 1, SLOTS, true));
    let mut r = rig_on(dir, vale, super::nic::NicOptions::default());
    let peer = open_vale(&r.dir, "valeWL:2", 1, 1, SLOTS);
    let mut g = Guest::up(&mut r);
    // Fill the peer's ring and more: the worker is held with the rest pending.
    g.send(&r, SLOTS - 1);
    wait_for("first frames", || {
        peer.stats().rx_pkts == (SLOTS - 1) as u64
    });
    g.send(&r, 20);
    let head = g.tx_head;
    wait_for("held", || {
        let (hwcur, hwtail) = g.tx.guest_read_ktoa();
        hwcur != head && hwtail == ring::prev(hwcur, SLOTS)
    });
    // Held, the worker sleeps in tx_wait instead of spinning on txsync.
    let before = r.nic.stats().tx().syncs;
    std::thread::sleep(Duration::from_millis(300));
    let syncs = r.nic.stats().tx().syncs - before;
    assert!(syncs < 100, "{syncs} syncs in 300 ms while held");
    // The receiver drains slowly; everything arrives, nothing is dropped.
    let mut sent = SLOTS - 1 + 20;
    let mut got = 0;
    let t = Instant::now();
    while got < TOTAL {
        assert!(t.elapsed() < Duration::from_secs(10), "stuck at {got}");
        let space = ring::distance(g.tx_head, g.tx.guest_read_ktoa().1, SLOTS);
        let k = space.min(TOTAL - sent);
        if k > 0 {
            g.send(&r, k);
            sent += k;
        }
        got += host_drain(&peer);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got, TOTAL);
    assert_eq!(peer.stats().rx_drops, 0);
    assert_eq!(peer.stats().rx_pkts, TOTAL as u64);
    assert_eq!(r.vale.stats().tx_pkts, TOTAL as u64);
    let head = g.tx_head;
    wait_for("all sent", || g.tx.guest_read_ktoa().0 == head);
    assert_eq!(r.nic.stats().tx().packets, TOTAL as u64);
}
