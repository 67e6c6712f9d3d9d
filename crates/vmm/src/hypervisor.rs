//! Opening /dev/kvm with errors a user can act on, checking the capabilities ptvmm relies
//! on, and recognising the software KVM (`kvm_pvm`) that cannot run a stock kernel.

use std::path::Path;

use kvm_ioctls::{Cap, Kvm};

use crate::error::{Error, Result};

/// Capabilities the VMM uses, with the name shown when one is missing.
pub const REQUIRED_CAPS: &[(Cap, &str)] = &[
    (
        Cap::Irqchip,
        "KVM_CAP_IRQCHIP (in-kernel IOAPIC and LAPICs)",
    ),
    (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
    (Cap::SetTssAddr, "KVM_CAP_SET_TSS_ADDR"),
    (Cap::Pit2, "KVM_CAP_PIT2 (in-kernel PIT)"),
    (Cap::Irqfd, "KVM_CAP_IRQFD"),
    (Cap::Ioeventfd, "KVM_CAP_IOEVENTFD"),
    (Cap::ExtCpuid, "KVM_CAP_EXT_CPUID"),
    (Cap::MpState, "KVM_CAP_MP_STATE"),
    (Cap::IrqRouting, "KVM_CAP_IRQ_ROUTING"),
];

const KVM_API_VERSION: i32 = 12;

/// Opens /dev/kvm and checks the API version and capabilities.
pub fn open_kvm() -> Result<Kvm> {
    let kvm = Kvm::new().map_err(|e| match e.errno() {
        libc::ENOENT | libc::ENXIO | libc::ENODEV => Error::NoKvm,
        libc::EACCES | libc::EPERM => Error::KvmPermission,
        _ => Error::KvmOpen(e),
    })?;
    let version = kvm.get_api_version();
    if version != KVM_API_VERSION {
        return Err(Error::KvmApiVersion(version));
    }
    for (cap, name) in REQUIRED_CAPS {
        if !kvm.check_extension(*cap) {
            return Err(Error::KvmCapability(name));
        }
    }
    Ok(kvm)
}

/// True when the host's KVM is the software `kvm_pvm` module, which emulates guest ring 0
/// and fails on a stock distribution kernel.
pub fn is_software_kvm() -> bool {
    Path::new("/sys/module/kvm_pvm").exists()
}

/// The hint added to an emulation failure on a software KVM.
pub const SOFTWARE_KVM_HINT: &str =
    "this host's KVM is the software kvm_pvm module, which cannot run a stock kernel; \
     run Linux guests under the nested harness (scripts/nested)";
