// SPDX-License-Identifier: GPL-2.0
/*
 * ptnet-hostile.h — what the two parts of ptnet-hostile share: ptnet-hostile.c (the garbage
 * actions and main) and ptnet-hostile-setup.c (finding, enabling and mapping the NIC, and the
 * final restore and check). See ptnet-hostile.c for what the program does.
 */
#ifndef PTNET_HOSTILE_H
#define PTNET_HOSTILE_H
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ptnet.h"
#define TOOL_ERROR "PTNET-HOSTILE-ERROR"
#include "ptnet-tool.h"
#include "pci-sysfs.h"

/* The ABI's numbers: ptnet.h (checked against netmap::ptnet by a unit test). */
#define MSIX_CAP_ID 0x11

/* xorshift64*, seeded from the command line: a seed replays the same choices. */
extern uint64_t rng;
static inline uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}
static inline uint32_t below(uint32_t n) { return n ? (uint32_t)(rnd() % n) : 0; }
static inline int chance(int percent) { return below(100) < (uint32_t)percent; }

/* What was done, for the summary line. */
struct hostile_counts {
	unsigned long reg_writes, reg_reads, csb_maps, csb_bad_addrs, creates, create_ok, deletes,
		bad_cmds, kicks, atok_garbage, ktoa_garbage, ring_hdr_garbage, nif_garbage,
		slot_garbage, tx_published, rx_released, msix_writes, msix_raw, msix_toggles,
		cfg_toggles, bar_sizings;
};
extern struct hostile_counts st;

/* The device as setup() found it (defined in ptnet-hostile.c). */
extern struct func nic, mdev;
extern uint16_t nio, mio;		/* I/O bases of the two BAR0s */
extern uint8_t *region;			/* memdev BAR1 */
extern size_t region_len;
extern volatile uint32_t *msix;		/* NIC BAR2 */
extern int msix_cap;
extern uint32_t ntx, nrx, ntx_slots, nrx_slots, nbufs, nifp_ofs;
extern size_t buf_pool_ofs, buf_size;
extern uint32_t ring_off[PTNET_MAX_RINGS];	/* offset of ring i (TX first) in the region */
extern uint8_t *saved_nif, *saved_hdr[PTNET_MAX_RINGS];
extern size_t nif_len;
extern uint32_t *tx_bufs, *rx_bufs;	/* the buffer indices the rings started with */
extern size_t ntx_bufs, nrx_bufs;
extern uint8_t *csb;			/* our two pages: GH then HG */
extern uint64_t csb_pa[2];
extern uint64_t ram_end;		/* end of the last System RAM range */
extern int msix_enabled, msix_fmask, vmask[PTNET_MAX_RINGS];

static inline uint32_t rings(void) { return ntx + nrx; }
static inline void reg(uint32_t off, uint32_t v) { outl(v, nio + off); }
static inline uint32_t rreg(uint32_t off) { return inl(nio + off); }

/* ptnet-hostile.c */
void map_csb(int which, uint64_t gpa);
void msix_ctl(int enable, int fmask);
void safe_message(uint32_t v);
/* ptnet-hostile-setup.c */
void setup(void);
int teardown_and_check(void);

#endif
