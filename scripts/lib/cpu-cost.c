/* cpu-cost — what a memory copy and a VM exit cost on the benchmark's emulated CPU:
 * scripts/bench-net's cost section runs it in L1 and in a ptvmm guest (L2), compiled static by
 * scripts/bench-net.
 *
 *   cpu-cost [MIB]
 *       Copies MIB MiB (default 32) between two 8 MiB buffers with each of these methods, in
 *       copies of 2048 bytes (a netmap slot) and of 65536 bytes (a TSO frame), and prints a line
 *       per method and size:
 *         COPY <method> <bytes per copy> <MB/s> <ms per MB>
 *       Methods: glibc (memcpy, what ptvmm's switch uses: Rust's copy_nonoverlapping), movsb
 *       (rep movsb, a kernel's memcpy with ERMS/FSRM), movsq (rep movsq, a kernel's copy_user
 *       with REP_GOOD), u64x4 (a loop of four 8-byte moves, a kernel's memcpy without ERMS) and
 *       sse2x4 (a loop of four 16-byte moves). Then times CPUID, which in a KVM guest always
 *       exits to the host's KVM and back (in L1, QEMU's emulated CPU runs it without an exit):
 *         EXIT cpuid <count> <microseconds each>
 * The question it answers: how much of a TCP benchmark's CPU per byte its copies and its exits
 * can explain. A loop of CPUIDs is a lower bound of an exit's cost: it leaves out what an exit
 * costs the code after it (an emulated CPU's TLB, flushed by each world switch, refills for
 * the loop's few pages only). Exit status 0, or 1 with a message on stderr.
 */
#define _GNU_SOURCE
#include <emmintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_BYTES (8u << 20)

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static void copy_glibc(void *d, const void *s, size_t n)
{
	memcpy(d, s, n);
}

static void copy_movsb(void *d, const void *s, size_t n)
{
	asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static void copy_movsq(void *d, const void *s, size_t n)
{
	size_t q = n / 8;

	asm volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(q) : : "memory");
}

/* the compiler must not turn these loops into a memcpy call or vector code */
__attribute__((optimize("no-tree-vectorize", "no-tree-loop-distribute-patterns")))
static void copy_u64x4(void *d, const void *s, size_t n)
{
	uint64_t *dp = d;
	const uint64_t *sp = s;

	for (size_t i = 0; i < n / 8; i += 4) {
		uint64_t a = sp[i], b = sp[i + 1], c = sp[i + 2], e = sp[i + 3];

		dp[i] = a;
		dp[i + 1] = b;
		dp[i + 2] = c;
		dp[i + 3] = e;
	}
}

static void copy_sse2x4(void *d, const void *s, size_t n)
{
	__m128i *dp = d;
	const __m128i *sp = s;

	for (size_t i = 0; i < n / 16; i += 4) {
		__m128i a = _mm_loadu_si128(sp + i), b = _mm_loadu_si128(sp + i + 1);
		__m128i c = _mm_loadu_si128(sp + i + 2), e = _mm_loadu_si128(sp + i + 3);

		_mm_storeu_si128(dp + i, a);
		_mm_storeu_si128(dp + i + 1, b);
		_mm_storeu_si128(dp + i + 2, c);
		_mm_storeu_si128(dp + i + 3, e);
	}
}

/* Times @n CPUIDs (leaf 0) and prints the EXIT line. */
static void exit_cost(unsigned int n)
{
	unsigned int a, b, c, d;
	double t0 = now(), t;

	for (unsigned int i = 0; i < n; i++) {
		a = 0;
		c = 0;
		asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	}
	t = now() - t0;
	printf("EXIT cpuid %u %.2f\n", n, t * 1e6 / n);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*copy)(void *, const void *, size_t);
	} methods[] = {
		{ "glibc", copy_glibc }, { "movsb", copy_movsb }, { "movsq", copy_movsq },
		{ "u64x4", copy_u64x4 }, { "sse2x4", copy_sse2x4 },
	};
	static const size_t sizes[] = { 2048, 65536 };
	char *end = NULL;
	long mib = argc > 1 ? strtol(argv[1], &end, 10) : 32;
	char *src, *dst;

	if (argc > 2 || (argc > 1 && (*end || mib < 1 || mib > 4096))) {
		fprintf(stderr, "usage: cpu-cost [MIB] (MIB: 1 to 4096, default 32)\n");
		return 1;
	}
	src = aligned_alloc(4096, POOL_BYTES);
	dst = aligned_alloc(4096, POOL_BYTES);
	if (!src || !dst) {
		fprintf(stderr, "cpu-cost: cannot allocate 2 x %u bytes\n", POOL_BYTES);
		return 1;
	}
	/* a pattern that differs at every offset a wrong copy could take it from */
	for (size_t i = 0; i < POOL_BYTES; i++)
		src[i] = (char)(i * 131 + (i >> 12));
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
			size_t sz = sizes[z], total = (size_t)mib << 20, off = 0, written = 0;
			double t0, t;

			memset(dst, 0, POOL_BYTES);	/* untimed; no page faults counted */
			t0 = now();
			for (size_t done = 0; done < total; done += sz) {
				methods[m].copy(dst + off, src + off, sz);
				off += sz;
				if (off > written)
					written = off;
				if (off + sz > POOL_BYTES)
					off = 0;
			}
			t = now() - t0;
			/* every byte written must equal the source's byte at the same offset */
			if (memcmp(dst, src, written)) {
				fprintf(stderr, "cpu-cost: %s copied wrong bytes\n", methods[m].name);
				return 1;
			}
			printf("COPY %s %zu %.1f %.3f\n", methods[m].name, sz, total / 1e6 / t,
			       t * 1e3 / (total / 1e6));
			fflush(stdout);
		}
	}
	exit_cost(20000);
	return 0;
}
