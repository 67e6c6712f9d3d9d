//! A type-0 PCI configuration space: a 256-byte register file with a writable-bits mask and
//! a write-1-to-clear mask, BARs (I/O and 32-bit memory) with sizing and relocation, and a
//! capability list. The owner learns of BAR moves and decode toggles from [`BarChange`]s.
//!
//! ```text
//!  0x00 ┌ device id        │ vendor id        ┐   0x04 ┌ status           │ command         ┐
//!  0x08 │ class │ subclass │ prog-if │ rev    │   0x0c │ bist │ type(0)   │ lat   │ cls     │
//!  0x10 │ BAR0 .. BAR5 (0x10..0x27)           │   0x2c │ subsystem id     │ subsys vendor   │
//!  0x30 │ expansion ROM (absent: reads 0)     │   0x34 │ reserved               │ cap ptr  │
//!  0x3c └ max_lat │ min_gnt │ int pin │ int line   0x40.. capabilities, dword aligned
//!
//!  command: bit 0 I/O decode, bit 1 memory decode, bit 2 bus master, bit 10 INTx disable
//!  status:  bit 4 capability list; bits 15..11 and 8 are write-1-to-clear error bits
//!
//!  I/O BAR:     31 ............ 2 │ 1 reserved │ 0 = 1
//!  memory BAR:  31 ...... 4 │ 3 prefetchable │ 2:1 type (00 = 32-bit) │ 0 = 0
//! ```
//!
//! A BAR's writable bits are the address bits above its size, so the guest's all-ones
//! sizing write reads back as the size mask with the flag bits, as on hardware.

/// Size of the configuration space in bytes.
pub const CONFIG_SIZE: usize = 256;
/// Number of 32-bit registers.
pub const NUM_REGS: usize = CONFIG_SIZE / 4;
/// Number of BARs of a type-0 header.
pub const NUM_BARS: usize = 6;

const VENDOR_ID: usize = 0x00;
const COMMAND: usize = 0x04;
const STATUS: usize = 0x06;
const REVISION: usize = 0x08;
const HEADER_TYPE: usize = 0x0e;
const BAR0: usize = 0x10;
const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
const CAPABILITIES_POINTER: usize = 0x34;
const INTERRUPT_LINE: usize = 0x3c;
const INTERRUPT_PIN: usize = 0x3d;
/// First byte available to capabilities.
const CAPABILITIES_START: usize = 0x40;

/// Command register bits.
pub const COMMAND_IO: u16 = 1 << 0;
pub const COMMAND_MEMORY: u16 = 1 << 1;
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
const COMMAND_PARITY: u16 = 1 << 6;
const COMMAND_SERR: u16 = 1 << 8;
const COMMAND_INTX_DISABLE: u16 = 1 << 10;
const COMMAND_WRITABLE: u16 = COMMAND_IO
    | COMMAND_MEMORY
    | COMMAND_BUS_MASTER
    | COMMAND_PARITY
    | COMMAND_SERR
    | COMMAND_INTX_DISABLE;
/// Status register bits.
const STATUS_CAPABILITIES: u16 = 1 << 4;
const STATUS_W1C: u16 = 0xf900;

const BAR_IO: u32 = 1;
const BAR_IO_FLAGS: u32 = 0x3;
const BAR_MEM_PREFETCHABLE: u32 = 1 << 3;
const BAR_MEM_FLAGS: u32 = 0xf;
/// I/O ports are 16 bits on x86: a BAR beyond them decodes nothing.
const IO_SPACE_END: u64 = 0x1_0000;
const MEM32_SPACE_END: u64 = 1 << 32;

/// The kind of address space a BAR decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// Port I/O.
    Io,
    /// 32-bit memory, prefetchable or not.
    Memory32 { prefetchable: bool },
}

/// A change in the address a BAR decodes: it moved, or decode was turned on or off.
/// `None` means the BAR does not decode (decode disabled, or an address outside the space).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarChange {
    pub bar: u8,
    pub kind: BarKind,
    pub size: u64,
    pub old: Option<u64>,
    pub new: Option<u64>,
}

