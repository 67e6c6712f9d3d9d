// SPDX-License-Identifier: GPL-2.0
/*
 * ptnet-hostile — a hostile guest for the ptnet NIC, for the nested tests
 * (tests/nested/ptnet-hostile.sh). Built static by guest-images/build into the guest's /bin.
 *
 *   ptnet-hostile SECONDS SEED [ROUNDS]
 *
 * With no driver bound to the ptnet functions (1b36:000d NIC, 1b36:000c memdev), it enables
 * them through sysfs and, for SECONDS (or ROUNDS rounds, whichever comes first), drives them
 * with pseudo-random garbage from SEED (xorshift64*, so a seed replays the same choices):
 *   - random writes (and reads) of every NIC and memdev register, 1, 2 and 4 bytes wide,
 *     aligned or not, through the I/O-port BARs (ioperm + in/out);
 *   - CSB addresses: its own two pages (valid), addresses outside guest RAM (beyond the last
 *     "System RAM" range of /proc/iomem, in the PCI hole, the LAPIC page, the memdev's BAR1,
 *     ~0), straddling the end of RAM, unaligned ones, high halves with garbage;
 *   - CREATE/DELETE storms, unknown PTCTL commands, kick storms (every KICK register);
 *   - garbage atok/ktoa words in its CSB pages (head/cur out of range, flags) while the
 *     workers run, and garbage ring headers (head/cur/tail, num_slots, buf_ofs), netmap_if
 *     fields and slots (buf_idx, len, flags) in the memdev's BAR1 (resource1 mmap);
 *   - MSI-X garbage through BAR2 (resource2 mmap): table words of any size and offset, PBA
 *     writes, mask bits, enable/function-mask toggles in config space, command-register
 *     decode and bus-master toggles.
 * Its summary line is "PTNET-HOSTILE-DONE seed=S rounds=N ..." with a count per action.
 *
 * What it does not do, so that the test guest survives its own garbage and the other ports'
 * traffic can be checked exactly (the host must survive all of it anyway):
 *   - no CSB inside guest RAM other than its own two mlock()ed pages (the device would write
 *     ktoa words into the guest kernel's memory);
 *   - an MSI-X message that can be delivered (MSI-X enabled, function and vector unmasked)
 *     always targets a non-existent APIC (even destination id 2..254, so no CPU matches in
 *     physical or logical mode); raw garbage goes only into masked vectors;
 *   - slot buffer indices in range are only those of its own TX rings for TX slots and of its
 *     own RX rings for RX slots (out-of-range ones anywhere): the switch writes the frames other
 *     ports flood to it into RX buffers only, so its garbage frames can never replay (or spoof
 *     the MAC of) another port's frames;
 *   - it restores the netmap_if and ring headers, masks MSI-X, DELETEs and unmaps the CSB at
 *     the end, and then checks that the device still works (a clean CREATE answers 0).
 * Output lines start with PTNET-HOSTILE. The setup and the final check are in
 * ptnet-hostile-setup.c, the shared state in ptnet-hostile.h.
 */
#define _GNU_SOURCE
#include "ptnet-hostile.h"

uint64_t rng;
struct hostile_counts st;
struct func nic, mdev;
uint16_t nio, mio;
uint8_t *region;
size_t region_len;
volatile uint32_t *msix;
int msix_cap;
uint32_t ntx, nrx, ntx_slots, nrx_slots, nbufs, nifp_ofs;
size_t buf_pool_ofs, buf_size;
uint32_t ring_off[PTNET_MAX_RINGS];
uint8_t *saved_nif, *saved_hdr[PTNET_MAX_RINGS];
size_t nif_len;
uint32_t *tx_bufs, *rx_bufs;
size_t ntx_bufs, nrx_bufs;
uint8_t *csb;
uint64_t csb_pa[2];
uint64_t ram_end;
int msix_enabled, msix_fmask = 1, vmask[PTNET_MAX_RINGS];


/* --- CSB addresses ------------------------------------------------------------------------ */

