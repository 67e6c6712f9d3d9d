//! MSI delivery and doorbells on the local /dev/kvm with a tiny hand-assembled guest: the
//! guest enables its LAPIC, installs an IDT handler that counts interrupts, and halts; the
//! host raises MSIs through KVM_SIGNAL_MSI and through an irqfd on an MSI route (keeping the
//! legacy routes), paced one at a time, and the guest must count every one. A second test
//! checks the register-handler table catches a doorbell write in both doorbell modes.
//!
//! Fails loudly when /dev/kvm is missing or unusable.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use devices::host::MsiSink;
use devices::pci::MsiMessage;
use iced_x86::code_asm::*;
use kvm_ioctls::{IoEventAddress, NoDatamatch};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm::io_handlers::{Direction, Entry, Handler};
use vmm::msi::{IrqfdMsiSink, SignalMsiSink};
use vmm::{Exit, Machine, MachineConfig};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

const CODE: u64 = 0x10_0000;
const HANDLER: u64 = 0x10_1000;
const IDT: u64 = 0x3000;
const IDTR: u64 = 0x2ff0;
const COUNTER: u64 = 0x2f00;
/// A PD mapping 3-4 GiB (LAPIC, IOAPIC) with 2 MiB uncached pages, hung off PDPT[3].
const HOLE_PD: u64 = 0xc000;
const PDPT: u64 = 0xa000;
const APIC: u64 = 0xfee0_0000;
const VECTOR: u8 = 0x40;
const DEBUG_EXIT: u16 = 0x501;

fn machine() -> Machine {
    assert!(
        std::path::Path::new("/dev/kvm").exists(),
        "/dev/kvm is missing: the local KVM test layer cannot run on this host"
    );
    Machine::new(MachineConfig {
        memory_bytes: 64 << 20,
        cpus: 1,
        console: Box::new(std::io::sink()),
        stdin: false,
    })
    .unwrap_or_else(|e| panic!("/dev/kvm is present but unusable: {e}"))
}

/// Writes the guest: IDT with a counting handler for VECTOR, LAPIC enabled, `hlt` until the
/// counter reaches `n`, then the counter's low byte to the debug-exit port.
fn load_msi_guest(m: &Machine, n: u32) {
    let mem = m.memory();
    // Map 3-4 GiB so the guest can reach the LAPIC's MMIO page.
    mem.write_obj(HOLE_PD | 0x3, GuestAddress(PDPT + 3 * 8))
        .unwrap();
    for i in 0..512u64 {
        let pa = 0xc000_0000 + (i << 21);
        mem.write_obj(pa | 0x83 | 0x10, GuestAddress(HOLE_PD + 8 * i))
            .unwrap(); // P RW PS PCD
    }
    // IDT gate for VECTOR -> HANDLER (interrupt gate, DPL 0, code selector 0x08).
    let gate_lo: u64 =
        (HANDLER & 0xffff) | (0x08 << 16) | (0x8e00u64 << 32) | ((HANDLER >> 16) & 0xffff) << 48;
    let gate_hi: u64 = HANDLER >> 32;
    let slot = IDT + 16 * u64::from(VECTOR);
    mem.write_obj(gate_lo, GuestAddress(slot)).unwrap();
    mem.write_obj(gate_hi, GuestAddress(slot + 8)).unwrap();
    mem.write_obj(0xfffu16, GuestAddress(IDTR)).unwrap();
    mem.write_obj(IDT, GuestAddress(IDTR + 2)).unwrap();
    mem.write_obj(0u64, GuestAddress(COUNTER)).unwrap();

    let mut h = CodeAssembler::new(64).unwrap();
    h.push(rax).unwrap();
    h.mov(rax, COUNTER).unwrap();
    h.lock().inc(qword_ptr(rax)).unwrap();
    h.mov(rax, APIC + 0xb0).unwrap(); // EOI
    h.mov(dword_ptr(rax), 0).unwrap();
    h.pop(rax).unwrap();
    h.iretq().unwrap();
    let handler = h.assemble(HANDLER).unwrap();
    mem.write_slice(&handler, GuestAddress(HANDLER)).unwrap();

    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(rax, IDTR).unwrap();
    a.lidt(ptr(rax)).unwrap();
    a.mov(rax, APIC + 0xf0).unwrap(); // spurious vector register: enable, vector 0xff
    a.mov(dword_ptr(rax), 0x1ffu32).unwrap();
    a.mov(rbx, COUNTER).unwrap();
    let mut wait = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut wait).unwrap();
    a.cmp(qword_ptr(rbx), n as i32).unwrap();
    a.jae(done).unwrap();
    a.sti().unwrap();
    a.hlt().unwrap();
    a.cli().unwrap();
    a.jmp(wait).unwrap();
    a.set_label(&mut done).unwrap();
    a.mov(rax, qword_ptr(rbx)).unwrap();
    a.mov(dx, u32::from(DEBUG_EXIT)).unwrap();
    a.out(dx, al).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(CODE).unwrap();
    mem.write_slice(&code, GuestAddress(CODE)).unwrap();
    m.set_boot_entry(GuestAddress(CODE), 0).unwrap();
}

