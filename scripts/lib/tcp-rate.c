/* tcp-rate — the TCP throughput tool of scripts/bench-net, run inside the benchmark's guests
 * (compiled static by scripts/bench-net and put into their initramfs as /bench/tcp-rate).
 *
 *   tcp-rate recv PORT STREAMS RAMP
 *       Accepts STREAMS connections on PORT, reads them all (one thread, poll()) until every one
 *       has ended, and prints one line per second of reception and a result line:
 *         TCPR-SEC  <seconds since the first byte> <bytes in that second>
 *         TCPR-RESULT <streams> <bytes> <seconds> <Mbit/s>
 *       The result counts the bytes received from RAMP seconds after the first byte to the last
 *       whole second before the streams ended, over that time as measured by the receiver's
 *       monotonic clock: TCP's ramp (slow start) and the partial last second are left out.
 *       Over the same seconds, the guest's CPU time from /proc/stat's "cpu" line:
 *         TCPR-CPU <streams> <busy %> <softirq %> <system %> <user %>
 *       (busy: everything but idle and iowait, in % of all the guest's CPUs' time).
 *   tcp-rate send HOST PORT STREAMS SECONDS
 *       Opens STREAMS connections to HOST:PORT (retrying while refused, up to 60 s), writes to
 *       all of them for SECONDS seconds, closes them and prints
 *         TCPS-RESULT <streams> <bytes> <seconds>
 *         TCPS-CPU <streams> <busy %> <softirq %> <system %> <user %>
 *       (the guest's CPU time, as the receiver's, over the SECONDS of sending).
 * Exit status 0, or 1 with a message on stderr. No options beyond these: the benchmark's
 * numbers come from this file and scripts/lib/net-bench.sh (net-bench-tcp.sh) only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 64
#define MAX_SECONDS 3600
#define BUF_BYTES (256 * 1024)

static char buf[BUF_BYTES];

static void fail(const char *what)
{
	fprintf(stderr, "tcp-rate: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The aggregate "cpu" line of /proc/stat, in clock ticks (all zero if it cannot be read). */
struct cpu_ticks {
	unsigned long long user, system, softirq, busy, total;
};

static struct cpu_ticks cpu_ticks(void)
{
	struct cpu_ticks t = { 0 };
	unsigned long long v[10] = { 0 };
	FILE *f = fopen("/proc/stat", "r");

	if (!f)
		return t;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 4) {
		/* user nice system idle iowait irq softirq steal guest guest_nice; guest time is
		 * already in user */
		t.user = v[0] + v[1];
		t.system = v[2] + v[5];
		t.softirq = v[6];
		t.busy = t.user + t.system + t.softirq + v[7];
		t.total = t.busy + v[3] + v[4];
	}
	fclose(f);
	return t;
}

/* "TAG STREAMS busy% softirq% system% user%" over the ticks from @a to @b ("-" if none). */
static void print_cpu(const char *tag, int streams, struct cpu_ticks a, struct cpu_ticks b)
{
	double all = (double)(b.total - a.total);

	if (b.total <= a.total) {
		printf("%s %d - - - -\n", tag, streams);
		return;
	}
	printf("%s %d %.1f %.1f %.1f %.1f\n", tag, streams, (b.busy - a.busy) * 100 / all,
	       (b.softirq - a.softirq) * 100 / all, (b.system - a.system) * 100 / all,
	       (b.user - a.user) * 100 / all);
}

static long number(const char *s, long lo, long hi, const char *name)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "tcp-rate: %s must be %ld..%ld, got '%s'\n", name, lo, hi, s);
		exit(1);
	}
	return v;
}

