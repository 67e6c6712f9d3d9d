/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ptnet.h — the ptnetmap device ABI as the guest driver sees it
 * (../shared/design/ptnet-abi.md; netmap's sys/net/netmap_virt.h and netmap.h).
 * All values little-endian; register accesses are 4 bytes wide.
 *
 * The host's definition is ptvmm's crates/netmap/src/ptnet.rs; a unit test there reads
 * this file and fails unless every #define with a value is a plain number equal to the
 * Rust constant of the same meaning, and so is every size in a BUILD_BUG_ON below (a new
 * #define must be added to the test's table).
 */
#ifndef PTNET_H
#define PTNET_H

#include <linux/types.h>	/* __u32 ...: this header is also included by the user-space tools */
#ifdef __KERNEL__
#include <linux/build_bug.h>
#endif

#define PTNET_VENDOR_ID		0x1b36
#define PTNETMAP_MEMDEV_ID	0x000c
#define PTNET_NIC_ID		0x000d

/* memdev BAR0 (I/O, read-only) */
#define PTNETMAP_MEM_BAR	1
#define PTNET_MDEV_MEMSIZE_LO	0
#define PTNET_MDEV_MEMSIZE_HI	4
#define PTNET_MDEV_MEMID	8
#define PTNET_MDEV_IF_POOL_OFS	64
#define PTNET_MDEV_IF_POOL_OBJNUM 68
#define PTNET_MDEV_IF_POOL_OBJSZ 72
#define PTNET_MDEV_RING_POOL_OFS 76
#define PTNET_MDEV_RING_POOL_OBJNUM 80
#define PTNET_MDEV_RING_POOL_OBJSZ 84
#define PTNET_MDEV_BUF_POOL_OFS	88
#define PTNET_MDEV_BUF_POOL_OBJNUM 92
#define PTNET_MDEV_BUF_POOL_OBJSZ 96

/* NIC BAR0 (I/O) */
#define PTNET_IO_PTFEAT		0
#define PTNET_IO_PTCTL		4
#define PTNET_IO_MAC_LO		8
#define PTNET_IO_MAC_HI		12
#define PTNET_IO_NIFP_OFS	24
#define PTNET_IO_NUM_TX_RINGS	28
#define PTNET_IO_NUM_RX_RINGS	32
#define PTNET_IO_NUM_TX_SLOTS	36
#define PTNET_IO_NUM_RX_SLOTS	40
#define PTNET_IO_VNET_HDR_LEN	44
#define PTNET_IO_HOSTMEMID	48
#define PTNET_IO_CSB_GH_BAH	52
#define PTNET_IO_CSB_GH_BAL	56
#define PTNET_IO_CSB_HG_BAH	60
#define PTNET_IO_CSB_HG_BAL	64
#define PTNET_IO_KICK_BASE	128

#define PTNETMAP_PTCTL_CREATE	1
#define PTNETMAP_PTCTL_DELETE	2

/* PTFEAT bit: the port carries a virtio-net header (VNET_HDR_LEN 10 or 12 then allowed) */
#define PTNETMAP_F_VNET_HDR	1

/*
 * Rings in total (TX + RX). KICK(i) is at PTNET_IO_KICK_BASE + 4 * i in the 256-byte BAR0
 * whose offsets are masked with 0xff (as upstream's netmap_virt.h), so (256 - 128) / 4 = 32
 * rings can be kicked; the two CSB pages would hold 64. The host uses the same limit
 * (netmap::ptnet::MAX_RINGS): ptvmm --netmap-rings N takes N from 1 to 16 (N TX + N RX).
 */
#define PTNET_MAX_RINGS		32

/* CSB, guest -> host (the guest writes) */
struct ptnet_csb_gh {
	__u32 head;
	__u32 cur;
	__u32 appl_need_kick;
	__u32 sync_flags;
	__u32 pad[12];
};

/* CSB, host -> guest (the host writes) */
struct ptnet_csb_hg {
	__u32 hwcur;
	__u32 hwtail;
	__u32 kern_need_kick;
	__u32 pad[13];
};

/* netmap memory layout (ABI §4) */
struct netmap_slot {
	__u32 buf_idx;
	__u16 len;
	__u16 flags;
	__u64 ptr;
};
#define NS_MOREFRAG		0x0020
/* The longest MOREFRAG chain a VALE port forwards (longer ones are dropped) */
#define NETMAP_MAX_FRAGS	64

#define NETMAP_API		14	/* netmap_if ni_version */
#define NETMAP_RING_HDR		256	/* slot[] starts here */
#define NR_BUF_OFS		0	/* i64 */
#define NR_NUM_SLOTS		8	/* u32 */
#define NR_BUF_SIZE		12	/* u32 */
#define NR_DIR			18	/* u16: 0 TX, 1 RX */
#define NR_HEAD			20	/* u32, the application's */
#define NR_CUR			24	/* u32, the application's */
#define NR_TAIL			28	/* u32, the application's */

#define NIF_VERSION		16	/* u32 ni_version */
#define NIF_TX_RINGS		24
#define NIF_RX_RINGS		28
#define NIF_HOST_TX_RINGS	36
#define NIF_HOST_RX_RINGS	40
#define NIF_RING_OFS		56	/* i64 ring_ofs[] */

#ifdef __KERNEL__
static inline void ptnet_abi_checks(void)
{
	BUILD_BUG_ON(sizeof(struct ptnet_csb_gh) != 64);
	BUILD_BUG_ON(sizeof(struct ptnet_csb_hg) != 64);
	BUILD_BUG_ON(sizeof(struct netmap_slot) != 16);
}
#else
_Static_assert(sizeof(struct ptnet_csb_gh) == 64 && sizeof(struct ptnet_csb_hg) == 64 &&
	       sizeof(struct netmap_slot) == 16, "ptnet ABI sizes");
#endif

#endif
