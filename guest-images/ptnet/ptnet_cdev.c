// SPDX-License-Identifier: GPL-2.0
/*
 * ptnet.ko — the netmap-mode character device /dev/ptnetN: mmap of the region and the CSB,
 * layout ioctl, register (all rings or one pair)/unregister, txsync/rxsync, poll (see
 * ptnet_uapi.h).
 */
#include "ptnet_priv.h"

DEFINE_IDA(ptnet_ida);

/*
 * One ring's sync for the application (netmap semantics): take ring->head/cur, check them
 * against [our last head, hwtail], publish them (ABI §2), kick if the host wants it, and
 * report the host's hwtail in ring->tail. Caller holds nm_sem (read) and q->nm_sync.
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

/* Does @file own ring @i (a kring: TX 0..ntx-1, then RX)? Caller holds nm_sem. */
static inline bool ptnet_nm_owns(struct ptnet_info *pi, unsigned int i, struct file *file)
{
	return READ_ONCE(pi->queues[i].nm_owner) == file;
}

/* How many rings @file owns (under nm_sem, or a hint without it). */
static unsigned int ptnet_nm_owned(struct ptnet_info *pi, struct file *file)
{
	unsigned int i, n = 0;

	for (i = 0; i < pi->ntx + pi->nrx; i++)
		n += ptnet_nm_owns(pi, i, file);
	return n;
}

/* Syncs @file's rings of one direction; -ENXIO if it registered none. */
static int ptnet_nm_sync_all(struct ptnet_info *pi, struct file *file, bool rx)
{
	unsigned int i, from = rx ? pi->ntx : 0, to = rx ? pi->ntx + pi->nrx : pi->ntx;
	int err = 0;

	down_read(&pi->nm_sem);
	if (!ptnet_nm_owned(pi, file))
		err = -ENXIO;
	for (i = from; i < to && !err; i++) {
		struct ptnet_queue *q = &pi->queues[i];

		if (!ptnet_nm_owns(pi, i, file))
			continue;
		mutex_lock(&q->nm_sync);
		err = ptnet_nm_sync(q);
		mutex_unlock(&q->nm_sync);
	}
	up_read(&pi->nm_sem);
	return err;
}

/* The rings PTNET_IOC_REGISTER_RING @ring asks for: TX @ring and RX @ring, those that exist. */
static bool ptnet_nm_wanted(struct ptnet_info *pi, unsigned int i, u32 ring)
{
	if (ring == PTNET_RING_ALL)
		return true;
	return i < pi->ntx ? i == ring : i - pi->ntx == ring;
}

/*
 * Netmap mode for @file's application on all rings (@ring PTNET_RING_ALL) or on TX and RX
 * ring @ring (netmap's NR_REG_ONE_NIC). The first registration takes the NIC from the stack
 * (its data path stops, DELETE, CREATE for the applications); later ones, by other files, only
 * claim rings nobody owns.
 */
static int ptnet_nm_register(struct ptnet_info *pi, struct file *file, u32 ring)
{
	struct net_device *dev = pi->netdev;
	unsigned int i, n = pi->ntx + pi->nrx;
	int err = 0;

	if (ring != PTNET_RING_ALL && ring >= max(pi->ntx, pi->nrx))
		return -EINVAL;
	rtnl_lock();
	down_write(&pi->nm_sem);
	if (ptnet_nm_owned(pi, file)) {
		err = -EBUSY;		/* one registration per open file, as netmap's */
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (ptnet_nm_wanted(pi, i, ring) && pi->queues[i].nm_owner) {
			err = -EBUSY;
			goto out;
		}
	}
	if (!pi->nm_mode) {
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
		netdev_info(dev, "netmap mode on (/dev/%s)\n", pi->misc_name);
	}
	/* The application sees the host's state in the netmap_ring headers of its rings. */
	for (i = 0; i < n; i++) {
		struct ptnet_queue *q = &pi->queues[i];

		if (!ptnet_nm_wanted(pi, i, ring))
			continue;
		WRITE_ONCE(RING_U32(q, NR_HEAD), q->head);
		WRITE_ONCE(RING_U32(q, NR_CUR), q->cur);
		WRITE_ONCE(RING_U32(q, NR_TAIL), q->hwtail);
		WRITE_ONCE(q->nm_owner, file);
	}
out:
	up_write(&pi->nm_sem);
	rtnl_unlock();
	return err;
}

/*
 * Gives back @file's rings; when nobody owns a ring any more: DELETE, and back to stack mode
 * (restarted if the interface is up).
 */
