//! The ptnet NIC PCI function: the register file of ABI §1 (BAR0), MSI-X with one vector per
//! ring (BAR2), the CSB mapping rules, PTCTL CREATE/DELETE starting and stopping the ring
//! workers, and the doorbell eventfds the VMM wires to KICK(i).
//!
//! ```text
//!  BAR0  I/O, 256 bytes        registers (netmap::ptnet, regs.rs); KICK(i) at 128 + 4*i
//!  BAR2  32-bit memory, 4 KiB  MSI-X table at 0 (16 bytes a vector), PBA at 0x800
//!  config 0x40                 MSI-X capability (table BIR 2 @0, PBA BIR 2 @0x800)
//! ```
//!
//! Kicks: each ring has an eventfd, created here and declared as a doorbell host resource
//! ([`PciDevice::host_resources`]). The VMM installs it where BAR0 decodes: as a KVM
//! ioeventfd (the vCPU never leaves the kernel), and always as a register-handler entry,
//! which catches the write on the vCPU thread when it arrives as a PIO exit
//! (`--doorbell exit`) and signals the same eventfd without entering device code. A KICK
//! write that still reaches [`PciDevice::bar_write`] (no handler entry: the VMM could not
//! install one) signals it too, so a kick is never lost.

use std::sync::Arc;
use std::time::Duration;

use netmap::csb::CsbRing;
use netmap::port::RingKind;
use netmap::ptnet::{self, MAX_RINGS};
use netmap::{NetmapPort, RegionInfo, SharedMem};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::irq::Interrupts;
use super::regs::{self, nic::*, Access, NIC_BAR0_SIZE, NIC_REGS};
use super::stats::PtnetStats;
use super::worker::{RingCtx, Workers};
use super::PtnetError;
use crate::host::{GuestRam, MsiSink};
use crate::pci::{
    msix, BarChange, BarKind, ConfigSpace, HostResource, MsiMessage, PciDevice, PciIds,
};

/// PCI class network / ethernet.
pub const CLASS: u8 = 0x02;
pub const SUBCLASS: u8 = 0x00;
pub const REGS_BAR: u8 = ptnet::NIC_REGS_BAR;
pub const MSIX_BAR: u8 = ptnet::NIC_MSIX_BAR;
pub const MSIX_BAR_SIZE: u64 = 0x1000;
pub const MSIX_TABLE_OFFSET: u64 = 0;
pub const MSIX_PBA_OFFSET: u64 = 0x800;

/// What the NIC offers the guest beyond the port's geometry.
#[derive(Debug, Clone)]
pub struct NicOptions {
    /// PTFEAT bits offered (the guest gets `offered & wanted`).
    pub features: u32,
    /// VNET_HDR_LEN values offered (0 is always accepted); the port has the last word
    /// ([`NetmapPort::set_vnet_hdr_len`]).
    pub vnet_hdr_lens: Vec<u32>,
    /// How long a TX worker keeps polling the CSB after it caught up, before it asks the
    /// guest for a kick and sleeps (0: sleep at once). Trades a core for fewer kicks.
    pub tx_spin: Duration,
}

impl NicOptions {
    /// The virtio-net header offered (PTFEAT VNET_HDR, lengths 10 and 12): the guest may
    /// hand checksums and segmentation to the switch, which converts its frames for ports
    /// without a header (docs/vale.md, "The virtio-net header").
    pub fn with_vnet_hdr() -> Self {
        Self {
            features: FEAT_VNET_HDR,
            vnet_hdr_lens: VNET_HDR_LENS.to_vec(),
            ..Self::default()
        }
    }
}

impl Default for NicOptions {
    /// No virtio-net header offered (ptvmm's default; see [`NicOptions::with_vnet_hdr`]).
    fn default() -> Self {
        Self {
            features: 0,
            vnet_hdr_lens: vec![0],
            tx_spin: Duration::ZERO,
        }
    }
}

/// One CSB array register pair and its mapping.
#[derive(Default)]
struct CsbArray {
    bah: u32,
    bal: u32,
    mem: Option<SharedMem>,
}

