// SPDX-License-Identifier: GPL-2.0
/*
 * ptnet.ko — the NIC's ordinary network interface: TX by copying into netmap slots, RX by
 * NAPI on the RX vector, CSB publication and need-kick double checks (ABI §2), open/stop.
 * With the virtio-net header (pi->vnet_hdr_len 10 or 12) every frame starts with the header in
 * its first slot and may span several slots (NS_MOREFRAG on all but the last): TX hands the
 * switch checksums and whole TSO frames, RX reassembles chains and takes the header's offloads.
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
 * The TX ring has fewer than @need free slots: publish, stop the queue and ask for an
 * interrupt, with the double check of ABI §2; then kick. Returns true if the queue stays
 * stopped. The kick comes after the double check: a host worker woken first could drain the
 * ring during the check, and the queue would never stop (a stop the TX interrupt must undo is
 * what this path is for); the ABI's rule holds either way, since the host re-reads
 * appl_need_kick after every sync. A ring short of @need slots always has frames the host has
 * not taken yet (@need <= num_slots - 1, and TX completes synchronously), so the interrupt comes.
 */
static bool ptnet_tx_stop(struct ptnet_queue *q, struct netdev_queue *txq, u32 need)
{
	if (q->kick_pending)
		ptnet_publish(q);
	netif_tx_stop_queue(txq);
	WRITE_ONCE(q->atok->appl_need_kick, 1);
	virt_mb();
	if (ptnet_tx_space(q) >= need) {
		WRITE_ONCE(q->atok->appl_need_kick, 0);
		netif_tx_start_queue(txq);
		return false;	/* a kick still pending goes with the next flush */
	}
	q->stops++;
	if (q->kick_pending)
		ptnet_kick_if_needed(q);
	return true;
}

/*
 * Copies @hlen bytes of header and the skb, padded to @total - @hlen bytes, into the slots from
 * head on: each slot takes up to a buffer, all but the last get NS_MOREFRAG. The header is
 * entirely in the first slot (hlen <= 12 < buf_size). Returns the slots used, 0 on a buffer
 * index outside the region (nothing is published then: head has not moved).
 */
static u32 ptnet_tx_fill(struct ptnet_queue *q, struct sk_buff *skb, const void *hdr,
			 unsigned int hlen, unsigned int total)
{
	unsigned int done = 0, off = 0;
	u32 i = q->head, n = 0;

	while (done < total) {
		struct netmap_slot *slot = &q->slots[i];
		void *buf = ptnet_buf(q, READ_ONCE(slot->buf_idx));
		unsigned int room = min(q->buf_size, total - done), at = 0, c;

		if (unlikely(!buf))
			return 0;
		if (done < hlen) {
			memcpy(buf, hdr, hlen);
			at = hlen;
		}
		c = min(room - at, skb->len - off);
		if (c && unlikely(skb_copy_bits(skb, off, buf + at, c)))
			return 0;
		off += c;
		at += c;
		if (at < room)
			memset(buf + at, 0, room - at);	/* padding to ETH_ZLEN */
		WRITE_ONCE(slot->len, room);
		WRITE_ONCE(slot->flags, done + room < total ? NS_MOREFRAG : 0);
		done += room;
		i = nm_next(i, q->num_slots);
		n++;
	}
	return n;
}