/* An address the device must refuse: outside RAM, straddling its end, unaligned, ~0. */
static uint64_t bad_csb_addr(void)
{
	uint32_t len = 64 * rings();

	switch (below(9)) {
	case 0: return ram_end;
	case 1: return (ram_end - len + 64) & ~63ULL;	/* straddles the end of RAM */
	case 2: return 0xfee00000;			/* LAPIC */
	case 3: return mdev.bar[1];			/* the port's own region, not RAM */
	case 4: return nic.bar[2];			/* the MSI-X BAR */
	case 5: return 0xffffffffffffffc0ULL;
	case 6: return (uint64_t)(0x100000000ULL + ((rnd() & 0xffffffffffULL) << 6)) | (1ULL << 46);
	case 7: return csb_pa[below(2)] + 1 + below(63);	/* unaligned, in our own page */
	default: return ram_end + ((rnd() & 0xffffff) << 6);
	}
}

void map_csb(int which, uint64_t gpa)
{
	uint32_t bah = which ? PTNET_IO_CSB_HG_BAH : PTNET_IO_CSB_GH_BAH;

	reg(bah, gpa >> 32);
	reg(bah + 4, (uint32_t)gpa);	/* BAL */
	st.csb_maps++;
}

static void map_own_csb(void)
{
	/* Sometimes both arrays on one page (the device writes ktoa over our atok). */
	int same = chance(10);

	map_csb(0, csb_pa[0]);
	map_csb(1, csb_pa[same ? 0 : 1]);
}

static void csb_action(void)
{
	if (chance(50)) {
		map_csb(below(2), bad_csb_addr());
		st.csb_bad_addrs++;
	} else if (chance(20)) {
		map_csb(below(2), 0);
	} else {
		map_own_csb();
	}
	if (chance(50))
		reg(PTNET_IO_PTCTL, PTNETMAP_PTCTL_CREATE);
}

/* --- registers --------------------------------------------------------------------------- */

static void reg_action(void)
{
	int width = chance(70) ? 4 : 1 << below(2);
	uint32_t off = chance(70) ? below(256) & ~3u : below(256);
	uint32_t v = chance(50) ? (uint32_t)rnd() : below(64);

	if (chance(30)) {	/* the memdev's read-only registers */
		if (off + width > 128)
			off = 128 - width;
		io_write(mio, off, v, width);
		io_read(mio, below(128 - 3), width);
		st.reg_writes++;
		st.reg_reads++;
		return;
	}
	if (off + width > 256)
		off = 256 - width;
	/* A BAL would map the CSB wherever v points, maybe into the guest kernel: CSB
	 * addresses come from csb_action() only. */
	if (off + width > PTNET_IO_CSB_GH_BAH && off < PTNET_IO_CSB_HG_BAL + 4) {
		csb_action();
		return;
	}
	io_write(nio, off, v, width);
	io_read(nio, below(256 - 3), width);
	st.reg_writes++;
	st.reg_reads++;
	if (off >= PTNET_IO_KICK_BASE)
		st.kicks++;
}

static void create_delete_storm(void)
{
	int i, n = 1 + below(40);

	if (chance(70))
		map_own_csb();
	for (i = 0; i < n; i++) {
		uint32_t cmd = chance(45) ? PTNETMAP_PTCTL_CREATE : chance(80) ? PTNETMAP_PTCTL_DELETE : (uint32_t)rnd();

		reg(PTNET_IO_PTCTL, cmd);
		if (cmd == PTNETMAP_PTCTL_CREATE) {
			st.creates++;
			if (rreg(PTNET_IO_PTCTL) == 0)
				st.create_ok++;
		} else if (cmd == PTNETMAP_PTCTL_DELETE) {
			st.deletes++;
		} else {
			st.bad_cmds++;
		}
		if (chance(30)) {
			reg(PTNET_IO_KICK_BASE + 4 * below(rings()), 0);
			st.kicks++;
		}
	}
}

static void kick_storm(void)
{
	int i, n = 1 + below(200);

	for (i = 0; i < n; i++)
		reg(PTNET_IO_KICK_BASE + 4 * below(chance(90) ? rings() : 32), (uint32_t)rnd());
	st.kicks += n;
}

/* --- CSB and ring garbage ------------------------------------------------------------------- */