/// The ptnet NIC of one port.
pub struct PtnetNic {
    config: ConfigSpace,
    msix_cap: usize,
    irq: Arc<Interrupts>,
    port: Arc<dyn NetmapPort>,
    region: RegionInfo,
    ram: Arc<dyn GuestRam>,
    mac: [u8; 6],
    memid: u16,
    opts: NicOptions,
    ntx: u32,
    nrx: u32,
    features: u32,
    vnet_hdr_len: u32,
    ptctl_status: u32,
    gh: CsbArray,
    hg: CsbArray,
    doorbells: Vec<Arc<EventFd>>,
    stats: Arc<PtnetStats>,
    workers: Option<Workers>,
    create_msgs: Vec<MsiMessage>,
    /// CSB addresses refused so far (misaligned, not in RAM).
    csb_rejects: u64,
    /// The last guest-visible events (CREATE/DELETE, CSB mappings, features, reset), for
    /// the VMM to print when the guest dies.
    events: std::collections::VecDeque<String>,
}

/// How many guest-visible events [`PtnetNic::recent_events`] keeps.
pub const EVENTS_KEPT: usize = 16;

/// Rejected CSB addresses logged as warnings before the log thins out (see
/// [`reject_log_level`]).
pub const REJECTS_LOGGED: u64 = 4;

/// The level of the `n`th rejected CSB address (from 1): a warning for the first
/// [`REJECTS_LOGGED`], then only when `n` is a power of two, debug otherwise. A hostile guest
/// can write bad addresses at port-I/O speed; one warning each would flood the host's log
/// (the nested hostile-guest suite saw hundreds a minute from a paced loop).
pub fn reject_log_level(n: u64) -> log::Level {
    if n <= REJECTS_LOGGED || n.is_power_of_two() {
        log::Level::Warn
    } else {
        log::Level::Debug
    }
}

impl PtnetNic {
    /// The NIC of `port`, with MAC `mac`, reaching guest RAM through `ram` (for the CSB)
    /// and raising interrupts through `msi`; `memid` is the memdev's MEMID.
    pub fn new(
        port: Arc<dyn NetmapPort>,
        mac: [u8; 6],
        ram: Arc<dyn GuestRam>,
        msi: Arc<dyn MsiSink>,
        memid: u16,
    ) -> Result<Self, PtnetError> {
        Self::with_options(port, mac, ram, msi, memid, NicOptions::default())
    }

