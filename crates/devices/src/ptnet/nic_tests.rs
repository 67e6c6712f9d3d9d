//! Register-file tests of the ptnet NIC: identity, every register, PTFEAT and VNET_HDR_LEN
//! negotiation, CSB mapping rules, PTCTL statuses, doorbells, MSI-X, and a deterministic
//! fuzz of register writes and CSB values.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use netmap::ptnet::MAX_RINGS;
use netmap::NetmapPort;
use vale::fuzzing::TempDir;

use super::nic::*;
use super::regs::{self, nic::*, Access, NIC_REGS};
use super::testutil::{open_port, RecordingSink, TestRam};
use super::PtnetError;
use crate::pci::{msix, PciDevice};

pub(crate) const RAM_BASE: u64 = 0x10_0000;
pub(crate) const RAM_LEN: usize = 0x10000;
pub(crate) const GH: u64 = RAM_BASE;
pub(crate) const HG: u64 = RAM_BASE + 0x1000;
pub(crate) const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

pub(crate) struct Rig {
    pub nic: PtnetNic,
    pub ram: Arc<TestRam>,
    pub sink: Arc<RecordingSink>,
    pub port: Arc<dyn NetmapPort>,
    pub vale: Arc<vale::Port>,
    pub dir: TempDir,
}

pub(crate) fn rig_with(name: &str, tx: u32, rx: u32, slots: u32, opts: NicOptions) -> Rig {
    let dir = TempDir::new("ptnet");
    let vale = Arc::new(super::testutil::open_vale(&dir, name, tx, rx, slots));
    rig_on(dir, vale, opts)
}

/// A NIC on the already open port `vale` (whose files are in `dir`).
pub(crate) fn rig_on(dir: TempDir, vale: Arc<vale::Port>, opts: NicOptions) -> Rig {
    let port: Arc<dyn NetmapPort> = vale.clone();
    let ram = TestRam::new(RAM_BASE, RAM_LEN);
    let sink = Arc::new(RecordingSink::default());
    let nic =
        PtnetNic::with_options(port.clone(), MAC, ram.clone(), sink.clone(), 9, opts).unwrap();
    Rig {
        nic,
        ram,
        sink,
        port,
        vale,
        dir,
    }
}

pub(crate) fn rig(name: &str) -> Rig {
    rig_with(name, 1, 1, 64, NicOptions::default())
}

pub(crate) fn rd(nic: &mut PtnetNic, off: u64) -> u32 {
    let mut b = [0xcc; 4];
    nic.bar_read(0, off, &mut b);
    u32::from_le_bytes(b)
}

pub(crate) fn wr(nic: &mut PtnetNic, off: u64, v: u32) {
    nic.bar_write(0, off, &v.to_le_bytes());
}

/// The driver's step 4: GH then HG, high half first.
pub(crate) fn map_csb(nic: &mut PtnetNic, gh: u64, hg: u64) {
    wr(nic, CSB_GH_BAH, (gh >> 32) as u32);
    wr(nic, CSB_GH_BAL, gh as u32);
    wr(nic, CSB_HG_BAH, (hg >> 32) as u32);
    wr(nic, CSB_HG_BAL, hg as u32);
}

/// The driver's step 5: every vector programmed (data 0x40 + v) and unmasked, MSI-X on.
pub(crate) fn enable_msix(nic: &mut PtnetNic, vectors: u64) {
    for v in 0..vectors {
        let e = v * msix::ENTRY_SIZE;
        nic.bar_write(MSIX_BAR, e, &0xfee0_0000u64.to_le_bytes());
        nic.bar_write(MSIX_BAR, e + 8, &(0x40 + v as u32).to_le_bytes());
        nic.bar_write(MSIX_BAR, e + 12, &0u32.to_le_bytes());
    }
    nic.config_write(0x10, 2, &msix::MSIX_ENABLE.to_le_bytes());
}

