// SPDX-License-Identifier: GPL-2.0
/*
 * ptnet.ko — guest driver for ptvmm's ptnetmap passthrough NIC.
 *
 * Two PCI drivers in one module:
 *  - "ptnetmap-memdev" (1b36:000c): maps the netmap memory region of a VALE port (BAR1) and
 *    records its allocator id (MEMID) and pool layout;
 *  - "ptnet" (1b36:000d): the NIC. Follows the bring-up order of ABI §1, finds the memdev whose
 *    MEMID equals its HOSTMEMID, and offers an ordinary net_device whose packets are copied
 *    through the port's netmap rings, synchronised with the host through the CSB (ABI §2),
 *    with one MSI-X vector per ring (TX: wake the queue; RX: NAPI);
 *  - per NIC, a netmap-mode character device /dev/ptnetN (mmap of the region and the CSB, layout
 *    ioctl, register/unregister, txsync/rxsync, poll): see ptnet_uapi.h.
 *
 * The ABI is ../shared/design/ptnet-abi.md (netmap's ptnetmap); see docs/ptnet-driver.md.
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/netdevice.h>
#include <linux/etherdevice.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/mutex.h>
#include <linux/list.h>
#include <linux/gfp.h>
#include <linux/rtnetlink.h>
#include <linux/miscdevice.h>
#include <linux/idr.h>
#include <linux/poll.h>
#include <linux/wait.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <asm/barrier.h>

#include "ptnet.h"
#include "ptnet_uapi.h"

#define DRV_NAME "ptnet"

/* ------------------------------------------------------------------------------------------ */
/* memdev                                                                                      */
/* ------------------------------------------------------------------------------------------ */

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

static LIST_HEAD(ptnet_memdevs);
static DEFINE_MUTEX(ptnet_memdevs_lock);

static int ptnet_memdev_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct ptnet_memdev *md;
	resource_size_t bar_len;
	int err;

	md = devm_kzalloc(dev, sizeof(*md), GFP_KERNEL);
	if (!md)
		return -ENOMEM;
	md->pdev = pdev;

	err = pcim_enable_device(pdev);
	if (err)
		return err;
	err = pcim_iomap_regions(pdev, BIT(0), "ptnetmap-memdev");
	if (err)
		return err;
	md->regs = pcim_iomap_table(pdev)[0];
	err = pci_request_region(pdev, PTNETMAP_MEM_BAR, "ptnetmap-memdev");
	if (err)
		return err;

	md->memsize = ioread32(md->regs + PTNET_MDEV_MEMSIZE_LO) |
		      ((u64)ioread32(md->regs + PTNET_MDEV_MEMSIZE_HI) << 32);
	md->memid = ioread32(md->regs + PTNET_MDEV_MEMID);
	md->if_ofs = ioread32(md->regs + PTNET_MDEV_IF_POOL_OFS);
	md->if_num = ioread32(md->regs + PTNET_MDEV_IF_POOL_OBJNUM);
	md->if_sz = ioread32(md->regs + PTNET_MDEV_IF_POOL_OBJSZ);
	md->ring_ofs = ioread32(md->regs + PTNET_MDEV_RING_POOL_OFS);
	md->ring_num = ioread32(md->regs + PTNET_MDEV_RING_POOL_OBJNUM);
	md->ring_sz = ioread32(md->regs + PTNET_MDEV_RING_POOL_OBJSZ);
	md->buf_ofs = ioread32(md->regs + PTNET_MDEV_BUF_POOL_OFS);
	md->buf_num = ioread32(md->regs + PTNET_MDEV_BUF_POOL_OBJNUM);
	md->buf_sz = ioread32(md->regs + PTNET_MDEV_BUF_POOL_OBJSZ);

	bar_len = pci_resource_len(pdev, PTNETMAP_MEM_BAR);
	if (!md->memsize || md->memsize > bar_len) {
		dev_err(dev, "region size %llu does not fit BAR1 (%llu bytes)\n",
			md->memsize, (u64)bar_len);
		return -EINVAL;
	}
	md->mem_phys = pci_resource_start(pdev, PTNETMAP_MEM_BAR);
	/* The BAR is host RAM shared with the VALE switch: map it cacheable. */
	md->mem = devm_memremap(dev, md->mem_phys, md->memsize, MEMREMAP_WB | MEMREMAP_WC);
	if (IS_ERR(md->mem)) {
		dev_err(dev, "cannot map BAR1 (%llu bytes at %pa)\n", md->memsize, &md->mem_phys);
		return PTR_ERR(md->mem);
	}

	pci_set_drvdata(pdev, md);
	mutex_lock(&ptnet_memdevs_lock);
	list_add_tail(&md->list, &ptnet_memdevs);
	mutex_unlock(&ptnet_memdevs_lock);

	dev_info(dev, "memid %u, region %llu bytes at %pa; pools: if %u@%u x%u, ring %u@%u x%u, buf %u@%u x%u\n",
		 md->memid, md->memsize, &md->mem_phys,
		 md->if_num, md->if_ofs, md->if_sz, md->ring_num, md->ring_ofs, md->ring_sz,
		 md->buf_num, md->buf_ofs, md->buf_sz);
	return 0;
}

static void ptnet_memdev_remove(struct pci_dev *pdev)
{
	struct ptnet_memdev *md = pci_get_drvdata(pdev);

	/* The device link unbinds any NIC using this memdev before we get here. */
	mutex_lock(&ptnet_memdevs_lock);
	list_del(&md->list);
	mutex_unlock(&ptnet_memdevs_lock);
	dev_info(&pdev->dev, "memid %u removed\n", md->memid);
}