    /// As [`PtnetNic::new`], with explicit feature and header-length support.
    pub fn with_options(
        port: Arc<dyn NetmapPort>,
        mac: [u8; 6],
        ram: Arc<dyn GuestRam>,
        msi: Arc<dyn MsiSink>,
        memid: u16,
        opts: NicOptions,
    ) -> Result<Self, PtnetError> {
        let region = port.region();
        let (ntx, nrx) = (region.layout.config.tx_rings, region.layout.config.rx_rings);
        let rings = ntx.checked_add(nrx).filter(|&r| r <= MAX_RINGS);
        let rings = rings.ok_or(PtnetError::TooManyRings(ntx.saturating_add(nrx)))?;
        let mut config = ConfigSpace::new(PciIds {
            vendor: regs::VENDOR_ID,
            device: regs::NIC_DEVICE_ID,
            class: CLASS,
            subclass: SUBCLASS,
            subsystem_vendor: regs::SUBSYSTEM_VENDOR_ID,
            subsystem: regs::SUBSYSTEM_ID,
            ..Default::default()
        });
        config.set_interrupt_pin(1);
        config.add_bar(REGS_BAR.into(), BarKind::Io, NIC_BAR0_SIZE)?;
        let mem = BarKind::Memory32 {
            prefetchable: false,
        };
        config.add_bar(MSIX_BAR.into(), mem, MSIX_BAR_SIZE)?;
        let irq = Arc::new(Interrupts::new(rings as u16, msi));
        let (cap, w) = irq.msix().capability(
            MSIX_BAR,
            MSIX_TABLE_OFFSET as u32,
            MSIX_BAR,
            MSIX_PBA_OFFSET as u32,
        );
        let msix_cap = config.add_capability(&cap, &w)?;
        let doorbells = (0..rings)
            .map(|_| EventFd::new(EFD_NONBLOCK).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(PtnetError::EventFd)?;
        Ok(Self {
            config,
            msix_cap,
            irq,
            port,
            region,
            ram,
            mac,
            memid,
            opts,
            ntx,
            nrx,
            features: 0,
            vnet_hdr_len: 0,
            ptctl_status: 0,
            gh: CsbArray::default(),
            hg: CsbArray::default(),
            doorbells,
            stats: Arc::new(PtnetStats::new(ntx, nrx)),
            workers: None,
            create_msgs: Vec::new(),
            csb_rejects: 0,
            events: std::collections::VecDeque::with_capacity(EVENTS_KEPT),
        })
    }

    /// One `(offset in BAR0, eventfd)` per ring, ring order: KICK(i) at `128 + 4*i`.
    pub fn doorbells(&self) -> Vec<(u64, Arc<EventFd>)> {
        self.doorbells
            .iter()
            .enumerate()
            .map(|(i, e)| (kick(i as u32), e.clone()))
            .collect()
    }

    /// The workers' counters (shared; they stay valid across CREATE/DELETE).
    pub fn stats(&self) -> Arc<PtnetStats> {
        self.stats.clone()
    }

    /// Whether the ring workers run (CREATE succeeded, no DELETE since).
    pub fn running(&self) -> bool {
        self.workers.is_some()
    }

    /// The MSI-X messages of every ring's vector as captured by the last CREATE (for a VMM
    /// that sets up irqfd routes then; delivery itself always uses the live table).
    pub fn create_messages(&self) -> &[MsiMessage] {
        &self.create_msgs
    }

    /// How many CSB addresses the guest wrote that were refused (misaligned, not in RAM).
    pub fn csb_rejections(&self) -> u64 {
        self.csb_rejects
    }

    /// The port's MAC.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The address BAR0 (registers, kicks) decodes now.
    pub fn bar0_address(&self) -> Option<u64> {
        self.config.decoded_address(REGS_BAR.into())
    }

    /// Stops the ring workers (DELETE). Shutdown calls this, and so does drop.
    pub fn stop(&mut self) {
        if let Some(w) = self.workers.take() {
            w.stop();
            log::info!("{}: ptnet workers stopped", self.port.name());
        }
    }

    /// Explicit DELETE: the workers complete what the guest published last (TX frames, RX
    /// slots released), then stop. The CSB is the one CREATE used: no BAL write came between,
    /// since a BAL write stops the workers first.
    fn delete(&mut self) {
        if let Some(w) = self.workers.take() {
            w.finish();
            log::info!("{}: ptnet workers stopped (DELETE)", self.port.name());
        }
    }

    /// Guest reset: stops the workers and returns the registers to their power-on values
    /// (CSB unmapped, features and header length cleared).
    pub fn reset(&mut self) {
        self.note("reset: registers back to power-on values".into());
        self.stop();
        self.features = 0;
        if self.vnet_hdr_len != 0 {
            self.port.set_vnet_hdr_len(0);
        }
        self.vnet_hdr_len = 0;
        self.ptctl_status = 0;
        self.gh = CsbArray::default();
        self.hg = CsbArray::default();
        self.create_msgs.clear();
    }

    /// Records a guest-visible event: logged at debug level and kept among the last
    /// [`EVENTS_KEPT`].
    fn note(&mut self, what: String) {
        log::debug!("{}: {what}", self.port.name());
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(what);
    }

    /// The last guest-visible events, oldest first.
    pub fn recent_events(&self) -> Vec<String> {
        self.events.iter().cloned().collect()
    }

    fn rings(&self) -> u32 {
        self.ntx + self.nrx
    }

    /// Reads register `off` (already decoded). [`NIC_REGS`] decides what reads back:
    /// deprecated, reserved and kick offsets read 0.
    fn reg_read(&self, off: u64) -> u32 {
        if regs::access(NIC_REGS, off) == Access::Ignored {
            return 0;
        }
        let c = &self.region.layout.config;
        let m = self.mac;
        match off {
            PTFEAT => self.features,
            PTCTL => self.ptctl_status,
            MAC_LO => u32::from_be_bytes([m[2], m[3], m[4], m[5]]),
            MAC_HI => u32::from_be_bytes([0, 0, m[0], m[1]]),
            NIFP_OFS => self.region.nifp_offset,
            NUM_TX_RINGS => c.tx_rings,
            NUM_RX_RINGS => c.rx_rings,
            NUM_TX_SLOTS => c.tx_slots,
            NUM_RX_SLOTS => c.rx_slots,
            VNET_HDR_LEN => self.vnet_hdr_len,
            HOSTMEMID => self.memid.into(),
            CSB_GH_BAH => self.gh.bah,
            CSB_GH_BAL => self.gh.bal,
            CSB_HG_BAH => self.hg.bah,
            CSB_HG_BAL => self.hg.bal,
            _ => 0,
        }
    }

    /// Writes register `off` (already decoded): a kick, or a register [`NIC_REGS`] marks
    /// read-write; writes anywhere else (read-only, deprecated, reserved) are ignored.
    fn reg_write(&mut self, off: u64, v: u32) {
        if off >= KICK_BASE {
            if let Some(d) = self.doorbells.get(((off - KICK_BASE) / 4) as usize) {
                let _ = d.write(1);
            }
            return;
        }
        if regs::access(NIC_REGS, off) != Access::Rw {
            return;
        }
        match off {
            PTFEAT => {
                self.features = v & self.opts.features;
                self.note(format!("PTFEAT {v:#x} wanted, {:#x} acked", self.features));
            }
            PTCTL => self.ptctl(v),
            VNET_HDR_LEN => {
                let feature = v == 0 || self.features & FEAT_VNET_HDR != 0;
                let offered = v == 0 || self.opts.vnet_hdr_lens.contains(&v);
                if VNET_HDR_LENS.contains(&v)
                    && feature
                    && offered
                    && (v == self.vnet_hdr_len || self.port.set_vnet_hdr_len(v))
                {
                    self.vnet_hdr_len = v;
                }
                self.note(format!(
                    "VNET_HDR_LEN {v} asked, {} in effect",
                    self.vnet_hdr_len
                ));
            }
            CSB_GH_BAH => self.gh.bah = v,
            CSB_HG_BAH => self.hg.bah = v,
            CSB_GH_BAL | CSB_HG_BAL => {
                // Any BAL write is an implicit DELETE.
                self.stop();
                let len = 64 * self.rings() as usize;
                let (ram, name) = (self.ram.clone(), self.port.name().to_string());
                let a = if off == CSB_GH_BAL {
                    &mut self.gh
                } else {
                    &mut self.hg
                };
                a.bal = v;
                let gpa = u64::from(a.bah) << 32 | u64::from(v);
                let why = if gpa == 0 {
                    a.mem = None;
                    None
                } else if !gpa.is_multiple_of(64) {
                    a.mem = None;
                    Some("is not 64-byte aligned")
                } else {
                    a.mem = ram.shared(gpa, len);
                    a.mem.is_none().then_some("is not in guest RAM")
                };
                if let Some(why) = why {
                    self.csb_rejects += 1;
                    let n = self.csb_rejects;
                    log::log!(
                        reject_log_level(n),
                        "{name}: CSB at {gpa:#x}+{len:#x} {why} ({n} rejected so far; after \
                         {REJECTS_LOGGED} only every doubling is a warning)"
                    );
                }
                let a = if off == CSB_GH_BAL {
                    &self.gh
                } else {
                    &self.hg
                };
                let (which, mapped) =
                    (if off == CSB_GH_BAL { "GH" } else { "HG" }, a.mem.is_some());
                self.note(format!(
                    "CSB {which} array at {gpa:#x}: {}",
                    if mapped { "mapped" } else { "unmapped" }
                ));
            }
            _ => {}
        }
    }

    fn ptctl(&mut self, cmd: u32) {
        self.ptctl_status = match cmd {
            CMD_CREATE => self.create().err().unwrap_or(0) as u32,
            CMD_DELETE => {
                self.delete();
                0
            }
            _ => libc::EINVAL as u32,
        };
        let name = match cmd {
            CMD_CREATE => "CREATE",
            CMD_DELETE => "DELETE",
            _ => "unknown command",
        };
        self.note(format!(
            "PTCTL {name} ({cmd}): status {}",
            self.ptctl_status
        ));
    }

    /// CREATE: initialises the CSB from the port's state and starts the workers. Errors are
    /// errnos for PTCTL.
    fn create(&mut self) -> Result<(), i32> {
        if self.workers.is_some() {
            return Err(libc::EBUSY);
        }
        let (Some(gh), Some(hg)) = (self.gh.mem, self.hg.mem) else {
            return Err(libc::ENXIO);
        };
        self.create_msgs = self.irq.messages(self.rings() as u16);
        let mut ctxs = Vec::new();
        for ring in 0..self.rings() {
            let (kind, index, num_slots) = if ring < self.ntx {
                (RingKind::Tx, ring, self.region.layout.config.tx_slots)
            } else {
                (
                    RingKind::Rx,
                    ring - self.ntx,
                    self.region.layout.config.rx_slots,
                )
            };
            let csb = CsbRing::new(&gh, &hg, ring);
            let s = self.port.ring_state(kind, index).map_err(|e| {
                log::error!("{}: ring {ring}: {e}", self.port.name());
                libc::EIO
            })?;
            csb.guest_write_atok(s.hwcur, s.hwcur);
            csb.host_write_ktoa(s.hwcur, s.hwtail);
            ctxs.push(RingCtx {
                ring,
                kind,
                index,
                num_slots,
                initial: s,
                port: self.port.clone(),
                csb,
                doorbell: self.doorbells[ring as usize].clone(),
                irq: self.irq.clone(),
                stats: self.stats.clone(),
                spin: self.opts.tx_spin,
            });
        }
        let w = Workers::start(ctxs).map_err(|e| {
            log::error!("{}: starting ptnet workers: {e}", self.port.name());
            e.raw_os_error().unwrap_or(libc::EIO)
        })?;
        self.workers = Some(w);
        log::info!("{}: ptnet workers started", self.port.name());
        Ok(())
    }
}

impl Drop for PtnetNic {
    fn drop(&mut self) {
        self.stop();
    }
}

impl PciDevice for PtnetNic {
    fn config_read(&mut self, reg: usize) -> u32 {
        self.config.read_reg(reg)
    }