static netdev_tx_t ptnet_start_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct ptnet_info *pi = netdev_priv(dev);
	u16 qi = skb_get_queue_mapping(skb);
	struct ptnet_queue *q = &pi->queues[qi];
	struct netdev_queue *txq = netdev_get_tx_queue(dev, qi);
	struct virtio_net_hdr_mrg_rxbuf hdr = {};
	unsigned int hlen = pi->vnet_hdr_len;
	unsigned int len = max_t(unsigned int, skb->len, ETH_ZLEN);
	unsigned int total = hlen + len;
	u32 need = DIV_ROUND_UP(total, q->buf_size), used;

	if (unlikely(need > q->max_slots)) {
		/* Without the header a frame has one slot; with it, TSO is capped to fit. */
		dev->stats.tx_dropped++;
		dev_kfree_skb_any(skb);
		goto out;
	}
	if (hlen) {
		if (unlikely(virtio_net_hdr_from_skb(skb, &hdr.hdr, true, false, 0))) {
			dev->stats.tx_dropped++;	/* a GSO type we never offered */
			dev_kfree_skb_any(skb);
			goto out;
		}
	}
	if (unlikely(ptnet_tx_space(q) < need) && ptnet_tx_stop(q, txq, need))
		return NETDEV_TX_BUSY;

	used = ptnet_tx_fill(q, skb, &hdr, hlen, total);
	if (unlikely(!used)) {
		dev->stats.tx_dropped++;
		dev_kfree_skb_any(skb);
		goto out;
	}
	if (hlen) {
		/* larger TSO frames: see ptnet_pacing_shift */
		if (ptnet_pacing_shift && skb->sk)
			sk_pacing_shift_update(skb->sk, ptnet_pacing_shift);
		if (skb_is_gso(skb))
			q->gso++;
		if (skb->ip_summed == CHECKSUM_PARTIAL)
			q->csum++;
	}
	q->head = q->cur = (q->head + used) % q->num_slots;
	q->kick_pending = true;		/* queued, published by the next flush */
	dev->stats.tx_packets++;
	dev->stats.tx_bytes += len;
	dev_consume_skb_any(skb);

	if (ptnet_tx_space(q) < q->max_slots)
		ptnet_tx_stop(q, txq, q->max_slots);
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

/*
 * Appends @len bytes to @skb as page fragments, filling each page before taking the next, so a
 * 64 KiB frame from 2048-byte slots fits in MAX_SKB_FRAGS. False when out of fragments or memory.
 */
static bool ptnet_rx_append(struct sk_buff *skb, const void *src, unsigned int len)
{
	struct skb_shared_info *sh = skb_shinfo(skb);

	while (len) {
		skb_frag_t *f = sh->nr_frags ? &sh->frags[sh->nr_frags - 1] : NULL;
		unsigned int end = f ? skb_frag_off(f) + skb_frag_size(f) : PAGE_SIZE, c;

		if (end == PAGE_SIZE) {
			struct page *page;

			if (sh->nr_frags == MAX_SKB_FRAGS)
				return false;
			page = dev_alloc_page();
			if (!page)
				return false;
			skb_add_rx_frag(skb, sh->nr_frags, page, 0, 0, PAGE_SIZE);
			continue;
		}
		c = min_t(unsigned int, len, PAGE_SIZE - end);
		memcpy(page_address(skb_frag_page(f)) + end, src, c);
		skb_frag_size_add(f, c);
		skb->len += c;
		skb->data_len += c;
		src += c;
		len -= c;
	}
	return true;
}

/* A whole frame with its virtio-net header (q->rx_hdr) goes to the stack. */
static void ptnet_rx_deliver(struct ptnet_queue *q, struct sk_buff *skb)
{
	struct net_device *dev = q->pi->netdev;
	const struct virtio_net_hdr *h = &q->rx_hdr;
	unsigned int len = skb->len;

	if ((h->flags & VIRTIO_NET_HDR_F_DATA_VALID) && (dev->features & NETIF_F_RXCSUM))
		skb->ip_summed = CHECKSUM_UNNECESSARY;
	if (unlikely(virtio_net_hdr_to_skb(skb, h, true))) {
		/* offsets past the frame, an unknown GSO type, gso_size 0: not for the stack */
		if (net_ratelimit())
			netdev_warn(dev, "bad virtio-net header (flags %#x gso_type %#x gso_size %u csum %u+%u) on a %u-byte frame, ethertype %#06x: dropped\n",
				    h->flags, h->gso_type, __virtio16_to_cpu(true, h->gso_size),
				    __virtio16_to_cpu(true, h->csum_start),
				    __virtio16_to_cpu(true, h->csum_offset), len,
				    ntohs(eth_hdr(skb)->h_proto));
		dev->stats.rx_frame_errors++;
		dev->stats.rx_errors++;
		dev_kfree_skb_any(skb);
		return;
	}
	if (skb_is_gso(skb))
		q->gso++;
	if (q->rx_slots > 1)
		q->chains++;
	skb->protocol = eth_type_trans(skb, dev);
	skb_record_rx_queue(skb, q->qidx);
	dev->stats.rx_packets++;
	dev->stats.rx_bytes += len;
	q->packets++;
	napi_gro_receive(&q->napi, skb);
}

