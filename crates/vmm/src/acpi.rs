//! ACPI tables for a hardware-reduced x86 platform: RSDP → XSDT → {FADT → DSDT, MADT}.
//!
//! The Debian cloud kernel has no MP-table parser, so the MADT is how it finds the IOAPIC
//! and the other CPUs; the FADT points the guest at ptvmm's power device (sleep control
//! and reset registers) so `poweroff` and `reboot` end the VMM.

use acpi_tables::aml::{
    AddressSpace as AmlAddressSpace, AddressSpaceCacheable, Device, EISAName, Interrupt, Name,
    Package, Path as AmlPath, ResourceTemplate, Scope, IO,
};
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, ProcessorLocalApic, MADT,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use acpi_tables::Aml;
use devices::acpi_pm;

use crate::layout::{gsi, ports, APIC_START, IOAPIC_START, PCI_MMIO_END, PCI_MMIO_START};

const OEM_ID: [u8; 6] = *b"PTVMM ";
const OEM_TABLE_ID: [u8; 8] = *b"PTVMMVM ";
const OEM_REVISION: u32 = 1;
/// FADT IA-PC boot architecture flags: no VGA (bit 2), no CMOS RTC (bit 5). The i8042 bit
/// stays clear so Linux does not probe a keyboard; `reboot=k` still reaches our reset.
const IAPC_BOOT_ARCH_VGA_NOT_PRESENT: u16 = 1 << 2;
const IAPC_BOOT_ARCH_CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;
/// Tables are placed on 16-byte boundaries.
const ALIGN: usize = 16;

/// The serialised tables, meant to be copied to guest memory at `base` (RSDP first).
pub struct AcpiTables {
    pub base: u64,
    pub bytes: Vec<u8>,
}

fn aml_bytes(t: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    t.to_aml_bytes(&mut v);
    v
}

/// COM1 as an ACPI device (PNP0501 with its ports and interrupt). On a hardware-reduced
/// platform Linux has no legacy PIC and maps no ISA interrupt by itself, so without this
/// the serial driver's interrupt is never routed and only polled kernel output appears.
fn com1() -> Vec<u8> {
    let hid = EISAName::new("PNP0501");
    let uid = 1u8;
    let port = ports::COM1 as u16;
    let io = IO::new(port, port, 1, devices::serial::LEN as u8);
    let irq = Interrupt::new(true, true, false, false, gsi::COM1);
    let crs = ResourceTemplate::new(vec![&io, &irq]);
    let n_hid = Name::new(AmlPath::new("_HID"), &hid);
    let n_uid = Name::new(AmlPath::new("_UID"), &uid);
    let n_crs = Name::new(AmlPath::new("_CRS"), &crs);
    aml_bytes(&Device::new(
        AmlPath::new("COM1"),
        vec![&n_hid, &n_uid, &n_crs],
    ))
}

/// The PCI root bridge (PNP0A03) of segment 0, bus 0. Its `_CRS` is what Linux may assign
/// BARs from: bus 0 only, the config mechanism #1 ports (consumed), the I/O window and the
/// 32-bit MMIO window of the layout.
fn pci0() -> Vec<u8> {
    let hid = EISAName::new("PNP0A03");
    let zero = 0u8;
    let buses = AmlAddressSpace::<u16>::new_bus_number(0, 0);
    let cfg_port = ports::PCI_CONFIG as u16;
    let cfg_io = IO::new(cfg_port, cfg_port, 1, ports::PCI_CONFIG_LEN as u8);
    let io_window =
        AmlAddressSpace::<u16>::new_io(ports::PCI_IO_START as u16, ports::PCI_IO_END as u16, None);
    let mem_window = AmlAddressSpace::<u32>::new_memory(
        AddressSpaceCacheable::NotCacheable,
        true,
        PCI_MMIO_START as u32,
        (PCI_MMIO_END - 1) as u32,
        None,
    );
    let crs = ResourceTemplate::new(vec![&buses, &cfg_io, &io_window, &mem_window]);
    let n_hid = Name::new(AmlPath::new("_HID"), &hid);
    let n_adr = Name::new(AmlPath::new("_ADR"), &zero);
    let n_seg = Name::new(AmlPath::new("_SEG"), &zero);
    let n_uid = Name::new(AmlPath::new("_UID"), &zero);
    let n_bbn = Name::new(AmlPath::new("_BBN"), &zero);
    let n_crs = Name::new(AmlPath::new("_CRS"), &crs);
    // _PRT: INTA of every slot to one of the PCI GSIs 16-23 (swizzled by slot), so Linux can
    // route a legacy interrupt pin (the ptnet NIC declares pin A; its drivers use MSI-X).
    let routes: Vec<(u32, u32)> = (1..32u32)
        .map(|slot| {
            (
                (slot << 16) | 0xffff,
                gsi::PCI_INTX_BASE + slot % gsi::PCI_INTX_COUNT,
            )
        })
        .collect();
    let (pin, source) = (0u8, 0u8);
    let entries: Vec<Package> = routes
        .iter()
        .map(|(adr, g)| Package::new(vec![adr, &pin, &source, g]))
        .collect();
    let prt = Package::new(entries.iter().map(|e| e as &dyn acpi_tables::Aml).collect());
    let n_prt = Name::new(AmlPath::new("_PRT"), &prt);
    aml_bytes(&Device::new(
        AmlPath::new("PCI0"),
        vec![&n_hid, &n_adr, &n_seg, &n_uid, &n_bbn, &n_crs, &n_prt],
    ))
}

