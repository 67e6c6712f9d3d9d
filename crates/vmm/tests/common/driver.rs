//! A tiny ptnet driver in hand-assembled x86-64, for the KVM tests: it programs the two PCI
//! functions through config mechanism #1, maps the CSB, enables MSI-X, starts the host
//! workers with PTCTL=CREATE, then either transmits frames through TX ring 0 or receives
//! through RX ring 0 sleeping on its MSI-X interrupt — the bring-up order and the CSB
//! protocol of the ptnet ABI (§1, §2), like a netmap application in a guest.

use iced_x86::code_asm::*;

/// Guest-physical layout of the test guest (all below 1 GiB except the BARs).
pub const CODE: u64 = 0x10_0000;
pub const HANDLER: u64 = 0x10_8000;

pub const IDT: u64 = 0x3000;
pub const IDTR: u64 = 0x2ff0;
pub const CSB_GH: u64 = 0x4000;
pub const CSB_HG: u64 = 0x5000;
/// Results the guest leaves for the host: packets done, MSIs counted, PTCTL status.
pub const RESULT_PKTS: u64 = 0x2f00;
pub const RESULT_MSIS: u64 = 0x2f08;
pub const RESULT_PTCTL: u64 = 0x2f10;
pub const TEMPLATE: u64 = 0x6000;
pub const HOLE_PD: u64 = 0xc000;
pub const PDPT: u64 = 0xa000;
pub const APIC: u64 = 0xfee0_0000;
/// Where the driver puts the BARs.
pub const MEMDEV_BAR0: u16 = 0xc000;
pub const MEMDEV_BAR1: u32 = 0xd000_0000;
pub const NIC_BAR0: u16 = 0xc100;
pub const NIC_BAR2: u32 = 0xe000_0000;
pub const DEBUG_EXIT: u16 = 0x501;
/// MSI vector numbers in the guest's IDT: vector i of the NIC -> IDT 0x40 + i.
pub const IDT_BASE_VECTOR: u8 = 0x40;

/// The ptnet NIC registers the driver uses (ABI §1), as I/O port offsets from
/// `netmap::ptnet`, the one definition.
pub mod reg {
    use netmap::ptnet::nic;

    pub const PTCTL: u16 = nic::PTCTL as u16;
    pub const CSB_GH_BAH: u16 = nic::CSB_GH_BAH as u16;
    pub const CSB_GH_BAL: u16 = nic::CSB_GH_BAL as u16;
    pub const CSB_HG_BAH: u16 = nic::CSB_HG_BAH as u16;
    pub const CSB_HG_BAL: u16 = nic::CSB_HG_BAL as u16;
    pub const KICK0: u16 = nic::kick(0) as u16;
    pub const PTCTL_CREATE: u32 = nic::CMD_CREATE;
}

/// What the host tells the driver about the devices (a real driver reads these from the
/// registers and config space; the test hard-codes what it already knows).
#[derive(Clone, Copy, Debug)]
pub struct DeviceInfo {
    pub memdev_dev: u8,
    pub nic_dev: u8,
    /// Config-space offset of the NIC's MSI-X capability.
    pub msix_cap: u8,
    /// Offset of the MSI-X table inside BAR2.
    pub msix_table: u32,
    /// Ring geometry.
    pub ntx: u32,
    pub slots: u32,
    pub buf_size: u32,
    /// Offsets inside the region (BAR1): TX ring 0 and the buffer pool.
    pub tx_ring: u64,
    pub buf_pool: u64,
}

fn cfg_addr(dev: u8, reg: u8) -> u32 {
    0x8000_0000 | (u32::from(dev) << 11) | u32::from(reg & 0xfc)
}

fn pci_write32(a: &mut CodeAssembler, dev: u8, reg: u8, value: u32) -> Result<(), IcedError> {
    a.mov(eax, cfg_addr(dev, reg))?;
    a.mov(dx, 0xcf8u32)?;
    a.out(dx, eax)?;
    a.mov(eax, value)?;
    a.mov(dx, 0xcfcu32)?;
    a.out(dx, eax)
}

fn pci_write16(a: &mut CodeAssembler, dev: u8, reg: u8, value: u16) -> Result<(), IcedError> {
    a.mov(eax, cfg_addr(dev, reg))?;
    a.mov(dx, 0xcf8u32)?;
    a.out(dx, eax)?;
    a.mov(ax, u32::from(value))?;
    a.mov(dx, 0xcfc + u32::from(reg & 3))?;
    a.out(dx, ax)
}