static const struct pci_device_id ptnet_memdev_ids[] = {
	{ PCI_DEVICE(PTNET_VENDOR_ID, PTNETMAP_MEMDEV_ID) },
	{ }
};

static struct pci_driver ptnet_memdev_driver = {
	.name = "ptnetmap-memdev",
	.id_table = ptnet_memdev_ids,
	.probe = ptnet_memdev_probe,
	.remove = ptnet_memdev_remove,
};

/* ------------------------------------------------------------------------------------------ */
/* NIC                                                                                         */
/* ------------------------------------------------------------------------------------------ */

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
	bool kick_pending;		/* TX: published with xmit_more, not kicked yet */
	bool in_frag;			/* RX: dropping a MOREFRAG chain */
	struct napi_struct napi;
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
	bool nm_mode;			/* the rings belong to nm_owner, not to the stack */
	struct file *nm_owner;
	struct mutex nm_lock;		/* syncs, poll and (un)register; under rtnl when both */
	wait_queue_head_t nm_wq;	/* woken by every ring's interrupt in netmap mode */
	struct miscdevice misc;
	char misc_name[16];
	int misc_id;
	bool misc_registered;
	atomic_t cdev_users;
	wait_queue_head_t cdev_wq;
};

static DEFINE_IDA(ptnet_ida);

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
	if (READ_ONCE(q->ktoa->kern_need_kick))
		ptnet_kick(q);
	q->kick_pending = false;
}

/*
 * The TX ring is full: stop the queue and ask for an interrupt, with the double check of
 * ABI §2. Returns true if the queue stays stopped.
 */
static bool ptnet_tx_stop(struct ptnet_queue *q, struct netdev_queue *txq)
{
	if (q->kick_pending)
		ptnet_kick_if_needed(q);
	netif_tx_stop_queue(txq);
	WRITE_ONCE(q->atok->appl_need_kick, 1);
	virt_mb();
	if (ptnet_tx_space(q)) {
		WRITE_ONCE(q->atok->appl_need_kick, 0);
		netif_tx_start_queue(txq);
		return false;
	}
	return true;
}

static netdev_tx_t ptnet_start_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct ptnet_info *pi = netdev_priv(dev);
	u16 qi = skb_get_queue_mapping(skb);
	struct ptnet_queue *q = &pi->queues[qi];
	struct netdev_queue *txq = netdev_get_tx_queue(dev, qi);
	struct netmap_slot *slot;
	unsigned int len = skb->len;
	void *buf;

	if (unlikely(!ptnet_tx_space(q)) && ptnet_tx_stop(q, txq))
		return NETDEV_TX_BUSY;

	slot = &q->slots[q->head];
	buf = ptnet_buf(q, READ_ONCE(slot->buf_idx));
	if (unlikely(!buf || len > q->buf_size)) {
		dev->stats.tx_dropped++;
		dev_kfree_skb_any(skb);
		goto out;
	}
	if (unlikely(skb_copy_bits(skb, 0, buf, len))) {
		dev->stats.tx_errors++;
		dev_kfree_skb_any(skb);
		goto out;
	}
	if (len < ETH_ZLEN) {
		memset(buf + len, 0, ETH_ZLEN - len);
		len = ETH_ZLEN;
	}
	WRITE_ONCE(slot->len, len);
	WRITE_ONCE(slot->flags, 0);
	q->head = q->cur = nm_next(q->head, q->num_slots);
	ptnet_publish(q);
	q->kick_pending = true;
	dev->stats.tx_packets++;
	dev->stats.tx_bytes += len;
	dev_consume_skb_any(skb);

	if (!ptnet_tx_space(q))
		ptnet_tx_stop(q, txq);
out:
	if (q->kick_pending && (!netdev_xmit_more() || netif_xmit_stopped(txq)))
		ptnet_kick_if_needed(q);
	return NETDEV_TX_OK;
}

static irqreturn_t ptnet_tx_intr(int irq, void *data)
{
	struct ptnet_queue *q = data;
	struct netdev_queue *txq = netdev_get_tx_queue(q->pi->netdev, q->qidx);

	WRITE_ONCE(q->atok->appl_need_kick, 0);
	if (READ_ONCE(q->pi->nm_mode)) {
		wake_up(&q->pi->nm_wq);
		return IRQ_HANDLED;
	}
	if (netif_tx_queue_stopped(txq))
		netif_tx_wake_queue(txq);
	return IRQ_HANDLED;
}

static irqreturn_t ptnet_rx_intr(int irq, void *data)
{
	struct ptnet_queue *q = data;

	if (READ_ONCE(q->pi->nm_mode)) {
		WRITE_ONCE(q->atok->appl_need_kick, 0);
		wake_up(&q->pi->nm_wq);
		return IRQ_HANDLED;
	}
	if (napi_schedule_prep(&q->napi)) {
		WRITE_ONCE(q->atok->appl_need_kick, 0);
		__napi_schedule_irqoff(&q->napi);
	}
	return IRQ_HANDLED;
}