/// The DSDT: the `\_S5_` package that lets Linux power off through the FADT's sleep
/// control register, and the devices under `\_SB_`.
fn dsdt() -> Vec<u8> {
    let mut sdt = Sdt::new(*b"DSDT", 36, 6, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    let s5 = Name::new(
        AmlPath::new("_S5_"),
        &Package::new(vec![&acpi_pm::S5_SLP_TYP]),
    );
    sdt.append_slice(&aml_bytes(&s5));
    let mut sb = com1();
    sb.extend_from_slice(&pci0());
    sdt.append_slice(&Scope::raw(AmlPath::new("\\_SB_"), sb));
    sdt.update_checksum();
    sdt.as_slice().to_vec()
}

fn io_gas(port: u64) -> GAS {
    GAS::new(AddressSpace::SystemIo, 8, 0, AccessSize::ByteAccess, port)
}

fn fadt(dsdt_addr: u64) -> Vec<u8> {
    let mut f = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt_addr)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::ResetRegSup)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton);
    f.iapc_boot_arch =
        (IAPC_BOOT_ARCH_VGA_NOT_PRESENT | IAPC_BOOT_ARCH_CMOS_RTC_NOT_PRESENT).into();
    f.sleep_control_reg = io_gas(ports::ACPI_PM + acpi_pm::SLEEP_OFFSET);
    f.sleep_status_reg = io_gas(ports::ACPI_PM + acpi_pm::SLEEP_OFFSET);
    f.reset_reg = io_gas(ports::ACPI_PM + acpi_pm::RESET_OFFSET);
    f.reset_value = acpi_pm::RESET_VALUE;
    f.hypervisor_vendor_identity = u64::from_le_bytes(*b"PTVMM\0\0\0").into();
    aml_bytes(&f.finalize())
}

fn madt(ncpus: u8) -> Vec<u8> {
    let mut m = MADT::new(
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
        LocalInterruptController::Address(APIC_START as u32),
    );
    for id in 0..ncpus {
        m.add_structure(ProcessorLocalApic::new(id, id, EnabledStatus::Enabled));
    }
    m.add_structure(IoApic::new(0, IOAPIC_START as u32, 0));
    aml_bytes(&m)
}

