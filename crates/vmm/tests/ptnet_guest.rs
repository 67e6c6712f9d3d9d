//! The ptnet NIC driven by a tiny hand-assembled guest on the local /dev/kvm, like a driver:
//! PCI bring-up through config mechanism #1, CSB, MSI-X, PTCTL=CREATE, then frames through
//! the netmap rings in the memdev's BAR1 (the VALE port's own memory) to and from a host
//! application on the same switch. Counts must match exactly; with kicks suppressed the
//! doorbell count per packet falls far below one.
//!
//! Fails loudly when /dev/kvm is missing or unusable.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::driver::{self, DeviceInfo};
use common::rig;
use netmap::region::RegionConfig;
use netmap::{ring, NetmapPort};
use vale::fuzzing::TempDir;
use vale::{Port, PortOptions};
use vm_memory::{Bytes, GuestAddress};
use vmm::io_handlers::Doorbells;
use vmm::msi::MsiMode;
use vmm::netdev::{NicSetup, PtnetHandle};
use vmm::{Exit, Machine, MachineConfig};

const SLOTS: u32 = 256;
const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// How long a tiny guest may run before the test fails (they take well under a second).
const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

fn open(dir: &TempDir, name: &str) -> Port {
    Port::open(
        name,
        &PortOptions {
            config: RegionConfig {
                tx_rings: 1,
                rx_rings: 1,
                tx_slots: SLOTS,
                rx_slots: SLOTS,
                buf_size: 2048,
            },
            shm_dir: Some(dir.0.clone()),
            lossless: false,
            vnet_hdr_len: 0,
        },
    )
    .expect("open VALE port")
}

struct Rig {
    machine: Machine,
    nic: PtnetHandle,
    info: DeviceInfo,
    _port: Arc<Port>,
}

fn rig(dir: &TempDir, name: &str, doorbells: Doorbells, msi: MsiMode) -> Rig {
    assert!(
        std::path::Path::new("/dev/kvm").exists(),
        "/dev/kvm is missing: the local KVM test layer cannot run on this host"
    );
    let mut machine = Machine::new(MachineConfig {
        memory_bytes: 64 << 20,
        cpus: 1,
        console: Box::new(std::io::sink()),
        stdin: false,
    })
    .unwrap_or_else(|e| panic!("/dev/kvm is present but unusable: {e}"));
    let port = Arc::new(open(dir, name));
    let dynport: Arc<dyn NetmapPort> = port.clone();
    let nic = machine
        .add_ptnet(
            dynport,
            NicSetup {
                mac: MAC,
                doorbells,
                msi,
                offloads: false,
                tx_spin: std::time::Duration::ZERO,
            },
        )
        .unwrap();
    let info = rig::device_info(&nic, &port.region().layout);
    Rig {
        machine,
        nic,
        info,
        _port: port,
    }
}

/// A broadcast Ethernet frame of 60 bytes from MAC.
fn frame() -> [u8; 60] {
    let mut f = [0u8; 60];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&MAC);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

/// A host application receiving on `p` until `want` frames arrived or were dropped by the
/// switch for lack of room (a slow receiver never blocks a sender), or 20 s passed;
/// returns (received, dropped).
fn host_receiver(p: Port, want: u64) -> JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let r = p.rx_ring(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = 0u64;
        while got + p.stats().rx_drops < want && Instant::now() < deadline {
            let s = p.rxsync_ring(0).unwrap();
            let n = ring::distance(r.head(), s.hwtail, r.num_slots());
            for k in 0..n {
                let slot = r.slot(ring::add(r.head(), k, r.num_slots()));
                assert_eq!(slot.len(), 60, "frame length");
            }
            got += u64::from(n);
            r.set_head(s.hwtail);
            r.set_cur(s.hwtail);
            if n == 0 {
                std::thread::yield_now();
            }
        }
        (got, p.stats().rx_drops)
    })
}

/// A host application sending `count` broadcast frames from `p`, as fast as the ring allows.
fn host_sender(p: Port, count: u32) -> JoinHandle<u32> {
    std::thread::spawn(move || {
        // Let the guest finish its bring-up before frames flood in.
        std::thread::sleep(Duration::from_millis(100));
        let r = p.tx_ring(0);
        let mut f = frame();
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
        let mut sent = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent < count && Instant::now() < deadline {
            let s = p.txsync_ring(0).unwrap();
            let space = ring::distance(r.head(), s.hwtail, r.num_slots());
            let n = space.min(count - sent).min(32);
            let mut head = r.head();
            for _ in 0..n {
                let slot = r.slot(head);
                let o = p.layout().buf_offset(slot.buf_idx()).unwrap();
                p.mem().write_bytes(o, &f);
                slot.set_len(60);
                slot.set_flags(0);
                head = ring::next(head, r.num_slots());
            }
            r.set_head(head);
            r.set_cur(head);
            p.txsync_ring(0).unwrap();
            sent += n;
            // Pace to what the tiny guest's (emulated) ring-0 loop can drain.
            std::thread::sleep(Duration::from_millis(2));
        }
        sent
    })
}