static uint32_t garbage_index(uint32_t n)
{
	switch (below(5)) {
	case 0: return (uint32_t)rnd();
	case 1: return n + below(4);
	case 2: return 0xffffffff - below(2);
	default: return below(n);
	}
}

static void atok_action(void)
{
	uint32_t r = below(rings());
	uint32_t n = r < ntx ? ntx_slots : nrx_slots;
	volatile uint32_t *gh = (uint32_t *)(csb + 64 * r), *hg = (uint32_t *)(csb + 4096 + 64 * r);

	if (chance(80)) {
		gh[1] = garbage_index(n);	/* cur */
		gh[0] = garbage_index(n);	/* head */
		if (chance(30))
			gh[2] = chance(50) ? (uint32_t)rnd() : 0;	/* appl_need_kick */
		if (chance(20))
			gh[3] = (uint32_t)rnd();		/* sync_flags */
		st.atok_garbage++;
	} else {	/* the host's words */
		hg[below(3)] = chance(50) ? (uint32_t)rnd() : garbage_index(n);
		st.ktoa_garbage++;
	}
	if (chance(60)) {
		reg(PTNET_IO_KICK_BASE + 4 * r, 0);
		st.kicks++;
	}
}

/* A buffer index for a slot of TX (rx = 0) or RX rings: one of that direction's own buffers,
 * or out of range (see the header: no replay of other ports' frames). */
static uint32_t garbage_buf(int rx)
{
	if (chance(25))
		return nbufs + (chance(50) ? below(8) : (uint32_t)rnd() % (0xffffffff - nbufs));
	return rx ? rx_bufs[below(nrx_bufs)] : tx_bufs[below(ntx_bufs)];
}

static void slot_action(void)
{
	uint32_t r = below(rings()), rx = r >= ntx;
	uint32_t n = rx ? nrx_slots : ntx_slots;
	uint8_t *ring = region + ring_off[r];
	int i, k = 1 + below(64);

	for (i = 0; i < k; i++) {
		uint8_t *s = ring + NETMAP_RING_HDR + sizeof(struct netmap_slot) * below(n);

		switch (below(4)) {
		case 0: U32(s, 0) = garbage_buf(rx); break;
		case 1: U16(s, 4) = chance(50) ? (uint16_t)rnd() : 14 + below(1500); break;
		case 2: U16(s, 6) = (uint16_t)rnd(); break;	/* flags: MOREFRAG, port override */
		default:
			U32(s, 0) = garbage_buf(rx);
			U16(s, 4) = (uint16_t)rnd();
			U16(s, 6) = (uint16_t)rnd();
		}
	}
	/* Random bytes into some of our own TX buffers, so forwarded garbage is garbage. */
	if (!rx && chance(50)) {
		size_t j, b = buf_pool_ofs + (size_t)tx_bufs[below(ntx_bufs)] * buf_size;

		for (j = 0; j < 64 && b + j + 8 <= region_len; j += 8)
			*(volatile uint64_t *)(region + b + j) = rnd();
	}
	st.slot_garbage += k;
}

/* Publish a plausible or garbage head on a ring, through the CSB and the netmap ring. */
static void publish_action(void)
{
	uint32_t r = below(rings()), rx = r >= ntx;
	uint32_t n = rx ? nrx_slots : ntx_slots;
	volatile uint32_t *gh = (uint32_t *)(csb + 64 * r), *hg = (uint32_t *)(csb + 4096 + 64 * r);
	uint32_t hwcur = hg[0], head;
	uint8_t *ring = region + ring_off[r];

	if (hwcur >= n)
		hwcur = 0;
	head = chance(80) ? (hwcur + 1 + below(64)) % n : garbage_index(n);
	U32(ring, NR_HEAD) = chance(80) ? head : garbage_index(n);
	U32(ring, NR_CUR) = chance(80) ? head : garbage_index(n);
	if (chance(20))
		U32(ring, NR_TAIL) = garbage_index(n);
	gh[1] = chance(90) ? head : garbage_index(n);
	gh[0] = head;
	reg(PTNET_IO_KICK_BASE + 4 * r, 0);
	st.kicks++;
	if (rx)
		st.rx_released++;
	else
		st.tx_published++;
}

