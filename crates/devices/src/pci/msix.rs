//! MSI-X: the capability's layout, the vector table and the pending-bit array (PBA), and
//! the delivery rules — a vector fires only if MSI-X is enabled, the function is not masked
//! and the vector is not masked; otherwise its pending bit is set and the message is
//! delivered when the mask goes away.
//!
//! ```text
//!  capability (12 bytes, in config space)
//!   +0  message control │ next │ id = 0x11
//!       message control: bit 15 enable, bit 14 function mask, bits 10..0 table size - 1
//!   +4  table offset (bits 31..3) │ table BIR (bits 2..0)
//!   +8  PBA offset   (bits 31..3) │ PBA BIR   (bits 2..0)
//!
//!  table entry i at table offset + 16*i (in the BAR)
//!   +0 message address low │ +4 message address high │ +8 message data │ +12 vector control
//!       vector control: bit 0 mask (set at reset)
//!
//!  PBA: bit i of the little-endian u64 array is vector i's pending bit (read-only)
//! ```
//!
//! Table and PBA accesses are 4 or 8 bytes, naturally aligned; anything else is ignored
//! (reads return 0), as the PCI spec allows.

/// Capability id of MSI-X.
pub const CAPABILITY_ID: u8 = 0x11;
/// Length of the capability in config space.
pub const CAPABILITY_LEN: usize = 12;
/// Offset of message control inside the capability.
pub const MESSAGE_CONTROL_OFFSET: usize = 2;
/// Message control bits.
pub const MSIX_ENABLE: u16 = 1 << 15;
pub const FUNCTION_MASK: u16 = 1 << 14;
/// Most vectors a function may have.
pub const MAX_VECTORS: u16 = 2048;
/// Size of one table entry.
pub const ENTRY_SIZE: u64 = 16;
const VECTOR_MASKED: u32 = 1;

/// An MSI message: write `data` to `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MsiMessage {
    pub addr: u64,
    pub data: u32,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    addr_lo: u32,
    addr_hi: u32,
    data: u32,
    control: u32,
}

impl Default for Entry {
    fn default() -> Self {
        Self {
            addr_lo: 0,
            addr_hi: 0,
            data: 0,
            control: VECTOR_MASKED,
        }
    }
}

impl Entry {
    fn message(&self) -> MsiMessage {
        MsiMessage {
            addr: u64::from(self.addr_hi) << 32 | u64::from(self.addr_lo),
            data: self.data,
        }
    }
    fn masked(&self) -> bool {
        self.control & VECTOR_MASKED != 0
    }
}

/// The MSI-X state of one function.
pub struct MsixConfig {
    table: Vec<Entry>,
    pba: Vec<u64>,
    enabled: bool,
    function_masked: bool,
}

impl MsixConfig {
    /// `vectors` entries (clamped to 1..=2048), all masked, MSI-X disabled.
    pub fn new(vectors: u16) -> Self {
        let n = vectors.clamp(1, MAX_VECTORS) as usize;
        Self {
            table: vec![Entry::default(); n],
            pba: vec![0; n.div_ceil(64)],
            enabled: false,
            function_masked: false,
        }
    }

    pub fn vectors(&self) -> u16 {
        self.table.len() as u16
    }

    /// Bytes of the table in its BAR.
    pub fn table_size(&self) -> u64 {
        self.table.len() as u64 * ENTRY_SIZE
    }

    /// Bytes of the PBA in its BAR (whole u64s).
    pub fn pba_size(&self) -> u64 {
        self.pba.len() as u64 * 8
    }