/// Errors of building a configuration space.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("BAR {0} does not exist")]
    NoSuchBar(usize),
    #[error("BAR {0} is already set up")]
    BarInUse(usize),
    #[error("BAR size {0:#x} is not a power of two in range")]
    BadBarSize(u64),
    #[error("Capability of {0} bytes does not fit in configuration space")]
    NoCapabilitySpace(usize),
    #[error("Capability needs at least an id and a next pointer")]
    ShortCapability,
}

/// Fixed identity of a function.
#[derive(Clone, Copy, Debug, Default)]
pub struct PciIds {
    pub vendor: u16,
    pub device: u16,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    pub revision: u8,
    pub subsystem_vendor: u16,
    pub subsystem: u16,
}

#[derive(Clone, Copy, Debug)]
struct Bar {
    kind: BarKind,
    size: u64,
}

/// A type-0 configuration space.
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    writable: [u8; CONFIG_SIZE],
    w1c: [u8; CONFIG_SIZE],
    bars: [Option<Bar>; NUM_BARS],
    /// Offset of the last capability, whose next pointer a new one is chained to.
    last_capability: Option<usize>,
    /// First free byte for the next capability.
    next_free: usize,
}

impl ConfigSpace {
    /// A function with `ids` and no BARs, capabilities or interrupt pin.
    pub fn new(ids: PciIds) -> Self {
        let mut c = Self {
            bytes: [0; CONFIG_SIZE],
            writable: [0; CONFIG_SIZE],
            w1c: [0; CONFIG_SIZE],
            bars: [None; NUM_BARS],
            last_capability: None,
            next_free: CAPABILITIES_START,
        };
        c.set_u16(VENDOR_ID, ids.vendor);
        c.set_u16(VENDOR_ID + 2, ids.device);
        c.bytes[REVISION] = ids.revision;
        c.bytes[REVISION + 1] = ids.prog_if;
        c.bytes[REVISION + 2] = ids.subclass;
        c.bytes[REVISION + 3] = ids.class;
        c.bytes[HEADER_TYPE] = 0;
        c.set_u16(SUBSYSTEM_VENDOR_ID, ids.subsystem_vendor);
        c.set_u16(SUBSYSTEM_VENDOR_ID + 2, ids.subsystem);
        c.set_mask_u16(COMMAND, COMMAND_WRITABLE, 0);
        c.set_mask_u16(STATUS, 0, STATUS_W1C);
        c.writable[INTERRUPT_LINE] = 0xff;
        c
    }

    /// Sets the legacy interrupt pin (1 = INTA#).
    pub fn set_interrupt_pin(&mut self, pin: u8) {
        self.bytes[INTERRUPT_PIN] = pin;
    }

    /// Declares BAR `index` of `kind` and `size` bytes (a power of two; at least 4 for I/O,
    /// 16 for memory). It starts unassigned (address 0).
    pub fn add_bar(&mut self, index: usize, kind: BarKind, size: u64) -> Result<(), ConfigError> {
        let (min, flags, limit) = match kind {
            BarKind::Io => (4, BAR_IO, IO_SPACE_END),
            BarKind::Memory32 { prefetchable } => (
                16,
                if prefetchable {
                    BAR_MEM_PREFETCHABLE
                } else {
                    0
                },
                MEM32_SPACE_END / 2,
            ),
        };
        let slot = self.bars.get(index).ok_or(ConfigError::NoSuchBar(index))?;
        if slot.is_some() {
            return Err(ConfigError::BarInUse(index));
        }
        if !size.is_power_of_two() || size < min || size > limit {
            return Err(ConfigError::BadBarSize(size));
        }
        self.bars[index] = Some(Bar { kind, size });
        let off = BAR0 + 4 * index;
        let flag_bits = if kind == BarKind::Io {
            BAR_IO_FLAGS
        } else {
            BAR_MEM_FLAGS
        };
        let mask = !(size as u32 - 1) & !flag_bits;
        self.bytes[off..off + 4].copy_from_slice(&flags.to_le_bytes());
        self.writable[off..off + 4].copy_from_slice(&mask.to_le_bytes());
        Ok(())
    }

