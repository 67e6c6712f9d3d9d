//! Guest RAM: where it lives in the guest-physical address space (around the 32-bit hole)
//! and the e820 map that tells the guest kernel about it.

use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::layout::{
    ACPI_START, BIOS_END, EBDA_START, HIMEM_START, MMIO_HOLE_START, RAM_64BIT_START,
};

/// e820 entry types.
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

/// One e820 entry: `[addr, addr + size)` of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// The guest-physical ranges backed by RAM for a guest of `mem_size` bytes: one below the
/// 32-bit hole and, when it does not fit, one starting at 4 GiB.
pub fn ram_ranges(mem_size: u64) -> Vec<(GuestAddress, u64)> {
    let low = mem_size.min(MMIO_HOLE_START);
    let mut ranges = vec![(GuestAddress(0), low)];
    if mem_size > low {
        ranges.push((GuestAddress(RAM_64BIT_START), mem_size - low));
    }
    ranges
}

/// The e820 map for a guest of `mem_size` bytes (at least 1 MiB + a little).
pub fn e820_map(mem_size: u64) -> Vec<E820Entry> {
    let mut map = vec![
        E820Entry {
            addr: 0,
            size: EBDA_START,
            kind: E820_RAM,
        },
        E820Entry {
            addr: ACPI_START,
            size: BIOS_END - ACPI_START,
            kind: E820_RESERVED,
        },
    ];
    for (start, size) in ram_ranges(mem_size) {
        let (start, size) = if start.0 == 0 {
            (HIMEM_START, size - HIMEM_START)
        } else {
            (start.0, size)
        };
        map.push(E820Entry {
            addr: start,
            size,
            kind: E820_RAM,
        });
    }
    map
}

/// Allocates guest RAM (anonymous, private mappings; pages are touched lazily).
pub fn create_guest_memory(
    mem_size: u64,
) -> Result<GuestMemoryMmap, vm_memory::mmap::FromRangesError> {
    let ranges: Vec<(GuestAddress, usize)> = ram_ranges(mem_size)
        .into_iter()
        .map(|(a, s)| (a, s as usize))
        .collect();
    GuestMemoryMmap::from_ranges(&ranges)
}

#[cfg(test)]
mod tests {
    use vm_memory::GuestMemoryBackend;

    use super::*;
    use crate::layout::MMIO_HOLE_SIZE;

    const MIB: u64 = 1 << 20;

    #[test]
    fn small_guest_is_one_range_below_the_hole() {
        assert_eq!(ram_ranges(512 * MIB), vec![(GuestAddress(0), 512 * MIB)]);
        let map = e820_map(512 * MIB);
        assert_eq!(
            map,
            vec![
                E820Entry {
                    addr: 0,
                    size: 0x9fc00,
                    kind: E820_RAM
                },
                E820Entry {
                    addr: 0xe0000,
                    size: 0x20000,
                    kind: E820_RESERVED
                },
                E820Entry {
                    addr: MIB,
                    size: 511 * MIB,
                    kind: E820_RAM
                },
            ]
        );
    }

    #[test]
    fn big_guest_skips_the_32bit_hole() {
        let size = 4096 * MIB;
        let ranges = ram_ranges(size);
        assert_eq!(ranges[0], (GuestAddress(0), 3072 * MIB));
        assert_eq!(ranges[1], (GuestAddress(4096 * MIB), 1024 * MIB));
        let map = e820_map(size);
        let ram: u64 = map
            .iter()
            .filter(|e| e.kind == E820_RAM)
            .map(|e| e.size)
            .sum();
        assert_eq!(ram, size - (MIB - 0x9fc00));
        for e in &map {
            let end = e.addr + e.size;
            assert!(
                end <= MMIO_HOLE_START || e.addr >= MMIO_HOLE_START + MMIO_HOLE_SIZE,
                "{e:?} overlaps the hole"
            );
        }
        // Entries are sorted and disjoint.
        for w in map.windows(2) {
            assert!(w[0].addr + w[0].size <= w[1].addr);
        }
    }

    #[test]
    fn guest_memory_matches_the_ranges() {
        let mem = create_guest_memory(64 * MIB).unwrap();
        assert_eq!(mem.num_regions(), 1);
        assert!(mem.address_in_range(GuestAddress(64 * MIB - 1)));
        assert!(!mem.address_in_range(GuestAddress(64 * MIB)));
    }
}