static int do_recv(int port, int streams, int ramp)
{
	static unsigned long long per_sec[MAX_SECONDS + 1];
	static struct cpu_ticks cpu_at[MAX_SECONDS + 2]; /* at the first byte of each second */
	struct pollfd pfd[MAX_STREAMS];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, open_streams = 0, i;
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0)
		fail("socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail("bind");
	if (listen(l, streams) < 0)
		fail("listen");
	printf("TCPR-LISTEN %d\n", port);
	fflush(stdout);
	for (i = 0; i < streams; i++) {
		int c = accept(l, NULL, NULL);
		if (c < 0)
			fail("accept");
		pfd[i].fd = c;
		pfd[i].events = POLLIN;
		open_streams++;
	}
	close(l);

	double t0 = 0; /* time of the first byte */
	int last = -1; /* last second with a byte */
	unsigned long long total = 0;
	double t_end = 0;
	while (open_streams > 0) {
		if (poll(pfd, streams, 1000) < 0) {
			if (errno == EINTR)
				continue;
			fail("poll");
		}
		for (i = 0; i < streams; i++) {
			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(pfd[i].fd, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				if (n < 0)
					fprintf(stderr, "tcp-rate: read: %s\n", strerror(errno));
				close(pfd[i].fd);
				pfd[i].fd = -1;
				open_streams--;
				continue;
			}
			double t = now();
			if (total == 0) {
				t0 = t;
				cpu_at[0] = cpu_ticks();
			}
			total += n;
			t_end = t;
			int s = (int)(t - t0);
			if (s > MAX_SECONDS)
				s = MAX_SECONDS;
			while (last < s) { /* print each second as it is complete */
				if (last >= 0) {
					printf("TCPR-SEC %d %llu\n", last, per_sec[last]);
					fflush(stdout);
				}
				last++;
				if (last > 0)
					cpu_at[last] = cpu_ticks();
			}
			per_sec[s] += n;
		}
	}
	if (total == 0) {
		printf("TCPR-RESULT %d 0 0 0\n", streams);
		return 0;
	}
	printf("TCPR-SEC %d %llu (partial: %.3f s)\n", last, per_sec[last], t_end - t0 - last);
	/* whole seconds [ramp, last): per_sec[last] is the partial second the streams ended in */
	int from = ramp < last ? ramp : 0, to = last;
	unsigned long long bytes = 0;
	for (i = from; i < to; i++)
		bytes += per_sec[i];
	double secs = to - from;
	if (secs <= 0) { /* shorter than the ramp: everything, over the whole time */
		bytes = total;
		secs = t_end - t0;
	}
	printf("TCPR-RESULT %d %llu %.3f %.1f\n", streams, bytes, secs,
	       secs > 0 ? bytes * 8 / secs / 1e6 : 0.0);
	if (to > from)
		print_cpu("TCPR-CPU", streams, cpu_at[from], cpu_at[to]);
	else /* shorter than the ramp: from the first byte to now */
		print_cpu("TCPR-CPU", streams, cpu_at[0], cpu_ticks());
	return 0;
}

static int do_send(const char *host, int port, int streams, int seconds)
{
	struct pollfd pfd[MAX_STREAMS];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int i;

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "tcp-rate: '%s' is not an IPv4 address\n", host);
		return 1;
	}
	for (i = 0; i < BUF_BYTES; i++)
		buf[i] = (char)(i * 7 + (i >> 9));
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < streams; i++) {
		double give_up = now() + 60;
		for (;;) {
			int c = socket(AF_INET, SOCK_STREAM, 0);
			if (c < 0)
				fail("socket");
			if (connect(c, (struct sockaddr *)&a, sizeof(a)) == 0) {
				pfd[i].fd = c;
				pfd[i].events = POLLOUT;
				break;
			}
			if (errno != ECONNREFUSED || now() > give_up)
				fail("connect");
			close(c);
			usleep(200000);
		}
	}
	unsigned long long total = 0;
	struct cpu_ticks c0 = cpu_ticks();
	double t0 = now(), stop = t0 + seconds;
	while (now() < stop) {
		if (poll(pfd, streams, 200) < 0) {
			if (errno == EINTR)
				continue;
			fail("poll");
		}
		for (i = 0; i < streams; i++) {
			if (!(pfd[i].revents & (POLLOUT | POLLERR | POLLHUP)))
				continue;
			ssize_t n = send(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n < 0)
				fail("send");
			total += n;
		}
	}
	double t1 = now();
	struct cpu_ticks c1 = cpu_ticks();
	for (i = 0; i < streams; i++)
		close(pfd[i].fd);
	printf("TCPS-RESULT %d %llu %.3f\n", streams, total, t1 - t0);
	print_cpu("TCPS-CPU", streams, c0, c1);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && strcmp(argv[1], "recv") == 0)
		return do_recv(number(argv[2], 1, 65535, "PORT"), number(argv[3], 1, MAX_STREAMS, "STREAMS"),
			       number(argv[4], 0, MAX_SECONDS, "RAMP"));
	if (argc == 6 && strcmp(argv[1], "send") == 0)
		return do_send(argv[2], number(argv[3], 1, 65535, "PORT"), number(argv[4], 1, MAX_STREAMS, "STREAMS"),
			       number(argv[5], 1, MAX_SECONDS, "SECONDS"));
	fprintf(stderr, "usage: tcp-rate recv PORT STREAMS RAMP | tcp-rate send HOST PORT STREAMS SECONDS\n");
	return 1;
}