    /// Appends a capability. `data` starts with the capability id; its byte 1 (the next
    /// pointer) is filled in here. `writable` gives the guest-writable bits of each byte
    /// (missing bytes are read-only). Returns the capability's offset.
    pub fn add_capability(&mut self, data: &[u8], writable: &[u8]) -> Result<usize, ConfigError> {
        if data.len() < 2 {
            return Err(ConfigError::ShortCapability);
        }
        let off = self.next_free;
        let end = off + data.len();
        if end > CONFIG_SIZE {
            return Err(ConfigError::NoCapabilitySpace(data.len()));
        }
        self.bytes[off..end].copy_from_slice(data);
        self.bytes[off + 1] = 0;
        for (i, w) in writable.iter().take(data.len()).enumerate() {
            self.writable[off + i] = if i == 1 { 0 } else { *w };
        }
        match self.last_capability {
            Some(last) => self.bytes[last + 1] = off as u8,
            None => {
                self.bytes[CAPABILITIES_POINTER] = off as u8;
                let status = self.u16_at(STATUS) | STATUS_CAPABILITIES;
                self.set_u16(STATUS, status);
            }
        }
        self.last_capability = Some(off);
        self.next_free = end.next_multiple_of(4);
        Ok(off)
    }

    /// Reads register `reg` (dword index); out-of-range registers read 0.
    pub fn read_reg(&self, reg: usize) -> u32 {
        if reg >= NUM_REGS {
            return 0;
        }
        let off = reg * 4;
        self.bytes
            .get(off..off + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a little-endian 16-bit value at byte `offset` (0 if out of range).
    pub fn read_u16(&self, offset: usize) -> u16 {
        if offset >= CONFIG_SIZE - 1 {
            return 0;
        }
        self.u16_at(offset)
    }

    /// The guest writes `data` at byte `offset` of register `reg`. Read-only bits keep their
    /// value, write-1-to-clear bits clear where a 1 is written. Returns the BARs whose decoded
    /// address changed. Accesses that cross the register or the space are ignored.
    pub fn write_config(&mut self, reg: usize, offset: u64, data: &[u8]) -> Vec<BarChange> {
        let Some(start) = reg
            .checked_mul(4)
            .and_then(|r| r.checked_add(usize::try_from(offset).ok()?))
        else {
            return Vec::new();
        };
        if data.is_empty() || offset as usize + data.len() > 4 || start + data.len() > CONFIG_SIZE {
            return Vec::new();
        }
        let before = self.decoded_all();
        for (i, &v) in data.iter().enumerate() {
            let o = start + i;
            let (w, c) = (self.writable[o], self.w1c[o]);
            self.bytes[o] = ((self.bytes[o] & !w) | (v & w)) & !(v & c);
        }
        let after = self.decoded_all();
        (0..NUM_BARS)
            .filter(|&i| before[i] != after[i])
            .filter_map(|i| {
                let bar = self.bars[i]?;
                Some(BarChange {
                    bar: i as u8,
                    kind: bar.kind,
                    size: bar.size,
                    old: before[i],
                    new: after[i],
                })
            })
            .collect()
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.u16_at(COMMAND)
    }

    /// Whether the guest allows the function to master the bus (DMA, MSI).
    pub fn bus_master(&self) -> bool {
        self.command() & COMMAND_BUS_MASTER != 0
    }

    /// The address BAR `index` is programmed with, decoding or not.
    pub fn bar_address(&self, index: usize) -> Option<u64> {
        let bar = self.bars.get(index).copied().flatten()?;
        let raw = self.read_reg(BAR0 / 4 + index);
        Some(match bar.kind {
            BarKind::Io => u64::from(raw & !BAR_IO_FLAGS),
            BarKind::Memory32 { .. } => u64::from(raw & !BAR_MEM_FLAGS),
        })
    }

    /// The kind and size of BAR `index`, if it exists.
    pub fn bar(&self, index: usize) -> Option<(BarKind, u64)> {
        self.bars
            .get(index)
            .copied()
            .flatten()
            .map(|b| (b.kind, b.size))
    }

    /// The address BAR `index` decodes now: decode enabled for its kind, a non-zero address
    /// and the whole range inside its address space.
    pub fn decoded_address(&self, index: usize) -> Option<u64> {
        let bar = self.bars.get(index).copied().flatten()?;
        let addr = self.bar_address(index)?;
        let (enable, end) = match bar.kind {
            BarKind::Io => (COMMAND_IO, IO_SPACE_END),
            BarKind::Memory32 { .. } => (COMMAND_MEMORY, MEM32_SPACE_END),
        };
        let on = self.command() & enable != 0;
        (on && addr != 0 && addr + bar.size <= end).then_some(addr)
    }

    fn decoded_all(&self) -> [Option<u64>; NUM_BARS] {
        std::array::from_fn(|i| self.decoded_address(i))
    }

    fn u16_at(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.bytes[off], self.bytes[off + 1]])
    }

