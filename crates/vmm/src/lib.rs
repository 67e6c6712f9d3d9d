//! ptvmm's virtual machine: KVM VM and vCPUs, guest memory, x86_64 Linux boot, the PIO and
//! MMIO buses and their devices, and the lifecycle (run, stop on poweroff/reset/signal).

pub mod acpi;
pub mod boot;
pub mod boot_cpu;
pub mod config;
pub mod console;
pub mod cpuid;
pub mod error;
pub mod guest_ram;
pub mod hypervisor;
pub mod io_handlers;
pub mod layout;
pub mod memory;
pub mod msi;
pub mod netdev;
pub mod pci_host;
pub mod signals;
pub mod vcpu;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use devices::pci::{BarRouter, HostBridge, PciConfigIo, PciRoot, SharedPciDevice};
use devices::serial::Serial;
use devices::{acpi_pm, i8042, Bus, BusDevice, ExitReason, ExitSignal};
use kvm_bindings::{
    kvm_pit_config, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::signal::Killable;

pub use config::VmConfig;
pub use devices::ExitReason as Exit;
pub use error::{Error, Result};
use layout::{gsi, ports};

/// How long a stopping VM waits for its vCPU threads before giving up on them.
const VCPU_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// What a [`Machine`] is built from.
pub struct MachineConfig {
    pub memory_bytes: u64,
    pub cpus: u8,
    /// Where the guest's serial output goes.
    pub console: Box<dyn Write + Send>,
    /// Forward this process's stdin to the guest's serial port.
    pub stdin: bool,
}

/// A configured VM, ready to load a guest and run.
pub struct Machine {
    _kvm: Kvm,
    vm: Arc<VmFd>,
    mem: GuestMemoryMmap,
    vcpus: Vec<VcpuFd>,
    pio: Bus,
    mmio: Bus,
    pci: Arc<Mutex<PciConfigIo>>,
    exit: Arc<ExitSignal>,
    serial: Arc<Mutex<Serial>>,
    stdin: bool,
    stats: Arc<vcpu::ExitStats>,
    handlers: io_handlers::HandlerTable,
    routing: Arc<Mutex<msi::GsiRouting>>,
    /// Doorbells and memory slots of PCI functions, moved with their BARs.
    pci_host: Arc<Mutex<pci_host::PciHost>>,
    /// ptnet NICs, stopped (workers joined) when the VM stops.
    nics: Vec<Arc<Mutex<devices::ptnet::PtnetNic>>>,
    /// Host CPUs of the vCPU threads (vCPU i on `vcpu_cpus[i % len]`); empty: unpinned.
    vcpu_cpus: Vec<usize>,
}

fn shared<T: BusDevice + 'static>(d: T) -> Arc<Mutex<dyn BusDevice>> {
    Arc::new(Mutex::new(d))
}

impl Machine {
    /// A VM with its memory, legacy devices, PCI bus 0 and vCPUs, ready to load a guest.
    pub fn new(cfg: MachineConfig) -> Result<Self> {
        let kvm = hypervisor::open_kvm()?;
        let vm = create_vm(&kvm)?;
        let mem = create_memory(&vm, cfg.memory_bytes, cfg.cpus)?;
        let exit = Arc::new(ExitSignal::new().map_err(Error::io("exit eventfd"))?);
        let (pio, serial) = legacy_devices(&vm, &exit, cfg.console)?;
        let vcpus = create_vcpus(&kvm, &vm, cfg.cpus)?;
        let vm = Arc::new(vm);
        let mmio = Bus::new();
        let handlers = io_handlers::HandlerTable::new();
        let pci_host = Arc::new(Mutex::new(pci_host::PciHost::new(
            vm.clone(),
            handlers.clone(),
            layout::FIRST_DEVICE_MEM_SLOT,
        )));
        let pci = pci_bus(&pio, &mmio, pci_host.clone())?;
        pio.insert(pci.clone(), ports::PCI_CONFIG, ports::PCI_CONFIG_LEN)
            .map_err(|e| Error::Config(format!("device layout: {e}")))?;
        let routing = Arc::new(Mutex::new(msi::GsiRouting::new(vm.clone())));
        Ok(Self {
            _kvm: kvm,
            vm,
            mem,
            vcpus,
            pio,
            mmio,
            pci,
            exit,
            serial,
            stdin: cfg.stdin,
            stats: Arc::default(),
            handlers,
            routing,
            pci_host,
            nics: Vec::new(),
            vcpu_cpus: Vec::new(),
        })
    }

    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    pub fn vm_fd(&self) -> &Arc<VmFd> {
        &self.vm
    }

