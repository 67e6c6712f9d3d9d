//! Loads a Linux bzImage, its initramfs and command line into guest memory and writes the
//! zero page (`struct boot_params`) for the 64-bit boot protocol.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use linux_loader::cmdline::Cmdline;
use linux_loader::loader::bootparam::boot_params;
use linux_loader::loader::{load_cmdline, BzImage, KernelLoader};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};

use crate::layout::{
    ACPI_START, CMDLINE_MAX_SIZE, CMDLINE_START, HIMEM_START, MMIO_HOLE_START, ZERO_PAGE_START,
};
use crate::memory::E820Entry;

/// Offsets and values of the x86 boot protocol header (Documentation/arch/x86/boot.rst).
const HDR_MAGIC_OFFSET: usize = 0x202;
const HDR_MAGIC: &[u8; 4] = b"HdrS";
const HDR_VERSION_OFFSET: usize = 0x206;
const HDR_XLOADFLAGS_OFFSET: usize = 0x236;
const HDR_END: usize = 0x268;
/// Boot protocol 2.12 introduced `xloadflags`.
const MIN_BOOT_PROTOCOL: u16 = 0x20c;
/// xloadflags bit 0: the kernel has the 64-bit entry point at load address + 0x200.
const XLF_KERNEL_64: u16 = 1 << 0;
/// Offset of the 64-bit entry point from the protected-mode kernel's load address.
pub const KERNEL_64BIT_ENTRY_OFFSET: u64 = 0x200;
const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
const KERNEL_LOADER_OTHER: u8 = 0xff;
const PAGE_SIZE: u64 = 4096;

/// Errors while preparing the guest to boot. Each names the file or limit involved.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("Cannot read kernel {path}: {source}")]
    KernelRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Kernel {0} is not a bzImage (no 'HdrS' boot header)")]
    NotBzImage(PathBuf),
    #[error("Kernel {path} uses boot protocol {version:#x}; 64-bit boot needs 2.12 or newer")]
    OldBootProtocol { path: PathBuf, version: u16 },
    #[error("Kernel {0} has no 64-bit entry point (XLF_KERNEL_64 not set)")]
    Not64Bit(PathBuf),
    #[error("Cannot load kernel {path}: {source}")]
    KernelLoad {
        path: PathBuf,
        #[source]
        source: linux_loader::loader::Error,
    },
    #[error("Cannot read initrd {path}: {source}")]
    InitrdRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "Initrd {path} ({size} bytes) does not fit in guest memory; give the guest more --memory"
    )]
    InitrdTooBig { path: PathBuf, size: u64 },
    #[error("Invalid kernel command line: {0}")]
    Cmdline(String),
    #[error("Cannot write {0} to guest memory")]
    GuestWrite(&'static str),
}

/// What the vCPU setup needs to know about the loaded kernel.
#[derive(Debug, Clone, Copy)]
pub struct BootInfo {
    /// Guest-physical address of the 64-bit entry point.
    pub entry: GuestAddress,
    /// Guest-physical address of the zero page (passed in RSI).
    pub zero_page: GuestAddress,
}

/// Checks that `header` (the first bytes of a kernel file) is a 64-bit capable bzImage.
pub fn check_bzimage_header(path: &Path, header: &[u8]) -> Result<(), BootError> {
    if header.len() < HDR_END || &header[HDR_MAGIC_OFFSET..HDR_MAGIC_OFFSET + 4] != HDR_MAGIC {
        return Err(BootError::NotBzImage(path.to_owned()));
    }
    let u16_at = |o: usize| u16::from_le_bytes([header[o], header[o + 1]]);
    let version = u16_at(HDR_VERSION_OFFSET);
    if version < MIN_BOOT_PROTOCOL {
        return Err(BootError::OldBootProtocol {
            path: path.to_owned(),
            version,
        });
    }
    if u16_at(HDR_XLOADFLAGS_OFFSET) & XLF_KERNEL_64 == 0 {
        return Err(BootError::Not64Bit(path.to_owned()));
    }
    Ok(())
}

