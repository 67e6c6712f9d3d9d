// SPDX-License-Identifier: GPL-2.0
/*
 * ptnet-ctl — a small exerciser of ptnet.ko's netmap-mode character device (/dev/ptnetN), for
 * the nested tests. Built static by guest-images/build into the guest's /bin.
 *
 *   ptnet-ctl info [DEV]             layout ioctl + mmap of the region and the CSB, cross-checked
 *   ptnet-ctl tx COUNT [DEV]         netmap mode: send COUNT 60-byte broadcast frames (ethertype
 *                                    0x88b5, sequence number inside), waiting in poll() for space
 *   ptnet-ctl txbusy COUNT [DEV]     the same in busy-poll mode: ABI §2 on the mmapped CSB, kicks
 *                                    with outl() only when the host asks (ktoa.kern_need_kick)
 *   ptnet-ctl rx COUNT SECS [DEV]    netmap mode: count frames of ethertype 0x88b5 until COUNT
 *                                    or SECS seconds, sleeping in poll()
 *   ptnet-ctl rxall COUNT SECS [DEV] the same, counting every frame (e.g. from the host pkt-gen)
 *   ptnet-ctl udp IP COUNT LEN       stack mode: send COUNT UDP datagrams of LEN bytes to IP:9 as
 *                                    fast as the socket allows (fills the TX ring: stop/wake path)
 *   ptnet-ctl stats IFNAME           the driver's per-ring counters (what `ethtool -S` shows),
 *                                    one "PTNET-STAT name value" line each
 *   ptnet-ctl features IFNAME        the interface's offload features (what `ethtool -k` shows),
 *                                    one "PTNET-FEATURE name on|off [fixed]" line each
 * DEV defaults to /dev/ptnet0. Output lines start with PTNET-.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/io.h>
#include <net/if.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>

#include "ptnet.h"
#include "ptnet_uapi.h"
#define TOOL_ERROR "PTNET-ERROR"
#include "ptnet-tool.h"

#define ETHERTYPE_TEST 0x88b5
#define FRAME_LEN 60

struct port {
	int fd;
	struct ptnet_layout l;
	uint8_t *mem;	/* region, then the CSB pages */
	size_t map_len;
};


static void port_open(struct port *p, const char *dev)
{
	p->fd = open(dev, O_RDWR);
	if (p->fd < 0)
		die(dev);
	if (ioctl(p->fd, PTNET_IOC_LAYOUT, &p->l))
		die("PTNET_IOC_LAYOUT");
	p->map_len = p->l.csb_offset + p->l.csb_size;
	p->mem = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (p->mem == MAP_FAILED)
		die("mmap");
}

/* ring k in netmap_if order: NIC tx, host tx, NIC rx, host rx */
static uint8_t *ring_of(struct port *p, int rx, unsigned int i)
{
	uint8_t *nifp = p->mem + p->l.nifp_offset;
	unsigned int k = rx ? U32(nifp, NIF_TX_RINGS) + U32(nifp, NIF_HOST_TX_RINGS) + i : i;

	return nifp + I64(nifp, NIF_RING_OFS + 8 * k);
}

static struct netmap_slot *slot_of(uint8_t *ring, uint32_t i)
{
	return (struct netmap_slot *)(ring + NETMAP_RING_HDR) + i;
}

static uint8_t *buf_of(uint8_t *ring, uint32_t idx)
{
	return ring + I64(ring, NR_BUF_OFS) + (uint64_t)idx * U32(ring, NR_BUF_SIZE);
}

/* One frame of the test stream into buffer b. */
static void fill_frame(struct port *p, uint8_t *b, unsigned long seq)
{
	memset(b, 0xff, 6);
	memcpy(b + 6, p->l.mac, 6);
	b[12] = ETHERTYPE_TEST >> 8;
	b[13] = ETHERTYPE_TEST & 0xff;
	memset(b + 14, 0, FRAME_LEN - 14);
	memcpy(b + 14, &seq, sizeof(seq));
}