#[test]
fn identity_bars_and_msix_capability() {
    let Rig { mut nic, .. } = rig_with("valeN1:1", 2, 3, 64, NicOptions::default());
    assert_eq!(nic.config_read(0), 0x000d_1b36);
    assert_eq!(nic.config_read(2) >> 16, 0x0200);
    assert_eq!(nic.config_read(11), 0x0001_1b36);
    assert_eq!(nic.config_read(15) >> 8 & 0xff, 1, "interrupt pin A");
    assert_ne!(nic.config_read(1) >> 16 & 0x10, 0, "capability list");
    assert_eq!(nic.config_read(0x34 / 4) & 0xff, 0x40);
    let cap = nic.config_read(0x10);
    assert_eq!(cap & 0xff, u32::from(msix::CAPABILITY_ID));
    assert_eq!(cap >> 16 & 0x7ff, 4, "5 vectors: table size - 1");
    assert_eq!(nic.config_read(0x11), u32::from(MSIX_BAR));
    assert_eq!(nic.config_read(0x12), 0x800 | u32::from(MSIX_BAR));
    for r in 4..10 {
        nic.config_write(r, 0, &[0xff; 4]);
    }
    assert_eq!(nic.config_read(4), 0xffff_ff01, "BAR0: 256 bytes of I/O");
    assert_eq!(nic.config_read(5), 0);
    assert_eq!(nic.config_read(6), 0xffff_f000, "BAR2: 4 KiB of memory");
    assert!(nic.bar_on_bus(0) && nic.bar_on_bus(2));
}

#[test]
fn every_register_reads_its_value_and_read_only_ones_ignore_writes() {
    let Rig { mut nic, port, .. } = rig_with("valeN2:1", 2, 3, 128, NicOptions::default());
    let info = port.region();
    let expect = |off| match off {
        MAC_LO => Some(0x2233_4455),
        MAC_HI => Some(0x0211),
        NIFP_OFS => Some(info.nifp_offset),
        NUM_TX_RINGS => Some(2),
        NUM_RX_RINGS => Some(3),
        NUM_TX_SLOTS | NUM_RX_SLOTS => Some(128),
        HOSTMEMID => Some(9),
        CSBBAH | CSBBAL => Some(0),
        _ => None,
    };
    for r in NIC_REGS {
        let v = rd(&mut nic, r.offset);
        if let Some(e) = expect(r.offset) {
            assert_eq!(v, e, "{}", r.name);
        }
        if r.access != Access::Rw {
            wr(&mut nic, r.offset, 0xa5a5_a5a5);
            assert_eq!(rd(&mut nic, r.offset), v, "{} ignores writes", r.name);
        }
        assert_eq!(
            rd(&mut nic, r.offset + 0x100),
            v,
            "{} offset masked",
            r.name
        );
    }
    for off in (END..regs::NIC_BAR0_SIZE).step_by(4) {
        wr(&mut nic, off, 0xffff_ffff);
        assert_eq!(rd(&mut nic, off), 0, "{off} reads 0");
    }
    let mut b = [0xcc; 2];
    nic.bar_read(0, MAC_LO, &mut b);
    assert_eq!(b, [0, 0], "only 4-byte accesses");
    nic.bar_write(0, CSB_GH_BAH, &[1, 2]);
    assert_eq!(rd(&mut nic, CSB_GH_BAH), 0);
    assert_eq!(nic.mac(), MAC);
    assert_eq!(rd(&mut nic, PTCTL), 0);
}

#[test]
fn ptfeat_keeps_offered_and_wanted() {
    let Rig { mut nic, .. } = rig("valeN3:1");
    wr(&mut nic, PTFEAT, 0xffff_ffff);
    assert_eq!(rd(&mut nic, PTFEAT), 0, "VALE offers nothing by default");
    let opts = NicOptions {
        features: FEAT_VNET_HDR,
        vnet_hdr_lens: vec![0, 10, 12],
        ..Default::default()
    };
    let Rig { mut nic, .. } = rig_with("valeN3:2", 1, 1, 64, opts);
    wr(&mut nic, PTFEAT, 0xffff_ffff);
    assert_eq!(rd(&mut nic, PTFEAT), FEAT_VNET_HDR);
    wr(&mut nic, PTFEAT, 2);
    assert_eq!(rd(&mut nic, PTFEAT), 0);
}

