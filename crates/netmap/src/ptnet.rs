//! The ptnet device ABI (ptnet-abi.md §1): PCI identity, BARs, the register offsets of both
//! functions, PTFEAT bits, PTCTL commands, virtio-net header lengths and the ring limit.
//!
//! This is the one Rust definition: the device models, the test driver and pkt-gen use it,
//! and the guest driver's `guest-images/ptnet/ptnet.h` is checked against it by a test.
//!
//! ```text
//!  ptnet NIC, BAR0 (I/O, 256 bytes, 4-byte accesses, offset & 0xff)
//!   0 PTFEAT        RW  offered & wanted; bit 0 = VNET_HDR
//!   4 PTCTL         RW  write 1 CREATE / 2 DELETE; read = 0 or a positive errno
//!   8 MAC_LO        RO  mac[2]<<24 | mac[3]<<16 | mac[4]<<8 | mac[5]
//!  12 MAC_HI        RO  mac[0]<<8 | mac[1]
//!  16 CSBBAH        --  deprecated, reads 0, writes ignored
//!  20 CSBBAL        --  deprecated, reads 0, writes ignored
//!  24 NIFP_OFS      RO  offset of the netmap_if in the region
//!  28 NUM_TX_RINGS  RO
//!  32 NUM_RX_RINGS  RO
//!  36 NUM_TX_SLOTS  RO
//!  40 NUM_RX_SLOTS  RO
//!  44 VNET_HDR_LEN  RW  0, 10 or 12, kept only if the backend accepts it
//!  48 HOSTMEMID     RO  MEMID of the memdev holding the region
//!  52 CSB_GH_BAH    RW  guest-to-host CSB array, high half
//!  56 CSB_GH_BAL    RW  low half: maps (or with 0, unmaps) the array; stops the workers
//!  60 CSB_HG_BAH    RW  host-to-guest CSB array, high half
//!  64 CSB_HG_BAL    RW  as GH_BAL
//!  68 END           --  68..128 read 0, writes ignored
//! 128 + 4*i KICK(i) W   doorbell of ring i (TX 0..ntx-1, then RX); reads 0
//! 252       KICK(31)    the last one: MAX_RINGS = (256 - 128) / 4 = 32 rings in total
//!
//!  ptnetmap-memdev, BAR0 (I/O, 128 bytes, all read-only)
//!   0 MEMSIZE_LO   4 MEMSIZE_HI   8 MEMID
//!  64 IF_POOL_OFS     68 IF_POOL_OBJNUM    72 IF_POOL_OBJSZ
//!  76 RING_POOL_OFS   80 RING_POOL_OBJNUM  84 RING_POOL_OBJSZ
//!  88 BUF_POOL_OFS    92 BUF_POOL_OBJNUM   96 BUF_POOL_OBJSZ    100 END
//!  memdev BAR1: the port's netmap region at offset 0
//! ```

use crate::abi::csb;

/// PCI vendor of both functions (Red Hat's QEMU range, as netmap uses it).
pub const VENDOR_ID: u16 = 0x1b36;
/// PCI subsystem vendor of both functions.
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x1b36;
/// PCI subsystem id of both functions.
pub const SUBSYSTEM_ID: u16 = 1;
/// PCI device id of the ptnetmap-memdev function.
pub const MEMDEV_DEVICE_ID: u16 = 0x000c;
/// PCI device id of the ptnet NIC function.
pub const NIC_DEVICE_ID: u16 = 0x000d;

/// The memdev's register BAR (I/O, [`MEMDEV_BAR0_SIZE`] bytes).
pub const MEMDEV_REGS_BAR: u8 = 0;
/// The memdev's BAR that maps the port's netmap region.
pub const MEMDEV_MEM_BAR: u8 = 1;
/// The NIC's register BAR (I/O, [`NIC_BAR0_SIZE`] bytes).
pub const NIC_REGS_BAR: u8 = 0;
/// The NIC's MSI-X BAR (table and PBA).
pub const NIC_MSIX_BAR: u8 = 2;

