//! Fast KVM tests on the local /dev/kvm: a tiny hand-assembled 64-bit guest drives the
//! serial port and the debug-exit port through the real Machine (KVM, buses, vCPU thread).
//!
//! These need a usable /dev/kvm. They fail, loudly, when it is missing or broken: a test
//! run that silently skipped them would claim a VMM it never ran.

use std::io::Write;
use std::sync::{Arc, Mutex};

use iced_x86::code_asm::*;
use vm_memory::{Bytes, GuestAddress};
use vmm::{Exit, Machine, MachineConfig};

const CODE_ADDR: u64 = 0x10_0000;
const COM1: u16 = 0x3f8;
const DEBUG_EXIT: u16 = 0x501;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn require_kvm() {
    assert!(
        std::path::Path::new("/dev/kvm").exists(),
        "/dev/kvm is missing: the local KVM test layer cannot run on this host \
         (load kvm_intel/kvm_amd, or run on a host with KVM)"
    );
}

fn machine(cpus: u8) -> (Machine, Capture) {
    require_kvm();
    let out = Capture::default();
    let m = Machine::new(MachineConfig {
        memory_bytes: 64 << 20,
        cpus,
        console: Box::new(out.clone()),
        stdin: false,
    })
    .unwrap_or_else(|e| panic!("/dev/kvm is present but unusable: {e}"));
    (m, out)
}

fn load(m: &Machine, code: CodeAssembler) {
    let mut code = code;
    let bytes = code.assemble(CODE_ADDR).expect("assemble");
    m.memory()
        .write_slice(&bytes, GuestAddress(CODE_ADDR))
        .unwrap();
    m.set_boot_entry(GuestAddress(CODE_ADDR), 0).unwrap();
}

fn print(a: &mut CodeAssembler, text: &[u8]) -> Result<(), IcedError> {
    a.mov(dx, u32::from(COM1))?;
    for &b in text {
        a.mov(al, u32::from(b))?;
        a.out(dx, al)?;
    }
    Ok(())
}

#[test]
fn tiny_guest_prints_and_exits_with_its_status() {
    let (m, out) = machine(1);
    let mut a = CodeAssembler::new(64).unwrap();
    print(&mut a, b"hello from a tiny guest\n").unwrap();
    a.mov(dx, u32::from(DEBUG_EXIT)).unwrap();
    a.mov(al, 42u32).unwrap();
    a.out(dx, al).unwrap();
    let mut spin = a.create_label();
    a.set_label(&mut spin).unwrap();
    a.jmp(spin).unwrap();
    load(&m, a);
    let stats = m.exit_stats();
    let exit = m.run().unwrap();
    assert_eq!(exit, Exit::DebugExit(42));
    assert_eq!(
        String::from_utf8_lossy(&out.0.lock().unwrap()),
        "hello from a tiny guest\n"
    );
    assert!(stats.pio.load(std::sync::atomic::Ordering::Relaxed) >= 25);
}

#[test]
fn unclaimed_ports_read_all_ones() {
    let (m, out) = machine(1);
    let mut a = CodeAssembler::new(64).unwrap();
    // in al, 0x1234 -> 0xff; write it to COM1 so the host can see it, then exit with it.
    a.mov(dx, 0x1234u32).unwrap();
    a.in_(al, dx).unwrap();
    a.mov(bl, al).unwrap();
    a.mov(dx, u32::from(COM1)).unwrap();
    a.out(dx, al).unwrap();
    a.mov(al, bl).unwrap();
    a.mov(dx, u32::from(DEBUG_EXIT)).unwrap();
    a.out(dx, al).unwrap();
    a.hlt().unwrap();
    load(&m, a);
    assert_eq!(m.run().unwrap(), Exit::DebugExit(0xff));
    assert_eq!(*out.0.lock().unwrap(), vec![0xff]);
}

#[test]
fn acpi_power_off_port_ends_the_vm_cleanly() {
    let (m, _) = machine(2);
    let mut a = CodeAssembler::new(64).unwrap();
    // SLP_TYP = 5, SLP_EN: what Linux writes to the FADT's sleep control register.
    a.mov(dx, 0x600u32).unwrap();
    a.mov(al, (5u32 << 2) | (1 << 5)).unwrap();
    a.out(dx, al).unwrap();
    a.hlt().unwrap();
    load(&m, a);
    assert_eq!(m.run().unwrap(), Exit::PowerOff);
}