fn nic_write(a: &mut CodeAssembler, reg: u16, value: u32) -> Result<(), IcedError> {
    a.mov(eax, value)?;
    a.mov(dx, u32::from(NIC_BAR0 + reg))?;
    a.out(dx, eax)
}

/// Page tables for 3-4 GiB (BARs, LAPIC) and the IDT gate of every NIC vector.
pub fn guest_tables(ntotal_rings: u32) -> Vec<(u64, Vec<u8>)> {
    let mut w = vec![(PDPT + 3 * 8, (HOLE_PD | 0x3).to_le_bytes().to_vec())];
    let mut pd = Vec::with_capacity(4096);
    for i in 0..512u64 {
        pd.extend_from_slice(&((0xc000_0000 + (i << 21)) | 0x83 | 0x10).to_le_bytes());
    }
    w.push((HOLE_PD, pd));
    for v in 0..ntotal_rings {
        let gate_lo: u64 = (HANDLER & 0xffff)
            | (0x08 << 16)
            | (0x8e00u64 << 32)
            | (((HANDLER >> 16) & 0xffff) << 48);
        let mut gate = gate_lo.to_le_bytes().to_vec();
        gate.extend_from_slice(&(HANDLER >> 32).to_le_bytes());
        w.push((IDT + 16 * (u64::from(IDT_BASE_VECTOR) + u64::from(v)), gate));
    }
    let mut idtr = 0xfffu16.to_le_bytes().to_vec();
    idtr.extend_from_slice(&IDT.to_le_bytes());
    w.push((IDTR, idtr));
    w
}

/// GDT for user mode, at USER_GDT: the boot GDT's kernel entries (same selectors) plus user
/// data (0x20) and 64-bit user code (0x28), both DPL 3.
pub const USER_GDT: u64 = 0x600;
pub const USER_DS: u16 = 0x20 | 3;
pub const USER_CS: u16 = 0x28 | 3;
const BOOT_PML4: u64 = 0x9000;
const BOOT_PD: u64 = 0xb000;

/// Extra tables for running the packet loop in ring 3 (where this software KVM runs guest
/// code natively; ring 0 is emulated instruction by instruction): the user-mode GDT and
/// the user bit on every page-table entry of the identity map and the 3-4 GiB window.
pub fn user_mode_tables() -> Vec<(u64, Vec<u8>)> {
    let gdt: [u64; 6] = [
        0,
        0x00af_9b00_0000_ffff, // kernel code 64
        0x00cf_9300_0000_ffff, // kernel data
        0x008f_8b00_0000_ffff, // TSS (as booted)
        0x00cf_f300_0000_ffff, // user data, DPL 3
        0x00af_fb00_0000_ffff, // user code 64, DPL 3
    ];
    let mut w = vec![(USER_GDT, gdt.iter().flat_map(|e| e.to_le_bytes()).collect())];
    let mut gdtr = ((gdt.len() * 8 - 1) as u16).to_le_bytes().to_vec();
    gdtr.extend_from_slice(&USER_GDT.to_le_bytes());
    w.push((USER_GDT - 16, gdtr));
    w.push((BOOT_PML4, (PDPT | 0x7).to_le_bytes().to_vec()));
    let mut pdpt = (BOOT_PD | 0x7).to_le_bytes().to_vec();
    pdpt.extend_from_slice(&[0; 16]);
    pdpt.extend_from_slice(&(HOLE_PD | 0x7).to_le_bytes());
    w.push((PDPT, pdpt));
    for (pd, base) in [(BOOT_PD, 0u64), (HOLE_PD, 0xc000_0000)] {
        let mut t = Vec::with_capacity(4096);
        for i in 0..512u64 {
            let pcd = if base != 0 { 0x10 } else { 0 };
            t.extend_from_slice(&((base + (i << 21)) | 0x87 | pcd).to_le_bytes());
        }
        w.push((pd, t));
    }
    w
}