    fn config_write(&mut self, reg: usize, offset: u64, data: &[u8]) -> Vec<BarChange> {
        let changes = self.config.write_config(reg, offset, data);
        let cap = self.msix_cap / 4;
        if reg == cap {
            let control = self
                .config
                .read_u16(self.msix_cap + msix::MESSAGE_CONTROL_OFFSET);
            self.irq.set_control(control);
        }
        changes
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        data.fill(0);
        match bar {
            REGS_BAR => {
                if let Some(off) = regs::decode(offset, data.len()) {
                    data.copy_from_slice(&self.reg_read(off).to_le_bytes());
                }
            }
            MSIX_BAR => {
                let m = self.irq.msix();
                if offset >= MSIX_PBA_OFFSET {
                    m.pba_read(offset - MSIX_PBA_OFFSET, data);
                } else {
                    m.table_read(offset - MSIX_TABLE_OFFSET, data);
                }
            }
            _ => {}
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        match bar {
            REGS_BAR => {
                if let Some(off) = regs::decode(offset, data.len()) {
                    let v = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                    self.reg_write(off, v);
                }
            }
            MSIX_BAR if offset < MSIX_PBA_OFFSET => {
                self.irq.table_write(offset - MSIX_TABLE_OFFSET, data);
            }
            _ => {}
        }
    }

    /// One doorbell per ring: KICK(i) in BAR0.
    fn host_resources(&self) -> Vec<HostResource> {
        self.doorbells()
            .into_iter()
            .map(|(offset, event)| HostResource::Doorbell {
                bar: REGS_BAR,
                offset,
                event,
            })
            .collect()
    }
}

/// A stable MAC for port `name` when the user gives none: locally administered, unicast,
/// from an FNV-1a hash of the name.
pub fn mac_from_name(name: &str) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_le_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}
