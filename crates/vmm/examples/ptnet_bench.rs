//! One side of the ptnet benchmark (scripts/bench-ptnet runs it beside host pkt-gen): a
//! tiny hand-assembled guest on the local /dev/kvm drives a ptnet NIC on a VALE port.
//!
//!   ptnet_bench tx PORT FRAMES DOORBELL MSI   guest TX loop in ring 3 (runs natively here)
//!   ptnet_bench rx PORT FRAMES DOORBELL MSI   guest RX in ring 0, sleeping on its MSI-X
//!
//! DOORBELL is `ioeventfd` or `exit`; MSI is `irqfd` or `signal`. Prints one line:
//! `RESULT dir=.. frames=.. guest_done=.. secs=.. mpps=.. kicks_per_1000=.. irqs_per_1000=..
//! exits_per_1000=..` (guest_done: frames the guest counted as sent or received)
//! The VALE switch directory comes from $PTVMM_SHM_DIR.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use common::{driver, rig};
use netmap::{NetmapPort, RegionConfig};
use vmm::io_handlers::Doorbells;
use vmm::msi::MsiMode;
use vmm::netdev::{NicSetup, PtnetHandle};
use vmm::{Exit, Machine, MachineConfig};

const SLOTS: u32 = 1024;
const BATCH: u32 = 256;

/// The command line: direction, port name, frame count and the two delivery modes.
struct Args {
    dir: String,
    port: String,
    frames: u32,
    doorbell_name: String,
    msi_name: String,
}

fn parse_args() -> Args {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: ptnet_bench tx|rx PORT FRAMES ioeventfd|exit irqfd|signal");
        std::process::exit(2);
    }
    Args {
        dir: args[1].clone(),
        port: args[2].clone(),
        frames: args[3].parse().expect("FRAMES"),
        doorbell_name: args[4].clone(),
        msi_name: args[5].clone(),
    }
}

/// Opens the benchmark's VALE port: SLOTS-slot rings, not lossless, no virtio-net header.
fn open_port(name: &str) -> Arc<dyn NetmapPort> {
    let port = vale::Port::open(
        name,
        &vale::PortOptions {
            config: RegionConfig {
                tx_slots: SLOTS,
                rx_slots: SLOTS,
                ..Default::default()
            },
            shm_dir: None,
            lossless: false,
            vnet_hdr_len: 0,
        },
    )
    .expect("open the VALE port");
    Arc::new(port)
}

/// A 64 MiB, 1-vCPU machine with a ptnet NIC on `port` in the given delivery modes.
fn machine_with_nic(
    port: &Arc<dyn NetmapPort>,
    mac: [u8; 6],
    args: &Args,
) -> (Machine, PtnetHandle) {
    let doorbells = if args.doorbell_name == "exit" {
        Doorbells::Exit
    } else {
        Doorbells::Ioeventfd
    };
    let msi = if args.msi_name == "signal" {
        MsiMode::SignalMsi
    } else {
        MsiMode::Irqfd
    };
    let mut m = Machine::new(MachineConfig {
        memory_bytes: 64 << 20,
        cpus: 1,
        console: Box::new(std::io::sink()),
        stdin: false,
    })
    .expect("a usable /dev/kvm");
    let nic = m
        .add_ptnet(
            port.clone(),
            NicSetup {
                mac,
                doorbells,
                msi,
                offloads: false,
                tx_spin: std::time::Duration::ZERO,
            },
        )
        .unwrap();
    (m, nic)
}

fn main() {
    let args = parse_args();
    let (dir, frames) = (args.dir.as_str(), args.frames);
    let port = open_port(&args.port);
    let layout = port.region().layout;
    let mac = [0x02, 0, 0, 0, 0, 0x01];
    let (m, nic) = machine_with_nic(&port, mac, &args);
    let info = rig::device_info(&nic, &layout);
    let code = if dir == "tx" {
        driver::tx_program(&info, frames, 60, BATCH, true)
    } else {
        driver::rx_program(&info, frames)
    };
    // pkt-gen's own frame (Ethernet/IPv4/UDP with checksums), so the receiver verifies it.
    let frame = pktgen::frame::build(
        &pktgen::frame::Endpoints {
            src_mac: mac,
            ..Default::default()
        },
        60,
    );
    rig::load_guest(&m, &code, &frame, dir == "tx");

    let exits = m.exit_stats();
    let stats = nic.stats.clone();
    let mem = m.memory().clone();
    let t0 = Instant::now();
    let exit = m.run().expect("run");
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(exit, Exit::DebugExit(1), "guest failed");
    // What the guest itself counted (frames sent, or frames received).
    let done: u64 = vm_memory::Bytes::read_obj(&mem, vm_memory::GuestAddress(driver::RESULT_PKTS))
        .expect("guest result");
    let s = if dir == "tx" { stats.tx() } else { stats.rx() };
    let per_k = |x: u64| 1000.0 * x as f64 / f64::from(frames);
    println!(
        "RESULT dir={dir} doorbell={} msi={} frames={frames} guest_done={done} secs={secs:.3} mpps={:.3} \
         kicks_per_1000={:.2} irqs_per_1000={:.2} exits_per_1000={:.2}",
        args.doorbell_name,
        args.msi_name,
        f64::from(frames) / secs / 1e6,
        per_k(s.kicks),
        per_k(s.interrupts),
        per_k(exits.handled_pio.load(Ordering::Relaxed))
    );
}
