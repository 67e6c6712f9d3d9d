// SPDX-License-Identifier: GPL-2.0
/*
 * ptnet.ko — the ptnetmap-memdev PCI driver (1b36:000c): maps the port's netmap region (BAR1)
 * and records MEMID and the pool layout, for the NIC to find by HOSTMEMID.
 */
#include "ptnet_priv.h"

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

struct pci_driver ptnet_memdev_driver = {
	.name = "ptnetmap-memdev",
	.id_table = ptnet_memdev_ids,
	.probe = ptnet_memdev_probe,
	.remove = ptnet_memdev_remove,
};


/* Host memory id -> memdev, or NULL (the memdev may not be bound yet). */
struct ptnet_memdev *ptnet_find_memdev(struct pci_dev *pdev, u32 memid)
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
MODULE_DEVICE_TABLE(pci, ptnet_memdev_ids);