#[test]
fn vnet_hdr_len_is_kept_only_when_accepted() {
    let Rig { mut nic, .. } = rig("valeN4:1");
    for v in [10, 12, 11, 0xffff_ffff] {
        wr(&mut nic, VNET_HDR_LEN, v);
        assert_eq!(rd(&mut nic, VNET_HDR_LEN), 0, "VALE accepts 0 only ({v})");
    }
    let opts = NicOptions {
        features: FEAT_VNET_HDR,
        vnet_hdr_lens: vec![12],
        ..Default::default()
    };
    let Rig { mut nic, .. } = rig_with("valeN4:2", 1, 1, 64, opts);
    wr(&mut nic, VNET_HDR_LEN, 12);
    assert_eq!(rd(&mut nic, VNET_HDR_LEN), 0, "feature not negotiated");
    wr(&mut nic, PTFEAT, FEAT_VNET_HDR);
    wr(&mut nic, VNET_HDR_LEN, 12);
    assert_eq!(rd(&mut nic, VNET_HDR_LEN), 12);
    for v in [10, 11, 64] {
        wr(&mut nic, VNET_HDR_LEN, v);
        assert_eq!(rd(&mut nic, VNET_HDR_LEN), 12, "{v} rejected");
    }
    wr(&mut nic, VNET_HDR_LEN, 0);
    assert_eq!(rd(&mut nic, VNET_HDR_LEN), 0);
}

#[test]
fn vnet_hdr_len_reaches_the_switch_port_and_reset_clears_it() {
    let Rig { mut nic, vale, .. } = rig_with("valeN4:3", 1, 1, 64, NicOptions::with_vnet_hdr());
    wr(&mut nic, PTFEAT, FEAT_VNET_HDR);
    assert_eq!(rd(&mut nic, PTFEAT), FEAT_VNET_HDR);
    for v in [10, 12, 0, 12] {
        wr(&mut nic, VNET_HDR_LEN, v);
        assert_eq!(rd(&mut nic, VNET_HDR_LEN), v);
        assert_eq!(vale.vnet_hdr_len(), v, "the port follows the register");
    }
    wr(&mut nic, VNET_HDR_LEN, 11);
    assert_eq!((rd(&mut nic, VNET_HDR_LEN), vale.vnet_hdr_len()), (12, 12));
    nic.reset();
    assert_eq!((rd(&mut nic, VNET_HDR_LEN), vale.vnet_hdr_len()), (0, 0));
}

#[test]
fn create_needs_both_csb_arrays_and_reports_errnos() {
    let Rig { mut nic, .. } = rig("valeN5:1");
    wr(&mut nic, PTCTL, CMD_CREATE);
    assert_eq!(rd(&mut nic, PTCTL), libc::ENXIO as u32);
    wr(&mut nic, CSB_GH_BAL, GH as u32);
    wr(&mut nic, PTCTL, CMD_CREATE);
    assert_eq!(rd(&mut nic, PTCTL), libc::ENXIO as u32, "HG missing");
    wr(&mut nic, CSB_HG_BAL, HG as u32);
    wr(&mut nic, PTCTL, CMD_CREATE);
    assert_eq!(rd(&mut nic, PTCTL), 0);
    assert!(nic.running());
    wr(&mut nic, PTCTL, CMD_CREATE);
    assert_eq!(rd(&mut nic, PTCTL), libc::EBUSY as u32);
    wr(&mut nic, PTCTL, 7);
    assert_eq!(rd(&mut nic, PTCTL), libc::EINVAL as u32);
    wr(&mut nic, PTCTL, CMD_DELETE);
    assert_eq!(rd(&mut nic, PTCTL), 0);
    assert!(!nic.running());
    wr(&mut nic, PTCTL, CMD_DELETE);
    assert_eq!(rd(&mut nic, PTCTL), 0, "DELETE when stopped is fine");
    // The guest-visible events are kept, newest last, for the VMM to print if the guest dies.
    let ev = nic.recent_events();
    assert_eq!(ev.len(), 9, "{ev:#?}");
    assert!(ev[0].starts_with("PTCTL CREATE (1): status 6"), "{ev:#?}");
    assert!(ev[1].starts_with("CSB GH array at 0x"), "{ev:#?}");
    assert!(
        ev.iter()
            .any(|e| e == "PTCTL unknown command (7): status 22"),
        "{ev:#?}"
    );
    assert_eq!(ev.last().unwrap(), "PTCTL DELETE (2): status 0");
    for _ in 0..40 {
        wr(&mut nic, PTCTL, CMD_DELETE);
    }
    nic.reset();
    let ev = nic.recent_events();
    assert_eq!(ev.len(), EVENTS_KEPT, "only the last ones are kept");
    assert_eq!(
        ev.last().unwrap(),
        "reset: registers back to power-on values"
    );
}

