/* tcp-stream — one TCP stream of known bytes, for the nested suites' guests (compiled static by
 * guest-images/build into the test initramfs as /bin/tcp-stream).
 *
 * Busybox's cat, nc and md5sum move about 2.5 MB/s in a guest of the nested harness (each byte
 * crosses two pipes in 4 KiB pieces): a 64 MiB stream took 3 minutes and the guests' shells, not
 * the NIC, set TCP's pace. This tool moves the same bytes with 256 KiB reads and writes and
 * computes the MD5 as it reads.
 *
 *   tcp-stream send HOST PORT FILE MIB SECONDS
 *       Connects to HOST:PORT (a numeric IPv4 or IPv6 address; retried every 0.1 s while refused
 *       or unreachable: the listener may not be up yet), writes MIB MiB — FILE's bytes over and
 *       over, the last copy cut short — and closes. Prints nothing.
 *   tcp-stream recv PORT SECONDS
 *       Listens on PORT (IPv4 and IPv6), accepts one connection, reads it to its end and prints
 *       "BYTES MD5", what `wc -c` and `md5sum` print for the same bytes.
 * Either gives up after SECONDS in all. Exit status 0, or 1 with a message on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static void die(const char *what)
{
	fprintf(stderr, "tcp-stream: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void on_alarm(int sig)
{
	static const char msg[] = "tcp-stream: out of time (SECONDS)\n";
	(void)sig;
	if (write(2, msg, sizeof msg - 1) < 0)
		_exit(1);
	_exit(1);
}

static long number(const char *s, long lo, long hi, const char *name)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "tcp-stream: %s must be %ld..%ld, got '%s'\n", name, lo, hi, s);
		exit(1);
	}
	return v;
}

/* --- MD5 (RFC 1321) ----------------------------------------------------------------------- */

struct md5 {
	uint32_t h[4];
	uint64_t len;
	unsigned char blk[64];
};

static uint32_t md5_k[64];
static const unsigned char md5_r[16] = { 7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21 };

static void md5_init(struct md5 *m)
{
	/* K[i] = floor(|sin(i + 1)| * 2^32): exact in double precision, checked by md5_selftest */
	for (int i = 0; i < 64; i++) {
		md5_k[i] = (uint32_t)(fabs(sin(i + 1.0)) * 4294967296.0);
	}
	m->h[0] = 0x67452301;
	m->h[1] = 0xefcdab89;
	m->h[2] = 0x98badcfe;
	m->h[3] = 0x10325476;
	m->len = 0;
}

static void md5_block(struct md5 *m, const unsigned char *p)
{
	uint32_t w[16], a = m->h[0], b = m->h[1], c = m->h[2], d = m->h[3];
	for (int i = 0; i < 16; i++)
		w[i] = p[4 * i] | p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
	for (int i = 0; i < 64; i++) {
		uint32_t f;
		int g;
		switch (i / 16) {
		case 0: f = (b & c) | (~b & d); g = i; break;
		case 1: f = (d & b) | (~d & c); g = (5 * i + 1) % 16; break;
		case 2: f = b ^ c ^ d; g = (3 * i + 5) % 16; break;
		default: f = c ^ (b | ~d); g = (7 * i) % 16; break;
		}
		int r = md5_r[(i / 16) * 4 + i % 4];
		uint32_t t = a + f + md5_k[i] + w[g];
		a = d;
		d = c;
		c = b;
		b += (t << r) | (t >> (32 - r));
	}
	m->h[0] += a;
	m->h[1] += b;
	m->h[2] += c;
	m->h[3] += d;
}

static void md5_update(struct md5 *m, const unsigned char *p, size_t n)
{
	size_t have = m->len % 64;
	m->len += n;
	if (have) {
		size_t take = 64 - have < n ? 64 - have : n;
		memcpy(m->blk + have, p, take);
		p += take;
		n -= take;
		if (have + take < 64)
			return;
		md5_block(m, m->blk);
	}
	for (; n >= 64; p += 64, n -= 64)
		md5_block(m, p);
	memcpy(m->blk, p, n);
}

/* md5_hex: the digest as 32 hex digits in out (33 bytes). */
static void md5_hex(struct md5 *m, char *out)
{
	uint64_t bits = m->len * 8;
	unsigned char pad[72] = { 0x80 };
	size_t n = 64 - (m->len + 8) % 64;
	for (int i = 0; i < 8; i++)
		pad[n + i] = bits >> (8 * i);
	md5_update(m, pad, n + 8);
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", (m->h[i / 4] >> (8 * (i % 4))) & 0xff);
}