static void header_action(void)
{
	if (chance(30)) {
		U32(region + nifp_ofs, below(nif_len / 4) * 4) = (uint32_t)rnd();
		st.nif_garbage++;
	} else {
		uint8_t *ring = region + ring_off[below(rings())];

		/* buf_ofs, num_slots, nr_buf_size, ringid/dir, head, cur, tail, flags ... */
		U32(ring, below(NETMAP_RING_HDR / 4) * 4) = (uint32_t)rnd();
		if (chance(30))
			I64(ring, 0) = (int64_t)rnd();
		st.ring_hdr_garbage++;
	}
}

/* --- MSI-X --------------------------------------------------------------------------------- */

static int deliverable(void) { return msix_enabled && !msix_fmask; }

void msix_ctl(int enable, int fmask)
{
	uint16_t c = cfg_read(&nic, msix_cap + 2, 2);

	c = (c & ~0xc000) | (enable ? 0x8000 : 0) | (fmask ? 0x4000 : 0);
	cfg_write(&nic, msix_cap + 2, c, 2);
	msix_enabled = enable;
	msix_fmask = fmask;
	st.msix_toggles++;
}

/* A message no CPU accepts: an even destination id 2..254 (see the header). */
void safe_message(uint32_t v)
{
	uint32_t dest = 2 + 2 * below(127);

	msix[4 * v + 0] = 0xfee00000 | dest << 12 | (uint32_t)(rnd() & 0xc);
	msix[4 * v + 1] = chance(50) ? 0 : (uint32_t)rnd();
	msix[4 * v + 2] = (uint32_t)rnd();
}

static void sanitize_all(void)
{
	uint32_t v;

	for (v = 0; v < rings(); v++)
		safe_message(v);
}

static void msix_action(void)
{
	uint32_t v = below(rings());

	switch (below(6)) {
	case 0:	/* raw garbage of any width and offset, only while nothing is deliverable */
		if (!deliverable()) {
			uint32_t off = below(0x1000);
			int w = 1 << below(4);
			uint8_t *b = (uint8_t *)msix;

			off &= ~(uint32_t)(w - 1);
			if (chance(20))
				off = below(0x1000 - 8);	/* unaligned */
			if (w == 1)
				*(volatile uint8_t *)(b + off) = rnd();
			else if (w == 2)
				*(volatile uint16_t *)(b + off) = rnd();
			else if (w == 4)
				*(volatile uint32_t *)(b + off) = rnd();
			else
				*(volatile uint64_t *)(b + off) = rnd();
			(void)*(volatile uint32_t *)(b + (below(0x1000) & ~3u));
			st.msix_raw++;
		}
		break;
	case 1:	/* a vector's message: masked first when it could fire */
		if (deliverable() && !vmask[v]) {
			msix[4 * v + 3] = 1;
			vmask[v] = 1;
		}
		if (deliverable())
			safe_message(v);
		else {
			msix[4 * v + 0] = rnd();
			msix[4 * v + 1] = rnd();
			msix[4 * v + 2] = rnd();
		}
		break;
	case 2:	/* mask bit */
		if (deliverable() && vmask[v])
			safe_message(v);
		vmask[v] = chance(50);
		msix[4 * v + 3] = vmask[v] | (uint32_t)(rnd() & ~1ULL);
		break;
	case 3:	/* enable / function mask */
		if (chance(50)) {
			int en = chance(70), fm = chance(50);

			if (en && !fm)
				sanitize_all();
			msix_ctl(en, fm);
		}
		break;
	case 4:	/* PBA is read-only */
		msix[0x800 / 4 + below(2)] = rnd();
		(void)msix[0x800 / 4];
		break;
	default: /* fire something: a TX publish with appl_need_kick set */
		((volatile uint32_t *)(csb + 64 * v))[2] = 1;
		reg(PTNET_IO_KICK_BASE + 4 * v, 0);
		st.kicks++;
	}
	st.msix_writes++;
}

/* --- config space: decode and bus master toggles, BAR sizing ---------------------------- */