static int cmd_info(struct port *p)
{
	struct ptnet_layout *l = &p->l;
	uint8_t *nifp = p->mem + l->nifp_offset;
	uint32_t *gh = (uint32_t *)(p->mem + l->csb_offset);
	uint32_t *hg = (uint32_t *)(p->mem + l->csb_offset + l->csb_size / 2);
	unsigned int i, bad = 0;
	char name[17];

	memcpy(name, nifp, 16);
	name[16] = 0;
	printf("PTNET-INFO if=%s mac=%02x:%02x:%02x:%02x:%02x:%02x memid=%u mem=%llu csb_offset=%llu nifp=%u rings=%u/%u slots=%u/%u buf=%u registered=%u\n",
	       l->ifname, l->mac[0], l->mac[1], l->mac[2], l->mac[3], l->mac[4], l->mac[5], l->memid,
	       (unsigned long long)l->mem_size, (unsigned long long)l->csb_offset, l->nifp_offset,
	       l->num_tx_rings, l->num_rx_rings, l->num_tx_slots, l->num_rx_slots, l->buf_size,
	       l->flags & PTNET_LAYOUT_REGISTERED);
	printf("PTNET-INFO netmap_if name=%s version=%u tx_rings=%u rx_rings=%u\n", name,
	       U32(nifp, NIF_VERSION), U32(nifp, NIF_TX_RINGS), U32(nifp, NIF_RX_RINGS));
	if (l->version != PTNET_UAPI_VERSION || U32(nifp, NIF_VERSION) != NETMAP_API ||
	    U32(nifp, NIF_TX_RINGS) != l->num_tx_rings || U32(nifp, NIF_RX_RINGS) != l->num_rx_rings)
		bad++;
	for (i = 0; i < l->num_tx_rings + l->num_rx_rings; i++) {
		int rx = i >= l->num_tx_rings;
		uint8_t *r = ring_of(p, rx, rx ? i - l->num_tx_rings : i);
		uint32_t want = rx ? l->num_rx_slots : l->num_tx_slots;

		printf("PTNET-INFO ring %u: num_slots=%u buf_size=%u dir=%u atok.head=%u ktoa.hwcur=%u ktoa.hwtail=%u\n",
		       i, U32(r, NR_NUM_SLOTS), U32(r, NR_BUF_SIZE), *(volatile uint16_t *)(r + NR_DIR), gh[16 * i],
		       hg[16 * i], hg[16 * i + 1]);
		if (U32(r, NR_NUM_SLOTS) != want || U32(r, NR_BUF_SIZE) != l->buf_size ||
		    *(volatile uint16_t *)(r + NR_DIR) != rx || hg[16 * i] >= want || hg[16 * i + 1] >= want)
			bad++;
	}
	printf("PTNET-INFO-CHECK %s\n", bad ? "mismatch" : "ok");
	return bad ? 1 : 0;
}

static void do_register(struct port *p)
{
	if (ioctl(p->fd, PTNET_IOC_REGISTER))
		die("PTNET_IOC_REGISTER");
}

static int cmd_tx(struct port *p, unsigned long count)
{
	uint8_t *r = ring_of(p, 0, 0);
	uint32_t n = U32(r, NR_NUM_SLOTS);
	unsigned long sent = 0, polls = 0;
	struct pollfd pfd = { .fd = p->fd, .events = POLLOUT };
	double t0;

	do_register(p);
	t0 = now();
	while (sent < count) {
		uint32_t head = U32(r, NR_HEAD), tail = U32(r, NR_TAIL);

		if (head == tail) {
			polls++;
			if (poll(&pfd, 1, 2000) <= 0 || (pfd.revents & POLLERR)) {
				printf("PTNET-TX poll timed out or failed after %lu frames\n", sent);
				break;
			}
			continue;
		}
		while (head != tail && sent < count) {
			struct netmap_slot *s = slot_of(r, head);
			uint8_t *b = buf_of(r, s->buf_idx);

			fill_frame(p, b, sent);
			s->len = FRAME_LEN;
			s->flags = 0;
			head = head + 1 == n ? 0 : head + 1;
			sent++;
		}
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		U32(r, NR_HEAD) = head;
		U32(r, NR_CUR) = head;
		if (ioctl(p->fd, PTNET_IOC_TXSYNC))
			die("PTNET_IOC_TXSYNC");
	}
	/* Wait until the host has taken everything (tail = head - 1). */
	while (now() - t0 < 10) {
		uint32_t head = U32(r, NR_HEAD);

		if (ioctl(p->fd, PTNET_IOC_TXSYNC))
			die("PTNET_IOC_TXSYNC");
		if ((U32(r, NR_TAIL) + 1) % n == head)
			break;
		poll(&pfd, 1, 100);
	}
	printf("PTNET-TX sent %lu polls %lu in %.3f s\n", sent, polls, now() - t0);
	return sent == count ? 0 : 1;
}

/*
 * Busy-poll TX (ABI §2 from user space): CSB entry 0 of each array is TX ring 0. Writes
 * fence; cur; fence; head; then a full fence and a kick only if kern_need_kick. Keeps
 * appl_need_kick at 0 (no interrupts) and spins on ktoa.hwtail for space.
 */
