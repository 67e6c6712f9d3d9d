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

/// XSAVE state components and the CPUID feature bit each one depends on.
const XSAVE_LEGACY: u64 = 0b11; // x87 and SSE: always there with XSAVE
const XSAVE_LEGACY_SIZE: u32 = 576; // legacy area (512) + XSAVE header (64)
const XSAVE_AVX: u64 = 1 << 2;
const XSAVE_MPX: u64 = 0b11 << 3;
const XSAVE_AVX512: u64 = 0b111 << 5;
const XSAVE_PKRU: u64 = 1 << 9;

fn leaf(entries: &[kvm_cpuid_entry2], function: u32, index: u32) -> Option<&kvm_cpuid_entry2> {
    entries
        .iter()
        .find(|e| e.function == function && e.index == index)
}

/// The XSAVE state components whose CPUID feature bits are offered (x87 and SSE always).
fn xsave_components_offered(entries: &[kvm_cpuid_entry2]) -> u64 {
    let bit = |f: u32, i: u32, reg: fn(&kvm_cpuid_entry2) -> u32, b: u32| {
        leaf(entries, f, i).is_some_and(|e| reg(e) & (1 << b) != 0)
    };
    let mut allowed = XSAVE_LEGACY;
    if bit(1, 0, |e| e.ecx, 28) {
        allowed |= XSAVE_AVX;
    }
    if bit(7, 0, |e| e.ebx, 14) {
        allowed |= XSAVE_MPX;
    }
    if bit(7, 0, |e| e.ebx, 16) {
        allowed |= XSAVE_AVX512;
    }
    if bit(7, 0, |e| e.ecx, 3) {
        allowed |= XSAVE_PKRU;
    }
    allowed
}

/// Empties a CPUID entry, keeping only which leaf and subleaf it is.
fn clear_entry(e: &mut kvm_cpuid_entry2) {
    *e = kvm_cpuid_entry2 {
        function: e.function,
        index: e.index,
        flags: e.flags,
        ..Default::default()
    };
}

/// Keeps leaf 0xD (XSAVE) consistent with the feature bits: a state component whose feature
/// is not offered (say AVX on a CPU model without it) is dropped, and the area sizes are
/// recomputed. Otherwise the guest sizes its XSAVE buffers for fewer components than the
/// CPU writes ("XSAVE consistency problem" at boot, and memory corruption after it).
fn filter_xsave(entries: &mut [kvm_cpuid_entry2]) {
    let xsave = leaf(entries, 1, 0).is_some_and(|e| e.ecx & (1 << 26) != 0);
    let allowed = xsave_components_offered(entries);
    let Some(d0) = leaf(entries, 0xd, 0) else {
        return;
    };
    let xcr0 = if xsave {
        (u64::from(d0.edx) << 32 | u64::from(d0.eax)) & allowed
    } else {
        0
    };
    let mut size = XSAVE_LEGACY_SIZE;
    for e in entries
        .iter_mut()
        .filter(|e| e.function == 0xd && e.index >= 2)
    {
        if e.index < 64 && xcr0 & (1 << e.index) != 0 {
            size = size.max(e.eax.saturating_add(e.ebx));
        } else if e.index < 32 && e.ecx & 1 == 0 {
            // Supervisor components (XSS, reported in ECX bit 0) are kept; user ones dropped.
            clear_entry(e);
        }
    }
    for e in entries
        .iter_mut()
        .filter(|e| e.function == 0xd && e.index == 0)
    {
        if xcr0 == 0 {
            clear_entry(e);
        } else {
            e.eax = xcr0 as u32;
            e.edx = (xcr0 >> 32) as u32;
            e.ebx = size;
            e.ecx = size;
        }
    }
}

/// Rewrites `entries` (as returned by KVM) for vCPU `apic_id` of `ncpus`.
pub fn filter(entries: &mut [kvm_cpuid_entry2], apic_id: u8, ncpus: u8) {
    filter_xsave(entries);
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
    fn xsave_components_follow_the_feature_bits() {
        let mut l1 = entry(1, 0);
        l1.ecx = 1 << 26; // XSAVE, no AVX
        let mut d0 = entry(0xd, 0);
        d0.eax = 0b111; // x87 | SSE | AVX
        d0.edx = 0;
        d0.ebx = 576;
        d0.ecx = 832;
        let mut d2 = entry(0xd, 2);
        d2.eax = 256;
        d2.ebx = 576;
        d2.ecx = 0;
        let mut v = vec![l1, d0, d2];
        filter(&mut v, 0, 1);
        assert_eq!((v[1].eax, v[1].ebx, v[1].ecx), (0b11, 576, 576));
        assert_eq!((v[2].eax, v[2].ebx), (0, 0), "AVX component dropped");

        // With AVX offered, the component stays and the size covers it.
        let mut v = vec![l1, d0, d2];
        v[0].ecx |= 1 << 28;
        v[2] = d2;
        filter(&mut v, 0, 1);
        assert_eq!((v[1].eax, v[1].ebx, v[1].ecx), (0b111, 832, 832));

        // Without XSAVE at all, leaf 0xD says nothing.
        let mut v = vec![entry(1, 0), d0];
        filter(&mut v, 0, 1);
        assert_eq!((v[1].eax, v[1].ecx), (0, 0));
    }

    #[test]
    fn amd_core_count() {
        let mut v = vec![entry(0x8000_0008, 0)];
        filter(&mut v, 0, 2);
        assert_eq!(v[0].ecx & 0xff, 1);
        assert_eq!((v[0].ecx >> 12) & 0xf, 1);
    }
}
