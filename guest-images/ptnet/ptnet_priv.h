/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ptnet_priv.h — what the parts of ptnet.ko share: the memdev and NIC state, the ring
 * helpers of ABI §2, and the functions one part calls in another.
 */
#ifndef PTNET_PRIV_H
#define PTNET_PRIV_H

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/netdevice.h>
#include <linux/etherdevice.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/list.h>
#include <linux/gfp.h>
#include <linux/rtnetlink.h>
#include <linux/miscdevice.h>
#include <linux/idr.h>
#include <linux/poll.h>
#include <linux/wait.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <linux/virtio_net.h>
#include <asm/barrier.h>

#include "ptnet.h"
#include "ptnet_uapi.h"

#define DRV_NAME "ptnet"

/* ptnet_nm_register's ring argument for PTNET_IOC_REGISTER: every ring. */
#define PTNET_RING_ALL	U32_MAX

struct ptnet_memdev {
	struct pci_dev *pdev;
	void __iomem *regs;
	void *mem;		/* the netmap region, BAR1, memsize bytes */
	phys_addr_t mem_phys;
	u64 memsize;
	u32 memid;
	u32 if_ofs, if_num, if_sz;
	u32 ring_ofs, ring_num, ring_sz;
	u32 buf_ofs, buf_num, buf_sz;
	struct list_head list;
};

struct ptnet_info;

struct ptnet_queue {
	struct ptnet_info *pi;
	unsigned int kring;		/* ring number: TX 0..ntx-1, then RX */
	unsigned int qidx;		/* netdev queue index */
	bool rx;
	struct ptnet_csb_gh *atok;
	struct ptnet_csb_hg *ktoa;
	void *ring;			/* netmap_ring header in BAR1 */
	struct netmap_slot *slots;	/* in BAR1 */
	u32 num_slots;
	u32 buf_size;
	s64 buf_base;			/* region offset of buffer 0 of this ring */
	u32 head;			/* last head published (stack mode: == cur) */
	u32 cur;			/* last cur published */
	u32 hwtail;
	u32 max_slots;			/* TX: slots the largest frame takes (1 without header) */
	/* netmap mode: the file whose application owns this ring, and its syncs' lock */
	struct file *nm_owner;
	struct mutex nm_sync;		/* one sync of this ring at a time (under nm_sem, read) */
	bool kick_pending;		/* TX: queued with xmit_more, not published nor kicked yet */
	bool in_frag;			/* RX: dropping (the rest of) a MOREFRAG chain */
	/* RX with the virtio-net header: the frame being assembled from a MOREFRAG chain */
	struct sk_buff *rx_skb;
	u32 rx_slots;			/* slots in rx_skb so far */
	struct virtio_net_hdr rx_hdr;	/* the header of its first slot */
	struct napi_struct napi;
	/* Counters for ethtool -S (ptnet_ethtool.c); each written from one context only. */
	u64 kicks;			/* doorbell writes */
	u64 irqs;			/* interrupts taken */
	u64 stops;			/* TX: queue stopped on a full ring */
	u64 wakes;			/* TX: stopped queue woken by the TX interrupt */
	u64 polls;			/* RX: NAPI polls */
	u64 packets;			/* RX: frames handed to the stack (TX: see dev->stats) */
	u64 gso;			/* GSO frames (TSO) sent / received whole */
	u64 csum;			/* TX: frames whose checksum the header hands over */
	u64 chains;			/* RX: frames assembled from several slots */
	bool irq_requested;
	char irq_name[IFNAMSIZ + 8];
};

