/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ptnet-tool.h — what the static user-space tools of the test guests (ptnet-ctl.c,
 * ptnet-hostile.c) share. Define TOOL_ERROR, the prefix of the error line a test looks for,
 * before including it.
 */
#ifndef PTNET_TOOL_H
#define PTNET_TOOL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Little-endian fields of the shared memory, by byte offset. */
#define U32(p, off) (*(volatile uint32_t *)((uint8_t *)(p) + (off)))
#define U16(p, off) (*(volatile uint16_t *)((uint8_t *)(p) + (off)))
#define I64(p, off) (*(volatile int64_t *)((uint8_t *)(p) + (off)))

/* Prints "TOOL_ERROR what: strerror(errno)" on stdout (the guest's console) and exits 1. */
static inline void die(const char *what)
{
	printf(TOOL_ERROR " %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

/* Seconds on the monotonic clock. */
static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