static int ptnet_rx_poll(struct napi_struct *napi, int budget)
{
	struct ptnet_queue *q = container_of(napi, struct ptnet_queue, napi);
	struct net_device *dev = q->pi->netdev;
	u32 head = q->head, tail;
	int work = 0;

	tail = ptnet_read_hwtail(q);
	while (work < budget) {
		struct netmap_slot *slot;
		struct sk_buff *skb;
		unsigned int len;
		u16 flags;
		void *buf;

		if (head == tail) {
			tail = ptnet_read_hwtail(q);
			if (head == tail)
				break;
		}
		slot = &q->slots[head];
		len = READ_ONCE(slot->len);
		flags = READ_ONCE(slot->flags);
		buf = ptnet_buf(q, READ_ONCE(slot->buf_idx));
		head = nm_next(head, q->num_slots);
		work++;

		if (unlikely(flags & NS_MOREFRAG)) {
			/* Frames larger than a buffer are not offered to the stack. */
			if (!q->in_frag)
				dev->stats.rx_length_errors++;
			q->in_frag = true;
			continue;
		}
		if (unlikely(q->in_frag)) {
			q->in_frag = false;
			continue;
		}
		if (unlikely(!buf || len < ETH_HLEN || len > q->buf_size)) {
			dev->stats.rx_errors++;
			continue;
		}
		skb = napi_alloc_skb(napi, len);
		if (unlikely(!skb)) {
			dev->stats.rx_dropped++;
			continue;
		}
		skb_put_data(skb, buf, len);
		skb->protocol = eth_type_trans(skb, dev);
		skb_record_rx_queue(skb, q->qidx);
		dev->stats.rx_packets++;
		dev->stats.rx_bytes += len;
		napi_gro_receive(napi, skb);
	}

	if (head != q->head) {
		/* Give the slots back to the host. */
		q->head = q->cur = head;
		ptnet_publish(q);
		ptnet_kick_if_needed(q);
	}

	if (work < budget && napi_complete_done(napi, work)) {
		/* Ask for an interrupt, then double check (ABI §2). */
		WRITE_ONCE(q->atok->appl_need_kick, 1);
		virt_mb();
		if (ptnet_read_hwtail(q) != q->head && napi_schedule_prep(napi)) {
			WRITE_ONCE(q->atok->appl_need_kick, 0);
			__napi_schedule(napi);
		}
	}
	return work;
}

static void ptnet_free_irqs(struct ptnet_info *pi)
{
	unsigned int i;

	for (i = 0; i < pi->ntx + pi->nrx; i++) {
		struct ptnet_queue *q = &pi->queues[i];

		if (q->irq_requested) {
			free_irq(pci_irq_vector(pi->pdev, i), q);
			q->irq_requested = false;
		}
	}
}

/*
 * Starts the host side: per-ring interrupts, need-kick flags (ABI §1 step 8), CREATE, and the
 * rings' state from the CSB. Interrupts are requested first: CREATE captures every vector's
 * MSI-X message, and Linux writes the real message only when the IRQ is requested.
 */
static int ptnet_hw_start(struct ptnet_info *pi)
{
	struct net_device *dev = pi->netdev;
	unsigned int i, n = pi->ntx + pi->nrx;
	u32 status;
	int err;

	for (i = 0; i < n; i++) {
		struct ptnet_queue *q = &pi->queues[i];

		snprintf(q->irq_name, sizeof(q->irq_name), "%s-%s%u", dev->name,
			 q->rx ? "rx" : "tx", q->qidx);
		err = request_irq(pci_irq_vector(pi->pdev, i),
				  q->rx ? ptnet_rx_intr : ptnet_tx_intr, 0, q->irq_name, q);
		if (err) {
			netdev_err(dev, "cannot request the interrupt of ring %u: %d\n", i, err);
			goto fail;
		}
		q->irq_requested = true;
	}

	for (i = 0; i < n; i++) {
		struct ptnet_queue *q = &pi->queues[i];

		WRITE_ONCE(q->ktoa->kern_need_kick, 1);
		WRITE_ONCE(q->atok->appl_need_kick, q->rx ? 1 : 0);
		q->kick_pending = false;
		q->in_frag = false;
	}
	virt_mb();
	iowrite32(PTNETMAP_PTCTL_CREATE, pi->ioaddr + PTNET_IO_PTCTL);
	status = ioread32(pi->ioaddr + PTNET_IO_PTCTL);
	if (status) {
		netdev_err(dev, "PTCTL CREATE failed: host errno %u\n", status);
		err = (status < MAX_ERRNO) ? -(int)status : -EIO;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		struct ptnet_queue *q = &pi->queues[i];
		u32 hwtail = READ_ONCE(q->ktoa->hwtail), hwcur;

		virt_rmb();
		hwcur = READ_ONCE(q->ktoa->hwcur);
		virt_rmb();
		if (hwcur >= q->num_slots || hwtail >= q->num_slots) {
			netdev_err(dev, "ring %u: host state hwcur %u hwtail %u out of range\n",
				   i, hwcur, hwtail);
			err = -EIO;
			goto fail_delete;
		}
		q->head = q->cur = hwcur;
		q->hwtail = hwtail;
	}
	return 0;

fail_delete:
	iowrite32(PTNETMAP_PTCTL_DELETE, pi->ioaddr + PTNET_IO_PTCTL);
fail:
	ptnet_free_irqs(pi);
	return err;
}

static void ptnet_hw_stop(struct ptnet_info *pi)
{
	u32 status;

	iowrite32(PTNETMAP_PTCTL_DELETE, pi->ioaddr + PTNET_IO_PTCTL);
	status = ioread32(pi->ioaddr + PTNET_IO_PTCTL);
	if (status)
		netdev_warn(pi->netdev, "PTCTL DELETE: host errno %u\n", status);
	ptnet_free_irqs(pi);
}

static void ptnet_datapath_start(struct ptnet_info *pi)
{
	unsigned int i, n = pi->ntx + pi->nrx;

	for (i = pi->ntx; i < n; i++)
		napi_enable(&pi->queues[i].napi);
	netif_carrier_on(pi->netdev);
	netif_tx_start_all_queues(pi->netdev);
	/* Packets may already be waiting: poll once. */
	local_bh_disable();
	for (i = pi->ntx; i < n; i++)
		napi_schedule(&pi->queues[i].napi);
	local_bh_enable();
}