struct ptnet_info {
	struct net_device *netdev;
	struct pci_dev *pdev;
	void __iomem *ioaddr;
	struct ptnet_memdev *memdev;
	u32 ptfeat, ntx, nrx, tx_slots, rx_slots, nifp_ofs, hostmemid, vnet_hdr_len;
	unsigned long csb_gh_page, csb_hg_page;
	bool csb_mapped;
	int nvecs;
	struct ptnet_queue *queues;	/* ntx + nrx */
	u8 mac[ETH_ALEN];
	/* netmap mode (character device) */
	bool nm_mode;			/* the rings belong to applications, not to the stack */
	/* (un)register take it to write (under rtnl), syncs and poll to read */
	struct rw_semaphore nm_sem;
	wait_queue_head_t nm_wq;	/* woken by every ring's interrupt in netmap mode */
	struct miscdevice misc;
	char misc_name[16];
	int misc_id;
	bool misc_registered;
	atomic_t cdev_users;
	wait_queue_head_t cdev_wq;
};

static inline u32 nm_next(u32 i, u32 n)
{
	return unlikely(i + 1 == n) ? 0 : i + 1;
}

static inline void ptnet_kick(struct ptnet_queue *q)
{
	iowrite32(0, q->pi->ioaddr + PTNET_IO_KICK_BASE + 4 * q->kring);
}

/* Buffer @idx of the queue's ring, or NULL when the index or the buffer is outside the region. */
static inline void *ptnet_buf(struct ptnet_queue *q, u32 idx)
{
	struct ptnet_memdev *md = q->pi->memdev;
	s64 off = q->buf_base + (s64)idx * q->buf_size;

	if (unlikely(idx >= md->buf_num || off < 0 || off + q->buf_size > md->memsize))
		return NULL;
	return md->mem + off;
}

/* ABI §2 guest write: fence; cur; fence; head. */
static inline void ptnet_publish(struct ptnet_queue *q)
{
	virt_mb();	/* slot contents (TX) / buffer reads (RX) before the indices */
	WRITE_ONCE(q->atok->cur, q->cur);
	virt_wmb();
	WRITE_ONCE(q->atok->head, q->head);
}

/* ABI §2 guest read: hwtail; fence. A value out of range keeps the last good one. */
static inline u32 ptnet_read_hwtail(struct ptnet_queue *q)
{
	u32 t = READ_ONCE(q->ktoa->hwtail);

	virt_rmb();
	if (likely(t < q->num_slots))
		q->hwtail = t;
	return q->hwtail;
}

static inline u32 ptnet_tx_space(struct ptnet_queue *q)
{
	u32 tail = ptnet_read_hwtail(q);

	return tail >= q->head ? tail - q->head : tail + q->num_slots - q->head;
}

static inline void ptnet_kick_if_needed(struct ptnet_queue *q)
{
	virt_mb();	/* our head store before the read of the host's flag */
	if (READ_ONCE(q->ktoa->kern_need_kick)) {
		ptnet_kick(q);
		q->kicks++;
	}
	q->kick_pending = false;
}

/* Is x in [a, b] going forward around a ring of n slots? */
static inline bool nm_between(u32 a, u32 x, u32 b, u32 n)
{
	u32 dx = x >= a ? x - a : x + n - a;
	u32 db = b >= a ? b - a : b + n - a;

	return dx <= db;
}

#define RING_U32(q, off) (*(u32 *)((q)->ring + (off)))


extern struct ida ptnet_ida;
extern bool ptnet_vnet_hdr;
extern int ptnet_pacing_shift;

/* Defined in one part, used in another. */
extern const struct net_device_ops ptnet_netdev_ops;
extern const struct ethtool_ops ptnet_ethtool_ops;
extern struct pci_driver ptnet_memdev_driver;
int ptnet_cdev_add(struct ptnet_info *pi);
int ptnet_hw_start(struct ptnet_info *pi);
int ptnet_rx_poll(struct napi_struct *napi, int budget);
int ptnet_stop(struct net_device *dev);
struct ptnet_memdev *ptnet_find_memdev(struct pci_dev *pdev, u32 memid);
void ptnet_cdev_del(struct ptnet_info *pi);
void ptnet_datapath_start(struct ptnet_info *pi);
void ptnet_datapath_stop(struct ptnet_info *pi);
void ptnet_free_irqs(struct ptnet_info *pi);
void ptnet_hw_stop(struct ptnet_info *pi);

#endif /* PTNET_PRIV_H */