/// Raises `n` MSIs through `sink`, each after the guest counted the previous one.
fn pace(mem: GuestMemoryMmap, sink: Arc<dyn MsiSink>, n: u32) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let msg = MsiMessage {
            addr: APIC,
            data: u32::from(VECTOR),
        };
        let count = |m: &GuestMemoryMmap| m.read_obj::<u64>(GuestAddress(COUNTER)).unwrap();
        // Wait until the guest is parked in its hlt loop with the LAPIC on.
        std::thread::sleep(Duration::from_millis(50));
        let mut sent = 0;
        for i in 0..u64::from(n) {
            sink.deliver(0, msg);
            sent += 1;
            let deadline = Instant::now() + Duration::from_secs(5);
            while count(&mem) <= i {
                if Instant::now() > deadline {
                    return sent;
                }
                std::thread::yield_now();
            }
        }
        sent
    })
}

fn run_msis(make_sink: impl FnOnce(&Machine) -> Arc<dyn MsiSink>) {
    const N: u32 = 200;
    let m = machine();
    load_msi_guest(&m, N);
    let sink = make_sink(&m);
    let pacer = pace(m.memory().clone(), sink, N);
    let exit = m.run().unwrap();
    let sent = pacer.join().unwrap();
    assert_eq!(sent, N);
    assert_eq!(exit, Exit::DebugExit(N as u8), "guest counted every MSI");
}

#[test]
fn msis_by_kvm_signal_msi_all_arrive() {
    run_msis(|m| Arc::new(SignalMsiSink::new(m.vm_fd().clone())));
}

#[test]
fn msis_by_irqfd_route_all_arrive_and_legacy_routes_stay() {
    run_msis(|m| {
        let sink = IrqfdMsiSink::new(m.vm_fd(), m.gsi_routing().clone(), 1).unwrap();
        let entries = m.gsi_routing().lock().unwrap().entries();
        assert!(entries.len() >= 40, "legacy PIC/IOAPIC routes are kept");
        Arc::new(sink)
    });
}

fn doorbell_guest(m: &Machine, port: u16, writes: u32) {
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(ecx, writes).unwrap();
    a.mov(dx, u32::from(port)).unwrap();
    let mut again = a.create_label();
    a.set_label(&mut again).unwrap();
    a.out(dx, eax).unwrap();
    a.dec(ecx).unwrap();
    a.jnz(again).unwrap();
    a.mov(dx, u32::from(DEBUG_EXIT)).unwrap();
    a.mov(al, 1u32).unwrap();
    a.out(dx, al).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(CODE).unwrap();
    m.memory().write_slice(&code, GuestAddress(CODE)).unwrap();
    m.set_boot_entry(GuestAddress(CODE), 0).unwrap();
}

#[test]
fn doorbells_reach_their_eventfd_by_exit_and_by_ioeventfd() {
    const WRITES: u32 = 100;
    const PORT: u16 = 0xc080;
    for ioeventfd in [false, true] {
        let m = machine();
        let evt = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        m.handlers().add(Entry {
            port: PORT,
            direction: Direction::Write,
            mask: 0,
            data: 0,
            handler: Handler::Event(evt.clone()),
            owner: 1,
        });
        if ioeventfd {
            m.vm_fd()
                .register_ioevent(&evt, &IoEventAddress::Pio(u64::from(PORT)), NoDatamatch)
                .unwrap();
        }
        doorbell_guest(&m, PORT, WRITES);
        let stats = m.exit_stats();
        assert_eq!(m.run().unwrap(), Exit::DebugExit(1));
        assert_eq!(
            evt.read().unwrap(),
            u64::from(WRITES),
            "every doorbell counted"
        );
        let caught = stats.handled_pio.load(Ordering::Relaxed);
        if ioeventfd {
            assert_eq!(caught, 0, "ioeventfd writes never leave the kernel");
        } else {
            assert_eq!(
                caught,
                u64::from(WRITES),
                "exits caught by the handler table"
            );
        }
    }
}