static void md5_selftest(void)
{
	static const char *in[] = { "", "abc", "12345678901234567890123456789012345678901234567890123456789012345678901234567890" };
	static const char *want[] = { "d41d8cd98f00b204e9800998ecf8427e", "900150983cd24fb0d6963f7d28e17f72",
				      "57edf4a22be3c955ac49da2e2107b67a" };
	for (int i = 0; i < 3; i++) {
		struct md5 m;
		char hex[33];
		md5_init(&m);
		md5_update(&m, (const unsigned char *)in[i], strlen(in[i]));
		md5_hex(&m, hex);
		if (strcmp(hex, want[i]) != 0) {
			fprintf(stderr, "tcp-stream: MD5 self-test %d failed: %s, not %s\n", i, hex, want[i]);
			exit(1);
		}
	}
}

/* --- the two ends ------------------------------------------------------------------------------ */

static int do_send(const char *host, long port, const char *file, long mib)
{
	struct sockaddr_storage sa = { 0 };
	struct sockaddr_in *v4 = (struct sockaddr_in *)&sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sa;
	socklen_t salen;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		salen = sizeof *v4;
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		salen = sizeof *v6;
	} else {
		fprintf(stderr, "tcp-stream: HOST must be a numeric IPv4 or IPv6 address, got '%s'\n", host);
		return 1;
	}

	int fd = open(file, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die(file);
	if (st.st_size < 1) {
		fprintf(stderr, "tcp-stream: %s is empty\n", file);
		return 1;
	}
	size_t fsize = st.st_size;
	unsigned char *data = malloc(fsize);
	if (!data)
		die("malloc");
	for (size_t got = 0; got < fsize;) {
		ssize_t r = read(fd, data + got, fsize - got);
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			die(file);
		}
		got += r;
	}
	close(fd);

	/* a receiver that went away: write() fails with EPIPE and says so, not a silent SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	int s;
	for (;;) {
		s = socket(sa.ss_family, SOCK_STREAM, 0);
		if (s < 0)
			die("socket");
		if (connect(s, (struct sockaddr *)&sa, salen) == 0)
			break;
		if (errno != ECONNREFUSED && errno != ENETUNREACH && errno != EHOSTUNREACH && errno != ETIMEDOUT)
			die("connect");
		close(s);
		nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
	}
	uint64_t left = (uint64_t)mib * 1048576, pos = 0;
	while (left > 0) {
		size_t n = fsize - pos;
		if (n > CHUNK)
			n = CHUNK;
		if (n > left)
			n = left;
		ssize_t w = write(s, data + pos, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		left -= w;
		pos = (pos + w) % fsize;
	}
	if (close(s) < 0)
		die("close");
	return 0;
}

static int do_recv(long port)
{
	md5_selftest();
	int l = socket(AF_INET6, SOCK_STREAM, 0), off = 0, on = 1;
	if (l < 0)
		die("socket");
	/* IPv4 clients too (as ::ffff:a.b.c.d): without this the IPv4 suites' senders never connect */
	if (setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0)
		die("setsockopt IPV6_V6ONLY");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any };
	if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	if (listen(l, 1) < 0)
		die("listen");
	int s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	close(l);
	static unsigned char buf[CHUNK];
	struct md5 m;
	md5_init(&m);
	for (;;) {
		ssize_t r = read(s, buf, sizeof buf);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		if (r == 0)
			break;
		md5_update(&m, buf, r);
	}
	char hex[33];
	unsigned long long bytes = m.len;
	md5_hex(&m, hex);
	printf("%llu %s\n", bytes, hex);
	return 0;
}

int main(int argc, char **argv)
{
	const char *usage = "usage: tcp-stream send HOST PORT FILE MIB SECONDS | tcp-stream recv PORT SECONDS\n";
	signal(SIGALRM, on_alarm);
	if (argc == 7 && strcmp(argv[1], "send") == 0) {
		long port = number(argv[3], 1, 65535, "PORT");
		long mib = number(argv[5], 0, 1 << 20, "MIB");
		alarm(number(argv[6], 1, 86400, "SECONDS"));
		return do_send(argv[2], port, argv[4], mib);
	}
	if (argc == 4 && strcmp(argv[1], "recv") == 0) {
		long port = number(argv[2], 1, 65535, "PORT");
		alarm(number(argv[3], 1, 86400, "SECONDS"));
		return do_recv(port);
	}
	fputs(usage, stderr);
	return 1;
}