fn run_tx(name: &str, doorbells: Doorbells, count: u32, user: bool) -> (u64, u64) {
    let dir = TempDir::new("ptnet-tx");
    let peer = open(&dir, &format!("{name}:2"));
    let rig = rig(&dir, &format!("{name}:1"), doorbells, MsiMode::Irqfd);
    let code = driver::tx_program(&rig.info, count, 60, 64, user);
    rig::load_guest(&rig.machine, &code, &frame(), user);
    let rx = host_receiver(peer, u64::from(count));
    let mem = rig.machine.memory().clone();
    let stats = rig.machine.exit_stats();
    let exit = rig::run_bounded(rig.machine, LIMIT).unwrap();
    let (got, dropped) = rx.join().unwrap();
    assert_eq!(exit, Exit::DebugExit(1));
    assert_eq!(
        mem.read_obj::<u64>(GuestAddress(driver::RESULT_PTCTL))
            .unwrap(),
        0,
        "PTCTL CREATE ok"
    );
    assert_eq!(
        mem.read_obj::<u64>(GuestAddress(driver::RESULT_PKTS))
            .unwrap(),
        u64::from(count)
    );
    assert_eq!(
        rig._port.stats().tx_pkts,
        u64::from(count),
        "the NIC forwarded every frame"
    );
    if user {
        // Ring 3 runs natively and outpaces a receiver sharing two cores with the vCPU and
        // the TX worker: the switch drops what does not fit, and counts it.
        assert_eq!(got + dropped, u64::from(count), "received + dropped = sent");
        assert!(got > 0);
    } else {
        assert_eq!(
            got,
            u64::from(count),
            "every guest frame reached the host receiver"
        );
    }
    let tx = rig.nic.stats.tx();
    eprintln!(
        "{doorbells:?}: {count} frames, {got} received, {dropped} dropped at the receiver, \
         guest kicks {} (worker saw {}), handled PIO exits {}",
        tx.kicks,
        tx.kicks,
        stats.handled_pio.load(Ordering::Relaxed)
    );
    (tx.kicks, stats.handled_pio.load(Ordering::Relaxed))
}

#[test]
fn guest_tx_reaches_host_receiver_with_exact_counts_ioeventfd() {
    let (kicks, exits) = run_tx("valegt1", Doorbells::Ioeventfd, 2000, false);
    assert_eq!(exits, 0, "ioeventfd doorbells never exit to user space");
    assert!(
        kicks < 1000,
        "kick suppression: {kicks} kicks for 2000 frames"
    );
}

#[test]
fn guest_tx_with_doorbell_exits_caught_by_the_handler_table() {
    let (kicks, exits) = run_tx("valegt2", Doorbells::Exit, 2000, false);
    assert!(exits >= 1, "the first doorbell must exit");
    assert!(
        exits < 1000,
        "kick suppression: {exits} doorbell exits for 2000 frames"
    );
    assert!(kicks >= exits.min(1));
}

#[test]
fn guest_tx_from_ring3_with_iopl() {
    let (kicks, _) = run_tx("valegt3", Doorbells::Ioeventfd, 20_000, true);
    assert!(
        kicks < 2000,
        "kick suppression: {kicks} kicks for 20000 frames"
    );
}

fn run_rx(name: &str, msi: MsiMode, count: u32) {
    let dir = TempDir::new("ptnet-rx");
    let peer = open(&dir, &format!("{name}:2"));
    let rig = rig(&dir, &format!("{name}:1"), Doorbells::Ioeventfd, msi);
    let code = driver::rx_program(&rig.info, count);
    rig::load_guest(&rig.machine, &code, &frame(), false);
    let tx = host_sender(peer, count);
    let mem = rig.machine.memory().clone();
    let exit = rig::run_bounded(rig.machine, LIMIT).unwrap();
    assert_eq!(tx.join().unwrap(), count);
    assert_eq!(exit, Exit::DebugExit(1));
    let pkts = mem
        .read_obj::<u64>(GuestAddress(driver::RESULT_PKTS))
        .unwrap();
    let msis = mem
        .read_obj::<u64>(GuestAddress(driver::RESULT_MSIS))
        .unwrap();
    let rx = rig.nic.stats.rx();
    eprintln!(
        "{msi:?}: {count} frames in, guest counted {pkts}, {msis} MSIs (worker raised {})",
        rx.interrupts
    );
    assert_eq!(
        pkts,
        u64::from(count),
        "guest received every frame exactly once"
    );
    assert!(
        msis >= 1,
        "the guest slept and was woken by its MSI-X vector"
    );
    assert!(msis <= rx.interrupts, "no interrupt out of nowhere");
}

#[test]
fn guest_rx_with_msix_by_irqfd() {
    run_rx("valegr1", MsiMode::Irqfd, 1000);
}

#[test]
fn guest_rx_with_msix_by_signal_msi() {
    run_rx("valegr2", MsiMode::SignalMsi, 1000);
}

#[test]
fn stopping_the_vm_releases_the_port_and_its_file() {
    let dir = TempDir::new("ptnet-release");
    let rig = rig(&dir, "valerel:1", Doorbells::Ioeventfd, MsiMode::Irqfd);
    let Rig {
        machine,
        nic,
        _port: port,
        ..
    } = rig;
    drop(port);
    let mut a = iced_x86::code_asm::CodeAssembler::new(64).unwrap();
    a.mov(iced_x86::code_asm::dx, u32::from(driver::DEBUG_EXIT))
        .unwrap();
    a.mov(iced_x86::code_asm::al, 3u32).unwrap();
    a.out(iced_x86::code_asm::dx, iced_x86::code_asm::al)
        .unwrap();
    let code = a.assemble(driver::CODE).unwrap();
    machine
        .memory()
        .write_slice(&code, GuestAddress(driver::CODE))
        .unwrap();
    machine
        .set_boot_entry(GuestAddress(driver::CODE), 0)
        .unwrap();
    assert_eq!(
        rig::run_bounded(machine, LIMIT).unwrap(),
        Exit::DebugExit(3)
    );
    drop(nic);
    let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
    assert!(left.is_empty(), "switch files left behind: {left:?}");
}