/// Drops to ring 3 with IOPL 3 (so the loop can still write the doorbell and debug ports),
/// interrupts off, on the same stack.
fn enter_user_mode(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut user = a.create_label();
    a.mov(rax, USER_GDT - 16)?;
    a.lgdt(ptr(rax))?;
    a.mov(rax, rsp)?;
    a.push(i32::from(USER_DS))?;
    a.push(rax)?;
    a.push(0x3002i32)?;
    a.push(i32::from(USER_CS))?;
    a.lea(rax, ptr(user))?;
    a.push(rax)?;
    a.iretq()?;
    a.set_label(&mut user)?;
    a.mov(ax, u32::from(USER_DS))?;
    a.mov(ds, ax)?;
    a.mov(es, ax)
}

/// The MSI handler: count, EOI, return.
pub fn handler() -> Vec<u8> {
    let mut h = CodeAssembler::new(64).unwrap();
    h.push(rax).unwrap();
    h.mov(rax, RESULT_MSIS).unwrap();
    h.lock().inc(qword_ptr(rax)).unwrap();
    h.mov(rax, APIC + 0xb0).unwrap();
    h.mov(dword_ptr(rax), 0).unwrap();
    h.pop(rax).unwrap();
    h.iretq().unwrap();
    h.assemble(HANDLER).unwrap()
}

/// Bring-up common to both directions; ends with PTCTL=CREATE and its status stored.
fn bring_up(a: &mut CodeAssembler, d: &DeviceInfo) -> Result<(), IcedError> {
    a.mov(rax, IDTR)?;
    a.lidt(ptr(rax))?;
    a.mov(rax, APIC + 0xf0)?;
    a.mov(dword_ptr(rax), 0x1ffu32)?;
    // memdev: BAR0 (I/O), BAR1 (memory), decode on.
    pci_write32(a, d.memdev_dev, 0x10, u32::from(MEMDEV_BAR0))?;
    pci_write32(a, d.memdev_dev, 0x14, MEMDEV_BAR1)?;
    pci_write16(a, d.memdev_dev, 0x04, 0x3)?;
    // NIC: BAR0 (I/O), BAR2 (MSI-X), decode and bus mastering on, MSI-X enabled.
    pci_write32(a, d.nic_dev, 0x10, u32::from(NIC_BAR0))?;
    pci_write32(a, d.nic_dev, 0x18, NIC_BAR2)?;
    pci_write16(a, d.nic_dev, 0x04, 0x7)?;
    pci_write16(a, d.nic_dev, d.msix_cap + 2, 0x8000)?;
    // One vector per ring: address = LAPIC of CPU 0, data = IDT vector, unmasked.
    let nrings = d.ntx + 1;
    for v in 0..nrings {
        let e = u64::from(NIC_BAR2) + u64::from(d.msix_table) + 16 * u64::from(v);
        a.mov(rax, e)?;
        a.mov(dword_ptr(rax), APIC as u32)?;
        a.mov(dword_ptr(rax + 4), 0u32)?;
        a.mov(dword_ptr(rax + 8), u32::from(IDT_BASE_VECTOR) + v)?;
        a.mov(dword_ptr(rax + 12), 0u32)?;
    }
    // CSB: GH array then HG array, high half first.
    nic_write(a, reg::CSB_GH_BAH, 0)?;
    nic_write(a, reg::CSB_GH_BAL, CSB_GH as u32)?;
    nic_write(a, reg::CSB_HG_BAH, 0)?;
    nic_write(a, reg::CSB_HG_BAL, CSB_HG as u32)?;
    // kern_need_kick = 1 everywhere; appl_need_kick = 0 on TX, 1 on RX.
    for r in 0..nrings {
        a.mov(rax, CSB_HG + 64 * u64::from(r) + 8)?;
        a.mov(dword_ptr(rax), 1u32)?;
        a.mov(rax, CSB_GH + 64 * u64::from(r) + 8)?;
        a.mov(dword_ptr(rax), u32::from(r >= d.ntx))?;
    }
    nic_write(a, reg::PTCTL, reg::PTCTL_CREATE)?;
    a.mov(dx, u32::from(NIC_BAR0 + reg::PTCTL))?;
    a.in_(eax, dx)?;
    a.mov(rbx, RESULT_PTCTL)?;
    a.mov(qword_ptr(rbx), rax)?;
    Ok(())
}

fn finish(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(dx, u32::from(DEBUG_EXIT))?;
    a.mov(al, 1u32)?;
    a.out(dx, al)?;
    a.hlt()
}