    fn set_u16(&mut self, off: usize, v: u16) {
        self.bytes[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn set_mask_u16(&mut self, off: usize, writable: u16, w1c: u16) {
        self.writable[off..off + 2].copy_from_slice(&writable.to_le_bytes());
        self.w1c[off..off + 2].copy_from_slice(&w1c.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> ConfigSpace {
        ConfigSpace::new(PciIds {
            vendor: 0x1b36,
            device: 0x000d,
            class: 0x02,
            revision: 1,
            subsystem_vendor: 0x1b36,
            subsystem: 1,
            ..Default::default()
        })
    }

    fn write32(c: &mut ConfigSpace, reg: usize, v: u32) -> Vec<BarChange> {
        c.write_config(reg, 0, &v.to_le_bytes())
    }

    #[test]
    fn read_only_bits_stay_and_writable_bits_change() {
        let mut c = space();
        assert_eq!(c.read_reg(0), 0x000d_1b36);
        assert_eq!(c.read_reg(2), 0x0200_0001);
        assert_eq!(c.read_reg(11), 0x0001_1b36);
        write32(&mut c, 0, 0xffff_ffff);
        write32(&mut c, 2, 0);
        assert_eq!(c.read_reg(0), 0x000d_1b36);
        assert_eq!(c.read_reg(2), 0x0200_0001);
        write32(&mut c, 1, 0xffff_ffff);
        assert_eq!(c.command(), COMMAND_WRITABLE);
        assert!(c.bus_master());
        c.write_config(15, 0, &[0x0b]);
        assert_eq!(c.read_reg(15) & 0xff, 0x0b);
        c.write_config(15, 1, &[0x04]);
        assert_eq!(c.read_reg(15) >> 8 & 0xff, 0, "interrupt pin is read-only");
        // Accesses crossing the register or the space are ignored.
        assert!(c.write_config(1, 3, &[0, 0]).is_empty());
        assert!(c.write_config(64, 0, &[1]).is_empty());
        assert!(c.write_config(usize::MAX, 0, &[1]).is_empty());
        assert_eq!(c.read_reg(64), 0);
        assert_eq!(c.read_reg(usize::MAX), 0);
    }

    #[test]
    fn status_error_bits_are_write_one_to_clear() {
        let mut c = space();
        c.bytes[STATUS + 1] = 0x80;
        c.write_config(1, 2, &[0xff, 0x00]);
        assert_eq!(c.read_u16(STATUS), 0x8000, "writing 0 keeps the bit");
        c.write_config(1, 2, &[0x00, 0x80]);
        assert_eq!(c.read_u16(STATUS), 0);
    }

    #[test]
    fn io_and_memory_bars_size_by_all_ones() {
        let mut c = space();
        c.add_bar(0, BarKind::Io, 256).unwrap();
        c.add_bar(1, BarKind::Memory32 { prefetchable: true }, 0x10_0000)
            .unwrap();
        c.add_bar(
            2,
            BarKind::Memory32 {
                prefetchable: false,
            },
            0x4000,
        )
        .unwrap();
        assert_eq!(c.read_reg(4), 1);
        assert_eq!(c.read_reg(5), 0x8);
        for r in 4..10 {
            write32(&mut c, r, 0xffff_ffff);
        }
        assert_eq!(c.read_reg(4), 0xffff_ff01);
        assert_eq!(c.read_reg(5), 0xfff0_0008);
        assert_eq!(c.read_reg(6), 0xffff_c000);
        assert_eq!(c.read_reg(7), 0, "absent BAR reads 0");
        assert_eq!(
            c.bar(1),
            Some((BarKind::Memory32 { prefetchable: true }, 0x10_0000))
        );
    }

    #[test]
    fn bad_bars_are_rejected() {
        let mut c = space();
        assert_eq!(c.add_bar(6, BarKind::Io, 4), Err(ConfigError::NoSuchBar(6)));
        assert_eq!(
            c.add_bar(0, BarKind::Io, 6),
            Err(ConfigError::BadBarSize(6))
        );
        assert_eq!(
            c.add_bar(0, BarKind::Io, 2),
            Err(ConfigError::BadBarSize(2))
        );
        assert_eq!(
            c.add_bar(0, BarKind::Io, 0x2_0000),
            Err(ConfigError::BadBarSize(0x2_0000))
        );
        c.add_bar(0, BarKind::Io, 4).unwrap();
        assert_eq!(c.add_bar(0, BarKind::Io, 4), Err(ConfigError::BarInUse(0)));
    }

    #[test]
    fn relocation_and_decode_toggles_report_bar_changes() {
        let mut c = space();
        c.add_bar(0, BarKind::Io, 256).unwrap();
        c.add_bar(1, BarKind::Memory32 { prefetchable: true }, 0x1000)
            .unwrap();
        // Addresses programmed with decode off: no change yet.
        assert!(write32(&mut c, 4, 0xc100).is_empty());
        assert!(write32(&mut c, 5, 0xc000_1000).is_empty());
        assert_eq!(c.bar_address(0), Some(0xc100));
        let on = c.write_config(1, 0, &[(COMMAND_IO | COMMAND_MEMORY) as u8]);
        assert_eq!(
            on,
            vec![
                BarChange {
                    bar: 0,
                    kind: BarKind::Io,
                    size: 256,
                    old: None,
                    new: Some(0xc100)
                },
                BarChange {
                    bar: 1,
                    kind: BarKind::Memory32 { prefetchable: true },
                    size: 0x1000,
                    old: None,
                    new: Some(0xc000_1000)
                },
            ]
        );
        // Guest relocation while decoding; low bits of the address are not writable.
        let mv = write32(&mut c, 5, 0xd000_0fff);
        assert_eq!(mv.len(), 1);
        assert_eq!(
            (mv[0].old, mv[0].new),
            (Some(0xc000_1000), Some(0xd000_0000))
        );
        // A word write to the upper half moves it too.
        let mv = c.write_config(5, 2, &[0x00, 0xe0]);
        assert_eq!(mv[0].new, Some(0xe000_0000));
        // An I/O BAR pushed beyond 64 KiB decodes nothing.
        let mv = write32(&mut c, 4, 0xffff_ffff);
        assert_eq!((mv[0].old, mv[0].new), (Some(0xc100), None));
        write32(&mut c, 4, 0xc200);
        let off = c.write_config(1, 0, &[COMMAND_IO as u8]);
        assert_eq!(off.len(), 1);
        assert_eq!((off[0].bar, off[0].new), (1, None));
        assert_eq!(c.decoded_address(0), Some(0xc200));
        assert!(write32(&mut c, 5, 0xc000_0000).is_empty(), "decode off");
    }

    #[test]
    fn capability_list_walks_from_the_pointer() {
        let mut c = space();
        assert_eq!(c.read_u16(STATUS) & STATUS_CAPABILITIES, 0);
        let a = c
            .add_capability(&[0x11, 0xaa, 1, 2, 3], &[0, 0xff, 0xff])
            .unwrap();
        let b = c.add_capability(&[0x09, 0, 7, 0], &[]).unwrap();
        assert_eq!((a, b), (0x40, 0x48));
        assert_ne!(c.read_u16(STATUS) & STATUS_CAPABILITIES, 0);
        let mut walk = vec![];
        let mut p = c.read_reg(CAPABILITIES_POINTER / 4) as usize & 0xff;
        while p != 0 && walk.len() < 48 {
            let r = c.read_reg(p / 4) >> (8 * (p % 4));
            walk.push((p, r as u8));
            p = (r >> 8) as usize & 0xff;
        }
        assert_eq!(walk, vec![(0x40, 0x11), (0x48, 0x09)]);
        // Byte 2 of the first is writable, the next pointer is not.
        c.write_config(0x10, 1, &[0x55, 0x66, 0x77]);
        assert_eq!(c.read_reg(0x10), 0x0266_4811);
        assert_eq!(
            c.add_capability(&[1], &[]),
            Err(ConfigError::ShortCapability)
        );
        assert_eq!(
            c.add_capability(&[1; 200], &[]),
            Err(ConfigError::NoCapabilitySpace(200))
        );
    }
}