#[test]
fn csb_mapping_rules() {
    let Rig { mut nic, .. } = rig("valeN6:1");
    let create = |nic: &mut PtnetNic| {
        wr(nic, PTCTL, CMD_CREATE);
        let s = rd(nic, PTCTL);
        wr(nic, PTCTL, CMD_DELETE);
        s
    };
    let enxio = libc::ENXIO as u32;
    map_csb(&mut nic, GH + 32, HG);
    assert_eq!(create(&mut nic), enxio, "misaligned");
    map_csb(&mut nic, GH, HG);
    assert_eq!(rd(&mut nic, CSB_GH_BAL), GH as u32, "BAL reads back");
    assert_eq!(create(&mut nic), 0);
    map_csb(&mut nic, RAM_BASE - 0x1000, HG);
    assert_eq!(create(&mut nic), enxio, "below RAM");
    map_csb(&mut nic, GH, RAM_BASE + RAM_LEN as u64 - 64);
    assert_eq!(
        create(&mut nic),
        enxio,
        "2 entries of 64 bytes straddle the end"
    );
    map_csb(&mut nic, GH, RAM_BASE + RAM_LEN as u64 - 128);
    assert_eq!(create(&mut nic), 0, "just fits");
    map_csb(&mut nic, GH | 1 << 32, HG);
    assert_eq!(create(&mut nic), enxio, "high half counts");
    assert_eq!(rd(&mut nic, CSB_GH_BAH), 1);
    map_csb(&mut nic, GH, HG);
    wr(&mut nic, PTCTL, CMD_CREATE);
    assert!(nic.running());
    wr(&mut nic, CSB_HG_BAL, HG as u32);
    assert!(!nic.running(), "a BAL write is an implicit DELETE");
    wr(&mut nic, PTCTL, CMD_CREATE);
    assert_eq!(rd(&mut nic, PTCTL), 0, "same address maps again");
    wr(&mut nic, CSB_GH_BAH, 0);
    wr(&mut nic, CSB_GH_BAL, 0);
    assert!(!nic.running());
    assert_eq!(create(&mut nic), enxio, "0 unmaps");
}

#[test]
fn create_captures_msix_and_initialises_the_csb() {
    let Rig { mut nic, ram, .. } = rig_with("valeN7:1", 2, 1, 64, NicOptions::default());
    map_csb(&mut nic, GH, HG);
    enable_msix(&mut nic, 3);
    wr(&mut nic, PTCTL, CMD_CREATE);
    assert_eq!(rd(&mut nic, PTCTL), 0);
    let msgs = nic.create_messages();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[2].addr, 0xfee0_0000);
    assert_eq!(msgs[2].data, 0x42);
    let m = ram.mem();
    let hg = (HG - RAM_BASE) as usize;
    assert_eq!(m.load_u32(hg + 4, Relaxed), 63, "TX ring 0 hwtail = N - 1");
    assert_eq!(m.load_u32(hg + 64 + 4, Relaxed), 63, "TX ring 1");
    assert_eq!(m.load_u32(hg + 128 + 4, Relaxed), 0, "RX ring: nothing yet");
    nic.stop();
    assert!(!nic.running());
}

#[test]
fn kick_registers_signal_the_doorbells() {
    let Rig { mut nic, .. } = rig_with("valeN8:1", 2, 2, 64, NicOptions::default());
    let d = nic.doorbells();
    let offs: Vec<u64> = d.iter().map(|(o, _)| *o).collect();
    assert_eq!(offs, [128, 132, 136, 140]);
    wr(&mut nic, 136, 0xdead);
    wr(&mut nic, 136 + 0x100, 0);
    assert_eq!(d[2].1.read().unwrap(), 2);
    assert!(d[0].1.read().is_err(), "nothing on ring 0");
    wr(&mut nic, 144, 1);
    assert_eq!(rd(&mut nic, 136), 0, "kicks read 0");
}