/// Publishes head/cur of the TX ring in the CSB (cur first) and kicks if the host asked.
fn tx_publish(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut no_kick = a.create_label();
    a.mov(dword_ptr(r10 + 4), r12d)?;
    a.sfence()?;
    a.mov(dword_ptr(r10), r12d)?;
    a.mfence()?;
    a.cmp(dword_ptr(r11 + 8), 0)?;
    a.je(no_kick)?;
    // At most one kick per published head (ebp: the head of the last kick, reset whenever
    // head moves): a guest polling a full ring must not kick again and again while the host
    // worker is still on its way; the eventfd keeps the one kick until the worker reads it.
    a.cmp(ebp, r12d)?;
    a.je(no_kick)?;
    a.mov(ebp, r12d)?;
    a.mov(dx, u32::from(NIC_BAR0 + reg::KICK0))?;
    a.out(dx, eax)?;
    a.set_label(&mut no_kick)?;
    a.nop()
}

/// Fills the TX slot at head (r12d) with a `len`-byte copy of TEMPLATE and advances head
/// modulo the ring size (r15d); a new head may need a kick again (ebp reset).
fn tx_fill_slot(a: &mut CodeAssembler, len: u16, shift: u32) -> Result<(), IcedError> {
    // slot = ring + 256 + 16 * head; buf = bufs + (buf_idx << shift)
    a.mov(ecx, r12d)?;
    a.shl(rcx, 4)?;
    a.lea(rbx, ptr(r8 + rcx + 256))?;
    a.mov(eax, dword_ptr(rbx))?;
    a.shl(rax, shift)?;
    a.lea(rdi, ptr(r9 + rax))?;
    a.mov(rsi, TEMPLATE)?;
    a.mov(ecx, u32::from(len))?;
    a.rep().movsb()?;
    a.mov(word_ptr(rbx + 4), u32::from(len))?;
    a.mov(word_ptr(rbx + 6), 0u32)?;
    // head = (head + 1) % slots; a new head may need a kick again
    a.mov(ebp, u32::MAX)?;
    a.inc(r12d)?;
    a.cmp(r12d, r15d)?;
    let mut nowrap = a.create_label();
    a.jb(nowrap)?;
    a.xor(r12d, r12d)?;
    a.set_label(&mut nowrap)
}

/// Publishes the last partial batch, then waits until the host consumed every slot
/// (hwcur == head), kicking if asked.
fn tx_drain(a: &mut CodeAssembler) -> Result<(), IcedError> {
    tx_publish(a)?;
    let mut wait = a.create_label();
    let mut drained = a.create_label();
    a.set_label(&mut wait)?;
    a.cmp(dword_ptr(r11), r12d)?;
    a.je(drained)?;
    tx_publish(a)?;
    a.pause()?;
    a.jmp(wait)?;
    a.set_label(&mut drained)
}

/// Stores the frame count (r13) at RESULT_PKTS for the host, then ends the guest.
fn store_count_and_finish(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(rax, RESULT_PKTS)?;
    a.mov(qword_ptr(rax), r13)?;
    finish(a)
}

/// An empty RX ring: sets appl_need_kick, checks hwtail once more, and sleeps until the MSI
/// only if nothing came meanwhile; clears appl_need_kick either way.
fn rx_sleep_unless_work(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(dword_ptr(r10 + 8), 1u32)?;
    a.mfence()?;
    a.mov(eax, dword_ptr(r11 + 4))?;
    a.cmp(eax, r12d)?;
    let mut work = a.create_label();
    a.jne(work)?;
    a.sti()?;
    a.hlt()?;
    a.cli()?;
    a.set_label(&mut work)?;
    a.mov(dword_ptr(r10 + 8), 0u32)
}