    /// The register-handler table consulted before the PIO bus.
    pub fn handlers(&self) -> &io_handlers::HandlerTable {
        &self.handlers
    }

    /// KVM's GSI routing table (legacy routes plus the MSI routes of irqfd sinks).
    pub fn gsi_routing(&self) -> &Arc<Mutex<msi::GsiRouting>> {
        &self.routing
    }

    pub fn pio_bus(&mut self) -> &mut Bus {
        &mut self.pio
    }

    pub fn mmio_bus(&mut self) -> &mut Bus {
        &mut self.mmio
    }

    /// Puts a PCI function on bus 0 at the lowest free device number and returns it. Its
    /// BARs appear on the PIO/MMIO buses when the guest programs them and enables decode,
    /// with the host resources it declares (doorbells as KVM ioeventfds).
    pub fn add_pci_device(&self, device: SharedPciDevice) -> Result<u8> {
        self.add_pci_function(device, io_handlers::Doorbells::Ioeventfd)
    }

    /// As [`Machine::add_pci_device`], with the function's doorbells ringing as `doorbells`
    /// says (ioeventfds, or PIO exits caught by the register-handler table).
    pub fn add_pci_function(
        &self,
        device: SharedPciDevice,
        doorbells: io_handlers::Doorbells,
    ) -> Result<u8> {
        let resources = device
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .host_resources();
        let devnum = self
            .pci
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .root_mut()
            .add_next(device)
            .map_err(|e| Error::Config(format!("PCI: {e}")))?;
        self.pci_host
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(devnum, resources, doorbells);
        Ok(devnum)
    }

    pub fn exit_signal(&self) -> Arc<ExitSignal> {
        self.exit.clone()
    }

    pub fn exit_stats(&self) -> Arc<vcpu::ExitStats> {
        self.stats.clone()
    }

    /// Loads a bzImage (and initrd) and points the boot vCPU at its 64-bit entry.
    pub fn load_linux(&self, kernel: &Path, initrd: Option<&Path>, cmdline: &str) -> Result<()> {
        let size: u64 = self.mem.iter().map(|r| r.len()).sum();
        let info = boot::load_linux(&self.mem, kernel, initrd, cmdline, &memory::e820_map(size))?;
        self.set_boot_entry(info.entry, info.zero_page.raw_value())
    }

    /// Puts the boot vCPU in long mode at `entry` with RSI = `rsi`.
    pub fn set_boot_entry(&self, entry: GuestAddress, rsi: u64) -> Result<()> {
        boot_cpu::setup_boot_cpu(&self.vcpus[0], entry, rsi)
            .map_err(Error::kvm("boot vCPU registers"))
    }

    /// Binds vCPU i's thread to host CPU `cpus[i % cpus.len()]` (empty: no pinning). A
    /// pinned vCPU thread is never migrated between host CPUs by the scheduler.
    pub fn pin_vcpus(&mut self, cpus: Vec<usize>) {
        self.vcpu_cpus = cpus;
    }

    /// Runs the guest until it powers off, resets, writes the debug-exit port, the user
    /// quits, a termination signal arrives, or a vCPU fails. All threads are stopped
    /// before this returns; the Machine, and every device and port it holds, is dropped.
    pub fn run(mut self) -> Result<ExitReason> {
        signals::install_kick_handler()?;
        let term = signals::TerminationSignals::block()?;
        let stop = Arc::new(AtomicBool::new(false));
        let nmi_requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads = self.start_vcpus(&stop, &nmi_requests);
        let input = if self.stdin && self.exit.reason().is_none() {
            console::spawn_input(self.serial.clone(), self.exit.clone(), stop.clone()).ok()
        } else {
            None
        };
        self.wait_for_exit(&term, &threads, &nmi_requests);
        stop.store(true, Ordering::Release);
        stop_threads(threads);
        self.stop_nics();
        if let Some(t) = input {
            let _ = t.join();
        }
        // Serial output may still sit in the writer's buffer.
        let _ = self
            .serial
            .lock()
            .map(|mut s| s.write(devices::serial::LEN, &[]));
        Ok(self
            .exit
            .reason()
            .unwrap_or(ExitReason::Error("stopped without a reason".into())))
    }

