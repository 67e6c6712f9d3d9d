//! Every fixed guest-physical address, I/O port and GSI of the x86_64 machine, ordered by
//! address. Nothing else in ptvmm hard-codes one of these.
//!
//! ```text
//!  0x0000_0000 ┬ real-mode IVT/BDA (unused)
//!  0x0000_0500 │ GDT (boot)               0x0000_7000 zero page (boot_params)
//!  0x0000_8ff0 │ boot stack top           0x0000_9000 PML4, 0xa000 PDPT, 0xb000 PD
//!  0x0002_0000 │ kernel command line
//!  0x0009_fc00 ┴ end of low RAM (EBDA and legacy hole above, reserved)
//!  0x000e_0000   ACPI tables (RSDP first), reserved in the e820 map
//!  0x0010_0000 ┬ kernel (bzImage protected-mode part), then RAM up to the 32-bit hole
//!  0xc000_0000 ┴ 32-bit hole: PCI MMIO window (32-bit BARs) up to the IOAPIC, then
//!                IOAPIC, LAPIC, TSS/identity map pages
//!  0xfec0_0000   IOAPIC         0xfee0_0000   local APICs
//!  0x1_0000_0000 RAM above 4 GiB when the guest has more than the hole leaves below
//! ```

/// Start of the boot GDT.
pub const BOOT_GDT_START: u64 = 0x500;
/// Boot IDT (empty) right after the GDT.
pub const BOOT_IDT_START: u64 = 0x520;
/// Where the Linux zero page (`struct boot_params`) is written.
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Initial stack pointer of the boot vCPU.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Identity-mapped page tables: PML4, PDPT, then one PD (2 MiB pages, first 1 GiB).
pub const PML4_START: u64 = 0x9000;
pub const PDPTE_START: u64 = 0xa000;
pub const PDE_START: u64 = 0xb000;
/// Kernel command line.
pub const CMDLINE_START: u64 = 0x20000;
/// Longest command line we accept (the kernel's COMMAND_LINE_SIZE is 2048 on x86).
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// End of the low usable RAM in the e820 map (start of the EBDA).
pub const EBDA_START: u64 = 0x9fc00;
/// ACPI tables live in the BIOS area, where Linux also scans for the RSDP.
pub const ACPI_START: u64 = 0xe0000;
/// End of the BIOS area (and of the reserved range that covers the ACPI tables).
pub const BIOS_END: u64 = 0x10_0000;
/// Kernel load address and first byte of high RAM.
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the 32-bit hole kept free of RAM for PCI/MMIO devices.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// Size of the 32-bit hole.
pub const MMIO_HOLE_SIZE: u64 = 0x4000_0000;
/// The PCI MMIO window, where the guest places 32-bit memory BARs: the hole up to the
/// IOAPIC (exclusive end). Announced in the DSDT's PCI0 `_CRS`.
pub const PCI_MMIO_START: u64 = MMIO_HOLE_START;
pub const PCI_MMIO_END: u64 = IOAPIC_START;
/// The IOAPIC's MMIO base.
pub const IOAPIC_START: u64 = 0xfec0_0000;
/// KVM's identity map page (one page) and TSS (three pages), just below the BIOS ROM area.
pub const KVM_IDENTITY_MAP_START: u64 = 0xfeff_c000;
pub const KVM_TSS_START: u64 = 0xfeff_d000;
/// The local APICs' MMIO base.
pub const APIC_START: u64 = 0xfee0_0000;
/// RAM that does not fit below the hole continues here.
pub const RAM_64BIT_START: u64 = 0x1_0000_0000;

/// KVM memory slots: guest RAM uses 0 and 1; device memory (the ptnet memdev's BAR1) is
/// numbered from here.
pub const FIRST_DEVICE_MEM_SLOT: u32 = 8;

/// I/O ports (the PIO address space).
pub mod ports {
    /// i8042 data port; the command/status port is 4 above it.
    pub const I8042: u64 = 0x60;
    /// Range of the i8042 (0x60..=0x64).
    pub const I8042_LEN: u64 = 5;
    /// Debug-exit port: a byte written here becomes ptvmm's exit status.
    pub const DEBUG_EXIT: u64 = 0x501;
    /// ACPI power device: sleep control/status register, then reset register.
    pub const ACPI_PM: u64 = 0x600;
    /// COM1.
    pub const COM1: u64 = 0x3f8;
    /// PCI configuration mechanism #1: CONFIG_ADDRESS at 0xcf8, CONFIG_DATA at 0xcfc.
    pub const PCI_CONFIG: u64 = 0xcf8;
    /// Length of the config mechanism #1 range (0xcf8..=0xcff).
    pub const PCI_CONFIG_LEN: u64 = 8;
    /// The PCI I/O window, where the guest places I/O BARs (inclusive end); above every
    /// fixed port. Announced in the DSDT's PCI0 `_CRS`.
    pub const PCI_IO_START: u64 = 0xc000;
    pub const PCI_IO_END: u64 = 0xffff;
}

/// Fixed interrupt lines (GSIs of the IOAPIC; legacy ISA IRQs map one to one).
pub mod gsi {
    /// COM1.
    pub const COM1: u32 = 4;
    /// PCI INTx lines: the DSDT's _PRT routes slot N's INTA to `PCI_INTX_BASE + N % COUNT`.
    pub const PCI_INTX_BASE: u32 = 16;
    pub const PCI_INTX_COUNT: u32 = 8;
}