/// Transmits `count` frames of `len` bytes (copied from TEMPLATE) through TX ring 0 in
/// batches of `batch` (a power of two), publishing each batch — and whatever is pending when
/// the ring is full — and kicking only when the host asked for it. With `user`, the packet
/// loop runs in ring 3 (see [`user_mode_tables`]).
pub fn tx_program(d: &DeviceInfo, count: u32, len: u16, batch: u32, user: bool) -> Vec<u8> {
    assert!(batch.is_power_of_two());
    let mut a = CodeAssembler::new(64).unwrap();
    bring_up(&mut a, d).unwrap();
    if user {
        enter_user_mode(&mut a).unwrap();
    }
    let ring = u64::from(MEMDEV_BAR1) + d.tx_ring;
    let bufs = u64::from(MEMDEV_BAR1) + d.buf_pool;
    let shift = d.buf_size.trailing_zeros();
    assert!(d.buf_size.is_power_of_two());
    let (atok, ktoa) = (CSB_GH, CSB_HG); // TX ring 0
    let mut r = || -> Result<Vec<u8>, IcedError> {
        a.mov(r8, ring)?;
        a.mov(r9, bufs)?;
        a.mov(r10, atok)?;
        a.mov(r11, ktoa)?;
        a.xor(r12d, r12d)?; // head == cur
        a.xor(r13d, r13d)?; // sent
        a.mov(r14d, count)?;
        a.mov(r15d, d.slots)?;
        a.mov(ebp, u32::MAX)?; // head of the last kick: none yet
        let mut top = a.create_label();
        let mut room = a.create_label();
        let mut have = a.create_label();
        let mut drain = a.create_label();
        a.set_label(&mut top)?;
        a.cmp(r13d, r14d)?;
        a.jae(drain)?;
        // space = (hwtail - head) mod slots
        a.mov(eax, dword_ptr(r11 + 4))?;
        a.sub(eax, r12d)?;
        a.jns(room)?;
        a.add(eax, r15d)?;
        a.set_label(&mut room)?;
        a.test(eax, eax)?;
        a.jnz(have)?;
        // Ring full: publish what is pending (the host may need a kick), then poll. (A
        // ring-3 loop cannot halt, and this software KVM fails `int n` into ring 0, so the
        // tiny guest busy-waits where a real driver would sleep on its TX interrupt.)
        tx_publish(&mut a)?;
        a.pause()?;
        a.jmp(top)?;
        a.set_label(&mut have)?;
        tx_fill_slot(&mut a, len, shift)?;
        a.inc(r13d)?;
        a.test(r13d, batch - 1)?;
        a.jnz(top)?;
        tx_publish(&mut a)?;
        a.jmp(top)?;
        a.set_label(&mut drain)?;
        tx_drain(&mut a)?;
        store_count_and_finish(&mut a)?;
        a.assemble(CODE)
    };
    r().unwrap()
}

/// Receives until `count` frames arrived on RX ring 0, sleeping on the ring's MSI-X vector
/// whenever the ring is empty (appl_need_kick with the double check).
pub fn rx_program(d: &DeviceInfo, count: u32) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    bring_up(&mut a, d).unwrap();
    let i = u64::from(d.ntx); // RX ring 0's CSB index
    let (atok, ktoa) = (CSB_GH + 64 * i, CSB_HG + 64 * i);
    let kick = NIC_BAR0 + reg::KICK0 + 4 * d.ntx as u16;
    let mut r = || -> Result<Vec<u8>, IcedError> {
        a.mov(r10, atok)?;
        a.mov(r11, ktoa)?;
        a.xor(r12d, r12d)?; // head
        a.xor(r13d, r13d)?; // received
        a.mov(r14d, count)?;
        a.mov(r15d, d.slots)?;
        let mut top = a.create_label();
        let mut pos = a.create_label();
        let mut empty = a.create_label();
        let mut done = a.create_label();
        a.set_label(&mut top)?;
        // avail = (hwtail - head) mod slots
        a.mov(eax, dword_ptr(r11 + 4))?;
        a.mov(ebx, eax)?;
        a.sub(eax, r12d)?;
        a.jns(pos)?;
        a.add(eax, r15d)?;
        a.set_label(&mut pos)?;
        a.test(eax, eax)?;
        a.jz(empty)?;
        // Take them all: received += avail, head = hwtail; publish; kick if asked.
        a.add(r13d, eax)?;
        a.mov(r12d, ebx)?;
        a.mov(dword_ptr(r10 + 4), r12d)?;
        a.sfence()?;
        a.mov(dword_ptr(r10), r12d)?;
        a.mfence()?;
        a.cmp(dword_ptr(r11 + 8), 0)?;
        a.je(top)?;
        a.mov(dx, u32::from(kick))?;
        a.out(dx, eax)?;
        a.jmp(top)?;
        // Empty: done, or arm appl_need_kick, double check, sleep until the MSI.
        a.set_label(&mut empty)?;
        a.cmp(r13d, r14d)?;
        a.jae(done)?;
        rx_sleep_unless_work(&mut a)?;
        a.jmp(top)?;
        a.set_label(&mut done)?;
        store_count_and_finish(&mut a)?;
        a.assemble(CODE)
    };
    r().unwrap()
}