static int ptnet_nm_unregister(struct ptnet_info *pi, struct file *file)
{
	struct net_device *dev = pi->netdev;
	unsigned int i, n = pi->ntx + pi->nrx;
	int err = 0;

	rtnl_lock();
	down_write(&pi->nm_sem);
	if (!ptnet_nm_owned(pi, file)) {
		err = -EINVAL;
		goto out;
	}
	for (i = 0; i < n; i++)
		if (ptnet_nm_owns(pi, i, file))
			WRITE_ONCE(pi->queues[i].nm_owner, NULL);
	wake_up(&pi->nm_wq);
	if (ptnet_nm_owned(pi, NULL) != n)
		goto out;	/* other applications still own rings */
	ptnet_hw_stop(pi);
	WRITE_ONCE(pi->nm_mode, false);
	if (netif_running(dev)) {
		err = ptnet_hw_start(pi);
		if (err)
			netdev_err(dev, "cannot restart stack mode: %d\n", err);
		else
			ptnet_datapath_start(pi);
	}
	netdev_info(dev, "netmap mode off\n");
out:
	up_write(&pi->nm_sem);
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

	if (ptnet_nm_owned(pi, file))
		ptnet_nm_unregister(pi, file);
	if (atomic_dec_and_test(&pi->cdev_users))
		wake_up(&pi->cdev_wq);
	return 0;
}

static long ptnet_cdev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct ptnet_info *pi = ptnet_from_file(file);
	struct ptnet_layout l;
	u32 ring;

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
		l.flags = READ_ONCE(pi->nm_mode) ? PTNET_LAYOUT_REGISTERED : 0;
		memcpy(l.mac, pi->netdev->dev_addr, ETH_ALEN);
		strscpy(l.ifname, pi->netdev->name, sizeof(l.ifname));
		if (pci_resource_flags(pi->pdev, 0) & IORESOURCE_IO)
			l.kick_port = pci_resource_start(pi->pdev, 0);
		l.csb_entry_size = sizeof(struct ptnet_csb_gh);
		return copy_to_user((void __user *)arg, &l, sizeof(l)) ? -EFAULT : 0;
	case PTNET_IOC_REGISTER:
		return ptnet_nm_register(pi, file, PTNET_RING_ALL);
	case PTNET_IOC_REGISTER_RING:
		if (get_user(ring, (u32 __user *)arg))
			return -EFAULT;
		return ptnet_nm_register(pi, file, ring);
	case PTNET_IOC_UNREGISTER:
		return ptnet_nm_unregister(pi, file);
	case PTNET_IOC_TXSYNC:
	case PTNET_IOC_RXSYNC:
		return ptnet_nm_sync_all(pi, file, cmd == PTNET_IOC_RXSYNC);
	}
	return -ENOTTY;
}

static __poll_t ptnet_cdev_poll(struct file *file, poll_table *wait)
{
	struct ptnet_info *pi = ptnet_from_file(file);
	__poll_t want = poll_requested_events(wait), mask = 0;
	unsigned int i, n = pi->ntx + pi->nrx;

	poll_wait(file, &pi->nm_wq, wait);
	down_read(&pi->nm_sem);
	if (!ptnet_nm_owned(pi, file)) {
		mask = EPOLLERR;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct ptnet_queue *q = &pi->queues[i];
		bool rx = q->rx;

		if (!ptnet_nm_owns(pi, i, file) || !(want & (rx ? EPOLLIN : EPOLLOUT)))
			continue;
		mutex_lock(&q->nm_sync);
		if (ptnet_nm_sync(q)) {
			mask |= EPOLLERR;
		} else if (ptnet_nm_ready(q)) {
			mask |= rx ? EPOLLIN | EPOLLRDNORM : EPOLLOUT | EPOLLWRNORM;
		} else {
			/* Nothing to do: ask for the ring's interrupt, then double check (ABI §2). */
			WRITE_ONCE(q->atok->appl_need_kick, 1);
			virt_mb();
			if (ptnet_read_hwtail(q) != q->head) {
				WRITE_ONCE(q->atok->appl_need_kick, 0);
				WRITE_ONCE(RING_U32(q, NR_TAIL), q->hwtail);
				mask |= rx ? EPOLLIN | EPOLLRDNORM : EPOLLOUT | EPOLLWRNORM;
			}
		}
		mutex_unlock(&q->nm_sync);
	}
out:
	up_read(&pi->nm_sem);
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

int ptnet_cdev_add(struct ptnet_info *pi)
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
void ptnet_cdev_del(struct ptnet_info *pi)
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