    /// Starts one thread per vCPU (pinned if asked); a failure to start one is recorded as
    /// the exit reason, and the threads already started are returned.
    fn start_vcpus(
        &mut self,
        stop: &Arc<AtomicBool>,
        nmi_requests: &Arc<std::sync::atomic::AtomicU64>,
    ) -> Vec<JoinHandle<()>> {
        let ctx = vcpu::VcpuContext {
            nmi_requests: nmi_requests.clone(),
            pio: self.pio.clone(),
            mmio: self.mmio.clone(),
            exit: self.exit.clone(),
            stop: stop.clone(),
            stats: self.stats.clone(),
            handlers: self.handlers.clone(),
        };
        let mut threads = Vec::new();
        for (id, fd) in std::mem::take(&mut self.vcpus).into_iter().enumerate() {
            let cpu =
                (!self.vcpu_cpus.is_empty()).then(|| self.vcpu_cpus[id % self.vcpu_cpus.len()]);
            match vcpu::spawn(id as u8, fd, ctx.clone(), cpu) {
                Ok(t) => threads.push(t),
                Err(e) => {
                    self.exit.request(ExitReason::Error(format!(
                        "cannot start a vCPU thread: {e}"
                    )));
                    break;
                }
            }
        }
        threads
    }

    /// Waits for the exit latch, turning SIGINT/SIGTERM into an exit and SIGUSR1 into an NMI
    /// in every vCPU (kicked out of KVM_RUN to inject it).
    fn wait_for_exit(
        &self,
        term: &signals::TerminationSignals,
        threads: &[JoinHandle<()>],
        nmi_requests: &std::sync::atomic::AtomicU64,
    ) {
        let fds = [self.exit.eventfd().as_raw_fd(), term.raw_fd()];
        while self.exit.reason().is_none() {
            match signals::wait_readable(&fds, -1) {
                Ok(ready) if ready[1] => match term.take() {
                    Some(libc::SIGUSR1) => {
                        log::warn!("SIGUSR1: injecting an NMI into every vCPU");
                        nmi_requests.fetch_add(1, Ordering::Relaxed);
                        for t in threads {
                            let _ = t.kill(signals::kick_signal());
                        }
                    }
                    Some(sig) => self.exit.request(ExitReason::Signal(sig)),
                    None => {}
                },
                Ok(_) => {}
                Err(e) => self
                    .exit
                    .request(ExitReason::Error(format!("waiting for the guest: {e}"))),
            }
        }
    }

    /// Stops (and joins) every NIC's ring workers; if the guest died, first logs what it
    /// last did with each NIC, to tell a device fault from a crash.
    fn stop_nics(&self) {
        let died = matches!(self.exit.reason(), Some(ExitReason::Error(_)));
        for nic in &self.nics {
            let mut nic = nic.lock().unwrap_or_else(|e| e.into_inner());
            if died {
                for e in nic.recent_events() {
                    log::warn!("ptnet: before the guest died: {e}");
                }
            }
            nic.stop();
        }
    }
}

use std::os::fd::AsRawFd;

/// PCI bus 0 with the host bridge at 00:00.0, behind config mechanism #1; BARs the guest
/// programs are routed onto `pio` and `mmio` (handles shared with the vCPUs).
fn pci_bus(
    pio: &Bus,
    mmio: &Bus,
    host: Arc<Mutex<pci_host::PciHost>>,
) -> Result<Arc<Mutex<PciConfigIo>>> {
    let mut root = PciRoot::new();
    root.add(0, Arc::new(Mutex::new(HostBridge::new())))
        .map_err(|e| Error::Config(format!("PCI host bridge: {e}")))?;
    let mut router = BarRouter::new(pio.clone(), mmio.clone());
    router.set_listener(Box::new(move |devnum, change| {
        host.lock()
            .unwrap_or_else(|e| e.into_inner())
            .bar_changed(devnum, change);
    }));
    Ok(Arc::new(Mutex::new(PciConfigIo::new(root, router))))
}