    /// The capability bytes and their writable masks for [`super::ConfigSpace::add_capability`].
    /// Offsets must be 8-byte aligned; BIRs are BAR indexes 0..=5.
    pub fn capability(
        &self,
        table_bir: u8,
        table_offset: u32,
        pba_bir: u8,
        pba_offset: u32,
    ) -> ([u8; CAPABILITY_LEN], [u8; CAPABILITY_LEN]) {
        let mut data = [0u8; CAPABILITY_LEN];
        data[0] = CAPABILITY_ID;
        data[2..4].copy_from_slice(&(self.vectors() - 1).to_le_bytes());
        data[4..8].copy_from_slice(&((table_offset & !7) | u32::from(table_bir & 7)).to_le_bytes());
        data[8..12].copy_from_slice(&((pba_offset & !7) | u32::from(pba_bir & 7)).to_le_bytes());
        let mut writable = [0u8; CAPABILITY_LEN];
        writable[3] = ((MSIX_ENABLE | FUNCTION_MASK) >> 8) as u8;
        (data, writable)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn function_masked(&self) -> bool {
        self.function_masked
    }

    /// The guest wrote message control (the owner reads it back from config space after
    /// every config write that touches the capability). Returns the pending messages that
    /// became deliverable.
    pub fn set_control(&mut self, control: u16) -> Vec<MsiMessage> {
        self.enabled = control & MSIX_ENABLE != 0;
        self.function_masked = control & FUNCTION_MASK != 0;
        (0..self.table.len())
            .filter_map(|v| self.replay(v))
            .collect()
    }

    /// Vector `vector` fires: its message if deliverable now, else `None` with the pending
    /// bit set. Out-of-range vectors are ignored.
    pub fn trigger(&mut self, vector: u16) -> Option<MsiMessage> {
        let v = usize::from(vector);
        let entry = self.table.get(v)?;
        if self.enabled && !self.function_masked && !entry.masked() {
            Some(entry.message())
        } else {
            self.pba[v / 64] |= 1 << (v % 64);
            None
        }
    }

    /// Whether vector `vector`'s pending bit is set.
    pub fn pending(&self, vector: u16) -> bool {
        let v = usize::from(vector);
        v < self.table.len() && self.pba[v / 64] & (1 << (v % 64)) != 0
    }

    /// Delivers vector `v`'s pending message if it is now deliverable, clearing the bit.
    fn replay(&mut self, v: usize) -> Option<MsiMessage> {
        if !self.pending(v as u16) || !self.enabled || self.function_masked {
            return None;
        }
        let entry = self.table[v];
        if entry.masked() {
            return None;
        }
        self.pba[v / 64] &= !(1 << (v % 64));
        Some(entry.message())
    }

    /// A guest read of the table at `offset` (relative to the table start).
    pub fn table_read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let Some(v) = self.table_index(offset, data.len()) else {
            return;
        };
        let e = &self.table[v];
        let words = [e.addr_lo, e.addr_hi, e.data, e.control];
        let first = (offset % ENTRY_SIZE / 4) as usize;
        for (i, chunk) in data.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&words[first + i].to_le_bytes());
        }
    }

    /// A guest write of the table at `offset`. Returns the pending message delivered if the
    /// write unmasked a pending vector.
    pub fn table_write(&mut self, offset: u64, data: &[u8]) -> Vec<MsiMessage> {
        let Some(v) = self.table_index(offset, data.len()) else {
            return Vec::new();
        };
        let first = (offset % ENTRY_SIZE / 4) as usize;
        let e = &mut self.table[v];
        for (i, chunk) in data.chunks(4).enumerate() {
            let w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            match first + i {
                0 => e.addr_lo = w,
                1 => e.addr_hi = w,
                2 => e.data = w,
                _ => e.control = w & VECTOR_MASKED,
            }
        }
        self.replay(v).into_iter().collect()
    }

    /// A guest read of the PBA at `offset` (relative to the PBA start).
    pub fn pba_read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if !aligned(offset, data.len()) || offset >= self.pba_size() {
            return;
        }
        let q = self.pba[(offset / 8) as usize].to_le_bytes();
        let at = (offset % 8) as usize;
        data.copy_from_slice(&q[at..at + data.len()]);
    }

    /// The table entry an access of `len` bytes at `offset` hits, if valid.
    fn table_index(&self, offset: u64, len: usize) -> Option<usize> {
        if !aligned(offset, len) || offset >= self.table_size() {
            return None;
        }
        Some((offset / ENTRY_SIZE) as usize)
    }
}