static void ptnet_datapath_stop(struct ptnet_info *pi)
{
	unsigned int i;

	netif_carrier_off(pi->netdev);
	netif_tx_disable(pi->netdev);
	for (i = pi->ntx; i < pi->ntx + pi->nrx; i++)
		napi_disable(&pi->queues[i].napi);
}

static int ptnet_open(struct net_device *dev)
{
	struct ptnet_info *pi = netdev_priv(dev);
	int err;

	if (pi->nm_mode)	/* the rings are in netmap mode: up, but no carrier */
		return 0;
	err = ptnet_hw_start(pi);
	if (err)
		return err;
	ptnet_datapath_start(pi);
	return 0;
}

static int ptnet_stop(struct net_device *dev)
{
	struct ptnet_info *pi = netdev_priv(dev);

	if (pi->nm_mode)
		return 0;
	ptnet_datapath_stop(pi);
	ptnet_hw_stop(pi);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* netmap-mode character device /dev/ptnetN                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Is x in [a, b] going forward around a ring of n slots? */
static inline bool nm_between(u32 a, u32 x, u32 b, u32 n)
{
	u32 dx = x >= a ? x - a : x + n - a;
	u32 db = b >= a ? b - a : b + n - a;

	return dx <= db;
}

#define NR_HEAD 20
#define NR_CUR 24
#define NR_TAIL 28
#define RING_U32(q, off) (*(u32 *)((q)->ring + (off)))

/*
 * One ring's sync for the application (netmap semantics): take ring->head/cur, check them
 * against [our last head, hwtail], publish them (ABI §2), kick if the host wants it, and
 * report the host's hwtail in ring->tail. Caller holds nm_lock.
 */
static int ptnet_nm_sync(struct ptnet_queue *q)
{
	u32 n = q->num_slots, head, cur, tail;

	/* A busy-polling application may have advanced the CSB itself: it is the truth. */
	head = READ_ONCE(q->atok->head);
	cur = READ_ONCE(q->atok->cur);
	if (head < n && cur < n) {
		q->head = head;
		q->cur = cur;
	}
	head = READ_ONCE(RING_U32(q, NR_HEAD));
	cur = READ_ONCE(RING_U32(q, NR_CUR));
	tail = ptnet_read_hwtail(q);
	if (head >= n || cur >= n || !nm_between(q->head, head, tail, n) ||
	    !nm_between(head, cur, tail, n))
		return -EINVAL;
	WRITE_ONCE(q->atok->appl_need_kick, 0);
	if (head != q->head || cur != q->cur) {
		q->head = head;
		q->cur = cur;
		ptnet_publish(q);
		ptnet_kick_if_needed(q);
	}
	WRITE_ONCE(RING_U32(q, NR_TAIL), ptnet_read_hwtail(q));
	return 0;
}

/* Does the application have something to do on this ring (TX space / RX packets)? */
static inline bool ptnet_nm_ready(struct ptnet_queue *q)
{
	return READ_ONCE(RING_U32(q, NR_TAIL)) != q->head;
}

static int ptnet_nm_sync_all(struct ptnet_info *pi, bool rx)
{
	unsigned int i, from = rx ? pi->ntx : 0, to = rx ? pi->ntx + pi->nrx : pi->ntx;
	int err;

	for (i = from; i < to; i++) {
		err = ptnet_nm_sync(&pi->queues[i]);
		if (err)
			return err;
	}
	return 0;
}

static int ptnet_nm_register(struct ptnet_info *pi, struct file *file)
{
	struct net_device *dev = pi->netdev;
	unsigned int i;
	int err;

	rtnl_lock();
	mutex_lock(&pi->nm_lock);
	if (pi->nm_owner) {
		err = -EBUSY;
		goto out;
	}
	if (netif_running(dev)) {
		ptnet_datapath_stop(pi);
		ptnet_hw_stop(pi);
	}
	WRITE_ONCE(pi->nm_mode, true);
	err = ptnet_hw_start(pi);
	if (err) {
		WRITE_ONCE(pi->nm_mode, false);
		if (netif_running(dev) && !ptnet_hw_start(pi))
			ptnet_datapath_start(pi);
		goto out;
	}
	/* The application sees the host's state in the netmap_ring headers. */
	for (i = 0; i < pi->ntx + pi->nrx; i++) {
		struct ptnet_queue *q = &pi->queues[i];

		WRITE_ONCE(RING_U32(q, NR_HEAD), q->head);
		WRITE_ONCE(RING_U32(q, NR_CUR), q->cur);
		WRITE_ONCE(RING_U32(q, NR_TAIL), q->hwtail);
	}
	pi->nm_owner = file;
	netdev_info(dev, "netmap mode on (/dev/%s)\n", pi->misc_name);
out:
	mutex_unlock(&pi->nm_lock);
	rtnl_unlock();
	return err;
}

static int ptnet_nm_unregister(struct ptnet_info *pi, struct file *file)
{
	struct net_device *dev = pi->netdev;
	int err = 0;

	rtnl_lock();
	mutex_lock(&pi->nm_lock);
	if (pi->nm_owner != file) {
		err = -EINVAL;
		goto out;
	}
	ptnet_hw_stop(pi);
	WRITE_ONCE(pi->nm_mode, false);
	pi->nm_owner = NULL;
	wake_up(&pi->nm_wq);
	if (netif_running(dev)) {
		err = ptnet_hw_start(pi);
		if (err)
			netdev_err(dev, "cannot restart stack mode: %d\n", err);
		else
			ptnet_datapath_start(pi);
	}
	netdev_info(dev, "netmap mode off\n");
out:
	mutex_unlock(&pi->nm_lock);
	rtnl_unlock();
	return err;
}

static struct ptnet_info *ptnet_from_file(struct file *file)
{
	return container_of(file->private_data, struct ptnet_info, misc);
}

static int ptnet_cdev_open(struct inode *inode, struct file *file)
{
	struct ptnet_info *pi = ptnet_from_file(file);

	atomic_inc(&pi->cdev_users);
	return 0;
}

static int ptnet_cdev_release(struct inode *inode, struct file *file)
{
	struct ptnet_info *pi = ptnet_from_file(file);

	if (READ_ONCE(pi->nm_owner) == file)
		ptnet_nm_unregister(pi, file);
	if (atomic_dec_and_test(&pi->cdev_users))
		wake_up(&pi->cdev_wq);
	return 0;
}

static long ptnet_cdev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct ptnet_info *pi = ptnet_from_file(file);
	struct ptnet_layout l;
	int err;

	switch (cmd) {
	case PTNET_IOC_LAYOUT:
		memset(&l, 0, sizeof(l));
		l.version = PTNET_UAPI_VERSION;
		l.memid = pi->memdev->memid;
		l.mem_size = pi->memdev->memsize;
		l.csb_offset = PAGE_ALIGN(pi->memdev->memsize);
		l.csb_size = 2 * PAGE_SIZE;
		l.nifp_offset = pi->nifp_ofs;
		l.num_tx_rings = pi->ntx;
		l.num_rx_rings = pi->nrx;
		l.num_tx_slots = pi->tx_slots;
		l.num_rx_slots = pi->rx_slots;
		l.buf_size = pi->queues[0].buf_size;
		l.flags = READ_ONCE(pi->nm_owner) ? PTNET_LAYOUT_REGISTERED : 0;
		memcpy(l.mac, pi->netdev->dev_addr, ETH_ALEN);
		strscpy(l.ifname, pi->netdev->name, sizeof(l.ifname));
		if (pci_resource_flags(pi->pdev, 0) & IORESOURCE_IO)
			l.kick_port = pci_resource_start(pi->pdev, 0);
		l.csb_entry_size = sizeof(struct ptnet_csb_gh);
		return copy_to_user((void __user *)arg, &l, sizeof(l)) ? -EFAULT : 0;
	case PTNET_IOC_REGISTER:
		return ptnet_nm_register(pi, file);
	case PTNET_IOC_UNREGISTER:
		return ptnet_nm_unregister(pi, file);
	case PTNET_IOC_TXSYNC:
	case PTNET_IOC_RXSYNC:
		mutex_lock(&pi->nm_lock);
		if (pi->nm_owner != file)
			err = -ENXIO;
		else
			err = ptnet_nm_sync_all(pi, cmd == PTNET_IOC_RXSYNC);
		mutex_unlock(&pi->nm_lock);
		return err;
	}
	return -ENOTTY;
}