/// The KVM VM with its TSS, identity map, in-kernel irqchip and PIT.
fn create_vm(kvm: &Kvm) -> Result<VmFd> {
    let vm = kvm.create_vm().map_err(Error::kvm("KVM_CREATE_VM"))?;
    vm.set_tss_address(layout::KVM_TSS_START as usize)
        .map_err(Error::kvm("KVM_SET_TSS_ADDR"))?;
    vm.set_identity_map_address(layout::KVM_IDENTITY_MAP_START)
        .map_err(Error::kvm("KVM_SET_IDENTITY_MAP_ADDR"))?;
    vm.create_irq_chip()
        .map_err(Error::kvm("KVM_CREATE_IRQCHIP"))?;
    vm.create_pit2(kvm_pit_config {
        flags: KVM_PIT_SPEAKER_DUMMY,
        ..Default::default()
    })
    .map_err(Error::kvm("KVM_CREATE_PIT2"))?;
    Ok(vm)
}

/// Guest RAM of `bytes`, registered with KVM, with the boot page tables and the ACPI tables
/// for `cpus` vCPUs written in.
fn create_memory(vm: &VmFd, bytes: u64, cpus: u8) -> Result<GuestMemoryMmap> {
    let mem = memory::create_guest_memory(bytes).map_err(|e| Error::GuestMemory {
        mib: bytes >> 20,
        detail: e.to_string(),
    })?;
    for (slot, region) in mem.iter().enumerate() {
        let r = kvm_userspace_memory_region {
            slot: slot as u32,
            guest_phys_addr: region.start_addr().raw_value(),
            memory_size: region.len(),
            userspace_addr: region.as_ptr() as u64,
            flags: 0,
        };
        // SAFETY: the Machine owns `mem` and keeps it until after the VM fd is closed, so the mapping behind `region` stays alive as long as the VM.
        unsafe { vm.set_user_memory_region(r) }
            .map_err(Error::kvm("KVM_SET_USER_MEMORY_REGION"))?;
    }
    boot_cpu::write_boot_tables(&mem).map_err(|_| Error::GuestWrite("boot page tables"))?;
    let tables = acpi::build(layout::ACPI_START, cpus);
    mem.write_slice(&tables.bytes, GuestAddress(tables.base))
        .map_err(|_| Error::GuestWrite("ACPI tables"))?;
    Ok(mem)
}

/// The PIO bus with the legacy devices: COM1 (its interrupt an irqfd, its output to
/// `console`), the i8042 (reset), the ACPI PM block (poweroff) and the debug-exit port.
fn legacy_devices(
    vm: &VmFd,
    exit: &Arc<ExitSignal>,
    console: Box<dyn Write + Send>,
) -> Result<(Bus, Arc<Mutex<Serial>>)> {
    let serial_irq = EventFd::new(EFD_NONBLOCK).map_err(Error::io("serial irq eventfd"))?;
    vm.register_irqfd(&serial_irq, gsi::COM1)
        .map_err(Error::kvm("KVM_IRQFD (serial)"))?;
    let serial = Arc::new(Mutex::new(Serial::new(serial_irq, console)));
    let pio = Bus::new();
    let bus_err = |e: devices::BusError| Error::Config(format!("device layout: {e}"));
    pio.insert(serial.clone(), ports::COM1, devices::serial::LEN)
        .map_err(bus_err)?;
    pio.insert(
        shared(i8042::I8042::new(exit.clone())),
        ports::I8042,
        ports::I8042_LEN,
    )
    .map_err(bus_err)?;
    pio.insert(
        shared(acpi_pm::AcpiPm::new(exit.clone())),
        ports::ACPI_PM,
        acpi_pm::LEN,
    )
    .map_err(bus_err)?;
    pio.insert(
        shared(devices::debug_exit::DebugExit::new(exit.clone())),
        ports::DEBUG_EXIT,
        1,
    )
    .map_err(bus_err)?;
    Ok((pio, serial))
}

