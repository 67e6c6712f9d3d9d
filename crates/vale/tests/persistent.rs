//! In-process tests of persistent ports (`ptvmm-vale-ctl create`/`remove`): they outlive
//! their openers, an opener attaches to them by name, and removal refuses a port in use.
//! Each test uses its own directory and switch.

use netmap::RegionConfig;
use vale::admin;
use vale::fuzzing::TempDir;
use vale::{Port, ValeError};

mod common;
use common::{files, mac, opts, tags, BCAST};

/// Queues `count` numbered broadcast frames of 60 bytes on `p`'s ring 0 and txsyncs.
fn send(p: &Port, count: u32) {
    common::send(p, BCAST, mac(1), 60, count);
}

/// Receives everything pending on ring 0; returns the frames' sequence numbers.
fn recv(p: &Port) -> Vec<u32> {
    tags(&common::recv(p))
}

/// The listing of port `name` of switch `sw`.
fn listed(dir: &TempDir, sw: &str, name: &str) -> Option<admin::PortListing> {
    admin::list_switch(Some(&dir.0), sw)
        .ok()?
        .ports
        .into_iter()
        .find(|p| p.info.name == name)
}

#[test]
fn a_persistent_port_outlives_its_openers_until_removed() {
    let d = TempDir::new("t-pers");
    let dir = Some(d.0.as_path());
    let e = admin::create(dir, "valepa:keep", RegionConfig::default()).unwrap();
    assert!(e.persistent() && e.idle(), "{e:?}");
    assert_eq!(e.owner, 0);
    assert_eq!(files(&d).len(), 2, "the switch and the port file");
    let l = listed(&d, "pa", "keep").unwrap();
    assert!(!l.alive && l.info.idle());

    for round in 0..3 {
        let p = Port::open("valepa:keep", &opts(&d)).unwrap();
        assert!(p.persistent());
        assert_eq!(p.index(), e.idx, "round {round}: the same entry");
        let l = listed(&d, "pa", "keep").unwrap();
        assert_eq!(l.info.owner, std::process::id());
        assert_eq!(l.info.gen, e.gen, "the same port, not a new one");
        assert!(l.alive && !l.info.idle());
        match Port::open("valepa:keep", &opts(&d)) {
            Err(ValeError::PortBusy { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("a second opener must be refused: {other:?}"),
        }
        match admin::remove(dir, "valepa:keep") {
            Err(ValeError::PortInUse { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("removing a port in use must fail: {other:?}"),
        }
        drop(p);
        let l = listed(&d, "pa", "keep").expect("still there after its opener closed");
        assert!(l.info.idle(), "{:?}", l.info);
        assert_eq!(files(&d).len(), 2);
    }
    admin::remove(dir, "valepa:keep").unwrap();
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn frames_queue_while_idle_and_the_next_opener_gets_them() {
    let d = TempDir::new("t-pers-q");
    admin::create(Some(&d.0), "valepq:p", RegionConfig::default()).unwrap();
    let a = Port::open("valepq:a", &opts(&d)).unwrap();
    {
        let p = Port::open("valepq:p", &opts(&d)).unwrap();
        send(&a, 3);
        assert_eq!(recv(&p), vec![0, 1, 2]);
        // Two more arrive, and the opener leaves without receiving them.
        send(&a, 2);
    }
    send(&a, 1);
    let p = Port::open("valepq:p", &opts(&d)).unwrap();
    assert_eq!(recv(&p), vec![0, 1, 0], "what waited in the ring, in order");
    send(&a, 4);
    assert_eq!(recv(&p), vec![0, 1, 2, 3]);
    let st = p.stats();
    assert_eq!(st.rx_pkts, 10, "counters span openers");
    assert_eq!(st.rx_drops, 0);
}

#[test]
fn persistent_port_errors_say_what_is_wrong() {
    let d = TempDir::new("t-pers-err");
    let dir = Some(d.0.as_path());
    assert!(matches!(
        admin::remove(dir, "valepe:x"),
        Err(ValeError::NoSwitch(_))
    ));
    assert!(matches!(
        admin::create(dir, "vale:x", RegionConfig::default()),
        Err(ValeError::BadName(_))
    ));
    let eph = Port::open("valepe:eph", &opts(&d)).unwrap();
    match admin::remove(dir, "valepe:eph") {
        Err(e @ ValeError::NotPersistent { .. }) => {
            assert!(e.to_string().contains("not persistent"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        admin::create(dir, "valepe:eph", RegionConfig::default()),
        Err(ValeError::PortBusy { .. })
    ));
    assert!(matches!(
        admin::remove(dir, "valepe:nosuch"),
        Err(ValeError::NoPort(_))
    ));
    admin::create(dir, "valepe:p", RegionConfig::default()).unwrap();
    assert!(matches!(
        admin::create(dir, "valepe:p", RegionConfig::default()),
        Err(ValeError::PortExists(_))
    ));
    let mut other = opts(&d);
    other.config.rx_slots = 256;
    match Port::open("valepe:p", &other) {
        Err(e @ ValeError::ConfigMismatch { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("1x1024/1x1024") && m.contains("1x1024/1x256"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    drop(eph);
    // The switch stays for its persistent port, and delete will not drop it unasked.
    assert!(matches!(
        admin::delete(dir, "pe", false),
        Err(ValeError::HasPersistent { .. })
    ));
    admin::delete(dir, "pe", true).unwrap();
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn ring_occupancy_counts_what_the_receiver_has_not_released() {
    let d = TempDir::new("t-pers-occ");
    let a = Port::open("valepo:a", &opts(&d)).unwrap();
    let b = Port::open("valepo:b", &opts(&d)).unwrap();
    let info = |n: &str| listed(&d, "po", n).unwrap().info;
    let occ = |n: &str| admin::port_rings(Some(&d.0), "po", &info(n)).unwrap();
    assert_eq!(
        occ("b").rx_total(),
        admin::RingFill {
            used: 0,
            slots: 1024
        }
    );
    send(&a, 5);
    assert_eq!(occ("b").rx_total().used, 5);
    assert_eq!(occ("a").tx_total().used, 0, "everything left");
    recv(&b);
    assert_eq!(occ("b").rx_total().used, 0);
}