#[test]
fn msix_table_and_pba_through_bar2() {
    let Rig { mut nic, sink, .. } = rig("valeN9:1");
    let mut b = [0u8; 4];
    nic.bar_read(MSIX_BAR, 12, &mut b);
    assert_eq!(u32::from_le_bytes(b), 1, "vectors start masked");
    enable_msix(&mut nic, 2);
    nic.bar_read(MSIX_BAR, 16 + 8, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x41);
    nic.bar_read(MSIX_BAR, MSIX_PBA_OFFSET, &mut b);
    assert_eq!(b, [0; 4]);
    assert!(sink.got.lock().unwrap().is_empty());
}

/// A port that claims more rings than it has (the VALE switch itself refuses > 64).
struct Greedy(Arc<dyn NetmapPort>);

impl NetmapPort for Greedy {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn region(&self) -> netmap::RegionInfo {
        let mut r = self.0.region();
        r.layout.config.tx_rings = 40;
        r.layout.config.rx_rings = 25;
        r
    }
    fn ring_state(
        &self,
        k: netmap::RingKind,
        ring: u32,
    ) -> Result<netmap::SyncResult, netmap::PortError> {
        self.0.ring_state(k, ring)
    }
    fn txsync(&self, r: u32, h: u32, c: u32) -> Result<netmap::SyncResult, netmap::PortError> {
        self.0.txsync(r, h, c)
    }
    fn rxsync(&self, r: u32, h: u32, c: u32) -> Result<netmap::SyncResult, netmap::PortError> {
        self.0.rxsync(r, h, c)
    }
    fn rx_wait(
        &self,
        r: u32,
        seen: u32,
        t: Option<std::time::Duration>,
    ) -> Result<bool, netmap::PortError> {
        self.0.rx_wait(r, seen, t)
    }
    fn rx_waker(&self, r: u32) -> Result<Arc<dyn netmap::port::Waker>, netmap::PortError> {
        self.0.rx_waker(r)
    }
}

#[test]
fn too_many_rings_are_refused() {
    let dir = TempDir::new("ptnet");
    let port = Arc::new(Greedy(open_port(&dir, "valeN10:1", 1, 1, 64)));
    let ram = TestRam::new(RAM_BASE, RAM_LEN);
    let r = PtnetNic::new(port, MAC, ram, Arc::new(RecordingSink::default()), 1);
    assert!(matches!(r, Err(PtnetError::TooManyRings(65))));
}

#[test]
fn thirty_two_rings_fit_the_kick_window() {
    assert_eq!(MAX_RINGS, 32);
    let Rig { mut nic, .. } = rig_with("valeN12:1", 16, 16, 4, NicOptions::default());
    let d = nic.doorbells();
    assert_eq!(d.len(), 32);
    assert_eq!(d[31].0, 252);
    wr(&mut nic, 252, 1);
    assert_eq!(d[31].1.read().unwrap(), 1);
    map_csb(&mut nic, GH, HG);
    wr(&mut nic, PTCTL, CMD_CREATE);
    assert_eq!(
        rd(&mut nic, PTCTL),
        0,
        "32 CSB entries of 64 bytes fit a page each"
    );
}

#[test]
fn mac_from_name_is_stable_local_and_unicast() {
    let a = mac_from_name("vale0:1");
    assert_eq!(a, mac_from_name("vale0:1"));
    assert_ne!(a, mac_from_name("vale0:2"));
    for n in ["", "vale0:1", "x", "valeabc:zz"] {
        let m = mac_from_name(n);
        assert_eq!(m[0] & 0x03, 0x02, "{n}: locally administered unicast");
    }
}