static __poll_t ptnet_cdev_poll(struct file *file, poll_table *wait)
{
	struct ptnet_info *pi = ptnet_from_file(file);
	__poll_t want = poll_requested_events(wait), mask = 0;
	unsigned int i, n = pi->ntx + pi->nrx;

	poll_wait(file, &pi->nm_wq, wait);
	mutex_lock(&pi->nm_lock);
	if (pi->nm_owner != file) {
		mask = EPOLLERR;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct ptnet_queue *q = &pi->queues[i];
		bool rx = q->rx;

		if (!(want & (rx ? EPOLLIN : EPOLLOUT)))
			continue;
		if (ptnet_nm_sync(q)) {
			mask |= EPOLLERR;
			continue;
		}
		if (ptnet_nm_ready(q)) {
			mask |= rx ? EPOLLIN | EPOLLRDNORM : EPOLLOUT | EPOLLWRNORM;
			continue;
		}
		/* Nothing to do: ask for the ring's interrupt, then double check (ABI §2). */
		WRITE_ONCE(q->atok->appl_need_kick, 1);
		virt_mb();
		if (ptnet_read_hwtail(q) != q->head) {
			WRITE_ONCE(q->atok->appl_need_kick, 0);
			WRITE_ONCE(RING_U32(q, NR_TAIL), q->hwtail);
			mask |= rx ? EPOLLIN | EPOLLRDNORM : EPOLLOUT | EPOLLWRNORM;
		}
	}
out:
	mutex_unlock(&pi->nm_lock);
	return mask;
}

/* offset 0: the region (BAR1); offset PAGE_ALIGN(memsize): CSB GH page, then HG page. */
static int ptnet_cdev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ptnet_info *pi = ptnet_from_file(file);
	struct ptnet_memdev *md = pi->memdev;
	unsigned long mem_pages = PAGE_ALIGN(md->memsize) >> PAGE_SHIFT;
	unsigned long npages = vma_pages(vma), p;
	int err;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	vma->vm_flags |= VM_IO | VM_DONTEXPAND | VM_DONTDUMP;
	for (p = 0; p < npages; p++) {
		unsigned long pgoff = vma->vm_pgoff + p, pfn;

		if (pgoff < mem_pages)
			pfn = PHYS_PFN(md->mem_phys) + pgoff;
		else if (pgoff == mem_pages)
			pfn = PHYS_PFN(virt_to_phys((void *)pi->csb_gh_page));
		else if (pgoff == mem_pages + 1)
			pfn = PHYS_PFN(virt_to_phys((void *)pi->csb_hg_page));
		else
			return -EINVAL;
		err = remap_pfn_range(vma, vma->vm_start + p * PAGE_SIZE, pfn, PAGE_SIZE,
				      vma->vm_page_prot);
		if (err)
			return err;
	}
	return 0;
}