static int cmd_txbusy(struct port *p, unsigned long count)
{
	uint8_t *r = ring_of(p, 0, 0);
	uint32_t n = U32(r, NR_NUM_SLOTS);
	volatile uint32_t *atok = (uint32_t *)(p->mem + p->l.csb_offset);
	volatile uint32_t *ktoa = (uint32_t *)(p->mem + p->l.csb_offset + p->l.csb_size / 2);
	unsigned long sent = 0, kicks = 0, spins = 0;
	uint16_t kick = p->l.kick_port + 128; /* KICK(0) */
	uint32_t head, hwtail;
	double t0;

	if (!p->l.kick_port || ioperm(kick, 4, 1))
		die("ioperm on the kick port");
	do_register(p);
	atok[2] = 0; /* appl_need_kick: no interrupts */
	head = atok[0];
	t0 = now();
	while (sent < count && now() - t0 < 30) {
		hwtail = __atomic_load_n(&ktoa[1], __ATOMIC_ACQUIRE);
		if (hwtail >= n)
			die("bad hwtail");
		if (head == hwtail) {
			spins++;
			continue;
		}
		while (head != hwtail && sent < count) {
			struct netmap_slot *s = slot_of(r, head);

			fill_frame(p, buf_of(r, s->buf_idx), sent);
			s->len = FRAME_LEN;
			s->flags = 0;
			head = head + 1 == n ? 0 : head + 1;
			sent++;
		}
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		atok[1] = head; /* cur */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		atok[0] = head; /* head */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (ktoa[2]) { /* kern_need_kick */
			outl(0, kick);
			kicks++;
		}
	}
	/* Wait until the host has taken everything (hwtail = head - 1), kicking if it sleeps. */
	while (now() - t0 < 40 && (ktoa[1] + 1) % n != head) {
		if (ktoa[2]) {
			outl(0, kick);
			kicks++;
		}
		usleep(100);
	}
	/* Keep the netmap_ring view in step for later ioctls. */
	U32(r, NR_HEAD) = head;
	U32(r, NR_CUR) = head;
	U32(r, NR_TAIL) = ktoa[1];
	printf("PTNET-TXBUSY sent %lu kicks %lu spins %lu drained %d in %.3f s\n", sent, kicks,
	       spins, (ktoa[1] + 1) % n == head, now() - t0);
	return sent == count ? 0 : 1;
}

static int cmd_rx(struct port *p, unsigned long count, double secs, int all)
{
	uint8_t *r = ring_of(p, 1, 0);
	uint32_t n = U32(r, NR_NUM_SLOTS);
	unsigned long got = 0, other = 0, order_errors = 0, polls = 0, expect = 0;
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	double t0;

	do_register(p);
	printf("PTNET-RX registered\n");
	fflush(stdout);
	t0 = now();
	while (got < count && now() - t0 < secs) {
		uint32_t head = U32(r, NR_HEAD), tail = U32(r, NR_TAIL);

		if (head == tail) {
			polls++;
			if (poll(&pfd, 1, 500) < 0 || (pfd.revents & POLLERR))
				die("poll");
			continue;
		}
		while (head != tail) {
			struct netmap_slot *s = slot_of(r, head);
			uint8_t *b = buf_of(r, s->buf_idx);

			if (all) {
				got++;
			} else if (s->len >= FRAME_LEN && b[12] == ETHERTYPE_TEST >> 8 &&
			    b[13] == (ETHERTYPE_TEST & 0xff)) {
				unsigned long seq;

				memcpy(&seq, b + 14, sizeof(seq));
				if (seq != expect)
					order_errors++;
				expect = seq + 1;
				got++;
			} else {
				other++;
			}
			head = head + 1 == n ? 0 : head + 1;
		}
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		U32(r, NR_HEAD) = head;
		U32(r, NR_CUR) = head;
		if (ioctl(p->fd, PTNET_IOC_RXSYNC))
			die("PTNET_IOC_RXSYNC");
	}
	printf("PTNET-RX received %lu other %lu order_errors %lu polls %lu in %.3f s\n", got, other,
	       order_errors, polls, now() - t0);
	return got == count ? 0 : 1;
}

static int cmd_udp(const char *ip, unsigned long count, size_t len)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	static char buf[65536];
	unsigned long sent = 0, enobufs = 0;
	double t0 = now();
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		die("socket");
	if (inet_pton(AF_INET, ip, &to.sin_addr) != 1 || len > sizeof(buf)) {
		fprintf(stderr, "bad address or length\n");
		return 2;
	}
	while (sent < count) {
		if (sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
			if (errno == ENOBUFS) {
				enobufs++;
				usleep(100);
				continue;
			}
			die("sendto");
		}
		sent++;
	}
	printf("PTNET-UDP sent %lu enobufs %lu in %.3f s\n", sent, enobufs, now() - t0);
	return 0;
}

static int ethtool_ioctl(int fd, const char *ifname, void *cmd)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = cmd;
	return ioctl(fd, SIOCETHTOOL, &ifr);
}

