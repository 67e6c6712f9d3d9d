// SPDX-License-Identifier: GPL-2.0
/*
 * ptnet.ko — the NIC's ordinary network interface: TX by copying into netmap slots, RX by
 * NAPI on the RX vector, CSB publication and need-kick double checks (ABI §2), open/stop.
 */
#include "ptnet_priv.h"

/*
 * Publishes the frames queued since the last publication (ABI §2 guest write) and kicks if
 * the host asked for it. With xmit_more the stack has more frames coming: they are queued in
 * the slots and published together, so the host's TX worker takes a batch at a time.
 */
static void ptnet_tx_flush(struct ptnet_queue *q)
{
	ptnet_publish(q);
	ptnet_kick_if_needed(q);
}

/*
 * The TX ring is full: publish, stop the queue and ask for an interrupt, with the double check
 * of ABI §2; then kick. Returns true if the queue stays stopped. The kick comes after the
 * double check: a host worker woken first could drain the ring during the check, and the
 * queue would never stop (a stop the TX interrupt must undo is what this path is for); the
 * ABI's rule holds either way, since the host re-reads appl_need_kick after every sync.
 */
static bool ptnet_tx_stop(struct ptnet_queue *q, struct netdev_queue *txq)
{
	if (q->kick_pending)
		ptnet_publish(q);
	netif_tx_stop_queue(txq);
	WRITE_ONCE(q->atok->appl_need_kick, 1);
	virt_mb();
	if (ptnet_tx_space(q)) {
		WRITE_ONCE(q->atok->appl_need_kick, 0);
		netif_tx_start_queue(txq);
		return false;	/* a kick still pending goes with the next flush */
	}
	q->stops++;
	if (q->kick_pending)
		ptnet_kick_if_needed(q);
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
	q->kick_pending = true;		/* queued, published by the next flush */
	dev->stats.tx_packets++;
	dev->stats.tx_bytes += len;
	dev_consume_skb_any(skb);

	if (!ptnet_tx_space(q))
		ptnet_tx_stop(q, txq);
out:
	if (q->kick_pending && (!netdev_xmit_more() || netif_xmit_stopped(txq)))
		ptnet_tx_flush(q);
	return NETDEV_TX_OK;
}

static irqreturn_t ptnet_tx_intr(int irq, void *data)
{
	struct ptnet_queue *q = data;
	struct netdev_queue *txq = netdev_get_tx_queue(q->pi->netdev, q->qidx);

	q->irqs++;
	WRITE_ONCE(q->atok->appl_need_kick, 0);
	if (READ_ONCE(q->pi->nm_mode)) {
		wake_up(&q->pi->nm_wq);
		return IRQ_HANDLED;
	}
	if (netif_tx_queue_stopped(txq)) {
		q->wakes++;
		netif_tx_wake_queue(txq);
	}
	return IRQ_HANDLED;
}

static irqreturn_t ptnet_rx_intr(int irq, void *data)
{
	struct ptnet_queue *q = data;

	q->irqs++;
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

int ptnet_rx_poll(struct napi_struct *napi, int budget)
{
	struct ptnet_queue *q = container_of(napi, struct ptnet_queue, napi);
	struct net_device *dev = q->pi->netdev;
	u32 head = q->head, tail;
	int work = 0;

	q->polls++;
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
		q->packets++;
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

void ptnet_free_irqs(struct ptnet_info *pi)
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
int ptnet_hw_start(struct ptnet_info *pi)
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

void ptnet_hw_stop(struct ptnet_info *pi)
{
	u32 status;

	iowrite32(PTNETMAP_PTCTL_DELETE, pi->ioaddr + PTNET_IO_PTCTL);
	status = ioread32(pi->ioaddr + PTNET_IO_PTCTL);
	if (status)
		netdev_warn(pi->netdev, "PTCTL DELETE: host errno %u\n", status);
	ptnet_free_irqs(pi);
}

void ptnet_datapath_start(struct ptnet_info *pi)
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

void ptnet_datapath_stop(struct ptnet_info *pi)
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

int ptnet_stop(struct net_device *dev)
{
	struct ptnet_info *pi = netdev_priv(dev);

	if (pi->nm_mode)
		return 0;
	ptnet_datapath_stop(pi);
	ptnet_hw_stop(pi);
	return 0;
}


const struct net_device_ops ptnet_netdev_ops = {
	.ndo_open = ptnet_open,
	.ndo_stop = ptnet_stop,
	.ndo_start_xmit = ptnet_start_xmit,
	.ndo_validate_addr = eth_validate_addr,
	.ndo_set_mac_address = eth_mac_addr,
};