/// Opens the kernel and checks its header without loading it (for early CLI validation).
pub fn open_kernel(path: &Path) -> Result<File, BootError> {
    let read_err = |source| BootError::KernelRead {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    if file.metadata().map_err(read_err)?.is_dir() {
        return Err(read_err(std::io::Error::from_raw_os_error(libc::EISDIR)));
    }
    let mut header = vec![0u8; HDR_END];
    let mut got = 0;
    while got < HDR_END {
        match file.read(&mut header[got..]).map_err(read_err)? {
            0 => break,
            n => got += n,
        }
    }
    check_bzimage_header(path, &header[..got])?;
    file.seek(SeekFrom::Start(0)).map_err(read_err)?;
    Ok(file)
}

/// Loads everything the guest kernel needs and returns where to start it.
pub fn load_linux(
    mem: &GuestMemoryMmap,
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: &str,
    e820: &[E820Entry],
) -> Result<BootInfo, BootError> {
    let mut file = open_kernel(kernel)?;
    let loaded =
        BzImage::load(mem, None, &mut file, Some(GuestAddress(HIMEM_START))).map_err(|source| {
            BootError::KernelLoad {
                path: kernel.to_owned(),
                source,
            }
        })?;
    let mut hdr = loaded
        .setup_header
        .ok_or_else(|| BootError::NotBzImage(kernel.to_owned()))?;

    let mut cl = Cmdline::new(CMDLINE_MAX_SIZE).map_err(|e| BootError::Cmdline(e.to_string()))?;
    cl.insert_str(cmdline)
        .map_err(|e| BootError::Cmdline(e.to_string()))?;
    load_cmdline(mem, GuestAddress(CMDLINE_START), &cl)
        .map_err(|e| BootError::Cmdline(e.to_string()))?;

    if let Some(path) = initrd {
        let (addr, size) = load_initrd(mem, path, loaded.kernel_end, hdr.initrd_addr_max)?;
        hdr.ramdisk_image = addr as u32;
        hdr.ramdisk_size = size as u32;
    }

    hdr.type_of_loader = KERNEL_LOADER_OTHER;
    hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    hdr.cmd_line_ptr = CMDLINE_START as u32;
    hdr.cmdline_size = (cmdline.len() + 1) as u32;

    let mut params = boot_params {
        hdr,
        acpi_rsdp_addr: ACPI_START,
        ..Default::default()
    };
    for (slot, e) in params.e820_table.iter_mut().zip(e820) {
        slot.addr = e.addr;
        slot.size = e.size;
        slot.r#type = e.kind;
    }
    params.e820_entries = e820.len().min(params.e820_table.len()) as u8;
    mem.write_obj(params, GuestAddress(ZERO_PAGE_START))
        .map_err(|_| BootError::GuestWrite("zero page"))?;

    Ok(BootInfo {
        entry: loaded.kernel_load.unchecked_add(KERNEL_64BIT_ENTRY_OFFSET),
        zero_page: GuestAddress(ZERO_PAGE_START),
    })
}

/// Puts the initrd as high as the kernel allows in low RAM, above the kernel image.
fn load_initrd(
    mem: &GuestMemoryMmap,
    path: &Path,
    kernel_end: u64,
    initrd_addr_max: u32,
) -> Result<(u64, u64), BootError> {
    let read_err = |source| BootError::InitrdRead {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_dir() {
        return Err(read_err(std::io::Error::from_raw_os_error(libc::EISDIR)));
    }
    let size = meta.len();
    let too_big = || BootError::InitrdTooBig {
        path: path.to_owned(),
        size,
    };
    let low_end = mem
        .iter()
        .map(|r| r.start_addr().raw_value() + r.len())
        .filter(|&end| end <= MMIO_HOLE_START)
        .max()
        .unwrap_or(0);
    let top = low_end.min(u64::from(initrd_addr_max) + 1);
    let addr = top.checked_sub(size).ok_or_else(too_big)? & !(PAGE_SIZE - 1);
    if addr < kernel_end.next_multiple_of(PAGE_SIZE) {
        return Err(too_big());
    }
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, size as usize)
        .map_err(|e| read_err(std::io::Error::other(e.to_string())))?;
    Ok((addr, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake bzImage header with the given protocol version and xloadflags.
    pub(crate) fn fake_header(version: u16, xloadflags: u16) -> Vec<u8> {
        let mut h = vec![0u8; 0x400];
        h[0x1f1] = 1; // setup_sects
        h[HDR_MAGIC_OFFSET..HDR_MAGIC_OFFSET + 4].copy_from_slice(HDR_MAGIC);
        h[HDR_VERSION_OFFSET..HDR_VERSION_OFFSET + 2].copy_from_slice(&version.to_le_bytes());
        h[0x211] = 1; // loadflags: LOADED_HIGH
        h[0x214..0x218].copy_from_slice(&(HIMEM_START as u32).to_le_bytes()); // code32_start
        h[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
        h[HDR_XLOADFLAGS_OFFSET..HDR_XLOADFLAGS_OFFSET + 2]
            .copy_from_slice(&xloadflags.to_le_bytes());
        h
    }

    #[test]
    fn header_checks() {
        let p = Path::new("k");
        assert!(check_bzimage_header(p, &fake_header(0x20f, 1)).is_ok());
        assert!(matches!(
            check_bzimage_header(p, &fake_header(0x20f, 0)),
            Err(BootError::Not64Bit(_))
        ));
        assert!(matches!(
            check_bzimage_header(p, &fake_header(0x20a, 1)),
            Err(BootError::OldBootProtocol { version: 0x20a, .. })
        ));
        assert!(matches!(
            check_bzimage_header(p, b"\x7fELF"),
            Err(BootError::NotBzImage(_))
        ));
        let mut bad = fake_header(0x20f, 1);
        bad[HDR_MAGIC_OFFSET] = b'X';
        assert!(matches!(
            check_bzimage_header(p, &bad),
            Err(BootError::NotBzImage(_))
        ));
    }

    fn write_tmp(name: &str, data: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ptvmm-boot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    #[test]
    fn zero_page_initrd_and_cmdline() {
        let mem = crate::memory::create_guest_memory(64 << 20).unwrap();
        let mut kernel = fake_header(0x20f, 1);
        kernel.extend_from_slice(&[0x90; 4096]);
        let kpath = write_tmp("bzImage", &kernel);
        let ipath = write_tmp("initrd", &[0xab; 10_000]);
        let e820 = crate::memory::e820_map(64 << 20);
        let info = load_linux(
            &mem,
            &kpath,
            Some(&ipath),
            "console=ttyS0 -- echo hi",
            &e820,
        )
        .unwrap();
        assert_eq!(info.entry, GuestAddress(HIMEM_START + 0x200));
        let params: boot_params = mem.read_obj(info.zero_page).unwrap();
        let hdr = params.hdr;
        assert_eq!({ hdr.boot_flag }, 0xaa55);
        assert_eq!({ hdr.type_of_loader }, 0xff);
        assert_eq!({ hdr.cmd_line_ptr }, CMDLINE_START as u32);
        assert_eq!({ params.acpi_rsdp_addr }, ACPI_START);
        assert_eq!(params.e820_entries as usize, e820.len());
        let (rd, rs) = ({ hdr.ramdisk_image } as u64, { hdr.ramdisk_size } as u64);
        assert_eq!(rs, 10_000);
        assert_eq!(rd % PAGE_SIZE, 0);
        assert!(rd + rs <= 64 << 20);
        assert_eq!(mem.read_obj::<u8>(GuestAddress(rd + 9_999)).unwrap(), 0xab);
        let mut cl = [0u8; 25];
        mem.read_slice(&mut cl, GuestAddress(CMDLINE_START))
            .unwrap();
        assert_eq!(&cl[..24], b"console=ttyS0 -- echo hi");
        assert_eq!(cl[24], 0);
    }

    #[test]
    fn initrd_too_big_or_missing() {
        let mem = crate::memory::create_guest_memory(64 << 20).unwrap();
        let mut kernel = fake_header(0x20f, 1);
        kernel.extend_from_slice(&[0x90; 4096]);
        let kpath = write_tmp("bzImage2", &kernel);
        let big = write_tmp("big-initrd", &vec![0u8; 65 << 20]);
        let e820 = crate::memory::e820_map(64 << 20);
        assert!(matches!(
            load_linux(&mem, &kpath, Some(&big), "", &e820),
            Err(BootError::InitrdTooBig { .. })
        ));
        let missing = Path::new("/nonexistent/initrd");
        assert!(matches!(
            load_linux(&mem, &kpath, Some(missing), "", &e820),
            Err(BootError::InitrdRead { .. })
        ));
        assert!(matches!(
            load_linux(&mem, Path::new("/nonexistent/k"), None, "", &e820),
            Err(BootError::KernelRead { .. })
        ));
    }
}
