/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ptnet_uapi.h — the netmap-mode character device /dev/ptnetN of ptnet.ko (docs/ptnet-driver.md).
 *
 * mmap(fd, offset 0, mem_size)           the port's netmap region (netmap_if at nifp_offset,
 *                                        rings, buffers; ABI §4 of ptnet-abi.md)
 * mmap(fd, offset csb_offset, csb_size)  the CSB: page 0 = guest->host (atok) entries,
 *                                        page 1 = host->guest (ktoa) entries, 64 bytes per ring
 * PTNET_IOC_LAYOUT      fills struct ptnet_layout
 * PTNET_IOC_REGISTER    netmap mode: the kernel stack stops using the rings (the interface keeps
 *                       its state but carries no traffic) and the application owns them; the
 *                       netmap_ring head/cur/tail fields in the region are set from the host state
 *                       (all rings; EBUSY while any ring is registered)
 * PTNET_IOC_REGISTER_RING (__u32 i)  the same for TX ring i and RX ring i only (those that
 *                       exist; netmap's NR_REG_ONE_NIC): several files, e.g. one per thread,
 *                       may each own a pair; EBUSY if a ring is taken, EINVAL past the rings
 * PTNET_IOC_UNREGISTER  gives the file's rings back; when no ring is registered any more, back
 *                       to stack mode (also done when the registering file is closed)
 * PTNET_IOC_TXSYNC      for every TX ring of the file: publish ring->head/cur to the host
 *                       (ABI §2), kick if the host asks for it, update ring->tail
 * PTNET_IOC_RXSYNC      for every RX ring of the file: release slots up to ring->head, update
 *                       ring->tail
 * poll()                syncs like the two ioctls; POLLOUT when a TX ring of the file has space,
 *                       POLLIN when an RX ring has packets; otherwise sleeps until an interrupt
 *
 * Busy-poll mode (no syscall per batch): after REGISTER an application may run ABI §2 itself on
 * the mmapped CSB (write atok cur/head with fences, read ktoa hwtail/hwcur) and kick ring i
 * with a 4-byte `outl` to kick_port + 128 + 4*i after ioperm() (root). The ioctls and poll()
 * take the ring state from the CSB, so both styles can be mixed.
 */
#ifndef PTNET_UAPI_H
#define PTNET_UAPI_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define PTNET_UAPI_VERSION	1

struct ptnet_layout {
	__u32 version;		/* PTNET_UAPI_VERSION */
	__u32 memid;		/* the memdev's MEMID */
	__u64 mem_size;		/* bytes of the region (mmap offset 0) */
	__u64 csb_offset;	/* mmap offset of the CSB pages */
	__u32 csb_size;		/* 2 pages */
	__u32 nifp_offset;	/* netmap_if inside the region */
	__u32 num_tx_rings;
	__u32 num_rx_rings;
	__u32 num_tx_slots;
	__u32 num_rx_slots;
	__u32 buf_size;
	__u32 flags;		/* PTNET_LAYOUT_REGISTERED */
	__u8 mac[6];
	__u8 pad[2];
	char ifname[16];
	__u32 kick_port;	/* I/O port of the NIC's BAR0 (KICK(i) at +128+4*i), 0 if none */
	__u32 csb_entry_size;	/* 64 */
};

#define PTNET_LAYOUT_REGISTERED	1

#define PTNET_IOC_LAYOUT	_IOR('p', 1, struct ptnet_layout)
#define PTNET_IOC_REGISTER	_IO('p', 2)
#define PTNET_IOC_UNREGISTER	_IO('p', 3)
#define PTNET_IOC_TXSYNC	_IO('p', 4)
#define PTNET_IOC_RXSYNC	_IO('p', 5)
#define PTNET_IOC_REGISTER_RING	_IOW('p', 6, __u32)

#endif
