// SPDX-License-Identifier: GPL-2.0
/*
 * ptnet-hostile-setup.c — ptnet-hostile's setup (find the unbound ptnet NIC and memdev in
 * sysfs, enable them, map their BARs, save the netmap_if and ring headers, lock its own CSB
 * pages) and its teardown (restore, mask MSI-X, and check that a clean CREATE still works).
 */
#define _GNU_SOURCE
#include "ptnet-hostile.h"

static void read_ram_end(void)
{
	FILE *fp = fopen("/proc/iomem", "r");
	char line[256];

	if (!fp)
		die("/proc/iomem");
	while (fgets(line, sizeof(line), fp)) {
		unsigned long long a, b;

		if (line[0] != ' ' && strstr(line, "System RAM") &&
		    sscanf(line, "%llx-%llx", &a, &b) == 2 && b + 1 > ram_end)
			ram_end = b + 1;
	}
	fclose(fp);
	if (!ram_end) {
		errno = ENOENT;
		die("no System RAM in /proc/iomem");
	}
}

/* --- setup and teardown ------------------------------------------------------------------- */

void setup(void)
{
	uint32_t i, j, cap;
	uint8_t *nif;

	if (!find("0x000d", &nic) || !find("0x000c", &mdev)) {
		errno = ENODEV;
		die("no ptnet NIC (1b36:000d) and memdev (1b36:000c) in /sys/bus/pci/devices");
	}
	open_func(&nic);
	open_func(&mdev);
	cfg_write(&nic, 4, cfg_read(&nic, 4, 2) | 7, 2);	/* IO, MEM, bus master */
	cfg_write(&mdev, 4, cfg_read(&mdev, 4, 2) | 7, 2);
	if (!nic.bar[0] || !mdev.bar[0] || !mdev.bar[1] || !nic.bar[2] || nic.bar[0] > 0xffff ||
	    mdev.bar[0] > 0xffff) {
		errno = ENXIO;
		die("unexpected BARs");
	}
	nio = nic.bar[0];
	mio = mdev.bar[0];
	if (ioperm(nio, 256, 1) || ioperm(mio, 128, 1))
		die("ioperm");
	ntx = rreg(PTNET_IO_NUM_TX_RINGS);
	nrx = rreg(PTNET_IO_NUM_RX_RINGS);
	ntx_slots = rreg(PTNET_IO_NUM_TX_SLOTS);
	nrx_slots = rreg(PTNET_IO_NUM_RX_SLOTS);
	nbufs = inl(mio + PTNET_MDEV_BUF_POOL_OBJNUM);
	region_len = inl(mio + PTNET_MDEV_MEMSIZE_LO);
	if (!ntx || !nrx || rings() > PTNET_MAX_RINGS || region_len > mdev.bar_len[1] ||
	    !ntx_slots || !nrx_slots) {
		errno = EINVAL;
		die("unexpected NIC geometry");
	}
	region = map_res(&mdev, 1, region_len);
	msix = map_res(&nic, 2, 4096);
	nifp_ofs = rreg(PTNET_IO_NIFP_OFS);
	buf_pool_ofs = inl(mio + PTNET_MDEV_BUF_POOL_OFS);
	buf_size = inl(mio + PTNET_MDEV_BUF_POOL_OBJSZ);
	nif = region + nifp_ofs;
	if (U32(nif, NIF_TX_RINGS) != ntx || U32(nif, NIF_RX_RINGS) != nrx) {
		errno = EINVAL;
		die("netmap_if does not match the registers");
	}
	for (i = 0; i < rings(); i++) {
		uint32_t k = i < ntx ? i : ntx + U32(nif, NIF_HOST_TX_RINGS) + (i - ntx);

		ring_off[i] = (uint8_t *)nif - region + I64(nif, NIF_RING_OFS + 8 * k);
		saved_hdr[i] = malloc(NETMAP_RING_HDR);
		memcpy(saved_hdr[i], region + ring_off[i], NETMAP_RING_HDR);
	}
	nif_len = NIF_RING_OFS + 8 * (rings() + 2);
	saved_nif = malloc(nif_len);
	memcpy(saved_nif, nif, nif_len);
	tx_bufs = malloc(4 * (size_t)ntx * ntx_slots);
	rx_bufs = malloc(4 * (size_t)nrx * nrx_slots);
	for (i = 0; i < rings(); i++) {
		uint32_t n = i < ntx ? ntx_slots : nrx_slots;

		for (j = 0; j < n; j++) {
			uint32_t b = U32(region + ring_off[i] + NETMAP_RING_HDR + sizeof(struct netmap_slot) * j, 0);

			if (b >= 2 && b < nbufs) {
				if (i < ntx)
					tx_bufs[ntx_bufs++] = b;
				else
					rx_bufs[nrx_bufs++] = b;
			}
		}
	}
	if (!ntx_bufs || !nrx_bufs) {
		errno = EINVAL;
		die("no buffers in the rings");
	}
	csb = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
		   -1, 0);
	if (csb == MAP_FAILED || mlock(csb, 8192))
		die("CSB pages");
	memset(csb, 0, 8192);
	csb_pa[0] = phys_of(csb);
	csb_pa[1] = phys_of(csb + 4096);
	read_ram_end();
	for (cap = cfg_read(&nic, 0x34, 1); cap && cap < 256; cap = cfg_read(&nic, cap + 1, 1))
		if (cfg_read(&nic, cap, 1) == MSIX_CAP_ID)
			break;
	if (!cap || cap >= 256) {
		errno = ENOENT;
		die("no MSI-X capability");
	}
	msix_cap = cap;
	for (i = 0; i < rings(); i++)
		vmask[i] = 1;
	msix_ctl(1, 1);
}

int teardown_and_check(void)
{
	uint32_t i, status;

	reg(PTNET_IO_PTCTL, PTNETMAP_PTCTL_DELETE);
	/* Mask everything, then disable MSI-X. */
	msix_ctl(1, 1);
	for (i = 0; i < rings(); i++) {
		msix[4 * i + 3] = 1;
		safe_message(i);
	}
	msix_ctl(0, 0);
	memcpy(region + nifp_ofs, saved_nif, nif_len);
	for (i = 0; i < rings(); i++)
		memcpy(region + ring_off[i], saved_hdr[i], NETMAP_RING_HDR);
	/* The device must still work: a clean CSB and CREATE answer 0, DELETE too. */
	memset(csb, 0, 8192);
	map_csb(0, csb_pa[0]);
	map_csb(1, csb_pa[1]);
	reg(PTNET_IO_PTCTL, PTNETMAP_PTCTL_CREATE);
	status = rreg(PTNET_IO_PTCTL);
	for (i = 0; i < rings(); i++)
		reg(PTNET_IO_KICK_BASE + 4 * i, 0);
	usleep(100000);
	reg(PTNET_IO_PTCTL, PTNETMAP_PTCTL_DELETE);
	printf("PTNET-HOSTILE-FINAL create=%u delete=%u rings=%u/%u\n", status, rreg(PTNET_IO_PTCTL),
	       rreg(PTNET_IO_NUM_TX_RINGS), rreg(PTNET_IO_NUM_RX_RINGS));
	map_csb(0, 0);
	map_csb(1, 0);
	return status == 0 && rreg(PTNET_IO_PTCTL) == 0 ? 0 : 1;
}