static const struct file_operations ptnet_cdev_fops = {
	.owner = THIS_MODULE,
	.open = ptnet_cdev_open,
	.release = ptnet_cdev_release,
	.unlocked_ioctl = ptnet_cdev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.poll = ptnet_cdev_poll,
	.mmap = ptnet_cdev_mmap,
	.llseek = noop_llseek,
};

static int ptnet_cdev_add(struct ptnet_info *pi)
{
	int err;

	pi->misc_id = ida_alloc(&ptnet_ida, GFP_KERNEL);
	if (pi->misc_id < 0)
		return pi->misc_id;
	snprintf(pi->misc_name, sizeof(pi->misc_name), "ptnet%d", pi->misc_id);
	pi->misc.minor = MISC_DYNAMIC_MINOR;
	pi->misc.name = pi->misc_name;
	pi->misc.fops = &ptnet_cdev_fops;
	pi->misc.mode = 0600;
	pi->misc.parent = &pi->pdev->dev;
	err = misc_register(&pi->misc);
	if (err) {
		ida_free(&ptnet_ida, pi->misc_id);
		return err;
	}
	pi->misc_registered = true;
	return 0;
}

/* No new opens; waits for the last file (and mmap) of the device to go away. */
static void ptnet_cdev_del(struct ptnet_info *pi)
{
	if (!pi->misc_registered)
		return;
	misc_deregister(&pi->misc);
	if (atomic_read(&pi->cdev_users))
		dev_info(&pi->pdev->dev, "waiting for /dev/%s to be closed\n", pi->misc_name);
	wait_event(pi->cdev_wq, atomic_read(&pi->cdev_users) == 0);
	ida_free(&ptnet_ida, pi->misc_id);
	pi->misc_registered = false;
}

static const struct net_device_ops ptnet_netdev_ops = {
	.ndo_open = ptnet_open,
	.ndo_stop = ptnet_stop,
	.ndo_start_xmit = ptnet_start_xmit,
	.ndo_validate_addr = eth_validate_addr,
	.ndo_set_mac_address = eth_mac_addr,
};

/* Host memory id -> memdev, or NULL (the memdev may not be bound yet). */
static struct ptnet_memdev *ptnet_find_memdev(struct pci_dev *pdev, u32 memid)
{
	struct ptnet_memdev *md, *found = NULL;

	mutex_lock(&ptnet_memdevs_lock);
	list_for_each_entry(md, &ptnet_memdevs, list) {
		if (md->memid == memid) {
			/* Unbinding the memdev first unbinds this NIC. */
			if (device_link_add(&pdev->dev, &md->pdev->dev, DL_FLAG_AUTOREMOVE_CONSUMER))
				found = md;
			break;
		}
	}
	mutex_unlock(&ptnet_memdevs_lock);
	return found;
}

/* Checks the port's netmap_if against the registers and sets up the queues' ring pointers. */
static int ptnet_setup_rings(struct ptnet_info *pi)
{
	struct ptnet_memdev *md = pi->memdev;
	struct device *dev = &pi->pdev->dev;
	u32 host_tx, host_rx, nif_tx, nif_rx, i, n = pi->ntx + pi->nrx;
	void *nifp;

	if ((u64)pi->nifp_ofs + NIF_RING_OFS > md->memsize) {
		dev_err(dev, "NIFP_OFS %u outside the %llu-byte region\n", pi->nifp_ofs, md->memsize);
		return -EINVAL;
	}
	nifp = md->mem + pi->nifp_ofs;
	nif_tx = READ_ONCE(*(u32 *)(nifp + NIF_TX_RINGS));
	nif_rx = READ_ONCE(*(u32 *)(nifp + NIF_RX_RINGS));
	host_tx = READ_ONCE(*(u32 *)(nifp + NIF_HOST_TX_RINGS));
	host_rx = READ_ONCE(*(u32 *)(nifp + NIF_HOST_RX_RINGS));
	if (nif_tx != pi->ntx || nif_rx != pi->nrx || host_tx > PTNET_MAX_RINGS ||
	    host_rx > PTNET_MAX_RINGS ||
	    (u64)pi->nifp_ofs + NIF_RING_OFS + 8ULL * (n + host_tx + host_rx) > md->memsize) {
		dev_err(dev, "netmap_if (%u tx, %u rx, %u/%u host rings) does not match the NIC (%u tx, %u rx)\n",
			nif_tx, nif_rx, host_tx, host_rx, pi->ntx, pi->nrx);
		return -EINVAL;
	}

	for (i = 0; i < n; i++) {
		struct ptnet_queue *q = &pi->queues[i];
		/* ring_ofs order: NIC tx, host tx, NIC rx, host rx */
		u32 k = q->rx ? pi->ntx + host_tx + q->qidx : q->qidx;
		s64 rofs = READ_ONCE(*(s64 *)(nifp + NIF_RING_OFS + 8 * k));
		s64 ring = (s64)pi->nifp_ofs + rofs;
		u32 want = q->rx ? pi->rx_slots : pi->tx_slots;
		void *r;

		if (rofs == 0 || ring < 0 || ring + NETMAP_RING_HDR > md->memsize) {
			dev_err(dev, "ring %u: offset %lld outside the region\n", i, rofs);
			return -EINVAL;
		}
		r = md->mem + ring;
		q->num_slots = READ_ONCE(*(u32 *)(r + NR_NUM_SLOTS));
		q->buf_size = READ_ONCE(*(u32 *)(r + NR_BUF_SIZE));
		q->buf_base = ring + READ_ONCE(*(s64 *)(r + NR_BUF_OFS));
		if (q->num_slots != want || q->num_slots < 2 ||
		    ring + NETMAP_RING_HDR + 16ULL * q->num_slots > md->memsize ||
		    q->buf_size < ETH_ZLEN || q->buf_size > 65536) {
			dev_err(dev, "ring %u: %u slots (NIC says %u), %u-byte buffers: not usable\n",
				i, q->num_slots, want, q->buf_size);
			return -EINVAL;
		}
		q->ring = r;
		q->slots = r + NETMAP_RING_HDR;
	}
	return 0;
}