/// A 4- or 8-byte naturally aligned access.
fn aligned(offset: u64, len: usize) -> bool {
    matches!(len, 4 | 8) && offset.is_multiple_of(len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: u64 = 0xfee0_1000;

    /// Programs vector `v` with address `ADDR` and data `0x40 + v`, leaving its mask as is.
    fn program(m: &mut MsixConfig, v: u64) {
        let base = v * ENTRY_SIZE;
        assert!(m.table_write(base, &ADDR.to_le_bytes()).is_empty());
        assert!(m
            .table_write(base + 8, &(0x40 + v as u32).to_le_bytes())
            .is_empty());
    }

    fn unmask(m: &mut MsixConfig, v: u64) -> Vec<MsiMessage> {
        m.table_write(v * ENTRY_SIZE + 12, &0u32.to_le_bytes())
    }

    fn msg(v: u32) -> MsiMessage {
        MsiMessage {
            addr: ADDR,
            data: 0x40 + v,
        }
    }

    #[test]
    fn entries_start_masked_and_msix_disabled() {
        let mut m = MsixConfig::new(3);
        let mut b = [0u8; 4];
        for v in 0..3 {
            m.table_read(v * ENTRY_SIZE + 12, &mut b);
            assert_eq!(u32::from_le_bytes(b), 1);
        }
        assert!(!m.enabled());
        program(&mut m, 0);
        assert_eq!(m.trigger(0), None);
        assert!(m.pending(0));
        assert_eq!(m.trigger(3), None, "out of range");
        assert!(!m.pending(3));
    }

    #[test]
    fn pending_while_masked_then_replayed_on_unmask() {
        let mut m = MsixConfig::new(2);
        assert!(m.set_control(MSIX_ENABLE).is_empty());
        program(&mut m, 1);
        assert_eq!(m.trigger(1), None);
        let mut pba = [0u8; 8];
        m.pba_read(0, &mut pba);
        assert_eq!(u64::from_le_bytes(pba), 0b10);
        assert_eq!(unmask(&mut m, 1), vec![msg(1)]);
        assert!(!m.pending(1));
        assert_eq!(m.trigger(1), Some(msg(1)));
        assert!(unmask(&mut m, 1).is_empty(), "nothing pending");
        // Masking again makes it pend again.
        m.table_write(ENTRY_SIZE + 12, &1u32.to_le_bytes());
        assert_eq!(m.trigger(1), None);
        assert!(m.pending(1));
    }

    #[test]
    fn function_mask_and_enable_hold_back_every_vector() {
        let mut m = MsixConfig::new(70);
        for v in [0, 69] {
            program(&mut m, v);
            unmask(&mut m, v);
        }
        assert_eq!(m.pba_size(), 16);
        assert_eq!(m.trigger(69), None, "MSI-X disabled");
        assert!(m.set_control(MSIX_ENABLE | FUNCTION_MASK).is_empty());
        assert!(m.function_masked());
        assert_eq!(m.trigger(0), None);
        let mut hi = [0u8; 4];
        m.pba_read(8, &mut hi);
        assert_eq!(
            u32::from_le_bytes(hi),
            1 << 5,
            "vector 69 is bit 5 of the second u64"
        );
        assert_eq!(m.set_control(MSIX_ENABLE), vec![msg(0), msg(69)]);
        assert_eq!(m.trigger(0), Some(msg(0)));
    }

    #[test]
    fn eight_byte_table_accesses_and_odd_ones_ignored() {
        let mut m = MsixConfig::new(1);
        m.table_write(8, &(0x3_0000_0055u64).to_le_bytes());
        let mut q = [0u8; 8];
        m.table_read(8, &mut q);
        assert_eq!(
            u64::from_le_bytes(q),
            0x1_0000_0055,
            "control keeps only the mask bit"
        );
        m.table_read(0, &mut q);
        assert_eq!(u64::from_le_bytes(q), 0);
        // Odd sizes, misaligned, past the end: ignored, reads give zeros.
        for (off, len) in [
            (0u64, 1usize),
            (0, 2),
            (2, 4),
            (4, 8),
            (16, 4),
            (u64::MAX - 3, 4),
            (0, 16),
        ] {
            let before = {
                let mut b = [0u8; 16];
                m.table_read(0, &mut b[..8]);
                m.table_read(8, &mut b[8..]);
                b
            };
            assert!(m.table_write(off, &vec![0xab; len]).is_empty());
            let mut b = vec![0xcc; len];
            m.table_read(off, &mut b);
            assert!(b.iter().all(|&x| x == 0), "{off:#x}+{len}");
            let mut after = [0u8; 16];
            m.table_read(0, &mut after[..8]);
            m.table_read(8, &mut after[8..]);
            assert_eq!(before, after);
            m.pba_read(off, &mut b);
        }
        let mut b = [0xcc; 4];
        m.pba_read(8, &mut b);
        assert_eq!(b, [0; 4]);
    }

    #[test]
    fn capability_layout() {
        let m = MsixConfig::new(4);
        let (d, w) = m.capability(2, 0, 2, 0x800);
        assert_eq!(d, [0x11, 0, 3, 0, 2, 0, 0, 0, 0x02, 0x08, 0, 0]);
        assert_eq!(w[3], 0xc0);
        assert_eq!(w.iter().filter(|&&x| x != 0).count(), 1);
        assert_eq!(MsixConfig::new(0).vectors(), 1);
        assert_eq!(MsixConfig::new(5000).vectors(), MAX_VECTORS);
    }
}