/// Builds the tables for `ncpus` CPUs, laid out from `base`.
pub fn build(base: u64, ncpus: u8) -> AcpiTables {
    let mut bytes = vec![0u8; Rsdp::len().next_multiple_of(ALIGN)];
    let mut place = |table: Vec<u8>| -> u64 {
        let addr = base + bytes.len() as u64;
        bytes.extend_from_slice(&table);
        bytes.resize(bytes.len().next_multiple_of(ALIGN), 0);
        addr
    };
    let dsdt_addr = place(dsdt());
    let fadt_addr = place(fadt(dsdt_addr));
    let madt_addr = place(madt(ncpus));
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    xsdt.add_entry(fadt_addr);
    xsdt.add_entry(madt_addr);
    let xsdt_addr = place(aml_bytes(&xsdt));
    let rsdp = aml_bytes(&Rsdp::new(OEM_ID, xsdt_addr));
    bytes[..rsdp.len()].copy_from_slice(&rsdp);
    AcpiTables { base, bytes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::ACPI_START;

    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }
    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    /// Returns the table at guest address `addr`, checking its checksum.
    fn table(t: &AcpiTables, addr: u64, sig: &[u8; 4]) -> Vec<u8> {
        let off = (addr - t.base) as usize;
        assert_eq!(&t.bytes[off..off + 4], sig);
        let len = u32_at(&t.bytes, off + 4) as usize;
        let tbl = t.bytes[off..off + len].to_vec();
        assert_eq!(sum(&tbl), 0, "{} checksum", String::from_utf8_lossy(sig));
        tbl
    }

    #[test]
    fn tables_chain_from_the_rsdp_with_valid_checksums() {
        let t = build(ACPI_START, 2);
        assert!(t.bytes.len() < 0x20000, "must fit in the BIOS area");
        let rsdp = &t.bytes[..36];
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!(sum(&rsdp[..20]), 0);
        assert_eq!(sum(rsdp), 0);
        assert_eq!(rsdp[15], 2, "ACPI 2.0+ RSDP");
        let xsdt = table(&t, u64_at(rsdp, 24), b"XSDT");
        assert_eq!(xsdt.len(), 36 + 16);
        let fadt = table(&t, u64_at(&xsdt, 36), b"FACP");
        let madt = table(&t, u64_at(&xsdt, 44), b"APIC");

        // FADT: hardware-reduced, reset register supported, DSDT via X_DSDT.
        let flags = u32_at(&fadt, 112);
        assert_ne!(flags & (1 << 20), 0);
        assert_ne!(flags & (1 << 10), 0);
        let dsdt = table(&t, u64_at(&fadt, 140), b"DSDT");
        assert!(dsdt.windows(4).any(|w| w == b"_S5_"));
        assert!(dsdt.windows(4).any(|w| w == b"COM1"));
        // PNP0501 as a compressed EISA id, and the extended IRQ descriptor for GSI 4.
        assert!(dsdt.windows(4).any(|w| w == [0x41, 0xd0, 0x05, 0x01]));
        assert!(dsdt
            .windows(9)
            .any(|w| w == [0x89, 6, 0, 0x3, 1, 4, 0, 0, 0]));
        // Sleep control register (offset 244) and reset register (116) are on our ports.
        assert_eq!(fadt[244], 1, "system I/O");
        assert_eq!(u64_at(&fadt, 248), ports::ACPI_PM);
        assert_eq!(u64_at(&fadt, 120), ports::ACPI_PM + 1);
        assert_eq!(fadt[128], acpi_pm::RESET_VALUE);

        // MADT: LAPIC address, one enabled LAPIC per CPU, one IOAPIC at GSI base 0.
        assert_eq!(u32_at(&madt, 36), APIC_START as u32);
        let mut off = 44;
        let (mut lapics, mut ioapics) = (vec![], vec![]);
        while off < madt.len() {
            let (kind, len) = (madt[off], madt[off + 1] as usize);
            match kind {
                0 => lapics.push((madt[off + 3], u32_at(&madt, off + 4))),
                1 => ioapics.push((u32_at(&madt, off + 4), u32_at(&madt, off + 8))),
                _ => panic!("unexpected MADT entry {kind}"),
            }
            off += len;
        }
        assert_eq!(lapics, vec![(0, 1), (1, 1)]);
        assert_eq!(ioapics, vec![(IOAPIC_START as u32, 0)]);
    }

    /// The DSDT of a default build.
    fn dsdt_bytes() -> Vec<u8> {
        let t = build(ACPI_START, 1);
        let xsdt = table(&t, u64_at(&t.bytes, 24), b"XSDT");
        let fadt = table(&t, u64_at(&xsdt, 36), b"FACP");
        table(&t, u64_at(&fadt, 140), b"DSDT")
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn dsdt_has_the_pci_root_bridge_and_its_windows() {
        let d = dsdt_bytes();
        // _PRT entry of slot 2: Package(4) { 0x0002ffff, 0 (INTA), 0, 16 + 2 }.
        assert!(contains(
            &d,
            &[0x12, 0x0b, 0x04, 0x0c, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x0a, 18]
        ));
        for name in [b"PCI0", b"_SEG", b"_BBN", b"_ADR", b"_CRS", b"_PRT"] {
            assert!(contains(&d, name), "{}", String::from_utf8_lossy(name));
        }
        // PNP0A03 as a compressed EISA id.
        assert!(contains(&d, &[0x41, 0xd0, 0x0a, 0x03]));
        // Bus number range 0..=0: word address space descriptor, type 2.
        assert!(contains(&d, &[0x88, 0x0d, 0, 2]));
        // The config ports, consumed: IO descriptor 0xcf8..0xcf8, align 1, length 8.
        assert!(contains(&d, &[0x47, 1, 0xf8, 0x0c, 0xf8, 0x0c, 1, 8]));
        // I/O window (word descriptor, type 1): min 0xc000, max 0xffff.
        let io = [0x00, 0xc0, 0xff, 0xff];
        assert!(d
            .windows(16)
            .any(|w| w[0] == 0x88 && w[3] == 1 && w[8..12] == io));
        // 32-bit memory window (dword descriptor, type 0): 0xc0000000..=0xfebfffff.
        let mem = [0, 0, 0, 0xc0, 0xff, 0xff, 0xbf, 0xfe];
        assert!(d
            .windows(18)
            .any(|w| w[0] == 0x87 && w[3] == 0 && w[10..18] == mem));
    }

    #[test]
    fn every_cpu_count_gets_its_lapics() {
        for n in [1u8, 7, 32] {
            let t = build(ACPI_START, n);
            let xsdt = table(&t, u64_at(&t.bytes, 24), b"XSDT");
            let madt = table(&t, u64_at(&xsdt, 44), b"APIC");
            assert_eq!(madt.len(), 44 + 8 * n as usize + 12);
        }
    }
}