static void ptnet_csb_unmap(struct ptnet_info *pi)
{
	if (pi->csb_mapped) {
		iowrite32(0, pi->ioaddr + PTNET_IO_CSB_GH_BAH);
		iowrite32(0, pi->ioaddr + PTNET_IO_CSB_GH_BAL);
		iowrite32(0, pi->ioaddr + PTNET_IO_CSB_HG_BAH);
		iowrite32(0, pi->ioaddr + PTNET_IO_CSB_HG_BAL);
		pi->csb_mapped = false;
	}
}

static void ptnet_csb_free(struct ptnet_info *pi)
{
	ptnet_csb_unmap(pi);
	if (pi->csb_gh_page)
		free_page(pi->csb_gh_page);
	if (pi->csb_hg_page)
		free_page(pi->csb_hg_page);
	pi->csb_gh_page = pi->csb_hg_page = 0;
}

static int ptnet_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct net_device *netdev;
	struct ptnet_info *pi;
	u32 ntx, nrx, mac_hi, mac_lo, i, n;
	void __iomem *io;
	phys_addr_t gh, hg;
	u8 mac[ETH_ALEN];
	int err;

	ptnet_abi_checks();

	/* 1. bus mastering, BAR0 */
	err = pcim_enable_device(pdev);
	if (err)
		return err;
	err = pcim_iomap_regions(pdev, BIT(0), DRV_NAME);
	if (err)
		return err;
	io = pcim_iomap_table(pdev)[0];
	pci_set_master(pdev);

	/* 2. features: VALE has no virtio-net header, so we want none. */
	iowrite32(0, io + PTNET_IO_PTFEAT);
	/* 3. rings */
	ntx = ioread32(io + PTNET_IO_NUM_TX_RINGS);
	nrx = ioread32(io + PTNET_IO_NUM_RX_RINGS);
	if (!ntx || !nrx || ntx + nrx > PTNET_MAX_RINGS) {
		dev_err(dev, "unsupported ring counts: %u tx, %u rx\n", ntx, nrx);
		return -EINVAL;
	}
	n = ntx + nrx;

	netdev = alloc_etherdev_mqs(sizeof(*pi), ntx, nrx);
	if (!netdev)
		return -ENOMEM;
	SET_NETDEV_DEV(netdev, dev);
	pi = netdev_priv(netdev);
	pi->netdev = netdev;
	pi->pdev = pdev;
	pi->ioaddr = io;
	pi->ntx = ntx;
	pi->nrx = nrx;
	pi->ptfeat = ioread32(io + PTNET_IO_PTFEAT);
	mutex_init(&pi->nm_lock);
	init_waitqueue_head(&pi->nm_wq);
	init_waitqueue_head(&pi->cdev_wq);
	atomic_set(&pi->cdev_users, 0);
	pci_set_drvdata(pdev, pi);

	pi->queues = devm_kcalloc(dev, n, sizeof(*pi->queues), GFP_KERNEL);
	if (!pi->queues) {
		err = -ENOMEM;
		goto err_free_netdev;
	}

	/* 4. the two CSB pages, zeroed; high half first, the low half maps */
	pi->csb_gh_page = get_zeroed_page(GFP_KERNEL);
	pi->csb_hg_page = get_zeroed_page(GFP_KERNEL);
	if (!pi->csb_gh_page || !pi->csb_hg_page) {
		err = -ENOMEM;
		goto err_csb;
	}
	gh = virt_to_phys((void *)pi->csb_gh_page);
	hg = virt_to_phys((void *)pi->csb_hg_page);
	iowrite32(upper_32_bits(gh), io + PTNET_IO_CSB_GH_BAH);
	iowrite32(lower_32_bits(gh), io + PTNET_IO_CSB_GH_BAL);
	iowrite32(upper_32_bits(hg), io + PTNET_IO_CSB_HG_BAH);
	iowrite32(lower_32_bits(hg), io + PTNET_IO_CSB_HG_BAL);
	pi->csb_mapped = true;

	for (i = 0; i < n; i++) {
		struct ptnet_queue *q = &pi->queues[i];

		q->pi = pi;
		q->kring = i;
		q->rx = i >= ntx;
		q->qidx = q->rx ? i - ntx : i;
		q->atok = (struct ptnet_csb_gh *)pi->csb_gh_page + i;
		q->ktoa = (struct ptnet_csb_hg *)pi->csb_hg_page + i;
	}

	/* 5. MSI-X, vector i = ring i */
	err = pci_alloc_irq_vectors(pdev, n, n, PCI_IRQ_MSIX);
	if (err < 0) {
		dev_err(dev, "cannot enable %u MSI-X vectors: %d\n", n, err);
		goto err_csb;
	}
	pi->nvecs = err;

	/* 6. MAC, geometry, memdev */
	mac_hi = ioread32(io + PTNET_IO_MAC_HI);
	mac_lo = ioread32(io + PTNET_IO_MAC_LO);
	mac[0] = (mac_hi >> 8) & 0xff;
	mac[1] = mac_hi & 0xff;
	mac[2] = (mac_lo >> 24) & 0xff;
	mac[3] = (mac_lo >> 16) & 0xff;
	mac[4] = (mac_lo >> 8) & 0xff;
	mac[5] = mac_lo & 0xff;
	pi->nifp_ofs = ioread32(io + PTNET_IO_NIFP_OFS);
	pi->tx_slots = ioread32(io + PTNET_IO_NUM_TX_SLOTS);
	pi->rx_slots = ioread32(io + PTNET_IO_NUM_RX_SLOTS);
	pi->hostmemid = ioread32(io + PTNET_IO_HOSTMEMID);
	pi->memdev = ptnet_find_memdev(pdev, pi->hostmemid);
	if (!pi->memdev) {
		dev_info(dev, "no ptnetmap-memdev with memid %u yet: deferring\n", pi->hostmemid);
		err = -EPROBE_DEFER;
		goto err_vectors;
	}
	err = ptnet_setup_rings(pi);
	if (err)
		goto err_vectors;

	/* 7. no virtio-net header */
	iowrite32(0, io + PTNET_IO_VNET_HDR_LEN);
	pi->vnet_hdr_len = ioread32(io + PTNET_IO_VNET_HDR_LEN);

	netdev->netdev_ops = &ptnet_netdev_ops;
	netdev->min_mtu = ETH_MIN_MTU;
	netdev->max_mtu = min_t(u32, pi->queues[0].buf_size, pi->queues[ntx].buf_size) - ETH_HLEN;
	for (i = 0; i < n; i++)
		if (pi->queues[i].buf_size - ETH_HLEN < netdev->max_mtu)
			netdev->max_mtu = pi->queues[i].buf_size - ETH_HLEN;
	if (netdev->mtu > netdev->max_mtu)
		netdev->mtu = netdev->max_mtu;
	if (is_valid_ether_addr(mac)) {
		eth_hw_addr_set(netdev, mac);
	} else {
		dev_warn(dev, "invalid MAC %pM from the device: using a random one\n", mac);
		eth_hw_addr_random(netdev);
	}
	for (i = ntx; i < n; i++)
		netif_napi_add(netdev, &pi->queues[i].napi, ptnet_rx_poll);
	netif_carrier_off(netdev);

	err = register_netdev(netdev);
	if (err)
		goto err_napi;
	err = ptnet_cdev_add(pi);
	if (err) {
		dev_err(dev, "cannot register the character device: %d\n", err);
		unregister_netdev(netdev);
		goto err_napi;
	}

	netdev_info(netdev, "ptnet %pM: %u tx / %u rx rings, %u/%u slots, %u-byte buffers, memid %u, nifp at %u, ptfeat %#x, vnet_hdr_len %u\n",
		    netdev->dev_addr, ntx, nrx, pi->tx_slots, pi->rx_slots, pi->queues[0].buf_size,
		    pi->hostmemid, pi->nifp_ofs, pi->ptfeat, pi->vnet_hdr_len);
	netdev_info(netdev, "netmap-mode device /dev/%s\n", pi->misc_name);
	return 0;