#[test]
fn triple_fault_is_reported_as_an_error() {
    let (m, _) = machine(1);
    let mut a = CodeAssembler::new(64).unwrap();
    // Load an empty IDT and raise an exception: #UD -> #DF -> triple fault.
    a.ud2().unwrap();
    load(&m, a);
    match m.run().unwrap() {
        Exit::Error(msg) => {
            assert!(
                msg.contains("triple fault")
                    || msg.contains("internal error")
                    || msg.contains("emulation"),
                "{msg}"
            );
            // A triple fault says where the vCPU was, to locate the fault.
            if msg.contains("triple fault") {
                assert!(msg.contains(" rip 0x") && msg.contains(" idt 0x"), "{msg}");
            }
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A PCI function with one 16-byte I/O BAR that stores what is written to it.
struct ScratchFunction {
    config: devices::pci::ConfigSpace,
    regs: [u8; 16],
}

impl devices::pci::PciDevice for ScratchFunction {
    fn config_read(&mut self, reg: usize) -> u32 {
        self.config.read_reg(reg)
    }
    fn config_write(&mut self, reg: usize, o: u64, d: &[u8]) -> Vec<devices::pci::BarChange> {
        self.config.write_config(reg, o, d)
    }
    fn bar_read(&mut self, _bar: u8, o: u64, d: &mut [u8]) {
        if let Some(r) = self.regs.get(o as usize..o as usize + d.len()) {
            d.copy_from_slice(r);
        }
    }
    fn bar_write(&mut self, _bar: u8, o: u64, d: &[u8]) {
        if let Some(r) = self.regs.get_mut(o as usize..o as usize + d.len()) {
            r.copy_from_slice(d);
        }
    }
}

/// Writes the 4 bytes of EAX to COM1 (clobbers EBX, DX).
fn print_eax(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(ebx, eax)?;
    a.mov(dx, u32::from(COM1))?;
    for _ in 0..4 {
        a.mov(al, bl)?;
        a.out(dx, al)?;
        a.shr(ebx, 8)?;
    }
    Ok(())
}

/// Selects config register `reg` (a dword index) of device `dev` on bus 0 through port 0xcf8
/// (config mechanism #1); leaves dx at the data port 0xcfc.
fn select_config(a: &mut CodeAssembler, dev: u32, reg: u32) -> Result<(), IcedError> {
    a.mov(dx, 0xcf8u32)?;
    a.mov(eax, 0x8000_0000u32 | dev << 11 | reg << 2)?;
    a.out(dx, eax)?;
    a.mov(dx, 0xcfcu32)
}

/// Turns on I/O decode in the command register of device `dev` on bus 0 (a word write).
fn enable_io_decode(a: &mut CodeAssembler, dev: u32) -> Result<(), IcedError> {
    select_config(a, dev, 1)?;
    a.mov(ax, 1u32)?;
    a.out(dx, ax)
}

/// Ends the guest with `status` through the debug-exit port.
fn exit_with(a: &mut CodeAssembler, status: u32) -> Result<(), IcedError> {
    a.mov(dx, u32::from(DEBUG_EXIT))?;
    a.mov(al, status)?;
    a.out(dx, al)?;
    a.hlt()
}

#[test]
fn guest_reads_the_host_bridge_and_moves_a_bar_through_config_mechanism_1() {
    use devices::pci::{BarKind, ConfigSpace, PciIds};

    let (m, out) = machine(1);
    let mut config = ConfigSpace::new(PciIds {
        vendor: 0x1b36,
        device: 0x000c,
        ..Default::default()
    });
    config.add_bar(0, BarKind::Io, 16).unwrap();
    let f = ScratchFunction {
        config,
        regs: [0; 16],
    };
    assert_eq!(m.add_pci_device(Arc::new(Mutex::new(f))).unwrap(), 1);

    let mut a = CodeAssembler::new(64).unwrap();
    // Vendor/device of 00:00.0, then of 00:01.0.
    select_config(&mut a, 0, 0).unwrap();
    a.in_(eax, dx).unwrap();
    print_eax(&mut a).unwrap();
    select_config(&mut a, 1, 0).unwrap();
    a.in_(eax, dx).unwrap();
    print_eax(&mut a).unwrap();
    // BAR0 of 00:01.0 at port 0xc000, I/O decode on (a word write at 0xcfc).
    select_config(&mut a, 1, 4).unwrap();
    a.mov(eax, 0xc000u32).unwrap();
    a.out(dx, eax).unwrap();
    enable_io_decode(&mut a, 1).unwrap();
    // Store and load through the BAR.
    a.mov(dx, 0xc005u32).unwrap();
    a.mov(eax, 0xcafe_f00du32).unwrap();
    a.out(dx, eax).unwrap();
    a.xor(eax, eax).unwrap();
    a.in_(eax, dx).unwrap();
    print_eax(&mut a).unwrap();
    exit_with(&mut a, 0).unwrap();
    load(&m, a);
    assert_eq!(m.run().unwrap(), Exit::DebugExit(0));
    let got = out.0.lock().unwrap().clone();
    let words: Vec<u32> = got
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(words, vec![0x0d57_8086, 0x000c_1b36, 0xcafe_f00d]);
}

/// A device type the VMM knows nothing of: one I/O BAR whose offset 8 is a doorbell it
/// declares as a host resource, and nothing else.
struct BellFunction {
    config: devices::pci::ConfigSpace,
    bell: Arc<vmm_sys_util::eventfd::EventFd>,
}

impl devices::pci::PciDevice for BellFunction {
    fn config_read(&mut self, reg: usize) -> u32 {
        self.config.read_reg(reg)
    }
    fn config_write(&mut self, reg: usize, o: u64, d: &[u8]) -> Vec<devices::pci::BarChange> {
        self.config.write_config(reg, o, d)
    }
    fn host_resources(&self) -> Vec<devices::pci::HostResource> {
        vec![devices::pci::HostResource::Doorbell {
            bar: 0,
            offset: 8,
            event: self.bell.clone(),
        }]
    }
}

#[test]
fn a_new_device_types_doorbell_follows_its_bar_in_both_doorbell_modes() {
    use devices::pci::{BarKind, ConfigSpace, PciIds};
    use vmm::io_handlers::Doorbells;
    use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

    for mode in [Doorbells::Ioeventfd, Doorbells::Exit] {
        let (m, _out) = machine(1);
        let mut config = ConfigSpace::new(PciIds {
            vendor: 0x1b36,
            device: 0x00ff,
            ..Default::default()
        });
        config.add_bar(0, BarKind::Io, 16).unwrap();
        let bell = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let f = BellFunction {
            config,
            bell: bell.clone(),
        };
        assert_eq!(
            m.add_pci_function(Arc::new(Mutex::new(f)), mode).unwrap(),
            1
        );
        let mut a = CodeAssembler::new(64).unwrap();
        let set_bar0 = |a: &mut CodeAssembler, port: u32| -> Result<(), IcedError> {
            select_config(a, 1, 4)?;
            a.mov(eax, port)?;
            a.out(dx, eax)
        };
        let ring = |a: &mut CodeAssembler, port: u32| -> Result<(), IcedError> {
            a.mov(dx, port)?;
            a.mov(eax, 0x1234u32)?;
            a.out(dx, eax)
        };
        // BAR0 at 0xc000, I/O decode on, one kick; move BAR0 to 0xd000: a write at the old
        // doorbell rings nothing, two at the new one ring twice.
        set_bar0(&mut a, 0xc000).unwrap();
        enable_io_decode(&mut a, 1).unwrap();
        ring(&mut a, 0xc008).unwrap();
        set_bar0(&mut a, 0xd000).unwrap();
        ring(&mut a, 0xc008).unwrap();
        ring(&mut a, 0xd008).unwrap();
        ring(&mut a, 0xd008).unwrap();
        exit_with(&mut a, 0).unwrap();
        load(&m, a);
        let handlers = m.handlers().clone();
        assert_eq!(m.run().unwrap(), Exit::DebugExit(0));
        assert_eq!(
            bell.read().unwrap(),
            3,
            "{mode:?}: 1 kick at 0xc008, 2 at 0xd008"
        );
        assert_eq!(
            handlers.len(),
            1,
            "{mode:?}: one entry, at the BAR's new address"
        );
    }
}
