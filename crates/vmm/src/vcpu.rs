//! One thread per vCPU: `KVM_RUN`, then dispatch the exit to the PIO or MMIO bus. Exits
//! that end the VM become an [`ExitReason`]; nothing here knows a port number.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use devices::{Bus, ExitReason, ExitSignal};
use kvm_bindings::{KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{VcpuExit, VcpuFd};

use crate::hypervisor;
use crate::io_handlers::{Direction, HandlerTable};

/// What every vCPU thread shares.
#[derive(Clone)]
pub struct VcpuContext {
    pub pio: Bus,
    pub mmio: Bus,
    pub exit: Arc<ExitSignal>,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<ExitStats>,
    /// Caught before the PIO bus: doorbells and other register handlers.
    pub handlers: HandlerTable,
    /// Bumped to ask every vCPU for one NMI (SIGUSR1: a hung guest's backtrace).
    pub nmi_requests: Arc<AtomicU64>,
}

/// Exit counters, for tests and benchmarks.
#[derive(Default, Debug)]
pub struct ExitStats {
    pub pio: AtomicU64,
    pub mmio: AtomicU64,
    pub unhandled_pio: AtomicU64,
    /// PIO writes caught by the register-handler table.
    pub handled_pio: AtomicU64,
}

/// The KVM internal-error suberror for an instruction KVM could not emulate.
const KVM_INTERNAL_ERROR_EMULATION: u32 = 1;

/// Runs `vcpu` on a new thread named `vcpuN` until the VM stops, on host CPU `cpu` if given.
pub fn spawn(
    id: u8,
    vcpu: VcpuFd,
    ctx: VcpuContext,
    cpu: Option<usize>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("vcpu{id}"))
        .spawn(move || {
            if let Some(c) = cpu {
                match pin_to(c) {
                    Ok(()) => log::info!("vcpu{id}: pinned to host CPU {c}"),
                    Err(e) => log::warn!("vcpu{id}: cannot pin to host CPU {c}: {e}"),
                }
            }
            run_loop(id, vcpu, ctx)
        })
}