err_napi:
	for (i = ntx; i < n; i++)
		netif_napi_del(&pi->queues[i].napi);
err_vectors:
	pci_free_irq_vectors(pdev);
err_csb:
	ptnet_csb_free(pi);
err_free_netdev:
	free_netdev(netdev);
	return err;
}

/* DELETE, vectors, CSB: the order of ABI §1 step 9. */
static void ptnet_teardown(struct ptnet_info *pi)
{
	iowrite32(PTNETMAP_PTCTL_DELETE, pi->ioaddr + PTNET_IO_PTCTL);
	ptnet_free_irqs(pi);	/* still requested in netmap mode (shutdown) */
	if (pi->nvecs) {
		pci_free_irq_vectors(pi->pdev);
		pi->nvecs = 0;
	}
	ptnet_csb_unmap(pi);
}

static void ptnet_remove(struct pci_dev *pdev)
{
	struct ptnet_info *pi = pci_get_drvdata(pdev);
	struct net_device *netdev = pi->netdev;
	unsigned int i;

	ptnet_cdev_del(pi);		/* waits for its last user: netmap mode is off after */
	unregister_netdev(netdev);	/* runs ptnet_stop when up */
	ptnet_teardown(pi);
	ptnet_csb_free(pi);
	for (i = pi->ntx; i < pi->ntx + pi->nrx; i++)
		netif_napi_del(&pi->queues[i].napi);
	pci_clear_master(pdev);
	free_netdev(netdev);
}

static void ptnet_shutdown(struct pci_dev *pdev)
{
	struct ptnet_info *pi = pci_get_drvdata(pdev);

	rtnl_lock();
	netif_device_detach(pi->netdev);
	if (netif_running(pi->netdev))
		dev_close(pi->netdev);
	rtnl_unlock();
	ptnet_teardown(pi);
}

static const struct pci_device_id ptnet_ids[] = {
	{ PCI_DEVICE(PTNET_VENDOR_ID, PTNET_NIC_ID) },
	{ }
};

static struct pci_driver ptnet_driver = {
	.name = DRV_NAME,
	.id_table = ptnet_ids,
	.probe = ptnet_probe,
	.remove = ptnet_remove,
	.shutdown = ptnet_shutdown,
};

static int __init ptnet_init(void)
{
	int err;

	err = pci_register_driver(&ptnet_memdev_driver);
	if (err)
		return err;
	err = pci_register_driver(&ptnet_driver);
	if (err)
		pci_unregister_driver(&ptnet_memdev_driver);
	return err;
}

static void __exit ptnet_exit(void)
{
	pci_unregister_driver(&ptnet_driver);
	pci_unregister_driver(&ptnet_memdev_driver);
}

module_init(ptnet_init);
module_exit(ptnet_exit);

MODULE_DESCRIPTION("ptnetmap passthrough NIC (ptvmm): memdev and ptnet network driver");
MODULE_LICENSE("GPL");
MODULE_DEVICE_TABLE(pci, ptnet_ids);
MODULE_DEVICE_TABLE(pci, ptnet_memdev_ids);
