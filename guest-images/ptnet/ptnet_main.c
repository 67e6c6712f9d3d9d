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
#include "ptnet_priv.h"

/* Like upstream netmap's ptnet_vnet_hdr: use the virtio-net header when the device offers it. */
bool ptnet_vnet_hdr = true;
module_param_named(vnet_hdr, ptnet_vnet_hdr, bool, 0444);
MODULE_PARM_DESC(vnet_hdr, "use the virtio-net header (checksum offload, SG, TSO, TSO6) when the device offers it (default 1)");

/*
 * TCP sizes its TSO frames to about 2^-sk_pacing_shift seconds of its pacing rate (the stack's
 * default shift is 10: ~1 ms). ptnet.ko frees a frame's skb as soon as it is copied into the
 * ring, so TCP's small-queue limit never holds a socket back and, below ~500 Mbit/s, its TSO
 * frames stay small (about half virtio-net's, whose skbs live until the device is done with
 * them), and every frame costs a kick and an interrupt. With the virtio-net header the driver
 * asks for ~4 ms of the rate per frame, as mac80211 does (docs/benchmarks.md, "Where TCP's time
 * goes"); at rates where 1 ms is already 64 KiB nothing changes. 0 leaves the sockets alone.
 */
int ptnet_pacing_shift = 8;
module_param_named(pacing_shift, ptnet_pacing_shift, int, 0444);
MODULE_PARM_DESC(pacing_shift, "with the virtio-net header, sk_pacing_shift of the sockets that send through the NIC, 1..10 (default 8: TSO frames of ~4 ms of TCP's rate; 0: the stack's own, 10)");

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

/*
 * ABI §1 step 7: asks for a 12-byte header when PTFEAT acked VNET_HDR and takes the length the
 * device keeps (10 or 12; 0 means none). Anything else is refused, after one try to turn it off.
 */
static int ptnet_set_vnet_hdr(struct ptnet_info *pi)
{
	u32 want = (pi->ptfeat & PTNETMAP_F_VNET_HDR) ?
		   sizeof(struct virtio_net_hdr_mrg_rxbuf) : 0;
	u32 i;

	iowrite32(want, pi->ioaddr + PTNET_IO_VNET_HDR_LEN);
	pi->vnet_hdr_len = ioread32(pi->ioaddr + PTNET_IO_VNET_HDR_LEN);
	if (pi->vnet_hdr_len != 0 && pi->vnet_hdr_len != sizeof(struct virtio_net_hdr) &&
	    pi->vnet_hdr_len != sizeof(struct virtio_net_hdr_mrg_rxbuf)) {
		dev_warn(&pi->pdev->dev, "VNET_HDR_LEN %u: not a header length, asking for none\n",
			 pi->vnet_hdr_len);
		iowrite32(0, pi->ioaddr + PTNET_IO_VNET_HDR_LEN);
		pi->vnet_hdr_len = ioread32(pi->ioaddr + PTNET_IO_VNET_HDR_LEN);
		if (pi->vnet_hdr_len)
			return -EINVAL;
	}
	for (i = 0; i < pi->ntx; i++) {
		struct ptnet_queue *q = &pi->queues[i];

		/* Half a ring, and no longer than the chains a VALE port forwards. */
		q->max_slots = pi->vnet_hdr_len ?
			       min_t(u32, (q->num_slots - 1) / 2, NETMAP_MAX_FRAGS) : 1;
		if (!q->max_slots)
			q->max_slots = 1;
	}
	return 0;
}

/*
 * With the header: checksum offload, SG, TSO/TSO6 (frames up to 64 KiB, or what half the
 * smallest TX ring holds), RX checksum (the header's DATA_VALID / NEEDS_CSUM); GRO is on anyway.
 * All can be turned off with ethtool -K. Without it: no offloads, as before.
 */
static void ptnet_set_offloads(struct ptnet_info *pi)
{
	struct net_device *dev = pi->netdev;
	unsigned int room = GSO_LEGACY_MAX_SIZE, i;

	if (!pi->vnet_hdr_len)
		return;
	for (i = 0; i < pi->ntx; i++) {
		struct ptnet_queue *q = &pi->queues[i];
		unsigned int r = q->max_slots * q->buf_size - pi->vnet_hdr_len;

		room = min(room, r);
	}
	dev->hw_features |= NETIF_F_HW_CSUM | NETIF_F_SG | NETIF_F_TSO | NETIF_F_TSO6 |
			    NETIF_F_TSO_ECN | NETIF_F_RXCSUM;
	dev->features |= dev->hw_features;
	dev->vlan_features |= dev->features & ~NETIF_F_RXCSUM;
	/* skb->len of a TSO frame stays below the limit; frames at or below the MTU always fit */
	netif_set_tso_max_size(dev, room);
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

	/* 2. features: the virtio-net header, unless vnet_hdr=0 */
	iowrite32(ptnet_vnet_hdr ? PTNETMAP_F_VNET_HDR : 0, io + PTNET_IO_PTFEAT);
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
	init_rwsem(&pi->nm_sem);
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
		mutex_init(&q->nm_sync);
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

	/* 7. the virtio-net header: 12 bytes (with num_buffers, as upstream) if acked, else none */
	err = ptnet_set_vnet_hdr(pi);
	if (err)
		goto err_vectors;

	netdev->netdev_ops = &ptnet_netdev_ops;
	netdev->ethtool_ops = &ptnet_ethtool_ops;
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
	ptnet_set_offloads(pi);
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

	if (ptnet_pacing_shift < 0 || ptnet_pacing_shift > 10) {
		pr_err("ptnet: pacing_shift=%d: give 0 (the stack's own) or 1..10\n", ptnet_pacing_shift);
		return -EINVAL;
	}
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