/// Binds the calling thread to host CPU `cpu`.
fn pin_to(cpu: usize) -> std::io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: an all-zero cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above), so CPU_SET stays inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: sched_setaffinity reads size_of::<cpu_set_t>() bytes from the valid `set`.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn run_loop(id: u8, mut vcpu: VcpuFd, ctx: VcpuContext) {
    let mut nmis_seen = ctx.nmi_requests.load(Ordering::Relaxed);
    while !ctx.stop.load(Ordering::Acquire) {
        let nmis = ctx.nmi_requests.load(Ordering::Relaxed);
        if nmis != nmis_seen {
            nmis_seen = nmis;
            match vcpu.nmi() {
                Ok(()) => log::warn!("vcpu{id}: NMI injected on request; {}", cpu_state(&vcpu)),
                Err(e) => log::warn!("vcpu{id}: KVM_NMI failed: {e}"),
            }
        }
        let result = match vcpu.run() {
            Ok(VcpuExit::InternalError) => {
                Some(ExitReason::Error(internal_error_text(id, &mut vcpu)))
            }
            Ok(exit) => {
                let triple_fault = matches!(exit, VcpuExit::Shutdown);
                match handle_exit(id, exit, &ctx) {
                    // Say where the vCPU was, to locate the fault.
                    Some(ExitReason::Error(m)) if triple_fault => {
                        Some(ExitReason::Error(format!("{m}; {}", cpu_state(&vcpu))))
                    }
                    r => r,
                }
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => None,
            Err(e) => Some(ExitReason::Error(format!("vcpu{id}: KVM_RUN failed: {e}"))),
        };
        if let Some(reason) = result {
            ctx.exit.request(reason);
            return;
        }
    }
}

/// The registers that locate a fatal fault: where the vCPU was, its mode and tables.
fn cpu_state(vcpu: &VcpuFd) -> String {
    let (regs, sregs) = match (vcpu.get_regs(), vcpu.get_sregs()) {
        (Ok(r), Ok(s)) => (r, s),
        (Err(e), _) | (_, Err(e)) => return format!("registers unavailable: {e}"),
    };
    format!(
        "rip {:#x} rsp {:#x} rflags {:#x} cs {:#x} cr0 {:#x} cr2 {:#x} cr3 {:#x} cr4 {:#x} \
         efer {:#x} idt {:#x}/{:#x} gdt {:#x}/{:#x}",
        regs.rip,
        regs.rsp,
        regs.rflags,
        sregs.cs.selector,
        sregs.cr0,
        sregs.cr2,
        sregs.cr3,
        sregs.cr4,
        sregs.efer,
        sregs.idt.base,
        sregs.idt.limit,
        sregs.gdt.base,
        sregs.gdt.limit
    )
}

fn internal_error_text(id: u8, vcpu: &mut VcpuFd) -> String {
    let run = vcpu.get_kvm_run();
    // SAFETY: after KVM_EXIT_INTERNAL_ERROR, `internal` is the union member KVM filled in.
    let (suberror, ndata, data) = unsafe {
        let i = &run.__bindgen_anon_1.internal;
        (i.suberror, i.ndata, i.data)
    };
    let detail: Vec<String> = data
        .iter()
        .take((ndata as usize).min(data.len()))
        .map(|d| format!("{d:#x}"))
        .collect();
    let what = if suberror == KVM_INTERNAL_ERROR_EMULATION {
        "emulation failure"
    } else {
        "internal error"
    };
    let mut text = format!(
        "vcpu{id}: KVM {what} (suberror {suberror}, data [{}])",
        detail.join(", ")
    );
    if suberror == KVM_INTERNAL_ERROR_EMULATION && hypervisor::is_software_kvm() {
        text.push_str("; ");
        text.push_str(hypervisor::SOFTWARE_KVM_HINT);
    }
    text
}

/// Handles one exit; `Some` ends the VM.
fn handle_exit(id: u8, exit: VcpuExit<'_>, ctx: &VcpuContext) -> Option<ExitReason> {
    match exit {
        VcpuExit::IoIn(port, data) => {
            port_in(id, port, data, ctx);
            None
        }
        VcpuExit::IoOut(port, data) => {
            port_out(id, port, data, ctx);
            None
        }
        VcpuExit::MmioRead(addr, data) => {
            mmio_read(id, addr, data, ctx);
            None
        }
        VcpuExit::MmioWrite(addr, data) => {
            mmio_write(id, addr, data, ctx);
            None
        }
        VcpuExit::Intr => None,
        other => Some(stop_reason(id, other)),
    }
}

/// A port read: the register-handler table first, then the PIO bus; an unclaimed port reads
/// as all ones.
fn port_in(id: u8, port: u16, data: &mut [u8], ctx: &VcpuContext) {
    ctx.stats.pio.fetch_add(1, Ordering::Relaxed);
    if ctx.handlers.dispatch(port, Direction::Read, data) {
        return;
    }
    if !ctx.pio.read(u64::from(port), data) {
        ctx.stats.unhandled_pio.fetch_add(1, Ordering::Relaxed);
        log::trace!("vcpu{id}: in from unclaimed port {port:#x}");
        data.fill(0xff);
    }
}

/// A port write: the register-handler table first (it matches on the written value, so it
/// gets a copy), then the PIO bus; a write to an unclaimed port is dropped.
fn port_out(id: u8, port: u16, data: &[u8], ctx: &VcpuContext) {
    ctx.stats.pio.fetch_add(1, Ordering::Relaxed);
    let mut value = [0u8; 8];
    let n = data.len().min(value.len());
    value[..n].copy_from_slice(&data[..n]);
    if ctx
        .handlers
        .dispatch(port, Direction::Write, &mut value[..n])
    {
        ctx.stats.handled_pio.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if !ctx.pio.write(u64::from(port), data) {
        ctx.stats.unhandled_pio.fetch_add(1, Ordering::Relaxed);
        log::trace!("vcpu{id}: out to unclaimed port {port:#x}");
    }
}

/// An MMIO read from the MMIO bus; an unclaimed address reads as all ones.
fn mmio_read(id: u8, addr: u64, data: &mut [u8], ctx: &VcpuContext) {
    ctx.stats.mmio.fetch_add(1, Ordering::Relaxed);
    if !ctx.mmio.read(addr, data) {
        log::debug!("vcpu{id}: read from unclaimed MMIO {addr:#x}");
        data.fill(0xff);
    }
}

/// An MMIO write to the MMIO bus; a write to an unclaimed address is dropped.
fn mmio_write(id: u8, addr: u64, data: &[u8], ctx: &VcpuContext) {
    ctx.stats.mmio.fetch_add(1, Ordering::Relaxed);
    if !ctx.mmio.write(addr, data) {
        log::debug!("vcpu{id}: write to unclaimed MMIO {addr:#x}");
    }
}

/// Why an exit that is not an access or an interrupt ends the VM: power-off, reset, or an error
/// that names the vCPU.
fn stop_reason(id: u8, exit: VcpuExit<'_>) -> ExitReason {
    match exit {
        VcpuExit::Shutdown => {
            ExitReason::Error(format!("vcpu{id}: triple fault (KVM_EXIT_SHUTDOWN)"))
        }
        VcpuExit::Hlt => ExitReason::Error(format!("vcpu{id}: halted with interrupts off")),
        VcpuExit::SystemEvent(kind, _) => match kind {
            KVM_SYSTEM_EVENT_SHUTDOWN => ExitReason::PowerOff,
            KVM_SYSTEM_EVENT_RESET => ExitReason::Reset,
            KVM_SYSTEM_EVENT_CRASH => ExitReason::Error(format!("vcpu{id}: guest crashed")),
            other => ExitReason::Error(format!("vcpu{id}: unknown system event {other}")),
        },
        VcpuExit::FailEntry(reason, cpu) => ExitReason::Error(format!(
            "vcpu{id}: KVM entry failed (hardware reason {reason:#x} on host cpu {cpu})"
        )),
        other => ExitReason::Error(format!("vcpu{id}: unhandled KVM exit {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use devices::BusDevice;

    use super::*;

    struct Fixed(u8);
    impl BusDevice for Fixed {
        fn read(&mut self, _o: u64, d: &mut [u8]) {
            d.fill(self.0);
        }
        fn write(&mut self, _o: u64, d: &[u8]) {
            self.0 = d[0];
        }
    }

    fn ctx() -> VcpuContext {
        let pio = Bus::new();
        pio.insert(Arc::new(Mutex::new(Fixed(7))), 0x80, 1).unwrap();
        VcpuContext {
            pio,
            mmio: Bus::new(),
            exit: Arc::new(ExitSignal::new().unwrap()),
            stop: Arc::new(AtomicBool::new(false)),
            stats: Arc::default(),
            handlers: HandlerTable::new(),
            nmi_requests: Arc::default(),
        }
    }

    #[test]
    fn pio_exits_go_through_the_bus() {
        let c = ctx();
        let mut b = [0u8; 1];
        assert!(handle_exit(0, VcpuExit::IoIn(0x80, &mut b), &c).is_none());
        assert_eq!(b[0], 7);
        assert!(handle_exit(0, VcpuExit::IoOut(0x80, &[9]), &c).is_none());
        assert!(handle_exit(0, VcpuExit::IoIn(0x80, &mut b), &c).is_none());
        assert_eq!(b[0], 9);
        let mut w = [0u8; 4];
        assert!(handle_exit(0, VcpuExit::IoIn(0x1234, &mut w), &c).is_none());
        assert_eq!(w, [0xff; 4], "unclaimed ports float high");
        assert_eq!(c.stats.unhandled_pio.load(Ordering::Relaxed), 1);
        let mut m = [0u8; 4];
        assert!(handle_exit(0, VcpuExit::MmioRead(0xd000_0000, &mut m), &c).is_none());
        assert_eq!(m, [0xff; 4]);
    }

    #[test]
    fn fatal_exits_become_reasons() {
        let c = ctx();
        match handle_exit(1, VcpuExit::Shutdown, &c) {
            Some(ExitReason::Error(m)) => {
                assert!(m.contains("triple fault") && m.starts_with("vcpu1"))
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(
            handle_exit(0, VcpuExit::SystemEvent(KVM_SYSTEM_EVENT_SHUTDOWN, &[]), &c),
            Some(ExitReason::PowerOff)
        );
        assert!(matches!(
            handle_exit(0, VcpuExit::Unknown, &c),
            Some(ExitReason::Error(m)) if m.contains("unhandled")
        ));
    }
}
