// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * kvm-hold — runs in the nested harness's L1 for its whole life (scripts/nested): holds one idle
 * KVM VM with one vCPU whose local APIC is hardware-disabled, then sleeps.
 *
 * Why: KVM flips kernel static keys when the first VM is created and the last one destroyed
 * (preempt_notifier_key, checked in __schedule) and when an APIC is created or enabled
 * (apic_hw_disabled, apic_sw_disabled). Each flip patches live kernel text with int3
 * (text_poke_bp) while L1's other vCPUs execute it. Under QEMU's multi-threaded TCG this
 * cross-modifying code occasionally livelocked L1: caught twice from QEMU's monitor with the
 * vCPUs looping between __schedule+0x2ab — the jump label of fire_sched_out_preempt_notifiers —
 * and exc_int3 (docs/testing.md). With this VM alive the keys' counts never return to zero, so
 * booting and stopping guests in L1 patches no kernel text.
 *
 * Prints "kvm-hold: ready" once everything is held; exits 1 with a message on any error.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MSR_IA32_APICBASE 0x1b
#define APIC_DEFAULT_BASE 0xfee00000ULL	/* no enable bit (11): hardware-disabled */

static void die(const char *what)
{
	fprintf(stderr, "kvm-hold: %s: %m\n", what);
	exit(1);
}

int main(void)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} msrs;
	int kvm, vm, vcpu;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("open /dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die("KVM_CREATE_IRQCHIP");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = 1;
	msrs.e.index = MSR_IA32_APICBASE;
	msrs.e.data = APIC_DEFAULT_BASE;
	if (ioctl(vcpu, KVM_SET_MSRS, &msrs) != 1)
		die("KVM_SET_MSRS (APIC base, disabled)");
	printf("kvm-hold: ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