/// Size of the NIC's register BAR.
pub const NIC_BAR0_SIZE: u64 = 256;
/// Size of the memdev's register BAR.
pub const MEMDEV_BAR0_SIZE: u64 = 128;
/// Register offsets are masked with this (both functions), as upstream's `PTNET_IO_MASK`.
pub const REG_OFFSET_MASK: u64 = 0xff;

/// Rings a ptnet port may have in total (TX + RX): one KICK register each from
/// [`nic::KICK_BASE`] to the end of the NIC's BAR0, offsets masked with 0xff (as in
/// upstream netmap's `netmap_virt.h`). The two 4 KiB CSB pages would hold 64; the kick window
/// holds 32. Every layer (VALE region, NIC, CLI) uses this one limit.
pub const MAX_RINGS: u32 = ((NIC_BAR0_SIZE - nic::KICK_BASE) / 4) as u32;

const _: () = {
    assert!(NIC_BAR0_SIZE == REG_OFFSET_MASK + 1);
    assert!(nic::END <= nic::KICK_BASE);
    assert!(MAX_RINGS == 32);
    assert!(
        MAX_RINGS as usize * csb::ENTRY_SIZE <= 4096,
        "a CSB array fits one page"
    );
    assert!(memdev::END <= MEMDEV_BAR0_SIZE);
};

/// NIC register offsets (BAR0) and the values written to them.
pub mod nic {
    pub const PTFEAT: u64 = 0;
    pub const PTCTL: u64 = 4;
    pub const MAC_LO: u64 = 8;
    pub const MAC_HI: u64 = 12;
    pub const CSBBAH: u64 = 16;
    pub const CSBBAL: u64 = 20;
    pub const NIFP_OFS: u64 = 24;
    pub const NUM_TX_RINGS: u64 = 28;
    pub const NUM_RX_RINGS: u64 = 32;
    pub const NUM_TX_SLOTS: u64 = 36;
    pub const NUM_RX_SLOTS: u64 = 40;
    pub const VNET_HDR_LEN: u64 = 44;
    pub const HOSTMEMID: u64 = 48;
    pub const CSB_GH_BAH: u64 = 52;
    pub const CSB_GH_BAL: u64 = 56;
    pub const CSB_HG_BAH: u64 = 60;
    pub const CSB_HG_BAL: u64 = 64;
    pub const END: u64 = 68;
    /// KICK(i) is at `KICK_BASE + 4 * i`, for i below [`super::MAX_RINGS`].
    pub const KICK_BASE: u64 = 128;

    /// Offset of KICK(`ring`) (ring numbering: TX rings, then RX rings).
    pub const fn kick(ring: u32) -> u64 {
        KICK_BASE + 4 * ring as u64
    }

    /// PTCTL command: start the host workers.
    pub const CMD_CREATE: u32 = 1;
    /// PTCTL command: stop the host workers.
    pub const CMD_DELETE: u32 = 2;

    /// PTFEAT bit: the port can carry a virtio-net header.
    pub const FEAT_VNET_HDR: u32 = 1 << 0;

    /// Virtio-net header lengths a guest may ask for.
    pub const VNET_HDR_LENS: [u32; 3] = [0, 10, 12];
}

/// Memdev register offsets (BAR0, all read-only).
pub mod memdev {
    pub const MEMSIZE_LO: u64 = 0;
    pub const MEMSIZE_HI: u64 = 4;
    pub const MEMID: u64 = 8;
    pub const IF_POOL_OFS: u64 = 64;
    pub const IF_POOL_OBJNUM: u64 = 68;
    pub const IF_POOL_OBJSZ: u64 = 72;
    pub const RING_POOL_OFS: u64 = 76;
    pub const RING_POOL_OBJNUM: u64 = 80;
    pub const RING_POOL_OBJSZ: u64 = 84;
    pub const BUF_POOL_OFS: u64 = 88;
    pub const BUF_POOL_OBJNUM: u64 = 92;
    pub const BUF_POOL_OBJSZ: u64 = 96;
    pub const END: u64 = 100;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{nif, ring, slot};