static void config_action(void)
{
	struct func *f = chance(50) ? &nic : &mdev;
	uint16_t cmd = cfg_read(f, 4, 2);

	if (chance(70)) {
		cfg_write(f, 4, cmd & ~(uint16_t)(1 << below(3)), 2);	/* IO, MEM or BM off */
		reg(PTNET_IO_KICK_BASE, 0);	/* may go nowhere */
		cfg_write(f, 4, cmd, 2);
		st.cfg_toggles++;
	} else {
		/* Size a BAR as firmware does (all ones), then put it back. */
		int bar = f == &nic ? (chance(50) ? 0 : 2) : (chance(50) ? 0 : 1);
		uint32_t old = cfg_read(f, 0x10 + 4 * bar, 4);

		cfg_write(f, 0x10 + 4 * bar, 0xffffffff, 4);
		(void)cfg_read(f, 0x10 + 4 * bar, 4);
		cfg_write(f, 0x10 + 4 * bar, old, 4);
		st.bar_sizings++;
	}
}

int main(int argc, char **argv)
{
	double secs, t0;
	unsigned long rounds = 0, max_rounds;
	uint64_t seed;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: ptnet-hostile SECONDS SEED [ROUNDS]\n");
		return 2;
	}
	secs = atof(argv[1]);
	seed = strtoull(argv[2], NULL, 0);
	max_rounds = argc > 3 ? strtoul(argv[3], NULL, 0) : ~0UL;
	rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("PTNET-HOSTILE seed=%llu seconds=%.1f\n", (unsigned long long)seed, secs);
	setup();
	printf("PTNET-HOSTILE nic=%s memdev=%s io=%#x/%#x region=%zu@%#llx msix@%#llx rings=%u/%u slots=%u/%u bufs=%u csb=%#llx/%#llx ram_end=%#llx\n",
	       nic.path + 21, mdev.path + 21, nio, mio, region_len,
	       (unsigned long long)mdev.bar[1], (unsigned long long)nic.bar[2], ntx, nrx,
	       ntx_slots, nrx_slots, nbufs, (unsigned long long)csb_pa[0],
	       (unsigned long long)csb_pa[1], (unsigned long long)ram_end);
	t0 = now();
	while (now() - t0 < secs && rounds < max_rounds) {
		switch (below(20)) {
		case 0: case 1: case 2: reg_action(); break;
		case 3: case 4: csb_action(); break;
		case 5: create_delete_storm(); break;
		case 6: kick_storm(); break;
		case 7: case 8: case 9: atok_action(); break;
		case 10: case 11: slot_action(); break;
		case 12: case 13: case 14: publish_action(); break;
		case 15: header_action(); break;
		case 16: case 17: msix_action(); break;
		case 18: config_action(); break;
		default:	/* a running device to abuse: own CSB, CREATE */
			map_own_csb();
			reg(PTNET_IO_PTCTL, PTNETMAP_PTCTL_CREATE);
			st.creates++;
			if (rreg(PTNET_IO_PTCTL) == 0)
				st.create_ok++;
		}
		rounds++;
		/* Pace: the other ports must keep up with our garbage frames. */
		if (rounds % 16 == 0)
			usleep(500);
	}
	rc = teardown_and_check();
	printf("PTNET-HOSTILE-DONE seed=%llu rounds=%lu secs=%.1f reg_writes=%lu reg_reads=%lu csb_maps=%lu csb_bad_addrs=%lu creates=%lu create_ok=%lu deletes=%lu bad_cmds=%lu kicks=%lu atok_garbage=%lu ktoa_garbage=%lu ring_hdr_garbage=%lu nif_garbage=%lu slot_garbage=%lu tx_published=%lu rx_released=%lu msix_writes=%lu msix_raw=%lu msix_toggles=%lu cfg_toggles=%lu bar_sizings=%lu\n",
	       (unsigned long long)seed, rounds, now() - t0, st.reg_writes, st.reg_reads,
	       st.csb_maps, st.csb_bad_addrs, st.creates, st.create_ok, st.deletes, st.bad_cmds,
	       st.kicks, st.atok_garbage, st.ktoa_garbage, st.ring_hdr_garbage, st.nif_garbage,
	       st.slot_garbage, st.tx_published, st.rx_released, st.msix_writes, st.msix_raw,
	       st.msix_toggles, st.cfg_toggles, st.bar_sizings);
	return rc;
}