/// `cpus` vCPUs with their CPUID, boot MSRs and LAPIC set up.
fn create_vcpus(kvm: &Kvm, vm: &VmFd, cpus: u8) -> Result<Vec<VcpuFd>> {
    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(Error::kvm("KVM_GET_SUPPORTED_CPUID"))?;
    let mut vcpus = Vec::with_capacity(cpus.into());
    for id in 0..cpus {
        let vcpu = vm
            .create_vcpu(id.into())
            .map_err(Error::kvm("KVM_CREATE_VCPU"))?;
        let mut cpuid = supported.clone();
        cpuid::filter(cpuid.as_mut_slice(), id, cpus);
        vcpu.set_cpuid2(&cpuid)
            .map_err(Error::kvm("KVM_SET_CPUID2"))?;
        let wanted = boot_cpu::boot_msrs().len();
        let set = boot_cpu::setup_msrs(&vcpu).map_err(Error::kvm("KVM_SET_MSRS"))?;
        if set != wanted {
            log::debug!("vcpu{id}: KVM took {set} of {wanted} boot MSRs");
        }
        boot_cpu::setup_lapic(&vcpu).map_err(Error::kvm("KVM_SET_LAPIC"))?;
        vcpus.push(vcpu);
    }
    Ok(vcpus)
}

/// Kicks vCPU threads out of KVM_RUN until they notice `stop`, then joins them.
fn stop_threads(threads: Vec<JoinHandle<()>>) {
    let deadline = Instant::now() + VCPU_STOP_TIMEOUT;
    for t in threads {
        while !t.is_finished() && Instant::now() < deadline {
            let _ = t.kill(signals::kick_signal());
            std::thread::sleep(Duration::from_millis(1));
        }
        if t.is_finished() {
            let _ = t.join();
        } else {
            log::warn!("a vCPU thread did not stop in {VCPU_STOP_TIMEOUT:?}");
        }
    }
}

/// Checks `cfg` before anything is created: the configuration itself, and that the kernel
/// (a bzImage) and the initrd can be read.
pub fn check_linux(cfg: &VmConfig) -> Result<()> {
    cfg.validate(config::host_memory_mib())?;
    boot::open_kernel(&cfg.kernel)?;
    if let Some(initrd) = &cfg.initrd {
        std::fs::File::open(initrd).map_err(|source| boot::BootError::InitrdRead {
            path: initrd.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Boots a Linux guest from `cfg` with the console on stdio and runs it to the end. `port`
/// is the netmap port the NIC of `cfg.net` serves (the caller opened it: the VMM reaches
/// every backend through [`netmap::NetmapPort`]).
pub fn run_linux(cfg: &VmConfig, port: Option<Arc<dyn netmap::NetmapPort>>) -> Result<ExitReason> {
    check_linux(cfg)?;
    let mut machine = Machine::new(MachineConfig {
        memory_bytes: cfg.memory_mib << 20,
        cpus: cfg.cpus,
        console: Box::new(FlushingStdout),
        stdin: true,
    })?;
    machine.pin_vcpus(cfg.pin_vcpus.clone());
    match (&cfg.net, port) {
        (Some(net), Some(port)) => attach_nic(&mut machine, net, port)?,
        (None, None) => {}
        _ => {
            return Err(Error::Config(
                "a NIC needs both its options and its port".into(),
            ))
        }
    }
    machine.load_linux(&cfg.kernel, cfg.initrd.as_deref(), &cfg.cmdline)?;
    let _raw = console::RawStdin::enable();
    machine.run()
}

/// Attaches the ptnet NIC of `net`, serving `port`.
fn attach_nic(
    machine: &mut Machine,
    net: &config::NetConfig,
    port: Arc<dyn netmap::NetmapPort>,
) -> Result<()> {
    let name = port.name().to_string();
    let setup = netdev::NicSetup {
        mac: net
            .mac
            .unwrap_or_else(|| devices::ptnet::mac_from_name(&name)),
        doorbells: net.doorbells,
        msi: net.msi,
        offloads: net.offloads,
        tx_spin: net.tx_spin,
    };
    let mac = setup.mac;
    machine.add_ptnet(port, setup)?;
    log::info!(
        "ptnet NIC on {name}, MAC {}",
        mac.map(|b| format!("{b:02x}")).join(":")
    );
    Ok(())
}

/// Stdout that flushes every write, so prompts without a newline show up at once.
struct FlushingStdout;

impl Write for FlushingStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = std::io::stdout().lock();
        let n = out.write(buf)?;
        out.flush()?;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}
