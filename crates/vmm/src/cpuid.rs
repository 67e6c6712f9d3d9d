//! Filters KVM_GET_SUPPORTED_CPUID for one vCPU: advertise the hypervisor, and describe a
//! flat topology (one package, `ncpus` cores, one thread each) with the vCPU's APIC id.

use kvm_bindings::kvm_cpuid_entry2;

/// CPUID.1:ECX bit 31 — running under a hypervisor.
const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
/// CPUID.1:EDX bit 28 — more than one logical processor per package.
const LEAF1_EDX_HTT: u32 = 1 << 28;
/// CPUID.0xB/0x1F:ECX[15:8] level types.
const LEVEL_TYPE_SMT: u32 = 1;
const LEVEL_TYPE_CORE: u32 = 2;

/// Bits needed to number `n` things (ceil(log2 n)).
fn bits_for(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

/// Rewrites `entries` (as returned by KVM) for vCPU `apic_id` of `ncpus`.
pub fn filter(entries: &mut [kvm_cpuid_entry2], apic_id: u8, ncpus: u8) {
    let n = u32::from(ncpus);
    let id = u32::from(apic_id);
    for e in entries.iter_mut() {
        match e.function {
            1 => {
                e.ecx |= LEAF1_ECX_HYPERVISOR;
                // EBX[31:24] initial APIC id, [23:16] logical processors per package.
                e.ebx = (e.ebx & 0x0000_ffff) | (id << 24) | (n << 16);
                if n > 1 {
                    e.edx |= LEAF1_EDX_HTT;
                } else {
                    e.edx &= !LEAF1_EDX_HTT;
                }
            }
            4 => {
                // EAX[31:26] cores per package - 1, [25:14] threads sharing this cache - 1.
                let sharing = if (e.eax >> 5) & 0x7 == 3 { n - 1 } else { 0 };
                e.eax = (e.eax & 0x3fff) | ((n - 1) << 26) | (sharing << 14);
            }
            0xb | 0x1f => {
                let (shift, count, kind) = match e.index {
                    0 => (0, 1, LEVEL_TYPE_SMT),
                    1 => (bits_for(n), n, LEVEL_TYPE_CORE),
                    _ => (0, 0, 0),
                };
                e.eax = shift;
                e.ebx = count;
                e.ecx = (kind << 8) | (e.index & 0xff);
                e.edx = id;
            }
            0x8000_0008 => {
                // AMD: ECX[7:0] number of cores - 1, [15:12] APIC id size.
                e.ecx = (e.ecx & !0xf0ff) | (n - 1) | (bits_for(n) << 12);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax: 0xffff_ffff,
            ebx: 0xffff_ffff,
            ecx: 0,
            edx: 0,
            ..Default::default()
        }
    }

    #[test]
    fn leaf1_has_hypervisor_bit_apic_id_and_count() {
        let mut v = vec![entry(1, 0)];
        filter(&mut v, 3, 4);
        assert_ne!(v[0].ecx & LEAF1_ECX_HYPERVISOR, 0);
        assert_eq!(v[0].ebx >> 24, 3);
        assert_eq!((v[0].ebx >> 16) & 0xff, 4);
        assert_eq!(v[0].ebx & 0xffff, 0xffff, "low bits kept");
        assert_ne!(v[0].edx & LEAF1_EDX_HTT, 0);
        filter(&mut v, 0, 1);
        assert_eq!(v[0].edx & LEAF1_EDX_HTT, 0);
    }

    #[test]
    fn extended_topology_describes_flat_cores() {
        let mut v = vec![entry(0xb, 0), entry(0xb, 1), entry(0xb, 2)];
        filter(&mut v, 5, 6);
        assert_eq!((v[0].eax, v[0].ebx, v[0].ecx >> 8, v[0].edx), (0, 1, 1, 5));
        assert_eq!((v[1].eax, v[1].ebx, v[1].ecx >> 8, v[1].edx), (3, 6, 2, 5));
        assert_eq!((v[2].ebx, v[2].ecx >> 8), (0, 0), "end of levels");
    }

    #[test]
    fn bits_for_counts() {
        assert_eq!([1, 2, 3, 4, 5, 32].map(bits_for), [0, 1, 2, 2, 3, 5]);
    }

    #[test]
    fn amd_core_count() {
        let mut v = vec![entry(0x8000_0008, 0)];
        filter(&mut v, 0, 2);
        assert_eq!(v[0].ecx & 0xff, 1);
        assert_eq!((v[0].ecx >> 12) & 0xf, 1);
    }
}