/*
 * One RX slot of a port with the virtio-net header: the first slot of a frame holds the header
 * and the frame's start (copied into a new skb), the following ones of a MOREFRAG chain are
 * appended as page fragments. A frame left incomplete at the end of a poll stays in q->rx_skb
 * (its slots are released) until the rest arrives. Returns 1 when a frame ended (delivered or
 * dropped), else 0. Bad slots drop their frame and the rest of its chain.
 */
static int ptnet_rx_slot(struct ptnet_queue *q, void *buf, unsigned int len, u16 flags)
{
	struct net_device *dev = q->pi->netdev;
	unsigned int hlen = q->pi->vnet_hdr_len;
	bool more = flags & NS_MOREFRAG;
	struct sk_buff *skb = q->rx_skb;

	if (unlikely(q->in_frag)) {		/* the rest of a dropped chain */
		q->in_frag = more;
		return !more;
	}
	if (unlikely(!buf || len > q->buf_size)) {
		dev->stats.rx_errors++;
		goto drop;
	}
	if (!skb) {
		if (unlikely(len < hlen + ETH_HLEN)) {
			dev->stats.rx_length_errors++;
			dev->stats.rx_errors++;
			goto drop;
		}
		memcpy(&q->rx_hdr, buf, sizeof(q->rx_hdr));
		skb = napi_alloc_skb(&q->napi, len - hlen);
		if (unlikely(!skb)) {
			dev->stats.rx_dropped++;
			goto drop;
		}
		skb_put_data(skb, buf + hlen, len - hlen);
		q->rx_skb = skb;
		q->rx_slots = 1;
	} else if (unlikely(++q->rx_slots > NETMAP_MAX_FRAGS || !ptnet_rx_append(skb, buf, len))) {
		dev->stats.rx_dropped++;
		goto drop;
	}
	if (more)
		return 0;
	q->rx_skb = NULL;
	ptnet_rx_deliver(q, skb);
	return 1;

drop:
	if (q->rx_skb) {
		dev_kfree_skb_any(q->rx_skb);
		q->rx_skb = NULL;
	}
	q->in_frag = more;
	return !more;
}

/* Drops a frame left half-assembled (the data path stops). */
static void ptnet_rx_reset(struct ptnet_queue *q)
{
	if (q->rx_skb) {
		dev_kfree_skb_any(q->rx_skb);
		q->rx_skb = NULL;
	}
	q->in_frag = false;
}

int ptnet_rx_poll(struct napi_struct *napi, int budget)
{
	struct ptnet_queue *q = container_of(napi, struct ptnet_queue, napi);
	struct net_device *dev = q->pi->netdev;
	bool vnet = q->pi->vnet_hdr_len;
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

		if (vnet) {
			work += ptnet_rx_slot(q, buf, len, flags);
			continue;
		}
		work++;
		if (unlikely(flags & NS_MOREFRAG)) {
			/* Without the header, frames larger than a buffer are not offered to the stack. */
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

	for (i = pi->ntx; i < n; i++) {
		struct ptnet_queue *q = &pi->queues[i];

		/*
		 * With the header, frames the port took before the driver set its length (floods
		 * while the guest booted) are in the old format: release the backlog unread.
		 */
		if (pi->vnet_hdr_len && ptnet_read_hwtail(q) != q->head) {
			q->head = q->cur = q->hwtail;
			ptnet_publish(q);
			ptnet_kick_if_needed(q);
		}
		napi_enable(&q->napi);
	}
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
	for (i = pi->ntx; i < pi->ntx + pi->nrx; i++) {
		napi_disable(&pi->queues[i].napi);
		ptnet_rx_reset(&pi->queues[i]);
	}
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