/// xorshift64*: deterministic pseudo-random numbers.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn fuzz_register_writes_and_csb_values_never_panic() {
    let Rig {
        mut nic, ram, port, ..
    } = rig_with("valeN11:1", 2, 2, 16, NicOptions::default());
    let mem = ram.mem();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut creates = 0;
    let interesting = [0, GH, HG, GH + 8, RAM_BASE + RAM_LEN as u64, u64::MAX - 63];
    for i in 0..3000 {
        let r = rng.next();
        let v = rng.next();
        match r % 8 {
            0 => {
                let a = interesting[(v % interesting.len() as u64) as usize];
                map_csb(&mut nic, a, HG);
            }
            1 => {
                wr(&mut nic, PTCTL, (v % 4) as u32);
                creates += u32::from(nic.running() && v % 4 == 1);
            }
            2 => {
                // A random CSB word in the two pages, while the workers may be running.
                let off = ((v >> 8) % 0x2000 / 4 * 4) as usize;
                let val = match v % 3 {
                    0 => (v >> 32) as u32,
                    1 => (v >> 32) as u32 % 20,
                    _ => u32::MAX,
                };
                mem.store_u32(off, val, Relaxed);
            }
            3 => wr(&mut nic, (v % 256) & !3, (v >> 32) as u32),
            4 => nic.bar_write(0, v % 300, &v.to_le_bytes()[..(r >> 8) as usize % 9]),
            5 => nic.bar_write(
                MSIX_BAR,
                v % 0x1100,
                &v.to_le_bytes()[..(r >> 8) as usize % 9],
            ),
            6 => {
                let _ = nic.config_write((v % 70) as usize, (r >> 8) % 5, &v.to_le_bytes()[..4]);
            }
            _ => {
                let mut b = [0u8; 4];
                nic.bar_read((r >> 8) as u8 % 4, v % 0x1000, &mut b);
                let _ = nic.config_read((v % 70) as usize);
            }
        }
        if i % 500 == 0 {
            for (_, d) in nic.doorbells() {
                let _ = d.write(1);
            }
        }
    }
    let st = nic.stats();
    eprintln!("{creates} CREATEs, tx {:?}, rx {:?}", st.tx(), st.rx());
    assert!(creates >= 10, "the workers ran");
    nic.stop();
    // The port is still healthy: its own state is in range.
    for k in [netmap::RingKind::Tx, netmap::RingKind::Rx] {
        for ring in 0..2 {
            let s = port.ring_state(k, ring).unwrap();
            assert!(s.hwcur < 16 && s.hwtail < 16);
        }
    }
}

/// Keeps the text of every warning logged in this test binary (tests filter by port name).
struct WarnCapture(std::sync::Mutex<Vec<String>>);

impl log::Log for WarnCapture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
            v.push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

static WARNINGS: WarnCapture = WarnCapture(std::sync::Mutex::new(Vec::new()));

/// A hostile guest writing bad CSB addresses in a loop (tests/nested/ptnet-hostile.sh) must
/// not flood the host's log: a few warnings, then one per doubling of the count.
#[test]
fn rejected_csb_addresses_do_not_flood_the_log() {
    log::set_logger(&WARNINGS).expect("no other logger in this test binary");
    log::set_max_level(log::LevelFilter::Warn);
    let Rig { mut nic, .. } = rig("valeN41:1");
    for i in 0..10_000u64 {
        // Past the end of RAM, then misaligned in RAM.
        map_csb(
            &mut nic,
            RAM_BASE + RAM_LEN as u64 + 64 * i,
            GH + 8 + i % 7 * 8,
        );
    }
    assert_eq!(nic.csb_rejections(), 20_000);
    let warnings: Vec<String> = WARNINGS
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains("valeN41:1"))
        .cloned()
        .collect();
    // 4 first ones, then 8, 16, .., 16384.
    assert_eq!(warnings.len(), 4 + 12, "{warnings:#?}");
    assert!(warnings[0].contains("is not in guest RAM (1 rejected so far"));
    assert!(warnings[1].contains("is not 64-byte aligned (2 rejected so far"));
    assert!(warnings.last().unwrap().contains("(16384 rejected so far"));
    assert_eq!(reject_log_level(5), log::Level::Debug);
    assert_eq!(reject_log_level(1 << 40), log::Level::Warn);
    // Accepted addresses are not counted.
    map_csb(&mut nic, GH, HG);
    assert_eq!(nic.csb_rejections(), 20_000);
}