/* ETHTOOL_GDRVINFO for the count, ETHTOOL_GSTRINGS for the names, ETHTOOL_GSTATS for values. */
static int cmd_stats(const char *ifname)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ethtool_gstrings *names;
	struct ethtool_stats *vals;
	unsigned int i, n;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		die("socket");
	if (ethtool_ioctl(fd, ifname, &info) < 0)
		die("ETHTOOL_GDRVINFO");
	n = info.n_stats;
	names = calloc(1, sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
	vals = calloc(1, sizeof(*vals) + (size_t)n * sizeof(uint64_t));
	if (!names || !vals)
		die("calloc");
	names->cmd = ETHTOOL_GSTRINGS;
	names->string_set = ETH_SS_STATS;
	names->len = n;
	vals->cmd = ETHTOOL_GSTATS;
	vals->n_stats = n;
	if (ethtool_ioctl(fd, ifname, names) < 0)
		die("ETHTOOL_GSTRINGS");
	if (ethtool_ioctl(fd, ifname, vals) < 0)
		die("ETHTOOL_GSTATS");
	printf("PTNET-STATS driver %s bus %s count %u\n", info.driver, info.bus_info, n);
	for (i = 0; i < n && i < names->len && i < vals->n_stats; i++)
		printf("PTNET-STAT %.*s %llu\n", ETH_GSTRING_LEN,
		       (const char *)names->data + (size_t)i * ETH_GSTRING_LEN,
		       (unsigned long long)vals->data[i]);
	close(fd);
	return 0;
}

/* ETHTOOL_GSSET_INFO + ETHTOOL_GSTRINGS for the feature names, ETHTOOL_GFEATURES for the bits. */
static int cmd_features(const char *ifname)
{
	struct {
		struct ethtool_sset_info hdr;
		uint32_t count;
	} sset = { .hdr = { .cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ULL << ETH_SS_FEATURES } };
	struct ethtool_gstrings *names;
	struct ethtool_gfeatures *feat;
	unsigned int i, n, blocks;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		die("socket");
	if (ethtool_ioctl(fd, ifname, &sset) < 0 || !sset.hdr.sset_mask)
		die("ETHTOOL_GSSET_INFO");
	n = sset.count;
	blocks = (n + 31) / 32;
	names = calloc(1, sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
	feat = calloc(1, sizeof(*feat) + blocks * sizeof(feat->features[0]));
	if (!names || !feat)
		die("calloc");
	names->cmd = ETHTOOL_GSTRINGS;
	names->string_set = ETH_SS_FEATURES;
	names->len = n;
	feat->cmd = ETHTOOL_GFEATURES;
	feat->size = blocks;
	if (ethtool_ioctl(fd, ifname, names) < 0)
		die("ETHTOOL_GSTRINGS");
	if (ethtool_ioctl(fd, ifname, feat) < 0)
		die("ETHTOOL_GFEATURES");
	for (i = 0; i < n; i++) {
		uint32_t bit = 1U << (i % 32);
		const struct ethtool_get_features_block *b = &feat->features[i / 32];
		const char *name = (const char *)names->data + (size_t)i * ETH_GSTRING_LEN;

		if (!name[0])
			continue;	/* a bit without a name */
		printf("PTNET-FEATURE %.*s %s%s\n", ETH_GSTRING_LEN, name,
		       (b->active & bit) ? "on" : "off",
		       (b->available & bit) ? "" : " [fixed]");
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct port p;
	const char *dev = "/dev/ptnet0";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "info")) {
		if (argc > 2)
			dev = argv[2];
		port_open(&p, dev);
		return cmd_info(&p);
	}
	if (argc >= 3 && !strcmp(argv[1], "tx")) {
		if (argc > 3)
			dev = argv[3];
		port_open(&p, dev);
		return cmd_tx(&p, strtoul(argv[2], NULL, 0));
	}
	if (argc >= 3 && !strcmp(argv[1], "txbusy")) {
		if (argc > 3)
			dev = argv[3];
		port_open(&p, dev);
		return cmd_txbusy(&p, strtoul(argv[2], NULL, 0));
	}
	if (argc >= 4 && (!strcmp(argv[1], "rx") || !strcmp(argv[1], "rxall"))) {
		if (argc > 4)
			dev = argv[4];
		port_open(&p, dev);
		return cmd_rx(&p, strtoul(argv[2], NULL, 0), atof(argv[3]), !strcmp(argv[1], "rxall"));
	}
	if (argc == 5 && !strcmp(argv[1], "udp"))
		return cmd_udp(argv[2], strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "stats"))
		return cmd_stats(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "features"))
		return cmd_features(argv[2]);
	fprintf(stderr, "usage: ptnet-ctl info [DEV] | tx|txbusy COUNT [DEV] | rx|rxall COUNT SECS [DEV] | udp IP COUNT LEN | stats IFNAME | features IFNAME\n");
	return 2;
}