    /// The guest driver's copy of this ABI.
    const PTNET_H: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../guest-images/ptnet/ptnet.h"
    );

    /// Every numeric `#define` of ptnet.h and the Rust constant of the same meaning.
    fn header_names() -> Vec<(&'static str, u64)> {
        vec![
            ("PTNET_VENDOR_ID", VENDOR_ID.into()),
            ("PTNETMAP_MEMDEV_ID", MEMDEV_DEVICE_ID.into()),
            ("PTNET_NIC_ID", NIC_DEVICE_ID.into()),
            ("PTNETMAP_MEM_BAR", MEMDEV_MEM_BAR.into()),
            ("PTNET_MDEV_MEMSIZE_LO", memdev::MEMSIZE_LO),
            ("PTNET_MDEV_MEMSIZE_HI", memdev::MEMSIZE_HI),
            ("PTNET_MDEV_MEMID", memdev::MEMID),
            ("PTNET_MDEV_IF_POOL_OFS", memdev::IF_POOL_OFS),
            ("PTNET_MDEV_IF_POOL_OBJNUM", memdev::IF_POOL_OBJNUM),
            ("PTNET_MDEV_IF_POOL_OBJSZ", memdev::IF_POOL_OBJSZ),
            ("PTNET_MDEV_RING_POOL_OFS", memdev::RING_POOL_OFS),
            ("PTNET_MDEV_RING_POOL_OBJNUM", memdev::RING_POOL_OBJNUM),
            ("PTNET_MDEV_RING_POOL_OBJSZ", memdev::RING_POOL_OBJSZ),
            ("PTNET_MDEV_BUF_POOL_OFS", memdev::BUF_POOL_OFS),
            ("PTNET_MDEV_BUF_POOL_OBJNUM", memdev::BUF_POOL_OBJNUM),
            ("PTNET_MDEV_BUF_POOL_OBJSZ", memdev::BUF_POOL_OBJSZ),
            ("PTNET_IO_PTFEAT", nic::PTFEAT),
            ("PTNET_IO_PTCTL", nic::PTCTL),
            ("PTNET_IO_MAC_LO", nic::MAC_LO),
            ("PTNET_IO_MAC_HI", nic::MAC_HI),
            ("PTNET_IO_NIFP_OFS", nic::NIFP_OFS),
            ("PTNET_IO_NUM_TX_RINGS", nic::NUM_TX_RINGS),
            ("PTNET_IO_NUM_RX_RINGS", nic::NUM_RX_RINGS),
            ("PTNET_IO_NUM_TX_SLOTS", nic::NUM_TX_SLOTS),
            ("PTNET_IO_NUM_RX_SLOTS", nic::NUM_RX_SLOTS),
            ("PTNET_IO_VNET_HDR_LEN", nic::VNET_HDR_LEN),
            ("PTNET_IO_HOSTMEMID", nic::HOSTMEMID),
            ("PTNET_IO_CSB_GH_BAH", nic::CSB_GH_BAH),
            ("PTNET_IO_CSB_GH_BAL", nic::CSB_GH_BAL),
            ("PTNET_IO_CSB_HG_BAH", nic::CSB_HG_BAH),
            ("PTNET_IO_CSB_HG_BAL", nic::CSB_HG_BAL),
            ("PTNET_IO_KICK_BASE", nic::KICK_BASE),
            ("PTNETMAP_PTCTL_CREATE", nic::CMD_CREATE.into()),
            ("PTNETMAP_PTCTL_DELETE", nic::CMD_DELETE.into()),
            ("PTNETMAP_F_VNET_HDR", nic::FEAT_VNET_HDR.into()),
            ("PTNET_MAX_RINGS", MAX_RINGS.into()),
            ("NS_MOREFRAG", slot::F_MOREFRAG.into()),
            ("NETMAP_MAX_FRAGS", crate::abi::MAX_FRAGS as u64),
            ("NETMAP_RING_HDR", ring::HEADER_SIZE as u64),
            ("NR_BUF_OFS", ring::BUF_OFS as u64),
            ("NR_NUM_SLOTS", ring::NUM_SLOTS as u64),
            ("NR_BUF_SIZE", ring::NR_BUF_SIZE as u64),
            ("NETMAP_API", crate::abi::NETMAP_API.into()),
            ("NR_DIR", ring::DIR as u64),
            ("NR_HEAD", ring::HEAD as u64),
            ("NR_CUR", ring::CUR as u64),
            ("NR_TAIL", ring::TAIL as u64),
            ("NIF_VERSION", nif::VERSION as u64),
            ("NIF_TX_RINGS", nif::TX_RINGS as u64),
            ("NIF_RX_RINGS", nif::RX_RINGS as u64),
            ("NIF_HOST_TX_RINGS", nif::HOST_TX_RINGS as u64),
            ("NIF_HOST_RX_RINGS", nif::HOST_RX_RINGS as u64),
            ("NIF_RING_OFS", nif::RING_OFS as u64),
        ]
    }

    /// Every `BUILD_BUG_ON(sizeof(struct NAME) != SIZE)` of ptnet.h and the Rust size.
    fn header_structs() -> Vec<(&'static str, u64)> {
        vec![
            ("ptnet_csb_gh", csb::ENTRY_SIZE as u64),
            ("ptnet_csb_hg", csb::ENTRY_SIZE as u64),
            ("netmap_slot", slot::SIZE as u64),
        ]
    }

    /// `(name, value)` pairs read from a header.
    type Facts = Vec<(String, u64)>;

    /// A C integer literal without suffix: decimal or `0x` hex.
    fn number(text: &str) -> Option<u64> {
        match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None if text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
            None => None,
        }
    }

    /// The numeric facts a header states, `(name, value)`, or a line it cannot check: a
    /// `#define` with a value that is not a plain number (an expression, a function-like
    /// macro, a continued line) or a size check not of the form `sizeof(struct X) != N`.
    /// Defines without a value (include guards) state nothing.
    fn header_facts(text: &str) -> Result<(Facts, Facts), String> {
        let (mut defines, mut sizes) = (Vec::new(), Vec::new());
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            let bad = || format!("ptnet.h:{}: cannot check {line:?}", n + 1);
            if let Some(rest) = line.strip_prefix('#') {
                let Some(def) = rest.trim_start().strip_prefix("define") else {
                    continue;
                };
                let def = def.split("/*").next().unwrap_or("");
                let def = def.split("//").next().unwrap_or("").trim();
                let mut words = def.split_whitespace();
                let name = words.next().ok_or_else(bad)?;
                let value: Vec<&str> = words.collect();
                if name.contains('(') {
                    return Err(bad());
                }
                match value[..] {
                    [] => {}
                    [v] => defines.push((name.to_string(), number(v).ok_or_else(bad)?)),
                    _ => return Err(bad()),
                }
            } else if let Some(rest) = line.strip_prefix("BUILD_BUG_ON(") {
                let rest = rest.strip_prefix("sizeof(struct ").ok_or_else(bad)?;
                let (name, rest) = rest.split_once(')').ok_or_else(bad)?;
                let size = rest.trim().strip_prefix("!=").ok_or_else(bad)?;
                let size = size.trim().strip_suffix(");").ok_or_else(bad)?;
                sizes.push((
                    name.trim().to_string(),
                    number(size.trim()).ok_or_else(bad)?,
                ));
            }
        }
        Ok((defines, sizes))
    }

    /// What differs between a header's facts and the Rust tables: names the table lacks
    /// (a new define must be added to it), names the header lacks, and different values.
    fn compare(what: &str, header: &[(String, u64)], rust: &[(&str, u64)]) -> Vec<String> {
        let mut errors = Vec::new();
        for (name, value) in header {
            match rust.iter().find(|(n, _)| n == name) {
                None => errors.push(format!("{what} {name} = {value} is not in the Rust table")),
                Some((_, r)) if r != value => errors.push(format!(
                    "{what} {name}: ptnet.h says {value}, Rust says {r}"
                )),
                Some(_) => {}
            }
            if header.iter().filter(|(n, _)| n == name).count() > 1 {
                errors.push(format!("{what} {name} appears twice"));
            }
        }
        for (name, _) in rust {
            if !header.iter().any(|(n, _)| n == name) {
                errors.push(format!(
                    "{what} {name} is in the Rust table, not in ptnet.h"
                ));
            }
        }
        errors
    }

    /// Every disagreement between `text` (a ptnet.h) and the Rust ABI.
    fn check_header(text: &str) -> Vec<String> {
        match header_facts(text) {
            Err(e) => vec![e],
            Ok((defines, sizes)) => {
                let mut errors = compare("#define", &defines, &header_names());
                errors.extend(compare("sizeof struct", &sizes, &header_structs()));
                errors
            }
        }
    }

    fn read_header() -> String {
        std::fs::read_to_string(PTNET_H).unwrap_or_else(|e| panic!("{PTNET_H}: {e}"))
    }

    #[test]
    fn ptnet_h_states_the_rust_abi() {
        let text = read_header();
        let errors = check_header(&text);
        assert!(
            errors.is_empty(),
            "ptnet.h and netmap::ptnet disagree:\n{}",
            errors.join("\n")
        );
        let (defines, sizes) = header_facts(&text).unwrap();
        assert_eq!(defines.len(), header_names().len());
        assert_eq!(sizes.len(), header_structs().len());
    }

    #[test]
    fn the_header_check_catches_changed_new_and_uncheckable_lines() {
        let text = read_header();
        let changed = text.replace(
            "#define PTNET_MAX_RINGS\t\t32",
            "#define PTNET_MAX_RINGS\t\t64",
        );
        assert_ne!(changed, text);
        assert_eq!(
            check_header(&changed),
            ["#define PTNET_MAX_RINGS: ptnet.h says 64, Rust says 32"]
        );
        let hex = text.replace("PTNET_NIC_ID\t\t0x000d", "PTNET_NIC_ID\t\t0x000e");
        assert_ne!(hex, text);
        assert_eq!(check_header(&hex).len(), 1);
        // A new define before the include guard's (last) #endif.
        let (body, _) = text.rsplit_once("#endif").unwrap();
        let new = format!("{body}#define PTNET_IO_NEW 72\n#endif\n");
        assert_eq!(
            check_header(&new),
            ["#define PTNET_IO_NEW = 72 is not in the Rust table"]
        );
        let gone = text.replace("#define NIF_RING_OFS", "#define NIF_RING_OFFSET");
        assert_eq!(
            check_header(&gone).len(),
            2,
            "unknown name, and a missing one"
        );
        let size = text.replace("netmap_slot) != 16", "netmap_slot) != 24");
        assert_eq!(check_header(&size).len(), 1);
        for uncheckable in [
            "#define PTNET_FEAT (1 << 0)",
            "#define PTNET_KICK(i) (128 + 4 * (i))",
            "#define PTNET_X 32u",
            "BUILD_BUG_ON(sizeof(struct x) > 16);",
            "BUILD_BUG_ON(offsetof(struct x, y) != 8);",
        ] {
            let t = format!("{text}\n{uncheckable}\n");
            let e = check_header(&t);
            assert!(
                e.len() == 1 && e[0].contains("cannot check"),
                "{uncheckable}: {e:?}"
            );
        }
        assert!(
            check_header("#ifndef G\n#define G\n# define NS_MOREFRAG 0x20 /* x */\n")
                .iter()
                .all(|e| !e.contains("NS_MOREFRAG"))
        );
    }

    #[test]
    fn the_kick_window_holds_max_rings() {
        assert_eq!(MAX_RINGS, 32);
        assert_eq!(nic::kick(0), 128);
        assert_eq!(nic::kick(MAX_RINGS - 1), 252);
        assert_eq!(
            nic::kick(MAX_RINGS) & REG_OFFSET_MASK,
            nic::PTFEAT,
            "wraps to 0"
        );
    }
}
